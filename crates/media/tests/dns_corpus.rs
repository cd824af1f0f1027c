//! Conformance of the DNS inspector with the real-traffic corpus: every capture is read
//! with `streamscope_capture` and `streamscope_wire::dissect`, each UDP port-53 datagram's
//! payload goes to a [`DnsFlow`] per 5-tuple (and each TCP port-53 direction's payloads,
//! concatenated in capture order, to `on_stream`), and the rows are compared with
//! tshark's facts in `oracle.json`: `dns_queries`, `dns_responses`, `dns_query_names`
//! and `dns_response_name_rcode`.
//!
//! A query row counts its query and its retransmissions, a row with a response counts
//! that response. Names are compared lower-cased (tshark prints them as sent), and
//! tshark's name field lists every question of a message joined by commas where a row
//! keeps the first: only the first is compared.
//!
//! One difference is by design, and it is found from the capture by a rule that does
//! not use the code under test, counted and pinned per file ([`PINNED`]):
//!
//! * **DNS in a fragmented IP datagram.** tshark reassembles IP fragments; a flow
//!   inspector sees one packet's payload at a time, so fragments are not fed here. tshark
//!   counts such a message (a) when all its fragments are captured whole: the datagram is
//!   dissected once, in the frame that completes it (complete once the last fragment is
//!   in and the fragments cover its data from offset 0; per source, destination,
//!   identification and protocol); or (b) when its first fragment is cut by the capture:
//!   it is not reassembled and tshark dissects what the first fragment holds, a DNS
//!   message when it holds the 4 bytes of id and flags. Either way the message's query /
//!   response bit, RCODE and first question name come from the first fragment's UDP
//!   payload, read here by [`reference`], a few lines written from RFC 1035 for this test
//!   (an empty name when the question, type and class included, is not all there: tshark
//!   prints no name for a cut question).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_media::dns::{is_dns_port, Dir, DnsConfig, DnsFlow, DnsRow, DnsStats};
use streamscope_wire::{dissect, Packet, Transport};

/// DNS messages in fragmented datagrams that tshark counts, per file: (queries,
/// responses). Files not listed have none.
const PINNED: &[(&str, Fragmented)] = &[
    (
        // 93 first fragments of DNS responses, all cut by the capture (frames of up to
        // 1,501 of 1,514 bytes): 91 hold the id and flags; 8 of those are cut inside the
        // question (an empty name); 2 hold fewer than 4 bytes.
        "ndpi__badpackets.pcap",
        Fragmented {
            queries: 0,
            responses: 91,
        },
    ),
    (
        // 4 IPv4 and 3 IPv6 responses in 2 fragments each, all captured.
        "ndpi__dns_fragmented.pcap",
        Fragmented {
            queries: 0,
            responses: 7,
        },
    ),
    (
        // A TXT response in 3 IPv6 fragments (and a lone last fragment, never completed).
        "zeek__ipv6-fragmented-dns.pcap",
        Fragmented {
            queries: 0,
            responses: 1,
        },
    ),
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Fragmented {
    queries: u64,
    responses: u64,
}

/// An independent reading of a DNS message's header and first question name (RFC 1035
/// sections 4.1.1, 4.1.2, 4.1.4), for the messages the rule above finds.
mod reference {
    /// The query / response bit, when the id and flags are there.
    pub fn response(msg: &[u8]) -> Option<bool> {
        (msg.len() >= 4).then(|| msg[2] & 0x80 != 0)
    }

    /// The RCODE (low 4 bits of the fourth byte).
    pub fn rcode(msg: &[u8]) -> u8 {
        msg[3] & 0x0f
    }

    /// The first question's name, lower-cased, labels joined by dots; empty when the
    /// header or the question (name, type and class) is not all there: tshark reads a
    /// question's type and class before it shows its name.
    pub fn first_name(msg: &[u8]) -> String {
        let qdcount = match msg.get(4..6) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]),
            None => return String::new(),
        };
        if qdcount == 0 {
            return String::new();
        }
        let mut labels: Vec<String> = Vec::new();
        let mut at = 12;
        // Where the question's name ends in the message (after its first pointer).
        let mut end = None;
        for _ in 0..128 {
            let Some(&len) = msg.get(at) else {
                return String::new();
            };
            if len == 0 {
                let type_class = end.unwrap_or(at + 1) + 4;
                if msg.len() < type_class {
                    return String::new();
                }
                return labels.join(".");
            }
            if len & 0xc0 == 0xc0 {
                let Some(&low) = msg.get(at + 1) else {
                    return String::new();
                };
                end.get_or_insert(at + 2);
                at = usize::from(len & 0x3f) << 8 | usize::from(low);
                continue;
            }
            let Some(label) = msg.get(at + 1..at + 1 + usize::from(len)) else {
                return String::new();
            };
            labels.push(String::from_utf8_lossy(label).to_lowercase());
            at += 1 + usize::from(len);
        }
        String::new()
    }
}

/// Counts of one side of the comparison.
#[derive(Debug, Default)]
struct Side {
    queries: u64,
    responses: u64,
    /// Query name → messages.
    names: BTreeMap<String, u64>,
    /// (name, rcode) → response messages.
    rcodes: BTreeMap<(String, u8), u64>,
}

impl Side {
    fn query(&mut self, name: &str, n: u64) {
        self.queries += n;
        *self.names.entry(name.to_owned()).or_default() += n;
    }

    fn response(&mut self, name: &str, rcode: u8) {
        self.responses += 1;
        *self.rcodes.entry((name.to_owned(), rcode)).or_default() += 1;
    }

    fn add_row(&mut self, row: &DnsRow) {
        let name = row.name.as_deref().unwrap_or("");
        if row.query_ts_ns.is_some() {
            self.query(name, 1 + u64::from(row.retransmissions));
        }
        if let (Some(_), Some(rcode)) = (row.response_ts_ns, row.rcode) {
            self.response(name, rcode);
        }
    }

    fn add(&mut self, other: &Side) {
        self.queries += other.queries;
        self.responses += other.responses;
        for (k, v) in &other.names {
            *self.names.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.rcodes {
            *self.rcodes.entry(k.clone()).or_default() += v;
        }
    }
}

/// tshark's side, from `oracle.json`.
fn oracle(facts: &Value) -> Side {
    let count = |v: &Value| v.as_u64().expect("a count");
    // tshark joins all questions' names with commas; rows keep the first.
    let first = |s: &str| s.split(',').next().unwrap_or("").to_lowercase();
    let mut side = Side {
        queries: count(&facts["dns_queries"]),
        responses: count(&facts["dns_responses"]),
        ..Side::default()
    };
    for entry in facts["dns_query_names"]
        .as_array()
        .expect("dns_query_names")
    {
        let name = first(entry[0].as_str().expect("a name"));
        *side.names.entry(name).or_default() += count(&entry[1]);
    }
    for entry in facts["dns_response_name_rcode"]
        .as_array()
        .expect("dns_response_name_rcode")
    {
        let text = entry[0].as_str().expect("\"name rcode=N\"");
        let (name, rcode) = text.rsplit_once(" rcode=").expect("\"name rcode=N\"");
        let rcode: u8 = rcode.parse().expect("an rcode");
        *side.rcodes.entry((first(name), rcode)).or_default() += count(&entry[1]);
    }
    side
}

type Endpoint = (IpAddr, u16);

/// One 5-tuple's DNS state: the client (the side that is not port 53, else the first
/// sender) and the inspector.
struct Flow {
    client: Endpoint,
    dns: DnsFlow,
    last_ns: i64,
}

/// A fragmented datagram being replayed as tshark reassembles it.
#[derive(Default)]
struct Datagram {
    /// (offset, length) of each whole-captured fragment.
    pieces: Vec<(u32, u32)>,
    /// End of the data, once the last fragment is in.
    end: Option<u32>,
    /// The UDP payload of its first fragment, when that is UDP with port 53.
    dns: Option<Vec<u8>>,
}

impl Datagram {
    fn complete(&mut self) -> bool {
        let Some(end) = self.end else {
            return false;
        };
        self.pieces.sort_unstable();
        let mut covered = 0;
        for &(offset, len) in &self.pieces {
            if offset > covered {
                return false;
            }
            covered = covered.max(offset + len);
        }
        covered >= end
    }
}

/// What one capture gives.
#[derive(Default)]
struct Tally {
    ours: Side,
    fragmented: Side,
    stats: DnsStats,
    flows: usize,
}

fn dns_ports(p: &Packet<'_>) -> Option<(u16, u16, bool)> {
    match p.transport {
        Transport::Udp { src_port, dst_port } => Some((src_port, dst_port, false)),
        Transport::Tcp(t) => Some((t.src_port, t.dst_port, true)),
        _ => None,
    }
    .filter(|&(s, d, _)| is_dns_port(s) || is_dns_port(d))
}

fn tally(path: &Path) -> Tally {
    let mut cap = Capture::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut t = Tally::default();
    let mut flows: HashMap<(bool, Endpoint, Endpoint), Flow> = HashMap::new();
    let mut order: Vec<(bool, Endpoint, Endpoint)> = Vec::new();
    let mut reassembly: HashMap<(IpAddr, IpAddr, u32, u8), Datagram> = HashMap::new();
    let mut rows: Vec<DnsRow> = Vec::new();
    // A file cut short: everything before it counts, as for tshark.
    while let Ok(Some(rec)) = cap.next_record() {
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        let Some(ip) = p.ip else {
            continue;
        };
        let ports = dns_ports(&p);

        if let Some(frag) = ip.fragment {
            let key = (ip.src, ip.dst, frag.id, ip.protocol);
            let cut = p.payload.len() < p.payload_len as usize;
            let first_dns = matches!(ports, Some((_, _, false))) && frag.offset == 0;
            if cut {
                // Not reassembled: a cut first fragment is dissected as it is.
                if first_dns {
                    count_fragmented(&mut t.fragmented, p.payload);
                }
                continue;
            }
            let d = reassembly.entry(key).or_default();
            d.pieces.push((u32::from(frag.offset), u32::from(frag.len)));
            if !frag.more {
                d.end = Some(u32::from(frag.offset) + u32::from(frag.len));
            }
            if first_dns {
                d.dns = Some(p.payload.to_vec());
            }
            if d.complete() {
                if let Some(msg) = reassembly.remove(&key).and_then(|d| d.dns) {
                    count_fragmented(&mut t.fragmented, &msg);
                }
            }
            continue;
        }

        let Some((sport, dport, is_tcp)) = ports else {
            continue;
        };
        let src = (ip.src, sport);
        let dst = (ip.dst, dport);
        let key = if src <= dst {
            (is_tcp, src, dst)
        } else {
            (is_tcp, dst, src)
        };
        let flow = flows.entry(key).or_insert_with(|| {
            order.push(key);
            let client = if is_dns_port(dport) && !is_dns_port(sport) {
                src
            } else if is_dns_port(sport) && !is_dns_port(dport) {
                dst
            } else {
                src
            };
            Flow {
                client,
                dns: DnsFlow::new(DnsConfig::default()),
                last_ns: rec.ts_ns,
            }
        });
        flow.last_ns = rec.ts_ns;
        let dir = if src == flow.client {
            Dir::ClientToServer
        } else {
            Dir::ServerToClient
        };
        let mut out = |row: DnsRow| rows.push(row);
        if is_tcp {
            if !p.payload.is_empty() {
                flow.dns.on_stream(dir, rec.ts_ns, p.payload, &mut out);
            }
        } else {
            flow.dns.on_datagram(dir, rec.ts_ns, p.payload, &mut out);
        }
    }
    for key in &order {
        let flow = flows.get_mut(key).expect("a flow");
        flow.dns.finish(flow.last_ns, &mut |row| rows.push(row));
        t.stats.merge(flow.dns.stats());
    }
    t.flows = order.len();
    for row in &rows {
        t.ours.add_row(row);
    }
    // The rows account for every message read.
    assert_eq!(t.ours.queries, t.stats.queries, "{}", path.display());
    assert_eq!(t.ours.responses, t.stats.responses, "{}", path.display());
    t
}

fn count_fragmented(side: &mut Side, msg: &[u8]) {
    match reference::response(msg) {
        Some(true) => side.response(&reference::first_name(msg), reference::rcode(msg)),
        Some(false) => side.query(&reference::first_name(msg), 1),
        None => {}
    }
}

/// Entries of `a` missing from `b` (with multiplicity), for messages.
fn missing<K: Ord + Clone + std::fmt::Debug>(
    a: &BTreeMap<K, u64>,
    b: &BTreeMap<K, u64>,
) -> Vec<(K, u64)> {
    a.iter()
        .filter_map(|(k, &n)| {
            let m = b.get(k).copied().unwrap_or(0);
            (n > m).then(|| (k.clone(), n - m))
        })
        .collect()
}

fn matched<K: Ord>(a: &BTreeMap<K, u64>, b: &BTreeMap<K, u64>) -> u64 {
    a.iter()
        .map(|(k, &n)| n.min(b.get(k).copied().unwrap_or(0)))
        .sum()
}

#[test]
fn dns_matches_oracle() {
    let Some(corpus) = streamscope_testkit::corpus(
        "media::dns_matches_oracle",
        "DNS queries, responses, names and rcodes against tshark's oracle",
    ) else {
        return;
    };
    let files = corpus.all_files();
    let pinned: HashMap<&str, Fragmented> = PINNED.iter().copied().collect();
    let mut failures = Vec::new();
    let mut total = DnsStats::default();
    for (name, facts) in files {
        let t = tally(&corpus.path(name));
        total.merge(&t.stats);
        let tshark = oracle(facts);
        let mut expected = Side::default();
        expected.add(&t.ours);
        expected.add(&t.fragmented);

        let frag = Fragmented {
            queries: t.fragmented.queries,
            responses: t.fragmented.responses,
        };
        let pin = pinned.get(name).copied().unwrap_or_default();
        if tshark.queries + tshark.responses + t.ours.queries + t.ours.responses > 0 {
            streamscope_testkit::say(&format!(
                "{name}: {} flows; queries tshark {} = ours {} + fragmented {}; \
                 responses tshark {} = ours {} + fragmented {}; query names matched {}/{}; \
                 (name, rcode) matched {}/{}; rows answered {}, unanswered {}, response only {}; \
                 malformed {}",
                t.flows,
                tshark.queries,
                t.ours.queries,
                t.fragmented.queries,
                tshark.responses,
                t.ours.responses,
                t.fragmented.responses,
                matched(&tshark.names, &t.ours.names),
                tshark.queries,
                matched(&tshark.rcodes, &t.ours.rcodes),
                tshark.responses,
                t.stats.answered,
                t.stats.unanswered,
                t.stats.response_only,
                t.stats.malformed(),
            ));
        }
        let mut check = |what: &str, ok: bool, detail: String| {
            if !ok {
                failures.push(format!("{name}: {what}: {detail}"));
            }
        };
        check(
            "fragmented DNS messages (pinned)",
            frag == pin,
            format!("found {frag:?}, pinned {pin:?}"),
        );
        check(
            "queries",
            tshark.queries == expected.queries,
            format!(
                "tshark {} / ours + fragmented {}",
                tshark.queries, expected.queries
            ),
        );
        check(
            "responses",
            tshark.responses == expected.responses,
            format!(
                "tshark {} / ours + fragmented {}",
                tshark.responses, expected.responses
            ),
        );
        check(
            "query names",
            tshark.names == expected.names,
            format!(
                "only tshark {:?}; only ours {:?}",
                missing(&tshark.names, &expected.names),
                missing(&expected.names, &tshark.names)
            ),
        );
        check(
            "response names and rcodes",
            tshark.rcodes == expected.rcodes,
            format!(
                "only tshark {:?}; only ours {:?}",
                missing(&tshark.rcodes, &expected.rcodes),
                missing(&expected.rcodes, &tshark.rcodes)
            ),
        );
    }
    let counts: Vec<String> = total
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    streamscope_testkit::say(&format!("DNS over the corpus: {}", counts.join(", ")));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
