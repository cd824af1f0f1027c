//! Conformance of `flows` with tshark on the public corpus (`oracle.json`, see the corpus's
//! MANIFEST.md; found through `streamscope_testkit::corpus`).
//!
//! Three views of every corpus file are compared:
//!
//! 1. **The capture**, scanned here frame by frame with the capture and wire crates (never
//!    the flow table under test): which frames carry which TCP/UDP conversation
//!    (protocol and the unordered pair of address and port), with time, length,
//!    direction, TCP flags and sequence number, fragment and ICMP facts, and the media
//!    addresses that signalling (SDP, Skinny) announces.
//! 2. **tshark's conversation rows** (`tcp_conversations`, `udp_conversations`: one row
//!    per `tcp.stream` / `udp.stream`, packets and bytes per direction, first and last
//!    frame time).
//! 3. **Our `flows.parquet`**, from `streamscope analyze`.
//!
//! From the scan, two models are built: *tshark's* (frames labelled and streams cut the
//! way tshark 4.0 does) and *ours* (frames counted and flows cut by the flow definition
//! in the README). The test requires:
//!
//! - tshark's rows equal tshark's model exactly: number of rows per 5-tuple, packets and
//!   bytes per direction, first and last timestamps (to the µs);
//! - our flows equal our model exactly, the same way; every flow of ours is visited,
//!   those tshark does not list included (a spurious or double-counted flow fails); flows
//!   without ports (ICMP, IGMP, fragments without their first) are checked per protocol
//!   and host pair;
//! - our flows' packets and bytes sum to the capture's IP frames, and the run's totals
//!   equal tshark's frame count and bytes;
//! - the two models differ only through the rules below, each one's count computed from
//!   the capture and pinned per file in [`PINNED`]:
//!   - `ip_fragments`: tshark gives a reassembled datagram's conversation only to the
//!     frame completing it; we count every fragment to its datagram's flow (non-first
//!     fragments found by IP id). Count: fragment frames that tshark labels differently.
//!   - `reassembled_ports`: a datagram whose first fragment has no usable transport
//!     header: tshark reads the ports from the reassembled datagram, we count it to the
//!     host pair's flow without ports. Count: datagrams.
//!   - `icmp_quote`: tshark counts an ICMP error to the conversation its quote names; we
//!     count it to an ICMP flow. Count: ICMP frames.
//!   - `idle_timeout`: a silence longer than our idle timeout ends our flow (tshark never
//!     cuts on time). Count: cuts.
//!   - `new_syn`: a SYN on a closed (FIN or RST) connection starts our new flow. Count:
//!     cuts (tshark's count is `tshark_new_syn`: a SYN whose sequence number differs
//!     from its direction's first; where both cut at the same frame the rows agree).
//!   - `signalled_split`: tshark gives media that SDP or Skinny announced its own stream
//!     per announcement and direction. Count: extra streams.
//!
//! A second test runs the flow table itself with each of our rules switched off
//! (`FlowConfig::faults`, long timeouts) and shows that the comparison then fails.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use arrow_array::{Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};
use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_flow::{FlowConfig, FlowRecord, FlowSink, FlowTable};
use streamscope_wire::{dissect, DecodeError, Transport};
use support::{batches, col};

mod support;

const TEST: &str = "oracle";

/// Each rule's count per file, where it is not zero (see the module documentation).
/// Computed from the captures; a change here means the flow definition, tshark's or
/// the corpus changed.
const PINNED: &[(&str, &[(&str, u64)])] = &[
    (
        "ndpi__FAX-Call-t38-CA-TDM-SIP-FB-1.pcap",
        &[("signalled_split", 7)],
    ),
    ("ndpi__dns_fragmented.pcap", &[("ip_fragments", 7)]),
    (
        "ndpi__ip_fragmented_garbage.pcap",
        &[("reassembled_ports", 4)],
    ),
    ("ndpi__sip.pcap", &[("idle_timeout", 2)]),
    ("ndpi__skinny.pcap", &[("signalled_split", 1)]),
    ("tsduck__test-176.pcapng", &[("icmp_quote", 1)]),
    ("zeek__ipv6-fragmented-dns.pcap", &[("ip_fragments", 2)]),
];

const NS: i64 = 1_000_000_000;
/// streamscope's default timeouts (README; `analyze --help`).
const TCP_IDLE_NS: i64 = 300 * NS;
const TCP_CLOSED_NS: i64 = 10 * NS;
const UDP_IDLE_NS: i64 = 120 * NS;
const OTHER_IDLE_NS: i64 = 60 * NS;
/// The flow table looks for idle flows at most once per second of capture time, at a
/// packet; a fragment's ports are kept 30 s.
const SWEEP_NS: i64 = NS;
const FRAGMENT_TTL_NS: i64 = 30 * NS;

/// An endpoint as (address, port).
type Ep = (IpAddr, u16);

/// Packets and bytes in the two directions of a conversation, oriented from its
/// canonical low endpoint: `[lo→hi packets, lo→hi bytes, hi→lo packets, hi→lo bytes]`.
type Counts = [i64; 4];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ConvKey {
    protocol: i32,
    lo: Ep,
    hi: Ep,
}

fn conv_key(protocol: i32, a: Ep, b: Ep) -> (ConvKey, bool) {
    if a <= b {
        (
            ConvKey {
                protocol,
                lo: a,
                hi: b,
            },
            true,
        )
    } else {
        (
            ConvKey {
                protocol,
                lo: b,
                hi: a,
            },
            false,
        )
    }
}

fn oriented(a_is_lo: bool, ab: (i64, i64), ba: (i64, i64)) -> Counts {
    if a_is_lo {
        [ab.0, ab.1, ba.0, ba.1]
    } else {
        [ba.0, ba.1, ab.0, ab.1]
    }
}

/// One row of a conversation: what both tshark's rows and our flows are reduced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    first_us: i64,
    last_us: i64,
    counts: Counts,
}

impl Row {
    fn add(&mut self, ts_ns: i64, lo_to_hi: bool, len: i64) {
        let us = ts_ns.div_euclid(1000);
        if self.counts == [0; 4] {
            self.first_us = us;
            self.last_us = us;
        }
        self.first_us = self.first_us.min(us);
        self.last_us = self.last_us.max(us);
        let i = if lo_to_hi { 0 } else { 2 };
        self.counts[i] += 1;
        self.counts[i + 1] += len;
    }
}

// ---------------------------------------------------------------------------------------
// Our flows, from flows.parquet or from the flow table run in the test
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct OurFlow {
    protocol: i32,
    client: Ep,
    server: Ep,
    has_ports: bool,
    up: (i64, i64),
    down: (i64, i64),
    first_us: i64,
    last_us: i64,
}

fn read_flows(path: &Path) -> Vec<OurFlow> {
    let mut out = Vec::new();
    for b in batches(path) {
        let proto = col::<Int32Array>(&b, "protocol");
        let ca = col::<StringArray>(&b, "client_addr");
        let cp = col::<Int32Array>(&b, "client_port");
        let sa = col::<StringArray>(&b, "server_addr");
        let sp = col::<Int32Array>(&b, "server_port");
        let pu = col::<Int64Array>(&b, "packets_up");
        let pd = col::<Int64Array>(&b, "packets_down");
        let bu = col::<Int64Array>(&b, "bytes_up");
        let bd = col::<Int64Array>(&b, "bytes_down");
        let first = col::<TimestampMicrosecondArray>(&b, "first_ts");
        let last = col::<TimestampMicrosecondArray>(&b, "last_ts");
        for i in 0..b.num_rows() {
            let port = |a: &Int32Array| if a.is_null(i) { 0 } else { a.value(i) as u16 };
            out.push(OurFlow {
                protocol: proto.value(i),
                client: (ca.value(i).parse().expect("address"), port(cp)),
                server: (sa.value(i).parse().expect("address"), port(sp)),
                has_ports: !cp.is_null(i),
                up: (pu.value(i), bu.value(i)),
                down: (pd.value(i), bd.value(i)),
                first_us: first.value(i),
                last_us: last.value(i),
            });
        }
    }
    out
}

/// Runs `streamscope analyze` on `path` and returns the run manifest and the flows.
fn analyze(path: &Path, out: &Path) -> (Value, Vec<OurFlow>) {
    let manifest = support::analyze(path, out, &[]);
    (manifest, read_flows(&out.join("flows.parquet")))
}

/// Runs the pipeline library's loop with a flow table configured by `cfg` (the binary's
/// defaults but for it) and returns its flows: the way to run a deliberately broken
/// table.
fn table_flows(path: &Path, cfg: FlowConfig) -> Vec<OurFlow> {
    struct Sink(Vec<OurFlow>);
    impl FlowSink<()> for Sink {
        fn out(&mut self) -> &mut () {
            // A zero-sized box: no allocation.
            Box::leak(Box::new(()))
        }

        fn bin(&mut self, _: &streamscope_flow::BinRecord) {}
        fn flow(&mut self, f: &FlowRecord, _: Option<&()>) {
            let ep = |e: streamscope_flow::Endpoint| (e.addr, if f.has_ports { e.port } else { 0 });
            self.0.push(OurFlow {
                protocol: i32::from(f.protocol),
                client: ep(f.client),
                server: ep(f.server),
                has_ports: f.has_ports,
                up: (f.packets[0] as i64, f.bytes[0] as i64),
                down: (f.packets[1] as i64, f.bytes[1] as i64),
                first_us: f.first_ns.div_euclid(1000),
                last_us: f.last_ns.div_euclid(1000),
            });
        }
    }
    let mut sink = Sink(Vec::new());
    let mut table: FlowTable = FlowTable::new(cfg);
    let captures = vec![Capture::open(path).expect("corpus file opens")];
    streamscope_pipeline::run(
        captures,
        &mut table,
        &mut sink,
        &streamscope_pipeline::Silent,
        |_| true,
        streamscope_pipeline::Options::default(),
    );
    sink.0
}

// ---------------------------------------------------------------------------------------
// The capture, scanned
// ---------------------------------------------------------------------------------------

/// A frame of a TCP/UDP conversation, as the scan saw it.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Position in the file (tshark's frame number less one).
    index: usize,
    ts_ns: i64,
    len: i64,
    lo_to_hi: bool,
    /// Outer and inner VLAN ids (part of our flow key, not of tshark's).
    vlan: [Option<u16>; 2],
    /// TCP: (SYN without ACK, FIN, RST, sequence number).
    tcp: Option<(bool, bool, bool, u32)>,
    /// Source endpoint, for the signalled-split model.
    src: Ep,
}

/// Media addresses announced by signalling: (frame index, endpoint).
type Announcement = (usize, Ep);

#[derive(Default)]
struct Scan {
    /// Frames tshark gives each conversation.
    theirs: BTreeMap<ConvKey, Vec<Frame>>,
    /// Frames our flow definition counts to each conversation.
    ours: BTreeMap<ConvKey, Vec<Frame>>,
    /// Frames our flow definition counts to flows without ports (ICMP, IGMP, fragments
    /// without their first, transport headers that did not decode), keyed by protocol
    /// and the two addresses with port 0.
    portless: BTreeMap<ConvKey, Vec<Frame>>,
    /// (frame index, capture clock) of each time the flow table looks for idle flows:
    /// before an IP frame, once the clock has moved a second past the last look.
    sweeps: Vec<(usize, i64)>,
    announcements: Vec<Announcement>,
    /// Frames and bytes with an IP layer (every one belongs to one flow of ours).
    ip_frames: i64,
    ip_bytes: i64,
    rules: BTreeMap<&'static str, u64>,
}

fn quoted_tuple(quote: &[u8]) -> Option<(IpAddr, IpAddr, u8, u16, u16)> {
    let v = quote.first()? >> 4;
    let (src, dst, proto, l4) = match v {
        4 => {
            let ihl = usize::from(quote[0] & 0x0f) * 4;
            let src: [u8; 4] = quote.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = quote.get(16..20)?.try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                *quote.get(9)?,
                quote.get(ihl..)?,
            )
        }
        6 => {
            let src: [u8; 16] = quote.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = quote.get(24..40)?.try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                *quote.get(6)?,
                quote.get(40..)?,
            )
        }
        _ => return None,
    };
    let sp = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
    let dp = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    Some((src, dst, proto, sp, dp))
}

/// Media endpoints announced in SDP text (`c=` then `m=` lines; a media-level `c=`
/// overrides the session's).
fn sdp_announcements(payload: &[u8], ports: &mut Vec<Ep>) {
    // SIP and Megaco carry SDP as text; bytes that are not UTF-8 end no line of it.
    let text = String::from_utf8_lossy(payload);
    let mut session: Option<IpAddr> = None;
    let mut pending: Vec<u16> = Vec::new();
    let mut media_addr: Option<IpAddr> = None;
    let flush = |pending: &mut Vec<u16>, addr: Option<IpAddr>, ports: &mut Vec<Ep>| {
        if let Some(a) = addr {
            for p in pending.drain(..) {
                ports.push((a, p));
            }
        }
        pending.clear();
    };
    for line in text.split(['\r', '\n', '{', '}']) {
        let line = line.trim();
        if let Some(rest) = line
            .strip_prefix("c=IN IP4 ")
            .or(line.strip_prefix("c=IN IP6 "))
        {
            let addr = rest.split(['/', ' ']).next().and_then(|a| a.parse().ok());
            if pending.is_empty() && media_addr.is_none() {
                session = addr;
            } else {
                media_addr = addr;
            }
        } else if let Some(rest) = line.strip_prefix("m=") {
            flush(&mut pending, media_addr.or(session), ports);
            media_addr = None;
            if let Some(port) = rest.split(' ').nth(1).and_then(|p| p.parse::<u16>().ok()) {
                if port != 0 {
                    pending.push(port);
                }
            }
        } else if line.starts_with("v=") {
            flush(&mut pending, media_addr.or(session), ports);
            session = None;
            media_addr = None;
        }
    }
    flush(&mut pending, media_addr.or(session), ports);
}

/// Media endpoints in Skinny (SCCP) messages over TCP: OpenReceiveChannelAck (0x22) and
/// StartMediaTransmission (0x8a) carry an IPv4 address and a port, little-endian; from
/// header version 17 on, after a 4-byte IPv4-or-IPv6 field, in a 16-byte address field.
fn skinny_announcements(payload: &[u8], ports: &mut Vec<Ep>) {
    let mut rest = payload;
    while rest.len() >= 12 {
        let word = |b: &[u8], at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
        };
        let len = word(rest, 0).unwrap_or(0) as usize;
        let version = word(rest, 4).unwrap_or(0);
        let id = word(rest, 8).unwrap_or(0);
        let Some(msg) = rest.get(12..8 + len.max(4)) else {
            break;
        };
        // (offset of the address, offset of the port) in the message data.
        let at = match (id, version >= 17) {
            (0x22, false) => Some((4, 8)),
            (0x8a, false) => Some((8, 12)),
            (0x22, true) if word(msg, 4) == Some(0) => Some((8, 24)),
            (0x8a, true) if word(msg, 8) == Some(0) => Some((12, 28)),
            _ => None,
        };
        if let Some((a, p)) = at {
            if let (Some(addr), Some(port)) = (msg.get(a..a + 4), word(msg, p)) {
                if let Ok(port) = u16::try_from(port) {
                    ports.push((IpAddr::from([addr[0], addr[1], addr[2], addr[3]]), port));
                }
            }
        }
        rest = &rest[8 + len.max(4)..];
    }
}

/// (source, destination, protocol, IP id): which datagram a fragment belongs to.
type DatagramKey = (IpAddr, IpAddr, u8, u32);

/// A fragment, as both models need it.
#[derive(Clone, Copy)]
struct FragmentFrame {
    index: usize,
    ts_ns: i64,
    len: i64,
    vlan: [Option<u16>; 2],
    /// A first fragment that was not wholly captured: tshark dissects it on its own.
    cut_first: bool,
    /// Its own transport ports (first fragments) or those our table gives it.
    ours: Option<(u16, u16)>,
}

fn scan(path: &Path) -> Scan {
    /// A fragmented datagram, as both models follow it.
    struct Datagram {
        /// (frame index, ts, length, VLAN ids, the ports our table gives it) of every
        /// fragment.
        frames: Vec<FragmentFrame>,
        /// The first 4 bytes of the reassembled transport header, from the fragments.
        head: [Option<u8>; 4],
        /// Byte ranges of wholly captured fragments (tshark reassembles only those).
        ranges: Vec<(u32, u32)>,
        total: Option<u32>,
        /// Index of the frame completing the datagram for tshark.
        completed_by: Option<usize>,
        /// TCP facts of the first fragment.
        tcp: Option<(bool, bool, bool, u32)>,
    }
    let mut s = Scan::default();
    let mut datagrams: BTreeMap<DatagramKey, Vec<Datagram>> = BTreeMap::new();
    // (src, dst, proto, id) → (first fragment's time, ports), as our table remembers.
    let mut remembered: HashMap<DatagramKey, (i64, u16, u16)> = HashMap::new();
    let mut next_sweep = i64::MIN;
    let mut clock = i64::MIN;
    let mut cap = Capture::open(path).expect("corpus file opens");
    let mut index = 0usize;
    let mut announced = Vec::new();
    let mut sdp = Vec::new();
    while let Ok(Some(rec)) = cap.next_record() {
        let i = index;
        index += 1;
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        let Some(ip) = p.ip else { continue };
        let len = i64::from(rec.orig_len);
        let ts = rec.ts_ns;
        s.ip_frames += 1;
        s.ip_bytes += len;
        clock = clock.max(ts);
        if clock >= next_sweep {
            s.sweeps.push((i, clock));
            next_sweep = clock + SWEEP_NS;
        }
        let vlan = [
            (p.vlan_count > 0).then_some(p.vlan[0]),
            (p.vlan_count > 1).then_some(p.vlan[1]),
        ];
        let tcp = match p.transport {
            Transport::Tcp(t) => Some((
                t.flags & 0x12 == 0x02,
                t.flags & 0x01 != 0,
                t.flags & 0x04 != 0,
                t.seq,
            )),
            _ => None,
        };
        let ports = match p.transport {
            Transport::Tcp(t) => Some((t.src_port, t.dst_port)),
            Transport::Udp { src_port, dst_port } => Some((src_port, dst_port)),
            _ => None,
        };
        // Signalling that announces media endpoints.
        if ports.is_some() {
            sdp.clear();
            sdp_announcements(p.payload, &mut sdp);
            if tcp.is_some() && ports.is_some_and(|(a, b)| a == 2000 || b == 2000) {
                skinny_announcements(p.payload, &mut sdp);
            }
            announced.extend(sdp.iter().map(|&ep| (i, ep)));
        }
        let frame = |src: Ep, key_lo_to_hi: bool| Frame {
            index: i,
            ts_ns: ts,
            len,
            lo_to_hi: key_lo_to_hi,
            vlan,
            tcp,
            src,
        };
        // ICMP errors quoting a TCP/UDP header.
        let quote = match p.transport {
            Transport::Icmpv4 {
                kind: 3 | 4 | 5 | 11 | 12,
                ..
            } => Some(p.payload),
            Transport::Icmpv6 { kind: 1..=4, .. } => Some(p.payload),
            _ => None,
        };
        if let Some((qs, qd, qp, sp, dp)) = quote.and_then(quoted_tuple) {
            if qp == 6 || qp == 17 {
                let (key, src_is_lo) = conv_key(i32::from(qp), (qs, sp), (qd, dp));
                // The ICMP frame travels towards the quoted packet's sender.
                s.theirs.entry(key).or_default().push(Frame {
                    tcp: None,
                    ..frame((qd, dp), !src_is_lo)
                });
                *s.rules.entry("icmp_quote").or_default() += 1;
            }
        }
        let dkey = |f: &streamscope_wire::Fragment| (ip.src, ip.dst, ip.protocol, f.id);
        match (ip.fragment, ports) {
            (None, Some((sp, dp))) => {
                let (key, src_is_lo) = conv_key(i32::from(ip.protocol), (ip.src, sp), (ip.dst, dp));
                let f = frame((ip.src, sp), src_is_lo);
                s.theirs.entry(key).or_default().push(f);
                s.ours.entry(key).or_default().push(f);
            }
            (None, None) => {
                let (key, src_is_lo) = conv_key(i32::from(ip.protocol), (ip.src, 0), (ip.dst, 0));
                s.portless.entry(key).or_default().push(Frame {
                    tcp: None,
                    ..frame((ip.src, 0), src_is_lo)
                });
            }
            (Some(f), _) => {
                let k = dkey(&f);
                let list = datagrams.entry(k).or_default();
                // Once a datagram is complete, fragments with the same id start another
                // (tshark reassembles them anew).
                let open = list
                    .last()
                    .is_some_and(|d| d.completed_by.is_none() && !d.frames.is_empty());
                if !open {
                    list.push(Datagram {
                        frames: Vec::new(),
                        head: [None; 4],
                        ranges: Vec::new(),
                        total: None,
                        completed_by: None,
                        tcp: None,
                    });
                }
                let d = list.last_mut().unwrap();
                if f.offset == 0 {
                    if let Some((sp, dp)) = ports {
                        d.tcp = tcp;
                        remembered.insert(k, (ts, sp, dp));
                    }
                    // The datagram's first bytes, for tshark's reading of its ports
                    // (IPv4 fragment offsets are multiples of 8, so only a first
                    // fragment holds them; the first to arrive wins, as in tshark's
                    // reassembly).
                    if d.head == [None; 4] {
                        let head = match ports {
                            Some((sp, dp)) => [sp.to_be_bytes(), dp.to_be_bytes()].concat(),
                            None => ipv4_data(rec.data, &ip).iter().take(4).copied().collect(),
                        };
                        for (j, b) in head.into_iter().enumerate() {
                            d.head[j] = Some(b);
                        }
                    }
                }
                let whole = rec.data.len() >= rec.orig_len as usize
                    && !matches!(
                        p.error,
                        Some(DecodeError::Ipv4Truncated | DecodeError::Ipv6Truncated)
                    );
                if whole {
                    let start = u32::from(f.offset);
                    d.ranges.push((start, start + u32::from(f.len)));
                    if !f.more {
                        d.total = Some(start + u32::from(f.len));
                    }
                    if d.completed_by.is_none() && complete(&d.ranges, d.total) {
                        d.completed_by = Some(i);
                    }
                }
                // Our table: a non-first fragment takes the ports its first fragment
                // left within the last 30 s; else it counts to the host pair.
                let ours = if f.offset == 0 {
                    ports
                } else {
                    remembered
                        .get(&k)
                        .filter(|(t, _, _)| ts - t < FRAGMENT_TTL_NS)
                        .map(|&(_, a, b)| (a, b))
                };
                list.last_mut().unwrap().frames.push(FragmentFrame {
                    index: i,
                    ts_ns: ts,
                    len,
                    vlan,
                    cut_first: f.offset == 0 && !whole,
                    ours,
                });
                match ours {
                    Some((sp, dp)) => {
                        let (key, src_is_lo) =
                            conv_key(i32::from(ip.protocol), (ip.src, sp), (ip.dst, dp));
                        s.ours.entry(key).or_default().push(Frame {
                            tcp: if f.offset == 0 { tcp } else { None },
                            ..frame((ip.src, sp), src_is_lo)
                        });
                    }
                    None => {
                        let (key, src_is_lo) =
                            conv_key(i32::from(ip.protocol), (ip.src, 0), (ip.dst, 0));
                        s.portless.entry(key).or_default().push(Frame {
                            tcp: None,
                            ..frame((ip.src, 0), src_is_lo)
                        });
                    }
                }
            }
        }
    }
    s.announcements = announced;
    // tshark's labels for fragments: the completing frame carries the reassembled
    // datagram's conversation; a first fragment that was not wholly captured is
    // dissected on its own; every other fragment has no stream.
    for (k, list) in &datagrams {
        let (src, dst, proto, _) = *k;
        if proto != 6 && proto != 17 {
            continue;
        }
        for d in list {
            let reassembled = match d.head {
                [Some(a), Some(b), Some(c), Some(e)] => {
                    Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, e])))
                }
                _ => None,
            };
            for f in &d.frames {
                let (i, ts, len, vlan, ours) = (f.index, f.ts_ns, f.len, f.vlan, f.ours);
                let labelled = if d.completed_by == Some(i) {
                    reassembled
                } else if f.cut_first {
                    ours
                } else {
                    None
                };
                if let Some((sp, dp)) = labelled {
                    let (key, src_is_lo) = conv_key(i32::from(proto), (src, sp), (dst, dp));
                    s.theirs.entry(key).or_default().push(Frame {
                        index: i,
                        ts_ns: ts,
                        len,
                        lo_to_hi: src_is_lo,
                        vlan,
                        tcp: d.tcp,
                        src: (src, sp),
                    });
                }
                match (labelled, ours) {
                    (None, Some(_)) => *s.rules.entry("ip_fragments").or_default() += 1,
                    (Some(_), None) => *s.rules.entry("reassembled_ports").or_default() += 1,
                    (Some(a), Some(b)) if a != b => {
                        *s.rules.entry("ip_fragments").or_default() += 1
                    }
                    _ => {}
                }
            }
        }
    }
    for list in s.theirs.values_mut().chain(s.ours.values_mut()) {
        list.sort_by_key(|f| f.index);
    }
    s
}

/// The data after the IPv4 header of `ip` in a frame (found by its addresses).
fn ipv4_data<'a>(frame: &'a [u8], ip: &streamscope_wire::Ip) -> &'a [u8] {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (ip.src, ip.dst) else {
        return &[];
    };
    (0..frame.len().saturating_sub(20))
        .find(|&j| {
            frame[j] >> 4 == 4
                && frame[j + 12..j + 16] == src.octets()
                && frame[j + 16..j + 20] == dst.octets()
        })
        .and_then(|j| frame.get(j + usize::from(frame[j] & 0x0f) * 4..))
        .unwrap_or(&[])
}

fn complete(ranges: &[(u32, u32)], total: Option<u32>) -> bool {
    let Some(total) = total else { return false };
    let mut r = ranges.to_vec();
    r.sort_unstable();
    let mut covered = 0;
    for (a, b) in r {
        if a > covered {
            return false;
        }
        covered = covered.max(b);
    }
    covered >= total
}

// ---------------------------------------------------------------------------------------
// The two models
// ---------------------------------------------------------------------------------------

/// Our flows of one conversation: cut by idle time and by a SYN on a closed connection;
/// separate per VLAN tags.
///
/// Idle time is modelled as the table finds it: a flow is filed in a one-second slot of
/// a timer wheel at its deadline (last packet + timeout, 10 s once a TCP connection is
/// closed); a look for idle flows (`sweeps`) handles every slot of the seconds before its
/// clock's second, ends the flows whose deadline has passed and files the others again
/// at their deadline.
fn our_rows(
    key: &ConvKey,
    frames: &[Frame],
    sweeps: &[(usize, i64)],
    rules: &mut BTreeMap<&'static str, u64>,
) -> Vec<Row> {
    struct Open {
        row: Row,
        last_ns: i64,
        last_index: usize,
        /// The second of the wheel slot the flow is filed in.
        filed: i64,
        fin: [bool; 2],
        rst: bool,
    }
    let timeout = |o: &Open| match key.protocol {
        6 if o.rst || (o.fin[0] && o.fin[1]) => TCP_CLOSED_NS,
        6 => TCP_IDLE_NS,
        17 => UDP_IDLE_NS,
        _ => OTHER_IDLE_NS,
    };
    let mut open: BTreeMap<[Option<u16>; 2], Open> = BTreeMap::new();
    let mut done = Vec::new();
    for f in frames {
        if let Some(o) = open.get_mut(&f.vlan) {
            let from = sweeps.partition_point(|s| s.0 <= o.last_index);
            let to = sweeps.partition_point(|s| s.0 <= f.index);
            let mut idle = false;
            for &(_, clock) in &sweeps[from..to] {
                let now = clock.div_euclid(NS);
                if o.filed < now {
                    let deadline = o.last_ns + timeout(o);
                    if deadline <= clock {
                        idle = true;
                        break;
                    }
                    o.filed = deadline.div_euclid(NS).max(now);
                }
            }
            let closed = o.rst || o.fin[0] || o.fin[1];
            let new_syn = !idle && f.tcp.is_some_and(|t| t.0) && closed;
            if idle || new_syn {
                *rules
                    .entry(if idle { "idle_timeout" } else { "new_syn" })
                    .or_default() += 1;
                done.push(open.remove(&f.vlan).unwrap().row);
            }
        }
        let o = open.entry(f.vlan).or_insert_with(|| Open {
            row: Row {
                first_us: 0,
                last_us: 0,
                counts: [0; 4],
            },
            last_ns: f.ts_ns,
            last_index: f.index,
            filed: 0,
            fin: [false; 2],
            rst: false,
        });
        if o.row.counts == [0; 4] {
            o.filed = (f.ts_ns + timeout(o)).div_euclid(NS);
        }
        o.row.add(f.ts_ns, f.lo_to_hi, f.len);
        o.last_ns = o.last_ns.max(f.ts_ns);
        o.last_index = f.index;
        if let Some((_, fin, rst, _)) = f.tcp {
            o.rst |= rst;
            if fin {
                o.fin[usize::from(!f.lo_to_hi)] = true;
            }
        }
    }
    done.extend(open.into_values().map(|o| o.row));
    done.sort();
    done
}

/// tshark's streams of one conversation: a TCP SYN whose sequence number differs from
/// the first one of its direction in the current stream starts a new stream; a UDP
/// frame goes to the conversation of the latest announcement of its source endpoint,
/// else of its destination, else to the plain 5-tuple's.
fn their_rows(
    key: &ConvKey,
    frames: &[Frame],
    announcements: &[Announcement],
    rules: &mut BTreeMap<&'static str, u64>,
) -> Vec<Row> {
    let mut rows: BTreeMap<(usize, Option<Ep>), Row> = BTreeMap::new();
    if key.protocol == 6 {
        let mut stream = 0usize;
        let mut base: [Option<u32>; 2] = [None; 2];
        for f in frames {
            let dir = usize::from(!f.lo_to_hi);
            if let Some((syn, _, _, seq)) = f.tcp {
                if syn && base[dir].is_some_and(|b| b != seq) {
                    stream += 1;
                    base = [None; 2];
                    *rules.entry("tshark_new_syn").or_default() += 1;
                }
                base[dir].get_or_insert(seq);
            }
            rows.entry((stream, None))
                .or_insert(Row {
                    first_us: 0,
                    last_us: 0,
                    counts: [0; 4],
                })
                .add(f.ts_ns, f.lo_to_hi, f.len);
        }
    } else {
        let announced = |ep: Ep, index: usize| {
            announcements
                .iter()
                .filter(|(at, a)| *a == ep && *at < index)
                .map(|(at, _)| *at)
                .next_back()
        };
        for f in frames {
            let dst = if f.src == key.lo { key.hi } else { key.lo };
            let conv = announced(f.src, f.index)
                .map(|at| (at, Some(f.src)))
                .or_else(|| announced(dst, f.index).map(|at| (at, Some(dst))))
                .unwrap_or((usize::MAX, None));
            rows.entry(conv)
                .or_insert(Row {
                    first_us: 0,
                    last_us: 0,
                    counts: [0; 4],
                })
                .add(f.ts_ns, f.lo_to_hi, f.len);
        }
        if rows.len() > 1 {
            *rules.entry("signalled_split").or_default() += rows.len() as u64 - 1;
        }
    }
    let mut v: Vec<Row> = rows.into_values().collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------------------

fn epoch_us(s: &str) -> i64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let mut frac = frac.to_string();
    frac.truncate(6);
    while frac.len() < 6 {
        frac.push('0');
    }
    secs.parse::<i64>().expect("seconds") * 1_000_000 + frac.parse::<i64>().expect("fraction")
}

fn tshark_rows(facts: &Value) -> BTreeMap<ConvKey, Vec<Row>> {
    let mut theirs: BTreeMap<ConvKey, Vec<Row>> = BTreeMap::new();
    for (proto, table) in [(6, "tcp_conversations"), (17, "udp_conversations")] {
        for row in facts[table].as_array().into_iter().flatten() {
            let ep = |a: &str, p: &str| -> Ep {
                (
                    row[a].as_str().unwrap().parse().unwrap(),
                    row[p].as_u64().unwrap() as u16,
                )
            };
            let (key, a_is_lo) = conv_key(proto, ep("a_addr", "a_port"), ep("b_addr", "b_port"));
            let n = |k: &str| row[k].as_i64().unwrap();
            theirs.entry(key).or_default().push(Row {
                first_us: epoch_us(row["first_epoch"].as_str().unwrap()),
                last_us: epoch_us(row["last_epoch"].as_str().unwrap()),
                counts: oriented(
                    a_is_lo,
                    (n("a_to_b_packets"), n("a_to_b_bytes")),
                    (n("b_to_a_packets"), n("b_to_a_bytes")),
                ),
            });
        }
    }
    for rows in theirs.values_mut() {
        rows.sort();
    }
    theirs
}

/// Everything one file must satisfy; the problems found, and each rule's count.
struct Verdict {
    failures: Vec<String>,
    rules: BTreeMap<&'static str, u64>,
    exact: usize,
    our_flows: usize,
}

fn check_file(name: &str, facts: Option<&Value>, path: &Path, flows: &[OurFlow]) -> Verdict {
    let scan = scan(path);
    let mut rules = scan.rules.clone();
    let mut failures = Vec::new();

    // tshark's rows against tshark's model.
    let theirs = facts.map(tshark_rows);
    let mut model_theirs: BTreeMap<ConvKey, Vec<Row>> = BTreeMap::new();
    for (key, frames) in &scan.theirs {
        model_theirs.insert(
            *key,
            their_rows(key, frames, &scan.announcements, &mut rules),
        );
    }
    for key in theirs
        .iter()
        .flat_map(|t| t.keys())
        .chain(model_theirs.keys().filter(|_| theirs.is_some()))
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (t, m) = (
            theirs.as_ref().and_then(|t| t.get(key)),
            model_theirs.get(key),
        );
        if t != m {
            failures.push(format!(
                "{name}: {key:?}: tshark's rows {t:?}, tshark's rules on the capture give {m:?}"
            ));
        }
    }

    // Our flows against our model.
    let mut ours: BTreeMap<ConvKey, Vec<Row>> = BTreeMap::new();
    let mut portless: BTreeMap<ConvKey, Vec<Row>> = BTreeMap::new();
    let (mut packets, mut bytes) = (0i64, 0i64);
    for f in flows {
        packets += f.up.0 + f.down.0;
        bytes += f.up.1 + f.down.1;
        if f.has_ports {
            let (key, client_is_lo) = conv_key(f.protocol, f.client, f.server);
            ours.entry(key).or_default().push(Row {
                first_us: f.first_us,
                last_us: f.last_us,
                counts: oriented(client_is_lo, f.up, f.down),
            });
        } else {
            let (key, client_is_lo) = conv_key(f.protocol, (f.client.0, 0), (f.server.0, 0));
            portless.entry(key).or_default().push(Row {
                first_us: f.first_us,
                last_us: f.last_us,
                counts: oriented(client_is_lo, f.up, f.down),
            });
        }
    }
    if (packets, bytes) != (scan.ip_frames, scan.ip_bytes) {
        failures.push(format!(
            "{name}: our flows hold {packets} packets / {bytes} bytes, the capture's IP frames are {} / {}",
            scan.ip_frames, scan.ip_bytes
        ));
    }
    let mut model_ours: BTreeMap<ConvKey, Vec<Row>> = BTreeMap::new();
    for (key, frames) in &scan.ours {
        model_ours.insert(*key, our_rows(key, frames, &scan.sweeps, &mut rules));
    }
    for v in ours.values_mut() {
        v.sort();
    }
    let mut exact = 0;
    for key in ours
        .keys()
        .chain(model_ours.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let o = ours.get(key);
        let m = model_ours.get(key);
        if o.map(|v| v.as_slice()) != m.map(|v| v.as_slice()) {
            failures.push(format!(
                "{name}: {key:?}: our flows {o:?}, our flow definition on the capture gives {m:?}"
            ));
        } else if theirs.as_ref().and_then(|t| t.get(key)) == m {
            exact += m.map_or(0, |v| v.len());
        }
    }
    // Flows without ports: per protocol and host pair, cut by the idle timeout.
    for (key, frames) in &scan.portless {
        let rows = our_rows(key, frames, &scan.sweeps, &mut BTreeMap::new());
        let mut got = portless.remove(key).unwrap_or_default();
        got.sort();
        if got != rows {
            failures.push(format!(
                "{name}: {key:?} (no ports): our flows {got:?}, our flow definition on the capture gives {rows:?}"
            ));
        }
    }
    for (key, got) in portless {
        failures.push(format!(
            "{name}: {key:?} (no ports): our flows {got:?}, none in the capture"
        ));
    }
    Verdict {
        failures,
        rules,
        exact,
        our_flows: flows.len(),
    }
}

fn pinned(name: &str) -> BTreeMap<&'static str, u64> {
    PINNED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| r.iter().copied().collect())
        .unwrap_or_default()
}

#[test]
fn flows_agree_with_tshark_and_the_capture() {
    let Some(corpus) = streamscope_testkit::corpus(TEST, "flows against tshark's conversations")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let (mut exact, mut rows, mut ours) = (0, 0, 0);
    let mut table = String::new();
    for (name, facts) in corpus.files() {
        let path = corpus.path(name);
        let (manifest, flows) = analyze(&path, &tmp.path().join(name));
        let counts = &manifest["counts"];
        if counts["packets"] != facts["tshark_frames"] || counts["bytes"] != facts["sum_frame_len"]
        {
            failures.push(format!(
                "{name}: totals {} packets / {} bytes, tshark {} / {}",
                counts["packets"], counts["bytes"], facts["tshark_frames"], facts["sum_frame_len"]
            ));
        }
        let v = check_file(name, Some(facts), &path, &flows);
        failures.extend(v.failures);
        exact += v.exact;
        ours += v.our_flows;
        rows += tshark_rows(facts).values().map(Vec::len).sum::<usize>();
        let counted: BTreeMap<&str, u64> = v.rules.into_iter().filter(|(_, n)| *n > 0).collect();
        if !counted.is_empty() {
            table.push_str(&format!(
                "    ({name:?}, &{:?}),\n",
                counted.iter().collect::<Vec<_>>()
            ));
        }
        if counted != pinned(name) {
            failures.push(format!(
                "{name}: rule counts {counted:?}, pinned {:?}",
                pinned(name)
            ));
        }
    }
    streamscope_testkit::say(&format!(
        "{TEST}: {rows} tshark rows, {exact} equal to our flows as they are; {ours} flows of ours checked"
    ));
    assert!(
        failures.is_empty(),
        "{} differences:\n{}\nrule counts computed:\n{table}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// A capture of our own where every rule of ours fires, and the broken tables
// ---------------------------------------------------------------------------------------

/// Ethernet + IPv4 + `l4` (protocol `proto`), as one frame; `frag` is (offset in bytes,
/// more fragments).
fn ipv4_frame(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
    frag: (u16, bool),
    l4: &[u8],
) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + l4.len()) as u16;
    let flags = (u16::from(frag.1) << 13) | (frag.0 / 8);
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&flags.to_be_bytes());
    f.extend_from_slice(&[64, proto, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(l4);
    f
}

fn tcp_segment(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

fn udp_datagram(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// A classic pcap (µs, Ethernet) of `(seconds, frame)`.
fn pcap(frames: &[(f64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65535, 1] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for (t, f) in frames {
        let us = (t * 1e6).round() as u64 + 1_700_000_000_000_000;
        out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// A TCP connection closed with FIN and reopened on the same ports with a new SYN; a UDP
/// conversation silent for longer than the idle timeout; a UDP datagram in two IPv4
/// fragments, the second of which only its IP id ties to its ports.
fn rules_capture() -> Vec<u8> {
    use streamscope_flow::tcp_flags::{ACK, FIN, RST, SYN};
    let (c, s, r) = ([10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 53]);
    let up = |seq, flags, p: &[u8]| {
        ipv4_frame(
            c,
            s,
            6,
            1,
            (0, false),
            &tcp_segment(40000, 80, seq, flags, p),
        )
    };
    let down = |seq, flags, p: &[u8]| {
        ipv4_frame(
            s,
            c,
            6,
            2,
            (0, false),
            &tcp_segment(80, 40000, seq, flags, p),
        )
    };
    let udp = |from: [u8; 4], to: [u8; 4], sp, dp| {
        ipv4_frame(from, to, 17, 3, (0, false), &udp_datagram(sp, dp, b"ping"))
    };
    let dgram = udp_datagram(5353, 53, &[7u8; 24]);
    let frames = [
        (0.0, up(1000, SYN, b"")),
        (0.01, down(9000, SYN | ACK, b"")),
        (0.02, up(1001, ACK, b"")),
        (0.03, up(1001, ACK, b"GET / HTTP/1.0\r\n\r\n")),
        (0.05, down(9001, ACK | FIN, b"HTTP/1.0 200 OK\r\n\r\n")),
        (0.06, up(1019, ACK | FIN, b"")),
        (0.07, down(9021, ACK, b"")),
        (2.0, up(5000, SYN, b"")),
        (2.01, down(7000, SYN | ACK, b"")),
        (2.02, up(5001, RST, b"")),
        (3.0, udp(c, r, 6000, 53)),
        (3.1, udp(r, c, 53, 6000)),
        (4.0, ipv4_frame(c, r, 17, 77, (0, true), &dgram[..16])),
        (4.001, ipv4_frame(c, r, 17, 77, (16, false), &dgram[16..])),
        (200.0, udp(c, r, 6000, 53)),
        (201.0, udp(r, c, 53, 6000)),
    ];
    pcap(&frames)
}

/// tshark's conversation rows for `path`, as oracle.json gives them (one per
/// `tcp.stream` / `udp.stream`), from its per-frame fields.
fn tshark_conversations(tshark: &Path, path: &Path) -> Value {
    let out = Command::new(tshark)
        .args(["-n", "-r"])
        .arg(path)
        .args(["-T", "fields", "-E", "separator=/t"])
        .args([
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
        ])
        .args(["-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.dstport"])
        .args(["-e", "udp.stream", "-e", "udp.srcport", "-e", "udp.dstport"])
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark failed on {}", path.display());
    // (table, stream) → (a, b, [a→b packets, bytes, b→a packets, bytes], first, last)
    type Conv = (String, String, String, String, [i64; 4], String, String);
    let mut convs: BTreeMap<(&str, u64), Conv> = BTreeMap::new();
    let text = String::from_utf8(out.stdout).expect("tshark prints text");
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        for (table, at) in [("tcp_conversations", 4), ("udp_conversations", 7)] {
            let Ok(stream) = f[at].parse::<u64>() else {
                continue;
            };
            let len: i64 = f[1].parse().expect("frame.len");
            let c = convs.entry((table, stream)).or_insert_with(|| {
                let (a, b) = (f[2].to_owned(), f[3].to_owned());
                let (pa, pb) = (f[at + 1].to_owned(), f[at + 2].to_owned());
                (a, pa, b, pb, [0; 4], f[0].to_owned(), String::new())
            });
            let forward = (c.0.as_str(), c.1.as_str()) == (f[2], f[at + 1]);
            let i = if forward { 0 } else { 2 };
            c.4[i] += 1;
            c.4[i + 1] += len;
            c.6 = f[0].to_owned();
        }
    }
    let mut facts = serde_json::json!({"tcp_conversations": [], "udp_conversations": []});
    for ((table, _), (a, pa, b, pb, n, first, last)) in convs {
        facts[table]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "a_addr": a, "a_port": pa.parse::<u64>().unwrap(),
                "b_addr": b, "b_port": pb.parse::<u64>().unwrap(),
                "a_to_b_packets": n[0], "a_to_b_bytes": n[1],
                "b_to_a_packets": n[2], "b_to_a_bytes": n[3],
                "first_epoch": first, "last_epoch": last,
            }));
    }
    facts
}

/// The rule counts of the capture of our own.
const RULES_CAPTURE: &[(&str, u64)] = &[
    ("idle_timeout", 1),
    ("ip_fragments", 1),
    ("new_syn", 1),
    ("tshark_new_syn", 1),
];

#[test]
fn every_rule_of_ours_fires_on_a_capture_of_our_own() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("rules.pcap");
    std::fs::write(&path, rules_capture()).unwrap();
    let (_, flows) = analyze(&path, &tmp.path().join("out"));
    // tshark's streams of this capture, where tshark is installed: the corpus has no
    // TCP port reuse, so this is where tshark's new-SYN rule is checked.
    let facts = streamscope_testkit::tshark(
        "oracle::every_rule_of_ours_fires_on_a_capture_of_our_own",
        "tshark's streams of the capture of our own",
    )
    .map(|t| tshark_conversations(&t.exe, &path));
    let v = check_file("rules.pcap", facts.as_ref(), &path, &flows);
    assert!(v.failures.is_empty(), "{}", v.failures.join("\n"));
    let counted: BTreeMap<&str, u64> = v.rules.into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(
        counted,
        RULES_CAPTURE.iter().copied().collect(),
        "rule counts"
    );
}

/// The flow table with each of our rules switched off in turn must fail the comparison
/// on the corpus files and the capture of our own where that rule fires; the table as it
/// is must pass it everywhere.
#[test]
fn a_broken_flow_table_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let own = tmp.path().join("rules.pcap");
    std::fs::write(&own, rules_capture()).unwrap();
    let corpus = streamscope_testkit::corpus(
        "oracle::a_broken_flow_table_is_caught",
        "broken tables on the corpus (the capture of our own is still checked)",
    );
    let mut files: Vec<(String, Option<&Value>, std::path::PathBuf)> =
        vec![("rules.pcap".into(), None, own)];
    if let Some(c) = corpus {
        for (name, facts) in c.files() {
            files.push((name.to_owned(), Some(facts), c.path(name)));
        }
    }
    let long = 1_000_000 * NS;
    // Each fault, and the files it must be caught on (the corpus files where the rule
    // fires, as pinned in PINNED, and the flows without ports it also cuts).
    let broken: [(&str, FlowConfig, &[&str]); 4] = [
        ("none", FlowConfig::default(), &[][..]),
        (
            "new_syn",
            {
                let mut c = FlowConfig::default();
                c.faults.no_syn_split = true;
                c
            },
            &["rules.pcap"],
        ),
        (
            "idle_timeout",
            FlowConfig {
                tcp_idle_ns: long,
                tcp_closed_ns: long,
                udp_idle_ns: long,
                other_idle_ns: long,
                ..FlowConfig::default()
            },
            &[
                "rules.pcap",
                "ndpi__sip.pcap",
                "suricata__wireshark-wiki-IGMP-dataset.pcap",
                "tcpdump__igmpv3-queries.pcap",
            ],
        ),
        (
            "ip_fragments",
            {
                let mut c = FlowConfig::default();
                c.faults.no_fragment_matching = true;
                c
            },
            &[
                "rules.pcap",
                "ndpi__dns_fragmented.pcap",
                "zeek__ipv6-fragmented-dns.pcap",
            ],
        ),
    ];
    for (fault, cfg, expected) in broken {
        let mut caught = Vec::new();
        for (name, facts, path) in &files {
            let flows = table_flows(path, cfg.clone());
            let v = check_file(name, *facts, path, &flows);
            if !v.failures.is_empty() {
                caught.push(name.as_str());
            }
        }
        streamscope_testkit::say(&format!("{TEST}: fault {fault}: caught on {caught:?}"));
        let mut expected: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|f| *f == "rules.pcap" || corpus.is_some())
            .collect();
        expected.sort_unstable();
        caught.sort_unstable();
        assert_eq!(
            caught, expected,
            "fault {fault}: the files where the comparison fails"
        );
    }
}
