//! Property tests: any bytes, and any mutation of small valid captures, are read
//! without panicking and the reader always terminates.

mod common;

use std::io::Cursor;

use common::*;
use proptest::prelude::*;
use streamscope_capture::{Anomalies, Capture, ReadMode, Record, BATCH};

/// Reads to the end; asserts termination bounds and the post-error contract.
fn exercise(mut cap: Capture, len: usize) {
    let mut n = 0u64;
    let mut last_offset = cap.offset();
    loop {
        match cap.next_record() {
            Ok(Some(r)) => {
                let _ = (r.ts_ns, r.data.len(), r.orig_len);
                n += 1;
                // every record consumes at least 12 bytes, so this bounds the loop
                assert!(n <= len as u64 / 12 + 1, "too many records");
                assert!(cap.offset() > last_offset, "no progress");
                last_offset = cap.offset();
            }
            Ok(None) => break,
            Err(e) => {
                assert!(!e.to_string().contains('\n'));
                break;
            }
        }
    }
    assert!(matches!(cap.next_record(), Ok(None)));
    assert!(cap.offset() <= len as u64);
}

/// Everything a reader yields: the records, the error that ended them, the end offset,
/// the record count and the anomalies; read one record at a time or in batches.
type Reading = (Vec<Owned>, Option<String>, u64, u64, Anomalies);

fn read_all(mut cap: Capture, batches: bool) -> Reading {
    let mut out = Vec::new();
    let own = |r: &Record<'_>| Owned {
        ts_ns: r.ts_ns,
        link_type: r.link_type.0,
        interface: r.interface,
        orig_len: r.orig_len,
        data: r.data.to_vec(),
    };
    let err = loop {
        if batches {
            match cap.next_batch() {
                Ok(b) if b.is_empty() => break None,
                Ok(b) => {
                    assert!(b.len() <= BATCH);
                    out.extend(b.iter().map(own))
                }
                Err(e) => break Some(e.to_string()),
            }
        } else {
            match cap.next_record() {
                Ok(Some(r)) => out.push(own(&r)),
                Ok(None) => break None,
                Err(e) => break Some(e.to_string()),
            }
        }
    };
    assert!(cap.next_batch().unwrap().is_empty());
    (out, err, cap.offset(), cap.records(), *cap.anomalies())
}

fn run_bytes(bytes: &[u8]) {
    if let Ok(cap) = Capture::from_reader("prop", Box::new(Cursor::new(bytes.to_vec()))) {
        exercise(cap, bytes.len());
    }
}

fn valid_pcapng() -> Vec<u8> {
    let mut v = shb(false);
    v.extend(idb(false, 1, 64, Some(9), Some(3)));
    v.extend(idb(false, 101, 0, Some(0x94), None));
    v.extend(epb(false, 0, 123, 80, &[1; 20]));
    v.extend(epb(false, 1, 456, 7, &[2; 7]));
    v.extend(spb(false, 9, &[3; 9]));
    v.extend(pb(false, 1, 789, 4, &[4; 4]));
    v.extend(ng_block(false, 5, &[0; 8]));
    v.extend(shb(true));
    v.extend(idb(true, 113, 0, Some(6), None));
    v.extend(epb(true, 0, 1, 3, &[5; 3]));
    v
}

fn valid_pcap() -> Vec<u8> {
    let mut v = pcap_header(false, true, 100, 1);
    for i in 0..6u32 {
        v.extend(pcap_record(
            false,
            i,
            i * 3,
            50,
            &vec![i as u8; (i * 11) as usize],
        ));
    }
    v
}

fn mutate(mut base: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(i, b) in edits {
        let n = base.len();
        base[i % n] = b;
    }
    if let Some(c) = cut {
        base.truncate(c % (base.len() + 1));
    }
    base
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        run_bytes(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_magic(magic in 0usize..5, tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let heads: [&[u8]; 5] = [
            &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0],
            &[0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4],
            &[0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0],
            &[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0x1c, 0x1a, 0x2b, 0x3c, 0x4d, 0, 1],
            &[0x1f, 0x8b],
        ];
        let mut v = heads[magic].to_vec();
        v.extend(tail);
        run_bytes(&v);
    }

    #[test]
    fn mutated_pcapng(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in proptest::option::of(any::<usize>())) {
        run_bytes(&mutate(valid_pcapng(), &edits, cut));
    }

    #[test]
    fn mutated_pcap(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in proptest::option::of(any::<usize>())) {
        run_bytes(&mutate(valid_pcap(), &edits, cut));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The memory-mapped path, through a real file.
    #[test]
    fn mutated_files_both_modes(ng in any::<bool>(), edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in proptest::option::of(any::<usize>())) {
        let base = if ng { valid_pcapng() } else { valid_pcap() };
        let bytes = mutate(base, &edits, cut);
        let path = std::env::temp_dir().join(format!("streamscope-prop-{}.cap", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        for mode in [ReadMode::Mmap, ReadMode::Read] {
            if let Ok(cap) = Capture::open_with(&path, mode) {
                exercise(cap, bytes.len());
                // Batches yield the same records, then the same error, at the same offset.
                let one = read_all(Capture::open_with(&path, mode).unwrap(), false);
                let batched = read_all(Capture::open_with(&path, mode).unwrap(), true);
                prop_assert_eq!(one, batched);
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn unmutated_bases_are_valid() {
    // guards the generators: if they were invalid, the mutation tests would test little
    for (bytes, want) in [(valid_pcapng(), 5), (valid_pcap(), 6)] {
        let mut cap = Capture::from_reader("base", Box::new(Cursor::new(bytes))).unwrap();
        let mut n = 0;
        while cap.next_record().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, want);
    }
}
