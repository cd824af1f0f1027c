//! No allocation per record: a counting global allocator around the read loop, on the
//! streaming path, the read(2) file path and the memory-mapped path, for both formats.
//! Only the reading thread's allocations count (the memory-mapped path starts a thread
//! that maps pages ahead of the reader; what that thread's start allocates, once per
//! file, is not the read loop's).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};

use streamscope_capture::{Capture, ReadMode};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the test's reading thread.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTED.with(Cell::get) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made while reading every record after the first (a pcapng's interface
/// table is filled, once per Interface Description Block, while reaching the first).
fn allocations_while_reading(mut cap: Capture, want: u64) -> u64 {
    COUNTED.with(|c| c.set(true));
    assert!(cap.next_record().unwrap().is_some());
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut n = 1;
    let mut bytes = 0usize;
    // Half one record at a time, half in batches.
    while n < want / 2 {
        let Some(r) = cap.next_record().unwrap() else {
            break;
        };
        n += 1;
        bytes += r.data.len();
    }
    loop {
        let batch = cap.next_batch().unwrap();
        if batch.is_empty() {
            break;
        }
        n += batch.len() as u64;
        bytes += batch.iter().map(|r| r.data.len()).sum::<usize>();
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(n, want);
    assert!(bytes > 0);
    after - before
}

#[test]
fn reading_records_does_not_allocate() {
    let n = 20_000u64;
    // both captures exceed one 4 MiB chunk, so refills happen inside the loop
    for (name, bytes) in [
        ("pcap", common::synthetic_pcap(n as usize)),
        ("pcapng", common::synthetic_pcapng(n as usize)),
    ] {
        assert!(bytes.len() > 8 << 20);
        let cap = Capture::from_reader(name, Box::new(Cursor::new(bytes.clone()))).unwrap();
        assert_eq!(allocations_while_reading(cap, n), 0, "{name} from_reader");
        let path =
            std::env::temp_dir().join(format!("streamscope-alloc-{}-{name}", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        for mode in [ReadMode::Mmap, ReadMode::Read] {
            let cap = Capture::open_with(&path, mode).unwrap();
            assert_eq!(allocations_while_reading(cap, n), 0, "{name} {mode:?}");
        }
        let _ = std::fs::remove_file(&path);
    }
}
