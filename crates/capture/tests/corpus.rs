//! Conformance with tshark on the shared corpus of real captures (`oracle.json`).
//!
//! Every file with an oracle entry is read six ways: memory-mapped, with `read`, and
//! gzip-compressed through a stream, each one record at a time and in batches. Each
//! reading must agree with tshark (the record count, Σ orig_len, Σ captured bytes, first
//! and last timestamps, distinct link types, per-interface record counts where tshark
//! gives interface ids, and a read error where tshark reported one), and all six must
//! give the same [`Summary`]: every field, the per-interface counts, the link types and
//! the error message included.
//!
//! The corpus is found through `streamscope_testkit::corpus`; without it these tests
//! say what they did not check and pass (or fail under `STREAMSCOPE_REQUIRE_ORACLES=1`).
//!
//! tshark prints its own WTAP_ENCAP numbers in `frame.encap_type`, not LINKTYPE numbers;
//! [`linktypes_for_wtap`] maps the ones the corpus uses back to the LINKTYPE values
//! libwiretap's `pcap_to_wtap_map` turns into them.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::Path;

use serde_json::Value;
use streamscope_capture::{Capture, Error, ReadMode, Record};
use streamscope_testkit::Corpus;

/// The corpus, or `None` after saying that `test` did not check `what`.
fn corpus(test: &str, what: &str) -> Option<&'static Corpus> {
    streamscope_testkit::corpus(&format!("capture::corpus::{test}"), what)
}

/// LINKTYPE numbers that libwiretap maps to a WTAP_ENCAP number (wiretap/pcap-common.c).
fn linktypes_for_wtap(encap: &str) -> &'static [u32] {
    match encap {
        "1" => &[1],           // WTAP_ENCAP_ETHERNET
        "7" => &[101, 12, 14], // WTAP_ENCAP_RAW_IP: LINKTYPE_RAW and the old DLT_RAW values
        "15" => &[0],          // WTAP_ENCAP_NULL
        "25" => &[113],        // WTAP_ENCAP_SLL
        "129" => &[228],       // WTAP_ENCAP_RAW_IP4
        "130" => &[229],       // WTAP_ENCAP_RAW_IP6
        "210" => &[276],       // WTAP_ENCAP_SLL2
        other => panic!("no LINKTYPE mapping for tshark encapsulation {other}: add it"),
    }
}

/// tshark's `frame.time_epoch` as integer nanoseconds. tshark prints the seconds, a dot
/// and the nanoseconds field with `%09u`; a pcap record whose fraction field is
/// 1e9 or more (corpus file ndpi__fuzz-2021-10-13.pcap) prints more than 9 digits, and
/// those digits are that field as it is.
fn epoch_ns(s: &str) -> i64 {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = sec.parse().unwrap();
    let mut ns: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().unwrap()
    };
    for _ in frac.len()..9 {
        ns *= 10;
    }
    sec * 1_000_000_000 + ns
}

#[derive(Debug, Default, PartialEq)]
struct Summary {
    records: u64,
    sum_orig: u64,
    sum_cap: u64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    per_interface: BTreeMap<u32, u64>,
    link_types: Vec<u32>,
    error: Option<String>,
}

/// Reads to the end, one record at a time or in batches ([`Capture::next_batch`]).
fn summarize(mut cap: Capture, batches: bool) -> Summary {
    let mut s = Summary::default();
    let mut add = |r: &Record<'_>| {
        s.records += 1;
        s.sum_orig += u64::from(r.orig_len);
        s.sum_cap += r.data.len() as u64;
        s.first_ts.get_or_insert(r.ts_ns);
        s.last_ts = Some(r.ts_ns);
        *s.per_interface.entry(r.interface).or_default() += 1;
        if !s.link_types.contains(&r.link_type.0) {
            s.link_types.push(r.link_type.0);
        }
    };
    let error = loop {
        let read = if batches {
            cap.next_batch().map(|b| {
                b.iter().for_each(&mut add);
                !b.is_empty()
            })
        } else {
            cap.next_record().map(|r| r.inspect(&mut add).is_some())
        };
        match read {
            Ok(true) => {}
            Ok(false) => break None,
            Err(e) => {
                assert!(e.offset().is_some(), "mid-file errors carry an offset: {e}");
                break Some(e.to_string());
            }
        }
    };
    s.error = error;
    assert!(matches!(cap.next_record(), Ok(None)));
    assert_eq!(cap.records(), s.records);
    s
}

/// The ways each capture is read.
const WAYS: [(&str, Way, bool); 6] = [
    ("mmap", Way::Mode(ReadMode::Mmap), false),
    ("mmap in batches", Way::Mode(ReadMode::Mmap), true),
    ("read", Way::Mode(ReadMode::Read), false),
    ("read in batches", Way::Mode(ReadMode::Read), true),
    ("gzip stream", Way::Gzip, false),
    ("gzip stream in batches", Way::Gzip, true),
];

#[derive(Clone, Copy)]
enum Way {
    /// The file itself, opened in this mode.
    Mode(ReadMode),
    /// The file gzip-compressed, read from a stream named by the file's path.
    Gzip,
}

/// Opens `path` (whose bytes, gzip-compressed, are `gz`) the way `way` says.
fn open(path: &Path, gz: &[u8], way: Way) -> Capture {
    match way {
        Way::Mode(mode) => {
            let cap = Capture::open_with(path, mode)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let fingerprint = cap.info().fingerprint.as_deref().unwrap_or_default();
            assert!(fingerprint.starts_with("xxh3:"), "{fingerprint:?}");
            cap
        }
        // Named by the full path, as the files are, so that error messages compare equal.
        Way::Gzip => Capture::from_reader(
            path.to_str().expect("corpus paths are UTF-8"),
            Box::new(Cursor::new(gz.to_vec())),
        )
        .unwrap_or_else(|e| panic!("{} (gzip): {e}", path.display())),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Checks one reading of a file against tshark's facts `o` about it.
fn check_against_tshark(ctx: &str, s: &Summary, o: &Value) {
    assert_eq!(
        s.records,
        o["tshark_frames"].as_u64().unwrap(),
        "{ctx}: records"
    );
    assert_eq!(
        s.sum_orig,
        o["sum_frame_len"].as_u64().unwrap(),
        "{ctx}: Σ orig_len"
    );
    assert_eq!(
        s.sum_cap,
        o["sum_frame_cap_len"].as_u64().unwrap(),
        "{ctx}: Σ captured"
    );
    assert_eq!(
        s.first_ts,
        o["first_frame_epoch"].as_str().map(epoch_ns),
        "{ctx}: first ts"
    );
    assert_eq!(
        s.last_ts,
        o["last_frame_epoch"].as_str().map(epoch_ns),
        "{ctx}: last ts"
    );
    let read_error = o["tshark_read_error"].as_str().unwrap_or("");
    assert_eq!(
        s.error.is_some(),
        !read_error.is_empty(),
        "{ctx}: error {:?} vs tshark {read_error:?}",
        s.error
    );
    // link types: each record's LINKTYPE must be one tshark's encapsulation maps from
    let encaps: Vec<&str> = o["frame_encap_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert_eq!(
        s.link_types.len(),
        encaps.len(),
        "{ctx}: link types {:?} vs {encaps:?}",
        s.link_types
    );
    for lt in &s.link_types {
        assert!(
            encaps.iter().any(|e| linktypes_for_wtap(e).contains(lt)),
            "{ctx}: LINKTYPE {lt} not among tshark's {encaps:?}"
        );
    }
    // per-interface counts where tshark gives interface ids (pcapng); classic pcap has
    // one interface, and the equality of all readings below checks its count
    let ifs = o["frame_interface_ids"].as_array().unwrap();
    if ifs.iter().all(|p| p[0].as_str() != Some("")) {
        let want: BTreeMap<u32, u64> = ifs
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().parse().unwrap(),
                    p[1].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(s.per_interface, want, "{ctx}: records per interface");
    }
}

#[test]
fn corpus_matches_tshark() {
    let Some(corpus) = corpus(
        "corpus_matches_tshark",
        "the corpus read memory-mapped, read and gzip-streamed, against tshark (records, \
         sums, timestamps, link types, interfaces, read errors)",
    ) else {
        return;
    };
    let files = corpus.files().count();
    assert!(files >= 40, "oracle lists {files} files");
    let mut checked = 0;
    for (name, o) in corpus.files() {
        let path = corpus.path(name);
        let gz = gzip(&std::fs::read(&path).unwrap());
        let runs: Vec<(&str, Summary)> = WAYS
            .iter()
            .map(|&(how, way, batches)| (how, summarize(open(&path, &gz, way), batches)))
            .collect();
        for (how, s) in &runs {
            check_against_tshark(&format!("{name} ({how})"), s, o);
        }
        // Every reading gives the same summary, field by field.
        let (first, want) = &runs[0];
        for (how, s) in &runs[1..] {
            assert_eq!(s, want, "{name}: {how} and {first} differ");
        }
        checked += 1;
    }
    assert_eq!(checked, files);
}

#[test]
fn corpus_fuzz_file_has_swapped_lengths_then_truncation() {
    let Some(corpus) = corpus(
        "corpus_fuzz_file_has_swapped_lengths_then_truncation",
        "swapped lengths and truncation in ndpi__fuzz-2021-10-13.pcap",
    ) else {
        return;
    };
    // Format 2.0 stores orig_len before caplen: 197 captured of 524501, then 2 stray bytes.
    let path = corpus.path("ndpi__fuzz-2021-10-13.pcap");
    let mut cap = Capture::open(&path).unwrap();
    let r = cap.next_record().unwrap().unwrap();
    assert_eq!((r.orig_len, r.data.len()), (524_501, 197));
    assert_eq!(r.link_type.0, 0);
    let err = cap.next_record().unwrap_err();
    match &err {
        Error::Truncated {
            offset, available, ..
        } => assert_eq!((*offset, *available), (237, 2)),
        e => panic!("{e:?}"),
    }
    assert_eq!(cap.anomalies().lengths_swapped, 1);
    assert!(cap.next_record().unwrap().is_none());
}

#[test]
fn corpus_empty_pcapng_ends_at_once() {
    let Some(corpus) = corpus(
        "corpus_empty_pcapng_ends_at_once",
        "reading tcpdump__empty.pcapng",
    ) else {
        return;
    };
    let mut cap = Capture::open(&corpus.path("tcpdump__empty.pcapng")).unwrap();
    assert!(cap.next_record().unwrap().is_none());
    assert_eq!(cap.records(), 0);
}
