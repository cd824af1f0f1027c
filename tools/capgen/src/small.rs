//! Small flows for flow-table benchmarks: `count` distinct 5-tuples spread evenly over
//! the capture, each a DNS query/answer or a SYN, SYN-ACK, RST triplet.
//!
//! Flow `i` comes from client host `i mod clients` and port `32768 + i / clients`, so
//! no two flows share a 5-tuple.

use std::net::IpAddr;
use std::rc::Rc;

use crate::dns;
use crate::engine::{Net, Shared, Source};
use crate::net::{host_mac, tcp_flags as F, Path, PathSpec};
use crate::rng::Rng;
use crate::scenario::{prefix_host, SmallFlowsConfig, SmallKind};
use crate::truth::{DnsTruth, EndReason, FlowKind, FlowTruth, Protocol, TcpTruth};

const PORT_BASE: u64 = 32_768;
const ANSWER_V4: u32 = 0xC612_0000; // 198.18.0.0/15 (RFC 2544 benchmarking)
const ANSWER_V6: u128 = 0x2001_0db8_ffff_0000_0000_0000_0000_0000;

/// Creates the flows one after another.
pub(crate) struct SmallSpawner {
    cfg: SmallFlowsConfig,
    net: Rc<Net>,
    rng: Rng,
    i: u64,
    start: u64,
    duration: u64,
    server_v4: IpAddr,
    server_v6: IpAddr,
    server_host_base: u32,
}

impl SmallSpawner {
    pub fn new(
        cfg: SmallFlowsConfig,
        net: Rc<Net>,
        rng: Rng,
        start: u64,
        duration: u64,
        server_host_base: u32,
    ) -> Result<Self, crate::Error> {
        let (server_v4, _) = crate::scenario::parse_prefix(&cfg.server_v4, cfg.servers as u64)?;
        let (server_v6, _) = crate::scenario::parse_prefix(&cfg.server_v6, cfg.servers as u64)?;
        Ok(SmallSpawner {
            cfg,
            net,
            rng,
            i: 0,
            start,
            duration,
            server_v4,
            server_v6,
            server_host_base,
        })
    }

    /// Start of slot `i` (flows are spaced evenly; each starts at a random point of its slot).
    fn slot(&self, i: u64) -> u64 {
        self.start + (i as u128 * self.duration as u128 / self.cfg.count.max(1) as u128) as u64
    }

    pub fn first_time(&self) -> Option<u64> {
        (self.cfg.count > 0).then(|| self.slot(0))
    }

    pub fn step(&mut self, now: u64, sh: &mut Shared) -> Option<u64> {
        let i = self.i;
        let clients = self.cfg.clients as u64;
        let client = (i % clients) as u32;
        let cport = (PORT_BASE + i / clients) as u16;
        let v6 = self.rng.chance(self.net.ipv6_share);
        let vlan = self
            .rng
            .chance(self.net.vlan_share)
            .then_some(self.net.vlan_id);
        let srv = self.rng.range_u64(0, self.cfg.servers as u64 - 1);
        let server = prefix_host(if v6 { self.server_v6 } else { self.server_v4 }, srv + 1);
        let server_host = self.server_host_base + srv as u32;
        let client_addr = self.net.client_addr(client, v6);
        let sport = match self.cfg.kind {
            SmallKind::Dns => 53,
            SmallKind::TcpSynRst => self.cfg.tcp_port,
        };
        let path = Path::new(PathSpec {
            client: client_addr,
            client_port: cport,
            server,
            server_port: sport,
            client_mac: host_mac(client),
            server_mac: self.net.gateway_mac,
            vlan,
            ttl_up: self.net.client_ttl,
            ttl_down: sh.hosts.get(server_host as usize).map_or(56, |h| h.ttl),
            host_up: client,
            host_down: server_host,
            labels: (self.rng.next_u32(), self.rng.next_u32()),
        });
        let rtt = ((self.rng.range_f64(self.cfg.rtt_ms) * 1e6) as u64).max(1_000);
        let flow = SmallFlow {
            path,
            kind: self.cfg.kind,
            idx: i,
            step: 0,
            rtt,
            id: self.rng.next_u32() as u16,
            isn_c: self.rng.next_u32(),
            isn_s: self.rng.next_u32(),
            flow: 0,
            syn_q: 0,
            ttl: self.net.dns_ttl,
        };
        // The first packet is due now: run it here and schedule the rest.
        let mut flow = Box::new(flow);
        if let Some(next) = flow.step(now, sh) {
            sh.spawned.push((next, Source::Small(flow)));
        }
        self.i += 1;
        if self.i >= self.cfg.count {
            return None;
        }
        let lo = self.slot(self.i);
        let hi = self.slot(self.i + 1).max(lo + 1) - 1;
        Some(self.rng.range_u64(lo, hi).max(now))
    }
}

/// One small flow.
pub(crate) struct SmallFlow {
    path: Path,
    kind: SmallKind,
    idx: u64,
    step: u8,
    rtt: u64,
    id: u16,
    isn_c: u32,
    isn_s: u32,
    flow: usize,
    syn_q: u64,
    ttl: u32,
}

/// Writes the hex digits of `v` (at least one) into `buf`, returns the used tail.
fn hex(v: u64, buf: &mut [u8; 16]) -> &[u8] {
    let mut i = 16;
    let mut x = v;
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(x & 15) as usize];
        x >>= 4;
        if x == 0 {
            break;
        }
    }
    &buf[i..]
}

impl SmallFlow {
    fn answer_addr(&self) -> IpAddr {
        if self.path.v6 {
            IpAddr::V6((ANSWER_V6 + self.idx as u128).into())
        } else {
            IpAddr::V4((ANSWER_V4 + (self.idx as u32 & 0x1_FFFF)).into())
        }
    }

    fn write_qname(&self, b: &mut Vec<u8>) {
        let mut d = [0u8; 16];
        let h = hex(self.idx, &mut d);
        let mut label = [0u8; 17];
        label[0] = b'f';
        label[1..1 + h.len()].copy_from_slice(h);
        dns::write_labels(b, &[&label[..1 + h.len()], b"flows", b"example"]);
    }

    pub fn step(&mut self, now: u64, sh: &mut Shared) -> Option<u64> {
        let qtype = if self.path.v6 {
            dns::QTYPE_AAAA
        } else {
            dns::QTYPE_A
        };
        match (self.kind, self.step) {
            (SmallKind::Dns, 0) => {
                let id = self.id;
                let pl = self.path.udp(&mut sh.frame, true, &mut sh.hosts, |b| {
                    dns::query(b, id, qtype, |b| self.write_qname(b))
                });
                let mut f = FlowTruth::new(FlowKind::SmallDns, None, Protocol::Udp, &self.path);
                f.dns = Some(DnsTruth {
                    id,
                    qname: format!("f{:x}.flows.example", self.idx),
                    qtype: if self.path.v6 { "AAAA" } else { "A" }.to_string(),
                    rcode: Some(0),
                    answers: vec![self.answer_addr()],
                    answer_ttl_s: self.ttl,
                    query_ts_ns: sh.q(now),
                    response_ts_ns: None,
                });
                self.flow = sh.open_flow(f);
                sh.account(self.flow, true, now, pl);
                self.step = 1;
                Some(now + self.rtt)
            }
            (SmallKind::Dns, _) => {
                let (id, ttl) = (self.id, self.ttl);
                let ans = [self.answer_addr()];
                let pl = self.path.udp(&mut sh.frame, false, &mut sh.hosts, |b| {
                    dns::answer(b, id, qtype, ttl, &ans, |b| self.write_qname(b))
                });
                sh.account(self.flow, false, now, pl);
                let q = sh.q(now);
                if let Some(d) = sh.flows.get_mut(self.flow).and_then(|f| f.dns.as_mut()) {
                    d.response_ts_ns = Some(q);
                }
                None
            }
            (SmallKind::TcpSynRst, 0) => {
                let mss = if self.path.v6 { 1440u16 } else { 1460 }.to_be_bytes();
                let opts = [2, 4, mss[0], mss[1]];
                self.path.tcp(
                    &mut sh.frame,
                    true,
                    &mut sh.hosts,
                    self.isn_c,
                    0,
                    F::SYN,
                    64_240,
                    &opts,
                    |_| {},
                );
                let mut f = FlowTruth::new(FlowKind::SmallTcp, None, Protocol::Tcp, &self.path);
                self.syn_q = sh.q(now);
                f.tcp = Some(TcpTruth {
                    syn_ts_ns: self.syn_q,
                    handshake_rtt_ns: None,
                    path_rtt_ns: self.rtt,
                    mss: if self.path.v6 { 1440 } else { 1460 },
                    retransmissions: 0,
                    fin_client: false,
                    fin_server: false,
                    rst_client: false,
                    rst_server: false,
                    end_reason: EndReason::CaptureEnd,
                    bursts: Vec::new(),
                });
                self.flow = sh.open_flow(f);
                sh.account(self.flow, true, now, 0);
                self.step = 1;
                Some(now + self.rtt)
            }
            (SmallKind::TcpSynRst, 1) => {
                let mss = if self.path.v6 { 1440u16 } else { 1460 }.to_be_bytes();
                let opts = [2, 4, mss[0], mss[1]];
                let ack = self.isn_c.wrapping_add(1);
                self.path.tcp(
                    &mut sh.frame,
                    false,
                    &mut sh.hosts,
                    self.isn_s,
                    ack,
                    F::SYN | F::ACK,
                    65_160,
                    &opts,
                    |_| {},
                );
                sh.account(self.flow, false, now, 0);
                self.step = 2;
                Some(now + 30_000)
            }
            (SmallKind::TcpSynRst, _) => {
                let seq = self.isn_c.wrapping_add(1);
                self.path.tcp(
                    &mut sh.frame,
                    true,
                    &mut sh.hosts,
                    seq,
                    0,
                    F::RST,
                    0,
                    &[],
                    |_| {},
                );
                sh.account(self.flow, true, now, 0);
                if let Some(t) = sh.flows.get_mut(self.flow).and_then(|f| f.tcp.as_mut()) {
                    t.rst_client = true;
                    t.end_reason = EndReason::Rst;
                }
                None
            }
        }
    }
}
