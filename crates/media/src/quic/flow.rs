//! [`QuicFlow`]: datagrams walked packet by packet, the client's Initials opened and
//! their CRYPTO frames reassembled into the ClientHello.

use super::crypto::{Keys, OpenError, Opener, Protection};
use super::packet::{
    gquic_public_header_version, long, long_type, next_frame, packet_bounds, protection, Cursor,
    Frame, MAX_CID_LEN,
};
use super::{
    ClientHello, Dir, DirStats, LongType, PacketForm, QuicDatagram, QuicStats, VersionKind,
    MAX_CRYPTO, MAX_INITIALS, PROBE_DATAGRAMS,
};
use crate::tls::HelloError;

/// Most separate pieces of CRYPTO data held out of order.
const MAX_RANGES: usize = 32;
/// Length of a handshake message header (RFC 8446 section 4).
const HS_HEADER_LEN: usize = 4;
/// ClientHello's handshake type.
const HS_CLIENT_HELLO: u8 = 1;

/// Whether the flow is QUIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Unknown,
    Quic,
    NotQuic,
}

/// The client's CRYPTO stream in the Initial space, by offset.
#[derive(Debug, Default)]
struct CryptoStream {
    data: Vec<u8>,
    /// Byte ranges held, sorted and disjoint (touching ranges merged).
    ranges: Vec<(usize, usize)>,
}

impl CryptoStream {
    /// Places `bytes` at `offset`; false when past the bound.
    fn insert(&mut self, offset: u64, bytes: &[u8]) -> bool {
        let Ok(start) = usize::try_from(offset) else {
            return false;
        };
        let end = start.saturating_add(bytes.len());
        if end > MAX_CRYPTO {
            return false;
        }
        if bytes.is_empty() {
            return true;
        }
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[start..end].copy_from_slice(bytes);
        // Merge [start, end) into the ranges.
        let mut s = start;
        let mut e = end;
        self.ranges.retain(|&(a, b)| {
            if b < s || a > e {
                true
            } else {
                s = s.min(a);
                e = e.max(b);
                false
            }
        });
        let at = self.ranges.partition_point(|&(a, _)| a < s);
        self.ranges.insert(at, (s, e));
        self.ranges.len() <= MAX_RANGES
    }

    /// The bytes held from offset 0 without a hole.
    fn prefix(&self) -> &[u8] {
        match self.ranges.first() {
            Some(&(0, e)) => &self.data[..e],
            _ => &[],
        }
    }
}

/// What is kept while the client's Initials are read.
struct InitialState {
    protection: Protection,
    dcid: [u8; MAX_CID_LEN],
    dcid_len: u8,
    opener: Opener,
    largest_pn: Option<u64>,
    initials: u32,
    crypto: CryptoStream,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for InitialState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialState")
            .field("protection", &self.protection)
            .field("initials", &self.initials)
            .finish_non_exhaustive()
    }
}

impl InitialState {
    fn new(protection: Protection, dcid: &[u8]) -> InitialState {
        let mut d = [0u8; MAX_CID_LEN];
        let n = dcid.len().min(MAX_CID_LEN);
        d[..n].copy_from_slice(&dcid[..n]);
        InitialState {
            protection,
            dcid: d,
            dcid_len: n as u8,
            opener: Opener::new(&Keys::client_initial(protection, &dcid[..n])),
            largest_pn: None,
            initials: 0,
            crypto: CryptoStream::default(),
            scratch: Vec::new(),
        }
    }

    fn dcid(&self) -> &[u8] {
        &self.dcid[..usize::from(self.dcid_len)]
    }
}

/// Where the ClientHello search stands.
#[derive(Debug)]
enum Hello {
    /// No client Initial yet.
    Waiting,
    /// Reading the client's Initials.
    Reading(Box<InitialState>),
    /// Read, or given up.
    Done,
}

/// What reading one client Initial gave.
enum Outcome {
    /// Keep reading.
    More,
    /// The ClientHello, or an end to the search.
    Hello(Result<ClientHello, HelloError>),
    Stop,
}

/// The QUIC state of one UDP flow: see the [module documentation](super).
#[derive(Debug)]
pub struct QuicFlow {
    verdict: Verdict,
    version: Option<u32>,
    hello: Hello,
    client_hello: Option<ClientHello>,
    client_hello_ts_ns: Option<i64>,
    dirs: [DirStats; 2],
    stats: QuicStats,
}

impl Default for QuicFlow {
    fn default() -> Self {
        QuicFlow::new()
    }
}

impl QuicFlow {
    /// A flow with no datagram yet.
    pub fn new() -> QuicFlow {
        QuicFlow {
            verdict: Verdict::Unknown,
            version: None,
            hello: Hello::Waiting,
            client_hello: None,
            client_hello_ts_ns: None,
            dirs: [DirStats::default(); 2],
            stats: QuicStats::default(),
        }
    }

    /// `Some(true)` once a QUIC long header (or gQUIC public header) was seen,
    /// `Some(false)` once given up, `None` before either.
    pub fn is_quic(&self) -> Option<bool> {
        match self.verdict {
            Verdict::Unknown => None,
            Verdict::Quic => Some(true),
            Verdict::NotQuic => Some(false),
        }
    }

    /// The version of the first long header (or gQUIC public header) seen, Version
    /// Negotiation's 0 excepted.
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// The client's ClientHello, once read.
    pub fn client_hello(&self) -> Option<&ClientHello> {
        self.client_hello.as_ref()
    }

    /// Time of the datagram that completed the ClientHello.
    pub fn client_hello_ts_ns(&self) -> Option<i64> {
        self.client_hello_ts_ns
    }

    /// Whether the client's Initials are still being read.
    pub fn reading_hello(&self) -> bool {
        !matches!(self.hello, Hello::Done)
    }

    /// One direction's counts.
    pub fn dir_stats(&self, dir: Dir) -> &DirStats {
        &self.dirs[dir.index()]
    }

    /// What was read and not, by kind.
    pub fn stats(&self) -> &QuicStats {
        &self.stats
    }

    /// One UDP datagram's payload. `on_datagram` hears it as a [`QuicDatagram`].
    pub fn on_datagram(
        &mut self,
        dir: Dir,
        ts_ns: i64,
        payload: &[u8],
        on_datagram: &mut impl FnMut(QuicDatagram),
    ) {
        self.stats.datagrams += 1;
        let d = &mut self.dirs[dir.index()];
        d.datagrams += 1;
        d.bytes += payload.len() as u64;
        let (first, packets) = if self.verdict == Verdict::NotQuic {
            (PacketForm::NotQuic, 0)
        } else {
            self.walk(dir, ts_ns, payload)
        };
        if self.verdict == Verdict::Unknown && self.stats.datagrams >= PROBE_DATAGRAMS {
            self.verdict = Verdict::NotQuic;
            self.stats.not_quic += 1;
            self.hello = Hello::Done;
        }
        on_datagram(QuicDatagram {
            dir,
            ts_ns,
            len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            first,
            packets,
        });
    }

    /// The flow ended: a ClientHello partly reassembled is counted, the state released.
    pub fn finish(&mut self, end_ts_ns: i64) {
        let _ = end_ts_ns;
        if let Hello::Reading(st) = &self.hello {
            if !st.crypto.ranges.is_empty() {
                self.stats.hello_incomplete += 1;
            }
        }
        self.hello = Hello::Done;
    }

    fn seen_version(&mut self, v: u32) {
        if v != 0 && self.version.is_none() {
            self.version = Some(v);
        }
        if v != 0 || self.verdict == Verdict::Unknown {
            self.verdict = Verdict::Quic;
        }
    }

    /// Reads the packets of a datagram: the form of the first and how many were read.
    fn walk(&mut self, dir: Dir, ts_ns: i64, payload: &[u8]) -> (PacketForm, u8) {
        let mut first = PacketForm::NotQuic;
        let mut packets = 0u8;
        let mut rest = payload;
        while let Some(&b0) = rest.first() {
            let form = if b0 & 0x80 == 0 {
                self.not_long(dir, ts_ns, rest, packets)
            } else {
                self.long_packet(dir, ts_ns, &mut rest)
            };
            let Some((form, more)) = form else {
                break;
            };
            if packets == 0 {
                first = form;
            }
            packets = packets.saturating_add(1);
            if !more {
                break;
            }
        }
        (first, packets)
    }

    /// A gQUIC packet of the client's before its hello was read: the server name of a
    /// `CHLO` in the clear (see [`super::gquic`]).
    fn gquic_hello(&mut self, dir: Dir, ts_ns: i64, d: &[u8]) {
        if dir != Dir::Up || self.client_hello.is_some() {
            return;
        }
        let Some(sni) = self.version.and_then(|v| super::gquic::chlo_sni(d, v)) else {
            return;
        };
        self.stats.gquic_hellos += 1;
        self.client_hello = Some(ClientHello {
            legacy_version: 0,
            sni: Some(sni),
            alpn: Vec::new(),
            supported_versions: Vec::new(),
            cipher_suites: 0,
            extensions: 0,
            bad_extensions: 0,
        });
        self.client_hello_ts_ns = Some(ts_ns);
    }

    /// A packet whose first byte's top bit is clear: gQUIC's public header, a short
    /// header, or bytes after the last packet. Takes the rest of the datagram.
    fn not_long(
        &mut self,
        dir: Dir,
        ts_ns: i64,
        rest: &[u8],
        packets: u8,
    ) -> Option<(PacketForm, bool)> {
        if let Some(v) = gquic_public_header_version(rest) {
            self.seen_version(v);
            self.stats.gquic_packets += 1;
            self.gquic_hello(dir, ts_ns, rest);
            return Some((PacketForm::Gquic, false));
        }
        let gquic = self
            .version
            .is_some_and(|v| VersionKind::of(v) == VersionKind::Gquic);
        if gquic && packets == 0 {
            self.stats.gquic_packets += 1;
            self.gquic_hello(dir, ts_ns, rest);
            return Some((PacketForm::Gquic, false));
        }
        // A short header has its fixed bit set (RFC 9000 section 17.3.1); zeros after a
        // packet are padding of the datagram.
        if rest[0] & 0x40 == 0 && packets > 0 {
            self.stats.trailing_bytes += 1;
            return None;
        }
        if self.verdict != Verdict::Quic {
            return None;
        }
        self.stats.short_packets += 1;
        let d = &mut self.dirs[dir.index()];
        d.short_packets += 1;
        if packets == 0 {
            d.short_bytes += rest.len() as u64;
        }
        Some((PacketForm::Short, false))
    }

    /// A long header packet at the start of `rest`; `rest` moves past it when another
    /// packet may follow.
    fn long_packet(
        &mut self,
        dir: Dir,
        ts_ns: i64,
        rest: &mut &[u8],
    ) -> Option<(PacketForm, bool)> {
        let d: &[u8] = rest;
        let Some(h) = long(d) else {
            self.stats.truncated_packets += 1;
            return None;
        };
        let kind = VersionKind::of(h.version);
        match kind {
            VersionKind::Negotiation => {
                self.seen_version(0);
                self.stats.version_negotiation_packets += 1;
                self.dirs[dir.index()].long_packets += 1;
                return Some((PacketForm::VersionNegotiation, false));
            }
            // Versions 1 and 2, and the drafts and mvfst versions whose Initials open
            // alike.
            _ if protection(h.version).is_some() => {}
            VersionKind::Unknown => {
                // Not a version anyone uses: not evidence of QUIC.
                if self.verdict != Verdict::Quic {
                    return None;
                }
                self.stats.unknown_version_packets += 1;
                self.dirs[dir.index()].long_packets += 1;
                return Some((PacketForm::OtherVersion, false));
            }
            _ => {
                self.seen_version(h.version);
                self.stats.other_version_packets += 1;
                self.dirs[dir.index()].long_packets += 1;
                return Some((PacketForm::OtherVersion, false));
            }
        }
        if h.dcid.len() > MAX_CID_LEN {
            self.stats.truncated_packets += 1;
            return None;
        }
        let ty = long_type(h.version, h.first);
        if ty == LongType::Retry {
            self.seen_version(h.version);
            self.stats.retry_packets += 1;
            self.dirs[dir.index()].long_packets += 1;
            return Some((PacketForm::Long(ty), false));
        }
        let Some((pn_offset, end)) = packet_bounds(d, &h, ty) else {
            self.stats.truncated_packets += 1;
            return None;
        };
        self.seen_version(h.version);
        self.dirs[dir.index()].long_packets += 1;
        match ty {
            LongType::Initial => self.stats.initial_packets += 1,
            LongType::ZeroRtt => self.stats.zero_rtt_packets += 1,
            LongType::Handshake => self.stats.handshake_packets += 1,
            LongType::Retry => {}
        }
        if ty == LongType::Initial && dir == Dir::Up && self.reading_hello() {
            if let Some(p) = protection(h.version) {
                self.client_initial(p, &d[..end], pn_offset, h.dcid, ts_ns);
            }
        }
        *rest = &d[end..];
        Some((PacketForm::Long(ty), true))
    }

    /// One of the client's Initial packets (`pkt`, whole).
    fn client_initial(
        &mut self,
        p: Protection,
        pkt: &[u8],
        pn_offset: usize,
        dcid: &[u8],
        ts_ns: i64,
    ) {
        if matches!(self.hello, Hello::Waiting) {
            self.hello = Hello::Reading(Box::new(InitialState::new(p, dcid)));
        }
        let Hello::Reading(st) = &mut self.hello else {
            return;
        };
        let outcome = read_initial(st, &mut self.stats, p, pkt, pn_offset, dcid);
        match outcome {
            Outcome::More => {
                if st.initials >= MAX_INITIALS {
                    self.stats.hello_not_found += 1;
                    self.hello = Hello::Done;
                }
            }
            Outcome::Stop => self.hello = Hello::Done,
            Outcome::Hello(Ok(ch)) => {
                self.stats.client_hellos += 1;
                self.client_hello = Some(ch);
                self.client_hello_ts_ns = Some(ts_ns);
                self.hello = Hello::Done;
            }
            Outcome::Hello(Err(_)) => {
                self.stats.bad_client_hello += 1;
                self.hello = Hello::Done;
            }
        }
    }
}

/// Opens one client Initial and reads its frames into the CRYPTO stream.
fn read_initial(
    st: &mut InitialState,
    stats: &mut QuicStats,
    p: Protection,
    pkt: &[u8],
    pn_offset: usize,
    dcid: &[u8],
) -> Outcome {
    st.initials += 1;
    let mut opened = st
        .opener
        .open(pkt, pn_offset, st.largest_pn, &mut st.scratch);
    if opened == Err(OpenError::Auth) && (dcid != st.dcid() || p != st.protection) {
        // After a Retry the client's keys come from the DCID the server chose.
        let scratch = std::mem::take(&mut st.scratch);
        let initials = st.initials;
        *st = InitialState::new(p, dcid);
        st.scratch = scratch;
        st.initials = initials;
        stats.keys_rederived += 1;
        opened = st
            .opener
            .open(pkt, pn_offset, st.largest_pn, &mut st.scratch);
    }
    let range = match opened {
        Ok((pn, range)) => {
            stats.initials_opened += 1;
            st.largest_pn = Some(st.largest_pn.map_or(pn, |l| l.max(pn)));
            range
        }
        Err(OpenError::TooShort) => {
            stats.initials_too_short += 1;
            return Outcome::More;
        }
        Err(OpenError::Auth) => {
            stats.initials_not_opened += 1;
            return Outcome::More;
        }
    };
    let mut c = Cursor::new(&st.scratch[range]);
    while c.rest() > 0 {
        match next_frame(&mut c) {
            Some(Frame::Padding) => {}
            Some(Frame::Ping) => stats.ping_frames += 1,
            Some(Frame::Ack) => stats.ack_frames += 1,
            Some(Frame::ConnectionClose) => stats.connection_close_frames += 1,
            Some(Frame::Crypto { offset, data }) => {
                stats.crypto_frames += 1;
                if !st.crypto.insert(offset, data) {
                    stats.crypto_overflow += 1;
                    return Outcome::Stop;
                }
            }
            None => {
                stats.bad_frames += 1;
                break;
            }
        }
    }
    let prefix = st.crypto.prefix();
    match prefix {
        [t, ..] if *t != HS_CLIENT_HELLO => Outcome::Hello(Err(HelloError::NotHello(*t))),
        [_, a, b, c, ..] => {
            let len = usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c);
            if HS_HEADER_LEN + len > MAX_CRYPTO {
                stats.crypto_overflow += 1;
                Outcome::Stop
            } else if prefix.len() >= HS_HEADER_LEN + len {
                Outcome::Hello(ClientHello::parse(prefix))
            } else {
                Outcome::More
            }
        }
        _ => Outcome::More,
    }
}
