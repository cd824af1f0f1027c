//! Conformance of the MPEG-TS analyser with the real-traffic corpus: the captures that
//! carry TS are read with `streamscope_capture` and `streamscope_wire::dissect`; each
//! UDP flow's payloads go to a [`TsAnalyzer`] (`on_datagram`), and each TCP direction's
//! payload, concatenated in sequence order, to `on_interleaved`. Packets per PID and
//! continuity errors are compared with tshark's facts in `oracle.json`
//! (`mp2t_ts_packets_per_pid`, `mp2t_cc_drop_frames`, `mp2t_cc_drop_field_occurrences`).
//!
//! tshark and TR 101 290 read a capture differently in two ways, each found here by a
//! reference reading written for this test from the standards and from Wireshark's
//! `packet-mp2t.c` (never from the analyser), and pinned per file ([`PINNED`]):
//!
//! * **Framing.** tshark's mp2t dissector cuts a UDP payload (after the RTP header, when
//!   told it is RTP) into 188-byte slots, whatever the packets' length, and reads a
//!   header from each whole slot, sync byte or not. For 204-byte packets
//!   (`tsduck__test-171.11.pcapng`) its PIDs and counters are those of misaligned
//!   slots: [`reference::tshark_slots`] reproduces its view exactly (the test checks
//!   that against the oracle), while the analyser reads the real packets, which
//!   [`reference::packets`] finds by their sync bytes.
//! * **Continuity.** tshark (`detect_cc_drops`) keeps the last counter per PID, skips
//!   the null PID, accepts a counter equal to the last one (any number of times, with
//!   or without payload), and flags any other counter but last + 1, whether or not the
//!   packet has payload or a discontinuity_indicator. TR 101 290 1.4 (ISO/IEC 13818-1
//!   section 2.4.3.3) accepts one repetition of a packet with payload, requires a packet
//!   without payload to repeat the counter, and accepts any counter after a
//!   discontinuity_indicator. [`reference::tshark_drops`] and [`reference::tr101290`]
//!   implement both on the real packets; the first must give tshark's numbers where
//!   tshark frames the packets right, the second the analyser's count, and the pinned
//!   difference is broken down by the rule that makes it.
//!
//! `tsduck__test-135.seqwrap.pcap` carries TS in RTSP interleaved frames over TCP,
//! which tshark does not dissect as TS (its oracle counts are 0): there the analyser's
//! per-PID counts are checked against the reference reading of the frames instead.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_media::ts::{TsAnalyzer, TsConfig, TsSummary};
use streamscope_wire::{dissect, Transport};

/// The files with MPEG-TS, and what is pinned for each.
const PINNED: &[(&str, Pin)] = &[
    ("ndpi__mpegts.pcap", Pin::same(0)),
    ("tsduck__test-162.pcap", Pin::same(0)),
    ("tsduck__test-176.pcapng", Pin::same(0)),
    (
        // 7 × 204-byte packets per datagram: tshark's PIDs and drops are those of
        // 188-byte slots. On the real packets, both rules find the same 0 errors.
        "tsduck__test-171.11.pcapng",
        Pin {
            misframed: true,
            ours_cc: 0,
            rules: Rules {
                tshark_only_af: 0,
                tshark_only_disc: 0,
                ours_only_dup: 0,
                ours_only_af: 0,
            },
        },
    ),
    // Not dissected as TS by tshark: PIDs checked against the reference reading.
    ("tsduck__test-135.seqwrap.pcap", Pin::same(0)),
];

/// Continuity errors that one rule finds and the other does not, by rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Rules {
    /// tshark drops on packets without payload that repeat the counter of the PID's
    /// last packet with payload (tshark compares with the last packet of any kind).
    tshark_only_af: u64,
    /// tshark drops at a discontinuity_indicator (accepted by TR 101 290).
    tshark_only_disc: u64,
    /// A second repetition of a packet with payload (tshark accepts any number).
    ours_only_dup: u64,
    /// A packet without payload that increments the counter (tshark accepts + 1).
    ours_only_af: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pin {
    /// tshark reads 188-byte slots of 204-byte packets.
    misframed: bool,
    /// Continuity_count_error of the analyser.
    ours_cc: u64,
    rules: Rules,
}

impl Pin {
    const fn same(ours_cc: u64) -> Pin {
        Pin {
            misframed: false,
            ours_cc,
            rules: Rules {
                tshark_only_af: 0,
                tshark_only_disc: 0,
                ours_only_dup: 0,
                ours_only_af: 0,
            },
        }
    }
}

/// Independent readings of TS (ISO/IEC 13818-1 section 2.4.3.2; RFC 3550 section 5.1;
/// RFC 2326 section 10.12) and of tshark's continuity rule.
mod reference {
    use std::collections::BTreeMap;

    /// The UDP payload after an RTP header (version 2: 12 bytes, 4 per CSRC, the
    /// extension), or the whole payload when its first byte is the sync byte.
    pub fn strip_rtp(p: &[u8]) -> &[u8] {
        if p.first() == Some(&0x47) || p.len() < 12 || p[0] >> 6 != 2 {
            return p;
        }
        let mut at = 12 + 4 * usize::from(p[0] & 0x0f);
        if p[0] & 0x10 != 0 && p.len() >= at + 4 {
            at += 4 + 4 * usize::from(u16::from_be_bytes([p[at + 2], p[at + 3]]));
        }
        p.get(at..).unwrap_or(&[])
    }

    /// tshark's view: every whole 188-byte slot.
    pub fn tshark_slots(p: &[u8]) -> impl Iterator<Item = &[u8]> {
        p.chunks_exact(188)
    }

    /// The real packets: 204-byte when every 204th byte is a sync byte and the length
    /// fits, else 188-byte; each packet's first 188 bytes.
    pub fn packets(p: &[u8]) -> impl Iterator<Item = &[u8]> {
        let stride = if p.len() % 204 == 0 && p.chunks(204).all(|c| c[0] == 0x47) {
            204
        } else {
            188
        };
        p.chunks_exact(stride).map(|c| &c[..188])
    }

    /// The data of RTSP interleaved frames (`$`, channel, 16-bit length).
    pub fn interleaved(stream: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(h) = stream.get(at..at + 4) {
            if h[0] != b'$' {
                at += 1;
                continue;
            }
            let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let Some(data) = stream.get(at + 4..at + 4 + len) else {
                break;
            };
            out.push(data);
            at += 4 + len;
        }
        out
    }

    pub fn pid(p: &[u8]) -> u16 {
        u16::from_be_bytes([p[1] & 0x1f, p[2]])
    }

    fn cc(p: &[u8]) -> u8 {
        p[3] & 0x0f
    }

    fn has_payload(p: &[u8]) -> bool {
        p[3] & 0x10 != 0
    }

    fn discontinuity(p: &[u8]) -> bool {
        p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x80 != 0
    }

    /// Wireshark's `detect_cc_drops`: (frames with a drop, drops). `frames` is a list of
    /// (frame number, slots).
    pub fn tshark_drops(frames: &[(u64, Vec<&[u8]>)]) -> (u64, u64) {
        let mut last: BTreeMap<u16, u8> = BTreeMap::new();
        let (mut frames_with, mut drops) = (0, 0);
        for (_, slots) in frames {
            let mut here = 0;
            for p in slots {
                let (pid, cc) = (pid(p), cc(p));
                let prev = last.insert(pid, cc);
                if pid == 0x1fff {
                    continue;
                }
                match prev {
                    Some(prev) if prev != cc && cc != (prev + 1) & 0x0f => here += 1,
                    _ => {}
                }
            }
            drops += here;
            frames_with += u64::from(here > 0);
        }
        (frames_with, drops)
    }

    /// TR 101 290 1.4 errors and, for the packets where tshark's rule says otherwise,
    /// which rule makes the difference.
    pub fn tr101290<'a>(packets: impl Iterator<Item = &'a [u8]>) -> (u64, super::Rules) {
        // Per PID: last counter of a packet with payload, repeated already.
        let mut state: BTreeMap<u16, (u8, bool)> = BTreeMap::new();
        // tshark's last counter per PID (any packet).
        let mut tshark_last: BTreeMap<u16, u8> = BTreeMap::new();
        let mut errors = 0;
        let mut r = super::Rules::default();
        for p in packets {
            let (pid, cc) = (pid(p), cc(p));
            let t_prev = tshark_last.insert(pid, cc);
            if pid == 0x1fff {
                continue;
            }
            let tshark_drop = matches!(t_prev, Some(prev) if prev != cc && cc != (prev + 1) & 0x0f);
            let ours = match state.get(&pid).copied() {
                None => {
                    state.insert(pid, (cc, false));
                    false
                }
                Some(_) if discontinuity(p) => {
                    state.insert(pid, (cc, false));
                    if tshark_drop {
                        r.tshark_only_disc += 1;
                    }
                    continue;
                }
                Some((last, _)) if !has_payload(p) => {
                    let err = cc != last;
                    if err && !tshark_drop {
                        r.ours_only_af += 1;
                    }
                    if !err && tshark_drop {
                        r.tshark_only_af += 1;
                    }
                    errors += u64::from(err);
                    continue;
                }
                Some((last, dup)) => {
                    if cc == last {
                        state.insert(pid, (cc, true));
                        if dup {
                            r.ours_only_dup += 1;
                        }
                        dup
                    } else {
                        state.insert(pid, (cc, false));
                        cc != (last + 1) & 0x0f
                    }
                }
            };
            errors += u64::from(ours);
        }
        (errors, r)
    }
}

type Key = (IpAddr, u16, IpAddr, u16);

/// What one capture gives.
#[derive(Default)]
struct Tally {
    ours_pids: BTreeMap<u16, u64>,
    ours: Vec<TsSummary>,
    /// Per flow (tshark keeps its continuity state per conversation): tshark's view
    /// (188-byte slots) per UDP frame, and the real packets in order.
    flows: Vec<Reference>,
}

#[derive(Default)]
struct Reference {
    tshark_view: Vec<(u64, Vec<Vec<u8>>)>,
    packets: Vec<Vec<u8>>,
}

fn tally(path: &Path) -> Tally {
    let mut cap = Capture::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut t = Tally::default();
    let mut udp: HashMap<Key, TsAnalyzer> = HashMap::new();
    let mut udp_order: Vec<Key> = Vec::new();
    let mut udp_ref: HashMap<Key, Reference> = HashMap::new();
    // TCP: per direction, (seq, payload) in capture order.
    let mut tcp: HashMap<Key, Vec<(u32, Vec<u8>, i64)>> = HashMap::new();
    let mut tcp_order: Vec<Key> = Vec::new();
    let mut frame = 0u64;
    while let Ok(Some(rec)) = cap.next_record() {
        frame += 1;
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        let Some(ip) = p.ip else {
            continue;
        };
        match p.transport {
            Transport::Udp { src_port, dst_port } => {
                let key = (ip.src, src_port, ip.dst, dst_port);
                let body = reference::strip_rtp(p.payload);
                if body.first() == Some(&0x47) {
                    let r = udp_ref.entry(key).or_default();
                    r.tshark_view.push((
                        frame,
                        reference::tshark_slots(body).map(<[u8]>::to_vec).collect(),
                    ));
                    r.packets
                        .extend(reference::packets(body).map(<[u8]>::to_vec));
                }
                if !udp.contains_key(&key) && streamscope_media::ts::detect(p.payload).is_none() {
                    continue;
                }
                let a = udp.entry(key).or_insert_with(|| {
                    udp_order.push(key);
                    TsAnalyzer::new(TsConfig::default())
                });
                a.on_datagram(rec.ts_ns, p.payload);
            }
            Transport::Tcp(h) => {
                if p.payload.is_empty() {
                    continue;
                }
                let key = (ip.src, h.src_port, ip.dst, h.dst_port);
                tcp.entry(key)
                    .or_insert_with(|| {
                        tcp_order.push(key);
                        Vec::new()
                    })
                    .push((h.seq, p.payload.to_vec(), rec.ts_ns));
            }
            _ => {}
        }
    }
    for key in &udp_order {
        let a = udp.get_mut(key).expect("a flow");
        a.finish(i64::MAX);
        for r in a.pids().filter(|r| r.packets > 0) {
            *t.ours_pids.entry(r.pid).or_default() += r.packets;
        }
        t.ours.push(a.summary());
        t.flows.push(udp_ref.remove(key).unwrap_or_default());
    }
    for key in &tcp_order {
        let segs = tcp.get_mut(key).expect("a direction");
        let stream = in_order(segs);
        let frames = reference::interleaved(&stream.bytes);
        if frames.is_empty() {
            continue;
        }
        let mut r = Reference::default();
        for f in &frames {
            r.packets
                .extend(reference::packets(reference::strip_rtp(f)).map(<[u8]>::to_vec));
        }
        t.flows.push(r);
        let mut a = TsAnalyzer::new(TsConfig::default());
        for (ts, chunk) in &stream.chunks {
            a.on_interleaved(*ts, &stream.bytes[chunk.0..chunk.1]);
        }
        a.finish(i64::MAX);
        for r in a.pids().filter(|r| r.packets > 0) {
            *t.ours_pids.entry(r.pid).or_default() += r.packets;
        }
        t.ours.push(a.summary());
    }
    t
}

/// A TCP direction's bytes in sequence order (sequence numbers relative to the first
/// segment's, so that a wrap of the 32-bit space keeps the order), retransmitted bytes
/// once; each segment's new bytes with its time.
struct Stream {
    bytes: Vec<u8>,
    chunks: Vec<(i64, (usize, usize))>,
}

fn in_order(segs: &mut [(u32, Vec<u8>, i64)]) -> Stream {
    let base = segs[0].0;
    segs.sort_by_key(|s| s.0.wrapping_sub(base));
    let mut bytes = Vec::new();
    let mut chunks = Vec::new();
    for (seq, data, ts) in segs.iter() {
        let rel = seq.wrapping_sub(base) as usize;
        let end = rel + data.len();
        if end <= bytes.len() || rel > bytes.len() {
            continue; // a retransmission, or after a hole (none in the corpus)
        }
        let start = bytes.len();
        bytes.extend_from_slice(&data[start - rel..]);
        chunks.push((*ts, (start, bytes.len())));
    }
    Stream { bytes, chunks }
}

fn oracle_pids(facts: &Value) -> BTreeMap<u16, u64> {
    facts["mp2t_ts_packets_per_pid"]
        .as_array()
        .expect("mp2t_ts_packets_per_pid")
        .iter()
        .map(|e| {
            let pid = e[0].as_str().expect("a PID");
            let pid = u16::from_str_radix(pid.trim_start_matches("0x"), 16).expect("hex");
            (pid, e[1].as_u64().expect("a count"))
        })
        .collect()
}

fn count_pids<'a>(packets: impl Iterator<Item = &'a [u8]>) -> BTreeMap<u16, u64> {
    let mut m = BTreeMap::new();
    for p in packets {
        *m.entry(reference::pid(p)).or_default() += 1;
    }
    m
}

#[test]
fn ts_matches_oracle() {
    let Some(corpus) = streamscope_testkit::corpus(
        "media::ts_matches_oracle",
        "MPEG-TS packets per PID and continuity errors against tshark's oracle",
    ) else {
        return;
    };
    let mut failures = Vec::new();
    for &(name, pin) in PINNED {
        let facts = corpus.facts(name);
        let t = tally(&corpus.path(name));
        let tshark_pids = oracle_pids(facts);
        let tshark_frames = facts["mp2t_cc_drop_frames"].as_u64().expect("frames");
        let tshark_drops = facts["mp2t_cc_drop_field_occurrences"]
            .as_u64()
            .expect("occurrences");
        let ours_cc: u64 = t
            .ours
            .iter()
            .map(|s| s.tr101290.continuity_count_error)
            .sum();
        let ours_packets: u64 = t.ours.iter().map(|s| s.packets).sum();

        // tshark's view of the UDP payloads, flow by flow, reproduces the oracle; the
        // real packets, and both continuity rules on them.
        let mut view_pids = BTreeMap::new();
        let mut view_drops = (0, 0);
        let mut real_pids = BTreeMap::new();
        let (mut real_tshark_drops, mut real_tr, mut rules) = (0, 0, Rules::default());
        let mut real_packets = 0;
        for f in &t.flows {
            let view: Vec<(u64, Vec<&[u8]>)> = f
                .tshark_view
                .iter()
                .map(|(n, s)| (*n, s.iter().map(Vec::as_slice).collect()))
                .collect();
            for (pid, n) in count_pids(view.iter().flat_map(|(_, s)| s.iter().copied())) {
                *view_pids.entry(pid).or_default() += n;
            }
            let d = reference::tshark_drops(&view);
            view_drops = (view_drops.0 + d.0, view_drops.1 + d.1);
            for (pid, n) in count_pids(f.packets.iter().map(Vec::as_slice)) {
                *real_pids.entry(pid).or_default() += n;
            }
            let frames: Vec<(u64, Vec<&[u8]>)> =
                f.packets.iter().map(|p| (0, vec![p.as_slice()])).collect();
            real_tshark_drops += reference::tshark_drops(&frames).1;
            let (e, r) = reference::tr101290(f.packets.iter().map(Vec::as_slice));
            real_tr += e;
            rules.tshark_only_af += r.tshark_only_af;
            rules.tshark_only_disc += r.tshark_only_disc;
            rules.ours_only_dup += r.ours_only_dup;
            rules.ours_only_af += r.ours_only_af;
            real_packets += f.packets.len() as u64;
        }

        streamscope_testkit::say(&format!(
            "{name}: {} streams, {ours_packets} packets, {} PIDs; tshark PIDs {} (view {}), \
             drops tshark {tshark_frames} frames / {tshark_drops} (view {view_drops:?}); on the \
             real packets: tshark rule {real_tshark_drops}, TR 101 290 {real_tr} ({rules:?}); \
             ours {ours_cc}; TR 101 290 {:?}",
            t.ours.len(),
            t.ours_pids.len(),
            tshark_pids.len(),
            view_pids.len(),
            t.ours.first().map(|s| s.tr101290),
        ));
        let mut check = |what: &str, ok: bool, detail: String| {
            if !ok {
                failures.push(format!("{name}: {what}: {detail}"));
            }
        };
        // The reference reading of tshark's view is tshark's.
        check(
            "tshark's view (188-byte slots) gives the oracle's PIDs",
            view_pids == tshark_pids,
            format!("view {view_pids:?} / oracle {tshark_pids:?}"),
        );
        check(
            "tshark's rule on its view gives the oracle's drops",
            view_drops == (tshark_frames, tshark_drops),
            format!("view {view_drops:?} / oracle ({tshark_frames}, {tshark_drops})"),
        );
        // The analyser reads the real packets.
        check(
            "packets per PID = the real packets'",
            t.ours_pids == real_pids,
            format!("ours {:?} / reference {real_pids:?}", t.ours_pids),
        );
        check(
            "packets per PID = tshark's unless misframed",
            pin.misframed || t.ours_pids == tshark_pids || tshark_pids.is_empty(),
            format!("ours {:?} / tshark {tshark_pids:?}", t.ours_pids),
        );
        check(
            "misframing pinned",
            pin.misframed == (t.ours_pids != tshark_pids && !tshark_pids.is_empty()),
            format!("pinned {}", pin.misframed),
        );
        // Continuity: ours = TR 101 290 on the real packets, pinned; the difference with
        // tshark's rule is explained by the rules.
        check(
            "Continuity_count_error (pinned) = the reference",
            ours_cc == pin.ours_cc && ours_cc == real_tr,
            format!(
                "ours {ours_cc}, pinned {}, reference {real_tr}",
                pin.ours_cc
            ),
        );
        check(
            "rule differences pinned",
            rules == pin.rules,
            format!("found {rules:?}, pinned {:?}", pin.rules),
        );
        let explained = real_tshark_drops + rules.ours_only_dup + rules.ours_only_af
            - rules.tshark_only_af
            - rules.tshark_only_disc;
        check(
            "the rules explain the whole difference",
            explained == ours_cc,
            format!("tshark rule {real_tshark_drops} ± rules = {explained}, ours {ours_cc}"),
        );
        if !pin.misframed && !tshark_pids.is_empty() {
            check(
                "tshark's drops are the tshark rule on the real packets",
                real_tshark_drops == tshark_drops,
                format!("{real_tshark_drops} / {tshark_drops}"),
            );
        }
        check(
            "every packet read",
            ours_packets == real_packets,
            format!("{ours_packets} / {real_packets}"),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
