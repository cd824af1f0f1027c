//! Conformance of the RTP analyser with the real-traffic corpus: every capture is read with
//! `streamscope_capture` and `streamscope_wire::dissect`, each unfragmented UDP datagram
//! goes to an [`RtpFlow`] per 5-tuple (the direction by the first sender), and the streams
//! are compared with tshark's `rtp,streams` statistics in `oracle.json` (files marked RTP
//! in MANIFEST.md) and its RTP frame count: every tshark stream must be found with equal
//! packets and lost, max delta within 0.01 ms, mean and max jitter within 1 % or 0.01 ms;
//! no stream may be found that tshark does not list; files without RTP give no stream.
//!
//! Detection here is by content only; tshark finds RTP by heuristics or by the SIP, SDP
//! and Skinny signalling it reads. Two differences follow, each found from the capture by
//! a rule that does not use the code under test ([`sdp`], a few lines from RFC 4566), and
//! pinned per file:
//!
//! * **T.38 by SDP** ([`PINNED_T38`]): an SDP media description
//!   (`m=image PORT udptl t38`) makes tshark dissect the UDP datagrams sent to that
//!   address and port as T.38 from that frame on, until a later SDP sets the port up as
//!   RTP again (in one SDP the last description of a port wins: tshark sets up the
//!   conversations in order). Datagrams that still carry RTP headers are then not RTP for
//!   tshark. They are not fed to the analyser here; the pin counts those with a version-2
//!   first byte.
//! * **Dynamic payload type without rtpmap** ([`PINNED_NO_RATE`]): tshark takes a dynamic
//!   type's clock rate from the SDP `a=rtpmap` it has seen (and gives telephone-event
//!   none); without one its rate is 0 and it reports jitter 0. A stream all of whose
//!   payload types are dynamic and appear in no `a=rtpmap:PT` of the capture must show
//!   0.000 mean and max jitter in the oracle; its jitter is not compared (the analyser
//!   estimates the rate, or reports none).
//! * **Payload types without a clock rate inside a stream** ([`PINNED_MIXED`]): a stream
//!   that mixes static payload types with dynamic ones (for which tshark has no rate: no
//!   rtpmap, or telephone-event). tshark 4.0's `rtppacket_analyse` then mixes two
//!   references: the arrival time of the last packet "in time sequence" (its timestamp
//!   not behind the stream's *first*), whatever its type, against the timestamp of the
//!   last packet *with a clock rate*; and a packet whose timestamp is behind its
//!   predecessor's but not the first's still counts as in sequence. Later Wireshark (and
//!   this analyser) take both from the previous in-sequence packet, judged against that
//!   packet. For these streams [`model`], written here from that description, must give
//!   tshark's mean and max jitter in its 4.0 form and ours in the other; packets and
//!   loss are compared as usual.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_media::rtp::{Dir, RtpConfig, RtpFlow, RtpStats, RtpStreamSummary};
use streamscope_wire::{dissect, Transport};

/// RTP-headed datagrams tshark dissects as T.38 (SDP), per file.
const PINNED_T38: &[(&str, u64)] = &[
    // The second re-INVITE's SDP (frames 1392–1435) moves 10.23.1.52:16756 to
    // image/udptl; the 27 PCMA packets sent there afterwards (SSRC 0x0EAF0EAF, sequence
    // numbers 0x0734–0x074E) are T.38 for tshark.
    ("ndpi__FAX-Call-t38-CA-TDM-SIP-FB-1.pcap", 27),
];

/// Streams whose payload types are all dynamic with no rtpmap in the capture, per file.
const PINNED_NO_RATE: &[(&str, usize)] = &[
    // PT 111 and 120 (Opus-like), 101 (telephone events); no SDP in the capture.
    ("ndpi__rtp.pcapng", 4),
];

/// Streams mixing static and dynamic payload types, per file.
const PINNED_MIXED: &[(&str, usize)] = &[
    // 0x17D90134: PCMA, CN and three PT 100 events (timestamp behind the previous
    // packet's); 0x0EAF0EAF: PCMA and one PT 102 telephone-event.
    ("ndpi__FAX-Call-t38-CA-TDM-SIP-FB-1.pcap", 2),
];

/// Wireshark's RTP jitter statistics over one stream's packets, in two forms (see the
/// module documentation): `v4_0` as tshark 4.0 computes them, else with one consistent
/// reference. Dynamic payload types have no clock rate here.
mod model {
    /// (arrival ms, RTP timestamp, payload type, marker).
    pub type Pkt = (f64, u32, u8, bool);

    /// (mean jitter, max jitter) in ms.
    pub fn jitter(pkts: &[Pkt], v4_0: bool) -> (f64, f64) {
        let rate = |pt: u8| match pt {
            0..=5 | 7..=9 | 12 | 13 | 15 | 18 | 19 => 8.0,
            6 => 16.0,
            14 | 25 | 26 | 28 | 31..=34 => 90.0,
            _ => 0.0, // units per ms; 0: none
        };
        let cn = |pt: u8| pt == 13 || pt == 19;
        let Some(&(t0, first_ts, pt0, _)) = pkts.first() else {
            return (0.0, 0.0);
        };
        let (mut time, mut ref_ts, mut prev_pt) = (t0, first_ts, pt0);
        let mut last_nominal = 0.0;
        let (mut j, mut mean, mut max) = (0.0f64, 0.0f64, 0.0f64);
        for (n, &(t, ts, pt, marker)) in pkts.iter().enumerate().skip(1) {
            let r = rate(pt);
            let in_seq = if v4_0 {
                ts.wrapping_sub(first_ts) < 0x8000_0000
            } else {
                ts.wrapping_sub(ref_ts) as i32 >= 0
            };
            if r > 0.0 {
                let expected = if v4_0 {
                    let nominal = f64::from(ts.wrapping_sub(first_ts)) / r;
                    let e = time + (nominal - last_nominal);
                    last_nominal = nominal;
                    e
                } else {
                    time + f64::from(ts.wrapping_sub(ref_ts) as i32) / r
                };
                j += ((t - expected).abs() - j) / 16.0;
            }
            let regular = !marker && !cn(pt) && !cn(prev_pt) && in_seq;
            if regular && r > 0.0 {
                max = max.max(j);
                mean = (mean * (n as f64 - 1.0) + j) / n as f64;
            }
            prev_pt = pt;
            if in_seq {
                time = t;
                ref_ts = ts;
            }
        }
        (mean, max)
    }
}

/// An independent reading of SDP (RFC 4566) bodies in UDP payloads: which transport each
/// media description sets up, and which payload types have an rtpmap.
mod sdp {
    use std::collections::BTreeSet;
    use std::net::IpAddr;

    /// (address, port, is T.38 over UDPTL) of each media description with a port, in
    /// order; and the payload types of its `a=rtpmap` lines.
    pub fn read(payload: &[u8]) -> (Vec<(IpAddr, u16, bool)>, BTreeSet<u8>) {
        let mut media = Vec::new();
        let mut rtpmaps = BTreeSet::new();
        let text = String::from_utf8_lossy(payload);
        if !text.contains("m=") {
            return (media, rtpmaps);
        }
        // Per session ("v=" starts one): the session address, then each description's
        // own address (a "c=" after its "m=").
        let mut session_addr: Option<IpAddr> = None;
        let mut pending: Vec<(u16, bool, Option<IpAddr>)> = Vec::new();
        let flush = |pending: &mut Vec<(u16, bool, Option<IpAddr>)>,
                     session: Option<IpAddr>,
                     media: &mut Vec<(IpAddr, u16, bool)>| {
            for (port, t38, addr) in pending.drain(..) {
                if let Some(a) = addr.or(session) {
                    media.push((a, port, t38));
                }
            }
        };
        for line in text.split(['\r', '\n']).map(str::trim) {
            if line.starts_with("v=") {
                flush(&mut pending, session_addr, &mut media);
                session_addr = None;
            } else if let Some(m) = line.strip_prefix("m=") {
                let mut f = m.split_whitespace();
                let (_, port, proto) = (f.next(), f.next(), f.next().unwrap_or(""));
                if let Some(port) = port.and_then(|p| p.parse::<u16>().ok()) {
                    if port != 0 {
                        pending.push((port, proto.eq_ignore_ascii_case("udptl"), None));
                        continue;
                    }
                }
                // A disabled or templated description: a placeholder the next "c="
                // does not belong to.
                pending.push((0, false, None));
            } else if let Some(c) = line.strip_prefix("c=") {
                let addr = c.split_whitespace().nth(2).and_then(|a| a.parse().ok());
                match pending.last_mut() {
                    Some(last) => last.2 = addr,
                    None => session_addr = addr,
                }
            } else if let Some(a) = line.strip_prefix("a=rtpmap:") {
                if let Some(pt) = a.split_whitespace().next().and_then(|p| p.parse().ok()) {
                    rtpmaps.insert(pt);
                }
            }
        }
        flush(&mut pending, session_addr, &mut media);
        media.retain(|&(_, port, _)| port != 0);
        (media, rtpmaps)
    }
}

type Endpoint = (IpAddr, u16);

struct Flow {
    first_src: Endpoint,
    first_dst: Endpoint,
    rtp: RtpFlow,
}

#[derive(Default)]
struct Tally {
    /// (src, dst, ssrc) → our stream.
    streams: BTreeMap<(String, String, String), RtpStreamSummary>,
    stats: RtpStats,
    t38_excluded: u64,
    rtpmaps: BTreeSet<u8>,
    /// (src, dst, ssrc) → the RTP-looking datagrams fed, read here (for [`model`]).
    packets: HashMap<(String, String, String), Vec<model::Pkt>>,
}

fn endpoint(e: Endpoint) -> String {
    format!("{}:{}", e.0, e.1)
}

fn tally(path: &Path) -> Tally {
    let mut cap = Capture::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut t = Tally::default();
    let mut flows: HashMap<(Endpoint, Endpoint), Flow> = HashMap::new();
    let mut order = Vec::new();
    // (address, port) → T.38 by the latest SDP describing it.
    let mut sdp_t38: HashMap<Endpoint, bool> = HashMap::new();
    let mut last_ns = 0;
    while let Ok(Some(rec)) = cap.next_record() {
        last_ns = rec.ts_ns;
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        let (Some(ip), Transport::Udp { src_port, dst_port }) = (p.ip, p.transport) else {
            continue;
        };
        if ip.fragment.is_some() {
            continue;
        }
        let (media, rtpmaps) = sdp::read(p.payload);
        for (addr, port, t38) in media {
            sdp_t38.insert((addr, port), t38);
        }
        t.rtpmaps.extend(rtpmaps);
        let src = (ip.src, src_port);
        let dst = (ip.dst, dst_port);
        if sdp_t38.get(&dst).copied().unwrap_or(false) {
            if p.payload.first().is_some_and(|b| b >> 6 == 2) {
                t.t38_excluded += 1;
            }
            continue;
        }
        if let (Some(&b0), Some(&b1), Some(ts), Some(ssrc)) = (
            p.payload.first(),
            p.payload.get(1),
            p.payload.get(4..8),
            p.payload.get(8..12),
        ) {
            if b0 >> 6 == 2 && !(192..=223).contains(&b1) {
                let ssrc = u32::from_be_bytes([ssrc[0], ssrc[1], ssrc[2], ssrc[3]]);
                let ts = u32::from_be_bytes([ts[0], ts[1], ts[2], ts[3]]);
                t.packets
                    .entry((endpoint(src), endpoint(dst), format!("0x{ssrc:08X}")))
                    .or_default()
                    .push((rec.ts_ns as f64 / 1e6, ts, b1 & 0x7f, b1 & 0x80 != 0));
            }
        }
        let key = if src <= dst { (src, dst) } else { (dst, src) };
        let flow = flows.entry(key).or_insert_with(|| {
            order.push(key);
            Flow {
                first_src: src,
                first_dst: dst,
                rtp: RtpFlow::new(RtpConfig::default()),
            }
        });
        let dir = if src == flow.first_src {
            Dir::Up
        } else {
            Dir::Down
        };
        flow.rtp.on_datagram(dir, rec.ts_ns, p.payload);
    }
    for key in &order {
        let flow = flows.get_mut(key).expect("a flow");
        flow.rtp.finish(last_ns);
        t.stats.merge(flow.rtp.stats());
        for s in flow.rtp.streams() {
            let (src, dst) = match s.dir {
                Dir::Up => (flow.first_src, flow.first_dst),
                Dir::Down => (flow.first_dst, flow.first_src),
            };
            let k = (endpoint(src), endpoint(dst), format!("0x{:08X}", s.ssrc));
            t.streams.insert(k, s);
        }
    }
    t
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().expect("a number"),
        v => v.as_f64().expect("a number"),
    }
}

/// `a` within 1 % or 0.01 ms of tshark's `b` (printed to 0.001 ms).
fn near(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() <= 0.01_f64.max(0.01 * b.abs()))
}

#[test]
fn rtp_matches_oracle() {
    let Some(corpus) = streamscope_testkit::corpus(
        "media::rtp_matches_oracle",
        "RTP streams, loss and jitter against tshark's oracle",
    ) else {
        return;
    };
    let files = corpus.all_files();
    let pinned_t38: HashMap<&str, u64> = PINNED_T38.iter().copied().collect();
    let pinned_no_rate: HashMap<&str, usize> = PINNED_NO_RATE.iter().copied().collect();
    let pinned_mixed: HashMap<&str, usize> = PINNED_MIXED.iter().copied().collect();
    let mut failures = Vec::new();
    let mut total = RtpStats::default();
    let mut compared = 0;
    for (name, facts) in files {
        let t = tally(&corpus.path(name));
        total.merge(&t.stats);
        let mut fail = |what: String| failures.push(format!("{name}: {what}"));
        let t38 = pinned_t38.get(name).copied().unwrap_or(0);
        if t.t38_excluded != t38 {
            fail(format!(
                "RTP-headed datagrams to T.38 ports: found {}, pinned {t38}",
                t.t38_excluded
            ));
        }
        let ours_packets: u64 = t.streams.values().map(|s| s.packets).sum();
        let tshark_frames = facts["rtp_frames"].as_u64().unwrap_or(0);
        let oracle_streams = facts["rtp_streams"].as_array();
        if oracle_streams.is_none() {
            if !t.streams.is_empty() {
                fail(format!(
                    "streams found where tshark has none: {:?}",
                    t.streams.keys()
                ));
            }
            continue;
        }
        if ours_packets != tshark_frames {
            fail(format!(
                "RTP packets: ours {ours_packets}, tshark {tshark_frames}"
            ));
        }
        let mut no_rate = 0;
        let mut mixed = 0;
        let mut seen = BTreeSet::new();
        for o in oracle_streams.into_iter().flatten() {
            let key = (
                o["src"].as_str().expect("src").to_owned(),
                o["dst"].as_str().expect("dst").to_owned(),
                o["ssrc"]
                    .as_str()
                    .expect("ssrc")
                    .to_uppercase()
                    .replace("0X", "0x"),
            );
            seen.insert(key.clone());
            let Some(s) = t.streams.get(&key) else {
                fail(format!("stream {key:?} not found"));
                continue;
            };
            compared += 1;
            let packets = o["packets"].as_u64().expect("packets");
            let lost = o["lost"].as_i64().expect("lost");
            let (mean, max) = (num(&o["mean_jitter_ms"]), num(&o["max_jitter_ms"]));
            let max_delta = num(&o["max_delta_ms"]);
            let rule_no_rate = s
                .payload_types
                .iter()
                .all(|pt| pt >= 96 && !t.rtpmaps.contains(&pt));
            streamscope_testkit::say(&format!(
                "{name}: {key:?}: packets {} / tshark {packets}, lost {} / {lost}, \
                 max delta {:?} / {max_delta}, mean jitter {:?} / {mean}, max jitter {:?} / {max}, \
                 clock {:?} ({}), dup {}, reordered {}{}",
                s.packets,
                s.lost,
                s.max_delta_ms,
                s.mean_jitter_ms,
                s.max_jitter_ms,
                s.clock_rate,
                s.clock_rate_source.name(),
                s.duplicates,
                s.reordered,
                if rule_no_rate {
                    " [dynamic PT, no rtpmap]"
                } else {
                    ""
                },
            ));
            if s.packets != packets {
                fail(format!(
                    "{key:?}: packets ours {} tshark {packets}",
                    s.packets
                ));
            }
            if s.lost != lost {
                fail(format!("{key:?}: lost ours {} tshark {lost}", s.lost));
            }
            if !near(s.max_delta_ms, max_delta) {
                fail(format!(
                    "{key:?}: max delta ours {:?} tshark {max_delta}",
                    s.max_delta_ms
                ));
            }
            if rule_no_rate {
                no_rate += 1;
                if mean != 0.0 || max != 0.0 {
                    fail(format!(
                        "{key:?}: rule says tshark has no clock rate, yet jitter {mean}/{max}"
                    ));
                }
                continue;
            }
            let rule_mixed = s.payload_types.iter().any(|pt| pt >= 96)
                && s.payload_types.iter().any(|pt| pt < 96);
            if rule_mixed {
                mixed += 1;
                let pkts = t.packets.get(&key).map_or(&[][..], Vec::as_slice);
                let (m40, x40) = model::jitter(pkts, true);
                let (m, x) = model::jitter(pkts, false);
                streamscope_testkit::say(&format!(
                    "{name}: {key:?}: mixed payload types: model 4.0 {m40:.4}/{x40:.4} \
                     (tshark {mean}/{max}), model {m:.4}/{x:.4} (ours {:?}/{:?})",
                    s.mean_jitter_ms, s.max_jitter_ms
                ));
                if !near(Some(m40), mean) || !near(Some(x40), max) {
                    fail(format!(
                        "{key:?}: the 4.0 model gives {m40}/{x40}, tshark {mean}/{max}"
                    ));
                }
                if !near(s.mean_jitter_ms, m) || !near(s.max_jitter_ms, x) {
                    fail(format!(
                        "{key:?}: the model gives {m}/{x}, ours {:?}/{:?}",
                        s.mean_jitter_ms, s.max_jitter_ms
                    ));
                }
                continue;
            }
            if !near(s.mean_jitter_ms, mean) {
                fail(format!(
                    "{key:?}: mean jitter ours {:?} tshark {mean}",
                    s.mean_jitter_ms
                ));
            }
            if !near(s.max_jitter_ms, max) {
                fail(format!(
                    "{key:?}: max jitter ours {:?} tshark {max}",
                    s.max_jitter_ms
                ));
            }
        }
        let pin = pinned_mixed.get(name).copied().unwrap_or(0);
        if mixed != pin {
            fail(format!(
                "streams mixing static and dynamic types: found {mixed}, pinned {pin}"
            ));
        }
        let pin = pinned_no_rate.get(name).copied().unwrap_or(0);
        if no_rate != pin {
            fail(format!(
                "streams with a dynamic PT and no rtpmap: found {no_rate}, pinned {pin}"
            ));
        }
        for extra in t.streams.keys().filter(|k| !seen.contains(*k)) {
            fail(format!("stream {extra:?} found, not in tshark's list"));
        }
    }
    streamscope_testkit::say(&format!(
        "RTP over the corpus: {compared} streams compared; {total:?}"
    ));
    assert!(compared >= 15, "only {compared} streams compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
