//! TLS through `TlsFlow::on_stream`:
//!
//! * `client_hello`: a new flow fed one browser-like ClientHello (SNI, ALPN h2 and
//!   http/1.1, supported_versions with GREASE, an X25519MLKEM768 + X25519 key share:
//!   about 1.65 KB, in two records of one segment), read to its SNI.
//! * `client_hello_1448`: the same ClientHello in 1,448-byte segments.
//! * `app_data_records`: record headers after the handshake: 1 MiB of 16 KiB
//!   application_data records (64 records) in 1,448-byte segments, per record.
//!
//! Figures are in the workspace's `benches/RESULTS.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streamscope_media::tls::{Dir, TlsFlow};

fn ext(t: u16, body: &[u8]) -> Vec<u8> {
    let mut e = t.to_be_bytes().to_vec();
    e.extend_from_slice(&(body.len() as u16).to_be_bytes());
    e.extend_from_slice(body);
    e
}

/// A ClientHello handshake message shaped like a current browser's.
fn client_hello() -> Vec<u8> {
    let name = b"vod-cdn.example-streaming.com";
    let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let alpn = [
        0x00, 0x0c, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
    ];
    // Key shares: GREASE (1 byte), X25519MLKEM768 (1,216 bytes), X25519 (32 bytes).
    let mut shares = vec![0x3a, 0x3a, 0x00, 0x01, 0x00];
    shares.extend_from_slice(&[0x11, 0xec, 0x04, 0xc0]);
    shares.resize(shares.len() + 1216, 0x5a);
    shares.extend_from_slice(&[0x00, 0x1d, 0x00, 0x20]);
    shares.resize(shares.len() + 32, 0x6b);
    let mut key_share = (shares.len() as u16).to_be_bytes().to_vec();
    key_share.extend_from_slice(&shares);
    let exts = [
        ext(0x1a1a, &[]),
        ext(0, &sni),
        ext(23, &[]),
        ext(65281, &[0]),
        ext(
            10,
            &[0x00, 0x08, 0x3a, 0x3a, 0x11, 0xec, 0x00, 0x1d, 0x00, 0x17],
        ),
        ext(11, &[1, 0]),
        ext(35, &[]),
        ext(16, &alpn),
        ext(5, &[1, 0, 0, 0, 0]),
        ext(
            13,
            &[0x00, 0x08, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03],
        ),
        ext(18, &[]),
        ext(51, &key_share),
        ext(45, &[1, 1]),
        ext(43, &[6, 0x5a, 0x5a, 0x03, 0x04, 0x03, 0x03]),
        ext(27, &[2, 0, 2]),
        ext(0x2a2a, &[0]),
        ext(21, &[0; 120]),
    ]
    .concat();
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(&[0x42; 32]);
    b.push(32);
    b.extend_from_slice(&[0x24; 32]);
    let suites: [u16; 16] = [
        0x4a4a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
        0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
    ];
    b.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        b.extend_from_slice(&s.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]);
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend_from_slice(&exts);
    let mut m = vec![1, 0, (b.len() >> 8) as u8, b.len() as u8];
    m.extend_from_slice(&b);
    m
}

/// `payload` in records of type `t` of at most `max` bytes.
fn records(t: u8, payload: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in payload.chunks(max) {
        out.extend_from_slice(&[t, 3, 3]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("tls");
    let hello = client_hello();
    assert!((1600..2000).contains(&hello.len()), "{}", hello.len());
    let stream = records(22, &hello, 1024);

    group.throughput(Throughput::Elements(1));
    for (name, seg) in [("client_hello", stream.len()), ("client_hello_1448", 1448)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut flow = TlsFlow::new();
                for s in black_box(&stream).chunks(seg) {
                    flow.on_stream(Dir::Up, 0, s, &mut |r| {
                        black_box(r);
                    });
                }
                let sni_len = flow
                    .client_hello()
                    .and_then(|c| c.sni.as_ref())
                    .map(String::len);
                assert_eq!(sni_len, Some(29));
                sni_len
            });
        });
    }

    // Record headers after the hellos.
    let mut flow = TlsFlow::new();
    flow.on_stream(Dir::Up, 0, &stream, &mut |_| {});
    let data = records(23, &vec![0xab; 1 << 20], 16384);
    group.throughput(Throughput::Elements(64));
    group.bench_function("app_data_records", |b| {
        b.iter(|| {
            let mut n = 0u32;
            for s in black_box(&data).chunks(1448) {
                flow.on_stream(Dir::Down, 0, s, &mut |r| {
                    n += u32::from(r.length > 0);
                });
            }
            assert_eq!(n, 64);
            n
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
