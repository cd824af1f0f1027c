//! capgen: a deterministic synthetic streaming-traffic capture generator with exact
//! ground truth.
//!
//! [`generate`] turns a [`Scenario`] and a seed into a pcap or pcapng byte stream and a
//! [`Truth`] computed while the frames are written (never by reading them back). The
//! same scenario and seed give byte-identical output; timestamps come from the
//! scenario's `start`, never from the clock.

mod disrupt;
pub mod dns;
mod engine;
mod faults;
mod hls;
pub mod http;
mod igmp;
pub mod net;
pub mod out;
mod panel;
mod player;
pub mod quic;
pub mod rng;
pub mod scenario;
mod scenario_ott;
mod small;
pub mod tls;
pub mod truth;
pub mod ts;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::rc::Rc;

pub use out::Format;
pub use scenario::{Scenario, TsResolution};
pub use truth::Truth;

use engine::{Net, Shared, Source};
use net::{host_mac, multicast_mac, Host, Path, PathSpec};
use rng::Rng;
use scenario::{parse_addr, parse_mac, parse_prefix, Encap, FaultConfig};

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario is not valid TOML or has an invalid value.
    #[error("invalid scenario: {0}")]
    Scenario(String),
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
}

/// How to write the capture.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub seed: u64,
    pub format: Format,
    /// Overrides the scenario's `output.ts_resolution`.
    pub ts_resolution: Option<TsResolution>,
}

// Stream tags for per-component random streams.
const TAG_HOSTS: u64 = 1;
const TAG_CHANNEL: u64 = 2;
const TAG_PLAYER: u64 = 3;
const TAG_SMALL: u64 = 4;
const TAG_POOL: u64 = 5;
const TAG_PLACE: u64 = 6;
const TAG_LOOKUPS: u64 = 0x4D43_0002;
/// Server addresses of a service with their host-table ids.
type ServerList = Vec<(IpAddr, u32)>;
const TAG_HLS: u64 = 0x4F54_0001;
const TAG_PANEL: u64 = 0x4F54_0002;
const TAG_QUIC: u64 = 0x4F54_0003;
const TAG_OTT_PLACE: u64 = 0x4F54_0004;

/// Generates the capture into `out` and returns the truth and the writer.
pub fn generate<W: Write>(sc: &Scenario, opts: &Options, out: W) -> Result<(Truth, W), Error> {
    sc.validate()?;
    let seed = opts.seed;
    let start_ns = scenario::parse_rfc3339(&sc.start)?;
    let duration_ns = (sc.duration_s * 1e9) as u64;
    let end_ns = start_ns + duration_ns;
    let res = opts.ts_resolution.unwrap_or(sc.output.ts_resolution);
    let n = &sc.network;

    let mut hrng = Rng::stream(seed, TAG_HOSTS, 0);
    let mut hosts: Vec<Host> = Vec::new();
    let mut add_host = |hosts: &mut Vec<Host>| -> u32 {
        let ttl = hrng.range_u64(n.server_ttl[0] as u64, n.server_ttl[1] as u64) as u8;
        hosts.push(Host {
            ip_id: hrng.next_u32() as u16,
            next_port: 32_768 + (hrng.next_u32() % 28_000) as u16,
            ttl,
        });
        (hosts.len() - 1) as u32
    };
    let n_clients = n
        .clients
        .max(sc.small_flows.as_ref().map_or(0, |s| s.clients));
    for _ in 0..n_clients {
        add_host(&mut hosts);
    }
    let resolver_host_v4 = add_host(&mut hosts);
    let resolver_host_v6 = add_host(&mut hosts);
    let (client_v4, _) = parse_prefix(&n.client_v4, n_clients as u64)?;
    let (client_v6, _) = parse_prefix(&n.client_v6, n_clients as u64)?;
    let net = Rc::new(Net {
        client_v4,
        client_v6,
        gateway_mac: parse_mac(&n.gateway_mac)?,
        client_ttl: n.client_ttl,
        ipv6_share: n.ipv6_share,
        vlan_share: n.vlan_share,
        vlan_id: n.vlan_id,
        resolver_v4: parse_addr(&sc.dns.resolver_v4, Some(4))?,
        resolver_v6: parse_addr(&sc.dns.resolver_v6, Some(6))?,
        resolver_host_v4,
        resolver_host_v6,
        dns_rtt_ms: sc.dns.rtt_ms,
        dns_ttl: sc.dns.answer_ttl_s,
        disrupt: disrupt::Plan::new(sc, start_ns)?,
    });

    let mut initial: Vec<(u64, Source)> = Vec::new();
    let mut channel_info: Vec<igmp::ChannelInfo> = Vec::new();

    // Multicast channels.
    for (i, c) in sc.channels.iter().enumerate() {
        let group = parse_addr(&c.group, None)?;
        let source = match &c.source {
            Some(s) => parse_addr(s, None)?,
            None if group.is_ipv4() => IpAddr::V4([10, 255, 0, (i % 250) as u8 + 1].into()),
            None => IpAddr::V6((0x2001_0db8_00ff_0000_0000_0000_0000_0001u128 + i as u128).into()),
        };
        let src_host = add_host(&mut hosts);
        let mut rng = Rng::stream(seed, TAG_CHANNEL, i as u64);
        let path = Path::new(PathSpec {
            client: source,
            client_port: c.source_port,
            server: group,
            server_port: c
                .port
                .unwrap_or(if c.encap == Encap::Rtp { 5004 } else { 5000 }),
            client_mac: host_mac(src_host),
            server_mac: multicast_mac(group),
            vlan: c.vlan,
            ttl_up: c.ttl,
            ttl_down: c.ttl,
            host_up: src_host,
            host_down: src_host,
            labels: (rng.next_u32(), 0),
        });
        let s_ns = |s: f64| start_ns + (s.max(0.0) * 1e9) as u64;
        let losses = sc
            .faults
            .iter()
            .filter_map(|f| match f {
                FaultConfig::MulticastLoss {
                    channels,
                    start_s,
                    end_s,
                    probability,
                } if channels.is_empty() || channels.contains(&c.name) => {
                    Some((s_ns(*start_s), s_ns(*end_s), *probability))
                }
                _ => None,
            })
            .collect();
        let spec = ts::ChannelSpec {
            name: c.name.clone(),
            path,
            rtp: c.encap == Encap::Rtp,
            ts_per_datagram: c.ts_per_datagram,
            mux_rate_bps: c.mux_rate_bps,
            video_bps: c.video_bps.unwrap_or(c.mux_rate_bps * 8 / 10),
            audio_bps: c.audio_bps,
            pcr_interval_ns: (c.pcr_interval_ms * 1e6) as u64,
            psi_interval_ns: (c.psi_interval_ms * 1e6) as u64,
            program_number: c.program_number,
            pmt_pid: c.pmt_pid,
            video_pid: c.video_pid,
            audio_pid: c.audio_pid,
            scrambled: c.scrambled,
            start_ns: s_ns(c.start_s),
            end_ns: c.end_s.map_or(end_ns, |e| s_ns(e).min(end_ns)),
            losses,
        };
        let mut ch = ts::Channel::new(spec, rng);
        ch.set_faults(faults::for_channel(sc, i, seed, start_ns));
        channel_info.push(igmp::ChannelInfo {
            name: c.name.clone(),
            group,
            source,
        });
        if let Some(t) = ch.first_time() {
            initial.push((t, Source::Channel(Box::new(ch))));
        }
    }

    // HTTPS-like services and their players.
    let mut prng = Rng::stream(seed, TAG_POOL, 0);
    let pool: Rc<Vec<u8>> = Rc::new((0..player::POOL).map(|_| prng.next_u32() as u8).collect());
    let mut place = Rng::stream(seed, TAG_PLACE, 0);
    for (si, h) in sc.https.iter().enumerate() {
        let mut v4 = Vec::new();
        for a in &h.server_v4 {
            v4.push((parse_addr(a, Some(4))?, add_host(&mut hosts)));
        }
        let mut v6 = Vec::new();
        for a in &h.server_v6 {
            v6.push((parse_addr(a, Some(6))?, add_host(&mut hosts)));
        }
        let svc = Rc::new(player::Service {
            cfg: h.clone(),
            v4,
            v6,
            pool: pool.clone(),
        });
        net.disrupt.services.borrow_mut().push(svc.clone());
        for j in 0..h.clients {
            let client = place.range_u64(0, n.clients as u64 - 1) as u32;
            let rng = Rng::stream(seed, TAG_PLAYER, ((si as u64) << 32) | j as u64);
            let mut p = player::Player::new(svc.clone(), net.clone(), rng, client);
            p.dis.id = ((si as u64) << 32) | j as u64;
            let t = p.first_time(start_ns);
            initial.push((t, Source::Player(Box::new(p))));
        }
    }

    // Small flows.
    if let Some(s) = &sc.small_flows {
        let base = hosts.len() as u32;
        for _ in 0..s.servers {
            add_host(&mut hosts);
        }
        let sp = small::SmallSpawner::new(
            s.clone(),
            net.clone(),
            Rng::stream(seed, TAG_SMALL, 0),
            start_ns,
            duration_ns,
            base,
        )?;
        if let Some(t) = sp.first_time() {
            initial.push((t, Source::SmallSpawner(Box::new(sp))));
        }
    }

    // Over-the-top services: HLS over HTTP, IPTV panels, QUIC. Their own random streams
    // keep the traffic of the other kinds unchanged.
    let mut oplace = Rng::stream(seed, TAG_OTT_PLACE, 0);
    let mut servers = |hosts: &mut Vec<Host>,
                       v4s: &[String],
                       v6s: &[String]|
     -> Result<(ServerList, ServerList), Error> {
        let mut v4 = Vec::new();
        for a in v4s {
            v4.push((parse_addr(a, Some(4))?, add_host(hosts)));
        }
        let mut v6 = Vec::new();
        for a in v6s {
            v6.push((parse_addr(a, Some(6))?, add_host(hosts)));
        }
        Ok((v4, v6))
    };
    for (si, h) in sc.hls.iter().enumerate() {
        let (v4, v6) = servers(&mut hosts, &h.server_v4, &h.server_v6)?;
        let mut r = Rng::stream(seed, TAG_HLS, (si as u64) << 32 | 0xFFFF_FFFF);
        let dur_ns = (h.segment_duration_s * 1e9) as u64;
        let epoch_ns = start_ns.saturating_sub(r.range_u64(1_000, 100_000) * dur_ns);
        let svc = Rc::new(hls::Service {
            cfg: h.clone(),
            v4,
            v6,
            pool: pool.clone(),
            epoch_ns,
        });
        for j in 0..h.clients {
            let client = oplace.range_u64(0, n.clients as u64 - 1) as u32;
            let rng = Rng::stream(seed, TAG_HLS, ((si as u64) << 32) | j as u64);
            let mut p = hls::HlsPlayer::new(svc.clone(), net.clone(), rng, client, start_ns);
            let t = p.first_time(start_ns);
            initial.push((t, Source::Hls(Box::new(p))));
        }
    }
    for (si, h) in sc.panels.iter().enumerate() {
        let (v4, v6) = servers(&mut hosts, &h.server_v4, &h.server_v6)?;
        let svc = Rc::new(panel::Service {
            cfg: h.clone(),
            v4,
            v6,
            pool: pool.clone(),
        });
        for j in 0..h.clients {
            let client = oplace.range_u64(0, n.clients as u64 - 1) as u32;
            let rng = Rng::stream(seed, TAG_PANEL, ((si as u64) << 32) | j as u64);
            let mut p = panel::PanelPlayer::new(svc.clone(), net.clone(), rng, client, start_ns);
            let t = p.first_time(start_ns);
            initial.push((t, Source::Panel(Box::new(p))));
        }
    }
    for (si, h) in sc.quic.iter().enumerate() {
        let (v4, v6) = servers(&mut hosts, &h.server_v4, &h.server_v6)?;
        let svc = Rc::new(quic::Service {
            cfg: h.clone(),
            v4,
            v6,
            pool: pool.clone(),
        });
        for j in 0..h.clients {
            let client = oplace.range_u64(0, n.clients as u64 - 1) as u32;
            let rng = Rng::stream(seed, TAG_QUIC, ((si as u64) << 32) | j as u64);
            let mut p = quic::QuicPlayer::new(svc.clone(), net.clone(), rng, client);
            let t = p.first_time(start_ns);
            initial.push((t, Source::Quic(Box::new(p))));
        }
    }

    // Multicast membership signalling and background DNS lookups.
    if let Some(m) = igmp::Membership::new(sc, channel_info, &net, seed, start_ns, end_ns)? {
        if let Some(t) = m.first_time() {
            initial.push((t, Source::Membership(Box::new(m))));
        }
    }
    if let Some(l) =
        disrupt::Lookups::new(sc, net.clone(), Rng::stream(seed, TAG_LOOKUPS, 0), start_ns)
    {
        if let Some(t) = l.first_time() {
            initial.push((t, Source::Lookups(Box::new(l))));
        }
    }

    let mut sh = Shared {
        frame: Vec::with_capacity(2048),
        hosts,
        flows: Vec::new(),
        quantum: if res == TsResolution::Us { 1_000 } else { 1 },
        spawned: Vec::new(),
        dropped: 0,
        events: Default::default(),
    };
    let quantum = sh.quantum;
    sh.events.faults = net.disrupt.scheduled_events(end_ns, quantum);
    let mut writer = out::CaptureWriter::new(out, opts.format, res, sc.output.snaplen)?;
    let mut totals = truth::Totals::default();
    engine::run(initial, end_ns, &mut sh, &mut writer, &mut totals)?;
    totals.file_bytes = writer.bytes();
    totals.flows = sh.flows.len() as u64;
    totals.dropped_datagrams = sh.dropped;
    let mut flow_counts = BTreeMap::new();
    for f in &sh.flows {
        *flow_counts.entry(f.kind).or_insert(0u64) += 1;
    }
    let w = writer.finish()?;
    let truth = Truth {
        truth_version: truth::TRUTH_VERSION,
        generator: "capgen",
        generator_version: env!("CARGO_PKG_VERSION"),
        seed,
        format: opts.format,
        ts_resolution: res,
        link_type: out::LINKTYPE_ETHERNET,
        start_ns,
        end_ns,
        scenario: sc.clone(),
        totals,
        flow_counts,
        flows: sc.truth.per_flow.then_some(sh.flows),
        multicast_events: sh.events.multicast,
        fault_events: {
            let mut f = sh.events.faults;
            f.sort_by_key(|e| e.ts_ns);
            f
        },
        client_events: sh.events.clients,
    };
    Ok((truth, w))
}
