//! The scenario file: what traffic to generate.
//!
//! A scenario is a TOML document. Every table and key is optional except where noted;
//! defaults are documented on each field and in `tools/capgen/README.md`. Unknown keys
//! are rejected so that a typo never silently changes a benchmark.
//!
//! The format is built to grow: each traffic kind is its own array of tables
//! (`[[channel]]`, `[[https]]`, later `[[hls]]`, `[[quic]]`, `[[igmp]]`), and every
//! disruption is one `[[fault]]` entry tagged by `kind`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::Error;

pub use crate::scenario_ott::{
    HlsConfig, PanelConfig, PanelStreamConfig, QuicConfig, SegmentFormat, SwitchConfig,
    VariantConfig,
};

/// A complete scenario, as read from TOML (defaults filled in).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Free-form name, echoed in the truth file.
    #[serde(default)]
    pub name: String,
    /// Capture start as RFC 3339 UTC (`2024-03-01T20:00:00Z`, fractional seconds allowed).
    #[serde(default = "default_start")]
    pub start: String,
    /// Length of the capture in seconds; no packet is written at or after `start + duration_s`.
    pub duration_s: f64,
    #[serde(default)]
    pub output: OutputConfig,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub dns: DnsConfig,
    #[serde(default)]
    pub truth: TruthConfig,
    /// Multicast IPTV channels.
    #[serde(default, rename = "channel")]
    pub channels: Vec<ChannelConfig>,
    /// HTTPS-like bursty download services (players fetching segments).
    #[serde(default)]
    pub https: Vec<HttpsConfig>,
    /// Many distinct short flows, for flow-table benchmarks.
    #[serde(default)]
    pub small_flows: Option<SmallFlowsConfig>,
    /// Injected disruptions.
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultConfig>,
    /// Multicast receivers signalling membership (IGMPv2/v3, MLDv2); see `crate::igmp`.
    #[serde(default)]
    pub igmp: Vec<IgmpConfig>,
    /// The router sending periodic general queries (none when absent).
    #[serde(default)]
    pub querier: Option<QuerierConfig>,
    /// Background DNS lookups of names (for DNS failures without players).
    #[serde(default, rename = "dns_lookup")]
    pub dns_lookups: Vec<DnsLookupConfig>,
    /// How players retry failed sessions (refused, reset, DNS failure).
    #[serde(default)]
    pub retry: RetryConfig,
    /// HLS players over cleartext HTTP/1.1.
    #[serde(default)]
    pub hls: Vec<HlsConfig>,
    /// IPTV panels: `player_api.php` calls and progressive MPEG-TS over HTTP.
    #[serde(default, rename = "panel")]
    pub panels: Vec<PanelConfig>,
    /// QUIC v1 players.
    #[serde(default)]
    pub quic: Vec<QuicConfig>,
}

fn default_start() -> String {
    "2024-03-01T20:00:00Z".to_string()
}

/// Capture file settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Timestamp resolution: `us` (default) or `ns`. The command line can override it.
    #[serde(default = "default_res")]
    pub ts_resolution: TsResolution,
    /// Snapshot length written in the file header (frames are never truncated).
    #[serde(default = "default_snaplen")]
    pub snaplen: u32,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            ts_resolution: default_res(),
            snaplen: default_snaplen(),
        }
    }
}

fn default_res() -> TsResolution {
    TsResolution::Us
}
fn default_snaplen() -> u32 {
    262_144
}

/// Timestamp resolution of the written capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TsResolution {
    Us,
    Ns,
}

/// Addressing and link-layer mix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Share (0..=1) of unicast flows (HTTPS sessions, DNS, small flows) carried over IPv6.
    #[serde(default)]
    pub ipv6_share: f64,
    /// Share (0..=1) of unicast flows whose frames carry an 802.1Q tag.
    #[serde(default)]
    pub vlan_share: f64,
    /// VLAN id used for tagged unicast flows (1..=4094).
    #[serde(default = "default_vlan")]
    pub vlan_id: u16,
    /// Client hosts are numbered from 1 inside these prefixes.
    #[serde(default = "default_client_v4")]
    pub client_v4: String,
    #[serde(default = "default_client_v6")]
    pub client_v6: String,
    /// Number of client hosts that players and DNS queriers are drawn from.
    #[serde(default = "default_clients")]
    pub clients: u32,
    /// MAC address of the router on the client's access link (server side of every unicast frame).
    #[serde(default = "default_gw_mac")]
    pub gateway_mac: String,
    /// IPv4 TTL / IPv6 hop limit of packets sent by clients (captured next to them).
    #[serde(default = "default_client_ttl")]
    pub client_ttl: u8,
    /// Range `[min, max]` of TTLs seen on server packets (one value per server address).
    #[serde(default = "default_server_ttl")]
    pub server_ttl: [u8; 2],
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            ipv6_share: 0.0,
            vlan_share: 0.0,
            vlan_id: default_vlan(),
            client_v4: default_client_v4(),
            client_v6: default_client_v6(),
            clients: default_clients(),
            gateway_mac: default_gw_mac(),
            client_ttl: default_client_ttl(),
            server_ttl: default_server_ttl(),
        }
    }
}

fn default_vlan() -> u16 {
    100
}
fn default_client_v4() -> String {
    "10.20.0.0/16".to_string()
}
fn default_client_v6() -> String {
    "2001:db8:20::/48".to_string()
}
fn default_clients() -> u32 {
    100
}
fn default_gw_mac() -> String {
    "00:1b:21:0a:0b:0c".to_string()
}
fn default_client_ttl() -> u8 {
    64
}
fn default_server_ttl() -> [u8; 2] {
    [48, 58]
}

/// The resolver that players query before connecting.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    #[serde(default = "default_resolver_v4")]
    pub resolver_v4: String,
    #[serde(default = "default_resolver_v6")]
    pub resolver_v6: String,
    /// Query-to-answer delay range in milliseconds.
    #[serde(default = "default_dns_rtt")]
    pub rtt_ms: [f64; 2],
    /// TTL written in answers.
    #[serde(default = "default_dns_ttl")]
    pub answer_ttl_s: u32,
    /// Per-name answers (`[[dns.name]]`): CNAME chains, addresses, failure rcodes.
    #[serde(default, rename = "name")]
    pub names: Vec<DnsNameConfig>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            resolver_v4: default_resolver_v4(),
            resolver_v6: default_resolver_v6(),
            rtt_ms: default_dns_rtt(),
            answer_ttl_s: default_dns_ttl(),
            names: Vec::new(),
        }
    }
}

fn default_resolver_v4() -> String {
    "192.0.2.53".to_string()
}
fn default_resolver_v6() -> String {
    "2001:db8:53::53".to_string()
}
fn default_dns_rtt() -> [f64; 2] {
    [2.0, 20.0]
}
fn default_dns_ttl() -> u32 {
    300
}

/// What the truth file lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthConfig {
    /// List every flow (default). When false only totals and per-kind counts are written.
    #[serde(default = "default_true")]
    pub per_flow: bool,
}

impl Default for TruthConfig {
    fn default() -> Self {
        TruthConfig { per_flow: true }
    }
}

fn default_true() -> bool {
    true
}

/// Encapsulation of a multicast channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encap {
    /// MPEG-TS packets directly in UDP.
    Udp,
    /// MPEG-TS in RTP, payload type 33 (RFC 3551 §6, RFC 2250).
    Rtp,
}

/// One multicast IPTV channel (a single-program transport stream).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    /// Destination group (IPv4 239.0.0.0/8 or an IPv6 `ff3x::` group).
    pub group: String,
    /// Sending head-end address (same IP version as `group`).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default = "default_encap")]
    pub encap: Encap,
    /// Destination UDP port (default 5000 for `udp`, 5004 for `rtp`).
    #[serde(default)]
    pub port: Option<u16>,
    /// Source UDP port.
    #[serde(default = "default_src_port")]
    pub source_port: u16,
    /// Transport stream rate in bit/s (TS packets including nulls).
    pub mux_rate_bps: u64,
    /// Video elementary stream rate (default 80 % of the mux rate).
    #[serde(default)]
    pub video_bps: Option<u64>,
    #[serde(default = "default_audio_bps")]
    pub audio_bps: u64,
    /// TS packets per datagram, 1..=7.
    #[serde(default = "default_ts_per_dgram")]
    pub ts_per_datagram: u8,
    /// PCR interval in ms (at most 40).
    #[serde(default = "default_pcr_ms")]
    pub pcr_interval_ms: f64,
    /// PAT/PMT repetition interval in ms.
    #[serde(default = "default_psi_ms")]
    pub psi_interval_ms: f64,
    #[serde(default = "default_program")]
    pub program_number: u16,
    #[serde(default = "default_pmt_pid")]
    pub pmt_pid: u16,
    #[serde(default = "default_video_pid")]
    pub video_pid: u16,
    #[serde(default = "default_audio_pid")]
    pub audio_pid: u16,
    /// Video and audio PIDs are scrambled (conditional access): their packets carry
    /// transport_scrambling_control = '10' (even key) and an opaque payload, no
    /// readable PES header (ISO/IEC 13818-1 §2.4.3.2; ETSI ETR 289). PSI stays clear.
    #[serde(default)]
    pub scrambled: bool,
    /// 802.1Q VLAN id of this channel's frames (none when absent).
    #[serde(default)]
    pub vlan: Option<u16>,
    #[serde(default = "default_mc_ttl")]
    pub ttl: u8,
    /// Channel on-air window relative to the capture start (default: whole capture).
    #[serde(default)]
    pub start_s: f64,
    #[serde(default)]
    pub end_s: Option<f64>,
}

fn default_encap() -> Encap {
    Encap::Udp
}
fn default_src_port() -> u16 {
    40000
}
fn default_audio_bps() -> u64 {
    128_000
}
fn default_ts_per_dgram() -> u8 {
    7
}
fn default_pcr_ms() -> f64 {
    30.0
}
fn default_psi_ms() -> f64 {
    100.0
}
fn default_program() -> u16 {
    1
}
fn default_pmt_pid() -> u16 {
    0x100
}
fn default_video_pid() -> u16 {
    0x101
}
fn default_audio_pid() -> u16 {
    0x102
}
fn default_mc_ttl() -> u8 {
    16
}

/// End of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpEnd {
    Fin,
    Rst,
}

/// HTTPS-like bursty downloads: `clients` concurrent players, each running back-to-back
/// sessions (DNS lookup, TCP connection, one request and one burst per segment).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsConfig {
    pub name: String,
    /// Server name looked up in DNS before each session.
    pub host: String,
    /// Server addresses (IPv4 and IPv6 lists; the flow's IP version picks the list).
    pub server_v4: Vec<String>,
    #[serde(default)]
    pub server_v6: Vec<String>,
    #[serde(default = "default_https_port")]
    pub port: u16,
    /// Concurrent players.
    pub clients: u32,
    /// Bytes of each segment burst (range, uniform).
    pub segment_bytes: [u64; 2],
    /// One request every this many seconds.
    #[serde(default = "default_seg_dur")]
    pub segment_duration_s: f64,
    /// Request size range in bytes.
    #[serde(default = "default_req_bytes")]
    pub request_bytes: [u32; 2],
    /// Round-trip time range in ms (one value per session).
    #[serde(default = "default_rtt")]
    pub rtt_ms: [f64; 2],
    /// Bottleneck rate of bursts in bit/s.
    #[serde(default = "default_rate")]
    pub rate_bps: u64,
    /// Session length range in seconds; a new session starts right after.
    #[serde(default = "default_session")]
    pub session_s: [f64; 2],
    /// Share of sessions that end with FIN; the rest end with a client RST.
    #[serde(default = "default_fin_share")]
    pub fin_share: f64,
    /// Look the host up in DNS before each session.
    #[serde(default = "default_true")]
    pub dns_lookup: bool,
    /// Players start uniformly within this many seconds of the capture start.
    #[serde(default = "default_spread")]
    pub start_spread_s: f64,
    /// Start every connection with a TLS 1.3 handshake (ClientHello with SNI = `host`,
    /// ServerHello, ChangeCipherSpec, encrypted records) before the bursts. Off by
    /// default so that existing scenarios keep their bytes.
    #[serde(default)]
    pub tls_handshake: bool,
}

fn default_https_port() -> u16 {
    443
}
fn default_seg_dur() -> f64 {
    4.0
}
fn default_req_bytes() -> [u32; 2] {
    [250, 600]
}
fn default_rtt() -> [f64; 2] {
    [10.0, 40.0]
}
fn default_rate() -> u64 {
    50_000_000
}
fn default_session() -> [f64; 2] {
    [60.0, 300.0]
}
fn default_fin_share() -> f64 {
    0.8
}
fn default_spread() -> f64 {
    2.0
}

/// Kind of small flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmallKind {
    /// A DNS query and its answer.
    Dns,
    /// SYN, SYN-ACK, then a client RST.
    TcpSynRst,
}

/// `count` distinct short flows spread evenly over the capture.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmallFlowsConfig {
    pub count: u64,
    pub kind: SmallKind,
    /// Client hosts the flows come from (their ports vary so 5-tuples stay distinct).
    #[serde(default = "default_small_clients")]
    pub clients: u32,
    /// Server hosts, numbered from 1 inside these prefixes.
    #[serde(default = "default_small_servers")]
    pub servers: u32,
    #[serde(default = "default_small_srv_v4")]
    pub server_v4: String,
    #[serde(default = "default_small_srv_v6")]
    pub server_v6: String,
    /// Destination port for `tcp_syn_rst` flows.
    #[serde(default = "default_https_port")]
    pub tcp_port: u16,
    /// Request-to-answer delay range in ms.
    #[serde(default = "default_small_rtt")]
    pub rtt_ms: [f64; 2],
}

fn default_small_clients() -> u32 {
    50_000
}
fn default_small_servers() -> u32 {
    250
}
fn default_small_srv_v4() -> String {
    "198.51.100.0/24".to_string()
}
fn default_small_srv_v6() -> String {
    "2001:db8:200::/48".to_string()
}
fn default_small_rtt() -> [f64; 2] {
    [1.0, 30.0]
}

/// A disruption.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultConfig {
    /// Drop multicast datagrams sent in `[start_s, end_s)` with `probability`.
    MulticastLoss {
        /// Channel names; empty means every channel.
        #[serde(default)]
        channels: Vec<String>,
        start_s: f64,
        end_s: f64,
        probability: f64,
    },
    /// Send datagrams of `[start_s, end_s)` twice (the copy right after the original)
    /// with `probability`.
    MulticastDuplicate {
        #[serde(default)]
        channels: Vec<String>,
        start_s: f64,
        end_s: f64,
        probability: f64,
    },
    /// Swap a datagram of `[start_s, end_s)` with the next one, with `probability`.
    MulticastReorder {
        #[serde(default)]
        channels: Vec<String>,
        start_s: f64,
        end_s: f64,
        probability: f64,
    },
    /// From `at_s` on, the channel's PCR (and PTS) jump by `jump_ms` without the
    /// discontinuity_indicator.
    PcrDiscontinuity {
        #[serde(default)]
        channels: Vec<String>,
        at_s: f64,
        #[serde(default = "default_pcr_jump")]
        jump_ms: f64,
    },
    /// The `[[https]]` service `service` goes down at `start_s` (until `end_s`): SYNs to
    /// its servers get a RST, established connections are reset at `start_s`. Players
    /// retry per `[retry]`; `migrate_share` of them switch to `migrate_to` after a delay
    /// drawn from `migrate_after_s` (counted from their first failure).
    Takedown {
        service: String,
        start_s: f64,
        #[serde(default)]
        end_s: Option<f64>,
        #[serde(default)]
        migrate_share: f64,
        #[serde(default)]
        migrate_to: Option<String>,
        #[serde(default = "default_migrate_after")]
        migrate_after_s: [f64; 2],
    },
    /// DNS name `name` answers NXDOMAIN (RFC 2308) from `start_s` (until `end_s`).
    DnsNxdomain {
        name: String,
        start_s: f64,
        #[serde(default)]
        end_s: Option<f64>,
    },
    /// DNS name `name` answers SERVFAIL from `start_s` (until `end_s`).
    DnsServfail {
        name: String,
        start_s: f64,
        #[serde(default)]
        end_s: Option<f64>,
    },
    /// The resolver sends no response to queries for `name` from `start_s` (until
    /// `end_s`); players give up after `disrupt::DNS_TIMEOUT_NS` and retry per `[retry]`.
    DnsNoanswer {
        name: String,
        start_s: f64,
        #[serde(default)]
        end_s: Option<f64>,
    },
}

fn default_pcr_jump() -> f64 {
    500.0
}
fn default_migrate_after() -> [f64; 2] {
    [5.0, 15.0]
}

/// DNS response code of a configured name (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsRcode {
    #[default]
    Noerror,
    Servfail,
    Nxdomain,
}

/// How the resolver answers one name (`[[dns.name]]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsNameConfig {
    pub name: String,
    /// CNAME chain: `name` → `cname[0]` → … → the addresses (RFC 1034 §3.6.2).
    #[serde(default)]
    pub cname: Vec<String>,
    /// Response code (default `noerror`).
    #[serde(default)]
    pub rcode: DnsRcode,
    /// Addresses answered for A / AAAA queries of names no service serves.
    #[serde(default)]
    pub v4: Vec<String>,
    #[serde(default)]
    pub v6: Vec<String>,
}

/// Periodic lookups of one name by random clients (`[[dns_lookup]]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsLookupConfig {
    pub name: String,
    /// `A` or `AAAA`.
    #[serde(default = "default_qtype")]
    pub qtype: String,
    /// One lookup every this many seconds (from `start_s`).
    pub interval_s: f64,
    #[serde(default)]
    pub start_s: f64,
}

fn default_qtype() -> String {
    "A".to_string()
}

/// Retry behaviour of players after a failed session (`[retry]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// `[first, cap]`: the k-th consecutive failure waits `min(first·2^(k-1), cap)` s.
    #[serde(default = "default_backoff")]
    pub backoff_s: [f64; 2],
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            backoff_s: default_backoff(),
        }
    }
}

fn default_backoff() -> [f64; 2] {
    [1.0, 32.0]
}

/// A group of multicast receivers (`[[igmp]]`): each joins a channel's group, answers
/// queries, optionally zaps to the next channel every `zap_interval_s` and leaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgmpConfig {
    pub name: String,
    /// IGMP version for IPv4 groups: 2 (RFC 2236) or 3 (RFC 3376). IPv6 groups use MLDv2.
    #[serde(default = "default_igmp_version")]
    pub version: u8,
    /// Receiving client hosts (distinct hosts from `network.clients`).
    pub receivers: u32,
    /// Channels watched, in zapping order (empty: every channel).
    #[serde(default)]
    pub channels: Vec<String>,
    /// First join time range.
    #[serde(default = "default_join_s")]
    pub join_s: [f64; 2],
    /// Zap to the next channel every this many seconds (0: never).
    #[serde(default)]
    pub zap_interval_s: f64,
    /// Leave the current group at this time (default: stay until the end).
    #[serde(default)]
    pub leave_s: Option<f64>,
    /// Source-specific joins (IGMPv3/MLDv2 INCLUDE mode with the channel's source).
    #[serde(default)]
    pub ssm: bool,
    /// State-change reports are sent this many times (RFC 3376 §8.1); v2 leaves once.
    #[serde(default = "default_robustness")]
    pub robustness: u8,
    /// Retransmissions of a state-change report follow within this many seconds.
    #[serde(default = "default_unsolicited")]
    pub unsolicited_interval_s: f64,
}

fn default_igmp_version() -> u8 {
    3
}
fn default_join_s() -> [f64; 2] {
    [0.0, 2.0]
}
fn default_robustness() -> u8 {
    2
}
fn default_unsolicited() -> f64 {
    1.0
}

/// The multicast router on the receivers' link (`[querier]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerierConfig {
    /// IGMP querier address (unicast IPv4).
    #[serde(default = "default_querier_v4")]
    pub address_v4: String,
    /// MLD querier address (link-local IPv6, RFC 3810 §5.1.14).
    #[serde(default = "default_querier_v6")]
    pub address_v6: String,
    /// IGMP query version: 2 or 3 (must be 3 when a `[[igmp]]` entry uses version 3).
    #[serde(default = "default_igmp_version")]
    pub version: u8,
    /// General query interval (RFC 3376 §8.2 default 125 s).
    #[serde(default = "default_query_interval")]
    pub interval_s: f64,
    /// First query time.
    #[serde(default)]
    pub first_s: f64,
    /// Maximum response time announced in queries (at most 25.5 s).
    #[serde(default = "default_max_resp")]
    pub max_resp_time_s: f64,
}

fn default_querier_v4() -> String {
    "10.20.255.254".to_string()
}
fn default_querier_v6() -> String {
    "fe80::1".to_string()
}
fn default_query_interval() -> f64 {
    125.0
}
fn default_max_resp() -> f64 {
    10.0
}

impl Scenario {
    /// Parses and validates a TOML scenario.
    pub fn from_toml(text: &str) -> Result<Scenario, Error> {
        let sc: Scenario = toml::from_str(text).map_err(|e| Error::Scenario(e.to_string()))?;
        sc.validate()?;
        Ok(sc)
    }

    /// Checks values that the types alone cannot.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Scenario(m));
        if !(self.duration_s > 0.0 && self.duration_s.is_finite() && self.duration_s < 1e7) {
            return bad(format!(
                "duration_s must be positive, got {}",
                self.duration_s
            ));
        }
        parse_rfc3339(&self.start)?;
        let n = &self.network;
        for (k, v) in [("ipv6_share", n.ipv6_share), ("vlan_share", n.vlan_share)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("network.{k} must be within 0..=1"));
            }
        }
        if n.vlan_id == 0 || n.vlan_id > 4094 {
            return bad("network.vlan_id must be within 1..=4094".into());
        }
        if n.clients == 0 {
            return bad("network.clients must be at least 1".into());
        }
        parse_mac(&n.gateway_mac)?;
        parse_prefix(&n.client_v4, n.clients as u64)?;
        parse_prefix(&n.client_v6, n.clients as u64)?;
        if n.server_ttl[0] > n.server_ttl[1] {
            return bad("network.server_ttl must be [min, max]".into());
        }
        check_range("dns.rtt_ms", self.dns.rtt_ms)?;
        parse_addr(&self.dns.resolver_v4, Some(4))?;
        parse_addr(&self.dns.resolver_v6, Some(6))?;
        for c in &self.channels {
            let g = parse_addr(&c.group, None)?;
            if !g.is_multicast() {
                return bad(format!(
                    "channel {}: group {} is not multicast",
                    c.name, c.group
                ));
            }
            if let Some(s) = &c.source {
                let s = parse_addr(s, None)?;
                if s.is_ipv4() != g.is_ipv4() {
                    return bad(format!(
                        "channel {}: source and group differ in IP version",
                        c.name
                    ));
                }
            }
            if !(1..=7).contains(&c.ts_per_datagram) {
                return bad(format!("channel {}: ts_per_datagram must be 1..=7", c.name));
            }
            if c.mux_rate_bps < 100_000 || c.mux_rate_bps > 1_000_000_000 {
                return bad(format!("channel {}: mux_rate_bps out of range", c.name));
            }
            let es = c.video_bps.unwrap_or(c.mux_rate_bps * 8 / 10) + c.audio_bps;
            if es >= c.mux_rate_bps {
                return bad(format!(
                    "channel {}: video_bps + audio_bps must stay below mux_rate_bps",
                    c.name
                ));
            }
            if !(c.pcr_interval_ms > 0.0 && c.pcr_interval_ms <= 40.0) {
                return bad(format!(
                    "channel {}: pcr_interval_ms must be in (0, 40]",
                    c.name
                ));
            }
            if !(c.psi_interval_ms >= 10.0 && c.psi_interval_ms <= 1000.0) {
                return bad(format!(
                    "channel {}: psi_interval_ms must be in [10, 1000]",
                    c.name
                ));
            }
            let pids = [c.pmt_pid, c.video_pid, c.audio_pid];
            for (i, p) in pids.iter().enumerate() {
                if *p < 0x10 || *p >= 0x1FFF || pids[..i].contains(p) {
                    return bad(format!(
                        "channel {}: PIDs must be distinct, 0x10..0x1FFE",
                        c.name
                    ));
                }
            }
            if let Some(v) = c.vlan {
                if v == 0 || v > 4094 {
                    return bad(format!("channel {}: vlan must be 1..=4094", c.name));
                }
            }
        }
        for h in &self.https {
            if h.server_v4.is_empty() {
                return bad(format!(
                    "https {}: server_v4 must list at least one address",
                    h.name
                ));
            }
            for a in &h.server_v4 {
                parse_addr(a, Some(4))?;
            }
            for a in &h.server_v6 {
                parse_addr(a, Some(6))?;
            }
            if h.host.is_empty()
                || h.host.len() > 200
                || h.host.split('.').any(|l| l.is_empty() || l.len() > 63)
            {
                return bad(format!("https {}: host is not a valid DNS name", h.name));
            }
            if h.segment_bytes[0] < 64 || h.segment_bytes[0] > h.segment_bytes[1] {
                return bad(format!(
                    "https {}: segment_bytes must be [min>=64, max]",
                    h.name
                ));
            }
            if h.request_bytes[0] < 64
                || h.request_bytes[0] > h.request_bytes[1]
                || h.request_bytes[1] > 1400
            {
                return bad(format!(
                    "https {}: request_bytes must be [min>=64, max<=1400]",
                    h.name
                ));
            }
            check_range("https.rtt_ms", h.rtt_ms)?;
            check_range("https.session_s", h.session_s)?;
            if h.session_s[0] <= 0.0 || h.segment_duration_s <= 0.0 || h.rate_bps < 10_000 {
                return bad(format!(
                    "https {}: session_s, segment_duration_s and rate_bps must be positive",
                    h.name
                ));
            }
            if !(0.0..=1.0).contains(&h.fin_share) || h.start_spread_s < 0.0 {
                return bad(format!(
                    "https {}: fin_share within 0..=1, start_spread_s >= 0",
                    h.name
                ));
            }
        }
        crate::scenario_ott::validate(&self.hls, &self.panels, &self.quic)?;
        if let Some(s) = &self.small_flows {
            if s.clients == 0 || s.servers == 0 {
                return bad("small_flows: clients and servers must be at least 1".into());
            }
            parse_prefix(&s.server_v4, s.servers as u64)?;
            parse_prefix(&s.server_v6, s.servers as u64)?;
            check_range("small_flows.rtt_ms", s.rtt_ms)?;
            // Distinct 5-tuples: every client has 28,232 ephemeral ports (32768..61000).
            if s.count > s.clients as u64 * 28_000 {
                return bad("small_flows: count exceeds clients * 28000 distinct 5-tuples".into());
            }
            parse_prefix(&n.client_v4, s.clients as u64)?;
            parse_prefix(&n.client_v6, s.clients as u64)?;
        }
        for f in &self.faults {
            match f {
                FaultConfig::MulticastLoss {
                    channels,
                    start_s,
                    end_s,
                    probability,
                } => {
                    if !(0.0..=1.0).contains(probability) || start_s > end_s {
                        return bad(
                            "multicast_loss: probability within 0..=1 and start_s <= end_s".into(),
                        );
                    }
                    for c in channels {
                        if !self.channels.iter().any(|x| &x.name == c) {
                            return bad(format!("multicast_loss: unknown channel {c}"));
                        }
                    }
                }
                // Checked by `disrupt::validate`.
                FaultConfig::MulticastDuplicate { .. }
                | FaultConfig::MulticastReorder { .. }
                | FaultConfig::PcrDiscontinuity { .. }
                | FaultConfig::Takedown { .. }
                | FaultConfig::DnsNxdomain { .. }
                | FaultConfig::DnsServfail { .. }
                | FaultConfig::DnsNoanswer { .. } => {}
            }
        }
        crate::disrupt::validate(self)?;
        crate::igmp::validate(self)?;
        Ok(())
    }
}

fn check_range(what: &str, r: [f64; 2]) -> Result<(), Error> {
    if !(r[0] >= 0.0 && r[0] <= r[1] && r[1].is_finite()) {
        return Err(Error::Scenario(format!(
            "{what} must be [min, max] with 0 <= min <= max"
        )));
    }
    Ok(())
}

/// Parses an address, optionally requiring an IP version.
pub fn parse_addr(s: &str, version: Option<u8>) -> Result<IpAddr, Error> {
    let a: IpAddr = s
        .parse()
        .map_err(|_| Error::Scenario(format!("not an IP address: {s}")))?;
    match (version, a) {
        (Some(4), IpAddr::V6(_)) | (Some(6), IpAddr::V4(_)) => Err(Error::Scenario(format!(
            "{s}: expected an IPv{} address",
            version.unwrap_or(0)
        ))),
        _ => Ok(a),
    }
}

/// Parses `addr/len` and checks that `hosts` addresses (numbered from 1) fit inside.
pub fn parse_prefix(s: &str, hosts: u64) -> Result<(IpAddr, u8), Error> {
    let err = || Error::Scenario(format!("not a prefix: {s}"));
    let (a, l) = s.split_once('/').ok_or_else(err)?;
    let addr: IpAddr = a.parse().map_err(|_| err())?;
    let len: u8 = l.parse().map_err(|_| err())?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    if len > bits {
        return Err(err());
    }
    let host_bits = (bits - len).min(64) as u32;
    let room = if host_bits >= 64 {
        u64::MAX
    } else {
        (1u64 << host_bits).saturating_sub(2)
    };
    if hosts > room {
        return Err(Error::Scenario(format!(
            "prefix {s} cannot hold {hosts} hosts"
        )));
    }
    Ok((addr, len))
}

/// The `n`-th host (n >= 1) of a prefix.
pub fn prefix_host(base: IpAddr, n: u64) -> IpAddr {
    match base {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(n as u32))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(n as u128))),
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], Error> {
    let mut m = [0u8; 6];
    let mut it = s.split(':');
    for b in m.iter_mut() {
        let p = it
            .next()
            .ok_or_else(|| Error::Scenario(format!("not a MAC address: {s}")))?;
        *b = u8::from_str_radix(p, 16)
            .map_err(|_| Error::Scenario(format!("not a MAC address: {s}")))?;
    }
    if it.next().is_some() {
        return Err(Error::Scenario(format!("not a MAC address: {s}")));
    }
    Ok(m)
}

/// Parses an RFC 3339 UTC time (`YYYY-MM-DDTHH:MM:SS[.frac]Z`) to Unix nanoseconds.
pub fn parse_rfc3339(s: &str) -> Result<u64, Error> {
    let err = || {
        Error::Scenario(format!(
            "start must look like 2024-03-01T20:00:00Z, got {s}"
        ))
    };
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
        || b[b.len() - 1] != b'Z'
    {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u64, Error> {
        s.get(r).and_then(|t| t.parse::<u64>().ok()).ok_or_else(err)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1970..=2105).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || se > 60
    {
        return Err(err());
    }
    let mut frac_ns = 0u64;
    let rest = &s[19..s.len() - 1];
    if !rest.is_empty() {
        let digits = rest.strip_prefix('.').ok_or_else(err)?;
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        frac_ns = digits.parse::<u64>().map_err(|_| err())? * 10u64.pow(9 - digits.len() as u32);
    }
    let days = days_from_civil(y as i64, mo as i64, d as i64);
    let secs = days as u64 * 86_400 + h * 3600 + mi * 60 + se;
    Ok(secs * 1_000_000_000 + frac_ns)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        // 2024-03-01T20:00:00Z = 1709323200 (checked with `date -u -d ... +%s`).
        assert_eq!(
            parse_rfc3339("2024-03-01T20:00:00Z").unwrap(),
            1_709_323_200_000_000_000
        );
        assert_eq!(
            parse_rfc3339("2024-03-01T20:00:00.5Z").unwrap(),
            1_709_323_200_500_000_000
        );
        assert!(parse_rfc3339("2024-03-01 20:00").is_err());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(Scenario::from_toml("duration_s = 1.0\nbogus = 3").is_err());
        assert!(Scenario::from_toml("duration_s = -1.0").is_err());
        let bad_group =
            "duration_s = 1.0\n[[channel]]\nname='a'\ngroup='10.0.0.1'\nmux_rate_bps=1000000\n";
        assert!(Scenario::from_toml(bad_group).is_err());
        assert!(Scenario::from_toml("duration_s = 1.0").is_ok());
    }
}
