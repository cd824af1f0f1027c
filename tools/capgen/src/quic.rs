//! QUIC version 1 (RFC 9000) Initial packets protected exactly as RFC 9001 §5 says,
//! and `[[quic]]` players.
//!
//! Initial keys come from the client's first Destination Connection ID: HKDF-Extract
//! with the version 1 salt (§5.2), then HKDF-Expand-Label ("client in"/"server in",
//! "quic key", "quic iv", "quic hp"; RFC 8446 §7.1). Payloads are sealed with
//! AES-128-GCM under a nonce of the IV XOR the packet number (§5.3), and the header is
//! protected with an AES-128-ECB mask of a 16-byte ciphertext sample (§5.4). The unit
//! tests reproduce the RFC 9001 Appendix A vectors byte for byte.
//!
//! A player session: optional DNS lookup; the client Initial (CRYPTO frame with a TLS
//! ClientHello carrying SNI and ALPN `h3`, padded to a 1200-byte datagram); one RTT
//! later the server's Initial (ACK + ServerHello) coalesced with a Handshake packet,
//! and a second Handshake datagram; the client's Initial ACK + Handshake (Finished);
//! then every `segment_duration_s` a 1-RTT request and a response burst of short-header
//! packets paced at `rate_bps`, the client acknowledging every second packet. Handshake
//! and 1-RTT payloads are random bytes (their keys come from an x25519 exchange nobody
//! can redo). A session ends with a client 1-RTT packet standing for CONNECTION_CLOSE.

use std::net::IpAddr;
use std::rc::Rc;

use aes::cipher::{BlockEncrypt, KeyInit};
use aes_gcm::aead::AeadInPlace;
use hkdf::Hkdf;
use sha2::Sha256;

use crate::engine::{Net, Shared};
use crate::net::Path;
use crate::rng::Rng;
use crate::scenario::QuicConfig;
use crate::tls;
use crate::truth::{BurstTruth, FlowKind, FlowTruth, Protocol, QuicTruth};

/// QUIC version 1 (RFC 9000 §15).
pub const VERSION_1: u32 = 1;
/// initial_salt of RFC 9001 §5.2.
pub const INITIAL_SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// Long header packet types (RFC 9000 §17.2): Initial and Handshake.
const LONG_INITIAL: u8 = 0xC0;
const LONG_HANDSHAKE: u8 = 0xE0;
/// Short header: fixed bit set, header form 0 (RFC 9000 §17.3.1).
const SHORT: u8 = 0x40;
/// Frame types (RFC 9000 §19).
const FRAME_ACK: u8 = 0x02;
const FRAME_CRYPTO: u8 = 0x06;
/// Smallest datagram carrying a client Initial (RFC 9000 §14.1).
pub const MIN_INITIAL_DATAGRAM: usize = 1200;
/// AEAD tag and header-protection sample length (RFC 9001 §5.3, §5.4.2).
const TAG: usize = 16;
const SAMPLE: usize = 16;
/// Packet number length used in Initials written here.
const PN_LEN: usize = 2;
const CID_LEN: usize = 8;
const US: u64 = 1_000;
const MS: f64 = 1_000_000.0;

/// Keys of one direction of one packet-number space (RFC 9001 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(prk: &[u8], label: &str, out: &mut [u8]) {
    let mut info = [0u8; 64];
    let full = 6 + label.len();
    info[..2].copy_from_slice(&(out.len() as u16).to_be_bytes());
    info[2] = full as u8;
    info[3..9].copy_from_slice(b"tls13 ");
    info[9..9 + label.len()].copy_from_slice(label.as_bytes());
    info[9 + label.len()] = 0;
    let n = 10 + label.len();
    // A 32-byte PRK is always long enough and the outputs are at most 32 bytes.
    if let Ok(hk) = Hkdf::<Sha256>::from_prk(prk) {
        let _ = hk.expand(&info[..n], out);
    }
}

/// The client and server Initial secrets for a Destination Connection ID (RFC 9001 §5.2).
pub fn initial_secrets(dcid: &[u8]) -> ([u8; 32], [u8; 32]) {
    let (prk, _) = Hkdf::<Sha256>::extract(Some(&INITIAL_SALT_V1), dcid);
    let mut c = [0u8; 32];
    let mut s = [0u8; 32];
    expand_label(&prk, "client in", &mut c);
    expand_label(&prk, "server in", &mut s);
    (c, s)
}

/// Packet protection keys of a secret (RFC 9001 §5.1).
pub fn keys(secret: &[u8; 32]) -> Keys {
    let mut k = Keys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(secret, "quic key", &mut k.key);
    expand_label(secret, "quic iv", &mut k.iv);
    expand_label(secret, "quic hp", &mut k.hp);
    k
}

/// Client and server Initial keys for a Destination Connection ID.
pub fn initial_keys(dcid: &[u8]) -> (Keys, Keys) {
    let (c, s) = initial_secrets(dcid);
    (keys(&c), keys(&s))
}

/// The 5-byte header protection mask of a sample (RFC 9001 §5.4.3).
pub fn hp_mask(hp: &[u8; 16], sample: &[u8]) -> [u8; 5] {
    let cipher = aes::Aes128::new(&(*hp).into());
    let mut block = aes::Block::default();
    block.copy_from_slice(&sample[..SAMPLE]);
    cipher.encrypt_block(&mut block);
    [block[0], block[1], block[2], block[3], block[4]]
}

fn nonce(iv: &[u8; 12], pn: u64) -> [u8; 12] {
    let mut n = *iv;
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        n[4 + i] ^= b;
    }
    n
}

/// Protects a long-header packet in place (RFC 9001 §5.3, §5.4.1).
///
/// `pkt` holds the unprotected header (through the `pn_len`-byte packet number that
/// starts at `pn_off`) followed by the plaintext payload; the 16-byte tag is appended.
/// The payload must be at least `4 - pn_len` bytes long so that a sample exists.
pub fn protect(pkt: &mut Vec<u8>, start: usize, pn_off: usize, pn_len: usize, pn: u64, k: &Keys) {
    let hdr_end = pn_off + pn_len;
    let cipher = aes_gcm::Aes128Gcm::new(&k.key.into());
    let n = nonce(&k.iv, pn);
    let (aad, body) = pkt.split_at_mut(hdr_end);
    let tag = cipher
        .encrypt_in_place_detached(&n.into(), &aad[start..], body)
        .map(|t| {
            let mut a = [0u8; TAG];
            a.copy_from_slice(&t);
            a
        })
        .unwrap_or([0; TAG]);
    pkt.extend_from_slice(&tag);
    let s = pn_off + 4;
    let mask = hp_mask(&k.hp, &pkt[s..s + SAMPLE]);
    let long = pkt[start] & 0x80 != 0;
    pkt[start] ^= mask[0] & if long { 0x0F } else { 0x1F };
    for i in 0..pn_len {
        pkt[pn_off + i] ^= mask[1 + i];
    }
}

/// Removes header and payload protection from a long-header packet that starts at
/// `pkt[0]`; returns the packet number and the plaintext payload, or `None` when the
/// tag does not verify. `pn_off` is the offset of the packet number field.
pub fn unprotect(
    pkt: &[u8],
    pn_off: usize,
    payload_end: usize,
    k: &Keys,
) -> Option<(u64, Vec<u8>)> {
    let s = pn_off + 4;
    let mask = hp_mask(&k.hp, pkt.get(s..s + SAMPLE)?);
    let mut hdr = pkt.get(..pn_off + 4)?.to_vec();
    hdr[0] ^= mask[0] & if hdr[0] & 0x80 != 0 { 0x0F } else { 0x1F };
    let pn_len = (hdr[0] & 0x03) as usize + 1;
    let mut pn = 0u64;
    for i in 0..pn_len {
        hdr[pn_off + i] ^= mask[1 + i];
        pn = (pn << 8) | hdr[pn_off + i] as u64;
    }
    let hdr_end = pn_off + pn_len;
    let mut body = pkt.get(hdr_end..payload_end.checked_sub(TAG)?)?.to_vec();
    let tag = pkt.get(payload_end - TAG..payload_end)?;
    let cipher = aes_gcm::Aes128Gcm::new(&k.key.into());
    cipher
        .decrypt_in_place_detached(
            &nonce(&k.iv, pn).into(),
            &hdr[..hdr_end],
            &mut body,
            tag.into(),
        )
        .ok()?;
    Some((pn, body))
}

/// Appends a variable-length integer (RFC 9000 §16).
pub fn varint(b: &mut Vec<u8>, v: u64) {
    if v < 1 << 6 {
        b.push(v as u8);
    } else if v < 1 << 14 {
        b.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes());
    } else if v < 1 << 30 {
        b.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes());
    } else {
        b.extend_from_slice(&(v | 0xC000_0000_0000_0000).to_be_bytes());
    }
}

/// Reads a varint at `*p`, advancing it.
pub fn read_varint(b: &[u8], p: &mut usize) -> Option<u64> {
    let first = *b.get(*p)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*p..*p + len)?;
    let mut v = (first & 0x3F) as u64;
    for x in &bytes[1..] {
        v = (v << 8) | *x as u64;
    }
    *p += len;
    Some(v)
}

/// Encoded transport parameters of a client (RFC 9000 §18.2).
fn transport_params(scid: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    let mut p = |id: u64, v: u64| {
        varint(&mut b, id);
        let mut t = Vec::with_capacity(8);
        varint(&mut t, v);
        varint(&mut b, t.len() as u64);
        b.extend_from_slice(&t);
    };
    p(0x01, 30_000); // max_idle_timeout
    p(0x04, 15_728_640); // initial_max_data
    p(0x05, 6_291_456); // initial_max_stream_data_bidi_local
    p(0x06, 6_291_456); // initial_max_stream_data_bidi_remote
    p(0x07, 6_291_456); // initial_max_stream_data_uni
    p(0x08, 100); // initial_max_streams_bidi
    p(0x09, 103); // initial_max_streams_uni
    varint(&mut b, 0x0F); // initial_source_connection_id
    varint(&mut b, scid.len() as u64);
    b.extend_from_slice(scid);
    b
}

/// Appends a long header through the packet number; returns the packet number offset.
/// The Length field is a 2-byte varint covering packet number, payload and tag.
#[allow(clippy::too_many_arguments)]
fn long_header(
    b: &mut Vec<u8>,
    first: u8,
    dcid: &[u8],
    scid: &[u8],
    initial: bool,
    pn_len: usize,
    payload_len: usize,
    pn: u64,
) -> usize {
    b.push(first | (pn_len as u8 - 1));
    b.extend_from_slice(&VERSION_1.to_be_bytes());
    b.push(dcid.len() as u8);
    b.extend_from_slice(dcid);
    b.push(scid.len() as u8);
    b.extend_from_slice(scid);
    if initial {
        b.push(0); // token length 0
    }
    let len = (pn_len + payload_len + TAG) as u16 | 0x4000;
    b.extend_from_slice(&len.to_be_bytes());
    let off = b.len();
    let pnb = pn.to_be_bytes();
    b.extend_from_slice(&pnb[8 - pn_len..]);
    off
}

/// Bytes of a long header with token length 0 (Initial) and a 2-byte Length field.
fn long_header_len(dcid: usize, scid: usize, initial: bool, pn_len: usize) -> usize {
    1 + 4 + 1 + dcid + 1 + scid + initial as usize + 2 + pn_len
}

/// Appends a protected Initial packet whose frames `frames` are followed by PADDING
/// so that the packet is `size` bytes long (when `size` is larger than needed).
#[allow(clippy::too_many_arguments)]
pub fn initial_packet(
    b: &mut Vec<u8>,
    dcid: &[u8],
    scid: &[u8],
    pn: u64,
    frames: &[u8],
    size: usize,
    k: &Keys,
) {
    let start = b.len();
    let hl = long_header_len(dcid.len(), scid.len(), true, PN_LEN);
    let payload = frames.len().max(size.saturating_sub(hl + TAG)).max(4);
    let pn_off = long_header(b, LONG_INITIAL, dcid, scid, true, PN_LEN, payload, pn);
    b.extend_from_slice(frames);
    b.resize(start + hl + payload, 0); // PADDING frames are zero bytes
    protect(b, start, pn_off, PN_LEN, pn, k);
}

/// A CRYPTO frame at offset 0 carrying `data`.
fn crypto_frame(f: &mut Vec<u8>, data: &[u8]) {
    crypto_frame_at(f, 0, data);
}

/// A CRYPTO frame at `offset` carrying `data`.
fn crypto_frame_at(f: &mut Vec<u8>, offset: u64, data: &[u8]) {
    f.push(FRAME_CRYPTO);
    varint(f, offset);
    varint(f, data.len() as u64);
    f.extend_from_slice(data);
}

/// Time between a ClientHello's Initial datagrams, ns.
const INITIAL_GAP_NS: u64 = 20_000;

/// ClientHello bytes per client Initial packet: what fits in a 1,200-byte datagram with
/// the long header, the CRYPTO frame's header and the AEAD tag.
const CRYPTO_PER_INITIAL: usize = 1_100;

/// An ACK frame acknowledging packet 0..=largest in one range, no ECN.
fn ack_frame(f: &mut Vec<u8>, largest: u64, delay: u64) {
    f.push(FRAME_ACK);
    varint(f, largest);
    varint(f, delay);
    varint(f, 0);
    varint(f, largest);
}

/// Appends a Handshake packet with `len` bytes of random-looking protected payload
/// (packet number, frames and tag together).
fn handshake_packet(
    b: &mut Vec<u8>,
    dcid: &[u8],
    scid: &[u8],
    len: usize,
    pool: &[u8],
    off: usize,
) {
    let len = len.max(TAG + 4);
    b.push(LONG_HANDSHAKE | (pool[off % pool.len()] & 0x0F));
    b.extend_from_slice(&VERSION_1.to_be_bytes());
    b.push(dcid.len() as u8);
    b.extend_from_slice(dcid);
    b.push(scid.len() as u8);
    b.extend_from_slice(scid);
    b.extend_from_slice(&((len as u16) | 0x4000).to_be_bytes());
    take(b, pool, off, len);
}

/// Appends `len` bytes of `pool` starting at `off` (cycled).
fn take(b: &mut Vec<u8>, pool: &[u8], off: usize, len: usize) {
    let mut p = off % pool.len();
    let mut left = len;
    while left > 0 {
        let n = left.min(pool.len() - p);
        b.extend_from_slice(&pool[p..p + n]);
        left -= n;
        p = 0;
    }
}

/// Appends a 1-RTT short-header packet of `len` bytes to `dcid` (header bits and
/// everything after the connection id are random, as protection makes them look).
fn short_packet(b: &mut Vec<u8>, dcid: &[u8], len: usize, pool: &[u8], off: usize) {
    let p = off % pool.len();
    b.push(SHORT | (pool[p] & 0x3F));
    b.extend_from_slice(dcid);
    take(b, pool, off + 1, len.saturating_sub(1 + dcid.len()));
}

/// One `[[quic]]` service.
pub(crate) struct Service {
    pub cfg: QuicConfig,
    pub v4: Vec<(IpAddr, u32)>,
    pub v6: Vec<(IpAddr, u32)>,
    pub pool: Rc<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Start,
    DnsQuery,
    DnsAnswer,
    ClientInitial,
    /// The ClientHello's further Initial packets, one datagram per step.
    MoreInitials,
    ServerInitial,
    ServerHandshake,
    ClientFinished,
    Request,
    Data,
    Ack,
    Close,
}

/// A QUIC player: sessions of one connection each until the capture ends.
pub(crate) struct QuicPlayer {
    svc: Rc<Service>,
    net: Rc<Net>,
    rng: Rng,
    client: u32,
    phase: Phase,
    v6: bool,
    vlan: Option<u16>,
    rtt: u64,
    session_end: u64,
    answers: Vec<IpAddr>,
    server_host: u32,
    lookup: crate::http::Lookup,
    path: Option<Path>,
    flow: Option<usize>,
    dcid: [u8; CID_LEN],
    scid: [u8; CID_LEN],
    server_cid: [u8; CID_LEN],
    pkt_size: usize,
    next_request: u64,
    burst_total: u64,
    burst_sent: u64,
    burst_idx: usize,
    since_ack: u32,
    next_data: u64,
    pool_off: usize,
    buf: Vec<u8>,
    /// Initial packets the ClientHello took.
    client_initials: u64,
    /// Its Initial datagrams not sent yet.
    more_initials: Vec<Vec<u8>>,
}

impl QuicPlayer {
    pub fn new(svc: Rc<Service>, net: Rc<Net>, rng: Rng, client: u32) -> QuicPlayer {
        QuicPlayer {
            svc,
            net,
            rng,
            client,
            phase: Phase::Start,
            v6: false,
            vlan: None,
            rtt: 0,
            session_end: 0,
            answers: Vec::new(),
            server_host: 0,
            lookup: Default::default(),
            path: None,
            flow: None,
            dcid: [0; CID_LEN],
            scid: [0; CID_LEN],
            server_cid: [0; CID_LEN],
            pkt_size: 1252,
            next_request: 0,
            burst_total: 0,
            burst_sent: 0,
            burst_idx: 0,
            since_ack: 0,
            next_data: 0,
            pool_off: 0,
            buf: Vec::with_capacity(2048),
            client_initials: 1,
            more_initials: Vec::new(),
        }
    }

    /// Time of the first session start.
    pub fn first_time(&mut self, start_ns: u64) -> u64 {
        start_ns + (self.rng.f64() * self.svc.cfg.start_spread_s * 1e9) as u64
    }

    fn cid(&mut self) -> [u8; CID_LEN] {
        self.rng.next_u64().to_be_bytes()
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

    fn with_quic(&self, sh: &mut Shared, f: impl FnOnce(&mut QuicTruth)) {
        if let Some(q) = self
            .flow
            .and_then(|i| sh.flows.get_mut(i))
            .and_then(|fl| fl.quic.as_mut())
        {
            f(q)
        }
    }

    /// Writes `self.buf` as one datagram; returns the frame length.
    fn send(&mut self, now: u64, sh: &mut Shared, up: bool) -> usize {
        let (Some(path), Some(flow)) = (&self.path, self.flow) else {
            return 0;
        };
        let data = &self.buf;
        let pl = path.udp(&mut sh.frame, up, &mut sh.hosts, |b| {
            b.extend_from_slice(data)
        });
        sh.account(flow, up, now, pl);
        sh.frame.len()
    }

    fn pool_slice(&mut self, n: usize) -> usize {
        let o = self.pool_off;
        self.pool_off = (self.pool_off + n * 7 + 13) % self.svc.pool.len();
        o
    }

    /// Emits the packet due at `now` and returns the time of the next one.
    pub fn step(&mut self, now: u64, sh: &mut Shared) -> Option<u64> {
        let pool = self.svc.pool.clone();
        match self.phase {
            Phase::Start => {
                let cfg = &self.svc.cfg;
                self.v6 = !self.svc.v6.is_empty() && self.rng.chance(self.net.ipv6_share);
                self.vlan = self
                    .rng
                    .chance(self.net.vlan_share)
                    .then_some(self.net.vlan_id);
                self.rtt = ((self.rng.range_f64(cfg.rtt_ms) * MS) as u64).max(US);
                self.session_end = now + (self.rng.range_f64(cfg.session_s) * 1e9) as u64;
                let list = if self.v6 { &self.svc.v6 } else { &self.svc.v4 };
                self.server_host = crate::http::round_robin(&mut self.rng, list, &mut self.answers);
                // Largest UDP payload in a 1280-byte IPv6 / 1280-byte IPv4 path MTU budget.
                self.pkt_size = if self.v6 { 1232 } else { 1252 };
                self.flow = None;
                self.phase = if cfg.dns_lookup {
                    Phase::DnsQuery
                } else {
                    Phase::ClientInitial
                };
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
                self.phase = Phase::ClientInitial;
                Some(now + self.rng.range_u64(100 * US, 400 * US))
            }
            Phase::ClientInitial => {
                let server = self
                    .answers
                    .first()
                    .copied()
                    .unwrap_or(self.net.resolver_v4);
                let port = self.svc.cfg.port;
                let path = self.make_path(sh, server, self.server_host, port);
                self.dcid = self.cid();
                self.scid = self.cid();
                self.server_cid = self.cid();
                let mut random = [0u8; 32];
                let mut key = [0u8; 32];
                for b in random.iter_mut().chain(key.iter_mut()) {
                    *b = self.rng.next_u32() as u8;
                }
                let tp = transport_params(&self.scid);
                let mut ch = Vec::with_capacity(512);
                let alpn: Vec<&str> = self.svc.cfg.alpn.iter().map(|s| s.as_str()).collect();
                tls::client_hello(
                    &mut ch,
                    &tls::ClientHelloSpec {
                        random,
                        session_id: &[],
                        sni: &self.svc.cfg.host,
                        alpn: &alpn,
                        key_share: key,
                        quic_params: Some(&tp),
                        padding: self.svc.cfg.client_hello_padding,
                    },
                );
                // The ClientHello in CRYPTO frames of at most CRYPTO_PER_INITIAL bytes, one
                // Initial packet (and datagram) each, as browsers send a ClientHello
                // grown past one packet by post-quantum key shares.
                let (ck, _) = initial_keys(&self.dcid);
                let (dcid, scid) = (self.dcid, self.scid);
                let mut datagrams = Vec::new();
                for (i, part) in ch.chunks(CRYPTO_PER_INITIAL).enumerate() {
                    let mut frames = Vec::with_capacity(part.len() + 8);
                    crypto_frame_at(&mut frames, (i * CRYPTO_PER_INITIAL) as u64, part);
                    let mut b = Vec::with_capacity(MIN_INITIAL_DATAGRAM);
                    initial_packet(
                        &mut b,
                        &dcid,
                        &scid,
                        i as u64,
                        &frames,
                        MIN_INITIAL_DATAGRAM,
                        &ck,
                    );
                    datagrams.push(b);
                }
                self.client_initials = datagrams.len() as u64;
                self.buf.clear();
                self.buf.extend_from_slice(&datagrams[0]);
                let mut f = FlowTruth::new(
                    FlowKind::Quic,
                    Some(self.svc.cfg.name.clone()),
                    Protocol::Udp,
                    &path,
                );
                f.quic = Some(QuicTruth {
                    version: VERSION_1,
                    dcid: hex(&self.dcid),
                    scid: hex(&self.scid),
                    server_scid: hex(&self.server_cid),
                    sni: self.svc.cfg.host.clone(),
                    alpn: self.svc.cfg.alpn.clone(),
                    initial_ts_ns: sh.q(now),
                    client_initial_bytes: self.buf.len() as u64,
                    client_initials: self.client_initials as u32,
                    handshake_done_ts_ns: None,
                    path_rtt_ns: self.rtt,
                    closed: false,
                    bursts: Vec::new(),
                });
                self.flow = Some(sh.open_flow(f));
                self.path = Some(path);
                self.send(now, sh, true);
                datagrams.remove(0);
                datagrams.reverse();
                self.more_initials = datagrams;
                if self.more_initials.is_empty() {
                    self.phase = Phase::ServerInitial;
                    Some(now + self.rtt)
                } else {
                    self.phase = Phase::MoreInitials;
                    Some(now + INITIAL_GAP_NS)
                }
            }
            Phase::MoreInitials => {
                if let Some(d) = self.more_initials.pop() {
                    self.buf.clear();
                    self.buf.extend_from_slice(&d);
                    self.send(now, sh, true);
                }
                if self.more_initials.is_empty() {
                    self.phase = Phase::ServerInitial;
                    Some(now + self.rtt)
                } else {
                    Some(now + INITIAL_GAP_NS)
                }
            }
            Phase::ServerInitial => {
                let mut random = [0u8; 32];
                let mut key = [0u8; 32];
                for b in random.iter_mut().chain(key.iter_mut()) {
                    *b = self.rng.next_u32() as u8;
                }
                let mut sh_msg = Vec::with_capacity(128);
                tls::server_hello(&mut sh_msg, &random, &[], &key);
                let mut frames = Vec::with_capacity(160);
                ack_frame(&mut frames, self.client_initials.saturating_sub(1), 0);
                crypto_frame(&mut frames, &sh_msg);
                let (_, sk) = initial_keys(&self.dcid);
                self.buf.clear();
                let (scid, scid_s) = (self.scid, self.server_cid);
                initial_packet(&mut self.buf, &scid, &scid_s, 0, &frames, 0, &sk);
                let rest = self.pkt_size - self.buf.len();
                let o = self.pool_slice(rest);
                let hl = long_header_len(CID_LEN, CID_LEN, false, 0);
                handshake_packet(&mut self.buf, &scid, &scid_s, rest - hl, &pool, o);
                self.send(now, sh, false);
                self.phase = Phase::ServerHandshake;
                Some(now + self.rng.range_u64(20 * US, 200 * US))
            }
            Phase::ServerHandshake => {
                let len = self.rng.range_u64(600, self.pkt_size as u64) as usize;
                let o = self.pool_slice(len);
                self.buf.clear();
                let hl = long_header_len(CID_LEN, CID_LEN, false, 0);
                let (scid, scid_s) = (self.scid, self.server_cid);
                handshake_packet(&mut self.buf, &scid, &scid_s, len - hl, &pool, o);
                self.send(now, sh, false);
                self.phase = Phase::ClientFinished;
                Some(now + self.rng.range_u64(200 * US, 1000 * US))
            }
            Phase::ClientFinished => {
                let mut frames = Vec::with_capacity(8);
                ack_frame(&mut frames, 0, self.rng.range_u64(0, 40));
                let (ck, _) = initial_keys(&self.dcid);
                self.buf.clear();
                let (sc, scid) = (self.server_cid, self.scid);
                // Initial ACK padded so that, with a 74-byte Handshake packet, the
                // datagram is 1200 bytes (RFC 9000 §14.1).
                let hs = 74;
                initial_packet(
                    &mut self.buf,
                    &sc,
                    &scid,
                    1,
                    &frames,
                    MIN_INITIAL_DATAGRAM - hs,
                    &ck,
                );
                let o = self.pool_slice(hs);
                let hl = long_header_len(CID_LEN, CID_LEN, false, 0);
                handshake_packet(&mut self.buf, &sc, &scid, hs - hl, &pool, o);
                self.send(now, sh, true);
                let q = sh.q(now);
                self.with_quic(sh, |t| t.handshake_done_ts_ns = Some(q));
                self.phase = Phase::Request;
                let t = now + self.rng.range_u64(100 * US, 500 * US);
                self.next_request = t;
                Some(t)
            }
            Phase::Request => {
                let cfg = &self.svc.cfg;
                let req = self
                    .rng
                    .range_u64(cfg.request_bytes[0] as u64, cfg.request_bytes[1] as u64)
                    as usize;
                let total = self
                    .rng
                    .range_u64(cfg.segment_bytes[0], cfg.segment_bytes[1]);
                let seg_dur = (cfg.segment_duration_s * 1e9) as u64;
                let o = self.pool_slice(req);
                self.buf.clear();
                let sc = self.server_cid;
                short_packet(&mut self.buf, &sc, req, &pool, o);
                self.send(now, sh, true);
                let q = sh.q(now);
                let mut idx = 0;
                self.with_quic(sh, |t| {
                    idx = t.bursts.len();
                    t.bursts.push(BurstTruth {
                        request_ts_ns: q,
                        request_bytes: req as u64,
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
                self.since_ack = 0;
                self.next_request = self.next_request.max(now) + seg_dur;
                self.phase = Phase::Data;
                Some(now + self.rtt + self.rng.range_u64(200 * US, 1000 * US))
            }
            Phase::Data => {
                let left = self.burst_total - self.burst_sent;
                // Never leave a remainder too small for a short header.
                let mut len = left.min(self.pkt_size as u64) as usize;
                if left > len as u64 && left - (len as u64) < 32 {
                    len -= 32;
                }
                let o = self.pool_slice(len);
                self.buf.clear();
                let scid = self.scid;
                short_packet(&mut self.buf, &scid, len, &pool, o);
                let frame_len = self.send(now, sh, false);
                self.burst_sent += len as u64;
                let last = self.burst_sent >= self.burst_total;
                let q = sh.q(now);
                let bi = self.burst_idx;
                self.with_quic(sh, |t| {
                    if let Some(b) = t.bursts.get_mut(bi) {
                        b.record_segment(q, len as u64);
                    }
                });
                self.since_ack += 1;
                let gap = crate::http::gap_ns(frame_len, self.svc.cfg.rate_bps);
                self.next_data = now + gap;
                if self.since_ack >= 2 || last {
                    self.phase = Phase::Ack;
                    Some(now + (40 * US).min(gap / 2).max(1))
                } else {
                    Some(self.next_data)
                }
            }
            Phase::Ack => {
                let len = self.rng.range_u64(30, 48) as usize;
                let o = self.pool_slice(len);
                self.buf.clear();
                let sc = self.server_cid;
                short_packet(&mut self.buf, &sc, len, &pool, o);
                self.send(now, sh, true);
                self.since_ack = 0;
                if self.burst_sent < self.burst_total {
                    self.phase = Phase::Data;
                    Some(self.next_data)
                } else if self.next_request < self.session_end {
                    self.phase = Phase::Request;
                    Some(self.next_request.max(now + 100 * US))
                } else {
                    self.phase = Phase::Close;
                    Some(self.session_end.max(now + 100 * US))
                }
            }
            Phase::Close => {
                let len = self.rng.range_u64(40, 60) as usize;
                let o = self.pool_slice(len);
                self.buf.clear();
                let sc = self.server_cid;
                short_packet(&mut self.buf, &sc, len, &pool, o);
                self.send(now, sh, true);
                self.with_quic(sh, |t| t.closed = true);
                self.phase = Phase::Start;
                Some(now + self.rng.range_u64(200_000 * US, 2_000_000 * US))
            }
        }
    }
}

/// Lower-case hex of bytes.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    const DCID: &str = "8394c8f03e515708";

    #[test]
    fn rfc9001_a1_initial_keys() {
        let (c, s) = initial_secrets(&unhex(DCID));
        assert_eq!(
            hex(&c),
            "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"
        );
        assert_eq!(
            hex(&s),
            "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b"
        );
        let (ck, sk) = initial_keys(&unhex(DCID));
        assert_eq!(hex(&ck.key), "1f369613dd76d5467730efcbe3b1a22d");
        assert_eq!(hex(&ck.iv), "fa044b2f42a3fd3b46fb255c");
        assert_eq!(hex(&ck.hp), "9f50449e04a0e810283a1e9933adedd2");
        assert_eq!(hex(&sk.key), "cf3a5331653c364c88f0f379b6067e37");
        assert_eq!(hex(&sk.iv), "0ac1493ca1905853b0bba03e");
        assert_eq!(hex(&sk.hp), "c206b8d9b9f0f37644430b490eeaa314");
    }

    /// RFC 9001 §A.2: CRYPTO frame payload (the ClientHello), before padding.
    const A2_CRYPTO: &str = "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868\
        04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578\
        616d706c652e636f6dff01000100000a00080006001d00170018001000070005\
        04616c706e000500050100000000003300260024001d00209370b2c9caa47fba\
        baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400\
        0d0010000e0403050306030203080408050806002d00020101001c0002400100\
        3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000\
        75300901100f088394c8f03e51570806048000ffff";
    const A2_HEADER: &str = "c300000001088394c8f03e5157080000449e00000002";
    const A2_PROTECTED: &str = "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11\
        d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399\
        1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c\
        8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212\
        30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5\
        457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208\
        4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec\
        4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3\
        485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db\
        059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c\
        7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8\
        9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556\
        be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74\
        68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a\
        c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00\
        f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632\
        291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964\
        25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd\
        14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff\
        ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198\
        e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd\
        c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73\
        203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f\
        cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e\
        fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade\
        a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047\
        90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2\
        162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4\
        40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0\
        6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e\
        8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0\
        be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400\
        54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab\
        760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9\
        f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4\
        056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064\
        7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241\
        e221af44860018ab0856972e194cd934";

    #[test]
    fn rfc9001_a2_client_initial_protected() {
        // The RFC's packet uses a 4-byte packet number (2); build it with `protect`.
        let mut pkt = unhex(A2_HEADER);
        let mut payload = unhex(A2_CRYPTO);
        payload.resize(1162, 0);
        pkt.extend_from_slice(&payload);
        let (ck, _) = initial_keys(&unhex(DCID));
        protect(&mut pkt, 0, 18, 4, 2, &ck);
        assert_eq!(pkt.len(), 1200);
        assert_eq!(hex(&pkt), hex(&unhex(A2_PROTECTED)));
        // And back.
        let (pn, plain) = unprotect(&pkt, 18, pkt.len(), &ck).expect("tag verifies");
        assert_eq!(pn, 2);
        assert_eq!(plain, payload);
    }

    #[test]
    fn rfc9001_a3_server_initial_protected() {
        let header = unhex("c1000000010008f067a5502a4262b50040750001");
        let payload = unhex(
            "02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf739\
             88cfc79825df566dc5430b9a045a1200130100002e00330024001d00209d3c94\
             0d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00\
             020304",
        );
        let expected = unhex(
            "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a\
             5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3\
             dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84\
             022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4\
             2158407dd074ee",
        );
        let mut pkt = header.clone();
        pkt.extend_from_slice(&payload);
        let (_, sk) = initial_keys(&unhex(DCID));
        protect(&mut pkt, 0, 18, 2, 1, &sk);
        assert_eq!(hex(&pkt), hex(&expected));
    }

    #[test]
    fn generated_initial_is_1200_bytes_and_decrypts() {
        let dcid = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let scid = [9u8; 8];
        let mut frames = Vec::new();
        crypto_frame(&mut frames, b"hello");
        let (ck, _) = initial_keys(&dcid);
        let mut b = vec![0xAA, 0xBB];
        initial_packet(&mut b, &dcid, &scid, 0, &frames, 1200, &ck);
        assert_eq!(b.len(), 2 + 1200);
        let pkt = &b[2..];
        let pn_off = long_header_len(8, 8, true, 0);
        let (pn, plain) = unprotect(pkt, pn_off, pkt.len(), &ck).expect("decrypts");
        assert_eq!(pn, 0);
        assert_eq!(&plain[..frames.len()], &frames[..]);
        assert!(plain[frames.len()..].iter().all(|&x| x == 0));
    }

    #[test]
    fn varints_round_trip() {
        for v in [
            0u64,
            63,
            64,
            16_383,
            16_384,
            (1 << 30) - 1,
            1 << 30,
            151_288_809_941_952_652,
        ] {
            let mut b = Vec::new();
            varint(&mut b, v);
            let mut p = 0;
            assert_eq!(read_varint(&b, &mut p), Some(v));
            assert_eq!(p, b.len());
        }
        // RFC 9000 §A.1 examples.
        let mut b = Vec::new();
        varint(&mut b, 15_293);
        assert_eq!(b, [0x7b, 0xbd]);
    }
}
