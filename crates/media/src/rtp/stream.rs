//! The state of one RTP source (one SSRC in one direction of a flow): sequence
//! accounting (RFC 3550 appendix A.1, A.3), interarrival jitter (appendix A.8), gaps and
//! the clock-rate estimate. Fixed size, no allocation.

use streamscope_flow::Dir;

use super::header::{ReportBlock, SenderInfo};
use super::{
    static_clock_rate, ClockRateSource, PayloadTypes, RtcpReceiverReport, RtcpSenderReport,
    RtpStreamSummary, ESTIMATE_MIN_NS, ESTIMATE_MIN_PACKETS, ESTIMATE_TOLERANCE, MAX_DROPOUT,
    MAX_MISORDER, SNAP_RATES,
};

/// Payload types of comfort noise (RFC 3389 and the old 19), which Wireshark's analysis
/// leaves out of its delta and jitter statistics.
const PT_CN: u8 = 13;
const PT_CN_OLD: u8 = 19;
/// Width of the duplicate window (sequence numbers at and behind the highest).
const WINDOW: u16 = 128;

/// One packet, as the stream needs it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pkt {
    pub ts_ns: i64,
    pub seq: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    pub marker: bool,
    pub len: u32,
    pub payload_len: u32,
    pub mpeg_ts: bool,
}

/// What one packet did to the sequence accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SeqEffect {
    pub duplicate: bool,
    pub reordered: bool,
}

/// Clock-rate estimate for the first dynamic payload type of a stream.
#[derive(Clone, Copy, Debug, Default)]
struct Estimator {
    /// The payload type it follows (`None`: no dynamic type seen yet).
    pt: Option<u8>,
    first_ns: i64,
    last_ts: u32,
    /// Timestamp advance since the first packet of `pt` (signed, extended).
    advance: i64,
    packets: u32,
    rate: Option<u32>,
}

impl Estimator {
    fn on_packet(&mut self, p: &Pkt) {
        match self.pt {
            None if p.payload_type >= 96 => {
                *self = Estimator {
                    pt: Some(p.payload_type),
                    first_ns: p.ts_ns,
                    last_ts: p.timestamp,
                    advance: 0,
                    packets: 1,
                    rate: None,
                };
            }
            Some(pt) if pt == p.payload_type && self.rate.is_none() => {
                self.advance += i64::from(p.timestamp.wrapping_sub(self.last_ts) as i32);
                self.last_ts = p.timestamp;
                self.packets = self.packets.saturating_add(1);
                let span = p.ts_ns.saturating_sub(self.first_ns);
                if span >= ESTIMATE_MIN_NS
                    && self.packets >= ESTIMATE_MIN_PACKETS
                    && self.advance > 0
                {
                    let r = self.advance as f64 * 1e9 / span as f64;
                    self.rate = SNAP_RATES
                        .iter()
                        .copied()
                        .filter(|&s| (r - f64::from(s)).abs() <= ESTIMATE_TOLERANCE * f64::from(s))
                        .min_by(|&a, &b| {
                            (r - f64::from(a))
                                .abs()
                                .total_cmp(&(r - f64::from(b)).abs())
                        });
                }
            }
            _ => {}
        }
    }

    fn rate_for(&self, pt: u8) -> Option<u32> {
        if self.pt == Some(pt) {
            self.rate
        } else {
            None
        }
    }
}

/// See the [module documentation](self).
#[derive(Clone, Debug)]
pub(super) struct Stream {
    pub dir: Dir,
    pub ssrc: u32,
    first_ns: i64,
    last_ns: i64,
    pub packets: u64,
    bytes: u64,
    payload_bytes: u64,
    markers: u64,
    mpeg_ts_packets: u64,
    pts: PayloadTypes,
    first_pt: u8,
    last_pt: u8,

    // Appendix A.1, with extended numbers kept as i64.
    max_seq: u16,
    ext_max: i64,
    base: i64,
    /// Sequence number expected after a big jump (A.1's bad_seq); `u32::MAX`: none.
    bad_seq: u32,
    /// Expected packets of the epochs before the last resync.
    expected_before: i64,
    /// Bit i: extended sequence number `ext_max - i` was received.
    window: u128,
    duplicates: u64,
    reordered: u64,
    seq_errors: u64,
    resyncs: u64,

    // A.3 interval accounting.
    expected_prior: i64,
    received_prior: u64,

    // Timing (A.8, with Wireshark's choice of reference and of regular packets).
    ref_ns: i64,
    ref_ts: u32,
    jitter_ms: f64,
    jitter_known: bool,
    mean_jitter_ms: f64,
    max_jitter_ms: f64,
    jitter_samples: u64,
    max_delta_ms: Option<f64>,
    max_gap_ns: Option<i64>,
    est: Estimator,

    sender_report: Option<RtcpSenderReport>,
    receiver_report: Option<RtcpReceiverReport>,
}

impl Stream {
    /// A stream whose first packet is `p` (A.1's init_seq).
    pub fn new(dir: Dir, ssrc: u32, p: &Pkt) -> Stream {
        let mut s = Stream {
            dir,
            ssrc,
            first_ns: p.ts_ns,
            last_ns: p.ts_ns,
            packets: 1,
            bytes: u64::from(p.len),
            payload_bytes: u64::from(p.payload_len),
            markers: u64::from(p.marker),
            mpeg_ts_packets: u64::from(p.mpeg_ts),
            pts: PayloadTypes::default(),
            first_pt: p.payload_type,
            last_pt: p.payload_type,
            max_seq: p.seq,
            ext_max: i64::from(p.seq),
            base: i64::from(p.seq),
            bad_seq: u32::MAX,
            expected_before: 0,
            window: 1,
            duplicates: 0,
            reordered: 0,
            seq_errors: 0,
            resyncs: 0,
            expected_prior: 0,
            received_prior: 0,
            ref_ns: p.ts_ns,
            ref_ts: p.timestamp,
            jitter_ms: 0.0,
            jitter_known: false,
            mean_jitter_ms: 0.0,
            max_jitter_ms: 0.0,
            jitter_samples: 0,
            max_delta_ms: None,
            max_gap_ns: None,
            est: Estimator::default(),
            sender_report: None,
            receiver_report: None,
        };
        s.pts.insert(p.payload_type);
        s.est.on_packet(p);
        s
    }

    /// Expected packets so far (A.1: extended highest less base plus one, summed over
    /// the epochs between resyncs).
    pub fn expected(&self) -> i64 {
        self.expected_before + (self.ext_max - self.base + 1)
    }

    /// Lost packets since the previous call (A.3; negative with duplicates).
    pub fn take_interval_lost(&mut self) -> i64 {
        let expected = self.expected();
        let lost = (expected - self.expected_prior) - (self.packets - self.received_prior) as i64;
        self.expected_prior = expected;
        self.received_prior = self.packets;
        lost
    }

    /// The clock rate for packets of `pt`: the static table, else the estimate.
    fn rate_for(&self, pt: u8) -> Option<u32> {
        static_clock_rate(pt).or_else(|| self.est.rate_for(pt))
    }

    /// A later packet of the stream. Returns its effect on the sequence accounting and
    /// the jitter after it (ms), when the packet's clock rate is known.
    pub fn on_packet(&mut self, p: &Pkt) -> (SeqEffect, Option<f64>) {
        let n_before = self.packets;
        self.packets += 1;
        self.bytes += u64::from(p.len);
        self.payload_bytes += u64::from(p.payload_len);
        self.markers += u64::from(p.marker);
        self.mpeg_ts_packets += u64::from(p.mpeg_ts);
        self.pts.insert(p.payload_type);
        let gap = p.ts_ns.saturating_sub(self.last_ns);
        self.max_gap_ns = Some(self.max_gap_ns.map_or(gap, |g| g.max(gap)));
        self.last_ns = p.ts_ns;

        let effect = self.update_seq(p.seq);
        self.est.on_packet(p);

        // Timing, against the previous packet in timestamp order (Wireshark's
        // "in time sequence"): the timestamp difference is signed, so a timestamp that
        // goes back is a negative difference, not an unsigned wrap.
        let ts_diff = i64::from(p.timestamp.wrapping_sub(self.ref_ts) as i32);
        let in_time = ts_diff >= 0;
        let delta_ms = p.ts_ns.saturating_sub(self.ref_ns) as f64 / 1e6;
        let rate = self.rate_for(p.payload_type);
        if let Some(rate) = rate {
            // A.8: D = (R_i - R_j) - (S_i - S_j), J += (|D| - J) / 16, in ms.
            let nominal_ms = ts_diff as f64 * 1000.0 / f64::from(rate);
            let d = delta_ms - nominal_ms;
            self.jitter_ms += (d.abs() - self.jitter_ms) / 16.0;
            self.jitter_known = true;
        }
        let regular = !p.marker
            && p.payload_type != PT_CN
            && p.payload_type != PT_CN_OLD
            && self.last_pt != PT_CN
            && self.last_pt != PT_CN_OLD
            && in_time;
        if regular {
            self.max_delta_ms = Some(self.max_delta_ms.map_or(delta_ms, |m| m.max(delta_ms)));
            if rate.is_some() {
                self.max_jitter_ms = self.max_jitter_ms.max(self.jitter_ms);
                // Wireshark's running mean over the packets after the first: a packet
                // that is not regular keeps the mean so far in its place.
                let n = n_before as f64;
                self.mean_jitter_ms = (self.mean_jitter_ms * (n - 1.0) + self.jitter_ms) / n;
                self.jitter_samples += 1;
            }
        }
        self.last_pt = p.payload_type;
        if in_time {
            self.ref_ns = p.ts_ns;
            self.ref_ts = p.timestamp;
        }
        (effect, rate.map(|_| self.jitter_ms))
    }

    /// A.1's update_seq, with duplicates and reordering told apart by a window.
    fn update_seq(&mut self, seq: u16) -> SeqEffect {
        let mut effect = SeqEffect::default();
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            if udelta == 0 {
                effect.duplicate = true;
                self.duplicates += 1;
            } else {
                self.window = if udelta >= WINDOW {
                    0
                } else {
                    self.window << udelta
                };
                self.window |= 1;
                self.ext_max += i64::from(udelta);
                self.max_seq = seq;
            }
            self.bad_seq = u32::MAX;
        } else if udelta <= u16::MAX - MAX_MISORDER + 1 {
            // A very large jump (forward beyond MAX_DROPOUT, or back beyond MAX_MISORDER).
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets: the source restarted; a new epoch from the
                // first of the two.
                self.expected_before = self.expected();
                self.max_seq = seq;
                self.ext_max = i64::from(seq);
                self.base = self.ext_max - 1;
                self.window = 0b11;
                self.bad_seq = u32::MAX;
                self.resyncs += 1;
            } else {
                self.bad_seq = u32::from(seq.wrapping_add(1));
                self.seq_errors += 1;
            }
        } else {
            // Behind the highest by at most MAX_MISORDER: a duplicate or a late packet.
            let back = self.max_seq.wrapping_sub(seq);
            let bit = 1u128 << back;
            if self.window & bit != 0 {
                effect.duplicate = true;
                self.duplicates += 1;
            } else {
                self.window |= bit;
                effect.reordered = true;
                self.reordered += 1;
            }
        }
        effect
    }

    pub fn on_sender_report(&mut self, si: &SenderInfo) {
        self.sender_report = Some(RtcpSenderReport {
            packets: si.packets,
            octets: si.octets,
        });
    }

    pub fn on_report_block(&mut self, b: &ReportBlock) {
        let rate = self.rate_for(self.first_pt);
        self.receiver_report = Some(RtcpReceiverReport {
            reporter: b.reporter,
            fraction_lost: f64::from(b.fraction_lost) / 256.0,
            cumulative_lost: b.cumulative_lost,
            jitter: b.jitter,
            jitter_ms: rate.map(|r| f64::from(b.jitter) * 1000.0 / f64::from(r)),
        });
    }

    pub fn summary(&self) -> RtpStreamSummary {
        let rate = self.rate_for(self.first_pt);
        let clock_rate_source = match (static_clock_rate(self.first_pt), rate) {
            (Some(_), _) => ClockRateSource::Static,
            (None, Some(_)) => ClockRateSource::Estimated,
            (None, None) => ClockRateSource::Unknown,
        };
        let known = self.jitter_known;
        let sampled = self.jitter_samples > 0;
        let expected = self.expected();
        RtpStreamSummary {
            dir: self.dir,
            ssrc: self.ssrc,
            first_ts_ns: self.first_ns,
            last_ts_ns: self.last_ns,
            packets: self.packets,
            bytes: self.bytes,
            payload_bytes: self.payload_bytes,
            expected,
            lost: expected - self.packets as i64,
            duplicates: self.duplicates,
            reordered: self.reordered,
            seq_errors: self.seq_errors,
            resyncs: self.resyncs,
            first_payload_type: self.first_pt,
            payload_types: self.pts,
            markers: self.markers,
            mpeg_ts_packets: self.mpeg_ts_packets,
            clock_rate: rate,
            clock_rate_source,
            jitter_ms: known.then_some(self.jitter_ms),
            mean_jitter_ms: (known && sampled).then_some(self.mean_jitter_ms),
            max_jitter_ms: (known && sampled).then_some(self.max_jitter_ms),
            max_delta_ms: self.max_delta_ms,
            max_gap_ms: self.max_gap_ns.map(|g| g as f64 / 1e6),
            sender_report: self.sender_report,
            receiver_report: self.receiver_report,
        }
    }
}
