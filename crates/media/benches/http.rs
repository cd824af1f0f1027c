//! HTTP transactions per second through `HttpFlow::on_stream`: keep-alive HLS segment
//! fetches on one connection, each a GET of a `.ts` segment and a `200` with a
//! `Content-Length` body, paired and emitted as a transaction (dropped at once).
//!
//! * `keepalive_ts_1k`: 1 KiB bodies in one call each (the head and framing cost).
//! * `keepalive_ts_188k`: 188 KiB bodies in 1,460-byte calls, handed to a body sink
//!   that only counts (what a progressive TS reader adds on top of this).
//! * `templates`: `path_template` of an IPTV panel segment URL.
//!
//! Figures are in the workspace's `benches/RESULTS.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streamscope_media::http::{
    path_template, Dir, HttpConfig, HttpFlow, HttpSink, HttpTransaction,
};

const BATCH: u64 = 100;

struct Count {
    txs: u64,
    body: u64,
}

impl HttpSink for Count {
    fn transaction(&mut self, tx: HttpTransaction) {
        self.txs += 1;
        black_box(tx);
    }
    fn body(&mut self, _index: u64, _ts_ns: i64, bytes: &[u8]) {
        self.body += bytes.len() as u64;
    }
}

fn request(i: u64) -> Vec<u8> {
    format!(
        "GET /hls/live/channel_7/1080p/segment_{i:06}.ts?token=a1b2c3d4e5f6a7b8c9d0&exp=1700000000 HTTP/1.1\r\n\
         Host: cdn.example.net\r\nUser-Agent: Lavf/60.3.100\r\nAccept: */*\r\n\
         Connection: keep-alive\r\nRange: bytes=0-\r\n\r\n"
    )
    .into_bytes()
}

fn response(body: usize) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 14 Nov 2023 22:13:20 GMT\r\n\
         Content-Type: video/MP2T\r\nContent-Length: {body}\r\nConnection: keep-alive\r\n\
         Cache-Control: max-age=10\r\nAccess-Control-Allow-Origin: *\r\n\r\n"
    )
    .into_bytes();
    r.resize(r.len() + body, 0x47);
    r
}

fn fetches(c: &mut Criterion, name: &str, body: usize, mss: usize) {
    let reqs: Vec<Vec<u8>> = (0..BATCH).map(request).collect();
    let resp = response(body);
    let mut g = c.benchmark_group("http");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut flow = HttpFlow::new(HttpConfig::default());
            let mut out = Count { txs: 0, body: 0 };
            let mut ts = 0;
            for req in &reqs {
                ts += 1_000_000;
                flow.on_stream(Dir::ClientToServer, ts, req, &mut out);
                for chunk in resp.chunks(mss) {
                    ts += 1_000;
                    flow.on_stream(Dir::ServerToClient, ts, chunk, &mut out);
                }
            }
            flow.finish(ts, &mut out);
            assert_eq!(out.txs, BATCH);
            black_box(out.body)
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    fetches(c, "keepalive_ts_1k", 1024, usize::MAX);
    fetches(c, "keepalive_ts_188k", 188 * 1024, 1460);
    let mut g = c.benchmark_group("http");
    g.throughput(Throughput::Elements(1));
    g.bench_function("templates", |b| {
        b.iter(|| path_template(black_box("/live/someuser/s3cretpass/123456.ts?token=x")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
