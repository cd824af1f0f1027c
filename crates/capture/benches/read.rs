//! Reading speed of both formats on a generated in-memory capture, through the streaming
//! path (`from_reader`) and, for pcap, through a memory-mapped and a read(2) file.

use std::io::Cursor;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use streamscope_capture::{Capture, ReadMode};

#[path = "../tests/common/mod.rs"]
mod common;

fn drain(mut cap: Capture) -> (u64, u64) {
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Ok(Some(r)) = cap.next_record() {
        n += 1;
        bytes += r.data.len() as u64;
    }
    (n, bytes)
}

fn read(c: &mut Criterion) {
    let n = 20_000;
    let pcap = common::synthetic_pcap(n);
    let pcapng = common::synthetic_pcapng(n);
    let mut g = c.benchmark_group("capture");
    for (name, bytes) in [("pcap", &pcap), ("pcapng", &pcapng)] {
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("{name}/from_reader"), |b| {
            b.iter_batched(
                || bytes.clone(),
                |owned| {
                    let cap = Capture::from_reader("bench", Box::new(Cursor::new(owned))).unwrap();
                    assert_eq!(drain(cap).0, n as u64);
                },
                BatchSize::LargeInput,
            )
        });
    }
    let path = std::env::temp_dir().join(format!("streamscope-bench-{}.pcap", std::process::id()));
    std::fs::write(&path, &pcap).unwrap();
    g.throughput(Throughput::Bytes(pcap.len() as u64));
    for mode in [ReadMode::Mmap, ReadMode::Read] {
        g.bench_function(format!("pcap/file-{mode:?}"), |b| {
            b.iter(|| assert_eq!(drain(Capture::open_with(&path, mode).unwrap()).0, n as u64))
        });
    }
    g.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, read);
criterion_main!(benches);
