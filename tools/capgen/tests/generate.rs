//! End-to-end checks of generated captures, using an independent test-only reader:
//! determinism, record counts and bytes against the truth, IPv4/TCP/UDP checksums,
//! TCP handshake numbers, MPEG-TS continuity counters and RTP sequence gaps.

use std::collections::HashMap;

use capgen::{generate, Format, Options, Scenario, Truth, TsResolution};

const DEMO: &str = include_str!("../scenarios/demo.toml");

fn demo() -> Scenario {
    Scenario::from_toml(DEMO).expect("demo scenario parses")
}

fn run(sc: &Scenario, seed: u64, format: Format) -> (Truth, Vec<u8>) {
    let opts = Options {
        seed,
        format,
        ts_resolution: None,
    };
    generate(sc, &opts, Vec::new()).expect("generation succeeds")
}

/// One record of a classic little-endian pcap.
struct Rec<'a> {
    ts_ns: u64,
    frame: &'a [u8],
}

fn read_pcap(b: &[u8]) -> (u32, Vec<Rec<'_>>) {
    let magic = u32::from_le_bytes(b[0..4].try_into().unwrap());
    let ns = match magic {
        0xA1B2_C3D4 => false,
        0xA1B2_3C4D => true,
        m => panic!("bad magic {m:x}"),
    };
    let linktype = u32::from_le_bytes(b[20..24].try_into().unwrap());
    let mut off = 24;
    let mut out = Vec::new();
    while off < b.len() {
        let sec = u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) as u64;
        let frac = u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as u64;
        let incl = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(b[off + 12..off + 16].try_into().unwrap()) as usize;
        assert_eq!(incl, orig);
        let ts_ns = sec * 1_000_000_000 + if ns { frac } else { frac * 1000 };
        out.push(Rec {
            ts_ns,
            frame: &b[off + 16..off + 16 + incl],
        });
        off += 16 + incl;
    }
    assert_eq!(off, b.len(), "no trailing bytes");
    (linktype, out)
}

fn read_pcapng(b: &[u8]) -> Vec<Rec<'_>> {
    let mut off = 0;
    let mut out = Vec::new();
    let mut tsresol = 6u32;
    while off < b.len() {
        let ty = u32::from_le_bytes(b[off..off + 4].try_into().unwrap());
        let len = u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
        assert_eq!(len % 4, 0);
        let trailer = u32::from_le_bytes(b[off + len - 4..off + len].try_into().unwrap()) as usize;
        assert_eq!(len, trailer, "block length repeated at the end");
        match ty {
            0x0A0D_0D0A => assert_eq!(&b[off + 8..off + 12], &0x1A2B_3C4Du32.to_le_bytes()),
            1 => {
                // Options start at +16; expect if_tsresol first.
                assert_eq!(u16::from_le_bytes([b[off + 16], b[off + 17]]), 9);
                tsresol = b[off + 20] as u32;
            }
            6 => {
                let hi = u32::from_le_bytes(b[off + 12..off + 16].try_into().unwrap()) as u64;
                let lo = u32::from_le_bytes(b[off + 16..off + 20].try_into().unwrap()) as u64;
                let cap = u32::from_le_bytes(b[off + 20..off + 24].try_into().unwrap()) as usize;
                let units = (hi << 32) | lo;
                let ts_ns = units * 10u64.pow(9 - tsresol);
                out.push(Rec {
                    ts_ns,
                    frame: &b[off + 28..off + 28 + cap],
                });
            }
            t => panic!("unexpected block type {t}"),
        }
        off += len;
    }
    out
}

/// Test-only one's complement sum over 16-bit words (RFC 1071), written independently of
/// the generator's 64-bit routine.
fn ones_sum(data: &[u8]) -> u32 {
    let mut s: u32 = 0;
    for pair in data.chunks(2) {
        let w = if pair.len() == 2 {
            ((pair[0] as u32) << 8) | pair[1] as u32
        } else {
            (pair[0] as u32) << 8
        };
        s += w;
        s = (s & 0xFFFF) + (s >> 16);
    }
    s
}

struct L4<'a> {
    v6: bool,
    vlan: Option<u16>,
    proto: u8,
    src: &'a [u8],
    dst: &'a [u8],
    l4: &'a [u8],
}

/// Parses Ethernet (+802.1Q), IPv4/IPv6 and verifies the IPv4 header checksum.
fn parse(frame: &[u8]) -> L4<'_> {
    let mut et = u16::from_be_bytes([frame[12], frame[13]]);
    let mut off = 14;
    let mut vlan = None;
    if et == 0x8100 {
        vlan = Some(u16::from_be_bytes([frame[14], frame[15]]) & 0x0FFF);
        et = u16::from_be_bytes([frame[16], frame[17]]);
        off = 18;
    }
    match et {
        0x0800 => {
            let ip = &frame[off..];
            assert_eq!(ip[0] >> 4, 4);
            // 20 bytes, or 24 with the Router Alert option of IGMP (RFC 2113).
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            assert!(
                ihl == 20 || (ihl == 24 && ip[9] == 2),
                "IPv4 header length {ihl}"
            );
            let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            assert_eq!(total, ip.len(), "IPv4 total length");
            assert_eq!(ones_sum(&ip[..ihl]), 0xFFFF, "IPv4 header checksum");
            L4 {
                v6: false,
                vlan,
                proto: ip[9],
                src: &ip[12..16],
                dst: &ip[16..20],
                l4: &ip[ihl..],
            }
        }
        0x86DD => {
            let ip = &frame[off..];
            assert_eq!(ip[0] >> 4, 6);
            let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
            assert_eq!(plen + 40, ip.len(), "IPv6 payload length");
            L4 {
                v6: true,
                vlan,
                proto: ip[6],
                src: &ip[8..24],
                dst: &ip[24..40],
                l4: &ip[40..],
            }
        }
        e => panic!("unexpected ethertype {e:x}"),
    }
}

fn l4_checksum_ok(p: &L4) -> bool {
    if p.proto == 2 {
        // IGMP's checksum covers the message alone (RFC 2236 section 2.3).
        return ones_sum(p.l4) == 0xFFFF;
    }
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(p.src);
    pseudo.extend_from_slice(p.dst);
    if p.v6 {
        pseudo.extend_from_slice(&(p.l4.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, p.proto]);
    } else {
        pseudo.extend_from_slice(&[0, p.proto]);
        pseudo.extend_from_slice(&(p.l4.len() as u16).to_be_bytes());
    }
    pseudo.extend_from_slice(p.l4);
    ones_sum(&pseudo) == 0xFFFF
}

#[test]
fn same_seed_gives_identical_bytes_and_other_seed_differs() {
    let sc = demo();
    let (t1, a) = run(&sc, 1, Format::Pcap);
    let (t2, b) = run(&sc, 1, Format::Pcap);
    assert!(a == b, "pcap output must be byte-identical");
    assert_eq!(
        serde_json::to_string(&t1).unwrap(),
        serde_json::to_string(&t2).unwrap()
    );
    let (_, c) = run(&sc, 2, Format::Pcap);
    assert!(a != c, "another seed gives another capture");
    let (_, d) = run(&sc, 1, Format::Pcapng);
    let (_, e) = run(&sc, 1, Format::Pcapng);
    assert!(d == e, "pcapng output must be byte-identical");
}

#[test]
fn truth_totals_match_the_file_and_checksums_verify() {
    let sc = demo();
    let (t, bytes) = run(&sc, 1, Format::Pcap);
    let (linktype, recs) = read_pcap(&bytes);
    assert_eq!(linktype, 1);
    let tot = &t.totals;
    assert_eq!(tot.file_bytes, bytes.len() as u64);
    assert_eq!(tot.packets, recs.len() as u64);
    assert_eq!(
        tot.frame_bytes,
        recs.iter().map(|r| r.frame.len() as u64).sum::<u64>()
    );
    assert_eq!(tot.first_ts_ns, recs.first().map(|r| r.ts_ns));
    assert_eq!(tot.last_ts_ns, recs.last().map(|r| r.ts_ns));
    assert!(
        recs.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
        "records in time order"
    );
    assert!(recs
        .iter()
        .all(|r| r.ts_ns >= t.start_ns && r.ts_ns < t.end_ns));
    // The demo must exercise every mix knob.
    assert!(
        tot.vlan_packets > 0
            && tot.ipv6_packets > 0
            && tot.tcp_packets > 0
            && tot.dropped_datagrams > 0
    );

    let (mut v6, mut vlan, mut tcp, mut udp, mut membership) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut membership_bytes = 0u64;
    let mut bad = 0;
    for r in &recs {
        let p = parse(r.frame);
        if matches!(p.proto, 0 | 2) {
            membership_bytes += r.frame.len() as u64;
        }
        v6 += p.v6 as u64;
        vlan += p.vlan.is_some() as u64;
        match p.proto {
            6 => tcp += 1,
            17 => {
                udp += 1;
                assert_eq!(
                    u16::from_be_bytes([p.l4[4], p.l4[5]]) as usize,
                    p.l4.len(),
                    "UDP length"
                );
            }
            // IGMP, and MLD in ICMPv6 (after a hop-by-hop header).
            2 | 0 => membership += 1,
            x => panic!("unexpected protocol {x}"),
        }
        if p.proto != 0 && !l4_checksum_ok(&p) {
            bad += 1;
        }
    }
    assert_eq!(bad, 0, "TCP, UDP and IGMP checksums");
    assert_eq!(
        membership,
        t.multicast_events
            .iter()
            .map(|e| e.message)
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64,
        "one frame per IGMP/MLD message of the truth"
    );
    assert_eq!(
        (v6, vlan, tcp, udp),
        (
            tot.ipv6_packets,
            tot.vlan_packets,
            tot.tcp_packets,
            tot.udp_packets
        )
    );

    // Per-flow packets and bytes add up to the totals, with the IGMP/MLD messages (the
    // truth lists those as `multicast_events`, not as flows).
    let flows = t.flows.as_ref().expect("demo lists flows");
    let pk: u64 = flows.iter().map(|f| f.packets_up + f.packets_down).sum();
    let by: u64 = flows
        .iter()
        .map(|f| f.frame_bytes_up + f.frame_bytes_down)
        .sum();
    assert!(membership > 0, "the demo has set-top boxes");
    assert_eq!(
        (pk + membership, by + membership_bytes),
        (tot.packets, tot.frame_bytes)
    );
    assert_eq!(flows.len() as u64, tot.flows);
}

#[test]
fn pcapng_and_ns_output_carry_the_same_frames() {
    let sc = demo();
    let (tp, pcap) = run(&sc, 1, Format::Pcap);
    let (tn, ng) = run(&sc, 1, Format::Pcapng);
    let a = read_pcap(&pcap).1;
    let b = read_pcapng(&ng);
    assert_eq!(a.len(), b.len());
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| x.frame == y.frame && x.ts_ns == y.ts_ns));
    assert_eq!(tn.totals.file_bytes, ng.len() as u64);
    assert_eq!(tp.totals.frame_bytes, tn.totals.frame_bytes);

    let opts = Options {
        seed: 1,
        format: Format::Pcap,
        ts_resolution: Some(TsResolution::Ns),
    };
    let (t, nsb) = generate(&sc, &opts, Vec::new()).unwrap();
    let recs = read_pcap(&nsb).1;
    assert_eq!(t.totals.last_ts_ns, recs.last().map(|r| r.ts_ns));
    // With ns resolution some timestamps are not whole microseconds.
    assert!(recs.iter().any(|r| r.ts_ns % 1000 != 0));
}

/// CC errors per (group, PID), RTP (lost, gaps) per group, and the TS packet count.
type TsScan = (
    HashMap<(Vec<u8>, u16), u64>,
    HashMap<Vec<u8>, (u64, u64)>,
    u64,
);

/// Scans the TS packets of every multicast flow: per (flow, PID) CC discontinuities, and
/// RTP sequence gaps.
fn scan_ts(recs: &[Rec]) -> TsScan {
    let mut last: HashMap<(Vec<u8>, u16), u8> = HashMap::new();
    let mut errors: HashMap<(Vec<u8>, u16), u64> = HashMap::new();
    let mut rtp: HashMap<Vec<u8>, (Option<u16>, u64, u64)> = HashMap::new();
    let mut ts_packets = 0;
    for r in recs {
        let p = parse(r.frame);
        let multicast = if p.v6 {
            p.dst[0] == 0xFF
        } else {
            p.dst[0] >> 4 == 14
        };
        if p.proto != 17 || !multicast {
            continue;
        }
        let group = p.dst.to_vec();
        let mut pl = &p.l4[8..];
        if pl[0] == 0x80 && pl[1] & 0x7F == 33 {
            let seq = u16::from_be_bytes([pl[2], pl[3]]);
            let e = rtp.entry(group.clone()).or_insert((None, 0, 0));
            if let Some(l) = e.0 {
                let gap = seq.wrapping_sub(l).wrapping_sub(1) as u64;
                e.1 += gap;
                e.2 += (gap > 0) as u64;
            }
            e.0 = Some(seq);
            pl = &pl[12..];
        }
        assert_eq!(pl.len() % 188, 0);
        for ts in pl.chunks(188) {
            assert_eq!(ts[0], 0x47, "sync byte");
            ts_packets += 1;
            let pid = u16::from_be_bytes([ts[1] & 0x1F, ts[2]]);
            if pid == 0x1FFF {
                continue;
            }
            assert!(ts[3] & 0x10 != 0, "every non-null packet carries payload");
            let cc = ts[3] & 0x0F;
            let key = (group.clone(), pid);
            if let Some(l) = last.get(&key) {
                if cc != (l + 1) % 16 {
                    *errors.entry(key.clone()).or_default() += 1;
                }
            }
            errors.entry(key.clone()).or_default();
            last.insert(key, cc);
        }
    }
    let rtp = rtp.into_iter().map(|(k, v)| (k, (v.1, v.2))).collect();
    (errors, rtp, ts_packets)
}

fn addr_bytes(a: std::net::IpAddr) -> Vec<u8> {
    match a {
        std::net::IpAddr::V4(v) => v.octets().to_vec(),
        std::net::IpAddr::V6(v) => v.octets().to_vec(),
    }
}

#[test]
fn continuity_counters_are_clean_without_faults() {
    let mut sc = demo();
    sc.faults.clear();
    let (t, bytes) = run(&sc, 3, Format::Pcap);
    let recs = read_pcap(&bytes).1;
    let (errors, rtp, ts_packets) = scan_ts(&recs);
    assert!(ts_packets > 10_000);
    assert!(
        errors.len() >= 8,
        "PAT, PMT, video and audio of both channels seen"
    );
    assert!(
        errors.values().all(|&e| e == 0),
        "CC increments mod 16 on every PID: {errors:?}"
    );
    assert!(rtp.values().all(|&(lost, gaps)| lost == 0 && gaps == 0));
    assert_eq!(t.totals.dropped_datagrams, 0);
}

#[test]
fn loss_window_cc_errors_and_rtp_gaps_match_the_truth() {
    let sc = demo();
    let (t, bytes) = run(&sc, 1, Format::Pcap);
    let recs = read_pcap(&bytes).1;
    let (errors, rtp, ts_packets) = scan_ts(&recs);
    let flows = t.flows.as_ref().unwrap();
    let mut total_truth_errors = 0;
    let mut truth_ts_packets = 0;
    let mut dropped = 0;
    for f in flows.iter().filter(|f| f.ts.is_some()) {
        let ts = f.ts.as_ref().unwrap();
        truth_ts_packets += ts.ts_packets;
        dropped += ts.datagrams_dropped;
        let g = addr_bytes(f.client_addr);
        for p in ts.pids.iter().filter(|p| p.pid != 0x1FFF) {
            let found = errors.get(&(g.clone(), p.pid)).copied().unwrap_or(0);
            assert_eq!(
                found,
                p.cc_errors,
                "CC errors of {} PID {}",
                f.name.as_deref().unwrap_or(""),
                p.pid
            );
            total_truth_errors += p.cc_errors;
            assert!(p.cc_errors <= p.lost_packets);
        }
        if let Some(r) = &f.rtp {
            assert_eq!(rtp.get(&g).copied(), Some((r.lost, r.gaps)));
            assert_eq!(r.packets, f.packets_down);
        }
        assert_eq!(ts.datagrams_sent - ts.datagrams_dropped, f.packets_down);
    }
    assert!(total_truth_errors > 0, "the loss window injects CC errors");
    assert_eq!(truth_ts_packets, ts_packets);
    assert_eq!(dropped, t.totals.dropped_datagrams);
    assert!(dropped > 0);
}

#[test]
fn tcp_handshakes_and_sequence_numbers_are_consistent() {
    let sc = demo();
    let (t, bytes) = run(&sc, 1, Format::Pcap);
    let recs = read_pcap(&bytes).1;
    // Per connection (client port): client ISN, server ISN, next expected server seq.
    #[derive(Default)]
    struct C {
        isn_c: Option<u32>,
        next_s: Option<u32>,
        syn_ts: u64,
        ack_ts: Option<u64>,
        server_bytes: u64,
    }
    let mut conns: HashMap<u16, C> = HashMap::new();
    for r in &recs {
        let p = parse(r.frame);
        if p.proto != 6 {
            continue;
        }
        let l4 = p.l4;
        let (sp, dp) = (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        );
        let seq = u32::from_be_bytes(l4[4..8].try_into().unwrap());
        let ack = u32::from_be_bytes(l4[8..12].try_into().unwrap());
        let flags = l4[13];
        let data = l4.len() - (l4[12] >> 4) as usize * 4;
        let up = dp == 443;
        let c = conns.entry(if up { sp } else { dp }).or_default();
        if up && flags == 0x02 {
            c.isn_c = Some(seq);
            c.syn_ts = r.ts_ns;
        } else if !up && flags == 0x12 {
            assert_eq!(
                Some(ack),
                c.isn_c.map(|s| s.wrapping_add(1)),
                "SYN-ACK acks ISN+1"
            );
            c.next_s = Some(seq.wrapping_add(1));
        } else if up && flags == 0x10 && c.ack_ts.is_none() {
            assert_eq!(Some(ack), c.next_s, "handshake ACK");
            c.ack_ts = Some(r.ts_ns);
        } else if !up && flags & 0x01 != 0 {
            assert_eq!(Some(seq), c.next_s, "server FIN follows its data");
            c.next_s = Some(seq.wrapping_add(1));
        } else if !up && data > 0 {
            assert_eq!(Some(seq), c.next_s, "server data is contiguous");
            c.next_s = Some(seq.wrapping_add(data as u32));
            c.server_bytes += data as u64;
            assert!(data <= 1460);
        } else if up && flags & 0x04 == 0 {
            // Client ACKs never ack beyond what the server sent.
            if let Some(n) = c.next_s {
                assert!(n.wrapping_sub(ack) < 1 << 30, "ack {ack} beyond {n}");
            }
        }
    }
    let flows = t.flows.as_ref().unwrap();
    let https: Vec<_> = flows.iter().filter(|f| f.tcp.is_some()).collect();
    assert!(!https.is_empty());
    for f in https {
        let c = conns.get(&f.client_port).expect("connection seen");
        let tcp = f.tcp.as_ref().unwrap();
        assert_eq!(tcp.syn_ts_ns, c.syn_ts);
        assert_eq!(tcp.handshake_rtt_ns, c.ack_ts.map(|a| a - c.syn_ts));
        assert_eq!(f.payload_bytes_down, c.server_bytes);
        let burst_bytes: u64 = tcp.bursts.iter().map(|b| b.response_bytes_sent).sum();
        assert_eq!(burst_bytes, c.server_bytes);
    }
}

#[test]
fn small_flows_have_distinct_five_tuples() {
    let text = r#"
        duration_s = 2.0
        [network]
        ipv6_share = 0.2
        vlan_share = 0.1
        [small_flows]
        count = 3000
        kind = "tcp_syn_rst"
        clients = 100
        servers = 10
    "#;
    let sc = Scenario::from_toml(text).unwrap();
    let (t, bytes) = run(&sc, 9, Format::Pcap);
    let recs = read_pcap(&bytes).1;
    let flows = t.flows.as_ref().unwrap();
    assert_eq!(flows.len(), 3000);
    let mut tuples = std::collections::HashSet::new();
    for f in flows {
        assert!(tuples.insert((f.client_addr, f.client_port, f.server_addr, f.server_port)));
    }
    // Each complete flow is SYN, SYN-ACK, RST; flows cut by the end have fewer packets.
    let complete = flows
        .iter()
        .filter(|f| f.packets_up == 2 && f.packets_down == 1)
        .count();
    assert!(complete > 2900);
    assert_eq!(recs.len() as u64, t.totals.packets);
    assert!(recs.iter().all(|r| l4_checksum_ok(&parse(r.frame))));
}
