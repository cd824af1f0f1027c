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

// ---------------------------------------------------------------------------------------
// Templates

#[test]
fn templates() {
    let cases = [
        ("/", "/"),
        ("*", "*"),
        ("/index.html", "/index.html"),
        ("/seg/segment_00012.ts", "/seg/segment_{n}.ts"),
        ("/V2400/206598098.m4s", "/V{n}/{n}.m4s"),
        (
            "/af7a5/362643424e775d0393ddb46e145c2375367af7a5.webp",
            "/af{n}a{n}/{id}.webp",
        ),
        (
            "/v/123e4567-e89b-12d3-a456-426614174000/master.m3u8",
            "/v/{id}/master.m3u8",
        ),
        ("/t/AQEfKq2oMrLRiWL-p-VeIZ6WKRq/x", "/t/{id}/x"),
        ("/deadbeefcafebabe/x", "/{id}/x"),
        ("/live/john/s3cret/1234.ts", "/live/{cred}/{cred}/{n}.ts"),
        (
            "/live/john/s3cret/1234.m3u8",
            "/live/{cred}/{cred}/{n}.m3u8",
        ),
        ("/movie/john/s3cret/55.mkv", "/movie/{cred}/{cred}/{n}.mkv"),
        (
            "/series/john/s3cret/55.mp4",
            "/series/{cred}/{cred}/{n}.mp4",
        ),
        (
            "/timeshift/john/s3cret/60/2024-01-01:10-00/42.ts",
            "/timeshift/{cred}/{cred}/{n}/{n}-{n}-{n}:{n}-{n}/{n}.ts",
        ),
        ("/john/s3cret/1234", "/{cred}/{cred}/{n}"),
        ("/john/s3cret/1234.ts", "/{cred}/{cred}/{n}.ts"),
        ("/john/s3cret/1234.m3u8", "/{cred}/{cred}/{n}.m3u8"),
        ("/live/video_hd/00001.m4s", "/live/video_hd/{n}.m4s"),
        ("/news/2023/12345.html", "/news/{n}/{n}.html"),
        (
            "/get.php?username=john&password=s3cret&type=m3u",
            "/get.php",
        ),
        ("http://user:pw@host.example:80/a/b.ts?x=1", "/a/b.ts"),
        ("/caf\u{e9}/x", "/{id}/x"),
        ("/a%20b/x", "/{id}/x"),
        ("/a{b}/x", "/{id}/x"),
        ("example.com:443", "{authority}"),
    ];
    for (target, want) in cases {
        assert_eq!(path_template(target), want, "{target}");
    }
}

#[test]
fn template_is_bounded() {
    let long = "/abc".repeat(500);
    let t = path_template(&long);
    assert!(t.len() <= 256, "{}", t.len());
    assert!(t.ends_with("/{more}"));
    let wide = format!("/{}", "ab.".repeat(200));
    assert!(path_template(&wide).len() <= 256);
}

#[test]
fn extensions_and_query_names() {
    assert_eq!(extension("/a/b.M3U8?x=1").as_deref(), Some("m3u8"));
    assert_eq!(extension("/a/b.ts").as_deref(), Some("ts"));
    assert_eq!(extension("/a.b/c"), None);
    assert_eq!(extension("/a/.hidden"), None);
    assert_eq!(extension("/a/b.123"), None);
    assert_eq!(extension("/a/b.toolong"), None);
    assert_eq!(query_names("/p?z=1&a=2&a=3&m&=x").as_deref(), Some("a&m&z"));
    assert_eq!(
        query_names("/get.php?username=u&password=p&type=m3u_plus&output=ts").as_deref(),
        Some("output&password&type&username")
    );
    assert_eq!(
        query_names("/p?0123456789abcdef0123=1&sig2=x").as_deref(),
        Some("sig{n}&{id}")
    );
    assert_eq!(query_names("/p"), None);
    assert_eq!(query_names("/p?"), None);
}

#[test]
fn roles() {
    use template::{role, url_facts};
    let r = |t: &str, ct: Option<&str>| role(Some(&url_facts(t)), ct);
    assert_eq!(r("/a/index.m3u8", None), Role::Playlist);
    assert_eq!(
        r("/a/manifest", Some("application/dash+xml")),
        Role::Playlist
    );
    assert_eq!(r("/a/b.mpd", None), Role::Playlist);
    assert_eq!(r("/live/u/p/1.m3u8", None), Role::Playlist);
    assert_eq!(r("/live/u/p/1.ts", None), Role::PanelStream);
    assert_eq!(r("/live/u/p/1", Some("video/mp2t")), Role::PanelStream);
    assert_eq!(r("/movie/u/p/1.mkv", None), Role::PanelStream);
    assert_eq!(r("/u/p/1", Some("video/mp2t")), Role::PanelStream);
    assert_eq!(r("/u/p/1", Some("text/html")), Role::Other);
    assert_eq!(r("/u/p/1", None), Role::Other);
    assert_eq!(r("/get.php?username=u", None), Role::PanelApi);
    assert_eq!(r("/player_api.php", None), Role::PanelApi);
    assert_eq!(r("/xmltv.php", None), Role::PanelApi);
    assert_eq!(r("/panel_api.php", None), Role::PanelApi);
    for ext in [
        "ts", "m4s", "mp4", "m4a", "m4v", "aac", "cmfv", "cmfa", "vtt", "webm",
    ] {
        assert_eq!(r(&format!("/s/x.{ext}"), None), Role::Segment, "{ext}");
    }
    for ct in [
        "video/mp2t",
        "video/mp4",
        "video/iso.segment",
        "audio/mp4",
        "audio/aac",
    ] {
        assert_eq!(r("/s/x", Some(ct)), Role::Segment, "{ct}");
    }
    assert_eq!(r("/index.html", Some("text/html")), Role::Other);
    assert_eq!(
        role(None, Some("application/vnd.apple.mpegurl")),
        Role::Playlist
    );
    assert_eq!(role(None, None), Role::Other);
}

fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{6,24}".prop_filter("not a word of the fixed layout", |s| {
        let l = s.to_ascii_lowercase();
        ![
            "live",
            "movie",
            "series",
            "timeshift",
            "player",
            "api",
            "get.php",
            "xmltv",
            "panel",
            "username",
            "password",
            "output",
            "type",
            "m3u",
            "plus",
            "action",
            "stream",
        ]
        .iter()
        .any(|w| w.contains(l.as_str()) || l.contains(w))
    })
}

proptest! {
    /// No credential of a panel URL survives in anything a transaction carries.
    #[test]
    fn credentials_never_leave(
        user in secret(),
        pass in secret(),
        id in 1u32..10_000_000,
        layout in 0usize..9,
    ) {
        let target = match layout {
            0 => format!("/live/{user}/{pass}/{id}.ts"),
            1 => format!("/live/{user}/{pass}/{id}.m3u8"),
            2 => format!("/movie/{user}/{pass}/{id}.mkv"),
            3 => format!("/series/{user}/{pass}/{id}.mp4"),
            4 => format!("/{user}/{pass}/{id}"),
            5 => format!("/{user}/{pass}/{id}.ts"),
            6 => format!("/get.php?username={user}&password={pass}&type=m3u_plus&output=ts"),
            7 => format!("/player_api.php?username={user}&password={pass}&action=get_live_streams"),
            _ => format!("http://{user}:{pass}@panel.example:8080/live/{user}/{pass}/{id}.ts"),
        };
        let req = format!("GET {target} HTTP/1.1\r\nHost: panel.example:8080\r\n\r\n");
        let (out, _) = run(&[b(C, &req), b(S, &ok("video/mp2t", "x"))]);
        let t = &out.txs[0];
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            t.path_template, t.extension, t.query_names, t.host
        );
        prop_assert!(!shown.contains(&user), "{} in {}", user, shown);
        prop_assert!(!shown.contains(&pass), "{} in {}", pass, shown);
        // Digits are never kept in a template but in the last segment's extension.
        let template = t.path_template.as_deref().unwrap_or("");
        let stem = match (template.rsplit_once('.'), t.extension.as_deref()) {
            (Some((stem, ext)), Some(e)) if ext.eq_ignore_ascii_case(e) => stem,
            _ => template,
        };
        prop_assert!(!stem.bytes().any(|c| c.is_ascii_digit()), "{}", template);
    }
}

// ---------------------------------------------------------------------------------------
// Playlists

const MASTER: &str = "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=1280000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\"
low/index.m3u8?token=abc
#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080
http://other.example/high/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI=\"iframe.m3u8\"
";

const MEDIA: &str = "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:100
#EXTINF:6.000,
seg-100.ts
#EXTINF:5.5,
seg-101.ts
#EXTINF:6.5,
../low/seg-102.ts?x=1
";

#[test]
fn hls_master_playlist() {
    let pl = Playlist::parse_hls(MASTER.as_bytes(), Some("cdn.example"), "/v/master.m3u8")
        .expect("a master playlist");
    assert_eq!(pl.kind, PlaylistKind::HlsMaster);
    assert_eq!(pl.template, "/v/master.m3u8");
    assert_eq!(pl.variants.len(), 2);
    let v = &pl.variants[0];
    assert_eq!(v.host.as_deref(), Some("cdn.example"));
    assert_eq!(v.template, "/v/low/index.m3u8");
    assert_eq!(
        v.rendition,
        Rendition {
            bandwidth_bps: Some(1_280_000),
            width: Some(640),
            height: Some(360)
        }
    );
    assert_eq!(v.codecs.as_deref(), Some("avc1.4d401e,mp4a.40.2"));
    assert_eq!(pl.variants[1].host.as_deref(), Some("other.example"));
    assert_eq!(pl.variants[1].template, "/high/index.m3u8");
    assert_eq!(pl.variants[1].rendition.height, Some(1080));
}

#[test]
fn hls_media_playlist() {
    let pl = Playlist::parse_hls(
        MEDIA.as_bytes(),
        Some("cdn.example"),
        "/v/low/index.m3u8?t=1",
    )
    .expect("a media playlist");
    assert_eq!(pl.kind, PlaylistKind::HlsMedia);
    assert_eq!(pl.target_duration_s, Some(6.0));
    assert_eq!(pl.media_sequence, Some(100));
    assert_eq!(pl.segments, 3);
    assert!((pl.duration_s - 18.0).abs() < 1e-9);
    assert!(pl.live);
    assert_eq!(pl.adverts.len(), 1);
    let a = &pl.adverts[0];
    assert_eq!(a.template, "/v/low/seg-{n}.ts");
    assert_eq!(a.segments, 3);
    assert!((a.duration_s - 6.0).abs() < 1e-9);
}

#[test]
fn not_a_playlist() {
    assert!(Playlist::parse_hls(b"<html></html>", None, "").is_none());
    assert!(Playlist::parse_hls(&[0xff, 0xfe, 0x00], None, "").is_none());
    assert!(Playlist::parse_dash(b"<html></html>", None, "").is_none());
    assert!(Playlist::parse_dash(b"#EXTM3U", None, "").is_none());
}

proptest! {
    #[test]
    fn playlist_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Playlist::parse_hls(&bytes, Some("h"), "/a/b.m3u8");
        let _ = Playlist::parse_dash(&bytes, Some("h"), "/a/b.mpd");
        let mut with_header = b"#EXTM3U\n".to_vec();
        with_header.extend_from_slice(&bytes);
        let _ = Playlist::parse_hls(&with_header, Some("h"), "/a/b.m3u8");
    }

    #[test]
    fn hls_like_text_never_panics(
        lines in prop::collection::vec(
            prop::sample::select(vec![
                "#EXTINF:", "#EXTINF:4.5,", "#EXT-X-TARGETDURATION:", "#EXT-X-TARGETDURATION:99999999999999999999",
                "#EXT-X-STREAM-INF:BANDWIDTH=", "#EXT-X-STREAM-INF:RESOLUTION=1x", "seg.ts", "", "#EXT-X-ENDLIST",
                "#EXT-X-BYTERANGE:1@", "#EXT-X-KEY:METHOD=", "#EXT-X-MAP:URI=", "#EXT-X-PROGRAM-DATE-TIME:x",
            ]),
            0..30,
        )
    ) {
        let text = format!("#EXTM3U\n{}", lines.join("\n"));
        let _ = Playlist::parse_hls(text.as_bytes(), None, "/x.m3u8");
    }
}

const MPD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" maxSegmentDuration="PT2S"
     mediaPresentationDuration="PT1M">
  <BaseURL>http://dash.example/live/</BaseURL>
  <Period id="p0" duration="PT1M">
    <AdaptationSet mimeType="video/mp4" width="1280" height="720">
      <SegmentTemplate timescale="90000" media="$RepresentationID$/$Number%05d$.m4s"
                       initialization="$RepresentationID$/init.mp4" startNumber="7">
        <SegmentTimeline>
          <S t="0" d="180000" r="2"/>
          <S d="90000"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="video_hd" bandwidth="3000000" codecs="avc1.64001f"/>
      <Representation id="video_sd" bandwidth="1000000" width="640" height="360"/>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4">
      <Representation id="audio" bandwidth="128000" codecs="mp4a.40.2">
        <SegmentTemplate timescale="48000" duration="96000" media="audio/seg-$Number$.m4s"/>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"#;

#[test]
fn dash_mpd_with_template_and_timeline() {
    let pl = Playlist::parse_dash(MPD.as_bytes(), Some("origin.example"), "/live/manifest.mpd")
        .expect("an MPD");
    assert_eq!(pl.kind, PlaylistKind::Dash);
    assert!(pl.live);
    assert_eq!(pl.target_duration_s, Some(2.0));
    assert_eq!(pl.media_sequence, Some(7));
    assert_eq!(pl.variants.len(), 3);
    let hd = &pl.variants[0];
    assert_eq!(hd.host.as_deref(), Some("dash.example"));
    assert_eq!(hd.template, "/live/video_hd/{n}.m4s");
    assert_eq!(
        hd.rendition,
        Rendition {
            bandwidth_bps: Some(3_000_000),
            width: Some(1280),
            height: Some(720)
        }
    );
    assert_eq!(hd.codecs.as_deref(), Some("avc1.64001f"));
    assert_eq!(pl.variants[1].rendition.width, Some(640));
    // Timeline: 3 × 2 s + 1 × 1 s = 4 segments, 7 s; audio: 60 s / 2 s = 30 segments.
    assert_eq!(pl.segments, 30);
    let a = |t: &str| {
        pl.adverts
            .iter()
            .find(|a| a.template == t)
            .expect(t)
            .clone()
    };
    let hd = a("/live/video_hd/{n}.m4s");
    assert_eq!(hd.segments, 4);
    assert!((hd.duration_s - 1.75).abs() < 1e-9);
    assert_eq!(hd.rendition.and_then(|r| r.bandwidth_bps), Some(3_000_000));
    let audio = a("/live/audio/seg-{n}.m4s");
    assert_eq!(audio.segments, 30);
    assert!((audio.duration_s - 2.0).abs() < 1e-9);
}

#[test]
fn hls_segments_get_duration_rendition_and_bitrate_on_the_flow() {
    let seg_body = "S".repeat(750);
    let (out, stats) = run(&[
        b(
            C,
            "GET /v/master.m3u8 HTTP/1.1\r\nHost: cdn.example\r\n\r\n",
        ),
        b(S, &ok("application/vnd.apple.mpegurl", MASTER)),
        b(
            C,
            "GET /v/low/index.m3u8?token=abc HTTP/1.1\r\nHost: cdn.example\r\n\r\n",
        ),
        b(S, &ok("application/x-mpegURL", MEDIA)),
        b(
            C,
            "GET /v/low/seg-101.ts HTTP/1.1\r\nHost: cdn.example\r\n\r\n",
        ),
        b(S, &ok("video/MP2T", &seg_body)),
    ]);
    assert_eq!(stats.playlists, 2);
    assert_eq!(stats.annotated, 1);
    let master = out.txs[0].playlist.as_deref().expect("the master playlist");
    assert_eq!(master.kind, PlaylistKind::HlsMaster);
    let media = out.txs[1].playlist.as_deref().expect("the media playlist");
    assert_eq!(media.segments, 3);
    let seg = &out.txs[2];
    assert_eq!(seg.role, Role::Segment);
    assert_eq!(seg.duration_s, Some(6.0));
    assert_eq!(seg.bitrate_bps, Some(1000.0));
    assert_eq!(seg.rendition.and_then(|r| r.bandwidth_bps), Some(1_280_000));

    // A caller's run-level index joins them across flows.
    let mut index = PlaylistIndex::new(16);
    index.insert(master);
    index.insert(media);
    let mut tx = seg.clone();
    tx.duration_s = None;
    tx.rendition = None;
    assert!(index.annotate(&mut tx));
    assert_eq!(tx.rendition.and_then(|r| r.height), Some(360));
}

#[test]
fn dash_segment_annotated_from_the_mpd() {
    let (out, _) = run(&[
        b(
            C,
            "GET /live/manifest.mpd HTTP/1.1\r\nHost: dash.example\r\n\r\n",
        ),
        b(S, &ok("application/dash+xml", MPD)),
        b(
            C,
            "GET /live/audio/seg-12.m4s HTTP/1.1\r\nHost: dash.example\r\n\r\n",
        ),
        b(S, &ok("audio/mp4", "0123456789")),
    ]);
    assert!(out.txs[0].playlist.is_some());
    assert_eq!(out.txs[1].duration_s, Some(2.0));
    assert_eq!(out.txs[1].bitrate_bps, Some(40.0));
    assert_eq!(
        out.txs[1].rendition.and_then(|r| r.bandwidth_bps),
        Some(128_000)
    );
}

#[test]
fn oversize_playlist_is_counted_not_read() {
    let config = HttpConfig {
        max_playlist_bytes: 32,
        ..HttpConfig::default()
    };
    let (out, stats) = run_with(
        config,
        &[
            b(C, &get("/a.m3u8")),
            b(S, &ok("application/vnd.apple.mpegurl", MEDIA)),
        ],
    );
    assert_eq!(stats.oversize_playlists, 1);
    assert_eq!(stats.playlists, 0);
    assert!(out.txs[0].playlist.is_none());
    assert!(out.txs[0].complete);
}

#[test]
fn index_is_bounded() {
    let mut index = PlaylistIndex::new(4);
    for dir in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
        let media = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nv1/a.ts\n";
        let pl = Playlist::parse_hls(media.as_bytes(), Some("h"), &format!("/{dir}/x.m3u8"))
            .expect("a playlist");
        index.insert(&pl);
        assert!(index.len() <= 4);
    }
    assert_eq!(index.evicted(), 6);
    assert!(index.lookup(Some("h"), "/j/v{n}/a.ts").is_some());
    assert!(index.lookup(Some("h"), "/a/v{n}/a.ts").is_none());
}

#[test]
fn panel_stream_body_goes_to_the_sink() {
    let (out, _) = run(&[
        b(
            C,
            "GET /live/someuser/somepass/1234.ts HTTP/1.1\r\nHost: panel.example\r\n\r\n",
        ),
        b(
            S,
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n",
        ),
        b(S, "\x47abc"),
    ]);
    assert_eq!(out.txs[0].role, Role::PanelStream);
    assert_eq!(
        out.txs[0].path_template.as_deref(),
        Some("/live/{cred}/{cred}/{n}.ts")
    );
    assert_eq!(out.bodies, vec![(0, b"\x47abc".to_vec())]);
}
