//! Cross-checks of generated captures against tshark, an independent dissector.
//!
//! Two captures are generated once per test process with the capgen library: the demo
//! scenario (classic pcap, µs) and a smaller pcapng variant (ns resolution, an IPv6 RTP
//! channel with one TS packet per datagram, a VLAN UDP channel with an on-air window
//! and a 100 % loss burst, SYN/SYN-ACK/RST small flows). For each, tshark's figures are
//! compared exactly with the truth file: totals, per-flow packets and bytes per
//! direction, conversation tables, expert information (only the expected items), RTP
//! streams, MPEG-TS packets and continuity drops per PID, DNS exchanges and TCP
//! handshakes and endings.
//!
//! tshark is found through `streamscope_testkit::tshark` (the `TSHARK` environment
//! variable, else `tshark` on `PATH`). Without it each test that needs it prints one
//! `SKIPPED` line saying what it did not check and passes, or fails under
//! `STREAMSCOPE_REQUIRE_ORACLES=1`; the checks of the truth alone and the parser tests at
//! the end run either way.

mod support {
    pub mod tshark;
}

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use capgen::truth::{EndReason, FlowKind, FlowTruth, Protocol};
use capgen::{generate, Format, Options, Scenario, Truth};
use support::tshark::{
    format_size, json_each, json_find, parse_conv, parse_epoch_ns, parse_rtp_streams, parse_u64,
    Conv, Severity, Tshark, GROUP_SEQUENCE,
};

const DEMO: &str = include_str!("../scenarios/demo.toml");

/// A small pcapng capture exercising what the demo does not: nanosecond timestamps,
/// an IPv6 multicast RTP channel with one TS packet per datagram, a VLAN-tagged UDP
/// channel on air for part of the capture with a 100 % loss burst, SYN/SYN-ACK/RST
/// small flows, several FIN endings.
const VARIANT: &str = r#"
name = "tshark-variant"
start = "2024-05-06T07:08:09.123456789Z"
duration_s = 6.0

[output]
ts_resolution = "ns"

[network]
ipv6_share = 0.5
vlan_share = 0.5
vlan_id = 300
clients = 8

[dns]
rtt_ms = [1.0, 5.0]

[[channel]]
name = "v6rtp"
group = "ff3e::1:1"
encap = "rtp"
port = 6004
mux_rate_bps = 300_000
video_bps = 200_000
audio_bps = 32_000
ts_per_datagram = 1
pmt_pid = 0x200
video_pid = 0x201
audio_pid = 0x202

[[channel]]
name = "v4udp"
group = "239.2.2.2"
encap = "udp"
port = 6000
mux_rate_bps = 300_000
video_bps = 200_000
audio_bps = 32_000
ts_per_datagram = 4
vlan = 201
start_s = 0.5
end_s = 5.5

[[https]]
name = "clips"
host = "clips.example"
server_v4 = ["198.18.0.10"]
server_v6 = ["2001:db8:300::10"]
clients = 2
segment_bytes = [10_000, 20_000]
segment_duration_s = 1.0
rtt_ms = [5.0, 15.0]
rate_bps = 10_000_000
session_s = [2.0, 3.0]
fin_share = 0.5
start_spread_s = 0.5

[small_flows]
count = 30
kind = "tcp_syn_rst"
clients = 8
servers = 4

[[fault]]
kind = "multicast_loss"
channels = ["v6rtp"]
start_s = 2.0
end_s = 3.5
probability = 0.5

[[fault]]
kind = "multicast_loss"
channels = ["v4udp"]
start_s = 4.0
end_s = 4.3
probability = 1.0
"#;

// ---------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------

/// A generated capture on disk with its truth.
struct Capture {
    label: &'static str,
    path: PathBuf,
    truth: Truth,
    /// Decode-as options making tshark dissect the channels: `-d udp.port==P,mp2t`
    /// for TS in UDP, `-d udp.port==P,rtp` for TS in RTP (PT 33 then goes to MP2T).
    decode: Vec<String>,
}

impl Capture {
    fn opts(&self) -> Vec<&str> {
        self.decode.iter().map(String::as_str).collect()
    }

    fn flows(&self) -> &[FlowTruth] {
        self.truth
            .flows
            .as_deref()
            .expect("test scenarios keep per-flow truth")
    }

    fn ts_flows(&self) -> impl Iterator<Item = &FlowTruth> {
        self.flows().iter().filter(|f| f.ts.is_some())
    }
}

/// tshark for `test`, which checks `what` with it; `None` after one `SKIPPED` line when
/// tshark is missing (a panic under `STREAMSCOPE_REQUIRE_ORACLES=1`).
fn tshark(test: &str, what: &str) -> Option<&'static Tshark> {
    Tshark::get(&format!("capgen::tshark::{test}"), what)
}

/// Generates `toml` with `seed` into the test scratch directory (through a `.part`
/// name unique to this process, so concurrent runs never read half-written files).
fn build(label: &'static str, toml: &str, seed: u64, format: Format, file: &str) -> Capture {
    let sc = Scenario::from_toml(toml).expect("scenario parses");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capgen-tshark");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join(file);
    let part = dir.join(format!("{file}.{}.part", std::process::id()));
    let opts = Options {
        seed,
        format,
        ts_resolution: None,
    };
    let out = BufWriter::new(File::create(&part).expect("create capture"));
    let (truth, out) = generate(&sc, &opts, out).expect("generation succeeds");
    out.into_inner().expect("flush capture");
    std::fs::rename(&part, &path).expect("rename capture");
    let mut decode = Vec::new();
    for f in truth.flows.iter().flatten() {
        let proto = match f.kind {
            FlowKind::MulticastTsUdp => "mp2t",
            FlowKind::MulticastTsRtp => "rtp",
            _ => continue,
        };
        decode.push("-d".to_string());
        decode.push(format!("udp.port=={},{proto}", f.client_port));
    }
    Capture {
        label,
        path,
        truth,
        decode,
    }
}

fn demo() -> &'static Capture {
    static C: OnceLock<Capture> = OnceLock::new();
    C.get_or_init(|| build("demo", DEMO, 1, Format::Pcap, "demo.pcap"))
}

fn variant() -> &'static Capture {
    static C: OnceLock<Capture> = OnceLock::new();
    C.get_or_init(|| build("variant", VARIANT, 2, Format::Pcapng, "variant.pcapng"))
}

/// Both captures.
fn captures() -> [&'static Capture; 2] {
    [demo(), variant()]
}

// ---------------------------------------------------------------------------------
// Flow matching
// ---------------------------------------------------------------------------------

type Endpoint = (IpAddr, u16);

/// Direction-free key of a transport conversation.
fn conv_key(tcp: bool, a: Endpoint, b: Endpoint) -> (bool, Endpoint, Endpoint) {
    if a <= b {
        (tcp, a, b)
    } else {
        (tcp, b, a)
    }
}

fn flow_index(c: &Capture) -> HashMap<(bool, Endpoint, Endpoint), &FlowTruth> {
    let mut m = HashMap::new();
    for f in c.flows() {
        let key = conv_key(
            f.protocol == Protocol::Tcp,
            (f.client_addr, f.client_port),
            (f.server_addr, f.server_port),
        );
        assert!(
            m.insert(key, f).is_none(),
            "{}: two truth flows share {key:?}",
            c.label
        );
    }
    m
}

/// Per-stream figures aggregated from tshark's per-frame fields.
#[derive(Debug, Default)]
struct StreamAgg {
    tcp: bool,
    first: Option<(Endpoint, Endpoint)>,
    ip_version: u8,
    vlan: Option<u16>,
    /// Packets, frame bytes, payload bytes from the first packet's source, and back.
    fwd: (u64, u64, u64),
    rev: (u64, u64, u64),
    first_ts: u64,
    last_ts: u64,
}

/// Aggregates every TCP/UDP frame by `tcp.stream` / `udp.stream`.
fn streams(t: &Tshark, c: &Capture) -> BTreeMap<(bool, u64), StreamAgg> {
    let f = [
        "tcp.stream",
        "udp.stream",
        "frame.time_epoch",
        "frame.len",
        "ip.src",
        "ipv6.src",
        "ip.dst",
        "ipv6.dst",
        "tcp.srcport",
        "udp.srcport",
        "tcp.dstport",
        "udp.dstport",
        "tcp.len",
        "udp.length",
        "vlan.id",
    ];
    let rows = t.fields(&c.path, &c.opts(), Some("tcp || udp"), &f);
    let mut out: BTreeMap<(bool, u64), StreamAgg> = BTreeMap::new();
    for r in rows {
        let tcp = r.has(0);
        let id = if tcp { r.u64(0) } else { r.u64(1) }.expect("stream index");
        let ts = r.time_ns(2).expect("frame time");
        let len = r.u64(3).expect("frame.len");
        let src = (
            r.addr(4).or(r.addr(5)).expect("source address"),
            r.u64(if tcp { 8 } else { 9 }).expect("source port") as u16,
        );
        let dst = (
            r.addr(6).or(r.addr(7)).expect("destination address"),
            r.u64(if tcp { 10 } else { 11 }).expect("destination port") as u16,
        );
        let payload = if tcp {
            r.u64(12).expect("tcp.len")
        } else {
            r.u64(13).expect("udp.length") - 8
        };
        let s = out.entry((tcp, id)).or_default();
        if s.first.is_none() {
            s.tcp = tcp;
            s.first = Some((src, dst));
            s.ip_version = if r.has(4) { 4 } else { 6 };
            s.vlan = r.u64(14).map(|v| v as u16);
            s.first_ts = ts;
        }
        let (a, b) = s.first.expect("set above");
        let d = if (src, dst) == (a, b) {
            &mut s.fwd
        } else {
            assert_eq!((src, dst), (b, a), "stream {id} mixes endpoints");
            &mut s.rev
        };
        d.0 += 1;
        d.1 += len;
        d.2 += payload;
        s.last_ts = ts;
    }
    out
}

// ---------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------

#[test]
fn tshark_is_installed() {
    let Some(t) = tshark("tshark_is_installed", "tshark's version line") else {
        return;
    };
    assert!(
        t.version().starts_with("TShark"),
        "unexpected version line: {}",
        t.version()
    );
}

/// tshark reads both files to the end without complaint (stderr, exit code), finds no
/// malformed or short frames with the channel dissectors on, and every IPv4 header,
/// UDP and TCP checksum verifies.
#[test]
fn reads_cleanly_without_malformed_frames() {
    let Some(t) = tshark(
        "reads_cleanly_without_malformed_frames",
        "clean reading, malformed frames and checksums of the generated captures",
    ) else {
        return;
    };
    for c in captures() {
        let mut opts = c.opts();
        opts.push("-q");
        t.run(&c.path, &opts);
        let malformed = t.fields(
            &c.path,
            &c.opts(),
            Some("_ws.malformed || _ws.short || _ws.unreassembled"),
            &["frame.number"],
        );
        assert!(
            malformed.is_empty(),
            "{}: malformed/short frames {:?}",
            c.label,
            malformed.iter().map(|r| r.get(0)).collect::<Vec<_>>()
        );

        let mut opts = c.opts();
        opts.extend([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
        ]);
        let rows = t.fields(
            &c.path,
            &opts,
            None,
            &[
                "ip.checksum.status",
                "udp.checksum.status",
                "tcp.checksum.status",
            ],
        );
        let tot = &c.truth.totals;
        let good = |i: usize| rows.iter().filter(|r| r.get(i) == "1").count() as u64;
        // Status 1 = good; 0 = bad; 2 = not verified.
        assert_eq!(
            good(0),
            tot.ipv4_packets,
            "{}: good IPv4 checksums",
            c.label
        );
        assert_eq!(good(1), tot.udp_packets, "{}: good UDP checksums", c.label);
        assert_eq!(good(2), tot.tcp_packets, "{}: good TCP checksums", c.label);
    }
}

/// Frame count, Σ frame.len (= Σ frame.cap_len: nothing truncated), first/last time,
/// time order and window, link type, and the IPv4/IPv6/VLAN/TCP/UDP frame counts.
#[test]
fn totals_match_truth() {
    // The figures of the committed demo (scenarios/demo.toml, seed 1).
    let d = &demo().truth.totals;
    assert_eq!((d.packets, d.frame_bytes), (2963, 3_423_675));
    let Some(shark) = tshark(
        "totals_match_truth",
        "frame totals, times, link type and protocol counts of the generated captures",
    ) else {
        return;
    };
    for c in captures() {
        let rows = shark.fields(
            &c.path,
            &[],
            None,
            &[
                "frame.len",
                "frame.cap_len",
                "frame.time_epoch",
                "frame.encap_type",
                "vlan.id",
                "ip.src",
                "ipv6.src",
                "tcp.stream",
                "udp.stream",
            ],
        );
        let t = &c.truth;
        let tot = &t.totals;
        let n = rows.len() as u64;
        let sum = |i: usize| rows.iter().map(|r| r.u64(i).expect("length")).sum::<u64>();
        let count = |i: usize| rows.iter().filter(|r| r.has(i)).count() as u64;
        let times: Vec<u64> = rows.iter().map(|r| r.time_ns(2).expect("time")).collect();
        assert_eq!(n, tot.packets, "{}: frames", c.label);
        assert_eq!(sum(0), tot.frame_bytes, "{}: Σ frame.len", c.label);
        assert_eq!(sum(1), tot.frame_bytes, "{}: Σ frame.cap_len", c.label);
        assert_eq!(
            times.first().copied(),
            tot.first_ts_ns,
            "{}: first",
            c.label
        );
        assert_eq!(times.last().copied(), tot.last_ts_ns, "{}: last", c.label);
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{}: time order",
            c.label
        );
        assert!(
            times.iter().all(|&x| x >= t.start_ns && x < t.end_ns),
            "{}: frames outside [start, end)",
            c.label
        );
        assert!(
            rows.iter().all(|r| r.get(3) == "1"),
            "{}: every frame is Ethernet (wtap encapsulation 1)",
            c.label
        );
        assert_eq!(count(4), tot.vlan_packets, "{}: VLAN frames", c.label);
        assert_eq!(count(5), tot.ipv4_packets, "{}: IPv4 frames", c.label);
        assert_eq!(count(6), tot.ipv6_packets, "{}: IPv6 frames", c.label);
        assert_eq!(count(7), tot.tcp_packets, "{}: TCP frames", c.label);
        assert_eq!(count(8), tot.udp_packets, "{}: UDP frames", c.label);
        let size = std::fs::metadata(&c.path).expect("capture exists").len();
        assert_eq!(size, tot.file_bytes, "{}: file size", c.label);
    }
}

/// Every tcp.stream / udp.stream is exactly one truth flow (and the reverse), with the
/// same IP version, VLAN, first/last time, and packets, frame bytes and payload bytes
/// per direction.
#[test]
fn streams_match_truth_flows() {
    let Some(t) = tshark(
        "streams_match_truth_flows",
        "tshark's TCP/UDP streams against the truth flows",
    ) else {
        return;
    };
    for c in captures() {
        let idx = flow_index(c);
        let streams = streams(t, c);
        assert_eq!(
            streams.len(),
            c.flows().len(),
            "{}: tshark streams vs truth flows",
            c.label
        );
        let mut seen = HashMap::new();
        for ((tcp, id), s) in &streams {
            let (a, b) = s.first.expect("stream has frames");
            let f = *idx
                .get(&conv_key(*tcp, a, b))
                .unwrap_or_else(|| panic!("{}: stream {id} {a:?}->{b:?} not in truth", c.label));
            assert!(
                seen.insert(f.flow_id, id).is_none(),
                "{}: flow {} seen twice",
                c.label,
                f.flow_id
            );
            let (up, down) = if a == (f.client_addr, f.client_port) {
                (s.fwd, s.rev)
            } else {
                (s.rev, s.fwd)
            };
            let ctx = format!("{} flow {} ({:?}, stream {id})", c.label, f.flow_id, f.kind);
            assert_eq!(s.ip_version, f.ip_version, "{ctx}: IP version");
            assert_eq!(s.vlan, f.vlan, "{ctx}: VLAN");
            assert_eq!(
                up,
                (f.packets_up, f.frame_bytes_up, f.payload_bytes_up),
                "{ctx}: up"
            );
            assert_eq!(
                down,
                (f.packets_down, f.frame_bytes_down, f.payload_bytes_down),
                "{ctx}: down"
            );
            assert_eq!(
                (s.first_ts, s.last_ts),
                (f.first_ts_ns, f.last_ts_ns),
                "{ctx}: times"
            );
        }
    }
}

/// The `-z conv,udp` and `-z conv,tcp` tables: one row per truth flow, exact frames
/// per direction, byte columns as tshark prints the exact truth figures, relative start.
#[test]
fn conversation_tables_match_truth_flows() {
    let Some(t) = tshark(
        "conversation_tables_match_truth_flows",
        "tshark's conv,udp and conv,tcp tables against the truth flows",
    ) else {
        return;
    };
    for c in captures() {
        let idx = flow_index(c);
        let first = c.truth.totals.first_ts_ns.expect("capture has frames");
        for (proto, tcp) in [("udp", false), ("tcp", true)] {
            let rows: Vec<Conv> = t.conv(&c.path, &c.opts(), proto);
            let expect = c
                .flows()
                .iter()
                .filter(|f| (f.protocol == Protocol::Tcp) == tcp)
                .count();
            assert_eq!(rows.len(), expect, "{}: conv,{proto} rows", c.label);
            for r in &rows {
                let a = (r.a_addr, r.a_port);
                let b = (r.b_addr, r.b_port);
                let f = *idx
                    .get(&conv_key(tcp, a, b))
                    .unwrap_or_else(|| panic!("{}: conv {a:?} {b:?} not in truth", c.label));
                let ((fa, ba), (fb, bb)) = if a == (f.client_addr, f.client_port) {
                    (
                        (f.packets_up, f.frame_bytes_up),
                        (f.packets_down, f.frame_bytes_down),
                    )
                } else {
                    (
                        (f.packets_down, f.frame_bytes_down),
                        (f.packets_up, f.frame_bytes_up),
                    )
                };
                let ctx = format!("{} conv,{proto} flow {}", c.label, f.flow_id);
                assert_eq!(
                    (r.frames_a_to_b, r.frames_b_to_a),
                    (fa, fb),
                    "{ctx}: frames"
                );
                assert_eq!(r.frames, fa + fb, "{ctx}: total frames");
                assert!(
                    r.bytes_a_to_b.matches(ba),
                    "{ctx}: {:?} vs {ba}",
                    r.bytes_a_to_b
                );
                assert!(
                    r.bytes_b_to_a.matches(bb),
                    "{ctx}: {:?} vs {bb}",
                    r.bytes_b_to_a
                );
                assert!(
                    r.bytes.matches(ba + bb),
                    "{ctx}: {:?} vs {}",
                    r.bytes,
                    ba + bb
                );
                assert_eq!(
                    r.rel_start_ns,
                    f.first_ts_ns - first,
                    "{ctx}: relative start"
                );
            }
        }
    }
}

/// Expert information: only the items the scenarios must produce, in the expected
/// numbers. Expected:
/// - error/sequence "Detected N missing TS frames before this" (MP2T) on a channel's
///   port, as many per channel as the truth's Σ `cc_errors` (loss windows);
/// - warning/sequence "Connection reset (RST)", one per RST segment (`rst_client`,
///   `rst_server`);
/// - note/sequence "This frame initiates/undergoes the connection closing", one each
///   per connection closed with FIN by both sides;
/// - chat/sequence "Connection establish request (SYN)" per TCP flow,
///   "... acknowledge (SYN+ACK)" per TCP flow with a server packet, "Connection
///   finish (FIN)" per FIN segment.
///
/// Anything else (retransmissions, bad checksums, malformed packets, ...) fails.
#[test]
fn expert_info_is_only_the_expected() {
    // The demo's loss window must show up on both channels.
    let d = demo();
    for f in d.ts_flows() {
        let cc: u64 =
            f.ts.as_ref()
                .map_or(0, |t| t.pids.iter().map(|p| p.cc_errors).sum());
        assert!(cc > 0, "demo channel {:?} has CC errors", f.name);
    }
    let Some(t) = tshark(
        "expert_info_is_only_the_expected",
        "tshark's expert information on the generated captures",
    ) else {
        return;
    };
    for c in captures() {
        let items = t.expert(&c.path, &c.opts(), &["udp.dstport"]);
        let tcp: Vec<&FlowTruth> = c.flows().iter().filter(|f| f.tcp.is_some()).collect();
        let tcp_of = |f: &&FlowTruth| f.tcp.clone().expect("tcp flow");
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        for f in c.ts_flows() {
            let ts = f.ts.as_ref().expect("ts");
            *want
                .entry(format!("cc drop port {}", f.client_port))
                .or_default() += ts.pids.iter().map(|p| p.cc_errors).sum::<u64>();
        }
        let count = |p: &dyn Fn(&FlowTruth) -> u64| tcp.iter().map(|f| p(f)).sum::<u64>();
        want.insert(
            "rst".into(),
            count(&|f| {
                let t = tcp_of(&f);
                u64::from(t.rst_client) + u64::from(t.rst_server)
            }),
        );
        let both_fin = count(&|f| {
            let t = tcp_of(&f);
            u64::from(t.fin_client && t.fin_server)
        });
        want.insert("closing initiated".into(), both_fin);
        want.insert("closing undergone".into(), both_fin);
        want.insert("syn".into(), tcp.len() as u64);
        want.insert("syn-ack".into(), count(&|f| u64::from(f.packets_down > 0)));
        want.insert(
            "fin".into(),
            count(&|f| {
                let t = tcp_of(&f);
                u64::from(t.fin_client) + u64::from(t.fin_server)
            }),
        );
        want.retain(|_, v| *v > 0);

        let tcp_ports: Vec<u16> = tcp.iter().map(|f| f.server_port).collect();
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        let mut unexpected = Vec::new();
        for e in &items {
            let m = e.message.as_str();
            let syn_port = |prefix: &str| {
                m.strip_prefix(prefix)
                    .and_then(|p| p.parse::<u16>().ok())
                    .is_some_and(|p| tcp_ports.contains(&p))
            };
            let key = match (e.severity, e.group) {
                (Severity::Error, GROUP_SEQUENCE)
                    if m.starts_with("Detected ")
                        && m.contains(" missing TS frames before this") =>
                {
                    Some(format!("cc drop port {}", e.extra[0]))
                }
                (Severity::Warn, GROUP_SEQUENCE) if m == "Connection reset (RST)" => {
                    Some("rst".into())
                }
                (Severity::Note, GROUP_SEQUENCE)
                    if m == "This frame initiates the connection closing" =>
                {
                    Some("closing initiated".into())
                }
                (Severity::Note, GROUP_SEQUENCE)
                    if m == "This frame undergoes the connection closing" =>
                {
                    Some("closing undergone".into())
                }
                (Severity::Chat, GROUP_SEQUENCE)
                    if syn_port("Connection establish request (SYN): server port ") =>
                {
                    Some("syn".into())
                }
                (Severity::Chat, GROUP_SEQUENCE)
                    if syn_port("Connection establish acknowledge (SYN+ACK): server port ") =>
                {
                    Some("syn-ack".into())
                }
                (Severity::Chat, GROUP_SEQUENCE) if m == "Connection finish (FIN)" => {
                    Some("fin".into())
                }
                _ => None,
            };
            match key {
                Some(k) => *got.entry(k).or_default() += 1,
                None => unexpected.push(format!(
                    "frame {}: {:?} group {:#x}: {m}",
                    e.frame, e.severity, e.group
                )),
            }
        }
        assert!(
            unexpected.is_empty(),
            "{}: unexpected expert items:\n{}",
            c.label,
            unexpected.join("\n")
        );
        assert_eq!(got, want, "{}: expert items", c.label);
    }
}

/// `-z rtp,streams` and the decoded RTP headers: one stream per RTP flow with the
/// truth's SSRC, packets and lost; payload type, first/last sequence number and
/// sequence errors (runs of missing numbers) from `rtp.seq` equal the truth.
#[test]
fn rtp_streams_match_truth() {
    let Some(t) = tshark(
        "rtp_streams_match_truth",
        "tshark's rtp,streams table and RTP headers against the truth",
    ) else {
        return;
    };
    for c in captures() {
        let streams = t.rtp_streams(&c.path, &c.opts());
        let rtp: Vec<&FlowTruth> = c.flows().iter().filter(|f| f.rtp.is_some()).collect();
        assert!(!rtp.is_empty(), "{}: has an RTP channel", c.label);
        assert_eq!(streams.len(), rtp.len(), "{}: rtp,streams rows", c.label);
        let rows = t.fields(
            &c.path,
            &c.opts(),
            Some("rtp"),
            &["rtp.ssrc", "rtp.seq", "rtp.p_type", "udp.dstport"],
        );
        for f in rtp {
            let r = f.rtp.as_ref().expect("rtp");
            let ctx = format!("{} flow {} ({:?})", c.label, f.flow_id, f.name);
            let s = streams
                .iter()
                .find(|s| s.ssrc == r.ssrc)
                .unwrap_or_else(|| panic!("{ctx}: no stream with SSRC {:#x}", r.ssrc));
            assert_eq!(
                (s.src_addr, s.src_port),
                (f.server_addr, f.server_port),
                "{ctx}"
            );
            assert_eq!(
                (s.dst_addr, s.dst_port),
                (f.client_addr, f.client_port),
                "{ctx}"
            );
            assert_eq!(s.packets, r.packets, "{ctx}: packets");
            assert_eq!(s.lost, r.lost as i64, "{ctx}: lost");
            assert_eq!(s.problems, r.gaps > 0, "{ctx}: problems mark");
            assert!(
                s.payload.contains("MPEG-II"),
                "{ctx}: payload {}",
                s.payload
            );

            let mine: Vec<_> = rows
                .iter()
                .filter(|x| x.u64(0) == Some(u64::from(r.ssrc)))
                .collect();
            let seqs: Vec<u16> = mine.iter().map(|x| x.u64(1).expect("seq") as u16).collect();
            assert_eq!(seqs.len() as u64, r.packets, "{ctx}: rtp frames");
            assert!(
                mine.iter()
                    .all(|x| x.u64(2) == Some(u64::from(r.payload_type))
                        && x.u64(3) == Some(u64::from(f.client_port))),
                "{ctx}: payload type / port"
            );
            let (mut gaps, mut missing) = (0u64, 0u64);
            for w in seqs.windows(2) {
                let step = w[1].wrapping_sub(w[0]);
                if step != 1 {
                    gaps += 1;
                    missing += u64::from(step.wrapping_sub(1));
                }
            }
            assert_eq!(gaps, r.gaps, "{ctx}: sequence errors");
            assert_eq!(missing, r.lost, "{ctx}: missing sequence numbers");
            assert_eq!(seqs.first().copied(), r.first_seq, "{ctx}: first seq");
            assert_eq!(seqs.last().copied(), r.last_seq, "{ctx}: last seq");
        }
    }
}

/// MPEG-TS per channel: TS packets per PID, TS packets per datagram, PCRs, and
/// `mp2t.cc.drop` occurrences (total, and per PID from tshark's per-packet trees)
/// equal the truth.
#[test]
fn mpegts_pids_and_cc_drops_match_truth() {
    let Some(t) = tshark(
        "mpegts_pids_and_cc_drops_match_truth",
        "MPEG-TS PIDs, PCRs and CC drops per channel against the truth",
    ) else {
        return;
    };
    for c in captures() {
        let mut channels = 0;
        for f in c.ts_flows() {
            channels += 1;
            let ts = f.ts.as_ref().expect("ts");
            let ctx = format!("{} flow {} ({:?})", c.label, f.flow_id, f.name);
            let filter = format!("mp2t && udp.dstport=={}", f.client_port);
            let rows = t.fields(
                &c.path,
                &c.opts(),
                Some(&filter),
                &["mp2t.pid", "mp2t.cc.drop", "mp2t.af.pcr"],
            );
            assert_eq!(
                rows.len() as u64,
                f.packets_down,
                "{ctx}: datagrams with TS"
            );
            let mut per_pid: BTreeMap<u16, u64> = BTreeMap::new();
            let (mut drops, mut pcrs) = (0u64, 0u64);
            for r in &rows {
                let pids: Vec<u16> = r
                    .values(0)
                    .map(|p| parse_u64(p).expect("pid") as u16)
                    .collect();
                assert_eq!(
                    pids.len(),
                    usize::from(ts.ts_per_datagram),
                    "{ctx}: TS/datagram"
                );
                for p in pids {
                    *per_pid.entry(p).or_default() += 1;
                }
                drops += r.values(1).count() as u64;
                pcrs += r.values(2).count() as u64;
            }
            let want: BTreeMap<u16, u64> = ts
                .pids
                .iter()
                .filter(|p| p.packets > 0)
                .map(|p| (p.pid, p.packets))
                .collect();
            assert_eq!(per_pid, want, "{ctx}: TS packets per PID");
            assert_eq!(
                per_pid.values().sum::<u64>(),
                ts.ts_packets,
                "{ctx}: TS packets"
            );
            assert_eq!(pcrs, ts.pcr_count, "{ctx}: PCRs");
            let cc: u64 = ts.pids.iter().map(|p| p.cc_errors).sum();
            assert_eq!(drops, cc, "{ctx}: mp2t.cc.drop occurrences");

            // Per PID: tshark's JSON keeps each TS packet's header and expert item together.
            let filter = format!("mp2t.cc.drop && udp.dstport=={}", f.client_port);
            let json = t.json(&c.path, &c.opts(), &filter, &["mp2t"]);
            let mut drop_pid: BTreeMap<u16, u64> = BTreeMap::new();
            for pkt in json.as_array().expect("array of frames") {
                let layers = &pkt["_source"]["layers"];
                for tsp in json_each(layers.get("mp2t")) {
                    let mut pid = None;
                    json_find(tsp, "mp2t.pid", &mut |v| {
                        pid = v.as_str().and_then(parse_u64).map(|p| p as u16)
                    });
                    let mut n = 0u64;
                    json_find(tsp, "mp2t.cc.drop", &mut |_| n += 1);
                    if n > 0 {
                        *drop_pid
                            .entry(pid.expect("TS packet has a PID"))
                            .or_default() += n;
                    }
                }
            }
            let want: BTreeMap<u16, u64> = ts
                .pids
                .iter()
                .filter(|p| p.cc_errors > 0)
                .map(|p| (p.pid, p.cc_errors))
                .collect();
            assert_eq!(drop_pid, want, "{ctx}: mp2t.cc.drop per PID");
        }
        assert_eq!(channels, 2, "{}: both channels checked", c.label);
    }
}

/// DNS: each truth exchange is one query from the client (ID, name, type, one
/// question, time) and, unless the capture ended first, one response (rcode, answers
/// in order, TTLs, time); tshark sees no other DNS message.
#[test]
fn dns_exchanges_match_truth() {
    let Some(t) = tshark(
        "dns_exchanges_match_truth",
        "DNS queries and responses against the truth",
    ) else {
        return;
    };
    let mut checked = 0;
    for c in captures() {
        let rows = t.fields(
            &c.path,
            &c.opts(),
            Some("dns"),
            &[
                "frame.time_epoch",
                "ip.src",
                "ipv6.src",
                "udp.srcport",
                "dns.id",
                "dns.flags.response",
                "dns.qry.name",
                "dns.qry.type",
                "dns.flags.rcode",
                "dns.a",
                "dns.aaaa",
                "dns.resp.ttl",
                "dns.count.queries",
                "dns.flags.recdesired",
            ],
        );
        let mut used = vec![false; rows.len()];
        let mut expected_rows = 0;
        for f in c.flows().iter().filter(|f| f.dns.is_some()) {
            let d = f.dns.as_ref().expect("dns");
            let ctx = format!("{} flow {} (DNS id {})", c.label, f.flow_id, d.id);
            let find = |resp: bool, from: Endpoint| -> Vec<usize> {
                (0..rows.len())
                    .filter(|&i| {
                        let r = &rows[i];
                        r.u64(4) == Some(u64::from(d.id))
                            && r.u64(5) == Some(u64::from(resp))
                            && r.addr(1).or(r.addr(2)) == Some(from.0)
                            && r.u64(3) == Some(u64::from(from.1))
                    })
                    .collect()
            };
            let q = find(false, (f.client_addr, f.client_port));
            assert_eq!(q.len(), 1, "{ctx}: one query");
            let qr = &rows[q[0]];
            used[q[0]] = true;
            expected_rows += 1;
            let qtype = |r: &support::tshark::Row| match r.u64(7) {
                Some(1) => "A".to_string(),
                Some(28) => "AAAA".to_string(),
                other => format!("{other:?}"),
            };
            assert_eq!(qr.get(6), d.qname, "{ctx}: qname");
            assert_eq!(qtype(qr), d.qtype, "{ctx}: qtype");
            assert_eq!(qr.u64(12), Some(1), "{ctx}: questions");
            assert_eq!(qr.u64(13), Some(1), "{ctx}: RD");
            assert_eq!(qr.time_ns(0), Some(d.query_ts_ns), "{ctx}: query time");

            let a = find(true, (f.server_addr, f.server_port));
            match d.response_ts_ns {
                None => assert!(a.is_empty(), "{ctx}: no response expected"),
                Some(ts) => {
                    assert_eq!(a.len(), 1, "{ctx}: one response");
                    let ar = &rows[a[0]];
                    used[a[0]] = true;
                    expected_rows += 1;
                    assert_eq!(ar.get(6), d.qname, "{ctx}: response qname");
                    assert_eq!(qtype(ar), d.qtype, "{ctx}: response qtype");
                    assert_eq!(ar.u64(8), d.rcode.map(u64::from), "{ctx}: rcode");
                    let answers: Vec<IpAddr> = ar
                        .values(9)
                        .chain(ar.values(10))
                        .map(|v| v.parse().expect("address"))
                        .collect();
                    assert_eq!(answers, d.answers, "{ctx}: answers");
                    let ttls: Vec<u64> = ar.values(11).map(|v| v.parse().expect("ttl")).collect();
                    assert_eq!(
                        ttls,
                        vec![u64::from(d.answer_ttl_s); d.answers.len()],
                        "{ctx}"
                    );
                    assert_eq!(ar.time_ns(0), Some(ts), "{ctx}: response time");
                }
            }
            checked += 1;
        }
        assert_eq!(rows.len(), expected_rows, "{}: DNS messages", c.label);
        assert!(
            used.iter().all(|&u| u),
            "{}: unmatched DNS messages",
            c.label
        );
    }
    assert!(checked >= 10, "DNS exchanges checked: {checked}");
}

/// TCP: per flow one SYN at the truth's `syn_ts_ns` with the truth's MSS, a SYN-ACK
/// when the server answered, tshark's handshake RTT (`tcp.analysis.initial_rtt`)
/// equal to `handshake_rtt_ns`, and FIN/RST segments per side as in the truth.
#[test]
fn tcp_handshakes_and_endings_match_truth() {
    let Some(t) = tshark(
        "tcp_handshakes_and_endings_match_truth",
        "TCP handshakes, RTTs and FIN/RST endings against the truth",
    ) else {
        return;
    };
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for c in captures() {
        let idx = flow_index(c);
        let rows = t.fields(
            &c.path,
            &[],
            Some("tcp.flags.syn==1 || tcp.flags.fin==1 || tcp.flags.reset==1"),
            &[
                "frame.time_epoch",
                "ip.src",
                "ipv6.src",
                "tcp.srcport",
                "ip.dst",
                "ipv6.dst",
                "tcp.dstport",
                "tcp.flags.syn",
                "tcp.flags.ack",
                "tcp.flags.fin",
                "tcp.flags.reset",
                "tcp.options.mss_val",
            ],
        );
        let rtt_rows = t.fields(
            &c.path,
            &[],
            Some("tcp.analysis.initial_rtt"),
            &[
                "ip.src",
                "ipv6.src",
                "tcp.srcport",
                "ip.dst",
                "ipv6.dst",
                "tcp.dstport",
                "tcp.analysis.initial_rtt",
            ],
        );
        #[derive(Default, Debug, PartialEq)]
        struct Seen {
            syn: Vec<(u64, Option<u64>)>,
            syn_ack: u64,
            fin: (u64, u64),
            rst: (u64, u64),
            rtt: Option<u64>,
        }
        let mut seen: HashMap<u64, Seen> = HashMap::new();
        let flow_of = |src: Endpoint, dst: Endpoint| -> &FlowTruth {
            idx.get(&conv_key(true, src, dst))
                .unwrap_or_else(|| panic!("{}: TCP {src:?}->{dst:?} not in truth", c.label))
        };
        let ep = |r: &support::tshark::Row, a: usize| -> Endpoint {
            (
                r.addr(a).or(r.addr(a + 1)).expect("address"),
                r.u64(a + 2).expect("port") as u16,
            )
        };
        for r in &rows {
            let (src, dst) = (ep(r, 1), ep(r, 4));
            let f = flow_of(src, dst);
            let from_client = src == (f.client_addr, f.client_port);
            let s = seen.entry(f.flow_id).or_default();
            let flag = |i: usize| r.u64(i) == Some(1);
            match (flag(7), flag(8)) {
                (true, false) if from_client => s.syn.push((r.time_ns(0).expect("t"), r.u64(11))),
                (true, true) if !from_client => s.syn_ack += 1,
                (false, _) => {}
                _ => panic!("{}: SYN in the wrong direction: {r:?}", c.label),
            }
            let side = |p: &mut (u64, u64)| {
                if from_client {
                    p.0 += 1
                } else {
                    p.1 += 1
                }
            };
            if flag(9) {
                side(&mut s.fin);
            }
            if flag(10) {
                side(&mut s.rst);
            }
        }
        for r in &rtt_rows {
            let f = flow_of(ep(r, 0), ep(r, 3));
            let rtt = r.duration_ns(6).expect("initial_rtt");
            let s = seen.entry(f.flow_id).or_default();
            assert!(
                s.rtt.is_none() || s.rtt == Some(rtt),
                "{}: flow {} initial_rtt changes",
                c.label,
                f.flow_id
            );
            s.rtt = Some(rtt);
        }
        let tcp: Vec<&FlowTruth> = c.flows().iter().filter(|f| f.tcp.is_some()).collect();
        assert_eq!(
            seen.len(),
            tcp.len(),
            "{}: TCP flows with SYN/FIN/RST",
            c.label
        );
        for f in tcp {
            let tt = f.tcp.as_ref().expect("tcp");
            let want = Seen {
                syn: vec![(tt.syn_ts_ns, Some(u64::from(tt.mss)))],
                syn_ack: u64::from(f.packets_down > 0),
                fin: (u64::from(tt.fin_client), u64::from(tt.fin_server)),
                rst: (u64::from(tt.rst_client), u64::from(tt.rst_server)),
                rtt: tt.handshake_rtt_ns,
            };
            let got = seen.remove(&f.flow_id).unwrap_or_default();
            assert_eq!(got, want, "{} flow {} ({:?})", c.label, f.flow_id, f.kind);
            let reason = match tt.end_reason {
                EndReason::Fin => {
                    assert!(tt.fin_client && tt.fin_server, "FIN ending has both FINs");
                    "fin"
                }
                EndReason::Rst => {
                    assert!(tt.rst_client || tt.rst_server, "RST ending has a RST");
                    "rst"
                }
                EndReason::CaptureEnd => {
                    assert!(!(tt.fin_client || tt.rst_client || tt.rst_server));
                    "capture_end"
                }
            };
            *reasons.entry(format!("{} {reason}", c.label)).or_default() += 1;
        }
    }
    // Every ending occurs in the checked captures.
    for r in ["fin", "rst", "capture_end"] {
        assert!(
            reasons.keys().any(|k| k.ends_with(r)),
            "no {r} ending checked: {reasons:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Parsers of the support module, on tshark 4.0.17 output
// ---------------------------------------------------------------------------------

#[test]
fn format_size_matches_tshark_conversation_tables() {
    assert_eq!(format_size(0), "0 bytes");
    assert_eq!(format_size(8370), "8370 bytes");
    assert_eq!(format_size(9999), "9999 bytes");
    assert_eq!(format_size(10_000), "10 kB");
    assert_eq!(format_size(273_192), "273 kB");
    assert_eq!(format_size(1_003_562), "1003 kB");
    assert_eq!(format_size(1_012_638), "1012 kB");
    assert_eq!(format_size(10_000_000), "10 MB");
}

#[test]
fn parses_conversation_and_rtp_tables() {
    let conv = "\
================================================================================
UDP Conversations
Filter:<No Filter>
                                                           |       <-      | |       ->      | |     Total     |    Relative    |   Duration   |
                                                           | Frames  Bytes | | Frames  Bytes | | Frames  Bytes |      Start     |              |
10.255.0.1:40000           <-> 239.1.1.1:5000                   0 0 bytes       739 1003 kB       739 1003 kB       0.000000000        19.9769
2001:db8:20::6:48849       <-> 2001:db8:53::53:53               1 125 bytes       1 97 bytes        2 222 bytes     1.154615000         0.0047
================================================================================
";
    let rows = parse_conv(conv);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].a_port, 40000);
    assert_eq!((rows[0].frames_b_to_a, rows[0].frames_a_to_b), (0, 739));
    assert!(rows[0].bytes_a_to_b.matches(1_003_562));
    assert!(!rows[0].bytes_a_to_b.matches(1_004_000));
    assert_eq!(rows[1].a_addr, "2001:db8:20::6".parse::<IpAddr>().unwrap());
    assert_eq!((rows[1].a_port, rows[1].b_port), (48849, 53));
    assert!(rows[1].bytes_b_to_a.matches(125));
    assert_eq!(rows[1].rel_start_ns, 1_154_615_000);

    let rtp = "\
========================= RTP Streams ========================
   Start time      End time     Src IP addr  Port    Dest IP addr  Port       SSRC          Payload  Pkts         Lost   Min Delta(ms)  Mean Delta(ms)   Max Delta(ms)  Min Jitter(ms) Mean Jitter(ms)  Max Jitter(ms) Problems?
     0.000000     19.976880      10.255.0.2 40000       239.1.1.2  5004 0x44D0F9A0  MPEG-II streams   737    23 (3.0%)          26.320          27.143         131.600           0.001           0.004           0.005 X
     0.000000      1.000000      10.0.0.1 1000       10.0.0.2  2000 0x00000001  g711A   50    -1 (-2.0%)          20.000          20.000          20.000           0.000           0.000           0.000
==============================================================
";
    let s = parse_rtp_streams(rtp);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].ssrc, 0x44D0_F9A0);
    assert_eq!(s[0].payload, "MPEG-II streams");
    assert_eq!((s[0].packets, s[0].lost, s[0].problems), (737, 23, true));
    assert_eq!(s[0].max_delta_ms, 131.6);
    assert_eq!(
        (s[1].payload.as_str(), s[1].lost, s[1].problems),
        ("g711A", -1, false)
    );
    assert_eq!(s[1].dst_port, 2000);

    assert_eq!(
        parse_epoch_ns("1714979289.123456789"),
        Some(1_714_979_289_123_456_789)
    );
    assert_eq!(parse_epoch_ns("0.019140000"), Some(19_140_000));
    assert_eq!(parse_epoch_ns("12.5"), Some(12_500_000_000));
    assert_eq!(parse_epoch_ns("1.1234567891"), None);
    assert_eq!(parse_u64("0x00001fff"), Some(0x1fff));
}
