//! Scenario tables of the over-the-top traffic kinds: `[[hls]]` (HLS over cleartext
//! HTTP/1.1), `[[panel]]` (IPTV panel: progressive MPEG-TS over HTTP with credentials
//! in URLs) and `[[quic]]` (QUIC v1 players). Re-exported from [`crate::scenario`].

use serde::{Deserialize, Serialize};

use crate::scenario::parse_addr;
use crate::Error;

/// One rung of an HLS bitrate ladder (an `#EXT-X-STREAM-INF` entry, RFC 8216 §4.3.4.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    /// Path element of the variant: `/hls/<name>/index.m3u8`, `/hls/<name>/seg<N>.ts`.
    pub name: String,
    /// BANDWIDTH attribute and the segment bitrate: a segment is
    /// `bandwidth_bps × segment_duration_s / 8` bytes (whole TS packets for `ts`).
    pub bandwidth_bps: u64,
    /// RESOLUTION attribute, `WxH`.
    pub resolution: String,
}

/// A bitrate switch: from `at_s` on, players fetch `variant` (an index into `variants`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchConfig {
    pub at_s: f64,
    pub variant: usize,
}

/// Media segment container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentFormat {
    /// MPEG-TS segments (`.ts`, `video/mp2t`).
    Ts,
    /// Fragmented MP4 segments (`.m4s`, `video/iso.segment`) with an `init.mp4` map.
    Fmp4,
    /// MPEG-DASH: fragmented MP4 segments described by one MPD (`/dash/manifest.mpd`,
    /// ISO/IEC 23009-1) with a SegmentTemplate (`$RepresentationID$`, `$Number$`); the
    /// player computes segment addresses from it and fetches no media playlists.
    Dash,
}

/// HLS players over cleartext HTTP/1.1 (RFC 8216 playlists, RFC 9112 messages).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HlsConfig {
    pub name: String,
    /// Host header and DNS name.
    pub host: String,
    pub server_v4: Vec<String>,
    #[serde(default)]
    pub server_v6: Vec<String>,
    #[serde(default = "default_http_port")]
    pub port: u16,
    /// Concurrent players.
    pub clients: u32,
    /// The bitrate ladder, lowest first by convention.
    pub variants: Vec<VariantConfig>,
    /// Variant index players start with.
    #[serde(default)]
    pub start_variant: usize,
    /// Bitrate switches at configured times (relative to the capture start).
    #[serde(default)]
    pub switches: Vec<SwitchConfig>,
    /// Media duration of every segment (the `#EXTINF` value); `#EXT-X-TARGETDURATION`
    /// is its ceiling.
    #[serde(default = "default_seg_dur")]
    pub segment_duration_s: f64,
    /// HLS: each segment's `#EXTINF` differs from `segment_duration_s` by up to this
    /// fraction (deterministic by media sequence number, to the millisecond), as encoders
    /// that cut at keyframes advertise; its body is its rendition's bandwidth × its own
    /// duration. 0 (the default): every segment is `segment_duration_s`. Not for DASH.
    #[serde(default)]
    pub extinf_variation: f64,
    #[serde(default = "default_format")]
    pub format: SegmentFormat,
    /// Live (sliding window, refreshed every target duration) or VOD (`#EXT-X-ENDLIST`).
    #[serde(default = "default_true")]
    pub live: bool,
    /// Segments listed in a live media playlist.
    #[serde(default = "default_window")]
    pub window_segments: u32,
    /// Segments of a VOD playlist.
    #[serde(default = "default_vod_segments")]
    pub vod_segments: u32,
    /// Startup burst: segments fetched back to back before steady pacing.
    #[serde(default = "default_startup")]
    pub startup_segments: u32,
    /// Requests per keep-alive connection before the client closes it and opens another.
    #[serde(default = "default_per_conn")]
    pub requests_per_connection: u32,
    /// Server send rate of a response burst.
    #[serde(default = "default_hls_rate")]
    pub rate_bps: u64,
    #[serde(default = "default_rtt")]
    pub rtt_ms: [f64; 2],
    #[serde(default = "default_true")]
    pub dns_lookup: bool,
    #[serde(default = "default_spread")]
    pub start_spread_s: f64,
    #[serde(default = "default_hls_ua")]
    pub user_agent: String,
}

/// One live channel of a panel (`/live/USER/PASS/<id>.ts`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelStreamConfig {
    pub id: u32,
    pub name: String,
    /// Transport stream rate; the body is paced at this rate.
    pub mux_rate_bps: u64,
}

/// An IPTV panel: `player_api.php` JSON calls, then progressive MPEG-TS streams.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelConfig {
    pub name: String,
    pub host: String,
    pub server_v4: Vec<String>,
    #[serde(default)]
    pub server_v6: Vec<String>,
    #[serde(default = "default_panel_port")]
    pub port: u16,
    pub clients: u32,
    /// Account in every URL (letters, digits, `.`, `_`, `-`).
    pub username: String,
    pub password: String,
    pub streams: Vec<PanelStreamConfig>,
    /// How long a player watches one channel before zapping to the next.
    #[serde(default = "default_watch")]
    pub watch_s: [f64; 2],
    /// TS packets per TCP segment of the stream body (1..=7).
    #[serde(default = "default_ts_per_segment")]
    pub ts_per_segment: u8,
    /// Make the two `player_api.php` calls before the first stream.
    #[serde(default = "default_true")]
    pub api_calls: bool,
    #[serde(default = "default_rtt")]
    pub rtt_ms: [f64; 2],
    #[serde(default = "default_true")]
    pub dns_lookup: bool,
    #[serde(default = "default_spread")]
    pub start_spread_s: f64,
    #[serde(default = "default_panel_ua")]
    pub user_agent: String,
}

/// QUIC v1 players fetching segment-sized bursts (HTTP/3-like, ALPN `h3`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuicConfig {
    pub name: String,
    /// SNI and DNS name.
    pub host: String,
    pub server_v4: Vec<String>,
    #[serde(default)]
    pub server_v6: Vec<String>,
    #[serde(default = "default_quic_port")]
    pub port: u16,
    pub clients: u32,
    /// UDP payload bytes of one response burst (1-RTT packets).
    pub segment_bytes: [u64; 2],
    #[serde(default = "default_seg_dur")]
    pub segment_duration_s: f64,
    /// UDP payload bytes of a request packet.
    #[serde(default = "default_quic_req")]
    pub request_bytes: [u32; 2],
    #[serde(default = "default_rtt")]
    pub rtt_ms: [f64; 2],
    #[serde(default = "default_quic_rate")]
    pub rate_bps: u64,
    #[serde(default = "default_session")]
    pub session_s: [f64; 2],
    #[serde(default = "default_true")]
    pub dns_lookup: bool,
    #[serde(default = "default_spread")]
    pub start_spread_s: f64,
    /// ALPN offered in the ClientHello.
    #[serde(default = "default_alpn_h3")]
    pub alpn: Vec<String>,
    /// Bytes of padding extension in the ClientHello (0: none), standing in for a
    /// post-quantum key share: past about 1,100 bytes of ClientHello the client sends it
    /// in several Initial packets.
    #[serde(default)]
    pub client_hello_padding: usize,
}

fn default_http_port() -> u16 {
    80
}
fn default_panel_port() -> u16 {
    8080
}
fn default_quic_port() -> u16 {
    443
}
fn default_seg_dur() -> f64 {
    4.0
}
fn default_format() -> SegmentFormat {
    SegmentFormat::Ts
}
fn default_true() -> bool {
    true
}
fn default_window() -> u32 {
    6
}
fn default_vod_segments() -> u32 {
    100
}
fn default_startup() -> u32 {
    3
}
fn default_per_conn() -> u32 {
    10
}
fn default_hls_rate() -> u64 {
    20_000_000
}
fn default_quic_rate() -> u64 {
    50_000_000
}
fn default_rtt() -> [f64; 2] {
    [10.0, 40.0]
}
fn default_spread() -> f64 {
    2.0
}
fn default_session() -> [f64; 2] {
    [60.0, 300.0]
}
fn default_watch() -> [f64; 2] {
    [20.0, 60.0]
}
fn default_ts_per_segment() -> u8 {
    7
}
fn default_quic_req() -> [u32; 2] {
    [40, 300]
}
fn default_alpn_h3() -> Vec<String> {
    vec!["h3".to_string()]
}
fn default_hls_ua() -> String {
    "AppleCoreMedia/1.0.0 (capgen HLS player)".to_string()
}
fn default_panel_ua() -> String {
    "VLC/3.0.20 LibVLC/3.0.20".to_string()
}

fn bad<T>(m: String) -> Result<T, Error> {
    Err(Error::Scenario(m))
}

fn check_host(what: &str, name: &str, host: &str) -> Result<(), Error> {
    if host.is_empty()
        || host.len() > 200
        || host.split('.').any(|l| l.is_empty() || l.len() > 63)
        || !host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
    {
        return bad(format!("{what} {name}: host is not a valid DNS name"));
    }
    Ok(())
}

fn check_servers(what: &str, name: &str, v4: &[String], v6: &[String]) -> Result<(), Error> {
    if v4.is_empty() {
        return bad(format!(
            "{what} {name}: server_v4 must list at least one address"
        ));
    }
    for a in v4 {
        parse_addr(a, Some(4))?;
    }
    for a in v6 {
        parse_addr(a, Some(6))?;
    }
    Ok(())
}

fn check_range(what: &str, name: &str, r: [f64; 2]) -> Result<(), Error> {
    if !(r[0] >= 0.0 && r[0] <= r[1] && r[1].is_finite()) {
        return bad(format!(
            "{what} {name}: ranges must be [min, max], 0 <= min <= max"
        ));
    }
    Ok(())
}

/// A path element or credential: non-empty, URL-safe without escaping (RFC 3986 §2.3).
fn url_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
}

/// Validates the `[[hls]]`, `[[panel]]` and `[[quic]]` tables.
pub(crate) fn validate(
    hls: &[HlsConfig],
    panels: &[PanelConfig],
    quic: &[QuicConfig],
) -> Result<(), Error> {
    for h in hls {
        let n = &h.name;
        check_host("hls", n, &h.host)?;
        check_servers("hls", n, &h.server_v4, &h.server_v6)?;
        check_range("hls", n, h.rtt_ms)?;
        if h.variants.is_empty() || h.clients == 0 {
            return bad(format!("hls {n}: needs clients and at least one variant"));
        }
        for v in &h.variants {
            let res_ok = v
                .resolution
                .split_once('x')
                .is_some_and(|(w, h)| w.parse::<u32>().is_ok() && h.parse::<u32>().is_ok());
            if !url_safe(&v.name) || !res_ok {
                return bad(format!(
                    "hls {n}: variant names must be URL-safe and resolutions WxH"
                ));
            }
            if v.bandwidth_bps < 10_000 || v.bandwidth_bps > 1_000_000_000 {
                return bad(format!("hls {n}: bandwidth_bps out of range"));
            }
        }
        if h.start_variant >= h.variants.len()
            || h.switches.iter().any(|s| s.variant >= h.variants.len())
        {
            return bad(format!("hls {n}: variant index out of range"));
        }
        if !(h.segment_duration_s >= 0.5 && h.segment_duration_s <= 30.0) {
            return bad(format!("hls {n}: segment_duration_s must be in [0.5, 30]"));
        }
        if !(0.0..0.5).contains(&h.extinf_variation)
            || (h.extinf_variation > 0.0 && h.format == SegmentFormat::Dash)
        {
            return bad(format!(
                "hls {n}: extinf_variation must be in [0, 0.5), and 0 for dash"
            ));
        }
        if h.window_segments == 0
            || h.vod_segments == 0
            || h.startup_segments == 0
            || h.startup_segments > h.window_segments.max(h.vod_segments)
            || h.requests_per_connection == 0
            || h.rate_bps < 10_000
            || h.start_spread_s < 0.0
        {
            return bad(format!(
                "hls {n}: window/vod/startup segments, requests_per_connection and rate_bps \
                 must be positive, startup_segments within the playlist"
            ));
        }
        if h.user_agent.bytes().any(|c| !(0x20..=0x7E).contains(&c)) {
            return bad(format!("hls {n}: user_agent must be printable ASCII"));
        }
    }
    for p in panels {
        let n = &p.name;
        check_host("panel", n, &p.host)?;
        check_servers("panel", n, &p.server_v4, &p.server_v6)?;
        check_range("panel", n, p.rtt_ms)?;
        check_range("panel", n, p.watch_s)?;
        if p.clients == 0 || p.streams.is_empty() || p.watch_s[0] <= 0.0 {
            return bad(format!(
                "panel {n}: needs clients, streams and a positive watch_s"
            ));
        }
        if !url_safe(&p.username) || !url_safe(&p.password) {
            return bad(format!(
                "panel {n}: username and password must be 1-64 of [A-Za-z0-9._-]"
            ));
        }
        if !(1..=7).contains(&p.ts_per_segment) || p.start_spread_s < 0.0 {
            return bad(format!("panel {n}: ts_per_segment must be 1..=7"));
        }
        for s in &p.streams {
            if s.mux_rate_bps < 100_000 || s.mux_rate_bps > 100_000_000 {
                return bad(format!("panel {n}: stream mux_rate_bps out of range"));
            }
            if s.name.contains('"') || s.name.contains('\\') || s.name.bytes().any(|c| c < 0x20) {
                return bad(format!("panel {n}: stream names must be plain text"));
            }
        }
        if p.user_agent.bytes().any(|c| !(0x20..=0x7E).contains(&c)) {
            return bad(format!("panel {n}: user_agent must be printable ASCII"));
        }
    }
    for q in quic {
        let n = &q.name;
        check_host("quic", n, &q.host)?;
        check_servers("quic", n, &q.server_v4, &q.server_v6)?;
        check_range("quic", n, q.rtt_ms)?;
        check_range("quic", n, q.session_s)?;
        if q.clients == 0
            || q.segment_bytes[0] < 64
            || q.segment_bytes[0] > q.segment_bytes[1]
            || q.request_bytes[0] < 20
            || q.request_bytes[0] > q.request_bytes[1]
            || q.request_bytes[1] > 1200
            || q.session_s[0] <= 0.0
            || q.segment_duration_s <= 0.0
            || q.rate_bps < 10_000
            || q.start_spread_s < 0.0
        {
            return bad(format!(
                "quic {n}: clients, segment_bytes [>=64, max], request_bytes [>=20, <=1200], \
                 session_s, segment_duration_s and rate_bps must be valid"
            ));
        }
        if q.alpn.is_empty() || q.alpn.iter().any(|a| a.is_empty() || a.len() > 255) {
            return bad(format!("quic {n}: alpn must list 1-255 byte names"));
        }
    }
    Ok(())
}
