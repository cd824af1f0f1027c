//! MPEG-2 transport streams (ISO/IEC 13818-1): detection in UDP payloads, and per
//! multiplex the continuity, PCR, PSI and timing checks of ETSI TR 101 290 (priority 1
//! and 2) with the Media Delivery Index of RFC 4445.
//!
//! # What is here
//!
//! * [`detect`]: whether a UDP payload carries TS packets, and how ([`Framing`]).
//! * [`TsAnalyzer`]: one multiplex (one flow direction). It is fed UDP payloads
//!   ([`TsAnalyzer::on_datagram`]), a byte stream ([`TsAnalyzer::on_bytes`], e.g. TS
//!   over HTTP) or RTSP interleaved data ([`TsAnalyzer::on_interleaved`]), and gives
//!   per-bin counters ([`TsAnalyzer::take_interval`] → [`TsIntervalCounters`]), the
//!   whole stream ([`TsAnalyzer::summary`] → [`TsSummary`]) and one row per PID
//!   ([`TsAnalyzer::pids`] → [`PidSummary`]).
//! * [`Tr101290`]: the TR 101 290 counters, named as TSDuck prints them.
//!
//! # Carriage
//!
//! **UDP.** [`detect`] decides by content, never by port: 1 to 7 packets of 188 bytes,
//! or of 204 bytes (188 and 16 Reed-Solomon bytes), each starting with the sync byte
//! 0x47; or an RTP version 2 header (RFC 3550 section 5.1: CSRCs, header extension and
//! padding skipped) followed by 1 to 64 such packets, whatever the payload type (33 is
//! MPEG-2 TS, RFC 3551, but dynamic types are seen). Every slot must hold a sync byte,
//! which keeps QUIC, DNS and other UDP out; a lone 188-byte payload starting with 0x47
//! is accepted (one byte of evidence: a QUIC short-header packet of exactly 188 bytes
//! would pass, so a caller should want more than one such datagram). A datagram that
//! fails detection after earlier ones succeeded is read with the last framing when its
//! length fits it: slots without a sync byte count as `Sync_byte_error` and are skipped.
//!
//! **Byte stream.** [`TsAnalyzer::on_bytes`] takes the stream cut anyhow. It locks on
//! the first position with five sync bytes 188 (else 204) bytes apart (TR 101 290's
//! recommended hysteresis: five to acquire, two to lose; random bytes, such as an
//! encrypted segment's, then almost never lock), dropping what came before
//! ([`TsSummary::bytes_skipped`]). Locked, each slot without a sync byte is a
//! `Sync_byte_error` (skipped); two in a row lose the lock (`TS_sync_loss`) and the
//! search starts again one byte after the bad slot's start. A partial packet waits in a
//! fixed 204-byte buffer; the search keeps at most 816 bytes.
//!
//! **RTSP interleaved** (RFC 2326 section 10.12: `$`, channel, 16-bit length, data), as
//! in `tsduck__test-135.seqwrap.pcap` (TS directly, 7 × 188 bytes per frame on channel
//! 0): [`TsAnalyzer::on_interleaved`] takes one TCP direction in order, strips the
//! framing and, when a frame starts with an RTP version 2 header, the RTP header;
//! RTCP frames (payload types 200 to 204) are dropped. The rest goes to the byte stream.
//! A frame boundary without `$` (an RTSP reply inside the stream) loses the framing
//! until the next `$`. RTP padding is taken to be whatever follows the last whole TS
//! packet of the payload (right whenever the padding is shorter than 188 bytes).
//!
//! # Continuity (ISO/IEC 13818-1 section 2.4.3.3, TR 101 290 1.4)
//!
//! Per PID except the null PID 0x1FFF: a packet with payload must carry the previous
//! continuity_counter + 1 (mod 16); a packet without payload (adaptation_field_control
//! 00 or 10) must repeat it. One repetition of a packet with payload is a duplicate
//! ([`PidSummary::duplicates`], not an error, and its payload is not read again); a
//! second one is an error. A set discontinuity_indicator accepts any counter. Any other
//! counter is a `Continuity_count_error`, and the packets missing by the gap ((counter −
//! expected) mod 16) are counted lost ([`PidSummary::lost_packets`]): the loss behind
//! the MDI's media loss rate. A packet with transport_error_indicator set is counted
//! (`Transport_error`, per PID) and not read further: its header may be wrong.
//!
//! # PCR (TR 101 290 1.x / 2.3, 2.4)
//!
//! Per PID carrying PCRs: count, the interval between consecutive PCR packets in
//! capture time (min / max), `PCR_repetition_error` (more than 40 ms between them, by
//! capture time: network delay variation counts in, as for a monitor at that point),
//! `PCR_discontinuity_indicator_error` (the PCR values differ by more than 100 ms or go
//! backwards without the discontinuity_indicator), and the bitrate: packets of the whole
//! multiplex between consecutive PCRs of the PID (188 bytes each, also for 204-byte
//! framing) over the PCR time between them, summed over all intervals that had no
//! discontinuity and no lost packets. On a constant-rate mux that is exact.
//!
//! `PCR_accuracy_error` (|PCR − expected| > 500 ns) compares each PCR with the value
//! expected from the previous one, the packets between them and the PID's rate so far:
//! positions in the multiplex, not capture times, so network jitter does not enter. It
//! is meaningful only for a constant-rate mux (IPTV multicast), which keeps its rate by
//! stuffing null packets: PCRs are checked once the multiplex has carried a null packet.
//! A variable-rate mux (HLS segments, files) has none, and between two PCRs runs at the
//! rate its content takes: its PCRs are not checked (checked, about every other one
//! would be an error that is not a PCR inaccuracy).
//!
//! PCR jitter (of the multiplex's reference PCR PID, the first PID seen with a PCR)
//! compares PCR time with capture time: over windows of up to 1 s or 128 PCRs, the
//! capture time less the PCR time, fitted by least squares against PCR time (drift
//! between the capture clock and the encoder's removed), max − min of the residuals; the
//! stream's figure is the largest window's. Capture timestamps limit it:
//! [`TsConfig::ts_resolution_ns`] is reported beside it ([`TsSummary::ts_resolution_ns`]).
//! Software timestamps (libpcap's default) carry tens of microseconds of scheduling
//! noise, and the packets of one datagram share its time, so jitter below some 100 µs
//! says nothing there; hardware timestamps make it meaningful.
//!
//! # PSI (TR 101 290 1.3, 1.5, 1.6, 2.2, 2.5)
//!
//! PAT (PID 0) and PMTs (the PIDs the PAT names) are assembled across packets in a
//! fixed 1,024-byte buffer per PID (pointer_field, section_length up to 1,021), their
//! CRC-32/MPEG-2 checked (`CRC_error`), and read: programs, PMT PIDs, PCR PIDs,
//! elementary PIDs with their stream type and a label ([`stream_label`]). A table whose
//! CRC equals the last one read on the PID is not read again. Times are capture times:
//!
//! * `PAT_error_2`: no PAT section on PID 0 for 500 ms (counted once per 500 ms without
//!   one, from the first packet on), a section on PID 0 whose table_id is not 0, or a
//!   scrambled packet on PID 0;
//! * `PMT_error_2`: likewise per PMT PID, from the PAT that names it;
//! * `PID_error`: an elementary PID named in a PMT not seen for
//!   [`TsConfig::pid_timeout_ns`] (default 5 s: TR 101 290 leaves the period to the user;
//!   5 s is above the longest gap of sparse streams such as subtitles in practice but
//!   still reports a dead audio track within a bin of a few seconds), counted once per
//!   period;
//! * `PTS_error`: more than 700 ms between PES headers with a PTS on a PID whose PES
//!   headers are in clear (checked when the next PTS arrives).
//!
//! # MDI (RFC 4445)
//!
//! The delay factor comes from the virtual buffer: at each arrival (a datagram, or a
//! call's worth of bytes) VB = bytes arrived − nominal rate × elapsed time, taken before
//! and after the arrival's bytes; DF = (max VB − min VB) / rate, in ms, per interval.
//! The nominal rate is the reference PCR PID's rate (above), fixed at the interval's
//! start (or when it first becomes known); until a rate is known DF is `None`. Arrivals
//! count TS bytes (188 per packet). Note that RFC 4445's pre/post sampling gives a
//! perfectly paced stream a DF of one arrival's drain time (1,316 bytes at the rate),
//! not 0. The media loss rate is the packets lost (continuity gaps) per second of the
//! interval. Intervals are the caller's ([`TsAnalyzer::take_interval`]); the summary's DF
//! is the largest of all intervals'.
//!
//! # Memory
//!
//! Bounded whatever the input: a PID → slot map, one slot (a few hundred
//! bytes) per PID seen up to [`TsConfig::max_pids`] (default 8,192, all PIDs; later
//! PIDs are counted in [`TsSummary::untracked_packets`] only), one 1 KiB section buffer
//! per PSI PID, at most [`MAX_PROGRAMS`] programs, the 204-byte packet and 408-byte search
//! buffers, a 2 KiB jitter window. Nothing allocates per packet once a PID is known
//! (a new PID, PAT or PMT content allocates its slot or buffer once).
//!
//! # Panics
//!
//! None: packets are read from fixed-size arrays, everything else through checked
//! slicing (property tests feed arbitrary bytes to every entry point).

mod analyzer;
mod framing;
mod jitter;
mod packet;
mod psi;
#[cfg(test)]
mod tests;

pub use analyzer::TsAnalyzer;
pub use psi::stream_label;

/// Length of a transport packet (ISO/IEC 13818-1 section 2.4.3.2).
pub const TS_PACKET_LEN: usize = 188;
/// Length of a transport packet followed by 16 Reed-Solomon bytes (DVB, ETSI EN 300 421).
pub const TS_RS_PACKET_LEN: usize = 204;
/// The sync byte every transport packet starts with.
pub const SYNC_BYTE: u8 = 0x47;
/// The null PID (stuffing packets).
pub const NULL_PID: u16 = 0x1FFF;
/// Most programs kept from the PAT.
pub const MAX_PROGRAMS: usize = 512;

/// How the TS packets of a UDP payload are carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encapsulation {
    /// Directly in the UDP payload.
    Raw,
    /// After an RTP header (RFC 2250, RFC 3550).
    Rtp {
        /// The RTP payload type (33 for MPEG-2 TS).
        payload_type: u8,
    },
}

/// Where the TS packets of a UDP payload are ([`detect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Framing {
    /// Raw or in RTP.
    pub encapsulation: Encapsulation,
    /// Bytes before the first packet (the RTP header with CSRCs and extension).
    pub offset: u16,
    /// 188, or 204 with Reed-Solomon bytes.
    pub packet_len: u16,
    /// Packets in the payload.
    pub packets: u16,
}

/// Whether a UDP payload is MPEG-TS, and how it is framed: see
/// [carriage](self#carriage).
pub fn detect(udp_payload: &[u8]) -> Option<Framing> {
    framing::detect(udp_payload)
}

/// Limits and thresholds of a [`TsAnalyzer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsConfig {
    /// The capture's timestamp resolution in ns (1,000 for microsecond pcap, 1 for
    /// nanosecond), reported beside the PCR jitter. Default 1,000.
    pub ts_resolution_ns: u64,
    /// An elementary PID named in a PMT and not seen this long is a `PID_error`.
    /// Default 5 s.
    pub pid_timeout_ns: i64,
    /// Most PIDs tracked (at most 8,192). Default 8,192.
    pub max_pids: usize,
    /// Longest gap between PAT (and between PMT) sections. Default 500 ms.
    pub psi_interval_ns: i64,
    /// Longest gap between PCRs of a PID. Default 40 ms.
    pub pcr_interval_ns: i64,
    /// Largest step between consecutive PCR values. Default 100 ms.
    pub pcr_discontinuity_ns: i64,
    /// Largest PCR inaccuracy. Default 500 ns.
    pub pcr_accuracy_ns: i64,
    /// Longest gap between PTSs of a PID. Default 700 ms.
    pub pts_interval_ns: i64,
}

impl Default for TsConfig {
    fn default() -> Self {
        TsConfig {
            ts_resolution_ns: 1_000,
            pid_timeout_ns: 5_000_000_000,
            max_pids: 8192,
            psi_interval_ns: 500_000_000,
            pcr_interval_ns: 40_000_000,
            pcr_discontinuity_ns: 100_000_000,
            pcr_accuracy_ns: 500,
            pts_interval_ns: 700_000_000,
        }
    }
}

/// ETSI TR 101 290 counters (priority 1 and 2, section 5.2), named as TSDuck prints
/// them ([`Tr101290::iter`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tr101290 {
    /// 1.1: lock lost (two consecutive slots without sync byte).
    pub ts_sync_loss: u64,
    /// 1.2: slots without sync byte.
    pub sync_byte_error: u64,
    /// 1.3.a: no PAT within 500 ms, PID 0 with another table_id, or scrambled.
    pub pat_error_2: u64,
    /// 1.4: continuity counter errors.
    pub continuity_count_error: u64,
    /// 1.5.a: no PMT within 500 ms on a PMT PID, or scrambled.
    pub pmt_error_2: u64,
    /// 1.6: a PID named in a PMT not seen for the configured period.
    pub pid_error: u64,
    /// 2.1: packets with transport_error_indicator.
    pub transport_error: u64,
    /// 2.2: PSI sections with a wrong CRC.
    pub crc_error: u64,
    /// 2.3a: more than 40 ms between PCRs.
    pub pcr_repetition_error: u64,
    /// 2.3b: PCR step outside 0..100 ms without discontinuity_indicator.
    pub pcr_discontinuity_indicator_error: u64,
    /// 2.4: PCR off by more than 500 ns.
    pub pcr_accuracy_error: u64,
    /// 2.5: more than 700 ms between PTSs.
    pub pts_error: u64,
}

impl Tr101290 {
    const NAMES: [&'static str; 12] = [
        "TS_sync_loss",
        "Sync_byte_error",
        "PAT_error_2",
        "Continuity_count_error",
        "PMT_error_2",
        "PID_error",
        "Transport_error",
        "CRC_error",
        "PCR_repetition_error",
        "PCR_discontinuity_indicator_error",
        "PCR_accuracy_error",
        "PTS_error",
    ];

    fn values(&self) -> [u64; 12] {
        [
            self.ts_sync_loss,
            self.sync_byte_error,
            self.pat_error_2,
            self.continuity_count_error,
            self.pmt_error_2,
            self.pid_error,
            self.transport_error,
            self.crc_error,
            self.pcr_repetition_error,
            self.pcr_discontinuity_indicator_error,
            self.pcr_accuracy_error,
            self.pts_error,
        ]
    }

    /// Every counter with its TR 101 290 name, priority 1 then 2.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        Self::NAMES.into_iter().zip(self.values())
    }

    /// Priority 1 errors (1.1 to 1.6).
    pub fn priority1(&self) -> u64 {
        self.values()[..6].iter().sum()
    }

    /// Priority 2 errors (2.1 to 2.5).
    pub fn priority2(&self) -> u64 {
        self.values()[6..].iter().sum()
    }
}

/// Counters of one time bin ([`TsAnalyzer::take_interval`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TsIntervalCounters {
    /// Start of the bin (the previous call's `now_ns`, or the first packet's time).
    pub start_ns: i64,
    /// End of the bin (this call's `now_ns`).
    pub end_ns: i64,
    /// TS packets.
    pub packets: u64,
    /// Continuity_count_error.
    pub cc_errors: u64,
    /// Packets missing by continuity gaps.
    pub lost_packets: u64,
    /// Transport_error.
    pub transport_errors: u64,
    /// PCR repetition, discontinuity and accuracy errors.
    pub pcr_errors: u64,
    /// MDI delay factor (ms); `None` until the rate is known.
    pub df_ms: Option<f64>,
    /// MDI media loss rate: lost packets per second of the bin.
    pub mlr_pps: f64,
    /// Largest PCR jitter (ns) of the jitter windows closed in the bin.
    pub pcr_jitter_ns: Option<i64>,
}

/// One PID's row ([`TsAnalyzer::pids`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PidSummary {
    /// The PID.
    pub pid: u16,
    /// What it carries: `pat`, `pmt`, `null`, `si` (other PIDs below 0x20), an
    /// elementary stream's label ([`stream_label`]), else `unreferenced`.
    pub kind: &'static str,
    /// Its program, for PMT and elementary PIDs.
    pub program: Option<u16>,
    /// Its stream_type, for elementary PIDs.
    pub stream_type: Option<u8>,
    /// Packets (all, errored ones included).
    pub packets: u64,
    /// Continuity_count_error.
    pub cc_errors: u64,
    /// Packets missing by continuity gaps.
    pub lost_packets: u64,
    /// Duplicate packets (one repetition allowed).
    pub duplicates: u64,
    /// Packets with transport_error_indicator.
    pub transport_errors: u64,
    /// Packets with transport_scrambling_control not 00.
    pub scrambled: u64,
    /// PCRs carried.
    pub pcr_count: u64,
    /// Shortest and longest capture-time interval between PCRs (ns).
    pub pcr_interval_min_ns: Option<i64>,
    /// See `pcr_interval_min_ns`.
    pub pcr_interval_max_ns: Option<i64>,
    /// Multiplex bitrate from this PID's PCRs (bits/s, 188-byte packets).
    pub pcr_bitrate_bps: Option<f64>,
    /// PCR_repetition_error.
    pub pcr_repetition_errors: u64,
    /// PCR_discontinuity_indicator_error.
    pub pcr_discontinuity_errors: u64,
    /// PCR_accuracy_error.
    pub pcr_accuracy_errors: u64,
    /// PTS_error.
    pub pts_errors: u64,
}

/// One program of the PAT ([`TsAnalyzer::programs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramSummary {
    /// program_number.
    pub number: u16,
    /// Its PMT PID.
    pub pmt_pid: u16,
    /// The PCR_PID of its PMT, once read.
    pub pcr_pid: Option<u16>,
    /// Elementary streams listed in its PMT.
    pub streams: u16,
}

/// The whole stream ([`TsAnalyzer::summary`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TsSummary {
    /// First and last packet times.
    pub first_ns: Option<i64>,
    /// See `first_ns`.
    pub last_ns: Option<i64>,
    /// The last UDP framing seen.
    pub framing: Option<Framing>,
    /// The byte stream's packet length once locked.
    pub stream_packet_len: Option<u16>,
    /// UDP payloads given.
    pub datagrams: u64,
    /// Of those, payloads that were not TS (not detected, and not fitting the last
    /// framing).
    pub datagrams_not_ts: u64,
    /// TS packets read (sync byte right).
    pub packets: u64,
    /// Of those, null packets.
    pub null_packets: u64,
    /// Null packets / packets.
    pub null_share: Option<f64>,
    /// Packets of PIDs beyond [`TsConfig::max_pids`].
    pub untracked_packets: u64,
    /// Packets whose adaptation_field_length runs past the packet.
    pub bad_adaptation_fields: u64,
    /// PSI sections read with a right CRC.
    pub sections: u64,
    /// PSI sections malformed or left incomplete.
    pub bad_sections: u64,
    /// Byte-stream bytes dropped while searching for the sync lock.
    pub bytes_skipped: u64,
    /// RTSP interleaved frames read.
    pub interleaved_frames: u64,
    /// RTSP interleaved framing lost (no `$` at a frame boundary).
    pub interleaved_resyncs: u64,
    /// PIDs seen.
    pub pids: u64,
    /// Programs in the PAT.
    pub programs: u64,
    /// The reference PCR PID (the first PID seen with a PCR).
    pub pcr_pid: Option<u16>,
    /// Multiplex bitrate from the reference PCR PID (bits/s).
    pub bitrate_bps: Option<f64>,
    /// Largest PCR jitter against capture time over the jitter windows (ns).
    pub pcr_jitter_ns: Option<i64>,
    /// [`TsConfig::ts_resolution_ns`]: the floor under `pcr_jitter_ns`.
    pub ts_resolution_ns: u64,
    /// Largest MDI delay factor of all intervals (ms).
    pub df_max_ms: Option<f64>,
    /// Packets missing by continuity gaps.
    pub lost_packets: u64,
    /// TS packets missing by the RTP sequence numbers when the TS came in RTP
    /// ([`TsAnalyzer::set_rtp_lost`]), else `None`.
    pub rtp_lost_packets: Option<u64>,
    /// Lost packets per second over the stream: from the RTP sequence numbers when the
    /// TS came in RTP ([`TsAnalyzer::set_rtp_lost`]), else from the continuity counters.
    pub mlr_pps: Option<f64>,
    /// Largest media loss rate of the intervals taken.
    pub mlr_max_pps: f64,
    /// TR 101 290 counters.
    pub tr101290: Tr101290,
}
