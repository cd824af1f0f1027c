//! `dissect` must not allocate: a counting global allocator watches this thread while
//! thousands of varied packets are dissected (every hand-built frame, cut at every length,
//! with each byte in turn corrupted, under both snaplen interpretations, plus an
//! unsupported link type).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use streamscope_wire::{dissect, DecodeErrorCounts, LinkType, Transport};

#[path = "support/frames.rs"]
mod frames;

struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the thread-local may already be gone while a thread shuts down.
    let _ = WATCHING.try_with(|watching| {
        if watching.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn watched<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCATIONS.with(|n| n.set(0));
    WATCHING.with(|w| w.set(true));
    let r = f();
    WATCHING.with(|w| w.set(false));
    (r, ALLOCATIONS.with(Cell::get))
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
