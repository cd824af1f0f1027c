//! Service disruptions and DNS answers: takedowns, NXDOMAIN/SERVFAIL names, names the
//! resolver never answers, CNAME chains, the players' retry policy, and background
//! `[[dns_lookup]]` traffic.
//!
//! Players consult the [`Plan`] (reachable as `net.disrupt`) through four hooks:
//!
//! - [`Plan::service_state`]`(service, t)`: `Up`, or `Refused` while a `takedown` of
//!   the service is active — a SYN sent then is answered by a RST (RFC 9293 §3.10.7.1).
//! - [`Plan::reset_at`]`(service, from, until)`: the start of a takedown in
//!   `(from, until]`; a connection whose next packet is due in that interval is reset by
//!   the server at exactly that time instead.
//! - [`Plan::resolve`]`(name, v6, t, answers)`: the rcode, CNAME chain and addresses the
//!   resolver answers at `t` (`dns_nxdomain`/`dns_servfail`/`dns_noanswer` faults first,
//!   then `[[dns.name]]`, else NOERROR with the service's `answers`); no rcode when a
//!   `dns_noanswer` fault is active: the query gets no response at all, and a player
//!   gives up [`DNS_TIMEOUT_NS`] after its query.
//! - [`Plan::backoff_ns`]`(k)` and [`Plan::migration`]`(service)`: after the k-th
//!   consecutive failure a player waits `min(first·2^(k-1), cap)`; with a takedown's
//!   `migrate_share`, a player decides at its first failure whether it moves to
//!   `migrate_to` once `migrate_after_s` has passed.
//!
//! Any player (HTTPS-like or HLS) that calls these hooks behaves the same way; the
//! truth's `client_events` records every refusal, reset, DNS failure, retry and move.

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;

use crate::dns;
use crate::engine::{Net, Shared};
use crate::net::{host_mac, Path, PathSpec};
use crate::rng::Rng;
use crate::scenario::{parse_addr, DnsRcode, FaultConfig, Scenario};
use crate::truth::{DnsTruth, FaultEvent, FlowKind, FlowTruth, Protocol};
use crate::Error;

/// Whether a service accepts connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    Up,
    /// Taken down: SYNs get a RST.
    Refused,
}

/// How long a player waits for the answer to its query before it counts the lookup as
/// failed: the stub resolver's default timeout (glibc `RES_TIMEOUT`, resolv.conf(5)
/// `timeout:5`). capgen does not retransmit the query (a real stub resolver would, after
/// this timeout); the player's next attempt follows its `[retry]` backoff.
pub const DNS_TIMEOUT_NS: u64 = 5_000_000_000;

/// What the resolver answers.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// `None`: no response is sent (a `dns_noanswer` fault).
    pub rcode: Option<u8>,
    pub cnames: Vec<String>,
    pub answers: Vec<IpAddr>,
}

struct Takedown {
    service: String,
    t0: u64,
    t1: u64,
    migrate_share: f64,
    migrate_to: Option<String>,
    migrate_after_s: [f64; 2],
}

struct DnsFault {
    name: String,
    /// `None`: no response (`dns_noanswer`).
    rcode: Option<u8>,
    t0: u64,
    t1: u64,
}

struct NameCfg {
    name: String,
    cnames: Vec<String>,
    rcode: u8,
    v4: Vec<IpAddr>,
    v6: Vec<IpAddr>,
}

/// The disruption plan of a scenario.
pub(crate) struct Plan {
    takedowns: Vec<Takedown>,
    dns_faults: Vec<DnsFault>,
    names: Vec<NameCfg>,
    backoff_ns: [u64; 2],
    /// Every `[[https]]` service, for migrations (filled while the services are built).
    pub services: RefCell<Vec<Rc<crate::player::Service>>>,
}

fn rcode_of(r: DnsRcode) -> u8 {
    match r {
        DnsRcode::Noerror => dns::RCODE_NOERROR,
        DnsRcode::Servfail => dns::RCODE_SERVFAIL,
        DnsRcode::Nxdomain => dns::RCODE_NXDOMAIN,
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

impl Plan {
    pub fn new(sc: &Scenario, start_ns: u64) -> Result<Plan, Error> {
        let at = |s: f64| start_ns + (s.max(0.0) * 1e9) as u64;
        let until = |e: Option<f64>| e.map_or(u64::MAX, at);
        let mut takedowns = Vec::new();
        let mut dns_faults = Vec::new();
        for f in &sc.faults {
            match f {
                FaultConfig::Takedown {
                    service,
                    start_s,
                    end_s,
                    migrate_share,
                    migrate_to,
                    migrate_after_s,
                } => takedowns.push(Takedown {
                    service: service.clone(),
                    t0: at(*start_s),
                    t1: until(*end_s),
                    migrate_share: *migrate_share,
                    migrate_to: migrate_to.clone(),
                    migrate_after_s: *migrate_after_s,
                }),
                FaultConfig::DnsNxdomain {
                    name,
                    start_s,
                    end_s,
                } => dns_faults.push(DnsFault {
                    name: name.clone(),
                    rcode: Some(dns::RCODE_NXDOMAIN),
                    t0: at(*start_s),
                    t1: until(*end_s),
                }),
                FaultConfig::DnsServfail {
                    name,
                    start_s,
                    end_s,
                } => dns_faults.push(DnsFault {
                    name: name.clone(),
                    rcode: Some(dns::RCODE_SERVFAIL),
                    t0: at(*start_s),
                    t1: until(*end_s),
                }),
                FaultConfig::DnsNoanswer {
                    name,
                    start_s,
                    end_s,
                } => dns_faults.push(DnsFault {
                    name: name.clone(),
                    rcode: None,
                    t0: at(*start_s),
                    t1: until(*end_s),
                }),
                _ => {}
            }
        }
        let mut names = Vec::new();
        for n in &sc.dns.names {
            let mut v4 = Vec::new();
            for a in &n.v4 {
                v4.push(parse_addr(a, Some(4))?);
            }
            let mut v6 = Vec::new();
            for a in &n.v6 {
                v6.push(parse_addr(a, Some(6))?);
            }
            names.push(NameCfg {
                name: n.name.clone(),
                cnames: n.cname.clone(),
                rcode: rcode_of(n.rcode),
                v4,
                v6,
            });
        }
        let b = sc.retry.backoff_s;
        Ok(Plan {
            takedowns,
            dns_faults,
            names,
            backoff_ns: [(b[0] * 1e9) as u64, (b[1] * 1e9) as u64],
            services: RefCell::new(Vec::new()),
        })
    }

    /// Whether `service` accepts new connections at `t`.
    pub fn service_state(&self, service: &str, t: u64) -> ServiceState {
        if self
            .takedowns
            .iter()
            .any(|d| d.service == service && t >= d.t0 && t < d.t1)
        {
            ServiceState::Refused
        } else {
            ServiceState::Up
        }
    }

    /// The start of a takedown of `service` in `(from, until]`, when established
    /// connections are reset.
    pub fn reset_at(&self, service: &str, from: u64, until: u64) -> Option<u64> {
        self.takedowns
            .iter()
            .filter(|d| d.service == service && d.t0 > from && d.t0 <= until)
            .map(|d| d.t0)
            .min()
    }

    /// The resolver's answer for `name` at `t`; `answers` are the service's addresses.
    /// Under a `dns_noanswer` fault: no rcode, no CNAMEs, no addresses (no response).
    pub fn resolve(&self, name: &str, v6: bool, t: u64, answers: &[IpAddr]) -> Resolution {
        let cfg = self.names.iter().find(|n| same_name(&n.name, name));
        let fault = self
            .dns_faults
            .iter()
            .find(|f| same_name(&f.name, name) && t >= f.t0 && t < f.t1);
        let rcode = match (fault, cfg) {
            (Some(f), _) => f.rcode,
            (None, Some(c)) => Some(c.rcode),
            (None, None) => Some(dns::RCODE_NOERROR),
        };
        let cnames = match cfg {
            Some(c) if rcode != Some(dns::RCODE_SERVFAIL) && fault.is_none() => c.cnames.clone(),
            _ => Vec::new(),
        };
        let answers = if rcode != Some(dns::RCODE_NOERROR) {
            Vec::new()
        } else if !answers.is_empty() {
            answers.to_vec()
        } else {
            cfg.map_or_else(Vec::new, |c| if v6 { c.v6.clone() } else { c.v4.clone() })
        };
        Resolution {
            rcode,
            cnames,
            answers,
        }
    }

    /// Wait before the attempt that follows the `k`-th consecutive failure (k >= 1).
    pub fn backoff_ns(&self, k: u32) -> u64 {
        let [first, cap] = self.backoff_ns;
        let shift = k.saturating_sub(1).min(40);
        first.saturating_mul(1u64 << shift).min(cap)
    }

    /// `(share, target, delay range)` of the migration away from a taken-down `service`.
    pub fn migration(&self, service: &str) -> Option<(f64, &str, [f64; 2])> {
        self.takedowns.iter().find_map(|d| match &d.migrate_to {
            Some(to) if d.service == service && d.migrate_share > 0.0 => {
                Some((d.migrate_share, to.as_str(), d.migrate_after_s))
            }
            _ => None,
        })
    }

    /// A registered service by name.
    pub fn service(&self, name: &str) -> Option<Rc<crate::player::Service>> {
        self.services
            .borrow()
            .iter()
            .find(|s| s.cfg.name == name)
            .cloned()
    }

    /// Fault events of the scheduled disruptions that start before `end_ns`.
    pub fn scheduled_events(&self, end_ns: u64, quantum: u64) -> Vec<FaultEvent> {
        let q = |t: u64| t - t % quantum;
        let ev = |ts: u64, kind: &'static str, target: &str| FaultEvent {
            ts_ns: q(ts),
            kind,
            target: target.to_string(),
            flow_id: None,
            rtp_seq: None,
            pcr_jump: None,
        };
        let mut out = Vec::new();
        for d in &self.takedowns {
            if d.t0 < end_ns {
                out.push(ev(d.t0, "takedown", &d.service));
            }
            if d.t1 < end_ns {
                out.push(ev(d.t1, "takedown_end", &d.service));
            }
        }
        for f in &self.dns_faults {
            let kind = match f.rcode {
                Some(dns::RCODE_NXDOMAIN) => "dns_nxdomain",
                Some(_) => "dns_servfail",
                None => "dns_noanswer",
            };
            if f.t0 < end_ns {
                out.push(ev(f.t0, kind, &f.name));
            }
        }
        out
    }
}

/// A server RST the player writes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum PendingRst {
    #[default]
    None,
    /// The answer to a SYN sent while the service was down.
    Refused,
    /// The reset of a connection open when the takedown started.
    Reset,
}

/// Per-player disruption state (kept by the player, driven by its hooks).
#[derive(Debug, Default)]
pub(crate) struct PlayerDisruption {
    /// Player id in `client_events` (service index << 32 | player index).
    pub id: u64,
    /// Consecutive failed attempts.
    pub fails: u32,
    pub migrate_decided: bool,
    pub migrate_at: Option<u64>,
    /// Backoff waited before the attempt being started.
    pub retry_delay: u64,
    /// The resolver's answer of the session's lookup.
    pub res: Option<Resolution>,
    pub rst: PendingRst,
}

/// One background lookup waiting for its answer.
struct Pending {
    t: u64,
    path: Path,
    flow: usize,
    id: u16,
    qtype: u16,
    name: usize,
    rcode: u8,
    res: Resolution,
}

/// The `[[dns_lookup]]` source: every entry looks its name up every `interval_s` from a
/// random client; answers follow after `dns.rtt_ms`. A query under a `dns_noanswer`
/// fault gets no answer and is not repeated: the entry's next lookup comes at its next
/// interval, as after any other answer.
pub(crate) struct Lookups {
    names: Vec<(String, bool)>,
    next: Vec<u64>,
    interval: Vec<u64>,
    pending: Vec<Pending>,
    net: Rc<Net>,
    rng: Rng,
    clients: u32,
}

impl Lookups {
    pub fn new(sc: &Scenario, net: Rc<Net>, rng: Rng, start_ns: u64) -> Option<Lookups> {
        if sc.dns_lookups.is_empty() {
            return None;
        }
        let at = |s: f64| start_ns + (s.max(0.0) * 1e9) as u64;
        Some(Lookups {
            names: sc
                .dns_lookups
                .iter()
                .map(|l| (l.name.clone(), l.qtype.eq_ignore_ascii_case("AAAA")))
                .collect(),
            next: sc.dns_lookups.iter().map(|l| at(l.start_s)).collect(),
            interval: sc
                .dns_lookups
                .iter()
                .map(|l| ((l.interval_s * 1e9) as u64).max(1_000))
                .collect(),
            pending: Vec::new(),
            net,
            rng,
            clients: sc.network.clients,
        })
    }

    fn due(&self) -> Option<u64> {
        let a = self.next.iter().copied().min();
        let b = self.pending.iter().map(|p| p.t).min();
        match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }

    pub fn first_time(&self) -> Option<u64> {
        self.due()
    }

    pub fn step(&mut self, now: u64, sh: &mut Shared) -> Option<u64> {
        // Answers first (an answer and a query due together: the answer was earlier).
        if let Some(i) = self.pending.iter().position(|p| p.t <= now) {
            let p = self.pending.swap_remove(i);
            let (name, _) = &self.names[p.name];
            let ttl = self.net.dns_ttl;
            let pl = p.path.udp(&mut sh.frame, false, &mut sh.hosts, |b| {
                dns::response(
                    b,
                    p.id,
                    p.qtype,
                    ttl,
                    p.rcode,
                    name,
                    &p.res.cnames,
                    &p.res.answers,
                )
            });
            sh.account(p.flow, false, now, pl);
            let q = sh.q(now);
            if let Some(d) = sh.flows.get_mut(p.flow).and_then(|f| f.dns.as_mut()) {
                d.response_ts_ns = Some(q);
            }
            return self.due();
        }
        let Some(i) = self.next.iter().position(|&t| t <= now) else {
            return self.due();
        };
        self.next[i] = now + self.interval[i];
        let (name, v6) = self.names[i].clone();
        let client = self.rng.range_u64(0, self.clients as u64 - 1) as u32;
        let (res_addr, res_host) = crate::http::resolver(&self.net, v6);
        let cport = match sh.hosts.get_mut(client as usize) {
            Some(h) => {
                let p = h.next_port;
                h.next_port = if p >= 60_990 { 32_768 + p % 97 } else { p + 3 };
                p
            }
            None => 32_768,
        };
        let path = Path::new(PathSpec {
            client: self.net.client_addr(client, v6),
            client_port: cport,
            server: res_addr,
            server_port: 53,
            client_mac: host_mac(client),
            server_mac: self.net.gateway_mac,
            vlan: None,
            ttl_up: self.net.client_ttl,
            ttl_down: sh.hosts.get(res_host as usize).map_or(56, |h| h.ttl),
            host_up: client,
            host_down: res_host,
            labels: (self.rng.next_u32(), self.rng.next_u32()),
        });
        let id = self.rng.next_u32() as u16;
        let qtype = if v6 { dns::QTYPE_AAAA } else { dns::QTYPE_A };
        let res = self.net.disrupt.resolve(&name, v6, now, &[]);
        let pl = path.udp(&mut sh.frame, true, &mut sh.hosts, |b| {
            dns::query(b, id, qtype, |b| dns::write_name(b, &name))
        });
        let mut f = FlowTruth::new(
            FlowKind::DnsLookup,
            Some(name.clone()),
            Protocol::Udp,
            &path,
        );
        f.dns = Some(DnsTruth {
            id,
            qname: name.clone(),
            qtype: if v6 { "AAAA" } else { "A" }.to_string(),
            rcode: res.rcode,
            answers: res.answers.clone(),
            answer_ttl_s: self.net.dns_ttl,
            query_ts_ns: sh.q(now),
            response_ts_ns: None,
        });
        f.dns_cnames = Some(res.cnames.clone());
        let flow = sh.open_flow(f);
        sh.account(flow, true, now, pl);
        // Drawn also for a query that gets no answer, so that the draws of later
        // lookups do not depend on the fault.
        let rtt = ((self.rng.range_f64(self.net.dns_rtt_ms) * 1e6) as u64).max(1_000);
        if let Some(rcode) = res.rcode {
            self.pending.push(Pending {
                t: now + rtt,
                path,
                flow,
                id,
                qtype,
                name: i,
                rcode,
                res,
            });
        }
        self.due()
    }
}

/// Checks the disruption faults, `[[dns.name]]`, `[[dns_lookup]]` and `[retry]`.
pub fn validate(sc: &Scenario) -> Result<(), Error> {
    let bad = |m: String| Err(Error::Scenario(m));
    let valid_name = |n: &str| {
        !n.is_empty() && n.len() <= 200 && n.split('.').all(|l| !l.is_empty() && l.len() <= 63)
    };
    let chan = |what: &str, chs: &[String]| -> Result<(), Error> {
        for c in chs {
            if !sc.channels.iter().any(|x| &x.name == c) {
                return Err(Error::Scenario(format!("{what}: unknown channel {c}")));
            }
        }
        Ok(())
    };
    for f in &sc.faults {
        match f {
            FaultConfig::MulticastLoss { .. } => {}
            FaultConfig::MulticastDuplicate {
                channels,
                start_s,
                end_s,
                probability,
            }
            | FaultConfig::MulticastReorder {
                channels,
                start_s,
                end_s,
                probability,
            } => {
                if !(0.0..=1.0).contains(probability) || start_s > end_s {
                    return bad(
                        "multicast_duplicate/reorder: probability within 0..=1 and start_s <= end_s"
                            .into(),
                    );
                }
                chan("multicast_duplicate/reorder", channels)?;
            }
            FaultConfig::PcrDiscontinuity {
                channels,
                at_s,
                jump_ms,
            } => {
                if !(*at_s >= 0.0 && jump_ms.abs() <= 100_000.0 && jump_ms.abs() >= 0.001) {
                    return bad(
                        "pcr_discontinuity: at_s >= 0 and 0.001 <= |jump_ms| <= 100000".into(),
                    );
                }
                chan("pcr_discontinuity", channels)?;
            }
            FaultConfig::Takedown {
                service,
                start_s,
                end_s,
                migrate_share,
                migrate_to,
                migrate_after_s,
            } => {
                if !sc.https.iter().any(|h| &h.name == service) {
                    return bad(format!("takedown: unknown service {service}"));
                }
                if *start_s < 0.0 || end_s.is_some_and(|e| e <= *start_s) {
                    return bad("takedown: start_s >= 0 and end_s > start_s".into());
                }
                let [lo, hi] = *migrate_after_s;
                let after_ok = lo >= 0.0 && lo <= hi && hi.is_finite();
                if !(0.0..=1.0).contains(migrate_share) || !after_ok {
                    return bad(
                        "takedown: migrate_share within 0..=1, migrate_after_s [min, max]".into(),
                    );
                }
                if let Some(t) = migrate_to {
                    if t == service || !sc.https.iter().any(|h| &h.name == t) {
                        return bad(format!("takedown: migrate_to {t} is not another service"));
                    }
                }
            }
            FaultConfig::DnsNxdomain {
                name,
                start_s,
                end_s,
            }
            | FaultConfig::DnsServfail {
                name,
                start_s,
                end_s,
            }
            | FaultConfig::DnsNoanswer {
                name,
                start_s,
                end_s,
            } => {
                if !valid_name(name) || *start_s < 0.0 || end_s.is_some_and(|e| e <= *start_s) {
                    return bad(format!(
                        "dns fault {name}: a valid name, start_s >= 0, end_s > start_s"
                    ));
                }
            }
        }
    }
    for n in &sc.dns.names {
        if !valid_name(&n.name) || n.cname.iter().any(|c| !valid_name(c)) || n.cname.len() > 8 {
            return bad(format!(
                "dns.name {}: names must be valid, at most 8 CNAMEs",
                n.name
            ));
        }
        for a in &n.v4 {
            parse_addr(a, Some(4))?;
        }
        for a in &n.v6 {
            parse_addr(a, Some(6))?;
        }
    }
    for l in &sc.dns_lookups {
        if !valid_name(&l.name)
            || !(l.qtype.eq_ignore_ascii_case("A") || l.qtype.eq_ignore_ascii_case("AAAA"))
            || !(l.interval_s >= 0.001 && l.interval_s.is_finite())
            || l.start_s < 0.0
        {
            return bad(format!(
                "dns_lookup {}: valid name, qtype A or AAAA, interval_s >= 0.001",
                l.name
            ));
        }
    }
    let b = sc.retry.backoff_s;
    if !(b[0] >= 0.001 && b[0] <= b[1] && b[1] <= 86_400.0) {
        return bad("retry.backoff_s must be [first >= 0.001, cap <= 86400]".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let sc = Scenario::from_toml("duration_s = 1.0\n[retry]\nbackoff_s = [0.5, 3.0]\n")
            .expect("parses");
        let p = Plan::new(&sc, 0).expect("plan");
        let got: Vec<u64> = (1..=5).map(|k| p.backoff_ns(k)).collect();
        assert_eq!(
            got,
            [
                500_000_000,
                1_000_000_000,
                2_000_000_000,
                3_000_000_000,
                3_000_000_000
            ]
        );
    }

    #[test]
    fn faults_override_configured_names() {
        let sc = Scenario::from_toml(
            "duration_s = 10.0\n[[dns.name]]\nname = 'a.example'\ncname = ['b.cdn.example']\nv4 = ['192.0.2.7']\n\
             [[fault]]\nkind = 'dns_nxdomain'\nname = 'a.example'\nstart_s = 5.0\n",
        )
        .expect("parses");
        let p = Plan::new(&sc, 0).expect("plan");
        let before = p.resolve("a.example", false, 4_999_999_999, &[]);
        assert_eq!(before.rcode, Some(0));
        assert_eq!(before.cnames, ["b.cdn.example"]);
        assert_eq!(before.answers, ["192.0.2.7".parse::<IpAddr>().unwrap()]);
        let after = p.resolve("A.example.", false, 5_000_000_000, &[]);
        assert_eq!(after.rcode, Some(3));
        assert!(after.answers.is_empty() && after.cnames.is_empty());
    }

    #[test]
    fn noanswer_window_has_no_rcode_and_ends() {
        let sc = Scenario::from_toml(
            "duration_s = 10.0\n[[dns.name]]\nname = 'a.example'\ncname = ['b.cdn.example']\nv4 = ['192.0.2.7']\n\
             [[fault]]\nkind = 'dns_noanswer'\nname = 'a.example'\nstart_s = 2.0\nend_s = 4.0\n",
        )
        .expect("parses");
        let p = Plan::new(&sc, 0).expect("plan");
        let during = p.resolve("a.example", true, 2_000_000_000, &[]);
        assert_eq!(during.rcode, None);
        assert!(during.answers.is_empty() && during.cnames.is_empty());
        let after = p.resolve("a.example", false, 4_000_000_000, &[]);
        assert_eq!(after.rcode, Some(0));
        assert_eq!(after.cnames, ["b.cdn.example"]);
        let ev = p.scheduled_events(10_000_000_000, 1_000);
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0].kind, ev[0].ts_ns), ("dns_noanswer", 2_000_000_000));
    }
}
