//! Membership signalling, DNS failures, stream faults and service takedowns, checked
//! against the written frames with a test-only parser (independent of the generator):
//! IGMP/MLD checksums, Router Alert, TTL and every message against the truth; DNS
//! rcodes, CNAME chains and SOA records; no handshake to a taken-down service after the
//! takedown; retries that follow the backoff; CC errors, RTP duplicates/late packets
//! and PCR discontinuities recomputed from the TS packets.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use capgen::truth::{FlowTruth, MulticastEvent};
use capgen::{generate, Format, Options, Scenario, Truth};

const TAKEDOWN: &str = include_str!("../scenarios/takedown.toml");
const S: u64 = 1_000_000_000;

fn run(sc: &Scenario, seed: u64, format: Format) -> (Truth, Vec<u8>) {
    let opts = Options {
        seed,
        format,
        ts_resolution: None,
    };
    generate(sc, &opts, Vec::new()).expect("generation succeeds")
}

fn takedown() -> (Truth, Vec<u8>) {
    let sc = Scenario::from_toml(TAKEDOWN).expect("takedown scenario parses");
    run(&sc, 1, Format::Pcap)
}

/// Records of a little-endian classic pcap (µs or ns).
fn records(b: &[u8]) -> Vec<(u64, &[u8])> {
    let le32 = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as u64;
    let ns = match le32(0) {
        0xA1B2_C3D4 => false,
        0xA1B2_3C4D => true,
        m => panic!("bad magic {m:x}"),
    };
    let mut out = Vec::new();
    let mut off = 24;
    while off < b.len() {
        let ts = le32(off) * S + le32(off + 4) * if ns { 1 } else { 1000 };
        let len = le32(off + 8) as usize;
        out.push((ts, &b[off + 16..off + 16 + len]));
        off += 16 + len;
    }
    assert_eq!(off, b.len());
    out
}

/// One's complement sum over 16-bit words (RFC 1071), folded.
fn ones_sum(parts: &[&[u8]]) -> u32 {
    let mut s = 0u32;
    for d in parts {
        for w in d.chunks(2) {
            s += ((w[0] as u32) << 8) | *w.get(1).unwrap_or(&0) as u32;
            s = (s & 0xFFFF) + (s >> 16);
        }
    }
    s
}

/// The network layer of a frame.
struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    /// Upper-layer protocol after any Hop-by-Hop header.
    proto: u8,
    router_alert: bool,
    l4: &'a [u8],
}

fn ip(frame: &[u8]) -> Ip<'_> {
    let mut et = u16::from_be_bytes([frame[12], frame[13]]);
    let mut off = 14;
    if et == 0x8100 {
        et = u16::from_be_bytes([frame[16], frame[17]]);
        off = 18;
    }
    let p = &frame[off..];
    match et {
        0x0800 => {
            let ihl = (p[0] & 0x0F) as usize * 4;
            let total = u16::from_be_bytes([p[2], p[3]]) as usize;
            assert_eq!(total, p.len(), "IPv4 total length");
            assert_eq!(ones_sum(&[&p[..ihl]]), 0xFFFF, "IPv4 header checksum");
            let opts = &p[20..ihl];
            Ip {
                src: IpAddr::from(<[u8; 4]>::try_from(&p[12..16]).unwrap()),
                dst: IpAddr::from(<[u8; 4]>::try_from(&p[16..20]).unwrap()),
                ttl: p[8],
                proto: p[9],
                router_alert: opts.len() >= 4 && opts[..4] == [0x94, 0x04, 0, 0],
                l4: &p[ihl..],
            }
        }
        0x86DD => {
            let plen = u16::from_be_bytes([p[4], p[5]]) as usize;
            assert_eq!(plen + 40, p.len(), "IPv6 payload length");
            let mut nh = p[6];
            let mut l4 = &p[40..];
            let mut ra = false;
            if nh == 0 {
                let len = (l4[1] as usize + 1) * 8;
                // Walk the TLV options (RFC 8200 §4.2).
                let mut o = 2;
                while o < len {
                    match l4[o] {
                        0 => o += 1,
                        t => {
                            let l = l4[o + 1] as usize;
                            if t == 5 && l == 2 && l4[o + 2..o + 4] == [0, 0] {
                                ra = true;
                            }
                            o += 2 + l;
                        }
                    }
                }
                assert_eq!(o, len, "Hop-by-Hop options fill the header");
                nh = l4[0];
                l4 = &l4[len..];
            }
            Ip {
                src: IpAddr::from(<[u8; 16]>::try_from(&p[8..24]).unwrap()),
                dst: IpAddr::from(<[u8; 16]>::try_from(&p[24..40]).unwrap()),
                ttl: p[7],
                proto: nh,
                router_alert: ra,
                l4,
            }
        }
        e => panic!("ethertype {e:x}"),
    }
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// A membership message as read from the file.
#[derive(Debug, PartialEq)]
struct Msg {
    ts: u64,
    protocol: &'static str,
    version: u8,
    kind: &'static str,
    host: IpAddr,
    dst: IpAddr,
    /// (record type name or None for IGMPv2, group, sources); empty for queries.
    recs: Vec<(Option<&'static str>, IpAddr, Vec<IpAddr>)>,
}

fn rec_name(t: u8) -> &'static str {
    match t {
        1 => "mode_is_include",
        2 => "mode_is_exclude",
        3 => "change_to_include",
        4 => "change_to_exclude",
        5 => "allow_new_sources",
        6 => "block_old_sources",
        _ => panic!("record type {t}"),
    }
}

/// Parses every IGMP/MLD frame, checking checksums, TTL 1 and Router Alert.
fn membership(recs: &[(u64, &[u8])]) -> Vec<Msg> {
    let mut out = Vec::new();
    for &(ts, f) in recs {
        let p = ip(f);
        let v6 = p.src.is_ipv6();
        let m = p.l4;
        let igmp = !v6 && p.proto == 2;
        let mld = v6 && p.proto == 58 && (m[0] == 130 || m[0] == 143);
        if !(igmp || mld) {
            continue;
        }
        assert_eq!(p.ttl, 1, "IGMP/MLD go out with TTL / hop limit 1");
        assert!(p.router_alert, "Router Alert option present");
        if igmp {
            assert_eq!(ones_sum(&[m]), 0xFFFF, "IGMP checksum");
        } else {
            let len = (m.len() as u32).to_be_bytes();
            let s = addr_bytes(p.src);
            let d = addr_bytes(p.dst);
            let pseudo_tail = [0, 0, 0, 58];
            assert_eq!(
                ones_sum(&[&s, &d, &len, &pseudo_tail, m]),
                0xFFFF,
                "ICMPv6 checksum"
            );
            match p.src {
                IpAddr::V6(a) => assert_eq!(a.segments()[0] & 0xFFC0, 0xFE80, "link-local"),
                IpAddr::V4(_) => unreachable!(),
            }
        }
        // Destination MAC is the group MAC of the destination address.
        match p.dst {
            IpAddr::V4(a) => {
                let o = a.octets();
                assert_eq!(f[..6], [1, 0, 0x5E, o[1] & 0x7F, o[2], o[3]]);
            }
            IpAddr::V6(a) => {
                let o = a.octets();
                assert_eq!(f[..6], [0x33, 0x33, o[12], o[13], o[14], o[15]]);
            }
        }
        let g4 = |b: &[u8]| IpAddr::from(<[u8; 4]>::try_from(b).unwrap());
        let g6 = |b: &[u8]| IpAddr::from(<[u8; 16]>::try_from(b).unwrap());
        let mut msg = Msg {
            ts,
            protocol: if igmp { "igmp" } else { "mld" },
            version: 2,
            kind: "query",
            host: p.src,
            dst: p.dst,
            recs: Vec::new(),
        };
        match (igmp, m[0]) {
            (true, 0x11) => {
                msg.version = if m.len() >= 12 { 3 } else { 2 };
                assert_eq!(m[4..8], [0, 0, 0, 0], "general query");
                assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)));
            }
            (true, 0x16) | (true, 0x17) => {
                assert_eq!(m.len(), 8);
                msg.kind = "v2";
                msg.recs.push((None, g4(&m[4..8]), vec![]));
            }
            (true, 0x22) => {
                msg.version = 3;
                msg.kind = "v3";
                assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::new(224, 0, 0, 22)));
                let n = u16::from_be_bytes([m[6], m[7]]) as usize;
                let mut o = 8;
                for _ in 0..n {
                    let ns = u16::from_be_bytes([m[o + 2], m[o + 3]]) as usize;
                    let srcs = (0..ns)
                        .map(|i| g4(&m[o + 8 + 4 * i..o + 12 + 4 * i]))
                        .collect();
                    msg.recs
                        .push((Some(rec_name(m[o])), g4(&m[o + 4..o + 8]), srcs));
                    o += 8 + 4 * ns + 4 * m[o + 1] as usize;
                }
                assert_eq!(o, m.len());
            }
            (false, 130) => {
                assert_eq!(m.len(), 28, "MLDv2 query");
                assert_eq!(
                    p.dst,
                    IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1))
                );
            }
            (false, 143) => {
                msg.kind = "v3";
                assert_eq!(
                    p.dst,
                    IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16))
                );
                let n = u16::from_be_bytes([m[6], m[7]]) as usize;
                let mut o = 8;
                for _ in 0..n {
                    let ns = u16::from_be_bytes([m[o + 2], m[o + 3]]) as usize;
                    let srcs = (0..ns)
                        .map(|i| g6(&m[o + 20 + 16 * i..o + 36 + 16 * i]))
                        .collect();
                    msg.recs
                        .push((Some(rec_name(m[o])), g6(&m[o + 4..o + 20]), srcs));
                    o += 20 + 16 * ns + 4 * m[o + 1] as usize;
                }
                assert_eq!(o, m.len());
            }
            (_, t) => panic!("unexpected membership type {t}"),
        }
        out.push(msg);
    }
    out
}

/// The truth's events grouped into messages, in the same shape as [`Msg`].
fn truth_msgs(ev: &[MulticastEvent]) -> Vec<Msg> {
    let mut out: Vec<Msg> = Vec::new();
    let mut last = u64::MAX;
    for e in ev {
        if e.message != last {
            last = e.message;
            out.push(Msg {
                ts: e.ts_ns,
                protocol: e.protocol,
                version: e.version,
                kind: if e.kind == "query" {
                    "query"
                } else if e.record_type.is_none() {
                    "v2"
                } else {
                    "v3"
                },
                host: e.host,
                dst: e.dst,
                recs: Vec::new(),
            });
        }
        if let (Some(g), Some(m)) = (e.group, out.last_mut()) {
            m.recs.push((e.record_type, g, e.sources.clone()));
        }
    }
    out
}

#[test]
fn takedown_scenario_is_deterministic_and_small() {
    let sc = Scenario::from_toml(TAKEDOWN).expect("parses");
    let (t1, a) = run(&sc, 1, Format::Pcap);
    let (t2, b) = run(&sc, 1, Format::Pcap);
    assert_eq!(a, b, "same seed, same bytes");
    assert_eq!(
        serde_json::to_string(&t1).unwrap(),
        serde_json::to_string(&t2).unwrap()
    );
    let (_, c) = run(&sc, 2, Format::Pcap);
    assert_ne!(a, c, "another seed differs");
    let (_, ng) = run(&sc, 1, Format::Pcapng);
    assert!(ng.len() > a.len() / 2);
    assert!(a.len() < 6_000_000, "takedown capture is {} bytes", a.len());
    assert_eq!(t1.totals.file_bytes, a.len() as u64);
    assert_eq!(t1.totals.packets as usize, records(&a).len());
}

#[test]
fn igmp_and_mld_messages_match_the_truth() {
    let (t, pcap) = takedown();
    let recs = records(&pcap);
    let file = membership(&recs);
    let truth = truth_msgs(&t.multicast_events);
    assert_eq!(file.len(), truth.len(), "message count");
    for (i, (f, e)) in file.iter().zip(&truth).enumerate() {
        assert_eq!(f, e, "message {i}");
    }
    // Every kind of message is present: IGMPv2 reports and leaves, IGMPv3 and MLDv2
    // reports (ASM and SSM records), IGMPv3 and MLDv2 queries.
    let count = |p: &str, v: u8, k: &str| {
        file.iter()
            .filter(|m| m.protocol == p && m.version == v && m.kind == k)
            .count()
    };
    assert_eq!(count("igmp", 3, "query"), 3, "queries at 5, 25, 45 s");
    assert_eq!(count("mld", 2, "query"), 3);
    assert!(count("igmp", 2, "v2") >= 6);
    assert!(count("igmp", 3, "v3") >= 10 && count("mld", 2, "v3") >= 10);
    let v2_leaves = t
        .multicast_events
        .iter()
        .filter(|e| e.version == 2 && e.protocol == "igmp" && e.kind == "leave")
        .count();
    assert_eq!(v2_leaves, 2, "both IGMPv2 boxes leave at 45 s, once each");
    let ssm = file
        .iter()
        .flat_map(|m| &m.recs)
        .filter(|r| r.0 == Some("allow_new_sources"))
        .count();
    assert!(ssm >= 2);
    // Every receiver answers each query of its family once (max_resp_time 5 s).
    let reports = t
        .multicast_events
        .iter()
        .filter(|e| e.kind == "report")
        .count();
    let members_v2 = 2 * 3; // two v2 boxes on news, three queries
    assert!(reports >= members_v2, "reports {reports}");
}

#[test]
fn igmpv3_zapping_in_one_family_sends_two_records() {
    let text = r#"
        duration_s = 12.0
        [network]
        clients = 10
        [[channel]]
        name = "a"
        group = "239.2.0.1"
        mux_rate_bps = 150_000
        video_bps = 80_000
        audio_bps = 32_000
        [[channel]]
        name = "b"
        group = "239.2.0.2"
        mux_rate_bps = 150_000
        video_bps = 80_000
        audio_bps = 32_000
        [[channel]]
        name = "c"
        group = "ff3e::8000:9"
        mux_rate_bps = 150_000
        video_bps = 80_000
        audio_bps = 32_000
        [querier]
        interval_s = 4.0
        max_resp_time_s = 2.0
        [[igmp]]
        name = "v3"
        receivers = 2
        channels = ["a", "b"]
        zap_interval_s = 3.0
        join_s = [0.0, 0.5]
        [[igmp]]
        name = "v2"
        version = 2
        receivers = 1
        channels = ["a", "b"]
        zap_interval_s = 5.0
        [[igmp]]
        name = "mld"
        receivers = 1
        channels = ["c"]
        leave_s = 6.0
    "#;
    let sc = Scenario::from_toml(text).expect("parses");
    let (t, pcap) = run(&sc, 3, Format::Pcap);
    let file = membership(&records(&pcap));
    assert_eq!(file, truth_msgs(&t.multicast_events));
    // A v3 zap is one report: CHANGE_TO_INCLUDE {} for the old group, CHANGE_TO_EXCLUDE {}
    // for the new one (RFC 3376 §5.1), sent robustness = 2 times.
    let zaps: Vec<_> = file
        .iter()
        .filter(|m| m.protocol == "igmp" && m.recs.len() == 2)
        .collect();
    assert!(zaps.len() >= 4, "{} two-record reports", zaps.len());
    for z in zaps {
        assert_eq!(z.recs[0].0, Some("change_to_include"));
        assert_eq!(z.recs[1].0, Some("change_to_exclude"));
        assert_ne!(z.recs[0].1, z.recs[1].1);
        assert!(z.recs[0].2.is_empty() && z.recs[1].2.is_empty());
    }
    // The v2 zap is a leave to 224.0.0.2 and a report to the new group.
    let leaves: Vec<_> = file
        .iter()
        .filter(|m| m.kind == "v2" && m.dst == IpAddr::V4(Ipv4Addr::new(224, 0, 0, 2)))
        .collect();
    assert_eq!(leaves.len(), 2, "zaps at 5 and 10 s after the join");
    // The MLD receiver leaves at 6 s with CHANGE_TO_INCLUDE {} twice.
    let mld_leaves = file
        .iter()
        .filter(|m| m.protocol == "mld" && m.recs.iter().any(|r| r.0 == Some("change_to_include")))
        .count();
    assert_eq!(mld_leaves, 2);
    // IGMPv3 and MLD queries every 4 s from 0 s.
    assert_eq!(file.iter().filter(|m| m.kind == "query").count(), 6);
}

/// A DNS message as read from the file.
struct Dns {
    rcode: u8,
    qname: String,
    cnames: Vec<String>,
    addrs: usize,
    soa: usize,
}

fn read_name(m: &[u8], mut o: usize) -> (String, usize) {
    let mut labels = Vec::new();
    let mut end = None;
    for _ in 0..64 {
        let l = m[o] as usize;
        if l == 0 {
            end.get_or_insert(o + 1);
            break;
        }
        if l & 0xC0 == 0xC0 {
            end.get_or_insert(o + 2);
            o = ((l & 0x3F) << 8) | m[o + 1] as usize;
            continue;
        }
        labels.push(String::from_utf8(m[o + 1..o + 1 + l].to_vec()).unwrap());
        o += 1 + l;
    }
    (labels.join("."), end.expect("name ends"))
}

fn dns(m: &[u8]) -> Dns {
    let u16_at = |o: usize| u16::from_be_bytes([m[o], m[o + 1]]) as usize;
    assert_eq!(u16_at(4), 1, "one question");
    let (an, ns) = (u16_at(6), u16_at(8));
    let (qname, mut o) = read_name(m, 12);
    o += 4;
    let mut d = Dns {
        rcode: m[3] & 0x0F,
        qname,
        cnames: Vec::new(),
        addrs: 0,
        soa: 0,
    };
    for i in 0..an + ns {
        let (_, after) = read_name(m, o);
        let ty = u16_at(after);
        let rdlen = u16_at(after + 8);
        let rd = after + 10;
        match (i < an, ty) {
            (true, 5) => d.cnames.push(read_name(m, rd).0),
            (true, 1) | (true, 28) => d.addrs += 1,
            (false, 6) => {
                // MNAME, RNAME, then five 32-bit fields.
                let (_, a) = read_name(m, rd);
                let (_, b) = read_name(m, a);
                assert_eq!(b + 20, rd + rdlen, "SOA rdata length");
                d.soa += 1;
            }
            other => panic!("unexpected record {other:?}"),
        }
        o = rd + rdlen;
    }
    assert_eq!(o, m.len(), "DNS message fully parsed");
    d
}

#[test]
fn dns_rcodes_and_cname_chains_match_the_truth() {
    let (t, pcap) = takedown();
    let flows = t.flows.as_ref().unwrap();
    let by_key: HashMap<(IpAddr, u16), &FlowTruth> = flows
        .iter()
        .filter(|f| f.dns.is_some())
        .map(|f| ((f.client_addr, f.client_port), f))
        .collect();
    let mut seen = HashSet::new();
    let mut rcodes: HashMap<u8, usize> = HashMap::new();
    for (ts, f) in records(&pcap) {
        let p = ip(f);
        if p.proto != 17 || u16::from_be_bytes([p.l4[0], p.l4[1]]) != 53 {
            continue;
        }
        let cport = u16::from_be_bytes([p.l4[2], p.l4[3]]);
        let fl = by_key[&(p.dst, cport)];
        let d = dns(&p.l4[8..]);
        let td = fl.dns.as_ref().unwrap();
        assert_eq!(td.id, u16::from_be_bytes([p.l4[8], p.l4[9]]));
        assert_eq!(d.qname, td.qname);
        assert_eq!(Some(d.rcode), td.rcode, "rcode of {}", td.qname);
        assert_eq!(Some(ts), td.response_ts_ns);
        assert_eq!(d.addrs, td.answers.len());
        assert_eq!(Some(&d.cnames), fl.dns_cnames.as_ref());
        assert_eq!(d.soa, (d.rcode == 3) as usize, "SOA only with NXDOMAIN");
        *rcodes.entry(d.rcode).or_default() += 1;
        seen.insert(fl.flow_id);
    }
    let answered = flows
        .iter()
        .filter(|f| f.dns.as_ref().is_some_and(|d| d.response_ts_ns.is_some()))
        .count();
    assert_eq!(seen.len(), answered);
    // NXDOMAIN only for the taken-down name from 38 s, SERVFAIL for the tracker.
    let start = t.start_ns;
    for f in flows.iter().filter(|f| f.dns.is_some()) {
        let d = f.dns.as_ref().unwrap();
        let expect = match d.qname.as_str() {
            "live.panel-a.example" if d.query_ts_ns >= start + 38 * S => 3,
            "tracker.gone.example" => 2,
            _ => 0,
        };
        assert_eq!(
            d.rcode,
            Some(expect),
            "{} at {}",
            d.qname,
            d.query_ts_ns - start
        );
        if d.qname == "live.panel-b.example" {
            assert_eq!(
                f.dns_cnames.as_deref(),
                Some(
                    &[
                        "panel-b.edge.example.net".to_string(),
                        "e42.cdn.example.net".into()
                    ][..]
                )
            );
        }
    }
    assert!(
        rcodes[&3] >= 3 && rcodes[&2] >= 10 && rcodes[&0] >= 30,
        "{rcodes:?}"
    );
    let aaaa = flows
        .iter()
        .filter(|f| {
            f.dns
                .as_ref()
                .is_some_and(|d| d.qtype == "AAAA" && d.answers.len() == 1)
        })
        .count();
    assert!(aaaa >= 9);
}

/// TCP segments: (ts, src, dst, sport, dport, flags).
fn tcp(recs: &[(u64, &[u8])]) -> Vec<(u64, IpAddr, IpAddr, u16, u16, u8)> {
    recs.iter()
        .filter_map(|&(ts, f)| {
            let p = ip(f);
            (p.proto == 6).then(|| {
                let l = p.l4;
                (
                    ts,
                    p.src,
                    p.dst,
                    u16::from_be_bytes([l[0], l[1]]),
                    u16::from_be_bytes([l[2], l[3]]),
                    l[13],
                )
            })
        })
        .collect()
}

#[test]
fn no_handshake_with_the_taken_down_service_after_the_takedown() {
    let (t, pcap) = takedown();
    let recs = records(&pcap);
    let segs = tcp(&recs);
    let down: [IpAddr; 2] = [
        "203.0.113.20".parse().unwrap(),
        "203.0.113.21".parse().unwrap(),
    ];
    let t0 = t.start_ns + 30 * S;
    let synack = |s: &&(u64, IpAddr, IpAddr, u16, u16, u8)| s.5 & 0x12 == 0x12;
    let before = segs
        .iter()
        .filter(synack)
        .filter(|s| down.contains(&s.1) && s.0 < t0)
        .count();
    assert!(before >= 5, "panel-a served before the takedown");
    let after = segs
        .iter()
        .filter(synack)
        .filter(|s| down.contains(&s.1) && s.0 >= t0)
        .count();
    assert_eq!(after, 0, "no SYN-ACK from panel-a after 30 s");
    // Every SYN to panel-a after the takedown is answered by a RST/ACK one RTT later.
    let syns: Vec<_> = segs
        .iter()
        .filter(|s| down.contains(&s.2) && s.5 == 0x02 && s.0 >= t0)
        .collect();
    assert!(!syns.is_empty());
    for syn in &syns {
        assert!(
            segs.iter().any(|r| r.1 == syn.2
                && r.2 == syn.1
                && r.3 == syn.4
                && r.4 == syn.3
                && r.5 == 0x14
                && r.0 > syn.0),
            "SYN at {} refused",
            syn.0
        );
    }
    // The connections open at 30 s are reset by the server at exactly 30 s.
    let resets = t.client_events.iter().filter(|e| e.kind == "reset").count();
    let rst_at_t0 = segs
        .iter()
        .filter(|s| down.contains(&s.1) && s.5 & 0x04 != 0 && s.0 == t0)
        .count();
    assert_eq!(resets, rst_at_t0);
    assert!(resets >= 1);
    // The other service keeps serving and takes the migrating players.
    let b: IpAddr = "198.51.100.30".parse().unwrap();
    assert!(segs
        .iter()
        .any(|s| s.1 == b && s.5 & 0x12 == 0x12 && s.0 > t0 + 5 * S));
    let flows = t.flows.as_ref().unwrap();
    for f in flows.iter().filter(|f| down.contains(&f.server_addr)) {
        let tcp = f.tcp.as_ref().unwrap();
        if tcp.syn_ts_ns >= t0 {
            assert!(tcp.rst_server && tcp.handshake_rtt_ns.is_none());
        }
    }
}

#[test]
fn retries_follow_the_backoff_and_a_share_migrates() {
    let (t, pcap) = takedown();
    let recs = records(&pcap);
    // Frames by (ts, client): DNS queries sent, server RSTs and DNS answers received.
    let mut queries: HashSet<(u64, IpAddr)> = HashSet::new();
    let mut rst_to: HashSet<(u64, IpAddr)> = HashSet::new();
    let mut nx_to: HashSet<(u64, IpAddr)> = HashSet::new();
    for &(ts, f) in &recs {
        let p = ip(f);
        if p.proto == 17 && u16::from_be_bytes([p.l4[2], p.l4[3]]) == 53 {
            queries.insert((ts, p.src));
        } else if p.proto == 17 && u16::from_be_bytes([p.l4[0], p.l4[1]]) == 53 {
            if p.l4[8 + 3] & 0x0F == 3 {
                nx_to.insert((ts, p.dst));
            }
        } else if p.proto == 6
            && p.l4[13] & 0x04 != 0
            && u16::from_be_bytes([p.l4[0], p.l4[1]]) == 443
        {
            rst_to.insert((ts, p.dst));
        }
    }
    let backoff = |k: u32| (S << (k - 1).min(3)).min(8 * S);
    let mut last_fail: HashMap<u64, (u64, u32)> = HashMap::new();
    let mut retries = 0;
    let mut migrated = HashSet::new();
    for e in &t.client_events {
        match e.kind {
            "refused" | "reset" => {
                assert!(
                    rst_to.contains(&(e.ts_ns, e.client)),
                    "RST frame at {}",
                    e.ts_ns
                );
                last_fail.insert(e.player, (e.ts_ns, e.attempt));
            }
            "dns_failure" => {
                assert_eq!(e.rcode, Some(3));
                assert!(nx_to.contains(&(e.ts_ns, e.client)));
                last_fail.insert(e.player, (e.ts_ns, e.attempt));
            }
            "retry" => {
                let (ft, k) = last_fail[&e.player];
                assert_eq!(k, e.attempt, "retry follows the failure it counts");
                assert_eq!(e.delay_ns, Some(backoff(k)), "backoff of failure {k}");
                assert_eq!(e.ts_ns - ft, backoff(k), "player {} waited", e.player);
                assert!(
                    queries.contains(&(e.ts_ns, e.client)),
                    "lookup at the retry"
                );
                retries += 1;
            }
            "migrate" => {
                assert_eq!(e.to_service.as_deref(), Some("panel-b"));
                assert!(migrated.insert(e.player));
                // The migrated player looks up the other service right away.
                assert!(queries.contains(&(e.ts_ns, e.client)));
            }
            k => panic!("unexpected client event {k}"),
        }
    }
    assert!(retries >= 15, "{retries} retries");
    // 40 % of five players migrate (a draw per player).
    assert!(
        (1..=4).contains(&migrated.len()),
        "{} migrated",
        migrated.len()
    );
    for p in &migrated {
        assert!(
            !t.client_events.iter().any(|e| e.player == *p
                && e.kind == "retry"
                && e.ts_ns
                    > t.client_events
                        .iter()
                        .find(|m| m.player == *p && m.kind == "migrate")
                        .unwrap()
                        .ts_ns),
            "a migrated player stops retrying panel-a"
        );
    }
    let kinds: Vec<_> = t.fault_events.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"takedown") && kinds.contains(&"dns_nxdomain"));
}

/// What a receiver finds in one channel's datagrams.
#[derive(Default, Debug)]
struct Rx {
    cc_errors: HashMap<u16, u64>,
    pcr_disc: u64,
    dups: u64,
    late: u64,
    lost: u64,
    gaps: u64,
}

fn receive(recs: &[(u64, &[u8])], group: IpAddr, rtp: bool) -> Rx {
    let mut rx = Rx::default();
    let mut last_cc: HashMap<u16, u8> = HashMap::new();
    let mut last_pcr: Option<i128> = None;
    let mut seqs: Vec<i64> = Vec::new();
    let mut ext_hi: Option<i64> = None;
    for &(_, f) in recs {
        let p = ip(f);
        if p.dst != group || p.proto != 17 {
            continue;
        }
        let mut pl = &p.l4[8..];
        if rtp {
            let s = u16::from_be_bytes([pl[2], pl[3]]) as i64;
            // Unwrap against the highest number so far.
            let e = match ext_hi {
                None => s + (1 << 20),
                Some(h) => h + ((s - h).rem_euclid(65_536) as i16 as i64),
            };
            ext_hi = Some(ext_hi.map_or(e, |h| h.max(e)));
            seqs.push(e);
            pl = &pl[12..];
        }
        for pk in pl.chunks(188) {
            assert_eq!(pk[0], 0x47);
            let pid = u16::from_be_bytes([pk[1] & 0x1F, pk[2]]);
            if pid == 0x1FFF {
                continue;
            }
            let cc = pk[3] & 0x0F;
            if let Some(l) = last_cc.insert(pid, cc) {
                // A repeated CC is a duplicate packet, not an error.
                if cc != (l + 1) & 0x0F && cc != l {
                    *rx.cc_errors.entry(pid).or_default() += 1;
                }
            }
            if pk[3] & 0x20 != 0 && pk[4] >= 7 && pk[5] & 0x10 != 0 {
                let b = &pk[6..12];
                let base = ((b[0] as i128) << 25)
                    | ((b[1] as i128) << 17)
                    | ((b[2] as i128) << 9)
                    | ((b[3] as i128) << 1)
                    | (b[4] as i128 >> 7);
                let pcr = base * 300 + ((((b[4] & 1) as i128) << 8) | b[5] as i128);
                if let Some(l) = last_pcr {
                    let d = pcr - l;
                    if !(0..=2_700_000).contains(&d) {
                        rx.pcr_disc += 1;
                    }
                }
                last_pcr = Some(pcr);
            }
        }
    }
    if rtp {
        let mut got = HashSet::new();
        let mut hi = i64::MIN;
        for &s in &seqs {
            if !got.insert(s) {
                rx.dups += 1;
            } else if s < hi {
                rx.late += 1;
            }
            hi = hi.max(s);
        }
        let lo = *got.iter().min().unwrap();
        rx.lost = (hi - lo + 1) as u64 - got.len() as u64;
        let mut inside = false;
        for s in lo..=hi {
            let miss = !got.contains(&s);
            if miss && !inside {
                rx.gaps += 1;
            }
            inside = miss;
        }
    }
    rx
}

#[test]
fn stream_faults_match_what_a_receiver_sees() {
    let (t, pcap) = takedown();
    let recs = records(&pcap);
    let flows = t.flows.as_ref().unwrap();
    let mut checked = 0;
    for f in flows.iter().filter(|f| f.ts.is_some()) {
        let ts = f.ts.as_ref().unwrap();
        let rx = receive(&recs, f.client_addr, f.rtp.is_some());
        for p in &ts.pids {
            assert_eq!(
                rx.cc_errors.get(&p.pid).copied().unwrap_or(0),
                p.cc_errors,
                "{:?} pid {:#x}",
                f.name,
                p.pid
            );
        }
        assert_eq!(rx.pcr_disc, ts.pcr_discontinuities, "{:?}", f.name);
        let events = |k: &str| {
            t.fault_events
                .iter()
                .filter(|e| e.kind == k && e.target == *f.name.as_ref().unwrap())
                .count() as u64
        };
        assert_eq!(events("multicast_duplicate"), ts.datagrams_duplicated);
        assert_eq!(events("multicast_reorder"), ts.datagrams_reordered);
        if let Some(r) = &f.rtp {
            assert_eq!(
                (rx.dups, rx.late, rx.lost, rx.gaps),
                (r.duplicates, r.reordered, r.lost, r.gaps),
                "{:?}",
                f.name
            );
            assert!(r.duplicates >= 1 && r.reordered >= 1, "faults took effect");
            assert_eq!(r.duplicates, ts.datagrams_duplicated);
        }
        checked += 1;
    }
    assert_eq!(checked, 2);
    // The PCR jump of news at 50 s is one injected event and at least one discontinuity;
    // the duplicate/reorder faults are on sports only.
    let news = flows
        .iter()
        .find(|f| f.name.as_deref() == Some("news"))
        .unwrap();
    assert!(news.ts.as_ref().unwrap().pcr_discontinuities >= 1);
    let jumps: Vec<_> = t
        .fault_events
        .iter()
        .filter(|e| e.kind == "pcr_discontinuity")
        .collect();
    assert_eq!(jumps.len(), 1);
    assert_eq!(jumps[0].pcr_jump, Some(700 * 27_000));
    assert!(jumps[0].ts_ns >= t.start_ns + 50 * S);
}
