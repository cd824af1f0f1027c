//! Conformance of the IGMP / MLD reader with the real-traffic corpus: every capture is read
//! with `streamscope_capture` and `streamscope_wire::dissect`; each IGMP packet (IP
//! protocol 2) and each ICMPv6 packet of type 130, 131, 132 or 143 goes to a
//! [`MulticastReader`], and the events are compared with tshark's facts in `oracle.json`
//! (`igmp_messages`, `igmp_version_type`, `igmp_groups`, `igmp_v3_record_types`,
//! `mld_messages`, `mld_types`, `mld_groups`, `mldv2_record_types`), exactly, for every
//! file. The events also go to a [`ChannelSessions`] tracker, with every UDP packet to a
//! multicast address as group data, and the sessions it finds are printed (tshark has no
//! such fact to compare with); its accounting is checked.
//!
//! How the sides are counted. tshark's `igmp.maddr` and `icmpv6.mld*.multicast_address`
//! occur once per group field: once per message for queries, v1/v2 reports and leaves
//! (`0.0.0.0` / `::` for a general query), once per group record for v3 / MLDv2 reports;
//! events carry the same groups (a general query's group is `None`, written here as the
//! unspecified address). `igmp.version` and `igmp.type` are per message: the reader's
//! [`MulticastStats`] count messages, and the per-(version, type) counts are taken from
//! the first event of each message.
//!
//! Cut group records count like whole ones when their type and group are there: tshark
//! shows their type and group too (`zeek__icmp6-mldv2.pcap` has two such MLDv2 records,
//! one stating 3 sources with 2 present, one with its aux data cut).
//!
//! The IGMP and ICMPv6 message is the wire crate's 8-byte header (`Transport::Igmp` and
//! `Transport::Icmpv6` keep it) followed by `Packet::payload`, as long as the IP header
//! says.
//!
//! One difference is by design, and it is found from the capture by a rule that does not
//! use the code under test, counted and pinned per file ([`PINNED`]):
//!
//! * **RGMP.** IGMP messages of type 0xfc–0xff sent to 224.0.0.25 are RGMP (RFC 3488
//!   section 3: RGMP messages go to that address); tshark dissects them as `rgmp`, not
//!   `igmp`, so they are in none of its IGMP facts. The reader classifies them as
//!   [`Kind::Other`] messages (counted in its stats). The rule reads only the wire crate's
//!   type byte and destination address.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_media::multicast::{
    ChannelSession, ChannelSessions, GroupHandle, Kind, MulticastEvent, MulticastReader,
    MulticastStats, SessionConfig, Version,
};
use streamscope_wire::{dissect, ip_proto, Transport};

/// RGMP messages per file (see the rule above). Files not listed have none.
const PINNED: &[(&str, u64)] = &[
    // 19 RGMP Leave messages (type 0xff) from one router to 224.0.0.25.
    ("suricata__wireshark-wiki-IGMP-dataset.pcap", 19),
];

/// The RGMP destination (RFC 3488 section 3).
const RGMP_ADDR: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 25);

/// MLD's ICMPv6 types (RFC 2710 section 3, RFC 3810 section 5).
const MLD_TYPES: [u8; 4] = [130, 131, 132, 143];

/// One side of the comparison.
#[derive(Debug, Default, PartialEq, Eq)]
struct Side {
    igmp_messages: u64,
    /// "vN type=0xTT" → messages.
    igmp_version_type: BTreeMap<String, u64>,
    igmp_groups: BTreeMap<String, u64>,
    igmp_record_types: BTreeMap<String, u64>,
    mld_messages: u64,
    /// "TYPE" → messages.
    mld_types: BTreeMap<String, u64>,
    mld_groups: BTreeMap<String, u64>,
    mld_record_types: BTreeMap<String, u64>,
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_array()
        .expect("a list of [value, count]")
        .iter()
        .map(|e| {
            (
                e[0].as_str().expect("a value").to_owned(),
                e[1].as_u64().expect("a count"),
            )
        })
        .collect()
}

/// tshark's side, from `oracle.json`.
fn oracle(f: &Value) -> Side {
    Side {
        igmp_messages: f["igmp_messages"].as_u64().expect("igmp_messages"),
        igmp_version_type: counts(&f["igmp_version_type"]),
        igmp_groups: counts(&f["igmp_groups"]),
        igmp_record_types: counts(&f["igmp_v3_record_types"]),
        mld_messages: f["mld_messages"].as_u64().expect("mld_messages"),
        mld_types: counts(&f["mld_types"]),
        mld_groups: counts(&f["mld_groups"]),
        mld_record_types: counts(&f["mldv2_record_types"]),
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: String) {
    *map.entry(key).or_default() += 1;
}

/// What one capture gives.
#[derive(Default)]
struct Tally {
    ours: Side,
    rgmp: u64,
    stats: MulticastStats,
    sessions: Vec<ChannelSession>,
    group_packets: u64,
}

impl Tally {
    /// Adds one message's events (all of one message).
    fn add(&mut self, events: &[MulticastEvent<'_>]) {
        let Some(first) = events.first() else {
            return;
        };
        let mld = first.version.is_some_and(Version::is_mld);
        let unspecified = if mld {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let s = &mut self.ours;
        if mld {
            s.mld_messages += 1;
            bump(&mut s.mld_types, first.message_type.to_string());
        } else {
            s.igmp_messages += 1;
            let v = match first.version {
                Some(Version::Igmp1) => "v1",
                Some(Version::Igmp2) => "v2",
                Some(Version::Igmp3) => "v3",
                _ => "v?",
            };
            bump(
                &mut s.igmp_version_type,
                format!("{v} type=0x{:02x}", first.message_type),
            );
        }
        for e in events {
            if e.kind == Kind::Other {
                continue;
            }
            // A v3 / MLDv2 report without records has no group field.
            let group = match (e.group, e.record_type, e.kind) {
                (Some(g), _, _) => Some(g),
                (None, None, Kind::Query) => Some(unspecified),
                _ => None,
            };
            let (groups, types) = if mld {
                (&mut s.mld_groups, &mut s.mld_record_types)
            } else {
                (&mut s.igmp_groups, &mut s.igmp_record_types)
            };
            if let Some(g) = group {
                bump(groups, g.to_string());
            }
            if let Some(rt) = e.record_type {
                bump(types, rt.code().to_string());
            }
        }
    }
}

fn tally(path: &Path) -> Tally {
    let mut cap = Capture::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut t = Tally::default();
    let mut reader = MulticastReader::new();
    let mut tracker = ChannelSessions::new(SessionConfig::default());
    let mut handles: BTreeMap<(IpAddr, IpAddr), GroupHandle> = BTreeMap::new();
    let mut last_ns = 0;
    // A file cut short: everything before it counts, as for tshark.
    while let Ok(Some(rec)) = cap.next_record() {
        last_ns = rec.ts_ns;
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        let Some(ip) = p.ip else {
            continue;
        };
        let (is_igmp, kind, header) = match p.transport {
            Transport::Igmp { kind, header } if ip.protocol == ip_proto::IGMP => {
                (true, kind, header)
            }
            Transport::Icmpv6 { kind, header, .. } if MLD_TYPES.contains(&kind) => {
                (false, kind, header)
            }
            Transport::Udp { .. } if ip.dst.is_multicast() => {
                let handle = handles.entry((ip.dst, ip.src)).or_default();
                let bytes = u64::from(p.payload_len);
                tracker.on_group_packet(rec.ts_ns, ip.dst, ip.src, bytes, handle);
                continue;
            }
            _ => continue,
        };
        if is_igmp && kind >= 0xfc && ip.dst == IpAddr::V4(RGMP_ADDR) {
            t.rgmp += 1;
        }
        let msg = &[&header[..], p.payload].concat()[..];
        assert_eq!(msg[0], kind, "{}: message start", path.display());
        let mut events: Vec<MulticastEvent<'_>> = Vec::new();
        let mut push = |e| {
            tracker.on_event(&e, &mut |s| t.sessions.push(s));
            events.push(e);
        };
        if is_igmp {
            reader.on_igmp(rec.ts_ns, ip.src, ip.dst, msg, &mut push);
        } else {
            reader.on_mld(rec.ts_ns, ip.src, ip.dst, msg, &mut push);
        }
        if !(is_igmp && kind >= 0xfc && ip.dst == IpAddr::V4(RGMP_ADDR)) {
            t.add(&events);
        }
    }
    tracker.finish(last_ns, &mut |s| t.sessions.push(s));
    t.stats = *reader.stats();
    t.group_packets = tracker.stats().group_packets;
    let st = tracker.stats();
    assert_eq!(
        st.opened,
        st.ended_leave + st.ended_timeout + st.ended_capture_end + st.ended_replaced,
        "{}: every session ends",
        path.display()
    );
    assert_eq!(st.opened, t.sessions.len() as u64, "{}", path.display());
    t
}

fn diff(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> String {
    let only = |x: &BTreeMap<String, u64>, y: &BTreeMap<String, u64>| -> Vec<String> {
        x.iter()
            .filter(|(k, n)| y.get(*k) != Some(n))
            .map(|(k, n)| format!("{k}={n}"))
            .collect()
    };
    format!("tshark {:?} / ours {:?}", only(a, b), only(b, a))
}

#[test]
fn multicast_matches_oracle() {
    let Some(corpus) = streamscope_testkit::corpus(
        "media::multicast_matches_oracle",
        "IGMP and MLD messages, versions, types, groups and record types against tshark's oracle",
    ) else {
        return;
    };
    let files = corpus.all_files();
    let pinned: BTreeMap<&str, u64> = PINNED.iter().copied().collect();
    let mut failures = Vec::new();
    let mut total = MulticastStats::default();
    let mut files_with_messages = 0;
    for (name, facts) in files {
        let t = tally(&corpus.path(name));
        total.merge(&t.stats);
        let tshark = oracle(facts);
        let read = t.stats.igmp_messages + t.stats.mld_messages;
        if tshark.igmp_messages + tshark.mld_messages + read > 0 {
            files_with_messages += 1;
            let ends: BTreeMap<&str, usize> =
                t.sessions.iter().fold(BTreeMap::new(), |mut m, s| {
                    *m.entry(s.end.name()).or_default() += 1;
                    m
                });
            let zaps: Vec<String> = t
                .sessions
                .iter()
                .filter_map(|s| {
                    s.zap_ns
                        .map(|z| format!("{} {}: {} us", s.host, s.group, z / 1000))
                })
                .collect();
            streamscope_testkit::say(&format!(
                "{name}: IGMP tshark {} = ours {} - RGMP {}; MLD tshark {} = ours {}; \
                 versions {:?}; MLD types {:?}; bad checksums {}; truncated records {}; \
                 sessions {} {:?}; group data packets {}; zap times {:?}",
                tshark.igmp_messages,
                t.stats.igmp_messages,
                t.rgmp,
                tshark.mld_messages,
                t.stats.mld_messages,
                t.ours.igmp_version_type,
                t.ours.mld_types,
                t.stats.bad_checksum,
                t.stats.truncated_records,
                t.sessions.len(),
                ends,
                t.group_packets,
                zaps,
            ));
        }
        let mut check = |what: &str, ok: bool, detail: String| {
            if !ok {
                failures.push(format!("{name}: {what}: {detail}"));
            }
        };
        let pin = pinned.get(name).copied().unwrap_or(0);
        check(
            "RGMP messages (pinned)",
            t.rgmp == pin,
            format!("found {}, pinned {pin}", t.rgmp),
        );
        // Every IGMP message read is tshark's or RGMP; the reader read every message.
        check(
            "IGMP messages read",
            t.stats.igmp_messages == t.ours.igmp_messages + t.rgmp,
            format!(
                "{} read, {} + {} RGMP tallied",
                t.stats.igmp_messages, t.ours.igmp_messages, t.rgmp
            ),
        );
        check(
            "unreadable messages",
            t.stats.malformed() == 0,
            format!("{:?}", t.stats),
        );
        check(
            "IGMP messages",
            tshark.igmp_messages == t.ours.igmp_messages,
            format!(
                "tshark {} / ours {}",
                tshark.igmp_messages, t.ours.igmp_messages
            ),
        );
        check(
            "IGMP versions and types",
            tshark.igmp_version_type == t.ours.igmp_version_type,
            diff(&tshark.igmp_version_type, &t.ours.igmp_version_type),
        );
        check(
            "IGMP groups",
            tshark.igmp_groups == t.ours.igmp_groups,
            diff(&tshark.igmp_groups, &t.ours.igmp_groups),
        );
        check(
            "IGMPv3 record types",
            tshark.igmp_record_types == t.ours.igmp_record_types,
            diff(&tshark.igmp_record_types, &t.ours.igmp_record_types),
        );
        check(
            "MLD messages",
            tshark.mld_messages == t.ours.mld_messages,
            format!(
                "tshark {} / ours {}",
                tshark.mld_messages, t.ours.mld_messages
            ),
        );
        check(
            "MLD types",
            tshark.mld_types == t.ours.mld_types,
            diff(&tshark.mld_types, &t.ours.mld_types),
        );
        check(
            "MLD groups",
            tshark.mld_groups == t.ours.mld_groups,
            diff(&tshark.mld_groups, &t.ours.mld_groups),
        );
        check(
            "MLDv2 record types",
            tshark.mld_record_types == t.ours.mld_record_types,
            diff(&tshark.mld_record_types, &t.ours.mld_record_types),
        );
    }
    let counts: Vec<String> = total
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    streamscope_testkit::say(&format!(
        "IGMP/MLD over the corpus ({files_with_messages} files with messages): {}",
        counts.join(", ")
    ));
    // The corpus holds 6 files with IGMP or MLD (MANIFEST.md); a dissection that found
    // none would otherwise pass.
    assert!(
        files_with_messages >= 6,
        "only {files_with_messages} files with messages"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
