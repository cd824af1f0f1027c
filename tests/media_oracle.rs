//! The media tables of `streamscope analyze` against tshark's oracle on the public corpus
//! (`oracle.json`, see the corpus's MANIFEST.md; found through `streamscope_testkit::corpus`).
//!
//! The library tests (`crates/media/tests/*_corpus.rs`) compare each reader, fed by their
//! own harness, with tshark. This test runs the binary once per corpus file and compares
//! what it wrote, so that the whole path (flow table, the inspector's choice of reader,
//! TCP reassembly, the table writers) is checked:
//!
//! - **SNI** (`flows.sni`): the multiset of server names equals tshark's `tls_sni` and
//!   `quic_sni` together; gQUIC flows' names, as a set, its `gquic_sni` (QUIC versions
//!   and packets: `tests/quic_versions.rs`).
//! - **RTP** (`rtp_streams`, addresses from `flows`): every stream of tshark's
//!   `rtp_streams` is found once by addresses and SSRC, with equal packets and lost, max
//!   delta within 0.01 ms, mean and max jitter within 1 % or 0.01 ms; no other stream;
//!   the packets add up to tshark's `rtp_frames`; a flow of RTP streams without MPEG-TS
//!   is `rtp_media`, with that evidence.
//! - **MPEG-TS** (`ts_pids`): packets per PID, summed over the file's flows, equal
//!   tshark's `mp2t_ts_packets_per_pid`; continuity errors equal tshark's
//!   `mp2t_cc_drop_frames`.
//! - **IGMP / MLD** (`multicast_events`, rows of one v3 / MLDv2 report put back into
//!   one message): messages per version and type, groups and record types equal tshark's
//!   `igmp_*` and `mld_*` facts.
//! - **HTTP** (`http`): requests and their media suffixes (from `extension`) equal
//!   tshark's `http_requests` and `http_request_suffix_counts`; responses by status and
//!   content type equal `http_responses`.
//!
//! Where the tool and tshark differ by design, the difference is found from the capture
//! by a rule that reads the packets here (never our tables), counted and pinned per file
//! in [`PINS`]; the rules are those of the library tests:
//!
//! - `quic_named_only`: a UDP flow whose client's first datagram is an Initial of a QUIC
//!   draft (0xff0000xx) before 23 or an mvfst (0xfaceb00x) version other than 0xfaceb002
//!   and 0xfaceb00e: tshark decrypts it and names its server; the tool opens versions 1
//!   and 2, drafts 23 to 34 and those two mvfst versions. Count: flows (one name each).
//! - `t38_rtp`: RTP-headed datagrams sent to an address and port that the latest SDP
//!   (`m=image PORT udptl t38`) set up as T.38: tshark dissects them as T.38, the tool as
//!   the RTP they are. Count: datagrams; the stream's packets differ by them and its
//!   expected packets by the sequence numbers they add.
//! - `rtp_no_rate`: a stream whose payload types are all dynamic with no `a=rtpmap` in
//!   the capture: tshark has no clock rate and reports jitter 0 (required); jitter is
//!   not compared. Count: streams.
//! - `rtp_mixed`: a stream mixing static and dynamic payload types: tshark 4.0 mixes two
//!   references in its jitter (see rtp_corpus.rs); jitter is not compared. Count:
//!   streams.
//! - `ts_misframed`: 204-byte TS packets, which tshark cuts into 188-byte slots
//!   (`tsduck__test-171.11.pcapng`): tshark's PIDs must be those of the slots, ours
//!   those of the real packets, both read here; the continuity errors of ours are
//!   pinned (tshark's are artifacts of the slots). Count: TS packets.
//! - `ts_interleaved`: TS in RTSP interleaved frames on TCP port 554, which tshark does
//!   not dissect as TS: our PIDs must equal the frames' packets read here. Count: TS
//!   packets.
//! - `rgmp`: IGMP messages of type 0xfc–0xff to 224.0.0.25 are RGMP for tshark, not
//!   IGMP; the tool keeps them as kind `other`, `other_protocol` rgmp. Count: messages.
//! - `udp_http`: UDP datagrams starting with an HTTP request line (SSDP): tshark counts
//!   them as HTTP requests, the tool reads HTTP on TCP only. Count: datagrams.
//! - `ts_bodies_not_ts`: HTTP response bodies labelled `video/mp2t` with no run of five
//!   sync bytes 188 or 204 bytes apart (encrypted HLS segments): tshark reads their
//!   188-byte slots as TS packets of random PIDs; the tool locks on five sync bytes in a
//!   row (TR 101 290's acquisition rule) and reads none. Ours must equal the capture's
//!   real packets (none from such bodies); tshark's are not compared for the file.
//!   Count: bodies.
//! - `uncaptured_bodies`: responses whose body runs into a hole or past the capture's
//!   end: tshark (reassembling bodies) does not report them, the tool does. Found by a
//!   reading of each server direction written here (RFC 9112 framing): ours must equal
//!   all of its responses, tshark's those with the body captured. Count: responses.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use streamscope_capture::Capture;
use streamscope_testkit::tcp::{reassemble, Event, Half, Segment};
use streamscope_testkit::{say, Corpus};
use streamscope_wire::{dissect, ip_proto, Transport};

const TEST: &str = "media_oracle";

/// Each rule's count per file, where it is not zero (see the module documentation).
const PINS: &[(&str, &[(&str, u64)])] = &[
    (
        // The second re-INVITE's SDP moves 10.23.1.52:16756 to image/udptl; 27 PCMA
        // packets (SSRC 0x0EAF0EAF) are sent there afterwards. Two streams mix PCMA
        // with telephone-event / PT 100 packets.
        "ndpi__FAX-Call-t38-CA-TDM-SIP-FB-1.pcap",
        &[("t38_rtp", 27), ("rtp_mixed", 2)],
    ),
    ("ndpi__mpeg-dash.pcap", &[("uncaptured_bodies", 1)]),
    // 16 SSDP M-SEARCH requests; 27 responses cut by holes or by the capture's end.
    (
        "ndpi__netflix.pcap",
        &[("udp_http", 16), ("uncaptured_bodies", 27)],
    ),
    // One IPv6 flow to video.fmct2-3.fna.fbcdn.net, version 0xfaceb00e.
    // PT 111 and 120 (Opus-like) and 101 (events), no SDP in the capture.
    ("ndpi__rtp.pcapng", &[("rtp_no_rate", 4)]),
    // Three video/mp2t responses of encrypted bytes; the third cut by the capture's end.
    (
        "nfstream__ps_vue.pcap",
        &[("uncaptured_bodies", 1), ("ts_bodies_not_ts", 3)],
    ),
    // 19 RGMP Leave messages from one router.
    (
        "suricata__wireshark-wiki-IGMP-dataset.pcap",
        &[("rgmp", 19)],
    ),
    (
        "tsduck__test-135.seqwrap.pcap",
        &[("ts_interleaved", 16852)],
    ),
    ("tsduck__test-171.11.pcapng", &[("ts_misframed", 329)]),
];

fn pin(file: &str, rule: &str) -> u64 {
    PINS.iter()
        .filter(|(f, _)| *f == file)
        .flat_map(|(_, r)| r.iter())
        .filter(|(r, _)| *r == rule)
        .map(|(_, n)| *n)
        .sum()
}

/// What the binary wrote for one file.
struct Output {
    flows: Vec<Map<String, Value>>,
    rtp: Vec<Map<String, Value>>,
    ts_pids: Vec<Map<String, Value>>,
    multicast: Vec<Map<String, Value>>,
    http: Vec<Map<String, Value>>,
}

fn read_table(dir: &Path, table: &str) -> Vec<Map<String, Value>> {
    support::rows(&dir.join(format!("{table}.parquet")))
}

/// One corpus file: its oracle facts, our tables and the reading of the capture.
struct File {
    name: String,
    facts: &'static Value,
    out: Output,
    scan: Scan,
}

/// Every corpus file analysed once (shared by the tests), or `None` when the corpus is
/// missing (after the skip line).
fn corpus_runs(what: &str) -> Option<&'static [File]> {
    static RUNS: OnceLock<Vec<File>> = OnceLock::new();
    let corpus: &'static Corpus = streamscope_testkit::corpus(TEST, what)?;
    Some(RUNS.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(TEST);
        let _ = std::fs::remove_dir_all(&base);
        corpus
            .all_files()
            .into_iter()
            .map(|(name, facts)| {
                let capture = corpus.path(name);
                let dir = base.join(name);
                support::analyze(&capture, &dir, &[]);
                let out = Output {
                    flows: read_table(&dir, "flows"),
                    rtp: read_table(&dir, "rtp_streams"),
                    ts_pids: read_table(&dir, "ts_pids"),
                    multicast: read_table(&dir, "multicast_events"),
                    http: read_table(&dir, "http"),
                };
                File {
                    name: name.to_owned(),
                    facts,
                    out,
                    scan: scan(&capture),
                }
            })
            .collect()
    }))
}

fn s<'a>(row: &'a Map<String, Value>, col: &str) -> Option<&'a str> {
    row.get(col).and_then(Value::as_str)
}

fn int(row: &Map<String, Value>, col: &str) -> Option<i64> {
    row.get(col).and_then(Value::as_i64)
}

fn float(row: &Map<String, Value>, col: &str) -> Option<f64> {
    row.get(col).and_then(Value::as_f64)
}

/// A `[[value, count], ...]` fact.
fn counts(v: &Value) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in v.as_array().into_iter().flatten() {
        let k = e[0].as_str().expect("a value").to_owned();
        *m.entry(k).or_default() += e[1].as_u64().expect("a count");
    }
    m
}

/// Failures of one test.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
}

impl Report {
    fn check(&mut self, file: &str, what: &str, ok: bool, detail: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(format!("{file}: {what}: {}", detail()));
        }
    }

    /// A rule's count found in the capture against its pin.
    fn pinned(&mut self, file: &str, rule: &str, found: u64) {
        let want = pin(file, rule);
        self.check(file, &format!("{rule} (pinned)"), found == want, || {
            format!("found {found}, pinned {want}")
        });
    }

    fn finish(self) {
        assert!(self.failures.is_empty(), "{}", self.failures.join("\n"));
    }
}

// ---------------------------------------------------------------------------------------
// The reading of the captures: what the rules need, from the packets.

type Endpoint = (IpAddr, u16);

fn endpoint(e: Endpoint) -> String {
    format!("{}:{}", e.0, e.1)
}

/// An RTP stream as tshark names it: source, destination (address:port), SSRC as
/// 0x%08X.
type StreamKey = (String, String, String);

/// One RTP-headed datagram: sequence number, payload type, sent to a T.38 port.
type RtpPkt = (u16, u8, bool);

#[derive(Default)]
struct Scan {
    /// UDP flows whose client's first datagram is a draft or mvfst Initial.
    quic_named_only: u64,
    /// (src, dst, SSRC as 0x%08X) → the RTP-headed datagrams, in capture order.
    rtp: HashMap<StreamKey, Vec<RtpPkt>>,
    /// Payload types with an `a=rtpmap` in some SDP of the capture.
    rtpmaps: BTreeSet<u8>,
    /// TS packets per PID: in whole UDP datagrams (the real packets), tshark's 188-byte
    /// slots of the same datagrams, and in RTSP interleaved frames.
    ts_real: BTreeMap<u16, u64>,
    ts_slots: BTreeMap<u16, u64>,
    ts_interleaved: BTreeMap<u16, u64>,
    rgmp: u64,
    udp_http: u64,
    /// Responses of the server directions: (status, content type, body captured).
    responses: Vec<(u16, String, bool)>,
    /// `video/mp2t` response bodies with no run of five sync bytes 188 or 204 bytes
    /// apart in their captured bytes: not MPEG-TS as sent (an encrypted HLS segment).
    ts_bodies_not_ts: u64,
}

fn scan(path: &Path) -> Scan {
    let mut cap = Capture::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut t = Scan::default();
    let mut udp_flows: BTreeSet<(Endpoint, Endpoint)> = BTreeSet::new();
    // (address, port) → T.38 by the latest SDP describing it.
    let mut sdp_t38: HashMap<Endpoint, bool> = HashMap::new();
    let mut conns: HashMap<(Endpoint, Endpoint), Conn> = HashMap::new();
    let mut order = Vec::new();
    // A file cut short: everything before the cut counts, as for tshark.
    while let Ok(Some(rec)) = cap.next_record() {
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        let Some(ip) = p.ip else {
            continue;
        };
        match p.transport {
            Transport::Igmp { kind, .. }
                if ip.protocol == ip_proto::IGMP
                    && kind >= 0xfc
                    && ip.dst == IpAddr::V4(Ipv4Addr::new(224, 0, 0, 25)) =>
            {
                t.rgmp += 1;
            }
            Transport::Udp { src_port, dst_port } if ip.fragment.is_none() => {
                let (src, dst) = ((ip.src, src_port), (ip.dst, dst_port));
                let key = if src <= dst { (src, dst) } else { (dst, src) };
                if udp_flows.insert(key) && quic_named_only_initial(p.payload) {
                    t.quic_named_only += 1;
                }
                if http_request_line(p.payload) {
                    t.udp_http += 1;
                }
                let (media, rtpmaps) = sdp::read(p.payload);
                for (addr, port, t38) in media {
                    sdp_t38.insert((addr, port), t38);
                }
                t.rtpmaps.extend(rtpmaps);
                let t38 = sdp_t38.get(&dst).copied().unwrap_or(false);
                if let Some((seq, pt, ssrc)) = rtp_header(p.payload) {
                    t.rtp
                        .entry((endpoint(src), endpoint(dst), format!("0x{ssrc:08X}")))
                        .or_default()
                        .push((seq, pt, t38));
                }
                if p.payload.len() == p.payload_len as usize {
                    let body = ts::strip_rtp(p.payload);
                    if let Some(packets) = ts::packets(body) {
                        ts::count(&mut t.ts_real, packets);
                        ts::count(&mut t.ts_slots, body.chunks_exact(188));
                    }
                }
            }
            Transport::Tcp(tcp) if ip.fragment.is_none() => {
                let (src, dst) = ((ip.src, tcp.src_port), (ip.dst, tcp.dst_port));
                let key = if src <= dst { (src, dst) } else { (dst, src) };
                let conn = conns.entry(key).or_insert_with(|| {
                    order.push(key);
                    Conn::default()
                });
                conn.first_sender.get_or_insert(src);
                let half = conn.halves.entry(src).or_default();
                if tcp.flags & SYN != 0 {
                    half.isn = Some(tcp.seq.wrapping_add(1));
                    if tcp.flags & ACK == 0 {
                        conn.client = Some(src);
                    }
                }
                if !p.payload.is_empty() {
                    half.segments.push(Segment {
                        ts_ns: rec.ts_ns,
                        seq: tcp.seq,
                        payload: p.payload.to_vec(),
                    });
                }
            }
            _ => {}
        }
    }
    for key in &order {
        let conn = &conns[key];
        if key.0 .1 == RTSP_PORT || key.1 .1 == RTSP_PORT {
            for half in conn.halves.values() {
                let bytes = in_order(half);
                for frame in ts::interleaved(&bytes) {
                    if let Some(packets) = ts::packets(ts::strip_rtp(frame)) {
                        ts::count(&mut t.ts_interleaved, packets);
                    }
                }
            }
        }
        t.ts_bodies_not_ts += http::responses_of(conn, key, &mut t.responses);
    }
    t
}

/// RTSP's port (RFC 2326).
const RTSP_PORT: u16 = 554;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// A client's first datagram that is the Initial of a version tshark decrypts and the
/// tool does not: long header (top bit), type bits 0x30 zero, version a draft before 23
/// or an mvfst version other than 0xfaceb002 and 0xfaceb00e.
fn quic_named_only_initial(d: &[u8]) -> bool {
    let (Some(&first), Some(v)) = (d.first(), d.get(1..5)) else {
        return false;
    };
    let v = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let draft = v >> 8 == 0x00ff_0000 && v & 0xff < 23;
    let mvfst = v & 0xffff_fff0 == 0xface_b000 && v != 0xface_b002 && v != 0xface_b00e;
    first & 0x80 != 0 && first & 0x30 == 0 && (draft || mvfst)
}

/// An RTP version-2 header that is not RTCP (RFC 3550 section 5.1, RFC 5761 section
/// 4): sequence number, payload type, SSRC.
fn rtp_header(p: &[u8]) -> Option<(u16, u8, u32)> {
    let h = p.get(..12)?;
    if h[0] >> 6 != 2 || (192..=223).contains(&h[1]) {
        return None;
    }
    Some((
        u16::from_be_bytes([h[2], h[3]]),
        h[1] & 0x7f,
        u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
    ))
}

/// Whether a payload starts with an HTTP request line (RFC 9112 section 3): a method
/// token, a target, `HTTP/1.x`, CRLF.
fn http_request_line(payload: &[u8]) -> bool {
    let Some(end) = payload.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    let Ok(line) = std::str::from_utf8(&payload[..end]) else {
        return false;
    };
    let parts: Vec<&str> = line.split(' ').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && parts[0]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'-')
        && !parts[1].is_empty()
        && (parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0")
}

/// A reading of SDP (RFC 4566) bodies: which transport each media description sets up
/// (T.38 over UDPTL or not), and the payload types of `a=rtpmap` lines.
mod sdp {
    use std::collections::BTreeSet;
    use std::net::IpAddr;

    type Pending = Vec<(u16, bool, Option<IpAddr>)>;

    pub fn read(payload: &[u8]) -> (Vec<(IpAddr, u16, bool)>, BTreeSet<u8>) {
        let mut media = Vec::new();
        let mut rtpmaps = BTreeSet::new();
        let text = String::from_utf8_lossy(payload);
        if !text.contains("m=") {
            return (media, rtpmaps);
        }
        // Per session ("v=" starts one): the session address, then each description's
        // own ("c=" after its "m=").
        let mut session: Option<IpAddr> = None;
        let mut pending: Pending = Vec::new();
        let flush = |pending: &mut Pending,
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
                flush(&mut pending, session, &mut media);
                session = None;
            } else if let Some(m) = line.strip_prefix("m=") {
                let mut f = m.split_whitespace();
                let (_, port, proto) = (f.next(), f.next(), f.next().unwrap_or(""));
                let port = port.and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
                pending.push((port, proto.eq_ignore_ascii_case("udptl"), None));
            } else if let Some(c) = line.strip_prefix("c=") {
                let addr = c.split_whitespace().nth(2).and_then(|a| a.parse().ok());
                match pending.last_mut() {
                    Some(last) => last.2 = addr,
                    None => session = addr,
                }
            } else if let Some(a) = line.strip_prefix("a=rtpmap:") {
                if let Some(pt) = a.split_whitespace().next().and_then(|p| p.parse().ok()) {
                    rtpmaps.insert(pt);
                }
            }
        }
        flush(&mut pending, session, &mut media);
        media.retain(|&(_, port, _)| port != 0);
        (media, rtpmaps)
    }
}

/// MPEG-TS framing (ISO/IEC 13818-1 section 2.4.3.2; RFC 3550 section 5.1; RFC 2326
/// section 10.12).
mod ts {
    use std::collections::BTreeMap;

    /// The payload after an RTP header, or the whole payload when it starts with the
    /// sync byte.
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

    /// The packets of a body made of whole 204-byte or 188-byte TS packets, each with
    /// its sync byte; `None` otherwise.
    pub fn packets(body: &[u8]) -> Option<std::slice::ChunksExact<'_, u8>> {
        [204, 188].into_iter().find_map(|len| {
            (!body.is_empty()
                && body.len() % len == 0
                && body.chunks_exact(len).all(|c| c[0] == 0x47))
            .then(|| body.chunks_exact(len))
        })
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

    pub fn count<'a>(pids: &mut BTreeMap<u16, u64>, packets: impl Iterator<Item = &'a [u8]>) {
        for p in packets {
            *pids
                .entry(u16::from_be_bytes([p[1] & 0x1f, p[2]]))
                .or_default() += 1;
        }
    }
}

#[derive(Default)]
struct Conn {
    /// The sender of the SYN without ACK, when seen.
    client: Option<Endpoint>,
    first_sender: Option<Endpoint>,
    halves: HashMap<Endpoint, Half>,
}

/// A direction's bytes in sequence order, from its first byte (the SYN's, else the
/// first segment's), retransmitted bytes once, up to the first hole.
fn in_order(half: &Half) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (_, ev) in reassemble(half) {
        match ev {
            Event::Bytes(b) => bytes.extend_from_slice(&b),
            Event::Gap(0) => {}
            Event::Gap(_) => break,
        }
    }
    bytes
}

/// A reading of HTTP/1.x responses in a server direction (RFC 9112 sections 4, 6 and
/// 7.1): a status line wherever it is in a run of contiguous bytes outside a body
/// already read, its head, and whether the body its framing announces is all captured.
mod http {
    use super::{Conn, Endpoint};
    use streamscope_testkit::tcp::{self, reassemble};

    fn starts_response(p: &[u8]) -> bool {
        p.starts_with(b"HTTP/1.")
    }

    fn starts_request(p: &[u8]) -> bool {
        super::http_request_line(p)
    }

    /// The responses of a connection's server direction, when some segment of it starts
    /// like an HTTP message; returns the `video/mp2t` bodies that are not MPEG-TS.
    pub fn responses_of(
        conn: &Conn,
        key: &(Endpoint, Endpoint),
        out: &mut Vec<(u16, String, bool)>,
    ) -> u64 {
        let starts = |e: &Endpoint, f: fn(&[u8]) -> bool| {
            conn.halves
                .get(e)
                .is_some_and(|h| h.segments.iter().any(|s| f(&s.payload)))
        };
        // The client: the SYN's sender, else a side that sends a request, else the
        // other side of one that sends a response, else the first sender.
        let sides: Vec<Endpoint> = conn.halves.keys().copied().collect();
        let client = conn
            .client
            .or_else(|| sides.iter().find(|e| starts(e, starts_request)).copied())
            .or_else(|| {
                let server = sides.iter().find(|e| starts(e, starts_response))?;
                Some(if key.0 == *server { key.1 } else { key.0 })
            })
            .or(conn.first_sender)
            .expect("a sender");
        let server = if key.0 == client { key.1 } else { key.0 };
        if !(starts(&client, starts_request) || starts(&server, starts_response)) {
            return 0;
        }
        conn.halves
            .get(&server)
            .map_or(0, |h| responses(&reassemble(h), out))
    }

    /// Whether `body` has five sync bytes (0x47) in a row 188 or 204 bytes apart.
    fn has_ts(body: &[u8]) -> bool {
        (0..body.len()).any(|i| {
            [188, 204]
                .iter()
                .any(|len| (0..5).all(|k| body.get(i + k * len) == Some(&0x47)))
        })
    }

    /// The responses of a server direction (`tcp::responses`) as (status, content type,
    /// body captured); returns the `video/mp2t` bodies that are not MPEG-TS.
    fn responses(events: &[(i64, tcp::Event)], out: &mut Vec<(u16, String, bool)>) -> u64 {
        let mut not_ts = 0;
        tcp::responses(events, |r| {
            if r.content_type == "video/mp2t" && !has_ts(r.body) {
                not_ts += 1;
            }
            out.push((r.status, r.content_type, r.body_captured));
        });
        not_ts
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn server_names_match_oracle() {
    let Some(files) = corpus_runs("TLS and QUIC server names of flows.parquet against tshark")
    else {
        return;
    };
    let mut report = Report::default();
    let mut names = 0;
    for f in files {
        let name = f.name.as_str();
        let mut ours: BTreeMap<String, u64> = BTreeMap::new();
        // gQUIC flows' names: tshark lists one per client hello (a flow may send two, the
        // second after the server's REJ), so names are compared as sets.
        let mut ours_gquic: BTreeSet<String> = BTreeSet::new();
        for r in &f.out.flows {
            let gquic = s(r, "quic_version").is_some_and(|v| v.starts_with(['Q', 'T']));
            match s(r, "sni") {
                Some(sni) if gquic => {
                    ours_gquic.insert(sni.to_owned());
                }
                Some(sni) => *ours.entry(sni.to_owned()).or_default() += 1,
                None => {}
            }
        }
        let tshark_gquic: BTreeSet<String> = counts(&f.facts["gquic_sni"])
            .into_keys()
            .map(|n| n.to_lowercase())
            .collect();
        report.check(
            name,
            "gQUIC server names",
            ours_gquic == tshark_gquic,
            || format!("tshark {tshark_gquic:?} / ours {ours_gquic:?}"),
        );
        names += ours_gquic.len() as u64;
        let mut tshark: BTreeMap<String, u64> = BTreeMap::new();
        for fact in ["tls_sni", "quic_sni"] {
            for (n, c) in counts(&f.facts[fact]) {
                *tshark.entry(n.to_lowercase()).or_default() += c;
            }
        }
        names += ours.values().sum::<u64>();
        // Every name of ours is tshark's; tshark's others are the named-only flows'.
        let mut rest = tshark.clone();
        let mut extra = Vec::new();
        for (n, &c) in &ours {
            match rest.get_mut(n) {
                Some(k) if *k >= c => *k -= c,
                _ => extra.push(n.clone()),
            }
        }
        let missing: u64 = rest.values().sum();
        let named_only = f.scan.quic_named_only;
        report.pinned(name, "quic_named_only", named_only);
        report.check(
            name,
            "server names",
            extra.is_empty() && missing == named_only,
            || format!("tshark {tshark:?} / ours {ours:?} (named-only flows {named_only})"),
        );
    }
    say(&format!(
        "{TEST}: {} files; {names} server names compared",
        files.len()
    ));
    report.finish();
    assert!(names >= 80, "only {names} server names");
}

/// tshark's jitter printed to 0.001 ms: within 1 % or 0.01 ms.
fn near(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() <= 0.01_f64.max(0.01 * b.abs()))
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().expect("a number"),
        v => v.as_f64().expect("a number"),
    }
}

/// RFC 3550 A.1's expected packets of a run of sequence numbers in arrival order:
/// highest extended sequence number less the first, plus one.
fn expected(seqs: impl Iterator<Item = u16>) -> i64 {
    let mut ext: Option<(i64, i64)> = None; // (last, highest)
    let mut first = 0;
    for seq in seqs {
        match ext.as_mut() {
            None => {
                first = i64::from(seq);
                ext = Some((first, first));
            }
            Some((last, high)) => {
                let step = i64::from(seq.wrapping_sub(*last as u16) as i16);
                *last += step;
                *high = (*high).max(*last);
            }
        }
    }
    ext.map_or(0, |(_, high)| high - first + 1)
}

#[test]
fn rtp_streams_match_oracle() {
    let Some(files) = corpus_runs("rtp_streams.parquet against tshark's rtp,streams") else {
        return;
    };
    let mut report = Report::default();
    let mut compared = 0;
    for f in files {
        let name = f.name.as_str();
        let flows: HashMap<i64, &Map<String, Value>> = f
            .out
            .flows
            .iter()
            .map(|r| (int(r, "flow_id").expect("flow_id"), r))
            .collect();
        let mut ours: BTreeMap<StreamKey, Vec<&Map<String, Value>>> = BTreeMap::new();
        for r in &f.out.rtp {
            let fl = flows[&int(r, "flow_id").expect("flow_id")];
            // A flow of RTP streams carrying no MPEG-TS is rtp_media, by that evidence.
            let ts = f.out.ts_pids.iter().any(|t| t["flow_id"] == r["flow_id"]);
            if !ts {
                report.check(
                    name,
                    "class of an RTP flow",
                    s(fl, "class") == Some("rtp_media"),
                    || {
                        format!(
                            "flow {:?}: {:?} ({:?})",
                            fl["flow_id"], fl["class"], fl["class_evidence"]
                        )
                    },
                );
                report.check(
                    name,
                    "class evidence of an RTP flow",
                    s(fl, "class_evidence")
                        == Some("rtp streams (rfc 3550 validation), not mpeg-ts"),
                    || format!("flow {:?}: {:?}", fl["flow_id"], fl["class_evidence"]),
                );
            }
            let ep = |side: &str| {
                format!(
                    "{}:{}",
                    s(fl, &format!("{side}_addr")).expect("addr"),
                    int(fl, &format!("{side}_port")).expect("port")
                )
            };
            let (c, sv) = (ep("client"), ep("server"));
            let (src, dst) = match s(r, "direction") {
                Some("up") => (c, sv),
                _ => (sv, c),
            };
            let ssrc = format!("0x{:08X}", int(r, "ssrc").expect("ssrc"));
            ours.entry((src, dst, ssrc)).or_default().push(r);
        }
        let t38_total: u64 = f.scan.rtp.values().flatten().filter(|p| p.2).count() as u64;
        report.pinned(name, "t38_rtp", t38_total);
        let ours_packets: i64 = f.out.rtp.iter().map(|r| int(r, "packets").unwrap()).sum();
        let tshark_frames = f.facts["rtp_frames"].as_u64().unwrap_or(0);
        report.check(
            name,
            "RTP packets (tshark's frames + T.38-by-SDP)",
            ours_packets as u64 == tshark_frames + t38_total,
            || format!("ours {ours_packets}, tshark {tshark_frames} + {t38_total}"),
        );
        let (mut no_rate, mut mixed) = (0, 0);
        let mut seen = BTreeSet::new();
        for o in f.facts["rtp_streams"].as_array().into_iter().flatten() {
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
            let rows = ours.get(&key).map_or(&[][..], Vec::as_slice);
            let [r] = rows else {
                report.check(name, "stream found once", false, || {
                    format!("{key:?}: {} rows", rows.len())
                });
                continue;
            };
            compared += 1;
            let pkts = f.scan.rtp.get(&key).map_or(&[][..], Vec::as_slice);
            let t38 = pkts.iter().filter(|p| p.2).count() as i64;
            let more_expected = expected(pkts.iter().map(|p| p.0))
                - expected(pkts.iter().filter(|p| !p.2).map(|p| p.0));
            let packets = o["packets"].as_i64().expect("packets");
            let lost = o["lost"].as_i64().expect("lost");
            let (p, l) = (int(r, "packets").unwrap(), int(r, "lost").unwrap());
            report.check(name, "packets", p == packets + t38, || {
                format!("{key:?}: ours {p}, tshark {packets} + T.38 {t38}")
            });
            report.check(name, "lost", l == lost + more_expected - t38, || {
                format!("{key:?}: ours {l}, tshark {lost} + {more_expected} expected - {t38}")
            });
            let max_delta = num(&o["max_delta_ms"]);
            report.check(
                name,
                "max delta",
                near(float(r, "max_delta_ms"), max_delta),
                || {
                    format!(
                        "{key:?}: ours {:?}, tshark {max_delta}",
                        float(r, "max_delta_ms")
                    )
                },
            );
            let (mean, max) = (num(&o["mean_jitter_ms"]), num(&o["max_jitter_ms"]));
            let pts: BTreeSet<u8> = pkts.iter().filter(|p| !p.2).map(|p| p.1).collect();
            if !pts.is_empty()
                && pts
                    .iter()
                    .all(|pt| *pt >= 96 && !f.scan.rtpmaps.contains(pt))
            {
                no_rate += 1;
                report.check(
                    name,
                    "tshark's jitter without a clock rate",
                    mean == 0.0 && max == 0.0,
                    || format!("{key:?}: {mean}/{max}"),
                );
                continue;
            }
            if pts.iter().any(|pt| *pt >= 96) && pts.iter().any(|pt| *pt < 96) {
                mixed += 1;
                continue;
            }
            let (m, x) = (float(r, "mean_jitter_ms"), float(r, "max_jitter_ms"));
            report.check(name, "jitter", near(m, mean) && near(x, max), || {
                format!("{key:?}: ours {m:?}/{x:?}, tshark {mean}/{max}")
            });
        }
        report.pinned(name, "rtp_no_rate", no_rate);
        report.pinned(name, "rtp_mixed", mixed);
        let extra: Vec<_> = ours.keys().filter(|k| !seen.contains(*k)).collect();
        report.check(
            name,
            "streams tshark does not list",
            extra.is_empty(),
            || format!("{extra:?}"),
        );
    }
    say(&format!("{TEST}: {compared} RTP streams compared"));
    report.finish();
    assert!(compared >= 15, "only {compared} streams compared");
}

#[test]
fn ts_pids_match_oracle() {
    let Some(files) = corpus_runs("ts_pids.parquet against tshark's mp2t facts") else {
        return;
    };
    let mut report = Report::default();
    let (mut files_with_ts, mut packets) = (0, 0);
    for f in files {
        let name = f.name.as_str();
        let mut ours: BTreeMap<u16, u64> = BTreeMap::new();
        let mut cc = 0;
        // A PID a PMT lists and never seen has a row of 0 packets.
        for r in f.out.ts_pids.iter().filter(|r| int(r, "packets") > Some(0)) {
            let pid = u16::try_from(int(r, "pid").expect("pid")).expect("a PID");
            *ours.entry(pid).or_default() += int(r, "packets").unwrap() as u64;
            cc += int(r, "cc_errors").unwrap() as u64;
        }
        let tshark: BTreeMap<u16, u64> = counts(&f.facts["mp2t_ts_packets_per_pid"])
            .into_iter()
            .map(|(pid, n)| {
                let pid = u16::from_str_radix(pid.trim_start_matches("0x"), 16).expect("hex");
                (pid, n)
            })
            .collect();
        let tshark_cc = f.facts["mp2t_cc_drop_frames"].as_u64().unwrap_or(0);
        if ours.is_empty() && tshark.is_empty() {
            continue;
        }
        let sc = &f.scan;
        files_with_ts += 1;
        packets += ours.values().sum::<u64>();
        // Ours: the real packets of UDP datagrams and of RTSP interleaved frames.
        let mut reference = sc.ts_real.clone();
        for (pid, n) in &sc.ts_interleaved {
            *reference.entry(*pid).or_default() += n;
        }
        let interleaved: u64 = sc.ts_interleaved.values().sum();
        report.pinned(name, "ts_interleaved", interleaved);
        let misframed = if sc.ts_slots == sc.ts_real {
            0
        } else {
            sc.ts_real.values().sum()
        };
        report.pinned(name, "ts_misframed", misframed);
        report.pinned(name, "ts_bodies_not_ts", sc.ts_bodies_not_ts);
        report.check(
            name,
            "PIDs (the capture's packets)",
            ours == reference,
            || format!("ours {ours:?} / the capture's {reference:?}"),
        );
        // tshark: the 188-byte slots of UDP datagrams (none in interleaved frames),
        // and of HTTP bodies labelled MPEG-TS whatever they hold.
        if sc.ts_bodies_not_ts == 0 {
            report.check(
                name,
                "tshark's PIDs are its slots'",
                tshark == sc.ts_slots,
                || format!("tshark {tshark:?} / slots {:?}", sc.ts_slots),
            );
        }
        // So ours equal tshark's where neither rule applies.
        if misframed == 0 && interleaved == 0 && sc.ts_bodies_not_ts == 0 {
            report.check(name, "PIDs (tshark's)", ours == tshark, || {
                format!("ours {ours:?} / tshark {tshark:?}")
            });
            report.check(name, "continuity errors", cc == tshark_cc, || {
                format!("continuity errors ours {cc}, tshark's drop frames {tshark_cc}")
            });
        } else {
            // tshark's drops on misframed slots are artifacts; the real packets (and the
            // interleaved ones, which it does not read) have none (ts_corpus.rs).
            report.check(name, "continuity errors", cc == 0, || format!("ours {cc}"));
        }
    }
    say(&format!(
        "{TEST}: {files_with_ts} files with MPEG-TS, {packets} TS packets compared"
    ));
    report.finish();
    assert!(files_with_ts >= 5, "only {files_with_ts} files with TS");
}

/// One multicast message of ours: its rows (a v3 / MLDv2 report has one per record).
fn messages(rows: &[Map<String, Value>]) -> Vec<&[Map<String, Value>]> {
    let mut out: Vec<&[Map<String, Value>]> = Vec::new();
    let mut start = 0;
    for i in 1..=rows.len() {
        let same = i < rows.len() && {
            let (a, b) = (&rows[i - 1], &rows[i]);
            let multi =
                matches!(s(b, "version"), Some("igmp3" | "mld2")) && s(b, "kind") == Some("report");
            multi
                && ["ts", "host_addr", "flow_id", "message_type"]
                    .iter()
                    .all(|c| a.get(*c) == b.get(*c))
        };
        if !same {
            out.push(&rows[start..i]);
            start = i;
        }
    }
    out
}

fn record_code(name: &str) -> &'static str {
    match name {
        "mode_is_include" => "1",
        "mode_is_exclude" => "2",
        "change_to_include" => "3",
        "change_to_exclude" => "4",
        "allow_new_sources" => "5",
        "block_old_sources" => "6",
        other => panic!("record type {other}"),
    }
}

/// IGMP and MLD as tshark's facts count them: messages, per (version, type) or type,
/// group fields (a general query's is the unspecified address) and record types.
#[derive(Default, Debug, PartialEq)]
struct Side {
    igmp: u64,
    igmp_version_type: BTreeMap<String, u64>,
    igmp_groups: BTreeMap<String, u64>,
    igmp_records: BTreeMap<String, u64>,
    mld: u64,
    mld_types: BTreeMap<String, u64>,
    mld_groups: BTreeMap<String, u64>,
    mld_records: BTreeMap<String, u64>,
}

#[test]
fn multicast_events_match_oracle() {
    let Some(files) = corpus_runs("multicast_events.parquet against tshark's IGMP and MLD") else {
        return;
    };
    let mut report = Report::default();
    let (mut files_with, mut total) = (0, 0);
    for f in files {
        let name = f.name.as_str();
        let tshark = Side {
            igmp: f.facts["igmp_messages"].as_u64().unwrap_or(0),
            igmp_version_type: counts(&f.facts["igmp_version_type"]),
            igmp_groups: counts(&f.facts["igmp_groups"]),
            igmp_records: counts(&f.facts["igmp_v3_record_types"]),
            mld: f.facts["mld_messages"].as_u64().unwrap_or(0),
            mld_types: counts(&f.facts["mld_types"]),
            mld_groups: counts(&f.facts["mld_groups"]),
            mld_records: counts(&f.facts["mldv2_record_types"]),
        };
        let mut ours = Side::default();
        let mut rgmp = 0;
        let bump = |m: &mut BTreeMap<String, u64>, k: String| *m.entry(k).or_default() += 1;
        let msgs = messages(&f.out.multicast);
        for msg in &msgs {
            let first = &msg[0];
            if s(first, "kind") == Some("other") && s(first, "other_protocol") == Some("rgmp") {
                rgmp += 1;
                continue;
            }
            let mld = s(first, "protocol") == Some("mld");
            let ty = int(first, "message_type").expect("message_type");
            if mld {
                ours.mld += 1;
                bump(&mut ours.mld_types, ty.to_string());
            } else {
                ours.igmp += 1;
                let v = match s(first, "version") {
                    Some("igmp1") => "v1",
                    Some("igmp2") => "v2",
                    Some("igmp3") => "v3",
                    _ => "v?",
                };
                bump(&mut ours.igmp_version_type, format!("{v} type=0x{ty:02x}"));
            }
            let (groups, records) = if mld {
                (&mut ours.mld_groups, &mut ours.mld_records)
            } else {
                (&mut ours.igmp_groups, &mut ours.igmp_records)
            };
            for r in msg.iter() {
                let unspecified = if mld {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED).to_string()
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED).to_string()
                };
                // A general query's group field is the unspecified address; a report
                // without records has none.
                match (s(r, "group_addr"), s(r, "kind")) {
                    (Some(g), _) => bump(groups, g.to_owned()),
                    (None, Some("query")) => bump(groups, unspecified),
                    _ => {}
                }
                if let Some(rt) = s(r, "record_type") {
                    bump(records, record_code(rt).to_owned());
                }
            }
        }
        if msgs.is_empty() && tshark == Side::default() {
            continue;
        }
        files_with += 1;
        total += msgs.len();
        report.pinned(name, "rgmp", f.scan.rgmp);
        report.check(
            name,
            "RGMP rows (kind other, rgmp)",
            rgmp == f.scan.rgmp,
            || format!("ours {rgmp}, the capture's {}", f.scan.rgmp),
        );
        report.check(
            name,
            "IGMP and MLD messages, types, groups, records",
            ours == tshark,
            || format!("tshark {tshark:?}\n  ours {ours:?}"),
        );
    }
    say(&format!(
        "{TEST}: {files_with} files with IGMP or MLD, {total} messages compared"
    ));
    report.finish();
    assert!(files_with >= 6, "only {files_with} files with messages");
}

/// Suffixes tshark's oracle counts.
const SUFFIXES: [&str; 5] = ["m3u8", "ts", "m4s", "mpd", "mp4"];

#[test]
fn http_matches_oracle() {
    let Some(files) = corpus_runs("http.parquet against tshark's HTTP requests and responses")
    else {
        return;
    };
    let mut report = Report::default();
    let (mut requests_total, mut responses_total) = (0, 0);
    for f in files {
        let name = f.name.as_str();
        let tshark_requests = f.facts["http_requests"].as_array().map_or(0, Vec::len) as u64;
        let tshark_suffixes = counts(&f.facts["http_request_suffix_counts"]);
        let mut tshark_responses: BTreeMap<(u16, String), u64> = BTreeMap::new();
        for (text, n) in counts(&f.facts["http_responses"]) {
            let (code, ct) = text.split_once(' ').unwrap_or((&text, ""));
            let ct = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            *tshark_responses
                .entry((code.parse().expect("a status"), ct))
                .or_default() += n;
        }
        let (mut requests, mut suffixes, mut responses) = (0, BTreeMap::new(), BTreeMap::new());
        for r in &f.out.http {
            if s(r, "pairing") != Some("response_only") {
                requests += 1;
                if let Some(ext) = s(r, "extension").filter(|e| SUFFIXES.contains(e)) {
                    *suffixes.entry(format!(".{ext}")).or_insert(0u64) += 1;
                }
            }
            if let Some(status) = int(r, "status") {
                let ct = s(r, "content_type").unwrap_or("").to_owned();
                *responses
                    .entry((u16::try_from(status).expect("a status"), ct))
                    .or_insert(0u64) += 1;
            }
        }
        let mut all: BTreeMap<(u16, String), u64> = BTreeMap::new();
        let mut captured: BTreeMap<(u16, String), u64> = BTreeMap::new();
        for (status, ct, whole) in &f.scan.responses {
            *all.entry((*status, ct.clone())).or_default() += 1;
            if *whole {
                *captured.entry((*status, ct.clone())).or_default() += 1;
            }
        }
        let uncaptured = f.scan.responses.iter().filter(|r| !r.2).count() as u64;
        let udp = f.scan.udp_http;
        if tshark_requests + requests + all.len() as u64 == 0 {
            continue;
        }
        requests_total += requests;
        responses_total += responses.values().sum::<u64>();
        report.pinned(name, "udp_http", udp);
        report.pinned(name, "uncaptured_bodies", uncaptured);
        report.check(
            name,
            "http_requests",
            tshark_requests == requests + udp && tshark_suffixes == suffixes,
            || {
                format!(
                    "tshark {tshark_requests} {tshark_suffixes:?} / ours {requests} + over UDP \
                     {udp}, {suffixes:?}"
                )
            },
        );
        report.check(
            name,
            "tshark's responses: those with the body captured",
            tshark_responses == captured,
            || format!("tshark {tshark_responses:?} / the capture's {captured:?}"),
        );
        report.check(name, "http_responses", responses == all, || {
            format!("ours {responses:?} / the capture's {all:?}")
        });
    }
    say(&format!(
        "{TEST}: {requests_total} HTTP requests and {responses_total} responses compared"
    ));
    report.finish();
    assert!(requests_total >= 40, "only {requests_total} requests");
}
