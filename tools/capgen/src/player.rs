//! HTTPS-like players: back-to-back sessions of a DNS lookup, a TCP connection
//! (RFC 9293 three-way handshake, MSS-sized segments, one client ACK per two segments,
//! FIN/ACK teardown or client RST) and, every `segment_duration_s`, one request and a
//! response burst paced at `rate_bps`. Payloads are framed as TLS 1.2/1.3 application-data
//! records (RFC 8446 §5.2) so dissectors see HTTPS-like traffic.

use std::net::IpAddr;
use std::rc::Rc;

use crate::dns;
use crate::engine::{Net, Shared};
use crate::net::{host_mac, tcp_flags as F, Path, PathSpec};
use crate::rng::Rng;
use crate::scenario::HttpsConfig;
use crate::tls;
use crate::truth::TlsTruth;
use crate::truth::{BurstTruth, EndReason, FlowKind, FlowTruth, Protocol, TcpTruth};

/// TLS application_data record header prefix and the largest record we write
/// (2^14 bytes of plaintext + 1 content-type byte + 16-byte AEAD tag, RFC 8446 §5.2).
const TLS_APPDATA: [u8; 3] = [0x17, 0x03, 0x03];
const TLS_REC_HDR: u64 = 5;
const TLS_REC_BODY: u64 = 16_384 + 17;
const TLS_REC: u64 = TLS_REC_HDR + TLS_REC_BODY;
/// Random bytes that stand in for ciphertext.
pub(crate) const POOL: usize = 1 << 16;
const CLIENT_WIN_SYN: u16 = 64_240;
const SERVER_WIN_SYN: u16 = 65_160;
const WSCALE: u8 = 7;
/// Scaled windows after the handshake: 2048·128 = 256 KiB (client), 501·128 (server).
const CLIENT_WIN: u16 = 2048;
const SERVER_WIN: u16 = 501;
const US: u64 = 1_000;
const MS: f64 = 1_000_000.0;
const EPHEMERAL_LO: u16 = 32_768;
const EPHEMERAL_HI: u16 = 60_999;
/// ALPN offered in the ClientHello (RFC 7301 §3.1).
const ALPN: [&str; 2] = ["h2", "http/1.1"];

/// One `[[https]]` service: its name, host and server addresses (with host-table ids).
pub(crate) struct Service {
    pub cfg: HttpsConfig,
    pub v4: Vec<(IpAddr, u32)>,
    pub v6: Vec<(IpAddr, u32)>,
    pub pool: Rc<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Start,
    DnsQuery,
    DnsAnswer,
    Syn,
    SynAck,
    HsAck,
    Request,
    Data,
    Ack,
    ClientFin,
    ServerFin,
    LastAck,
    ClientRst,
    TlsClientHello,
    TlsServerFlight,
    TlsClientFinished,
}

/// A player: one client host running sessions until the capture ends.
pub(crate) struct Player {
    svc: Rc<Service>,
    net: Rc<Net>,
    rng: Rng,
    client: u32,
    phase: Phase,
    // session
    v6: bool,
    vlan: Option<u16>,
    rtt: u64,
    session_end: u64,
    dns_path: Option<Path>,
    path: Option<Path>,
    dns_flow: usize,
    tcp_flow: Option<usize>,
    dns_id: u16,
    answers: Vec<IpAddr>,
    server_host: u32,
    isn_c: u32,
    isn_s: u32,
    cseq: u32,
    sseq: u32,
    mss: u16,
    syn_q: u64,
    next_request: u64,
    burst_total: u64,
    burst_sent: u64,
    segs_since_ack: u32,
    next_data: u64,
    burst_idx: usize,
    fin: bool,
    /// TLS handshake bytes of the current connection and how many of them were sent.
    hs_buf: Vec<u8>,
    hs_sent: usize,
    tls_sid: [u8; 32],
    /// Takedown / DNS-failure hooks (`crate::disrupt`, see `step`).
    pub(crate) dis: crate::disrupt::PlayerDisruption,
}

fn ephemeral(sh: &mut Shared, host: u32, rng: &mut Rng) -> u16 {
    match sh.hosts.get_mut(host as usize) {
        Some(h) => {
            let p = h.next_port;
            let step = 1 + (rng.next_u32() % 7) as u16;
            h.next_port = if p >= EPHEMERAL_HI - step {
                EPHEMERAL_LO + (p % 97)
            } else {
                p + step
            };
            p
        }
        None => EPHEMERAL_LO,
    }
}

/// Writes bytes `[off, off+len)` of a stream of TLS application-data records whose
/// total length is `total`.
fn tls_stream(b: &mut Vec<u8>, pool: &[u8], off: u64, len: usize, total: u64) {
    let start = b.len();
    let mut p = (off as usize).wrapping_mul(7) % POOL;
    let mut left = len;
    while left > 0 {
        let n = left.min(POOL - p);
        b.extend_from_slice(&pool[p..p + n]);
        left -= n;
        p = 0;
    }
    let end = off + len as u64;
    let first = off.saturating_sub(TLS_REC_HDR - 1) / TLS_REC;
    let mut k = first;
    while k * TLS_REC < end {
        let rs = k * TLS_REC;
        let body = (total - rs).min(TLS_REC) - TLS_REC_HDR;
        let l = (body as u16).to_be_bytes();
        let hdr = [TLS_APPDATA[0], TLS_APPDATA[1], TLS_APPDATA[2], l[0], l[1]];
        for (i, h) in hdr.iter().enumerate() {
            let pos = rs + i as u64;
            if pos >= off && pos < end {
                b[start + (pos - off) as usize] = *h;
            }
        }
        k += 1;
    }
}

/// A record stream length whose last record has at least one body byte.
fn tls_total(n: u64) -> u64 {
    let rem = n % TLS_REC;
    if rem != 0 && rem <= TLS_REC_HDR {
        n + (TLS_REC_HDR + 1 - rem)
    } else {
        n
    }
}

fn syn_options(mss: u16) -> [u8; 12] {
    let m = mss.to_be_bytes();
    // MSS, NOP, window scale, NOP, NOP, SACK permitted (RFC 9293 §3.2, RFC 7323 §2, RFC 2018 §2).
    [2, 4, m[0], m[1], 1, 3, 3, WSCALE, 1, 1, 4, 2]
}

impl Player {
    pub fn new(svc: Rc<Service>, net: Rc<Net>, rng: Rng, client: u32) -> Player {
        Player {
            svc,
            net,
            rng,
            client,
            phase: Phase::Start,
            v6: false,
            vlan: None,
            rtt: 0,
            session_end: 0,
            dns_path: None,
            path: None,
            dns_flow: 0,
            tcp_flow: None,
            dns_id: 0,
            answers: Vec::new(),
            server_host: 0,
            isn_c: 0,
            isn_s: 0,
            cseq: 0,
            sseq: 0,
            mss: 1460,
            syn_q: 0,
            next_request: 0,
            burst_total: 0,
            burst_sent: 0,
            segs_since_ack: 0,
            next_data: 0,
            burst_idx: 0,
            fin: true,
            hs_buf: Vec::new(),
            hs_sent: 0,
            tls_sid: [0; 32],
            dis: Default::default(),
        }
    }

    /// Time of the first session start.
    pub fn first_time(&mut self, start_ns: u64) -> u64 {
        start_ns + (self.rng.f64() * self.svc.cfg.start_spread_s * 1e9) as u64
    }

    fn ms(&mut self, r: [f64; 2]) -> u64 {
        (self.rng.range_f64(r) * MS) as u64
    }

    /// Picks the session's parameters.
    fn new_session(&mut self, now: u64, sh: &mut Shared) {
        let cfg = &self.svc.cfg;
        self.v6 = !self.svc.v6.is_empty() && self.rng.chance(self.net.ipv6_share);
        self.vlan = self
            .rng
            .chance(self.net.vlan_share)
            .then_some(self.net.vlan_id);
        self.rtt = ((self.rng.range_f64(cfg.rtt_ms) * MS) as u64).max(US);
        self.session_end = now + (self.rng.range_f64(cfg.session_s) * 1e9) as u64;
        self.fin = self.rng.chance(cfg.fin_share) || cfg.fin_share >= 1.0;
        let list = if self.v6 { &self.svc.v6 } else { &self.svc.v4 };
        self.server_host = crate::http::round_robin(&mut self.rng, list, &mut self.answers);
        self.mss = if self.v6 { 1440 } else { 1460 };
        self.tcp_flow = None;
        let _ = sh;
    }

    fn client_addr(&self) -> IpAddr {
        self.net.client_addr(self.client, self.v6)
    }

    fn make_path(
        &mut self,
        sh: &mut Shared,
        server: IpAddr,
        server_host: u32,
        server_port: u16,
    ) -> Path {
        let cport = ephemeral(sh, self.client, &mut self.rng);
        let ttl_down = sh.hosts.get(server_host as usize).map_or(56, |h| h.ttl);
        Path::new(PathSpec {
            client: self.client_addr(),
            client_port: cport,
            server,
            server_port,
            client_mac: host_mac(self.client),
            server_mac: self.net.gateway_mac,
            vlan: self.vlan,
            ttl_up: self.net.client_ttl,
            ttl_down,
            host_up: self.client,
            host_down: server_host,
            labels: (self.rng.next_u32(), self.rng.next_u32()),
        })
    }

    /// Emits the packet due at `now` and returns the time of the next one: the planned
    /// session below, wrapped by the disruption hooks (`crate::disrupt`).
    pub fn step(&mut self, now: u64, sh: &mut Shared) -> Option<u64> {
        if let Some(next) = self.disrupt_before(now, sh) {
            return next;
        }
        let next = self.step_planned(now, sh);
        self.disrupt_after(now, next, sh)
    }

    fn step_planned(&mut self, now: u64, sh: &mut Shared) -> Option<u64> {
        match self.phase {
            Phase::Start => {
                self.new_session(now, sh);
                if self.svc.cfg.dns_lookup {
                    self.phase = Phase::DnsQuery;
                } else {
                    self.phase = Phase::Syn;
                }
                // No packet: the next step happens at the same instant.
                Some(now)
            }
            Phase::DnsQuery => {
                let (res, rh) = crate::http::resolver(&self.net, self.v6);
                let path = self.make_path(sh, res, rh, 53);
                self.dns_id = self.rng.next_u32() as u16;
                let c = &self.svc.cfg;
                let (flow, _) = crate::http::dns_query(
                    sh,
                    &path,
                    now,
                    self.dns_id,
                    &c.host,
                    &c.name,
                    self.v6,
                    &self.answers,
                    self.net.dns_ttl,
                );
                self.dns_flow = flow;
                self.dns_path = Some(path);
                self.phase = Phase::DnsAnswer;
                let r = self.net.dns_rtt_ms;
                Some(now + self.ms(r).max(US))
            }
            Phase::DnsAnswer => {
                if let Some(p) = &self.dns_path {
                    crate::http::dns_answer(
                        sh,
                        p,
                        now,
                        self.dns_id,
                        &self.svc.cfg.host,
                        self.v6,
                        &self.answers,
                        self.net.dns_ttl,
                        self.dns_flow,
                    );
                }
                self.phase = Phase::Syn;
                Some(now + self.rng.range_u64(100 * US, 400 * US))
            }
            Phase::Syn => {
                let server = self
                    .answers
                    .first()
                    .copied()
                    .unwrap_or(self.net.resolver_v4);
                let port = self.svc.cfg.port;
                let path = self.make_path(sh, server, self.server_host, port);
                self.isn_c = self.rng.next_u32();
                self.isn_s = self.rng.next_u32();
                let opts = syn_options(self.mss);
                path.tcp(
                    &mut sh.frame,
                    true,
                    &mut sh.hosts,
                    self.isn_c,
                    0,
                    F::SYN,
                    CLIENT_WIN_SYN,
                    &opts,
                    |_| {},
                );
                let mut f = FlowTruth::new(
                    FlowKind::Https,
                    Some(self.svc.cfg.name.clone()),
                    Protocol::Tcp,
                    &path,
                );
                self.syn_q = sh.q(now);
                f.tcp = Some(TcpTruth {
                    syn_ts_ns: self.syn_q,
                    handshake_rtt_ns: None,
                    path_rtt_ns: self.rtt,
                    mss: self.mss,
                    retransmissions: 0,
                    fin_client: false,
                    fin_server: false,
                    rst_client: false,
                    rst_server: false,
                    end_reason: EndReason::CaptureEnd,
                    bursts: Vec::new(),
                });
                let id = sh.open_flow(f);
                sh.account(id, true, now, 0);
                self.tcp_flow = Some(id);
                self.path = Some(path);
                self.cseq = self.isn_c.wrapping_add(1);
                self.sseq = self.isn_s.wrapping_add(1);
                self.phase = Phase::SynAck;
                Some(now + self.rtt)
            }
            Phase::SynAck => {
                let opts = syn_options(self.mss);
                self.tcp(
                    now,
                    sh,
                    false,
                    self.isn_s,
                    self.cseq,
                    F::SYN | F::ACK,
                    SERVER_WIN_SYN,
                    &opts,
                    0,
                );
                self.phase = Phase::HsAck;
                Some(now + self.rng.range_u64(20 * US, 80 * US))
            }
            Phase::HsAck => {
                self.tcp(
                    now,
                    sh,
                    true,
                    self.cseq,
                    self.sseq,
                    F::ACK,
                    CLIENT_WIN,
                    &[],
                    0,
                );
                let q = sh.q(now);
                let syn = self.syn_q;
                self.with_tcp(sh, |t| t.handshake_rtt_ns = Some(q - syn));
                self.phase = if self.svc.cfg.tls_handshake {
                    Phase::TlsClientHello
                } else {
                    Phase::Request
                };
                let t = now + self.rng.range_u64(100 * US, 500 * US);
                self.next_request = t;
                Some(t)
            }
            Phase::TlsClientHello => {
                let mut random = [0u8; 32];
                let mut key = [0u8; 32];
                for b in random
                    .iter_mut()
                    .chain(key.iter_mut())
                    .chain(self.tls_sid.iter_mut())
                {
                    *b = self.rng.next_u32() as u8;
                }
                self.hs_buf.clear();
                let sid = self.tls_sid;
                let host = &self.svc.cfg.host;
                tls::record(&mut self.hs_buf, tls::CT_HANDSHAKE, true, |b| {
                    tls::client_hello(
                        b,
                        &tls::ClientHelloSpec {
                            random,
                            session_id: &sid,
                            sni: host,
                            alpn: &ALPN,
                            key_share: key,
                            quic_params: None,
                            padding: 0,
                        },
                    )
                });
                let n = self.hs_buf.len();
                self.tcp_hs(now, sh, true, F::PSH | F::ACK, 0..n);
                self.cseq = self.cseq.wrapping_add(n as u32);
                let q = sh.q(now);
                if let Some(f) = self.tcp_flow.and_then(|i| sh.flows.get_mut(i)) {
                    f.tls = Some(TlsTruth {
                        sni: host.clone(),
                        alpn: ALPN.iter().map(|a| a.to_string()).collect(),
                        cipher_suite: tls::TLS_AES_128_GCM_SHA256,
                        client_hello_ts_ns: q,
                        client_hello_bytes: n as u64,
                        server_flight_bytes: 0,
                        client_finished_bytes: 0,
                        handshake_done_ts_ns: None,
                    });
                }
                // The server flight: ServerHello, CCS, encrypted handshake records.
                let mut random = [0u8; 32];
                for b in random.iter_mut().chain(key.iter_mut()) {
                    *b = self.rng.next_u32() as u8;
                }
                let enc = self.rng.range_u64(2_500, 4_500) as usize;
                let off = self.rng.range_u64(0, (POOL - 8_192) as u64) as usize;
                self.hs_buf.clear();
                let pool = &self.svc.pool[off..];
                tls::server_flight(&mut self.hs_buf, &random, &sid, &key, enc, pool);
                self.hs_sent = 0;
                let total = self.hs_buf.len() as u64;
                if let Some(t) = self
                    .tcp_flow
                    .and_then(|i| sh.flows.get_mut(i))
                    .and_then(|f| f.tls.as_mut())
                {
                    t.server_flight_bytes = total;
                }
                self.phase = Phase::TlsServerFlight;
                Some(now + self.rtt + self.rng.range_u64(100 * US, 600 * US))
            }
            Phase::TlsServerFlight => {
                let s = self.hs_sent;
                let n = (self.hs_buf.len() - s).min(self.mss as usize);
                let last = s + n >= self.hs_buf.len();
                let flags = if last { F::PSH | F::ACK } else { F::ACK };
                let frame_len = self.tcp_hs(now, sh, false, flags, s..s + n);
                self.sseq = self.sseq.wrapping_add(n as u32);
                self.hs_sent += n;
                if last {
                    self.phase = Phase::TlsClientFinished;
                    Some(now + self.rng.range_u64(300 * US, 2_000 * US))
                } else {
                    Some(now + crate::http::gap_ns(frame_len, self.svc.cfg.rate_bps))
                }
            }
            Phase::TlsClientFinished => {
                self.hs_buf.clear();
                let off = (self.cseq as usize) % (POOL - 2048);
                tls::client_finished(&mut self.hs_buf, &self.svc.pool[off..off + 1024]);
                let n = self.hs_buf.len();
                self.tcp_hs(now, sh, true, F::PSH | F::ACK, 0..n);
                self.cseq = self.cseq.wrapping_add(n as u32);
                let q = sh.q(now);
                if let Some(t) = self
                    .tcp_flow
                    .and_then(|i| sh.flows.get_mut(i))
                    .and_then(|f| f.tls.as_mut())
                {
                    t.client_finished_bytes = n as u64;
                    t.handshake_done_ts_ns = Some(q);
                }
                self.phase = Phase::Request;
                let t = now + self.rng.range_u64(100 * US, 500 * US);
                self.next_request = t;
                Some(t)
            }
            Phase::Request => {
                let cfg = &self.svc.cfg;
                let req = self
                    .rng
                    .range_u64(cfg.request_bytes[0] as u64, cfg.request_bytes[1] as u64);
                let total = tls_total(
                    self.rng
                        .range_u64(cfg.segment_bytes[0], cfg.segment_bytes[1]),
                );
                let seg_dur = (cfg.segment_duration_s * 1e9) as u64;
                self.tcp(
                    now,
                    sh,
                    true,
                    self.cseq,
                    self.sseq,
                    F::PSH | F::ACK,
                    CLIENT_WIN,
                    &[],
                    req as usize,
                );
                self.cseq = self.cseq.wrapping_add(req as u32);
                let q = sh.q(now);
                let mut idx = 0;
                self.with_tcp(sh, |t| {
                    idx = t.bursts.len();
                    t.bursts.push(BurstTruth {
                        request_ts_ns: q,
                        request_bytes: req,
                        response_bytes: total,
                        response_bytes_sent: 0,
                        first_byte_ts_ns: None,
                        last_byte_ts_ns: None,
                        segments: 0,
                    })
                });
                self.burst_idx = idx;
                self.burst_total = total;
                self.burst_sent = 0;
                self.segs_since_ack = 0;
                self.next_request = self.next_request.max(now) + seg_dur;
                self.phase = Phase::Data;
                Some(now + self.rtt + self.rng.range_u64(200 * US, 1000 * US))
            }
            Phase::Data => {
                let len = (self.burst_total - self.burst_sent).min(self.mss as u64) as usize;
                let last = self.burst_sent + len as u64 >= self.burst_total;
                let flags = if last { F::PSH | F::ACK } else { F::ACK };
                let frame_len = self.tcp(
                    now,
                    sh,
                    false,
                    self.sseq,
                    self.cseq,
                    flags,
                    SERVER_WIN,
                    &[],
                    len,
                );
                self.sseq = self.sseq.wrapping_add(len as u32);
                self.burst_sent += len as u64;
                let q = sh.q(now);
                let bi = self.burst_idx;
                self.with_tcp(sh, |t| {
                    if let Some(b) = t.bursts.get_mut(bi) {
                        b.record_segment(q, len as u64);
                    }
                });
                self.segs_since_ack += 1;
                let gap = crate::http::gap_ns(frame_len, self.svc.cfg.rate_bps);
                self.next_data = now + gap;
                if self.segs_since_ack >= 2 || last {
                    self.phase = Phase::Ack;
                    Some(now + (40 * US).min(gap / 2).max(1))
                } else {
                    Some(self.next_data)
                }
            }
            Phase::Ack => {
                self.tcp(
                    now,
                    sh,
                    true,
                    self.cseq,
                    self.sseq,
                    F::ACK,
                    CLIENT_WIN,
                    &[],
                    0,
                );
                self.segs_since_ack = 0;
                if self.burst_sent < self.burst_total {
                    self.phase = Phase::Data;
                    Some(self.next_data)
                } else if self.next_request < self.session_end {
                    self.phase = Phase::Request;
                    Some(self.next_request.max(now + 100 * US))
                } else {
                    self.phase = if self.fin {
                        Phase::ClientFin
                    } else {
                        Phase::ClientRst
                    };
                    Some(self.session_end.max(now + 100 * US))
                }
            }
            Phase::ClientFin => {
                self.tcp(
                    now,
                    sh,
                    true,
                    self.cseq,
                    self.sseq,
                    F::FIN | F::ACK,
                    CLIENT_WIN,
                    &[],
                    0,
                );
                self.cseq = self.cseq.wrapping_add(1);
                self.with_tcp(sh, |t| t.fin_client = true);
                self.phase = Phase::ServerFin;
                Some(now + self.rtt)
            }
            Phase::ServerFin => {
                self.tcp(
                    now,
                    sh,
                    false,
                    self.sseq,
                    self.cseq,
                    F::FIN | F::ACK,
                    SERVER_WIN,
                    &[],
                    0,
                );
                self.sseq = self.sseq.wrapping_add(1);
                self.with_tcp(sh, |t| t.fin_server = true);
                self.phase = Phase::LastAck;
                Some(now + self.rng.range_u64(20 * US, 80 * US))
            }
            Phase::LastAck => {
                self.tcp(
                    now,
                    sh,
                    true,
                    self.cseq,
                    self.sseq,
                    F::ACK,
                    CLIENT_WIN,
                    &[],
                    0,
                );
                self.with_tcp(sh, |t| t.end_reason = EndReason::Fin);
                self.phase = Phase::Start;
                Some(now + self.rng.range_u64(200_000 * US, 2_000_000 * US))
            }
            Phase::ClientRst => {
                self.tcp(
                    now,
                    sh,
                    true,
                    self.cseq,
                    self.sseq,
                    F::RST | F::ACK,
                    0,
                    &[],
                    0,
                );
                self.with_tcp(sh, |t| {
                    t.rst_client = true;
                    t.end_reason = EndReason::Rst;
                });
                self.phase = Phase::Start;
                Some(now + self.rng.range_u64(200_000 * US, 2_000_000 * US))
            }
        }
    }

    fn with_tcp(&self, sh: &mut Shared, f: impl FnOnce(&mut TcpTruth)) {
        if let Some(t) = self
            .tcp_flow
            .and_then(|i| sh.flows.get_mut(i))
            .and_then(|fl| fl.tcp.as_mut())
        {
            f(t)
        }
    }

    /// Writes a segment carrying `hs_buf[range]` (TLS handshake bytes); returns the
    /// frame length. The caller advances the sequence number.
    fn tcp_hs(
        &self,
        now: u64,
        sh: &mut Shared,
        up: bool,
        flags: u8,
        range: std::ops::Range<usize>,
    ) -> usize {
        let (Some(path), Some(flow)) = (&self.path, self.tcp_flow) else {
            return 0;
        };
        let (seq, ack, win) = if up {
            (self.cseq, self.sseq, CLIENT_WIN)
        } else {
            (self.sseq, self.cseq, SERVER_WIN)
        };
        let data = &self.hs_buf[range];
        let pl = path.tcp(
            &mut sh.frame,
            up,
            &mut sh.hosts,
            seq,
            ack,
            flags,
            win,
            &[],
            |b| b.extend_from_slice(data),
        );
        sh.account(flow, up, now, pl);
        sh.frame.len()
    }

    /// Writes one segment of the current connection; returns the frame length.
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &self,
        now: u64,
        sh: &mut Shared,
        up: bool,
        seq: u32,
        ack: u32,
        flags: u8,
        win: u16,
        opts: &[u8],
        len: usize,
    ) -> usize {
        let (Some(path), Some(flow)) = (&self.path, self.tcp_flow) else {
            return 0;
        };
        let pool = &self.svc.pool[..];
        // Stream offsets: requests are one record each; responses are a record stream.
        let burst_off = self.burst_sent;
        let total = self.burst_total;
        let pl = path.tcp(
            &mut sh.frame,
            up,
            &mut sh.hosts,
            seq,
            ack,
            flags,
            win,
            opts,
            |b| {
                if len == 0 {
                    return;
                }
                if up {
                    let l = ((len - TLS_REC_HDR as usize) as u16).to_be_bytes();
                    b.extend_from_slice(&[
                        TLS_APPDATA[0],
                        TLS_APPDATA[1],
                        TLS_APPDATA[2],
                        l[0],
                        l[1],
                    ]);
                    let p = (seq as usize) % (POOL - 2048);
                    b.extend_from_slice(&pool[p..p + len - TLS_REC_HDR as usize]);
                } else {
                    tls_stream(b, pool, burst_off, len, total);
                }
            },
        );
        sh.account(flow, up, now, pl);
        sh.frame.len()
    }
}

/// Disruption hooks (`crate::disrupt`): a SYN to a taken-down service is answered by a
/// server RST, an open connection is reset by the server when a takedown starts, a
/// failed DNS lookup (NXDOMAIN/SERVFAIL, or no answer within
/// [`crate::disrupt::DNS_TIMEOUT_NS`]) ends the attempt, CNAME chains are answered,
/// and after a failure the player waits the backoff, retries, or migrates. Without
/// such faults or `[[dns.name]]` entries they change nothing.
impl Player {
    /// Runs a step owned by the hooks; `None` lets the planned step run.
    fn disrupt_before(&mut self, now: u64, sh: &mut Shared) -> Option<Option<u64>> {
        use crate::disrupt::PendingRst;
        let pending = std::mem::take(&mut self.dis.rst);
        if pending != PendingRst::None {
            let reset = pending == PendingRst::Reset;
            // RFC 9293 §3.10.7.1/§3.5.2: a RST answering a SYN has SEQ=0 and acknowledges
            // the SYN; the reset of a synchronized connection carries SND.NXT.
            let seq = if reset && self.phase != Phase::SynAck {
                self.sseq
            } else {
                0
            };
            let ack = self.cseq;
            self.tcp(now, sh, false, seq, ack, F::RST | F::ACK, 0, &[], 0);
            self.with_tcp(sh, |t| {
                t.rst_server = true;
                t.end_reason = EndReason::Rst;
            });
            let kind = if reset { "reset" } else { "refused" };
            return Some(self.fail(now, sh, kind, self.tcp_flow, None));
        }
        match self.phase {
            Phase::Start if self.dis.fails > 0 => {
                let q = sh.q(now);
                if self.dis.migrate_at.is_some_and(|t| t <= now) {
                    self.dis.migrate_at = None;
                    let plan = &self.net.disrupt;
                    let to = plan
                        .migration(&self.svc.cfg.name)
                        .and_then(|m| plan.service(m.1));
                    if let Some(svc) = to {
                        let name = svc.cfg.name.clone();
                        self.event(sh, q, "migrate", None, None, None, Some(name));
                        self.svc = svc;
                        self.dis.fails = 0;
                        return None;
                    }
                }
                let d = self.dis.retry_delay;
                self.event(sh, q, "retry", None, None, Some(d), None);
                None
            }
            Phase::DnsAnswer => {
                let res = self.dis.res.take()?;
                let Some(rcode) = res.rcode else {
                    // No response came (`dns_noanswer`): the stub resolver's timeout
                    // ended at `now`, nothing is written.
                    let flow = Some(self.dns_flow);
                    return Some(self.fail(now, sh, "dns_failure", flow, None));
                };
                if rcode == dns::RCODE_NOERROR && res.cnames.is_empty() {
                    return None;
                }
                let qtype = if self.v6 {
                    dns::QTYPE_AAAA
                } else {
                    dns::QTYPE_A
                };
                let host = &self.svc.cfg.host;
                let (id, ttl) = (self.dns_id, self.net.dns_ttl);
                let pl = match &self.dns_path {
                    Some(p) => p.udp(&mut sh.frame, false, &mut sh.hosts, |b| {
                        dns::response(b, id, qtype, ttl, rcode, host, &res.cnames, &res.answers)
                    }),
                    None => 0,
                };
                sh.account(self.dns_flow, false, now, pl);
                let q = sh.q(now);
                if let Some(d) = sh.flows.get_mut(self.dns_flow).and_then(|f| f.dns.as_mut()) {
                    d.response_ts_ns = Some(q);
                }
                if rcode != dns::RCODE_NOERROR {
                    let flow = Some(self.dns_flow);
                    return Some(self.fail(now, sh, "dns_failure", flow, Some(rcode)));
                }
                self.phase = Phase::Syn;
                Some(Some(now + self.rng.range_u64(100 * US, 400 * US)))
            }
            _ => None,
        }
    }

    /// Looks at the state the planned step left: resolves a query just sent, refuses a
    /// SYN just sent to a taken-down service, schedules the reset of an open connection.
    fn disrupt_after(&mut self, now: u64, next: Option<u64>, sh: &mut Shared) -> Option<u64> {
        use crate::disrupt::{PendingRst, ServiceState};
        let plan = &self.net.disrupt;
        match self.phase {
            Phase::DnsAnswer => {
                let res = plan.resolve(&self.svc.cfg.host, self.v6, now, &self.answers);
                if let Some(f) = sh.flows.get_mut(self.dns_flow) {
                    if let Some(d) = f.dns.as_mut() {
                        d.rcode = res.rcode;
                        d.answers.clone_from(&res.answers);
                    }
                    f.dns_cnames = Some(res.cnames.clone());
                }
                // No response: the player gives up when the stub resolver's timeout ends.
                let next = match res.rcode {
                    Some(_) => next,
                    None => Some(now + crate::disrupt::DNS_TIMEOUT_NS),
                };
                self.dis.res = Some(res);
                return next;
            }
            Phase::SynAck
                if plan.service_state(&self.svc.cfg.name, now) == ServiceState::Refused =>
            {
                self.dis.rst = PendingRst::Refused;
                return Some(now + self.rtt);
            }
            Phase::HsAck => self.dis.fails = 0,
            _ => {}
        }
        let open = !matches!(
            self.phase,
            Phase::Start | Phase::DnsQuery | Phase::DnsAnswer | Phase::Syn
        );
        if let (true, Some(n)) = (open, next) {
            if let Some(t) = plan.reset_at(&self.svc.cfg.name, now, n) {
                self.dis.rst = PendingRst::Reset;
                return Some(t);
            }
        }
        next
    }

    /// Records a failed attempt and schedules the retry (or the migration).
    fn fail(
        &mut self,
        now: u64,
        sh: &mut Shared,
        kind: &'static str,
        flow: Option<usize>,
        rcode: Option<u8>,
    ) -> Option<u64> {
        self.dis.fails += 1;
        let q = sh.q(now);
        self.event(sh, q, kind, flow, rcode, None, None);
        if !self.dis.migrate_decided {
            if let Some((share, _, after)) = self.net.disrupt.migration(&self.svc.cfg.name) {
                self.dis.migrate_decided = true;
                if self.rng.chance(share) {
                    self.dis.migrate_at = Some(now + (self.rng.range_f64(after) * 1e9) as u64);
                }
            }
        }
        let delay = self.net.disrupt.backoff_ns(self.dis.fails);
        self.dis.retry_delay = delay;
        self.phase = Phase::Start;
        let t = now + delay;
        Some(match self.dis.migrate_at {
            Some(m) if m < t => m.max(now),
            _ => t,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        sh: &mut Shared,
        ts: u64,
        kind: &'static str,
        flow: Option<usize>,
        rcode: Option<u8>,
        delay: Option<u64>,
        to: Option<String>,
    ) {
        sh.events.clients.push(crate::truth::ClientEvent {
            ts_ns: ts,
            kind,
            service: self.svc.cfg.name.clone(),
            client: self.client_addr(),
            flow_id: flow.map(|f| f as u64),
            attempt: self.dis.fails,
            delay_ns: delay,
            rcode,
            to_service: to,
            player: self.dis.id,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_tile_the_stream() {
        let pool: Vec<u8> = (0..POOL).map(|i| (i * 31 + 7) as u8).collect();
        let total = tls_total(40_000);
        let mut whole = Vec::new();
        // Write the stream in odd-sized pieces and check the record chain parses to the end.
        let mut off = 0u64;
        while off < total {
            let n = (total - off).min(1_447) as usize;
            tls_stream(&mut whole, &pool, off, n, total);
            off += n as u64;
        }
        assert_eq!(whole.len() as u64, total);
        let mut p = 0usize;
        let mut records = 0;
        while p < whole.len() {
            assert_eq!(&whole[p..p + 3], &TLS_APPDATA);
            let l = u16::from_be_bytes([whole[p + 3], whole[p + 4]]) as usize;
            assert!(l >= 1 && l <= TLS_REC_BODY as usize);
            p += 5 + l;
            records += 1;
        }
        assert_eq!(p, whole.len());
        assert_eq!(records, 3);
        assert_eq!(tls_total(TLS_REC + 3), TLS_REC + 6);
    }
}
