//! Dissection throughput in packets per second.
//!
//! * `mix`: every hand-built frame of `tests/support/frames.rs` (Ethernet, VLAN, QinQ,
//!   PPPoE, SLL, SLL2, raw IP, loopback; TCP, UDP, ICMP, IGMP, MLD; fragments).
//! * `corpus/<file>`: every record of a few real captures from the public corpus, where
//!   `streamscope_testkit::corpus_dir` finds it (`STREAMSCOPE_CORPUS`, else
//!   `../shared/corpus` beside the checkout); skipped otherwise, with a line saying so.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streamscope_capture::Capture;
use streamscope_wire::{dissect, LinkType};

#[path = "../tests/support/frames.rs"]
mod frames;

fn run(packets: &[(u32, u32, Vec<u8>)]) -> u64 {
    let mut n = 0u64;
    for (link, orig_len, data) in packets {
        let p = dissect(LinkType(*link), black_box(data), *orig_len);
        n += u64::from(p.payload_len);
    }
    n
}

fn load(path: &Path) -> Option<Vec<(u32, u32, Vec<u8>)>> {
    let mut cap = Capture::open(path).ok()?;
    let mut packets = Vec::new();
    while let Ok(Some(rec)) = cap.next_record() {
        packets.push((rec.link_type.0, rec.orig_len, rec.data.to_vec()));
    }
    Some(packets)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("dissect");

    let mix: Vec<(u32, u32, Vec<u8>)> = frames::ALL
        .iter()
        .map(|&(link, _, frame)| (link, frame.len() as u32, frame.to_vec()))
        .collect();
    group.throughput(Throughput::Elements(mix.len() as u64));
    group.bench_function("mix", |b| b.iter(|| run(&mix)));

    let corpus = streamscope_testkit::corpus_dir();
    for name in [
        "ndpi__netflix.pcap",
        "tsduck__test-135.seqwrap.pcap",
        "ndpi__ip_fragmented_garbage.pcap",
        "ndpi__quickplay.pcap",
    ] {
        let Some(packets) = load(&corpus.join(name)) else {
            streamscope_testkit::skip(
                "dissect bench",
                &format!("corpus/{name}"),
                &format!("{} not found", corpus.join(name).display()),
            );
            continue;
        };
        group.throughput(Throughput::Elements(packets.len() as u64));
        group.bench_function(format!("corpus/{name}"), |b| b.iter(|| run(&packets)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
