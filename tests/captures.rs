//! The bundled captures (`captures/`, made by tools/capgen and tools/testbed) against
//! their ground truth, used whole:
//!
//! - every capture: analyze reads every packet and byte the truth lists (that none of
//!   its outputs holds a credential: `tests/privacy.rs`);
//! - every capture: each flow's time bins sum to its totals and lie between its first
//!   and last packet;
//! - `demo.pcap` (capgen): every truth flow is exactly one of our flows, column by
//!   column, and we have no other; each channel's bins hold exactly the datagrams of its
//!   mux schedule, less the loss window's dropped ones; each response burst shows in
//!   its bins;
//! - `testbed-*.pcap` (real software): every TCP connection the players' logs imply is
//!   a flow of ours, opened and ended as the logs say (refused ones as SYN/RST flows);
//!   nginx's bytes per plain-HTTP connection equal our payload bytes down; each
//!   receiver's join interval, and the loss window, show in the channel's bins; every
//!   IGMP join/leave and DNS query is there;
//! - `demo.pcap` and its truth are what capgen makes of `demo.toml` with seed 1.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::net::IpAddr;
use std::path::Path;

use arrow_array::{
    Array, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use serde_json::{json, Value};
use streamscope_testkit::say;
use support::{batches, col, text};

mod support;

fn analyze(capture: &Path, out: &Path) -> Value {
    analyze_with(capture, out, &[])
}

fn analyze_with(capture: &Path, out: &Path, extra: &[&str]) -> Value {
    support::analyze(capture, out, extra)
}

fn truth(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("truth file")).expect("truth JSON")
}

fn captures_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

#[test]
fn testbed_captures_are_read_whole() {
    let dir = captures_dir();
    let tmp = tempfile::tempdir().unwrap();
    for scenario in ["steady", "takedown", "loss"] {
        let pcap = dir.join(format!("testbed-{scenario}.pcap"));
        let t = truth(&dir.join(format!("testbed-{scenario}.truth.json")));
        let out = tmp.path().join(scenario);
        let run = analyze(&pcap, &out);
        assert_eq!(
            run["counts"]["packets"], t["capture"]["packets"],
            "{scenario}"
        );
        assert_eq!(
            run["counts"]["bytes"], t["capture"]["wire_bytes"],
            "{scenario}"
        );
    }
}

#[test]
fn demo_capture_totals_equal_its_truth() {
    let dir = captures_dir();
    let tmp = tempfile::tempdir().unwrap();
    let run = analyze(&dir.join("demo.pcap"), tmp.path());
    let t = truth(&dir.join("demo.pcap.truth.json"));
    assert_eq!(run["counts"]["packets"], t["totals"]["packets"]);
    assert_eq!(run["counts"]["bytes"], t["totals"]["frame_bytes"]);
    let membership = membership_flows(&t);
    assert!(!membership.is_empty(), "the demo has set-top boxes");
    assert_eq!(
        run["counts"]["flows"].as_u64(),
        t["flows"]
            .as_array()
            .map(|f| (f.len() + membership.len()) as u64)
    );
}

/// The IGMP/MLD flows a capgen truth implies: capgen lists its IGMP and MLD messages as
/// `multicast_events` (one per message and group record), not as flows; each (sender,
/// destination) pair of them is one of our portless flows, the destination (a
/// multicast address) its client. Keyed by (destination, sender): (the first message's
/// time in ns, its index among the file's IGMP/MLD messages, messages).
fn membership_flows(t: &Value) -> BTreeMap<(String, String), (i64, i64, i64)> {
    let mut messages = BTreeMap::new();
    for e in t["multicast_events"].as_array().expect("multicast_events") {
        messages.entry(u(&e["message"])).or_insert(e);
    }
    let mut flows: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
    // In message order: the first of a pair is its first message.
    for (&message, e) in &messages {
        let key = (
            e["dst"].as_str().unwrap().to_string(),
            e["host"].as_str().unwrap().to_string(),
        );
        let f = flows.entry(key).or_insert((u(&e["ts_ns"]), message, 0));
        f.2 += 1;
    }
    flows
}

// ---------------------------------------------------------------------------------------
// Our output, read back
// ---------------------------------------------------------------------------------------

/// One row of flows.parquet (every column but the bitrate summaries).
#[derive(Debug, Clone)]
struct Flow {
    flow_id: i64,
    first_us: i64,
    last_us: i64,
    duration_us: i64,
    ip_version: i32,
    protocol: i32,
    client_addr: String,
    client_port: Option<i32>,
    server_addr: String,
    server_port: Option<i32>,
    vlan: Option<i32>,
    vlan_inner: Option<i32>,
    client_rule: String,
    packets_up: i64,
    packets_down: i64,
    bytes_up: i64,
    bytes_down: i64,
    payload_up: i64,
    payload_down: i64,
    syn_seen: Option<bool>,
    handshake_seen: Option<bool>,
    handshake_rtt_us: Option<i64>,
    retrans_up: Option<i64>,
    retrans_down: Option<i64>,
    fin_up: Option<bool>,
    fin_down: Option<bool>,
    rst_seen: Option<bool>,
    end_reason: String,
    bins: i64,
}

impl Flow {
    /// The row as column name → value, plus `retransmitted_packets` (up + down), the one
    /// figure the capgen truth gives for retransmissions.
    fn columns(&self) -> BTreeMap<&'static str, Value> {
        let mut m = BTreeMap::new();
        m.insert("flow_id", json!(self.flow_id));
        m.insert("first_ts", json!(self.first_us));
        m.insert("last_ts", json!(self.last_us));
        m.insert("duration_us", json!(self.duration_us));
        m.insert("ip_version", json!(self.ip_version));
        m.insert("protocol", json!(self.protocol));
        m.insert("client_addr", json!(self.client_addr));
        m.insert("client_port", json!(self.client_port));
        m.insert("server_addr", json!(self.server_addr));
        m.insert("server_port", json!(self.server_port));
        m.insert("vlan", json!(self.vlan));
        m.insert("vlan_inner", json!(self.vlan_inner));
        m.insert("client_rule", json!(self.client_rule));
        m.insert("packets_up", json!(self.packets_up));
        m.insert("packets_down", json!(self.packets_down));
        m.insert("bytes_up", json!(self.bytes_up));
        m.insert("bytes_down", json!(self.bytes_down));
        m.insert("payload_bytes_up", json!(self.payload_up));
        m.insert("payload_bytes_down", json!(self.payload_down));
        m.insert("syn_seen", json!(self.syn_seen));
        m.insert("handshake_seen", json!(self.handshake_seen));
        m.insert("handshake_rtt_us", json!(self.handshake_rtt_us));
        m.insert(
            "retransmitted_packets",
            json!(self.retrans_up.zip(self.retrans_down).map(|(u, d)| u + d)),
        );
        m.insert("fin_up", json!(self.fin_up));
        m.insert("fin_down", json!(self.fin_down));
        m.insert("rst_seen", json!(self.rst_seen));
        m.insert("end_reason", json!(self.end_reason));
        m.insert("bins", json!(self.bins));
        m
    }
}

/// One row of flow_bins.parquet.
#[derive(Debug, Clone, Copy)]
struct Bin {
    flow_id: i64,
    start_us: i64,
    packets_up: i64,
    packets_down: i64,
    bytes_up: i64,
    bytes_down: i64,
}

/// One analyze run read back.
struct Output {
    run: Value,
    flows: Vec<Flow>,
    /// Per flow, its bins in time order.
    bins: HashMap<i64, Vec<Bin>>,
    /// The bin width in µs.
    bin_us: i64,
}

impl Output {
    fn read(run: Value, dir: &Path) -> Output {
        let bin_ns = run["options"]["bin_ns"].as_i64().expect("run.json bin_ns");
        assert_eq!(bin_ns % 1000, 0, "bin width in whole µs");
        let flows = read_flows(&dir.join("flows.parquet"));
        let mut bins: HashMap<i64, Vec<Bin>> = HashMap::new();
        for b in read_bins(&dir.join("flow_bins.parquet")) {
            bins.entry(b.flow_id).or_default().push(b);
        }
        for v in bins.values_mut() {
            v.sort_by_key(|b| b.start_us);
        }
        Output {
            run,
            flows,
            bins,
            bin_us: bin_ns / 1000,
        }
    }

    fn flow_bins(&self, flow_id: i64) -> &[Bin] {
        self.bins.get(&flow_id).map_or(&[], |v| v.as_slice())
    }

    /// Packets and bytes down of `flow_id` in the bins `keep` accepts (by bin start).
    fn down_in(&self, flow_id: i64, keep: impl Fn(i64) -> bool) -> (i64, i64) {
        self.flow_bins(flow_id)
            .iter()
            .filter(|b| keep(b.start_us))
            .fold((0, 0), |(p, y), b| (p + b.packets_down, y + b.bytes_down))
    }

    /// Packets and bytes down of `flow_id` in the bins that overlap `[a, b]` (µs).
    fn down_overlapping(&self, flow_id: i64, a: i64, b: i64) -> (i64, i64) {
        let w = self.bin_us;
        self.down_in(flow_id, |s| s <= b && s + w > a)
    }

    /// Packets and bytes down of `flow_id` in the bins that lie inside `[a, b]` (µs;
    /// timestamps are whole µs, so a bin's last instant is `start + w - 1`).
    fn down_inside(&self, flow_id: i64, a: i64, b: i64) -> (i64, i64) {
        let w = self.bin_us;
        self.down_in(flow_id, |s| s >= a && s + w - 1 <= b)
    }
}

fn dict_value(batch: &RecordBatch, name: &str, i: usize) -> String {
    text(batch, name, i).unwrap_or_else(|| panic!("{name} is null"))
}

fn opt_i32(a: &Int32Array, i: usize) -> Option<i32> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn opt_i64(a: &Int64Array, i: usize) -> Option<i64> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn opt_bool(a: &BooleanArray, i: usize) -> Option<bool> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn read_flows(path: &Path) -> Vec<Flow> {
    let mut out = Vec::new();
    for b in batches(path) {
        let i64c = |n: &str| col::<Int64Array>(&b, n);
        let i32c = |n: &str| col::<Int32Array>(&b, n);
        let boolc = |n: &str| col::<BooleanArray>(&b, n);
        let strc = |n: &str| col::<StringArray>(&b, n);
        let tsc = |n: &str| col::<TimestampMicrosecondArray>(&b, n);
        for i in 0..b.num_rows() {
            out.push(Flow {
                flow_id: i64c("flow_id").value(i),
                first_us: tsc("first_ts").value(i),
                last_us: tsc("last_ts").value(i),
                duration_us: i64c("duration_us").value(i),
                ip_version: i32c("ip_version").value(i),
                protocol: i32c("protocol").value(i),
                client_addr: strc("client_addr").value(i).to_string(),
                client_port: opt_i32(i32c("client_port"), i),
                server_addr: strc("server_addr").value(i).to_string(),
                server_port: opt_i32(i32c("server_port"), i),
                vlan: opt_i32(i32c("vlan"), i),
                vlan_inner: opt_i32(i32c("vlan_inner"), i),
                client_rule: dict_value(&b, "client_rule", i),
                packets_up: i64c("packets_up").value(i),
                packets_down: i64c("packets_down").value(i),
                bytes_up: i64c("bytes_up").value(i),
                bytes_down: i64c("bytes_down").value(i),
                payload_up: i64c("payload_bytes_up").value(i),
                payload_down: i64c("payload_bytes_down").value(i),
                syn_seen: opt_bool(boolc("syn_seen"), i),
                handshake_seen: opt_bool(boolc("handshake_seen"), i),
                handshake_rtt_us: opt_i64(i64c("handshake_rtt_us"), i),
                retrans_up: opt_i64(i64c("retransmitted_packets_up"), i),
                retrans_down: opt_i64(i64c("retransmitted_packets_down"), i),
                fin_up: opt_bool(boolc("fin_up"), i),
                fin_down: opt_bool(boolc("fin_down"), i),
                rst_seen: opt_bool(boolc("rst_seen"), i),
                end_reason: dict_value(&b, "end_reason", i),
                bins: i64c("bins").value(i),
            });
        }
    }
    out
}

fn read_bins(path: &Path) -> Vec<Bin> {
    let mut out = Vec::new();
    for b in batches(path) {
        let i64c = |n: &str| col::<Int64Array>(&b, n);
        let start = col::<TimestampMicrosecondArray>(&b, "bin_start");
        for i in 0..b.num_rows() {
            out.push(Bin {
                flow_id: i64c("flow_id").value(i),
                start_us: start.value(i),
                packets_up: i64c("packets_up").value(i),
                packets_down: i64c("packets_down").value(i),
                bytes_up: i64c("bytes_up").value(i),
                bytes_down: i64c("bytes_down").value(i),
            });
        }
    }
    out
}

/// Checks every flow's bins against the flow: the bins' packets and bytes per direction
/// sum to the flow's totals; every bin has traffic; the first bin is the one of
/// `first_ts` and the last the one of `last_ts` (so every bin's traffic lies within
/// `[first_ts, last_ts]`); `bins` counts the bins from the first to the last; and no bin
/// names a flow that is not in flows.parquet. Returns the number of bins checked.
fn check_bins(name: &str, out: &Output) -> usize {
    let w = out.bin_us;
    let ids: BTreeSet<i64> = out.flows.iter().map(|f| f.flow_id).collect();
    assert_eq!(ids.len(), out.flows.len(), "{name}: flow ids are unique");
    for id in out.bins.keys() {
        assert!(ids.contains(id), "{name}: bins of unknown flow {id}");
    }
    let mut n = 0;
    for f in &out.flows {
        let bins = out.flow_bins(f.flow_id);
        let sum = bins.iter().fold([0i64; 4], |s, b| {
            [
                s[0] + b.packets_up,
                s[1] + b.packets_down,
                s[2] + b.bytes_up,
                s[3] + b.bytes_down,
            ]
        });
        assert_eq!(
            sum,
            [f.packets_up, f.packets_down, f.bytes_up, f.bytes_down],
            "{name}: flow {} ({} → {}): its bins (packets up/down, bytes up/down) do not \
             sum to its totals",
            f.flow_id,
            f.client_addr,
            f.server_addr
        );
        let first_bin = f.first_us.div_euclid(w) * w;
        let last_bin = f.last_us.div_euclid(w) * w;
        assert_eq!(
            bins.first().map(|b| b.start_us),
            Some(first_bin),
            "{name}: flow {}: first bin is not the one of first_ts",
            f.flow_id
        );
        assert_eq!(
            bins.last().map(|b| b.start_us),
            Some(last_bin),
            "{name}: flow {}: last bin is not the one of last_ts",
            f.flow_id
        );
        for pair in bins.windows(2) {
            assert!(
                pair[0].start_us < pair[1].start_us,
                "{name}: flow {}: two rows for one bin",
                f.flow_id
            );
        }
        for b in bins {
            assert_eq!(b.start_us % w, 0, "{name}: bin aligned to the width");
            assert!(
                b.packets_up + b.packets_down > 0,
                "{name}: flow {}: a bin row without traffic",
                f.flow_id
            );
            assert!(
                b.start_us >= first_bin && b.start_us <= last_bin,
                "{name}: flow {}: bin {} outside [first_ts, last_ts]",
                f.flow_id,
                b.start_us
            );
        }
        assert_eq!(
            f.bins,
            (last_bin - first_bin) / w + 1,
            "{name}: flow {}: `bins` is the span from first_ts to last_ts",
            f.flow_id
        );
        assert_eq!(f.duration_us, f.last_us - f.first_us, "{name}: duration_us");
        n += bins.len();
    }
    n
}

// ---------------------------------------------------------------------------------------
// demo.pcap (capgen)
// ---------------------------------------------------------------------------------------

fn is_multicast(addr: &str) -> bool {
    addr.parse::<IpAddr>()
        .unwrap_or_else(|_| panic!("address {addr}"))
        .is_multicast()
}

fn u(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("integer expected, got {v}"))
}

/// The columns of flows.parquet that a capgen truth flow determines, as our row must
/// show them.
///
/// Orientation: capgen's client is the TCP SYN sender or DNS querier, as ours; for
/// multicast capgen calls the group the client and the head-end the server, which is
/// also our rule (README: "for other flows the sender to a multicast ... address" is
/// the server, `client_rule = multicast`). The rule applied here is the README's,
/// decided from the truth's addresses: if the truth's *server* address were the
/// multicast group (a truth calling the head-end the client), client and server and up
/// and down are swapped; otherwise the truth's orientation is kept. The demo's two
/// channels have the group as `client_addr` and all traffic down, so nothing is swapped.
fn expected_demo_flow(
    f: &Value,
    end_ns: i64,
    bin_us: i64,
    udp_timeout_ns: i64,
) -> BTreeMap<&'static str, Value> {
    let proto = match f["protocol"].as_str().unwrap() {
        "tcp" => 6,
        "udp" => 17,
        p => panic!("protocol {p}"),
    };
    let swap = is_multicast(f["server_addr"].as_str().unwrap());
    let (c, s, up, down) = if swap {
        ("server", "client", "down", "up")
    } else {
        ("client", "server", "up", "down")
    };
    let addr = |side: &str| f[format!("{side}_addr")].clone();
    let port = |side: &str| f[format!("{side}_port")].clone();
    let count = |what: &str, dir: &str| f[format!("{what}_{dir}")].clone();
    // µs-resolution capture: the truth's ns timestamps are whole µs, written as ours.
    assert_eq!(u(&f["first_ts_ns"]) % 1000, 0);
    let first = u(&f["first_ts_ns"]) / 1000;
    let last = u(&f["last_ts_ns"]) / 1000;
    let client_addr = addr(c);
    let client_port = u(&port(c));
    let server_port = u(&port(s));
    let tcp = &f["tcp"];
    // The README's client rules, first match wins, decided from the truth alone.
    let rule = if proto == 6 && !tcp["syn_ts_ns"].is_null() {
        "syn"
    } else if is_multicast(client_addr.as_str().unwrap()) {
        "multicast"
    } else if server_port < 1024 && client_port >= 32768 {
        "well_known_port"
    } else {
        panic!(
            "flow {}: no client rule decided from the truth",
            f["flow_id"]
        )
    };
    let mut m = BTreeMap::new();
    m.insert("flow_id", f["flow_id"].clone());
    m.insert("first_ts", json!(first));
    m.insert("last_ts", json!(last));
    m.insert("duration_us", json!(last - first));
    m.insert("ip_version", f["ip_version"].clone());
    m.insert("protocol", json!(proto));
    m.insert("client_addr", client_addr);
    m.insert("client_port", json!(client_port));
    m.insert("server_addr", addr(s));
    m.insert("server_port", json!(server_port));
    m.insert("vlan", f["vlan"].clone());
    // capgen writes at most one 802.1Q tag.
    m.insert("vlan_inner", Value::Null);
    m.insert("client_rule", json!(rule));
    m.insert("packets_up", count("packets", up));
    m.insert("packets_down", count("packets", down));
    m.insert("bytes_up", count("frame_bytes", up));
    m.insert("bytes_down", count("frame_bytes", down));
    m.insert("payload_bytes_up", count("payload_bytes", up));
    m.insert("payload_bytes_down", count("payload_bytes", down));
    m.insert(
        "bins",
        json!(last.div_euclid(bin_us) - first.div_euclid(bin_us) + 1),
    );
    if proto == 6 {
        let flag = |k: &str| tcp[k].as_bool().unwrap_or_else(|| panic!("tcp.{k}"));
        // The client's SYN was written iff `syn_ts_ns` is set, and then it is the
        // flow's first packet.
        let syn = !tcp["syn_ts_ns"].is_null();
        if syn {
            assert_eq!(tcp["syn_ts_ns"], f["first_ts_ns"]);
        }
        m.insert("syn_seen", json!(syn));
        let rtt = tcp["handshake_rtt_ns"].as_i64();
        m.insert("handshake_seen", json!(rtt.is_some()));
        m.insert("handshake_rtt_us", json!(rtt.map(|r| r / 1000)));
        m.insert("retransmitted_packets", tcp["retransmissions"].clone());
        m.insert("fin_up", json!(flag("fin_client")));
        m.insert("fin_down", json!(flag("fin_server")));
        m.insert("rst_seen", json!(flag("rst_client") || flag("rst_server")));
        m.insert("end_reason", tcp["end_reason"].clone());
    } else {
        for k in [
            "syn_seen",
            "handshake_seen",
            "handshake_rtt_us",
            "retransmitted_packets",
            "fin_up",
            "fin_down",
            "rst_seen",
        ] {
            m.insert(k, Value::Null);
        }
        // A UDP flow ends by idling for --udp-timeout (capture time); one whose last
        // packet is less than that before the capture's end is still open there.
        let idle = end_ns - u(&f["last_ts_ns"]) >= udp_timeout_ns;
        m.insert(
            "end_reason",
            json!(if idle { "idle" } else { "capture_end" }),
        );
    }
    m
}

/// The columns where `ours` differs from `expected`, as `column: ours != truth`.
fn diff(ours: &BTreeMap<&'static str, Value>, expected: &BTreeMap<&'static str, Value>) -> String {
    expected
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k}: ours {} != truth {v}",
                ours.get(k).unwrap_or(&Value::Null)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Times (ns, as generated) of the datagrams a capgen channel sends, lost ones
/// included: TS packet `k` (188 bytes, 1504 bits) leaves at
/// `start + floor(k·1504e9 / mux_rate)` ns (capgen README, `ts.rs`), a datagram carries
/// `ts_per_datagram` packets and leaves with its first, and nothing is sent at or after
/// the channel's end.
fn channel_schedule(ch: &Value, start_ns: i64, end_ns: i64) -> Vec<i64> {
    let s_ns = |s: f64| start_ns + (s.max(0.0) * 1e9) as i64;
    let from = s_ns(ch["start_s"].as_f64().unwrap());
    let until = ch["end_s"].as_f64().map_or(end_ns, |e| s_ns(e).min(end_ns));
    let n = u(&ch["ts_per_datagram"]) as i128;
    let mux = u(&ch["mux_rate_bps"]) as i128;
    (0..)
        .map(|j: i128| from + (j * n * 1504 * 1_000_000_000 / mux) as i64)
        .take_while(|&t| t < until)
        .collect()
}

#[test]
fn demo_flows_and_bins_equal_the_truth() {
    let dir = captures_dir();
    let tmp = tempfile::tempdir().unwrap();
    let run = analyze(&dir.join("demo.pcap"), tmp.path());
    let out = Output::read(run, tmp.path());
    let t = truth(&dir.join("demo.pcap.truth.json"));
    assert_eq!(
        t["ts_resolution"], "us",
        "the checks below assume µs timestamps"
    );
    let start_ns = u(&t["start_ns"]);
    let end_ns = u(&t["end_ns"]);
    let udp_timeout = u(&out.run["options"]["udp_timeout_ns"]);
    let w = out.bin_us;
    let bins_checked = check_bins("demo", &out);

    // 1. Flows: each truth flow is exactly one of ours in every column both have, and
    //    each of ours is one truth flow or one (sender, destination) pair of the truth's
    //    IGMP messages. Ids: ours count flows in the order of their first packets, the
    //    IGMP flows among them; the truth numbers its own flows in that order, so our id
    //    of each is its rank by first packet among both kinds.
    let truth_flows = t["flows"].as_array().expect("per-flow truth");
    let membership = membership_flows(&t);
    // (first packet, truth id or IGMP message index): the truth orders its flows that
    // start together by id, and its IGMP messages by index; an IGMP flow must not start
    // with a flow of the other kind.
    let mut starts: Vec<(i64, Result<i64, i64>)> = truth_flows
        .iter()
        .map(|f| (u(&f["first_ts_ns"]), Ok(u(&f["flow_id"]))))
        .chain(membership.values().map(|&(ts, m, _)| (ts, Err(m))))
        .collect();
    starts.sort();
    assert!(
        starts
            .windows(2)
            .all(|p| p[0].0 < p[1].0 || p[0].1.is_ok() == p[1].1.is_ok()),
        "demo: an IGMP message starts a flow at the same time as another flow: their \
         order is not the truth's to say"
    );
    // Both number from the same first id (the truth's flows alone did equal ours).
    let first_id = truth_flows
        .iter()
        .map(|f| u(&f["flow_id"]))
        .min()
        .unwrap_or(0);
    let our_id: HashMap<i64, i64> = starts
        .iter()
        .enumerate()
        .filter_map(|(rank, (_, id))| id.ok().map(|id| (id, first_id + rank as i64)))
        .collect();
    let ours: Vec<_> = out.flows.iter().map(Flow::columns).collect();
    let mut matched = vec![0; ours.len()];
    let mut by_truth_id = HashMap::new();
    for f in truth_flows {
        let mut exp = expected_demo_flow(f, end_ns, w, udp_timeout);
        exp.insert("flow_id", json!(our_id[&u(&f["flow_id"])]));
        let hits: Vec<usize> = (0..ours.len())
            .filter(|&i| exp.iter().all(|(k, v)| ours[i].get(k) == Some(v)))
            .collect();
        if hits.len() != 1 {
            let same_tuple: Vec<String> = ours
                .iter()
                .filter(|o| {
                    [
                        "protocol",
                        "client_addr",
                        "client_port",
                        "server_addr",
                        "server_port",
                    ]
                    .iter()
                    .all(|k| o.get(k) == exp.get(k))
                })
                .map(|o| format!("our flow {}: {}", o["flow_id"], diff(o, &exp)))
                .collect();
            panic!(
                "demo: truth flow {} ({} {} {}:{} → {}:{}) matches {} of our flows; same \
                 5-tuple: [{}]",
                f["flow_id"],
                f["kind"],
                f["protocol"],
                f["client_addr"],
                f["client_port"],
                f["server_addr"],
                f["server_port"],
                hits.len(),
                same_tuple.join("; ")
            );
        }
        matched[hits[0]] += 1;
        by_truth_id.insert(u(&f["flow_id"]), &out.flows[hits[0]]);
    }
    for ((group, host), &(first_ns, _, messages)) in &membership {
        let hits: Vec<usize> = (0..ours.len())
            .filter(|&i| {
                let f = &out.flows[i];
                f.protocol == 2
                    && (&f.client_addr, &f.server_addr) == (group, host)
                    && (f.packets_up, f.packets_down) == (0, messages)
                    && f.first_us == first_ns / 1000
                    && f.client_rule == "multicast"
            })
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "demo: the IGMP messages from {host} to {group} ({messages}, the first at              {first_ns} ns) are not exactly one of our flows"
        );
        matched[hits[0]] += 1;
    }
    let extra: Vec<_> = out
        .flows
        .iter()
        .zip(&matched)
        .filter(|(_, &m)| m != 1)
        .map(|(f, m)| {
            format!(
                "{} ({} → {}) matched {m} times",
                f.flow_id, f.client_addr, f.server_addr
            )
        })
        .collect();
    assert!(
        extra.is_empty(),
        "demo: flows of ours not in the truth: {extra:?}"
    );
    assert_eq!(out.flows.len(), truth_flows.len() + membership.len());

    // 2. Channels: the bins of a channel's flow hold exactly the datagrams its mux
    //    schedule sends per bin, except in the bins the loss window touches, which
    //    together hold exactly `datagrams_dropped` fewer. Every datagram of a channel has
    //    the same frame length (fixed TS packets per datagram), so bytes follow.
    let channels = t["scenario"]["channel"].as_array().unwrap();
    let mut windows = Vec::new();
    for fault in t["scenario"]["fault"].as_array().unwrap() {
        match fault["kind"].as_str().unwrap() {
            "multicast_loss" => windows.push(fault),
            k => panic!("demo: fault kind {k} changes datagram counts; extend this test"),
        }
    }
    let mut channel_bins = 0;
    let mut dropped_total = 0;
    for f in truth_flows {
        let Some(ts) = f["ts"].as_object() else {
            continue;
        };
        assert!(f["kind"].as_str().unwrap().starts_with("multicast_"));
        let name = f["name"].as_str().unwrap();
        let ch = channels
            .iter()
            .find(|c| c["name"] == name)
            .expect("channel");
        assert_eq!(ts["datagrams_duplicated"], 0);
        assert_eq!(ts["datagrams_reordered"], 0);
        let sched = channel_schedule(ch, start_ns, end_ns);
        assert_eq!(
            sched.len() as i64,
            u(&ts["datagrams_sent"]),
            "demo: {name}: the mux schedule gives the truth's datagrams_sent"
        );
        let in_window = |t_ns: i64| {
            windows.iter().any(|wf| {
                let applies = wf["channels"]
                    .as_array()
                    .is_none_or(|l| l.is_empty() || l.iter().any(|c| c == name));
                let a = start_ns + (wf["start_s"].as_f64().unwrap().max(0.0) * 1e9) as i64;
                let b = start_ns + (wf["end_s"].as_f64().unwrap().max(0.0) * 1e9) as i64;
                applies && t_ns >= a && t_ns < b
            })
        };
        let mut sent: BTreeMap<i64, i64> = BTreeMap::new();
        let mut lossy_bins = BTreeSet::new();
        for &t_ns in &sched {
            // Written timestamps are truncated to the µs.
            let bin = (t_ns / 1000).div_euclid(w) * w;
            *sent.entry(bin).or_default() += 1;
            if in_window(t_ns) {
                lossy_bins.insert(bin);
            }
        }
        let ours = by_truth_id[&u(&f["flow_id"])];
        let frame = u(&f["frame_bytes_down"]) / u(&f["packets_down"]);
        assert_eq!(frame * u(&f["packets_down"]), u(&f["frame_bytes_down"]));
        let got: BTreeMap<i64, Bin> = out
            .flow_bins(ours.flow_id)
            .iter()
            .map(|b| (b.start_us, *b))
            .collect();
        for b in got.keys() {
            assert!(
                sent.contains_key(b),
                "demo: {name}: traffic in bin {b} where nothing is sent"
            );
        }
        let (mut lossy_sent, mut lossy_got) = (0, 0);
        for (&bin, &n) in &sent {
            let g = got.get(&bin).copied();
            let (p, y) = g.map_or((0, 0), |b| (b.packets_down, b.bytes_down));
            assert_eq!(
                g.map_or(0, |b| b.packets_up),
                0,
                "demo: {name}: nothing goes up"
            );
            if lossy_bins.contains(&bin) {
                lossy_sent += n;
                lossy_got += p;
            } else {
                assert_eq!(
                    (p, y),
                    (n, n * frame),
                    "demo: {name}: bin {bin} outside the loss window: (packets, bytes) \
                     down against the mux schedule"
                );
            }
            channel_bins += 1;
        }
        let dropped = u(&ts["datagrams_dropped"]);
        assert!(lossy_bins.is_empty() == (dropped == 0));
        assert_eq!(
            lossy_got,
            lossy_sent - dropped,
            "demo: {name}: the bins of the loss window hold the datagrams sent there less \
             the {dropped} dropped"
        );
        let (_, lossy_bytes) = out.down_in(ours.flow_id, |s| lossy_bins.contains(&s));
        assert_eq!(lossy_bytes, (lossy_sent - dropped) * frame);
        dropped_total += dropped;
    }
    assert_eq!(dropped_total, u(&t["totals"]["dropped_datagrams"]));

    // 3. TCP response bursts: the bins overlapping a burst's first to last byte carry at
    //    least its segments and its response bytes. At least, not exactly: a 1 s bin
    //    also holds the flow's other packets down (SYN-ACK, FIN, other bursts), and
    //    frame bytes exceed the TCP payload by the headers.
    let mut bursts = 0;
    for f in truth_flows {
        let Some(list) = f["tcp"]["bursts"].as_array() else {
            continue;
        };
        let ours = by_truth_id[&u(&f["flow_id"])];
        for b in list {
            let (Some(a), Some(z)) = (
                b["first_byte_ts_ns"].as_i64(),
                b["last_byte_ts_ns"].as_i64(),
            ) else {
                continue;
            };
            let (p, y) = out.down_overlapping(ours.flow_id, a / 1000, z / 1000);
            assert!(
                p >= u(&b["segments"]) && y >= u(&b["response_bytes_sent"]),
                "demo: flow {}: burst at {a} ns: {p} packets / {y} bytes down in its bins, \
                 fewer than its {} segments / {} bytes",
                f["flow_id"],
                b["segments"],
                b["response_bytes_sent"]
            );
            bursts += 1;
        }
    }
    say(&format!(
        "captures demo: {} flows equal to the truth in {} columns each, {} bins summed, \
         {channel_bins} channel bins against the mux schedule ({dropped_total} dropped \
         datagrams in the loss window), {bursts} response bursts",
        truth_flows.len(),
        expected_demo_flow(&truth_flows[0], end_ns, w, udp_timeout).len(),
        bins_checked
    ));
}

// ---------------------------------------------------------------------------------------
// testbed-*.pcap (real software in network namespaces)
// ---------------------------------------------------------------------------------------

/// Truth epoch seconds (float, rounded to the µs by the testbed) as µs.
fn epoch_us(v: &Value) -> i64 {
    (v.as_f64()
        .unwrap_or_else(|| panic!("epoch seconds expected, got {v}"))
        * 1e6)
        .round() as i64
}

/// The truth's times are the players' `round(time.time(), 6)`; ours are capture times
/// floored to the µs, on the same clock. An instant after a logged time may therefore
/// show up to 1 µs before it.
const ROUNDING_US: i64 = 1;

/// What one TCP connection of the truth became in our flows.
struct Conn<'a> {
    client: String,
    scheme: String,
    main: &'a Flow,
}

#[derive(Default)]
struct Tally {
    connections: usize,
    refused: usize,
    residues: usize,
    http_exchanges: usize,
    http_connections: usize,
    https_exchanges: usize,
    https_connections: usize,
    streams: usize,
    intervals: usize,
    loss_groups: usize,
    igmp_events: usize,
    dns_queries: i64,
    bins: usize,
}

/// Frame bytes of a testbed multicast datagram beyond its UDP payload: Ethernet II (14),
/// IPv4 without options (20), UDP (8). The lab bridge carries no VLAN tags and the
/// head-end is IPv4 (truth `streams[].source`).
const MCAST_OVERHEAD: i64 = 14 + 20 + 8;

/// One IPv4 UDP datagram to a multicast group, as the capture file holds it.
#[derive(Debug, Clone, Copy)]
struct Datagram {
    ts_us: i64,
    /// Original frame length.
    frame: i64,
    /// UDP payload length.
    payload: i64,
}

/// Multicast datagrams by (source, group, destination port).
type Multicast = HashMap<(String, String, i64), Vec<Datagram>>;

/// The IPv4 UDP datagrams to multicast groups in a classic pcap with Ethernet frames,
/// keyed by (source, group, destination port): a scan of the file written here for
/// this test, sharing nothing with streamscope's readers and dissectors.
fn multicast_datagrams(pcap: &Path) -> Multicast {
    let b = std::fs::read(pcap).unwrap();
    let le32 = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let be16 = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]) as usize;
    let frac_per_us = match le32(0) {
        0xA1B2_C3D4 => 1,
        0xA1B2_3C4D => 1000,
        m => panic!(
            "{}: not a little-endian classic pcap ({m:x})",
            pcap.display()
        ),
    };
    assert_eq!(le32(20) & 0xFFFF, 1, "Ethernet link type");
    let mut out = Multicast::new();
    let mut off = 24;
    while off < b.len() {
        let ts_us = le32(off) as i64 * 1_000_000 + le32(off + 4) as i64 / frac_per_us;
        let (incl, orig) = (le32(off + 8) as usize, le32(off + 12) as i64);
        let (start, end) = (off + 16, off + 16 + incl);
        off = end;
        let mut l3 = start + 12;
        while l3 + 2 <= end && matches!(be16(l3), 0x8100 | 0x88A8) {
            l3 += 4;
        }
        if l3 + 2 > end || be16(l3) != 0x0800 {
            continue;
        }
        let ip = l3 + 2;
        if ip + 20 > end || b[ip] >> 4 != 4 || b[ip + 9] != 17 || b[ip + 16] & 0xF0 != 0xE0 {
            continue;
        }
        assert_eq!(be16(ip + 6) & 0x3FFF, 0, "unfragmented multicast datagrams");
        let udp = ip + usize::from(b[ip] & 0x0F) * 4;
        let addr = |at: usize| format!("{}.{}.{}.{}", b[at], b[at + 1], b[at + 2], b[at + 3]);
        out.entry((addr(ip + 12), addr(ip + 16), be16(udp + 2) as i64))
            .or_default()
            .push(Datagram {
                ts_us,
                frame: orig,
                payload: be16(udp + 4) as i64 - 8,
            });
    }
    assert_eq!(off, b.len(), "{}: whole records", pcap.display());
    out
}

fn check_testbed(scenario: &str, t: &Value, out: &Output, mcast: &Multicast) -> Tally {
    let name = format!("testbed-{scenario}");
    let mut tally = Tally {
        bins: check_bins(&name, out),
        ..Tally::default()
    };
    let tcp: Vec<&Flow> = out.flows.iter().filter(|f| f.protocol == 6).collect();
    let closed_timeout_us = u(&out.run["options"]["tcp_closed_timeout_ns"]) / 1000;

    // --- Connections: every `connect` event of every player. -------------------------
    let mut conns: Vec<Conn> = Vec::new();
    let mut refused_flows: Vec<&Flow> = Vec::new();
    // Per address family, refused connects and requests that failed on an established
    // connection (from the players' logs), for the takedown's reject counters.
    let mut refused_by_family: HashMap<i64, i64> = HashMap::new();
    let mut failed_by_family: HashMap<i64, i64> = HashMap::new();
    for c in t["clients"].as_array().unwrap() {
        let family = u(&c["address_family"]);
        let client = c[if family == 4 { "ipv4" } else { "ipv6" }]
            .as_str()
            .unwrap()
            .to_string();
        let events = c["events"].as_array().unwrap();
        for e in events.iter().filter(|e| e["event"] == "connect") {
            let server = e["addr"].as_str().unwrap();
            let port = u(&e["port"]) as i32;
            let (t0, t1) = (epoch_us(&e["t_start"]) - ROUNDING_US, epoch_us(&e["t"]));
            let what = format!(
                "{name}: {} connect at {} to {server}:{port}",
                c["name"], e["t_start"]
            );
            if e["ok"] == true {
                let lport = u(&e["local_port"]) as i32;
                // The connection's SYN opens exactly one flow of ours, between the call
                // and its return.
                let hits: Vec<&Flow> = tcp
                    .iter()
                    .copied()
                    .filter(|f| {
                        f.client_addr == client
                            && f.client_port == Some(lport)
                            && f.server_addr == server
                            && f.server_port == Some(port)
                            && f.syn_seen == Some(true)
                    })
                    .collect();
                assert_eq!(
                    hits.len(),
                    1,
                    "{what} (port {lport}): one flow with its SYN"
                );
                let f = hits[0];
                assert!(
                    f.first_us >= t0 && f.first_us <= t1,
                    "{what}: SYN at {} outside the connect call [{t0}, {t1}]",
                    f.first_us
                );
                assert_eq!(f.ip_version as i64, family, "{what}");
                assert_eq!(f.client_rule, "syn", "{what}");
                assert_eq!(f.handshake_seen, Some(true), "{what}: handshake");
                assert!(f.handshake_rtt_us.is_some(), "{what}: handshake RTT");
                conns.push(Conn {
                    client: client.clone(),
                    scheme: e["scheme"].as_str().unwrap().to_string(),
                    main: f,
                });
            } else {
                // A refused connect logs no local port: its flow is the one SYN from
                // this client to that server port within the call.
                assert_eq!(e["error"], "ConnectionRefusedError", "{what}");
                let hits: Vec<&Flow> = tcp
                    .iter()
                    .copied()
                    .filter(|f| {
                        f.client_addr == client
                            && f.server_addr == server
                            && f.server_port == Some(port)
                            && f.syn_seen == Some(true)
                            && f.first_us >= t0
                            && f.first_us <= t1
                    })
                    .collect();
                assert_eq!(hits.len(), 1, "{what}: one SYN flow within the call");
                let f = hits[0];
                // Refused at the SYN by `REJECT --reject-with tcp-reset`: one SYN up and
                // one RST down (exactly one each: the reject counters below leave no
                // room for a retransmitted SYN), no handshake, no payload.
                assert_eq!(f.handshake_seen, Some(false), "{what}");
                assert_eq!(f.rst_seen, Some(true), "{what}");
                assert_eq!(f.end_reason, "rst", "{what}");
                assert_eq!(
                    (f.packets_up, f.packets_down, f.payload_up, f.payload_down),
                    (1, 1, 0, 0),
                    "{what}: SYN and RST only"
                );
                refused_flows.push(f);
                *refused_by_family.entry(family).or_default() += 1;
            }
        }
        // How each connection ended, by the player's own log.
        for f in conns.iter().filter(|k| k.client == client) {
            let port = f.main.client_port.unwrap() as i64;
            let on_conn = |e: &&Value| e["local_port"].as_i64() == Some(port);
            let failed: Vec<&Value> = events
                .iter()
                .filter(on_conn)
                .filter(|e| e["event"] == "request" && e["ok"] == false)
                .collect();
            let streamed = events
                .iter()
                .filter(|e| e["event"] == "stream_open")
                .any(|e| on_conn(&e));
            let closed = events
                .iter()
                .filter(|e| e["event"] == "close")
                .any(|e| on_conn(&e));
            let m = f.main;
            let what = format!("{name}: {} connection {}:{port}", c["name"], f.client);
            *failed_by_family.entry(family).or_default() += failed.len() as i64;
            if let Some(e) = failed.first() {
                // The server side went away under a request (takedown: the request
                // segment is rejected with a RST): our flow ends in that RST, while the
                // request was outstanding.
                assert_eq!(e["error"], "RemoteDisconnected", "{what}");
                assert_eq!(
                    (m.rst_seen, m.end_reason.as_str()),
                    (Some(true), "rst"),
                    "{what}"
                );
                let (a, b) = (epoch_us(&e["t_start"]) - ROUNDING_US, epoch_us(&e["t"]));
                assert!(
                    m.last_us >= a && m.last_us <= b,
                    "{what}: last packet at {} outside the failed request [{a}, {b}]",
                    m.last_us
                );
            } else if streamed {
                // A progressive stream closed mid-stream: the socket is closed with
                // unread data, which TCP aborts with a RST (RFC 2525 §2.17).
                assert!(closed, "{what}: closed");
                assert_eq!(
                    (m.rst_seen, m.end_reason.as_str()),
                    (Some(true), "rst"),
                    "{what}"
                );
            } else {
                // A player's orderly close of an idle keep-alive connection: FIN from
                // the client, FIN from nginx, no RST.
                assert!(closed, "{what}: closed");
                assert_eq!(
                    (m.fin_up, m.fin_down, m.rst_seen, m.end_reason.as_str()),
                    (Some(true), Some(true), Some(false), "fin"),
                    "{what}"
                );
            }
        }
    }
    tally.connections = conns.len();
    tally.refused = refused_flows.len();

    // Every TCP flow of ours is one of those connections, or a connection's late
    // packets after our meter closed it. In the takedown the RST came from the
    // firewall, so nginx never saw its connections reset: ~18 s later it sends a TLS
    // alert on each, which the client's kernel answers with a RST. Those arrive more
    // than --tcp-closed-timeout after the flow's RST, without a SYN, and so form a flow
    // of their own (README: a closed flow is kept for that timeout).
    for f in &tcp {
        let known = conns.iter().any(|k| std::ptr::eq(k.main, *f))
            || refused_flows.iter().any(|r| std::ptr::eq(*r, *f));
        if known {
            continue;
        }
        let main = conns.iter().find(|k| {
            k.main.client_addr == f.client_addr
                && k.main.client_port == f.client_port
                && k.main.server_addr == f.server_addr
                && k.main.server_port == f.server_port
        });
        let Some(main) = main else {
            panic!(
                "{name}: TCP flow {} {}:{:?} → {}:{:?} is no connection of the players' logs",
                f.flow_id, f.client_addr, f.client_port, f.server_addr, f.server_port
            );
        };
        assert_eq!(
            f.syn_seen,
            Some(false),
            "{name}: flow {}: no second SYN",
            f.flow_id
        );
        assert_eq!(main.main.end_reason, "rst", "{name}: flow {}", f.flow_id);
        assert!(
            f.first_us >= main.main.last_us + closed_timeout_us,
            "{name}: flow {} starts within --tcp-closed-timeout of its connection's RST",
            f.flow_id
        );
        tally.residues += 1;
    }

    // The takedown's firewall counters: every rejected packet is a refused SYN or the
    // one request segment of an established connection that failed. With every refused
    // connect having its own SYN flow (above), these identities are what makes "one SYN
    // and one RST per refused flow" exact.
    for fault in t["faults"].as_array().unwrap() {
        if fault["kind"] != "takedown" {
            continue;
        }
        let (start, end) = (
            epoch_us(&fault["start_cmd_epoch"]),
            epoch_us(&fault["end_epoch"]),
        );
        for (family, key) in [(4, "rejected_ipv4_packets"), (6, "rejected_ipv6_packets")] {
            let n = |m: &HashMap<i64, i64>| m.get(&family).copied().unwrap_or(0);
            assert_eq!(
                n(&refused_by_family) + n(&failed_by_family),
                u(&fault[key]),
                "{name}: {key}: refused connects plus failed requests in the players' logs"
            );
        }
        for f in &refused_flows {
            assert!(
                f.first_us >= start && f.last_us <= end,
                "{name}: refused flow {} outside the takedown",
                f.flow_id
            );
        }
    }

    // --- HTTP exchanges: nginx's log per connection. -------------------------------------
    // (client, client port, server, server port) → (sum of `bytes`, requests, scheme)
    type Exchanges = BTreeMap<(String, i64, String, i64), (i64, usize, String)>;
    let mut per_conn = Exchanges::new();
    for h in t["http_log"].as_array().unwrap() {
        let key = (
            h["client"].as_str().unwrap().to_string(),
            u(&h["client_port"]),
            h["server"].as_str().unwrap().to_string(),
            u(&h["server_port"]),
        );
        let e = per_conn
            .entry(key)
            .or_insert((0, 0, h["scheme"].as_str().unwrap().to_string()));
        e.0 += u(&h["bytes"]);
        e.1 += 1;
    }
    for ((client, cport, server, sport), (bytes, n, scheme)) in &per_conn {
        let what = format!("{name}: {scheme} {client}:{cport} → {server}:{sport}");
        let k = conns
            .iter()
            .find(|k| {
                k.main.client_addr == *client
                    && k.main.client_port == Some(*cport as i32)
                    && k.main.server_addr == *server
                    && k.main.server_port == Some(*sport as i32)
            })
            .unwrap_or_else(|| panic!("{what}: nginx logged it, no player connected it"));
        assert_eq!(&k.scheme, scheme, "{what}");
        let down = k.main.payload_down;
        if scheme == "http" {
            // nginx's `bytes` is $bytes_sent: status line, header fields and body, i.e.
            // every byte nginx wrote on the connection, which is its TCP payload down.
            // Equal as long as nothing was sent twice (no retransmissions, checked) and
            // nothing nginx wrote was lost in an abortive close.
            assert_eq!(k.main.retrans_down, Some(0), "{what}: retransmissions");
            assert_eq!(
                down, *bytes,
                "{what}: our payload bytes down against nginx's bytes_sent of its {n} requests"
            );
            tally.http_exchanges += n;
            tally.http_connections += 1;
        } else {
            // Over TLS, nginx counts the plaintext; the wire carries it in records (5-byte
            // headers, nonces, tags) after the handshake (certificate, key exchange), so
            // only a lower bound holds.
            assert!(
                down > *bytes,
                "{what}: our payload bytes down {down} not above nginx's plaintext {bytes}"
            );
            tally.https_exchanges += n;
            tally.https_connections += 1;
        }
    }

    // --- Multicast streams. ---------------------------------------------------------
    let streams = t["streams"].as_array().unwrap();
    let stream_flow = |group: &str, port: i64| -> &Flow {
        let s = streams
            .iter()
            .find(|s| s["group"] == group && u(&s["port"]) == port)
            .unwrap_or_else(|| panic!("{name}: no stream {group}:{port}"));
        let hits: Vec<&Flow> = out
            .flows
            .iter()
            .filter(|f| {
                f.protocol == 17
                    && f.client_addr == group
                    && f.client_port == Some(port as i32)
                    && f.server_addr == s["source"].as_str().unwrap()
            })
            .collect();
        assert_eq!(hits.len(), 1, "{name}: one flow for stream {group}:{port}");
        hits[0]
    };
    for s in streams {
        let group = s["group"].as_str().unwrap();
        let f = stream_flow(group, u(&s["port"]));
        assert_eq!(f.client_rule, "multicast", "{name}: {group}");
        assert_eq!(
            (f.packets_up, f.bytes_up),
            (0, 0),
            "{name}: {group}: all down"
        );
        assert_eq!(
            f.bytes_down - f.payload_down,
            MCAST_OVERHEAD * f.packets_down,
            "{name}: {group}: frame bytes are UDP payload plus 42 per datagram"
        );
        // Exact, bin by bin: the datagrams the capture file holds for the stream.
        let source = s["source"].as_str().unwrap().to_string();
        let key = (source, group.to_string(), u(&s["port"]));
        let mut want: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for d in mcast.get(&key).map_or(&[][..], |v| v.as_slice()) {
            let e = want
                .entry(d.ts_us.div_euclid(out.bin_us) * out.bin_us)
                .or_default();
            e.0 += 1;
            e.1 += d.frame;
        }
        let got: BTreeMap<i64, (i64, i64)> = out
            .flow_bins(f.flow_id)
            .iter()
            .map(|b| (b.start_us, (b.packets_down, b.bytes_down)))
            .collect();
        assert_eq!(
            got, want,
            "{name}: {group}: per bin (packets, bytes) down against the capture file"
        );
        if let Some(rtcp) = s["rtcp_port"].as_i64() {
            assert!(
                out.flows.iter().any(|f| f.protocol == 17
                    && f.client_addr == group
                    && f.client_port == Some(rtcp as i32)
                    && f.server_addr == s["source"].as_str().unwrap()),
                "{name}: RTCP of {group}"
            );
        }
        tally.streams += 1;
    }

    // --- Receivers: each join interval. ---------------------------------------------
    // Between its join and its leave a set-top box receives every datagram that crosses
    // the bridge for its group (no snooping, nothing dropped after the capture point),
    // and the capture sees it a fraction of a millisecond before the box does. So,
    // from the truth alone, the channel's bins overlapping [join − 1 ms, last_rx] hold
    // at least the box's datagrams, and the bins inside [first_rx, last_rx] at most
    // those: inequalities, because bins do not end where the interval does and capture
    // times are not receive times. The exact form needs the capture file for what the
    // edge bins hold outside the interval (below).
    let fault_windows: Vec<&Value> = t["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "loss")
        .collect();
    for r in t["receivers"].as_array().unwrap() {
        let mut joined: HashMap<String, i64> = HashMap::new();
        for e in r["events"].as_array().unwrap() {
            let key = format!("{}:{}", e["group"].as_str().unwrap_or(""), e["port"]);
            match e["event"].as_str().unwrap() {
                "join" => {
                    joined.insert(key, epoch_us(&e["t"]));
                }
                "leave" => {
                    let join = joined.remove(&key).expect("leave after a join");
                    let group = e["group"].as_str().unwrap();
                    let f = stream_flow(group, u(&e["port"]));
                    let (first, last) = (epoch_us(&e["first_rx"]), epoch_us(&e["last_rx"]));
                    let (d, bytes) = (u(&e["datagrams"]), u(&e["bytes"]));
                    let what = format!("{name}: {} on {key} {first}..{last}", r["name"]);
                    let (op, ob) = out.down_overlapping(f.flow_id, join - 1000, last);
                    let (ip, ib) = out.down_inside(f.flow_id, first, last);
                    assert!(
                        ip <= d && d <= op,
                        "{what}: received {d} datagrams, our bins hold {ip} inside and {op} \
                         around the interval"
                    );
                    let frames = bytes + MCAST_OVERHEAD * d;
                    assert!(
                        ib <= frames && frames <= ob,
                        "{what}: received {bytes} bytes ({frames} as frames), our bins hold \
                         {ib} inside and {ob} around"
                    );
                    // Exact, through the capture file: it holds exactly the box's
                    // datagrams and bytes in [join − 1 ms, last_rx] (the truth against
                    // the capture), and our bins around the interval hold those plus
                    // the capture's datagrams of the edge bins outside it.
                    let key = (f.server_addr.clone(), group.to_string(), u(&e["port"]));
                    let caught = mcast.get(&key).map_or(&[][..], |v| v.as_slice());
                    let (a, z) = (join - 1000, last);
                    let inside: Vec<&Datagram> = caught
                        .iter()
                        .filter(|x| x.ts_us >= a && x.ts_us <= z)
                        .collect();
                    assert_eq!(
                        (
                            inside.len() as i64,
                            inside.iter().map(|x| x.payload).sum::<i64>()
                        ),
                        (d, bytes),
                        "{what}: the capture file's datagrams and payload bytes in the \
                         interval against the box's"
                    );
                    let w = out.bin_us;
                    let edge: Vec<&Datagram> = caught
                        .iter()
                        .filter(|x| x.ts_us < a || x.ts_us > z)
                        .filter(|x| {
                            let s = x.ts_us.div_euclid(w) * w;
                            s <= z && s + w > a
                        })
                        .collect();
                    assert_eq!(
                        (op, ob),
                        (
                            d + edge.len() as i64,
                            frames + edge.iter().map(|x| x.frame).sum::<i64>()
                        ),
                        "{what}: our bins around the interval against the box's {d} \
                         datagrams and the capture's {} outside it in the same bins",
                        edge.len()
                    );
                    tally.intervals += 1;
                    // The loss window (inside this interval): all that the rule dropped
                    // is missing at the box and in the capture alike. Only an RTP group
                    // says how many datagrams were sent (sequence numbers): sent =
                    // received + missing, and the interval holds sent − dropped, which our
                    // bins bracket from the truth alone and equal with the capture's edge
                    // datagrams. For plain UDP the truth has no sent count: the interval
                    // checks above are all that can be computed.
                    for fw in &fault_windows {
                        let counter = &fw["dropped_packets"][format!("{group}:{}", e["port"])];
                        let Some(dropped) = counter.as_i64() else {
                            continue;
                        };
                        let (a, b) = (epoch_us(&fw["start_cmd_epoch"]), epoch_us(&fw["end_epoch"]));
                        if !(join <= a && epoch_us(&e["t"]) >= b) || e["encap"] != "rtp" {
                            continue;
                        }
                        assert_eq!(
                            u(&e["rtp_lost"]),
                            dropped,
                            "{what}: missing sequence numbers against the drop counter"
                        );
                        for g in e["rtp_gaps"].as_array().unwrap() {
                            assert!(epoch_us(&g["t"]) >= a, "{what}: a gap before the window");
                        }
                        let sent = d + u(&e["rtp_lost"]);
                        assert!(
                            ip <= sent - dropped && sent - dropped <= op,
                            "{what}: {sent} sent less {dropped} dropped, our bins hold {ip} \
                             inside and {op} around"
                        );
                        assert_eq!(
                            op - edge.len() as i64,
                            sent - dropped,
                            "{what}: our bins of the interval (less the capture's edge \
                             datagrams) against {sent} sent less {dropped} dropped"
                        );
                        tally.loss_groups += 1;
                    }
                }
                _ => {}
            }
        }
    }

    // --- IGMP: each join and leave has a report of that receiver within 2 s (as
    // tools/testbed/verify.sh allows), to the address IGMP sends it to: IGMPv3 reports
    // to 224.0.0.22, IGMPv2 reports to the group and leaves to 224.0.0.2. We count IGMP
    // from the receiver as sent to that address (multicast rule: the receiver is the
    // server side). Not per packet: the kernel repeats and merges reports.
    for e in t["multicast_events"].as_array().unwrap() {
        let dst = match (u(&e["igmp_version"]), e["event"].as_str().unwrap()) {
            (3, _) => "224.0.0.22",
            (2, "join") => e["group"].as_str().unwrap(),
            (2, "leave") => "224.0.0.2",
            other => panic!("{name}: multicast event {other:?}"),
        };
        let at = epoch_us(&e["t"]);
        let found = out
            .flows
            .iter()
            .filter(|f| f.protocol == 2 && f.client_addr == dst && f.server_addr == e["ipv4"])
            .any(|f| {
                out.down_overlapping(f.flow_id, at - 2_000_000, at + 2_000_000)
                    .0
                    > 0
            });
        assert!(
            found,
            "{name}: no IGMP to {dst} from {} near {at}",
            e["ipv4"]
        );
        tally.igmp_events += 1;
    }

    // --- DNS: dnsmasq's query log per client; each query is one datagram up and is
    // answered by one datagram down.
    let dns_servers: Vec<&str> = t["dns"]["server"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let mut queries: BTreeMap<&str, i64> = BTreeMap::new();
    for (k, n) in t["dns"]["queries"].as_object().unwrap() {
        *queries.entry(k.split(' ').next().unwrap()).or_default() += u(n);
    }
    for (client, n) in &queries {
        let flows: Vec<&Flow> = out
            .flows
            .iter()
            .filter(|f| {
                f.protocol == 17
                    && f.client_addr == *client
                    && dns_servers.contains(&f.server_addr.as_str())
                    && f.server_port == Some(53)
            })
            .collect();
        let up: i64 = flows.iter().map(|f| f.packets_up).sum();
        assert_eq!(up, *n, "{name}: DNS queries from {client}");
        for f in flows {
            assert_eq!(
                f.packets_down, f.packets_up,
                "{name}: DNS flow {} answered",
                f.flow_id
            );
        }
        tally.dns_queries += n;
    }
    tally
}

#[test]
fn testbed_flows_and_bins_agree_with_the_labs_logs() {
    let dir = captures_dir();
    let tmp = tempfile::tempdir().unwrap();
    for scenario in ["steady", "takedown", "loss"] {
        let out_dir = tmp.path().join(scenario);
        // 10 ms bins: the receivers' intervals are checked against bins much narrower
        // than the datagram spacing (~75 ms), so the bounds are tight.
        let run = analyze_with(
            &dir.join(format!("testbed-{scenario}.pcap")),
            &out_dir,
            &["--bin", "10ms"],
        );
        let out = Output::read(run, &out_dir);
        assert_eq!(out.bin_us, 10_000);
        let t = truth(&dir.join(format!("testbed-{scenario}.truth.json")));
        let mcast = multicast_datagrams(&dir.join(format!("testbed-{scenario}.pcap")));
        let tally = check_testbed(scenario, &t, &out, &mcast);
        say(&format!(
            "captures testbed-{scenario}: {} connections ({} plain HTTP with {} exchanges \
             equal by bytes, {} HTTPS with {} exchanges bounded), {} refused connections, \
             {} late flows of reset connections, {} streams, {} receiver intervals, {} \
             loss-window groups, {} IGMP events, {} DNS queries, {} bins summed",
            tally.connections,
            tally.http_connections,
            tally.http_exchanges,
            tally.https_connections,
            tally.https_exchanges,
            tally.refused,
            tally.residues,
            tally.streams,
            tally.intervals,
            tally.loss_groups,
            tally.igmp_events,
            tally.dns_queries,
            tally.bins
        ));
        // What each scenario must have exercised (from its truth; a truth file that lost
        // its events would otherwise pass vacuously).
        let clients = t["clients"].as_array().unwrap();
        let connects = clients
            .iter()
            .flat_map(|c| c["events"].as_array().unwrap())
            .filter(|e| e["event"] == "connect")
            .count();
        assert_eq!(tally.connections + tally.refused, connects, "{scenario}");
        assert!(tally.connections > 0, "{scenario}");
        assert_eq!(
            tally.streams,
            t["streams"].as_array().unwrap().len(),
            "{scenario}"
        );
        assert_eq!(
            tally.igmp_events,
            t["multicast_events"].as_array().unwrap().len(),
            "{scenario}"
        );
        assert_eq!(
            tally.http_exchanges + tally.https_exchanges,
            t["http_log"].as_array().unwrap().len(),
            "{scenario}"
        );
        let leaves = t["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["events"].as_array().unwrap())
            .filter(|e| e["event"] == "leave")
            .count();
        assert_eq!(tally.intervals, leaves, "{scenario}");
        match scenario {
            "takedown" => assert!(tally.refused > 0, "takedown: refused connections"),
            "loss" => assert_eq!(tally.loss_groups, 1, "loss: the RTP group's window"),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// demo.pcap is reproducible
// ---------------------------------------------------------------------------------------

#[test]
fn demo_capture_and_truth_regenerate_byte_for_byte() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tools/capgen/scenarios/demo.toml")).unwrap();
    let sc = capgen::Scenario::from_toml(&text).expect("demo.toml parses");
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("demo.pcap");
    let truth_path = tmp.path().join("demo.pcap.truth.json");
    // As `capgen tools/capgen/scenarios/demo.toml --seed 1 -o captures/demo.pcap` does
    // (tools/capgen/src/main.rs): pcap for a .pcap name, the scenario's timestamp
    // resolution, the truth pretty-printed (up to 20,000 flows).
    let opts = capgen::Options {
        seed: 1,
        format: capgen::Format::Pcap,
        ts_resolution: None,
    };
    let (t, w) = capgen::generate(&sc, &opts, BufWriter::new(File::create(&pcap).unwrap()))
        .expect("capgen generates the demo");
    w.into_inner().map_err(|e| e.into_error()).unwrap();
    assert!(t.flows.as_ref().is_some_and(|f| f.len() <= 20_000));
    std::fs::write(&truth_path, serde_json::to_vec_pretty(&t).unwrap()).unwrap();
    for (made, committed) in [
        (&pcap, root.join("captures/demo.pcap")),
        (&truth_path, root.join("captures/demo.pcap.truth.json")),
    ] {
        let a = std::fs::read(made).unwrap();
        let b = std::fs::read(&committed).unwrap();
        if a != b {
            let at = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            panic!(
                "{} is not what capgen makes of tools/capgen/scenarios/demo.toml with seed 1 \
                 (regenerated {} bytes, committed {} bytes, first difference at byte {at}). \
                 Regenerate both files with `cargo run --release -p capgen -- \
                 tools/capgen/scenarios/demo.toml --seed 1 -o captures/demo.pcap` (see \
                 captures/README.md) and commit them together.",
                committed.display(),
                a.len(),
                b.len()
            );
        }
    }
}
