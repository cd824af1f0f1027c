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

/// A DNS exchange (one query, at most one answer).
#[derive(Debug, Clone, Serialize)]
pub struct DnsTruth {
    pub id: u16,
    pub qname: String,
    pub qtype: String,
    pub rcode: u8,
    pub answers: Vec<IpAddr>,
    pub answer_ttl_s: u32,
    pub query_ts_ns: u64,
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
        }
    }
}
