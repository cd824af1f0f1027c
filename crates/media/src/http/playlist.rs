//! Playlists (HLS RFC 8216, DASH ISO/IEC 23009-1) read into a [`Playlist`] summary, and
//! the [`PlaylistIndex`] that remembers what they advertise (see the
//! [module documentation](super#playlists)).

use std::collections::VecDeque;

use foldhash::fast::RandomState;
use hashbrown::HashMap;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::template::{host_of, path_template};
use super::{HttpTransaction, Role};

/// Most variants and advertised segment templates kept per playlist.
pub const MAX_PLAYLIST_ENTRIES: usize = 64;
/// Longest codecs string kept.
const MAX_CODECS: usize = 64;
/// Most XML elements read in an MPD (a bound on the work per playlist).
const MAX_XML_EVENTS: usize = 100_000;
/// Most segments counted from one SegmentTimeline entry's repeat count.
const MAX_REPEAT: u64 = 1_000_000;
/// Segments of one rendition whose own advertised durations are kept (by the number their
/// URL carries); later ones get the rendition's mean.
pub const MAX_LISTED_DURATIONS: usize = 256;

/// Which kind of playlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlaylistKind {
    /// An HLS master (multivariant) playlist: variants, no segments (RFC 8216
    /// section 4.3.4).
    HlsMaster,
    /// An HLS media playlist: segments (RFC 8216 section 4.3.3).
    HlsMedia,
    /// A DASH Media Presentation Description.
    Dash,
}

impl PlaylistKind {
    /// The name used in tables: `hls_master`, `hls_media`, `dash`.
    pub fn name(self) -> &'static str {
        match self {
            PlaylistKind::HlsMaster => "hls_master",
            PlaylistKind::HlsMedia => "hls_media",
            PlaylistKind::Dash => "dash",
        }
    }
}

/// A rendition's advertised bitrate and picture size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rendition {
    /// `BANDWIDTH` (HLS) or `@bandwidth` (DASH), bit/s.
    pub bandwidth_bps: Option<u64>,
    /// `RESOLUTION` width or `@width`, pixels.
    pub width: Option<u32>,
    /// `RESOLUTION` height or `@height`, pixels.
    pub height: Option<u32>,
}

/// A variant of an HLS master playlist or a representation of an MPD.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// Host of the variant's media playlist (HLS) or of its segments (DASH), when known.
    pub host: Option<String>,
    /// Path template of the variant's media playlist (HLS) or its media segment template
    /// (DASH; empty without one).
    pub template: String,
    /// Bitrate and picture size.
    pub rendition: Rendition,
    /// `CODECS` / `@codecs` (at most 64 bytes).
    pub codecs: Option<String>,
    /// HLS: the media playlist's path, resolved (memory only, never written out: it may
    /// carry tokens); empty for DASH.
    pub(crate) path: Hidden,
}

/// A URL path kept in memory only: its `Debug` does not show it.
#[derive(Clone, Default, PartialEq)]
pub(crate) struct Hidden(pub(crate) String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hidden(..)")
    }
}

/// Segments a playlist advertises under one host and path template.
#[derive(Clone, Debug, PartialEq)]
pub struct Advert {
    /// Host of the segments, when known.
    pub host: Option<String>,
    /// Their path template.
    pub template: String,
    /// Mean advertised duration, seconds.
    pub duration_s: f64,
    /// How many segments were advertised under this template.
    pub segments: u64,
    /// The rendition they belong to (DASH: the representation's; HLS: filled by a
    /// [`PlaylistIndex`] from the master playlist's variant); `None` when unknown or when
    /// renditions of different bitrates share the template.
    pub rendition: Option<Rendition>,
}

/// What one playlist says.
#[derive(Clone, Debug, PartialEq)]
pub struct Playlist {
    /// Its kind.
    pub kind: PlaylistKind,
    /// Host it was fetched from, when known.
    pub host: Option<String>,
    /// Path template it was fetched at (empty when the request was not seen).
    pub template: String,
    /// `EXT-X-TARGETDURATION` (HLS media), `@maxSegmentDuration` or else the longest
    /// segment duration (DASH), seconds.
    pub target_duration_s: Option<f64>,
    /// Media segments advertised (HLS media playlist; DASH: the most of any
    /// representation).
    pub segments: u64,
    /// Their total duration, seconds (HLS media; DASH: of the representation with the
    /// most segments).
    pub duration_s: f64,
    /// `EXT-X-MEDIA-SEQUENCE` (HLS media) or `@startNumber` (DASH).
    pub media_sequence: Option<u64>,
    /// Live (HLS: no `EXT-X-ENDLIST`; DASH: `@type="dynamic"`).
    pub live: bool,
    /// Variants (HLS master) or representations (DASH), at most
    /// [`MAX_PLAYLIST_ENTRIES`].
    pub variants: Vec<Variant>,
    /// Advertised segments by template, at most [`MAX_PLAYLIST_ENTRIES`].
    pub adverts: Vec<Advert>,
    /// DASH: each representation's media segment URLs, at most
    /// [`MAX_PLAYLIST_ENTRIES`] (see [`MediaPattern`]).
    pub patterns: Vec<MediaPattern>,
    /// More variants or templates than kept.
    pub truncated: bool,
    /// The path it was fetched at, resolved (memory only).
    pub(crate) path: Hidden,
}

/// Stands for `$Number$` or `$Time$` in a [`MediaPattern`]: a byte no URL path holds.
const NUMBER: char = '\0';

/// A rendition's media segment URLs, and what those segments carry. DASH: a
/// representation's SegmentTemplate `@media` resolved against the BaseURLs, with
/// `$Number$` and `$Time$` standing for any decimal number. HLS: the URLs a media
/// playlist lists under one template, with the digit runs that differ between them (the
/// sequence number) standing for any number. Path templates cannot tell representations apart
/// whose ids hold digits (`360p/seg$Number$.m4s` and `720p/…` both template to
/// `/{n}p/seg{n}.m4s`); the pattern matches a request's path exactly. Kept in memory
/// only and never written out: an MPD's URLs may carry tokens.
#[derive(Clone, PartialEq)]
pub struct MediaPattern {
    host: Option<String>,
    pattern: String,
    /// The mean advertised duration of its segments, for those not in `durations`.
    pub duration_s: f64,
    /// The representation's bandwidth and picture size.
    pub rendition: Rendition,
    /// Listed segments' own advertised durations (HLS `EXTINF`, DASH `S@d`), by the
    /// number their URL carries at the pattern's last number (HLS: the sequence digits;
    /// DASH: `$Number$` or `$Time$`), sorted by it, at most [`MAX_LISTED_DURATIONS`].
    durations: Vec<(u64, f64)>,
}

impl std::fmt::Debug for MediaPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPattern")
            .field("duration_s", &self.duration_s)
            .field("rendition", &self.rendition)
            .finish_non_exhaustive()
    }
}

impl MediaPattern {
    /// Whether a request for `path` (its query, if any, is not compared) at `host` is
    /// one of these segments.
    pub fn matches(&self, host: Option<&str>, path: &str) -> bool {
        self.number_in(host, path).is_some()
    }

    /// The advertised duration of the segment at `path`: its own when listed, else the
    /// mean; `None` when `path` is not one of these segments.
    pub fn duration_of(&self, host: Option<&str>, path: &str) -> Option<f64> {
        let n = self.number_in(host, path)?;
        let own = n.and_then(|n| {
            self.durations
                .binary_search_by_key(&n, |&(k, _)| k)
                .ok()
                .map(|i| self.durations[i].1)
        });
        Some(own.unwrap_or(self.duration_s))
    }

    /// `None` when `path` at `host` is not one of these segments, else the number at the
    /// pattern's last number (`None` when it has none or the number does not fit 64 bits).
    fn number_in(&self, host: Option<&str>, path: &str) -> Option<Option<u64>> {
        if self.host.as_deref().is_some_and(|h| Some(h) != host) {
            return None;
        }
        let path = path.split(['?', '#']).next().unwrap_or("");
        let mut parts = self.pattern.split(NUMBER);
        let mut rest = parts.next().and_then(|first| path.strip_prefix(first))?;
        let mut last = None;
        for literal in parts {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            last = rest[..digits].parse::<u64>().ok();
            rest = rest[digits..].strip_prefix(literal)?;
        }
        rest.is_empty().then_some(last)
    }

    /// Keeps listed segments' own durations: (number, seconds), any order, repeats
    /// keeping the last; at most [`MAX_LISTED_DURATIONS`].
    fn listed(mut self, mut durations: Vec<(u64, f64)>) -> MediaPattern {
        durations.truncate(MAX_LISTED_DURATIONS);
        durations.reverse();
        durations.sort_by_key(|&(n, _)| n);
        durations.dedup_by_key(|&mut (n, _)| n);
        self.durations = durations;
        self
    }
}

/// The URL paths of one playlist's segments under one template, as runs of digits and
/// of other bytes: the digit runs that differ between segments (their sequence numbers)
/// become [`NUMBER`] in a [`MediaPattern`]; the rest (the rendition's directory or name,
/// digits included) stays as it is.
struct Shape {
    runs: Vec<(bool, String)>,
    varies: Vec<bool>,
    paths: u32,
}

impl Shape {
    fn runs(path: &str) -> Vec<(bool, String)> {
        let mut runs: Vec<(bool, String)> = Vec::new();
        for c in path.chars() {
            let digit = c.is_ascii_digit();
            match runs.last_mut() {
                Some((d, r)) if *d == digit => r.push(c),
                _ => runs.push((digit, c.to_string())),
            }
        }
        runs
    }

    fn new(path: &str) -> Shape {
        let runs = Shape::runs(path);
        Shape {
            varies: vec![false; runs.len()],
            runs,
            paths: 1,
        }
    }

    fn add(&mut self, path: &str) {
        let runs = Shape::runs(path);
        // Another shape under the same template (a different digit layout): only the
        // first is kept.
        if runs.len() != self.runs.len()
            || runs
                .iter()
                .zip(&self.runs)
                .any(|((d, r), (d0, r0))| d != d0 || (!d && r != r0))
        {
            return;
        }
        for ((v, (_, r)), (_, r0)) in self.varies.iter_mut().zip(&runs).zip(&self.runs) {
            *v |= r != r0;
        }
        self.paths += 1;
    }

    /// The pattern; from a lone segment, its last digit run is taken for the number.
    /// `None` when no digit run varies among several (one URL listed again and again).
    fn pattern(&self) -> Option<String> {
        let mut varies = self.varies.clone();
        if self.paths == 1 {
            let last = self.runs.iter().rposition(|(d, _)| *d)?;
            varies[last] = true;
        }
        if !varies.iter().any(|v| *v) {
            return None;
        }
        Some(
            self.runs
                .iter()
                .zip(&varies)
                .map(|((_, r), v)| if *v { NUMBER.to_string() } else { r.clone() })
                .collect(),
        )
    }
}

impl Playlist {
    fn new(kind: PlaylistKind, host: Option<&str>, path: &str) -> Playlist {
        Playlist {
            kind,
            host: host.map(str::to_owned),
            template: if path.is_empty() {
                String::new()
            } else {
                path_template(path)
            },
            target_duration_s: None,
            segments: 0,
            duration_s: 0.0,
            media_sequence: None,
            live: false,
            variants: Vec::new(),
            adverts: Vec::new(),
            patterns: Vec::new(),
            truncated: false,
            path: Hidden(if path.is_empty() {
                String::new()
            } else {
                resolve(None, "/", path).1
            }),
        }
    }

    /// Reads an HLS playlist (RFC 8216) with `m3u8-rs`. `host` and `path` are where it
    /// was fetched (its request target, raw: only templates of it are kept), used to
    /// resolve relative URIs; pass an empty path when unknown. `None` when it does not
    /// parse.
    pub fn parse_hls(body: &[u8], host: Option<&str>, path: &str) -> Option<Playlist> {
        // m3u8-rs reads UTF-8 text; anything else is not a playlist.
        std::str::from_utf8(body).ok()?;
        if !body.trim_ascii_start().starts_with(b"#EXTM3U") {
            return None;
        }
        match m3u8_rs::parse_playlist_res(body).ok()? {
            m3u8_rs::Playlist::MasterPlaylist(m) => {
                let mut pl = Playlist::new(PlaylistKind::HlsMaster, host, path);
                for v in m.variants.iter().filter(|v| !v.is_i_frame) {
                    if pl.variants.len() == MAX_PLAYLIST_ENTRIES {
                        pl.truncated = true;
                        break;
                    }
                    let (h, p) = resolve(host, path, &v.uri);
                    pl.variants.push(Variant {
                        host: h,
                        template: path_template(&p),
                        rendition: Rendition {
                            bandwidth_bps: Some(v.bandwidth),
                            width: v.resolution.and_then(|r| u32::try_from(r.width).ok()),
                            height: v.resolution.and_then(|r| u32::try_from(r.height).ok()),
                        },
                        codecs: v.codecs.as_deref().map(codecs),
                        path: Hidden(p.split(['?', '#']).next().unwrap_or("").to_owned()),
                    });
                }
                Some(pl)
            }
            m3u8_rs::Playlist::MediaPlaylist(m) => {
                let mut pl = Playlist::new(PlaylistKind::HlsMedia, host, path);
                pl.target_duration_s = Some(m.target_duration as f64);
                pl.media_sequence = Some(m.media_sequence);
                pl.live = !m.end_list;
                let mut adverts = Adverts::default();
                let mut shapes: Vec<(Option<String>, String, Shape)> = Vec::new();
                // Each segment's path and EXTINF, for the patterns' own durations.
                let mut listed: Vec<(Option<String>, String, f64)> = Vec::new();
                for s in &m.segments {
                    // m3u8-rs reads EXTINF as f32: its shortest decimal form is the
                    // value written (3.8, not 3.7999999523).
                    let d = s.duration.to_string().parse().unwrap_or(0.0);
                    pl.segments += 1;
                    pl.duration_s += d;
                    let (h, p) = resolve(host, path, &s.uri);
                    let template = path_template(&p);
                    let p = p.split(['?', '#']).next().unwrap_or("");
                    let room = shapes.len() < MAX_PLAYLIST_ENTRIES;
                    match shapes
                        .iter_mut()
                        .find(|(sh, t, _)| *sh == h && *t == template)
                    {
                        Some((_, _, shape)) => shape.add(p),
                        None if room => shapes.push((h.clone(), template.clone(), Shape::new(p))),
                        None => {}
                    }
                    if listed.len() < MAX_LISTED_DURATIONS * MAX_PLAYLIST_ENTRIES {
                        listed.push((h.clone(), p.to_owned(), d));
                    }
                    adverts.add(h, template, d, 1, None);
                }
                adverts.into_playlist(&mut pl);
                // Each template's segment URLs as one pattern, their rendition unknown
                // until an index knows whose media playlist this is.
                for (h, template, shape) in shapes {
                    let Some(pattern) = shape.pattern() else {
                        continue;
                    };
                    let Some(a) = pl
                        .adverts
                        .iter()
                        .find(|a| a.host == h && a.template == template)
                    else {
                        continue;
                    };
                    let p = MediaPattern {
                        host: h,
                        pattern,
                        duration_s: a.duration_s,
                        rendition: Rendition::default(),
                        durations: Vec::new(),
                    };
                    let own = listed
                        .iter()
                        .filter_map(|(lh, path, d)| Some((p.number_in(lh.as_deref(), path)??, *d)))
                        .collect();
                    pl.patterns.push(p.listed(own));
                }
                Some(pl)
            }
        }
    }

    /// Reads a DASH MPD (ISO/IEC 23009-1) with `quick-xml`: Period, AdaptationSet and
    /// Representation (bandwidth, width, height, codecs, inherited down), BaseURL,
    /// SegmentTemplate (`@media`, `@duration`, `@timescale`, `@startNumber`, inherited
    /// down) and SegmentTimeline (`S@d`, `S@r`). SegmentList and SegmentBase are not read.
    /// `host` and `path` as for [`Playlist::parse_hls`]. `None` when it is not XML with
    /// an `MPD` root.
    pub fn parse_dash(body: &[u8], host: Option<&str>, path: &str) -> Option<Playlist> {
        let text = std::str::from_utf8(body).ok()?;
        let mut reader = Reader::from_str(text);
        let mut pl = Playlist::new(PlaylistKind::Dash, host, path);
        let mut st = Mpd::default();
        let mut seen_root = false;
        for _ in 0..MAX_XML_EVENTS {
            let ev = reader.read_event().ok()?;
            match ev {
                Event::Start(e) => {
                    if !seen_root && e.local_name().as_ref() != b"MPD" {
                        return None;
                    }
                    seen_root = true;
                    st.open(&e, &mut pl, false, host, path);
                }
                Event::Empty(e) => {
                    if !seen_root {
                        return None;
                    }
                    st.open(&e, &mut pl, true, host, path);
                }
                Event::End(e) => st.close(e.local_name().as_ref(), host, path, &mut pl),
                Event::Text(t) if st.in_base_url => {
                    if let Ok(s) = t.decode() {
                        st.text.push_str(s.trim());
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !seen_root {
            return None;
        }
        st.adverts.into_playlist(&mut pl);
        if pl.target_duration_s.is_none() && st.longest_s > 0.0 {
            pl.target_duration_s = Some(st.longest_s);
        }
        Some(pl)
    }
}

fn codecs(s: &str) -> String {
    let mut end = s.len().min(MAX_CODECS);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Resolves a playlist URI against where the playlist was fetched: absolute URLs give
/// their own host, `/...` the playlist's host, others are relative to the playlist's
/// directory (RFC 3986 section 5.2, without query inheritance; `.` and `..` segments
/// removed). Returns the host and the raw path.
fn resolve(base_host: Option<&str>, base_path: &str, uri: &str) -> (Option<String>, String) {
    let uri = uri.trim();
    let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        Some(&uri[7..])
    } else if lower.starts_with("https://") {
        Some(&uri[8..])
    } else {
        uri.strip_prefix("//")
    };
    if let Some(rest) = rest {
        let (auth, p) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let p = if p.starts_with('/') {
            p.to_owned()
        } else {
            format!("/{p}")
        };
        return (host_of(auth.as_bytes()), p);
    }
    let host = base_host.map(str::to_owned);
    if uri.starts_with('/') {
        return (host, uri.to_owned());
    }
    let base = base_path.split(['?', '#']).next().unwrap_or("");
    let base = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
        .map_or(base, |r| r.find('/').map_or("/", |i| &r[i..]));
    let dir = base.rfind('/').map_or("/", |i| &base[..=i]);
    let joined = format!("{dir}{uri}");
    (host, remove_dots(&joined))
}

/// Removes `.` and `..` segments from a path (RFC 3986 section 5.2.4), the query kept.
fn remove_dots(path: &str) -> String {
    let (p, q) = match path.find('?') {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    };
    if !p.contains("/.") {
        return path.to_owned();
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}{q}", out.join("/"))
}

/// Adverts being gathered, merged by host and template.
#[derive(Default)]
struct Adverts {
    list: Vec<Advert>,
    truncated: bool,
}

impl Adverts {
    fn add(
        &mut self,
        host: Option<String>,
        template: String,
        duration_s: f64,
        n: u64,
        rendition: Option<Rendition>,
    ) {
        if let Some(a) = self
            .list
            .iter_mut()
            .find(|a| a.host == host && a.template == template)
        {
            let total = a.duration_s * a.segments as f64 + duration_s * n as f64;
            a.segments += n;
            a.duration_s = total / a.segments as f64;
            if a.rendition != rendition {
                a.rendition = None;
            }
            return;
        }
        if self.list.len() == MAX_PLAYLIST_ENTRIES {
            self.truncated = true;
            return;
        }
        self.list.push(Advert {
            host,
            template,
            duration_s,
            segments: n,
            rendition,
        });
    }

    fn into_playlist(self, pl: &mut Playlist) {
        pl.adverts = self.list;
        pl.truncated |= self.truncated;
    }
}

/// A SegmentTemplate's attributes, each inherited from the enclosing level when absent.
#[derive(Clone, Debug, Default)]
struct Tpl {
    media: Option<String>,
    duration: Option<u64>,
    timescale: Option<u64>,
    start_number: Option<u64>,
    /// SegmentTimeline: (segments, total duration in timescale units, longest `d`).
    timeline: Option<(u64, u64, u64)>,
    /// Its first `S` elements: `@t` (when given), `@d`, segments (`@r` + 1).
    timeline_s: Vec<(Option<u64>, u64, u64)>,
}

impl Tpl {
    fn inherit(&self, outer: &Tpl) -> Tpl {
        Tpl {
            media: self.media.clone().or_else(|| outer.media.clone()),
            duration: self.duration.or(outer.duration),
            timescale: self.timescale.or(outer.timescale),
            start_number: self.start_number.or(outer.start_number),
            timeline: self.timeline.or(outer.timeline),
            timeline_s: if self.timeline.is_some() {
                self.timeline_s.clone()
            } else {
                outer.timeline_s.clone()
            },
        }
    }
}

/// The levels of an MPD that carry attributes down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Mpd,
    Period,
    Adaptation,
    Representation,
}

/// Attributes of one level.
#[derive(Clone, Debug, Default)]
struct Scope {
    tpl: Tpl,
    base: String,
    id: Option<String>,
    rendition: Rendition,
    codecs: Option<String>,
    duration_s: Option<f64>,
}

/// The MPD reader's state.
#[derive(Default)]
struct Mpd {
    /// Open levels, outermost first.
    scopes: Vec<(Level, Scope)>,
    in_base_url: bool,
    in_timeline: bool,
    text: String,
    adverts: Adverts,
    longest_s: f64,
}

fn attr_str(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

fn attr_u64(e: &BytesStart<'_>, name: &[u8]) -> Option<u64> {
    attr_str(e, name).and_then(|v| v.trim().parse().ok())
}

fn attr_i64(e: &BytesStart<'_>, name: &[u8]) -> Option<i64> {
    attr_str(e, name).and_then(|v| v.trim().parse().ok())
}

/// An ISO 8601 duration as MPDs write it (`PT1H2M3.5S`, `P1DT...`), seconds.
fn iso_duration(s: &str) -> Option<f64> {
    let s = s.trim().strip_prefix('P')?;
    let mut total = 0.0;
    let mut num = String::new();
    let mut time = false;
    for c in s.chars() {
        match c {
            'T' => time = true,
            '0'..='9' | '.' => num.push(c),
            unit => {
                let v: f64 = num.parse().ok()?;
                num.clear();
                total += v * match (unit, time) {
                    ('D', false) => 86_400.0,
                    ('H', true) => 3_600.0,
                    ('M', true) => 60.0,
                    ('S', true) => 1.0,
                    _ => return None,
                };
            }
        }
    }
    (num.is_empty() && total.is_finite()).then_some(total)
}

impl Mpd {
    fn innermost(&mut self) -> Option<&mut Scope> {
        self.scopes.last_mut().map(|(_, s)| s)
    }

    fn open(
        &mut self,
        e: &BytesStart<'_>,
        pl: &mut Playlist,
        empty: bool,
        host: Option<&str>,
        path: &str,
    ) {
        let name = e.local_name();
        let level = match name.as_ref() {
            b"MPD" => {
                pl.live = attr_str(e, b"type").is_some_and(|t| t == "dynamic");
                pl.target_duration_s = attr_str(e, b"maxSegmentDuration")
                    .as_deref()
                    .and_then(iso_duration);
                let s = Scope {
                    duration_s: attr_str(e, b"mediaPresentationDuration")
                        .as_deref()
                        .and_then(iso_duration),
                    ..Scope::default()
                };
                Some((Level::Mpd, s))
            }
            b"Period" => Some((
                Level::Period,
                Scope {
                    duration_s: attr_str(e, b"duration").as_deref().and_then(iso_duration),
                    ..Scope::default()
                },
            )),
            b"AdaptationSet" | b"Representation" => {
                let level = if name.as_ref() == b"AdaptationSet" {
                    Level::Adaptation
                } else {
                    Level::Representation
                };
                Some((
                    level,
                    Scope {
                        id: attr_str(e, b"id"),
                        rendition: Rendition {
                            bandwidth_bps: attr_u64(e, b"bandwidth"),
                            width: attr_u64(e, b"width").and_then(|v| u32::try_from(v).ok()),
                            height: attr_u64(e, b"height").and_then(|v| u32::try_from(v).ok()),
                        },
                        codecs: attr_str(e, b"codecs").as_deref().map(codecs),
                        ..Scope::default()
                    },
                ))
            }
            b"SegmentTemplate" => {
                if let Some(s) = self.innermost() {
                    s.tpl.media = attr_str(e, b"media").or(s.tpl.media.take());
                    s.tpl.duration = attr_u64(e, b"duration").or(s.tpl.duration);
                    s.tpl.timescale = attr_u64(e, b"timescale").or(s.tpl.timescale);
                    s.tpl.start_number = attr_u64(e, b"startNumber").or(s.tpl.start_number);
                }
                None
            }
            b"SegmentTimeline" => {
                self.in_timeline = !empty;
                if let Some(s) = self.innermost() {
                    s.tpl.timeline = Some((0, 0, 0));
                    s.tpl.timeline_s.clear();
                }
                None
            }
            b"S" if self.in_timeline => {
                let d = attr_u64(e, b"d").unwrap_or(0);
                let r = attr_i64(e, b"r").unwrap_or(0);
                let n = u64::try_from(r).map_or(1, |r| r.min(MAX_REPEAT) + 1);
                if let Some(s) = self.innermost() {
                    if let Some((count, total, longest)) = s.tpl.timeline.as_mut() {
                        *count += n;
                        *total = total.saturating_add(d.saturating_mul(n));
                        *longest = (*longest).max(d);
                        if s.tpl.timeline_s.len() < MAX_LISTED_DURATIONS {
                            s.tpl.timeline_s.push((attr_u64(e, b"t"), d, n));
                        }
                    }
                }
                None
            }
            b"BaseURL" => {
                if !empty {
                    self.in_base_url = true;
                    self.text.clear();
                }
                None
            }
            _ => None,
        };
        if let Some(scope) = level {
            self.scopes.push(scope);
            if empty {
                self.close(name.as_ref(), host, path, pl);
            }
        }
    }

    fn close(&mut self, name: &[u8], host: Option<&str>, path: &str, pl: &mut Playlist) {
        match name {
            b"BaseURL" => {
                self.in_base_url = false;
                let text = std::mem::take(&mut self.text);
                if let Some(s) = self.innermost() {
                    s.base = text;
                }
            }
            b"SegmentTimeline" => self.in_timeline = false,
            b"MPD" | b"Period" | b"AdaptationSet" => {
                self.scopes.pop();
            }
            b"Representation" => {
                self.representation(host, path, pl);
                self.scopes.pop();
            }
            _ => {}
        }
    }

    /// A representation is complete: its variant and advert, from the scopes in force.
    fn representation(&mut self, host: Option<&str>, path: &str, pl: &mut Playlist) {
        let mut tpl = Tpl::default();
        let mut rendition = Rendition::default();
        let mut codecs_v = None;
        let mut id = None;
        let mut period_s = None;
        // Base URL: each level's resolved against the one above it.
        let (mut h, mut p) = (host.map(str::to_owned), path.to_owned());
        for (level, s) in &self.scopes {
            tpl = s.tpl.inherit(&tpl);
            rendition.bandwidth_bps = s.rendition.bandwidth_bps.or(rendition.bandwidth_bps);
            rendition.width = s.rendition.width.or(rendition.width);
            rendition.height = s.rendition.height.or(rendition.height);
            codecs_v = s.codecs.clone().or(codecs_v);
            if *level == Level::Representation {
                id = s.id.clone();
            }
            if matches!(level, Level::Mpd | Level::Period) {
                period_s = s.duration_s.or(period_s);
            }
            if !s.base.is_empty() {
                let (nh, np) = resolve(h.as_deref(), &p, &s.base);
                h = nh;
                p = np;
            }
        }
        let timescale = tpl.timescale.filter(|&t| t > 0).unwrap_or(1) as f64;
        let mut template = String::new();
        let mut seg_host = None;
        if let Some(media) = &tpl.media {
            let expanded = expand(media, id.as_deref(), rendition.bandwidth_bps, "1");
            let (sh, sp) = resolve(h.as_deref(), &p, &expanded);
            let number = NUMBER.to_string();
            let pattern = expand(media, id.as_deref(), rendition.bandwidth_bps, &number);
            let (_, pattern) = resolve(h.as_deref(), &p, &pattern);
            template = path_template(&sp);
            seg_host = sh;
            let (n, each_s) = match (tpl.timeline, tpl.duration) {
                (Some((n, total, longest)), _) if n > 0 => {
                    self.longest_s = self.longest_s.max(longest as f64 / timescale);
                    (n, total as f64 / timescale / n as f64)
                }
                (_, Some(d)) if d > 0 => {
                    let each = d as f64 / timescale;
                    self.longest_s = self.longest_s.max(each);
                    let n = period_s.map_or(0, |p| (p / each).ceil().min(1e9) as u64);
                    (n, each)
                }
                _ => (0, 0.0),
            };
            if each_s > 0.0 {
                if n >= pl.segments {
                    pl.segments = n;
                    pl.duration_s = each_s * n as f64;
                }
                self.adverts.add(
                    seg_host.clone(),
                    template.clone(),
                    each_s,
                    n.max(1),
                    Some(rendition),
                );
                if pl.patterns.len() == MAX_PLAYLIST_ENTRIES {
                    pl.truncated = true;
                } else {
                    let p = MediaPattern {
                        host: seg_host.clone(),
                        pattern: pattern.split('?').next().unwrap_or("").to_owned(),
                        duration_s: each_s,
                        rendition,
                        durations: Vec::new(),
                    };
                    let own = timeline_durations(&tpl, media, timescale);
                    pl.patterns.push(p.listed(own));
                }
            }
            if pl.media_sequence.is_none() {
                pl.media_sequence = tpl.start_number;
            }
        }
        if pl.variants.len() == MAX_PLAYLIST_ENTRIES {
            pl.truncated = true;
        } else {
            pl.variants.push(Variant {
                host: seg_host,
                template,
                rendition,
                codecs: codecs_v,
                path: Hidden::default(),
            });
        }
    }
}

/// A SegmentTimeline's segments by the number their URL carries (ISO/IEC 23009-1 section
/// 5.3.9.6): `$Time$`, each `S`'s `@t` or the previous segment's end; else `$Number$`,
/// counted from `@startNumber` (1 when absent). Empty without a timeline, or when the
/// media template has neither; at most [`MAX_LISTED_DURATIONS`].
fn timeline_durations(tpl: &Tpl, media: &str, timescale: f64) -> Vec<(u64, f64)> {
    let by_time = media.contains("$Time");
    if tpl.timeline.is_none() || !(by_time || media.contains("$Number")) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let (mut time, mut number) = (0u64, tpl.start_number.unwrap_or(1));
    'all: for &(t, d, n) in &tpl.timeline_s {
        if let Some(t) = t {
            time = t;
        }
        for _ in 0..n {
            if out.len() == MAX_LISTED_DURATIONS {
                break 'all;
            }
            out.push((if by_time { time } else { number }, d as f64 / timescale));
            time = time.saturating_add(d);
            number = number.saturating_add(1);
        }
    }
    out
}

/// Expands a SegmentTemplate `@media` (ISO/IEC 23009-1 section 5.3.9.4.4): the
/// representation id and bandwidth put in, `$Number$` and `$Time$` (with or without a
/// width format) as `number` (`1` for a path template, where it becomes `{n}`, or
/// [`NUMBER`] for a [`MediaPattern`]), `$$` as `$`.
fn expand(media: &str, id: Option<&str>, bandwidth: Option<u64>, number: &str) -> String {
    let mut out = String::new();
    let mut parts = media.split('$');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let mut inside = true;
    for part in parts {
        if inside {
            let name = part.split('%').next().unwrap_or("");
            match name {
                "" => out.push('$'),
                "RepresentationID" => out.push_str(id.unwrap_or("")),
                "Bandwidth" => out.push_str(&bandwidth.unwrap_or(0).to_string()),
                "Number" | "Time" | "SubNumber" => out.push_str(number),
                other => out.push_str(other),
            }
        } else {
            out.push_str(part);
        }
        inside = !inside;
    }
    out
}

/// What a [`PlaylistIndex`] knows of a segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentInfo {
    /// Advertised duration (the mean of the segments advertised under its template),
    /// seconds.
    pub duration_s: f64,
    /// Its rendition, when known.
    pub rendition: Option<Rendition>,
}

/// A bounded map from host and path template to what playlists advertised there: media
/// segments' durations and renditions, and media playlists' renditions (from master
/// playlists' variants). An [`super::HttpFlow`] keeps a small one; a caller keeps one per
/// run to join playlists and segments fetched on different flows. The oldest entries go
/// first when it is full ([`PlaylistIndex::evicted`] counts them). DASH representations'
/// and HLS media playlists' [`MediaPattern`]s are kept too (as many as entries, the newest
/// first), to match a request's own path where the caller has it
/// ([`PlaylistIndex::annotate_path`]): renditions whose paths template alike are told
/// apart by them. An HLS media playlist's segments get the rendition of the master
/// playlist's variant that points at its exact path (else at its template, when that
/// template names one rendition only).
#[derive(Debug, Clone)]
pub struct PlaylistIndex {
    max: usize,
    segments: HashMap<String, SegmentInfo, RandomState>,
    /// Media playlists' renditions by host and path template; `None` when variants of
    /// different renditions share the template (`/hls/{n}p/index.m3u8`).
    renditions: HashMap<String, Option<Rendition>, RandomState>,
    order: VecDeque<(bool, String)>,
    patterns: VecDeque<MediaPattern>,
    /// HLS variants' media playlists by host and exact path, the newest first.
    variant_paths: VecDeque<(Option<String>, Hidden, Rendition)>,
    evicted: u64,
}

fn key(host: Option<&str>, template: &str) -> String {
    let mut k = String::with_capacity(host.map_or(0, str::len) + 1 + template.len());
    k.push_str(host.unwrap_or(""));
    k.push(' ');
    k.push_str(template);
    k
}

impl PlaylistIndex {
    /// An empty index of at most `max_entries` entries (at least 1).
    pub fn new(max_entries: usize) -> PlaylistIndex {
        PlaylistIndex {
            max: max_entries.max(1),
            segments: HashMap::default(),
            renditions: HashMap::default(),
            order: VecDeque::new(),
            patterns: VecDeque::new(),
            variant_paths: VecDeque::new(),
            evicted: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.segments.len() + self.renditions.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries pushed out by newer ones.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn make_room(&mut self) {
        while self.len() >= self.max {
            let Some((seg, k)) = self.order.pop_front() else {
                return;
            };
            let removed = if seg {
                self.segments.remove(&k).is_some()
            } else {
                self.renditions.remove(&k).is_some()
            };
            if removed {
                self.evicted += 1;
            }
        }
    }

    /// Remembers what a playlist advertises; a later playlist at the same place replaces
    /// what an earlier one said. A media playlist's segments get the rendition of the
    /// master playlist's variant that pointed at it, when that was seen.
    pub fn insert(&mut self, pl: &Playlist) {
        if pl.kind == PlaylistKind::HlsMaster {
            for v in &pl.variants {
                if !v.path.0.is_empty() {
                    self.variant_paths
                        .retain(|(h, p, _)| (h, p) != (&v.host, &v.path));
                    if self.variant_paths.len() >= self.max {
                        self.variant_paths.pop_back();
                        self.evicted += 1;
                    }
                    self.variant_paths
                        .push_front((v.host.clone(), v.path.clone(), v.rendition));
                }
                // A template shared by variants of different renditions names none.
                let shared = pl.variants.iter().any(|w| {
                    (&w.host, &w.template) == (&v.host, &v.template) && w.rendition != v.rendition
                });
                let k = key(v.host.as_deref(), &v.template);
                if !self.renditions.contains_key(&k) {
                    self.make_room();
                    self.order.push_back((false, k.clone()));
                }
                self.renditions.insert(k, (!shared).then_some(v.rendition));
            }
        }
        // A media playlist's rendition: the variant that points at its exact path, else
        // the one its template names.
        let own = self
            .variant_paths
            .iter()
            .find(|(h, p, _)| !p.0.is_empty() && (h, p) == (&pl.host, &pl.path))
            .map(|&(_, _, r)| r)
            .or_else(|| {
                (!pl.template.is_empty())
                    .then(|| {
                        self.renditions
                            .get(&key(pl.host.as_deref(), &pl.template))
                            .copied()
                            .flatten()
                    })
                    .flatten()
            });
        for p in &pl.patterns {
            // An HLS media playlist's segments carry its rendition, when known.
            let p = match (pl.kind, own) {
                (PlaylistKind::HlsMedia, None) => continue,
                (PlaylistKind::HlsMedia, Some(rendition)) => MediaPattern {
                    rendition,
                    ..p.clone()
                },
                _ => p.clone(),
            };
            self.patterns
                .retain(|q| (&q.host, &q.pattern) != (&p.host, &p.pattern));
            if self.patterns.len() >= self.max {
                self.patterns.pop_back();
                self.evicted += 1;
            }
            self.patterns.push_front(p);
        }
        for a in &pl.adverts {
            let k = key(a.host.as_deref(), &a.template);
            let info = SegmentInfo {
                duration_s: a.duration_s,
                rendition: a.rendition.or(own),
            };
            // Playlists of different renditions advertising under one template (the
            // same path but for its digits): the template names none from then on.
            let info = match self.segments.get(&k) {
                Some(old) if old.rendition != info.rendition => SegmentInfo {
                    rendition: None,
                    ..info
                },
                _ => info,
            };
            if !self.segments.contains_key(&k) {
                self.make_room();
                self.order.push_back((true, k.clone()));
            }
            self.segments.insert(k, info);
        }
        // Forget order entries of keys already gone (replaced entries keep theirs).
        if self.order.len() > 2 * self.max {
            let (segments, renditions) = (&self.segments, &self.renditions);
            self.order.retain(|(seg, k)| {
                if *seg {
                    segments.contains_key(k)
                } else {
                    renditions.contains_key(k)
                }
            });
        }
    }

    /// What is known of a segment at this host and path template.
    pub fn lookup(&self, host: Option<&str>, template: &str) -> Option<SegmentInfo> {
        self.segments.get(&key(host, template)).copied()
    }

    /// Fills a segment or panel-stream transaction's advertised duration, rendition and
    /// bitrate (body bytes × 8 / duration, for a complete body) when this index knows its
    /// template and they are not filled yet. Returns whether it did.
    pub fn annotate(&self, tx: &mut HttpTransaction) -> bool {
        self.annotate_path(tx, None)
    }

    /// [`PlaylistIndex::annotate`], with the request's target (its path, or an
    /// absolute URL) when the caller still has it: a DASH representation whose
    /// [`MediaPattern`] matches it comes first, then the path template.
    pub fn annotate_path(&self, tx: &mut HttpTransaction, target: Option<&str>) -> bool {
        if tx.duration_s.is_some() || !matches!(tx.role, Role::Segment | Role::PanelStream) {
            return false;
        }
        // The target's path, resolved as the patterns were (an absolute URL's scheme
        // and authority dropped, dot segments removed).
        let path = target.map(|t| resolve(None, "/", t).1);
        let matched = path.and_then(|path| {
            self.patterns.iter().find_map(|p| {
                Some(SegmentInfo {
                    duration_s: p.duration_of(tx.host.as_deref(), &path)?,
                    rendition: Some(p.rendition),
                })
            })
        });
        let Some(info) = matched.or_else(|| {
            let template = tx.path_template.as_deref()?;
            self.lookup(tx.host.as_deref(), template)
        }) else {
            return false;
        };
        tx.duration_s = Some(info.duration_s);
        tx.rendition = info.rendition;
        tx.bitrate_bps = (tx.complete && info.duration_s > 0.0)
            .then(|| tx.body_bytes as f64 * 8.0 / info.duration_s);
        true
    }
}
