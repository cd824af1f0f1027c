//! IPTV inspection against ground truth: capgen's takedown scenario (two multicast
//! channels, MPEG-TS in UDP over IPv4 and in RTP over IPv6, IGMPv2, IGMPv3 and MLDv2
//! receivers joining, zapping and leaving, a querier, a loss window, duplicated and
//! reordered datagrams, a PCR jump) is generated, analysed, and every table compared
//! with the truth capgen wrote:
//!
//! - `ts_pids`: every PID's packets and continuity-counter errors as written;
//! - `ts_streams`: the PCR discontinuities injected, the multiplex bitrate within 0.1 %
//!   of the configured mux rate, and `flows.class` `iptv_multicast`;
//! - `flow_bins`: the per-bin TS and RTP counters add up to the streams';
//! - `rtp_streams`: packets, duplicates and reordered as generated, and lost as RFC 3550
//!   counts it (expected less received: the truth's missing numbers less duplicates);
//! - `multicast_events`: one row per truth message or group record, with its time, host,
//!   group and record type;
//! - `channel_sessions`: each session starts at a truth join of its host and group, and
//!   each that ends by a leave ends at a truth leave.
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
use support::{analyze, rows};

fn generate(dir: &Path) -> (Value, std::path::PathBuf) {
    let sc = capgen::Scenario::from_toml(include_str!("../tools/capgen/scenarios/takedown.toml"))
        .expect("takedown.toml parses");
    let opts = capgen::Options {
        seed: 1,
        format: capgen::Format::Pcap,
        ts_resolution: None,
    };
    let (truth, bytes) = capgen::generate(&sc, &opts, Vec::new()).expect("generate");
    let path = dir.join("takedown.pcap");
    std::fs::write(&path, bytes).unwrap();
    (serde_json::to_value(&truth).unwrap(), path)
}

fn s(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

fn addr(v: &Value) -> Option<IpAddr> {
    v.as_str().and_then(|a| a.parse().ok())
}

#[test]
fn iptv_tables_match_capgen_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let (truth, capture) = generate(tmp.path());
    let out = tmp.path().join("out");
    analyze(&capture, &out, &[]);
    let flows = rows(&out.join("flows.parquet"));
    let ts_streams = rows(&out.join("ts_streams.parquet"));
    let ts_pids = rows(&out.join("ts_pids.parquet"));
    let rtp = rows(&out.join("rtp_streams.parquet"));
    let bins = rows(&out.join("flow_bins.parquet"));

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
        // The per-bin counters add up to the stream's.
        let mine: Vec<_> = bins.iter().filter(|b| b["flow_id"] == id).collect();
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

    // Channel sessions: joins and leaves as generated.
    let sessions = rows(&out.join("channel_sessions.parquet"));
    let truth_at = |kind: &str, s: &serde_json::Map<String, Value>, ts: &str| {
        truth_events.iter().any(|e| {
            e["kind"] == kind
                && addr(&e["host"]) == addr(&s["host_addr"])
                && addr(&e["group"]) == addr(&s["group_addr"])
                && e["ts_ns"].as_i64().unwrap() / 1000 == s[ts].as_i64().unwrap()
        })
    };
    assert!(!sessions.is_empty());
    let mut left = 0;
    for x in &sessions {
        assert!(
            truth_at("join", x, "join_ts"),
            "session without a truth join: {x:?}"
        );
        if x["end_reason"] == "leave" {
            left += 1;
            assert!(
                truth_at("leave", x, "leave_ts"),
                "leave not in the truth: {x:?}"
            );
        }
    }
    let truth_joins = truth_events.iter().filter(|e| e["kind"] == "join").count();
    let truth_leaves = truth_events.iter().filter(|e| e["kind"] == "leave").count();
    assert!(left > 0, "some sessions end by a leave");
    assert!(
        sessions.len() <= truth_joins && left <= truth_leaves,
        "{} sessions for {truth_joins} joins, {left} leaves for {truth_leaves}",
        sessions.len()
    );
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
    let sc = capgen::Scenario::from_toml(TOML).expect("scenario parses");
    let opts = capgen::Options {
        seed: 1,
        format: capgen::Format::Pcap,
        ts_resolution: None,
    };
    let (truth, bytes) = capgen::generate(&sc, &opts, Vec::new()).expect("generate");
    let truth = serde_json::to_value(&truth).unwrap();
    let capture = tmp.path().join("rtp-loss.pcap");
    std::fs::write(&capture, bytes).unwrap();
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
            lost
        } else {
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
