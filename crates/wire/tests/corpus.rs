//! Conformance with the real-traffic corpus: every record of every file is dissected and the
//! counts are checked against tshark's facts in `oracle.json`.
//!
//! tshark and this dissector differ on exactly these frames, and each difference is
//! accounted for, not tolerated:
//!
//! * IP fragments. tshark reassembles: a fragment whose bytes are all captured goes into
//!   its reassembly table, and only the frame that completes the datagram carries
//!   `tcp.stream` / `udp.stream`. A first fragment that is cut by the capture is not
//!   reassembled, and tshark dissects its transport header as we do. Here every first
//!   fragment yields its transport header and later fragments none; the test replays
//!   tshark's reassembly (contiguous coverage from offset 0 up to the fragment without
//!   more-fragments) to find the completing frames.
//! * ICMP errors (ICMPv4 types 3, 4, 5, 11, 12; ICMPv6 types 1 to 4): tshark gives the
//!   quoted transport header a stream; here the frame is ICMP. The quote is dissected as
//!   raw IP to know whether it holds TCP or UDP.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_wire::{dissect, DecodeError, DecodeErrorCounts, LinkType, Packet, Transport};

fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    assert!(
        dir.join("oracle.json").is_file(),
        "corpus not found at {} (the repository is expected to be checked out with `shared/` \
         as a sibling); this test cannot run without it",
        dir.display()
    );
    dir
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum L4 {
    Tcp,
    Udp,
}

fn l4_of(p: &Packet) -> Option<L4> {
    match p.transport {
        Transport::Tcp(_) => Some(L4::Tcp),
        Transport::Udp { .. } => Some(L4::Udp),
        _ => None,
    }
}

fn l4_of_protocol(protocol: u8) -> Option<L4> {
    match protocol {
        6 => Some(L4::Tcp),
        17 => Some(L4::Udp),
        _ => None,
    }
}

/// The transport quoted by an ICMP error message, if any.
fn icmp_quote(p: &Packet) -> Option<L4> {
    let error = match p.transport {
        Transport::Icmpv4 { kind, .. } => matches!(kind, 3 | 4 | 5 | 11 | 12),
        Transport::Icmpv6 { kind, .. } => matches!(kind, 1..=4),
        _ => false,
    };
    if !error {
        return None;
    }
    // ICMPv6 errors and ICMPv4 errors alike: the quote follows the 8-byte header.
    let quoted = dissect(LinkType::RAW, p.payload, u32::MAX);
    l4_of(&quoted)
}

/// RGMP message types (RFC 3488 section 3): 0xfc leave, 0xfd join, 0xfe bye, 0xff hello.
const RGMP_FIRST: u8 = 0xfc;
const RGMP_LAST: u8 = 0xff;

#[derive(Default)]
struct Datagram {
    /// (start, end) byte ranges received.
    ranges: Vec<(u32, u32)>,
    /// Length of the datagram, known once the last fragment arrived.
    total: Option<u32>,
}

impl Datagram {
    fn complete(&self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        let mut ranges = self.ranges.clone();
        ranges.sort_unstable();
        let mut covered = 0;
        for (start, end) in ranges {
            if start > covered {
                return false;
            }
            covered = covered.max(end);
        }
        covered >= total
    }
}

#[derive(Default, Debug)]
struct Tally {
    frames: u64,
    tcp: u64,
    udp: u64,
    vlan_frames: u64,
    vlan_ids: BTreeMap<u16, u64>,
    ipv4_fragments: u64,
    ipv6_fragments: u64,
    ipv6_completed: u64,
    igmp: u64,
    rgmp: u64,
    /// Whole-captured first fragments with a transport header (tshark defers them).
    deferred_first: [u64; 2],
    /// Frames completing a reassembled datagram, by the datagram's transport.
    completing: [u64; 2],
    /// ICMP errors quoting a transport header.
    icmp_quotes: [u64; 2],
    errors: DecodeErrorCounts,
}

fn idx(l4: L4) -> usize {
    match l4 {
        L4::Tcp => 0,
        L4::Udp => 1,
    }
}

fn tally(path: &Path) -> Tally {
    let mut cap = Capture::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut t = Tally::default();
    let mut table: HashMap<(IpAddr, IpAddr, u32, u8), Datagram> = HashMap::new();
    loop {
        let rec = match cap.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            // A file cut short: everything before it counts, as for tshark.
            Err(_) => break,
        };
        t.frames += 1;
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        t.errors.add_opt(p.error);
        let mine = l4_of(&p);
        match mine {
            Some(L4::Tcp) => t.tcp += 1,
            Some(L4::Udp) => t.udp += 1,
            None => {}
        }
        if p.vlan_count > 0 {
            t.vlan_frames += 1;
            for &id in &p.vlan[..usize::from(p.vlan_count.min(2))] {
                *t.vlan_ids.entry(id).or_default() += 1;
            }
        }
        match p.transport {
            // RGMP (RFC 3488) rides in IGMP but tshark names it its own protocol.
            Transport::Igmp {
                kind: RGMP_FIRST..=RGMP_LAST,
            } => t.rgmp += 1,
            Transport::Igmp { .. } => t.igmp += 1,
            _ => {}
        }
        if let Some(l4) = icmp_quote(&p) {
            t.icmp_quotes[idx(l4)] += 1;
        }
        let Some(ip) = p.ip else { continue };
        let Some(frag) = ip.fragment else { continue };
        if ip.version == 4 {
            t.ipv4_fragments += 1;
        } else {
            t.ipv6_fragments += 1;
        }
        // All of the fragment's bytes captured? (tshark reassembles only then.)
        let lying_length = matches!(
            p.error,
            Some(DecodeError::Ipv4Truncated | DecodeError::Ipv6Truncated)
        );
        if rec.data.len() < rec.orig_len as usize || lying_length {
            continue;
        }
        if frag.offset == 0 {
            if let Some(l4) = mine {
                t.deferred_first[idx(l4)] += 1;
            }
        }
        let len = u32::from(frag.len);
        let key = (ip.src, ip.dst, frag.id, ip.protocol);
        let d = table.entry(key).or_default();
        let start = u32::from(frag.offset);
        d.ranges.push((start, start + len));
        if !frag.more {
            d.total = Some(start + len);
        }
        if d.complete() {
            table.remove(&key);
            if ip.version == 6 {
                t.ipv6_completed += 1;
            }
            if let Some(l4) = l4_of_protocol(ip.protocol) {
                t.completing[idx(l4)] += 1;
            }
        }
    }
    t
}

fn num(v: &Value, path: &[&str]) -> u64 {
    let mut v = v;
    for key in path {
        v = &v[*key];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("oracle field {path:?} missing or not a number"))
}

#[test]
fn corpus_matches_oracle() {
    let dir = corpus_dir();
    let oracle: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("oracle.json")).expect("oracle.json readable"),
    )
    .expect("oracle.json is JSON");
    let files = oracle["files"].as_object().expect("oracle has files");
    assert!(
        files.len() >= 40,
        "expected the 40-file corpus, got {}",
        files.len()
    );

    let mut failures = Vec::new();
    let mut all_errors = DecodeErrorCounts::default();
    let mut totals = [0u64; 2];
    for (name, facts) in files {
        let t = tally(&dir.join(name));
        all_errors.merge(&t.errors);
        totals[0] += t.tcp;
        totals[1] += t.udp;
        let mut check = |what: &str, got: u64, want: u64| {
            if got != want {
                failures.push(format!("{name}: {what}: got {got}, oracle {want}"));
            }
        };
        check("frames", t.frames, num(facts, &["tshark_frames"]));
        // tshark's view, reconstructed from ours plus the explained differences.
        let as_tshark = |l4: usize, mine: u64| {
            mine - t.deferred_first[l4] + t.completing[l4] + t.icmp_quotes[l4]
        };
        check(
            "tcp frames (explained)",
            as_tshark(0, t.tcp),
            num(facts, &["tcp_streams", "frames"]),
        );
        check(
            "udp frames (explained)",
            as_tshark(1, t.udp),
            num(facts, &["udp_streams", "frames"]),
        );
        check("vlan frames", t.vlan_frames, num(facts, &["vlan_frames"]));
        let want_ids: BTreeMap<u16, u64> = facts["vlan_ids"]
            .as_array()
            .expect("vlan_ids")
            .iter()
            .map(|pair| {
                let id = pair[0]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .expect("vlan id");
                (id, pair[1].as_u64().expect("vlan count"))
            })
            .collect();
        let got_ids = t.vlan_ids.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>();
        let want_ids = want_ids.into_iter().collect::<Vec<_>>();
        for (i, (got, want)) in got_ids.iter().zip(want_ids.iter()).enumerate() {
            check(
                &format!("vlan id #{i}"),
                u64::from(got.0),
                u64::from(want.0),
            );
            check(&format!("vlan id #{i} frames"), got.1, want.1);
        }
        check(
            "distinct vlan ids",
            got_ids.len() as u64,
            want_ids.len() as u64,
        );
        check(
            "ipv4 fragment frames",
            t.ipv4_fragments,
            num(facts, &["ipv4_fragment_frames"]),
        );
        // `-Y ipv6.fragment` matches the frames that list a reassembled datagram's
        // fragments, i.e. the completing frames.
        check(
            "ipv6 fragment frames (completing)",
            t.ipv6_completed,
            num(facts, &["ipv6_fragment_frames"]),
        );
        check("igmp messages", t.igmp, num(facts, &["igmp_messages"]));
        let phs_rgmp = facts["phs"]
            .as_array()
            .expect("phs")
            .iter()
            .filter(|row| row[1] == "rgmp")
            .map(|row| row[2].as_u64().expect("phs frames"))
            .sum();
        check("rgmp messages", t.rgmp, phs_rgmp);
        eprintln!(
            "{name}: frames {} tcp {} udp {} ipv6 fragments {} deferred {:?} completing {:?} \
             icmp {:?} errors {:?}",
            t.frames,
            t.tcp,
            t.udp,
            t.ipv6_fragments,
            t.deferred_first,
            t.completing,
            t.icmp_quotes,
            t.errors.iter().filter(|&(_, c)| c > 0).collect::<Vec<_>>()
        );
    }
    eprintln!(
        "corpus: tcp {} udp {} errors {:?}",
        totals[0],
        totals[1],
        all_errors
            .iter()
            .filter(|&(_, c)| c > 0)
            .collect::<Vec<_>>()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
