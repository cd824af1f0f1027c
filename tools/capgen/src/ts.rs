//! Multicast IPTV channels: a single-program MPEG-TS (ISO/IEC 13818-1) sent in UDP
//! datagrams of 1–7 packets, directly or in RTP (RFC 3550, payload type 33 per RFC 3551).
//!
//! The mux is paced exactly: TS packet `k` leaves at `start + k·1504/mux_rate` seconds,
//! and the PCR in packet `k` is the 27 MHz time of its last PCR-base byte at that rate.
//! PAT and PMT repeat every `psi_interval_ms`, the video PID carries a PCR every
//! `pcr_interval_ms`, video and audio take packets by credit at their rates, and null
//! packets (PID 0x1FFF) fill the rest.

use crate::engine::Shared;
use crate::net::Path;
use crate::rng::Rng;
use crate::truth::{PidTruth, RtpTruth, TsTruth};

/// TS packet size and sync byte (ISO/IEC 13818-1 §2.4.3.2).
pub const TS_PACKET: usize = 188;
pub const SYNC: u8 = 0x47;
pub const NULL_PID: u16 = 0x1FFF;
/// RTP payload type of MPEG-TS (RFC 3551 §6, "MP2T").
pub const RTP_PT_MP2T: u8 = 33;
const RTP_HDR: usize = 12;
/// stream_type values (ISO/IEC 13818-1 Table 2-34): H.264 video, ADTS AAC audio.
pub const STREAM_TYPE_H264: u8 = 0x1B;
pub const STREAM_TYPE_AAC: u8 = 0x0F;
const NS: u128 = 1_000_000_000;
/// Video frame period (25 fps): one PES per frame.
const VIDEO_FRAME_NS: u64 = 40_000_000;
/// PTS lead over the PCR (decoder delay), in 90 kHz ticks.
const PTS_DELAY_90K: u64 = 63_000;

/// Packet roles, also indices into the per-PID counters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Pat = 0,
    Pmt = 1,
    Video = 2,
    Audio = 3,
    Null = 4,
}

const ROLE_NAMES: [&str; 5] = ["pat", "pmt", "video", "audio", "null"];

/// Settings of one channel, resolved from the scenario.
pub(crate) struct ChannelSpec {
    pub name: String,
    pub path: Path,
    pub rtp: bool,
    pub ts_per_datagram: u8,
    pub mux_rate_bps: u64,
    pub video_bps: u64,
    pub audio_bps: u64,
    pub pcr_interval_ns: u64,
    pub psi_interval_ns: u64,
    pub program_number: u16,
    pub pmt_pid: u16,
    pub video_pid: u16,
    pub audio_pid: u16,
    /// Video and audio packets are scrambled (see `ChannelConfig::scrambled`).
    pub scrambled: bool,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Loss windows: absolute `[t0, t1)` and drop probability.
    pub losses: Vec<(u64, u64, f64)>,
}

/// A running channel.
pub(crate) struct Channel {
    s: ChannelSpec,
    rng: Rng,
    k: u64,
    /// Slot clock: time of packet `clock_k` is `start + clock_q` ns plus `clock_r / mux` ns.
    clock_k: u64,
    clock_q: u64,
    clock_r: u64,
    step_q: u64,
    step_r: u64,
    pids: [u16; 5],
    cc: [u8; 4],
    last_cc: [Option<u8>; 4],
    written: [u64; 5],
    lost: [u64; 5],
    cc_errors: [u64; 4],
    vacc: i64,
    aacc: i64,
    next_psi: u64,
    next_pcr: u64,
    pmt_pending: bool,
    next_vframe: u64,
    vframe_pending: bool,
    pcr0: u64,
    pat: [u8; TS_PACKET],
    pmt: [u8; TS_PACKET],
    fill: [u8; TS_PACKET],
    dgram: [u8; 7 * TS_PACKET],
    roles: [Role; 7],
    ccs: [u8; 7],
    pcrs_in_dgram: u64,
    pcr_count: u64,
    datagrams_sent: u64,
    datagrams_dropped: u64,
    seq: u16,
    ssrc: u32,
    rtp_ts0: u32,
    rtp: RtpTruth,
    flow: Option<usize>,
    /// Stream faults (`crate::faults`) and what a receiver makes of the written datagrams.
    faults: crate::faults::StreamFaults,
    fx: FaultState,
}

impl Channel {
    pub fn new(s: ChannelSpec, mut rng: Rng) -> Channel {
        let mut fill = [0u8; TS_PACKET];
        for b in fill.iter_mut() {
            *b = rng.next_u32() as u8;
        }
        let pat = psi_packet(&pat_section(1, s.program_number, s.pmt_pid), 0);
        let pmt_sec = pmt_section(
            s.program_number,
            s.video_pid,
            &[
                (STREAM_TYPE_H264, s.video_pid),
                (STREAM_TYPE_AAC, s.audio_pid),
            ],
        );
        let pmt = psi_packet(&pmt_sec, s.pmt_pid);
        let seq = rng.next_u32() as u16;
        let ssrc = rng.next_u32();
        let rtp_ts0 = rng.next_u32();
        let pcr0 = rng.range_u64(0, (1u64 << 33) * 300 / 4);
        let pids = [0, s.pmt_pid, s.video_pid, s.audio_pid, NULL_PID];
        let per_packet = TS_PACKET as u64 * 8 * 1_000_000_000;
        Channel {
            clock_k: 0,
            clock_q: 0,
            clock_r: 0,
            step_q: per_packet / s.mux_rate_bps,
            step_r: per_packet % s.mux_rate_bps,
            next_psi: s.start_ns,
            next_pcr: s.start_ns,
            next_vframe: s.start_ns,
            rng,
            k: 0,
            pids,
            cc: [0; 4],
            last_cc: [None; 4],
            written: [0; 5],
            lost: [0; 5],
            cc_errors: [0; 4],
            vacc: 0,
            aacc: 0,
            pmt_pending: false,
            vframe_pending: false,
            pcr0,
            pat,
            pmt,
            fill,
            dgram: [0; 7 * TS_PACKET],
            roles: [Role::Null; 7],
            ccs: [0; 7],
            pcrs_in_dgram: 0,
            pcr_count: 0,
            datagrams_sent: 0,
            datagrams_dropped: 0,
            seq,
            ssrc,
            rtp_ts0,
            rtp: RtpTruth {
                ssrc,
                payload_type: RTP_PT_MP2T,
                clock_rate_hz: 90_000,
                packets: 0,
                lost: 0,
                gaps: 0,
                first_seq: None,
                last_seq: None,
                duplicates: 0,
                reordered: 0,
            },
            flow: None,
            faults: Default::default(),
            fx: FaultState::default(),
            s,
        }
    }

    /// Time the TS packet with index `k` leaves the mux: `start + floor(k·1504e9 / mux)`.
    /// Packets are visited in order, so the division is carried incrementally.
    fn slot_time(&mut self, k: u64) -> u64 {
        if k < self.clock_k {
            return self.s.start_ns
                + (k as u128 * (TS_PACKET as u128 * 8) * NS / self.s.mux_rate_bps as u128) as u64;
        }
        while self.clock_k < k {
            self.clock_k += 1;
            self.clock_q += self.step_q;
            self.clock_r += self.step_r;
            if self.clock_r >= self.s.mux_rate_bps {
                self.clock_r -= self.s.mux_rate_bps;
                self.clock_q += 1;
            }
        }
        self.s.start_ns + self.clock_q
    }

    /// First datagram time.
    pub fn first_time(&self) -> Option<u64> {
        (self.s.start_ns < self.s.end_ns).then_some(self.s.start_ns)
    }

    /// Emits (or drops) the datagram due at `now`; returns the next datagram time.
    pub fn step(&mut self, now: u64, sh: &mut Shared) -> Option<u64> {
        if let Some(next) = self.step_deferred(now, sh) {
            return next;
        }
        self.apply_pcr_jumps(now, sh);
        let n = self.s.ts_per_datagram as usize;
        self.pcrs_in_dgram = 0;
        for j in 0..n {
            let k = self.k + j as u64;
            self.fill_packet(j, k);
        }
        let dropped = self
            .s
            .losses
            .iter()
            .any(|&(t0, t1, p)| now >= t0 && now < t1 && self.rng.chance(p));
        self.datagrams_sent += 1;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        if dropped {
            self.datagrams_dropped += 1;
            sh.dropped += 1;
            for j in 0..n {
                self.lost[self.roles[j] as usize] += 1;
            }
        } else {
            self.emit_faulty(now, seq, n, sh);
        }
        self.k += n as u64;
        let next = self.slot_time(self.k);
        self.after_step(now, next)
    }

    fn emit(&mut self, now: u64, seq: u16, n: usize, sh: &mut Shared) {
        let rtp = self.s.rtp;
        let sent = self.fx.rtp_time.unwrap_or(now);
        let rtp_ts = self
            .rtp_ts0
            .wrapping_add(((sent - self.s.start_ns) as u128 * 90_000 / NS) as u32);
        let ssrc = self.ssrc;
        let body = &self.dgram[..n * TS_PACKET];
        let payload = self.s.path.udp(&mut sh.frame, true, &mut sh.hosts, |b| {
            if rtp {
                let mut h = [0u8; RTP_HDR];
                h[0] = 0x80;
                h[1] = RTP_PT_MP2T;
                h[2..4].copy_from_slice(&seq.to_be_bytes());
                h[4..8].copy_from_slice(&rtp_ts.to_be_bytes());
                h[8..12].copy_from_slice(&ssrc.to_be_bytes());
                b.extend_from_slice(&h);
            }
            b.extend_from_slice(body);
        });
        let flow = match self.flow {
            Some(f) => f,
            None => {
                let kind = if rtp {
                    crate::truth::FlowKind::MulticastTsRtp
                } else {
                    crate::truth::FlowKind::MulticastTsUdp
                };
                let mut f = crate::truth::FlowTruth::new(
                    kind,
                    Some(self.s.name.clone()),
                    crate::truth::Protocol::Udp,
                    &self.s.path,
                );
                // The head-end serves the group: the group (its receivers) is the
                // client, and the channel's traffic is downstream.
                std::mem::swap(&mut f.client_addr, &mut f.server_addr);
                std::mem::swap(&mut f.client_port, &mut f.server_port);
                let id = sh.open_flow(f);
                self.flow = Some(id);
                id
            }
        };
        sh.account(flow, false, now, payload);
        self.pcr_count += self.pcrs_in_dgram;
        for j in 0..n {
            let r = self.roles[j] as usize;
            self.written[r] += 1;
            if r < 4 {
                let c = self.ccs[j];
                if let Some(l) = self.last_cc[r] {
                    // The same CC again is a duplicate packet, not a discontinuity
                    // (ISO/IEC 13818-1 §2.4.3.3; tshark's MP2T analysis agrees).
                    if c != (l + 1) & 0x0F && c != l {
                        self.cc_errors[r] += 1;
                    }
                }
                self.last_cc[r] = Some(c);
            }
        }
        self.track_pcrs(n);
        if rtp {
            self.rtp_receive(seq);
        }
    }

    /// Builds TS packet `k` into datagram slot `j`.
    fn fill_packet(&mut self, j: usize, k: u64) {
        let tp = self.slot_time(k);
        let mux = self.s.mux_rate_bps as i64;
        self.vacc = (self.vacc + self.s.video_bps as i64).min(4 * mux);
        self.aacc = (self.aacc + self.s.audio_bps as i64).min(4 * mux);
        if tp >= self.next_vframe {
            self.vframe_pending = true;
            while self.next_vframe <= tp {
                self.next_vframe += VIDEO_FRAME_NS;
            }
        }
        let mut pcr = false;
        let role = if self.pmt_pending {
            self.pmt_pending = false;
            Role::Pmt
        } else if tp >= self.next_psi {
            while self.next_psi <= tp {
                self.next_psi += self.s.psi_interval_ns;
            }
            self.pmt_pending = true;
            Role::Pat
        } else if tp >= self.next_pcr {
            while self.next_pcr <= tp {
                self.next_pcr += self.s.pcr_interval_ns;
            }
            pcr = true;
            self.vacc -= mux;
            Role::Video
        } else if self.aacc >= mux {
            self.aacc -= mux;
            Role::Audio
        } else if self.vacc >= mux {
            self.vacc -= mux;
            Role::Video
        } else {
            Role::Null
        };
        let r = role as usize;
        let cc = if role == Role::Null {
            0
        } else {
            let c = self.cc[r];
            self.cc[r] = (c + 1) & 0x0F;
            c
        };
        self.roles[j] = role;
        self.ccs[j] = cc;
        let pcr_v = if pcr || (role == Role::Audio) || (role == Role::Video && self.vframe_pending)
        {
            self.pcr_at(k)
        } else {
            0
        };
        let p = &mut self.dgram[j * TS_PACKET..(j + 1) * TS_PACKET];
        match role {
            Role::Pat => {
                p.copy_from_slice(&self.pat);
                p[3] = (p[3] & 0xF0) | cc;
            }
            Role::Pmt => {
                p.copy_from_slice(&self.pmt);
                p[3] = (p[3] & 0xF0) | cc;
            }
            Role::Null => {
                p[0] = SYNC;
                p[1] = 0x1F;
                p[2] = 0xFF;
                p[3] = 0x10;
                p[4..].fill(0xFF);
            }
            Role::Video | Role::Audio => {
                let pid = self.pids[r];
                let pusi = if role == Role::Audio {
                    true
                } else {
                    std::mem::replace(&mut self.vframe_pending, false)
                };
                p[0] = SYNC;
                p[1] = ((pusi as u8) << 6) | ((pid >> 8) as u8 & 0x1F);
                p[2] = pid as u8;
                let mut off = 4;
                if pcr {
                    p[3] = 0x30 | cc;
                    // adaptation_field_length 7, PCR_flag (+ random_access at a frame start).
                    p[4] = 7;
                    p[5] = 0x10 | if pusi { 0x40 } else { 0 };
                    let v = pcr_v;
                    let base = (v / 300) & ((1 << 33) - 1);
                    let ext = v % 300;
                    p[6] = (base >> 25) as u8;
                    p[7] = (base >> 17) as u8;
                    p[8] = (base >> 9) as u8;
                    p[9] = (base >> 1) as u8;
                    p[10] = (((base & 1) as u8) << 7) | 0x7E | ((ext >> 8) as u8 & 1);
                    p[11] = ext as u8;
                    off = 12;
                    self.pcrs_in_dgram += 1;
                } else {
                    p[3] = 0x10 | cc;
                }
                if self.s.scrambled {
                    // transport_scrambling_control '10': the payload, PES header
                    // included, is opaque to a receiver without the key.
                    p[3] |= 0x80;
                    p[off..].copy_from_slice(&self.fill[off..]);
                    return;
                }
                if pusi {
                    let pts = (pcr_v / 300 + PTS_DELAY_90K) & ((1 << 33) - 1);
                    let (sid, len) = if role == Role::Audio {
                        (0xC0u8, (TS_PACKET - off - 6) as u16)
                    } else {
                        (0xE0u8, 0u16)
                    };
                    let l = len.to_be_bytes();
                    p[off..off + 9].copy_from_slice(&[0, 0, 1, sid, l[0], l[1], 0x80, 0x80, 5]);
                    p[off + 9] = 0x21 | ((pts >> 29) as u8 & 0x0E);
                    p[off + 10] = (pts >> 22) as u8;
                    p[off + 11] = ((pts >> 14) as u8 & 0xFE) | 1;
                    p[off + 12] = (pts >> 7) as u8;
                    p[off + 13] = ((pts << 1) as u8 & 0xFE) | 1;
                    off += 14;
                }
                p[off..].copy_from_slice(&self.fill[off..]);
            }
        }
    }

    /// 27 MHz PCR value carried by TS packet `k` (at its last PCR-base byte, offset 10).
    fn pcr_at(&self, k: u64) -> u64 {
        let bits = (k as u128 * TS_PACKET as u128 + 10) * 8;
        let v = self.pcr0 + (bits * 27_000_000 / self.s.mux_rate_bps as u128) as u64;
        if self.fx.pcr_offset == 0 {
            return v;
        }
        (v as i128 + self.fx.pcr_offset as i128).rem_euclid(PCR_MODULUS) as u64
    }

    /// Writes the channel's TS and RTP facts into its flow (if it wrote any packet).
    pub fn finish(&mut self, sh: &mut Shared) {
        let Some(f) = self.flow else { return };
        let stream_types = [
            None,
            None,
            Some(STREAM_TYPE_H264),
            Some(STREAM_TYPE_AAC),
            None,
        ];
        let pids = (0..5)
            .map(|r| PidTruth {
                pid: self.pids[r],
                role: ROLE_NAMES[r],
                stream_type: stream_types[r],
                packets: self.written[r],
                lost_packets: self.lost[r],
                cc_errors: if r < 4 { self.cc_errors[r] } else { 0 },
                scrambled: self.s.scrambled && (r == 2 || r == 3),
            })
            .collect();
        let ts = TsTruth {
            program_number: self.s.program_number,
            pmt_pid: self.s.pmt_pid,
            pcr_pid: self.s.video_pid,
            mux_rate_bps: self.s.mux_rate_bps,
            ts_per_datagram: self.s.ts_per_datagram,
            ts_packets: self.written.iter().sum(),
            datagrams_sent: self.datagrams_sent,
            datagrams_dropped: self.datagrams_dropped,
            pcr_count: self.pcr_count,
            datagrams_duplicated: self.fx.duplicated,
            datagrams_reordered: self.fx.reordered,
            pcr_discontinuities: self.fx.pcr_discontinuities,
            pids,
        };
        if let Some(ft) = sh.flows.get_mut(f) {
            ft.ts = Some(ts);
            if self.s.rtp {
                ft.rtp = Some(self.rtp.clone());
            }
        }
    }
}

/// The mux as a byte source for unicast delivery (HTTP segments and progressive
/// streams): packets come out one at a time in mux order, with no datagrams, losses or
/// flow accounting of their own.
impl Channel {
    /// Builds the next TS packet of the mux into `out`.
    pub(crate) fn next_packet(&mut self, out: &mut [u8; TS_PACKET]) {
        let k = self.k;
        self.pcrs_in_dgram = 0;
        self.fill_packet(0, k);
        out.copy_from_slice(&self.dgram[..TS_PACKET]);
        self.written[self.roles[0] as usize] += 1;
        self.pcr_count += self.pcrs_in_dgram;
        self.k += 1;
    }

    /// Time at which TS packet `k` leaves the mux.
    pub(crate) fn packet_time(&mut self, k: u64) -> u64 {
        self.slot_time(k)
    }

    /// TS facts of the packets produced by [`Channel::next_packet`] (no losses, no CC errors).
    pub(crate) fn stream_truth(&self) -> TsTruth {
        let stream_types = [
            None,
            None,
            Some(STREAM_TYPE_H264),
            Some(STREAM_TYPE_AAC),
            None,
        ];
        TsTruth {
            program_number: self.s.program_number,
            pmt_pid: self.s.pmt_pid,
            pcr_pid: self.s.video_pid,
            mux_rate_bps: self.s.mux_rate_bps,
            ts_per_datagram: self.s.ts_per_datagram,
            ts_packets: self.written.iter().sum(),
            datagrams_sent: 0,
            datagrams_dropped: 0,
            pcr_count: self.pcr_count,
            datagrams_duplicated: 0,
            datagrams_reordered: 0,
            pcr_discontinuities: 0,
            pids: (0..5)
                .map(|r| PidTruth {
                    pid: self.pids[r],
                    role: ROLE_NAMES[r],
                    stream_type: stream_types[r],
                    packets: self.written[r],
                    lost_packets: 0,
                    cc_errors: 0,
                    scrambled: false,
                })
                .collect(),
        }
    }
}

/// PCR values wrap at 2^33 · 300 (ISO/IEC 13818-1 §2.4.2.2).
const PCR_MODULUS: i128 = (1 << 33) * 300;
/// A receiver flags consecutive PCRs more than 100 ms apart (or going back) without the
/// discontinuity_indicator (TR 101 290 §5.2.2, PCR_discontinuity_indicator_error).
const PCR_MAX_GAP: i128 = 27_000_000 / 10;

/// A datagram kept for a later write (a duplicate copy or a reordered datagram).
struct Snap {
    dgram: [u8; 7 * TS_PACKET],
    roles: [Role; 7],
    ccs: [u8; 7],
    pcrs: u64,
    seq: u16,
    n: usize,
    /// Time the head-end sent it (its RTP timestamp).
    sent: u64,
}

/// Fault state of a channel and the receiver-side counters of what was written.
#[derive(Default)]
struct FaultState {
    pcr_offset: i64,
    jump_idx: usize,
    /// A datagram held back to be written after the next written one.
    held: Option<Box<Snap>>,
    /// Writes due later: time, datagram, fault kind (sorted by time).
    deferred: Vec<(u64, Box<Snap>, &'static str)>,
    regular_done: bool,
    rtp_time: Option<u64>,
    duplicated: u64,
    reordered: u64,
    last_pcr: Option<u64>,
    pcr_discontinuities: u64,
    rx: RtpRx,
}

/// RFC 3550 §A.1-style receiver state: extended highest sequence number and a bitmap
/// of the 64 numbers below it, so duplicates and late packets are told apart.
#[derive(Default)]
struct RtpRx {
    started: bool,
    base: u64,
    highest: u64,
    window: u64,
    unique: u64,
    gaps: i64,
}

/// Stream faults (`crate::faults`): duplicate and reordered datagrams, PCR jumps, and
/// the receiver-side accounting of the written datagrams.
impl Channel {
    /// Installs the channel's stream faults.
    pub(crate) fn set_faults(&mut self, f: crate::faults::StreamFaults) {
        self.faults = f;
    }

    fn snap(&self, sent: u64, seq: u16, n: usize) -> Box<Snap> {
        Box::new(Snap {
            dgram: self.dgram,
            roles: self.roles,
            ccs: self.ccs,
            pcrs: self.pcrs_in_dgram,
            seq,
            n,
            sent,
        })
    }

    /// Half the gap to the next datagram (1 ns .. 50 µs): when copies are written.
    fn defer_delay(&mut self, now: u64, n: usize) -> u64 {
        let next = self.slot_time(self.k + n as u64);
        (next.saturating_sub(now) / 2).clamp(1, 50_000)
    }

    /// Writes the datagram built at `now`, holding, duplicating or releasing per the faults.
    fn emit_faulty(&mut self, now: u64, seq: u16, n: usize, sh: &mut Shared) {
        if let Some(h) = self.fx.held.take() {
            self.emit(now, seq, n, sh);
            let t = now + self.defer_delay(now, n);
            self.defer(t, h, "multicast_reorder");
            return;
        }
        if self.faults.reorder(now) {
            self.fx.held = Some(self.snap(now, seq, n));
            return;
        }
        self.emit(now, seq, n, sh);
        if self.faults.duplicate(now) {
            let t = now + self.defer_delay(now, n);
            let s = self.snap(now, seq, n);
            self.defer(t, s, "multicast_duplicate");
        }
    }

    fn defer(&mut self, t: u64, s: Box<Snap>, kind: &'static str) {
        self.fx.deferred.push((t, s, kind));
        self.fx.deferred.sort_by_key(|d| d.0);
    }

    fn next_due(&mut self) -> Option<u64> {
        let regular = if self.fx.regular_done {
            None
        } else {
            Some(self.slot_time(self.k))
        };
        let d = self.fx.deferred.first().map(|d| d.0);
        match (regular, d) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Next step time after a regular datagram; releases a held one at the end.
    fn after_step(&mut self, now: u64, next: u64) -> Option<u64> {
        if next >= self.s.end_ns {
            self.fx.regular_done = true;
            if let Some(h) = self.fx.held.take() {
                self.defer(now + 1, h, "multicast_reorder");
            }
        }
        self.next_due()
    }

    /// Writes a deferred datagram if one is due; `None` when the regular one is due.
    fn step_deferred(&mut self, now: u64, sh: &mut Shared) -> Option<Option<u64>> {
        if self.fx.deferred.first().is_none_or(|d| d.0 > now) {
            return None;
        }
        let (_, s, kind) = self.fx.deferred.remove(0);
        self.dgram = s.dgram;
        self.roles = s.roles;
        self.ccs = s.ccs;
        self.pcrs_in_dgram = s.pcrs;
        self.fx.rtp_time = Some(s.sent);
        self.emit(now, s.seq, s.n, sh);
        self.fx.rtp_time = None;
        if kind == "multicast_duplicate" {
            self.fx.duplicated += 1;
        } else {
            self.fx.reordered += 1;
        }
        sh.events.faults.push(crate::truth::FaultEvent {
            ts_ns: sh.q(now),
            kind,
            target: self.s.name.clone(),
            flow_id: self.flow.map(|f| f as u64),
            rtp_seq: self.s.rtp.then_some(s.seq),
            pcr_jump: None,
        });
        Some(self.next_due())
    }

    /// Applies the PCR jumps due by `now` (the datagram's send time).
    fn apply_pcr_jumps(&mut self, now: u64, sh: &mut Shared) {
        while let Some(&(at, jump)) = self.faults.pcr_jumps.get(self.fx.jump_idx) {
            if now < at {
                break;
            }
            self.fx.jump_idx += 1;
            self.fx.pcr_offset += jump;
            sh.events.faults.push(crate::truth::FaultEvent {
                ts_ns: sh.q(now),
                kind: "pcr_discontinuity",
                target: self.s.name.clone(),
                flow_id: self.flow.map(|f| f as u64),
                rtp_seq: None,
                pcr_jump: Some(jump),
            });
        }
    }

    /// Checks the PCRs of the datagram just written against the previous one.
    fn track_pcrs(&mut self, n: usize) {
        for j in 0..n {
            if self.roles[j] != Role::Video {
                continue;
            }
            let p = &self.dgram[j * TS_PACKET..(j + 1) * TS_PACKET];
            // adaptation_field_control has an adaptation field, length >= 7, PCR_flag.
            if p[3] & 0x20 == 0 || p[4] < 7 || p[5] & 0x10 == 0 {
                continue;
            }
            let base = ((p[6] as u64) << 25)
                | ((p[7] as u64) << 17)
                | ((p[8] as u64) << 9)
                | ((p[9] as u64) << 1)
                | (p[10] as u64 >> 7);
            let pcr = base * 300 + ((((p[10] & 1) as u64) << 8) | p[11] as u64);
            if let Some(l) = self.fx.last_pcr {
                let d = (pcr as i128 - l as i128).rem_euclid(PCR_MODULUS);
                // A backwards step shows as a difference just below the modulus.
                if d > PCR_MAX_GAP {
                    self.fx.pcr_discontinuities += 1;
                }
            }
            self.fx.last_pcr = Some(pcr);
        }
    }

    /// Receiver accounting of RTP sequence number `seq` (RFC 3550 §A.1, §A.3).
    fn rtp_receive(&mut self, seq: u16) {
        let rx = &mut self.fx.rx;
        let r = &mut self.rtp;
        r.packets += 1;
        if !rx.started {
            // Extended numbers start at 2^32 + seq so late packets never go below zero.
            let ext = (1u64 << 32) | seq as u64;
            *rx = RtpRx {
                started: true,
                base: ext,
                highest: ext,
                window: 1,
                unique: 1,
                gaps: 0,
            };
            r.first_seq = Some(seq);
            r.last_seq = Some(seq);
            return;
        }
        let d = seq.wrapping_sub(rx.highest as u16) as i16 as i64;
        if d > 0 {
            if d > 1 {
                rx.gaps += 1;
            }
            rx.window = if d >= 64 { 0 } else { rx.window << d } | 1;
            rx.highest += d as u64;
            rx.unique += 1;
        } else {
            let back = (-d) as u64;
            let ext = rx.highest - back;
            if back < 64 && rx.window & (1 << back) != 0 {
                r.duplicates += 1;
                return;
            }
            r.reordered += 1;
            rx.unique += 1;
            if back < 64 {
                rx.window |= 1 << back;
                let newer = rx.window & (1 << (back - 1)) != 0;
                let older = ext <= rx.base || (back + 1 < 64 && rx.window & (1 << (back + 1)) != 0);
                match (newer, older) {
                    (true, true) => rx.gaps -= 1,
                    (false, false) => rx.gaps += 1,
                    _ => {}
                }
            }
            if ext < rx.base {
                rx.base = ext;
                r.first_seq = Some(seq);
            }
        }
        r.lost = (rx.highest - rx.base + 1).saturating_sub(rx.unique);
        r.gaps = rx.gaps.max(0) as u64;
        r.last_seq = Some(rx.highest as u16);
    }
}

/// CRC-32/MPEG-2 (ISO/IEC 13818-1 Annex A): poly 0x04C11DB7, init all ones, no reflection.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A PAT section (§2.4.4.3) with one program, CRC included.
fn pat_section(ts_id: u16, program: u16, pmt_pid: u16) -> Vec<u8> {
    let mut s = vec![0x00, 0xB0, 13];
    s.extend_from_slice(&ts_id.to_be_bytes());
    s.extend_from_slice(&[0xC1, 0, 0]);
    s.extend_from_slice(&program.to_be_bytes());
    s.extend_from_slice(&(0xE000 | pmt_pid).to_be_bytes());
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// A PMT section (§2.4.4.8), CRC included.
fn pmt_section(program: u16, pcr_pid: u16, streams: &[(u8, u16)]) -> Vec<u8> {
    let len = 9 + 5 * streams.len() + 4;
    let mut s = vec![0x02, 0xB0 | (len >> 8) as u8, len as u8];
    s.extend_from_slice(&program.to_be_bytes());
    s.extend_from_slice(&[0xC1, 0, 0]);
    s.extend_from_slice(&(0xE000 | pcr_pid).to_be_bytes());
    s.extend_from_slice(&[0xF0, 0x00]);
    for &(st, pid) in streams {
        s.push(st);
        s.extend_from_slice(&(0xE000 | pid).to_be_bytes());
        s.extend_from_slice(&[0xF0, 0x00]);
    }
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// One TS packet carrying a whole PSI section (PUSI set, pointer_field 0, 0xFF stuffing).
fn psi_packet(section: &[u8], pid: u16) -> [u8; TS_PACKET] {
    let mut p = [0xFFu8; TS_PACKET];
    p[0] = SYNC;
    p[1] = 0x40 | ((pid >> 8) as u8 & 0x1F);
    p[2] = pid as u8;
    p[3] = 0x10;
    p[4] = 0;
    p[5..5 + section.len()].copy_from_slice(section);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // CRC-32/MPEG-2 check value of "123456789" is 0x0376E6E7.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
        // A section followed by its own CRC gives a remainder of zero.
        let s = pat_section(1, 1, 0x100);
        assert_eq!(crc32_mpeg2(&s), 0);
        let p = pmt_section(1, 0x101, &[(0x1B, 0x101), (0x0F, 0x102)]);
        assert_eq!(crc32_mpeg2(&p), 0);
        assert_eq!(p.len(), 3 + 9 + 10 + 4);
    }
}
