//! Multicast membership signalling: IGMPv2 (RFC 2236), IGMPv3 (RFC 3376) and MLDv2
//! (RFC 3810) joins, leaves, zapping and the router's periodic general queries.
//!
//! Every `[[igmp]]` entry is a set of receivers (client hosts). Each receiver joins a
//! channel's group at a time drawn from `join_s`, zaps to the next channel of its list
//! every `zap_interval_s`, and leaves at `leave_s`. State-change reports are sent
//! `robustness` times (RFC 3376 §5.1, RFC 3810 §6.1; the repetitions follow within
//! `unsolicited_interval_s`); an IGMPv2 leave is sent once (RFC 2236 §3). With a
//! `[querier]`, the router sends a general query every `interval_s` (IGMP to 224.0.0.1,
//! MLD to ff02::1) and every member answers with a current-state report after a delay
//! drawn from `[0, max_resp_time_s)`. Receivers sit on separate switch ports (IGMP
//! snooping), so no IGMPv2 report suppression happens.
//!
//! Wire details: IGMP goes out with TTL 1, TOS 0xC0 and the IPv4 Router Alert option
//! (RFC 2113; required by RFC 2236 §2 and RFC 3376 §4); IGMPv2 reports go to the group,
//! leaves to 224.0.0.2, IGMPv3 reports to 224.0.0.22. MLD messages have hop limit 1, a
//! link-local source (RFC 3810 §5) and a Hop-by-Hop header with the Router Alert option
//! (RFC 2711, value 0) padded by a PadN option; MLDv2 reports go to ff02::16. Checksums:
//! IGMP over the message (RFC 1071), ICMPv6 over the IPv6 pseudo-header (RFC 4443 §2.3).
//!
//! The whole schedule is planned when the source is built (it depends on the scenario
//! and seed only); a message is recorded in the truth when its frame is written.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::engine::Shared;
use crate::net::{checksum, host_mac, multicast_mac, sum_words, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::rng::Rng;
use crate::scenario::{parse_addr, IgmpConfig, QuerierConfig, Scenario};
use crate::truth::MulticastEvent;
use crate::Error;

/// IP protocol number of IGMP and ICMPv6, and the Hop-by-Hop next-header value.
pub const PROTO_IGMP: u8 = 2;
pub const PROTO_ICMPV6: u8 = 58;
pub const NEXT_HOP_BY_HOP: u8 = 0;

/// IGMP message types (RFC 2236 §2.1, RFC 3376 §4).
pub const IGMP_QUERY: u8 = 0x11;
pub const IGMP_V2_REPORT: u8 = 0x16;
pub const IGMP_V2_LEAVE: u8 = 0x17;
pub const IGMP_V3_REPORT: u8 = 0x22;
/// MLD message types (RFC 3810 §5).
pub const MLD_QUERY: u8 = 130;
pub const MLD_V2_REPORT: u8 = 143;

/// Group record types (RFC 3376 §4.2.12, RFC 3810 §5.2.12).
pub const MODE_IS_INCLUDE: u8 = 1;
pub const MODE_IS_EXCLUDE: u8 = 2;
pub const CHANGE_TO_INCLUDE: u8 = 3;
pub const CHANGE_TO_EXCLUDE: u8 = 4;
pub const ALLOW_NEW_SOURCES: u8 = 5;
pub const BLOCK_OLD_SOURCES: u8 = 6;

/// IPv4 Router Alert option (RFC 2113 §2.1).
const ROUTER_ALERT_V4: [u8; 4] = [0x94, 0x04, 0x00, 0x00];
/// Hop-by-Hop header body after the next-header byte: length 0 (8 bytes), Router Alert
/// (type 5, length 2, value 0 = MLD, RFC 2711 §2.1), PadN of 0 data bytes.
const HBH_ROUTER_ALERT: [u8; 7] = [0, 5, 2, 0, 0, 1, 0];
const TOS_INTERNETWORK_CONTROL: u8 = 0xC0;

const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
const ALL_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
const IGMPV3_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 22);
const ALL_NODES_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);

const TAG_IGMP: u64 = 0x4D43_0001;

/// Name of a record type in the truth.
pub fn record_type_name(t: u8) -> &'static str {
    match t {
        MODE_IS_INCLUDE => "mode_is_include",
        MODE_IS_EXCLUDE => "mode_is_exclude",
        CHANGE_TO_INCLUDE => "change_to_include",
        CHANGE_TO_EXCLUDE => "change_to_exclude",
        ALLOW_NEW_SOURCES => "allow_new_sources",
        BLOCK_OLD_SOURCES => "block_old_sources",
        _ => "unknown",
    }
}

/// Encodes a value as an 8-bit IGMPv3 Max Resp Code / QQIC (RFC 3376 §4.1.1, §4.1.7):
/// below 128 literally, else `1 exp(3) mant(4)` meaning `(mant | 0x10) << (exp + 3)`
/// (rounded down to a representable value, at most 31744).
pub fn code8(v: u32) -> u8 {
    if v < 128 {
        return v as u8;
    }
    for exp in (0..8u32).rev() {
        let unit = 1u32 << (exp + 3);
        let mant = v / unit;
        if (16..32).contains(&mant) {
            return 0x80 | ((exp as u8) << 4) | (mant as u8 & 0x0F);
        }
    }
    0xFF
}

/// Decodes [`code8`].
#[cfg(test)]
pub fn decode8(c: u8) -> u32 {
    if c < 128 {
        c as u32
    } else {
        ((c as u32 & 0x0F) | 0x10) << (((c >> 4) & 0x07) as u32 + 3)
    }
}

/// Encodes a 16-bit MLDv2 Maximum Response Code in ms (RFC 3810 §5.1.3).
pub fn code16(v: u32) -> u16 {
    if v < 32_768 {
        return v as u16;
    }
    for exp in (0..8u32).rev() {
        let unit = 1u32 << (exp + 3);
        let mant = v / unit;
        if (4096..8192).contains(&mant) {
            return 0x8000 | ((exp as u16) << 12) | (mant as u16 & 0x0FFF);
        }
    }
    0xFFFF
}

/// The link-local address of a host MAC (modified EUI-64, RFC 4291 §2.5.1 and App. A).
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let o = [
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ];
    Ipv6Addr::from(o)
}

/// A channel as the receivers see it.
#[derive(Debug, Clone)]
pub(crate) struct ChannelInfo {
    pub name: String,
    pub group: IpAddr,
    pub source: IpAddr,
}

/// What a planned message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Query,
    Join,
    Leave,
    Report,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Join => "join",
            Kind::Leave => "leave",
            Kind::Report => "report",
        }
    }
}

/// One group record (or the group of an IGMPv2 message).
#[derive(Debug, Clone, Copy)]
struct Rec {
    kind: Kind,
    rtype: u8,
    channel: usize,
}

/// A message due at `t`.
#[derive(Debug, Clone)]
struct Planned {
    t: u64,
    order: u64,
    v6: bool,
    /// Receiver index, or None for a query.
    receiver: Option<usize>,
    /// IGMP version (2/3); MLD is always 2.
    version: u8,
    recs: Vec<Rec>,
    retransmission: bool,
}

struct Receiver {
    entry: usize,
    client: u32,
    mac: [u8; 6],
    v4: IpAddr,
    v6: IpAddr,
    ll: Ipv6Addr,
}

/// The membership source: a querier and every `[[igmp]]` receiver.
pub(crate) struct Membership {
    plan: Vec<Planned>,
    next: usize,
    channels: Vec<ChannelInfo>,
    receivers: Vec<Receiver>,
    entries: Vec<IgmpConfig>,
    querier: Option<QuerierConfig>,
    querier_v4: IpAddr,
    querier_v6: IpAddr,
    querier_mac: [u8; 6],
    querier_ip_id: u16,
    message: u64,
}

/// Planning context.
struct Planner {
    plan: Vec<Planned>,
    order: u64,
}

impl Planner {
    fn push(&mut self, mut p: Planned) {
        p.order = self.order;
        self.order += 1;
        self.plan.push(p);
    }
}

fn secs(s: f64) -> u64 {
    (s.max(0.0) * 1e9) as u64
}

/// A receiver's membership over time: `(from, to, channel)` segments.
type Timeline = Vec<(u64, u64, usize)>;

impl Membership {
    /// Plans every message of the capture window `[start_ns, end_ns)`.
    pub fn new(
        sc: &Scenario,
        channels: Vec<ChannelInfo>,
        net: &crate::engine::Net,
        seed: u64,
        start_ns: u64,
        end_ns: u64,
    ) -> Result<Option<Membership>, Error> {
        if sc.igmp.is_empty() && sc.querier.is_none() {
            return Ok(None);
        }
        let mut rng = Rng::stream(seed, TAG_IGMP, 0);
        let mut pl = Planner {
            plan: Vec::new(),
            order: 0,
        };
        let mut receivers = Vec::new();
        let mut timelines: Vec<Timeline> = Vec::new();
        let n_clients = sc.network.clients as u64;
        let mut used = 0u64;
        let first_host = rng.range_u64(0, n_clients - 1);
        for (ei, e) in sc.igmp.iter().enumerate() {
            let list: Vec<usize> = if e.channels.is_empty() {
                (0..channels.len()).collect()
            } else {
                e.channels
                    .iter()
                    .filter_map(|n| channels.iter().position(|c| &c.name == n))
                    .collect()
            };
            if list.is_empty() {
                continue;
            }
            for r in 0..e.receivers {
                let client = ((first_host + used) % n_clients) as u32;
                used += 1;
                let mac = host_mac(client);
                receivers.push(Receiver {
                    entry: ei,
                    client,
                    mac,
                    v4: net.client_addr(client, false),
                    v6: net.client_addr(client, true),
                    ll: link_local(mac),
                });
                let ri = receivers.len() - 1;
                // Timeline: join, zaps, leave.
                let mut tl: Timeline = Vec::new();
                let mut t = start_ns + secs(rng.range_f64(e.join_s));
                let stop = e
                    .leave_s
                    .map_or(end_ns, |l| (start_ns + secs(l)).min(end_ns));
                let mut idx =
                    (r as usize + rng.range_u64(0, list.len() as u64 - 1) as usize) % list.len();
                let zap = secs(e.zap_interval_s);
                while t < stop {
                    let until = if zap > 0 { (t + zap).min(stop) } else { stop };
                    tl.push((t, until, list[idx]));
                    t = until;
                    idx = (idx + 1) % list.len();
                }
                // State-change messages.
                let mut prev: Option<usize> = None;
                for &(from, _, ch) in &tl {
                    Self::plan_change(&mut pl, &mut rng, e, ri, &channels, prev, Some(ch), from);
                    prev = Some(ch);
                }
                if let (Some(last), Some(l)) = (tl.last(), e.leave_s) {
                    let lt = start_ns + secs(l);
                    if lt < end_ns {
                        Self::plan_change(
                            &mut pl,
                            &mut rng,
                            e,
                            ri,
                            &channels,
                            Some(last.2),
                            None,
                            lt,
                        );
                    }
                }
                timelines.push(tl);
            }
        }
        // Queries and the members' answers.
        let mut querier_v4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let mut querier_v6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        if let Some(q) = &sc.querier {
            querier_v4 = parse_addr(&q.address_v4, Some(4))?;
            querier_v6 = parse_addr(&q.address_v6, Some(6))?;
            let any_v4 = channels.iter().any(|c| c.group.is_ipv4());
            let any_v6 = channels.iter().any(|c| c.group.is_ipv6());
            let mut tq = start_ns + secs(q.first_s);
            let interval = secs(q.interval_s).max(1_000_000);
            while tq < end_ns {
                for v6 in [false, true] {
                    if (v6 && !any_v6) || (!v6 && !any_v4) {
                        continue;
                    }
                    pl.push(Planned {
                        t: tq,
                        order: 0,
                        v6,
                        receiver: None,
                        version: if v6 { 2 } else { q.version },
                        recs: Vec::new(),
                        retransmission: false,
                    });
                    for (ri, tl) in timelines.iter().enumerate() {
                        let e = &sc.igmp[receivers[ri].entry];
                        let ta = tq + (rng.f64() * secs(q.max_resp_time_s) as f64) as u64;
                        let Some(&(_, _, ch)) = tl.iter().find(|&&(a, b, _)| a <= ta && ta < b)
                        else {
                            continue;
                        };
                        if channels[ch].group.is_ipv6() != v6 {
                            continue;
                        }
                        let rtype = if e.ssm {
                            MODE_IS_INCLUDE
                        } else {
                            MODE_IS_EXCLUDE
                        };
                        pl.push(Planned {
                            t: ta,
                            order: 0,
                            v6,
                            receiver: Some(ri),
                            version: if v6 { 2 } else { e.version },
                            recs: vec![Rec {
                                kind: Kind::Report,
                                rtype,
                                channel: ch,
                            }],
                            retransmission: false,
                        });
                    }
                }
                tq += interval;
            }
        }
        let mut plan = pl.plan;
        plan.retain(|p| p.t < end_ns);
        plan.sort_by_key(|p| (p.t, p.order));
        Ok(Some(Membership {
            plan,
            next: 0,
            channels,
            receivers,
            entries: sc.igmp.clone(),
            querier: sc.querier.clone(),
            querier_v4,
            querier_v6,
            querier_mac: net.gateway_mac,
            querier_ip_id: rng.next_u32() as u16,
            message: 0,
        }))
    }

    /// Plans the messages of a change from `old` to `new` (either may be none) at `t`.
    #[allow(clippy::too_many_arguments)]
    fn plan_change(
        pl: &mut Planner,
        rng: &mut Rng,
        e: &IgmpConfig,
        ri: usize,
        channels: &[ChannelInfo],
        old: Option<usize>,
        new: Option<usize>,
        t: u64,
    ) {
        let v6_of = |c: usize| channels[c].group.is_ipv6();
        let (leave_t, join_t) = (e.ssm, !e.ssm);
        let leave_rec = |c: usize| Rec {
            kind: Kind::Leave,
            rtype: if leave_t {
                BLOCK_OLD_SOURCES
            } else {
                CHANGE_TO_INCLUDE
            },
            channel: c,
        };
        let join_rec = |c: usize| Rec {
            kind: Kind::Join,
            rtype: if join_t {
                CHANGE_TO_EXCLUDE
            } else {
                ALLOW_NEW_SOURCES
            },
            channel: c,
        };
        let uri = secs(e.unsolicited_interval_s);
        let send = |pl: &mut Planner, rng: &mut Rng, v6: bool, recs: Vec<Rec>, repeat: bool| {
            let version = if v6 { 2 } else { e.version };
            let times = if repeat { e.robustness.max(1) } else { 1 };
            let mut tt = t;
            for i in 0..times {
                if i > 0 {
                    tt += (rng.f64() * uri as f64) as u64 + 1;
                }
                pl.push(Planned {
                    t: tt,
                    order: 0,
                    v6,
                    receiver: Some(ri),
                    version,
                    recs: recs.clone(),
                    retransmission: i > 0,
                });
            }
        };
        let v2 = |c: usize| !v6_of(c) && e.version == 2;
        match (old, new) {
            // IGMPv3/MLDv2 within one family: one report with both records.
            (Some(o), Some(n)) if v6_of(o) == v6_of(n) && !v2(o) => {
                send(pl, rng, v6_of(n), vec![leave_rec(o), join_rec(n)], true);
            }
            _ => {
                if let Some(o) = old {
                    // An IGMPv2 leave is sent once (RFC 2236 §3).
                    send(pl, rng, v6_of(o), vec![leave_rec(o)], !v2(o));
                }
                if let Some(n) = new {
                    send(pl, rng, v6_of(n), vec![join_rec(n)], true);
                }
            }
        }
    }

    pub fn first_time(&self) -> Option<u64> {
        self.plan.first().map(|p| p.t)
    }

    /// Writes the message due at `now`; returns the time of the next one.
    pub fn step(&mut self, now: u64, sh: &mut Shared) -> Option<u64> {
        if let Some(p) = self.plan.get(self.next) {
            let p = p.clone();
            self.emit(now, &p, sh);
        }
        self.next += 1;
        self.plan.get(self.next).map(|p| p.t)
    }

    fn emit(&mut self, now: u64, p: &Planned, sh: &mut Shared) {
        let ts = sh.q(now);
        let msg = self.message;
        self.message += 1;
        let buf = &mut sh.frame;
        let mut events: Vec<MulticastEvent> = Vec::with_capacity(p.recs.len().max(1));
        let ev = |kind: Kind,
                  host: IpAddr,
                  client: Option<IpAddr>,
                  dst: IpAddr,
                  group: Option<IpAddr>,
                  rtype: Option<u8>,
                  sources: Vec<IpAddr>,
                  channel: Option<String>,
                  receivers: Option<String>| MulticastEvent {
            ts_ns: ts,
            message: msg,
            protocol: if p.v6 { "mld" } else { "igmp" },
            version: p.version,
            kind: kind.name(),
            host,
            client,
            dst,
            group,
            record_type: rtype.map(record_type_name),
            sources,
            channel,
            receivers,
            retransmission: p.retransmission,
        };
        match p.receiver {
            None => {
                let Some(q) = &self.querier else { return };
                let qrv = 2u8;
                if p.v6 {
                    let mut m = [0u8; 28];
                    m[0] = MLD_QUERY;
                    m[4..6].copy_from_slice(
                        &code16((q.max_resp_time_s * 1000.0) as u32).to_be_bytes(),
                    );
                    m[24] = qrv;
                    m[25] = code8(q.interval_s as u32);
                    let (src, dst) = (self.querier_v6, IpAddr::V6(ALL_NODES_V6));
                    write_v6(buf, self.querier_mac, src, dst, &mut m);
                    events.push(ev(
                        Kind::Query,
                        src,
                        None,
                        dst,
                        None,
                        None,
                        vec![],
                        None,
                        None,
                    ));
                } else {
                    let tenths = (q.max_resp_time_s * 10.0) as u32;
                    let mut m3 = [0u8; 12];
                    let m: &mut [u8] = if p.version == 2 {
                        &mut m3[..8]
                    } else {
                        m3[8] = qrv;
                        m3[9] = code8(q.interval_s as u32);
                        &mut m3[..]
                    };
                    m[0] = IGMP_QUERY;
                    m[1] = if p.version == 2 {
                        tenths.min(255) as u8
                    } else {
                        code8(tenths)
                    };
                    let (src, dst) = (self.querier_v4, IpAddr::V4(ALL_HOSTS));
                    let id = self.querier_ip_id;
                    self.querier_ip_id = id.wrapping_add(1);
                    write_v4(buf, self.querier_mac, src, dst, id, m);
                    events.push(ev(
                        Kind::Query,
                        src,
                        None,
                        dst,
                        None,
                        None,
                        vec![],
                        None,
                        None,
                    ));
                }
            }
            Some(ri) => {
                let r = &self.receivers[ri];
                let rname = Some(self.entries[r.entry].name.clone());
                let ssm = self.entries[r.entry].ssm;
                let srcs = |c: &ChannelInfo, rt: u8| -> Vec<IpAddr> {
                    if ssm && rt != CHANGE_TO_INCLUDE && rt != CHANGE_TO_EXCLUDE {
                        vec![c.source]
                    } else {
                        Vec::new()
                    }
                };
                if p.v6 {
                    let mut m: Vec<u8> = vec![MLD_V2_REPORT, 0, 0, 0, 0, 0];
                    m.extend_from_slice(&(p.recs.len() as u16).to_be_bytes());
                    for rec in &p.recs {
                        let c = &self.channels[rec.channel];
                        let s = srcs(c, rec.rtype);
                        m.extend_from_slice(&[rec.rtype, 0]);
                        m.extend_from_slice(&(s.len() as u16).to_be_bytes());
                        m.extend_from_slice(&addr16(c.group));
                        for a in &s {
                            m.extend_from_slice(&addr16(*a));
                        }
                    }
                    let (src, dst) = (IpAddr::V6(r.ll), IpAddr::V6(MLDV2_ROUTERS));
                    write_v6(buf, r.mac, src, dst, &mut m);
                    for rec in &p.recs {
                        let c = &self.channels[rec.channel];
                        events.push(ev(
                            rec.kind,
                            src,
                            Some(r.v6),
                            dst,
                            Some(c.group),
                            Some(rec.rtype),
                            srcs(c, rec.rtype),
                            Some(c.name.clone()),
                            rname.clone(),
                        ));
                    }
                } else {
                    let src = r.v4;
                    let id = match sh.hosts.get_mut(r.client as usize) {
                        Some(h) => {
                            let id = h.ip_id;
                            h.ip_id = id.wrapping_add(1);
                            id
                        }
                        None => 0,
                    };
                    if p.version == 2 {
                        let Some(rec) = p.recs.first() else { return };
                        let c = &self.channels[rec.channel];
                        let (ty, dst) = if rec.kind == Kind::Leave {
                            (IGMP_V2_LEAVE, IpAddr::V4(ALL_ROUTERS))
                        } else {
                            (IGMP_V2_REPORT, c.group)
                        };
                        let mut m = [ty, 0, 0, 0, 0, 0, 0, 0];
                        m[4..8].copy_from_slice(&addr16(c.group)[..4]);
                        write_v4(buf, r.mac, src, dst, id, &mut m);
                        events.push(ev(
                            rec.kind,
                            src,
                            Some(src),
                            dst,
                            Some(c.group),
                            None,
                            vec![],
                            Some(c.name.clone()),
                            rname.clone(),
                        ));
                    } else {
                        let mut m: Vec<u8> = vec![IGMP_V3_REPORT, 0, 0, 0, 0, 0];
                        m.extend_from_slice(&(p.recs.len() as u16).to_be_bytes());
                        for rec in &p.recs {
                            let c = &self.channels[rec.channel];
                            let s = srcs(c, rec.rtype);
                            m.extend_from_slice(&[rec.rtype, 0]);
                            m.extend_from_slice(&(s.len() as u16).to_be_bytes());
                            m.extend_from_slice(&addr16(c.group)[..4]);
                            for a in &s {
                                m.extend_from_slice(&addr16(*a)[..4]);
                            }
                        }
                        let dst = IpAddr::V4(IGMPV3_ROUTERS);
                        write_v4(buf, r.mac, src, dst, id, &mut m);
                        for rec in &p.recs {
                            let c = &self.channels[rec.channel];
                            events.push(ev(
                                rec.kind,
                                src,
                                Some(src),
                                dst,
                                Some(c.group),
                                Some(rec.rtype),
                                srcs(c, rec.rtype),
                                Some(c.name.clone()),
                                rname.clone(),
                            ));
                        }
                    }
                }
            }
        }
        sh.events.multicast.extend(events);
    }
}

fn addr16(a: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v) => b[..4].copy_from_slice(&v.octets()),
        IpAddr::V6(v) => b.copy_from_slice(&v.octets()),
    }
    b
}

/// Appends an Ethernet + IPv4 (Router Alert) frame carrying IGMP message `m`, whose
/// checksum field (bytes 2..4) is filled here.
fn write_v4(buf: &mut Vec<u8>, src_mac: [u8; 6], src: IpAddr, dst: IpAddr, id: u16, m: &mut [u8]) {
    m[2] = 0;
    m[3] = 0;
    let c = checksum(m, 0);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    buf.extend_from_slice(&multicast_mac(dst));
    buf.extend_from_slice(&src_mac);
    buf.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip = buf.len();
    let total = (24 + m.len()) as u16;
    let t = total.to_be_bytes();
    let i = id.to_be_bytes();
    buf.extend_from_slice(&[
        0x46,
        TOS_INTERNETWORK_CONTROL,
        t[0],
        t[1],
        i[0],
        i[1],
        0,
        0,
        1,
        PROTO_IGMP,
        0,
        0,
    ]);
    buf.extend_from_slice(&addr16(src)[..4]);
    buf.extend_from_slice(&addr16(dst)[..4]);
    buf.extend_from_slice(&ROUTER_ALERT_V4);
    let hc = checksum(&buf[ip..ip + 24], 0);
    buf[ip + 10..ip + 12].copy_from_slice(&hc.to_be_bytes());
    buf.extend_from_slice(m);
}

/// Appends an Ethernet + IPv6 + Hop-by-Hop (Router Alert) frame carrying ICMPv6 message
/// `m`, whose checksum field (bytes 2..4) is filled here.
fn write_v6(buf: &mut Vec<u8>, src_mac: [u8; 6], src: IpAddr, dst: IpAddr, m: &mut [u8]) {
    let (s, d) = (addr16(src), addr16(dst));
    m[2] = 0;
    m[3] = 0;
    let mut acc = sum_words(&s, 0);
    acc = sum_words(&d, acc);
    acc += m.len() as u64 + PROTO_ICMPV6 as u64;
    let c = checksum(m, acc);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    buf.extend_from_slice(&multicast_mac(dst));
    buf.extend_from_slice(&src_mac);
    buf.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    let plen = (8 + m.len()) as u16;
    buf.extend_from_slice(&[0x60, 0, 0, 0]);
    buf.extend_from_slice(&plen.to_be_bytes());
    buf.extend_from_slice(&[NEXT_HOP_BY_HOP, 1]);
    buf.extend_from_slice(&s);
    buf.extend_from_slice(&d);
    buf.push(PROTO_ICMPV6);
    buf.extend_from_slice(&HBH_ROUTER_ALERT);
    buf.extend_from_slice(m);
}

/// Checks the `[[igmp]]` and `[querier]` tables.
pub fn validate(sc: &Scenario) -> Result<(), Error> {
    let bad = |m: String| Err(Error::Scenario(m));
    let mut total = 0u64;
    for e in &sc.igmp {
        if e.version != 2 && e.version != 3 {
            return bad(format!("igmp {}: version must be 2 or 3", e.name));
        }
        if e.version == 2 && e.ssm {
            return bad(format!(
                "igmp {}: source-specific joins need version 3",
                e.name
            ));
        }
        for c in &e.channels {
            if !sc.channels.iter().any(|x| &x.name == c) {
                return bad(format!("igmp {}: unknown channel {c}", e.name));
            }
        }
        if e.receivers == 0 || e.robustness == 0 || e.robustness > 7 {
            return bad(format!(
                "igmp {}: receivers >= 1 and robustness within 1..=7",
                e.name
            ));
        }
        if !(e.join_s[0] >= 0.0 && e.join_s[0] <= e.join_s[1] && e.join_s[1].is_finite()) {
            return bad(format!("igmp {}: join_s must be [min, max]", e.name));
        }
        if !(e.unsolicited_interval_s > 0.0 && e.unsolicited_interval_s <= 60.0) {
            return bad(format!(
                "igmp {}: unsolicited_interval_s must be in (0, 60]",
                e.name
            ));
        }
        if e.zap_interval_s < 0.0
            || (e.zap_interval_s > 0.0
                && e.zap_interval_s <= e.unsolicited_interval_s * e.robustness as f64)
        {
            return bad(format!(
                "igmp {}: zap_interval_s must be 0 or above robustness * unsolicited_interval_s",
                e.name
            ));
        }
        total += e.receivers as u64;
    }
    if total > sc.network.clients as u64 {
        return bad("igmp: more receivers than network.clients".into());
    }
    if let Some(q) = &sc.querier {
        let a = parse_addr(&q.address_v4, Some(4))?;
        let b = parse_addr(&q.address_v6, Some(6))?;
        if a.is_multicast() || b.is_multicast() {
            return bad("querier: addresses must be unicast".into());
        }
        if let IpAddr::V6(v) = b {
            if v.segments()[0] & 0xFFC0 != 0xFE80 {
                return bad("querier: address_v6 must be link-local (RFC 3810 §5)".into());
            }
        }
        if q.version != 2 && q.version != 3 {
            return bad("querier: version must be 2 or 3".into());
        }
        if q.version == 2 && sc.igmp.iter().any(|e| e.version == 3) {
            // An IGMPv3 host hearing a v2 query falls back to v2 (RFC 3376 §7.2.1),
            // which this generator does not model.
            return bad("querier: version 2 with IGMPv3 receivers is not supported".into());
        }
        if !(q.interval_s >= 1.0 && q.interval_s <= 31_744.0) {
            return bad("querier: interval_s must be in [1, 31744]".into());
        }
        if !(q.max_resp_time_s > 0.0
            && q.max_resp_time_s <= 25.5
            && q.max_resp_time_s < q.interval_s)
        {
            return bad(
                "querier: max_resp_time_s must be in (0, 25.5] and below interval_s".into(),
            );
        }
        if q.first_s < 0.0 {
            return bad("querier: first_s must be >= 0".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        assert_eq!(code8(100), 100);
        assert_eq!(code8(125), 125);
        // 128 = 0x10 << 3: exp 0, mant 0.
        assert_eq!(code8(128), 0x80);
        assert_eq!(decode8(code8(128)), 128);
        for v in [200u32, 255, 1000, 31_744] {
            let d = decode8(code8(v));
            assert!(d <= v && d * 17 / 16 >= v, "{v} -> {d}");
        }
        assert_eq!(code16(10_000), 10_000);
    }

    #[test]
    fn link_local_is_modified_eui64() {
        let a = link_local([0x02, 0x00, 0x00, 0x00, 0x00, 0x05]);
        assert_eq!(a, "fe80::ff:fe00:5".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn igmpv2_report_bytes() {
        let mut buf = Vec::new();
        let mut m = [IGMP_V2_REPORT, 0, 0, 0, 239, 1, 1, 1];
        write_v4(
            &mut buf,
            [2, 0, 0, 0, 0, 1],
            "10.0.0.2".parse().unwrap(),
            "239.1.1.1".parse().unwrap(),
            7,
            &mut m,
        );
        assert_eq!(buf.len(), 14 + 24 + 8);
        assert_eq!(&buf[0..6], &[1, 0, 0x5e, 1, 1, 1]);
        // Checksum of 16 00 0000 ef01 0101 = !(0x1600 + 0xef01 + 0x0101) = !0x0603 (folded).
        assert_eq!(&buf[14 + 24 + 2..14 + 24 + 4], &[0xf9, 0xfc]);
        assert_eq!(&buf[14 + 20..14 + 24], &ROUTER_ALERT_V4);
        assert_eq!(checksum(&buf[14..38], 0), 0);
    }
}
