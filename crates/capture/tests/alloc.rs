//! No allocation per record: a counting global allocator around the read loop, on the
//! streaming path, the read(2) file path and the memory-mapped path, for both formats.
//! Only the reading thread's allocations count (the memory-mapped path starts a thread
//! that maps pages ahead of the reader; what that thread's start allocates, once per
//! file, is not the read loop's).

mod common;

use std::io::Cursor;

use streamscope_capture::{Capture, ReadMode};
use streamscope_testkit::CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made while reading every record after the first (a pcapng's interface
/// table is filled, once per Interface Description Block, while reaching the first).
fn allocations_while_reading(mut cap: Capture, want: u64) -> u64 {
    assert!(cap.next_record().unwrap().is_some());
    let ((n, bytes), allocations) = CountingAlloc::watched(|| {
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
        (n, bytes)
    });
    assert_eq!(n, want);
    assert!(bytes > 0);
    allocations
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
