//! The tables streamscope writes: the single source of truth for their columns.
//!
//! [`tables()`] lists every table with its columns, types, nullability and meaning. The
//! Arrow schema used by the writers ([`arrow_schema()`]), the output of
//! `streamscope schema` ([`schema_text`]) and `docs/schema.md` ([`schema_markdown`]) are
//! all derived from it, so they cannot drift apart.
//!
//! The column types follow the Parquet contract of the project (see the crate docs): no
//! unsigned types, microsecond UTC timestamps, `int32` for small integers,
//! dictionary-encoded low-cardinality strings, nulls where a value does not apply.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the table layout, written to `run.json` and to each file's key-value
/// metadata. Bumped whenever a column is renamed, removed or changes type or meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// The time zone of every timestamp column.
pub const TIMEZONE: &str = "UTC";

/// The name of the item field of a list column (Arrow's default; Parquet's three-level
/// `LIST` structure is written as `<column>.list.item`).
pub const LIST_ITEM: &str = "item";

/// The type of a column, as every engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// Signed 64-bit integer: ids, counters, durations, bitrates.
    Int64,
    /// Signed 32-bit integer: ports, VLAN IDs, protocol numbers, versions.
    Int32,
    /// Boolean.
    Bool,
    /// IEEE 754 double.
    Float64,
    /// Microseconds since the Unix epoch, UTC (`timestamp[us, UTC]`).
    TimestampUs,
    /// Low-cardinality text, dictionary-encoded with `int32` keys.
    DictUtf8,
    /// Text of any length and cardinality: addresses, names, paths.
    Utf8,
    /// A list of text (items never null; the list itself is null where the column is
    /// nullable and the value does not apply): answered addresses, CNAME chains.
    ListUtf8,
}

impl ColType {
    /// The Arrow type of the column.
    pub fn arrow_type(self) -> DataType {
        match self {
            ColType::Int64 => DataType::Int64,
            ColType::Int32 => DataType::Int32,
            ColType::Bool => DataType::Boolean,
            ColType::Float64 => DataType::Float64,
            ColType::TimestampUs => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(TIMEZONE.into()))
            }
            ColType::DictUtf8 => {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
            }
            ColType::Utf8 => DataType::Utf8,
            ColType::ListUtf8 => {
                DataType::List(Arc::new(Field::new(LIST_ITEM, DataType::Utf8, false)))
            }
        }
    }

    /// The name shown in `streamscope schema` and `docs/schema.md` (pyarrow's spelling).
    pub fn name(self) -> &'static str {
        match self {
            ColType::Int64 => "int64",
            ColType::Int32 => "int32",
            ColType::Bool => "bool",
            ColType::Float64 => "double",
            ColType::TimestampUs => "timestamp[us, UTC]",
            ColType::DictUtf8 => "dictionary<int32, string>",
            ColType::Utf8 => "string",
            ColType::ListUtf8 => "list<string>",
        }
    }

    /// The Arrow type exactly as pyarrow prints it (`str(field.type)`), which is also what
    /// a client sees when it opens the file: `streamscope schema --json` reports this.
    pub fn arrow_text(self) -> &'static str {
        match self {
            ColType::Int64 => "int64",
            ColType::Int32 => "int32",
            ColType::Bool => "bool",
            ColType::Float64 => "double",
            ColType::TimestampUs => "timestamp[us, tz=UTC]",
            ColType::DictUtf8 => "dictionary<values=string, indices=int32, ordered=0>",
            ColType::Utf8 => "string",
            ColType::ListUtf8 => "list<item: string not null>",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// snake_case name, with its unit as a suffix where it has one.
    pub name: &'static str,
    /// Type.
    pub ty: ColType,
    /// Whether the column may hold nulls; when it may, `meaning` says when.
    pub nullable: bool,
    /// What the value is: unit, direction, and when it is null.
    pub meaning: &'static str,
}

/// One table of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// Table name; the file is `<name>.parquet`.
    pub name: &'static str,
    /// What one row is.
    pub description: &'static str,
    /// The order of the rows in the file, as delivered by the pipeline (the writer keeps
    /// the order in which rows are pushed).
    pub sort: &'static str,
    /// The columns that carry min/max statistics (in each row group's metadata and in the
    /// page index): the ones the rows are ordered by, whose ranges let a reader skip row
    /// groups and pages. The others have none: their values span about the same range
    /// in every row group, so statistics would never skip anything, and computing them
    /// (a comparison per value and per string) took 8 % of a run's CPU time on a
    /// million flows.
    pub statistics: &'static [&'static str],
    /// The columns, in file order.
    pub columns: &'static [Column],
}

impl TableSpec {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

const fn col(name: &'static str, ty: ColType, nullable: bool, meaning: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable,
        meaning,
    }
}

use ColType::*;

/// The `flows` table.
pub const FLOWS: TableSpec = TableSpec {
    name: "flows",
    description: "One row per bidirectional flow (5-tuple plus VLAN tags), written when the \
                  flow ends. \"Up\" is client to server, \"down\" is server to client.",
    sort: "the order in which flows end (flows still open at the end of the input come last)",
    statistics: &["flow_id", "first_ts", "last_ts"],
    columns: FLOW_COLUMNS,
};

const FLOW_COLUMNS: &[Column] = &[
    col(
        "flow_id",
        Int64,
        false,
        "Flow identifier, unique within the run and assigned in order of the flows' first \
         packets; joins flow_bins.flow_id.",
    ),
    col(
        "first_ts",
        TimestampUs,
        false,
        "Capture time of the flow's first packet (floored to the microsecond).",
    ),
    col(
        "last_ts",
        TimestampUs,
        false,
        "Capture time of the flow's last packet (floored to the microsecond).",
    ),
    col(
        "duration_us",
        Int64,
        false,
        "last_ts minus first_ts, in microseconds; 0 for a flow of one packet.",
    ),
    col(
        "ip_version",
        Int32,
        false,
        "IP version of the flow: 4 or 6.",
    ),
    col(
        "protocol",
        Int32,
        false,
        "IANA protocol number of the transport (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...); for \
         IPv6 the header after any extension headers.",
    ),
    col(
        "client_addr",
        Utf8,
        false,
        "Client IP address as text: dotted quad for IPv4, RFC 5952 canonical form for IPv6; \
         for multicast, the group (standing for its receivers).",
    ),
    col(
        "client_port",
        Int32,
        true,
        "Client TCP or UDP port. Null for protocols without ports (ICMP, IGMP, ...).",
    ),
    col(
        "server_addr",
        Utf8,
        false,
        "Server IP address as text: dotted quad for IPv4, RFC 5952 canonical form for IPv6; \
         for multicast, the sender (head-end).",
    ),
    col(
        "server_port",
        Int32,
        true,
        "Server TCP or UDP port. Null for protocols without ports (ICMP, IGMP, ...).",
    ),
    col(
        "server_name",
        Utf8,
        true,
        "The name the most recent DNS answer in the capture at or before first_ts gave for \
         server_addr (the question's name, lower-case, not the end of its CNAME chain; an \
         answer whose TTL ran out still counts when no current one does). Null when no \
         answer in the capture named the address.",
    ),
    col(
        "vlan",
        Int32,
        true,
        "VLAN ID (0-4095) of the outer IEEE 802.1Q tag of the flow's packets. Null when \
         untagged.",
    ),
    col(
        "vlan_inner",
        Int32,
        true,
        "VLAN ID of the inner tag of a double-tagged (IEEE 802.1ad QinQ) flow. Null unless \
         double-tagged.",
    ),
    col(
        "client_rule",
        DictUtf8,
        false,
        "How the client side was decided: syn (sender of the TCP SYN), multicast (the destination \
         is a multicast or broadcast address: the sender is the server, the group the client, \
         so a channel's traffic is downstream), well_known_port (the other side uses a well-known \
         or registered service port), ephemeral_port (the client uses an ephemeral port, \
         32768 and above, the server does not), first_sender (no rule applied: sender of the \
         first packet seen).",
    ),
    col("packets_up", Int64, false, "Packets from client to server."),
    col(
        "packets_down",
        Int64,
        false,
        "Packets from server to client.",
    ),
    col(
        "bytes_up",
        Int64,
        false,
        "Bytes from client to server, counted as the original frame length on the wire \
         (link-layer header included, full length even when the capture truncated the frame).",
    ),
    col(
        "bytes_down",
        Int64,
        false,
        "Bytes from server to client, counted as the original frame length on the wire \
         (link-layer header included, full length even when the capture truncated the frame).",
    ),
    col(
        "payload_bytes_up",
        Int64,
        false,
        "Transport payload bytes from client to server: bytes after the TCP or UDP header \
         (after the IP header for other protocols), retransmissions included.",
    ),
    col(
        "payload_bytes_down",
        Int64,
        false,
        "Transport payload bytes from server to client: bytes after the TCP or UDP header \
         (after the IP header for other protocols), retransmissions included.",
    ),
    col(
        "syn_seen",
        Bool,
        true,
        "TCP: the client's SYN was captured. Null for non-TCP flows.",
    ),
    col(
        "handshake_seen",
        Bool,
        true,
        "TCP: the three-way handshake (SYN, SYN-ACK, ACK; RFC 9293 section 3.5) was captured \
         completely. Null for non-TCP flows.",
    ),
    col(
        "handshake_rtt_us",
        Int64,
        true,
        "TCP: time from the client's SYN to its ACK of the server's SYN-ACK as seen at the \
         capture point (the round trips on both sides of it), in microseconds, floored. Null \
         for non-TCP flows and when the handshake was not seen.",
    ),
    col(
        "retransmitted_packets_up",
        Int64,
        true,
        "TCP: packets from client to server whose sequence range had already been seen \
         (retransmissions). Null for non-TCP flows.",
    ),
    col(
        "retransmitted_packets_down",
        Int64,
        true,
        "TCP: packets from server to client whose sequence range had already been seen \
         (retransmissions). Null for non-TCP flows.",
    ),
    col(
        "fin_up",
        Bool,
        true,
        "TCP: the client sent a FIN. Null for non-TCP flows.",
    ),
    col(
        "fin_down",
        Bool,
        true,
        "TCP: the server sent a FIN. Null for non-TCP flows.",
    ),
    col(
        "rst_seen",
        Bool,
        true,
        "TCP: a RST was seen in either direction. Null for non-TCP flows.",
    ),
    col(
        "end_reason",
        DictUtf8,
        false,
        "Why the flow ended: rst (TCP, a RST was seen), fin (TCP, either side sent a FIN and \
         no RST was seen; not for evicted flows), idle (no packet for the idle timeout), \
         capture_end (still open when the input ended), evicted (removed to keep the flow \
         table within its bound).",
    ),
    col(
        "bins",
        Int64,
        false,
        "Number of time bins the flow spans, from the bin of first_ts to the bin of last_ts \
         inclusive (the bin width is in run.json); bins without traffic count, although \
         flow_bins has no row for them.",
    ),
    col(
        "bitrate_down_p50_bps",
        Int64,
        true,
        "Median over the bins the flow spans of the server-to-client bitrate (bytes_down * 8 \
         / bin width), in bit/s; nearest rank, bins without traffic count as 0, exact up to \
         64 bins with traffic and within 1 % beyond. Null when no bin was summarized.",
    ),
    col(
        "bitrate_down_p95_bps",
        Int64,
        true,
        "95th percentile (nearest rank) over the bins the flow spans of the server-to-client \
         bitrate, in bit/s, computed as for bitrate_down_p50_bps. Null when no bin was \
         summarized.",
    ),
    col(
        "bitrate_down_max_bps",
        Int64,
        true,
        "Highest server-to-client bitrate of the flow's bins, in bit/s (exact). Null when no \
         bin was summarized.",
    ),
    col(
        "class",
        DictUtf8,
        false,
        "What the flow carries, payload evidence first, shape second: iptv_multicast \
         (MPEG-TS, in UDP or RTP, to a multicast group), iptv_unicast (MPEG-TS to one host: \
         UDP, RTP, or RTSP-interleaved TCP), rtp_media (RTP streams that are not MPEG-TS), \
         tls_streaming / quic_streaming (TLS records or a QUIC Initial, and at least three \
         inferred segments received during at most half the time they span), tls_other, \
         quic_other, dns (port 53 with DNS messages read), other (no evidence).",
    ),
    col(
        "class_evidence",
        DictUtf8,
        false,
        "How class was decided, e.g. \"mpeg-ts in rtp to a multicast group\" (the rows of \
         ts_streams, rtp_streams and segments for the flow hold the figures).",
    ),
    col(
        "service",
        DictUtf8,
        false,
        "The flow's service key: for a flow to a multicast group the group; else the \
         registered domain (Public Suffix List) of the SNI, else of the HTTP host, else of \
         server_name; else the server's prefix (IPv4 /24, IPv6 /48).",
    ),
    col(
        "service_source",
        DictUtf8,
        false,
        "Where service came from: group, sni, http_host, dns or prefix.",
    ),
    col(
        "http_host",
        DictUtf8,
        true,
        "The first HTTP Host header of an HTTP flow in clear. Null for other flows.",
    ),
    col(
        "sni",
        DictUtf8,
        true,
        "The server name of the flow's TLS ClientHello, or of the ClientHello in its QUIC \
         v1/v2 Initial packets (decrypted with the Initial keys, RFC 9001 / RFC 9369), \
         lower-case. Null when there is none.",
    ),
    col(
        "alpn",
        ListUtf8,
        true,
        "The ALPN protocols that ClientHello offered (h2, http/1.1, h3, ...). Null \
         without a ClientHello.",
    ),
    col(
        "tls_version",
        DictUtf8,
        true,
        "The TLS version: the ServerHello's choice, else the highest the ClientHello \
         offered (TLS 1.3 for QUIC). Null without a ClientHello.",
    ),
    col(
        "quic_version",
        DictUtf8,
        true,
        "The QUIC version of a QUIC flow's Initial packets (v1, v2; drafts and others by \
         name). Null for other flows.",
    ),
    col(
        "tls_offered_versions",
        ListUtf8,
        true,
        "The TLS versions the ClientHello offered (its supported_versions extension \
         without GREASE values, else its legacy version), highest first. Null without a \
         ClientHello.",
    ),
    col(
        "tls_app_records_up",
        Int64,
        true,
        "TLS application_data records the client sent, read whole from the in-order \
         stream (none of their bytes lost or cut off by the capture's end; in TLS 1.3 the \
         encrypted handshake counts too). Null unless the flow is TLS over TCP.",
    ),
    col(
        "tls_app_records_down",
        Int64,
        true,
        "TLS application_data records the server sent. Null unless the flow is TLS over \
         TCP.",
    ),
    col(
        "tls_app_bytes_up",
        Int64,
        true,
        "Length fields of the client's application_data records added up (ciphertext \
         bytes, record headers excluded). Null unless the flow is TLS over TCP.",
    ),
    col(
        "tls_app_bytes_down",
        Int64,
        true,
        "Length fields of the server's application_data records added up. Null unless \
         the flow is TLS over TCP.",
    ),
    col(
        "segments",
        Int64,
        true,
        "Media segments inferred on a TLS or QUIC flow (rows in segments). Null for other \
         flows.",
    ),
    col(
        "segment_median_bytes",
        Int64,
        true,
        "Median size of those segments, bytes. Null without segments.",
    ),
    col(
        "segment_median_interval_us",
        Int64,
        true,
        "Median time between their requests, µs. Null with fewer than two.",
    ),
    col(
        "segment_on_share",
        Float64,
        true,
        "Time receiving segments over the time they span (a player's ON/OFF ratio: low \
         for segmented streaming, 1 for a bulk download). Null with fewer than two.",
    ),
];

/// The `flow_bins` table.
pub const FLOW_BINS: TableSpec = TableSpec {
    name: "flow_bins",
    description: "One row per flow and time bin in which the flow had at least one packet: \
                  the bitrate time series. Bins are aligned to multiples of the bin width \
                  since the Unix epoch; the width is in run.json and in the file's key-value \
                  metadata (streamscope.bin_ns).",
    sort: "bin_start, flow_id",
    statistics: &["flow_id", "bin_start"],
    columns: FLOW_BIN_COLUMNS,
};

const FLOW_BIN_COLUMNS: &[Column] = &[
    col("flow_id", Int64, false, "The flow (flows.flow_id)."),
    col(
        "bin_start",
        TimestampUs,
        false,
        "Start of the time bin; the bin covers [bin_start, bin_start + bin width).",
    ),
    col(
        "packets_up",
        Int64,
        false,
        "Packets from client to server in the bin.",
    ),
    col(
        "packets_down",
        Int64,
        false,
        "Packets from server to client in the bin.",
    ),
    col(
        "bytes_up",
        Int64,
        false,
        "Bytes from client to server in the bin, counted as the original frame length on the \
         wire.",
    ),
    col(
        "bytes_down",
        Int64,
        false,
        "Bytes from server to client in the bin, counted as the original frame length on the \
         wire.",
    ),
    col(
        "bitrate_down_bps",
        Int64,
        false,
        "Server-to-client bitrate in the bin: bytes_down * 8 / bin width in seconds, in bit/s, \
         floored; a bin cut short by the start or end of the capture is still divided by the \
         full width.",
    ),
    col(
        "ts_packets",
        Int64,
        false,
        "MPEG-TS packets of the flow in the bin (0 for flows without MPEG-TS).",
    ),
    col(
        "ts_cc_errors",
        Int64,
        false,
        "Continuity-counter errors (TR 101 290 Continuity_count_error) in the bin.",
    ),
    col(
        "ts_lost_packets",
        Int64,
        false,
        "TS packets missing by the continuity counters in the bin.",
    ),
    col(
        "ts_transport_errors",
        Int64,
        false,
        "TS packets with the transport error indicator in the bin.",
    ),
    col(
        "ts_pcr_errors",
        Int64,
        false,
        "PCR repetition, discontinuity and accuracy errors in the bin.",
    ),
    col(
        "ts_df_ms",
        Float64,
        true,
        "MDI delay factor over the bin (RFC 4445), ms. Null without MPEG-TS or a PCR rate.",
    ),
    col(
        "rtp_packets",
        Int64,
        false,
        "RTP packets of the flow in the bin.",
    ),
    col(
        "rtp_lost",
        Int64,
        false,
        "RTP packets lost in the bin: expected less received since the previous bin \
         (RFC 3550 A.3; negative when duplicates outnumber losses).",
    ),
    col("rtp_duplicates", Int64, false, "RTP duplicates in the bin."),
    col(
        "rtp_reordered",
        Int64,
        false,
        "RTP packets out of order in the bin.",
    ),
    col(
        "rtp_max_jitter_ms",
        Float64,
        true,
        "Largest RTP interarrival jitter in the bin, ms. Null without RTP of known clock rate.",
    ),
];

/// The `dns` table.
pub const DNS: TableSpec = TableSpec {
    name: "dns",
    description: "One row per DNS exchange (unicast DNS, port 53, over UDP or TCP): a query \
                  with its response, a query no response came for (response columns null), \
                  or a response without its query (query columns null). Written when the \
                  exchange is complete: at the response, when the query times out (5 s), or \
                  when its flow ends.",
    sort: "the order in which exchanges complete",
    statistics: &["query_ts", "response_ts"],
    columns: DNS_COLUMNS,
};

const DNS_COLUMNS: &[Column] = &[
    col(
        "query_ts",
        TimestampUs,
        true,
        "Capture time of the query (its first copy). Null for a response whose query was \
         not seen.",
    ),
    col(
        "response_ts",
        TimestampUs,
        true,
        "Capture time of the response. Null when none came.",
    ),
    col(
        "flow_id",
        Int64,
        false,
        "The flow carrying the exchange (flows.flow_id).",
    ),
    col("protocol", Int32, false, "17 (UDP) or 6 (TCP)."),
    col(
        "client_addr",
        Utf8,
        false,
        "Address that sent the query, as text (dotted quad, RFC 5952).",
    ),
    col("client_port", Int32, false, "Port that sent the query."),
    col(
        "server_addr",
        DictUtf8,
        false,
        "Address the query went to (the resolver), as text.",
    ),
    col("server_port", Int32, false, "Port the query went to (53)."),
    col("id", Int32, false, "Transaction id (0-65535)."),
    col(
        "name",
        Utf8,
        true,
        "The (first) question's name, lower-case, without the trailing dot. Null when the \
         question could not be read.",
    ),
    col(
        "qtype",
        DictUtf8,
        true,
        "The question's type by its name (A, AAAA, CNAME, HTTPS, ...; TYPEn for others). \
         Null when the question could not be read.",
    ),
    col(
        "rcode",
        DictUtf8,
        true,
        "Response code by name (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...; RCODEn for \
         others). Null when no response came.",
    ),
    col(
        "answers",
        Int32,
        true,
        "Records in the response's answer section. Null when no response came.",
    ),
    col(
        "addresses",
        ListUtf8,
        false,
        "A and AAAA addresses answered for the question's name or its CNAME chain, in \
         order, as text. Empty when none.",
    ),
    col(
        "cnames",
        ListUtf8,
        false,
        "The CNAME chain from the question's name, lower-case, in order. Empty when none.",
    ),
    col(
        "min_ttl_s",
        Int64,
        true,
        "Smallest TTL of the answer records on the chain, in seconds. Null without answers.",
    ),
    col(
        "latency_us",
        Int64,
        true,
        "response_ts minus query_ts, in microseconds. Null unless both were seen.",
    ),
    col(
        "retransmissions",
        Int32,
        false,
        "Further copies of the query seen while it waited (latency counts from the first).",
    ),
    col(
        "truncated",
        Bool,
        false,
        "The response had the TC bit set (the client should retry over TCP).",
    ),
    col(
        "malformed",
        Bool,
        false,
        "The message did not parse whole: the row holds what could be read.",
    ),
    col(
        "outcome",
        DictUtf8,
        false,
        "answered, timeout (no response within 5 s), flow_end (the flow ended first), \
         evicted (too many queries in flight on the flow) or response_only.",
    ),
];

/// The `multicast_events` table.
pub const MULTICAST_EVENTS: TableSpec = TableSpec {
    name: "multicast_events",
    description: "One row per IGMP (v1, v2, v3) or MLD (v1, v2) message, and for an IGMPv3 \
                  or MLDv2 report one row per group record (its rows share ts and host). \
                  Other protocols riding in IGMP (DVMRP, PIMv1, RGMP, mtrace) keep a row \
                  with kind `other`. Messages that do not parse at all are only counted \
                  (run.json).",
    sort: "capture order",
    statistics: &["ts"],
    columns: MULTICAST_EVENT_COLUMNS,
};

const MULTICAST_EVENT_COLUMNS: &[Column] = &[
    col("ts", TimestampUs, false, "Capture time of the message."),
    col(
        "flow_id",
        Int64,
        false,
        "The flow carrying the message (flows.flow_id; IGMP and ICMPv6 flows are per host \
         pair).",
    ),
    col(
        "host_addr",
        Utf8,
        false,
        "IP source: the host reporting or leaving, or the querier, as text.",
    ),
    col(
        "destination_addr",
        DictUtf8,
        false,
        "IP destination: the group, all-hosts, all-routers, or the v3 / MLDv2 report address.",
    ),
    col("protocol", DictUtf8, false, "igmp or mld."),
    col(
        "version",
        DictUtf8,
        true,
        "igmp1, igmp2, igmp3, mld1 or mld2 (a query's version from its length and \
         maximum response code, RFC 3376 section 7.1). Null for kind other.",
    ),
    col(
        "kind",
        DictUtf8,
        false,
        "query, report (a join or refresh, or a v3 / MLDv2 record), leave (IGMPv2 leave, \
         MLDv1 done) or other.",
    ),
    col("message_type", Int32, false, "The type byte."),
    col(
        "other_protocol",
        DictUtf8,
        true,
        "For kind other: dvmrp, pim1, cisco_trace, mtrace, router_discovery, rgmp or \
         unknown. Null otherwise.",
    ),
    col(
        "group_addr",
        DictUtf8,
        true,
        "The group: the message's, or the record's for a v3 / MLDv2 report. Null for a \
         general query and for other messages.",
    ),
    col(
        "record_type",
        DictUtf8,
        true,
        "Group record type of a v3 / MLDv2 report: mode_is_include, mode_is_exclude, \
         change_to_include, change_to_exclude, allow_new_sources, block_old_sources \
         (RFC 3376 section 4.2.12). Null otherwise.",
    ),
    col(
        "sources",
        ListUtf8,
        false,
        "The record's source addresses (a group-and-source query's for a query), as text; \
         empty when none.",
    ),
    col(
        "max_resp_ms",
        Int64,
        true,
        "A query's maximum response time, ms. Null for other messages.",
    ),
    col(
        "checksum_ok",
        Bool,
        false,
        "The message's checksum is right (the row is kept either way).",
    ),
    col(
        "malformed",
        Bool,
        false,
        "The message's group records were cut by the capture or by a wrong length: the \
         rows are the records read before the cut.",
    ),
];

/// The `channel_sessions` table.
pub const CHANNEL_SESSIONS: TableSpec = TableSpec {
    name: "channel_sessions",
    description: "One row per multicast membership seen in IGMP / MLD: a host joined to a \
                  group (to one source of it for a source-specific join), from the report \
                  that joined it to its leave, its timeout (no report for the membership \
                  interval, 260 s: RFC 3376 section 8.4) or the capture's end, with what the \
                  group sent on the capture link meanwhile. Written when the session ends.",
    sort: "the order in which sessions end",
    statistics: &["join_ts", "leave_ts"],
    columns: CHANNEL_SESSION_COLUMNS,
};

const CHANNEL_SESSION_COLUMNS: &[Column] = &[
    col(
        "host_addr",
        Utf8,
        false,
        "The member host (its reports' IP source), as text.",
    ),
    col(
        "group_addr",
        DictUtf8,
        false,
        "The group (the channel), as text.",
    ),
    col(
        "source_addr",
        DictUtf8,
        true,
        "The source of a source-specific membership (SSM). Null for any source.",
    ),
    col(
        "version",
        DictUtf8,
        false,
        "Version of the joining message: igmp1, igmp2, igmp3, mld1 or mld2.",
    ),
    col(
        "join_ts",
        TimestampUs,
        false,
        "Time of the report that joined.",
    ),
    col(
        "last_report_ts",
        TimestampUs,
        false,
        "Time of the last report that joined or refreshed the membership.",
    ),
    col(
        "leave_ts",
        TimestampUs,
        false,
        "End of the session: the leave, the last report plus the membership interval \
         (timeout), or the capture's last packet.",
    ),
    col(
        "end_reason",
        DictUtf8,
        false,
        "leave, timeout, capture_end, or replaced (the host changed filter mode: an \
         EXCLUDE record ended its source-specific sessions of the group, or an INCLUDE \
         change with sources its any-source session).",
    ),
    col("duration_s", Float64, false, "leave_ts - join_ts, seconds."),
    col(
        "reports",
        Int64,
        false,
        "Reports that joined or refreshed it.",
    ),
    col(
        "first_packet_ts",
        TimestampUs,
        true,
        "The group's (source's) first UDP packet on the capture link at or after the \
         join, before the end. Null when none came.",
    ),
    col(
        "zap_ms",
        Float64,
        true,
        "Zap time: first_packet_ts - join_ts, ms. Null when no packet came.",
    ),
    col(
        "packets",
        Int64,
        false,
        "The group's (source's) UDP packets between join and end. On a shared link every \
         host joined to a group sees the same packets: each session counts them.",
    ),
    col("bytes", Int64, false, "Their UDP payload bytes."),
    col(
        "mean_bitrate_bps",
        Int64,
        true,
        "bytes × 8 / duration, bit/s, rounded. Null for a zero duration.",
    ),
];

/// The `ts_streams` table.
pub const TS_STREAMS: TableSpec = TableSpec {
    name: "ts_streams",
    description: "One row per flow that carried MPEG-TS (ISO/IEC 13818-1): the multiplex's \
                  packets, PCR-derived bitrate, MDI (RFC 4445) and ETSI TR 101 290 priority 1 \
                  and 2 counters, by the standard's names as TSDuck prints them. Written when \
                  the flow ends. Per-PID figures are in ts_pids.",
    sort: "the order in which flows end",
    statistics: &["flow_id"],
    columns: TS_STREAM_COLUMNS,
};

const TS_STREAM_COLUMNS: &[Column] = &[
    col("flow_id", Int64, false, "The flow that carried the multiplex (flows.flow_id)."),
    col(
        "carrier",
        DictUtf8,
        false,
        "How the TS came: udp (TS packets straight in UDP), rtp (RFC 2250) or \
         rtsp_interleaved (RTSP-interleaved frames on TCP).",
    ),
    col("first_ts", TimestampUs, true, "Time of the first TS packet. Null when no packet was whole."),
    col("last_ts", TimestampUs, true, "Time of the last TS packet. Null when no packet was whole."),
    col(
        "packet_len",
        Int32,
        true,
        "TS packet length: 188, or 204 with 16 Reed-Solomon bytes. Null when no packet was whole.",
    ),
    col("packets", Int64, false, "TS packets read."),
    col(
        "null_share",
        Float64,
        true,
        "Share of null packets (PID 0x1FFF): the multiplex's stuffing. Null without packets.",
    ),
    col("pids", Int64, false, "Distinct PIDs seen."),
    col("programs", Int64, false, "Programs in the PAT."),
    col("pcr_pid", Int32, true, "The PID whose PCRs time the multiplex (the first seen). Null without PCRs."),
    col(
        "bitrate_bps",
        Int64,
        true,
        "Multiplex bitrate from the PCRs: bytes between PCRs of pcr_pid over PCR time, bit/s, rounded. \
         Null with fewer than two PCRs.",
    ),
    col(
        "pcr_jitter_ms",
        Float64,
        true,
        "PCR jitter against capture time (drift removed, max - min), ms: includes the \
         capture's own timestamp error (see ts_resolution_ns; software timestamps give \
         tens of µs), so it bounds the stream's jitter from above. Null without PCRs.",
    ),
    col(
        "ts_resolution_ns",
        Int64,
        false,
        "The capture timestamps' resolution assumed for the jitter figures, ns.",
    ),
    col(
        "df_max_ms",
        Float64,
        true,
        "Largest MDI delay factor (RFC 4445) over one-second intervals, ms: the virtual \
         buffer (bytes arrived less the PCR rate × time) max - min over the interval, over \
         the rate. Null without a PCR rate.",
    ),
    col(
        "lost_packets",
        Int64,
        false,
        "TS packets missing by the continuity counters.",
    ),
    col(
        "mlr_pps",
        Float64,
        true,
        "MDI media loss rate over the stream: lost_packets per second. Null for a stream of no duration.",
    ),
    col(
        "ts_sync_loss",
        Int64,
        false,
        "TS_sync_loss (1.1): sync lost in a byte stream (two or more bad sync bytes in a row).",
    ),
    col(
        "sync_byte_error",
        Int64,
        false,
        "Sync_byte_error (1.2): packets whose first byte is not 0x47.",
    ),
    col(
        "pat_error_2",
        Int64,
        false,
        "PAT_error_2 (1.3.a): PID 0 without a PAT section for over 500 ms, or with another table id, or scrambled.",
    ),
    col(
        "continuity_count_error",
        Int64,
        false,
        "Continuity_count_error (1.4): continuity-counter discontinuities (one duplicate allowed; packets without payload do not advance; the discontinuity indicator honoured; the null PID not checked).",
    ),
    col(
        "pmt_error_2",
        Int64,
        false,
        "PMT_error_2 (1.5.a): a PMT PID without its section for over 500 ms, or scrambled.",
    ),
    col(
        "pid_error",
        Int64,
        false,
        "PID_error (1.6): a PID a PMT lists not seen for 5 s.",
    ),
    col(
        "transport_error",
        Int64,
        false,
        "Transport_error (2.1): packets with the transport error indicator set.",
    ),
    col(
        "crc_error",
        Int64,
        false,
        "CRC_error (2.2): PAT / PMT sections with a wrong CRC-32.",
    ),
    col(
        "pcr_repetition_error",
        Int64,
        false,
        "PCR_repetition_error (2.3.a): more than 40 ms between PCRs of a PCR PID (capture time).",
    ),
    col(
        "pcr_discontinuity_indicator_error",
        Int64,
        false,
        "PCR_discontinuity_indicator_error (2.3.b): PCR jumps of over 100 ms, or backwards, without the discontinuity indicator.",
    ),
    col(
        "pcr_accuracy_error",
        Int64,
        false,
        "PCR_accuracy_error (2.4): PCRs more than 500 ns off the value the multiplex rate and their position give (meaningful on a constant-rate multiplex).",
    ),
    col(
        "pts_error",
        Int64,
        false,
        "PTS_error (2.5): more than 700 ms between PTSs of a PID whose PES headers are in clear.",
    ),
];

/// The `ts_pids` table.
pub const TS_PIDS: TableSpec = TableSpec {
    name: "ts_pids",
    description: "One row per flow and MPEG-TS PID: what the PID carries (from the PAT and \
                  PMT), its packets and its continuity and PCR figures. Written when the \
                  flow ends.",
    sort: "flow_id, then PIDs in order of first appearance",
    statistics: &["flow_id"],
    columns: TS_PID_COLUMNS,
};

const TS_PID_COLUMNS: &[Column] = &[
    col(
        "flow_id",
        Int64,
        false,
        "The flow that carried the PID (flows.flow_id).",
    ),
    col("pid", Int32, false, "The PID (0-8191)."),
    col(
        "kind",
        DictUtf8,
        false,
        "What it carries: pat, pmt, null, or the stream's label from its PMT stream type \
         and descriptors (h264, hevc, mpeg2_video, aac, ac3, ...), or unreferenced.",
    ),
    col(
        "program",
        Int32,
        true,
        "Program number whose PMT lists it. Null when no PMT lists it.",
    ),
    col(
        "stream_type",
        Int32,
        true,
        "PMT stream_type. Null when no PMT lists it.",
    ),
    col("packets", Int64, false, "Packets."),
    col("cc_errors", Int64, false, "Continuity-counter errors."),
    col(
        "lost_packets",
        Int64,
        false,
        "Packets missing by the continuity counter.",
    ),
    col(
        "duplicates",
        Int64,
        false,
        "Duplicate packets (allowed once).",
    ),
    col(
        "transport_errors",
        Int64,
        false,
        "Packets with the transport error indicator.",
    ),
    col(
        "scrambled_packets",
        Int64,
        false,
        "Packets with scrambling control set.",
    ),
    col("pcr_count", Int64, false, "PCRs carried."),
    col(
        "pcr_interval_min_ms",
        Float64,
        true,
        "Shortest capture-time gap between PCRs, ms. Null with fewer than two PCRs.",
    ),
    col(
        "pcr_interval_max_ms",
        Float64,
        true,
        "Longest capture-time gap between PCRs, ms. Null with fewer than two PCRs.",
    ),
    col(
        "pcr_repetition_errors",
        Int64,
        false,
        "Gaps between PCRs over 40 ms.",
    ),
    col(
        "pcr_discontinuity_errors",
        Int64,
        false,
        "PCR jumps without the discontinuity indicator.",
    ),
    col(
        "pcr_accuracy_errors",
        Int64,
        false,
        "PCRs more than 500 ns off.",
    ),
    col("pts_errors", Int64, false, "Gaps between PTSs over 700 ms."),
];

/// The `rtp_streams` table.
pub const RTP_STREAMS: TableSpec = TableSpec {
    name: "rtp_streams",
    description: "One row per RTP stream (RFC 3550): a flow direction and SSRC, found by \
                  validating headers (version 2, plausible payload type, sequence numbers \
                  following on), not by port. Loss and jitter as RFC 3550 appendices A.1 \
                  and A.8 compute them. Written when the flow ends.",
    sort: "the order in which flows end",
    statistics: &["flow_id"],
    columns: RTP_STREAM_COLUMNS,
};

const RTP_STREAM_COLUMNS: &[Column] = &[
    col("flow_id", Int64, false, "The flow that carried the stream (flows.flow_id)."),
    col(
        "direction",
        DictUtf8,
        false,
        "up (client to server) or down.",
    ),
    col(
        "ssrc",
        Int64,
        false,
        "Synchronisation source (0 to 2^32 - 1).",
    ),
    col("first_ts", TimestampUs, false, "Time of the first packet."),
    col("last_ts", TimestampUs, false, "Time of the last packet."),
    col(
        "payload_type",
        Int32,
        false,
        "Payload type of the first packet.",
    ),
    col(
        "clock_rate_hz",
        Int64,
        true,
        "RTP clock rate: RFC 3551's for static types, else estimated from timestamps \
         against capture time (see clock_rate_source). Null when unknown.",
    ),
    col(
        "clock_rate_source",
        DictUtf8,
        false,
        "static, estimated or unknown.",
    ),
    col("packets", Int64, false, "Packets, duplicates included."),
    col(
        "bytes",
        Int64,
        false,
        "UDP payload bytes (RTP headers included).",
    ),
    col(
        "expected",
        Int64,
        false,
        "Expected packets: extended highest sequence number - first + 1 (A.1).",
    ),
    col(
        "lost",
        Int64,
        false,
        "expected - packets (negative when duplicates outnumber losses, as RFC 3550 says).",
    ),
    col(
        "duplicates",
        Int64,
        false,
        "Packets whose sequence number was seen already.",
    ),
    col(
        "reordered",
        Int64,
        false,
        "Packets arriving after a higher sequence number.",
    ),
    col(
        "sequence_errors",
        Int64,
        false,
        "Jumps of 3000 or more, or back by more than 100.",
    ),
    col(
        "mean_jitter_ms",
        Float64,
        true,
        "Mean interarrival jitter (A.8, at the clock rate), ms. Null when the rate is unknown.",
    ),
    col(
        "max_jitter_ms",
        Float64,
        true,
        "Largest interarrival jitter, ms. Null when the rate is unknown.",
    ),
    col(
        "max_delta_ms",
        Float64,
        true,
        "Largest gap between consecutive regular packets, ms (Wireshark's max delta). Null with one packet.",
    ),
    col(
        "mpeg_ts_packets",
        Int64,
        false,
        "Packets whose payload is MPEG-TS.",
    ),
];

/// The `segments` table.
pub const SEGMENTS: TableSpec = TableSpec {
    name: "segments",
    description: "One row per media segment: read from HTTP in clear (a response whose role \
                  is segment, with the duration and rendition its playlist advertised), or \
                  inferred from the shape of an encrypted flow (TLS or QUIC: a request-sized \
                  upstream burst starts a segment, which takes the downstream bytes until the \
                  next request; responses under 8 KiB are not segments). Written when the \
                  segment ends.",
    sort: "the order in which segments end",
    statistics: &["request_ts"],
    columns: SEGMENT_COLUMNS,
};

const SEGMENT_COLUMNS: &[Column] = &[
    col(
        "flow_id",
        Int64,
        false,
        "The flow that carried the segment (flows.flow_id).",
    ),
    col(
        "method",
        DictUtf8,
        false,
        "How the segment was found: http (a response in clear) or inferred (from packet \
         sizes and times of an encrypted flow).",
    ),
    col(
        "request_ts",
        TimestampUs,
        false,
        "Time of the request's first packet (for a response whose request was not seen, \
         of its first byte).",
    ),
    col(
        "first_byte_ts",
        TimestampUs,
        false,
        "Time of the segment's first downstream byte.",
    ),
    col(
        "last_byte_ts",
        TimestampUs,
        false,
        "Time of its last downstream byte.",
    ),
    col(
        "request_bytes",
        Int64,
        true,
        "Upstream payload bytes of the request burst (TLS records or QUIC packets \
         included). Null for http.",
    ),
    col(
        "bytes",
        Int64,
        false,
        "The segment's bytes: the response body for http; downstream payload bytes for \
         inferred (TLS records or QUIC packets included).",
    ),
    col(
        "packets",
        Int64,
        true,
        "Downstream packets with payload. Null for http.",
    ),
    col(
        "download_us",
        Int64,
        false,
        "Time from the request to the last byte, µs.",
    ),
    col(
        "throughput_bps",
        Int64,
        true,
        "bytes × 8 over the time from the first to the last byte, bit/s. Null when they \
         came at once.",
    ),
    col(
        "duration_s",
        Float64,
        true,
        "The media duration the playlist advertised for it (EXTINF, or the DASH template \
         or timeline), s. Null when unknown, and for inferred.",
    ),
    col(
        "bitrate_bps",
        Int64,
        true,
        "bytes × 8 / duration_s, bit/s: the rendition's real bitrate. Null without a \
         duration or a complete body.",
    ),
    col(
        "rendition_bandwidth_bps",
        Int64,
        true,
        "The advertised bandwidth of its rendition (HLS BANDWIDTH, DASH bandwidth). Null \
         when unknown.",
    ),
    col(
        "rendition_resolution",
        DictUtf8,
        true,
        "Its rendition's resolution, WIDTHxHEIGHT. Null when unknown.",
    ),
];

/// The `http` table.
pub const HTTP: TableSpec = TableSpec {
    name: "http",
    description: "One row per HTTP/1.x transaction in clear: a request with its response, a \
                  request no response came for, or a response whose request was not seen. \
                  Never a raw path or query: paths are templates (numbers {n}, long tokens \
                  {id}, the credential positions of IPTV panel URLs {cred}) and queries keep \
                  their parameter names only. Written when the transaction ends.",
    sort: "the order in which transactions end",
    statistics: &["request_ts"],
    columns: HTTP_COLUMNS,
};

const HTTP_COLUMNS: &[Column] = &[
    col(
        "flow_id",
        Int64,
        false,
        "The flow that carried the transaction (flows.flow_id).",
    ),
    col(
        "pairing",
        DictUtf8,
        false,
        "answered, request_only (no response seen) or response_only (its request not seen).",
    ),
    col(
        "request_ts",
        TimestampUs,
        true,
        "Time of the request's first byte. Null for response_only.",
    ),
    col(
        "response_ts",
        TimestampUs,
        true,
        "Time of the response's first byte. Null for request_only.",
    ),
    col(
        "response_end_ts",
        TimestampUs,
        true,
        "Time of the response's last byte read. Null for request_only.",
    ),
    col(
        "method",
        DictUtf8,
        true,
        "Request method. Null for response_only.",
    ),
    col(
        "host",
        DictUtf8,
        true,
        "Host header (or the absolute-form target's host), lower-case, without port. Null \
         when absent.",
    ),
    col(
        "path_template",
        DictUtf8,
        true,
        "The target's path as a template: numbers {n}, long tokens {id}, credential \
         positions {cred}. Null for response_only.",
    ),
    col(
        "extension",
        DictUtf8,
        true,
        "Extension of the path's last segment, lower-case (m3u8, ts, m4s, ...). Null when \
         it has none.",
    ),
    col(
        "query_names",
        DictUtf8,
        true,
        "The query's parameter names, sorted, joined by &. Null without a query.",
    ),
    col(
        "status",
        Int32,
        true,
        "Response status code. Null for request_only.",
    ),
    col(
        "content_type",
        DictUtf8,
        true,
        "Response Content-Type without parameters, lower-case. Null when absent.",
    ),
    col(
        "content_length",
        Int64,
        true,
        "Response Content-Length as declared. Null when absent.",
    ),
    col(
        "body_bytes",
        Int64,
        false,
        "Response body bytes read (chunked framing not counted).",
    ),
    col(
        "missing_bytes",
        Int64,
        false,
        "Response body bytes lost in capture gaps.",
    ),
    col(
        "transfer",
        DictUtf8,
        true,
        "How the body was delimited: none, length, chunked or close. Null for request_only.",
    ),
    col(
        "role",
        DictUtf8,
        false,
        "What was fetched: playlist (m3u8, mpd), segment (ts, m4s, mp4, aac, ... or their \
         content types), panel_api (get.php, player_api.php, ...), panel_stream (an IPTV \
         panel's /live/... stream) or other.",
    ),
    col(
        "complete",
        Bool,
        false,
        "The response body was read to its end, without a gap.",
    ),
    col(
        "duration_s",
        Float64,
        true,
        "A segment's advertised media duration (from a playlist seen on the flow), s. Null \
         when unknown.",
    ),
    col(
        "bitrate_bps",
        Int64,
        true,
        "body_bytes × 8 / duration_s for a complete segment, bit/s. Null otherwise.",
    ),
];

static TABLES: [TableSpec; 10] = [
    FLOWS,
    FLOW_BINS,
    DNS,
    MULTICAST_EVENTS,
    CHANNEL_SESSIONS,
    TS_STREAMS,
    TS_PIDS,
    RTP_STREAMS,
    SEGMENTS,
    HTTP,
];

/// Every table streamscope writes, in documentation order.
pub fn tables() -> &'static [TableSpec] {
    &TABLES
}

/// The Arrow schema of a table: its columns in order, with their types and nullability.
pub fn arrow_schema(t: &TableSpec) -> SchemaRef {
    let fields: Vec<Field> = t
        .columns
        .iter()
        .map(|c| Field::new(c.name, c.ty.arrow_type(), c.nullable))
        .collect();
    Arc::new(Schema::new(fields))
}

fn nullability(c: &Column) -> &'static str {
    if c.nullable {
        "null"
    } else {
        "not null"
    }
}

/// What `streamscope schema` prints: every table with its columns, types, nullability
/// and meanings, in aligned columns.
pub fn schema_text() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "streamscope tables, schema version {SCHEMA_VERSION}");
    for t in tables() {
        let name_w = t.columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let type_w = t
            .columns
            .iter()
            .map(|c| c.ty.name().len())
            .max()
            .unwrap_or(0);
        let null_w = "not null".len();
        let _ = writeln!(out);
        let _ = writeln!(out, "{}.parquet", t.name);
        let _ = writeln!(out, "  {}", t.description);
        let _ = writeln!(out, "  order: {}", t.sort);
        let _ = writeln!(out, "  min/max statistics: {}", t.statistics.join(", "));
        for c in t.columns {
            let _ = writeln!(
                out,
                "  {:name_w$}  {:type_w$}  {:null_w$}  {}",
                c.name,
                c.ty.name(),
                nullability(c),
                c.meaning,
            );
        }
    }
    out
}

/// What `streamscope schema --json` prints: an array with one object per table (`name`,
/// `description`, `sort`, `statistics`, `columns`), each column an object with `name`,
/// `type` (the Arrow type as pyarrow prints it, see [`ColType::arrow_text`]), `nullable`
/// and `meaning`. Clients check the files they open against it.
pub fn schema_json() -> serde_json::Value {
    use serde_json::json;
    let tables: Vec<serde_json::Value> = tables()
        .iter()
        .map(|t| {
            let columns: Vec<serde_json::Value> = t
                .columns
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "type": c.ty.arrow_text(),
                        "nullable": c.nullable,
                        "meaning": c.meaning,
                    })
                })
                .collect();
            json!({
                "name": t.name,
                "description": t.description,
                "sort": t.sort,
                "statistics": t.statistics,
                "columns": columns,
            })
        })
        .collect();
    serde_json::Value::Array(tables)
}

/// Escapes text for a Markdown table cell.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The content of `docs/schema.md`.
pub fn schema_markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "<!-- generated by `streamscope schema --markdown`, do not edit -->\n\n# Output tables\n\n",
    );
    let _ = writeln!(
        out,
        "Schema version {SCHEMA_VERSION}. Every table is a Parquet file `<table>.parquet` in \
         the output folder, next to `run.json`.\n"
    );
    out.push_str(
        "Conventions: timestamps are `timestamp[us, UTC]`; ids and counters are signed \
         `int64`; ports, VLAN IDs and protocol numbers are `int32`; low-cardinality strings \
         are dictionary-encoded; addresses are text (dotted quad, RFC 5952 for IPv6); lists \
         are `list<string>` whose items are never null; a value that does not apply is null \
         (an empty list is a list of nothing seen). \"Up\" is client to server, \"down\" server to client. \
         Files are zstd-compressed; integer and timestamp columns use Parquet's \
         `DELTA_BINARY_PACKED` encoding (Spark reads it with its vectorized reader from 3.3 \
         on). The columns a table's rows are ordered by carry min/max statistics, per row \
         group and in the page index, so that readers skip what a filter on them excludes; \
         the other columns carry none (their values span about the same range in every row \
         group, so statistics would not skip anything).\n",
    );
    for t in tables() {
        let _ = writeln!(out, "\n## `{}`\n", t.name);
        let _ = writeln!(out, "{}\n", t.description);
        let _ = writeln!(out, "Row order: {}.\n", t.sort);
        let stats: Vec<String> = t.statistics.iter().map(|c| format!("`{c}`")).collect();
        let _ = writeln!(out, "Min/max statistics: {}.\n", stats.join(", "));
        out.push_str("| column | type | nullable | meaning |\n");
        out.push_str("|---|---|---|---|\n");
        for c in t.columns {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} |",
                c.name,
                c.ty.name(),
                if c.nullable { "yes" } else { "no" },
                md_cell(c.meaning),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Set `STREAMSCOPE_BLESS=1` to rewrite docs/schema.md instead of comparing.
    #[test]
    fn docs_schema_md_is_generated_from_the_specs() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.md");
        if std::env::var_os("STREAMSCOPE_BLESS").is_some() {
            std::fs::write(path, schema_markdown()).expect("write docs/schema.md");
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == schema_markdown(),
            "docs/schema.md is out of date: regenerate it with `streamscope schema --markdown \
             > docs/schema.md` (or run this crate's tests with STREAMSCOPE_BLESS=1)"
        );
    }

    #[test]
    fn every_column_follows_the_parquet_contract() {
        for t in tables() {
            let schema = arrow_schema(t);
            assert_eq!(schema.fields().len(), t.columns.len());
            let mut names = HashSet::new();
            for (f, c) in schema.fields().iter().zip(t.columns) {
                let what = format!("{}.{}", t.name, c.name);
                assert!(names.insert(c.name), "{what}: duplicate column");
                assert!(
                    !c.name.is_empty()
                        && c.name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                    "{what}: not snake_case"
                );
                assert_eq!(f.name(), c.name);
                assert_eq!(f.is_nullable(), c.nullable, "{what}");
                match f.data_type() {
                    DataType::Int64 | DataType::Int32 | DataType::Boolean | DataType::Utf8 => {}
                    DataType::Float64 => {}
                    DataType::Timestamp(unit, tz) => {
                        assert_eq!(*unit, TimeUnit::Microsecond, "{what}: timestamps are µs");
                        assert_eq!(tz.as_deref(), Some("UTC"), "{what}: timestamps are UTC");
                    }
                    DataType::Dictionary(k, v) => {
                        assert_eq!(**k, DataType::Int32, "{what}: dictionary keys are int32");
                        assert_eq!(**v, DataType::Utf8, "{what}: dictionary values are utf8");
                    }
                    DataType::List(item) => {
                        assert_eq!(item.data_type(), &DataType::Utf8, "{what}: lists of text");
                        assert!(!item.is_nullable(), "{what}: list items are never null");
                    }
                    other => panic!("{what}: type {other} is outside the contract"),
                }
                // Units in the name match the type.
                let counter = c.name.contains("bytes")
                    || c.name.contains("packets")
                    || c.name.ends_with("_us")
                    || c.name.ends_with("_bps")
                    || c.name.ends_with("_id");
                if counter {
                    assert_eq!(c.ty, Int64, "{what}: ids, counters and durations are int64");
                }
                if c.name.ends_with("_ts") || c.name.ends_with("_start") {
                    assert_eq!(c.ty, TimestampUs, "{what}: times are timestamps");
                }
                if c.name.ends_with("_port") || c.name.starts_with("vlan") {
                    assert_eq!(c.ty, Int32, "{what}: ports and VLAN IDs are int32");
                    // A flow's protocol may have no ports (DNS always has them).
                    if t.name != "dns" {
                        assert!(c.nullable, "{what}: null when it does not apply");
                    }
                }
                if c.name.ends_with("_addr") {
                    // Plain text, or dictionary-encoded text where few addresses repeat
                    // (resolvers).
                    assert!(
                        matches!(c.ty, Utf8 | DictUtf8),
                        "{what}: addresses are text"
                    );
                }
                if c.name.ends_with("_addrs") {
                    assert_eq!(
                        c.ty, ListUtf8,
                        "{what}: lists of addresses are lists of text"
                    );
                }
                // The meaning states the nullability rule.
                assert!(c.meaning.ends_with('.'), "{what}: meaning is a sentence");
                let says_null = c.meaning.contains("Null ");
                assert_eq!(
                    says_null, c.nullable,
                    "{what}: meaning must say when it is null"
                );
            }
        }
    }

    #[test]
    fn table_names_and_column_lists() {
        let names: Vec<_> = tables().iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "flows",
                "flow_bins",
                "dns",
                "multicast_events",
                "channel_sessions",
                "ts_streams",
                "ts_pids",
                "rtp_streams",
                "segments",
                "http"
            ]
        );
        let flows: Vec<_> = FLOWS.columns.iter().map(|c| c.name).collect();
        assert_eq!(
            flows,
            [
                "flow_id",
                "first_ts",
                "last_ts",
                "duration_us",
                "ip_version",
                "protocol",
                "client_addr",
                "client_port",
                "server_addr",
                "server_port",
                "server_name",
                "vlan",
                "vlan_inner",
                "client_rule",
                "packets_up",
                "packets_down",
                "bytes_up",
                "bytes_down",
                "payload_bytes_up",
                "payload_bytes_down",
                "syn_seen",
                "handshake_seen",
                "handshake_rtt_us",
                "retransmitted_packets_up",
                "retransmitted_packets_down",
                "fin_up",
                "fin_down",
                "rst_seen",
                "end_reason",
                "bins",
                "bitrate_down_p50_bps",
                "bitrate_down_p95_bps",
                "bitrate_down_max_bps",
                "class",
                "class_evidence",
                "service",
                "service_source",
                "http_host",
                "sni",
                "alpn",
                "tls_version",
                "quic_version",
                "tls_offered_versions",
                "tls_app_records_up",
                "tls_app_records_down",
                "tls_app_bytes_up",
                "tls_app_bytes_down",
                "segments",
                "segment_median_bytes",
                "segment_median_interval_us",
                "segment_on_share",
            ]
        );
        let bins: Vec<_> = FLOW_BINS.columns.iter().map(|c| c.name).collect();
        assert_eq!(
            bins,
            [
                "flow_id",
                "bin_start",
                "packets_up",
                "packets_down",
                "bytes_up",
                "bytes_down",
                "bitrate_down_bps",
                "ts_packets",
                "ts_cc_errors",
                "ts_lost_packets",
                "ts_transport_errors",
                "ts_pcr_errors",
                "ts_df_ms",
                "rtp_packets",
                "rtp_lost",
                "rtp_duplicates",
                "rtp_reordered",
                "rtp_max_jitter_ms",
            ]
        );
    }

    #[test]
    fn statistics_are_on_columns_the_rows_are_ordered_by() {
        for t in tables() {
            assert!(!t.statistics.is_empty(), "{}: no statistics", t.name);
            for name in t.statistics {
                assert!(
                    t.column(name).is_some(),
                    "{}.{name}: no such column",
                    t.name
                );
            }
        }
        // flow_bins is sorted by columns: each has statistics. flows is in order of end
        // time, which last_ts follows, with ids and first packets close behind.
        for key in FLOW_BINS.sort.split(", ") {
            assert!(FLOW_BINS.statistics.contains(&key), "flow_bins.{key}");
        }
        assert_eq!(FLOWS.statistics, ["flow_id", "first_ts", "last_ts"]);
    }

    #[test]
    fn schema_text_is_aligned_and_complete() {
        let text = schema_text();
        assert!(text.starts_with("streamscope tables, schema version 1\n"));
        for t in tables() {
            assert!(text.contains(&format!("\n{}.parquet\n", t.name)));
            // One line per column; within a table the type, nullability and meaning start
            // at the same offsets on every line.
            let mut offsets = HashSet::new();
            for c in t.columns {
                let line = text
                    .lines()
                    .find(|l| l.starts_with(&format!("  {} ", c.name)) && l.ends_with(c.meaning))
                    .unwrap_or_else(|| panic!("no line for {}.{}", t.name, c.name));
                let null = if c.nullable { " null " } else { " not null " };
                let ty = line.find(&format!("  {}  ", c.ty.name())).unwrap_or(0);
                let nl = line.find(null).unwrap_or(0);
                offsets.insert((ty, nl, line.len() - c.meaning.len()));
            }
            assert_eq!(
                offsets.len(),
                1,
                "{}: columns not aligned: {offsets:?}",
                t.name
            );
        }
    }

    #[test]
    fn schema_json_lists_every_column_with_its_client_type() {
        let v = schema_json();
        let arr = v.as_array().expect("an array of tables");
        assert_eq!(arr.len(), tables().len());
        for (jt, t) in arr.iter().zip(tables()) {
            assert_eq!(jt["name"], t.name);
            assert_eq!(jt["description"], t.description);
            assert_eq!(jt["sort"], t.sort);
            assert_eq!(jt["statistics"], serde_json::json!(t.statistics));
            let cols = jt["columns"].as_array().expect("columns");
            assert_eq!(cols.len(), t.columns.len(), "{}", t.name);
            for (jc, c) in cols.iter().zip(t.columns) {
                assert_eq!(jc["name"], c.name);
                assert_eq!(jc["type"], c.ty.arrow_text());
                assert_eq!(jc["nullable"], c.nullable);
                assert_eq!(jc["meaning"], c.meaning);
                assert_eq!(jc.as_object().map(|o| o.len()), Some(4));
            }
        }
        // Hand-checked spellings (pyarrow's `str(type)`).
        let flows = &arr[0]["columns"];
        let find = |name: &str| {
            flows
                .as_array()
                .and_then(|a| a.iter().find(|c| c["name"] == name))
                .cloned()
                .unwrap_or_else(|| panic!("flows.{name} missing"))
        };
        assert_eq!(find("first_ts")["type"], "timestamp[us, tz=UTC]");
        assert_eq!(find("first_ts")["nullable"], false);
        assert_eq!(
            find("client_rule")["type"],
            "dictionary<values=string, indices=int32, ordered=0>"
        );
        assert_eq!(find("client_port")["type"], "int32");
        assert_eq!(find("client_port")["nullable"], true);
        assert_eq!(find("client_addr")["type"], "string");
        assert_eq!(find("packets_up")["type"], "int64");
        assert_eq!(find("syn_seen")["type"], "bool");
        assert_eq!(arr[1]["name"], "flow_bins");
        assert_eq!(arr[1]["columns"][1]["type"], "timestamp[us, tz=UTC]");
        // The timestamp spelling follows the declared zone.
        assert!(ColType::TimestampUs.arrow_text().contains(TIMEZONE));
        // It serializes and parses back unchanged.
        let text = serde_json::to_string_pretty(&v).expect("serialize");
        let back: serde_json::Value = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, v);
    }

    #[test]
    fn markdown_has_the_generated_header_and_one_row_per_column() {
        let md = schema_markdown();
        assert!(md.starts_with("<!-- generated by `streamscope schema --markdown`, do not edit"));
        let rows = md.lines().filter(|l| l.starts_with("| `")).count();
        let cols: usize = tables().iter().map(|t| t.columns.len()).sum();
        assert_eq!(rows, cols);
        assert!(md.contains("| `first_ts` | `timestamp[us, UTC]` | no |"));
        assert!(md.contains("| `client_port` | `int32` | yes |"));
    }
}
