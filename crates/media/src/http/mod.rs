//! HTTP/1.x (RFC 9112) over one TCP connection: requests paired with their responses,
//! one [`HttpTransaction`] per exchange with its URL reduced to a template, the bodies of
//! progressive MPEG-TS handed to the caller, and HLS / DASH playlists read for the
//! segments they advertise.
//!
//! # What is here
//!
//! * [`HttpFlow`]: the HTTP state of one TCP connection, fed each direction's bytes in
//!   order ([`HttpFlow::on_stream`]), the holes between them ([`HttpFlow::on_gap`]) and
//!   its end ([`HttpFlow::finish`]). Transactions and body bytes go to an
//!   [`HttpSink`] (any `FnMut(HttpTransaction)` is one).
//! * [`path_template`], [`extension`], [`query_names`]: what a request target is reduced
//!   to (see [privacy](#privacy-url-templates)).
//! * [`Playlist`] and [`PlaylistIndex`]: what an HLS or DASH playlist says, and a bounded
//!   map from segment templates to their advertised duration and rendition, which a
//!   caller keeps per run to join playlists and segments fetched on different flows.
//! * [`HttpStats`]: what was read and what was not, by kind.
//! * [`looks_like_http`]: whether a direction's first bytes start an HTTP/1.x message
//!   (the caller's probe).
//!
//! # Messages
//!
//! Heads are read with [`httparse`] (request and status line, up to
//! [`MAX_HEADERS`] header fields) once their blank line is in; a head whose bytes all
//! arrived in one call is parsed where it lies, else it is gathered in a per-direction
//! buffer of at most [`HttpConfig::max_head_bytes`] (16 KiB). A longer head is counted
//! ([`HttpStats::oversize_heads`]) and the direction resynchronises (below); so is a head
//! httparse refuses ([`HttpStats::bad_heads`]). Empty lines before a request line are
//! skipped (RFC 9112 section 2.2).
//!
//! Bodies are counted, never stored (playlists aside), and delimited as RFC 9112
//! section 6.3 says:
//!
//! 1. responses to HEAD, 1xx, 204 and 304 responses have none; a 1xx other than 101 is
//!    interim and the request waits for its final response ([`HttpStats::interim`]);
//! 2. `101 Switching Protocols` and a 2xx answer to CONNECT end HTTP on the connection:
//!    both directions are ignored from then on ([`HttpStats::tunnels`]);
//! 3. `Transfer-Encoding` ending in `chunked`: chunked ([`Transfer::Chunked`]; chunk
//!    sizes, extensions and trailers read here); a response with another transfer coding
//!    is read until the connection closes;
//! 4. `Content-Length` ([`Transfer::Length`]); values that differ or do not parse are
//!    counted as a bad head, and the response is then read until the connection closes
//!    (a request loses the direction's framing);
//! 5. otherwise a response is read until the connection closes ([`Transfer::Close`]) and
//!    a request has no body.
//!
//! # Pairing
//!
//! Responses answer requests in order (keep-alive and pipelining, RFC 9112 section 9.3).
//! At most [`HttpConfig::max_in_flight`] requests wait; when one more comes, the oldest
//! is emitted alone ([`HttpStats::evicted`]). A response with no request waiting (the
//! request was not captured), or whose head came before the oldest waiting request (which
//! therefore cannot be what it answers), gives a transaction without request fields
//! ([`Pairing::ResponseOnly`]). Requests still waiting when the flow ends are emitted
//! alone ([`Pairing::RequestOnly`]): the caller's idle timeout ends a flow with
//! [`HttpFlow::finish`], which is also what times requests out.
//!
//! # Gaps and resynchronisation
//!
//! [`HttpFlow::on_gap`] reports bytes lost before the next call. Inside a body of known
//! length (a `Content-Length` body, or a chunk's data) shorter than what is left, the
//! direction keeps its framing: the missing bytes are counted in
//! [`HttpTransaction::missing_bytes`] and the body is marked incomplete; the same in a body
//! read until close. Anywhere else (in a head, in chunk framing, or a hole longer than
//! the rest of the body) the direction loses its framing: the message being read is
//! emitted incomplete, and the direction reads nothing until a line that starts like a
//! request line (`METHOD SP target SP HTTP/1.x`, method one of RFC 9110's and PATCH,
//! whole in one call) or a status line (`HTTP/1.x NNN`), at the start of a call or after
//! a line feed ([`HttpStats::resyncs`]; the bytes passed over are counted in
//! [`HttpStats::skipped_bytes`]). When bytes of the server direction were lost at or in
//! a response head (or the head was bad), the oldest waiting request is taken as
//! answered in the lost bytes and emitted alone.
//!
//! A direction's first bytes are taken as a message start; for a connection picked up in
//! the middle, the caller reports a gap of 0 bytes before them (nothing is known lost,
//! but the direction looks for a message start).
//!
//! # Privacy: URL templates
//!
//! IPTV panel URLs carry subscriber credentials (`/live/USER/PASS/123.ts`,
//! `get.php?username=USER&password=PASS`). No raw path, query value or header value
//! leaves this module except the host name and the content type. A request target is
//! reduced by [`path_template`]:
//!
//! * credential positions of the Xtream-Codes panel layouts become `{cred}`:
//!   `/live|movie|series|timeshift/USER/PASS/...` (four segments or more) and
//!   `/USER/PASS/ID`, `/USER/PASS/ID.ts`, `/USER/PASS/ID.m3u8` (three segments, the
//!   last a number, the first not one of those four words);
//! * runs of 20 or more base64url-ish characters (`A-Z a-z 0-9 - _ %`) with a digit or
//!   both cases, UUIDs, hex runs of 16 or more digits, and anything that is not printable
//!   ASCII become `{id}`;
//! * other runs of decimal digits become `{n}`;
//! * the query is dropped from the template; [`query_names`] keeps its parameter names,
//!   templated the same way, sorted, joined by `&`;
//! * the scheme and authority of an absolute-form target are dropped (user information
//!   included); templates are at most 256 bytes.
//!
//! A short secret made only of letters outside those positions (`/hls/streamkey/...`)
//! is not recognised.
//!
//! # Roles
//!
//! [`Role`] in this order of precedence: a playlist (extension `m3u8` or `mpd`, or an
//! HLS / DASH content type), a panel API (`get.php`, `player_api.php`, `xmltv.php`,
//! `panel_api.php`), a panel stream (the `/live/...`-style layouts; `/USER/PASS/ID` when
//! the content is MPEG-TS), a segment (extensions `ts m4s mp4 m4a m4v aac cmfv cmfa vtt
//! webm`, content types `video/MP2T video/mp4 video/iso.segment audio/mp4 audio/aac`),
//! else other. A response's body is MPEG-TS, and handed to [`HttpSink::body`], when its
//! content type is `video/MP2T`, or is absent or `application/octet-stream` with the
//! extension `ts` or a panel stream URL without extension.
//!
//! # Playlists
//!
//! A playlist response's body is gathered up to [`HttpConfig::max_playlist_bytes`]
//! (256 KiB; a longer one is counted in [`HttpStats::oversize_playlists`] and not read)
//! and read when complete: HLS with [`m3u8_rs`], DASH with [`quick_xml`] (see
//! [`Playlist::parse_dash`] for what is read). The URIs it lists are resolved against
//! the playlist's URL and templated; segments under one template are summed up in an
//! [`Advert`] (mean duration, count, rendition). Each flow keeps a small
//! [`PlaylistIndex`] (at most [`HttpConfig::index_entries`]); a segment or panel-stream
//! transaction whose host and template it knows gets [`HttpTransaction::duration_s`] and,
//! when its body is complete, [`HttpTransaction::bitrate_bps`]. A DASH representation's
//! segments are also matched by their SegmentTemplate's own pattern against the
//! request's path, which the flow holds until the response ends ([`MediaPattern`]):
//! representations whose ids hold digits (`360p`, `720p`) template alike, and only the
//! pattern gives each segment its rendition. The playlist goes out with its transaction
//! ([`HttpTransaction::playlist`]) for the caller's run-level index.
//!
//! ## The crates
//!
//! * `httparse` (already in the workspace): zero-copy, no allocation, bounded header
//!   array.
//! * `m3u8-rs` 6 (nom 7 and chrono without default features): the maintained HLS parser
//!   (release 6.0 in 2024; `hls_m3u8`'s last release is from 2020). Only UTF-8 bodies
//!   that start with `#EXTM3U` are given to it.
//! * `quick-xml` 0.41 without default features (one dependency, `memchr`). `dash-mpd`
//!   was not taken: it depends on `reqwest`, `tokio` and ffprobe bindings whatever its
//!   features; its parsing half, `dash-mpd-core`, needs serde, `serde_with`, `url`,
//!   `regex`, chrono and a quick-xml that requires Rust 1.86, above this workspace's
//!   1.85.
//!
//! # Memory and allocation
//!
//! Per flow: two head buffers of at most 16 KiB (released when they held more than
//! 4 KiB), at most 64 waiting requests (each with its host, template, query names and raw
//! target, freed when emitted), one playlist buffer of at most 256 KiB, and a playlist
//! index of at most 64 entries. Body bytes are never copied (playlists aside) and
//! allocate nothing; a transaction allocates its strings.
//!
//! # Panics
//!
//! None: every slice is checked, and property tests feed arbitrary bytes, split anyhow,
//! with gaps.

mod flow;
mod playlist;
mod template;
#[cfg(test)]
mod tests;

pub use crate::dns::Dir;
pub use flow::{looks_like_http, HttpFlow, HttpSink};
pub use playlist::{
    Advert, MediaPattern, Playlist, PlaylistIndex, PlaylistKind, Rendition, SegmentInfo, Variant,
    MAX_PLAYLIST_ENTRIES,
};
pub use template::{extension, path_template, query_names, CRED, ID, NUM};

/// Most header fields read per head.
pub const MAX_HEADERS: usize = 96;

/// Limits of one [`HttpFlow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Longest head (start line and header fields), bytes. Default 16 KiB.
    pub max_head_bytes: usize,
    /// Most requests waiting for their response (at least 1). Default 64.
    pub max_in_flight: usize,
    /// Longest playlist body read, bytes. Default 256 KiB.
    pub max_playlist_bytes: usize,
    /// Entries of the flow's own [`PlaylistIndex`]. Default 64.
    pub index_entries: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_head_bytes: 16 * 1024,
            max_in_flight: 64,
            max_playlist_bytes: 256 * 1024,
            index_entries: 64,
        }
    }
}

/// A request method (RFC 9110 section 9, RFC 5789).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// PATCH
    Patch,
    /// CONNECT
    Connect,
    /// TRACE
    Trace,
    /// Any other token (WebDAV's, SSDP's...).
    Other,
}

impl Method {
    fn from_token(t: &str) -> Method {
        match t {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            "CONNECT" => Method::Connect,
            "TRACE" => Method::Trace,
            _ => Method::Other,
        }
    }

    /// The method as written on the wire; `OTHER` for the others.
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
            Method::Other => "OTHER",
        }
    }
}

/// How a response's body is delimited (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transfer {
    /// No body (HEAD, 1xx, 204, 304, or `Content-Length: 0`).
    None,
    /// `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes.
    Close,
}

impl Transfer {
    /// The name used in tables: `none`, `length`, `chunked`, `close`.
    pub fn name(self) -> &'static str {
        match self {
            Transfer::None => "none",
            Transfer::Length => "length",
            Transfer::Chunked => "chunked",
            Transfer::Close => "close",
        }
    }
}

/// What a transaction fetched (see [roles](self#roles)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// An HLS or DASH playlist.
    Playlist,
    /// A media segment.
    Segment,
    /// An IPTV panel's API (channel lists, EPG, account).
    PanelApi,
    /// An IPTV panel's stream URL (progressive TS, or a movie / series file).
    PanelStream,
    /// Anything else.
    Other,
}

impl Role {
    /// The name used in tables: `playlist`, `segment`, `panel_api`, `panel_stream`,
    /// `other`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Playlist => "playlist",
            Role::Segment => "segment",
            Role::PanelApi => "panel_api",
            Role::PanelStream => "panel_stream",
            Role::Other => "other",
        }
    }
}

/// Which halves of an exchange a transaction has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pairing {
    /// A request and its response.
    Answered,
    /// A request alone (its response not seen by the flow's end, lost in a gap, or
    /// pushed out by [`HttpConfig::max_in_flight`]).
    RequestOnly,
    /// A response alone (its request not captured).
    ResponseOnly,
}

impl Pairing {
    /// The name used in tables: `answered`, `request_only`, `response_only`.
    pub fn name(self) -> &'static str {
        match self {
            Pairing::Answered => "answered",
            Pairing::RequestOnly => "request_only",
            Pairing::ResponseOnly => "response_only",
        }
    }
}

/// One HTTP exchange: a request with its response, or either alone. The flow id and the
/// addresses are the caller's. No field holds a raw path or query value.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpTransaction {
    /// The exchange's number within its flow, from 0, in request order (a response
    /// alone takes the next number when it comes); [`HttpSink::body`] calls carry it.
    pub index: u64,
    /// Which halves were seen.
    pub pairing: Pairing,
    /// Time of the request's first byte.
    pub request_ts_ns: Option<i64>,
    /// Time of the response's first byte.
    pub response_ts_ns: Option<i64>,
    /// Time of the response's last byte read.
    pub response_end_ns: Option<i64>,
    /// Request method.
    pub method: Option<Method>,
    /// `Host` header (or the absolute-form target's host), lower-cased, without port.
    pub host: Option<String>,
    /// The target's path template ([`path_template`]).
    pub path_template: Option<String>,
    /// The last path segment's extension ([`extension`]).
    pub extension: Option<String>,
    /// The query's parameter names ([`query_names`]).
    pub query_names: Option<String>,
    /// Bytes of the request's body.
    pub request_body_bytes: u64,
    /// Response status code.
    pub status: Option<u16>,
    /// Response `Content-Type` without parameters, lower-cased.
    pub content_type: Option<String>,
    /// Response `Content-Length` as declared.
    pub content_length: Option<u64>,
    /// Response body bytes read (chunked framing not included).
    pub body_bytes: u64,
    /// Response body bytes known lost in gaps.
    pub missing_bytes: u64,
    /// How the response's body was delimited.
    pub transfer: Option<Transfer>,
    /// What was fetched.
    pub role: Role,
    /// The response's body was read to its end, without a gap.
    pub complete: bool,
    /// Advertised duration of this segment (from a playlist), seconds.
    pub duration_s: Option<f64>,
    /// `body_bytes × 8 / duration_s`, for a complete body with a known duration.
    pub bitrate_bps: Option<f64>,
    /// The segment's rendition, from a playlist.
    pub rendition: Option<Rendition>,
    /// What the response's playlist said, when it was one and was read.
    pub playlist: Option<Box<Playlist>>,
}

/// What [`HttpFlow`]s read, and what they could not, by kind. Add flows' stats with
/// [`HttpStats::merge`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Request heads read.
    pub requests: u64,
    /// Final response heads read (interim ones not included).
    pub responses: u64,
    /// Interim (1xx other than 101) responses.
    pub interim: u64,
    /// Transactions emitted.
    pub transactions: u64,
    /// Of those, requests emitted without a response.
    pub request_only: u64,
    /// Of those, responses emitted without a request.
    pub response_only: u64,
    /// Requests pushed out by [`HttpConfig::max_in_flight`].
    pub evicted: u64,
    /// Heads httparse refused (or with conflicting `Content-Length`s).
    pub bad_heads: u64,
    /// Heads longer than [`HttpConfig::max_head_bytes`].
    pub oversize_heads: u64,
    /// Partial heads dropped at a gap or at the flow's end.
    pub incomplete_heads: u64,
    /// Bad chunk framing (size line or data terminator).
    pub bad_chunks: u64,
    /// Bodies cut short by a gap or by the flow's end.
    pub incomplete_bodies: u64,
    /// Gaps reported.
    pub gaps: u64,
    /// Bytes they lost.
    pub gap_bytes: u64,
    /// Directions that found a message start again after losing their framing.
    pub resyncs: u64,
    /// Bytes passed over while looking for a message start.
    pub skipped_bytes: u64,
    /// Connections switched away from HTTP (101, CONNECT).
    pub tunnels: u64,
    /// Playlists read.
    pub playlists: u64,
    /// Playlist bodies that did not parse.
    pub bad_playlists: u64,
    /// Playlist bodies longer than [`HttpConfig::max_playlist_bytes`].
    pub oversize_playlists: u64,
    /// Segment transactions given an advertised duration by the flow's index.
    pub annotated: u64,
}

impl HttpStats {
    const NAMES: [&'static str; 21] = [
        "requests",
        "responses",
        "interim",
        "transactions",
        "request_only",
        "response_only",
        "evicted",
        "bad_heads",
        "oversize_heads",
        "incomplete_heads",
        "bad_chunks",
        "incomplete_bodies",
        "gaps",
        "gap_bytes",
        "resyncs",
        "skipped_bytes",
        "tunnels",
        "playlists",
        "bad_playlists",
        "oversize_playlists",
        "annotated",
    ];

    fn values(&self) -> [u64; 21] {
        [
            self.requests,
            self.responses,
            self.interim,
            self.transactions,
            self.request_only,
            self.response_only,
            self.evicted,
            self.bad_heads,
            self.oversize_heads,
            self.incomplete_heads,
            self.bad_chunks,
            self.incomplete_bodies,
            self.gaps,
            self.gap_bytes,
            self.resyncs,
            self.skipped_bytes,
            self.tunnels,
            self.playlists,
            self.bad_playlists,
            self.oversize_playlists,
            self.annotated,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u64; 21] {
        [
            &mut self.requests,
            &mut self.responses,
            &mut self.interim,
            &mut self.transactions,
            &mut self.request_only,
            &mut self.response_only,
            &mut self.evicted,
            &mut self.bad_heads,
            &mut self.oversize_heads,
            &mut self.incomplete_heads,
            &mut self.bad_chunks,
            &mut self.incomplete_bodies,
            &mut self.gaps,
            &mut self.gap_bytes,
            &mut self.resyncs,
            &mut self.skipped_bytes,
            &mut self.tunnels,
            &mut self.playlists,
            &mut self.bad_playlists,
            &mut self.oversize_playlists,
            &mut self.annotated,
        ]
    }

    /// Adds another flow's counts.
    pub fn merge(&mut self, other: &HttpStats) {
        for (mine, theirs) in self.fields_mut().into_iter().zip(other.values()) {
            *mine += theirs;
        }
    }

    /// Every counter with its name, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        Self::NAMES.into_iter().zip(self.values())
    }

    /// Messages or framing not read, all kinds together.
    pub fn malformed(&self) -> u64 {
        self.bad_heads + self.oversize_heads + self.bad_chunks + self.bad_playlists
    }
}
