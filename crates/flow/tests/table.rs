//! Flow-table behaviour on hand-built packets: direction, TCP facts, bins, bitrates,
//! timeouts, port reuse, fragments and eviction.

use std::net::IpAddr;

use streamscope_flow::{
    tcp_flags as f, BinRecord, ClientRule, EndReason, FlowConfig, FlowRecord, FlowSink, FlowTable,
    EXACT_LIMIT,
};
use streamscope_wire::{Fragment, Ip, Packet, Tcp, Transport};

const S: i64 = 1_000_000_000;

#[derive(Default)]
struct Collect {
    flows: Vec<FlowRecord>,
    bins: Vec<BinRecord>,
}

impl FlowSink<()> for Collect {
    fn out(&mut self) -> &mut () {
        // A zero-sized box: no allocation.
        Box::leak(Box::new(()))
    }

    fn bin(&mut self, b: &BinRecord) {
        self.bins.push(*b);
    }
    fn flow(&mut self, r: &FlowRecord, _: Option<&()>) {
        self.flows.push(r.clone());
    }
}

fn ip(src: &str, dst: &str, protocol: u8) -> Ip {
    Ip {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        version: if src.contains(':') { 6 } else { 4 },
        protocol,
        ttl: 64,
        fragment: None,
    }
}

#[allow(clippy::too_many_arguments)] // one packet per call, readable at the call site
fn tcp(
    src: &str,
    sp: u16,
    dst: &str,
    dp: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
) -> Packet<'static> {
    Packet {
        ip: Some(ip(src, dst, 6)),
        transport: Transport::Tcp(Tcp {
            src_port: sp,
            dst_port: dp,
            seq,
            ack,
            flags,
            window: 1000,
            header_len: 20,
        }),
        payload_len: len,
        ..Packet::default()
    }
}

fn udp(src: &str, sp: u16, dst: &str, dp: u16, len: u32) -> Packet<'static> {
    Packet {
        ip: Some(ip(src, dst, 17)),
        transport: Transport::Udp {
            src_port: sp,
            dst_port: dp,
        },
        payload_len: len,
        ..Packet::default()
    }
}

const C: &str = "10.0.0.1";
const SV: &str = "192.0.2.7";

#[test]
fn tcp_connection_facts_bins_and_bitrate() {
    let mut t = FlowTable::<()>::new(FlowConfig::default());
    let mut out = Collect::default();
    let base = 100 * S;
    t.process(
        base,
        74,
        &tcp(C, 40000, SV, 443, f::SYN, 1000, 0, 0),
        &mut out,
    );
    t.process(
        base + 20_000_000,
        74,
        &tcp(SV, 443, C, 40000, f::SYN | f::ACK, 5000, 1001, 0),
        &mut out,
    );
    t.process(
        base + 30_000_000,
        66,
        &tcp(C, 40000, SV, 443, f::ACK, 1001, 5001, 0),
        &mut out,
    );
    // bin 100: 1000 bytes down; bin 101: nothing; bin 102: 3000 bytes down (+ a retransmission)
    t.process(
        base + 40_000_000,
        1066,
        &tcp(SV, 443, C, 40000, f::ACK, 5001, 1001, 1000),
        &mut out,
    );
    t.process(
        base + 2 * S,
        1500,
        &tcp(SV, 443, C, 40000, f::ACK, 6001, 1001, 1434),
        &mut out,
    );
    t.process(
        base + 2 * S + 1,
        1500,
        &tcp(SV, 443, C, 40000, f::ACK, 6001, 1001, 1434),
        &mut out,
    );
    t.process(
        base + 2 * S + 2,
        66,
        &tcp(SV, 443, C, 40000, f::FIN | f::ACK, 7435, 1001, 0),
        &mut out,
    );
    t.process(
        base + 2 * S + 3,
        66,
        &tcp(C, 40000, SV, 443, f::FIN | f::ACK, 1001, 7436, 0),
        &mut out,
    );
    t.finish(&mut out);

    assert_eq!(out.flows.len(), 1);
    let r = &out.flows[0];
    assert_eq!(r.client.addr, C.parse::<IpAddr>().unwrap());
    assert_eq!(r.client.port, 40000);
    assert_eq!(r.server.port, 443);
    assert_eq!(r.client_rule, ClientRule::Syn);
    assert_eq!(r.packets, [3, 5]);
    assert_eq!(r.bytes, [74 + 66 + 66, 74 + 1066 + 1500 + 1500 + 66]);
    assert_eq!(r.payload_bytes, [0, 1000 + 1434 + 1434]);
    let tcp = r.tcp.unwrap();
    assert!(tcp.handshake_seen);
    assert_eq!(tcp.handshake_rtt_ns, Some(30_000_000));
    assert_eq!(tcp.retransmitted, [0, 1]);
    assert_eq!(tcp.fin, [true, true]);
    assert_eq!(r.end_reason, EndReason::Fin);
    assert_eq!(r.bins, 3);
    // Down bytes per bin: 74+1066 = 1140, 0, 1500+1500+66 = 3066 → sorted 0, 1140, 3066.
    let b = r.bitrate_down.unwrap();
    assert_eq!(b.p50_bps, 1140 * 8);
    assert_eq!(b.p95_bps, 3066 * 8);
    assert_eq!(b.max_bps, 3066 * 8);
    // Two bin rows (the empty bin is not written), in time order.
    assert_eq!(out.bins.len(), 2);
    assert_eq!(out.bins[0].bin_start_ns, 100 * S);
    assert_eq!(out.bins[0].packets, [2, 2]);
    assert_eq!(out.bins[0].bytes, [140, 1140]);
    assert_eq!(out.bins[1].bin_start_ns, 102 * S);
    assert_eq!(out.bins[1].bytes, [66, 3066]);
}

#[test]
fn udp_direction_by_port_and_idle_timeout() {
    let cfg = FlowConfig {
        udp_idle_ns: 10 * S,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::<()>::new(cfg);
    let mut out = Collect::default();
    // The server answers first: the port rule still makes 53 the server.
    t.process(0, 100, &udp(SV, 53, C, 50000, 58), &mut out);
    t.process(S, 80, &udp(C, 50000, SV, 53, 38), &mut out);
    // 11 s later: the first flow has expired, this starts a new one.
    t.process(12 * S, 80, &udp(C, 50000, SV, 53, 38), &mut out);
    assert_eq!(out.flows.len(), 1);
    assert_eq!(out.flows[0].end_reason, EndReason::Idle);
    assert_eq!(out.flows[0].client_rule, ClientRule::WellKnownPort);
    assert_eq!(out.flows[0].packets, [1, 1]);
    assert_eq!(out.flows[0].bytes, [80, 100]);
    t.finish(&mut out);
    assert_eq!(out.flows.len(), 2);
    assert_eq!(out.flows[1].end_reason, EndReason::CaptureEnd);
    assert_eq!(out.flows[1].id, 1);
}

#[test]
fn new_syn_after_close_starts_a_new_flow() {
    let mut t = FlowTable::<()>::new(FlowConfig::default());
    let mut out = Collect::default();
    t.process(0, 60, &tcp(C, 40000, SV, 80, f::SYN, 1, 0, 0), &mut out);
    t.process(
        1,
        60,
        &tcp(SV, 80, C, 40000, f::RST | f::ACK, 0, 2, 0),
        &mut out,
    );
    t.process(2, 60, &tcp(C, 40000, SV, 80, f::SYN, 900, 0, 0), &mut out);
    t.finish(&mut out);
    assert_eq!(out.flows.len(), 2);
    assert_eq!(out.flows[0].end_reason, EndReason::Rst);
    assert_eq!(out.flows[0].packets, [1, 1]);
    assert_eq!(out.flows[1].packets, [1, 0]);
    assert_eq!(t.stats().tcp_port_reuse, 1);
}

/// A UDP datagram from C:5000 to SV:53 in two fragments (IP id 7), and a later fragment
/// whose first fragment was never seen (id 8).
fn fragments() -> [Packet<'static>; 3] {
    let fragment = |id, offset, more, len| {
        Some(Fragment {
            id,
            offset,
            more,
            len,
        })
    };
    let mut first = udp(C, 5000, SV, 53, 1472);
    first.ip.as_mut().unwrap().fragment = fragment(7, 0, true, 1480);
    let mut second = Packet {
        ip: Some(ip(C, SV, 17)),
        transport: Transport::None,
        payload_len: 500,
        ..Packet::default()
    };
    second.ip.as_mut().unwrap().fragment = fragment(7, 1480, false, 500);
    let mut orphan = second;
    orphan.ip.as_mut().unwrap().fragment = fragment(8, 1480, false, 500);
    [first, second, orphan]
}

#[test]
fn later_fragments_join_the_first_fragments_flow() {
    let mut t = FlowTable::<()>::new(FlowConfig::default());
    let mut out = Collect::default();
    let [first, second, orphan] = fragments();
    t.process(0, 1514, &first, &mut out);
    t.process(1, 534, &second, &mut out);
    t.process(2, 534, &orphan, &mut out);
    t.finish(&mut out);
    assert_eq!(out.flows.len(), 2);
    assert_eq!(out.flows[0].packets, [2, 0]);
    assert_eq!(out.flows[0].bytes, [1514 + 534, 0]);
    assert!(!out.flows[1].has_ports);
    let s = t.stats();
    assert_eq!((s.fragments_matched, s.fragments_unmatched), (1, 1));
}

#[test]
fn a_full_table_evicts_the_longest_idle_and_counts_it() {
    let cfg = FlowConfig {
        max_flows: 16,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::<()>::new(cfg);
    let mut out = Collect::default();
    for i in 0..17u16 {
        t.process(i64::from(i), 100, &udp(C, 10000 + i, SV, 53, 50), &mut out);
    }
    // The 17th flow pushed out the oldest one (16/16 = 1 flow evicted).
    assert_eq!(out.flows.len(), 1);
    assert_eq!(out.flows[0].client.port, 10000);
    assert_eq!(out.flows[0].end_reason, EndReason::Evicted);
    assert_eq!(t.stats().flows_evicted, 1);
    t.finish(&mut out);
    assert_eq!(out.flows.len(), 17);
    assert_eq!(t.stats().peak_active_flows, 16);
}

#[test]
fn backwards_timestamps_are_counted_and_kept_in_the_current_bin() {
    let mut t = FlowTable::<()>::new(FlowConfig::default());
    let mut out = Collect::default();
    t.process(5 * S, 100, &udp(C, 5000, SV, 53, 50), &mut out);
    t.process(3 * S, 100, &udp(C, 5000, SV, 53, 50), &mut out);
    t.finish(&mut out);
    assert_eq!(t.stats().timestamps_backwards, 1);
    assert_eq!(out.bins.len(), 1);
    assert_eq!(out.bins[0].packets, [2, 0]);
    assert_eq!(out.flows[0].first_ns, 3 * S);
}

#[test]
fn vlan_tags_separate_flows() {
    let mut t = FlowTable::<()>::new(FlowConfig::default());
    let mut out = Collect::default();
    let mut a = udp("10.1.1.1", 1234, "239.1.1.1", 5000, 1316);
    t.process(0, 1358, &a, &mut out);
    a.vlan = [100, 0];
    a.vlan_count = 1;
    t.process(1, 1362, &a, &mut out);
    t.finish(&mut out);
    assert_eq!(out.flows.len(), 2);
    assert_eq!(out.flows[0].client_rule, ClientRule::Multicast);
    assert_eq!(out.flows[1].vlan, [Some(100), None]);
}

#[test]
fn a_closed_connection_expires_after_the_closed_timeout_not_the_idle_one() {
    let cfg = FlowConfig {
        tcp_idle_ns: 300 * S,
        tcp_closed_ns: 10 * S,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::<()>::new(cfg);
    let mut out = Collect::default();
    // A long-lived flow keeps the clock company.
    t.process(0, 100, &udp(C, 5000, SV, 53, 50), &mut out);
    t.process(S, 60, &tcp(C, 40000, SV, 80, f::SYN, 1, 0, 0), &mut out);
    t.process(
        S + 1,
        60,
        &tcp(SV, 80, C, 40000, f::RST | f::ACK, 0, 2, 0),
        &mut out,
    );
    for s in 2..=14 {
        t.process(s * S, 100, &udp(C, 5000, SV, 53, 50), &mut out);
    }
    // Closed at 1 s, closed timeout 10 s: gone by 14 s (within two sweeps of 11 s).
    assert_eq!(out.flows.len(), 1);
    assert_eq!(out.flows[0].end_reason, EndReason::Rst);
    t.finish(&mut out);
    assert_eq!(out.flows.len(), 2);
}

#[test]
fn idle_flows_expire_across_long_silences_and_far_clock_jumps() {
    let cfg = FlowConfig {
        udp_idle_ns: 5 * S,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::<()>::new(cfg);
    let mut out = Collect::default();
    for i in 0..50u16 {
        t.process(
            i64::from(i) * S / 10,
            100,
            &udp(C, 6000 + i, SV, 53, 50),
            &mut out,
        );
    }
    // Two days later: every earlier flow has expired before the new one is counted.
    t.process(2 * 86_400 * S, 100, &udp(C, 7000, SV, 53, 50), &mut out);
    assert_eq!(out.flows.len(), 50);
    assert!(out.flows.iter().all(|f| f.end_reason == EndReason::Idle));
    // Flows come out in id order.
    assert!(out.flows.windows(2).all(|w| w[0].id < w[1].id));
    t.finish(&mut out);
    assert_eq!(out.flows.len(), 51);
}

#[test]
fn churn_keeps_the_index_and_the_slab_in_step() {
    // 300 keys reused over and over: flows end by idle timeout, by eviction (the table
    // holds 64) and at capture end; slots are reused by other keys. Every packet must
    // land in a flow of its own key, and the index must shrink back to what is open.
    let cfg = FlowConfig {
        max_flows: 64,
        udp_idle_ns: 3 * S,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::<()>::new(cfg);
    let mut out = Collect::default();
    let mut x: u64 = 7;
    let mut sent = 0u64;
    let mut per_port = std::collections::BTreeMap::<u16, u64>::new();
    for i in 0..20_000i64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 10_000 + (x % 300) as u16;
        // Bursts of traffic separated by pauses longer than the idle timeout.
        let ts = i * (S / 1_000) + (i / 2_000) * 10 * S;
        t.process(ts, 100, &udp(C, port, SV, 53, 50), &mut out);
        sent += 1;
        *per_port.entry(port).or_default() += 1;
        assert!(t.stats().active_flows <= 64);
    }
    // A packet long after: every earlier flow has timed out and left the index.
    t.process(1_000 * S, 100, &udp(C, 9, SV, 53, 50), &mut out);
    sent += 1;
    assert_eq!(t.stats().active_flows, 1);
    t.finish(&mut out);
    let s = t.stats();
    assert_eq!(s.active_flows, 0);
    assert_eq!(s.flows_created, out.flows.len() as u64);
    assert!(s.flows_evicted > 0, "the table was never full");
    let counted: u64 = out.flows.iter().map(|f| f.packets[0] + f.packets[1]).sum();
    assert_eq!(counted, sent);
    per_port.insert(9, 1);
    let mut got = std::collections::BTreeMap::<u16, u64>::new();
    for f in &out.flows {
        assert_eq!(f.server.port, 53);
        *got.entry(f.client.port).or_default() += f.packets[0] + f.packets[1];
    }
    assert_eq!(got, per_port);
    // Flow ids are unique.
    let mut ids: Vec<i64> = out.flows.iter().map(|f| f.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), out.flows.len());
}

#[test]
fn half_a_million_flows_keep_every_packet() {
    // Enough flows for the slab's pages to be populated ahead by a helper thread while
    // flows are written into it: every flow must come out with its own two packets.
    // A budget of two threads gives the slab its helper thread even on one CPU.
    const N: u32 = 500_000;
    let mut t = FlowTable::<()>::new(FlowConfig {
        threads: 2,
        ..FlowConfig::default()
    });
    #[derive(Default)]
    struct Count {
        flows: u64,
        ok: u64,
        ids: u64,
    }
    impl FlowSink<()> for Count {
        fn out(&mut self) -> &mut () {
            // A zero-sized box: no allocation.
            Box::leak(Box::new(()))
        }

        fn bin(&mut self, _: &BinRecord) {}
        fn flow(&mut self, r: &FlowRecord, _: Option<&()>) {
            self.flows += 1;
            // Client 10.x.y.z:port, server 192.0.2.53:53; one query, one answer.
            let IpAddr::V4(c) = r.client.addr else {
                return;
            };
            let n = u32::from(c) - 0x0a00_0000;
            if r.packets == [1, 1]
                && r.bytes == [u64::from(100 + n % 7), 200]
                && r.client.port == 1024 + (n % 50_000) as u16
                && r.id == i64::from(n)
            {
                self.ok += 1;
            }
            self.ids += r.id as u64;
        }
    }
    let mut out = Count::default();
    let server: IpAddr = "192.0.2.53".parse().unwrap();
    for n in 0..N {
        let client = IpAddr::V4((0x0a00_0000 + n).into());
        let port = 1024 + (n % 50_000) as u16;
        let ts = i64::from(n) * 1_000;
        let mut q = udp(C, port, SV, 53, 30);
        q.ip = Some(Ip {
            src: client,
            dst: server,
            ..q.ip.unwrap()
        });
        let mut a = q;
        a.ip = Some(Ip {
            src: server,
            dst: client,
            ..q.ip.unwrap()
        });
        a.transport = Transport::Udp {
            src_port: 53,
            dst_port: port,
        };
        t.process(ts, 100 + n % 7, &q, &mut out);
        t.process(ts + 500, 200, &a, &mut out);
    }
    assert_eq!(t.stats().active_flows, u64::from(N));
    t.finish(&mut out);
    assert_eq!(out.flows, u64::from(N));
    assert_eq!(out.ok, u64::from(N));
    assert_eq!(out.ids, u64::from(N) * u64::from(N - 1) / 2);
}

/// What comes out of a table, in order: `('f', flow id, bins)` for a flow and
/// `('b', flow id, bin start in seconds)` for a bin row.
#[derive(Default)]
struct Log(Vec<(char, i64, i64)>);

impl FlowSink<()> for Log {
    fn out(&mut self) -> &mut () {
        // A zero-sized box: no allocation.
        Box::leak(Box::new(()))
    }

    fn bin(&mut self, b: &BinRecord) {
        self.0.push(('b', b.flow_id, b.bin_start_ns / S));
    }
    fn flow(&mut self, r: &FlowRecord, _: Option<&()>) {
        self.0.push(('f', r.id, r.bins as i64));
    }
}

#[test]
fn bins_of_flows_open_at_the_end_are_released_as_the_flows_end() {
    // Flows A, B, C start in seconds 0, 1 and 2 and all send again in second 3; D starts
    // last but with a timestamp in second 0 (the clock went backwards). At the end, a
    // bin's rows may go out as soon as every flow still open started after it: bin 0
    // only after D has ended, since D could still hold a row of bin 0.
    // Runs A, B and C, then D if `late_starter`; returns what came out at the end.
    let run = |late_starter: bool| {
        let mut t = FlowTable::<()>::new(FlowConfig::default());
        let mut log = Log::default();
        let [a, b, c, d] = [5001, 5002, 5003, 5004].map(|port| udp(C, port, SV, 53, 10));
        t.process(S / 2, 100, &a, &mut log);
        t.process(S + S / 2, 100, &b, &mut log);
        t.process(2 * S + S / 2, 100, &c, &mut log);
        for p in [&a, &b, &c] {
            t.process(3 * S + S / 2, 100, p, &mut log);
        }
        if late_starter {
            t.process(S / 5, 100, &d, &mut log);
        }
        assert!(
            log.0.is_empty(),
            "nothing leaves before the end: {:?}",
            log.0
        );
        t.finish(&mut log);
        assert_eq!(t.stats().bins_out_of_order, 0);
        log.0
    };
    assert_eq!(
        run(true),
        vec![
            ('f', 0, 4),
            ('f', 1, 3),
            ('f', 2, 2),
            ('f', 3, 1),
            // Every flow has ended: bins 0 to 3 in order, flow ids in order within a bin.
            ('b', 0, 0),
            ('b', 3, 0),
            ('b', 1, 1),
            ('b', 2, 2),
            ('b', 0, 3),
            ('b', 1, 3),
            ('b', 2, 3),
        ]
    );
    // Without the late starter, bins go out between the flows.
    assert_eq!(
        run(false),
        vec![
            ('f', 0, 4),
            ('b', 0, 0),
            ('f', 1, 3),
            ('b', 1, 1),
            ('f', 2, 2),
            ('b', 2, 2),
            ('b', 0, 3),
            ('b', 1, 3),
            ('b', 2, 3),
        ]
    );
}

#[test]
fn flows_open_at_the_end_end_in_id_order_when_a_slot_was_reused() {
    // X and Y start in second 0; X goes idle and ends at second 130, when A takes its
    // slot; B comes after. A's slot comes before Y's, its id after: the flows still
    // open must end Y, A, B, with each bin released once no open flow can add to it.
    let mut t = FlowTable::<()>::new(FlowConfig::default());
    let mut log = Log::default();
    let [x, y, a, b] = [6001, 6002, 6003, 6004].map(|port| udp(C, port, SV, 53, 10));
    t.process(S / 10, 100, &x, &mut log);
    t.process(S / 5, 100, &y, &mut log);
    t.process(100 * S, 100, &y, &mut log);
    t.process(130 * S, 100, &a, &mut log);
    t.process(131 * S, 100, &b, &mut log);
    assert_eq!(log.0, [('f', 0, 1)], "X ended idle, nothing else yet");
    assert_eq!(t.stats().flows_ended, 1);
    log.0.clear();
    t.finish(&mut log);
    assert_eq!(
        log.0,
        [
            ('f', 1, 101),
            ('b', 0, 0),
            ('b', 1, 0),
            ('b', 1, 100),
            ('f', 2, 1),
            ('b', 2, 130),
            ('f', 3, 1),
            ('b', 3, 131),
        ]
    );
    assert_eq!(t.stats().bins_out_of_order, 0);
}

#[test]
fn keys_worked_out_ahead_give_the_same_flows() {
    // Both directions of TCP and UDP, IPv6, a VLAN, fragments (a first one with ports,
    // a later one without, an orphan), a packet without IP.
    let mut packets = vec![
        tcp(C, 40000, SV, 443, f::SYN, 1, 0, 0),
        tcp(SV, 443, C, 40000, f::SYN | f::ACK, 9, 2, 0),
        tcp(C, 40000, SV, 443, f::ACK, 2, 10, 0),
        udp(SV, 53, C, 5353, 80),
        udp(C, 5353, SV, 53, 40),
        udp("2001:db8::1", 6000, "2001:db8::2", 5004, 1200),
        Packet::default(),
    ];
    let mut tagged = udp(C, 5000, SV, 5004, 1316);
    tagged.vlan = [100, 0];
    tagged.vlan_count = 1;
    packets.push(tagged);
    packets.extend(fragments());
    packets.extend(packets.clone());

    let run = |ahead: bool| {
        let mut t = FlowTable::<()>::new(FlowConfig::default());
        let mut out = Collect::default();
        let keys: Vec<_> = packets.iter().map(|p| t.prefetch(p)).collect();
        for (i, (p, key)) in packets.iter().zip(keys).enumerate() {
            let ts = i as i64 * S / 3;
            if ahead {
                t.process_ahead(ts, 100, p, key, &mut out);
            } else {
                t.process(ts, 100, p, &mut out);
            }
        }
        t.finish(&mut out);
        (
            format!("{:?}", out.flows),
            format!("{:?}", out.bins),
            t.stats(),
        )
    };
    let (flows, bins, stats) = run(false);
    assert_eq!(stats.flows_created, 6);
    assert_eq!(stats.fragments_matched, 2);
    assert_eq!(run(true), (flows, bins, stats));
}

/// Counts past 32 bits: a flow's totals and a bin's bytes keep counting (the flow keeps
/// 32 bits of each and carries the rest), and a new bin starts again from zero.
#[test]
fn byte_counts_pass_32_bits_in_flows_and_bins() {
    let mut t = FlowTable::<()>::new(FlowConfig::default());
    let mut out = Collect::default();
    let len = 1u32 << 31;
    // Five 2 GiB "packets" up in second 0, three in second 1.
    for i in 0..5 {
        t.process(i, len, &udp(C, 40000, SV, 53, len - 42), &mut out);
    }
    for i in 0..3 {
        t.process(S + i, len, &udp(C, 40000, SV, 53, len - 42), &mut out);
    }
    t.finish(&mut out);
    let f = &out.flows[0];
    assert_eq!(f.packets, [8, 0]);
    assert_eq!(f.bytes, [8 << 31, 0]);
    assert_eq!(f.payload_bytes, [8 * (u64::from(len) - 42), 0]);
    let bins: Vec<_> = out
        .bins
        .iter()
        .map(|b| (b.bin_start_ns, b.packets, b.bytes))
        .collect();
    assert_eq!(bins, [(0, [5, 0], [5 << 31, 0]), (S, [3, 0], [3 << 31, 0])]);
}

/// Bitrate percentiles over the bins a flow spans (bins without downstream bytes count
/// as 0, nearest rank ⌈q·n⌉): exact while at most [`EXACT_LIMIT`] bins carry downstream
/// bytes, within 1 % past that, where the values move into a histogram. Flows of 2 to
/// 298 such bins, with empty bins and upstream-only bins among them.
#[test]
fn bitrate_percentiles_are_exact_to_64_bins_and_within_one_percent_past() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut exact, mut approximate) = (0, 0);
    let mut cases: Vec<(usize, usize, usize)> = Vec::new();
    for down in (2..=80).chain((81..=300).step_by(7)) {
        for (empty, up_only) in [(0, 0), (1, 0), (0, 3), (12, 5), (40, 9)] {
            cases.push((down, empty, up_only));
        }
    }
    for (down, empty, up_only) in cases {
        // Which kind each spanned bin is: downstream bytes, empty, or upstream only; the
        // first and last carry downstream bytes so that the span is all of them.
        let mut kinds = vec![0u8; down - 2];
        kinds.extend(std::iter::repeat_n(1u8, empty));
        kinds.extend(std::iter::repeat_n(2u8, up_only));
        for i in (1..kinds.len()).rev() {
            kinds.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        kinds.insert(0, 0);
        kinds.push(0);

        let mut t = FlowTable::<()>::new(FlowConfig::default());
        let mut out = Collect::default();
        let mut per_bin = Vec::with_capacity(kinds.len());
        for (i, kind) in kinds.iter().enumerate() {
            let ts = i as i64 * S + S / 2;
            match kind {
                0 => {
                    // 1 to 1,000,000 bytes down, from one to three frames.
                    let bytes = 1 + next() % 1_000_000;
                    let frames = 1 + bytes % 3;
                    for k in 0..frames {
                        let len = bytes / frames + u64::from(k < bytes % frames);
                        let len = u32::try_from(len).unwrap();
                        t.process(ts + k as i64, len, &udp(SV, 53, C, 50000, 0), &mut out);
                    }
                    per_bin.push(bytes);
                }
                1 => per_bin.push(0),
                _ => {
                    t.process(ts, 300, &udp(C, 50000, SV, 53, 0), &mut out);
                    per_bin.push(0);
                }
            }
        }
        t.finish(&mut out);
        let ctx = format!("{down} bins with bytes down, {empty} empty, {up_only} up only");
        assert_eq!(out.flows.len(), 1, "{ctx}");
        let f = &out.flows[0];
        assert_eq!(f.client_rule, ClientRule::WellKnownPort, "{ctx}");
        assert_eq!(f.bins as usize, per_bin.len(), "{ctx}: bins");
        let got = f.bitrate_down.expect("a bitrate");

        let mut sorted = per_bin.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        let at_rank = |percent: usize| sorted[(percent * n).div_ceil(100).max(1) - 1] * 8;
        let want = [at_rank(50), at_rank(95), sorted[n - 1] * 8].map(|v| v as i64);
        let got = [got.p50_bps, got.p95_bps, got.max_bps];
        if down <= EXACT_LIMIT {
            assert_eq!(got, want, "{ctx}: p50, p95, max (bit/s)");
            exact += 1;
        } else {
            assert_eq!(got[2], want[2], "{ctx}: max (bit/s)");
            for (i, what) in [(0, "p50"), (1, "p95")] {
                assert!(
                    (got[i] - want[i]).abs() * 100 <= want[i],
                    "{ctx}: {what} {} bit/s, nearest rank {} bit/s: more than 1 % apart",
                    got[i],
                    want[i]
                );
            }
            approximate += 1;
        }
    }
    assert!(
        exact > 300 && approximate > 100,
        "{exact} exact, {approximate} within 1 %"
    );
}
