//! The ground truth written next to each capture (`OUT.truth.json`).
//!
//! Everything here is computed while frames are written, never by reading the capture
//! back. Keys are snake_case and stable; `truth_version` changes when a key changes
//! meaning. Timestamps are Unix nanoseconds as written to the file (truncated to whole
//! microseconds for µs captures). See `tools/capgen/README.md`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::out::Format;
use crate::scenario::{Scenario, TsResolution};

/// Version of this format.
pub const TRUTH_VERSION: u32 = 1;

/// The whole truth document.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    pub truth_version: u32,
    pub generator: &'static str,
    pub generator_version: &'static str,
    pub seed: u64,
    pub format: Format,
    pub ts_resolution: TsResolution,
    pub link_type: u16,
    pub start_ns: u64,
    pub end_ns: u64,
    pub scenario: Scenario,
    pub totals: Totals,
    /// Flows per kind (always present, also when `flows` is omitted).
    pub flow_counts: BTreeMap<FlowKind, u64>,
    /// Every flow in order of its first packet; `null` when `truth.per_flow = false`.
    pub flows: Option<Vec<FlowTruth>>,
    /// Every IGMP/MLD message record written (queries, joins, leaves, reports).
    pub multicast_events: Vec<MulticastEvent>,
    /// Every injected fault event (stream faults, takedowns, DNS failures) as it took effect.
    pub fault_events: Vec<FaultEvent>,
    /// How clients met the disruptions: refused/reset connections, DNS failures,
    /// retries with their backoff, migrations.
    pub client_events: Vec<ClientEvent>,
}

/// Event lists collected while writing (see [`Truth`]).
#[derive(Debug, Clone, Default)]
pub struct Events {
    pub multicast: Vec<MulticastEvent>,
    pub faults: Vec<FaultEvent>,
    pub clients: Vec<ClientEvent>,
}

/// One IGMP/MLD record: a query, or one group (record) of a report or leave.
/// Several records of one IGMPv3/MLDv2 report share `message`.
#[derive(Debug, Clone, Serialize)]
pub struct MulticastEvent {
    pub ts_ns: u64,
    /// 0-based index of the message among the IGMP/MLD messages of the file.
    pub message: u64,
    /// `igmp` or `mld`.
    pub protocol: &'static str,
    /// 2 or 3 for IGMP, 2 for MLD.
    pub version: u8,
    /// `query`, `join`, `leave` or `report` (current-state answer to a query).
    pub kind: &'static str,
    /// Sender address (querier, or the receiver; link-local for MLD).
    pub host: IpAddr,
    /// Client address (from `network.client_v4`/`client_v6`) of a receiver; null for queries.
    pub client: Option<IpAddr>,
    /// Destination address of the packet.
    pub dst: IpAddr,
    /// The group; null for a general query.
    pub group: Option<IpAddr>,
    /// IGMPv3/MLDv2 record type (`mode_is_include`, `mode_is_exclude`,
    /// `change_to_include`, `change_to_exclude`, `allow_new_sources`,
    /// `block_old_sources`); null for IGMPv2 and queries.
    pub record_type: Option<&'static str>,
    pub sources: Vec<IpAddr>,
    /// Channel of the group, `[[igmp]]` entry of the receiver.
    pub channel: Option<String>,
    pub receivers: Option<String>,
    /// A robustness repetition of an earlier state-change report.
    pub retransmission: bool,
}

/// One injected fault as it took effect.
#[derive(Debug, Clone, Serialize)]
pub struct FaultEvent {
    pub ts_ns: u64,
    /// `multicast_duplicate`, `multicast_reorder`, `pcr_discontinuity`, `takedown`,
    /// `takedown_end`, `dns_nxdomain`, `dns_servfail`, `dns_noanswer`.
    pub kind: &'static str,
    /// Channel, service or DNS name.
    pub target: String,
    pub flow_id: Option<u64>,
    /// RTP sequence number of the duplicated datagram / the first of the swapped pair.
    pub rtp_seq: Option<u16>,
    /// PCR jump in 27 MHz ticks.
    pub pcr_jump: Option<i64>,
}

/// A client's reaction to a disruption.
#[derive(Debug, Clone, Serialize)]
pub struct ClientEvent {
    pub ts_ns: u64,
    /// `refused` (RST to the SYN), `reset` (server RST on an established connection),
    /// `dns_failure` (NXDOMAIN/SERVFAIL answer, or no answer: `rcode` null, at the end
    /// of the lookup timeout), `retry` (a new attempt starts),
    /// `migrate` (the player switches service).
    pub kind: &'static str,
    pub service: String,
    pub client: IpAddr,
    pub flow_id: Option<u64>,
    /// Consecutive failures so far (retries: the attempt number, from 1).
    pub attempt: u32,
    /// Backoff waited before a retry (ns).
    pub delay_ns: Option<u64>,
    /// DNS rcode of a `dns_failure` (`null` when no answer came).
    pub rcode: Option<u8>,
    /// Target service of a `migrate`.
    pub to_service: Option<String>,
    /// The player (`[[https]]` index << 32 | player index within the service).
    pub player: u64,
}

/// Totals over the written file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Records in the file.
    pub packets: u64,
    /// Sum of frame lengths (captured = original length).
    pub frame_bytes: u64,
    /// Size of the capture file including headers.
    pub file_bytes: u64,
    pub flows: u64,
    pub first_ts_ns: Option<u64>,
    pub last_ts_ns: Option<u64>,
    pub ipv4_packets: u64,
    pub ipv6_packets: u64,
    pub vlan_packets: u64,
    pub tcp_packets: u64,
    pub udp_packets: u64,
    /// Multicast datagrams sent by a head-end but dropped by an injected fault (not in the file).
    pub dropped_datagrams: u64,
}

/// What generated a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// MPEG-TS directly in UDP to a multicast group.
    MulticastTsUdp,
    /// MPEG-TS in RTP to a multicast group.
    MulticastTsRtp,
    /// HTTPS-like bursty download (TCP).
    Https,
    /// A player's DNS lookup.
    Dns,
    /// One of the `small_flows` (DNS query/answer).
    SmallDns,
    /// One of the `small_flows` (SYN, SYN-ACK, RST).
    SmallTcp,
    /// An `[[hls]]` player's HTTP/1.1 connection (playlists and segments).
    Hls,
    /// An `[[panel]]` player's HTTP connection (`player_api.php` or a progressive stream).
    Panel,
    /// A `[[quic]]` player's QUIC v1 connection.
    Quic,
    /// A background `[[dns_lookup]]` query/answer.
    DnsLookup,
}

/// Transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// One flow. Client → server is "up". For multicast the sender (head-end) is the
/// server and the group is the client; every packet is down.
#[derive(Debug, Clone, Serialize)]
pub struct FlowTruth {
    pub flow_id: u64,
    pub kind: FlowKind,
    /// Channel or service name from the scenario (null for small flows).
    pub name: Option<String>,
    pub protocol: Protocol,
    pub ip_version: u8,
    pub vlan: Option<u16>,
    pub client_addr: IpAddr,
    pub client_port: u16,
    pub server_addr: IpAddr,
    pub server_port: u16,
    pub first_ts_ns: u64,
    pub last_ts_ns: u64,
    pub packets_up: u64,
    pub packets_down: u64,
    pub frame_bytes_up: u64,
    pub frame_bytes_down: u64,
    /// L4 payload bytes (UDP payload, TCP segment data).
    pub payload_bytes_up: u64,
    pub payload_bytes_down: u64,
    pub tcp: Option<TcpTruth>,
    pub dns: Option<DnsTruth>,
    pub ts: Option<TsTruth>,
    pub rtp: Option<RtpTruth>,
    /// HTTP/1.1 exchanges (`hls` and `panel` flows) or `null`.
    pub http: Option<HttpTruth>,
    /// TLS handshake facts (`https` flows with `tls_handshake`) or `null`.
    pub tls: Option<TlsTruth>,
    /// QUIC facts (`quic` flows) or `null`.
    pub quic: Option<QuicTruth>,
    /// CNAME chain of a DNS answer, in order (RFC 1034 §3.6.2); `null` for other flows.
    pub dns_cnames: Option<Vec<String>>,
}

/// HTTP/1.1 facts of one connection (RFC 9112).
#[derive(Debug, Clone, Serialize)]
pub struct HttpTruth {
    /// Host header of every request.
    pub host: String,
    /// Account carried in the URLs (panels); `null` otherwise. These must never appear
    /// in measurement output.
    pub credentials: Option<Credentials>,
    /// Every request on the connection, in order.
    pub requests: Vec<HttpExchange>,
}

/// A panel account.
#[derive(Debug, Clone, Serialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// One request and its response.
#[derive(Debug, Clone, Serialize)]
pub struct HttpExchange {
    pub method: &'static str,
    pub uri: String,
    /// `master_playlist`, `media_playlist`, `init_segment`, `segment`, `player_api`,
    /// `live_stream`.
    pub kind: &'static str,
    /// HLS variant name (media playlists and segments).
    pub variant: Option<String>,
    /// Media sequence number of a segment; first sequence number of a media playlist.
    pub media_sequence: Option<u64>,
    /// Media duration of a segment (seconds).
    pub duration_s: Option<f64>,
    /// Panel stream id of a `live_stream`.
    pub stream_id: Option<u32>,
    pub request_ts_ns: u64,
    /// Request message bytes (request line and header fields).
    pub request_bytes: u64,
    pub status: u16,
    pub content_type: &'static str,
    /// Content-Length header value; `null` for a body delimited by the connection close.
    pub content_length: Option<u64>,
    /// Response head bytes (status line, header fields, blank line).
    pub response_header_bytes: u64,
    /// Body bytes written before the capture (or the stream) ended.
    pub body_bytes_sent: u64,
    /// First and last TCP segment carrying response bytes.
    pub first_byte_ts_ns: Option<u64>,
    pub last_byte_ts_ns: Option<u64>,
    /// TCP segments carrying response bytes.
    pub segments: u64,
    /// The whole response (head and Content-Length bytes) was written.
    pub complete: bool,
}

/// TLS 1.3 handshake facts of an HTTPS-like connection (RFC 8446).
#[derive(Debug, Clone, Serialize)]
pub struct TlsTruth {
    /// server_name in the ClientHello (RFC 6066 §3).
    pub sni: String,
    /// ALPN offered (RFC 7301).
    pub alpn: Vec<String>,
    /// Cipher suite chosen in the ServerHello (0x1301).
    pub cipher_suite: u16,
    pub client_hello_ts_ns: u64,
    /// ClientHello record bytes (record header included).
    pub client_hello_bytes: u64,
    /// Server flight bytes: ServerHello, ChangeCipherSpec, encrypted handshake records.
    pub server_flight_bytes: u64,
    /// Client ChangeCipherSpec + Finished bytes.
    pub client_finished_bytes: u64,
    /// Time of the client Finished (null when the capture ended first).
    pub handshake_done_ts_ns: Option<u64>,
}

/// QUIC v1 facts of a connection (RFC 9000, RFC 9001).
#[derive(Debug, Clone, Serialize)]
pub struct QuicTruth {
    pub version: u32,
    /// The client's first Destination Connection ID (it keys the Initial packets), hex.
    pub dcid: String,
    /// Client Source Connection ID, hex.
    pub scid: String,
    /// The server's Source Connection ID, hex.
    pub server_scid: String,
    pub sni: String,
    pub alpn: Vec<String>,
    pub initial_ts_ns: u64,
    /// UDP payload bytes of the first client Initial datagram (1200).
    pub client_initial_bytes: u64,
    /// Client Initial packets (one datagram each) that carried the ClientHello.
    pub client_initials: u32,
    /// Time of the client's Handshake (Finished) datagram.
    pub handshake_done_ts_ns: Option<u64>,
    pub path_rtt_ns: u64,
    /// The client sent its closing packet.
    pub closed: bool,
    /// One per request; byte counts are UDP payload bytes of 1-RTT packets.
    pub bursts: Vec<BurstTruth>,
}

/// How a TCP connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Fin,
    Rst,
    /// Still open when the capture ended.
    CaptureEnd,
}

/// TCP facts.
#[derive(Debug, Clone, Serialize)]
pub struct TcpTruth {
    pub syn_ts_ns: u64,
    /// Time from the SYN to the client's handshake ACK (null when the handshake did not complete).
    pub handshake_rtt_ns: Option<u64>,
    /// Network round-trip time the flow was generated with.
    pub path_rtt_ns: u64,
    pub mss: u16,
    pub retransmissions: u64,
    pub fin_client: bool,
    pub fin_server: bool,
    pub rst_client: bool,
    pub rst_server: bool,
    pub end_reason: EndReason,
    /// One entry per client request and the server burst answering it.
    pub bursts: Vec<BurstTruth>,
}

/// A request and the response burst (a media segment fetch).
#[derive(Debug, Clone, Serialize)]
pub struct BurstTruth {
    pub request_ts_ns: u64,
    pub request_bytes: u64,
    /// Response bytes planned (TLS records included).
    pub response_bytes: u64,
    /// Response bytes written before the capture ended.
    pub response_bytes_sent: u64,
    pub first_byte_ts_ns: Option<u64>,
    pub last_byte_ts_ns: Option<u64>,
    pub segments: u64,
}

impl BurstTruth {
    /// One response segment of `len` payload bytes sent at `ts_ns`.
    pub(crate) fn record_segment(&mut self, ts_ns: u64, len: u64) {
        self.first_byte_ts_ns.get_or_insert(ts_ns);
        self.last_byte_ts_ns = Some(ts_ns);
        self.response_bytes_sent += len;
        self.segments += 1;
    }
}

/// A DNS exchange (one query, at most one answer).
#[derive(Debug, Clone, Serialize)]
pub struct DnsTruth {
    pub id: u16,
    pub qname: String,
    pub qtype: String,
    /// Response code; `null` when the resolver never answers (a `dns_noanswer` fault).
    /// When the capture ends before a planned answer, the planned code (and `answers`)
    /// with a `null` `response_ts_ns`.
    pub rcode: Option<u8>,
    /// Addresses of the answer (`[]` without one).
    pub answers: Vec<IpAddr>,
    pub answer_ttl_s: u32,
    pub query_ts_ns: u64,
    /// `null` when no response is in the file (none sent, or the capture ended first).
    pub response_ts_ns: Option<u64>,
}

/// MPEG-TS facts of a channel (ISO/IEC 13818-1).
#[derive(Debug, Clone, Serialize)]
pub struct TsTruth {
    pub program_number: u16,
    pub pmt_pid: u16,
    pub pcr_pid: u16,
    pub mux_rate_bps: u64,
    pub ts_per_datagram: u8,
    /// TS packets written (in captured datagrams).
    pub ts_packets: u64,
    pub datagrams_sent: u64,
    pub datagrams_dropped: u64,
    /// PCRs written.
    pub pcr_count: u64,
    /// Datagrams written twice by `multicast_duplicate` (each counted once here).
    pub datagrams_duplicated: u64,
    /// Adjacent datagram pairs swapped by `multicast_reorder`.
    pub datagrams_reordered: u64,
    /// PCR discontinuities a receiver sees: consecutive written PCRs on the PCR PID
    /// whose difference is negative or above 100 ms, without discontinuity_indicator
    /// (TR 101 290 §5.2.2, PCR_discontinuity_indicator_error).
    pub pcr_discontinuities: u64,
    pub pids: Vec<PidTruth>,
}

/// Per-PID counters.
#[derive(Debug, Clone, Serialize)]
pub struct PidTruth {
    pub pid: u16,
    /// `pat`, `pmt`, `video`, `audio` or `null`.
    pub role: &'static str,
    /// PMT stream_type (null for PSI and null packets).
    pub stream_type: Option<u8>,
    /// Packets written.
    pub packets: u64,
    /// Packets sent but dropped by a fault.
    pub lost_packets: u64,
    /// Continuity-counter discontinuities a receiver sees in the written packets
    /// (ISO/IEC 13818-1 §2.4.3.3; null packets are not counted).
    pub cc_errors: u64,
    /// The PID's packets are scrambled (transport_scrambling_control ≠ '00').
    pub scrambled: bool,
}

/// RTP facts (RFC 3550).
#[derive(Debug, Clone, Serialize)]
pub struct RtpTruth {
    pub ssrc: u32,
    pub payload_type: u8,
    pub clock_rate_hz: u32,
    pub packets: u64,
    /// Sequence numbers missing between the first and last written packet.
    pub lost: u64,
    /// Sequence discontinuities (runs of missing numbers).
    pub gaps: u64,
    pub first_seq: Option<u16>,
    pub last_seq: Option<u16>,
    /// Packets whose sequence number was already received.
    pub duplicates: u64,
    /// Packets arriving after a higher sequence number (late, not duplicates).
    pub reordered: u64,
}

impl FlowTruth {
    /// A flow with no packets yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: FlowKind,
        name: Option<String>,
        protocol: Protocol,
        path: &crate::net::Path,
    ) -> FlowTruth {
        FlowTruth {
            flow_id: 0,
            kind,
            name,
            protocol,
            ip_version: if path.v6 { 6 } else { 4 },
            vlan: path.vlan,
            client_addr: path.client,
            client_port: path.client_port,
            server_addr: path.server,
            server_port: path.server_port,
            first_ts_ns: 0,
            last_ts_ns: 0,
            packets_up: 0,
            packets_down: 0,
            frame_bytes_up: 0,
            frame_bytes_down: 0,
            payload_bytes_up: 0,
            payload_bytes_down: 0,
            tcp: None,
            dns: None,
            ts: None,
            rtp: None,
            http: None,
            tls: None,
            quic: None,
            dns_cnames: None,
        }
    }
}
