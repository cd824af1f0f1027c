//! RTP (RFC 3550) and RTCP over UDP: which flows carry RTP, found from their content, and
//! per source (SSRC) packets, loss, duplicates, reordering, sequence errors and
//! interarrival jitter.
//!
//! # What is here
//!
//! * [`RtpFlow`]: the RTP state of one UDP flow. Each datagram goes to
//!   [`RtpFlow::on_datagram`] with its direction and time; the answer ([`RtpOutcome`])
//!   says what it was and, for RTP, hands back the payload (after CSRCs, header extension
//!   and padding) with a flag telling whether it carries MPEG-TS, for the TS analyser.
//!   [`RtpFlow::streams`] gives a [`RtpStreamSummary`] per source,
//!   [`RtpFlow::take_interval`] the [`RtpIntervalCounters`] of a time bin,
//!   [`RtpFlow::stats`] what was read ([`RtpStats`]).
//! * [`static_clock_rate`]: the RFC 3551 clock rates of the static payload types.
//! * [`is_mpeg_ts_payload`]: whether a payload is whole 188-byte TS packets.
//!
//! # Detection
//!
//! No port decides. A datagram is an RTP candidate when it reads as an RTP header
//! (RFC 3550 section 5.1): version 2; at least 12 bytes plus 4 per CSRC, plus the header
//! extension when X is set (section 5.3.1); with P set, a padding count of at least 1 that
//! fits after the header; and a second byte (marker and payload type together) outside
//! 192–223, the range RFC 5761 section 4 leaves to RTCP (payload types 64–95 with the
//! marker; 72–76 are the classic clash with SR, RR, SDES, BYE and APP). Text protocols
//! (SIP, RTSP, HTTP, Megaco) never start with a version-2 byte (0x80–0xbf), nor do
//! MPEG-TS (0x47), STUN (0x00/0x01), DTLS (0x14–0x17) or QUIC (0x40–0x7f short header,
//! 0xc0–0xff long header).
//!
//! A candidate's source is confirmed by RFC 3550 appendix A.1's probation with
//! MIN_SEQUENTIAL = 2: a packet of the same SSRC and direction whose sequence number
//! follows that of the source's previous candidate. Until then candidates are held (their
//! header facts only: a fixed [`HELD_SLOTS`]-slot ring per direction, the oldest dropped
//! when full). On confirmation the source's held packets are replayed into the new stream
//! in arrival order, so a stream counts from its first packet, as Wireshark's
//! `rtp,streams` does (A.1 itself would count from the confirming packet). Every source
//! goes through probation, also in a direction that already has one.
//!
//! A direction with no confirmed source gives up after
//! [`RtpConfig::max_probe_candidates`] candidates (default 16) or
//! [`RtpConfig::max_probe_others`] datagrams that are neither candidates nor RTCP
//! (default 64: room for a STUN / DTLS handshake before the media): from then on its
//! datagrams are [`RtpOutcome::Ignored`]. Two random headers of one SSRC with consecutive
//! sequence numbers are what it takes to be fooled: DNS (its flags in the sequence
//! field, its counts in the SSRC) and QUIC do not do that.
//!
//! A datagram with a second byte in the RTCP range is RTCP when it is a valid compound
//! packet (appendix A.2, relaxed for RFC 5506 reduced-size RTCP): packets of version 2
//! with types 192–223 that chain by their length fields to exactly the datagram's end,
//! padding only in the last, SR and RR long enough for their report blocks. A sender
//! report's packet and octet counts, and a report block's fraction lost, cumulative lost
//! and jitter, are kept on the stream of this flow with the SSRC they name (RTCP
//! multiplexed on the RTP flow, RFC 5761); RTCP on its own port is a flow without RTP
//! streams, and is only counted ([`RtpStats`]).
//!
//! # Per stream
//!
//! A stream is one SSRC in one direction (Wireshark's (source, destination, SSRC) within
//! a 5-tuple). At most [`RtpConfig::max_streams_per_dir`] (default 16) per direction;
//! packets of further sources are counted in [`RtpStats::untracked`] only.
//!
//! * **Sequence** (appendix A.1): the extended highest sequence number follows 16-bit
//!   wrap-around; `expected` = extended highest − base + 1 and `lost` = expected −
//!   packets, signed: duplicates make it negative, as in Wireshark (which takes its
//!   highest from the last packet rather than the greatest; they differ when the last
//!   packet is late). A jump forward of [`MAX_DROPOUT`] or more, or back by more than
//!   [`MAX_MISORDER`], is a sequence error and the packet does not move the highest; a
//!   second packet following it resynchronises (A.1's `bad_seq`): a new epoch starts at
//!   the first of the two, the expected counts of the epochs add up. The packet of a
//!   sequence error that is not followed counts as received and not expected.
//! * **Duplicates and reordering**: a 128-bit window of the sequence numbers at and behind
//!   the highest. A packet equal to one in the window is a duplicate; one behind the
//!   highest and not in the window is reordered (late).
//! * **Jitter** (appendix A.8): for packet i after packet j,
//!   D = (R_i − R_j) − (S_i − S_j) / rate with the timestamp difference S_i − S_j read as
//!   a signed 32-bit number (a timestamp that goes back is a negative difference, not a
//!   4-billion jump), and J += (|D| − J) / 16, computed in f64 milliseconds from the
//!   capture's nanoseconds (A.8 converts arrival to timestamp units in integers; at 8 kHz
//!   that truncation alone is 0.125 ms, more than typical LAN jitter). As in Wireshark's
//!   RTP analysis (`ui/tap-rtp-analysis.c`), packet j is the previous packet whose
//!   timestamp was not behind its predecessor's, and packets whose payload type has no
//!   known clock rate leave J alone (but still become the reference). tshark 4.0 differs
//!   where such packets sit inside a stream: it judges "behind" against the stream's
//!   first timestamp and takes the timestamp reference from the last packet *with* a
//!   clock rate but the arrival reference from the last packet of any type
//!   (`tests/rtp_corpus.rs` models both and pins the streams where it matters).
//! * **Mean and max jitter, max delta** follow Wireshark so that the figures compare:
//!   they are taken over *regular* packets only: not the first, no marker bit (a talk
//!   spurt or a video frame starts, where a gap is by design), not comfort noise (payload
//!   type 13 or 19) nor the packet after one, and not with a timestamp behind the
//!   reference. The max delta is the largest arrival gap to the reference before a
//!   regular packet; the mean jitter is Wireshark's running mean
//!   `mean = (mean × (n − 1) + J) / n` with n the packets before this one, so a packet
//!   that is not regular keeps the mean so far in its place. [`RtpStreamSummary::max_gap_ms`]
//!   is the plain largest gap between consecutive packets.
//! * **Clock rate**: static payload types by [`static_clock_rate`] (RFC 3551 tables 4 and
//!   5, with Wireshark's 8000 for the historic 1, 2 and 19). A dynamic type (96–127) gets
//!   an estimate: for the first dynamic type of the stream, timestamp advance over arrival
//!   time once at least [`ESTIMATE_MIN_PACKETS`] packets over [`ESTIMATE_MIN_NS`] were
//!   seen, snapped to the nearest of [`SNAP_RATES`] within [`ESTIMATE_TOLERANCE`];
//!   jitter of that type starts there. Otherwise the rate is unknown and the jitter
//!   fields are null. (Wireshark takes a dynamic type's rate from SDP signalling it has
//!   seen, else reports jitter 0; it also divides by `rate / 1000` in integers, which is
//!   off for 44.1, 11.025 and 22.05 kHz.)
//!
//! # MPEG-TS in RTP
//!
//! A confirmed packet's payload is handed back with `mpeg_ts` set when its payload type
//! is 33 (MP2T, RFC 2250) or it is whole 188-byte packets each starting with 0x47
//! ([`is_mpeg_ts_payload`]): the caller gives it to the TS analyser. Candidates on
//! probation are handed back too, marked unconfirmed.
//!
//! # Memory and time
//!
//! Per flow: two fixed direction states (the probation ring) and a `Vec` of streams that
//! grows only when a source is confirmed; nothing allocates per packet. A stream is a
//! fixed-size struct; lookup is a check of the previous packet's stream, then a scan of
//! at most 2 × `max_streams_per_dir`.
//!
//! # Panics
//!
//! None: every read is a checked slice access (property tests feed arbitrary bytes).

mod flow;
mod header;
mod stream;
#[cfg(test)]
mod tests;

pub use flow::RtpFlow;
pub use header::{ReportBlock, SenderInfo};
pub use streamscope_flow::Dir;

/// A.1's MAX_DROPOUT: a forward jump of this many sequence numbers or more is a
/// sequence error.
pub const MAX_DROPOUT: u16 = 3000;
/// A.1's MAX_MISORDER: a packet further behind than this is a sequence error.
pub const MAX_MISORDER: u16 = 100;
/// Packets held per direction while their sources are on probation.
pub const HELD_SLOTS: usize = 8;
/// Packets of a dynamic payload type needed before its clock rate is estimated.
pub const ESTIMATE_MIN_PACKETS: u32 = 16;
/// Arrival span needed before a dynamic payload type's clock rate is estimated.
pub const ESTIMATE_MIN_NS: i64 = 1_000_000_000;
/// How far (relative) an estimated rate may be from the standard rate it snaps to.
pub const ESTIMATE_TOLERANCE: f64 = 0.05;
/// The rates an estimate snaps to.
pub const SNAP_RATES: [u32; 6] = [8000, 16000, 32000, 44100, 48000, 90000];
/// Payload type 33: MPEG-2 transport stream (RFC 3551, RFC 2250).
pub const PT_MP2T: u8 = 33;
/// Length of an MPEG-TS packet.
const TS_PACKET_LEN: usize = 188;
/// MPEG-TS sync byte.
const TS_SYNC: u8 = 0x47;

/// The clock rate of a static payload type (RFC 3551 section 6, tables 4 and 5), `None`
/// for dynamic, unassigned and reserved types. The historic types 1 (1016), 2 (G721) and
/// 19 (old CN) get 8000, as in Wireshark.
pub fn static_clock_rate(pt: u8) -> Option<u32> {
    Some(match pt {
        0..=5 | 7..=9 | 12 | 13 | 15 | 18 | 19 => 8000,
        6 => 16000,
        10 | 11 => 44100,
        16 => 11025,
        17 => 22050,
        14 | 25 | 26 | 28 | 31..=34 => 90000,
        _ => return None,
    })
}

/// Whether `payload` is one or more whole MPEG-TS packets: a multiple of 188 bytes, each
/// packet starting with the sync byte 0x47.
pub fn is_mpeg_ts_payload(payload: &[u8]) -> bool {
    !payload.is_empty()
        && payload.len() % TS_PACKET_LEN == 0
        && payload.chunks_exact(TS_PACKET_LEN).all(|p| p[0] == TS_SYNC)
}

/// Limits of one [`RtpFlow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpConfig {
    /// Most streams (SSRCs) tracked per direction. Default 16.
    pub max_streams_per_dir: usize,
    /// RTP-shaped datagrams a direction may hold without confirming a source before it
    /// gives up. Default 16.
    pub max_probe_candidates: u16,
    /// Datagrams neither RTP-shaped nor RTCP a direction may see before confirming a
    /// source before it gives up. Default 64.
    pub max_probe_others: u16,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            max_streams_per_dir: 16,
            max_probe_candidates: 16,
            max_probe_others: 64,
        }
    }
}

/// What a datagram was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtpOutcome<'a> {
    /// An RTP packet.
    Media {
        /// Its SSRC.
        ssrc: u32,
        /// The payload, after CSRCs and header extension, without padding.
        payload: &'a [u8],
        /// Payload type 33 or whole 0x47-synced 188-byte packets: MPEG-TS.
        mpeg_ts: bool,
        /// Counted in a confirmed stream; `false` for a candidate held on probation
        /// (or over the stream bound).
        confirmed: bool,
    },
    /// A valid RTCP compound packet.
    Rtcp,
    /// Neither (counted by reason in [`RtpStats`]).
    NotRtp,
    /// The direction gave up: it is not RTP.
    Ignored,
}

impl<'a> RtpOutcome<'a> {
    /// The payload of a confirmed RTP packet carrying MPEG-TS.
    pub fn mpeg_ts(&self) -> Option<&'a [u8]> {
        match *self {
            RtpOutcome::Media {
                payload,
                mpeg_ts: true,
                confirmed: true,
                ..
            } => Some(payload),
            _ => None,
        }
    }
}

/// Where a stream's clock rate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClockRateSource {
    /// The static payload type table (RFC 3551).
    Static,
    /// Estimated from timestamps against arrival times (a dynamic payload type).
    Estimated,
    /// Not known: no jitter.
    Unknown,
}

impl ClockRateSource {
    /// The name used in tables: `static`, `estimated`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            ClockRateSource::Static => "static",
            ClockRateSource::Estimated => "estimated",
            ClockRateSource::Unknown => "unknown",
        }
    }
}

/// The set of payload types (0–127) a stream used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PayloadTypes(u128);

impl PayloadTypes {
    /// Adds `pt` (its low 7 bits).
    pub fn insert(&mut self, pt: u8) {
        self.0 |= 1u128 << (pt & 0x7f);
    }

    /// Whether `pt` was used.
    pub fn contains(&self, pt: u8) -> bool {
        pt < 128 && self.0 & (1u128 << pt) != 0
    }

    /// The types used, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0u8..128).filter(|&pt| self.contains(pt))
    }

    /// How many types were used.
    pub fn len(&self) -> u32 {
        self.0.count_ones()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

/// The latest RTCP sender report of a stream's SSRC (RFC 3550 section 6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtcpSenderReport {
    /// The sender's packet count.
    pub packets: u32,
    /// The sender's payload octet count.
    pub octets: u32,
}

/// The latest RTCP report block about a stream's SSRC (RFC 3550 section 6.4.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RtcpReceiverReport {
    /// The reporting receiver's SSRC.
    pub reporter: u32,
    /// Fraction lost since the previous report (0 to 255/256).
    pub fraction_lost: f64,
    /// Cumulative packets lost (signed).
    pub cumulative_lost: i32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// The same in ms, when the stream's clock rate is known.
    pub jitter_ms: Option<f64>,
}

/// One stream (SSRC and direction): see [per stream](self#per-stream).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RtpStreamSummary {
    /// Direction within the flow.
    pub dir: Dir,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Time of the first packet (the first held on probation).
    pub first_ts_ns: i64,
    /// Time of the last packet.
    pub last_ts_ns: i64,
    /// Packets, duplicates included.
    pub packets: u64,
    /// UDP payload bytes (RTP headers included).
    pub bytes: u64,
    /// RTP payload bytes (no header, CSRCs, extension or padding).
    pub payload_bytes: u64,
    /// Expected packets (extended highest − base + 1, summed over resync epochs).
    pub expected: i64,
    /// `expected − packets`: negative with duplicates.
    pub lost: i64,
    /// Packets whose sequence number was seen already (within 128 of the highest).
    pub duplicates: u64,
    /// Packets behind the highest sequence number, not duplicates.
    pub reordered: u64,
    /// Jumps of [`MAX_DROPOUT`] or more forward, or more than [`MAX_MISORDER`] back.
    pub seq_errors: u64,
    /// Resynchronisations after a jump (two sequential packets).
    pub resyncs: u64,
    /// Payload type of the first packet.
    pub first_payload_type: u8,
    /// All payload types seen.
    pub payload_types: PayloadTypes,
    /// Packets with the marker bit.
    pub markers: u64,
    /// Packets whose payload is MPEG-TS.
    pub mpeg_ts_packets: u64,
    /// Clock rate of the first payload type, when known.
    pub clock_rate: Option<u32>,
    /// Where `clock_rate` came from.
    pub clock_rate_source: ClockRateSource,
    /// Jitter after the last packet (ms); `None` when no packet had a known rate.
    pub jitter_ms: Option<f64>,
    /// Mean jitter (ms, Wireshark's running mean over regular packets).
    pub mean_jitter_ms: Option<f64>,
    /// Max jitter (ms, over regular packets).
    pub max_jitter_ms: Option<f64>,
    /// Max arrival gap before a regular packet (ms), as Wireshark's max delta.
    pub max_delta_ms: Option<f64>,
    /// Max gap between consecutive packets (ms).
    pub max_gap_ms: Option<f64>,
    /// The latest RTCP sender report for this SSRC seen on this flow.
    pub sender_report: Option<RtcpSenderReport>,
    /// The latest RTCP report block about this SSRC seen on this flow.
    pub receiver_report: Option<RtcpReceiverReport>,
}

/// Counters of a time bin, over all streams of a flow ([`RtpFlow::take_interval`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RtpIntervalCounters {
    /// Packets counted in streams.
    pub packets: u64,
    /// Lost in the bin (A.3: expected less received since the previous bin; may be
    /// negative).
    pub lost: i64,
    /// Duplicates.
    pub duplicates: u64,
    /// Reordered packets.
    pub reordered: u64,
    /// Largest jitter after a packet of the bin (ms); `None` when no packet had a known
    /// clock rate.
    pub max_jitter_ms: Option<f64>,
}

/// What an [`RtpFlow`] read, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpStats {
    /// Datagrams given.
    pub datagrams: u64,
    /// Packets counted in streams (held packets once their source was confirmed).
    pub rtp_packets: u64,
    /// Candidates held on probation now.
    pub held: u64,
    /// Candidates dropped unconfirmed (ring full, gave up, flow end).
    pub discarded: u64,
    /// Packets of confirmed-looking sources over the stream bound.
    pub untracked: u64,
    /// Streams confirmed.
    pub streams: u64,
    /// Directions that gave up.
    pub gave_up: u64,
    /// Datagrams of a direction that had given up.
    pub ignored: u64,
    /// Shorter than an RTP header.
    pub too_short: u64,
    /// Version other than 2.
    pub bad_version: u64,
    /// CSRC list or header extension past the end.
    pub bad_length: u64,
    /// Bad padding count.
    pub bad_padding: u64,
    /// In the RTCP range but not a valid compound packet.
    pub bad_rtcp: u64,
    /// Valid RTCP compound packets.
    pub rtcp_compounds: u64,
    /// RTCP sender reports.
    pub rtcp_sr: u64,
    /// RTCP receiver reports.
    pub rtcp_rr: u64,
    /// RTCP source descriptions.
    pub rtcp_sdes: u64,
    /// RTCP goodbyes.
    pub rtcp_bye: u64,
    /// Other RTCP packets (APP, feedback, XR, ...).
    pub rtcp_other: u64,
    /// Report blocks in SRs and RRs.
    pub rtcp_report_blocks: u64,
}

impl RtpStats {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &RtpStats) {
        let RtpStats {
            datagrams,
            rtp_packets,
            held,
            discarded,
            untracked,
            streams,
            gave_up,
            ignored,
            too_short,
            bad_version,
            bad_length,
            bad_padding,
            bad_rtcp,
            rtcp_compounds,
            rtcp_sr,
            rtcp_rr,
            rtcp_sdes,
            rtcp_bye,
            rtcp_other,
            rtcp_report_blocks,
        } = *other;
        self.datagrams += datagrams;
        self.rtp_packets += rtp_packets;
        self.held += held;
        self.discarded += discarded;
        self.untracked += untracked;
        self.streams += streams;
        self.gave_up += gave_up;
        self.ignored += ignored;
        self.too_short += too_short;
        self.bad_version += bad_version;
        self.bad_length += bad_length;
        self.bad_padding += bad_padding;
        self.bad_rtcp += bad_rtcp;
        self.rtcp_compounds += rtcp_compounds;
        self.rtcp_sr += rtcp_sr;
        self.rtcp_rr += rtcp_rr;
        self.rtcp_sdes += rtcp_sdes;
        self.rtcp_bye += rtcp_bye;
        self.rtcp_other += rtcp_other;
        self.rtcp_report_blocks += rtcp_report_blocks;
    }
}
