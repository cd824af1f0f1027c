//! The tables streamscope writes: the single source of truth for their columns.
//!
//! [`tables()`] lists every table with its columns, types, nullability and meaning. The
//! Arrow schema used by the writers ([`arrow_schema()`]), the output of
//! `streamscope schema` ([`schema_text`]) and `docs/schema.md` ([`schema_markdown`]) are
//! all derived from it, so they cannot drift apart. The flow tables and `dns` are
//! declared here, the IPTV and OTT tables in `media`.
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
        "What the flow carries, payload evidence first, shape second, ports last: \
         iptv_multicast (MPEG-TS, in UDP or RTP, to a multicast group), iptv_unicast \
         (MPEG-TS to one host: UDP, RTP, or RTSP-interleaved TCP), rtp_media (RTP streams \
         that are not MPEG-TS), hls (HLS or DASH playlists or media segments over HTTP), \
         http_ts (progressive MPEG-TS response bodies over HTTP: IPTV panels), \
         tls_streaming / quic_streaming (TLS records or a QUIC long header, and at least \
         three inferred segments received during at most half the time they span), \
         tls_other, quic_other (also TCP 443/8443 and UDP 443 with nothing read: refused \
         or reset connections), dns (port 53 with DNS messages read), other (no evidence).",
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
        "The server name of the flow's TLS ClientHello, of the ClientHello in its QUIC \
         Initial packets (v1, v2, drafts 23-34, mvfst 0xfaceb002/0xfaceb00e; decrypted \
         with the Initial keys, RFC 9001 / RFC 9369), or \
         of its gQUIC client hello (CHLO, in the clear up to Q043), lower-case. Null when \
         there is none.",
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
        "The QUIC version of a QUIC flow's first long header, or gQUIC public header: v1, \
         v2, draft-N, mvfst-0x…, gQUIC's Q0xx/T0xx. The Initials of v1, v2, drafts 23-34 \
         and mvfst 0xfaceb002/0xfaceb00e are opened for the SNI, gQUIC's client hello up to \
         Q043 is read in the clear. Null for other flows.",
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
        "ts_mlr_pps",
        Float64,
        true,
        "MDI media loss rate over the bin (RFC 4445): TS packets lost per second, from the \
         RTP sequence numbers when the TS comes in RTP (datagrams never received × TS packets \
         per datagram), else from the continuity counters. Null without MPEG-TS.",
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

mod media;
pub use media::{
    CHANNEL_SESSIONS, HTTP, MULTICAST_EVENTS, RTP_STREAMS, SEGMENTS, TS_PIDS, TS_STREAMS,
};

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
mod tests;
