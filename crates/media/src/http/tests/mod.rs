//! Tests of the HTTP module: framing, pairing, gaps, templates, roles and playlists.

use proptest::prelude::*;

use super::*;

const C: Dir = Dir::ClientToServer;
const S: Dir = Dir::ServerToClient;

/// A sink that keeps everything.
#[derive(Default)]
struct Collect {
    txs: Vec<HttpTransaction>,
    /// (transaction index, bytes) of TS bodies, bytes concatenated per index.
    bodies: Vec<(u64, Vec<u8>)>,
}

impl HttpSink for Collect {
    fn transaction(&mut self, tx: HttpTransaction) {
        self.txs.push(tx);
    }
    fn body(&mut self, index: u64, _ts_ns: i64, bytes: &[u8]) {
        match self.bodies.last_mut() {
            Some((i, b)) if *i == index => b.extend_from_slice(bytes),
            _ => self.bodies.push((index, bytes.to_vec())),
        }
    }
}

/// One step of a test stream.
#[derive(Clone, Debug)]
enum Step {
    Bytes(Dir, Vec<u8>),
    Gap(Dir, u64),
}

fn b(dir: Dir, s: &str) -> Step {
    Step::Bytes(dir, s.as_bytes().to_vec())
}

fn run_with(config: HttpConfig, steps: &[Step]) -> (Collect, HttpStats) {
    let mut flow = HttpFlow::new(config);
    let mut out = Collect::default();
    let mut ts = 0;
    for step in steps {
        ts += 1000;
        match step {
            Step::Bytes(d, bytes) => flow.on_stream(*d, ts, bytes, &mut out),
            Step::Gap(d, n) => flow.on_gap(*d, ts, *n, &mut out),
        }
    }
    flow.finish(ts + 1000, &mut out);
    let stats = *flow.stats();
    assert_eq!(stats.transactions, out.txs.len() as u64);
    (out, stats)
}

fn run(steps: &[Step]) -> (Collect, HttpStats) {
    run_with(HttpConfig::default(), steps)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: CDN.Example.com:8080\r\nUser-Agent: t\r\n\r\n")
}

fn ok(ct: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn keep_alive_pairs_in_order_with_lengths() {
    let (out, stats) = run(&[
        b(C, &get("/seg/1.ts")),
        b(S, &ok("video/MP2T", "0123456789")),
        b(C, &get("/seg/2.ts?token=abc")),
        b(S, &ok("video/mp2t; charset=x", "01234")),
    ]);
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.responses, 2);
    let [a, b] = &out.txs[..] else {
        panic!("two transactions: {:?}", out.txs)
    };
    assert_eq!(a.pairing, Pairing::Answered);
    assert_eq!(a.index, 0);
    assert_eq!(a.method, Some(Method::Get));
    assert_eq!(a.host.as_deref(), Some("cdn.example.com"));
    assert_eq!(a.path_template.as_deref(), Some("/seg/{n}.ts"));
    assert_eq!(a.extension.as_deref(), Some("ts"));
    assert_eq!(a.status, Some(200));
    assert_eq!(a.content_type.as_deref(), Some("video/mp2t"));
    assert_eq!(a.content_length, Some(10));
    assert_eq!(a.body_bytes, 10);
    assert_eq!(a.transfer, Some(Transfer::Length));
    assert_eq!(a.role, Role::Segment);
    assert!(a.complete);
    assert_eq!(a.request_ts_ns, Some(1000));
    assert_eq!(a.response_ts_ns, Some(2000));
    assert_eq!(a.response_end_ns, Some(2000));
    assert_eq!(b.index, 1);
    assert_eq!(b.query_names.as_deref(), Some("token"));
    assert_eq!(b.body_bytes, 5);
    // Both bodies are TS: handed to the sink.
    assert_eq!(
        out.bodies,
        vec![(0, b"0123456789".to_vec()), (1, b"01234".to_vec())]
    );
}

#[test]
fn pipelined_requests_answered_in_order() {
    let reqs = format!("{}{}{}", get("/a.m4s"), get("/b.m4s"), get("/c.m4s"));
    let resps = format!(
        "{}{}{}",
        ok("video/iso.segment", "aa"),
        "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!",
        ok("video/mp4", "cccc")
    );
    let (out, stats) = run(&[b(C, &reqs), b(S, &resps)]);
    assert_eq!(stats.requests, 3);
    let got: Vec<_> = out
        .txs
        .iter()
        .map(|t| {
            (
                t.index,
                t.path_template.clone().unwrap(),
                t.status,
                t.body_bytes,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "/a.m4s".to_owned(), Some(200), 2),
            (1, "/b.m4s".to_owned(), Some(404), 3),
            (2, "/c.m4s".to_owned(), Some(200), 4),
        ]
    );
    assert!(out
        .txs
        .iter()
        .all(|t| t.role == Role::Segment && t.complete));
}

#[test]
fn in_flight_bound_evicts_the_oldest() {
    let config = HttpConfig {
        max_in_flight: 2,
        ..HttpConfig::default()
    };
    let (out, stats) = run_with(
        config,
        &[b(C, &get("/1")), b(C, &get("/2")), b(C, &get("/3"))],
    );
    assert_eq!(stats.evicted, 1);
    assert_eq!(stats.request_only, 3);
    let idx: Vec<u64> = out.txs.iter().map(|t| t.index).collect();
    assert_eq!(idx, vec![0, 1, 2]);
}

const CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\
Content-Type: application/vnd.apple.mpegurl\r\n\r\n\
5;ext=1\r\nhello\r\n1A \r\n0123456789abcdefghijklmnop\r\n0\r\nX-Trailer: y\r\n\r\n";

#[test]
fn chunked_body_with_extensions_and_trailer() {
    let (out, stats) = run(&[
        b(C, &get("/x")),
        b(S, CHUNKED),
        b(C, &get("/y")),
        b(S, &ok("text/plain", "z")),
    ]);
    assert_eq!(stats.bad_chunks, 0);
    assert_eq!(out.txs.len(), 2);
    assert_eq!(out.txs[0].transfer, Some(Transfer::Chunked));
    assert_eq!(out.txs[0].body_bytes, 5 + 26);
    assert!(out.txs[0].complete);
    assert_eq!(out.txs[1].status, Some(200));
    assert_eq!(out.txs[1].body_bytes, 1);
}

#[test]
fn bad_chunk_size_loses_framing_then_resyncs() {
    let bad = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    let (out, stats) = run(&[
        b(C, &get("/x")),
        b(S, bad),
        b(C, &get("/y")),
        b(S, &ok("text/plain", "abc")),
    ]);
    assert_eq!(stats.bad_chunks, 1);
    assert_eq!(stats.resyncs, 1);
    assert!(!out.txs[0].complete);
    assert_eq!(out.txs[1].status, Some(200));
    assert_eq!(out.txs[1].body_bytes, 3);
}

#[test]
fn head_and_304_and_204_have_no_body() {
    let (out, _) = run(&[
        b(
            C,
            "HEAD /a.ts HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n",
        ),
        b(
            S,
            "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        ),
        b(C, &get("/d")),
        b(S, &ok("text/plain", "dd")),
    ]);
    let got: Vec<_> = out
        .txs
        .iter()
        .map(|t| (t.status, t.transfer, t.body_bytes, t.complete))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(200), Some(Transfer::None), 0, true),
            (Some(304), Some(Transfer::None), 0, true),
            (Some(204), Some(Transfer::None), 0, true),
            (Some(200), Some(Transfer::Length), 2, true),
        ]
    );
    assert_eq!(out.txs[0].content_length, Some(1000));
}

#[test]
fn interim_100_continue_and_request_body() {
    let (out, stats) = run(&[
        b(
            C,
            "POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        ),
        b(S, "HTTP/1.1 100 Continue\r\n\r\n"),
        b(C, "data"),
        b(S, &ok("text/plain", "k")),
    ]);
    assert_eq!(stats.interim, 1);
    assert_eq!(out.txs.len(), 1);
    assert_eq!(out.txs[0].method, Some(Method::Post));
    assert_eq!(out.txs[0].request_body_bytes, 4);
    assert_eq!(out.txs[0].status, Some(200));
}

#[test]
fn close_delimited_body_ends_with_the_flow() {
    let (out, _) = run(&[
        b(C, "GET /live.ts HTTP/1.0\r\n\r\n"),
        b(S, "HTTP/1.0 200 OK\r\nContent-Type: video/MP2T\r\n\r\n"),
        b(S, "abc"),
        b(S, "def"),
    ]);
    assert_eq!(out.txs.len(), 1);
    assert_eq!(out.txs[0].transfer, Some(Transfer::Close));
    assert_eq!(out.txs[0].body_bytes, 6);
    assert!(out.txs[0].complete);
    assert_eq!(out.bodies, vec![(0, b"abcdef".to_vec())]);
    assert_eq!(out.txs[0].response_end_ns, Some(4000));
}

#[test]
fn response_alone_when_the_request_was_missed() {
    let (out, stats) = run(&[b(S, &ok("video/MP2T", "12345"))]);
    assert_eq!(stats.response_only, 1);
    let t = &out.txs[0];
    assert_eq!(t.pairing, Pairing::ResponseOnly);
    assert_eq!(t.role, Role::Segment);
    assert!(t.path_template.is_none() && t.host.is_none());
    assert_eq!(out.bodies.len(), 1);
}

#[test]
fn response_before_the_request_is_not_its_answer() {
    // The server side's bytes come first in time (a request lost in a gap).
    let (out, _) = run(&[b(S, &ok("text/plain", "x")), b(C, &get("/late"))]);
    let p: Vec<Pairing> = out.txs.iter().map(|t| t.pairing).collect();
    assert_eq!(p, vec![Pairing::ResponseOnly, Pairing::RequestOnly]);
}

#[test]
fn gap_inside_a_length_body_keeps_framing() {
    let (out, stats) = run(&[
        b(C, &get("/a.ts")),
        b(
            S,
            "HTTP/1.1 200 OK\r\nContent-Type: video/MP2T\r\nContent-Length: 10\r\n\r\n012",
        ),
        Step::Gap(S, 4),
        b(S, "789"),
        b(C, &get("/b.ts")),
        b(S, &ok("video/MP2T", "x")),
    ]);
    assert_eq!(stats.gaps, 1);
    assert_eq!(stats.resyncs, 0);
    assert_eq!(out.txs.len(), 2);
    assert_eq!(out.txs[0].body_bytes, 6);
    assert_eq!(out.txs[0].missing_bytes, 4);
    assert!(!out.txs[0].complete);
    assert!(out.txs[1].complete);
}

#[test]
fn gap_in_a_head_resyncs_at_the_next_status_line() {
    let (out, stats) = run(&[
        b(C, &get("/a")),
        b(S, "HTTP/1.1 200 OK\r\nContent-Le"),
        Step::Gap(S, 100),
        b(S, "garbage tail of a body\r\n"),
        b(C, &get("/b")),
        b(S, &ok("text/plain", "bb")),
    ]);
    assert_eq!(stats.incomplete_heads, 1);
    assert_eq!(stats.resyncs, 1);
    assert!(stats.skipped_bytes >= 24);
    // /a's response was lost in the gap: /a alone, then /b answered.
    let got: Vec<_> = out
        .txs
        .iter()
        .map(|t| (t.path_template.clone(), t.pairing, t.body_bytes))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("/a".to_owned()), Pairing::RequestOnly, 0),
            (Some("/b".to_owned()), Pairing::Answered, 2),
        ]
    );
}

#[test]
fn gap_in_the_client_side_resyncs_at_a_request_line() {
    let (out, stats) = run(&[
        b(C, "GET /a HTTP/1.1\r\nHo"),
        Step::Gap(C, 10),
        b(C, "xx\r\n\r\nGET /b/7 HTTP/1.1\r\nHost: h\r\n\r\n"),
        b(S, &ok("text/plain", "bb")),
    ]);
    assert_eq!(stats.resyncs, 1);
    assert_eq!(out.txs.len(), 1);
    assert_eq!(out.txs[0].path_template.as_deref(), Some("/b/{n}"));
    assert_eq!(out.txs[0].pairing, Pairing::Answered);
}

#[test]
fn oversize_head_is_counted_and_skipped() {
    let big = format!(
        "GET /big HTTP/1.1\r\nHost: h\r\nCookie: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let (out, stats) = run(&[
        b(C, &big[..9000]),
        b(C, &big[9000..]),
        b(C, &get("/next")),
        b(S, &ok("text/plain", "n")),
    ]);
    assert_eq!(stats.oversize_heads, 1);
    assert_eq!(stats.resyncs, 1);
    assert_eq!(out.txs.len(), 1);
    assert_eq!(out.txs[0].path_template.as_deref(), Some("/next"));
    assert_eq!(out.txs[0].status, Some(200));
}

#[test]
fn upgrade_stops_reading() {
    let (out, stats) = run(&[
        b(
            C,
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        ),
        b(
            S,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x01\x05hello",
        ),
        b(C, "\x01\x05garbage"),
    ]);
    assert_eq!(stats.tunnels, 1);
    assert_eq!(stats.bad_heads, 0);
    assert_eq!(out.txs.len(), 1);
    assert_eq!(out.txs[0].status, Some(101));
}

#[test]
fn probe() {
    assert!(looks_like_http(C, b"GET /x HTTP/1.1\r\n"));
    assert!(looks_like_http(C, b"POST /very/long/target/not/ended"));
    assert!(!looks_like_http(C, b"\x16\x03\x01\x02\x00"));
    assert!(!looks_like_http(C, b"GET x"));
    assert!(looks_like_http(S, b"HTTP/1.1 200 OK\r\n"));
    assert!(!looks_like_http(S, b"HTTP/2 200"));
}

// ---------------------------------------------------------------------------------------
// Any split of a stream gives the same transactions.

fn sample_stream() -> Vec<(Dir, Vec<u8>)> {
    let mut reqs = String::new();
    for p in ["/live/index.m3u8", "/live/seg-1.ts", "/x?a=1&b=2", "/head"] {
        reqs.push_str(&get(p));
    }
    reqs = reqs.replacen("GET /head", "HEAD /head", 1);
    let mut resps = String::new();
    resps.push_str(CHUNKED);
    resps.push_str(&ok("video/MP2T", &"G".repeat(400)));
    resps.push_str("HTTP/1.1 100 Continue\r\n\r\n");
    resps.push_str("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    resps.push_str("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n");
    vec![
        (C, reqs.into_bytes()),
        (S, resps.into_bytes()),
        (
            C,
            b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n".to_vec(),
        ),
        (
            S,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        ),
    ]
}

/// Feeds the stream cut at `cuts` (fractions of each piece), all with one time per
/// piece so that times do not depend on the cuts.
fn feed_split(
    stream: &[(Dir, Vec<u8>)],
    cuts: &[usize],
) -> (Vec<HttpTransaction>, Vec<(u64, Vec<u8>)>) {
    let mut flow = HttpFlow::new(HttpConfig::default());
    let mut out = Collect::default();
    let mut cut = cuts.iter().copied().cycle();
    for (i, (dir, bytes)) in stream.iter().enumerate() {
        let ts = (i as i64 + 1) * 1000;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = (cut.next().unwrap_or(rest.len()) % rest.len()).max(1);
            flow.on_stream(*dir, ts, &rest[..n], &mut out);
            rest = &rest[n..];
        }
    }
    flow.finish(10_000, &mut out);
    (out.txs, out.bodies)
}

#[test]
fn sample_stream_as_expected() {
    let (txs, bodies) = feed_split(&sample_stream(), &[usize::MAX]);
    let got: Vec<_> = txs
        .iter()
        .map(|t| {
            (
                t.index,
                t.status,
                t.transfer,
                t.body_bytes,
                t.complete,
                t.role,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                0,
                Some(200),
                Some(Transfer::Chunked),
                31,
                true,
                Role::Playlist
            ),
            (
                1,
                Some(200),
                Some(Transfer::Length),
                400,
                true,
                Role::Segment
            ),
            (2, Some(200), Some(Transfer::Chunked), 3, true, Role::Other),
            (3, Some(200), Some(Transfer::None), 0, true, Role::Other),
            (4, Some(200), Some(Transfer::Length), 2, true, Role::Other),
        ]
    );
    assert_eq!(txs[4].request_body_bytes, 2);
    assert_eq!(bodies, vec![(1, vec![b'G'; 400])]);
}

proptest! {
    #[test]
    fn any_split_gives_the_same_transactions(cuts in prop::collection::vec(1usize..64, 1..16)) {
        let stream = sample_stream();
        let whole = feed_split(&stream, &[usize::MAX]);
        let split = feed_split(&stream, &cuts);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn arbitrary_input_never_panics(
        steps in prop::collection::vec(
            (any::<bool>(), prop::collection::vec(any::<u8>(), 0..200), 0u64..50, any::<bool>()),
            0..20,
        )
    ) {
        let mut flow = HttpFlow::new(HttpConfig { max_head_bytes: 64, ..HttpConfig::default() });
        let mut out = Collect::default();
        for (i, (server, bytes, gap, with_gap)) in steps.iter().enumerate() {
            let dir = if *server { S } else { C };
            if *with_gap {
                flow.on_gap(dir, i as i64, *gap, &mut out);
            }
            flow.on_stream(dir, i as i64, bytes, &mut out);
        }
        flow.finish(1_000, &mut out);
        prop_assert_eq!(flow.stats().transactions, out.txs.len() as u64);
    }

    #[test]
    fn http_like_input_never_panics(
        parts in prop::collection::vec(
            prop::sample::select(vec![
                "GET / HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\n", "Content-Length: 3\r\n",
                "Transfer-Encoding: chunked\r\n", "\r\n", "3\r\nabc\r\n", "0\r\n", "ffffffffffffffff\r\n",
                "HEAD /a.m3u8 HTTP/1.1\r\n", "HTTP/1.1 101 x\r\n", "#EXTM3U\n", "xx",
            ]),
            0..40,
        ),
        dirs in prop::collection::vec(any::<bool>(), 40),
    ) {
        let mut flow = HttpFlow::new(HttpConfig::default());
        let mut out = Collect::default();
        for (i, p) in parts.iter().enumerate() {
            let dir = if dirs[i] { S } else { C };
            flow.on_stream(dir, i as i64, p.as_bytes(), &mut out);
        }
        flow.finish(1_000, &mut out);
    }
}

mod playlists;
mod templates;
