//! Unit tests with hand-built messages (checksums computed here from RFC 1071), cut and
//! corrupted copies of them, the session tracker's rules, and property tests.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::message::mld2_max_resp_ms;
use super::{
    events, parse_igmp, parse_mld, ChannelSession, ChannelSessions, EndReason, GroupHandle, Kind,
    MulticastError, MulticastEvent, MulticastReader, OtherProtocol, RecordType, SessionConfig,
    Version,
};

const S: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

// ---------------------------------------------------------------------------------------
// Builders

/// RFC 1071 one's-complement sum of 16-bit words (odd length padded with a zero).
fn sum16(mut acc: u32, bytes: &[u8]) -> u32 {
    for ch in bytes.chunks(2) {
        let w = u16::from_be_bytes([ch[0], *ch.get(1).unwrap_or(&0)]);
        acc += u32::from(w);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Sets the IGMP checksum (bytes 2..4) over the whole message.
fn igmp_ck(mut m: Vec<u8>) -> Vec<u8> {
    m[2] = 0;
    m[3] = 0;
    let c = fold(sum16(0, &m));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// Sets the ICMPv6 checksum with the IPv6 pseudo-header (RFC 4443 section 2.3).
fn mld_ck(mut m: Vec<u8>, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    m[2] = 0;
    m[3] = 0;
    let mut acc = sum16(0, &src.octets());
    acc = sum16(acc, &dst.octets());
    acc = sum16(acc, &(m.len() as u32).to_be_bytes());
    acc = sum16(acc, &[0, 0, 0, 58]);
    acc = sum16(acc, &m);
    let c = fold(acc);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

fn v6a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// An 8-byte IGMP message: type, byte 1, group.
fn igmp8(t: u8, b1: u8, group: [u8; 4]) -> Vec<u8> {
    let mut m = vec![t, b1, 0, 0];
    m.extend_from_slice(&group);
    igmp_ck(m)
}

/// An IGMPv3 query (RFC 3376 section 4.1).
fn igmp3_query(code: u8, group: [u8; 4], sources: &[[u8; 4]]) -> Vec<u8> {
    let mut m = vec![0x11, code, 0, 0];
    m.extend_from_slice(&group);
    m.extend_from_slice(&[0x02, 125]); // S=0, QRV=2, QQIC=125
    m.extend_from_slice(&(sources.len() as u16).to_be_bytes());
    for s in sources {
        m.extend_from_slice(s);
    }
    igmp_ck(m)
}

/// A group record (IGMPv3 and MLDv2 share the layout), with `aux` 32-bit words of aux
/// data.
fn record(rt: u8, group: &[u8], sources: &[&[u8]], aux: u8) -> Vec<u8> {
    let mut r = vec![rt, aux];
    r.extend_from_slice(&(sources.len() as u16).to_be_bytes());
    r.extend_from_slice(group);
    for s in sources {
        r.extend_from_slice(s);
    }
    r.extend(std::iter::repeat_n(0xaa, usize::from(aux) * 4));
    r
}

/// An IGMPv3 report (RFC 3376 section 4.2) of records; `count` overrides the stated
/// record count.
fn igmp3_report(records: &[Vec<u8>], count: Option<u16>) -> Vec<u8> {
    let n = count.unwrap_or(records.len() as u16);
    let mut m = vec![0x22, 0, 0, 0, 0, 0];
    m.extend_from_slice(&n.to_be_bytes());
    for r in records {
        m.extend_from_slice(r);
    }
    igmp_ck(m)
}

const HOST6: &str = "fe80::1";
const ALL_MLDV2: &str = "ff02::16";

/// A 24-byte MLDv1 message (RFC 2710 section 3).
fn mld1(t: u8, delay: u16, group: &str, src: &str, dst: &str) -> Vec<u8> {
    let mut m = vec![t, 0, 0, 0];
    m.extend_from_slice(&delay.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&v6a(group).octets());
    mld_ck(m, v6a(src), v6a(dst))
}

/// An MLDv2 query (RFC 3810 section 5.1).
fn mld2_query(code: u16, group: &str, sources: &[&str]) -> Vec<u8> {
    let mut m = vec![130, 0, 0, 0];
    m.extend_from_slice(&code.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&v6a(group).octets());
    m.extend_from_slice(&[0x02, 125]);
    m.extend_from_slice(&(sources.len() as u16).to_be_bytes());
    for s in sources {
        m.extend_from_slice(&v6a(s).octets());
    }
    mld_ck(m, v6a("fe80::99"), v6a("ff02::1"))
}

/// An MLDv2 report (RFC 3810 section 5.2).
fn mld2_report(records: &[Vec<u8>], count: Option<u16>) -> Vec<u8> {
    let n = count.unwrap_or(records.len() as u16);
    let mut m = vec![143, 0, 0, 0, 0, 0];
    m.extend_from_slice(&n.to_be_bytes());
    for r in records {
        m.extend_from_slice(r);
    }
    mld_ck(m, v6a(HOST6), v6a(ALL_MLDV2))
}

fn collect_events<'a>(
    m: &super::MulticastMessage<'a>,
    src: IpAddr,
    dst: IpAddr,
) -> Vec<MulticastEvent<'a>> {
    let mut v = Vec::new();
    events(m, 7 * S, src, dst, &mut |e| v.push(e));
    v
}

// ---------------------------------------------------------------------------------------
// IGMP

#[test]
fn igmp_v1_query_has_zero_max_resp() {
    let b = igmp8(0x11, 0, [0, 0, 0, 0]);
    let m = parse_igmp(&b).unwrap();
    assert_eq!(m.version, Some(Version::Igmp1));
    assert_eq!(m.kind, Kind::Query);
    assert_eq!(m.group, None, "general query");
    assert_eq!(m.max_resp_ms, None);
    assert!(m.checksum_ok(v4([0; 4]), v4([0; 4])));
}

#[test]
fn igmp_v2_queries_general_and_group_specific() {
    let b = igmp8(0x11, 100, [0, 0, 0, 0]);
    let m = parse_igmp(&b).unwrap();
    assert_eq!(
        (m.version, m.kind, m.group),
        (Some(Version::Igmp2), Kind::Query, None)
    );
    assert_eq!(m.max_resp_ms, Some(10_000));
    let b = igmp8(0x11, 10, [239, 1, 2, 3]);
    let m = parse_igmp(&b).unwrap();
    assert_eq!(m.group, Some(v4([239, 1, 2, 3])));
    assert_eq!(m.max_resp_ms, Some(1_000));
}

#[test]
fn igmp_v3_query_with_sources_and_float_max_resp_code() {
    let b = igmp3_query(0x80, [232, 1, 1, 1], &[[10, 0, 0, 1], [10, 0, 0, 2]]);
    let m = parse_igmp(&b).unwrap();
    assert_eq!((m.version, m.kind), (Some(Version::Igmp3), Kind::Query));
    assert_eq!(m.group, Some(v4([232, 1, 1, 1])));
    // RFC 3376 4.1.1: 0x80 = exp 0, mant 0 → (0x10) << 3 = 128 tenths.
    assert_eq!(m.max_resp_ms, Some(12_800));
    let s: Vec<IpAddr> = m.query_sources().iter().collect();
    assert_eq!(s, vec![v4([10, 0, 0, 1]), v4([10, 0, 0, 2])]);
    assert!(m.checksum_ok(v4([0; 4]), v4([0; 4])));
    // A general v3 query, linear code.
    let b = igmp3_query(100, [0; 4], &[]);
    let m = parse_igmp(&b).unwrap();
    assert_eq!((m.group, m.max_resp_ms), (None, Some(10_000)));
    assert!(m.query_sources().is_empty());
}

#[test]
fn igmp_reports_and_leave() {
    for (t, v, k) in [
        (0x12, Version::Igmp1, Kind::Report),
        (0x16, Version::Igmp2, Kind::Report),
        (0x17, Version::Igmp2, Kind::Leave),
    ] {
        let b = igmp8(t, 0, [239, 0, 0, 7]);
        let m = parse_igmp(&b).unwrap();
        assert_eq!((m.version, m.kind), (Some(v), k), "type {t:#x}");
        assert_eq!(m.group, Some(v4([239, 0, 0, 7])));
        assert_eq!(m.record_count(), 0);
        assert_eq!(m.records().count(), 0);
        assert!(m.checksum_ok(v4([0; 4]), v4([0; 4])));
    }
}

#[test]
fn igmp_other_types_are_classified_not_errors() {
    for (t, p) in [
        (0x13, OtherProtocol::Dvmrp),
        (0x14, OtherProtocol::PimV1),
        (0x15, OtherProtocol::CiscoTrace),
        (0x1e, OtherProtocol::Mtrace),
        (0x1f, OtherProtocol::Mtrace),
        (0x30, OtherProtocol::RouterDiscovery),
        (0xfc, OtherProtocol::Rgmp),
        (0xff, OtherProtocol::Rgmp),
        (0x01, OtherProtocol::Unknown(0x01)),
    ] {
        let b = igmp8(t, 0, [224, 0, 0, 25]);
        let m = parse_igmp(&b).unwrap();
        assert_eq!(
            (m.kind, m.version, m.other),
            (Kind::Other, None, Some(p)),
            "{t:#x}"
        );
        assert_eq!(m.group, None);
    }
    assert_eq!(OtherProtocol::Rgmp.name(), "rgmp");
}

#[test]
fn igmp_v3_report_records_sources_and_aux_data() {
    let recs = [
        record(4, &[239, 1, 1, 1], &[], 0),
        record(1, &[232, 2, 2, 2], &[&[10, 0, 0, 1], &[10, 0, 0, 2]], 1),
        record(6, &[232, 3, 3, 3], &[&[10, 0, 0, 9]], 0),
    ];
    let b = igmp3_report(&recs, None);
    let m = parse_igmp(&b).unwrap();
    assert_eq!(
        (m.version, m.kind, m.group),
        (Some(Version::Igmp3), Kind::Report, None)
    );
    assert_eq!((m.declared_records(), m.record_count()), (3, 3));
    assert_eq!(m.record_error(), None);
    let r: Vec<_> = m.records().collect();
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].record_type, RecordType::ChangeToExclude);
    assert_eq!(r[0].group, v4([239, 1, 1, 1]));
    assert!(r[0].sources.is_empty());
    assert_eq!(r[1].record_type, RecordType::ModeIsInclude);
    assert_eq!(
        r[1].sources.iter().collect::<Vec<_>>(),
        vec![v4([10, 0, 0, 1]), v4([10, 0, 0, 2])]
    );
    // The aux data of record 1 was skipped: record 2 reads right.
    assert_eq!(r[2].record_type, RecordType::BlockOldSources);
    assert_eq!(r[2].group, v4([232, 3, 3, 3]));
    assert_eq!(
        r[2].sources.iter().collect::<Vec<_>>(),
        vec![v4([10, 0, 0, 9])]
    );
    assert!(m.checksum_ok(v4([0; 4]), v4([0; 4])));

    let ev = collect_events(&m, v4([192, 168, 1, 5]), v4([224, 0, 0, 22]));
    assert_eq!(ev.len(), 3, "one event per record");
    assert_eq!(ev[1].group, Some(v4([232, 2, 2, 2])));
    assert_eq!(ev[1].record_type, Some(RecordType::ModeIsInclude));
    assert_eq!(ev[1].sources.len(), 2);
    assert_eq!(ev[1].host, v4([192, 168, 1, 5]));
    assert!(ev
        .iter()
        .all(|e| e.checksum_ok && !e.malformed && e.ts_ns == 7 * S));
}

#[test]
fn record_type_names_and_codes() {
    let names: Vec<&str> = (1..=7).map(|c| RecordType::from_code(c).name()).collect();
    assert_eq!(
        names,
        [
            "mode_is_include",
            "mode_is_exclude",
            "change_to_include",
            "change_to_exclude",
            "allow_new_sources",
            "block_old_sources",
            "unknown"
        ]
    );
    for c in 0..=255u8 {
        assert_eq!(RecordType::from_code(c).code(), c);
    }
}

#[test]
fn igmp_bad_checksum_is_reported_and_counted() {
    let mut b = igmp8(0x16, 0, [239, 0, 0, 7]);
    b[3] ^= 0x55;
    let m = parse_igmp(&b).unwrap();
    assert!(!m.checksum_ok(v4([0; 4]), v4([0; 4])));
    let mut r = MulticastReader::new();
    let mut ev = Vec::new();
    r.on_igmp(1, v4([10, 0, 0, 1]), v4([239, 0, 0, 7]), &b, &mut |e| {
        ev.push(e)
    });
    assert_eq!(ev.len(), 1);
    assert!(!ev[0].checksum_ok);
    assert_eq!(r.stats().bad_checksum, 1);
    assert_eq!(r.stats().igmp2, 1);
}

#[test]
fn igmp_errors_by_kind() {
    // Too short.
    let b = igmp8(0x16, 0, [239, 0, 0, 7]);
    assert_eq!(
        parse_igmp(&b[..7]).unwrap_err(),
        MulticastError::TooShort {
            len: 7,
            required: 8
        }
    );
    assert!(matches!(
        parse_igmp(&[]),
        Err(MulticastError::TooShort { len: 0, .. })
    ));
    // A query of 10 bytes: no version (RFC 3376 7.1).
    let mut q = igmp8(0x11, 100, [0; 4]);
    q.extend_from_slice(&[0, 0]);
    assert_eq!(
        parse_igmp(&q).unwrap_err(),
        MulticastError::BadQueryLength { len: 10 }
    );
    // A v3 query stating 3 sources with 2 present.
    let mut q = igmp3_query(100, [0; 4], &[[1, 1, 1, 1], [2, 2, 2, 2]]);
    q[11] = 3;
    assert_eq!(
        parse_igmp(&q).unwrap_err(),
        MulticastError::TruncatedSources {
            len: 20,
            required: 24
        }
    );
    let mut r = MulticastReader::new();
    let mut n = 0;
    for b in [&b[..7], &q[..]] {
        r.on_igmp(0, v4([1; 4]), v4([2; 4]), b, &mut |_| n += 1);
    }
    assert_eq!(n, 0, "no event for an unreadable message");
    assert_eq!((r.stats().too_short, r.stats().truncated_sources), (1, 1));
    assert_eq!(r.stats().malformed(), 2);
}

#[test]
fn igmp_truncated_record_keeps_the_records_before_it() {
    let recs = [
        record(2, &[239, 1, 1, 1], &[], 0),
        record(1, &[232, 2, 2, 2], &[&[10, 0, 0, 1], &[10, 0, 0, 2]], 0),
    ];
    let full = igmp3_report(&recs, None);
    // Cut inside the second record's sources.
    let cut = &full[..full.len() - 3];
    let m = parse_igmp(cut).unwrap();
    assert_eq!((m.declared_records(), m.record_count()), (2, 2));
    assert_eq!(
        m.record_error(),
        Some(MulticastError::TruncatedRecord {
            index: 1,
            len: 13,
            required: 16
        })
    );
    // The cut record: type and group, and the one source wholly there (of 2).
    let r: Vec<_> = m.records().collect();
    assert_eq!((r[0].cut, r[1].cut), (false, true));
    assert_eq!(
        (r[1].record_type, r[1].group),
        (RecordType::ModeIsInclude, v4([232, 2, 2, 2]))
    );
    assert_eq!(
        r[1].sources.iter().collect::<Vec<_>>(),
        vec![v4([10, 0, 0, 1])]
    );
    let ev = collect_events(&m, v4([10, 1, 1, 1]), v4([224, 0, 0, 22]));
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].group, Some(v4([239, 1, 1, 1])));
    assert_eq!(
        (ev[1].group, ev[1].sources.len()),
        (Some(v4([232, 2, 2, 2])), 1)
    );
    assert!(ev[0].malformed && ev[1].malformed);
    // Cut inside the second record's group: not shown.
    let m = parse_igmp(&full[..20]).unwrap();
    assert_eq!(m.record_count(), 1);
    assert!(m.record_error().is_some());
    // A count larger than the records present: cut at the first missing one.
    let b = igmp3_report(&recs, Some(5));
    let m = parse_igmp(&b).unwrap();
    assert_eq!(m.record_count(), 2);
    assert_eq!(
        m.record_error(),
        Some(MulticastError::TruncatedRecord {
            index: 2,
            len: 0,
            required: 8
        })
    );
    // Every record cut: still one event, with no group.
    let m = parse_igmp(&full[..12]).unwrap();
    let ev = collect_events(&m, v4([10, 1, 1, 1]), v4([224, 0, 0, 22]));
    assert_eq!((ev.len(), ev[0].group, ev[0].malformed), (1, None, true));
    let mut r = MulticastReader::new();
    r.on_igmp(0, v4([1; 4]), v4([2; 4]), cut, &mut |_| {});
    assert_eq!(
        (r.stats().truncated_records, r.stats().group_records),
        (1, 2)
    );
}

#[test]
fn igmp_v3_report_without_records_gives_one_event() {
    let b = igmp3_report(&[], None);
    let m = parse_igmp(&b).unwrap();
    let ev = collect_events(&m, v4([10, 1, 1, 1]), v4([224, 0, 0, 22]));
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].group, ev[0].record_type, ev[0].malformed),
        (None, None, false)
    );
}

// ---------------------------------------------------------------------------------------
// MLD

#[test]
fn mld_v1_query_report_done() {
    let q = mld1(130, 10_000, "::", "fe80::99", "ff02::1");
    let m = parse_mld(&q).unwrap();
    assert_eq!(
        (m.version, m.kind, m.group),
        (Some(Version::Mld1), Kind::Query, None)
    );
    assert_eq!(m.max_resp_ms, Some(10_000));
    assert!(m.checksum_ok(v6("fe80::99"), v6("ff02::1")));
    assert!(m.is_mld());

    let r = mld1(131, 0, "ff02::1:ff9a:3b7c", HOST6, "ff02::1:ff9a:3b7c");
    let m = parse_mld(&r).unwrap();
    assert_eq!((m.version, m.kind), (Some(Version::Mld1), Kind::Report));
    assert_eq!(m.group, Some(v6("ff02::1:ff9a:3b7c")));
    assert!(m.checksum_ok(v6(HOST6), v6("ff02::1:ff9a:3b7c")));
    // The pseudo-header counts: other addresses, a wrong checksum; IPv4 ones, false.
    assert!(!m.checksum_ok(v6("fe80::2"), v6("ff02::1:ff9a:3b7c")));
    assert!(!m.checksum_ok(v4([1; 4]), v4([2; 4])));

    let d = mld1(132, 0, "ff05::2", HOST6, "ff02::2");
    let m = parse_mld(&d).unwrap();
    assert_eq!(
        (m.version, m.kind, m.group),
        (Some(Version::Mld1), Kind::Leave, Some(v6("ff05::2")))
    );
}

#[test]
fn mld_v2_query_with_sources() {
    let q = mld2_query(
        0x8000 | 0x1234,
        "ff3e::8000:1",
        &["2001:db8::1", "2001:db8::2"],
    );
    let m = parse_mld(&q).unwrap();
    assert_eq!((m.version, m.kind), (Some(Version::Mld2), Kind::Query));
    assert_eq!(m.group, Some(v6("ff3e::8000:1")));
    // RFC 3810 5.1.3: exp 1, mant 0x234 → (0x1234) << 4.
    assert_eq!(m.max_resp_ms, Some(0x1234 << 4));
    assert_eq!(m.query_sources().len(), 2);
    assert_eq!(m.query_sources().iter().nth(1), Some(v6("2001:db8::2")));
    assert!(m.checksum_ok(v6("fe80::99"), v6("ff02::1")));
    assert_eq!(mld2_max_resp_ms(1000), 1000);
    assert_eq!(mld2_max_resp_ms(0x8000), 0x1000 << 3);
    assert_eq!(mld2_max_resp_ms(0xffff), 0x1fff << 10);
}

#[test]
fn mld_v2_report_records() {
    let recs = [
        record(
            1,
            &v6a("ff3e::1").octets(),
            &[&v6a("2001:db8::1").octets()],
            0,
        ),
        record(4, &v6a("ff05::1:3").octets(), &[], 2),
        record(3, &v6a("ff02::fb").octets(), &[], 0),
    ];
    let b = mld2_report(&recs, None);
    let m = parse_mld(&b).unwrap();
    assert_eq!(
        (m.version, m.kind, m.group),
        (Some(Version::Mld2), Kind::Report, None)
    );
    assert_eq!(m.record_count(), 3);
    let r: Vec<_> = m.records().collect();
    assert_eq!(r[0].record_type, RecordType::ModeIsInclude);
    assert_eq!(
        r[0].sources.iter().collect::<Vec<_>>(),
        vec![v6("2001:db8::1")]
    );
    assert_eq!(
        (r[1].record_type, r[1].group),
        (RecordType::ChangeToExclude, v6("ff05::1:3"))
    );
    assert_eq!(
        (r[2].record_type, r[2].group),
        (RecordType::ChangeToInclude, v6("ff02::fb"))
    );
    assert!(m.checksum_ok(v6(HOST6), v6(ALL_MLDV2)));
    let ev = collect_events(&m, v6(HOST6), v6(ALL_MLDV2));
    assert_eq!(ev.len(), 3);
    assert!(ev
        .iter()
        .all(|e| e.checksum_ok && e.version == Some(Version::Mld2)));
}

#[test]
fn mld_errors_by_kind() {
    let r = mld1(131, 0, "ff02::1:ff9a:3b7c", HOST6, "ff02::1");
    assert_eq!(
        parse_mld(&r[..23]).unwrap_err(),
        MulticastError::TooShort {
            len: 23,
            required: 24
        }
    );
    assert!(matches!(
        parse_mld(&[]),
        Err(MulticastError::TooShort { .. })
    ));
    let mut q = mld1(130, 1000, "::", "fe80::99", "ff02::1");
    q.push(0);
    assert_eq!(
        parse_mld(&q).unwrap_err(),
        MulticastError::BadQueryLength { len: 25 }
    );
    let mut q = mld2_query(1000, "::", &["2001:db8::1"]);
    q.truncate(q.len() - 1);
    assert_eq!(
        parse_mld(&q).unwrap_err(),
        MulticastError::TruncatedSources {
            len: 43,
            required: 44
        }
    );
    assert_eq!(
        parse_mld(&[128, 0, 0, 0, 0, 0, 0, 0]).unwrap_err(),
        MulticastError::NotMld { message_type: 128 }
    );
    assert_eq!(
        parse_mld(&[143, 0, 0]).unwrap_err(),
        MulticastError::TooShort {
            len: 3,
            required: 8
        }
    );
    // A cut MLDv2 record.
    let recs = [
        record(2, &v6a("ff05::1").octets(), &[], 0),
        record(
            5,
            &v6a("ff3e::1").octets(),
            &[&v6a("2001:db8::1").octets()],
            0,
        ),
    ];
    let b = mld2_report(&recs, None);
    let m = parse_mld(&b[..b.len() - 1]).unwrap();
    assert_eq!(m.record_count(), 2);
    let last = m.records().last().unwrap();
    assert_eq!(
        (last.cut, last.record_type, last.sources.len()),
        (true, RecordType::AllowNewSources, 0)
    );
    assert_eq!(
        m.record_error(),
        Some(MulticastError::TruncatedRecord {
            index: 1,
            len: 35,
            required: 36
        })
    );
    let mut r = MulticastReader::new();
    r.on_mld(0, v6(HOST6), v6(ALL_MLDV2), &b[..b.len() - 1], &mut |_| {});
    r.on_mld(0, v6(HOST6), v6(ALL_MLDV2), &[128, 0, 0, 0], &mut |_| {});
    let s = r.stats();
    assert_eq!((s.mld_messages, s.truncated_records, s.not_mld), (1, 1, 1));
    // The cut changed the length in the pseudo-header: the checksum no longer holds.
    assert_eq!(s.bad_checksum, 1);
    assert_eq!(s.malformed(), 0);
}

#[test]
fn error_display_and_kind_names() {
    let e = MulticastError::TruncatedRecord {
        index: 2,
        len: 3,
        required: 8,
    };
    assert_eq!(e.kind_name(), "truncated_record");
    assert_eq!(e.to_string(), "group record 2 needs 8 bytes, 3 left");
}

// ---------------------------------------------------------------------------------------
// Sessions

const G: [u8; 4] = [239, 1, 1, 1];
const H1: [u8; 4] = [10, 0, 0, 1];
const H2: [u8; 4] = [10, 0, 0, 2];
const SRC: [u8; 4] = [192, 0, 2, 1];
const SRC2: [u8; 4] = [192, 0, 2, 2];

/// Runs one IGMP message through the reader and the tracker.
struct Rig {
    reader: MulticastReader,
    sessions: ChannelSessions,
    out: Vec<ChannelSession>,
    /// Each flow's handle, by (group, source).
    handles: std::collections::HashMap<([u8; 4], [u8; 4]), GroupHandle>,
}

impl Rig {
    fn new(config: SessionConfig) -> Rig {
        Rig {
            reader: MulticastReader::new(),
            sessions: ChannelSessions::new(config),
            out: Vec::new(),
            handles: Default::default(),
        }
    }

    fn igmp(&mut self, ts: i64, host: [u8; 4], dst: [u8; 4], msg: &[u8]) {
        let (sessions, out) = (&mut self.sessions, &mut self.out);
        self.reader.on_igmp(ts, v4(host), v4(dst), msg, &mut |e| {
            sessions.on_event(&e, &mut |s| out.push(s));
        });
    }

    fn report(&mut self, ts: i64, host: [u8; 4], group: [u8; 4]) {
        self.igmp(ts, host, group, &igmp8(0x16, 0, group));
    }

    fn leave(&mut self, ts: i64, host: [u8; 4], group: [u8; 4]) {
        self.igmp(ts, host, [224, 0, 0, 2], &igmp8(0x17, 0, group));
    }

    fn v3(&mut self, ts: i64, host: [u8; 4], rt: u8, group: [u8; 4], sources: &[[u8; 4]]) {
        let s: Vec<&[u8]> = sources.iter().map(|s| &s[..]).collect();
        let b = igmp3_report(&[record(rt, &group, &s, 0)], None);
        self.igmp(ts, host, [224, 0, 0, 22], &b);
    }

    /// A packet of the flow from `source` to `group`, with that flow's handle (kept
    /// across joins and leaves, as the inspector keeps it).
    fn packet(&mut self, ts: i64, group: [u8; 4], source: [u8; 4], bytes: u64) {
        let handle = self.handles.entry((group, source)).or_default();
        self.sessions
            .on_group_packet(ts, v4(group), v4(source), bytes, handle);
    }

    /// A packet looked up afresh: what [`Rig::packet`] must give whatever the handle.
    fn packet_fresh(&mut self, ts: i64, group: [u8; 4], source: [u8; 4], bytes: u64) {
        let mut handle = GroupHandle::default();
        self.sessions
            .on_group_packet(ts, v4(group), v4(source), bytes, &mut handle);
    }

    fn finish(&mut self, ts: i64) -> Vec<ChannelSession> {
        let out = &mut self.out;
        self.sessions.finish(ts, &mut |s| out.push(s));
        std::mem::take(&mut self.out)
    }
}

#[test]
fn session_join_refresh_leave() {
    let mut r = Rig::new(SessionConfig::default());
    r.report(10 * S, H1, G);
    r.report(70 * S, H1, G); // refresh
    assert_eq!(r.sessions.open_sessions(), 1);
    r.leave(100 * S, H1, G);
    assert_eq!(r.sessions.open_sessions(), 0);
    let out = r.finish(200 * S);
    assert_eq!(out.len(), 1);
    let s = out[0];
    assert_eq!((s.host, s.group, s.source), (v4(H1), v4(G), None));
    assert_eq!(
        (s.join_ts_ns, s.last_report_ts_ns, s.leave_ts_ns),
        (10 * S, 70 * S, 100 * S)
    );
    assert_eq!(
        (s.end, s.duration_ns, s.reports),
        (EndReason::Leave, 90 * S, 2)
    );
    assert_eq!(s.version, Version::Igmp2);
    assert_eq!((s.zap_ns, s.bytes, s.mean_bps), (None, 0, Some(0.0)));
    let st = r.sessions.stats();
    assert_eq!((st.opened, st.refreshed, st.ended_leave), (1, 1, 1));
    // A leave for nothing is counted.
    r.leave(300 * S, H2, G);
    assert_eq!(r.sessions.stats().unmatched_leaves, 1);
}

#[test]
fn session_timeout_after_membership_interval_unless_refreshed() {
    let mut r = Rig::new(SessionConfig::default());
    r.report(0, H1, G);
    r.report(200 * S, H1, G); // refresh: due at 460 s
    r.report(0, H2, G); // never refreshed: due at 260 s
    r.report(300 * S, H1, [239, 9, 9, 9]); // time moves on: H2 expires
    assert_eq!(r.out.len(), 1);
    let s = r.out[0];
    assert_eq!(
        (s.host, s.end, s.leave_ts_ns),
        (v4(H2), EndReason::Timeout, 260 * S)
    );
    assert_eq!(r.sessions.open_sessions(), 2);
    // At the capture's end (500 s): H1's G ran out at 460 s, the other is still on.
    let out = r.finish(500 * S);
    assert_eq!(out.len(), 3);
    let h1g = out
        .iter()
        .find(|s| s.host == v4(H1) && s.group == v4(G))
        .unwrap();
    assert_eq!((h1g.end, h1g.leave_ts_ns), (EndReason::Timeout, 460 * S));
    let other = out.iter().find(|s| s.group == v4([239, 9, 9, 9])).unwrap();
    assert_eq!(
        (other.end, other.leave_ts_ns),
        (EndReason::CaptureEnd, 500 * S)
    );
    assert_eq!(other.duration_ns, 200 * S);
}

#[test]
fn session_timeout_is_configurable() {
    let mut r = Rig::new(SessionConfig {
        membership_interval_ns: 5 * S,
        ..SessionConfig::default()
    });
    r.report(0, H1, G);
    let mut out = Vec::new();
    r.sessions.expire(5 * S - 1, &mut |s| out.push(s));
    assert!(out.is_empty());
    r.sessions.expire(5 * S, &mut |s| out.push(s));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].end, out[0].leave_ts_ns),
        (EndReason::Timeout, 5 * S)
    );
}

#[test]
fn zap_time_and_bytes_across_two_hosts_on_one_group() {
    let mut r = Rig::new(SessionConfig::default());
    r.packet(S, G, SRC, 999); // before any join: not counted
    r.report(10 * S, H1, G);
    r.packet(10 * S + 40 * MS, G, SRC, 1000); // H1's first packet: zap 40 ms
    r.packet(11 * S, G, SRC, 1000);
    r.report(12 * S, H2, G);
    r.packet(12 * S + 300 * MS, G, SRC, 1000); // H2's first packet: zap 300 ms
    r.packet(13 * S, [239, 7, 7, 7], SRC, 5000); // another group
    r.packet(14 * S, G, SRC, 1000);
    r.leave(20 * S, H1, G);
    r.packet(21 * S, G, SRC, 1000); // only H2 is joined
    let out = r.finish(30 * S);
    assert_eq!(out.len(), 2);
    let h1 = out.iter().find(|s| s.host == v4(H1)).unwrap();
    let h2 = out.iter().find(|s| s.host == v4(H2)).unwrap();
    assert_eq!(
        (h1.zap_ns, h1.first_packet_ts_ns),
        (Some(40 * MS), Some(10 * S + 40 * MS))
    );
    assert_eq!((h1.packets, h1.bytes), (4, 4000));
    assert_eq!(h1.mean_bps, Some(4000.0 * 8.0 / 10.0));
    assert_eq!(h2.zap_ns, Some(300 * MS));
    assert_eq!(
        (h2.packets, h2.bytes, h2.end),
        (3, 3000, EndReason::CaptureEnd)
    );
    assert_eq!(h2.mean_bps, Some(3000.0 * 8.0 / 18.0));
    assert_eq!(r.sessions.stats().group_packets, 5);
}

#[test]
fn bytes_stop_at_the_timeout_not_at_the_next_event() {
    let mut r = Rig::new(SessionConfig {
        membership_interval_ns: 10 * S,
        ..SessionConfig::default()
    });
    r.report(0, H1, G);
    r.packet(5 * S, G, SRC, 100);
    r.packet(15 * S, G, SRC, 100); // after the timeout at 10 s
    let out = r.finish(20 * S);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].end, out[0].leave_ts_ns, out[0].bytes),
        (EndReason::Timeout, 10 * S, 100)
    );
}

/// A flow's handle outlives its group's counter: after the group's last session ended
/// and another group's counter took its place, the flow's packets count for nobody, and
/// once its group is joined again they count there, not in the other group.
#[test]
fn a_stale_handle_counts_for_nobody_else() {
    const G2: [u8; 4] = [239, 1, 1, 2];
    let mut r = Rig::new(SessionConfig::default());
    r.report(S, H1, G);
    r.packet(2 * S, G, SRC, 100);
    r.leave(3 * S, H1, G);
    r.report(4 * S, H2, G2);
    r.packet(5 * S, G, SRC, 1_000); // no one joined to G
    r.packet(6 * S, G2, SRC2, 10);
    r.report(7 * S, H1, G);
    r.packet(8 * S, G, SRC, 10_000);
    r.packet(9 * S, G2, SRC2, 20);
    let mut out = r.finish(10 * S);
    out.sort_by_key(|s| s.join_ts_ns);
    let facts: Vec<_> = out
        .iter()
        .map(|s| (s.host, s.group, s.join_ts_ns, s.packets, s.bytes))
        .collect();
    assert_eq!(
        facts,
        [
            (v4(H1), v4(G), S, 1, 100),
            (v4(H2), v4(G2), 4 * S, 2, 30),
            (v4(H1), v4(G), 7 * S, 1, 10_000),
        ]
    );
}

#[test]
fn ssm_source_specific_sessions() {
    let mut r = Rig::new(SessionConfig::default());
    // H1 joins (G, SRC) and (G, SRC2) by ALLOW, H2 by CHANGE_TO_INCLUDE {SRC}.
    r.v3(S, H1, 5, G, &[SRC, SRC2]);
    r.v3(S, H2, 3, G, &[SRC]);
    assert_eq!(r.sessions.open_sessions(), 3);
    r.packet(2 * S, G, SRC, 100);
    r.packet(3 * S, G, SRC2, 7);
    r.packet(4 * S, G, [192, 0, 2, 99], 50_000); // a source nobody asked for
                                                 // Current-state IS_IN refreshes.
    r.v3(5 * S, H1, 1, G, &[SRC]);
    // H1 blocks SRC2.
    r.v3(6 * S, H1, 6, G, &[SRC2]);
    r.packet(7 * S, G, SRC2, 7);
    // H2 leaves with TO_IN {}.
    r.v3(8 * S, H2, 3, G, &[]);
    let mut out = r.finish(10 * S);
    out.sort_by_key(|s| (s.host, s.source));
    assert_eq!(out.len(), 3);
    let (a, b, c) = (out[0], out[1], out[2]);
    assert_eq!(
        (a.host, a.source, a.end),
        (v4(H1), Some(v4(SRC)), EndReason::CaptureEnd)
    );
    assert_eq!(
        (a.bytes, a.packets, a.zap_ns, a.reports),
        (100, 1, Some(S), 2)
    );
    assert_eq!(
        (b.host, b.source, b.end, b.leave_ts_ns),
        (v4(H1), Some(v4(SRC2)), EndReason::Leave, 6 * S)
    );
    assert_eq!((b.bytes, b.zap_ns), (7, Some(2 * S)));
    assert_eq!(
        (c.host, c.source, c.end, c.leave_ts_ns),
        (v4(H2), Some(v4(SRC)), EndReason::Leave, 8 * S)
    );
    assert_eq!((c.bytes, c.version), (100, Version::Igmp3));
}

#[test]
fn mode_changes_replace_sessions() {
    let mut r = Rig::new(SessionConfig::default());
    // H1 any-source join by TO_EX {}, then switches to SSM with TO_IN {SRC}.
    r.v3(S, H1, 4, G, &[]);
    r.v3(2 * S, H1, 3, G, &[SRC]);
    assert_eq!(r.out.len(), 1);
    assert_eq!((r.out[0].source, r.out[0].end), (None, EndReason::Replaced));
    // Back to any-source with IS_EX {SRC2}: the source-specific session is replaced.
    r.v3(3 * S, H1, 2, G, &[SRC2]);
    assert_eq!(r.out.len(), 2);
    assert_eq!(
        (r.out[1].source, r.out[1].end),
        (Some(v4(SRC)), EndReason::Replaced)
    );
    assert_eq!(r.sessions.open_sessions(), 1);
    assert_eq!(r.sessions.stats().ended_replaced, 2);
    // TO_IN {} with no session: an unmatched leave.
    r.v3(4 * S, H2, 3, G, &[]);
    assert_eq!(r.sessions.stats().unmatched_leaves, 1);
}

#[test]
fn mld_sessions_from_v1_and_v2() {
    let mut rd = MulticastReader::new();
    let mut ss = ChannelSessions::new(SessionConfig::default());
    let mut out = Vec::new();
    let g = "ff3e::1234";
    let rep = mld1(131, 0, g, HOST6, g);
    let done = mld1(132, 0, g, HOST6, "ff02::2");
    let rec = [record(4, &v6a("ff05::1").octets(), &[], 0)];
    let v2 = mld2_report(&rec, None);
    for (ts, msg, dst) in [
        (S, &rep, g),
        (2 * S, &v2, ALL_MLDV2),
        (5 * S, &done, "ff02::2"),
    ] {
        rd.on_mld(ts, v6(HOST6), v6(dst), msg, &mut |e| {
            ss.on_event(&e, &mut |s| out.push(s));
        });
    }
    let mut handle = GroupHandle::default();
    ss.on_group_packet(3 * S, v6("ff05::1"), v6("2001:db8::5"), 1316, &mut handle);
    ss.finish(9 * S, &mut |s| out.push(s));
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].group, out[0].end, out[0].version),
        (v6(g), EndReason::Leave, Version::Mld1)
    );
    assert_eq!((out[0].duration_ns, out[0].bytes), (4 * S, 0));
    assert_eq!(
        (out[1].group, out[1].end, out[1].version),
        (v6("ff05::1"), EndReason::CaptureEnd, Version::Mld2)
    );
    assert_eq!((out[1].bytes, out[1].zap_ns), (1316, Some(S)));
}

#[test]
fn session_cap_refuses_and_counts() {
    let mut r = Rig::new(SessionConfig {
        max_sessions: 3,
        ..SessionConfig::default()
    });
    for i in 0..10u8 {
        r.report(S, [10, 0, 0, i], G);
    }
    assert_eq!(r.sessions.open_sessions(), 3);
    assert_eq!(r.sessions.stats().refused, 7);
    // A refresh of an open session is not refused.
    r.report(2 * S, [10, 0, 0, 0], G);
    assert_eq!(r.sessions.stats().refreshed, 1);
    // After a leave there is room again.
    r.leave(3 * S, [10, 0, 0, 1], G);
    r.report(4 * S, [10, 0, 0, 9], G);
    assert_eq!(r.sessions.open_sessions(), 3);
    assert_eq!(r.finish(5 * S).len(), 4);
    assert_eq!(r.sessions.internal_sizes(), (0, 0, 0, 0));
}

#[test]
fn join_leave_churn_does_not_grow_the_tracker() {
    let mut r = Rig::new(SessionConfig::default());
    r.report(0, H2, G); // one long session keeps the group's counter alive
    for i in 0..10_000i64 {
        r.report(i * MS + 1, H1, G);
        r.leave(i * MS + 2, H1, G);
    }
    let (index, counters, expiry, waiting) = r.sessions.internal_sizes();
    assert_eq!((index, counters), (1, 1));
    assert!(expiry <= 67, "expiry heap {expiry}");
    assert_eq!(waiting, 1, "only H2 waits for a first packet");
    assert_eq!(r.out.len(), 10_000);
}

// ---------------------------------------------------------------------------------------
// Properties

/// One step of [`handles_count_as_fresh_look_ups_do`]: an IGMP message or a packet.
#[derive(Clone, Debug)]
enum Step {
    /// IGMPv2 report or leave of host `h` for group `g`.
    V2 { leave: bool, h: usize, g: usize },
    /// IGMPv3 record of type `rt` with the sources picked by `mask`.
    V3 {
        h: usize,
        rt: u8,
        g: usize,
        mask: u8,
    },
    /// A packet of `bytes` from source `s` to group `g`.
    Packet { g: usize, s: usize, bytes: u16 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), 0..3usize, 0..3usize).prop_map(|(leave, h, g)| Step::V2 { leave, h, g }),
        (0..3usize, 1..=6u8, 0..3usize, 0..4u8).prop_map(|(h, rt, g, mask)| Step::V3 {
            h,
            rt,
            g,
            mask
        }),
        (0..3usize, 0..3usize, 1..1500u16).prop_map(|(g, s, bytes)| Step::Packet { g, s, bytes }),
        (0..3usize, 0..3usize, 1..1500u16).prop_map(|(g, s, bytes)| Step::Packet { g, s, bytes }),
    ]
}

proptest! {
    /// Each flow's handle, kept across joins, leaves, mode changes and timeouts, counts
    /// exactly as a fresh look-up of the counters for every packet does.
    #[test]
    fn handles_count_as_fresh_look_ups_do(
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        const HOSTS: [[u8; 4]; 3] = [[10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3]];
        const GROUPS: [[u8; 4]; 3] = [[239, 1, 1, 1], [239, 1, 1, 2], [232, 1, 1, 3]];
        const SOURCES: [[u8; 4]; 3] = [[192, 0, 2, 1], [192, 0, 2, 2], [192, 0, 2, 3]];
        // A short membership interval, so that timeouts happen too.
        let config = SessionConfig {
            membership_interval_ns: 5 * S,
            ..SessionConfig::default()
        };
        let (mut kept, mut fresh) = (Rig::new(config), Rig::new(config));
        for (i, st) in steps.iter().enumerate() {
            let ts = i as i64 * S / 2;
            for (r, keep) in [(&mut kept, true), (&mut fresh, false)] {
                match *st {
                    Step::V2 { leave: false, h, g } => r.report(ts, HOSTS[h], GROUPS[g]),
                    Step::V2 { leave: true, h, g } => r.leave(ts, HOSTS[h], GROUPS[g]),
                    Step::V3 { h, rt, g, mask } => {
                        let sources: Vec<[u8; 4]> =
                            (0..2).filter(|b| mask & (1 << b) != 0).map(|b| SOURCES[b]).collect();
                        r.v3(ts, HOSTS[h], rt, GROUPS[g], &sources);
                    }
                    Step::Packet { g, s, bytes } if keep => {
                        r.packet(ts, GROUPS[g], SOURCES[s], u64::from(bytes))
                    }
                    Step::Packet { g, s, bytes } => {
                        r.packet_fresh(ts, GROUPS[g], SOURCES[s], u64::from(bytes))
                    }
                }
            }
        }
        let end = steps.len() as i64 * S / 2;
        let (a, b) = (kept.finish(end), fresh.finish(end));
        prop_assert_eq!(a, b);
        prop_assert_eq!(kept.sessions.stats(), fresh.sessions.stats());
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for m in [parse_igmp(&bytes), parse_mld(&bytes)].into_iter().flatten() {
            prop_assert!(usize::from(m.record_count()) <= bytes.len() / 8);
            prop_assert_eq!(m.records().count(), usize::from(m.record_count()));
            for rec in m.records() {
                prop_assert!(rec.sources.iter().count() == rec.sources.len());
            }
            let _ = m.query_sources().iter().count();
            let _ = m.checksum_ok(v6("fe80::1"), v6("ff02::16"));
            let mut n = 0;
            events(&m, 0, v4(H1), v4(G), &mut |_| n += 1);
            prop_assert!(n >= 1);
        }
    }

    #[test]
    fn typed_messages_never_panic(t in prop_oneof![Just(0x11u8), Just(0x22), Just(130), Just(143)],
                                  rest in proptest::collection::vec(any::<u8>(), 0..120)) {
        let mut b = vec![t];
        b.extend_from_slice(&rest);
        let _ = parse_igmp(&b).map(|m| m.records().count());
        let _ = parse_mld(&b).map(|m| m.records().count());
    }

    #[test]
    fn tracker_stays_bounded(ops in proptest::collection::vec(
        (0u8..4, 0u8..6, 0u8..4, 1u8..7, proptest::collection::vec(0u8..4, 0..3), 0i64..400),
        0..300,
    )) {
        let max = 8;
        let mut r = Rig::new(SessionConfig { max_sessions: max, membership_interval_ns: 100 * S });
        let mut ts = 0;
        for (op, host, group, rt, srcs, dt) in ops {
            ts += dt * S / 10;
            let g = [239, 0, 0, group];
            let h = [10, 0, 0, host];
            match op {
                0 => r.report(ts, h, g),
                1 => r.leave(ts, h, g),
                2 => {
                    let s: Vec<[u8; 4]> = srcs.iter().map(|&x| [192, 0, 2, x]).collect();
                    r.v3(ts, h, rt, g, &s);
                }
                _ => r.packet(ts, g, [192, 0, 2, srcs.first().copied().unwrap_or(0)], 1316),
            }
            prop_assert!(r.sessions.open_sessions() <= max);
            let (index, counters, expiry, waiting) = r.sessions.internal_sizes();
            prop_assert_eq!(index, r.sessions.open_sessions());
            prop_assert!(counters <= 2 * max);
            prop_assert!(expiry <= 2 * max + 64 + 1);
            prop_assert!(waiting <= max);
        }
        let out = r.finish(ts + 1);
        let st = *r.sessions.stats();
        prop_assert_eq!(
            st.opened,
            st.ended_leave + st.ended_timeout + st.ended_capture_end + st.ended_replaced
        );
        prop_assert_eq!(out.len() as u64, st.opened);
        for s in &out {
            prop_assert!(s.leave_ts_ns >= s.join_ts_ns);
            prop_assert!(s.zap_ns.is_none_or(|z| z >= 0));
        }
        prop_assert_eq!(r.sessions.internal_sizes(), (0, 0, 0, 0));
    }
}
