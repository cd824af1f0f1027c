//! The rows of the flow tables, as the pipeline hands them to [`crate::Output`].
//!
//! Rows carry the pipeline's own units (nanosecond timestamps, unsigned counters, typed
//! addresses); their [`Row`] impls convert them to the Parquet contract (microsecond
//! timestamps, signed 64-bit counters, text addresses) through [`RowWriter`]. See
//! [`crate::schema`] for the meaning of every column.

use std::net::IpAddr;

use crate::row::{ns_to_us, Row, RowWriter};
use crate::schema::{
    TableSpec, CHANNEL_SESSIONS, DNS, FLOWS, FLOW_BINS, HTTP, MULTICAST_EVENTS, RTP_STREAMS,
    SEGMENTS, TS_PIDS, TS_STREAMS,
};

/// One bidirectional flow, written to the `flows` table when the flow ends.
///
/// "Up" is client → server and "down" is server → client.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRow {
    /// Identifier unique within the run, assigned in order of the flows' first packets.
    pub flow_id: i64,
    /// Capture time of the first packet, ns since the Unix epoch.
    pub first_ts_ns: i64,
    /// Capture time of the last packet, ns since the Unix epoch.
    pub last_ts_ns: i64,
    /// 4 or 6.
    pub ip_version: u8,
    /// IANA protocol number of the transport (after IPv6 extension headers).
    pub protocol: u8,
    /// Client address.
    pub client_addr: IpAddr,
    /// Client port; `None` for protocols without ports.
    pub client_port: Option<u16>,
    /// Server address.
    pub server_addr: IpAddr,
    /// Server port; `None` for protocols without ports.
    pub server_port: Option<u16>,
    /// The name a DNS answer gave for the server's address; `None` when none did.
    pub server_name: Option<String>,
    /// Outer 802.1Q VLAN ID; `None` when untagged.
    pub vlan: Option<u16>,
    /// Inner VLAN ID of a double (QinQ) tag; `None` unless double-tagged.
    pub vlan_inner: Option<u16>,
    /// How the client side was decided: `"syn"`, `"well_known_port"`, `"first_sender"`.
    pub client_rule: &'static str,
    /// Packets client → server.
    pub packets_up: u64,
    /// Packets server → client.
    pub packets_down: u64,
    /// Frame (wire) bytes client → server.
    pub bytes_up: u64,
    /// Frame (wire) bytes server → client.
    pub bytes_down: u64,
    /// Transport payload bytes client → server.
    pub payload_bytes_up: u64,
    /// Transport payload bytes server → client.
    pub payload_bytes_down: u64,
    /// TCP facts; `None` for non-TCP flows, whose TCP columns are then all null.
    pub tcp: Option<TcpFacts>,
    /// Why the flow ended: `"fin"`, `"rst"`, `"idle"`, `"capture_end"`, `"evicted"`.
    pub end_reason: &'static str,
    /// Number of time bins the flow spans.
    pub bins: u64,
    /// Median downstream bitrate over the flow's bins, bit/s.
    pub bitrate_down_p50_bps: Option<i64>,
    /// 95th-percentile downstream bitrate over the flow's bins, bit/s.
    pub bitrate_down_p95_bps: Option<i64>,
    /// Highest downstream bitrate of the flow's bins, bit/s.
    pub bitrate_down_max_bps: Option<i64>,
    /// What the flow carries (`iptv_multicast`, `iptv_unicast`, `rtp_media`), if found.
    pub class: Option<&'static str>,
    /// How [`FlowRow::class`] was decided.
    pub class_evidence: Option<&'static str>,
    /// The service key (DESIGN: the group, the registered domain of the SNI, HTTP host or
    /// DNS name, else the server prefix).
    pub service: Option<String>,
    /// Where the key came from: `group`, `sni`, `http_host`, `dns`, `prefix`.
    pub service_source: Option<&'static str>,
    /// The first HTTP Host of an HTTP flow.
    pub http_host: Option<String>,
    /// TLS / QUIC ClientHello facts.
    pub sni: Option<String>,
    pub alpn: Option<Vec<String>>,
    pub tls_version: Option<String>,
    pub quic_version: Option<String>,
    pub tls_offered_versions: Option<Vec<String>>,
    /// A TLS flow's application_data records and their bytes, up and down.
    pub tls_app: Option<TlsAppFacts>,
    /// Segments inferred on a TLS or QUIC flow.
    pub segments: Option<SegmentFacts>,
}

/// A TLS flow's application_data records (see the `tls_app_*` columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlsAppFacts {
    /// Records up (client → server) and down.
    pub records: [u64; 2],
    /// Their length fields added up, up and down.
    pub bytes: [u64; 2],
}

/// What was observed of a TCP connection (RFC 9293).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFacts {
    /// The client's SYN was seen.
    pub syn_seen: bool,
    /// SYN, SYN-ACK and the client's ACK were all seen.
    pub handshake_seen: bool,
    /// Time from the client's SYN to its ACK of the SYN-ACK, ns.
    pub handshake_rtt_ns: Option<i64>,
    /// Retransmitted packets client → server.
    pub retransmitted_packets_up: u64,
    /// Retransmitted packets server → client.
    pub retransmitted_packets_down: u64,
    /// The client sent a FIN.
    pub fin_up: bool,
    /// The server sent a FIN.
    pub fin_down: bool,
    /// A RST was seen in either direction.
    pub rst_seen: bool,
}

/// One flow's traffic in one time bin, written to the `flow_bins` table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinRow {
    /// The flow ([`FlowRow::flow_id`]).
    pub flow_id: i64,
    /// Start of the bin, ns since the Unix epoch.
    pub bin_start_ns: i64,
    /// Packets client → server in the bin.
    pub packets_up: u64,
    /// Packets server → client in the bin.
    pub packets_down: u64,
    /// Frame (wire) bytes client → server in the bin.
    pub bytes_up: u64,
    /// Frame (wire) bytes server → client in the bin.
    pub bytes_down: u64,
    /// `bytes_down` as bit/s over the bin width, floored (the flow crate's `BinRate`).
    pub bitrate_down_bps: i64,
    /// The flow's media errors in the bin (zero for flows without media).
    pub media: BinMedia,
}

/// The shape of a flow's inferred segments ([`FlowRow::segments`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentFacts {
    pub count: u64,
    pub median_bytes: Option<u64>,
    pub median_interval_ns: Option<i64>,
    pub on_share: Option<f64>,
}

/// The media counters of a bin row ([`BinRow::media`]): see the `flow_bins` columns.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BinMedia {
    pub ts_packets: u64,
    pub ts_cc_errors: u64,
    pub ts_lost_packets: u64,
    pub ts_transport_errors: u64,
    pub ts_pcr_errors: u64,
    pub ts_df_ms: Option<f64>,
    pub ts_mlr_pps: Option<f64>,
    pub rtp_packets: u64,
    pub rtp_lost: i64,
    pub rtp_duplicates: u64,
    pub rtp_reordered: u64,
    pub rtp_max_jitter_ms: Option<f64>,
}

impl Row for FlowRow {
    const TABLE: &'static TableSpec = &FLOWS;

    fn append(&self, w: &mut RowWriter<'_>) {
        let tcp = self.tcp.as_ref();
        let (first_us, last_us) = (ns_to_us(self.first_ts_ns), ns_to_us(self.last_ts_ns));
        w.i64("flow_id", self.flow_id);
        w.ts_ns("first_ts", self.first_ts_ns);
        w.ts_ns("last_ts", self.last_ts_ns);
        w.i64("duration_us", last_us.saturating_sub(first_us));
        w.i32("ip_version", self.ip_version);
        w.i32("protocol", self.protocol);
        w.addr("client_addr", self.client_addr);
        w.opt_i32("client_port", self.client_port);
        w.addr("server_addr", self.server_addr);
        w.opt_i32("server_port", self.server_port);
        w.opt_str("server_name", self.server_name.as_deref());
        w.opt_i32("vlan", self.vlan);
        w.opt_i32("vlan_inner", self.vlan_inner);
        w.str("client_rule", self.client_rule);
        w.count("packets_up", self.packets_up);
        w.count("packets_down", self.packets_down);
        w.count("bytes_up", self.bytes_up);
        w.count("bytes_down", self.bytes_down);
        w.count("payload_bytes_up", self.payload_bytes_up);
        w.count("payload_bytes_down", self.payload_bytes_down);
        w.opt_bool("syn_seen", tcp.map(|t| t.syn_seen));
        w.opt_bool("handshake_seen", tcp.map(|t| t.handshake_seen));
        let rtt_us = tcp.and_then(|t| t.handshake_rtt_ns).map(ns_to_us);
        w.opt_i64("handshake_rtt_us", rtt_us);
        let retransmitted_up = tcp.map(|t| t.retransmitted_packets_up);
        w.opt_count("retransmitted_packets_up", retransmitted_up);
        let retransmitted_down = tcp.map(|t| t.retransmitted_packets_down);
        w.opt_count("retransmitted_packets_down", retransmitted_down);
        w.opt_bool("fin_up", tcp.map(|t| t.fin_up));
        w.opt_bool("fin_down", tcp.map(|t| t.fin_down));
        w.opt_bool("rst_seen", tcp.map(|t| t.rst_seen));
        w.str("end_reason", self.end_reason);
        w.count("bins", self.bins);
        w.opt_i64("bitrate_down_p50_bps", self.bitrate_down_p50_bps);
        w.opt_i64("bitrate_down_p95_bps", self.bitrate_down_p95_bps);
        w.opt_i64("bitrate_down_max_bps", self.bitrate_down_max_bps);
        w.opt_str("class", self.class);
        w.opt_str("class_evidence", self.class_evidence);
        w.opt_str("service", self.service.as_deref());
        w.opt_str("service_source", self.service_source);
        w.opt_str("http_host", self.http_host.as_deref());
        w.opt_str("sni", self.sni.as_deref());
        w.opt_strs(
            "alpn",
            self.alpn.as_ref().map(|a| a.iter().map(String::as_str)),
        );
        w.opt_str("tls_version", self.tls_version.as_deref());
        w.opt_str("quic_version", self.quic_version.as_deref());
        w.opt_strs(
            "tls_offered_versions",
            self.tls_offered_versions
                .as_ref()
                .map(|a| a.iter().map(String::as_str)),
        );
        let t = self.tls_app.as_ref();
        w.opt_count("tls_app_records_up", t.map(|t| t.records[0]));
        w.opt_count("tls_app_records_down", t.map(|t| t.records[1]));
        w.opt_count("tls_app_bytes_up", t.map(|t| t.bytes[0]));
        w.opt_count("tls_app_bytes_down", t.map(|t| t.bytes[1]));
        let sg = self.segments.as_ref();
        w.opt_count("segments", sg.map(|g| g.count));
        w.opt_count("segment_median_bytes", sg.and_then(|g| g.median_bytes));
        w.opt_i64(
            "segment_median_interval_us",
            sg.and_then(|g| g.median_interval_ns).map(ns_to_us),
        );
        w.opt_f64("segment_on_share", sg.and_then(|g| g.on_share));
    }
}

impl Row for BinRow {
    const TABLE: &'static TableSpec = &FLOW_BINS;

    fn append(&self, w: &mut RowWriter<'_>) {
        w.i64("flow_id", self.flow_id);
        w.ts_ns("bin_start", self.bin_start_ns);
        w.count("packets_up", self.packets_up);
        w.count("packets_down", self.packets_down);
        w.count("bytes_up", self.bytes_up);
        w.count("bytes_down", self.bytes_down);
        w.i64("bitrate_down_bps", self.bitrate_down_bps);
        let m = &self.media;
        w.count("ts_packets", m.ts_packets);
        w.count("ts_cc_errors", m.ts_cc_errors);
        w.count("ts_lost_packets", m.ts_lost_packets);
        w.count("ts_transport_errors", m.ts_transport_errors);
        w.count("ts_pcr_errors", m.ts_pcr_errors);
        w.opt_f64("ts_df_ms", m.ts_df_ms);
        w.opt_f64("ts_mlr_pps", m.ts_mlr_pps);
        w.count("rtp_packets", m.rtp_packets);
        w.i64("rtp_lost", m.rtp_lost);
        w.count("rtp_duplicates", m.rtp_duplicates);
        w.count("rtp_reordered", m.rtp_reordered);
        w.opt_f64("rtp_max_jitter_ms", m.rtp_max_jitter_ms);
    }
}

/// One DNS exchange, written to the `dns` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// Capture time of the query, ns; `None` when only the response was seen.
    pub query_ts_ns: Option<i64>,
    /// Capture time of the response, ns; `None` when none came.
    pub response_ts_ns: Option<i64>,
    /// The flow carrying it.
    pub flow_id: i64,
    /// 17 or 6.
    pub protocol: u8,
    /// Who asked, and whom.
    pub client_addr: IpAddr,
    pub client_port: u16,
    pub server_addr: IpAddr,
    pub server_port: u16,
    /// Transaction id.
    pub id: u16,
    /// The first question's name, lower-case.
    pub name: Option<String>,
    /// The question's type by name.
    pub qtype: Option<std::borrow::Cow<'static, str>>,
    /// The response code by name.
    pub rcode: Option<std::borrow::Cow<'static, str>>,
    /// Answer records.
    pub answers: Option<u16>,
    /// Addresses answered.
    pub addresses: Vec<IpAddr>,
    /// CNAME chain.
    pub cnames: Vec<String>,
    /// Smallest TTL on the chain, s.
    pub min_ttl_s: Option<u32>,
    /// Response time less query time, ns.
    pub latency_ns: Option<i64>,
    /// Copies of the query seen while it waited.
    pub retransmissions: u16,
    /// TC bit.
    pub truncated: bool,
    /// Did not parse whole.
    pub malformed: bool,
    /// `answered`, `timeout`, `flow_end`, `evicted`, `response_only`.
    pub outcome: &'static str,
}

impl Row for DnsRecord {
    const TABLE: &'static TableSpec = &DNS;

    fn append(&self, w: &mut RowWriter<'_>) {
        w.opt_ts_ns("query_ts", self.query_ts_ns);
        w.opt_ts_ns("response_ts", self.response_ts_ns);
        w.i64("flow_id", self.flow_id);
        w.i32("protocol", self.protocol);
        w.addr("client_addr", self.client_addr);
        w.i32("client_port", self.client_port);
        w.addr("server_addr", self.server_addr);
        w.i32("server_port", self.server_port);
        w.i32("id", self.id);
        w.opt_str("name", self.name.as_deref());
        w.opt_str("qtype", self.qtype.as_deref());
        w.opt_str("rcode", self.rcode.as_deref());
        w.opt_i32("answers", self.answers);
        w.addrs("addresses", self.addresses.iter().copied());
        w.strs("cnames", self.cnames.iter().map(String::as_str));
        w.opt_i64("min_ttl_s", self.min_ttl_s.map(i64::from));
        w.opt_i64("latency_us", self.latency_ns.map(ns_to_us));
        w.i32("retransmissions", self.retransmissions);
        w.bool("truncated", self.truncated);
        w.bool("malformed", self.malformed);
        w.str("outcome", self.outcome);
    }
}

/// One IGMP / MLD message or group record, written to the `multicast_events` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastEventRow<'a> {
    pub ts_ns: i64,
    pub flow_id: i64,
    pub host_addr: IpAddr,
    pub destination_addr: IpAddr,
    /// `igmp` or `mld`.
    pub protocol: &'static str,
    pub version: Option<&'static str>,
    pub kind: &'static str,
    pub message_type: u8,
    pub other_protocol: Option<&'static str>,
    pub group_addr: Option<IpAddr>,
    pub record_type: Option<&'static str>,
    /// The sources, as the message lists them.
    pub sources: &'a [IpAddr],
    pub max_resp_ms: Option<u32>,
    pub checksum_ok: bool,
    pub malformed: bool,
}

impl Row for MulticastEventRow<'_> {
    const TABLE: &'static TableSpec = &MULTICAST_EVENTS;

    fn append(&self, w: &mut RowWriter<'_>) {
        w.ts_ns("ts", self.ts_ns);
        w.i64("flow_id", self.flow_id);
        w.addr("host_addr", self.host_addr);
        w.addr("destination_addr", self.destination_addr);
        w.str("protocol", self.protocol);
        w.opt_str("version", self.version);
        w.str("kind", self.kind);
        w.i32("message_type", self.message_type);
        w.opt_str("other_protocol", self.other_protocol);
        w.opt_addr("group_addr", self.group_addr);
        w.opt_str("record_type", self.record_type);
        w.addrs("sources", self.sources.iter().copied());
        w.opt_i64("max_resp_ms", self.max_resp_ms.map(i64::from));
        w.bool("checksum_ok", self.checksum_ok);
        w.bool("malformed", self.malformed);
    }
}

/// One multicast membership, written to the `channel_sessions` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSessionRow {
    pub host_addr: IpAddr,
    pub group_addr: IpAddr,
    pub source_addr: Option<IpAddr>,
    pub version: &'static str,
    pub join_ts_ns: i64,
    pub last_report_ts_ns: i64,
    pub leave_ts_ns: i64,
    pub end_reason: &'static str,
    pub duration_ns: i64,
    pub reports: u32,
    pub first_packet_ts_ns: Option<i64>,
    pub zap_ns: Option<i64>,
    pub packets: u64,
    pub bytes: u64,
    pub mean_bps: Option<f64>,
}

impl Row for ChannelSessionRow {
    const TABLE: &'static TableSpec = &CHANNEL_SESSIONS;

    fn append(&self, w: &mut RowWriter<'_>) {
        w.addr("host_addr", self.host_addr);
        w.addr("group_addr", self.group_addr);
        w.opt_addr("source_addr", self.source_addr);
        w.str("version", self.version);
        w.ts_ns("join_ts", self.join_ts_ns);
        w.ts_ns("last_report_ts", self.last_report_ts_ns);
        w.ts_ns("leave_ts", self.leave_ts_ns);
        w.str("end_reason", self.end_reason);
        w.f64("duration_s", self.duration_ns as f64 / 1e9);
        w.i64("reports", i64::from(self.reports));
        w.opt_ts_ns("first_packet_ts", self.first_packet_ts_ns);
        w.opt_f64("zap_ms", self.zap_ns.map(|z| z as f64 / 1e6));
        w.count("packets", self.packets);
        w.count("bytes", self.bytes);
        w.opt_i64("mean_bitrate_bps", self.mean_bps.map(|b| b.round() as i64));
    }
}

/// One MPEG-TS multiplex (a flow), written to the `ts_streams` table.
#[derive(Debug, Clone, PartialEq)]
pub struct TsStreamRow {
    pub flow_id: i64,
    pub carrier: &'static str,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub packet_len: Option<u16>,
    pub packets: u64,
    pub null_share: Option<f64>,
    pub pids: u64,
    pub programs: u64,
    pub pcr_pid: Option<u16>,
    pub bitrate_bps: Option<f64>,
    pub pcr_jitter_ns: Option<i64>,
    pub ts_resolution_ns: u64,
    pub df_max_ms: Option<f64>,
    pub lost_packets: u64,
    pub rtp_lost_packets: Option<u64>,
    pub mlr_pps: Option<f64>,
    /// The TR 101 290 counters, in the table's order.
    pub tr101290: [u64; 12],
}

impl Row for TsStreamRow {
    const TABLE: &'static TableSpec = &TS_STREAMS;

    fn append(&self, w: &mut RowWriter<'_>) {
        w.i64("flow_id", self.flow_id);
        w.str("carrier", self.carrier);
        w.opt_ts_ns("first_ts", self.first_ts_ns);
        w.opt_ts_ns("last_ts", self.last_ts_ns);
        w.opt_i32("packet_len", self.packet_len);
        w.count("packets", self.packets);
        w.opt_f64("null_share", self.null_share);
        w.count("pids", self.pids);
        w.count("programs", self.programs);
        w.opt_i32("pcr_pid", self.pcr_pid);
        w.opt_i64("bitrate_bps", self.bitrate_bps.map(|b| b.round() as i64));
        w.opt_f64("pcr_jitter_ms", self.pcr_jitter_ns.map(|j| j as f64 / 1e6));
        w.count("ts_resolution_ns", self.ts_resolution_ns);
        w.opt_f64("df_max_ms", self.df_max_ms);
        w.count("lost_packets", self.lost_packets);
        w.opt_i64("rtp_lost_packets", self.rtp_lost_packets.map(|n| n as i64));
        w.opt_f64("mlr_pps", self.mlr_pps);
        for (name, v) in TS_TR101290_COLUMNS.iter().zip(self.tr101290) {
            w.count(name, v);
        }
    }
}

/// The `ts_streams` columns of the TR 101 290 counters, in order.
pub const TS_TR101290_COLUMNS: [&str; 12] = [
    "ts_sync_loss",
    "sync_byte_error",
    "pat_error_2",
    "continuity_count_error",
    "pmt_error_2",
    "pid_error",
    "transport_error",
    "crc_error",
    "pcr_repetition_error",
    "pcr_discontinuity_indicator_error",
    "pcr_accuracy_error",
    "pts_error",
];

/// One PID of a multiplex, written to the `ts_pids` table.
#[derive(Debug, Clone, PartialEq)]
pub struct TsPidRow {
    pub flow_id: i64,
    pub pid: u16,
    pub kind: &'static str,
    pub program: Option<u16>,
    pub stream_type: Option<u8>,
    pub packets: u64,
    pub cc_errors: u64,
    pub lost_packets: u64,
    pub duplicates: u64,
    pub transport_errors: u64,
    pub scrambled_packets: u64,
    pub pcr_count: u64,
    pub pcr_interval_min_ns: Option<i64>,
    pub pcr_interval_max_ns: Option<i64>,
    pub pcr_repetition_errors: u64,
    pub pcr_discontinuity_errors: u64,
    pub pcr_accuracy_errors: u64,
    pub pts_errors: u64,
}

impl Row for TsPidRow {
    const TABLE: &'static TableSpec = &TS_PIDS;

    fn append(&self, w: &mut RowWriter<'_>) {
        let ms = |ns: Option<i64>| ns.map(|n| n as f64 / 1e6);
        w.i64("flow_id", self.flow_id);
        w.i32("pid", self.pid);
        w.str("kind", self.kind);
        w.opt_i32("program", self.program);
        w.opt_i32("stream_type", self.stream_type);
        w.count("packets", self.packets);
        w.count("cc_errors", self.cc_errors);
        w.count("lost_packets", self.lost_packets);
        w.count("duplicates", self.duplicates);
        w.count("transport_errors", self.transport_errors);
        w.count("scrambled_packets", self.scrambled_packets);
        w.count("pcr_count", self.pcr_count);
        w.opt_f64("pcr_interval_min_ms", ms(self.pcr_interval_min_ns));
        w.opt_f64("pcr_interval_max_ms", ms(self.pcr_interval_max_ns));
        w.count("pcr_repetition_errors", self.pcr_repetition_errors);
        w.count("pcr_discontinuity_errors", self.pcr_discontinuity_errors);
        w.count("pcr_accuracy_errors", self.pcr_accuracy_errors);
        w.count("pts_errors", self.pts_errors);
    }
}

/// One RTP stream, written to the `rtp_streams` table.
#[derive(Debug, Clone, PartialEq)]
pub struct RtpStreamRow {
    pub flow_id: i64,
    pub direction: &'static str,
    pub ssrc: u32,
    pub first_ts_ns: i64,
    pub last_ts_ns: i64,
    pub payload_type: u8,
    pub clock_rate_hz: Option<u32>,
    pub clock_rate_source: &'static str,
    pub packets: u64,
    pub bytes: u64,
    pub expected: i64,
    pub lost: i64,
    pub duplicates: u64,
    pub reordered: u64,
    pub sequence_errors: u64,
    pub mean_jitter_ms: Option<f64>,
    pub max_jitter_ms: Option<f64>,
    pub max_delta_ms: Option<f64>,
    pub max_gap_ms: Option<f64>,
    pub mpeg_ts_packets: u64,
}

impl Row for RtpStreamRow {
    const TABLE: &'static TableSpec = &RTP_STREAMS;

    fn append(&self, w: &mut RowWriter<'_>) {
        w.i64("flow_id", self.flow_id);
        w.str("direction", self.direction);
        w.i64("ssrc", i64::from(self.ssrc));
        w.ts_ns("first_ts", self.first_ts_ns);
        w.ts_ns("last_ts", self.last_ts_ns);
        w.i32("payload_type", self.payload_type);
        w.opt_i64("clock_rate_hz", self.clock_rate_hz.map(i64::from));
        w.str("clock_rate_source", self.clock_rate_source);
        w.count("packets", self.packets);
        w.count("bytes", self.bytes);
        w.i64("expected", self.expected);
        w.i64("lost", self.lost);
        w.count("duplicates", self.duplicates);
        w.count("reordered", self.reordered);
        w.count("sequence_errors", self.sequence_errors);
        w.opt_f64("mean_jitter_ms", self.mean_jitter_ms);
        w.opt_f64("max_jitter_ms", self.max_jitter_ms);
        w.opt_f64("max_delta_ms", self.max_delta_ms);
        w.opt_f64("max_gap_ms", self.max_gap_ms);
        w.count("mpeg_ts_packets", self.mpeg_ts_packets);
    }
}

/// One media segment, written to the `segments` table.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    pub flow_id: i64,
    /// `http` or `inferred`.
    pub method: &'static str,
    pub request_ts_ns: i64,
    pub first_byte_ts_ns: i64,
    pub last_byte_ts_ns: i64,
    pub request_bytes: Option<u64>,
    pub bytes: u64,
    pub packets: Option<u64>,
    pub duration_s: Option<f64>,
    pub bitrate_bps: Option<f64>,
    pub rendition_bandwidth_bps: Option<u64>,
    pub rendition_resolution: Option<String>,
}

impl Row for SegmentRow {
    const TABLE: &'static TableSpec = &SEGMENTS;

    fn append(&self, w: &mut RowWriter<'_>) {
        w.i64("flow_id", self.flow_id);
        w.str("method", self.method);
        w.ts_ns("request_ts", self.request_ts_ns);
        w.ts_ns("first_byte_ts", self.first_byte_ts_ns);
        w.ts_ns("last_byte_ts", self.last_byte_ts_ns);
        w.opt_count("request_bytes", self.request_bytes);
        w.count("bytes", self.bytes);
        w.opt_count("packets", self.packets);
        w.i64(
            "download_us",
            ns_to_us(
                self.last_byte_ts_ns
                    .saturating_sub(self.request_ts_ns)
                    .max(0),
            ),
        );
        let span = self.last_byte_ts_ns - self.first_byte_ts_ns;
        w.opt_i64(
            "throughput_bps",
            (span > 0).then(|| (self.bytes as f64 * 8e9 / span as f64).round() as i64),
        );
        w.opt_f64("duration_s", self.duration_s);
        w.opt_i64("bitrate_bps", self.bitrate_bps.map(|b| b.round() as i64));
        w.opt_count("rendition_bandwidth_bps", self.rendition_bandwidth_bps);
        w.opt_str("rendition_resolution", self.rendition_resolution.as_deref());
    }
}

/// One HTTP transaction, written to the `http` table.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRow<'a> {
    pub flow_id: i64,
    pub pairing: &'static str,
    pub request_ts_ns: Option<i64>,
    pub response_ts_ns: Option<i64>,
    pub response_end_ns: Option<i64>,
    pub method: Option<&'static str>,
    pub host: Option<&'a str>,
    pub path_template: Option<&'a str>,
    pub extension: Option<&'a str>,
    pub query_names: Option<&'a str>,
    pub status: Option<u16>,
    pub content_type: Option<&'a str>,
    pub content_length: Option<u64>,
    pub body_bytes: u64,
    pub missing_bytes: u64,
    pub transfer: Option<&'static str>,
    pub role: &'static str,
    pub complete: bool,
    pub duration_s: Option<f64>,
    pub bitrate_bps: Option<f64>,
}

impl Row for HttpRow<'_> {
    const TABLE: &'static TableSpec = &HTTP;

    fn append(&self, w: &mut RowWriter<'_>) {
        w.i64("flow_id", self.flow_id);
        w.str("pairing", self.pairing);
        w.opt_ts_ns("request_ts", self.request_ts_ns);
        w.opt_ts_ns("response_ts", self.response_ts_ns);
        w.opt_ts_ns("response_end_ts", self.response_end_ns);
        w.opt_str("method", self.method);
        w.opt_str("host", self.host);
        w.opt_str("path_template", self.path_template);
        w.opt_str("extension", self.extension);
        w.opt_str("query_names", self.query_names);
        w.opt_i32("status", self.status);
        w.opt_str("content_type", self.content_type);
        w.opt_count("content_length", self.content_length);
        w.count("body_bytes", self.body_bytes);
        w.count("missing_bytes", self.missing_bytes);
        w.opt_str("transfer", self.transfer);
        w.str("role", self.role);
        w.bool("complete", self.complete);
        w.opt_f64("duration_s", self.duration_s);
        w.opt_i64("bitrate_bps", self.bitrate_bps.map(|b| b.round() as i64));
    }
}
