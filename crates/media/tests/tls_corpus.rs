//! Conformance of the TLS reader with the real-traffic corpus: every capture is read with
//! `streamscope_capture` and `streamscope_wire::dissect`; each TCP connection's two
//! directions are put in sequence order here (segments sorted by their offset from the
//! direction's first sequence number, bytes seen before skipped, holes reported as gaps)
//! and fed to a [`TlsFlow`]; the ClientHellos it reads are compared with tshark's facts
//! in `oracle.json`: `tls_client_hellos` (frames with a ClientHello) and `tls_sni`
//! (their server names).
//!
//! A connection is keyed by its 5-tuple; a SYN without ACK on a key that already carried
//! data starts a new connection, as tshark starts a new `tcp.stream`. The client is the
//! sender of the SYN, else the sender of the first packet. Every TCP connection is fed,
//! whatever its ports: the reader gives up on a connection that does not start like TLS.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_media::tls::{Dir, TlsFlow, TlsStats};
use streamscope_wire::{dissect, tcp_flags, Transport};

type Endpoint = (IpAddr, u16);

/// One direction's segments: (sequence number, time, bytes).
#[derive(Default)]
struct Segments {
    /// The sequence number of the first byte, from the SYN.
    isn: Option<u32>,
    segments: Vec<(u32, i64, Vec<u8>)>,
}

impl Segments {
    /// Feeds the direction in sequence order: returns the bytes fed.
    fn feed(&self, flow: &mut TlsFlow, dir: Dir) -> u64 {
        let Some(base) = self.isn.or_else(|| self.segments.first().map(|s| s.0)) else {
            return 0;
        };
        let mut order: Vec<(u64, i64, &[u8])> = self
            .segments
            .iter()
            .map(|(seq, ts, b)| (u64::from(seq.wrapping_sub(base)), *ts, &b[..]))
            .collect();
        order.sort_by_key(|s| s.0);
        let mut next = 0u64;
        let mut fed = 0u64;
        for (off, ts, bytes) in order {
            let end = off + bytes.len() as u64;
            if end <= next {
                continue;
            }
            if off > next {
                flow.on_gap(dir, ts, off - next);
                next = off;
            }
            let fresh = &bytes[(next - off) as usize..];
            flow.on_stream(dir, ts, fresh, &mut |_| {});
            fed += fresh.len() as u64;
            next = end;
        }
        fed
    }
}

struct Connection {
    client: Endpoint,
    dirs: [Segments; 2],
    last_ns: i64,
}

impl Connection {
    fn new(client: Endpoint, ts: i64) -> Connection {
        Connection {
            client,
            dirs: [Segments::default(), Segments::default()],
            last_ns: ts,
        }
    }

    fn has_data(&self) -> bool {
        self.dirs.iter().any(|d| !d.segments.is_empty())
    }
}

/// What one capture gives.
#[derive(Default)]
struct Tally {
    connections: usize,
    tls: usize,
    client_hellos: u64,
    sni: BTreeMap<String, u64>,
    no_sni: u64,
    stats: TlsStats,
}

impl Tally {
    fn add(&mut self, c: &Connection) {
        let mut flow = TlsFlow::new();
        // Up first, then down: the HelloRetryRequest case needs the client's first
        // ClientHello before the server's; the corpus has none, and order across
        // directions matters for nothing else.
        c.dirs[0].feed(&mut flow, Dir::Up);
        c.dirs[1].feed(&mut flow, Dir::Down);
        flow.finish(c.last_ns);
        self.connections += 1;
        if flow.is_tls() == Some(true) {
            self.tls += 1;
        }
        let n = u64::from(flow.client_hellos());
        self.client_hellos += n;
        if let Some(ch) = flow.client_hello() {
            match &ch.sni {
                Some(name) => *self.sni.entry(name.clone()).or_default() += n,
                None => self.no_sni += n,
            }
        }
        self.stats.merge(flow.stats());
    }
}

fn tally(path: &Path) -> Tally {
    let mut cap = Capture::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut t = Tally::default();
    let mut conns: HashMap<(Endpoint, Endpoint), Connection> = HashMap::new();
    let mut done: Vec<Connection> = Vec::new();
    while let Ok(Some(rec)) = cap.next_record() {
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        let (Some(ip), Transport::Tcp(tcp)) = (p.ip, p.transport) else {
            continue;
        };
        if ip.fragment.is_some_and(|f| f.offset != 0 || f.more) {
            continue;
        }
        let src = (ip.src, tcp.src_port);
        let dst = (ip.dst, tcp.dst_port);
        let key = if src <= dst { (src, dst) } else { (dst, src) };
        let syn = tcp.flags & tcp_flags::SYN != 0;
        let ack = tcp.flags & tcp_flags::ACK != 0;
        if syn && !ack && conns.get(&key).is_some_and(Connection::has_data) {
            done.extend(conns.remove(&key));
        }
        let c = conns
            .entry(key)
            .or_insert_with(|| Connection::new(src, rec.ts_ns));
        c.last_ns = rec.ts_ns;
        if syn && !ack && c.client != src && !c.has_data() {
            c.client = src;
            c.dirs.swap(0, 1);
        }
        let d = &mut c.dirs[usize::from(src != c.client)];
        if syn {
            d.isn = Some(tcp.seq.wrapping_add(1));
        } else if !p.payload.is_empty() {
            d.segments.push((tcp.seq, rec.ts_ns, p.payload.to_vec()));
        }
    }
    done.extend(conns.into_values());
    for c in &done {
        t.add(c);
    }
    t
}

fn oracle_sni(facts: &Value) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in facts["tls_sni"].as_array().expect("tls_sni") {
        let name = e[0].as_str().expect("a name").to_lowercase();
        *m.entry(name).or_default() += e[1].as_u64().expect("a count");
    }
    m
}

#[test]
fn tls_client_hellos_match_oracle() {
    let Some(corpus) = streamscope_testkit::corpus(
        "media::tls_client_hellos_match_oracle",
        "TLS ClientHellos and server names against tshark's oracle",
    ) else {
        return;
    };
    let mut failures = Vec::new();
    let mut total = TlsStats::default();
    for (name, facts) in corpus.files() {
        let t = tally(&corpus.path(name));
        total.merge(&t.stats);
        let want_hellos = facts["tls_client_hellos"].as_u64().expect("a count");
        let want_sni = oracle_sni(facts);
        if want_hellos + t.client_hellos > 0 {
            streamscope_testkit::say(&format!(
                "{name}: {} TCP connections, {} TLS; ClientHellos tshark {want_hellos} / ours {}; \
                 names tshark {} / ours {} (+{} without SNI); records {}",
                t.connections,
                t.tls,
                t.client_hellos,
                want_sni.values().sum::<u64>(),
                t.sni.values().sum::<u64>(),
                t.no_sni,
                t.stats.records,
            ));
        }
        if want_hellos != t.client_hellos {
            failures.push(format!(
                "{name}: ClientHellos tshark {want_hellos}, ours {}",
                t.client_hellos
            ));
        }
        if want_sni != t.sni {
            failures.push(format!(
                "{name}: server names differ: tshark {want_sni:?}, ours {:?}",
                t.sni
            ));
        }
    }
    let counts: Vec<String> = total
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    streamscope_testkit::say(&format!("TLS over the corpus: {}", counts.join(", ")));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
