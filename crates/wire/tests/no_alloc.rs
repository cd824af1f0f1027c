//! `dissect` must not allocate: a counting global allocator watches this thread while
//! thousands of varied packets are dissected (every hand-built frame, cut at every length,
//! with each byte in turn corrupted, under both snaplen interpretations, plus an
//! unsupported link type).

use std::hint::black_box;
use streamscope_testkit::CountingAlloc;

use streamscope_wire::{dissect, DecodeErrorCounts, LinkType, Transport};

#[path = "support/frames.rs"]
mod frames;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn watched<R>(f: impl FnOnce() -> R) -> (R, u64) {
    CountingAlloc::watched(f)
}

#[test]
fn the_counter_sees_allocations() {
    let (v, n) = watched(|| black_box(vec![1u8; 64]));
    drop(v);
    assert!(n >= 1, "the counting allocator must notice a Vec");
}

#[test]
fn dissect_allocates_nothing() {
    // Inputs are built before watching starts.
    let mut inputs: Vec<(u32, Vec<u8>)> = Vec::new();
    for &(link, _, frame) in frames::ALL {
        for cut in 0..=frame.len() {
            inputs.push((link, frame[..cut].to_vec()));
        }
        // Every byte in turn corrupted.
        for at in 0..frame.len() {
            let mut v = frame.to_vec();
            v[at] ^= 0xa5;
            inputs.push((link, v));
        }
        inputs.push((147, frame.to_vec()));
    }
    assert!(inputs.len() > 2000, "only {} inputs", inputs.len());

    let ((packets, tcp, errors), n) = watched(|| {
        let mut errors = DecodeErrorCounts::new();
        let mut packets = 0u64;
        let mut tcp = 0u64;
        for (link, data) in &inputs {
            for orig_len in [data.len() as u32, data.len() as u32 + 100] {
                let p = dissect(LinkType(*link), black_box(data), orig_len);
                errors.add_opt(p.error);
                if matches!(p.transport, Transport::Tcp(_)) {
                    tcp += 1;
                }
                black_box(p.payload);
                packets += 1;
            }
        }
        (packets, tcp, errors)
    });
    assert_eq!(n, 0, "{n} allocations while dissecting {packets} packets");
    // The mix really exercised the decoders and the error paths.
    assert!(packets > 6000, "{packets}");
    assert!(tcp > 100, "{tcp}");
    assert!(
        errors.iter().filter(|&(_, c)| c > 0).count() >= 12,
        "{errors:?}"
    );
}
