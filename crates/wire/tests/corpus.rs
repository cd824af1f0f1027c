//! Conformance with the real-traffic corpus: every record of every file is dissected and
//! compared with tshark's facts in `oracle.json` (frame counts, bytes, VLANs, fragments,
//! IGMP, and the TCP / UDP conversations with their addresses, ports, per-direction packets
//! and bytes, first and last frame times).
//!
//! Every frame is also parsed by an independent reference parser (`support/reference.rs`,
//! written from the protocol specifications, sharing no code with the dissector), and the
//! dissector must agree with it on each frame: IP version, addresses, protocol, fragment
//! fields and, for a packet that starts its datagram, TCP / UDP ports. A frame where they
//! differ fails the test unless the dissector reports a decode error for it; those frames
//! are counted per file and the counts are pinned in [`PINNED`].
//!
//! tshark and this dissector differ on exactly these frames, and each difference is found
//! by a rule applied to the reference parse of the capture (never to the dissector's
//! output), counted and pinned per file in [`PINNED`]:
//!
//! * IP fragments. tshark reassembles: a fragment whose bytes are all captured (IPv4 or
//!   IPv6 length within the captured bytes, non-empty) goes into its reassembly table,
//!   and only the frame that completes the datagram carries `tcp.stream` / `udp.stream`,
//!   with the datagram's ports (read from its offset-0 fragment). A fragment cut by the
//!   capture is not reassembled: tshark dissects a cut first fragment's transport header
//!   as we do, and gives a cut later fragment no stream. Here every first fragment yields
//!   its transport header and later fragments none. The test replays tshark's reassembly
//!   (per source, destination, identification and protocol: complete once the last
//!   fragment is in and the fragments cover its data contiguously from offset 0; a
//!   completed datagram leaves the table) to find the whole first fragments it takes
//!   our transport from ("deferred") and the frames it gives one to ("completing").
//! * ICMP errors (ICMPv4 types 3, 4, 5, 11, 12; ICMPv6 types 1 to 4) quoting a TCP or UDP
//!   header: tshark gives the quote's conversation the frame (the quoted 5-tuple selects
//!   the stream; the frame's endpoints for the direction are the outer addresses with the
//!   quoted ports), while here the frame is ICMP.
//!
//! Conversations are compared by unordered 5-tuple (transport and the two endpoints),
//! summing tshark's rows for the same 5-tuple (it starts a new `tcp.stream` when ports are
//! reused, and may split RTP announced by SIP/SDP into its own `udp.stream`). Directions
//! follow tshark's rule: a frame goes from A when its source address and port are the
//! stream's A side (the source of the stream's first frame), else from B.

#[path = "support/reference.rs"]
mod reference;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_wire::{dissect, DecodeErrorCounts, Packet, Transport};

/// The explained differences of one file, as this test finds them from the capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Explained {
    /// Whole-captured first fragments that we give a transport header and tshark defers
    /// to the datagram's completing frame, [tcp, udp].
    deferred: [u64; 2],
    /// Frames completing a reassembled TCP / UDP datagram, [tcp, udp].
    completing: [u64; 2],
    /// ICMP errors quoting a TCP / UDP header, [tcp, udp].
    icmp_quotes: [u64; 2],
    /// Frames where the dissector differs from the reference parser and reports a decode
    /// error: (error name, field that differs, frames).
    excluded: &'static [(&'static str, &'static str, u64)],
}

const NONE: Explained = Explained {
    deferred: [0, 0],
    completing: [0, 0],
    icmp_quotes: [0, 0],
    excluded: &[],
};

/// Every explained difference, per file (files not listed have none), as found on the
/// corpus of `oracle.json` (tshark 4.0.17).
const PINNED: &[(&str, Explained)] = &[
    (
        // 4 IPv4 and 3 IPv6 DNS responses in 2 fragments each, all captured.
        "ndpi__dns_fragmented.pcap",
        Explained {
            deferred: [0, 7],
            completing: [0, 7],
            ..NONE
        },
    ),
    (
        // 1252 IPv4 fragments of 16 bytes of garbage, all with id 0xa0: four 5000-byte
        // TCP datagrams in a row, each completed by a 42-byte last fragment. Each first
        // fragment's TCP header has a data offset below 5: the reference reads its
        // ports, the dissector reports tcp_header and gives no transport.
        "ndpi__ip_fragmented_garbage.pcap",
        Explained {
            completing: [4, 0],
            excluded: &[("tcp_header", "ports", 4)],
            ..NONE
        },
    ),
    (
        // An ICMPv6 destination unreachable (type 1) quoting an IPv6 UDP datagram.
        "tsduck__test-176.pcapng",
        Explained {
            icmp_quotes: [0, 1],
            ..NONE
        },
    ),
    (
        // A DNS response in 3 IPv6 fragments, all captured (and a lone last fragment
        // of another datagram, never completed).
        "zeek__ipv6-fragmented-dns.pcap",
        Explained {
            deferred: [0, 1],
            completing: [0, 1],
            ..NONE
        },
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum L4 {
    Tcp,
    Udp,
}

impl L4 {
    fn of_protocol(protocol: u8) -> Option<L4> {
        match protocol {
            6 => Some(L4::Tcp),
            17 => Some(L4::Udp),
            _ => None,
        }
    }

    fn idx(self) -> usize {
        self as usize
    }
}

/// An IP address and a port.
type Endpoint = (IpAddr, u16);

/// A frame as a member of a TCP / UDP conversation.
#[derive(Clone, Copy, Debug)]
struct ConvFrame {
    l4: L4,
    /// The conversation's two endpoints (the quoted ones for an ICMP error).
    key: (Endpoint, Endpoint),
    /// The frame's source for the direction: its source address and source port.
    src: Endpoint,
    ts_ns: i64,
    wire: u64,
    captured: u64,
}

/// Our TCP / UDP frame: transport, source and destination endpoints.
fn ours(p: &Packet) -> Option<(L4, Endpoint, Endpoint)> {
    let ip = p.ip?;
    let (l4, sport, dport) = match p.transport {
        Transport::Tcp(t) => (L4::Tcp, t.src_port, t.dst_port),
        Transport::Udp { src_port, dst_port } => (L4::Udp, src_port, dst_port),
        _ => return None,
    };
    Some((l4, (ip.src, sport), (ip.dst, dport)))
}

/// The dissector's ports, when it decoded TCP or UDP.
fn our_ports(p: &Packet) -> Option<(u16, u16)> {
    match p.transport {
        Transport::Tcp(t) => Some((t.src_port, t.dst_port)),
        Transport::Udp { src_port, dst_port } => Some((src_port, dst_port)),
        _ => None,
    }
}

/// What the dissector and the reference parser disagree on, if anything: which field
/// (a short name, for the pinned table) and the values.
fn disagreement(p: &Packet, r: Option<&reference::Ip>) -> Option<(&'static str, String)> {
    let (ip, r) = match (p.ip, r) {
        (None, None) => return None,
        (Some(ip), None) => return Some(("ip", format!("{ip:?}, reference none"))),
        (None, Some(r)) => return Some(("ip", format!("none, reference {r:?}"))),
        (Some(ip), Some(r)) => (ip, r),
    };
    let ours = (ip.version, ip.src, ip.dst, ip.protocol);
    let theirs = (r.version, r.src, r.dst, r.protocol);
    if ours != theirs {
        return Some((
            "ip",
            format!("(version, src, dst, protocol) {ours:?}, reference {theirs:?}"),
        ));
    }
    let ours = ip
        .fragment
        .map(|f| (f.id, u32::from(f.offset), f.more, u32::from(f.len)));
    let theirs = r.fragment.map(|f| (f.id, f.offset, f.more, f.len));
    if ours != theirs {
        return Some((
            "fragment",
            format!("(id, offset, more, len) {ours:?}, reference {theirs:?}"),
        ));
    }
    if our_ports(p) != r.ports() {
        return Some((
            "ports",
            format!("{:?}, reference {:?}", our_ports(p), r.ports()),
        ));
    }
    None
}

/// RGMP message types (RFC 3488 section 3): 0xfc leave, 0xfd join, 0xfe bye, 0xff hello.
const RGMP_FIRST: u8 = 0xfc;
const RGMP_LAST: u8 = 0xff;

/// A datagram being reassembled the way tshark does.
#[derive(Default)]
struct Datagram {
    /// (start, end) byte ranges received.
    ranges: Vec<(u32, u32)>,
    /// Length of the datagram, set by the first fragment without more-fragments.
    total: Option<u32>,
    /// Transport ports read from the offset-0 fragment.
    ports: Option<(u16, u16)>,
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
    /// Our TCP / UDP frames.
    ours: [u64; 2],
    vlan_frames: u64,
    vlan_ids: BTreeMap<u16, u64>,
    ipv4_fragments: u64,
    ipv6_fragments: u64,
    /// Completed IPv6 datagrams (tshark's `ipv6.fragment` frames), by the reference.
    ipv6_completed: u64,
    igmp: u64,
    rgmp: u64,
    /// Frames with an IP header per the reference, all compared with the dissector.
    compared: u64,
    /// Disagreements with the reference on frames without a decode error.
    disagreements: Vec<String>,
    /// Disagreements on frames with a decode error, by error name and field.
    excluded: BTreeMap<(&'static str, &'static str), u64>,
    /// Explained differences (without `excluded`), [tcp, udp] each.
    deferred: [u64; 2],
    completing: [u64; 2],
    icmp_quotes: [u64; 2],
    /// tshark's TCP / UDP frames, reconstructed: ours without the deferred frames, plus
    /// the completing frames and the ICMP quotes.
    tshark: Vec<ConvFrame>,
    errors: DecodeErrorCounts,
}

fn tally(path: &Path) -> Tally {
    let mut cap = Capture::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut t = Tally::default();
    let mut table: HashMap<(IpAddr, IpAddr, u32, u8), Datagram> = HashMap::new();
    loop {
        let big_endian = cap.big_endian();
        let rec = match cap.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            // A file cut short: everything before it counts, as for tshark.
            Err(_) => break,
        };
        t.frames += 1;
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        t.errors.add_opt(p.error);
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
                ..
            } => t.rgmp += 1,
            Transport::Igmp { .. } => t.igmp += 1,
            _ => {}
        }
        if let Some(f) = p.ip.filter(|ip| ip.fragment.is_some()) {
            if f.version == 4 {
                t.ipv4_fragments += 1;
            } else {
                t.ipv6_fragments += 1;
            }
        }

        let r = reference::frame(rec.link_type.0, big_endian, rec.data);
        t.compared += u64::from(r.is_some());
        if let Some((field, why)) = disagreement(&p, r.as_ref()) {
            match p.error {
                Some(err) => *t.excluded.entry((err.name(), field)).or_default() += 1,
                None => t
                    .disagreements
                    .push(format!("frame {}: {field}: {why}", t.frames)),
            }
        }

        let frame = |l4, key, src| ConvFrame {
            l4,
            key,
            src,
            ts_ns: rec.ts_ns,
            wire: u64::from(rec.orig_len),
            captured: rec.data.len() as u64,
        };
        let mine = ours(&p).map(|(l4, src, dst)| frame(l4, (src, dst), src));
        if let Some(f) = mine {
            t.ours[f.l4.idx()] += 1;
        }
        let Some(r) = r else {
            t.tshark.extend(mine);
            continue;
        };

        // ICMP errors quoting a transport header.
        if let Some(q) = r.icmp_quote() {
            if let (Some(l4), Some((sport, dport))) = (L4::of_protocol(q.protocol), q.ports()) {
                t.icmp_quotes[l4.idx()] += 1;
                let key = ((q.src, sport), (q.dst, dport));
                t.tshark.push(frame(l4, key, (r.src, sport)));
                // The frame is ICMP to us (the cross-check holds us to that).
                continue;
            }
        }

        // Fragments tshark reassembles.
        let Some(f) = r.fragment.filter(|f| r.whole && f.len > 0) else {
            t.tshark.extend(mine);
            continue;
        };
        if let Some(m) = mine {
            t.deferred[m.l4.idx()] += 1;
        }
        let key = (r.src, r.dst, f.id, r.protocol);
        let d = table.entry(key).or_default();
        d.ranges.push((f.offset, f.offset + f.len));
        if !f.more && d.total.is_none() {
            d.total = Some(f.offset + f.len);
        }
        if f.offset == 0 && d.ports.is_none() {
            // The first copy of overlapping data is the one reassembly keeps.
            d.ports = r.ports();
        }
        if d.complete() {
            let d = table.remove(&key).expect("in the table");
            if r.version == 6 {
                t.ipv6_completed += 1;
            }
            if let Some(l4) = L4::of_protocol(r.protocol) {
                let (sport, dport) = d.ports.expect("a complete datagram has its first bytes");
                t.completing[l4.idx()] += 1;
                let (src, dst) = ((r.src, sport), (r.dst, dport));
                t.tshark.push(frame(l4, (src, dst), src));
            }
        }
    }
    t
}

/// Records a failure unless `got` equals the oracle's `want`.
fn check(fail: &mut impl FnMut(String), what: &str, got: u64, want: u64) {
    if got != want {
        fail(format!("{what}: got {got}, oracle {want}"));
    }
}

fn num(v: &Value, path: &[&str]) -> u64 {
    let mut v = v;
    for key in path {
        v = &v[*key];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("oracle field {path:?} missing or not a number"))
}

/// Nanoseconds since the epoch from tshark's `seconds.fraction`.
fn epoch_ns(v: &Value) -> i64 {
    let s = v.as_str().expect("epoch string");
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    secs.parse::<i64>().expect("epoch seconds") * 1_000_000_000
        + frac[..9].parse::<i64>().expect("epoch fraction")
}

/// One unordered 5-tuple's totals: per direction (from `lo`, from `hi`, the endpoints in
/// sorted order) packets and bytes, and the first and last frame times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Conversation {
    packets: [u64; 2],
    bytes: [u64; 2],
    first_ns: i64,
    last_ns: i64,
}

impl Default for Conversation {
    fn default() -> Self {
        Conversation {
            packets: [0; 2],
            bytes: [0; 2],
            first_ns: i64::MAX,
            last_ns: i64::MIN,
        }
    }
}

impl Conversation {
    fn add(&mut self, from_lo: bool, packets: u64, bytes: u64, first: i64, last: i64) {
        let dir = usize::from(!from_lo);
        self.packets[dir] += packets;
        self.bytes[dir] += bytes;
        self.first_ns = self.first_ns.min(first);
        self.last_ns = self.last_ns.max(last);
    }
}

type ConvKey = (L4, Endpoint, Endpoint);

fn conv_key(l4: L4, a: Endpoint, b: Endpoint) -> ConvKey {
    (l4, a.min(b), a.max(b))
}

/// tshark's rows summed per unordered 5-tuple.
fn oracle_conversations(facts: &Value) -> BTreeMap<ConvKey, Conversation> {
    let mut out: BTreeMap<ConvKey, Conversation> = BTreeMap::new();
    for (l4, field) in [
        (L4::Tcp, "tcp_conversations"),
        (L4::Udp, "udp_conversations"),
    ] {
        for row in facts[field].as_array().expect(field) {
            let endpoint = |addr: &str, port: &str| -> Endpoint {
                let ip = row[addr].as_str().and_then(|s| s.parse().ok());
                let port = row[port].as_u64().and_then(|p| u16::try_from(p).ok());
                (ip.expect("row address"), port.expect("row port"))
            };
            let a = endpoint("a_addr", "a_port");
            let b = endpoint("b_addr", "b_port");
            let key = conv_key(l4, a, b);
            let (first, last) = (epoch_ns(&row["first_epoch"]), epoch_ns(&row["last_epoch"]));
            let c = out.entry(key).or_default();
            let a_is_lo = a == key.1;
            let n = |k: &str| row[k].as_u64().expect("row count");
            c.add(a_is_lo, n("a_to_b_packets"), n("a_to_b_bytes"), first, last);
            c.add(
                !a_is_lo,
                n("b_to_a_packets"),
                n("b_to_a_bytes"),
                first,
                last,
            );
        }
    }
    out
}

/// Our reconstruction of tshark's frames, summed per unordered 5-tuple.
fn our_conversations(frames: &[ConvFrame]) -> (BTreeMap<ConvKey, Conversation>, Vec<String>) {
    let mut out: BTreeMap<ConvKey, Conversation> = BTreeMap::new();
    let mut side_a: HashMap<ConvKey, Endpoint> = HashMap::new();
    let mut problems = Vec::new();
    for f in frames {
        let key = conv_key(f.l4, f.key.0, f.key.1);
        let a = *side_a.entry(key).or_insert(f.src);
        let from_lo = if f.src == key.1 || f.src == key.2 {
            f.src == key.1
        } else if a == key.1 || a == key.2 {
            // tshark: not from A, so from B.
            a != key.1
        } else {
            problems.push(format!("{key:?}: no side for a frame from {:?}", f.src));
            continue;
        };
        out.entry(key)
            .or_default()
            .add(from_lo, 1, f.wire, f.ts_ns, f.ts_ns);
    }
    (out, problems)
}

#[test]
fn corpus_matches_oracle() {
    let Some(corpus) = streamscope_testkit::corpus(
        "wire::corpus_matches_oracle",
        "dissection against tshark's oracle",
    ) else {
        return;
    };
    let files = corpus.all_files();
    for (name, _) in PINNED {
        assert!(
            files.iter().any(|(n, _)| n == name),
            "PINNED names {name}, which the corpus does not have"
        );
    }

    let mut failures = Vec::new();
    let mut all_errors = DecodeErrorCounts::default();
    let mut totals = [0u64; 2];
    let mut compared = 0;
    let mut conversations = 0;
    for &(name, facts) in &files {
        let t = tally(&corpus.path(name));
        all_errors.merge(&t.errors);
        totals[0] += t.ours[0];
        totals[1] += t.ours[1];
        compared += t.compared;
        let mut fail = |msg: String| failures.push(format!("{name}: {msg}"));
        check(
            &mut fail,
            "frames",
            t.frames,
            num(facts, &["tshark_frames"]),
        );

        // The explained differences, as pinned.
        let pinned = PINNED
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(NONE, |(_, e)| *e);
        let excluded: Vec<(&str, &str, u64)> = t
            .excluded
            .iter()
            .map(|(&(err, field), &n)| (err, field, n))
            .collect();
        let found = (t.deferred, t.completing, t.icmp_quotes, excluded.as_slice());
        let want = (
            pinned.deferred,
            pinned.completing,
            pinned.icmp_quotes,
            pinned.excluded,
        );
        if found != want {
            fail(format!(
                "explained differences (deferred, completing, icmp quotes, excluded): \
                 found {found:?}, pinned {want:?}"
            ));
        }
        for d in t.disagreements.iter().take(5) {
            fail(format!("dissector vs reference: {d}"));
        }
        if t.disagreements.len() > 5 {
            fail(format!(
                "dissector vs reference: {} more frames",
                t.disagreements.len() - 5
            ));
        }

        // Frames and bytes of tshark's streams, reconstructed.
        for (l4, field) in [(L4::Tcp, "tcp_streams"), (L4::Udp, "udp_streams")] {
            let mine = t.tshark.iter().filter(|f| f.l4 == l4);
            let (frames, wire, captured) = mine.fold((0, 0, 0), |(n, w, c), f| {
                (n + 1, w + f.wire, c + f.captured)
            });
            check(
                &mut fail,
                &format!("{field}.frames"),
                frames,
                num(facts, &[field, "frames"]),
            );
            check(
                &mut fail,
                &format!("{field}.wire_bytes"),
                wire,
                num(facts, &[field, "wire_bytes"]),
            );
            check(
                &mut fail,
                &format!("{field}.captured_bytes"),
                captured,
                num(facts, &[field, "captured_bytes"]),
            );
        }
        // The reconstruction is ours with the explained differences, nothing else.
        for l4 in [L4::Tcp, L4::Udp] {
            let i = l4.idx();
            let rebuilt = t.tshark.iter().filter(|f| f.l4 == l4).count() as u64;
            assert_eq!(
                rebuilt,
                t.ours[i] - t.deferred[i] + t.completing[i] + t.icmp_quotes[i],
                "{name}: {l4:?} reconstruction"
            );
        }

        // Conversations: addresses, ports, per-direction packets and bytes, times.
        let want = oracle_conversations(facts);
        let (got, problems) = our_conversations(&t.tshark);
        for p in problems {
            fail(p);
        }
        conversations += want.len();
        for key in want
            .keys()
            .chain(got.keys().filter(|k| !want.contains_key(k)))
        {
            match (got.get(key), want.get(key)) {
                (Some(g), Some(w)) if g == w => {}
                (g, w) => fail(format!("conversation {key:?}: got {g:?}, oracle {w:?}")),
            }
        }

        check(
            &mut fail,
            "vlan frames",
            t.vlan_frames,
            num(facts, &["vlan_frames"]),
        );
        let want_ids: Vec<(u16, u64)> = facts["vlan_ids"]
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
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        let got_ids: Vec<(u16, u64)> = t.vlan_ids.iter().map(|(&k, &v)| (k, v)).collect();
        if got_ids != want_ids {
            fail(format!(
                "vlan ids (id, frames): got {got_ids:?}, oracle {want_ids:?}"
            ));
        }
        check(
            &mut fail,
            "ipv4 fragment frames",
            t.ipv4_fragments,
            num(facts, &["ipv4_fragment_frames"]),
        );
        // `-Y ipv6.fragment` matches the frames that list a reassembled datagram's
        // fragments, i.e. the completing frames.
        check(
            &mut fail,
            "ipv6 fragment frames (completing, by the reference)",
            t.ipv6_completed,
            num(facts, &["ipv6_fragment_frames"]),
        );
        check(
            &mut fail,
            "igmp messages",
            t.igmp,
            num(facts, &["igmp_messages"]),
        );
        let phs_rgmp = facts["phs"]
            .as_array()
            .expect("phs")
            .iter()
            .filter(|row| row[1] == "rgmp")
            .map(|row| row[2].as_u64().expect("phs frames"))
            .sum();
        check(&mut fail, "rgmp messages", t.rgmp, phs_rgmp);
        let rows: usize = ["tcp_conversations", "udp_conversations"]
            .iter()
            .map(|field| facts[*field].as_array().map_or(0, Vec::len))
            .sum();
        eprintln!(
            "{name}: frames {} ip {} tcp {} udp {} conversations {} ({rows} tshark rows) | \
             deferred {:?} completing {:?} icmp {:?} excluded (error, field, frames) {:?} | \
             errors {:?}",
            t.frames,
            t.compared,
            t.ours[0],
            t.ours[1],
            want.len(),
            t.deferred,
            t.completing,
            t.icmp_quotes,
            excluded,
            t.errors.iter().filter(|&(_, c)| c > 0).collect::<Vec<_>>()
        );
    }
    eprintln!(
        "corpus: {} files, {compared} IP frames cross-checked, tcp {} udp {}, \
         {conversations} conversations, errors {:?}",
        files.len(),
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
