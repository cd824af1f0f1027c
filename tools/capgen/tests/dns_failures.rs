//! `scenarios/dns-failures.toml`: one name answering NOERROR (CNAME chain, A/AAAA), then
//! NXDOMAIN, SERVFAIL and no answer at all in turn, then NOERROR again; a name that
//! always answers; background lookups. Checked against the truth:
//!
//! - each window's exchanges of the flaky name have the window's outcome (rcode,
//!   answers, CNAME chain, response or none), the stable name always answers, and the
//!   background lookups give exactly ten queries per window;
//! - the players' `dns_failure` events sit on the failed answer (NXDOMAIN, SERVFAIL) or
//!   five seconds after an unanswered query (rcode null), and each retry follows its
//!   failure by the backoff with a new query at that instant;
//! - the written frames, read by a small test-only parser, hold one query per DNS flow
//!   and a response exactly for the answered ones, with the truth's ID, name and rcode;
//! - tshark sees exactly the truth's DNS queries and responses (ID, name, QR, rcode),
//!   and its unanswered queries (`!dns.response_in`) are the truth's.

mod support {
    pub mod tshark;
}

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use capgen::truth::{FlowKind, FlowTruth};
use capgen::{generate, Format, Options, Scenario, Truth};
use support::tshark::Tshark;

const SCENARIO: &str = include_str!("../scenarios/dns-failures.toml");
const S: u64 = 1_000_000_000;
const FLAKY: &str = "live.flaky.example";
const STABLE: &str = "www.stable.example";
const CHAIN: [&str; 2] = ["flaky.edge.example.net", "e7.cdn.example.net"];
/// The stub resolver's timeout after which a player gives up on an unanswered query.
const TIMEOUT: u64 = 5 * S;

/// The scenario's windows for the flaky name, in seconds from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Window {
    Noerror,
    Nxdomain,
    Servfail,
    Noanswer,
    NoerrorAgain,
}

fn window(t: &Truth, ts: u64) -> Window {
    match (ts - t.start_ns) / S {
        0..=11 => Window::Noerror,
        12..=23 => Window::Nxdomain,
        24..=35 => Window::Servfail,
        36..=47 => Window::Noanswer,
        _ => Window::NoerrorAgain,
    }
}

fn run(seed: u64) -> (Truth, Vec<u8>) {
    let sc = Scenario::from_toml(SCENARIO).expect("dns-failures.toml parses");
    let opts = Options {
        seed,
        format: Format::Pcap,
        ts_resolution: None,
    };
    generate(&sc, &opts, Vec::new()).expect("generation succeeds")
}

/// Seed 1, generated once per test process.
fn seed1() -> &'static (Truth, Vec<u8>) {
    static C: OnceLock<(Truth, Vec<u8>)> = OnceLock::new();
    C.get_or_init(|| run(1))
}

/// Seed 1 on disk for tshark (through a `.part` name unique to this process).
fn seed1_file() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capgen-dns-failures");
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let path = dir.join("dns-failures.pcap");
        let part = dir.join(format!("dns-failures.pcap.{}.part", std::process::id()));
        File::create(&part)
            .and_then(|mut f| f.write_all(&seed1().1))
            .expect("write capture");
        std::fs::rename(&part, &path).expect("rename capture");
        path
    })
}

fn flows(t: &Truth) -> &[FlowTruth] {
    t.flows.as_deref().expect("per-flow truth")
}

fn dns_flows(t: &Truth) -> impl Iterator<Item = &FlowTruth> {
    flows(t).iter().filter(|f| f.dns.is_some())
}

/// Backoff after the k-th consecutive failure: `[retry] backoff_s = [1, 4]`.
fn backoff(k: u32) -> u64 {
    (S << (k - 1).min(2)).min(4 * S)
}

#[test]
fn deterministic_small_and_udp_only() {
    let (t, pcap) = seed1();
    let (t2, pcap2) = run(1);
    assert!(pcap == &pcap2, "same seed, same capture");
    assert_eq!(
        serde_json::to_vec(t).unwrap(),
        serde_json::to_vec(&t2).unwrap(),
        "same seed, same truth"
    );
    assert_ne!(pcap, &run(2).1, "another seed differs");
    assert!(pcap.len() < 1_000_000, "{} bytes", pcap.len());
    for f in dns_flows(t) {
        assert_eq!(f.protocol, capgen::truth::Protocol::Udp);
        assert_eq!(f.server_port, 53);
    }
}

/// The exact DNS figures of seed 1 per window (the report's table): background
/// lookups are fixed by the scenario (A every 2 s, AAAA every 3 s, stable A every 4 s).
#[test]
fn each_window_answers_as_configured() {
    let (t, _) = seed1();
    let v4: [IpAddr; 2] = [
        "203.0.113.40".parse().unwrap(),
        "203.0.113.41".parse().unwrap(),
    ];
    let v6: IpAddr = "2001:db8:40::40".parse().unwrap();
    // (window, kind) -> [queries, NOERROR, NXDOMAIN, SERVFAIL, unanswered]
    let mut fig: BTreeMap<(Window, &str), [u32; 5]> = BTreeMap::new();
    for f in dns_flows(t) {
        let d = f.dns.as_ref().unwrap();
        let ctx = format!(
            "flow {} {} {} at {:.3} s",
            f.flow_id,
            d.qname,
            d.qtype,
            (d.query_ts_ns - t.start_ns) as f64 / 1e9
        );
        let chain: Vec<String> = CHAIN.iter().map(|s| s.to_string()).collect();
        assert_eq!(f.packets_up, 1, "{ctx}: one query");
        assert_eq!(
            f.packets_down,
            u64::from(d.response_ts_ns.is_some()),
            "{ctx}: a response exactly when the truth has its time"
        );
        // No query is cut by the capture's end here: every planned answer is written.
        assert_eq!(d.rcode.is_some(), d.response_ts_ns.is_some(), "{ctx}");
        if d.qname == STABLE {
            assert_eq!(d.rcode, Some(0), "{ctx}: the stable name always answers");
            assert_eq!(d.answers.len(), 1, "{ctx}");
            continue;
        }
        assert_eq!(d.qname, FLAKY, "{ctx}");
        let w = window(t, d.query_ts_ns);
        let kind = if f.kind == FlowKind::DnsLookup {
            "background"
        } else {
            assert_eq!(f.kind, FlowKind::Dns, "{ctx}");
            "player"
        };
        let row = fig.entry((w, kind)).or_default();
        row[0] += 1;
        match w {
            Window::Noerror | Window::NoerrorAgain => {
                assert_eq!(d.rcode, Some(0), "{ctx}");
                assert_eq!(f.dns_cnames.as_ref(), Some(&chain), "{ctx}: CNAME chain");
                if d.qtype == "A" {
                    assert!(d.answers.len() == 2 && d.answers.iter().all(|a| v4.contains(a)));
                } else {
                    assert_eq!(d.answers, [v6], "{ctx}");
                }
                row[1] += 1;
            }
            Window::Nxdomain | Window::Servfail => {
                let rc = if w == Window::Nxdomain { 3 } else { 2 };
                assert_eq!(d.rcode, Some(rc), "{ctx}");
                assert!(d.answers.is_empty(), "{ctx}");
                assert_eq!(f.dns_cnames.as_deref(), Some(&[][..]), "{ctx}");
                row[if rc == 3 { 2 } else { 3 }] += 1;
            }
            Window::Noanswer => {
                assert_eq!(d.rcode, None, "{ctx}: no rcode");
                assert!(d.answers.is_empty(), "{ctx}: no answers");
                assert_eq!(d.response_ts_ns, None, "{ctx}: no response");
                assert_eq!(f.dns_cnames.as_deref(), Some(&[][..]), "{ctx}");
                assert_eq!(
                    (f.packets_down, f.payload_bytes_down),
                    (0, 0),
                    "{ctx}: nothing comes back"
                );
                assert_eq!(f.last_ts_ns, d.query_ts_ns, "{ctx}");
                row[4] += 1;
            }
        }
    }
    use Window::*;
    let want: BTreeMap<(Window, &str), [u32; 5]> = [
        ((Noerror, "background"), [10, 10, 0, 0, 0]),
        ((Noerror, "player"), [7, 7, 0, 0, 0]),
        ((Nxdomain, "background"), [10, 0, 10, 0, 0]),
        ((Nxdomain, "player"), [14, 0, 14, 0, 0]),
        ((Servfail, "background"), [10, 0, 0, 10, 0]),
        ((Servfail, "player"), [9, 0, 0, 9, 0]),
        ((Noanswer, "background"), [10, 0, 0, 0, 10]),
        ((Noanswer, "player"), [3, 0, 0, 0, 3]),
        ((NoerrorAgain, "background"), [10, 10, 0, 0, 0]),
        ((NoerrorAgain, "player"), [8, 8, 0, 0, 0]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        fig, want,
        "DNS figures of the flaky name per window (seed 1)"
    );
    let stable = dns_flows(t)
        .filter(|f| f.dns.as_ref().unwrap().qname == STABLE)
        .count();
    assert_eq!(stable, 15 + 16, "stable: 15 background + 16 player lookups");

    let ev: Vec<(u64, &str, &str)> = t
        .fault_events
        .iter()
        .map(|e| ((e.ts_ns - t.start_ns) / S, e.kind, e.target.as_str()))
        .collect();
    assert_eq!(
        ev,
        [
            (12, "dns_nxdomain", FLAKY),
            (24, "dns_servfail", FLAKY),
            (36, "dns_noanswer", FLAKY)
        ]
    );
}

#[test]
fn players_fail_and_retry_with_backoff() {
    let (t, _) = seed1();
    let by_id: HashMap<u64, &FlowTruth> = flows(t).iter().map(|f| (f.flow_id, f)).collect();
    let mut last_fail: HashMap<u64, (u64, u32)> = HashMap::new();
    let (mut timeouts, mut answered_failures, mut retries) = (0, 0, 0);
    for e in &t.client_events {
        assert_eq!(e.service, "flaky", "only the flaky name fails");
        match e.kind {
            "dns_failure" => {
                let f = by_id[&e.flow_id.expect("the DNS flow of the failure")];
                let d = f.dns.as_ref().unwrap();
                assert_eq!(f.kind, FlowKind::Dns);
                assert_eq!(e.rcode, d.rcode, "the event's rcode is the flow's");
                match e.rcode {
                    None => {
                        assert_eq!(window(t, d.query_ts_ns), Window::Noanswer);
                        assert_eq!(e.ts_ns, d.query_ts_ns + TIMEOUT, "gives up after 5 s");
                        timeouts += 1;
                    }
                    Some(rc) => {
                        assert!(rc == 2 || rc == 3, "rcode {rc}");
                        assert_eq!(Some(e.ts_ns), d.response_ts_ns, "at the failed answer");
                        answered_failures += 1;
                    }
                }
                last_fail.insert(e.player, (e.ts_ns, e.attempt));
            }
            "retry" => {
                let (ft, k) = last_fail[&e.player];
                assert_eq!(k, e.attempt, "retry follows the failure it counts");
                assert_eq!(e.delay_ns, Some(backoff(k)), "backoff of failure {k}");
                assert_eq!(e.ts_ns - ft, backoff(k), "player {} waited", e.player);
                assert!(
                    flows(t).iter().any(|f| f.kind == FlowKind::Dns
                        && f.dns.as_ref().unwrap().query_ts_ns == e.ts_ns),
                    "a new lookup at the retry"
                );
                retries += 1;
            }
            k => panic!("unexpected client event {k}"),
        }
    }
    // Every player query in the silent window timed out (all within the capture).
    let silent = dns_flows(t)
        .filter(|f| f.kind == FlowKind::Dns && f.dns.as_ref().unwrap().rcode.is_none())
        .count();
    assert_eq!(timeouts, silent);
    assert_eq!((timeouts, answered_failures, retries), (3, 23, 26));
}

/// A UDP datagram to or from port 53, as read from the file.
struct DnsFrame {
    ts: u64,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    id: u16,
    response: bool,
    rcode: u8,
    qname: String,
}

/// Every frame touching port 53; panics on DNS over TCP (none is generated).
fn dns_frames(pcap: &[u8]) -> Vec<DnsFrame> {
    let le32 = |o: usize| u32::from_le_bytes(pcap[o..o + 4].try_into().unwrap()) as u64;
    assert_eq!(le32(0), 0xA1B2_C3D4, "µs pcap");
    let be16 = |b: &[u8], o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
    let mut out = Vec::new();
    let mut off = 24;
    while off < pcap.len() {
        let ts = le32(off) * S + le32(off + 4) * 1_000;
        let len = le32(off + 8) as usize;
        let fr = &pcap[off + 16..off + 16 + len];
        off += 16 + len;
        let (mut et, mut l3) = (be16(fr, 12), 14);
        if et == 0x8100 {
            (et, l3) = (be16(fr, 16), 18);
        }
        let (src, dst, proto, l4): (IpAddr, IpAddr, u8, &[u8]) = match et {
            0x0800 => {
                let ihl = usize::from(fr[l3] & 0x0F) * 4;
                let a: [u8; 4] = fr[l3 + 12..l3 + 16].try_into().unwrap();
                let b: [u8; 4] = fr[l3 + 16..l3 + 20].try_into().unwrap();
                (a.into(), b.into(), fr[l3 + 9], &fr[l3 + ihl..])
            }
            0x86DD => {
                let a: [u8; 16] = fr[l3 + 8..l3 + 24].try_into().unwrap();
                let b: [u8; 16] = fr[l3 + 24..l3 + 40].try_into().unwrap();
                (a.into(), b.into(), fr[l3 + 6], &fr[l3 + 40..])
            }
            _ => continue,
        };
        if proto != 6 && proto != 17 {
            continue;
        }
        let (sport, dport) = (be16(l4, 0), be16(l4, 2));
        if sport != 53 && dport != 53 {
            continue;
        }
        assert_eq!(proto, 17, "DNS over UDP only");
        let m = &l4[8..];
        let mut name = Vec::new();
        let mut p = 12;
        while m[p] != 0 {
            let l = usize::from(m[p]);
            name.push(String::from_utf8(m[p + 1..p + 1 + l].to_vec()).unwrap());
            p += 1 + l;
        }
        out.push(DnsFrame {
            ts,
            src,
            dst,
            sport,
            dport,
            id: be16(m, 0),
            response: m[2] & 0x80 != 0,
            rcode: m[3] & 0x0F,
            qname: name.join("."),
        });
    }
    out
}

#[test]
fn frames_hold_exactly_the_truths_exchanges() {
    let (t, pcap) = seed1();
    let by_client: HashMap<(IpAddr, u16), &FlowTruth> = dns_flows(t)
        .map(|f| ((f.client_addr, f.client_port), f))
        .collect();
    let mut seen: HashMap<u64, (u32, u32)> = HashMap::new();
    for fr in dns_frames(pcap) {
        let key = if fr.response {
            (fr.dst, fr.dport)
        } else {
            (fr.src, fr.sport)
        };
        let f = by_client[&key];
        let d = f.dns.as_ref().unwrap();
        assert_eq!((fr.id, fr.qname.as_str()), (d.id, d.qname.as_str()));
        let s = seen.entry(f.flow_id).or_default();
        if fr.response {
            assert_eq!(Some(fr.ts), d.response_ts_ns, "flow {}", f.flow_id);
            assert_eq!(Some(fr.rcode), d.rcode, "flow {}", f.flow_id);
            s.1 += 1;
        } else {
            assert_eq!(fr.ts, d.query_ts_ns, "flow {}", f.flow_id);
            s.0 += 1;
        }
    }
    for f in dns_flows(t) {
        let answered = f.dns.as_ref().unwrap().response_ts_ns.is_some();
        assert_eq!(
            seen.get(&f.flow_id).copied(),
            Some((1, u32::from(answered))),
            "flow {}: one query, a response iff answered",
            f.flow_id
        );
    }
}

/// tshark's view: `-Y dns -T fields -e dns.id -e dns.qry.name -e dns.flags.response
/// -e dns.flags.rcode` (plus the client endpoint to tell exchanges apart) is exactly
/// the truth's queries and responses; `dns.flags.response==0 && !dns.response_in`
/// (two passes) is exactly the truth's unanswered queries; no DNS over TCP.
#[test]
fn tshark_sees_the_truths_dns() {
    let Some(sh) = Tshark::get(
        "capgen::dns_failures::tshark_sees_the_truths_dns",
        "DNS queries, responses and unanswered queries of dns-failures.toml against tshark",
    ) else {
        return;
    };
    let (t, _) = seed1();
    let path = seed1_file();
    let fields = [
        "dns.id",
        "dns.qry.name",
        "dns.flags.response",
        "dns.flags.rcode",
        "ip.src",
        "ipv6.src",
        "udp.srcport",
        "ip.dst",
        "ipv6.dst",
        "udp.dstport",
        "frame.time_epoch",
    ];
    type Row = (u64, String, u64, Option<u64>, IpAddr, u64, u64);
    let mut got: Vec<Row> = sh
        .fields(path, &[], Some("dns"), &fields)
        .iter()
        .map(|r| {
            let resp = r.u64(2).expect("dns.flags.response");
            // The client endpoint: the source of a query, the destination of a response.
            let (addr, port) = if resp == 1 {
                (r.addr(7).or(r.addr(8)), r.u64(9))
            } else {
                (r.addr(4).or(r.addr(5)), r.u64(6))
            };
            (
                r.u64(0).expect("dns.id"),
                r.get(1).to_string(),
                resp,
                r.u64(3),
                addr.expect("address"),
                port.expect("port"),
                r.time_ns(10).expect("time"),
            )
        })
        .collect();
    let mut want: Vec<Row> = Vec::new();
    let mut unanswered: Vec<(u64, String)> = Vec::new();
    for f in dns_flows(t) {
        let d = f.dns.as_ref().unwrap();
        let (id, port) = (u64::from(d.id), u64::from(f.client_port));
        want.push((
            id,
            d.qname.clone(),
            0,
            None,
            f.client_addr,
            port,
            d.query_ts_ns,
        ));
        match d.response_ts_ns {
            Some(ts) => want.push((
                id,
                d.qname.clone(),
                1,
                d.rcode.map(u64::from),
                f.client_addr,
                port,
                ts,
            )),
            None => unanswered.push((id, d.qname.clone())),
        }
    }
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len(), "DNS messages");
    assert_eq!(got, want, "tshark's DNS messages are the truth's");

    let mut silent: Vec<(u64, String)> = sh
        .fields(
            path,
            &["-2"],
            Some("dns.flags.response == 0 && !dns.response_in"),
            &["dns.id", "dns.qry.name"],
        )
        .iter()
        .map(|r| (r.u64(0).expect("dns.id"), r.get(1).to_string()))
        .collect();
    silent.sort();
    unanswered.sort();
    assert_eq!(silent, unanswered, "tshark's unanswered queries");
    assert_eq!(silent.len(), 13);
    assert_eq!(sh.count(path, &[], "tcp.port == 53"), 0, "no DNS over TCP");
    assert_eq!(
        sh.count(
            path,
            &[],
            "dns && (_ws.malformed || _ws.expert.severity >= note)"
        ),
        0,
        "DNS frames decode without notes, warnings or errors"
    );
}
