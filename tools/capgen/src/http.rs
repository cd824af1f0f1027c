//! Cleartext HTTP/1.1 (RFC 9112) over one TCP connection, shared by the `[[hls]]` and
//! `[[panel]]` players: a player's DNS lookup, the three-way handshake, request and
//! response messages, a response stream cut into MSS-sized segments paced at a rate
//! with one client ACK per two segments, and the FIN/ACK teardown.
//!
//! A response is a head (status line and header fields, RFC 9112 §4, §5) followed by a
//! body that is either held in memory (playlists, JSON) or produced on the fly while it
//! is cut into segments (media segments: MPEG-TS from `ts::Channel` or random
//! bytes), so nothing is allocated per packet.

use std::net::IpAddr;

use crate::dns;
use crate::engine::{Net, Shared};
use crate::net::{host_mac, tcp_flags as F, Path, PathSpec};
use crate::rng::Rng;
use crate::truth::{DnsTruth, EndReason, FlowKind, FlowTruth, HttpExchange, Protocol, TcpTruth};
use crate::ts::{Channel, TS_PACKET};

const EPHEMERAL_LO: u16 = 32_768;
const EPHEMERAL_HI: u16 = 60_999;
pub(crate) const CLIENT_WIN_SYN: u16 = 64_240;
pub(crate) const SERVER_WIN_SYN: u16 = 65_160;
const WSCALE: u8 = 7;
pub(crate) const CLIENT_WIN: u16 = 2048;
pub(crate) const SERVER_WIN: u16 = 501;
pub(crate) const US: u64 = 1_000;
pub(crate) const MS: f64 = 1_000_000.0;

/// Media types (RFC 8216 §4, RFC 3555 / IANA, ISO/IEC 23000-19 for `video/iso.segment`).
pub const CT_M3U8: &str = "application/vnd.apple.mpegurl";
pub const CT_MP2T: &str = "video/mp2t";
pub const CT_ISO_SEGMENT: &str = "video/iso.segment";
pub const CT_MP4: &str = "video/mp4";
pub const CT_MPD: &str = "application/dash+xml";
pub const CT_JSON: &str = "application/json";

/// The next ephemeral port of a client host.
pub(crate) fn ephemeral(sh: &mut Shared, host: u32, rng: &mut Rng) -> u16 {
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

/// The network path of player host `client` to `server:port` (server host index `host`)
/// from a fresh ephemeral port: the one way every HTTP-like player opens a connection
/// or a DNS exchange.
#[allow(clippy::too_many_arguments)]
pub(crate) fn client_path(
    sh: &mut Shared,
    net: &Net,
    rng: &mut Rng,
    client: u32,
    v6: bool,
    vlan: Option<u16>,
    server: IpAddr,
    host: u32,
    port: u16,
) -> Path {
    let cport = ephemeral(sh, client, rng);
    let ttl_down = sh.hosts.get(host as usize).map_or(56, |h| h.ttl);
    Path::new(PathSpec {
        client: net.client_addr(client, v6),
        client_port: cport,
        server,
        server_port: port,
        client_mac: host_mac(client),
        server_mac: net.gateway_mac,
        vlan,
        ttl_up: net.client_ttl,
        ttl_down,
        host_up: client,
        host_down: host,
        labels: (rng.next_u32(), rng.next_u32()),
    })
}

/// The resolver of a client's address family: its address and host id.
pub(crate) fn resolver(net: &Net, v6: bool) -> (IpAddr, u32) {
    if v6 {
        (net.resolver_v6, net.resolver_host_v6)
    } else {
        (net.resolver_v4, net.resolver_host_v4)
    }
}

/// DNS round robin: every server of `servers` (address, host id) into `answers`, from a
/// random one on; returns the host id of the first, the server the player connects to.
pub(crate) fn round_robin(
    rng: &mut Rng,
    servers: &[(IpAddr, u32)],
    answers: &mut Vec<IpAddr>,
) -> u32 {
    let rot = rng.range_u64(0, servers.len() as u64 - 1) as usize;
    answers.clear();
    for i in 0..servers.len() {
        answers.push(servers[(rot + i) % servers.len()].0);
    }
    servers[rot].1
}

/// A player's DNS lookup of its server name: the query is sent, the answer is due.
#[derive(Debug, Default)]
pub(crate) struct Lookup {
    id: u16,
    flow: usize,
    path: Option<Path>,
}

impl Lookup {
    /// Sends the query over `path` (from [`client_path`] to the resolver) and returns
    /// when the answer is due (one resolver round trip later).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn query(
        &mut self,
        sh: &mut Shared,
        net: &Net,
        rng: &mut Rng,
        path: Path,
        now: u64,
        host: &str,
        name: &str,
        v6: bool,
        answers: &[IpAddr],
    ) -> u64 {
        self.id = rng.next_u32() as u16;
        let (flow, _) = dns_query(
            sh,
            &path,
            now,
            self.id,
            host,
            name,
            v6,
            answers,
            net.dns_ttl,
        );
        self.flow = flow;
        self.path = Some(path);
        now + ((rng.range_f64(net.dns_rtt_ms) * MS) as u64).max(US)
    }

    /// Sends the answer to the query sent by [`Lookup::query`].
    pub(crate) fn answer(
        &self,
        sh: &mut Shared,
        net: &Net,
        now: u64,
        host: &str,
        v6: bool,
        answers: &[IpAddr],
    ) {
        if let Some(p) = &self.path {
            dns_answer(
                sh,
                p,
                now,
                self.id,
                host,
                v6,
                answers,
                net.dns_ttl,
                self.flow,
            );
        }
    }
}

/// Writes a player's DNS query for `host` on `path` and opens its flow; returns the flow
/// id and the UDP payload length.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dns_query(
    sh: &mut Shared,
    path: &Path,
    now: u64,
    id: u16,
    host: &str,
    name: &str,
    v6: bool,
    answers: &[IpAddr],
    ttl: u32,
) -> (usize, usize) {
    let qtype = if v6 { dns::QTYPE_AAAA } else { dns::QTYPE_A };
    let pl = path.udp(&mut sh.frame, true, &mut sh.hosts, |b| {
        dns::query(b, id, qtype, |b| dns::write_name(b, host))
    });
    let mut f = FlowTruth::new(FlowKind::Dns, Some(name.to_string()), Protocol::Udp, path);
    f.dns = Some(DnsTruth {
        id,
        qname: host.to_string(),
        qtype: if v6 { "AAAA" } else { "A" }.to_string(),
        rcode: Some(0),
        answers: answers.to_vec(),
        answer_ttl_s: ttl,
        query_ts_ns: sh.q(now),
        response_ts_ns: None,
    });
    let flow = sh.open_flow(f);
    sh.account(flow, true, now, pl);
    (flow, pl)
}

/// Writes the answer to [`dns_query`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn dns_answer(
    sh: &mut Shared,
    path: &Path,
    now: u64,
    id: u16,
    host: &str,
    v6: bool,
    answers: &[IpAddr],
    ttl: u32,
    flow: usize,
) {
    let qtype = if v6 { dns::QTYPE_AAAA } else { dns::QTYPE_A };
    let pl = path.udp(&mut sh.frame, false, &mut sh.hosts, |b| {
        dns::answer(b, id, qtype, ttl, answers, |b| dns::write_name(b, host))
    });
    sh.account(flow, false, now, pl);
    let q = sh.q(now);
    if let Some(d) = sh.flows.get_mut(flow).and_then(|f| f.dns.as_mut()) {
        d.response_ts_ns = Some(q);
    }
}

fn syn_options(mss: u16) -> [u8; 12] {
    let m = mss.to_be_bytes();
    // MSS, NOP, window scale, NOP, NOP, SACK permitted (RFC 9293 §3.2, RFC 7323 §2, RFC 2018 §2).
    [2, 4, m[0], m[1], 1, 3, 3, WSCALE, 1, 1, 4, 2]
}

/// One TCP connection of a player, with its flow in the truth.
pub(crate) struct Conn {
    pub path: Path,
    pub flow: usize,
    pub cseq: u32,
    pub sseq: u32,
    isn_s: u32,
    pub mss: u16,
    syn_q: u64,
}

impl Conn {
    /// Writes the SYN and opens the flow (kind `kind`, named `name`).
    pub fn open(
        sh: &mut Shared,
        path: Path,
        now: u64,
        kind: FlowKind,
        name: &str,
        rtt: u64,
        rng: &mut Rng,
    ) -> Conn {
        let mss = if path.v6 { 1440 } else { 1460 };
        let isn_c = rng.next_u32();
        let isn_s = rng.next_u32();
        path.tcp(
            &mut sh.frame,
            true,
            &mut sh.hosts,
            isn_c,
            0,
            F::SYN,
            CLIENT_WIN_SYN,
            &syn_options(mss),
            |_| {},
        );
        let mut f = FlowTruth::new(kind, Some(name.to_string()), Protocol::Tcp, &path);
        let syn_q = sh.q(now);
        f.tcp = Some(TcpTruth {
            syn_ts_ns: syn_q,
            handshake_rtt_ns: None,
            path_rtt_ns: rtt,
            mss,
            retransmissions: 0,
            fin_client: false,
            fin_server: false,
            rst_client: false,
            rst_server: false,
            end_reason: EndReason::CaptureEnd,
            bursts: Vec::new(),
        });
        let flow = sh.open_flow(f);
        sh.account(flow, true, now, 0);
        Conn {
            path,
            flow,
            cseq: isn_c.wrapping_add(1),
            sseq: isn_s.wrapping_add(1),
            isn_s,
            mss,
            syn_q,
        }
    }

    /// The server's SYN-ACK.
    pub fn syn_ack(&mut self, now: u64, sh: &mut Shared) {
        let (seq, ack) = (self.isn_s, self.cseq);
        let opts = syn_options(self.mss);
        self.segment(
            now,
            sh,
            false,
            seq,
            ack,
            F::SYN | F::ACK,
            SERVER_WIN_SYN,
            &opts,
            |_| {},
        );
    }

    /// The client's handshake ACK; records the handshake RTT.
    pub fn hs_ack(&mut self, now: u64, sh: &mut Shared) {
        self.ack(now, sh, true);
        let rtt = sh.q(now) - self.syn_q;
        self.with_tcp(sh, |t| t.handshake_rtt_ns = Some(rtt));
    }

    /// A pure ACK from one side.
    pub fn ack(&mut self, now: u64, sh: &mut Shared, up: bool) {
        self.send(now, sh, up, F::ACK, 0, |_| {});
    }

    /// A segment with `len` bytes of data written by `data`; advances the sender's
    /// sequence number. Returns the frame length.
    pub fn send(
        &mut self,
        now: u64,
        sh: &mut Shared,
        up: bool,
        flags: u8,
        len: usize,
        data: impl FnOnce(&mut Vec<u8>),
    ) -> usize {
        let (seq, ack, win) = if up {
            (self.cseq, self.sseq, CLIENT_WIN)
        } else {
            (self.sseq, self.cseq, SERVER_WIN)
        };
        let n = self.segment(now, sh, up, seq, ack, flags, win, &[], data);
        let adv = len as u32 + (flags & F::FIN != 0) as u32;
        if up {
            self.cseq = self.cseq.wrapping_add(adv);
        } else {
            self.sseq = self.sseq.wrapping_add(adv);
        }
        n
    }

    /// FIN/ACK from one side (records it in the truth).
    pub fn fin(&mut self, now: u64, sh: &mut Shared, up: bool) {
        self.send(now, sh, up, F::FIN | F::ACK, 0, |_| {});
        self.with_tcp(sh, |t| {
            if up {
                t.fin_client = true
            } else {
                t.fin_server = true
            }
        });
    }

    /// Marks the connection closed by FIN.
    pub fn closed(&self, sh: &mut Shared) {
        self.with_tcp(sh, |t| t.end_reason = EndReason::Fin);
    }

    #[allow(clippy::too_many_arguments)]
    fn segment(
        &mut self,
        now: u64,
        sh: &mut Shared,
        up: bool,
        seq: u32,
        ack: u32,
        flags: u8,
        win: u16,
        opts: &[u8],
        data: impl FnOnce(&mut Vec<u8>),
    ) -> usize {
        let pl = self.path.tcp(
            &mut sh.frame,
            up,
            &mut sh.hosts,
            seq,
            ack,
            flags,
            win,
            opts,
            data,
        );
        sh.account(self.flow, up, now, pl);
        sh.frame.len()
    }

    pub fn with_tcp(&self, sh: &mut Shared, f: impl FnOnce(&mut TcpTruth)) {
        if let Some(t) = sh.flows.get_mut(self.flow).and_then(|fl| fl.tcp.as_mut()) {
            f(t)
        }
    }

    /// The `i`-th HTTP exchange of this connection's truth.
    pub fn with_exchange(&self, sh: &mut Shared, i: usize, f: impl FnOnce(&mut HttpExchange)) {
        if let Some(x) = sh
            .flows
            .get_mut(self.flow)
            .and_then(|fl| fl.http.as_mut())
            .and_then(|h| h.requests.get_mut(i))
        {
            f(x)
        }
    }
}

/// Appends a GET request (RFC 9112 §3) with Host, User-Agent and Accept fields.
pub fn get_request(b: &mut Vec<u8>, uri: &str, host: &str, user_agent: &str, keep_alive: bool) {
    b.extend_from_slice(b"GET ");
    b.extend_from_slice(uri.as_bytes());
    b.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    b.extend_from_slice(host.as_bytes());
    b.extend_from_slice(b"\r\nUser-Agent: ");
    b.extend_from_slice(user_agent.as_bytes());
    b.extend_from_slice(b"\r\nAccept: */*\r\nConnection: ");
    b.extend_from_slice(if keep_alive { b"keep-alive" } else { b"close" });
    b.extend_from_slice(b"\r\n\r\n");
}

/// Appends a `200 OK` response head. `content_length` `None` means the body runs until
/// the server closes the connection (RFC 9112 §6.3 item 8).
pub fn ok_head(b: &mut Vec<u8>, server: &str, content_type: &str, content_length: Option<u64>) {
    b.extend_from_slice(b"HTTP/1.1 200 OK\r\nServer: ");
    b.extend_from_slice(server.as_bytes());
    b.extend_from_slice(b"\r\nContent-Type: ");
    b.extend_from_slice(content_type.as_bytes());
    match content_length {
        Some(n) => {
            b.extend_from_slice(b"\r\nContent-Length: ");
            b.extend_from_slice(n.to_string().as_bytes());
            b.extend_from_slice(b"\r\nConnection: keep-alive\r\nCache-Control: max-age=1");
        }
        None => {
            b.extend_from_slice(b"\r\nConnection: close\r\nCache-Control: no-cache");
        }
    }
    b.extend_from_slice(b"\r\n\r\n");
}

/// A response body produced while it is cut into segments.
pub(crate) enum Body {
    /// Held in memory (playlists, JSON, init segments).
    Bytes(Vec<u8>),
    /// `len` bytes of MPEG-TS: the next packets of `mux`.
    Ts {
        len: u64,
        mux: Box<Channel>,
        pkt: Box<[u8; TS_PACKET]>,
        /// Index of the packet held in `pkt` (`u64::MAX`: none yet).
        idx: u64,
    },
    /// `len` random-looking bytes (fragmented MP4 media segments) from the pool.
    Random { len: u64, seed: usize },
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(v) => v.len() as u64,
            Body::Ts { len, .. } | Body::Random { len, .. } => *len,
        }
    }

    /// Appends body bytes `[off, off + len)`; calls must come in increasing order.
    fn write(&mut self, b: &mut Vec<u8>, off: u64, len: usize, pool: &[u8]) {
        match self {
            Body::Bytes(v) => {
                let s = (off as usize).min(v.len());
                let e = (s + len).min(v.len());
                b.extend_from_slice(&v[s..e]);
            }
            Body::Random { seed, .. } => {
                let mut p = (*seed + off as usize) % pool.len();
                let mut left = len;
                while left > 0 {
                    let n = left.min(pool.len() - p);
                    b.extend_from_slice(&pool[p..p + n]);
                    left -= n;
                    p = 0;
                }
            }
            Body::Ts { mux, pkt, idx, .. } => {
                let mut o = off;
                let end = off + len as u64;
                while o < end {
                    let k = o / TS_PACKET as u64;
                    if *idx != k {
                        mux.next_packet(pkt);
                        *idx = k;
                    }
                    let s = (o % TS_PACKET as u64) as usize;
                    let n = (TS_PACKET - s).min((end - o) as usize);
                    b.extend_from_slice(&pkt[s..s + n]);
                    o += n as u64;
                }
            }
        }
    }
}

/// A response being sent: head, then body, as one byte stream.
pub(crate) struct Response {
    pub head: Vec<u8>,
    pub body: Body,
    pub sent: u64,
}

impl Response {
    pub fn total(&self) -> u64 {
        self.head.len() as u64 + self.body.len()
    }

    /// Appends stream bytes `[self.sent, self.sent + len)` and advances.
    pub fn write(&mut self, b: &mut Vec<u8>, len: usize, pool: &[u8]) {
        let h = self.head.len() as u64;
        let mut off = self.sent;
        let end = off + len as u64;
        if off < h {
            let e = end.min(h);
            b.extend_from_slice(&self.head[off as usize..e as usize]);
            off = e;
        }
        if off < end {
            self.body.write(b, off - h, (end - off) as usize, pool);
        }
        self.sent = end;
    }
}

/// Sends the next MSS-sized segment of `resp` from the server and records it in
/// exchange `exch`; returns the frame length and whether the response is complete.
pub(crate) fn response_segment(
    conn: &mut Conn,
    resp: &mut Response,
    sh: &mut Shared,
    now: u64,
    exch: usize,
    pool: &[u8],
) -> (usize, bool) {
    let total = resp.total();
    let len = (total - resp.sent).min(conn.mss as u64) as usize;
    let last = resp.sent + len as u64 >= total;
    let flags = if last { F::PSH | F::ACK } else { F::ACK };
    let hlen = resp.head.len() as u64;
    let before = resp.sent;
    let frame_len = conn.send(now, sh, false, flags, len, |b| resp.write(b, len, pool));
    let body_now = resp.sent.saturating_sub(hlen) - before.saturating_sub(hlen);
    let q = sh.q(now);
    conn.with_exchange(sh, exch, |x| {
        x.first_byte_ts_ns.get_or_insert(q);
        x.last_byte_ts_ns = Some(q);
        x.body_bytes_sent += body_now;
        x.segments += 1;
        x.complete = last && x.content_length.is_some();
    });
    (frame_len, last)
}

/// Pacing gap of a frame of `frame_len` bytes at `rate_bps`.
pub(crate) fn gap_ns(frame_len: usize, rate_bps: u64) -> u64 {
    ((frame_len as u128 * 8 * 1_000_000_000 / rate_bps.max(1) as u128) as u64).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_well_formed() {
        let mut b = Vec::new();
        get_request(&mut b, "/hls/master.m3u8", "hls.example", "ua/1", true);
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            "GET /hls/master.m3u8 HTTP/1.1\r\nHost: hls.example\r\nUser-Agent: ua/1\r\n\
             Accept: */*\r\nConnection: keep-alive\r\n\r\n"
        );
        let mut h = Vec::new();
        ok_head(&mut h, "nginx", CT_MP2T, Some(1316));
        let t = std::str::from_utf8(&h).unwrap();
        assert!(t.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(t.contains("\r\nContent-Length: 1316\r\n"));
        assert!(t.ends_with("\r\n\r\n"));
    }

    #[test]
    fn response_stream_in_pieces_equals_whole() {
        let pool: Vec<u8> = (0..4096u32).map(|i| (i * 13 + 1) as u8).collect();
        let mk = || Response {
            head: b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
            body: Body::Random {
                len: 5000,
                seed: 77,
            },
            sent: 0,
        };
        let mut whole = Vec::new();
        let mut r = mk();
        let t = r.total() as usize;
        r.write(&mut whole, t, &pool);
        let mut parts = Vec::new();
        let mut r = mk();
        while r.sent < r.total() {
            let n = (r.total() - r.sent).min(1460) as usize;
            r.write(&mut parts, n, &pool);
        }
        assert_eq!(whole, parts);
        assert_eq!(whole.len(), 19 + 5000);
    }
}
