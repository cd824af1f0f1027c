//! Hand-built captures, checked field by field.

#[path = "../tests/common/mod.rs"]
mod common;

use super::*;
use common::*;

fn reader(bytes: &[u8]) -> Box<dyn Read + Send> {
    Box::new(Cursor::new(bytes.to_vec()))
}

fn open_bytes(bytes: &[u8]) -> Result<Capture, Error> {
    Capture::from_reader("test.pcap", reader(bytes))
}

/// Every record until the end, and the error that ended it (checking that a call after
/// the end or an error returns `Ok(None)`).
fn drain(cap: &mut Capture) -> (Vec<Owned>, Option<Error>) {
    let mut out = Vec::new();
    let err = loop {
        match cap.next_record() {
            Ok(Some(r)) => out.push(Owned {
                ts_ns: r.ts_ns,
                link_type: r.link_type.0,
                interface: r.interface,
                orig_len: r.orig_len,
                data: r.data.to_vec(),
            }),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    assert!(matches!(cap.next_record(), Ok(None)));
    (out, err)
}

/// Two records, µs, little-endian, literally.
const PCAP_US_LE: &[u8] = &[
    0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, // magic, version 2.4
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // thiszone, sigfigs
    0xff, 0xff, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // snaplen 65535, ETHERNET
    // record 1: 1700000000 s + 123456 µs, 4 bytes
    0x00, 0xf1, 0x53, 0x65, 0x40, 0xe2, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
    0xde, 0xad, 0xbe, 0xef, //
    // record 2: 1700000001 s + 999999 µs, 2 bytes of 60
    0x01, 0xf1, 0x53, 0x65, 0x3f, 0x42, 0x0f, 0x00, 0x02, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x00,
    0x01, 0x02,
];

#[test]
fn pcap_microseconds_little_endian() {
    let mut cap = open_bytes(PCAP_US_LE).unwrap();
    assert_eq!(
        cap.format(),
        FileFormat::Pcap {
            nanosecond: false,
            big_endian: false
        }
    );
    assert_eq!(cap.compression(), Compression::None);
    assert_eq!(cap.link_types(), &[LinkType::ETHERNET]);
    assert_eq!(cap.snaplen(), Some(65535));
    assert_eq!(cap.offset(), 24);
    let r = cap.next_record().unwrap().unwrap();
    assert_eq!(r.ts_ns, 1_700_000_000_123_456_000);
    assert_eq!(r.data, &[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(r.orig_len, 4);
    assert_eq!(r.interface, 0);
    assert_eq!(cap.offset(), 24 + 16 + 4);
    let r = cap.next_record().unwrap().unwrap();
    assert_eq!(r.ts_ns, 1_700_000_001_999_999_000);
    assert_eq!(r.data, &[1, 2]);
    assert_eq!(r.orig_len, 60);
    assert!(cap.next_record().unwrap().is_none());
    assert_eq!(cap.records(), 2);
    assert_eq!(cap.offset(), PCAP_US_LE.len() as u64);
    assert_eq!(cap.anomalies(), &Anomalies::default());
    assert_eq!(cap.info().fingerprint, None);
}

#[test]
fn pcap_nanoseconds_big_endian() {
    let mut v = pcap_header(true, true, 0x40000, 113);
    assert_eq!(&v[..4], &[0xa1, 0xb2, 0x3c, 0x4d]);
    v.extend(pcap_record(true, 10, 999_999_999, 3, &[7, 8, 9]));
    v.extend(pcap_record(true, 11, 1, 1, &[5]));
    let mut cap = open_bytes(&v).unwrap();
    assert_eq!(
        cap.format(),
        FileFormat::Pcap {
            nanosecond: true,
            big_endian: true
        }
    );
    assert_eq!(cap.link_types(), &[LinkType::LINUX_SLL]);
    let (recs, err) = drain(&mut cap);
    assert!(err.is_none());
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].ts_ns, 10_999_999_999);
    assert_eq!(recs[0].data, vec![7, 8, 9]);
    assert_eq!(recs[1].ts_ns, 11_000_000_001);
    assert_eq!(recs[1].link_type, 113);
}

#[test]
fn pcap_snaplen_cut_packet() {
    let mut v = pcap_header(false, false, 8, 1);
    v.extend(pcap_record(false, 1, 0, 1500, &[1, 2, 3, 4, 5, 6, 7, 8]));
    let mut cap = open_bytes(&v).unwrap();
    let r = cap.next_record().unwrap().unwrap();
    assert_eq!(r.orig_len, 1500);
    assert_eq!(r.data.len(), 8);
    assert!(cap.next_record().unwrap().is_none());
    assert_eq!(cap.anomalies().caplen_over_snaplen, 0);
    assert_eq!(cap.anomalies().orig_len_below_caplen, 0);
}

#[test]
fn pcap_caplen_over_snaplen_accepted_and_counted() {
    let mut v = pcap_header(false, false, 4, 1);
    v.extend(pcap_record(false, 1, 0, 6, &[0; 6]));
    v.extend(pcap_record(false, 1, 0, 2, &[0; 5])); // orig below caplen too
    let mut cap = open_bytes(&v).unwrap();
    let (recs, err) = drain(&mut cap);
    assert!(err.is_none());
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].data.len(), 6);
    assert_eq!(cap.anomalies().caplen_over_snaplen, 2);
    assert_eq!(cap.anomalies().orig_len_below_caplen, 1);
}

#[test]
fn pcap_caplen_above_limit_is_corrupt_at_its_offset() {
    let mut v = pcap_header(false, false, 65535, 1);
    v.extend(pcap_record(false, 1, 0, 3, &[1, 2, 3]));
    let bad_at = v.len() as u64;
    let mut w = W::new(false);
    w.u32(2).u32(0).u32(pcap::MAX_CAPLEN + 1).u32(10);
    v.extend(w.v);
    v.extend(vec![0; 64]);
    let mut cap = open_bytes(&v).unwrap();
    let (recs, err) = drain(&mut cap);
    assert_eq!(recs.len(), 1);
    let err = err.unwrap();
    assert!(
        matches!(err, Error::Corrupt { value: 262_145, .. }),
        "{err:?}"
    );
    assert_eq!(err.offset(), Some(bad_at));
    // exactly the limit is fine (when present)
    let mut v = pcap_header(false, false, 65535, 1);
    v.extend(pcap_record(false, 1, 0, 262_144, &vec![0; 262_144]));
    let (recs, err) = drain(&mut open_bytes(&v).unwrap());
    assert!(err.is_none());
    assert_eq!(recs[0].data.len(), 262_144);
}

#[test]
fn pcap_cut_mid_record_returns_partial_then_truncated() {
    let mut v = pcap_header(false, false, 65535, 1);
    v.extend(pcap_record(false, 1, 0, 4, &[1, 2, 3, 4]));
    let second = v.len() as u64; // 44
    v.extend(pcap_record(false, 2, 0, 100, &[9; 100]));
    v.truncate(second as usize + 16 + 30);
    for mode in [ReadMode::Read, ReadMode::Mmap] {
        let path = temp_file("cut_mid_record.pcap", &v);
        for mut cap in [
            open_bytes(&v).unwrap(),
            Capture::open_with(&path, mode).unwrap(),
        ] {
            let (recs, err) = drain(&mut cap);
            assert_eq!(recs.len(), 2);
            assert_eq!(recs[1].data, vec![9; 30]);
            assert_eq!(recs[1].orig_len, 100);
            assert_eq!(recs[1].ts_ns, 2_000_000_000);
            match err.unwrap() {
                Error::Truncated {
                    offset,
                    needed,
                    available,
                    ..
                } => {
                    assert_eq!(offset, second);
                    assert_eq!(needed, 116);
                    assert_eq!(available, 46);
                }
                e => panic!("{e:?}"),
            }
        }
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn pcap_cut_mid_header_is_just_truncated() {
    let mut v = pcap_header(false, false, 65535, 1);
    v.extend(pcap_record(false, 1, 0, 4, &[1, 2, 3, 4]));
    let second = v.len() as u64;
    v.extend(&[0u8; 10]);
    let (recs, err) = drain(&mut open_bytes(&v).unwrap());
    assert_eq!(recs.len(), 1);
    let err = err.unwrap();
    assert!(
        matches!(
            err,
            Error::Truncated {
                what: "pcap record header",
                needed: 16,
                available: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.offset(), Some(second));
    let msg = err.to_string();
    assert!(!msg.contains('\n'));
    assert!(
        msg.contains("test.pcap") && msg.contains("byte 44"),
        "{msg}"
    );
}

#[test]
fn pcap_header_cut_short_is_bad_header() {
    let v = pcap_header(false, false, 65535, 1);
    let err = open_bytes(&v[..20]).unwrap_err();
    assert!(
        matches!(err, Error::BadHeader { format: "pcap", .. }),
        "{err:?}"
    );
    let err = open_bytes(&pcap_header_v(false, false, 1, 0, 0, 1)).unwrap_err();
    assert!(matches!(err, Error::BadHeader { .. }), "{err:?}");
}

#[test]
fn pcap_before_2_3_has_lengths_swapped() {
    // Format 2.2 writes orig_len before caplen (libpcap sf-pcap.c, libwiretap libpcap.c).
    let mut v = pcap_header_v(false, true, 2, 0, 0, 0x4000_0000);
    let mut w = W::new(false);
    w.u32(5).u32(7).u32(524_501).u32(3).bytes(&[1, 2, 3]);
    v.extend(w.v);
    let mut cap = open_bytes(&v).unwrap();
    assert_eq!(cap.link_types(), &[LinkType::NULL]);
    assert_eq!(cap.fcs_len(), None);
    let (recs, err) = drain(&mut cap);
    assert!(err.is_none());
    assert_eq!(recs[0].orig_len, 524_501);
    assert_eq!(recs[0].data, vec![1, 2, 3]);
    assert_eq!(recs[0].ts_ns, 5_000_000_007);
    assert_eq!(cap.anomalies().lengths_swapped, 1);
}

#[test]
fn pcap_linktype_upper_bits_hold_fcs() {
    // P bit set, FCS length 2 (16-bit words) → 4 bytes; link type 1.
    let v = pcap_header(false, false, 65535, 0x2400_0001);
    let cap = open_bytes(&v).unwrap();
    assert_eq!(cap.link_types(), &[LinkType::ETHERNET]);
    assert_eq!(cap.fcs_len(), Some(4));
}

/// Section 1 (little-endian): interface 0 Ethernet at 10^-9 s, interface 1 raw IP at
/// 2^-20 s with a 100 s offset; EPB on each, an NRB (skipped), an SPB, an obsolete PB.
/// Section 2 (big-endian): interface 0 SLL at the default 10^-6 s; one EPB.
fn two_section_pcapng() -> (Vec<u8>, Vec<u64>) {
    let mut v = shb(false);
    v.extend(idb(false, 1, 0, Some(9), None));
    v.extend(idb(false, 101, 0, Some(0x80 | 20), Some(100)));
    let mut offsets = vec![v.len() as u64];
    v.extend(epb(false, 0, 1_700_000_000_123_456_789, 60, &[1, 2, 3]));
    offsets.push(v.len() as u64);
    // 5.5 s in 2^-20 units
    v.extend(epb(false, 1, 5 << 20 | 1 << 19, 5, &[4, 5, 6, 7, 8]));
    v.extend(ng_block(false, 4, &[0, 0, 0, 0])); // NRB with only opt_endofrecord
    offsets.push(v.len() as u64);
    v.extend(spb(false, 2, &[9, 10, 0, 0]));
    offsets.push(v.len() as u64);
    v.extend(pb(false, 0, 42, 1, &[11]));
    v.extend(shb(true));
    v.extend(idb(true, 113, 0, None, None));
    offsets.push(v.len() as u64);
    v.extend(epb(true, 0, 1_000_001, 2, &[12, 13]));
    (v, offsets)
}

#[test]
fn pcapng_sections_interfaces_and_packet_blocks() {
    let (v, offsets) = two_section_pcapng();
    let mut cap = open_bytes(&v).unwrap();
    assert_eq!(cap.format(), FileFormat::PcapNg);
    // The interfaces right after the first section header are read at open: their
    // timestamp resolution is known before the first record (the coarsest, 2^-20 s).
    assert_eq!(
        cap.offset(),
        offsets[0],
        "after the first SHB and its two IDBs"
    );
    assert_eq!(cap.ts_resolution_ns(), 954);
    let mut seen_offsets = vec![];
    let mut recs = vec![];
    loop {
        let before = cap.offset();
        let Some(r) = cap.next_record().unwrap() else {
            break;
        };
        recs.push(Owned {
            ts_ns: r.ts_ns,
            link_type: r.link_type.0,
            interface: r.interface,
            orig_len: r.orig_len,
            data: r.data.to_vec(),
        });
        let _ = before;
        seen_offsets.push(cap.offset());
    }
    let want = vec![
        Owned {
            ts_ns: 1_700_000_000_123_456_789,
            link_type: 1,
            interface: 0,
            orig_len: 60,
            data: vec![1, 2, 3],
        },
        Owned {
            ts_ns: 105_500_000_000,
            link_type: 101,
            interface: 1,
            orig_len: 5,
            data: vec![4, 5, 6, 7, 8],
        },
        // SPB: previous timestamp, interface 0, caplen = min(orig 2, snaplen 0 = none, room 4)
        Owned {
            ts_ns: 105_500_000_000,
            link_type: 1,
            interface: 0,
            orig_len: 2,
            data: vec![9, 10],
        },
        Owned {
            ts_ns: 42,
            link_type: 1,
            interface: 0,
            orig_len: 1,
            data: vec![11],
        },
        Owned {
            ts_ns: 1_000_001_000,
            link_type: 113,
            interface: 0,
            orig_len: 2,
            data: vec![12, 13],
        },
    ];
    assert_eq!(recs, want);
    assert_eq!(
        cap.link_types(),
        &[LinkType(1), LinkType(101), LinkType(113)]
    );
    assert!(cap.big_endian());
    let a = cap.anomalies();
    assert_eq!(a.unknown_blocks_skipped, 1);
    assert_eq!(a.obsolete_packet_blocks, 1);
    assert_eq!(a.simple_packet_blocks, 1);
    assert_eq!(a.sections, 2);
    assert_eq!(cap.offset(), v.len() as u64);
    // offset() after a record is where the next block starts (the NRB follows the 2nd EPB).
    assert_eq!(seen_offsets[0], offsets[1]);
    assert_eq!(seen_offsets[2], offsets[3]);
}

#[test]
fn pcapng_spb_caplen_is_bounded_by_snaplen_and_block() {
    let mut v = shb(false);
    v.extend(idb(false, 1, 3, None, None));
    v.extend(spb(false, 100, &[1, 2, 3, 4, 5, 6, 7, 8])); // snaplen 3 wins
    v.extend(spb(false, 2, &[1, 2, 3, 4])); // orig_len wins
    let mut v2 = shb(false);
    v2.extend(idb(false, 1, 0, None, None));
    v2.extend(spb(false, 100, &[1, 2, 3, 4, 5, 6, 7, 8])); // block room (8) wins
    let (r1, e1) = drain(&mut open_bytes(&v).unwrap());
    let (r2, e2) = drain(&mut open_bytes(&v2).unwrap());
    assert!(e1.is_none() && e2.is_none());
    assert_eq!(r1[0].data, vec![1, 2, 3]);
    assert_eq!(r1[1].data, vec![1, 2]);
    assert_eq!(r2[0].data.len(), 8);
    assert_eq!(r2[0].orig_len, 100);
}

#[test]
fn pcapng_corrupt_block_lengths() {
    let mut good = shb(false);
    good.extend(idb(false, 1, 0, None, None));
    good.extend(epb(false, 0, 1, 1, &[1]));
    let at = good.len() as u64;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            {
                let mut w = W::new(false);
                w.u32(6).u32(8).u32(8);
                w.v
            },
            "below 12",
        ),
        (
            {
                let mut w = W::new(false);
                w.u32(6).u32(14).u32(0).u32(0);
                w.v
            },
            "multiple of 4",
        ),
        (
            {
                let mut w = W::new(false);
                w.u32(6).u32(32 << 20).u32(0);
                w.v
            },
            "16 MiB",
        ),
        (
            {
                let mut b = epb(false, 0, 1, 1, &[1]);
                let n = b.len();
                b[n - 1] = 9;
                b
            },
            "trailing",
        ),
        (epb(false, 5, 1, 1, &[1]), "interface id"),
        (
            {
                let mut b = epb(false, 0, 1, 1, &[1]);
                b[20] = 200;
                b
            },
            "captured length larger",
        ),
    ];
    for (tail, why) in cases {
        let mut v = good.clone();
        v.extend(&tail);
        v.extend(epb(false, 0, 2, 1, &[2]));
        let (recs, err) = drain(&mut open_bytes(&v).unwrap());
        assert_eq!(recs.len(), 1, "{why}");
        assert_eq!(recs[0].data, vec![1]);
        let err = err.unwrap_or_else(|| panic!("{why}: no error"));
        assert!(matches!(err, Error::Corrupt { .. }), "{why}: {err:?}");
        assert_eq!(err.offset(), Some(at), "{why}");
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
}

#[test]
fn pcapng_cut_mid_block() {
    let mut v = shb(false);
    v.extend(idb(false, 1, 0, Some(6), None));
    let at = v.len();
    v.extend(epb(false, 0, 7, 40, &[5; 40]));
    // cut inside the packet data: partial record, then Truncated
    let cut = &v[..at + 28 + 10];
    let (recs, err) = drain(&mut open_bytes(cut).unwrap());
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].data, vec![5; 10]);
    assert_eq!(recs[0].orig_len, 40);
    assert_eq!(recs[0].ts_ns, 7_000);
    let err = err.unwrap();
    assert!(
        matches!(
            err,
            Error::Truncated {
                needed: 72,
                available: 38,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.offset(), Some(at as u64));
    // cut inside the fixed fields: no record
    let (recs, err) = drain(&mut open_bytes(&v[..at + 20]).unwrap());
    assert!(recs.is_empty());
    assert_eq!(err.unwrap().offset(), Some(at as u64));
    // cut inside the block header
    let (recs, err) = drain(&mut open_bytes(&v[..at + 5]).unwrap());
    assert!(recs.is_empty());
    assert!(matches!(
        err.unwrap(),
        Error::Truncated { available: 5, .. }
    ));
}

#[test]
fn pcapng_bad_first_section() {
    let mut v = shb(false);
    v[8] = 0; // byte-order magic
    let err = open_bytes(&v).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadHeader {
                format: "pcapng",
                ..
            }
        ),
        "{err:?}"
    );
    let mut v = shb(false);
    v[12] = 2; // major version 2
    assert!(matches!(
        open_bytes(&v).unwrap_err(),
        Error::BadHeader { .. }
    ));
    assert!(matches!(
        open_bytes(&shb(false)[..20]).unwrap_err(),
        Error::BadHeader { .. }
    ));
}

#[test]
fn pcapng_zero_packets_is_valid() {
    let mut v = shb(false);
    v.extend(idb(false, 1, 0, None, None));
    let mut cap = open_bytes(&v).unwrap();
    assert!(cap.next_record().unwrap().is_none());
    assert_eq!(cap.link_types(), &[LinkType::ETHERNET]);
}

#[test]
fn text_and_empty_inputs() {
    let err = open_bytes(b"Hello, world\n").unwrap_err();
    assert!(matches!(
        err,
        Error::NotACapture {
            magic: [0x48, 0x65, 0x6c, 0x6c],
            len: 4,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("0x48656c6c") && msg.starts_with("test.pcap:"),
        "{msg}"
    );
    assert!(matches!(open_bytes(b"").unwrap_err(), Error::Empty { .. }));
    assert!(matches!(
        open_bytes(b"ab").unwrap_err(),
        Error::NotACapture { len: 2, .. }
    ));
    let empty = temp_file("empty.pcap", b"");
    let text = temp_file("text.pcap", b"#!/bin/sh\necho hi\n");
    for mode in [ReadMode::Read, ReadMode::Mmap] {
        assert!(matches!(
            Capture::open_with(&empty, mode).unwrap_err(),
            Error::Empty { .. }
        ));
        assert!(matches!(
            Capture::open_with(&text, mode).unwrap_err(),
            Error::NotACapture { .. }
        ));
    }
    let missing = Capture::open(Path::new("/nonexistent/x.pcap")).unwrap_err();
    assert!(matches!(missing, Error::Io { offset: None, .. }));
    assert!(std::error::Error::source(&missing).is_some());
    let _ = std::fs::remove_file(empty);
    let _ = std::fs::remove_file(text);
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn zstd_bytes(b: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(b, 1).unwrap()
}

pub(crate) fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("streamscope-capture-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn same_records_through_every_path() {
    let (ng, _) = two_section_pcapng();
    let mut pc = pcap_header(true, true, 65535, 1);
    for i in 0..50u32 {
        pc.extend(pcap_record(
            true,
            i,
            i * 7,
            100,
            &vec![i as u8; (i * 13 % 90) as usize],
        ));
    }
    for (name, plain) in [("ng", ng), ("pcap", pc)] {
        let (want, werr) = drain(&mut open_bytes(&plain).unwrap());
        assert!(werr.is_none());
        assert!(!want.is_empty());
        // two gzip members and two zstd frames
        let mut gz = gzip(&plain[..plain.len() / 2]);
        gz.extend(gzip(&plain[plain.len() / 2..]));
        let mut zs = zstd_bytes(&plain[..plain.len() / 3]);
        zs.extend(zstd_bytes(&plain[plain.len() / 3..]));
        for (kind, bytes, comp) in [
            ("gz", gz, Compression::Gzip),
            ("zst", zs, Compression::Zstd),
            ("raw", plain.clone(), Compression::None),
        ] {
            let mut c = open_bytes(&bytes).unwrap();
            assert_eq!(c.compression(), comp);
            let (got, err) = drain(&mut c);
            assert!(err.is_none(), "{name} {kind}: {err:?}");
            assert_eq!(got, want, "{name} {kind} reader");
            // a compressed name that does not say so: detection is by magic
            let path = temp_file(&format!("{name}-{kind}.cap"), &bytes);
            for mode in [ReadMode::Mmap, ReadMode::Read] {
                let mut c = Capture::open_with(&path, mode).unwrap();
                assert_eq!(c.compression(), comp);
                assert_eq!(c.info().size, Some(bytes.len() as u64));
                assert!(c.info().mtime_ns.unwrap() > 1_500_000_000_000_000_000);
                let fp = c.info().fingerprint.clone().unwrap();
                assert_eq!(fp.len(), 5 + 16);
                assert_eq!(fp, fingerprint(bytes.len() as u64, &bytes, &bytes));
                let (got, err) = drain(&mut c);
                assert!(err.is_none(), "{err:?}");
                assert_eq!(got, want, "{name} {kind} {mode:?}");
                assert_eq!(c.offset(), plain.len() as u64);
            }
            let _ = std::fs::remove_file(path);
        }
    }
}

#[test]
fn fingerprint_covers_size_head_and_tail() {
    // A 3 MiB file: changing a byte in the middle leaves the fingerprint alone,
    // changing one in the last MiB changes it.
    let mut v = pcap_header(false, false, 65535, 1);
    v.resize(3 << 20, 0);
    let p = temp_file("fp.pcap", &v);
    let a = Capture::open(&p)
        .unwrap()
        .info()
        .fingerprint
        .clone()
        .unwrap();
    let mut head = v[..1 << 20].to_vec();
    let tail = v[(2 << 20)..].to_vec();
    assert_eq!(a, fingerprint(3 << 20, &head, &tail));
    head[100] = 1;
    assert_ne!(a, fingerprint(3 << 20, &head, &tail));
    v[(3 << 19) + 5] = 1;
    std::fs::write(&p, &v).unwrap();
    let b = Capture::open(&p)
        .unwrap()
        .info()
        .fingerprint
        .clone()
        .unwrap();
    assert_eq!(a, b);
    let n = v.len();
    v[n - 1] = 1;
    std::fs::write(&p, &v).unwrap();
    let c = Capture::open(&p)
        .unwrap()
        .info()
        .fingerprint
        .clone()
        .unwrap();
    assert_ne!(a, c);
    let _ = std::fs::remove_file(p);
}

#[test]
fn stream_buffer_stays_bounded() {
    // A 5 MiB packet in a pcapng block: the buffer grows to hold it, no further.
    let big = vec![3u8; 5 << 20];
    let mut v = shb(false);
    v.extend(idb(false, 1, 0, None, None));
    for _ in 0..3 {
        v.extend(epb(false, 0, 1, big.len() as u32, &big));
    }
    let mut cap = open_bytes(&v).unwrap();
    let mut n = 0;
    while let Some(r) = cap.next_record().unwrap() {
        assert_eq!(r.data.len(), 5 << 20);
        n += 1;
    }
    assert_eq!(n, 3);
    let cap_bytes = cap.buffer_capacity();
    assert!(
        cap_bytes >= (5 << 20) + 32 && cap_bytes <= (pcapng::MAX_BLOCK_LEN as usize),
        "{cap_bytes}"
    );
    // small records never grow it past one chunk
    let mut cap = open_bytes(&synthetic_pcap(10_000)).unwrap();
    while cap.next_record().unwrap().is_some() {}
    assert_eq!(cap.buffer_capacity(), source::CHUNK);
}

#[test]
fn error_messages_are_one_line_with_path_and_offset() {
    let e = Error::Corrupt {
        path: "a.pcapng".into(),
        offset: 1234,
        what: "pcapng block",
        reason: "block total length below 12",
        value: 8,
    };
    assert_eq!(
        e.to_string(),
        "a.pcapng: corrupt pcapng block at byte 1234: block total length below 12 (value 8)"
    );
    let e = Error::Io {
        path: "b.pcap.gz".into(),
        offset: Some(99),
        source: io::Error::new(io::ErrorKind::InvalidData, "corrupt deflate stream"),
    };
    assert_eq!(e.to_string(), "b.pcap.gz: cannot read input at byte 99");
}

#[test]
fn corrupt_gzip_mid_stream_is_an_io_error_with_offset() {
    let mut pc = pcap_header(false, false, 65535, 1);
    for i in 0..2000u32 {
        pc.extend(pcap_record(false, i, 0, 200, &[i as u8; 200]));
    }
    let gz = gzip(&pc);
    // cut the compressed stream: the decoder's error surfaces at a record offset
    let mut cap = open_bytes(&gz[..gz.len() / 2]).unwrap();
    let (recs, err) = drain(&mut cap);
    assert!(!recs.is_empty() && recs.len() < 2000);
    let err = err.expect("an error");
    assert!(
        matches!(
            err,
            Error::Io {
                offset: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.offset(), Some(24 + 216 * recs.len() as u64));
}
