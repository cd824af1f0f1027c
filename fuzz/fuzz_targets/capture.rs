//! Arbitrary bytes as a capture file (pcap, pcapng, gzip or zstd around either): the
//! reader returns records or one error, never panics, and stops after an error.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use streamscope_capture::{Capture, Compression};

fuzz_target!(|data: &[u8]| {
    let Ok(mut cap) = Capture::from_reader("fuzz", Box::new(Cursor::new(data.to_vec()))) else {
        return;
    };
    let plain = cap.compression() == Compression::None;
    let mut records = 0u64;
    loop {
        match cap.next_record() {
            Ok(Some(r)) => {
                records += 1;
                // A record borrows the input's bytes: it cannot be longer than the input.
                assert!(!plain || r.data.len() <= data.len());
            }
            Ok(None) => break,
            Err(_) => {
                // Everything before the error stays valid; nothing comes after it.
                assert!(matches!(cap.next_record(), Ok(None)));
                break;
            }
        }
    }
    assert_eq!(cap.records(), records);
    assert!(!plain || cap.offset() <= data.len() as u64);
});
