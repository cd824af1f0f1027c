//! IPTV inspection against ground truth: capgen's takedown scenario (two multicast
//! channels, MPEG-TS in UDP over IPv4 and in RTP over IPv6, IGMPv2, IGMPv3 and MLDv2
//! receivers joining, zapping and leaving, a querier, a loss window, duplicated and
//! reordered datagrams, a PCR jump) is generated, analysed, and every table compared
//! with the truth capgen wrote:
//!
//! - `ts_pids`: every PID's packets and continuity-counter errors as written;
//! - `ts_streams`: the PCR discontinuities injected, the multiplex bitrate within 0.1 %
//!   of the configured mux rate, and `flows.class` `iptv_multicast`; every other TR 101 290
//!   counter 0 (nothing capgen injects sets them, as the capture's packets show) but the
//!   PCR repetition errors, which equal the capture's PCR gaps over 40 ms; the TS
//!   duplicates per PID are the packets the copied datagrams repeat (also on the demo);
//! - the MDI delay factor per bin (`flow_bins.ts_df_ms`) and its maximum: one datagram's
//!   drain time, plus one per copied datagram in the bin, one for a reordered pair, and
//!   whole datagrams for the loss window's drops;
//! - `flow_bins`: the per-bin TS and RTP counters add up to the streams';
//! - `rtp_streams`: packets, duplicates and reordered as generated, and lost as RFC 3550
//!   counts it (expected less received: the truth's missing numbers less duplicates);
//! - `multicast_events`: one row per truth message or group record, with its time, host,
//!   group and record type;
//! - `channel_sessions`: one session per first transmission of a truth join (host, group,
//!   SSM source, IGMP or MLD version), ended at the host's next leave of it or by the
//!   capture's end, and no other.
//!
//! The bundled demo's sessions (the README's viewer counts) are compared exactly: one
//! per first transmission of a truth join, ended at the first transmission of a leave.
//!
//! The continuity counter is 4 bits: a run of 16 lost packets of a PID is invisible to
//! it, so `lost_packets` is not compared with the truth's (which counts what was
//! dropped); CC errors are, because capgen counts the discontinuities a receiver sees.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_wire::{dissect, Transport};
use support::{analyze, rows};

type Row = serde_json::Map<String, Value>;

fn generate(dir: &Path) -> (Value, std::path::PathBuf) {
    support::generate(
        dir,
        "takedown",
        include_str!("../tools/capgen/scenarios/takedown.toml"),
    )
}

fn s(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

fn addr(v: &Value) -> Option<IpAddr> {
    v.as_str().and_then(|a| a.parse().ok())
}

/// A multicast channel's MPEG-TS as the capture carries it, read here from the frames
/// (not by streamscope's analyser), in capture order: what a receiver at the capture
/// point gets.
#[derive(Default)]
struct Wire {
    first_ns: Option<i64>,
    last_ns: i64,
    /// PCRs of the first PID seen with one: capture time, 27 MHz value,
    /// discontinuity_indicator.
    pcrs: Vec<(i64, u64, bool)>,
    pcr_pid: Option<u16>,
    /// Packets with payload repeating their PID's previous continuity counter: duplicates
    /// (ISO/IEC 13818-1 section 2.4.3.3; their payload is not read again).
    duplicates: BTreeMap<u16, u64>,
    last_cc: BTreeMap<u16, u8>,
    /// Longest capture-time gap between packets of a PID, counting from the channel's
    /// first packet and to its last.
    max_gap: BTreeMap<u16, i64>,
    last_seen: BTreeMap<u16, i64>,
    /// Longest gap between PES headers with a PTS on a PID.
    pts_gap: BTreeMap<u16, i64>,
    last_pts: BTreeMap<u16, i64>,
}

const PCR_MODULUS: u64 = (1 << 33) * 300;

impl Wire {
    fn packet(&mut self, ts: i64, p: &[u8]) {
        if p.len() < 188 || p[0] != 0x47 {
            return;
        }
        let pid = u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]);
        let (afc, cc) = ((p[3] >> 4) & 3, p[3] & 0x0f);
        let first = *self.first_ns.get_or_insert(ts);
        self.last_ns = ts;
        let seen = self.last_seen.insert(pid, ts).unwrap_or(first);
        let gap = self.max_gap.entry(pid).or_default();
        *gap = (*gap).max(ts - seen);
        if pid == 0x1fff {
            return;
        }
        if afc & 1 == 1 && self.last_cc.insert(pid, cc) == Some(cc) {
            *self.duplicates.entry(pid).or_default() += 1;
            return;
        }
        let mut at = 4;
        if afc & 2 == 2 {
            let len = usize::from(p[4]);
            if len >= 7 && p[5] & 0x10 != 0 && *self.pcr_pid.get_or_insert(pid) == pid {
                let b = &p[6..12];
                let base = u64::from(b[0]) << 25
                    | u64::from(b[1]) << 17
                    | u64::from(b[2]) << 9
                    | u64::from(b[3]) << 1
                    | u64::from(b[4] >> 7);
                let ext = u64::from(b[4] & 1) << 8 | u64::from(b[5]);
                self.pcrs.push((ts, base * 300 + ext, p[5] & 0x80 != 0));
            }
            at = 5 + len;
        }
        let pusi = p[1] & 0x40 != 0;
        let clear = p[3] >> 6 == 0;
        let pes = p.get(at..at + 9).unwrap_or(&[]);
        if pusi && clear && pes.len() == 9 && pes[..3] == [0, 0, 1] && pes[7] & 0x80 != 0 {
            if let Some(last) = self.last_pts.insert(pid, ts) {
                let g = self.pts_gap.entry(pid).or_default();
                *g = (*g).max(ts - last);
            }
        }
    }

    /// The largest gap of a PID, the one up to the channel's last packet included.
    fn gap(&self, pid: u16) -> i64 {
        let tail = self
            .last_seen
            .get(&pid)
            .map_or(i64::MAX, |&t| self.last_ns - t);
        self.max_gap
            .get(&pid)
            .copied()
            .unwrap_or(i64::MAX)
            .max(tail)
    }

    /// Consecutive PCRs more than 40 ms apart in capture time (TR 101 290 2.3a), by the
    /// capture time of the later one.
    fn repetition_errors(&self) -> Vec<i64> {
        self.pcrs
            .windows(2)
            .filter(|w| w[1].0 - w[0].0 > 40_000_000)
            .map(|w| w[1].0)
            .collect()
    }

    /// Consecutive PCRs whose values step back or by more than 100 ms without the
    /// discontinuity_indicator (TR 101 290 2.3b), by the capture time of the later one.
    fn discontinuities(&self) -> Vec<i64> {
        self.pcrs
            .windows(2)
            .filter(|w| {
                let d = (w[1].1 + PCR_MODULUS - w[0].1) % PCR_MODULUS;
                !w[1].2 && d > 2_700_000
            })
            .map(|w| w[1].0)
            .collect()
    }
}

/// Every UDP multicast channel of a capture, by destination address and port: MPEG-TS
/// directly in UDP, or after an RTP header (RFC 3550: CSRCs and extension skipped).
fn wire_channels(capture: &Path) -> BTreeMap<(IpAddr, u16), Wire> {
    let mut cap = Capture::open(capture).expect("capture opens");
    let mut out: BTreeMap<(IpAddr, u16), Wire> = BTreeMap::new();
    while let Ok(Some(rec)) = cap.next_record() {
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        let (Some(ip), Transport::Udp { dst_port, .. }) = (p.ip, p.transport) else {
            continue;
        };
        if !ip.dst.is_multicast() || p.payload.is_empty() {
            continue;
        }
        let mut body = p.payload;
        if body[0] != 0x47 && body[0] >> 6 == 2 && body.len() >= 12 {
            let mut at = 12 + 4 * usize::from(body[0] & 0x0f);
            if body[0] & 0x10 != 0 {
                let words = body
                    .get(at + 2..at + 4)
                    .map_or(0, |w| usize::from(u16::from_be_bytes([w[0], w[1]])));
                at += 4 + 4 * words;
            }
            body = body.get(at..).unwrap_or(&[]);
        }
        if body.first() != Some(&0x47) {
            continue;
        }
        let w = out.entry((ip.dst, dst_port)).or_default();
        for pk in body.chunks_exact(188) {
            w.packet(rec.ts_ns, pk);
        }
    }
    out
}

/// The TR 101 290 counters and TS duplicates of a capgen channel against what capgen
/// wrote: capgen writes every sync byte, never sets transport_error_indicator, writes
/// right CRCs and has no fault that changes any of that, so those counters are 0; PAT and
/// PMT repeat every `psi_interval_ms`, video and audio PES headers with PTS come every
/// frame, and no loss window here is long enough to stop them for 500 ms (PAT, PMT),
/// 700 ms (PTS) or 5 s (PID), as the capture's packets show, so those are 0 too;
/// capgen's PCRs are exact at the mux rate (a `pcr_discontinuity` fault jumps them, a
/// discontinuity, not an inaccuracy), so `PCR_accuracy_error` is 0. A PCR repetition
/// error is legitimate: capgen writes a datagram at its first packet's time, so at
/// 200 kb/s (52.64 ms per 7-packet datagram) PCRs of different datagrams are over 40 ms
/// apart, and a loss window widens the gaps: the expected count is read from the
/// capture's PCR times. TS duplicates are the packets a `multicast_duplicate` copy
/// repeats (none without one).
fn check_tr101290(name: &str, st: &Row, pids: &[&Row], tt: &Value, w: &Wire) {
    const MS: i64 = 1_000_000;
    for c in [
        "ts_sync_loss",
        "sync_byte_error",
        "transport_error",
        "crc_error",
        "pcr_accuracy_error",
    ] {
        assert_eq!(st[c], 0, "{name}: {c}, never injected");
    }
    let pid_of = |role: &str| -> u16 {
        let p = tt["pids"].as_array().unwrap();
        let p = p.iter().find(|p| p["role"] == role).unwrap();
        p["pid"].as_u64().unwrap() as u16
    };
    let (pat, pmt) = (pid_of("pat"), pid_of("pmt"));
    assert!(
        w.gap(pat) <= 500 * MS,
        "{name}: a PAT gap of {} ns",
        w.gap(pat)
    );
    assert_eq!(st["pat_error_2"], 0, "{name}: PAT_error_2");
    assert!(
        w.gap(pmt) <= 500 * MS,
        "{name}: a PMT gap of {} ns",
        w.gap(pmt)
    );
    assert_eq!(st["pmt_error_2"], 0, "{name}: PMT_error_2");
    for role in ["video", "audio"] {
        let pid = pid_of(role);
        assert!(w.gap(pid) <= 5_000 * MS, "{name}: {role} gap");
        let pts = w
            .pts_gap
            .get(&pid)
            .copied()
            .expect("PES headers with a PTS");
        assert!(pts <= 700 * MS, "{name}: {role} PTS gap of {pts} ns");
    }
    assert_eq!(st["pid_error"], 0, "{name}: PID_error");
    assert_eq!(st["pts_error"], 0, "{name}: PTS_error");

    assert_eq!(
        w.pcr_pid,
        tt["pcr_pid"].as_u64().map(|p| p as u16),
        "{name}"
    );
    assert_eq!(
        w.discontinuities().len() as u64,
        tt["pcr_discontinuities"].as_u64().unwrap(),
        "{name}: the capture's PCR discontinuities are the truth's"
    );
    let repetition = w.repetition_errors().len() as i64;
    assert!(
        repetition > 0,
        "{name}: 7-packet datagrams space PCRs over 40 ms"
    );
    assert_eq!(
        st["pcr_repetition_error"], repetition,
        "{name}: PCR_repetition_error"
    );
    let pcr_row = pids
        .iter()
        .find(|r| r["pid"] == tt["pcr_pid"])
        .expect("the PCR PID's row");
    assert_eq!(pcr_row["pcr_repetition_errors"], repetition, "{name}");
    assert_eq!(pcr_row["pcr_accuracy_errors"], 0, "{name}");

    let duplicated = tt["datagrams_duplicated"].as_u64().unwrap();
    let mut total = 0;
    for r in pids {
        let pid = r["pid"].as_u64().unwrap() as u16;
        let want = w.duplicates.get(&pid).copied().unwrap_or(0);
        assert_eq!(r["duplicates"], want, "{name}: PID {pid} TS duplicates");
        total += want;
    }
    // A copied datagram repeats each PID it carries once as a duplicate (a PID twice in
    // it is a counter error instead): at most 7 per copy, none without copies.
    assert!(
        total <= 7 * duplicated && (duplicated > 0 || total == 0),
        "{name}: {total} TS duplicates for {duplicated} copied datagrams"
    );
}

/// The MDI delay factor (RFC 4445; see the module docs of crates/media/src/ts, "MDI") of
/// a capgen channel, per bin and over the stream. capgen sends a datagram of n TS
/// packets every P = n·188·8 / mux_rate s; the virtual buffer, sampled before and after
/// each arrival, swings by one datagram's bytes, so DF = P, to within the timestamp
/// resolution R (a datagram time truncated by under R moves the buffer by under R's worth
/// of bytes: DF in [P, P + R)). Faults move it by whole datagrams:
///
/// - a `multicast_duplicate` copy (written at most 50 µs after its original) adds a
///   datagram's bytes that do not drain within the bin: DF = (1 + copies in the bin)·P
///   (up to 50 µs less were a copy the bin's last arrival);
/// - a `multicast_reorder` holds a datagram back one slot: the buffer dips a datagram
///   below its level and comes back, so DF = 2P in a bin with a swap, however many;
/// - each datagram a loss window drops leaves the buffer a datagram lower for the rest of
///   the bin: DF = (1 + m)·P with m the drops between the bin's first and last arrival.
///   The truth counts drops per channel only: over the bins the window touches, the m
///   add up to at most `datagrams_dropped`, and to more than 0 when it is.
///
/// `ts_streams.df_max_ms` is the largest bin's.
fn check_delay_factor(name: &str, truth: &Value, t: &Value, st: &Row, bins: &[&Row], bin_us: i64) {
    let tt = &t["ts"];
    let n = tt["ts_per_datagram"].as_f64().unwrap();
    let p_ms = n * 188.0 * 8.0 * 1e3 / tt["mux_rate_bps"].as_f64().unwrap();
    let r_ms = if truth["ts_resolution"] == "us" {
        1e-3
    } else {
        1e-6
    };
    let start_us = truth["start_ns"].as_i64().unwrap() / 1000;
    let events = |kind: &str| -> Vec<i64> {
        truth["fault_events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == kind && e["target"] == name)
            .map(|e| e["ts_ns"].as_i64().unwrap() / 1000)
            .collect()
    };
    let (copies, swaps) = (events("multicast_duplicate"), events("multicast_reorder"));
    // Loss windows of the channel; a drop shows at the next arrival, up to P later.
    let losses: Vec<(i64, i64)> = truth["scenario"]["fault"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "multicast_loss")
        .filter(|f| {
            let ch = f["channels"].as_array().unwrap();
            ch.is_empty() || ch.iter().any(|c| c == name)
        })
        .map(|f| {
            let us = |k: &str| start_us + (f[k].as_f64().unwrap() * 1e6) as i64;
            (us("start_s"), us("end_s") + (p_ms * 1e3) as i64 + 1)
        })
        .collect();
    let dropped = tt["datagrams_dropped"].as_i64().unwrap();
    let (mut seen_drops, mut max_df, mut moved) = (0, 0.0f64, 0);
    for b in bins {
        let Some(df) = b["ts_df_ms"].as_f64() else {
            continue;
        };
        max_df = max_df.max(df);
        let b0 = b["bin_start"].as_i64().unwrap();
        let within = |at: &i64| (b0..b0 + bin_us).contains(at);
        let mut k = 1 + copies.iter().filter(|t| within(t)).count() as i64;
        if swaps.iter().any(within) {
            k += 1;
        }
        if losses.iter().any(|&(a, z)| b0 < z && a < b0 + bin_us) {
            let m = ((df - k as f64 * p_ms) / p_ms).round() as i64;
            assert!(
                m >= 0,
                "{name}: DF {df} ms below {k} datagrams in the bin at {b0}"
            );
            seen_drops += m;
            k += m;
        }
        if k > 1 {
            moved += 1;
        }
        let want = k as f64 * p_ms;
        assert!(
            df >= want - 0.05 - 1e-9 && df < want + r_ms + 1e-9,
            "{name}: DF {df} ms in the bin at {b0}, {k} datagrams of {p_ms} ms expected"
        );
    }
    assert!(
        seen_drops <= dropped && (dropped == 0 || seen_drops > 0),
        "{name}: the loss window's DF counts {seen_drops} drops of {dropped}"
    );
    let faults = copies.len() + swaps.len() + dropped as usize;
    assert_eq!(moved > 0, faults > 0, "{name}: DF moved in {moved} bins");
    let df_max = st["df_max_ms"].as_f64().expect("a DF");
    assert_eq!(df_max, max_df, "{name}: df_max_ms is the largest bin's");
}

#[test]
fn iptv_tables_match_capgen_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let (truth, capture) = generate(tmp.path());
    let out = tmp.path().join("out");
    let run = analyze(&capture, &out, &[]);
    let bin_us = run["options"]["bin_ns"].as_i64().unwrap() / 1000;
    let flows = rows(&out.join("flows.parquet"));
    let ts_streams = rows(&out.join("ts_streams.parquet"));
    let ts_pids = rows(&out.join("ts_pids.parquet"));
    let rtp = rows(&out.join("rtp_streams.parquet"));
    let bins = rows(&out.join("flow_bins.parquet"));
    let wire = wire_channels(&capture);

    // Our flow for a truth flow: same server (the head-end) and client (the group) and ports.
    let ours = |t: &Value| -> i64 {
        let hit: Vec<_> = flows
            .iter()
            .filter(|f| {
                addr(&f["server_addr"]) == addr(&t["server_addr"])
                    && addr(&f["client_addr"]) == addr(&t["client_addr"])
                    && f["server_port"] == t["server_port"]
                    && f["client_port"] == t["client_port"]
            })
            .collect();
        assert_eq!(hit.len(), 1, "one flow for {}", t["name"]);
        hit[0]["flow_id"].as_i64().unwrap()
    };

    let mut channels = 0;
    for t in truth["flows"].as_array().unwrap() {
        let Some(tt) = t.get("ts").filter(|v| !v.is_null()) else {
            continue;
        };
        channels += 1;
        let name = s(&t["name"]);
        let id = ours(t);
        let flow = flows.iter().find(|f| f["flow_id"] == id).unwrap();
        assert_eq!(flow["class"], "iptv_multicast", "{name}");
        let st: Vec<_> = ts_streams.iter().filter(|r| r["flow_id"] == id).collect();
        assert_eq!(st.len(), 1, "{name}: one ts_streams row");
        let st = st[0];
        let carrier = if t["kind"] == "multicast_ts_rtp" {
            "rtp"
        } else {
            "udp"
        };
        assert_eq!(st["carrier"], carrier, "{name}");
        assert_eq!(st["packets"], tt["ts_packets"], "{name}: TS packets");
        assert_eq!(
            st["pcr_discontinuity_indicator_error"], tt["pcr_discontinuities"],
            "{name}: PCR discontinuities"
        );
        let mux = tt["mux_rate_bps"].as_f64().unwrap();
        let rate = st["bitrate_bps"].as_f64().expect("a PCR bitrate");
        assert!(
            (rate - mux).abs() <= mux * 0.001,
            "{name}: PCR bitrate {rate} against the mux rate {mux}"
        );
        let mut cc = 0;
        for p in tt["pids"].as_array().unwrap() {
            let row: Vec<_> = ts_pids
                .iter()
                .filter(|r| r["flow_id"] == id && r["pid"] == p["pid"])
                .collect();
            assert_eq!(row.len(), 1, "{name}: PID {}", p["pid"]);
            assert_eq!(
                row[0]["packets"], p["packets"],
                "{name}: PID {} packets",
                p["pid"]
            );
            assert_eq!(
                row[0]["cc_errors"], p["cc_errors"],
                "{name}: PID {} CC errors",
                p["pid"]
            );
            cc += p["cc_errors"].as_i64().unwrap();
        }
        assert_eq!(
            st["continuity_count_error"], cc,
            "{name}: CC errors of the stream"
        );
        let mine_pids: Vec<_> = ts_pids.iter().filter(|r| r["flow_id"] == id).collect();
        let w = &wire[&(
            addr(&t["client_addr"]).unwrap(),
            t["client_port"].as_u64().unwrap() as u16,
        )];
        check_tr101290(&name, st, &mine_pids, tt, w);
        // The per-bin counters add up to the stream's.
        let mine: Vec<_> = bins.iter().filter(|b| b["flow_id"] == id).collect();
        check_delay_factor(&name, &truth, t, st, &mine, bin_us);
        let sum = |c: &str| mine.iter().map(|b| b[c].as_i64().unwrap()).sum::<i64>();
        assert_eq!(
            sum("ts_packets"),
            tt["ts_packets"].as_i64().unwrap(),
            "{name}"
        );
        assert_eq!(sum("ts_cc_errors"), cc, "{name}: CC errors per bin");
        if let Some(tr) = t.get("rtp").filter(|v| !v.is_null()) {
            let r: Vec<_> = rtp.iter().filter(|r| r["flow_id"] == id).collect();
            assert_eq!(r.len(), 1, "{name}: one RTP stream");
            for (ours, theirs) in [
                ("ssrc", "ssrc"),
                ("payload_type", "payload_type"),
                ("clock_rate_hz", "clock_rate_hz"),
                ("packets", "packets"),
                ("duplicates", "duplicates"),
                ("reordered", "reordered"),
            ] {
                assert_eq!(r[0][ours], tr[theirs], "{name}: RTP {ours}");
            }
            assert_eq!(
                sum("rtp_duplicates"),
                tr["duplicates"].as_i64().unwrap(),
                "{name}: RTP duplicates per bin"
            );
            assert_eq!(
                sum("rtp_lost"),
                r[0]["lost"].as_i64().unwrap(),
                "{name}: RTP loss per bin"
            );
            // RFC 3550's cumulative loss is expected less received, so each duplicate
            // counts against it; the truth counts the sequence numbers never sent.
            assert_eq!(
                r[0]["lost"].as_i64().unwrap() + r[0]["duplicates"].as_i64().unwrap(),
                tr["lost"].as_i64().unwrap(),
                "{name}: RTP lost (RFC 3550: expected - received)"
            );
        }
    }
    assert_eq!(channels, 2, "the scenario's two channels");
    assert_eq!(ts_streams.len(), 2, "no other flow taken for MPEG-TS");
    assert_eq!(rtp.len(), 1, "no other flow taken for RTP");

    // IGMP and MLD: one row per message or group record, as written.
    let events = rows(&out.join("multicast_events.parquet"));
    let key =
        |ts: i64, host: Option<IpAddr>, group: Option<IpAddr>, rt: &Value| (ts, host, group, s(rt));
    let mut want: BTreeMap<_, u32> = BTreeMap::new();
    let truth_events = truth["multicast_events"].as_array().unwrap();
    for e in truth_events {
        let ts_us = e["ts_ns"].as_i64().unwrap() / 1000;
        *want
            .entry(key(
                ts_us,
                addr(&e["host"]),
                addr(&e["group"]),
                &e["record_type"],
            ))
            .or_default() += 1;
    }
    let mut got: BTreeMap<_, u32> = BTreeMap::new();
    for e in &events {
        assert_eq!(e["checksum_ok"], true);
        *got.entry(key(
            e["ts"].as_i64().unwrap(),
            addr(&e["host_addr"]),
            addr(&e["group_addr"]),
            &e["record_type"],
        ))
        .or_default() += 1;
    }
    assert!(truth_events.len() > 20, "the scenario has IGMP and MLD");
    assert_eq!(got, want, "multicast events against the truth");
    let by_version = |v: &str| events.iter().filter(|e| e["version"] == v).count();
    assert!(by_version("igmp2") > 0 && by_version("igmp3") > 0 && by_version("mld2") > 0);

    // Channel sessions, both ways: each first transmission of a truth join (robustness
    // repetitions resend the same state change) opens one session of its host, group and,
    // for SSM (IGMPv3/MLDv2 ALLOW_NEW_SOURCES with the source), source; the host's next
    // first-transmission leave of that group (and source) ends it then, else the capture
    // does, no later than its end. Every session is such a pair, IGMPv2, IGMPv3 and MLDv2.
    let sessions = rows(&out.join("channel_sessions.parquet"));
    let end_us = truth["end_ns"].as_i64().unwrap() / 1000;
    type Session = (
        Option<IpAddr>,
        Option<IpAddr>,
        Option<IpAddr>,
        String,
        i64,
        Option<i64>,
    );
    let version = |e: &Value| {
        let v = e["version"].as_u64().unwrap();
        if e["protocol"] == "mld" {
            format!("mld{v}")
        } else {
            format!("igmp{v}")
        }
    };
    let source = |e: &Value| {
        e["sources"]
            .as_array()
            .and_then(|s| s.first())
            .and_then(addr)
    };
    let first = |kind: &str| -> Vec<&Value> {
        truth_events
            .iter()
            .filter(|e| e["kind"] == kind && e["retransmission"] == false)
            .collect()
    };
    let (joins, leaves) = (first("join"), first("leave"));
    let mut want: Vec<Session> = joins
        .iter()
        .map(|j| {
            let at = j["ts_ns"].as_i64().unwrap() / 1000;
            let key = |e: &Value| (addr(&e["host"]), addr(&e["group"]), source(e));
            let next_join = joins
                .iter()
                .filter(|o| key(o) == key(j))
                .map(|o| o["ts_ns"].as_i64().unwrap() / 1000)
                .filter(|&t| t > at)
                .min()
                .unwrap_or(i64::MAX);
            let leave = leaves
                .iter()
                .filter(|l| key(l) == key(j))
                .map(|l| l["ts_ns"].as_i64().unwrap() / 1000)
                .filter(|&t| t >= at && t < next_join)
                .min();
            (
                addr(&j["host"]),
                addr(&j["group"]),
                source(j),
                version(j),
                at,
                leave,
            )
        })
        .collect();
    want.sort();
    let mut got: Vec<Session> = sessions
        .iter()
        .map(|x| {
            let leave = x["leave_ts"].as_i64().unwrap();
            let by_leave = match x["end_reason"].as_str() {
                Some("leave") => true,
                Some("capture_end") => {
                    assert!(leave <= end_us, "{x:?}");
                    false
                }
                other => panic!("end_reason {other:?}: {x:?}"),
            };
            (
                addr(&x["host_addr"]),
                addr(&x["group_addr"]),
                addr(&x["source_addr"]),
                s(&x["version"]),
                x["join_ts"].as_i64().unwrap(),
                by_leave.then_some(leave),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got, want,
        "channel sessions against the truth's joins and leaves"
    );
    let count = |f: &dyn Fn(&Session) -> bool| want.iter().filter(|x| f(x)).count();
    assert_eq!(
        (want.len(), count(&|x| x.5.is_some())),
        (30, 25),
        "the takedown's joins and leaves"
    );
    assert!(count(&|x| x.3 == "mld2") > 0 && count(&|x| x.2.is_some()) > 0);
}

/// The bundled demo's viewers, which the README counts: its five set-top boxes never
/// join a group twice without leaving it, so each first transmission of a join in the
/// truth is one session starting then, and each first transmission of a leave one
/// session ending then; the sessions still joined at the end end with the capture.
#[test]
fn demo_sessions_are_the_truths_joins_and_leaves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let truth: Value =
        serde_json::from_slice(&std::fs::read(root.join("demo.pcap.truth.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    analyze(&root.join("demo.pcap"), &out, &[]);
    let sessions = rows(&out.join("channel_sessions.parquet"));
    type Key = (Option<IpAddr>, Option<IpAddr>, i64);
    let truth_of = |kind: &str| -> Vec<Key> {
        let mut v: Vec<Key> = truth["multicast_events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == kind && e["retransmission"] == false)
            .map(|e| {
                (
                    addr(&e["host"]),
                    addr(&e["group"]),
                    e["ts_ns"].as_i64().unwrap() / 1000,
                )
            })
            .collect();
        v.sort();
        v
    };
    let ours_of = |at: &str, ended_by: Option<&str>| -> Vec<Key> {
        let mut v: Vec<Key> = sessions
            .iter()
            .filter(|x| ended_by.is_none_or(|r| x["end_reason"] == r))
            .map(|x| {
                (
                    addr(&x["host_addr"]),
                    addr(&x["group_addr"]),
                    x[at].as_i64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let (joins, leaves) = (truth_of("join"), truth_of("leave"));
    assert_eq!(
        (joins.len(), leaves.len()),
        (14, 11),
        "the demo's joins and leaves"
    );
    assert_eq!(
        ours_of("join_ts", None),
        joins,
        "sessions start at the joins"
    );
    assert_eq!(
        ours_of("leave_ts", Some("leave")),
        leaves,
        "and end at the leaves"
    );
    let end_us = truth["end_ns"].as_i64().unwrap() / 1000;
    for x in sessions.iter().filter(|x| x["end_reason"] != "leave") {
        assert_eq!(x["end_reason"], "capture_end", "{x:?}");
        assert!(x["leave_ts"].as_i64().unwrap() <= end_us);
    }

    // The demo's TR 101 290 counters and TS duplicates, as for the takedown (a loss
    // window on each channel, a PCR jump, no copies).
    let flows = rows(&out.join("flows.parquet"));
    let ts_streams = rows(&out.join("ts_streams.parquet"));
    let ts_pids = rows(&out.join("ts_pids.parquet"));
    let wire = wire_channels(&root.join("demo.pcap"));
    let mut channels = 0;
    for t in truth["flows"].as_array().unwrap() {
        let Some(tt) = t.get("ts").filter(|v| !v.is_null()) else {
            continue;
        };
        let name = s(&t["name"]);
        let (group, port) = (addr(&t["client_addr"]), &t["client_port"]);
        let f = flows
            .iter()
            .find(|f| addr(&f["client_addr"]) == group && &f["client_port"] == port)
            .expect("the channel's flow");
        let st = ts_streams
            .iter()
            .find(|r| r["flow_id"] == f["flow_id"])
            .expect("its ts_streams row");
        let pids: Vec<_> = ts_pids
            .iter()
            .filter(|r| r["flow_id"] == f["flow_id"])
            .collect();
        let w = &wire[&(group.unwrap(), port.as_u64().unwrap() as u16)];
        check_tr101290(&name, st, &pids, tt, w);
        channels += 1;
    }
    assert_eq!(channels, 2);
}

/// The testbed's loss capture (real software: ffmpeg multicast channels, MPEG-TS in UDP and
/// in RTP, iptables dropping 10 % of the multicast datagrams for 10 s, two receivers
/// joining with IGMPv3 and IGMPv2): every media error falls in a bin that overlaps the
/// loss window, the per-bin counters add up to the streams' totals, the RTP loss equals
/// the datagrams the router dropped, and the channel sessions are the receivers' joins
/// and leaves (to within 50 ms: the truth logs them from the receiving process, the
/// capture sees the report on the wire).
#[test]
fn testbed_loss_window_and_sessions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let truth: Value = serde_json::from_slice(
        &std::fs::read(root.join("testbed-loss.truth.json")).expect("truth"),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = analyze(&root.join("testbed-loss.pcap"), &out, &[]);
    let bin_us = run["options"]["bin_ns"].as_i64().unwrap() / 1000;
    let flows = rows(&out.join("flows.parquet"));
    let bins = rows(&out.join("flow_bins.parquet"));
    let ts_streams = rows(&out.join("ts_streams.parquet"));
    let rtp = rows(&out.join("rtp_streams.parquet"));
    let sessions = rows(&out.join("channel_sessions.parquet"));

    let fault = &truth["faults"][0];
    assert_eq!(fault["kind"], "loss");
    let us = |v: &Value| (v.as_f64().unwrap() * 1e6).round() as i64;
    let (start, end) = (us(&fault["start_epoch"]), us(&fault["end_epoch"]));

    let streams = truth["streams"].as_array().unwrap();
    // The multicast channels (the capture's HLS over HTTP has its own TS rows).
    let multicast = ts_streams.iter().filter(|t| t["carrier"] != "http").count();
    assert_eq!(multicast, streams.len(), "one ts_streams row per channel");
    for st in streams {
        let group = addr(&st["group"]);
        let f: Vec<_> = flows
            .iter()
            .filter(|f| addr(&f["client_addr"]) == group && f["client_port"] == st["port"])
            .collect();
        assert_eq!(f.len(), 1, "{}: one flow", st["name"]);
        let id = &f[0]["flow_id"];
        assert_eq!(f[0]["class"], "iptv_multicast", "{}", st["name"]);
        let ts = ts_streams
            .iter()
            .find(|r| &r["flow_id"] == id)
            .expect("ts row");
        let carrier = if st["encap"] == "rtp" { "rtp" } else { "udp" };
        assert_eq!(ts["carrier"], carrier, "{}", st["name"]);
        let mine: Vec<_> = bins.iter().filter(|b| &b["flow_id"] == id).collect();
        let sum = |c: &str| mine.iter().map(|b| b[c].as_i64().unwrap()).sum::<i64>();
        assert_eq!(
            sum("ts_packets"),
            ts["packets"].as_i64().unwrap(),
            "{}",
            st["name"]
        );
        assert_eq!(
            sum("ts_cc_errors"),
            ts["continuity_count_error"].as_i64().unwrap(),
            "{}: CC errors per bin add up",
            st["name"]
        );
        assert!(sum("ts_cc_errors") > 0, "{}: the loss shows", st["name"]);
        for b in &mine {
            let at = b["bin_start"].as_i64().unwrap();
            let errors =
                b["ts_cc_errors"].as_i64().unwrap() + b["rtp_lost"].as_i64().unwrap().abs();
            if errors > 0 {
                assert!(
                    at + bin_us > start && at <= end,
                    "{}: errors in the bin at {at}, outside the loss window {start}..{end}",
                    st["name"]
                );
            }
        }
        let key = format!("{}:{}", s(&st["group"]), st["port"]);
        let dropped = fault["dropped_packets"][&key].as_i64().unwrap();
        // A datagram holds 7 TS packets: the continuity counters see at most that many
        // lost per datagram dropped (fewer when 16 or more of a PID go at once).
        let lost = ts["lost_packets"].as_i64().unwrap();
        assert!(
            lost > 0 && lost <= 7 * dropped,
            "{}: {lost} TS packets lost for {dropped} datagrams",
            st["name"]
        );
        if st["encap"] == "rtp" {
            let r: Vec<_> = rtp.iter().filter(|r| &r["flow_id"] == id).collect();
            assert_eq!(r.len(), 1);
            assert_eq!(
                r[0]["lost"], dropped,
                "{}: RTP loss = datagrams dropped",
                st["name"]
            );
            assert_eq!(r[0]["duplicates"], 0);
            assert_eq!(
                sum("rtp_lost"),
                dropped,
                "{}: RTP loss per bin adds up",
                st["name"]
            );
        }
    }

    // Sessions: each receiver's join and leave.
    let mut checked = 0;
    for r in truth["receivers"].as_array().unwrap() {
        let host = addr(&r["ipv4"]);
        let events = r["events"].as_array().unwrap();
        let at = |kind: &str| events.iter().find(|e| e["event"] == kind);
        let (Some(join), Some(leave)) = (at("join"), at("leave")) else {
            continue;
        };
        let group = addr(&join["group"]);
        let mine: Vec<_> = sessions
            .iter()
            .filter(|x| addr(&x["host_addr"]) == host && addr(&x["group_addr"]) == group)
            .collect();
        assert_eq!(mine.len(), 1, "{}: one session", r["name"]);
        let x = mine[0];
        let near = |ours: &Value, theirs: &Value| {
            (ours.as_i64().unwrap() - us(&theirs["t"])).abs() <= 50_000
        };
        assert!(
            near(&x["join_ts"], join),
            "{}: join {x:?} against {join}",
            r["name"]
        );
        assert_eq!(x["end_reason"], "leave", "{}", r["name"]);
        assert!(
            near(&x["leave_ts"], leave),
            "{}: leave {x:?} against {leave}",
            r["name"]
        );
        assert!(
            x["zap_ms"].as_f64().is_some_and(|z| z < 1000.0),
            "{}: zap time",
            r["name"]
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "both receivers");
}

/// MPEG-TS in RTP with heavy loss (half the datagrams for 5 s) and later duplicates: the
/// media loss rate is counted from the RTP sequence numbers never received, × the TS
/// packets each datagram carried, which equals the truth's (duplicates do not hide
/// losses); the continuity counters, which cannot see a PID's gap of 16 packets or more,
/// count fewer.
#[test]
fn media_loss_rate_of_ts_in_rtp_comes_from_rtp() {
    const TOML: &str = r#"
name = "rtp-loss"
start = "2024-03-01T20:00:00Z"
duration_s = 20.0

[[channel]]
name = "hd"
group = "239.30.0.9"
encap = "rtp"
mux_rate_bps = 4_000_000

[[channel]]
name = "sd"
group = "239.10.0.9"
encap = "udp"
mux_rate_bps = 4_000_000

[[fault]]
kind = "multicast_loss"
channels = ["hd", "sd"]
start_s = 5.0
end_s = 10.0
probability = 0.5

[[fault]]
kind = "multicast_duplicate"
channels = ["hd"]
start_s = 12.0
end_s = 14.0
probability = 0.2
"#;
    let tmp = tempfile::tempdir().unwrap();
    let (truth, capture) = support::generate(tmp.path(), "rtp-loss", TOML);
    let out = tmp.path().join("out");
    analyze(&capture, &out, &[]);
    let flows = rows(&out.join("flows.parquet"));
    let ts_streams = rows(&out.join("ts_streams.parquet"));
    let bins = rows(&out.join("flow_bins.parquet"));
    let mut seen = 0;
    for t in truth["flows"].as_array().unwrap() {
        let Some(tt) = t.get("ts").filter(|v| !v.is_null()) else {
            continue;
        };
        let name = s(&t["name"]);
        let f = flows
            .iter()
            .find(|f| addr(&f["client_addr"]) == addr(&t["client_addr"]))
            .expect("the channel's flow");
        let st = ts_streams
            .iter()
            .find(|r| r["flow_id"] == f["flow_id"])
            .expect("its ts_streams row");
        let lost: i64 = tt["pids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["lost_packets"].as_i64().unwrap())
            .sum();
        let dropped = tt["datagrams_dropped"].as_i64().unwrap();
        assert_eq!(
            lost,
            dropped * tt["ts_per_datagram"].as_i64().unwrap(),
            "{name}"
        );
        let cc_view = st["lost_packets"].as_i64().unwrap();
        assert!(
            dropped > 100 && cc_view < lost,
            "{name}: {cc_view} of {lost} by CC"
        );
        let secs =
            (st["last_ts"].as_i64().unwrap() - st["first_ts"].as_i64().unwrap()) as f64 / 1e6;
        let counted = (st["mlr_pps"].as_f64().unwrap() * secs).round() as i64;
        let view = if st["carrier"] == "rtp" {
            assert_eq!(counted, lost, "{name}: the RTP view");
            // Both views side by side in the row.
            assert_eq!(st["rtp_lost_packets"].as_i64(), Some(lost), "{name}");
            lost
        } else {
            assert!(st["rtp_lost_packets"].is_null(), "{name}: no RTP view");
            assert_eq!(counted, cc_view, "{name}: the continuity counters' view");
            cc_view
        };
        // Per bin (1 s; each bin's span runs from the previous bin's last datagram to its
        // own, a second to within a datagram's spacing at this constant rate): the same
        // view, in every second of the loss window (5 s to 10 s) and in no other, adding
        // up to the stream's within 1 %.
        let start_us = truth["start_ns"].as_i64().unwrap() / 1000;
        let mut per_bin = 0.0;
        for b in bins.iter().filter(|b| b["flow_id"] == f["flow_id"]) {
            let mlr = b["ts_mlr_pps"]
                .as_f64()
                .expect("ts_mlr_pps on a TS flow's bins");
            let second = (b["bin_start"].as_i64().unwrap() - start_us) / 1_000_000;
            // A loss is seen when the next datagram comes: the window's last one may
            // show in second 10.
            if (5..10).contains(&second) {
                assert!(mlr > 0.0, "{name}: no loss in second {second}");
            } else if second != 10 {
                assert_eq!(mlr, 0.0, "{name}: loss in second {second}");
            }
            per_bin += mlr;
        }
        assert!(
            (per_bin - view as f64).abs() <= view as f64 / 100.0,
            "{name}: per-bin MLR adds up to {per_bin}, the stream lost {view}"
        );
        seen += 1;
    }
    assert_eq!(seen, 2);
}

/// Timestamp resolution and PCR jitter on a channel sent exactly on schedule: one TS
/// packet per datagram (ts_per_datagram = 1), each written at its own slot time
/// `start + floor(k·1504e9 / mux)` ns, its PCR the 27 MHz time of its byte 10 at the mux
/// rate. Capture time less PCR time is then a constant plus errors in [0, E): the
/// capture's truncation to its resolution R, the slot time's floor to the ns (1 ns), the
/// PCR's truncation to a 27 MHz tick (1000/27 ns) and the analyser's tick-to-ns floor
/// (1 ns). The jitter is the residual range of a least-squares line through them: at
/// most E plus the line's own swing over the window, which for evenly spaced PCRs is
/// at most 1.5·E (slope ≤ (E/2)·Σ|x − x̄| / Σ(x − x̄)² = 1.5·E / span): 2.5·E in all.
/// `ts_resolution_ns` is the capture's: 1,000 for a microsecond pcap, 1 for a
/// nanosecond pcap or pcapng. The delay factor of such a channel is one datagram's
/// drain time, 1504/mux s, to within R.
#[test]
fn timestamp_resolution_and_pcr_jitter_on_time() {
    const TOML: &str = r#"
name = "on-time"
start = "2024-03-01T20:00:00Z"
duration_s = 6.0

[[channel]]
name = "paced"
group = "239.40.0.1"
encap = "udp"
ts_per_datagram = 1
mux_rate_bps = 3_000_000
"#;
    let sc = capgen::Scenario::from_toml(TOML).expect("scenario parses");
    let tmp = tempfile::tempdir().unwrap();
    for (i, (format, res, res_ns)) in [
        (capgen::Format::Pcap, capgen::TsResolution::Us, 1_000),
        (capgen::Format::Pcap, capgen::TsResolution::Ns, 1),
        (capgen::Format::Pcapng, capgen::TsResolution::Ns, 1),
    ]
    .into_iter()
    .enumerate()
    {
        let opts = capgen::Options {
            seed: 1,
            format,
            ts_resolution: Some(res),
        };
        let (truth, bytes) = capgen::generate(&sc, &opts, Vec::new()).expect("generate");
        let truth = serde_json::to_value(&truth).unwrap();
        let capture = tmp.path().join(format!("on-time-{i}.cap"));
        std::fs::write(&capture, bytes).unwrap();
        let out = tmp.path().join(format!("out-{i}"));
        analyze(&capture, &out, &[]);
        let ts = rows(&out.join("ts_streams.parquet"));
        assert_eq!(ts.len(), 1);
        let st = &ts[0];
        let tag = format!("{format:?} {res:?}");
        assert_eq!(st["ts_resolution_ns"], res_ns, "{tag}");
        let e_ns = res_ns as f64 + 1.0 + 1000.0 / 27.0 + 1.0;
        let bound_ms = 2.5 * e_ns / 1e6;
        let jitter = st["pcr_jitter_ms"].as_f64().expect("a PCR jitter");
        assert!(
            jitter <= bound_ms,
            "{tag}: PCR jitter {jitter} ms above {bound_ms} ms"
        );
        let mux = truth["flows"][0]["ts"]["mux_rate_bps"].as_f64().unwrap();
        assert_eq!(truth["flows"][0]["ts"]["ts_per_datagram"], 1);
        let p_ms = 188.0 * 8.0 * 1e3 / mux;
        let r_ms = res_ns as f64 / 1e6;
        let bins = rows(&out.join("flow_bins.parquet"));
        let mut checked = 0;
        for b in &bins {
            let Some(df) = b["ts_df_ms"].as_f64() else {
                continue;
            };
            assert!(
                df >= p_ms - 1e-9 && df < p_ms + r_ms + 1e-9,
                "{tag}: DF {df} ms against {p_ms} ms (resolution {r_ms} ms)"
            );
            checked += 1;
        }
        assert!(checked >= 5, "{tag}: {checked} bins with a DF");
    }
}

/// The testbed's loss capture again: TS losses (`flow_bins.ts_mlr_pps`) only in bins
/// that overlap the loss window, and in some; PCR errors per bin
/// (`flow_bins.ts_pcr_errors`: repetition, discontinuity and accuracy errors) exactly the
/// capture's own, read here from its frames. ffmpeg's 80 ms PCR period puts over 40 ms
/// between consecutive PCRs (repetition errors in every bin, window or not), and its
/// constant-rate mux has exact PCRs (no accuracy error); the PCR steps over 100 ms are the
/// loss's (dropped PCRs, in bins overlapping the window, and there are some) and a few
/// of ffmpeg's own elsewhere, which the capture shows. So outside the window a bin has the
/// stream's own PCR errors and nothing the loss caused.
///
/// This holds only if a PCR interval with a datagram lost is kept out of the PCR rate:
/// on the RTP channel one datagram lost between two PCRs, with no packet of the PCR PID
/// in it, shows in the continuity counters only later; counted, it would bias the rate
/// (139,620 b/s for ffmpeg's 140,000) and make every later PCR an accuracy error.
#[test]
fn testbed_loss_window_covers_pcr_errors_and_mlr() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let truth: Value = serde_json::from_slice(
        &std::fs::read(root.join("testbed-loss.truth.json")).expect("truth"),
    )
    .unwrap();
    let capture = root.join("testbed-loss.pcap");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = analyze(&capture, &out, &[]);
    let bin_us = run["options"]["bin_ns"].as_i64().unwrap() / 1000;
    let flows = rows(&out.join("flows.parquet"));
    let bins = rows(&out.join("flow_bins.parquet"));
    let wire = wire_channels(&capture);
    let fault = &truth["faults"][0];
    assert_eq!(fault["kind"], "loss");
    let us = |v: &Value| (v.as_f64().unwrap() * 1e6).round() as i64;
    let (start, end) = (us(&fault["start_epoch"]), us(&fault["end_epoch"]));
    let overlaps = |at: i64| at + bin_us > start && at <= end;
    for st in truth["streams"].as_array().unwrap() {
        let name = s(&st["name"]);
        let group = addr(&st["group"]).unwrap();
        let port = st["port"].as_u64().unwrap() as u16;
        let f = flows
            .iter()
            .find(|f| addr(&f["client_addr"]) == Some(group) && f["client_port"] == port)
            .expect("the channel's flow");
        let w = &wire[&(group, port)];
        let bin_of = |ts_ns: i64| (ts_ns / 1000).div_euclid(bin_us) * bin_us;
        let mut want: BTreeMap<i64, i64> = BTreeMap::new();
        for at in w.repetition_errors().into_iter().chain(w.discontinuities()) {
            *want.entry(bin_of(at)).or_default() += 1;
        }
        let steps = w.discontinuities();
        assert!(
            steps.iter().any(|&t| overlaps(bin_of(t))),
            "{name}: the loss drops PCRs"
        );
        let (mut lossy, mut got) = (0, BTreeMap::new());
        for b in bins.iter().filter(|b| b["flow_id"] == f["flow_id"]) {
            let at = b["bin_start"].as_i64().unwrap();
            let mlr = b["ts_mlr_pps"]
                .as_f64()
                .expect("ts_mlr_pps on a TS flow's bins");
            if mlr > 0.0 {
                assert!(overlaps(at), "{name}: MLR {mlr} in the bin at {at}");
                lossy += 1;
            }
            let e = b["ts_pcr_errors"].as_i64().unwrap();
            if e > 0 {
                got.insert(at, e);
            }
        }
        assert!(lossy > 0, "{name}: the loss shows in ts_mlr_pps");
        assert_eq!(
            got, want,
            "{name}: PCR errors per bin against the capture's PCRs"
        );
    }
}

/// RTSP is found by its messages, whatever the port: `tsduck__test-135.seqwrap.pcap`
/// (MPEG-TS interleaved in an RTSP session on TCP port 554, sequence numbers wrapping)
/// with its ports rewritten to 8554 gives the same `ts_pids` rows as the original, and
/// its flow is `iptv_unicast` from the interleaved MPEG-TS.
#[test]
fn rtsp_is_found_by_its_messages_on_any_port() {
    const FILE: &str = "tsduck__test-135.seqwrap.pcap";
    let Some(corpus) = streamscope_testkit::corpus("iptv", "RTSP found on another port") else {
        return;
    };
    let original = corpus.path(FILE);
    let mut bytes = std::fs::read(&original).unwrap();
    // Classic little-endian pcap of Ethernet frames: each IPv4 TCP port 554 becomes 8554.
    assert_eq!(
        bytes[..4],
        [0xd4, 0xc3, 0xb2, 0xa1],
        "{FILE}: little-endian pcap"
    );
    let (mut at, mut rewritten) = (24, 0);
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = at + 16;
        let end = (frame + caplen).min(bytes.len());
        let f = &mut bytes[frame..end];
        if f.len() > 38 && f[12..14] == [0x08, 0x00] && f[23] == 6 {
            let tcp = 14 + usize::from(f[14] & 0x0f) * 4;
            for port in [tcp, tcp + 2] {
                if f.len() >= port + 2 && f[port..port + 2] == 554u16.to_be_bytes() {
                    f[port..port + 2].copy_from_slice(&8554u16.to_be_bytes());
                    rewritten += 1;
                }
            }
        }
        at = end;
    }
    assert!(rewritten > 1000, "{rewritten} ports rewritten");
    let tmp = tempfile::tempdir().unwrap();
    let moved = tmp.path().join("rtsp-8554.pcap");
    std::fs::write(&moved, &bytes).unwrap();
    let pids = |capture: &Path, out: &str| {
        let out = tmp.path().join(out);
        analyze(capture, &out, &[]);
        let flows = rows(&out.join("flows.parquet"));
        let ts = rows(&out.join("ts_streams.parquet"));
        assert_eq!(ts.len(), 1, "one multiplex");
        let f = flows
            .iter()
            .find(|f| f["flow_id"] == ts[0]["flow_id"])
            .unwrap();
        assert_eq!(f["class"], "iptv_unicast");
        assert_eq!(f["class_evidence"], "mpeg-ts in rtsp-interleaved tcp");
        let mut p: Vec<(i64, i64)> = rows(&out.join("ts_pids.parquet"))
            .iter()
            .map(|r| (r["pid"].as_i64().unwrap(), r["packets"].as_i64().unwrap()))
            .collect();
        p.sort_unstable();
        (f["server_port"].clone(), p)
    };
    let (port, on_554) = pids(&original, "554");
    let (moved_port, on_8554) = pids(&moved, "8554");
    assert_eq!((port, moved_port), (554.into(), 8554.into()));
    assert!(on_554.iter().map(|p| p.1).sum::<i64>() > 10_000);
    assert_eq!(on_8554, on_554, "the same PIDs and packets on port 8554");
}
