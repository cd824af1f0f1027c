//! The IPTV and OTT tables' declarations: IGMP/MLD events and channel sessions, MPEG-TS
//! streams and PIDs, RTP streams, media segments and HTTP transactions.

use super::ColType::*;
use super::{col, Column, TableSpec};

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
        "rtp_lost_packets",
        Int64,
        true,
        "When carrier is rtp, the other view of the same loss, beside lost_packets: TS \
         packets missing by the RTP sequence numbers (datagrams never received × TS packets \
         per datagram), which see a PID's gap of 16 packets or more, where the continuity \
         counters cannot, and do not take a late datagram for a lost one. Null for other \
         carriers.",
    ),
    col(
        "mlr_pps",
        Float64,
        true,
        "MDI media loss rate over the stream, TS packets per second: from the RTP sequence numbers when carrier is rtp (lost datagrams × TS packets per datagram), else lost_packets per second (the continuity counters miss a PID's gap of 16 packets or more). Null for a stream of no duration.",
    ),
    col(
        "ts_sync_loss",
        Int64,
        false,
        "TS_sync_loss (1.1): sync lost, two or more bad sync bytes in a row (in a byte \
         stream, or in datagram slots across datagrams); once per run of them.",
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
        "PCR_accuracy_error (2.4): PCRs more than 500 ns off the value the multiplex rate and their position give. Checked on a constant-rate multiplex only, known by its null-packet stuffing (null_share > 0); a variable-rate one (HLS segments) has 0.",
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
    col(
        "flow_id",
        Int64,
        false,
        "The flow that carried the stream (flows.flow_id).",
    ),
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
        "Largest arrival gap before a regular packet, ms (Wireshark's max delta: packets out \
         of sequence or with another payload type are not regular). Null with one packet.",
    ),
    col(
        "max_gap_ms",
        Float64,
        true,
        "Largest arrival gap between consecutive packets of the stream, whatever they are, \
         ms: how long the picture could have frozen. Null with one packet.",
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
                  inferred from the shape of an encrypted flow (TLS or QUIC: an upstream burst \
                  that is request-sized or follows a downstream lull of 500 ms starts a \
                  segment, which takes the downstream bytes until the next request; \
                  responses under 8 KiB are not segments). Written when the segment ends.",
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
        "The media duration the playlist advertised for it: its own EXTINF or SegmentTimeline \
         S@d when the playlist listed it, else the mean of its rendition's (a DASH \
         SegmentTemplate@duration, segments past what was listed), s. Null when unknown, \
         and for inferred.",
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
        "A segment's advertised media duration (from a playlist seen in the run: its own \
         EXTINF or S@d when listed, else its rendition's mean), s. Null when unknown.",
    ),
    col(
        "bitrate_bps",
        Int64,
        true,
        "body_bytes × 8 / duration_s for a complete segment, bit/s. Null otherwise.",
    ),
];
