//! [`HttpFlow`]: one TCP connection's HTTP/1.x state (see the
//! [module documentation](super)).

use std::collections::VecDeque;

use super::playlist::{Playlist, PlaylistIndex};
use super::template::{self, host_of, is_dash_type, media_type, url_facts, UrlFacts};
use super::{
    Dir, HttpConfig, HttpStats, HttpTransaction, Method, Pairing, Role, Transfer, MAX_HEADERS,
};

/// A head buffer that held more than this is released once its head is read.
const KEEP_BUFFER: usize = 4096;
/// Longest request line looked at when searching for a message start.
const MAX_LINE: usize = 8192;
/// Hex digits of a chunk size (larger sizes are refused).
const MAX_CHUNK_DIGITS: u32 = 15;
/// Methods a resynchronisation or probe accepts at a line start.
const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// Where transactions and TS body bytes go.
pub trait HttpSink {
    /// One finished transaction.
    fn transaction(&mut self, tx: HttpTransaction);

    /// Bytes of the body of the response of transaction `index` whose body is MPEG-TS
    /// (see [roles](super#roles)), in order, as they arrive (e.g. for
    /// [`crate::ts::TsAnalyzer::on_bytes`]). A gap in the body is reported by the
    /// transaction's [`HttpTransaction::missing_bytes`]. The default ignores them.
    fn body(&mut self, index: u64, ts_ns: i64, bytes: &[u8]) {
        let _ = (index, ts_ns, bytes);
    }

    /// The run's playlist index, when the sink keeps one: the flow's playlists go into
    /// it and its segments are looked up there, instead of in an index of the flow's own
    /// (a player opens a new connection every few requests, and its first requests on
    /// it may be segments of a playlist read on another). The default keeps none.
    fn playlist_index(&mut self) -> Option<&mut PlaylistIndex> {
        None
    }
}

impl<F: FnMut(HttpTransaction)> HttpSink for F {
    fn transaction(&mut self, tx: HttpTransaction) {
        self(tx)
    }
}

/// A request waiting for its response.
#[derive(Debug)]
struct Pending {
    index: u64,
    ts_ns: i64,
    method: Method,
    host: Option<String>,
    /// The raw target, to resolve a playlist's URIs; never emitted.
    target: String,
    url: UrlFacts,
    body_bytes: u64,
}

impl Pending {
    fn into_tx(self, pairing: Pairing, ct: Option<&str>) -> (HttpTransaction, String) {
        let role = template::role(Some(&self.url), ct);
        let tx = HttpTransaction {
            index: self.index,
            pairing,
            request_ts_ns: Some(self.ts_ns),
            response_ts_ns: None,
            response_end_ns: None,
            method: Some(self.method),
            host: self.host,
            path_template: Some(self.url.template),
            extension: self.url.extension,
            query_names: self.url.query_names,
            request_body_bytes: self.body_bytes,
            status: None,
            content_type: None,
            content_length: None,
            body_bytes: 0,
            missing_bytes: 0,
            transfer: None,
            role,
            complete: false,
            duration_s: None,
            bitrate_bps: None,
            rendition: None,
            playlist: None,
        };
        (tx, self.target)
    }
}

/// Where a chunked body stands (RFC 9112 section 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// In a chunk-size line: the size so far, its digits, whether an extension or
    /// whitespace started.
    Size { value: u64, digits: u32, tail: bool },
    /// In chunk data: bytes left.
    Data(u64),
    /// After chunk data: expecting CRLF.
    DataEnd,
    /// In the trailer section: whether the current line is still empty, its length.
    Trailer { empty: bool, len: usize },
}

const CHUNK_START: Chunk = Chunk::Size {
    value: 0,
    digits: 0,
    tail: false,
};

/// How the current body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked(Chunk),
    Close,
}

/// Where a direction stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// At or in a head.
    #[default]
    Head,
    /// In a body.
    Body(Body),
    /// Framing lost: looking for a message start.
    Lost,
    /// Not HTTP any more (tunnel, upgrade, or the flow finished).
    Off,
}

/// One direction.
#[derive(Debug, Default)]
struct Side {
    phase: Phase,
    /// The head being gathered when it spans calls.
    head: Vec<u8>,
    /// Time of the head's first byte.
    head_ts: i64,
}

/// A playlist body being gathered.
#[derive(Debug)]
struct PlaylistBuf {
    dash: bool,
    buf: Vec<u8>,
    over: bool,
}

/// The response being read.
#[derive(Debug)]
struct Current {
    tx: HttpTransaction,
    /// The request's raw target (empty for a response alone).
    target: String,
    ts_body: bool,
    playlist: Option<PlaylistBuf>,
}

/// The HTTP/1.x state of one TCP connection: see the [module documentation](super).
#[derive(Debug)]
pub struct HttpFlow {
    config: HttpConfig,
    stats: HttpStats,
    sides: [Side; 2],
    pending: VecDeque<Pending>,
    current: Option<Box<Current>>,
    /// Index of the request whose body the client side is reading.
    request_body: Option<u64>,
    next_index: u64,
    /// The server side lost its framing at a head with requests waiting: at the
    /// resynchronisation, the oldest is taken as answered in the lost bytes.
    drop_on_resync: bool,
    index: Option<Box<PlaylistIndex>>,
}

/// Finds the end of a head (just past its blank line) in `buf`, looking at line feeds
/// from `from` on.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        let nl = buf[i..].iter().position(|&b| b == b'\n')? + i;
        match buf.get(nl + 1..) {
            Some([b'\n', ..]) => return Some(nl + 2),
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Whether `bytes` start like a status line (`HTTP/1.x NNN`) or, for the client side, a
/// request line: a method of [`METHODS`], and either the whole line ending in
/// ` HTTP/1.0` or ` HTTP/1.1`, or no line end in `bytes` and a target starting with `/`.
fn starts_message(bytes: &[u8], server: bool) -> bool {
    if server {
        return match bytes.get(..12) {
            Some([b'H', b'T', b'T', b'P', b'/', b'1', b'.', v, b' ', a, b, c]) => {
                v.is_ascii_digit() && [a, b, c].iter().all(|d| d.is_ascii_digit())
            }
            _ => false,
        };
    }
    let Some(m) = METHODS.iter().find(|m| bytes.starts_with(m)) else {
        return false;
    };
    let window = &bytes[..bytes.len().min(MAX_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            let line = &window[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            line.len() > m.len() + 9
                && (line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0"))
        }
        None => bytes.len() == window.len() && bytes.get(m.len()) == Some(&b'/'),
    }
}

/// Where in `bytes` a message starts (at 0 or just after a line feed), for a direction
/// that lost its framing.
fn find_start(bytes: &[u8], server: bool) -> Option<usize> {
    let mut at = 0;
    loop {
        if starts_message(&bytes[at..], server) {
            return Some(at);
        }
        at += bytes[at..].iter().position(|&b| b == b'\n')? + 1;
        if at >= bytes.len() {
            return None;
        }
    }
}

/// Whether a direction's first bytes start an HTTP/1.x message: a request line for
/// [`Dir::ClientToServer`] (a known method, then the line ending in `HTTP/1.x`, or a
/// target starting with `/` when the line goes on past `bytes`), a status line
/// `HTTP/1.x NNN` for [`Dir::ServerToClient`].
pub fn looks_like_http(dir: Dir, bytes: &[u8]) -> bool {
    starts_message(bytes, dir == Dir::ServerToClient)
}

/// The header fields a message's framing and row need.
#[derive(Default)]
struct Fields<'h> {
    host: Option<&'h [u8]>,
    content_type: Option<&'h [u8]>,
    /// The Content-Length, `Err` when values differ or do not parse.
    length: Option<Result<u64, ()>>,
    /// Transfer-Encoding present; its last coding is chunked.
    te: Option<bool>,
}

fn fields<'h>(headers: &[httparse::Header<'h>]) -> Fields<'h> {
    let mut f = Fields::default();
    for h in headers {
        if h.name.eq_ignore_ascii_case("host") {
            f.host.get_or_insert(h.value);
        } else if h.name.eq_ignore_ascii_case("content-type") {
            f.content_type.get_or_insert(h.value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or(());
            f.length = Some(match (f.length, v) {
                (None, v) => v,
                (Some(Ok(a)), Ok(b)) if a == b => Ok(a),
                _ => Err(()),
            });
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            f.te = Some(last.eq_ignore_ascii_case(b"chunked"));
        }
    }
    f
}

impl HttpFlow {
    /// The state of a new connection. Directions are the flow's:
    /// [`Dir::ClientToServer`] is from the side that opened it.
    pub fn new(config: HttpConfig) -> HttpFlow {
        HttpFlow {
            config,
            stats: HttpStats::default(),
            sides: Default::default(),
            pending: VecDeque::new(),
            current: None,
            request_body: None,
            next_index: 0,
            drop_on_resync: false,
            index: None,
        }
    }

    /// What this flow read so far.
    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    /// Requests waiting for their response.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether the connection is still read as HTTP (not switched to a tunnel or another
    /// protocol, not finished).
    pub fn is_active(&self) -> bool {
        self.sides.iter().any(|s| s.phase != Phase::Off)
    }

    /// The flow's own playlist index, once a playlist was read.
    pub fn playlist_index(&self) -> Option<&PlaylistIndex> {
        self.index.as_deref()
    }

    /// The next bytes of one direction, in order, cut anyhow; `ts_ns` is the time of the
    /// segment that brought them.
    pub fn on_stream(&mut self, dir: Dir, ts_ns: i64, bytes: &[u8], out: &mut impl HttpSink) {
        let d = dir.index();
        let server = dir == Dir::ServerToClient;
        let mut rest = bytes;
        while !rest.is_empty() {
            let used = match self.sides[d].phase {
                Phase::Off => return,
                Phase::Lost => match find_start(rest, server) {
                    Some(at) => {
                        self.stats.skipped_bytes += at as u64;
                        self.stats.resyncs += 1;
                        self.sides[d].phase = Phase::Head;
                        if server && self.drop_on_resync {
                            self.drop_on_resync = false;
                            if let Some(p) = self.pending.pop_front() {
                                self.emit_request_only(p, out);
                            }
                        }
                        at
                    }
                    None => {
                        self.stats.skipped_bytes += rest.len() as u64;
                        return;
                    }
                },
                Phase::Head => self.head_bytes(d, ts_ns, rest, out),
                Phase::Body(body) => self.body_bytes(d, body, ts_ns, rest, out),
            };
            rest = &rest[used..];
        }
    }

    /// `missing` bytes of one direction were lost before the next
    /// [`HttpFlow::on_stream`] call (see [gaps](super#gaps-and-resynchronisation)); a
    /// gap of 0 bytes marks a direction picked up in the middle.
    pub fn on_gap(&mut self, dir: Dir, ts_ns: i64, missing: u64, out: &mut impl HttpSink) {
        let d = dir.index();
        let server = dir == Dir::ServerToClient;
        self.stats.gaps += 1;
        self.stats.gap_bytes += missing;
        match self.sides[d].phase {
            Phase::Off | Phase::Lost => {}
            Phase::Head => {
                let partial = !self.sides[d].head.is_empty();
                if partial {
                    self.stats.incomplete_heads += 1;
                }
                // Lost bytes at or in a response head: the oldest request's answer.
                if server && (partial || missing > 0) && !self.pending.is_empty() {
                    self.drop_on_resync = true;
                }
                self.lose(d, ts_ns, out);
            }
            Phase::Body(Body::Close) => self.note_missing(d, missing),
            Phase::Body(Body::Length(left)) => {
                self.note_missing(d, missing.min(left));
                if missing < left {
                    self.sides[d].phase = Phase::Body(Body::Length(left - missing));
                } else {
                    self.end_message(d, false, out);
                    if missing > left {
                        self.drop_on_resync = server && !self.pending.is_empty();
                        self.lose(d, ts_ns, out);
                    }
                }
            }
            Phase::Body(Body::Chunked(Chunk::Data(left))) if missing <= left => {
                self.note_missing(d, missing);
                let next = if missing < left {
                    Chunk::Data(left - missing)
                } else {
                    Chunk::DataEnd
                };
                self.sides[d].phase = Phase::Body(Body::Chunked(next));
            }
            Phase::Body(Body::Chunked(_)) => {
                self.note_missing(d, missing);
                self.end_message(d, false, out);
                self.drop_on_resync = server && !self.pending.is_empty();
                self.lose(d, ts_ns, out);
            }
        }
    }

    /// The connection ended at `end_ns`: a body read until close ends there (complete
    /// unless a gap hit it), any other body being read is emitted incomplete, partial
    /// heads are dropped and counted, and waiting requests are emitted alone. Later
    /// calls are ignored.
    pub fn finish(&mut self, end_ns: i64, out: &mut impl HttpSink) {
        let _ = end_ns;
        for side in &mut self.sides {
            if side.phase == Phase::Head && !side.head.is_empty() {
                self.stats.incomplete_heads += 1;
            }
        }
        let s = Dir::ServerToClient.index();
        if self.current.is_some() {
            let close = self.sides[s].phase == Phase::Body(Body::Close);
            self.end_message(s, close, out);
        }
        while let Some(p) = self.pending.pop_front() {
            self.emit_request_only(p, out);
        }
        for side in &mut self.sides {
            side.phase = Phase::Off;
            side.head = Vec::new();
        }
    }

    // ---------------------------------------------------------------------------------
    // Heads

    /// Bytes of a direction at or in a head; returns how many it used.
    fn head_bytes(&mut self, d: usize, ts_ns: i64, rest: &[u8], out: &mut impl HttpSink) -> usize {
        let max = self.config.max_head_bytes;
        let side = &mut self.sides[d];
        if side.head.is_empty() {
            // Empty lines before a message are skipped (RFC 9112 section 2.2).
            let blank = rest
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if blank > 0 {
                return blank;
            }
            side.head_ts = ts_ns;
            return match head_end(rest, 0) {
                Some(end) if end <= max => {
                    self.parse_head(d, ts_ns, ts_ns, &rest[..end], out);
                    end
                }
                Some(end) => {
                    self.oversize(d, ts_ns, out);
                    end
                }
                None if rest.len() > max => {
                    self.oversize(d, ts_ns, out);
                    rest.len()
                }
                None => {
                    side.head.extend_from_slice(rest);
                    rest.len()
                }
            };
        }
        let old = side.head.len();
        let take = rest.len().min(max + 1 - old.min(max));
        side.head.extend_from_slice(&rest[..take]);
        match head_end(&side.head, old.saturating_sub(2)) {
            Some(end) if end <= max => {
                let buf = std::mem::take(&mut self.sides[d].head);
                let head_ts = self.sides[d].head_ts;
                self.parse_head(d, head_ts, ts_ns, &buf[..end], out);
                let mut buf = buf;
                buf.clear();
                if buf.capacity() <= KEEP_BUFFER && self.sides[d].phase != Phase::Off {
                    self.sides[d].head = buf;
                }
                end - old
            }
            Some(end) => {
                self.oversize(d, ts_ns, out);
                end - old
            }
            None if self.sides[d].head.len() > max => {
                self.oversize(d, ts_ns, out);
                take
            }
            None => take,
        }
    }

    fn oversize(&mut self, d: usize, ts_ns: i64, out: &mut impl HttpSink) {
        self.stats.oversize_heads += 1;
        if d == Dir::ServerToClient.index() && !self.pending.is_empty() {
            self.drop_on_resync = true;
        }
        self.lose(d, ts_ns, out);
    }

    /// The direction lost its framing.
    fn lose(&mut self, d: usize, _ts_ns: i64, out: &mut impl HttpSink) {
        if d == Dir::ServerToClient.index() && self.current.is_some() {
            self.end_message(d, false, out);
        }
        let side = &mut self.sides[d];
        side.head.clear();
        if side.head.capacity() > KEEP_BUFFER {
            side.head = Vec::new();
        }
        if side.phase != Phase::Off {
            side.phase = Phase::Lost;
        }
    }

    /// A whole head: `head_ts` is its first byte's time, `ts_ns` its last's.
    fn parse_head(
        &mut self,
        d: usize,
        head_ts: i64,
        ts_ns: i64,
        head: &[u8],
        out: &mut impl HttpSink,
    ) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        if d == Dir::ClientToServer.index() {
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(head) {
                Ok(httparse::Status::Complete(_)) => {
                    let method = Method::from_token(req.method.unwrap_or(""));
                    let target = req.path.unwrap_or("");
                    let f = fields(req.headers);
                    self.request(d, head_ts, method, target, &f, out);
                }
                _ => {
                    self.stats.bad_heads += 1;
                    self.lose(d, ts_ns, out);
                }
            }
        } else {
            let mut resp = httparse::Response::new(&mut headers);
            let parsed = httparse::ParserConfig::default()
                .allow_spaces_after_header_name_in_responses(true)
                .allow_obsolete_multiline_headers_in_responses(true)
                .allow_multiple_spaces_in_response_status_delimiters(true)
                .parse_response(&mut resp, head);
            match parsed {
                Ok(httparse::Status::Complete(_)) => {
                    let code = resp.code.unwrap_or(0);
                    let f = fields(resp.headers);
                    self.response(d, head_ts, ts_ns, code, &f, out);
                }
                _ => {
                    self.stats.bad_heads += 1;
                    if !self.pending.is_empty() {
                        self.drop_on_resync = true;
                    }
                    self.lose(d, ts_ns, out);
                }
            }
        }
    }

    fn request(
        &mut self,
        d: usize,
        head_ts: i64,
        method: Method,
        target: &str,
        f: &Fields<'_>,
        out: &mut impl HttpSink,
    ) {
        self.stats.requests += 1;
        let url = url_facts(target);
        let host = f.host.and_then(host_of).or_else(|| {
            let rest = target
                .strip_prefix("http://")
                .or_else(|| target.strip_prefix("https://"))?;
            host_of(rest.split(['/', '?']).next().unwrap_or("").as_bytes())
        });
        if self.pending.len() >= self.config.max_in_flight.max(1) {
            if let Some(p) = self.pending.pop_front() {
                self.stats.evicted += 1;
                self.emit_request_only(p, out);
            }
        }
        let index = self.next_index;
        self.next_index += 1;
        self.pending.push_back(Pending {
            index,
            ts_ns: head_ts,
            method,
            host,
            target: target.to_owned(),
            url,
            body_bytes: 0,
        });
        self.request_body = Some(index);
        self.sides[d].phase = match (f.te, f.length) {
            (Some(true), _) => Phase::Body(Body::Chunked(CHUNK_START)),
            // A request with another transfer coding cannot be delimited (RFC 9112
            // section 6.3, item 4).
            (Some(false), _) | (None, Some(Err(()))) => {
                self.stats.bad_heads += 1;
                Phase::Lost
            }
            (None, Some(Ok(n))) if n > 0 => Phase::Body(Body::Length(n)),
            _ => Phase::Head,
        };
    }

    fn response(
        &mut self,
        d: usize,
        head_ts: i64,
        ts_ns: i64,
        code: u16,
        f: &Fields<'_>,
        out: &mut impl HttpSink,
    ) {
        if (100..200).contains(&code) && code != 101 {
            self.stats.interim += 1;
            return;
        }
        self.stats.responses += 1;
        let ct = f.content_type.and_then(media_type);
        let answered = self.pending.front().is_some_and(|p| p.ts_ns <= head_ts);
        let (mut tx, target, url) = if answered {
            let p = self.pending.pop_front().expect("a waiting request");
            let url = p.url.clone();
            let (tx, target) = p.into_tx(Pairing::Answered, ct.as_deref());
            (tx, target, Some(url))
        } else {
            let index = self.next_index;
            self.next_index += 1;
            let tx = HttpTransaction {
                index,
                pairing: Pairing::ResponseOnly,
                request_ts_ns: None,
                response_ts_ns: None,
                response_end_ns: None,
                method: None,
                host: None,
                path_template: None,
                extension: None,
                query_names: None,
                request_body_bytes: 0,
                status: None,
                content_type: None,
                content_length: None,
                body_bytes: 0,
                missing_bytes: 0,
                transfer: None,
                role: template::role(None, ct.as_deref()),
                complete: false,
                duration_s: None,
                bitrate_bps: None,
                rendition: None,
                playlist: None,
            };
            (tx, String::new(), None)
        };
        tx.response_ts_ns = Some(head_ts);
        tx.response_end_ns = Some(ts_ns);
        tx.status = Some(code);
        tx.content_length = f.length.and_then(Result::ok);
        let method = tx.method;
        let role = tx.role;
        let ts_body = template::is_ts_body(url.as_ref(), ct.as_deref(), role);
        let dash = ct.as_deref().is_some_and(is_dash_type)
            || url
                .as_ref()
                .is_some_and(|u| u.extension.as_deref() == Some("mpd"));
        tx.content_type = ct;

        let tunnel = code == 101 || (method == Some(Method::Connect) && (200..300).contains(&code));
        if tunnel {
            self.stats.tunnels += 1;
            tx.transfer = Some(Transfer::None);
            tx.complete = true;
            self.emit(tx, out);
            for side in &mut self.sides {
                side.phase = Phase::Off;
                side.head = Vec::new();
            }
            return;
        }
        let no_body = method == Some(Method::Head) || code == 204 || code == 304 || code < 200;
        let body = if no_body {
            None
        } else {
            match (f.te, f.length) {
                (Some(true), _) => Some(Body::Chunked(CHUNK_START)),
                (Some(false), _) => Some(Body::Close),
                (None, Some(Ok(0))) => None,
                (None, Some(Ok(n))) => Some(Body::Length(n)),
                (None, Some(Err(()))) => {
                    self.stats.bad_heads += 1;
                    Some(Body::Close)
                }
                (None, None) => Some(Body::Close),
            }
        };
        tx.transfer = Some(match body {
            None => Transfer::None,
            Some(Body::Length(_)) => Transfer::Length,
            Some(Body::Chunked(_)) => Transfer::Chunked,
            Some(Body::Close) => Transfer::Close,
        });
        let playlist = (role == Role::Playlist && (200..300).contains(&code) && body.is_some())
            .then(|| PlaylistBuf {
                dash,
                buf: Vec::new(),
                over: false,
            });
        self.current = Some(Box::new(Current {
            tx,
            target,
            ts_body,
            playlist,
        }));
        match body {
            None => self.end_message(d, true, out),
            Some(b) => self.sides[d].phase = Phase::Body(b),
        }
    }

    // ---------------------------------------------------------------------------------
    // Bodies

    /// Bytes of a direction in a body; returns how many it used.
    fn body_bytes(
        &mut self,
        d: usize,
        body: Body,
        ts_ns: i64,
        rest: &[u8],
        out: &mut impl HttpSink,
    ) -> usize {
        match body {
            Body::Close => {
                self.deliver(d, ts_ns, rest, out);
                rest.len()
            }
            Body::Length(left) => {
                let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                self.deliver(d, ts_ns, &rest[..take], out);
                let left = left - take as u64;
                if left == 0 {
                    self.end_message(d, true, out);
                } else {
                    self.sides[d].phase = Phase::Body(Body::Length(left));
                }
                take
            }
            Body::Chunked(c) => self.chunked(d, c, ts_ns, rest, out),
        }
    }

    /// Bytes of a chunked body (RFC 9112 section 7.1); returns how many it used.
    fn chunked(
        &mut self,
        d: usize,
        mut c: Chunk,
        ts_ns: i64,
        rest: &[u8],
        out: &mut impl HttpSink,
    ) -> usize {
        let max_trailer = self.config.max_head_bytes;
        let mut i = 0;
        while i < rest.len() {
            if let Chunk::Data(left) = c {
                let take = (rest.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                self.deliver(d, ts_ns, &rest[i..i + take], out);
                i += take;
                let left = left - take as u64;
                c = if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                };
                continue;
            }
            let b = rest[i];
            i += 1;
            let next = match c {
                Chunk::Size {
                    value,
                    digits,
                    tail,
                } => match b {
                    b'\n' if digits > 0 => {
                        if value == 0 {
                            Some(Chunk::Trailer {
                                empty: true,
                                len: 0,
                            })
                        } else {
                            Some(Chunk::Data(value))
                        }
                    }
                    _ if tail => (b != b'\n').then_some(c),
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' if digits < MAX_CHUNK_DIGITS => {
                        let v = char::from(b).to_digit(16).unwrap_or(0);
                        Some(Chunk::Size {
                            value: value << 4 | u64::from(v),
                            digits: digits + 1,
                            tail,
                        })
                    }
                    b';' | b' ' | b'\t' | b'\r' if digits > 0 => Some(Chunk::Size {
                        value,
                        digits,
                        tail: true,
                    }),
                    _ => None,
                },
                Chunk::DataEnd => match b {
                    b'\r' => Some(Chunk::DataEnd),
                    b'\n' => Some(CHUNK_START),
                    _ => None,
                },
                Chunk::Trailer { empty, len } => match b {
                    b'\n' if empty => {
                        self.end_message(d, true, out);
                        return i;
                    }
                    b'\n' => Some(Chunk::Trailer { empty: true, len }),
                    b'\r' => Some(Chunk::Trailer { empty, len }),
                    _ if len < max_trailer => Some(Chunk::Trailer {
                        empty: false,
                        len: len + 1,
                    }),
                    _ => None,
                },
                Chunk::Data(_) => Some(c),
            };
            match next {
                Some(n) => c = n,
                None => {
                    self.stats.bad_chunks += 1;
                    self.end_message(d, false, out);
                    let server = d == Dir::ServerToClient.index();
                    self.drop_on_resync = server && !self.pending.is_empty();
                    self.lose(d, ts_ns, out);
                    return i - 1;
                }
            }
        }
        self.sides[d].phase = Phase::Body(Body::Chunked(c));
        rest.len()
    }

    /// Body bytes of the current message.
    fn deliver(&mut self, d: usize, ts_ns: i64, bytes: &[u8], out: &mut impl HttpSink) {
        if bytes.is_empty() {
            return;
        }
        if d == Dir::ClientToServer.index() {
            if let Some(i) = self.request_body {
                if let Some(p) = self.pending.iter_mut().rev().find(|p| p.index == i) {
                    p.body_bytes += bytes.len() as u64;
                }
            }
            return;
        }
        let max = self.config.max_playlist_bytes;
        let Some(cur) = self.current.as_deref_mut() else {
            return;
        };
        cur.tx.body_bytes += bytes.len() as u64;
        cur.tx.response_end_ns = Some(ts_ns);
        if cur.ts_body {
            out.body(cur.tx.index, ts_ns, bytes);
        }
        if let Some(pb) = cur.playlist.as_mut() {
            if !pb.over {
                if pb.buf.len() + bytes.len() > max {
                    pb.over = true;
                    pb.buf = Vec::new();
                    self.stats.oversize_playlists += 1;
                } else {
                    pb.buf.extend_from_slice(bytes);
                }
            }
        }
    }

    fn note_missing(&mut self, d: usize, missing: u64) {
        if d == Dir::ServerToClient.index() {
            if let Some(cur) = self.current.as_deref_mut() {
                cur.tx.missing_bytes += missing;
            }
        }
    }

    /// The current message of a direction ended (`complete`: read to its end).
    fn end_message(&mut self, d: usize, complete: bool, out: &mut impl HttpSink) {
        if self.sides[d].phase != Phase::Off {
            self.sides[d].phase = Phase::Head;
        }
        if d == Dir::ClientToServer.index() {
            self.request_body = None;
            if !complete {
                self.stats.incomplete_bodies += 1;
            }
            return;
        }
        let Some(cur) = self.current.take() else {
            return;
        };
        let Current {
            mut tx,
            target,
            playlist,
            ..
        } = *cur;
        tx.complete = complete && tx.missing_bytes == 0;
        if !tx.complete {
            self.stats.incomplete_bodies += 1;
        }
        if let Some(pb) = playlist.filter(|pb| !pb.over && tx.complete) {
            let parsed = if pb.dash {
                Playlist::parse_dash(&pb.buf, tx.host.as_deref(), &target)
            } else {
                Playlist::parse_hls(&pb.buf, tx.host.as_deref(), &target)
            };
            match parsed {
                Some(pl) => {
                    self.stats.playlists += 1;
                    let entries = self.config.index_entries;
                    match out.playlist_index() {
                        Some(run) => run.insert(&pl),
                        None => self
                            .index
                            .get_or_insert_with(|| Box::new(PlaylistIndex::new(entries)))
                            .insert(&pl),
                    }
                    tx.playlist = Some(Box::new(pl));
                }
                None => self.stats.bad_playlists += 1,
            }
        }
        let annotated = match out.playlist_index() {
            Some(run) => run.annotate_path(&mut tx, Some(&target)),
            None => self
                .index
                .as_deref()
                .is_some_and(|index| index.annotate_path(&mut tx, Some(&target))),
        };
        if annotated {
            self.stats.annotated += 1;
        }
        self.emit(tx, out);
    }

    fn emit_request_only(&mut self, p: Pending, out: &mut impl HttpSink) {
        let (tx, _) = p.into_tx(Pairing::RequestOnly, None);
        self.emit(tx, out);
    }

    fn emit(&mut self, tx: HttpTransaction, out: &mut impl HttpSink) {
        self.stats.transactions += 1;
        match tx.pairing {
            Pairing::Answered => {}
            Pairing::RequestOnly => self.stats.request_only += 1,
            Pairing::ResponseOnly => self.stats.response_only += 1,
        }
        out.transaction(tx);
    }
}
