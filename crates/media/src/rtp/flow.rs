//! [`RtpFlow`]: detection by probation, the per-SSRC streams, RTCP and the interval
//! counters of one UDP flow.

use streamscope_flow::Dir;

use super::header::{self, is_rtcp, parse_rtp, rtcp_packets, Reject};
use super::stream::{Pkt, Stream};
use super::{
    is_mpeg_ts_payload, RtpConfig, RtpIntervalCounters, RtpOutcome, RtpStats, RtpStreamSummary,
    HELD_SLOTS,
};

/// A packet held while its source is on probation.
#[derive(Clone, Copy, Debug)]
struct Held {
    ssrc: u32,
    /// Arrival order within the direction.
    order: u64,
    pkt: Pkt,
}

/// Where a direction's detection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detect {
    /// No source confirmed yet: counting the datagrams that did not confirm one.
    Probing {
        /// RTP-shaped datagrams held without confirming a source.
        candidates: u16,
        /// Datagrams that are neither RTP-shaped nor valid RTCP.
        others: u16,
    },
    /// At least one source confirmed.
    Active,
    /// Too many failures before any confirmation: the direction is not RTP.
    GaveUp,
}

/// One direction's detection state: fixed size.
#[derive(Clone, Debug)]
struct DirState {
    detect: Detect,
    held: [Option<Held>; HELD_SLOTS],
    order: u64,
    streams: u16,
}

impl Default for DirState {
    fn default() -> Self {
        DirState {
            detect: Detect::Probing {
                candidates: 0,
                others: 0,
            },
            held: [None; HELD_SLOTS],
            order: 0,
            streams: 0,
        }
    }
}

/// The RTP and RTCP state of one UDP flow: see the [module documentation](super).
#[derive(Clone, Debug)]
pub struct RtpFlow {
    config: RtpConfig,
    dirs: [DirState; 2],
    /// Confirmed streams, both directions (at most `max_streams_per_dir` each).
    streams: Vec<Stream>,
    /// Index of the stream of the previous packet (most flows carry one stream).
    last: usize,
    stats: RtpStats,
    interval: RtpIntervalCounters,
}

impl RtpFlow {
    /// The state of a new flow.
    pub fn new(config: RtpConfig) -> RtpFlow {
        RtpFlow {
            config,
            dirs: Default::default(),
            streams: Vec::new(),
            last: 0,
            stats: RtpStats::default(),
            interval: RtpIntervalCounters::default(),
        }
    }

    /// What this flow read so far.
    pub fn stats(&self) -> &RtpStats {
        &self.stats
    }

    /// Whether `dir` has given up (it will never be taken for RTP): the caller may stop
    /// handing it payloads.
    pub fn gave_up(&self, dir: Dir) -> bool {
        self.dirs[dir.index()].detect == Detect::GaveUp
    }

    /// Whether `dir` has a confirmed RTP source.
    pub fn is_rtp(&self, dir: Dir) -> bool {
        self.dirs[dir.index()].detect == Detect::Active
    }

    /// One UDP datagram's payload, sent in `dir` at `ts_ns`. See [`RtpOutcome`] for the
    /// answer; the payload it returns borrows `payload`.
    pub fn on_datagram<'a>(&mut self, dir: Dir, ts_ns: i64, payload: &'a [u8]) -> RtpOutcome<'a> {
        self.stats.datagrams += 1;
        let d = dir.index();
        if self.dirs[d].detect == Detect::GaveUp {
            self.stats.ignored += 1;
            return RtpOutcome::Ignored;
        }
        let h = match parse_rtp(payload) {
            Ok(h) => h,
            Err(Reject::RtcpRange) if is_rtcp(payload) => {
                self.on_rtcp(payload);
                return RtpOutcome::Rtcp;
            }
            Err(reject) => {
                let s = &mut self.stats;
                *match reject {
                    Reject::TooShort => &mut s.too_short,
                    Reject::Version => &mut s.bad_version,
                    Reject::RtcpRange => &mut s.bad_rtcp,
                    Reject::Csrc | Reject::Extension => &mut s.bad_length,
                    Reject::Padding => &mut s.bad_padding,
                } += 1;
                if let Detect::Probing { candidates, others } = self.dirs[d].detect {
                    let others = others.saturating_add(1);
                    if others >= self.config.max_probe_others {
                        self.give_up(d);
                    } else {
                        self.dirs[d].detect = Detect::Probing { candidates, others };
                    }
                }
                return RtpOutcome::NotRtp;
            }
        };
        let body = payload.get(h.payload_start..h.payload_end).unwrap_or(&[]);
        let mpeg_ts = h.payload_type == super::PT_MP2T || is_mpeg_ts_payload(body);
        let pkt = Pkt {
            ts_ns,
            seq: h.seq,
            timestamp: h.timestamp,
            payload_type: h.payload_type,
            marker: h.marker,
            len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            payload_len: u32::try_from(body.len()).unwrap_or(u32::MAX),
            mpeg_ts,
        };
        let media = |confirmed| RtpOutcome::Media {
            ssrc: h.ssrc,
            payload: body,
            mpeg_ts,
            confirmed,
        };

        // A known source.
        if let Some(i) = self.find(dir, h.ssrc) {
            self.last = i;
            self.count(i, &pkt);
            return media(true);
        }

        // Probation (A.1, MIN_SEQUENTIAL = 2): the source's previous packet is held with
        // the sequence number before this one.
        let st = &mut self.dirs[d];
        let prev = st
            .held
            .iter_mut()
            .flatten()
            .filter(|x| x.ssrc == h.ssrc)
            .max_by_key(|x| x.order);
        if let Some(prev) = prev.filter(|x| x.pkt.seq.wrapping_add(1) == h.seq) {
            if usize::from(st.streams) >= self.config.max_streams_per_dir {
                // Over the bound: counted only; it takes its predecessor's slot so that
                // the source's next packet is known again.
                st.order += 1;
                prev.order = st.order;
                prev.pkt = pkt;
                self.stats.untracked += 1;
                return media(false);
            }
            st.streams += 1;
            st.detect = Detect::Active;
            // Replay the held packets of this source in arrival order: the stream counts
            // from its first packet, as Wireshark does.
            let mut replay: [Option<Held>; HELD_SLOTS] = [None; HELD_SLOTS];
            for (slot, out) in st.held.iter_mut().zip(replay.iter_mut()) {
                if slot.is_some_and(|x| x.ssrc == h.ssrc) {
                    *out = slot.take();
                }
            }
            replay.sort_unstable_by_key(|x| x.map_or(u64::MAX, |x| x.order));
            let mut held = replay.iter().flatten();
            let Some(first) = held.next() else {
                return media(false);
            };
            self.stats.held = self.stats.held.saturating_sub(1);
            self.stats.rtp_packets += 1;
            self.interval.packets += 1;
            self.streams.push(Stream::new(dir, h.ssrc, &first.pkt));
            let i = self.streams.len() - 1;
            self.last = i;
            self.stats.streams += 1;
            for x in held {
                self.stats.held = self.stats.held.saturating_sub(1);
                self.count(i, &x.pkt);
            }
            self.count(i, &pkt);
            return media(true);
        }

        // Hold it.
        st.order += 1;
        let order = st.order;
        let slot = match st.held.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                // Full: the oldest goes.
                self.stats.held = self.stats.held.saturating_sub(1);
                self.stats.discarded += 1;
                st.held
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, x)| x.map_or(0, |x| x.order))
                    .map_or(0, |(i, _)| i)
            }
        };
        st.held[slot] = Some(Held {
            ssrc: h.ssrc,
            order,
            pkt,
        });
        self.stats.held += 1;
        if let Detect::Probing { candidates, others } = st.detect {
            let candidates = candidates.saturating_add(1);
            if candidates >= self.config.max_probe_candidates {
                self.give_up(d);
            } else {
                st.detect = Detect::Probing { candidates, others };
            }
        }
        media(false)
    }

    /// Direction `d` is not RTP: its held packets are dropped.
    fn give_up(&mut self, d: usize) {
        self.stats.gave_up += 1;
        self.dirs[d].detect = Detect::GaveUp;
        self.drop_held(d);
    }

    fn drop_held(&mut self, d: usize) {
        for slot in self.dirs[d].held.iter_mut() {
            if slot.take().is_some() {
                self.stats.held = self.stats.held.saturating_sub(1);
                self.stats.discarded += 1;
            }
        }
    }

    fn find(&self, dir: Dir, ssrc: u32) -> Option<usize> {
        match self.streams.get(self.last) {
            Some(s) if s.ssrc == ssrc && s.dir == dir => Some(self.last),
            _ => self
                .streams
                .iter()
                .position(|s| s.ssrc == ssrc && s.dir == dir),
        }
    }

    /// Counts a packet of stream `i`.
    fn count(&mut self, i: usize, pkt: &Pkt) {
        let Some(s) = self.streams.get_mut(i) else {
            return;
        };
        let (effect, jitter) = s.on_packet(pkt);
        self.stats.rtp_packets += 1;
        let iv = &mut self.interval;
        iv.packets += 1;
        iv.duplicates += u64::from(effect.duplicate);
        iv.reordered += u64::from(effect.reordered);
        if let Some(j) = jitter {
            iv.max_jitter_ms = Some(iv.max_jitter_ms.map_or(j, |m| m.max(j)));
        }
    }

    /// A valid RTCP compound packet: its SR sender info and report blocks go to the
    /// streams of this flow with the SSRCs they name.
    fn on_rtcp(&mut self, payload: &[u8]) {
        self.stats.rtcp_compounds += 1;
        for p in rtcp_packets(payload).flatten() {
            let s = &mut self.stats;
            match p.packet_type {
                header::rtcp_type::SR => s.rtcp_sr += 1,
                header::rtcp_type::RR => s.rtcp_rr += 1,
                header::rtcp_type::SDES => s.rtcp_sdes += 1,
                header::rtcp_type::BYE => s.rtcp_bye += 1,
                _ => s.rtcp_other += 1,
            }
            if let Some(si) = p.sender_info() {
                for st in self.streams.iter_mut().filter(|st| st.ssrc == si.ssrc) {
                    st.on_sender_report(&si);
                }
            }
            for b in p.report_blocks() {
                self.stats.rtcp_report_blocks += 1;
                for st in self.streams.iter_mut().filter(|st| st.ssrc == b.source) {
                    st.on_report_block(&b);
                }
            }
        }
    }

    /// The confirmed streams, in the order they were confirmed.
    pub fn streams(&self) -> impl Iterator<Item = RtpStreamSummary> + '_ {
        self.streams.iter().map(Stream::summary)
    }

    /// The counters since the previous call (or the flow's start), over all streams of
    /// the flow; they start again from zero.
    pub fn take_interval(&mut self) -> RtpIntervalCounters {
        let lost = self
            .streams
            .iter_mut()
            .map(Stream::take_interval_lost)
            .sum();
        let mut out = core::mem::take(&mut self.interval);
        out.lost = lost;
        out
    }

    /// The flow ended at `end_ts_ns`: packets still held on probation are dropped
    /// ([`RtpStats::discarded`]). The streams stay readable.
    ///
    /// `_end_ts_ns` is the flow's end as the flow table knows it; nothing here depends
    /// on it yet (the streams end with their last packets).
    pub fn finish(&mut self, _end_ts_ns: i64) {
        self.drop_held(0);
        self.drop_held(1);
    }
}
