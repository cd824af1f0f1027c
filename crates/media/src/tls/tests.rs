//! Unit tests with hellos written here byte by byte (RFC 8446 section 4.1.2 and 4.1.3),
//! split into records and segments every way, and cut or corrupted copies of them.

use proptest::prelude::*;

use super::content_type::{APPLICATION_DATA, CHANGE_CIPHER_SPEC, HANDSHAKE};
use super::{
    is_grease, version_name, ClientHello, Dir, HelloError, ServerHello, SizeHistogram, TlsFlow,
    TlsRecord, MAX_HELLO,
};

const UP: Dir = Dir::Up;
const DOWN: Dir = Dir::Down;

fn u16be(v: usize) -> [u8; 2] {
    (v as u16).to_be_bytes()
}

fn ext(t: u16, body: &[u8]) -> Vec<u8> {
    let mut e = t.to_be_bytes().to_vec();
    e.extend_from_slice(&u16be(body.len()));
    e.extend_from_slice(body);
    e
}

fn sni_ext(name: &str) -> Vec<u8> {
    let mut list = vec![0u8]; // host_name
    list.extend_from_slice(&u16be(name.len()));
    list.extend_from_slice(name.as_bytes());
    let mut body = u16be(list.len()).to_vec();
    body.extend_from_slice(&list);
    ext(0, &body)
}

fn alpn_ext(protocols: &[&str]) -> Vec<u8> {
    let mut list = Vec::new();
    for p in protocols {
        list.push(p.len() as u8);
        list.extend_from_slice(p.as_bytes());
    }
    let mut body = u16be(list.len()).to_vec();
    body.extend_from_slice(&list);
    ext(16, &body)
}

fn versions_ext(versions: &[u16]) -> Vec<u8> {
    let mut body = vec![(versions.len() * 2) as u8];
    for v in versions {
        body.extend_from_slice(&v.to_be_bytes());
    }
    ext(43, &body)
}

fn handshake(t: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len();
    let mut m = vec![t, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    m.extend_from_slice(body);
    m
}

/// A ClientHello handshake message (header included): legacy version 0x0303, a 32-byte
/// session id, three suites, null compression, then `exts`.
fn client_hello_msg(exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(&[0x11; 32]); // random
    b.push(32);
    b.extend_from_slice(&[0x22; 32]); // session id
    b.extend_from_slice(&[0x00, 0x06, 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f]);
    b.extend_from_slice(&[0x01, 0x00]);
    let block: Vec<u8> = exts.concat();
    b.extend_from_slice(&u16be(block.len()));
    b.extend_from_slice(&block);
    handshake(1, &b)
}

fn typical_client_hello() -> Vec<u8> {
    client_hello_msg(&[
        ext(0x0a0a, &[]), // GREASE
        sni_ext("Video.Example.COM"),
        ext(23, &[]), // extended_master_secret
        alpn_ext(&["h2", "http/1.1"]),
        versions_ext(&[0x2a2a, 0x0304, 0x0303]),
        ext(51, &[0x00, 0x00]), // key_share, empty list
        ext(21, &[0u8; 200]),   // padding
    ])
}

/// A ServerHello handshake message with `random` and `exts`.
fn server_hello_msg(legacy: u16, random: [u8; 32], exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = legacy.to_be_bytes().to_vec();
    b.extend_from_slice(&random);
    b.push(0);
    b.extend_from_slice(&[0x13, 0x01, 0x00]);
    let block: Vec<u8> = exts.concat();
    b.extend_from_slice(&u16be(block.len()));
    b.extend_from_slice(&block);
    handshake(2, &b)
}

fn tls13_server_hello() -> Vec<u8> {
    server_hello_msg(0x0303, [0x33; 32], &[ext(43, &[0x03, 0x04])])
}

const HRR: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// `payload` in records of type `t` of at most `max` bytes each.
fn records(t: u8, payload: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in payload.chunks(max) {
        out.extend_from_slice(&[t, 0x03, 0x03]);
        out.extend_from_slice(&u16be(chunk.len()));
        out.extend_from_slice(chunk);
    }
    out
}

fn app_data(len: usize) -> Vec<u8> {
    records(APPLICATION_DATA, &vec![0xab; len], len.max(1))
}

/// Feeds `bytes` in chunks of `step`, the i-th chunk at time i; returns the events.
fn feed(flow: &mut TlsFlow, dir: Dir, bytes: &[u8], step: usize) -> Vec<TlsRecord> {
    let mut events = Vec::new();
    for (i, chunk) in bytes.chunks(step.max(1)).enumerate() {
        flow.on_stream(dir, i as i64, chunk, &mut |r| events.push(r));
    }
    events
}

#[test]
fn client_hello_fields() {
    let ch = ClientHello::parse(&typical_client_hello()).unwrap();
    assert_eq!(ch.legacy_version, 0x0303);
    assert_eq!(ch.sni.as_deref(), Some("video.example.com"));
    assert_eq!(ch.alpn, ["h2", "http/1.1"]);
    assert_eq!(ch.supported_versions, [0x2a2a, 0x0304, 0x0303]);
    assert_eq!(ch.max_version(), 0x0304);
    assert_eq!(ch.cipher_suites, 3);
    assert_eq!(ch.extensions, 7);
    assert_eq!(ch.bad_extensions, 0);
}

#[test]
fn client_hello_without_extensions() {
    let ch = ClientHello::parse(&client_hello_msg(&[])).unwrap();
    assert_eq!(ch.sni, None);
    assert!(ch.alpn.is_empty());
    assert_eq!(ch.max_version(), 0x0303);
}

#[test]
fn client_hello_errors() {
    let msg = typical_client_hello();
    assert_eq!(
        ClientHello::parse(&msg[..msg.len() - 1]),
        Err(HelloError::Truncated)
    );
    assert_eq!(ClientHello::parse(&msg[..3]), Err(HelloError::Truncated));
    assert_eq!(
        ClientHello::parse(&tls13_server_hello()),
        Err(HelloError::NotHello(2))
    );
    // A session id longer than 32 bytes.
    let mut bad = msg.clone();
    bad[4 + 34] = 33;
    assert_eq!(ClientHello::parse(&bad), Err(HelloError::Malformed));
}

#[test]
fn a_broken_extension_spoils_only_itself() {
    // An ALPN whose list length overruns its extension; the SNI after it still counts.
    let msg = client_hello_msg(&[ext(16, &[0x00, 0x09, 0x02, b'h', b'2']), sni_ext("a.b")]);
    let ch = ClientHello::parse(&msg).unwrap();
    assert_eq!(ch.sni.as_deref(), Some("a.b"));
    assert!(ch.alpn.is_empty());
    assert_eq!(ch.bad_extensions, 1);
    // An extension block whose last extension overruns the block.
    let mut exts = sni_ext("c.d");
    exts.extend_from_slice(&[0x00, 0x10, 0x00, 0x50]);
    let msg = client_hello_msg(&[exts]);
    let ch = ClientHello::parse(&msg).unwrap();
    assert_eq!(ch.sni.as_deref(), Some("c.d"));
    assert_eq!(ch.bad_extensions, 1);
}

#[test]
fn server_hello_versions_and_alpn() {
    let sh = ServerHello::parse(&tls13_server_hello()).unwrap();
    assert_eq!(sh.version(), 0x0304);
    assert_eq!(sh.alpn, None);
    assert_eq!(sh.cipher_suite, 0x1301);
    assert!(!sh.hello_retry);

    let sh = ServerHello::parse(&server_hello_msg(0x0303, [1; 32], &[alpn_ext(&["h2"])])).unwrap();
    assert_eq!(sh.version(), 0x0303);
    assert_eq!(sh.alpn.as_deref(), Some("h2"));

    let sh = ServerHello::parse(&server_hello_msg(0x0303, HRR, &[ext(43, &[3, 4])])).unwrap();
    assert!(sh.hello_retry);
}

#[test]
fn names() {
    assert_eq!(version_name(0x0304), "TLS 1.3");
    assert_eq!(version_name(0x3a3a), "GREASE");
    assert_eq!(version_name(0x7f12), "0x7f12");
    assert!(is_grease(0xfafa) && !is_grease(0x0a1a));
}

#[test]
fn size_histogram_buckets() {
    let mut h = SizeHistogram::default();
    for len in [0, 63, 64, 127, 128, 8191, 8192, 16383, 16384, 18432] {
        h.add(len);
    }
    assert_eq!(h.0, [2, 2, 1, 0, 0, 0, 0, 1, 2, 2]);
    assert_eq!(SizeHistogram::lower_bound(1), 64);
    assert_eq!(SizeHistogram::lower_bound(9), 16384);
}

/// A TLS 1.3 connection: the ClientHello in `max`-byte records fed `step` bytes at a
/// time, the server's hello, change_cipher_spec and encrypted records, then data.
fn tls13_connection(max: usize, step: usize) -> (TlsFlow, Vec<TlsRecord>) {
    let mut flow = TlsFlow::new();
    let ch = typical_client_hello();
    let mut up = records(HANDSHAKE, &ch, max);
    up.extend_from_slice(&records(CHANGE_CIPHER_SPEC, &[1], 1));
    up.extend_from_slice(&app_data(53)); // Finished
    up.extend_from_slice(&app_data(400)); // a request
    let mut down = records(HANDSHAKE, &tls13_server_hello(), 16384);
    down.extend_from_slice(&records(CHANGE_CIPHER_SPEC, &[1], 1));
    down.extend_from_slice(&app_data(4000)); // encrypted handshake
    for len in [16401, 16401, 9000] {
        down.extend_from_slice(&app_data(len));
    }
    let mut events = feed(&mut flow, UP, &up, step);
    events.extend(feed(&mut flow, DOWN, &down, step));
    flow.finish(1_000);
    (flow, events)
}

#[test]
fn a_tls13_connection_in_any_segmentation() {
    let hello_records = |max: usize| typical_client_hello().len().div_ceil(max) as u64;
    for (max, step) in [(16384, 100_000), (100, 1), (7, 3), (300, 1448), (1, 5)] {
        let (flow, events) = tls13_connection(max, step);
        assert_eq!(flow.is_tls(), Some(true), "{max} {step}");
        let ch = flow.client_hello().expect("a ClientHello");
        assert_eq!(ch.sni.as_deref(), Some("video.example.com"));
        assert_eq!(flow.server_hello().map(|s| s.version()), Some(0x0304));
        assert_eq!(flow.client_hellos(), 1);
        let up = flow.dir_stats(UP);
        assert_eq!(up.handshake, hello_records(max));
        assert_eq!((up.change_cipher_spec, up.app_data), (1, 2));
        assert_eq!(up.app_data_bytes, 453);
        let down = flow.dir_stats(DOWN);
        assert_eq!(
            (down.app_data, down.app_data_bytes, down.app_data_max),
            (4, 4000 + 16401 * 2 + 9000, 16401)
        );
        assert_eq!(down.app_data_sizes.0[9], 2);
        assert_eq!(events.len() as u64, up.records + down.records);
        let s = flow.stats();
        assert_eq!((s.client_hellos, s.server_hellos, s.not_tls), (1, 1, 0));
        assert_eq!(s.truncated_record + s.hello_incomplete + s.bad_hello, 0);
    }
}

#[test]
fn record_events_carry_time_type_and_length() {
    let mut flow = TlsFlow::new();
    let mut up = records(HANDSHAKE, &typical_client_hello(), 16384);
    up.extend_from_slice(&app_data(10));
    let mut events = Vec::new();
    // The application data header split across two calls: the second call's time.
    let cut = up.len() - 12;
    flow.on_stream(UP, 5, &up[..cut], &mut |r| events.push(r));
    flow.on_stream(UP, 9, &up[cut..], &mut |r| events.push(r));
    assert_eq!(
        events,
        [
            TlsRecord {
                dir: UP,
                ts_ns: 5,
                content_type: HANDSHAKE,
                length: typical_client_hello().len() as u16
            },
            TlsRecord {
                dir: UP,
                ts_ns: 9,
                content_type: APPLICATION_DATA,
                length: 10
            }
        ]
    );
    assert_eq!(flow.client_hello_ts_ns(), Some(5));
}

#[test]
fn tls12_server_hello_gives_the_alpn() {
    let mut flow = TlsFlow::new();
    feed(
        &mut flow,
        UP,
        &records(HANDSHAKE, &typical_client_hello(), 16384),
        1000,
    );
    let mut down = server_hello_msg(0x0303, [5; 32], &[alpn_ext(&["http/1.1"])]);
    down.extend_from_slice(&handshake(11, &[0u8; 3000])); // Certificate, same record
    feed(&mut flow, DOWN, &records(HANDSHAKE, &down, 16384), 1000);
    let sh = flow.server_hello().unwrap();
    assert_eq!(
        (sh.version(), sh.alpn.as_deref()),
        (0x0303, Some("http/1.1"))
    );
    assert_eq!(flow.stats().unexpected_handshake, 0);
}

#[test]
fn not_tls_is_given_up_at_once() {
    for first in [
        &b"GET / HTTP/1.1\r\n"[..],
        &[0x80, 0x2e, 0x01, 0x03, 0x01],
        &[0x17],
    ] {
        let mut flow = TlsFlow::new();
        let events = feed(&mut flow, UP, first, 1000);
        assert!(events.is_empty());
        assert_eq!(flow.is_tls(), Some(false));
        assert!(!flow.wants_bytes());
        // Nothing more is read, in either direction.
        assert!(feed(&mut flow, DOWN, &app_data(10), 100).is_empty());
        assert_eq!(flow.stats().not_tls, 1);
    }
    // A handshake record whose message is not a ClientHello.
    let mut flow = TlsFlow::new();
    feed(
        &mut flow,
        UP,
        &records(HANDSHAKE, &tls13_server_hello(), 500),
        7,
    );
    assert_eq!(flow.is_tls(), Some(false));
    // A server speaking first with something else.
    let mut flow = TlsFlow::new();
    feed(&mut flow, DOWN, b"SSH-2.0-OpenSSH_9.6\r\n", 100);
    assert_eq!(flow.is_tls(), Some(false));
}

#[test]
fn a_gap_inside_a_record_keeps_the_framing() {
    let mut flow = TlsFlow::new();
    feed(
        &mut flow,
        UP,
        &records(HANDSHAKE, &typical_client_hello(), 16384),
        1000,
    );
    let data = app_data(3000);
    let mut n = 0;
    flow.on_stream(
        DOWN,
        0,
        &records(HANDSHAKE, &tls13_server_hello(), 16384),
        &mut |_| n += 1,
    );
    flow.on_stream(DOWN, 1, &data[..1000], &mut |_| n += 1);
    flow.on_gap(DOWN, 2, 1000);
    flow.on_stream(DOWN, 3, &data[2000..], &mut |_| n += 1);
    flow.on_stream(DOWN, 4, &app_data(77), &mut |_| n += 1);
    assert_eq!(n, 3);
    assert_eq!(flow.dir_stats(DOWN).app_data, 2);
    assert_eq!(flow.stats().gaps_in_record, 1);
    assert_eq!(flow.stats().gaps_lost_framing, 0);
    // Read whole: only the record none of whose bytes was lost.
    let d = flow.dir_stats(DOWN);
    assert_eq!((d.app_data_whole, d.app_data_whole_bytes), (1, 77));
}

#[test]
fn application_records_are_counted_whole_when_their_last_byte_comes() {
    let mut flow = TlsFlow::new();
    feed(
        &mut flow,
        UP,
        &records(HANDSHAKE, &typical_client_hello(), 16384),
        1000,
    );
    let mut down = records(HANDSHAKE, &tls13_server_hello(), 16384);
    down.extend_from_slice(&app_data(5000));
    down.extend_from_slice(&app_data(2000));
    // Across many calls, the last record cut short by the end of the flow.
    feed(&mut flow, DOWN, &down[..down.len() - 700], 333);
    flow.finish(10);
    let d = flow.dir_stats(DOWN);
    assert_eq!((d.app_data, d.app_data_bytes), (2, 7000), "headers read");
    assert_eq!(
        (d.app_data_whole, d.app_data_whole_bytes),
        (1, 5000),
        "read whole: not the cut one"
    );
    assert_eq!(flow.stats().truncated_record, 1);
}

#[test]
fn a_gap_across_a_header_loses_the_framing_until_a_record_starts_a_call() {
    let mut flow = TlsFlow::new();
    feed(
        &mut flow,
        UP,
        &records(HANDSHAKE, &typical_client_hello(), 16384),
        1000,
    );
    feed(
        &mut flow,
        DOWN,
        &records(HANDSHAKE, &tls13_server_hello(), 16384),
        1000,
    );
    let data = app_data(3000);
    let mut n = 0;
    flow.on_stream(DOWN, 1, &data[..1000], &mut |_| n += 1);
    flow.on_gap(DOWN, 2, 5000);
    // The middle of a record: ignored.
    flow.on_stream(DOWN, 3, &[0xab; 500], &mut |_| n += 1);
    // A record start: read again.
    flow.on_stream(DOWN, 4, &app_data(100), &mut |_| n += 1);
    assert_eq!(n, 2);
    let s = flow.stats();
    assert_eq!((s.gaps, s.gaps_lost_framing, s.resyncs), (1, 1, 1));
}

#[test]
fn a_connection_picked_up_mid_stream() {
    let mut flow = TlsFlow::new();
    flow.on_gap(DOWN, 0, 123_456);
    let mut n = 0;
    flow.on_stream(DOWN, 1, &[0x55; 100], &mut |_| n += 1);
    assert_eq!(flow.is_tls(), None);
    flow.on_stream(DOWN, 2, &app_data(1000), &mut |_| n += 1);
    assert_eq!((n, flow.is_tls()), (1, Some(true)));
    assert_eq!(flow.stats().gaps_lost_framing, 0);
}

#[test]
fn a_gap_in_the_client_hello_loses_it() {
    let mut flow = TlsFlow::new();
    let up = records(HANDSHAKE, &typical_client_hello(), 100);
    feed(&mut flow, UP, &up[..150], 1000);
    flow.on_gap(UP, 1, 10);
    feed(&mut flow, UP, &up[160..], 1000);
    assert!(flow.client_hello().is_none());
    assert_eq!(flow.stats().hello_lost, 1);
    assert_eq!(flow.dir_stats(UP).handshake, up.len().div_ceil(105) as u64);
}

#[test]
fn hello_retry_request_reads_the_second_client_hello() {
    let mut flow = TlsFlow::new();
    feed(
        &mut flow,
        UP,
        &records(HANDSHAKE, &typical_client_hello(), 16384),
        1000,
    );
    let hrr = server_hello_msg(0x0303, HRR, &[ext(43, &[3, 4])]);
    let mut down = records(HANDSHAKE, &hrr, 16384);
    down.extend_from_slice(&records(CHANGE_CIPHER_SPEC, &[1], 1));
    feed(&mut flow, DOWN, &down, 1000);
    let mut up = records(CHANGE_CIPHER_SPEC, &[1], 1);
    up.extend_from_slice(&records(HANDSHAKE, &typical_client_hello(), 16384));
    feed(&mut flow, UP, &up, 1000);
    feed(
        &mut flow,
        DOWN,
        &records(HANDSHAKE, &tls13_server_hello(), 16384),
        1000,
    );
    assert_eq!(flow.client_hellos(), 2);
    assert_eq!(flow.stats().hello_retry_requests, 1);
    assert!(!flow.server_hello().unwrap().hello_retry);
    assert_eq!(flow.stats().no_hello, 0);
}

#[test]
fn an_oversized_hello_is_dropped_and_counted() {
    let mut flow = TlsFlow::new();
    // A header announcing 70,000 bytes.
    let msg = [1u8, 0x01, 0x11, 0x70, 0x03, 0x03];
    feed(&mut flow, UP, &records(HANDSHAKE, &msg, 100), 100);
    assert_eq!(flow.stats().hello_too_large, 1);
    assert_eq!(flow.is_tls(), Some(true));
    // Records still counted after it.
    feed(&mut flow, UP, &app_data(5), 100);
    assert_eq!(flow.dir_stats(UP).app_data, 1);
}

#[test]
fn an_unfinished_hello_and_record_are_counted_at_the_end() {
    let mut flow = TlsFlow::new();
    let up = records(HANDSHAKE, &typical_client_hello(), 16384);
    feed(&mut flow, UP, &up[..up.len() / 2], 1000);
    flow.finish(10);
    let s = flow.stats();
    assert_eq!((s.hello_incomplete, s.truncated_record), (1, 1));
}

#[test]
fn a_large_client_hello_over_many_records_and_segments() {
    // A post-quantum key share makes a ClientHello of about 1.8 KB; make it 20 KB.
    let msg = client_hello_msg(&[sni_ext("pq.example"), ext(51, &vec![7; 20_000])]);
    let mut flow = TlsFlow::new();
    feed(&mut flow, UP, &records(HANDSHAKE, &msg, 16384), 1448);
    assert_eq!(
        flow.client_hello().unwrap().sni.as_deref(),
        Some("pq.example")
    );
    assert!(msg.len() < MAX_HELLO);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        calls in prop::collection::vec(
            (any::<bool>(), any::<bool>(), 0u64..100_000, prop::collection::vec(any::<u8>(), 0..200)),
            0..30,
        ),
        tls_start in any::<bool>(),
    ) {
        let mut flow = TlsFlow::new();
        let mut n = 0u64;
        if tls_start {
            // Start like TLS so that the arbitrary bytes reach the deeper states.
            let ch = records(HANDSHAKE, &typical_client_hello(), 64);
            flow.on_stream(UP, 0, &ch[..ch.len() / 2], &mut |_| n += 1);
        }
        for (i, (up, gap, missing, bytes)) in calls.iter().enumerate() {
            let dir = if *up { UP } else { DOWN };
            if *gap {
                flow.on_gap(dir, i as i64, *missing);
            }
            flow.on_stream(dir, i as i64, bytes, &mut |_| n += 1);
        }
        flow.finish(1_000);
        prop_assert_eq!(n, flow.stats().records);
    }

    #[test]
    fn hellos_of_arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = ClientHello::parse(&handshake(1, &body));
        let _ = ServerHello::parse(&handshake(2, &body));
        let _ = ClientHello::parse(&body);
    }

    #[test]
    fn any_segmentation_reads_the_same_hello(max in 1usize..600, step in 1usize..2000) {
        let mut flow = TlsFlow::new();
        feed(&mut flow, UP, &records(HANDSHAKE, &typical_client_hello(), max), step);
        prop_assert_eq!(
            flow.client_hello().and_then(|c| c.sni.as_deref()),
            Some("video.example.com")
        );
    }
}
