//! QUIC of every version, through `analyze`, against tshark's facts for the corpus
//! (`oracle.json`: `quic_versions`, the long-header packets of each version; `gquic_frames`,
//! Google QUIC packets; `quic_sni`):
//!
//! - the long-header packets the run counts (`run.json`: `quic_*_packets`) are tshark's,
//!   version 1 and 2 by packet type, the versions only named (IETF drafts, mvfst, gQUIC
//!   with a long header) together, and those a snap length cut (tshark reads their header
//!   still); gQUIC public-header packets are tshark's gQUIC frames;
//! - every version tshark saw is the `quic_version` of a flow of ours, named as
//!   `quic_version` names it, and no flow has another;
//! - every such flow is a QUIC flow (`quic_streaming` or `quic_other`) whether or not its
//!   ClientHello could be read.

use std::collections::BTreeSet;

use serde_json::Value;
use streamscope_testkit::say;
use support::rows;

mod support;

const TEST: &str = "quic_versions";

/// A version as `quic_version` names it, from tshark's `0x…` form.
fn name(hex: &str) -> String {
    let v = u32::from_str_radix(hex.trim_start_matches("0x"), 16).expect("hex version");
    let b = v.to_be_bytes();
    match v {
        1 => "v1".into(),
        0x6b33_43cf => "v2".into(),
        0xff00_0000..=0xff00_00ff => format!("draft-{}", b[3]),
        0xface_b000..=0xface_b00f => format!("mvfst-0x{v:08x}"),
        _ if matches!(b[0], b'Q' | b'T') => String::from_utf8_lossy(&b).into_owned(),
        _ => format!("0x{v:08x}"),
    }
}

fn count(run: &Value, key: &str) -> u64 {
    run["counts"]["extra"][key].as_u64().unwrap_or(0)
}

#[test]
fn quic_versions_and_packets_equal_tsharks() {
    let Some(corpus) = streamscope_testkit::corpus(TEST, "QUIC versions against tshark's") else {
        return;
    };
    let mut files = 0;
    for (file, facts) in corpus.files() {
        let versions: Vec<(String, u64)> = facts["quic_versions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
            .collect();
        let gquic = facts["gquic_frames"].as_u64().unwrap_or(0);
        if versions.is_empty() && gquic == 0 {
            continue;
        }
        files += 1;
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        let run = support::analyze(&corpus.path(file), out, &[]);
        let long: u64 = [
            "initial",
            "zero_rtt",
            "handshake",
            "retry",
            "version_negotiation",
            "other_version",
            "unknown_version",
            // Cut by the snap length: tshark still reads their long header.
            "truncated",
        ]
        .iter()
        .map(|k| count(&run, &format!("quic_{k}_packets")))
        .sum();
        let tshark_long: u64 = versions.iter().map(|(_, n)| n).sum();
        assert_eq!(long, tshark_long, "{file}: long-header packets");
        assert_eq!(
            count(&run, "quic_gquic_packets"),
            gquic,
            "{file}: gQUIC packets"
        );

        let flows = rows(&out.join("flows.parquet"));
        let ours: BTreeSet<String> = flows
            .iter()
            .filter_map(|f| f["quic_version"].as_str().map(str::to_string))
            .collect();
        let mut theirs: BTreeSet<String> = versions.iter().map(|(v, _)| name(v)).collect();
        if gquic > 0 {
            // The oracle counts gQUIC frames without their versions: tshark names them.
            let Some(tshark) = streamscope_testkit::tshark(TEST, "gQUIC versions") else {
                continue;
            };
            let listed = std::process::Command::new(&tshark.exe)
                .args(["-n", "-r"])
                .arg(corpus.path(file))
                .args(["-Y", "gquic.version", "-T", "fields", "-e", "gquic.version"])
                .output()
                .expect("run tshark");
            assert!(listed.status.success(), "{file}: tshark failed");
            theirs.extend(
                String::from_utf8_lossy(&listed.stdout)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
            assert!(!theirs.is_empty(), "{file}: tshark names no gQUIC version");
        }
        assert_eq!(ours, theirs, "{file}: versions");
        for f in flows.iter().filter(|f| f["quic_version"].is_string()) {
            let class = f["class"].as_str().unwrap();
            assert!(
                class == "quic_streaming" || class == "quic_other",
                "{file}: flow {} of version {} is {class}",
                f["flow_id"],
                f["quic_version"]
            );
        }
        say(&format!(
            "{TEST}: {file}: {long} long-header and {gquic} gQUIC packets, versions {ours:?}"
        ));
    }
    assert!(files >= 5, "corpus files with QUIC: {files}");
}
