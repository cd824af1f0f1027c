//! URL reduction: path templates, extensions, query parameter names and roles (see the
//! [module documentation](super#privacy-url-templates)). Nothing here keeps or returns a
//! raw path segment that could carry a credential or an identifier.

use super::Role;

/// Longest template returned, in bytes; a longer one is cut at a segment boundary and
/// ends in `/{more}`.
pub(crate) const MAX_TEMPLATE: usize = 256;
/// Most path segments templated; the rest become `/{more}`.
const MAX_SEGMENTS: usize = 32;
/// Most query parameter names kept.
const MAX_QUERY_NAMES: usize = 32;
/// Longest extension kept (`m3u8`, `cmfv`, `webm`...).
const MAX_EXTENSION: usize = 5;
/// A run of base64-ish characters at least this long, with a digit or both cases, is an
/// identifier.
const LONG_TOKEN: usize = 20;
/// A run of hex digits at least this long is an identifier.
const LONG_HEX: usize = 16;
/// Longest query parameter name kept as it is (after templating).
const MAX_NAME: usize = 32;

/// Placeholder for a credential position of an IPTV panel URL.
pub const CRED: &str = "{cred}";
/// Placeholder for a long token (hex, base64-ish, UUID) or a segment that is not plain
/// ASCII.
pub const ID: &str = "{id}";
/// Placeholder for a run of decimal digits.
pub const NUM: &str = "{n}";
/// What follows [`MAX_SEGMENTS`] segments or [`MAX_TEMPLATE`] bytes.
const MORE: &str = "/{more}";

/// First path segments of the Xtream-Codes panel stream layouts
/// `/<kind>/USER/PASS/...`.
const PANEL_KINDS: [&str; 4] = ["live", "movie", "series", "timeshift"];
/// Extensions of the bare panel layout `/USER/PASS/ID.ext` (also without extension).
const BARE_EXTS: [&str; 2] = ["ts", "m3u8"];
/// Last path segments of IPTV panel APIs (credentials in the query).
const PANEL_APIS: [&str; 4] = ["get.php", "player_api.php", "xmltv.php", "panel_api.php"];
/// Extensions of playlists.
const PLAYLIST_EXTS: [&str; 2] = ["m3u8", "mpd"];
/// Extensions of media segments.
const SEGMENT_EXTS: [&str; 10] = [
    "ts", "m4s", "mp4", "m4a", "m4v", "aac", "cmfv", "cmfa", "vtt", "webm",
];
/// Content types of playlists (HLS: RFC 8216 section 4; DASH: ISO/IEC 23009-1 annex C).
const PLAYLIST_TYPES: [&str; 5] = [
    "application/vnd.apple.mpegurl",
    "audio/mpegurl",
    "application/x-mpegurl",
    "audio/x-mpegurl",
    "application/dash+xml",
];
/// Content types of media segments.
const SEGMENT_TYPES: [&str; 6] = [
    "video/mp2t",
    "video/mp4",
    "video/iso.segment",
    "audio/mp4",
    "audio/aac",
    "text/vtt",
];

/// Which IPTV panel layout a path has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Panel {
    /// None of them.
    No,
    /// `/live|movie|series|timeshift/USER/PASS/...` (at least four segments).
    Kind,
    /// `/USER/PASS/ID`, `/USER/PASS/ID.ts` or `/USER/PASS/ID.m3u8` (three segments, the
    /// last a number, the first not one of [`PANEL_KINDS`]).
    Bare,
}

/// What a request target reduces to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UrlFacts {
    pub template: String,
    pub extension: Option<String>,
    pub query_names: Option<String>,
    pub panel: Panel,
    pub panel_api: bool,
}

/// The path of a request target: origin form as it is, absolute form without its scheme
/// and authority (and so without any user information), query and fragment cut.
fn path_of(target: &str) -> &str {
    let t = target.split(['?', '#']).next().unwrap_or("");
    for scheme in ["http://", "https://", "HTTP://", "HTTPS://"] {
        if let Some(rest) = t.strip_prefix(scheme) {
            return rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    if let Some(rest) = t.strip_prefix("//") {
        return rest.find('/').map_or("/", |i| &rest[i..]);
    }
    t
}

/// The query of a request target (after the first `?`, before any `#`).
fn query_of(target: &str) -> Option<&str> {
    let (_, q) = target.split_once('?')?;
    Some(q.split('#').next().unwrap_or(""))
}

/// The non-empty segments of a path.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn panel_layout(path: &str) -> Panel {
    let mut it = segments(path);
    let (Some(first), Some(_), Some(third)) = (it.next(), it.next(), it.next()) else {
        return Panel::No;
    };
    let fourth = it.next();
    if fourth.is_some() && PANEL_KINDS.iter().any(|k| first.eq_ignore_ascii_case(k)) {
        return Panel::Kind;
    }
    let (stem, ext) = third
        .split_once('.')
        .map_or((third, None), |(s, e)| (s, Some(e)));
    let panel_ext = ext.is_none_or(|e| BARE_EXTS.iter().any(|x| e.eq_ignore_ascii_case(x)));
    if fourth.is_none()
        && panel_ext
        && !PANEL_KINDS.iter().any(|k| first.eq_ignore_ascii_case(k))
        && !stem.is_empty()
        && stem.bytes().all(|b| b.is_ascii_digit())
    {
        return Panel::Bare;
    }
    Panel::No
}

/// The path template of a request target (see
/// [privacy](super#privacy-url-templates)): credential positions of IPTV panel layouts
/// become `{cred}`, long tokens (hex of 16 or more digits, base64-ish runs of 20 or more
/// characters with a digit or both cases, UUIDs) and segments with characters other than
/// printable ASCII become `{id}`, the other runs of decimal digits `{n}`. The query is
/// not part of it ([`query_names`]). `*` stays `*`; a target that is not a path (the
/// authority form of CONNECT) becomes `{authority}`.
pub fn path_template(target: &str) -> String {
    let mut out = String::new();
    template_into(target, &mut out);
    out
}

fn template_into(target: &str, out: &mut String) {
    if target == "*" {
        out.push('*');
        return;
    }
    let path = path_of(target);
    if !path.starts_with('/') {
        out.push_str(if path.is_empty() { "/" } else { "{authority}" });
        return;
    }
    let panel = panel_layout(path);
    let mut index = 0;
    for seg in path.split('/').skip(1) {
        let mark = out.len();
        if index == MAX_SEGMENTS {
            out.push_str(MORE);
            return;
        }
        out.push('/');
        if !seg.is_empty() {
            let cred = match panel {
                Panel::Kind => index == 1 || index == 2,
                Panel::Bare => index == 0 || index == 1,
                Panel::No => false,
            };
            if cred {
                out.push_str(CRED);
            } else {
                template_segment(seg, out);
            }
            index += 1;
        }
        if out.len() > MAX_TEMPLATE - MORE.len() {
            out.truncate(mark);
            out.push_str(MORE);
            return;
        }
    }
}

/// Whether a byte is part of a token (base64url-ish: letters, digits, `-`, `_`, `%`,
/// and anything that is not printable ASCII, so that such bytes end up in `{id}`).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'%') || !is_safe_delimiter(b)
}

/// Printable ASCII kept as it is between tokens.
fn is_safe_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'.' | b','
            | b';'
            | b':'
            | b'@'
            | b'!'
            | b'$'
            | b'&'
            | b'('
            | b')'
            | b'*'
            | b'\''
            | b'+'
            | b'='
            | b'~'
    )
}

fn template_segment(seg: &str, out: &mut String) {
    // The extension is kept as it is (`master.m3u8` stays `master.m3u8`, not
    // `master.m{n}u{n}`): a few letters and digits with at least one letter, as
    // [`extension`] reads it.
    if let Some((stem, ext)) = seg.rsplit_once('.') {
        let is_ext = !stem.is_empty()
            && (1..=MAX_EXTENSION).contains(&ext.len())
            && ext.bytes().all(|b| b.is_ascii_alphanumeric())
            && ext.bytes().any(|b| b.is_ascii_alphabetic());
        if is_ext {
            template_tokens(stem, out);
            out.push('.');
            out.push_str(ext);
            return;
        }
    }
    template_tokens(seg, out);
}

fn template_tokens(seg: &str, out: &mut String) {
    let bytes = seg.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !is_token_byte(bytes[i]) {
            out.push(char::from(bytes[i]));
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_token_byte(bytes[i]) {
            i += 1;
        }
        template_token(&bytes[start..i], out);
    }
}

fn is_uuid(t: &[u8]) -> bool {
    t.len() == 36
        && t.iter().enumerate().all(|(i, &b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// One token (a run of [`is_token_byte`]).
fn template_token(t: &[u8], out: &mut String) {
    let plain = t
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let digit = t.iter().any(u8::is_ascii_digit);
    let upper = t.iter().any(u8::is_ascii_uppercase);
    let lower = t.iter().any(u8::is_ascii_lowercase);
    if !plain || is_uuid(t) || (t.len() >= LONG_TOKEN && (digit || (upper && lower))) {
        out.push_str(ID);
        return;
    }
    // Plain and short: words of letters and digits between `-` and `_`.
    let mut i = 0;
    while i < t.len() {
        let b = t[i];
        if !b.is_ascii_alphanumeric() {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let start = i;
        while i < t.len() && t[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let word = &t[start..i];
        if word.len() >= LONG_HEX && word.iter().all(u8::is_ascii_hexdigit) {
            out.push_str(ID);
            continue;
        }
        // Digit runs become {n}; letters stay.
        let mut j = 0;
        while j < word.len() {
            if word[j].is_ascii_digit() {
                while j < word.len() && word[j].is_ascii_digit() {
                    j += 1;
                }
                out.push_str(NUM);
            } else {
                out.push(char::from(word[j]));
                j += 1;
            }
        }
    }
}

/// The extension of a request target's last path segment, lower-cased (`m3u8`, `ts`,
/// `m4s`...): one to five ASCII letters and digits with at least one letter after the
/// last dot; `None` otherwise.
pub fn extension(target: &str) -> Option<String> {
    let path = path_of(target);
    let last = path.rsplit('/').next()?;
    let (stem, ext) = last.rsplit_once('.')?;
    let ok = !stem.is_empty()
        && (1..=MAX_EXTENSION).contains(&ext.len())
        && ext.bytes().all(|b| b.is_ascii_alphanumeric())
        && ext.bytes().any(|b| b.is_ascii_alphabetic());
    ok.then(|| ext.to_ascii_lowercase())
}

/// The names of a request target's query parameters, each templated like a path segment
/// (a name longer than 32 bytes becomes `{id}`), sorted, without repeats, joined by `&`;
/// `None` when there is no query or it has no names. Values are never kept.
pub fn query_names(target: &str) -> Option<String> {
    let q = query_of(target)?;
    let mut names: Vec<String> = Vec::new();
    for pair in q.split(['&', ';']) {
        let name = pair.split('=').next().unwrap_or("");
        if name.is_empty() {
            continue;
        }
        if names.len() == MAX_QUERY_NAMES {
            break;
        }
        let mut t = String::new();
        if name.len() > MAX_NAME {
            t.push_str(ID);
        } else {
            template_segment(name, &mut t);
        }
        names.push(t);
    }
    if names.is_empty() {
        return None;
    }
    names.sort_unstable();
    names.dedup();
    Some(names.join("&"))
}

/// Everything a request target reduces to.
pub(crate) fn url_facts(target: &str) -> UrlFacts {
    let path = path_of(target);
    let last = path.rsplit('/').next().unwrap_or("");
    UrlFacts {
        template: path_template(target),
        extension: extension(target),
        query_names: query_names(target),
        panel: panel_layout(path),
        panel_api: PANEL_APIS.iter().any(|a| last.eq_ignore_ascii_case(a)),
    }
}

/// A media type without parameters, lower-cased and trimmed; `None` when empty.
pub(crate) fn media_type(value: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(value).ok()?;
    let t = s.split(';').next().unwrap_or("").trim();
    let ok = !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| t.to_ascii_lowercase())
}

/// Whether a (lower-cased) content type is a playlist's.
pub(crate) fn is_playlist_type(ct: &str) -> bool {
    PLAYLIST_TYPES.contains(&ct)
}

/// Whether a (lower-cased) content type is DASH's MPD.
pub(crate) fn is_dash_type(ct: &str) -> bool {
    ct == "application/dash+xml"
}

/// Whether a content type says nothing of the body (absent, or generic bytes).
fn is_generic_type(ct: Option<&str>) -> bool {
    matches!(
        ct,
        None | Some("application/octet-stream") | Some("binary/octet-stream")
    )
}

/// The role of a transaction from its URL (when the request was seen) and its response's
/// content type (when the response was seen), in this order of precedence: playlist,
/// panel API, panel stream, segment, other (see [roles](super#roles)).
pub(crate) fn role(url: Option<&UrlFacts>, ct: Option<&str>) -> Role {
    let ext = url.and_then(|u| u.extension.as_deref());
    if ext.is_some_and(|e| PLAYLIST_EXTS.contains(&e)) || ct.is_some_and(is_playlist_type) {
        return Role::Playlist;
    }
    if let Some(u) = url {
        if u.panel_api {
            return Role::PanelApi;
        }
        let ts_content = ct == Some("video/mp2t");
        match u.panel {
            Panel::Kind => return Role::PanelStream,
            Panel::Bare if ts_content || (is_generic_type(ct) && ext == Some("ts")) => {
                return Role::PanelStream;
            }
            _ => {}
        }
    }
    if ext.is_some_and(|e| SEGMENT_EXTS.contains(&e))
        || ct.is_some_and(|c| SEGMENT_TYPES.contains(&c))
    {
        return Role::Segment;
    }
    Role::Other
}

/// Whether a response's body is to be read as MPEG-TS: its content type is `video/MP2T`,
/// or says nothing of the body while the URL's extension is `ts` or the URL is a panel
/// stream without extension.
pub(crate) fn is_ts_body(url: Option<&UrlFacts>, ct: Option<&str>, role: Role) -> bool {
    if ct == Some("video/mp2t") {
        return true;
    }
    if !is_generic_type(ct) {
        return false;
    }
    let ext = url.and_then(|u| u.extension.as_deref());
    ext == Some("ts") || (role == Role::PanelStream && ext.is_none())
}

/// The host of a `Host` header or URL authority: lower-cased, without user information or
/// port, IPv6 literals without their brackets; `None` when empty or not plain ASCII.
pub(crate) fn host_of(value: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(value).ok()?.trim();
    let s = s.rsplit_once('@').map_or(s, |(_, h)| h);
    let h = if let Some(rest) = s.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        s.split(':').next().unwrap_or("")
    };
    let ok = !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    ok.then(|| h.to_ascii_lowercase())
}
