//! The scheduler: every traffic source is a small state machine that knows the time of
//! its next packet; a binary heap merges them so the capture is written in time order.
//! Ties are broken by insertion order, so the output depends on the scenario and seed only.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::net::IpAddr;

use crate::net::Host;
use crate::out::CaptureWriter;
use crate::player::Player;
use crate::small::{SmallFlow, SmallSpawner};
use crate::truth::{FlowTruth, Totals};
use crate::ts::Channel;

/// State shared by all sources: the frame being built, hosts, and the flow truth.
pub(crate) struct Shared {
    /// The frame of the current step (empty when the step wrote nothing).
    pub frame: Vec<u8>,
    pub hosts: Vec<Host>,
    pub flows: Vec<FlowTruth>,
    /// 1000 for µs captures (timestamps are truncated), 1 for ns.
    pub quantum: u64,
    pub spawned: Vec<(u64, Source)>,
    pub dropped: u64,
    /// IGMP/MLD, fault and client events for the truth.
    pub events: crate::truth::Events,
}

impl Shared {
    /// A timestamp as it will appear in the file.
    #[inline]
    pub fn q(&self, ts: u64) -> u64 {
        ts - ts % self.quantum
    }

    /// Registers a flow at its first packet; returns its id.
    pub fn open_flow(&mut self, mut f: FlowTruth) -> usize {
        let id = self.flows.len();
        f.flow_id = id as u64;
        self.flows.push(f);
        id
    }

    /// Counts the current frame for `flow`.
    #[inline]
    pub fn account(&mut self, flow: usize, up: bool, ts: u64, payload: usize) {
        let ts = self.q(ts);
        let len = self.frame.len() as u64;
        if let Some(f) = self.flows.get_mut(flow) {
            if f.packets_up + f.packets_down == 0 {
                f.first_ts_ns = ts;
            }
            f.last_ts_ns = ts;
            if up {
                f.packets_up += 1;
                f.frame_bytes_up += len;
                f.payload_bytes_up += payload as u64;
            } else {
                f.packets_down += 1;
                f.frame_bytes_down += len;
                f.payload_bytes_down += payload as u64;
            }
        }
    }
}

/// Addressing facts every unicast source needs.
pub(crate) struct Net {
    pub client_v4: IpAddr,
    pub client_v6: IpAddr,
    pub gateway_mac: [u8; 6],
    pub client_ttl: u8,
    pub ipv6_share: f64,
    pub vlan_share: f64,
    pub vlan_id: u16,
    pub resolver_v4: IpAddr,
    pub resolver_v6: IpAddr,
    pub resolver_host_v4: u32,
    pub resolver_host_v6: u32,
    pub dns_rtt_ms: [f64; 2],
    pub dns_ttl: u32,
    /// Takedowns, DNS answers and failures, retry policy (see `crate::disrupt`).
    pub disrupt: crate::disrupt::Plan,
}

impl Net {
    /// Address of client host `idx` (hosts are numbered from 1 in the prefix).
    pub fn client_addr(&self, idx: u32, v6: bool) -> IpAddr {
        let base = if v6 { self.client_v6 } else { self.client_v4 };
        crate::scenario::prefix_host(base, idx as u64 + 1)
    }
}

/// A traffic source.
pub(crate) enum Source {
    Channel(Box<Channel>),
    Player(Box<Player>),
    SmallSpawner(Box<SmallSpawner>),
    Small(Box<SmallFlow>),
    /// IGMP/MLD queries and receivers (`crate::igmp`).
    Membership(Box<crate::igmp::Membership>),
    /// Background DNS lookups (`crate::disrupt`).
    Lookups(Box<crate::disrupt::Lookups>),
    /// HLS players over HTTP/1.1 (`crate::hls`).
    Hls(Box<crate::hls::HlsPlayer>),
    /// IPTV panel players (`crate::panel`).
    Panel(Box<crate::panel::PanelPlayer>),
    /// QUIC players (`crate::quic`).
    Quic(Box<crate::quic::QuicPlayer>),
}

impl Source {
    fn step(&mut self, now: u64, sh: &mut Shared) -> Option<u64> {
        match self {
            Source::Channel(c) => c.step(now, sh),
            Source::Player(p) => p.step(now, sh),
            Source::SmallSpawner(s) => s.step(now, sh),
            Source::Small(f) => f.step(now, sh),
            Source::Membership(m) => m.step(now, sh),
            Source::Lookups(l) => l.step(now, sh),
            Source::Hls(p) => p.step(now, sh),
            Source::Panel(p) => p.step(now, sh),
            Source::Quic(p) => p.step(now, sh),
        }
    }

    fn finish(&mut self, sh: &mut Shared) {
        if let Source::Channel(c) = self {
            c.finish(sh)
        }
        if let Source::Panel(p) = self {
            p.finish(sh)
        }
    }
}

/// Runs every source until `end_ns`, writing frames in time order.
pub(crate) fn run<W: Write>(
    initial: Vec<(u64, Source)>,
    end_ns: u64,
    sh: &mut Shared,
    out: &mut CaptureWriter<W>,
    totals: &mut Totals,
) -> std::io::Result<()> {
    let mut slots: Vec<Option<Source>> = Vec::new();
    let mut free: Vec<u32> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(u64, u64, u32)>> = BinaryHeap::new();
    let mut order = 0u64;
    let place = |slots: &mut Vec<Option<Source>>, free: &mut Vec<u32>, s: Source| -> u32 {
        match free.pop() {
            Some(i) => {
                slots[i as usize] = Some(s);
                i
            }
            None => {
                slots.push(Some(s));
                (slots.len() - 1) as u32
            }
        }
    };
    for (t, s) in initial {
        let i = place(&mut slots, &mut free, s);
        heap.push(Reverse((t, order, i)));
        order += 1;
    }
    while let Some(Reverse((ts, _, slot))) = heap.pop() {
        let Some(src) = slots.get_mut(slot as usize).and_then(|s| s.as_mut()) else {
            continue;
        };
        if ts >= end_ns {
            src.finish(sh);
            slots[slot as usize] = None;
            free.push(slot);
            continue;
        }
        sh.frame.clear();
        let next = src.step(ts, sh);
        if !sh.frame.is_empty() {
            let q = sh.q(ts);
            out.write(q, &sh.frame)?;
            count(totals, q, &sh.frame);
        }
        match next {
            Some(n) => {
                heap.push(Reverse((n.max(ts), order, slot)));
                order += 1;
            }
            None => {
                src.finish(sh);
                slots[slot as usize] = None;
                free.push(slot);
            }
        }
        if !sh.spawned.is_empty() {
            let spawned = std::mem::take(&mut sh.spawned);
            for (t, s) in spawned {
                let i = place(&mut slots, &mut free, s);
                heap.push(Reverse((t, order, i)));
                order += 1;
            }
        }
    }
    Ok(())
}

fn count(t: &mut Totals, ts: u64, frame: &[u8]) {
    t.packets += 1;
    t.frame_bytes += frame.len() as u64;
    if t.first_ts_ns.is_none() {
        t.first_ts_ns = Some(ts);
    }
    t.last_ts_ns = Some(ts);
    let mut et = u16::from_be_bytes([frame[12], frame[13]]);
    let mut l3 = 14;
    if et == crate::net::ETHERTYPE_VLAN {
        t.vlan_packets += 1;
        et = u16::from_be_bytes([frame[16], frame[17]]);
        l3 = 18;
    }
    let proto = if et == crate::net::ETHERTYPE_IPV6 {
        t.ipv6_packets += 1;
        frame[l3 + 6]
    } else {
        t.ipv4_packets += 1;
        frame[l3 + 9]
    };
    match proto {
        crate::net::PROTO_TCP => t.tcp_packets += 1,
        crate::net::PROTO_UDP => t.udp_packets += 1,
        _ => {}
    }
}
