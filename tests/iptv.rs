//! IPTV inspection against ground truth: capgen's takedown scenario (two multicast
//! channels, MPEG-TS in UDP over IPv4 and in RTP over IPv6, IGMPv2, IGMPv3 and MLDv2
//! receivers joining, zapping and leaving, a querier, a loss window, duplicated and
//! reordered datagrams, a PCR jump) is generated, analysed, and every table compared
//! with the truth capgen wrote:
//!
//! - `ts_pids`: every PID's packets and continuity-counter errors as written;
//! - `ts_streams`: the PCR discontinuities injected, the multiplex bitrate within 0.1 %
//!   of the configured mux rate, and `flows.class` `iptv_multicast`;
//! - `rtp_streams`: packets, duplicates and reordered as generated, and lost as RFC 3550
//!   counts it (expected less received: the truth's missing numbers less duplicates);
//! - `multicast_events`: one row per truth message or group record, with its time, host,
//!   group and record type;
//! - `channel_sessions`: each session starts at a truth join of its host and group, and
//!   each that ends by a leave ends at a truth leave.
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
