//! IPTV panel players: the Xtream-Codes-style API and progressive MPEG-TS over HTTP/1.1.
//!
//! A player looks the panel host up and, on one keep-alive connection, calls
//! `GET /player_api.php?username=USER&password=PASS` (account and server info, JSON) and
//! `...&action=get_live_streams` (the channel list, JSON), then closes it. It then
//! watches channels one after the other: a new connection, `GET /live/USER/PASS/ID.ts`,
//! a `200 OK` with `Content-Type: video/mp2t` and no Content-Length (the body ends when
//! the connection closes, RFC 9112 §6.3), and an endless single-program transport
//! stream from [`crate::ts::Channel`] (PAT, PMT, PCR, continuity counters) paced at the
//! channel's mux rate, `ts_per_segment` packets per TCP segment, each segment sent when
//! its last packet leaves the mux. After `watch_s` the client closes with FIN and zaps
//! to the next channel. The credentials are in every URL and in the truth.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::rc::Rc;

use crate::engine::{Net, Shared};
use crate::http::{self, Body, Conn, Response, MS, US};
use crate::net::{tcp_flags as F, Path};
use crate::rng::Rng;
use crate::scenario::PanelConfig;
use crate::truth::{Credentials, FlowKind, HttpExchange, HttpTruth};
use crate::ts::{self, TS_PACKET};

const SERVER: &str = "nginx";
/// Account creation and expiry times written in the API answer (Unix seconds).
const CREATED_AT: u64 = 1_700_000_000;
const EXP_DATE: u64 = 1_798_761_600;

/// One `[[panel]]` service.
pub(crate) struct Service {
    pub cfg: PanelConfig,
    pub v4: Vec<(IpAddr, u32)>,
    pub v6: Vec<(IpAddr, u32)>,
    pub pool: Rc<Vec<u8>>,
}

impl Service {
    /// `player_api.php` answer without an action: user and server info.
    pub fn api_info(&self, now_s: u64) -> String {
        let c = &self.cfg;
        format!(
            "{{\"user_info\":{{\"username\":\"{u}\",\"password\":\"{p}\",\"message\":\"\",\
             \"auth\":1,\"status\":\"Active\",\"exp_date\":\"{EXP_DATE}\",\"is_trial\":\"0\",\
             \"active_cons\":\"0\",\"created_at\":\"{CREATED_AT}\",\"max_connections\":\"1\",\
             \"allowed_output_formats\":[\"m3u8\",\"ts\"]}},\"server_info\":{{\"url\":\"{h}\",\
             \"port\":\"{port}\",\"server_protocol\":\"http\",\"timezone\":\"UTC\",\
             \"timestamp_now\":{now_s}}}}}",
            u = c.username,
            p = c.password,
            h = c.host,
            port = c.port,
        )
    }

    /// `player_api.php?action=get_live_streams` answer: the channel list.
    pub fn api_streams(&self) -> String {
        let mut s = String::from("[");
        for (i, st) in self.cfg.streams.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"num\":{},\"name\":\"{}\",\"stream_type\":\"live\",\"stream_id\":{},\
                 \"stream_icon\":\"\",\"epg_channel_id\":null,\"added\":\"{CREATED_AT}\",\
                 \"category_id\":\"1\",\"tv_archive\":0}}",
                i + 1,
                st.name,
                st.id
            );
        }
        s.push(']');
        s
    }
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
    Stream,
    StreamAck,
    ClientFin,
    ServerFin,
    LastAck,
}

/// A panel player.
pub(crate) struct PanelPlayer {
    svc: Rc<Service>,
    net: Rc<Net>,
    rng: Rng,
    client: u32,
    start_ns: u64,
    phase: Phase,
    v6: bool,
    vlan: Option<u16>,
    rtt: u64,
    answers: Vec<IpAddr>,
    server_host: u32,
    lookup: crate::http::Lookup,
    conn: Option<Conn>,
    /// 0, 1: API calls; 2: the stream request.
    step_no: u8,
    stream: usize,
    watch_end: u64,
    resp: Option<Response>,
    exch: usize,
    since_ack: u32,
    next_data: u64,
    /// Next TS packet index of the stream body.
    ts_k: u64,
    /// The current channel was watched to its end: zap after the close.
    zap: bool,
    buf: Vec<u8>,
}

impl PanelPlayer {
    pub fn new(svc: Rc<Service>, net: Rc<Net>, mut rng: Rng, client: u32, start_ns: u64) -> Self {
        let stream = rng.range_u64(0, svc.cfg.streams.len() as u64 - 1) as usize;
        let step_no = if svc.cfg.api_calls { 0 } else { 2 };
        PanelPlayer {
            svc,
            net,
            rng,
            client,
            start_ns,
            phase: Phase::Start,
            v6: false,
            vlan: None,
            rtt: 0,
            answers: Vec::new(),
            server_host: 0,
            lookup: Default::default(),
            conn: None,
            step_no,
            stream,
            watch_end: 0,
            resp: None,
            exch: 0,
            since_ack: 0,
            next_data: 0,
            ts_k: 0,
            zap: false,
            buf: Vec::with_capacity(512),
        }
    }

    /// Time the player starts.
    pub fn first_time(&mut self, start_ns: u64) -> u64 {
        start_ns + (self.rng.f64() * self.svc.cfg.start_spread_s * 1e9) as u64
    }

    fn make_path(&mut self, sh: &mut Shared, server: IpAddr, host: u32, port: u16) -> Path {
        crate::http::client_path(
            sh,
            &self.net,
            &mut self.rng,
            self.client,
            self.v6,
            self.vlan,
            server,
            host,
            port,
        )
    }

    /// Builds the current request into `self.buf`, its response and truth entry.
    fn start_request(&mut self, now: u64, sh: &mut Shared) {
        let svc = self.svc.clone();
        let c = &svc.cfg;
        let (u, p) = (&c.username, &c.password);
        let (uri, kind, ctype, body, stream_id) = match self.step_no {
            0 => (
                format!("/player_api.php?username={u}&password={p}"),
                "player_api",
                http::CT_JSON,
                Some(Body::Bytes(
                    svc.api_info((now - now % 1_000_000_000) / 1_000_000_000)
                        .into_bytes(),
                )),
                None,
            ),
            1 => (
                format!("/player_api.php?username={u}&password={p}&action=get_live_streams"),
                "player_api",
                http::CT_JSON,
                Some(Body::Bytes(svc.api_streams().into_bytes())),
                None,
            ),
            _ => {
                let st = &c.streams[self.stream % c.streams.len()];
                (
                    format!("/live/{u}/{p}/{}.ts", st.id),
                    "live_stream",
                    http::CT_MP2T,
                    None,
                    Some(st.id),
                )
            }
        };
        self.buf.clear();
        http::get_request(&mut self.buf, &uri, &c.host, &c.user_agent, body.is_some());
        let mut head = Vec::with_capacity(200);
        let clen = body.as_ref().map(|b| b.len());
        http::ok_head(&mut head, SERVER, ctype, clen);
        let x = HttpExchange {
            method: "GET",
            uri,
            kind,
            variant: None,
            media_sequence: None,
            duration_s: None,
            stream_id,
            request_ts_ns: sh.q(now),
            request_bytes: self.buf.len() as u64,
            status: 200,
            content_type: ctype,
            content_length: clen,
            response_header_bytes: head.len() as u64,
            body_bytes_sent: 0,
            first_byte_ts_ns: None,
            last_byte_ts_ns: None,
            segments: 0,
            complete: false,
        };
        if let Some(conn) = &self.conn {
            if let Some(h) = sh.flows.get_mut(conn.flow).and_then(|f| f.http.as_mut()) {
                self.exch = h.requests.len();
                h.requests.push(x);
            }
        }
        let body = match body {
            Some(b) => b,
            None => self.stream_body(now),
        };
        self.resp = Some(Response {
            head,
            body,
            sent: 0,
        });
    }

    /// The endless TS body of the current channel, its mux starting `rtt` from now.
    fn stream_body(&mut self, now: u64) -> Body {
        let c = &self.svc.cfg;
        let st = &c.streams[self.stream % c.streams.len()];
        let rate = st.mux_rate_bps;
        let Some(conn) = &self.conn else {
            return Body::Random { len: 0, seed: 0 };
        };
        let spec = ts::ChannelSpec {
            name: st.name.clone(),
            path: conn.path.clone(),
            rtp: false,
            ts_per_datagram: c.ts_per_segment,
            mux_rate_bps: rate,
            video_bps: rate * 8 / 10,
            audio_bps: (rate / 10).min(128_000),
            pcr_interval_ns: 30_000_000,
            psi_interval_ns: 100_000_000,
            program_number: 1,
            pmt_pid: 0x100,
            video_pid: 0x101,
            audio_pid: 0x102,
            scrambled: false,
            start_ns: now + self.rtt + 2_000 * US,
            end_ns: u64::MAX,
            losses: Vec::new(),
        };
        self.ts_k = 0;
        Body::Ts {
            len: u64::MAX / 2,
            mux: Box::new(ts::Channel::new(spec, Rng::new(self.rng.next_u64()))),
            pkt: Box::new([0; TS_PACKET]),
            idx: u64::MAX,
        }
    }

    /// Writes the stream's TS facts into its flow.
    fn stream_truth(&self, sh: &mut Shared) {
        let (Some(conn), Some(resp)) = (&self.conn, &self.resp) else {
            return;
        };
        if let Body::Ts { mux, .. } = &resp.body {
            let t = mux.stream_truth();
            if let Some(f) = sh.flows.get_mut(conn.flow) {
                f.ts = Some(t);
            }
        }
    }

    /// Called when the capture ends: records the TS facts of a stream still playing.
    pub fn finish(&mut self, sh: &mut Shared) {
        if self.step_no >= 2 {
            self.stream_truth(sh);
        }
    }

    /// Emits the packet due at `now` and returns the time of the next one.
    pub fn step(&mut self, now: u64, sh: &mut Shared) -> Option<u64> {
        match self.phase {
            Phase::Start => {
                let c = &self.svc.cfg;
                self.v6 = !self.svc.v6.is_empty() && self.rng.chance(self.net.ipv6_share);
                self.vlan = self
                    .rng
                    .chance(self.net.vlan_share)
                    .then_some(self.net.vlan_id);
                self.rtt = ((self.rng.range_f64(c.rtt_ms) * MS) as u64).max(US);
                let list = if self.v6 { &self.svc.v6 } else { &self.svc.v4 };
                self.server_host = crate::http::round_robin(&mut self.rng, list, &mut self.answers);
                self.phase = if c.dns_lookup {
                    Phase::DnsQuery
                } else {
                    Phase::Syn
                };
                let _ = self.start_ns;
                Some(now)
            }
            Phase::DnsQuery => {
                let (res, rh) = crate::http::resolver(&self.net, self.v6);
                let path = self.make_path(sh, res, rh, 53);
                let c = &self.svc.cfg;
                let due = self.lookup.query(
                    sh,
                    &self.net,
                    &mut self.rng,
                    path,
                    now,
                    &c.host,
                    &c.name,
                    self.v6,
                    &self.answers,
                );
                self.phase = Phase::DnsAnswer;
                Some(due)
            }
            Phase::DnsAnswer => {
                let c = &self.svc.cfg;
                self.lookup
                    .answer(sh, &self.net, now, &c.host, self.v6, &self.answers);
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
                let c = &self.svc.cfg;
                let conn = Conn::open(
                    sh,
                    path,
                    now,
                    FlowKind::Panel,
                    &c.name,
                    self.rtt,
                    &mut self.rng,
                );
                if let Some(f) = sh.flows.get_mut(conn.flow) {
                    f.http = Some(HttpTruth {
                        host: c.host.clone(),
                        credentials: Some(Credentials {
                            username: c.username.clone(),
                            password: c.password.clone(),
                        }),
                        requests: Vec::new(),
                    });
                }
                self.conn = Some(conn);
                self.phase = Phase::SynAck;
                Some(now + self.rtt)
            }
            Phase::SynAck => {
                if let Some(c) = self.conn.as_mut() {
                    c.syn_ack(now, sh);
                }
                self.phase = Phase::HsAck;
                Some(now + self.rng.range_u64(20 * US, 80 * US))
            }
            Phase::HsAck => {
                if let Some(c) = self.conn.as_mut() {
                    c.hs_ack(now, sh);
                }
                self.phase = Phase::Request;
                Some(now + self.rng.range_u64(100 * US, 500 * US))
            }
            Phase::Request => {
                self.start_request(now, sh);
                let len = self.buf.len();
                let data = &self.buf;
                if let Some(c) = self.conn.as_mut() {
                    c.send(now, sh, true, F::PSH | F::ACK, len, |b| {
                        b.extend_from_slice(data)
                    });
                }
                self.since_ack = 0;
                if self.step_no >= 2 {
                    let w = self.rng.range_f64(self.svc.cfg.watch_s);
                    self.watch_end = now + (w * 1e9) as u64;
                }
                self.phase = Phase::Data;
                Some(now + self.rtt + self.rng.range_u64(200 * US, 1_000 * US))
            }
            Phase::Data => {
                let (Some(conn), Some(resp)) = (self.conn.as_mut(), self.resp.as_mut()) else {
                    return None;
                };
                if self.step_no >= 2 {
                    // The head alone, then the paced stream.
                    let hl = resp.head.len();
                    let pool = &self.svc.pool[..];
                    conn.send(now, sh, false, F::PSH | F::ACK, hl, |b| {
                        resp.write(b, hl, pool)
                    });
                    let q = sh.q(now);
                    conn.with_exchange(sh, self.exch, |x| {
                        x.first_byte_ts_ns = Some(q);
                        x.last_byte_ts_ns = Some(q);
                        x.segments = 1;
                    });
                    self.phase = Phase::Stream;
                    return Some(self.stream_time(now));
                }
                let pool = &self.svc.pool[..];
                let (frame_len, last) =
                    http::response_segment(conn, resp, sh, now, self.exch, pool);
                self.since_ack += 1;
                let gap = http::gap_ns(frame_len, 20_000_000);
                self.next_data = now + gap;
                if self.since_ack >= 2 || last {
                    self.phase = Phase::Ack;
                    Some(now + (40 * US).min(gap / 2).max(1))
                } else {
                    Some(self.next_data)
                }
            }
            Phase::Ack => {
                if let Some(c) = self.conn.as_mut() {
                    c.ack(now, sh, true);
                }
                self.since_ack = 0;
                if self.resp.as_ref().is_some_and(|r| r.sent < r.total()) {
                    self.phase = Phase::Data;
                    return Some(self.next_data);
                }
                self.resp = None;
                self.step_no += 1;
                if self.step_no == 1 {
                    self.phase = Phase::Request;
                    Some(now + self.rng.range_u64(5_000 * US, 50_000 * US))
                } else {
                    self.phase = Phase::ClientFin;
                    Some(now + self.rng.range_u64(1_000 * US, 10_000 * US))
                }
            }
            Phase::Stream => {
                if now >= self.watch_end {
                    self.stream_truth(sh);
                    self.zap = true;
                    self.phase = Phase::ClientFin;
                    return Some(now);
                }
                let n = self.svc.cfg.ts_per_segment as usize;
                let (Some(conn), Some(resp)) = (self.conn.as_mut(), self.resp.as_mut()) else {
                    return None;
                };
                let len = n * TS_PACKET;
                let pool = &self.svc.pool[..];
                conn.send(now, sh, false, F::PSH | F::ACK, len, |b| {
                    resp.write(b, len, pool)
                });
                self.ts_k += n as u64;
                let q = sh.q(now);
                conn.with_exchange(sh, self.exch, |x| {
                    x.last_byte_ts_ns = Some(q);
                    x.body_bytes_sent += len as u64;
                    x.segments += 1;
                });
                self.since_ack += 1;
                let next = self.stream_time(now);
                if self.since_ack >= 2 {
                    self.phase = Phase::StreamAck;
                    Some(now + (40 * US).min((next - now) / 2).max(1))
                } else {
                    Some(next)
                }
            }
            Phase::StreamAck => {
                if let Some(c) = self.conn.as_mut() {
                    c.ack(now, sh, true);
                }
                self.since_ack = 0;
                self.phase = Phase::Stream;
                Some(self.stream_time(now))
            }
            Phase::ClientFin => {
                if let Some(c) = self.conn.as_mut() {
                    c.fin(now, sh, true);
                }
                self.phase = Phase::ServerFin;
                Some(now + self.rtt)
            }
            Phase::ServerFin => {
                if let Some(c) = self.conn.as_mut() {
                    c.fin(now, sh, false);
                }
                self.phase = Phase::LastAck;
                Some(now + self.rng.range_u64(20 * US, 80 * US))
            }
            Phase::LastAck => {
                if let Some(c) = self.conn.as_mut() {
                    c.ack(now, sh, true);
                    c.closed(sh);
                }
                self.conn = None;
                self.resp = None;
                if std::mem::take(&mut self.zap) {
                    // Zap to the next channel.
                    self.stream = (self.stream + 1) % self.svc.cfg.streams.len();
                }
                self.step_no = self.step_no.max(2);
                self.phase = Phase::Syn;
                Some(now + self.rng.range_u64(300_000 * US, 1_500_000 * US))
            }
        }
    }

    /// Time the next stream segment is due: when its last TS packet leaves the mux.
    fn stream_time(&mut self, now: u64) -> u64 {
        let n = self.svc.cfg.ts_per_segment as u64;
        let k = self.ts_k + n - 1;
        match self.resp.as_mut().map(|r| &mut r.body) {
            Some(Body::Ts { mux, .. }) => mux.packet_time(k).max(now + 1),
            _ => now + 1,
        }
    }
}
