//! Checks of the over-the-top traffic kinds (`scenarios/ott.toml`) with a test-only
//! reader written independently of the generator: determinism; every flow's packet and
//! byte counts against a scan of the file; HTTP/1.1 requests and responses parsed with
//! `httparse` (Content-Length equals the bytes that follow); m3u8 bodies; every segment
//! in the truth present with its size; TS bodies (sync bytes, continuity counters);
//! panel credentials; TLS ClientHello SNI; QUIC Initials decrypted with the RFC 9001
//! procedure (own HKDF-Expand-Label, AES-128-GCM, AES-ECB header mask) to a ClientHello
//! with the right SNI.

use std::collections::HashMap;

use aes::cipher::{BlockEncrypt, KeyInit};
use aes_gcm::aead::AeadInPlace;
use capgen::{generate, Format, Options, Scenario, Truth};
use serde_json::Value;

const OTT: &str = include_str!("../scenarios/ott.toml");

fn run(seed: u64) -> (Truth, Vec<u8>) {
    let sc = Scenario::from_toml(OTT).expect("ott scenario parses");
    let opts = Options {
        seed,
        format: Format::Pcap,
        ts_resolution: None,
    };
    generate(&sc, &opts, Vec::new()).expect("generation succeeds")
}

fn records(b: &[u8]) -> Vec<&[u8]> {
    assert_eq!(&b[0..4], &0xA1B2_C3D4u32.to_le_bytes());
    let mut off = 24;
    let mut out = Vec::new();
    while off < b.len() {
        let incl = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
        out.push(&b[off + 16..off + 16 + incl]);
        off += 16 + incl;
    }
    assert_eq!(off, b.len());
    out
}

/// (src, sport, dst, dport, proto) with addresses as text.
type Key = (String, u16, String, u16, u8);

#[derive(Default)]
struct Dir {
    packets: u64,
    frame_bytes: u64,
    payload_bytes: u64,
    /// TCP payload concatenated in order / UDP datagrams.
    stream: Vec<u8>,
    datagrams: Vec<Vec<u8>>,
}

fn addr(b: &[u8]) -> String {
    if b.len() == 4 {
        std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()
    } else {
        let a: [u8; 16] = b.try_into().unwrap();
        std::net::Ipv6Addr::from(a).to_string()
    }
}

/// Scans every frame into per-direction flows.
fn scan(file: &[u8]) -> HashMap<Key, Dir> {
    let mut m: HashMap<Key, Dir> = HashMap::new();
    for f in records(file) {
        let mut et = u16::from_be_bytes([f[12], f[13]]);
        let mut off = 14;
        if et == 0x8100 {
            et = u16::from_be_bytes([f[16], f[17]]);
            off = 18;
        }
        let (src, dst, proto, l4) = match et {
            0x0800 => {
                let ip = &f[off..];
                let tl = u16::from_be_bytes([ip[2], ip[3]]) as usize;
                (addr(&ip[12..16]), addr(&ip[16..20]), ip[9], &ip[20..tl])
            }
            0x86DD => {
                let ip = &f[off..];
                let pl = u16::from_be_bytes([ip[4], ip[5]]) as usize;
                (addr(&ip[8..24]), addr(&ip[24..40]), ip[6], &ip[40..40 + pl])
            }
            _ => continue,
        };
        let sp = u16::from_be_bytes([l4[0], l4[1]]);
        let dp = u16::from_be_bytes([l4[2], l4[3]]);
        let payload = match proto {
            6 => &l4[((l4[12] >> 4) as usize * 4)..],
            17 => &l4[8..],
            _ => continue,
        };
        let d = m.entry((src, sp, dst, dp, proto)).or_default();
        d.packets += 1;
        d.frame_bytes += f.len() as u64;
        d.payload_bytes += payload.len() as u64;
        if proto == 6 {
            d.stream.extend_from_slice(payload);
        } else {
            d.datagrams.push(payload.to_vec());
        }
    }
    m
}

fn truth_json(t: &Truth) -> Value {
    serde_json::to_value(t).expect("truth serializes")
}

fn key(f: &Value, up: bool) -> Key {
    let c = f["client_addr"].as_str().unwrap().to_string();
    let s = f["server_addr"].as_str().unwrap().to_string();
    let cp = f["client_port"].as_u64().unwrap() as u16;
    let sp = f["server_port"].as_u64().unwrap() as u16;
    let p = if f["protocol"] == "tcp" { 6 } else { 17 };
    if up {
        (c, cp, s, sp, p)
    } else {
        (s, sp, c, cp, p)
    }
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    let (t1, a) = run(7);
    let (t2, b) = run(7);
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&t1).unwrap(),
        serde_json::to_string(&t2).unwrap()
    );
    let (_, c) = run(8);
    assert_ne!(a, c);
    assert!(
        a.len() < 6_000_000,
        "ott capture stays under 6 MB: {}",
        a.len()
    );
}

#[test]
fn flow_counts_equal_a_scan_of_the_file() {
    let (t, file) = run(1);
    let flows = scan(&file);
    let j = truth_json(&t);
    let list = j["flows"].as_array().unwrap();
    let mut kinds = HashMap::new();
    for f in list {
        *kinds
            .entry(f["kind"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        let up = flows.get(&key(f, true));
        let down = flows.get(&key(f, false));
        let g = |d: Option<&Dir>, w: &str| -> u64 {
            d.map_or(0, |d| match w {
                "p" => d.packets,
                "f" => d.frame_bytes,
                _ => d.payload_bytes,
            })
        };
        assert_eq!(f["packets_up"].as_u64().unwrap(), g(up, "p"), "{f}");
        assert_eq!(f["packets_down"].as_u64().unwrap(), g(down, "p"));
        assert_eq!(f["frame_bytes_up"].as_u64().unwrap(), g(up, "f"));
        assert_eq!(f["frame_bytes_down"].as_u64().unwrap(), g(down, "f"));
        assert_eq!(f["payload_bytes_up"].as_u64().unwrap(), g(up, "b"));
        assert_eq!(f["payload_bytes_down"].as_u64().unwrap(), g(down, "b"));
    }
    // Every directed 5-tuple in the file belongs to a truth flow.
    let n_dirs = list
        .iter()
        .map(|f| {
            flows.contains_key(&key(f, true)) as usize + flows.contains_key(&key(f, false)) as usize
        })
        .sum::<usize>();
    assert_eq!(n_dirs, flows.len());
    for k in ["hls", "panel", "https", "quic", "dns"] {
        assert!(kinds.get(k).copied().unwrap_or(0) >= 1, "a {k} flow");
    }
}

/// Splits a client byte stream into requests (all GET without bodies).
fn requests(mut s: &[u8]) -> Vec<(String, HashMap<String, String>, usize)> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let mut h = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Request::new(&mut h);
        let n = match r.parse(s).expect("request parses") {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("partial request"),
        };
        assert_eq!(r.method, Some("GET"));
        assert_eq!(r.version, Some(1));
        let hdrs = r
            .headers
            .iter()
            .map(|x| {
                (
                    x.name.to_ascii_lowercase(),
                    String::from_utf8(x.value.to_vec()).unwrap(),
                )
            })
            .collect();
        out.push((r.path.unwrap().to_string(), hdrs, n));
        s = &s[n..];
    }
    out
}

struct Resp<'a> {
    head_len: usize,
    ctype: String,
    clen: Option<usize>,
    body: &'a [u8],
}

/// Splits a server byte stream into responses; a response without Content-Length
/// takes the rest of the stream.
fn responses(mut s: &[u8]) -> Vec<Resp<'_>> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let mut h = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Response::new(&mut h);
        let n = match r.parse(s).expect("response parses") {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("partial response head"),
        };
        assert_eq!(r.code, Some(200));
        let get = |name: &str| {
            r.headers
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(name))
                .map(|x| String::from_utf8(x.value.to_vec()).unwrap())
        };
        let ctype = get("content-type").expect("Content-Type");
        let clen = get("content-length").map(|v| v.parse::<usize>().unwrap());
        let blen = clen.unwrap_or(s.len() - n).min(s.len() - n);
        out.push(Resp {
            head_len: n,
            ctype,
            clen,
            body: &s[n..n + blen],
        });
        s = &s[n + blen..];
    }
    out
}

/// Checks a media playlist whose EXTINFs are `dur` give or take `variation` of it (RFC
/// 8216: each rounds to at most the target duration); returns (media sequence, segment
/// URIs, their EXTINFs).
fn media_playlist(
    body: &str,
    dur: f64,
    variation: f64,
    live: bool,
) -> (u64, Vec<String>, Vec<f64>) {
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    let tag = |t: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(t))
            .unwrap_or_else(|| panic!("missing {t}"))
    };
    let target: u64 = tag("#EXT-X-TARGETDURATION:").parse().unwrap();
    let seq: u64 = tag("#EXT-X-MEDIA-SEQUENCE:").parse().unwrap();
    assert_eq!(target, (dur * (1.0 + variation)).ceil() as u64);
    let mut uris = Vec::new();
    let mut durations = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(d) = l.strip_prefix("#EXTINF:") {
            let d: f64 = d.trim_end_matches(',').parse().unwrap();
            assert!(d.round() as u64 <= target);
            assert!(
                (d - dur).abs() <= dur * variation + 5e-4,
                "EXTINF {d} of {dur}"
            );
            durations.push(d);
            uris.push(lines[i + 1].to_string());
        }
    }
    if variation == 0.0 {
        assert!(durations.iter().all(|&d| d == dur), "every EXTINF is {dur}");
    }
    assert_eq!(body.contains("#EXT-X-ENDLIST"), !live);
    for (i, u) in uris.iter().enumerate() {
        let n: u64 = u
            .rsplit_once("/seg")
            .and_then(|(_, r)| r.split('.').next())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(n, seq + i as u64, "URIs follow the media sequence");
    }
    (seq, uris, durations)
}

/// Continuity-counter errors per PID over a stream of whole TS packets.
fn ts_check(body: &[u8]) -> (u64, u64) {
    assert_eq!(body.len() % 188, 0);
    let mut last: HashMap<u16, u8> = HashMap::new();
    let mut errors = 0;
    for p in body.chunks(188) {
        assert_eq!(p[0], 0x47, "sync byte");
        let pid = u16::from_be_bytes([p[1] & 0x1F, p[2]]);
        let cc = p[3] & 0x0F;
        if pid != 0x1FFF && p[3] & 0x10 != 0 {
            if let Some(l) = last.insert(pid, cc) {
                if cc != (l + 1) & 0x0F {
                    errors += 1;
                }
            }
        }
    }
    ((body.len() / 188) as u64, errors)
}

#[test]
fn http_messages_playlists_and_segments_match_the_truth() {
    let (t, file) = run(1);
    let flows = scan(&file);
    let j = truth_json(&t);
    let sc = &j["scenario"];
    let hls = &sc["hls"][0];
    let dur = hls["segment_duration_s"].as_f64().unwrap();
    let variants = hls["variants"].as_array().unwrap();
    let mut segments_seen = 0;
    let mut playlists = 0;
    // Media sequence number → the EXTINF its playlists advertised.
    let mut advertised: std::collections::HashMap<u64, f64> = std::collections::HashMap::new();
    let mut panel_streams = 0;
    for f in j["flows"].as_array().unwrap() {
        let kind = f["kind"].as_str().unwrap();
        if kind != "hls" && kind != "panel" {
            continue;
        }
        let up = &flows[&key(f, true)].stream;
        let down = flows.get(&key(f, false)).map_or(&[][..], |d| &d.stream[..]);
        let reqs = requests(up);
        let resps = responses(down);
        let http = &f["http"];
        let tx = http["requests"].as_array().unwrap();
        assert_eq!(reqs.len(), tx.len());
        // A request whose response was cut by the capture end may lack its response.
        assert!(resps.len() == tx.len() || resps.len() + 1 == tx.len());
        for (i, x) in tx.iter().enumerate() {
            let (uri, hdrs, n) = &reqs[i];
            assert_eq!(uri, x["uri"].as_str().unwrap());
            assert_eq!(*n as u64, x["request_bytes"].as_u64().unwrap());
            assert_eq!(&hdrs["host"], http["host"].as_str().unwrap());
            let Some(r) = resps.get(i) else { continue };
            assert_eq!(r.ctype, x["content_type"].as_str().unwrap());
            assert_eq!(
                r.head_len as u64,
                x["response_header_bytes"].as_u64().unwrap()
            );
            assert_eq!(r.body.len() as u64, x["body_bytes_sent"].as_u64().unwrap());
            assert_eq!(r.clen.map(|c| c as u64), x["content_length"].as_u64());
            if let Some(c) = r.clen {
                // Content-Length equals the bytes that follow (unless cut at the end).
                assert_eq!(x["complete"].as_bool().unwrap(), r.body.len() == c);
                if i + 1 < resps.len() {
                    assert_eq!(r.body.len(), c);
                }
            }
            match x["kind"].as_str().unwrap() {
                "master_playlist" => {
                    let b = std::str::from_utf8(r.body).unwrap();
                    assert!(b.starts_with("#EXTM3U\n"));
                    let inf: Vec<&str> = b
                        .lines()
                        .filter(|l| l.starts_with("#EXT-X-STREAM-INF:"))
                        .collect();
                    assert_eq!(inf.len(), variants.len());
                    for (l, v) in inf.iter().zip(variants) {
                        assert!(l.contains(&format!("BANDWIDTH={},", v["bandwidth_bps"])));
                        assert!(l.contains(&format!(
                            "RESOLUTION={}",
                            v["resolution"].as_str().unwrap()
                        )));
                    }
                    playlists += 1;
                }
                "media_playlist" => {
                    let b = std::str::from_utf8(r.body).unwrap();
                    let variation = hls["extinf_variation"].as_f64().unwrap();
                    let live = hls["live"].as_bool().unwrap();
                    let (seq, uris, durations) = media_playlist(b, dur, variation, live);
                    assert_eq!(Some(seq), x["media_sequence"].as_u64());
                    for (i, d) in durations.iter().enumerate() {
                        let old = advertised.insert(seq + i as u64, *d);
                        assert!(old.is_none_or(|o| o == *d), "one EXTINF per segment");
                    }
                    assert_eq!(uris.len() as u64, hls["window_segments"].as_u64().unwrap());
                    playlists += 1;
                }
                "segment" => {
                    let v = variants
                        .iter()
                        .find(|v| v["name"] == x["variant"])
                        .expect("variant");
                    let bw = v["bandwidth_bps"].as_u64().unwrap();
                    let seq = x["media_sequence"].as_u64().unwrap();
                    // Its own advertised duration, as its playlist listed it.
                    let own = x["duration_s"].as_f64().unwrap();
                    if let Some(d) = advertised.get(&seq) {
                        assert_eq!(own, *d, "segment {seq}: the truth's EXTINF");
                    }
                    let size = (bw as f64 * own / 8.0) as usize / 188 * 188;
                    assert_eq!(r.clen, Some(size), "segment size from the ladder");
                    let name = v["name"].as_str().unwrap();
                    assert_eq!(uri, &format!("/hls/{name}/seg{seq}.ts"));
                    if r.body.len() == size {
                        ts_check(r.body);
                    }
                    segments_seen += 1;
                }
                "player_api" => {
                    let v: Value = serde_json::from_slice(r.body).expect("API answer is JSON");
                    assert!(v.is_object() || v.is_array());
                    let cred = &http["credentials"];
                    let u = cred["username"].as_str().unwrap();
                    let p = cred["password"].as_str().unwrap();
                    assert!(uri.starts_with(&format!("/player_api.php?username={u}&password={p}")));
                }
                "live_stream" => {
                    let cred = &http["credentials"];
                    let u = cred["username"].as_str().unwrap();
                    let p = cred["password"].as_str().unwrap();
                    let id = x["stream_id"].as_u64().unwrap();
                    assert_eq!(uri, &format!("/live/{u}/{p}/{id}.ts"));
                    assert_eq!(r.clen, None);
                    let (packets, cc) = ts_check(r.body);
                    assert_eq!(cc, 0, "continuous CC in a progressive stream");
                    assert_eq!(packets, f["ts"]["ts_packets"].as_u64().unwrap());
                    assert!(f["ts"]["pcr_count"].as_u64().unwrap() > 0);
                    panel_streams += 1;
                }
                k => panic!("unexpected kind {k}"),
            }
        }
    }
    assert!(segments_seen >= 8, "segments: {segments_seen}");
    assert!(playlists >= 4);
    assert!(panel_streams >= 2);
}

#[test]
fn hls_startup_burst_switches_and_keep_alive() {
    let (t, _) = run(1);
    let j = truth_json(&t);
    let hls = &j["scenario"]["hls"][0];
    let per_conn = hls["requests_per_connection"].as_u64().unwrap() as usize;
    let mut segs = Vec::new();
    for f in j["flows"].as_array().unwrap() {
        if f["kind"] != "hls" {
            continue;
        }
        let n = f["http"]["requests"].as_array().unwrap().len();
        assert!(n >= 1 && n <= per_conn);
        for x in f["http"]["requests"].as_array().unwrap() {
            if x["kind"] == "segment" {
                segs.push((
                    x["request_ts_ns"].as_u64().unwrap(),
                    x["variant"].as_str().unwrap().to_string(),
                    x["media_sequence"].as_u64().unwrap(),
                ));
            }
        }
    }
    // Consecutive media sequence numbers; the first three back to back (startup burst).
    for w in segs.windows(2) {
        assert_eq!(w[1].2, w[0].2 + 1);
    }
    let k = hls["startup_segments"].as_u64().unwrap() as usize;
    let gap = |a: usize| segs[a + 1].0 - segs[a].0;
    for i in 0..k - 1 {
        assert!(gap(i) < 1_000_000_000, "burst gap {}", gap(i));
    }
    // Steady state: one segment per duration.
    let d = (hls["segment_duration_s"].as_f64().unwrap() * 1e9) as u64;
    for i in k..segs.len() - 1 {
        assert!(gap(i).abs_diff(d) < d / 10, "steady gap {}", gap(i));
    }
    // The switches of the scenario: 360p, then 1080p from 10 s, 720p from 20 s.
    let start = j["start_ns"].as_u64().unwrap();
    for (ts, v, _) in &segs {
        let s = (ts - start) as f64 / 1e9;
        let want = if s < 10.0 {
            "360p"
        } else if s < 20.0 {
            "1080p"
        } else {
            "720p"
        };
        assert_eq!(v, want, "variant at {s} s");
    }
}

/// The SNI of a ClientHello handshake message.
fn client_hello_sni(ch: &[u8]) -> (String, Vec<String>) {
    assert_eq!(ch[0], 1, "ClientHello");
    let len = u32::from_be_bytes([0, ch[1], ch[2], ch[3]]) as usize;
    let ch = &ch[..4 + len];
    let mut p = 4 + 2 + 32;
    p += 1 + ch[p] as usize;
    p += 2 + u16::from_be_bytes([ch[p], ch[p + 1]]) as usize;
    p += 1 + ch[p] as usize;
    let end = p + 2 + u16::from_be_bytes([ch[p], ch[p + 1]]) as usize;
    assert_eq!(end, ch.len());
    p += 2;
    let (mut sni, mut alpn) = (String::new(), Vec::new());
    while p < end {
        let ty = u16::from_be_bytes([ch[p], ch[p + 1]]);
        let l = u16::from_be_bytes([ch[p + 2], ch[p + 3]]) as usize;
        let d = &ch[p + 4..p + 4 + l];
        match ty {
            0 => {
                let n = u16::from_be_bytes([d[3], d[4]]) as usize;
                sni = String::from_utf8(d[5..5 + n].to_vec()).unwrap();
            }
            16 => {
                let mut q = 2;
                while q < d.len() {
                    let n = d[q] as usize;
                    alpn.push(String::from_utf8(d[q + 1..q + 1 + n].to_vec()).unwrap());
                    q += 1 + n;
                }
            }
            _ => {}
        }
        p += 4 + l;
    }
    (sni, alpn)
}

#[test]
fn tls_client_hello_carries_the_service_host() {
    let (t, file) = run(1);
    let flows = scan(&file);
    let j = truth_json(&t);
    let mut n = 0;
    for f in j["flows"].as_array().unwrap() {
        if f["kind"] != "https" {
            continue;
        }
        let up = &flows[&key(f, true)].stream;
        let tls = &f["tls"];
        assert_eq!(up[0], 22, "handshake record");
        let rl = u16::from_be_bytes([up[3], up[4]]) as usize;
        assert_eq!((5 + rl) as u64, tls["client_hello_bytes"].as_u64().unwrap());
        let (sni, alpn) = client_hello_sni(&up[5..5 + rl]);
        let host = j["scenario"]["https"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == f["name"])
            .unwrap()["host"]
            .as_str()
            .unwrap();
        assert_eq!(sni, host);
        assert_eq!(tls["sni"].as_str().unwrap(), host);
        assert_eq!(alpn, ["h2", "http/1.1"]);
        // Server flight: ServerHello record, then CCS, then application data.
        let down = &flows[&key(f, false)].stream;
        assert_eq!(&down[..3], &[22, 3, 3]);
        let shl = u16::from_be_bytes([down[3], down[4]]) as usize;
        assert_eq!(down[5], 2, "ServerHello");
        assert_eq!(&down[5 + shl..5 + shl + 6], &[20, 3, 3, 0, 1, 1]);
        // The records tile the server flight exactly.
        let flight = tls["server_flight_bytes"].as_u64().unwrap() as usize;
        let mut p = 0;
        while p < flight {
            p += 5 + u16::from_be_bytes([down[p + 3], down[p + 4]]) as usize;
        }
        assert_eq!(p, flight);
        n += 1;
    }
    assert!(n >= 2);
}

/// HKDF-Expand-Label (RFC 8446 §7.1), written here from the RFC.
fn hkdf_label(secret: &[u8], label: &str, len: usize) -> Vec<u8> {
    let hk = hkdf::Hkdf::<sha2::Sha256>::from_prk(secret).unwrap();
    let full = format!("tls13 {label}");
    let mut info = vec![0, len as u8, full.len() as u8];
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    let mut out = vec![0; len];
    hk.expand(&info, &mut out).unwrap();
    out
}

fn varint(b: &[u8], p: &mut usize) -> u64 {
    let len = 1 << (b[*p] >> 6);
    let mut v = (b[*p] & 0x3F) as u64;
    for i in 1..len {
        v = v << 8 | b[*p + i] as u64;
    }
    *p += len;
    v
}

#[test]
fn quic_initial_decrypts_to_a_client_hello_with_the_sni() {
    let salt = [
        0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c,
        0xad, 0xcc, 0xbb, 0x7f, 0x0a,
    ];
    let (t, file) = run(1);
    let flows = scan(&file);
    let j = truth_json(&t);
    let mut n = 0;
    for f in j["flows"].as_array().unwrap() {
        if f["kind"] != "quic" {
            continue;
        }
        let q = &f["quic"];
        // The ClientHello's Initial packets, one datagram each, CRYPTO frames in order.
        let initials = q["client_initials"].as_u64().unwrap() as usize;
        let mut hello = Vec::new();
        for (k, pkt) in flows[&key(f, true)].datagrams[..initials]
            .iter()
            .enumerate()
        {
            assert_eq!(pkt.len(), 1200, "padded client Initial");
            assert_eq!(pkt[0] & 0xF0, 0xC0, "long header, Initial");
            assert_eq!(&pkt[1..5], &[0, 0, 0, 1], "version 1");
            let dl = pkt[5] as usize;
            let dcid = &pkt[6..6 + dl];
            let hex: String = dcid.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, q["dcid"].as_str().unwrap());
            let mut p = 6 + dl;
            p += 1 + pkt[p] as usize; // SCID
            assert_eq!(varint(pkt, &mut p), 0, "token length");
            let length = varint(pkt, &mut p) as usize;
            let pn_off = p;
            assert_eq!(pn_off + length, pkt.len());
            // Keys (RFC 9001 §5.2) and header protection removal (§5.4).
            let (prk, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&salt), dcid);
            let client = hkdf_label(&prk, "client in", 32);
            let key = hkdf_label(&client, "quic key", 16);
            let iv = hkdf_label(&client, "quic iv", 12);
            let hp = hkdf_label(&client, "quic hp", 16);
            let mut mask = aes::Block::clone_from_slice(&pkt[pn_off + 4..pn_off + 20]);
            aes::Aes128::new_from_slice(&hp)
                .unwrap()
                .encrypt_block(&mut mask);
            let first = pkt[0] ^ (mask[0] & 0x0F);
            let pn_len = (first & 3) as usize + 1;
            let mut hdr = pkt[..pn_off + pn_len].to_vec();
            hdr[0] = first;
            let mut pn = 0u64;
            for i in 0..pn_len {
                hdr[pn_off + i] ^= mask[1 + i];
                pn = pn << 8 | hdr[pn_off + i] as u64;
            }
            assert_eq!(pn, k as u64, "packet numbers from 0");
            let mut nonce = iv.clone();
            for (i, b) in pn.to_be_bytes().iter().enumerate() {
                nonce[4 + i] ^= b;
            }
            let mut body = pkt[pn_off + pn_len..pkt.len() - 16].to_vec();
            let tag = &pkt[pkt.len() - 16..];
            aes_gcm::Aes128Gcm::new_from_slice(&key)
                .unwrap()
                .decrypt_in_place_detached(
                    aes_gcm::Nonce::from_slice(&nonce),
                    &hdr,
                    &mut body,
                    aes_gcm::Tag::from_slice(tag),
                )
                .expect("AEAD tag verifies");
            // A CRYPTO frame continuing the ClientHello, then PADDING.
            assert_eq!(body[0], 0x06);
            let mut p = 1;
            assert_eq!(varint(&body, &mut p) as usize, hello.len(), "CRYPTO offset");
            let clen = varint(&body, &mut p) as usize;
            hello.extend_from_slice(&body[p..p + clen]);
            assert!(body[p + clen..].iter().all(|&b| b == 0), "PADDING");
        }
        let (sni, alpn) = client_hello_sni(&hello);
        assert_eq!(sni, q["sni"].as_str().unwrap());
        assert_eq!(sni, j["scenario"]["quic"][0]["host"].as_str().unwrap());
        assert_eq!(alpn, ["h3"]);
        n += 1;
    }
    assert!(n >= 1);
}
