//! [`TsAnalyzer`]: one multiplex's state (see the [module documentation](super)).

use super::framing::{self, ByteStream, Interleave, StreamEvent};
use super::jitter::Jitter;
use super::packet::{pcr_delta, pes_pts, ticks_to_ns, Header, PCR_HZ};
use super::psi::{self, SectionBuf, SectionEvent, TID_PAT, TID_PMT};
use super::{
    Framing, PidSummary, ProgramSummary, Tr101290, TsConfig, TsIntervalCounters, TsSummary,
    MAX_PROGRAMS, NULL_PID, SYNC_BYTE, TS_PACKET_LEN,
};

/// Number of PIDs (13 bits).
const PID_COUNT: usize = 8192;
/// PIDs found by a linear search before the map ([`Core::slot`]).
const FEW_PIDS: usize = 8;
/// Counter value before the first packet.
const NO_CC: u8 = 0xff;
/// How often PMT and PID deadlines are scanned.
const SCAN_EVERY_NS: i64 = 50_000_000;

/// What a PID carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Unknown,
    Pat,
    Pmt {
        program: u16,
    },
    Es {
        program: u16,
        stream_type: u8,
        label: &'static str,
    },
}

/// The PCR state of one PID.
#[derive(Clone, Copy, Debug, Default)]
struct Pcr {
    count: u64,
    /// Last PCR: value, multiplex position, capture time, multiplex lost count then.
    last: Option<(u64, u64, i64, u64)>,
    interval_min: Option<i64>,
    interval_max: Option<i64>,
    /// Packets and ticks over the good intervals (no discontinuity, no loss).
    sum_packets: u64,
    sum_ticks: u64,
    repetition_errors: u64,
    discontinuity_errors: u64,
    accuracy_errors: u64,
}

impl Pcr {
    fn bitrate(&self) -> Option<f64> {
        (self.sum_ticks > 0 && self.sum_packets > 0).then(|| {
            (self.sum_packets * TS_PACKET_LEN as u64 * 8) as f64 * PCR_HZ as f64
                / self.sum_ticks as f64
        })
    }
}

/// One PID's state.
#[derive(Clone, Debug)]
struct PidState {
    pid: u16,
    role: Role,
    packets: u64,
    cc: u8,
    dup_seen: bool,
    cc_errors: u64,
    lost: u64,
    duplicates: u64,
    tei: u64,
    scrambled: u64,
    pcr: Pcr,
    /// Sections being assembled (PAT and PMT PIDs only).
    sections: Option<Box<SectionBuf>>,
    /// CRC of the last table read on this PID (to skip identical repetitions).
    last_crc: Option<u32>,
    /// PMT repetition deadline (PMT PIDs) / seen deadline (elementary PIDs).
    deadline: Option<i64>,
    last_seen: i64,
    last_pts_ns: Option<i64>,
    pts_errors: u64,
}

impl PidState {
    fn new(pid: u16, ts: i64) -> PidState {
        PidState {
            pid,
            role: if pid == 0 { Role::Pat } else { Role::Unknown },
            packets: 0,
            cc: NO_CC,
            dup_seen: false,
            cc_errors: 0,
            lost: 0,
            duplicates: 0,
            tei: 0,
            scrambled: 0,
            pcr: Pcr::default(),
            sections: None,
            last_crc: None,
            deadline: None,
            last_seen: ts,
            last_pts_ns: None,
            pts_errors: 0,
        }
    }

    fn summary(&self) -> PidSummary {
        let (kind, program, stream_type) = match self.role {
            Role::Pat => ("pat", None, None),
            Role::Pmt { program } => ("pmt", Some(program), None),
            Role::Es {
                program,
                stream_type,
                label,
            } => (label, Some(program), Some(stream_type)),
            Role::Unknown if self.pid == NULL_PID => ("null", None, None),
            Role::Unknown if self.pid < 0x20 => ("si", None, None),
            Role::Unknown => ("unreferenced", None, None),
        };
        PidSummary {
            pid: self.pid,
            kind,
            program,
            stream_type,
            packets: self.packets,
            cc_errors: self.cc_errors,
            lost_packets: self.lost,
            duplicates: self.duplicates,
            transport_errors: self.tei,
            scrambled: self.scrambled,
            pcr_count: self.pcr.count,
            pcr_interval_min_ns: self.pcr.interval_min,
            pcr_interval_max_ns: self.pcr.interval_max,
            pcr_bitrate_bps: self.pcr.bitrate(),
            pcr_repetition_errors: self.pcr.repetition_errors,
            pcr_discontinuity_errors: self.pcr.discontinuity_errors,
            pcr_accuracy_errors: self.pcr.accuracy_errors,
            pts_errors: self.pts_errors,
        }
    }
}

/// What the continuity check says about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cc {
    /// In order (or the PID's first packet, or a discontinuity_indicator).
    Ok,
    /// A first repetition: counted, payload not read again.
    Duplicate,
    /// Out of order: the PID's partial section is dropped.
    Error,
}

/// The current time bin.
#[derive(Clone, Copy, Debug, Default)]
struct Bin {
    start_ns: Option<i64>,
    packets: u64,
    cc_errors: u64,
    lost: u64,
    tei: u64,
    pcr_errors: u64,
    /// MDI: the rate fixed for the bin (bytes per ns), arrival origin, bytes since,
    /// min and max of the virtual buffer.
    rate: Option<f64>,
    t0: i64,
    arrived: f64,
    vb_min: f64,
    vb_max: f64,
}

/// Everything but the framing readers.
#[derive(Debug)]
struct Core {
    config: TsConfig,
    /// PID → slot in `pids`: a map rather than an 8,192-entry array, so that a flow
    /// that looked like TS once costs a few bytes, not 16 KiB (a hostile capture can have
    /// a million such flows); the last PID looked up is kept beside it (video PIDs come
    /// in runs).
    index: hashbrown::HashMap<u16, u16, foldhash::fast::FixedState>,
    last: Option<(u16, u16)>,
    /// The first [`FEW_PIDS`] PIDs and their slots, searched before the map: a channel's
    /// PIDs (PAT, PMT, video, audio, null) interleave, so `last` misses often.
    few: [(u16, u16); FEW_PIDS],
    few_len: u8,
    pids: Vec<PidState>,
    programs: Vec<ProgramSummary>,
    /// PAT version and id last read.
    tr: Tr101290,
    packets: u64,
    null_packets: u64,
    untracked: u64,
    bad_af: u64,
    sections: u64,
    bad_sections: u64,
    lost_total: u64,
    /// Datagrams found missing by the RTP sequence numbers of TS in RTP, as they arrive
    /// (the continuity counters see a loss only at the PID's next packet, null packets
    /// never).
    datagram_gaps: u64,
    /// TS packets per datagram (0 in a byte stream).
    per_datagram: u64,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    pat_deadline: Option<i64>,
    next_scan: i64,
    /// Slot of the reference PCR PID.
    pcr_ref: Option<usize>,
    jitter: Box<Jitter>,
    bin: Bin,
    df_max_ms: Option<f64>,
    mlr_max: f64,
}

/// The TS analysis of one multiplex: see the [module documentation](super).
#[derive(Debug)]
pub struct TsAnalyzer {
    core: Core,
    stream: ByteStream,
    inter: Interleave,
    framing: Option<Framing>,
    datagrams: u64,
    not_ts: u64,
    skipped: u64,
    /// TS packets lost by the RTP sequence numbers (see [`TsAnalyzer::set_rtp_lost`]).
    rtp_lost: Option<u64>,
    /// The highest RTP sequence number of TS in RTP so far.
    rtp_seq: Option<u16>,
    /// Datagram slots without a sync byte in a row, across datagrams.
    bad_slots: u8,
}

impl TsAnalyzer {
    /// A new multiplex.
    pub fn new(config: TsConfig) -> TsAnalyzer {
        let mut config = config;
        config.max_pids = config.max_pids.min(PID_COUNT);
        TsAnalyzer {
            core: Core {
                config,
                index: Default::default(),
                last: None,
                few: [(0, 0); FEW_PIDS],
                few_len: 0,
                pids: Vec::new(),
                programs: Vec::new(),
                tr: Tr101290::default(),
                packets: 0,
                null_packets: 0,
                untracked: 0,
                bad_af: 0,
                sections: 0,
                bad_sections: 0,
                lost_total: 0,
                datagram_gaps: 0,
                per_datagram: 0,
                first_ns: None,
                last_ns: None,
                pat_deadline: None,
                next_scan: i64::MIN,
                pcr_ref: None,
                jitter: Box::new(Jitter::new()),
                bin: Bin::default(),
                df_max_ms: None,
                mlr_max: 0.0,
            },
            stream: ByteStream::default(),
            inter: Interleave::default(),
            framing: None,
            datagrams: 0,
            not_ts: 0,
            skipped: 0,
            rtp_lost: None,
            rtp_seq: None,
            bad_slots: 0,
        }
    }

    /// One UDP payload (raw TS or TS in RTP, see [carriage](super#carriage)). Returns
    /// whether it was read as TS.
    pub fn on_datagram(&mut self, ts_ns: i64, payload: &[u8]) -> bool {
        self.datagrams += 1;
        // Most datagrams are framed as the last one: same length, sync byte in place.
        let same = self.framing.filter(|f| {
            let at = usize::from(f.offset);
            payload.len() == at + usize::from(f.packet_len) * usize::from(f.packets)
                && payload.get(at) == Some(&SYNC_BYTE)
                && (f.offset == 0 || payload.first().is_some_and(|b| b >> 6 == 2))
        });
        let framing = match same.or_else(|| framing::detect(payload)) {
            Some(f) => {
                self.framing = Some(f);
                f
            }
            None => match self.framing.and_then(|f| refit(f, payload)) {
                Some(f) => f,
                None => {
                    self.not_ts += 1;
                    return false;
                }
            },
        };
        let start = usize::from(framing.offset);
        let len = usize::from(framing.packet_len);
        let n = usize::from(framing.packets);
        let Some(body) = payload.get(start..start + len * n) else {
            self.not_ts += 1;
            return false;
        };
        self.core.per_datagram = n as u64;
        if start > 0 {
            // TS in RTP: a sequence number ahead of the next one tells of datagrams lost
            // before this one (a late or repeated one moves nothing).
            let seq = u16::from_be_bytes([payload[2], payload[3]]);
            let ahead = self.rtp_seq.map_or(1, |prev| seq.wrapping_sub(prev));
            if (1..0x8000).contains(&ahead) {
                self.core.datagram_gaps += u64::from(ahead - 1);
                self.rtp_seq = Some(seq);
            }
        }
        let mut good = 0;
        for slot in body.chunks_exact(len) {
            match slot
                .get(..TS_PACKET_LEN)
                .and_then(|p| <&[u8; TS_PACKET_LEN]>::try_from(p).ok())
            {
                Some(p) if p[0] == SYNC_BYTE => {
                    self.core.packet(ts_ns, p);
                    good += 1;
                    self.bad_slots = 0;
                }
                _ => {
                    self.core.tr.sync_byte_error += 1;
                    // TS_sync_loss: the second bad sync byte in a row (TR 101 290 1.1,
                    // as in a byte stream), once per run.
                    self.bad_slots = self.bad_slots.saturating_add(1);
                    if self.bad_slots == 2 {
                        self.core.tr.ts_sync_loss += 1;
                    }
                }
            }
        }
        self.core.arrival(ts_ns, good);
        true
    }

    /// The next bytes of a TS byte stream (e.g. the body of an HTTP response), cut
    /// anyhow; `ts_ns` is the time they arrived.
    pub fn on_bytes(&mut self, ts_ns: i64, bytes: &[u8]) {
        let core = &mut self.core;
        let skipped = &mut self.skipped;
        let mut good = 0;
        self.stream.push(bytes, &mut |ev| match ev {
            StreamEvent::Packet(p) => {
                core.packet(ts_ns, p);
                good += 1;
            }
            StreamEvent::SyncByteError => core.tr.sync_byte_error += 1,
            StreamEvent::SyncLoss => core.tr.ts_sync_loss += 1,
            StreamEvent::Skipped(n) => *skipped += n as u64,
        });
        if good > 0 {
            core.arrival(ts_ns, good);
        }
    }

    /// The next bytes of a TCP direction carrying RTSP interleaved data (RFC 2326
    /// section 10.12), with or without RTP inside, cut anyhow.
    pub fn on_interleaved(&mut self, ts_ns: i64, bytes: &[u8]) {
        let core = &mut self.core;
        let skipped = &mut self.skipped;
        let stream = &mut self.stream;
        let mut good = 0;
        self.inter.push(bytes, &mut |data| {
            stream.push(data, &mut |ev| match ev {
                StreamEvent::Packet(p) => {
                    core.packet(ts_ns, p);
                    good += 1;
                }
                StreamEvent::SyncByteError => core.tr.sync_byte_error += 1,
                StreamEvent::SyncLoss => core.tr.ts_sync_loss += 1,
                StreamEvent::Skipped(n) => *skipped += n as u64,
            });
        });
        if good > 0 {
            core.arrival(ts_ns, good);
        }
    }

    /// Closes the current time bin at `now_ns` and starts the next.
    pub fn take_interval(&mut self, now_ns: i64) -> TsIntervalCounters {
        self.core.take_interval(now_ns)
    }

    /// The end of the stream: runs the deadline checks up to the last packet and closes
    /// the PCR jitter window. The bin in progress stays open for [`Self::take_interval`].
    pub fn finish(&mut self, end_ns: i64) {
        let core = &mut self.core;
        if let Some(last) = core.last_ns {
            core.scan(last.min(end_ns));
        }
        core.jitter.close();
    }

    /// The TS came in RTP, and its sequence numbers say `datagrams` were lost: the media
    /// loss rate is counted from them (times the TS packets a datagram carries), which
    /// see what the continuity counters cannot (a PID's gap of 16 packets or more).
    pub fn set_rtp_lost(&mut self, datagrams: u64) {
        self.rtp_lost = Some(datagrams.saturating_mul(self.packets_per_datagram()));
    }

    /// TS packets per datagram, by the framing found (1 before it is, or in a byte
    /// stream).
    pub fn packets_per_datagram(&self) -> u64 {
        self.framing.map_or(1, |f| u64::from(f.packets.max(1)))
    }

    /// TR 101 290 counters so far.
    pub fn tr101290(&self) -> &Tr101290 {
        &self.core.tr
    }

    /// The whole stream so far.
    pub fn summary(&self) -> TsSummary {
        let c = &self.core;
        let pcr_ref = c.pcr_ref.and_then(|i| c.pids.get(i));
        let duration_s = match (c.first_ns, c.last_ns) {
            (Some(a), Some(b)) if b > a => Some((b - a) as f64 / 1e9),
            _ => None,
        };
        let df_bin = c.bin_df_ms();
        TsSummary {
            first_ns: c.first_ns,
            last_ns: c.last_ns,
            framing: self.framing,
            stream_packet_len: self.stream.packet_len().map(|l| l as u16),
            datagrams: self.datagrams,
            datagrams_not_ts: self.not_ts,
            packets: c.packets,
            null_packets: c.null_packets,
            null_share: (c.packets > 0).then(|| c.null_packets as f64 / c.packets as f64),
            untracked_packets: c.untracked,
            bad_adaptation_fields: c.bad_af,
            sections: c.sections,
            bad_sections: c.bad_sections,
            bytes_skipped: self.skipped,
            interleaved_frames: self.inter.frames,
            interleaved_resyncs: self.inter.resyncs,
            pids: c.pids.len() as u64,
            programs: c.programs.len() as u64,
            pcr_pid: pcr_ref.map(|p| p.pid),
            bitrate_bps: pcr_ref.and_then(|p| p.pcr.bitrate()),
            pcr_jitter_ns: c.jitter.max,
            ts_resolution_ns: c.config.ts_resolution_ns,
            df_max_ms: max_opt(c.df_max_ms, df_bin),
            lost_packets: c.lost_total,
            rtp_lost_packets: self.rtp_lost,
            mlr_pps: duration_s.map(|d| self.rtp_lost.unwrap_or(c.lost_total) as f64 / d),
            mlr_max_pps: c.mlr_max,
            tr101290: c.tr,
        }
    }

    /// One row per PID seen, in order of first appearance.
    pub fn pids(&self) -> impl Iterator<Item = PidSummary> + '_ {
        self.core.pids.iter().map(PidState::summary)
    }

    /// The programs of the PAT.
    pub fn programs(&self) -> impl Iterator<Item = ProgramSummary> + '_ {
        self.core.programs.iter().copied()
    }
}

/// The last framing applied to a payload that failed detection, when its length fits
/// (the RTP header re-read).
fn refit(f: Framing, payload: &[u8]) -> Option<Framing> {
    let len = usize::from(f.packet_len);
    let (start, end) = match f.encapsulation {
        super::Encapsulation::Raw => (0, payload.len()),
        super::Encapsulation::Rtp { .. } => {
            let (s, e, _) = framing::rtp_payload(payload)?;
            (s, e)
        }
    };
    let body = end - start;
    (body > 0 && body % len == 0 && body / len <= 64).then_some(Framing {
        offset: start as u16,
        packets: (body / len) as u16,
        ..f
    })
}

fn max_opt<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y > x { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Core {
    /// The slot of a PID, made on first sight (up to `max_pids`).
    #[inline]
    fn slot(&mut self, pid: u16, ts: i64) -> Option<usize> {
        if let Some((p, i)) = self.last {
            if p == pid {
                return Some(usize::from(i));
            }
        }
        let few = &self.few[..usize::from(self.few_len)];
        let i = match few.iter().find(|(p, _)| *p == pid) {
            Some(&(_, i)) => i,
            None => match self.index.get(&pid) {
                Some(&i) => i,
                None => {
                    if self.pids.len() >= self.config.max_pids.min(PID_COUNT) {
                        return None;
                    }
                    let i = self.pids.len() as u16;
                    if usize::from(self.few_len) < FEW_PIDS {
                        self.few[usize::from(self.few_len)] = (pid, i);
                        self.few_len += 1;
                    } else {
                        self.index.insert(pid, i);
                    }
                    self.pids.push(PidState::new(pid, ts));
                    i
                }
            },
        };
        self.last = Some((pid, i));
        Some(usize::from(i))
    }

    /// One packet with a right sync byte.
    fn packet(&mut self, ts: i64, p: &[u8; TS_PACKET_LEN]) {
        let pos = self.packets;
        self.packets += 1;
        self.bin.packets += 1;
        if self.first_ns.is_none() {
            self.first_ns = Some(ts);
            self.pat_deadline = Some(ts + self.config.psi_interval_ns);
            self.bin.start_ns.get_or_insert(ts);
        }
        self.last_ns = Some(ts);
        self.check_deadlines(ts);

        let h = Header::parse(p);
        if h.pid == NULL_PID {
            self.null_packets += 1;
        }
        let Some(i) = self.slot(h.pid, ts) else {
            self.untracked += 1;
            return;
        };
        let st = &mut self.pids[i];
        st.packets += 1;
        st.last_seen = ts;
        if h.tei {
            st.tei += 1;
            self.tr.transport_error += 1;
            self.bin.tei += 1;
            return;
        }
        if h.scrambling != 0 {
            st.scrambled += 1;
        }
        let cc = if h.pid == NULL_PID {
            Cc::Ok
        } else {
            let (cc, lost) = continuity(st, &h);
            if cc == Cc::Error {
                st.cc_errors += 1;
                st.lost += lost;
                self.tr.continuity_count_error += 1;
                self.bin.cc_errors += 1;
                self.bin.lost += lost;
                self.lost_total += lost;
            }
            cc
        };
        if h.bad_af {
            self.bad_af += 1;
            return;
        }
        if cc == Cc::Duplicate {
            return;
        }
        if let Some(pcr) = h.pcr {
            self.pcr(i, ts, pos, pcr, h.discontinuity);
        }
        if !h.has_payload() {
            return;
        }
        let payload = &p[h.payload_start.min(TS_PACKET_LEN)..];
        let st = &mut self.pids[i];
        match st.role {
            Role::Pat | Role::Pmt { .. } => {
                if h.scrambling != 0 {
                    if st.role == Role::Pat {
                        self.tr.pat_error_2 += 1;
                    } else {
                        self.tr.pmt_error_2 += 1;
                    }
                    return;
                }
                let mut sb = st.sections.take().unwrap_or_default();
                self.sections_of(i, ts, cc, h.pusi, payload, &mut sb);
                if let Some(st) = self.pids.get_mut(i) {
                    st.sections = Some(sb);
                }
            }
            Role::Es { .. } | Role::Unknown => {
                if h.pusi && h.scrambling == 0 && pes_pts(payload).is_some() {
                    if let Some(last) = st.last_pts_ns {
                        if ts - last > self.config.pts_interval_ns {
                            st.pts_errors += 1;
                            self.tr.pts_error += 1;
                        }
                    }
                    st.last_pts_ns = Some(ts);
                }
            }
        }
    }
}

/// The continuity check of one packet (not the null PID): see
/// [continuity](super#continuity-isoiec-13818-1-section-2433-tr-101-290-14). Returns the
/// verdict and, for an error, the packets missing by the gap.
#[inline]
fn continuity(st: &mut PidState, h: &Header) -> (Cc, u64) {
    let last = st.cc;
    if last == NO_CC || h.discontinuity {
        st.cc = h.cc;
        st.dup_seen = false;
        return (Cc::Ok, 0);
    }
    if !h.has_payload() {
        // No payload: the counter must repeat; it is not taken as the PID's state, so
        // that a muxer's stray increment is one error, not two.
        return if h.cc == last {
            (Cc::Ok, 0)
        } else {
            (Cc::Error, 0)
        };
    }
    st.cc = h.cc;
    if h.cc == last {
        if st.dup_seen {
            return (Cc::Error, 0);
        }
        st.dup_seen = true;
        st.duplicates += 1;
        return (Cc::Duplicate, 0);
    }
    st.dup_seen = false;
    let expected = (last + 1) & 0x0f;
    if h.cc == expected {
        (Cc::Ok, 0)
    } else {
        (Cc::Error, u64::from(h.cc.wrapping_sub(expected) & 0x0f))
    }
}

impl Core {
    /// Feeds a PSI PID's payload to its section buffer (taken out of the slot) and
    /// reads the sections that complete.
    fn sections_of(
        &mut self,
        i: usize,
        ts: i64,
        cc: Cc,
        pusi: bool,
        payload: &[u8],
        sb: &mut SectionBuf,
    ) {
        let mut f = |ev: SectionEvent<'_>| match ev {
            SectionEvent::Section(sec, crc) => self.section(i, ts, sec, crc),
            SectionEvent::CrcError => self.tr.crc_error += 1,
            SectionEvent::Malformed | SectionEvent::Incomplete => self.bad_sections += 1,
        };
        if cc == Cc::Error {
            sb.reset(&mut f);
        }
        sb.feed(pusi, payload, &mut f);
    }

    /// A complete section with a right CRC on PSI slot `i`.
    fn section(&mut self, i: usize, ts: i64, sec: &[u8], crc: u32) {
        self.sections += 1;
        let Some(h) = psi::long_header(sec) else {
            return;
        };
        let interval = self.config.psi_interval_ns;
        match self.pids[i].role {
            Role::Pat => {
                if h.table_id != TID_PAT {
                    self.tr.pat_error_2 += 1;
                    return;
                }
                self.pat_deadline = Some(ts + interval);
                if self.pids[i].last_crc == Some(crc) {
                    return;
                }
                self.pids[i].last_crc = Some(crc);
                for (number, pid) in psi::pat_entries(sec) {
                    if number == 0 || pid == 0 || pid == NULL_PID {
                        continue; // the network PID, or nonsense
                    }
                    let room = self.programs.len() < MAX_PROGRAMS;
                    match self.programs.iter_mut().find(|p| p.number == number) {
                        Some(p) => p.pmt_pid = pid,
                        None if room => self.programs.push(ProgramSummary {
                            number,
                            pmt_pid: pid,
                            pcr_pid: None,
                            streams: 0,
                        }),
                        None => {}
                    }
                    if let Some(j) = self.slot(pid, ts) {
                        let s = &mut self.pids[j];
                        if !matches!(s.role, Role::Pmt { .. }) {
                            s.role = Role::Pmt { program: number };
                            s.deadline = Some(ts + interval);
                            s.cc = NO_CC;
                        }
                    }
                }
            }
            Role::Pmt { .. } => {
                if h.table_id != TID_PMT {
                    return;
                }
                self.pids[i].deadline = Some(ts + interval);
                if self.pids[i].last_crc == Some(crc) {
                    return;
                }
                self.pids[i].last_crc = Some(crc);
                let Some((pcr_pid, streams)) = psi::pmt(sec) else {
                    return;
                };
                let timeout = self.config.pid_timeout_ns;
                let mut n: u16 = 0;
                for e in streams {
                    n = n.saturating_add(1);
                    let Some(j) = self.slot(e.pid, ts) else {
                        continue;
                    };
                    let s = &mut self.pids[j];
                    if matches!(s.role, Role::Pat | Role::Pmt { .. }) {
                        continue;
                    }
                    s.role = Role::Es {
                        program: h.id,
                        stream_type: e.stream_type,
                        label: psi::stream_label(e.stream_type, e.descriptors),
                    };
                    if s.deadline.is_none() {
                        s.deadline = Some(ts + timeout);
                    }
                }
                if let Some(p) = self.programs.iter_mut().find(|p| p.number == h.id) {
                    p.pcr_pid = Some(pcr_pid);
                    p.streams = n;
                }
            }
            _ => {}
        }
    }

    /// A PCR on slot `i` at multiplex position `pos`. The interval from the PID's last
    /// PCR feeds the PCR rate and the accuracy check only when no packet of it is known
    /// lost (continuity counters, RTP sequence numbers) and, in datagrams, when it does
    /// not miss or repeat a whole datagram's packets against the rate so far (a loss the
    /// counters have not seen yet: a datagram of other PIDs' and null packets).
    fn pcr(&mut self, i: usize, ts: i64, pos: u64, pcr: u64, discontinuity: bool) {
        let cfg = self.config;
        let is_ref = *self.pcr_ref.get_or_insert(i) == i;
        let lost_now = self.lost_total + self.datagram_gaps;
        let per_datagram = self.per_datagram;
        let stuffed = self.null_packets > 0;
        let p = &mut self.pids[i].pcr;
        p.count += 1;
        let mut continuous = !discontinuity;
        if let Some((prev, prev_pos, prev_ts, prev_lost)) = p.last {
            let dt = ts - prev_ts;
            p.interval_min = Some(p.interval_min.map_or(dt, |m| m.min(dt)));
            p.interval_max = Some(p.interval_max.map_or(dt, |m| m.max(dt)));
            if dt > cfg.pcr_interval_ns {
                p.repetition_errors += 1;
                self.tr.pcr_repetition_error += 1;
                self.bin.pcr_errors += 1;
            }
            if !discontinuity {
                let d = pcr_delta(prev, pcr);
                if d < 0 || ticks_to_ns(d) > cfg.pcr_discontinuity_ns {
                    p.discontinuity_errors += 1;
                    self.tr.pcr_discontinuity_indicator_error += 1;
                    self.bin.pcr_errors += 1;
                    continuous = false;
                } else if prev_lost == lost_now
                    && pos > prev_pos
                    && !datagram_off(p.sum_packets, p.sum_ticks, pos - prev_pos, d, per_datagram)
                {
                    let dpos = pos - prev_pos;
                    // Accuracy against the rate needs a constant rate: a multiplex
                    // stuffed with null packets; one without (HLS segments, files) runs at
                    // whatever rate its content takes between two PCRs.
                    if p.sum_packets > 0 && stuffed {
                        let expected = dpos as f64 * p.sum_ticks as f64 / p.sum_packets as f64;
                        let err_ns = (d as f64 - expected) * 1000.0 / 27.0;
                        if err_ns.abs() > cfg.pcr_accuracy_ns as f64 {
                            p.accuracy_errors += 1;
                            self.tr.pcr_accuracy_error += 1;
                            self.bin.pcr_errors += 1;
                        }
                    }
                    p.sum_packets += dpos;
                    p.sum_ticks += d as u64;
                }
            }
        }
        p.last = Some((pcr, pos, ts, lost_now));
        if is_ref {
            self.jitter.add(pcr, ts, continuous);
        }
    }

    /// The PAT deadline at every packet, the other deadlines every 50 ms.
    #[inline]
    fn check_deadlines(&mut self, ts: i64) {
        if let Some(d) = self.pat_deadline {
            if ts > d {
                self.tr.pat_error_2 += 1;
                self.pat_deadline = Some(ts + self.config.psi_interval_ns);
            }
        }
        if ts >= self.next_scan {
            self.next_scan = ts.saturating_add(SCAN_EVERY_NS);
            self.scan(ts);
        }
    }

    /// PMT repetition and PID presence deadlines.
    fn scan(&mut self, now: i64) {
        let cfg = self.config;
        for s in &mut self.pids {
            let Some(d) = s.deadline else {
                continue;
            };
            if now <= d {
                continue;
            }
            match s.role {
                Role::Pmt { .. } => {
                    self.tr.pmt_error_2 += 1;
                    s.deadline = Some(now + cfg.psi_interval_ns);
                }
                Role::Es { .. } => {
                    if now - s.last_seen > cfg.pid_timeout_ns {
                        self.tr.pid_error += 1;
                        s.deadline = Some(now + cfg.pid_timeout_ns);
                    } else {
                        s.deadline = Some(s.last_seen + cfg.pid_timeout_ns);
                    }
                }
                _ => s.deadline = None,
            }
        }
    }

    /// The reference PCR PID's rate so far (bits/s).
    fn rate_bps(&self) -> Option<f64> {
        self.pcr_ref
            .and_then(|i| self.pids.get(i))
            .and_then(|p| p.pcr.bitrate())
    }

    /// An arrival of `packets` TS packets (a datagram, a call's bytes): the MDI virtual
    /// buffer (RFC 4445 section 4.1).
    fn arrival(&mut self, ts: i64, packets: usize) {
        if packets == 0 {
            return;
        }
        let bytes = (packets * TS_PACKET_LEN) as f64;
        if self.bin.rate.is_none() {
            let Some(bps) = self.rate_bps() else {
                return;
            };
            let b = &mut self.bin;
            b.rate = Some(bps / 8e9);
            b.t0 = ts;
            b.arrived = 0.0;
            b.vb_min = f64::INFINITY;
            b.vb_max = f64::NEG_INFINITY;
        }
        let b = &mut self.bin;
        let Some(rate) = b.rate else {
            return;
        };
        let pre = b.arrived - rate * (ts - b.t0) as f64;
        let post = pre + bytes;
        b.vb_min = b.vb_min.min(pre);
        b.vb_max = b.vb_max.max(post);
        b.arrived += bytes;
    }

    /// The current bin's delay factor (ms).
    fn bin_df_ms(&self) -> Option<f64> {
        let b = &self.bin;
        let rate = b.rate?;
        (b.vb_max >= b.vb_min && rate > 0.0).then(|| (b.vb_max - b.vb_min) / rate / 1e6)
    }

    fn take_interval(&mut self, now: i64) -> TsIntervalCounters {
        let start = self.bin.start_ns.unwrap_or(now);
        let df_ms = self.bin_df_ms();
        let secs = (now - start) as f64 / 1e9;
        let mlr_pps = if secs > 0.0 {
            self.bin.lost as f64 / secs
        } else {
            0.0
        };
        self.df_max_ms = max_opt(self.df_max_ms, df_ms);
        if mlr_pps > self.mlr_max {
            self.mlr_max = mlr_pps;
        }
        let out = TsIntervalCounters {
            start_ns: start,
            end_ns: now,
            packets: self.bin.packets,
            cc_errors: self.bin.cc_errors,
            lost_packets: self.bin.lost,
            transport_errors: self.bin.tei,
            pcr_errors: self.bin.pcr_errors,
            df_ms,
            mlr_pps,
            pcr_jitter_ns: self.jitter.interval_max.take(),
        };
        self.bin = Bin {
            start_ns: Some(now),
            ..Bin::default()
        };
        out
    }
}

/// Whether a PCR interval of `packets` packets and `ticks` 27 MHz ticks misses or repeats
/// at least a whole datagram of `per_datagram` packets (less half a packet; at least one
/// packet: a constant-rate interval is off its rate by less than one) against the rate of
/// `sum_packets` over `sum_ticks` so far; false in a byte stream or before 64 packets of
/// rate.
fn datagram_off(
    sum_packets: u64,
    sum_ticks: u64,
    packets: u64,
    ticks: i64,
    per_datagram: u64,
) -> bool {
    if per_datagram == 0 || sum_packets < 64 || sum_ticks == 0 {
        return false;
    }
    let expected = ticks as f64 * sum_packets as f64 / sum_ticks as f64;
    (expected - packets as f64).abs() >= (per_datagram as f64 - 0.5).max(1.0)
}
