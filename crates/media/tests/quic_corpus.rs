//! Conformance of the QUIC reader with the real-traffic corpus: every capture is read
//! with `streamscope_capture` and `streamscope_wire::dissect`, each UDP datagram goes to
//! a [`QuicFlow`] per 5-tuple (the client is the sender of the flow's first datagram),
//! and the ClientHellos read from the client's Initials are compared with tshark's facts
//! in `oracle.json`: `quic_client_hellos` and `quic_sni` (tshark decrypts Initials too);
//! gQUIC flows' names, from their client hellos in the clear, as a set with `gquic_sni`.
//! Every UDP flow is fed, whatever its ports; the reader gives up on flows that show no
//! QUIC header.
//!
//! Long header packets are compared too: tshark's `quic_versions` counts one
//! `quic.version` per long header packet it reads; ours are the packets read whole plus
//! the datagrams cut by the capture's snap length that start with a long header (their
//! Length field runs past the captured bytes, so the reader counts them as truncated,
//! where tshark still reads the header). gQUIC packets are compared with `gquic_frames`.
//!
//! One difference is by design, found from the capture by a rule that does not use the
//! code under test, counted and pinned per file ([`PINNED`]):
//!
//! * **Versions only named.** tshark also decrypts the Initials of IETF drafts before
//!   23 and of Meta's mvfst versions other than 0xfaceb002 and 0xfaceb00e (with their own
//!   salts); the reader names and counts those versions but opens only versions 1 and 2,
//!   drafts 23 to 34 and those two mvfst versions. The rule: a flow whose client's first
//!   datagram starts with a long header (top bit set) whose version field (bytes 1 to 4)
//!   is such a draft (0xff0000xx) or mvfst (0xfaceb00x) version, and whose type bits
//!   (0x30 of the first byte) are 0, an Initial in those versions. tshark's ClientHellos
//!   in such flows are missing from ours, one per flow: the pin is the number of such
//!   flows, and the names tshark gives beyond ours must be exactly that many.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_media::quic::{version_name, Dir, QuicFlow, QuicStats, VersionKind};
use streamscope_wire::{dissect, Transport};

/// Flows of versions tshark decrypts and the reader only names, per file. Files not
/// listed have none.
const PINNED: &[(&str, u64)] = &[];

type Endpoint = (IpAddr, u16);

struct Flow {
    client: Endpoint,
    quic: QuicFlow,
    /// The client's first datagram is an Initial of a version only named.
    named_only: bool,
    last_ns: i64,
}

/// The rule of the module documentation, on a client's first datagram.
fn named_only_initial(d: &[u8]) -> bool {
    let (Some(&first), Some(v)) = (d.first(), d.get(1..5)) else {
        return false;
    };
    let v = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let draft = v >> 8 == 0x00ff_0000 && v & 0xff < 23;
    let mvfst = v & 0xffff_fff0 == 0xface_b000 && v != 0xface_b002 && v != 0xface_b00e;
    first & 0x80 != 0 && first & 0x30 == 0 && (draft || mvfst)
}

#[derive(Default)]
struct Tally {
    flows: usize,
    quic: usize,
    named_only: u64,
    /// Datagrams cut by the capture that start with a long header.
    cut_long: u64,
    client_hellos: u64,
    sni: BTreeMap<String, u64>,
    /// gQUIC flows' server names (from their CHLO in the clear).
    gquic_sni: BTreeSet<String>,
    versions: BTreeMap<String, u64>,
    stats: QuicStats,
}

fn tally(path: &Path) -> Tally {
    let mut cap = Capture::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut flows: HashMap<(Endpoint, Endpoint), Flow> = HashMap::new();
    let mut cut_long = 0;
    while let Ok(Some(rec)) = cap.next_record() {
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        let (Some(ip), Transport::Udp { src_port, dst_port }) = (p.ip, p.transport) else {
            continue;
        };
        if ip.fragment.is_some_and(|f| f.offset != 0 || f.more) {
            continue;
        }
        if p.payload.len() < p.payload_len as usize
            && p.payload.first().is_some_and(|b| b & 0x80 != 0)
        {
            cut_long += 1;
        }
        let src = (ip.src, src_port);
        let dst = (ip.dst, dst_port);
        let key = if src <= dst { (src, dst) } else { (dst, src) };
        let f = flows.entry(key).or_insert_with(|| Flow {
            client: src,
            quic: QuicFlow::new(),
            named_only: named_only_initial(p.payload),
            last_ns: rec.ts_ns,
        });
        f.last_ns = rec.ts_ns;
        let dir = if src == f.client { Dir::Up } else { Dir::Down };
        f.quic.on_datagram(dir, rec.ts_ns, p.payload, &mut |_| {});
    }
    let mut t = Tally {
        cut_long,
        ..Tally::default()
    };
    for f in flows.values_mut() {
        f.quic.finish(f.last_ns);
        t.flows += 1;
        if f.quic.is_quic() == Some(true) {
            t.quic += 1;
        }
        t.named_only += u64::from(f.named_only);
        if let Some(v) = f.quic.version() {
            *t.versions.entry(version_name(v).into_owned()).or_default() += 1;
        }
        let gquic = f
            .quic
            .version()
            .is_some_and(|v| VersionKind::of(v) == VersionKind::Gquic);
        match f.quic.client_hello() {
            Some(ch) if gquic => {
                t.gquic_sni.insert(ch.sni.clone().unwrap_or_default());
            }
            Some(ch) => {
                t.client_hellos += 1;
                *t.sni.entry(ch.sni.clone().unwrap_or_default()).or_default() += 1;
            }
            None => {}
        }
        t.stats.merge(f.quic.stats());
    }
    t
}

fn oracle_sni(facts: &Value) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in facts["quic_sni"].as_array().expect("quic_sni") {
        let name = e[0].as_str().expect("a name").to_lowercase();
        *m.entry(name).or_default() += e[1].as_u64().expect("a count");
    }
    m
}

#[test]
fn quic_client_hellos_match_oracle() {
    let Some(corpus) = streamscope_testkit::corpus(
        "media::quic_client_hellos_match_oracle",
        "QUIC ClientHellos and server names against tshark's oracle",
    ) else {
        return;
    };
    let pinned: HashMap<&str, u64> = PINNED.iter().copied().collect();
    let mut failures = Vec::new();
    let mut total = QuicStats::default();
    for (name, facts) in corpus.files() {
        let t = tally(&corpus.path(name));
        total.merge(&t.stats);
        let want_hellos = facts["quic_client_hellos"].as_u64().expect("a count");
        let want_sni = oracle_sni(facts);
        let quic_frames = facts["quic_frames"].as_u64().unwrap_or(0)
            + facts["gquic_frames"].as_u64().unwrap_or(0);
        if quic_frames + t.client_hellos > 0 {
            streamscope_testkit::say(&format!(
                "{name}: {} UDP flows, {} QUIC (versions {:?}); ClientHellos tshark {want_hellos} \
                 = ours {} + named-only {}; names ours {:?}; Initials opened {}, not opened {}; \
                 long/short packets {}/{}",
                t.flows,
                t.quic,
                t.versions,
                t.client_hellos,
                t.named_only,
                t.sni,
                t.stats.initials_opened,
                t.stats.initials_not_opened,
                t.stats.initial_packets
                    + t.stats.zero_rtt_packets
                    + t.stats.handshake_packets
                    + t.stats.retry_packets
                    + t.stats.version_negotiation_packets
                    + t.stats.other_version_packets,
                t.stats.short_packets,
            ));
        }
        let pin = pinned.get(name).copied().unwrap_or(0);
        let mut check = |what: &str, ok: bool, detail: String| {
            if !ok {
                failures.push(format!("{name}: {what}: {detail}"));
            }
        };
        check(
            "flows of versions only named (pinned)",
            t.named_only == pin,
            format!("found {}, pinned {pin}", t.named_only),
        );
        check(
            "ClientHellos",
            want_hellos == t.client_hellos + t.named_only,
            format!(
                "tshark {want_hellos}, ours {} + named-only {}",
                t.client_hellos, t.named_only
            ),
        );
        // Every name of ours is tshark's, and tshark's others are the named-only flows'.
        let mut rest = want_sni.clone();
        let mut extra = Vec::new();
        for (n, &c) in &t.sni {
            match rest.get_mut(n) {
                Some(k) if *k >= c => *k -= c,
                _ => extra.push(n.clone()),
            }
        }
        let unexplained: u64 = rest.values().sum();
        // tshark's quic.version occurrences: one per long header packet it reads, the
        // packets of datagrams the capture cut included.
        let versions: u64 = facts["quic_versions"]
            .as_array()
            .expect("quic_versions")
            .iter()
            .map(|e| e[1].as_u64().expect("a count"))
            .sum();
        let long = t.stats.initial_packets
            + t.stats.zero_rtt_packets
            + t.stats.handshake_packets
            + t.stats.retry_packets
            + t.stats.version_negotiation_packets
            + t.stats.other_version_packets;
        check(
            "long header packets (tshark's quic.version = ours + cut datagrams)",
            versions == long + t.cut_long,
            format!("tshark {versions}, ours {long} + cut {}", t.cut_long),
        );
        let gquic = facts["gquic_frames"].as_u64().unwrap_or(0);
        check(
            "gQUIC packets",
            gquic == t.stats.gquic_packets,
            format!("tshark {gquic}, ours {}", t.stats.gquic_packets),
        );
        check(
            "server names",
            extra.is_empty() && unexplained == t.named_only,
            format!("tshark {want_sni:?}, ours {:?}", t.sni),
        );
        // gQUIC: tshark lists a name per CHLO (a client sends a second after the server's
        // REJ); ours is one per flow: the names as sets.
        let want_gquic: BTreeSet<String> = facts["gquic_sni"]
            .as_array()
            .expect("gquic_sni")
            .iter()
            .map(|e| e[0].as_str().expect("a name").to_lowercase())
            .collect();
        check(
            "gQUIC server names",
            want_gquic == t.gquic_sni,
            format!("tshark {want_gquic:?}, ours {:?}", t.gquic_sni),
        );
    }
    let counts: Vec<String> = total
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    streamscope_testkit::say(&format!("QUIC over the corpus: {}", counts.join(", ")));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
