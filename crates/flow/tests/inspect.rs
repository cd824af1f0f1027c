//! The inspector interface on hand-built packets: who gets an inspector, what it is
//! given per direction, the TCP byte stream in order with its gaps, rows emitted
//! mid-flow, bin counters, the end hook, and that wanting nothing stops the calls.

use std::net::IpAddr;

use streamscope_flow::{
    tcp_flags as f, BinRecord, Dir, EndReason, FlowConfig, FlowRecord, FlowSink, FlowStart,
    FlowTable, Inspector, Segment, Want, Wants,
};
use streamscope_wire::{Ip, Packet, Tcp, Transport};

const S: i64 = 1_000_000_000;
const C: &str = "10.0.0.1";
const SV: &str = "192.0.2.7";

/// Records everything it is given; wants UDP packets, TCP streams, and on UDP stops
/// after `stop_after` packets.
#[derive(Debug)]
struct Recorder {
    flow: FlowStart,
    seen: u32,
    in_bin: u32,
    stop_after: u32,
    wants: Wants,
}

/// What the recorders say, in order.
#[derive(Default)]
struct Log {
    events: Vec<String>,
    flows: Vec<(FlowRecord, Option<u32>)>,
    bins: Vec<BinRecord<u32>>,
}

impl Inspector for Recorder {
    type Out = Log;
    type BinCounters = u32;

    fn start(flow: &FlowStart, out: &mut Log) -> Option<Recorder> {
        // Only flows to port 53, 80 or 8080 are inspected; TCP to 8080 is read as packets
        // until the first payload, then as streams.
        if ![53, 80, 8080].contains(&flow.server.port) {
            return None;
        }
        out.events.push(format!(
            "start {} {}:{} -> {}:{} {:?}",
            flow.id,
            flow.client.addr,
            flow.client.port,
            flow.server.addr,
            flow.server.port,
            flow.client_rule
        ));
        Some(Recorder {
            flow: *flow,
            seen: 0,
            in_bin: 0,
            stop_after: 2,
            wants: if flow.protocol == 6 && flow.server.port != 8080 {
                Wants::STREAMS
            } else {
                Wants::PACKETS
            },
        })
    }

    fn wants(&self) -> Wants {
        self.wants
    }

    fn packet(&mut self, flow: &FlowStart, s: &Segment<'_>, out: &mut Log) -> Wants {
        assert_eq!(*flow, self.flow, "every call sees the flow as it started");
        self.seen += 1;
        self.in_bin += 1;
        out.events.push(format!(
            "packet {:?} {} {:?}",
            s.dir,
            s.ts_ns / S,
            std::str::from_utf8(s.payload).unwrap()
        ));
        if self.flow.server.port == 8080 && !s.payload.is_empty() {
            self.wants = Wants::STREAMS;
        } else if self.seen >= self.stop_after {
            self.wants = Wants::NOTHING;
        }
        self.wants
    }

    fn stream(&mut self, flow: &FlowStart, dir: Dir, _: i64, bytes: &[u8], out: &mut Log) -> Wants {
        assert_eq!(*flow, self.flow);
        self.in_bin += 1;
        out.events.push(format!(
            "stream {dir:?} {:?}",
            std::str::from_utf8(bytes).unwrap()
        ));
        if bytes.ends_with(b"STOP") {
            self.wants.down = Want::Nothing;
        }
        self.wants
    }

    fn gap(&mut self, flow: &FlowStart, dir: Dir, _: i64, missing: u64, out: &mut Log) -> Wants {
        assert_eq!(*flow, self.flow);
        out.events.push(format!("gap {dir:?} {missing}"));
        self.wants
    }

    fn close_bin(&mut self) -> u32 {
        std::mem::take(&mut self.in_bin)
    }

    fn end(&mut self, flow: &FlowStart, reason: EndReason, last_ns: i64, _: i64, out: &mut Log) {
        assert_eq!(*flow, self.flow);
        out.events
            .push(format!("end {} {reason:?} {}", self.flow.id, last_ns / S));
    }
}

impl FlowSink<Recorder> for Log {
    fn bin(&mut self, b: &BinRecord<u32>) {
        self.bins.push(*b);
    }

    fn flow(&mut self, r: &FlowRecord, i: Option<&Recorder>) {
        self.flows.push((r.clone(), i.map(|i| i.seen)));
    }

    fn out(&mut self) -> &mut Log {
        self
    }
}

fn ip(src: &str, dst: &str, protocol: u8) -> Ip {
    Ip {
        src: src.parse::<IpAddr>().unwrap(),
        dst: dst.parse::<IpAddr>().unwrap(),
        version: 4,
        protocol,
        ttl: 64,
        fragment: None,
    }
}

fn udp<'a>(src: &str, sp: u16, dst: &str, dp: u16, payload: &'a [u8]) -> Packet<'a> {
    Packet {
        ip: Some(ip(src, dst, 17)),
        transport: Transport::Udp {
            src_port: sp,
            dst_port: dp,
        },
        payload,
        payload_len: payload.len() as u32,
        ..Packet::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn tcp<'a>(
    src: &str,
    sp: u16,
    dst: &str,
    dp: u16,
    flags: u8,
    seq: u32,
    payload: &'a [u8],
) -> Packet<'a> {
    Packet {
        ip: Some(ip(src, dst, 6)),
        transport: Transport::Tcp(Tcp {
            src_port: sp,
            dst_port: dp,
            seq,
            ack: 0,
            flags,
            window: 1000,
            header_len: 20,
        }),
        payload,
        payload_len: payload.len() as u32,
        ..Packet::default()
    }
}

#[test]
fn udp_packets_reach_the_inspector_until_it_wants_nothing() {
    let mut t = FlowTable::<Recorder>::new(FlowConfig::default());
    let mut log = Log::default();
    t.process(S, 60, &udp(C, 50000, SV, 53, b"q1"), &mut log);
    t.process(S + 1, 60, &udp(SV, 53, C, 50000, b"r1"), &mut log);
    // Stopped after two packets: the third is only counted.
    t.process(2 * S, 60, &udp(C, 50000, SV, 53, b"q2"), &mut log);
    // Not inspected (port 123).
    t.process(2 * S, 60, &udp(C, 50001, SV, 123, b"ntp"), &mut log);
    t.finish(&mut log);
    assert_eq!(
        log.events,
        [
            "start 0 10.0.0.1:50000 -> 192.0.2.7:53 WellKnownPort",
            "packet Up 1 \"q1\"",
            "packet Down 1 \"r1\"",
            "end 0 CaptureEnd 2",
        ]
    );
    assert_eq!(t.stats().inspected_flows, 1);
    let seen: Vec<_> = log
        .flows
        .iter()
        .map(|(r, s)| (r.id, r.packets, *s))
        .collect();
    assert_eq!(seen, [(0, [2, 1], Some(2)), (1, [1, 0], None)]);
    // Bin counters: two packets in second 1, none in second 2; the other flow none.
    let bins: Vec<_> = log
        .bins
        .iter()
        .map(|b| (b.flow_id, b.bin_start_ns / S, b.counters))
        .collect();
    assert_eq!(bins, [(0, 1, 2), (0, 2, 0), (1, 2, 0)]);
}

#[test]
fn a_tcp_direction_comes_in_order_with_its_gaps_and_held_bytes_at_the_end() {
    let mut t = FlowTable::<Recorder>::new(FlowConfig::default());
    let mut log = Log::default();
    let up = |flags, seq, p| tcp(C, 40000, SV, 80, flags, seq, p);
    let down = |flags, seq, p| tcp(SV, 80, C, 40000, flags, seq, p);
    t.process(S, 60, &up(f::SYN, 100, b""), &mut log);
    t.process(S, 60, &down(f::SYN | f::ACK, 900, b""), &mut log);
    t.process(S, 60, &up(f::ACK, 101, b"GET "), &mut log);
    // Out of order: "/x " before "GET " ends... then the hole at 105 is filled.
    t.process(S, 60, &up(f::ACK, 108, b"HTTP"), &mut log);
    t.process(S, 60, &up(f::ACK, 105, b"/x "), &mut log);
    // A retransmission adds nothing.
    t.process(S, 60, &up(f::ACK, 101, b"GET "), &mut log);
    t.process(S, 60, &down(f::ACK, 901, b"200 "), &mut log);
    // Down: a hole of 3 bytes never filled, then the inspector stops reading down.
    t.process(S, 60, &down(f::ACK, 908, b"STOP"), &mut log);
    t.process(S, 60, &down(f::ACK, 905, b"OK "), &mut log);
    t.process(S, 60, &down(f::ACK, 912, b"ignored"), &mut log);
    // Up: data after a hole, held until the flow ends.
    t.process(2 * S, 60, &up(f::ACK, 120, b"tail"), &mut log);
    t.finish(&mut log);
    assert_eq!(
        log.events,
        [
            "start 0 10.0.0.1:40000 -> 192.0.2.7:80 Syn",
            "stream Up \"GET \"",
            "stream Up \"/x \"",
            "stream Up \"HTTP\"",
            "stream Down \"200 \"",
            "stream Down \"OK \"",
            "stream Down \"STOP\"",
            "gap Up 8",
            "stream Up \"tail\"",
            "end 0 CaptureEnd 2",
        ]
    );
    let s = t.stats().streams;
    assert_eq!(
        (s.bytes, s.gaps, s.gap_bytes, s.overlap_bytes),
        (26, 1, 8, 4)
    );
}

/// An inspector that read a segment itself and then asks for the stream gets the bytes
/// after that segment: a retransmitted copy of it is not read again.
#[test]
fn a_stream_asked_for_after_a_packet_starts_after_it() {
    let mut t = FlowTable::<Recorder>::new(FlowConfig::default());
    let mut log = Log::default();
    let up = |flags, seq, p| tcp(C, 40001, SV, 8080, flags, seq, p);
    t.process(S, 60, &up(f::SYN, 100, b""), &mut log);
    t.process(S, 60, &up(f::ACK, 101, b"GET "), &mut log);
    t.process(S, 60, &up(f::ACK, 101, b"GET "), &mut log);
    t.process(S, 60, &up(f::ACK, 105, b"/x "), &mut log);
    t.finish(&mut log);
    assert_eq!(
        log.events,
        [
            "start 0 10.0.0.1:40001 -> 192.0.2.7:8080 Syn",
            "packet Up 1 \"\"",
            "packet Up 1 \"GET \"",
            "stream Up \"/x \"",
            "end 0 CaptureEnd 1",
        ]
    );
    assert_eq!(t.stats().streams.overlap_bytes, 4);
}

#[test]
fn a_fragmented_udp_datagram_comes_whole() {
    use streamscope_wire::Fragment;
    let mut t = FlowTable::<Recorder>::new(FlowConfig::default());
    let mut log = Log::default();
    let frag = |offset: u16, more: bool, payload: &'static [u8], ports: bool| {
        let mut ip = ip(SV, C, 17);
        ip.fragment = Some(Fragment {
            id: 9,
            offset,
            more,
            len: payload.len() as u16 + if ports { 8 } else { 0 },
        });
        Packet {
            ip: Some(ip),
            transport: if ports {
                Transport::Udp {
                    src_port: 53,
                    dst_port: 50000,
                }
            } else {
                Transport::None
            },
            payload,
            payload_len: payload.len() as u32,
            ..Packet::default()
        }
    };
    t.process(S, 60, &udp(C, 50000, SV, 53, b"q"), &mut log);
    // 8 bytes of UDP header and "answer, " in the first fragment; the rest after it.
    t.process(S + 1, 60, &frag(0, true, b"answer, ", true), &mut log);
    t.process(S + 2, 60, &frag(16, false, b"whole", false), &mut log);
    t.finish(&mut log);
    assert_eq!(
        log.events[1..3],
        ["packet Up 1 \"q\"", "packet Down 1 \"answer, whole\""]
    );
    assert_eq!(t.stats().datagrams.reassembled, 1);
}
