//! Unit tests with hand-built messages: static bytes for the basic exchange, simple-dns's
//! writer for the rest, and cut or corrupted copies of both.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use simple_dns::rdata::{RData, A, AAAA, CNAME};
use simple_dns::{Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};

use super::{
    is_dns_port, rcode_name, type_name, Dir, DnsConfig, DnsFlow, DnsRow, DnsStats, NameMap, Outcome,
};

const C2S: Dir = Dir::ClientToServer;
const S2C: Dir = Dir::ServerToClient;
const MS: i64 = 1_000_000;
const S: i64 = 1_000_000_000;

/// Query id 0x1234, RD, for `www.example.com` A IN.
const QUERY: [u8; 33] = [
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // header
    0x03, b'w', b'w', b'w', 0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm',
    0x00, // name
    0x00, 0x01, 0x00, 0x01, // A IN
];

/// Its response: QR RD RA, NOERROR, two A answers (TTL 3600 and 300) by pointer to the
/// question name.
const RESPONSE: [u8; 65] = [
    0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, // header
    0x03, b'w', b'w', b'w', 0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm',
    0x00, 0x00, 0x01, 0x00, 0x01, // question
    0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 93, 184, 216,
    34, // A 93.184.216.34, TTL 3600
    0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x04, 93, 184, 216,
    35, // A 93.184.216.35, TTL 300
];

fn name(s: &str) -> Name<'_> {
    Name::new_unchecked(s)
}

fn question(n: &str, t: TYPE) -> Question<'_> {
    Question::new(name(n), QTYPE::TYPE(t), CLASS::IN.into(), false)
}

fn query(id: u16, n: &str, t: TYPE) -> Vec<u8> {
    let mut p = Packet::new_query(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED);
    p.questions.push(question(n, t));
    p.build_bytes_vec().unwrap()
}

fn a<'a>(owner: &'a str, ttl: u32, addr: [u8; 4]) -> ResourceRecord<'a> {
    let address = u32::from(Ipv4Addr::from(addr));
    ResourceRecord::new(name(owner), CLASS::IN, ttl, RData::A(A { address }))
}

fn aaaa<'a>(owner: &'a str, ttl: u32, addr: Ipv6Addr) -> ResourceRecord<'a> {
    let address = u128::from(addr);
    ResourceRecord::new(name(owner), CLASS::IN, ttl, RData::AAAA(AAAA { address }))
}

fn cname<'a>(owner: &'a str, ttl: u32, target: &'a str) -> ResourceRecord<'a> {
    ResourceRecord::new(
        name(owner),
        CLASS::IN,
        ttl,
        RData::CNAME(CNAME(name(target))),
    )
}

fn response(id: u16, n: &str, t: TYPE, rcode: RCODE, answers: Vec<ResourceRecord<'_>>) -> Vec<u8> {
    let mut p = Packet::new_reply(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
    *p.rcode_mut() = rcode;
    p.questions.push(question(n, t));
    p.answers = answers;
    p.build_bytes_vec_compressed().unwrap()
}

/// Feeds datagrams `(dir, ts, bytes)` to a new flow and finishes it at the last time;
/// returns the rows and the stats.
fn run(config: DnsConfig, msgs: &[(Dir, i64, &[u8])]) -> (Vec<DnsRow>, DnsStats) {
    let mut flow = DnsFlow::new(config);
    let mut rows = Vec::new();
    let mut out = |r: DnsRow| rows.push(r);
    for &(dir, ts, bytes) in msgs {
        flow.on_datagram(dir, ts, bytes, &mut out);
    }
    let end = msgs.last().map_or(0, |m| m.1);
    flow.finish(end, &mut out);
    let stats = *flow.stats();
    (rows, stats)
}

fn udp(msgs: &[(Dir, i64, &[u8])]) -> (Vec<DnsRow>, DnsStats) {
    run(DnsConfig::default(), msgs)
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

#[test]
fn test_parse_static_exchange() {
    let (rows, stats) = udp(&[(C2S, 10 * MS, &QUERY), (S2C, 35 * MS, &RESPONSE)]);
    assert_eq!(
        rows,
        vec![DnsRow {
            query_ts_ns: Some(10 * MS),
            response_ts_ns: Some(35 * MS),
            query_dir: C2S,
            id: 0x1234,
            name: Some("www.example.com".into()),
            qtype: Some(1),
            rcode: Some(0),
            answers: Some(2),
            addresses: vec![v4([93, 184, 216, 34]), v4([93, 184, 216, 35])],
            cnames: vec![],
            min_ttl_s: Some(300),
            latency_ns: Some(25 * MS),
            truncated: false,
            retransmissions: 0,
            malformed: false,
            outcome: Outcome::Answered,
        }]
    );
    assert_eq!(rows[0].qtype_name().as_deref(), Some("A"));
    assert_eq!(rows[0].rcode_name().as_deref(), Some("NOERROR"));
    assert_eq!(
        stats,
        DnsStats {
            queries: 1,
            responses: 1,
            answered: 1,
            ..DnsStats::default()
        }
    );
}

#[test]
fn aaaa_behind_a_cname_chain_of_three() {
    let addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let q = query(7, "WWW.Example.com", TYPE::AAAA);
    let r = response(
        7,
        "WWW.Example.com",
        TYPE::AAAA,
        RCODE::NoError,
        vec![
            cname("WWW.Example.com", 600, "a.CDN.net"),
            cname("a.cdn.net", 60, "b.cdn.net"),
            cname("b.cdn.net", 120, "c.cdn.net"),
            aaaa("c.cdn.net", 20, addr),
        ],
    );
    let (rows, _) = udp(&[(C2S, 0, &q), (S2C, 3 * MS, &r)]);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.name.as_deref(), Some("www.example.com"));
    assert_eq!(row.cnames, ["a.cdn.net", "b.cdn.net", "c.cdn.net"]);
    assert_eq!(row.addresses, [IpAddr::V6(addr)]);
    assert_eq!(row.min_ttl_s, Some(20));
    assert_eq!(row.answers, Some(4));
    assert_eq!(row.qtype_name().as_deref(), Some("AAAA"));
}

#[test]
fn cname_chain_followed_whatever_the_answer_order() {
    let r = response(
        1,
        "x.example",
        TYPE::A,
        RCODE::NoError,
        vec![
            a("edge.cdn", 30, [192, 0, 2, 1]),
            cname("mid.cdn", 300, "edge.cdn"),
            cname("x.example", 300, "mid.cdn"),
            a("edge.cdn", 40, [192, 0, 2, 2]),
        ],
    );
    let (rows, _) = udp(&[(C2S, 0, &query(1, "x.example", TYPE::A)), (S2C, 1, &r)]);
    assert_eq!(rows[0].cnames, ["mid.cdn", "edge.cdn"]);
    assert_eq!(rows[0].addresses, [v4([192, 0, 2, 1]), v4([192, 0, 2, 2])]);
}

#[test]
fn answers_for_other_names_are_left_out() {
    let r = response(
        2,
        "asked.example",
        TYPE::A,
        RCODE::NoError,
        vec![
            a("asked.example", 60, [192, 0, 2, 10]),
            a("unrelated.example", 5, [198, 51, 100, 1]),
        ],
    );
    let (rows, _) = udp(&[(C2S, 0, &query(2, "asked.example", TYPE::A)), (S2C, 1, &r)]);
    assert_eq!(rows[0].addresses, [v4([192, 0, 2, 10])]);
    assert_eq!(rows[0].min_ttl_s, Some(60));
    assert_eq!(rows[0].answers, Some(2));
}

#[test]
fn cname_loop_stops() {
    let r = response(
        3,
        "a.example",
        TYPE::A,
        RCODE::NoError,
        vec![
            cname("a.example", 1, "b.example"),
            cname("b.example", 1, "a.example"),
        ],
    );
    let (rows, _) = udp(&[(S2C, 0, &r)]);
    assert_eq!(rows[0].cnames, ["b.example"]);
}

#[test]
fn nxdomain_servfail_and_no_answer() {
    for (rcode, code, text) in [
        (RCODE::NameError, 3, "NXDOMAIN"),
        (RCODE::ServerFailure, 2, "SERVFAIL"),
        (RCODE::NoError, 0, "NOERROR"),
    ] {
        let q = query(9, "nothing.example", TYPE::A);
        let r = response(9, "nothing.example", TYPE::A, rcode, vec![]);
        let (rows, stats) = udp(&[(C2S, 0, &q), (S2C, 2 * MS, &r)]);
        assert_eq!(rows.len(), 1, "{text}");
        let row = &rows[0];
        assert_eq!(row.rcode, Some(code));
        assert_eq!(row.rcode_name().as_deref(), Some(text));
        assert_eq!(row.answers, Some(0));
        assert!(row.addresses.is_empty() && row.cnames.is_empty());
        assert_eq!(row.min_ttl_s, None);
        assert_eq!(row.latency_ns, Some(2 * MS));
        assert_eq!(row.outcome, Outcome::Answered);
        assert_eq!(stats.answered, 1);
    }
}

#[test]
fn truncated_response_sets_the_tc_flag() {
    let mut p = Packet::new_reply(4);
    p.set_flags(PacketFlag::TRUNCATION);
    p.questions.push(question("big.example", TYPE::TXT));
    let r = p.build_bytes_vec().unwrap();
    let (rows, _) = udp(&[(C2S, 0, &query(4, "big.example", TYPE::TXT)), (S2C, 1, &r)]);
    assert!(rows[0].truncated);
    assert_eq!(rows[0].qtype_name().as_deref(), Some("TXT"));
    let (rows, _) = udp(&[(C2S, 0, &QUERY), (S2C, 1, &RESPONSE)]);
    assert!(!rows[0].truncated);
}

#[test]
fn several_queries_in_flight_answered_out_of_order() {
    let names = ["one.example", "two.example", "three.example"];
    let queries: Vec<Vec<u8>> = (0..3)
        .map(|i| query(100 + i as u16, names[i], TYPE::A))
        .collect();
    let responses: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let addr = [192, 0, 2, i as u8];
            response(
                100 + i as u16,
                names[i],
                TYPE::A,
                RCODE::NoError,
                vec![a(names[i], 60, addr)],
            )
        })
        .collect();
    let (rows, stats) = udp(&[
        (C2S, 0, &queries[0]),
        (C2S, MS, &queries[1]),
        (C2S, 2 * MS, &queries[2]),
        (S2C, 10 * MS, &responses[2]),
        (S2C, 20 * MS, &responses[0]),
        (S2C, 30 * MS, &responses[1]),
    ]);
    let got: Vec<(&str, i64, IpAddr)> = rows
        .iter()
        .map(|r| {
            (
                r.name.as_deref().unwrap(),
                r.latency_ns.unwrap(),
                r.addresses[0],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("three.example", 8 * MS, v4([192, 0, 2, 2])),
            ("one.example", 20 * MS, v4([192, 0, 2, 0])),
            ("two.example", 29 * MS, v4([192, 0, 2, 1])),
        ]
    );
    assert_eq!((stats.answered, stats.unanswered), (3, 0));
}

#[test]
fn duplicate_ids_are_told_apart_by_question() {
    // One id for A and AAAA of one name, and for another name (some stub resolvers).
    let (rows, _) = udp(&[
        (C2S, 0, &query(5, "dup.example", TYPE::A)),
        (C2S, 1, &query(5, "dup.example", TYPE::AAAA)),
        (C2S, 2, &query(5, "other.example", TYPE::A)),
        (
            S2C,
            10,
            &response(5, "dup.example", TYPE::AAAA, RCODE::NoError, vec![]),
        ),
        (
            S2C,
            20,
            &response(5, "other.example", TYPE::A, RCODE::NameError, vec![]),
        ),
        (
            S2C,
            30,
            &response(5, "dup.example", TYPE::A, RCODE::NoError, vec![]),
        ),
    ]);
    let got: Vec<(&str, u16, i64, u8)> = rows
        .iter()
        .map(|r| {
            let n = r.name.as_deref().unwrap();
            (n, r.qtype.unwrap(), r.latency_ns.unwrap(), r.rcode.unwrap())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("dup.example", 28, 9, 0),
            ("other.example", 1, 18, 3),
            ("dup.example", 1, 30, 0)
        ]
    );
}

#[test]
fn a_response_for_another_question_does_not_answer() {
    let (rows, stats) = udp(&[
        (C2S, 0, &query(6, "asked.example", TYPE::A)),
        (
            S2C,
            1,
            &response(6, "spoofed.example", TYPE::A, RCODE::NoError, vec![]),
        ),
    ]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].outcome, Outcome::ResponseOnly);
    assert_eq!(rows[0].name.as_deref(), Some("spoofed.example"));
    assert_eq!(rows[1].outcome, Outcome::FlowEnd);
    assert_eq!((stats.response_only, stats.unanswered), (1, 1));
}

#[test]
fn retransmitted_query_keeps_the_first_time() {
    let q = query(11, "slow.example", TYPE::A);
    let r = response(11, "slow.example", TYPE::A, RCODE::NoError, vec![]);
    let (rows, stats) = udp(&[(C2S, 0, &q), (C2S, S, &q), (S2C, S + 5 * MS, &r)]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].retransmissions, 1);
    assert_eq!(rows[0].query_ts_ns, Some(0));
    assert_eq!(rows[0].latency_ns, Some(S + 5 * MS));
    assert_eq!((stats.queries, stats.retransmissions), (2, 1));
}

#[test]
fn response_without_query_and_duplicate_response() {
    let (rows, stats) = udp(&[
        (C2S, 0, &QUERY),
        (S2C, MS, &RESPONSE),
        (S2C, 2 * MS, &RESPONSE),
    ]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].outcome, Outcome::Answered);
    let dup = &rows[1];
    assert_eq!(dup.outcome, Outcome::ResponseOnly);
    assert_eq!((dup.query_ts_ns, dup.latency_ns), (None, None));
    assert_eq!(dup.response_ts_ns, Some(2 * MS));
    assert_eq!(dup.name.as_deref(), Some("www.example.com"));
    assert_eq!(dup.addresses.len(), 2);
    assert_eq!(dup.query_dir, C2S);
    assert_eq!((stats.responses, stats.response_only), (2, 1));
}

#[test]
fn query_from_the_server_side() {
    let (rows, _) = udp(&[(S2C, 0, &QUERY), (C2S, MS, &RESPONSE)]);
    assert_eq!(rows[0].query_dir, S2C);
    assert_eq!(rows[0].outcome, Outcome::Answered);
    // A response going client to server alone: its query went the other way.
    let (rows, _) = udp(&[(C2S, 0, &RESPONSE)]);
    assert_eq!(rows[0].query_dir, S2C);
    // A response in the query's own direction does not answer it.
    let (rows, _) = udp(&[(C2S, 0, &QUERY), (C2S, MS, &RESPONSE)]);
    let outcomes: Vec<Outcome> = rows.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::ResponseOnly, Outcome::FlowEnd]);
}

#[test]
fn unanswered_queries_time_out_or_end_with_the_flow() {
    let q1 = query(1, "lost.example", TYPE::A);
    let q2 = query(2, "late.example", TYPE::A);
    let r1 = response(1, "lost.example", TYPE::A, RCODE::NoError, vec![]);
    let (rows, stats) = udp(&[
        (C2S, 0, &q1),
        (C2S, 5 * S, &q2),     // exactly the timeout: q1 still in flight
        (S2C, 5 * S + 1, &r1), // past it: q1 timed out before this response
    ]);
    let got: Vec<(Outcome, Option<&str>)> = rows
        .iter()
        .map(|r| (r.outcome, r.name.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (Outcome::Timeout, Some("lost.example")),
            (Outcome::ResponseOnly, Some("lost.example")),
            (Outcome::FlowEnd, Some("late.example")),
        ]
    );
    assert_eq!(rows[0].response_ts_ns, None);
    assert_eq!(rows[0].rcode, None);
    assert_eq!(stats.unanswered, 2);

    // At the flow's end, a query older than the timeout counts as timed out.
    let mut flow = DnsFlow::new(DnsConfig::default());
    let mut rows = Vec::new();
    flow.on_datagram(C2S, 0, &q1, &mut |r| rows.push(r));
    flow.on_datagram(C2S, 4 * S, &q2, &mut |r| rows.push(r));
    flow.finish(6 * S, &mut |r| rows.push(r));
    let outcomes: Vec<Outcome> = rows.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Timeout, Outcome::FlowEnd]);

    // An idle flow is expired from outside.
    let mut flow = DnsFlow::new(DnsConfig {
        timeout_ns: MS,
        ..DnsConfig::default()
    });
    let mut rows = Vec::new();
    flow.on_datagram(C2S, 0, &q1, &mut |r| rows.push(r));
    flow.expire(MS, &mut |r| rows.push(r));
    assert!(rows.is_empty());
    flow.expire(MS + 1, &mut |r| rows.push(r));
    assert_eq!(rows.len(), 1);
    assert_eq!(flow.in_flight(), 0);
}

#[test]
fn in_flight_queries_are_bounded() {
    let config = DnsConfig {
        max_in_flight: 2,
        ..DnsConfig::default()
    };
    let qs: Vec<Vec<u8>> = (0..5).map(|i| query(i, "many.example", TYPE::A)).collect();
    let msgs: Vec<(Dir, i64, &[u8])> = qs.iter().map(|q| (C2S, 0, q.as_slice())).collect();
    let mut flow = DnsFlow::new(config);
    let mut rows = Vec::new();
    for &(dir, ts, bytes) in &msgs {
        flow.on_datagram(dir, ts, bytes, &mut |r| rows.push(r));
        assert!(flow.in_flight() <= 2);
    }
    let ids: Vec<u16> = rows.iter().map(|r| r.id).collect();
    assert_eq!(ids, [0, 1, 2]);
    assert!(rows.iter().all(|r| r.outcome == Outcome::Evicted));
    assert_eq!(flow.stats().evicted, 3);
}

#[test]
fn case_randomised_names_match() {
    // 0x20 randomisation: the server echoes the query's case.
    let q = query(12, "wWw.ExAmPlE.CoM", TYPE::A);
    let r = response(12, "wWw.ExAmPlE.CoM", TYPE::A, RCODE::NoError, vec![]);
    let (rows, _) = udp(&[(C2S, 0, &q), (S2C, 1, &r)]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name.as_deref(), Some("www.example.com"));
    // Even when the server does not echo it.
    let r = response(12, "www.example.com", TYPE::A, RCODE::NoError, vec![]);
    let (rows, _) = udp(&[(C2S, 0, &q), (S2C, 1, &r)]);
    assert_eq!(rows[0].outcome, Outcome::Answered);
}

#[test]
fn names_are_escaped_as_in_master_files() {
    let labels = [
        simple_dns::Label::new_unchecked(&b"a.b"[..]),
        simple_dns::Label::new_unchecked(&b"Sp ace\\"[..]),
        simple_dns::Label::new_unchecked(&b"\xc3\xa9"[..]),
    ];
    let mut p = Packet::new_query(1);
    p.questions.push(Question::new(
        Name::new_with_labels(&labels),
        QTYPE::TYPE(TYPE::A),
        CLASS::IN.into(),
        false,
    ));
    let q = p.build_bytes_vec().unwrap();
    let (rows, _) = udp(&[(C2S, 0, &q)]);
    assert_eq!(rows[0].name.as_deref(), Some(r"a\.b.sp\032ace\\.\195\169"));

    let mut p = Packet::new_query(2);
    p.questions.push(Question::new(
        Name::new_unchecked(""),
        QTYPE::TYPE(TYPE::NS),
        CLASS::IN.into(),
        false,
    ));
    let root = p.build_bytes_vec().unwrap();
    let (rows, _) = udp(&[(C2S, 0, &root)]);
    assert_eq!(rows[0].name.as_deref(), Some("."));
}

#[test]
fn types_the_parser_does_not_know_are_kept() {
    // TLSA (52) and a private-use type: simple-dns refuses them as QTYPEs.
    for t in [52u16, 65_300] {
        let mut q = query(13, "_443._tcp.example", TYPE::A);
        let at = q.len() - 4;
        q[at..at + 2].copy_from_slice(&t.to_be_bytes());
        let mut r = response(13, "_443._tcp.example", TYPE::A, RCODE::NoError, vec![]);
        let at = r.len() - 4;
        r[at..at + 2].copy_from_slice(&t.to_be_bytes());
        let (rows, stats) = udp(&[(C2S, 0, &q), (S2C, MS, &r)]);
        assert_eq!(rows.len(), 1, "type {t}");
        assert_eq!(rows[0].qtype, Some(t));
        assert_eq!(rows[0].outcome, Outcome::Answered);
        assert!(!rows[0].malformed);
        assert_eq!(stats.malformed(), 0);
    }
    assert_eq!(type_name(52), "TLSA");
    assert_eq!(type_name(65_300), "TYPE65300");
}

#[test]
fn a_cut_response_keeps_what_parsed() {
    // The second answer loses its last byte: the first answer stays.
    let cut = &RESPONSE[..RESPONSE.len() - 1];
    let (rows, stats) = udp(&[(C2S, 0, &QUERY), (S2C, MS, cut)]);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(row.malformed);
    assert_eq!(row.outcome, Outcome::Answered);
    assert_eq!(row.answers, Some(2));
    assert_eq!(row.addresses, [v4([93, 184, 216, 34])]);
    assert_eq!(stats.bad_record, 1);

    // Cut inside the first answer: the question alone.
    let (rows, _) = udp(&[(S2C, 0, &RESPONSE[..40])]);
    assert!(rows[0].malformed && rows[0].addresses.is_empty());
    assert_eq!(rows[0].name.as_deref(), Some("www.example.com"));

    // Cut inside the question: no row.
    let (rows, stats) = udp(&[(S2C, 0, &RESPONSE[..20])]);
    assert!(rows.is_empty());
    assert_eq!(stats.bad_question, 1);
}

#[test]
fn a_bad_second_question_keeps_the_first() {
    // As in ndpi's malformed_dns.pcap: two questions, the second with a name too long.
    let mut r = RESPONSE[..12].to_vec();
    r[5] = 2; // QDCOUNT 2
    r[7] = 0; // ANCOUNT 0
    r.extend_from_slice(&RESPONSE[12..33]);
    for _ in 0..5 {
        r.push(63);
        r.extend_from_slice(&[b'x'; 63]);
    }
    r.extend_from_slice(&[0, 0, 1, 0, 1]);
    let (rows, stats) = udp(&[(C2S, 0, &QUERY), (S2C, MS, &r)]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name.as_deref(), Some("www.example.com"));
    assert!(rows[0].malformed);
    assert_eq!(rows[0].outcome, Outcome::Answered);
    assert_eq!(stats.bad_record, 1);
}

#[test]
fn garbage_is_counted_by_kind() {
    let mut z = QUERY;
    z[3] |= 0x40; // reserved Z bit
    let mut op = QUERY;
    op[2] |= 3 << 3; // opcode 3: unassigned
    let mut pointer_loop = QUERY.to_vec();
    pointer_loop.truncate(12);
    pointer_loop.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]); // a name pointing at itself
    let mut huge_counts = RESPONSE;
    huge_counts[4..12].copy_from_slice(&[0xff; 8]);
    let (rows, stats) = udp(&[
        (C2S, 0, &[]),
        (C2S, 0, &QUERY[..11]),
        (C2S, 0, &z),
        (C2S, 0, &op),
        (C2S, 0, &pointer_loop),
        (C2S, 0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]);
    assert!(rows.is_empty(), "{rows:?}");
    assert_eq!(stats.too_short, 2);
    assert_eq!(stats.bad_header, 1);
    assert_eq!(stats.not_dns, 2); // opcode 3, and "GET " reads as opcode 10
    assert_eq!(stats.bad_question, 1);
    assert_eq!(stats.queries + stats.responses, 0);

    // Counts far past the message: read laxly, without reserving room for them. The
    // answers cannot be found behind 65,535 questions: the first question alone.
    let (rows, stats) = udp(&[(S2C, 0, &huge_counts)]);
    assert_eq!(rows.len(), 1);
    assert!(rows[0].malformed);
    assert_eq!(rows[0].name.as_deref(), Some("www.example.com"));
    assert_eq!(rows[0].answers, Some(0xffff));
    assert!(rows[0].addresses.is_empty());
    assert_eq!(stats.bad_record, 1);
}

#[test]
fn a_message_without_question() {
    // A FORMERR response with no question answers the query with its id.
    let mut p = Packet::new_reply(0x1234);
    *p.rcode_mut() = RCODE::FormatError;
    let r = p.build_bytes_vec().unwrap();
    let (rows, _) = udp(&[(C2S, 0, &QUERY), (S2C, MS, &r)]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, Outcome::Answered);
    assert_eq!(rows[0].name.as_deref(), Some("www.example.com"));
    assert_eq!(rows[0].rcode_name().as_deref(), Some("FORMERR"));
}

#[test]
fn ports_and_names() {
    assert!(is_dns_port(53));
    assert!(!is_dns_port(5353) && !is_dns_port(5355) && !is_dns_port(853));
    assert_eq!(type_name(65), "HTTPS");
    assert_eq!(type_name(255), "ANY");
    assert_eq!(rcode_name(5), "REFUSED");
    assert_eq!(rcode_name(15), "RCODE15");
}

#[test]
fn stats_merge_and_iterate() {
    let (_, a) = udp(&[(C2S, 0, &QUERY), (S2C, 1, &RESPONSE)]);
    let (_, b) = udp(&[(C2S, 0, &QUERY[..5])]);
    let mut sum = a;
    sum.merge(&b);
    assert_eq!((sum.queries, sum.too_short), (1, 1));
    let named: Vec<(&str, u64)> = sum.iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(
        named,
        [
            ("queries", 1),
            ("responses", 1),
            ("answered", 1),
            ("too_short", 1)
        ]
    );
}

// Property tests: arbitrary bytes never panic.

proptest! {
    #[test]
    fn arbitrary_datagrams_never_panic(msgs in prop::collection::vec(
        (any::<bool>(), 0i64..10_000_000_000, prop::collection::vec(any::<u8>(), 0..300)),
        0..20,
    )) {
        let mut flow = DnsFlow::new(DnsConfig { max_in_flight: 4, ..DnsConfig::default() });
        let mut n = 0usize;
        for (up, ts, bytes) in &msgs {
            let dir = if *up { C2S } else { S2C };
            flow.on_datagram(dir, *ts, bytes, &mut |_| n += 1);
        }
        flow.finish(10_000_000_000, &mut |_| n += 1);
        prop_assert!(n <= msgs.len());
    }

    #[test]
    fn corrupted_messages_never_panic(
        which in 0usize..4,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let chain = response(
            7,
            "www.example.com",
            TYPE::A,
            RCODE::NoError,
            vec![
                cname("www.example.com", 300, "a.cdn.net"),
                cname("a.cdn.net", 300, "b.cdn.net"),
                a("b.cdn.net", 30, [192, 0, 2, 1]),
            ],
        );
        let base: Vec<u8> = match which {
            0 => QUERY.to_vec(),
            1 => RESPONSE.to_vec(),
            2 => chain,
            _ => framed(&[&QUERY, &RESPONSE]),
        };
        let mut msg = base.clone();
        for (at, b) in &flips {
            let i = at.index(msg.len());
            msg[i] = *b;
        }
        msg.truncate(cut.index(msg.len() + 1));
        let mut flow = DnsFlow::new(DnsConfig::default());
        flow.on_datagram(C2S, 0, &QUERY, &mut |_| {});
        flow.on_datagram(S2C, 1, &msg, &mut |_| {});
        flow.on_stream(S2C, 2, &msg, &mut |_| {});
        flow.finish(3, &mut |_| {});
    }

    #[test]
    fn arbitrary_streams_never_panic(
        chunks in prop::collection::vec(
            (any::<bool>(), prop::collection::vec(any::<u8>(), 0..200)),
            0..30,
        ),
        gaps in prop::collection::vec(any::<bool>(), 30),
    ) {
        let mut flow = DnsFlow::new(DnsConfig::default());
        for (i, (up, bytes)) in chunks.iter().enumerate() {
            let dir = if *up { C2S } else { S2C };
            if gaps[i] && i % 3 == 0 {
                flow.on_gap(dir);
            }
            flow.on_stream(dir, i as i64, bytes, &mut |_| {});
        }
        flow.finish(100, &mut |_| {});
    }

    #[test]
    fn valid_streams_split_anywhere_read_the_same(
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let q2 = query(2, "two.example", TYPE::A);
        let r2 = response(2, "two.example", TYPE::A, RCODE::NoError, vec![a("two.example", 9, [192, 0, 2, 9])]);
        let up = framed(&[&QUERY, &q2]);
        let down = framed(&[&RESPONSE, &r2]);
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(down.len())).collect();
        at.push(0);
        at.push(down.len());
        at.sort_unstable();
        let mut flow = DnsFlow::new(DnsConfig::default());
        let mut rows = Vec::new();
        flow.on_stream(C2S, 0, &up, &mut |r| rows.push(r));
        for w in at.windows(2) {
            if w[0] < w[1] {
                flow.on_stream(S2C, 1, &down[w[0]..w[1]], &mut |r| rows.push(r));
            }
        }
        flow.finish(2, &mut |r| rows.push(r));
        let ids: Vec<(u16, Outcome, usize)> = rows.iter().map(|r| (r.id, r.outcome, r.addresses.len())).collect();
        prop_assert_eq!(ids, vec![(0x1234, Outcome::Answered, 2), (2, Outcome::Answered, 1)]);
        prop_assert_eq!(flow.stats().malformed(), 0);
    }
}

proptest! {
    #[test]
    fn name_map_never_panics_and_stays_bounded(
        ops in prop::collection::vec(
            (any::<i64>(), 0u8..8, 0usize..3, any::<u32>(), any::<bool>()),
            0..200,
        ),
    ) {
        let names = ["a.example", "b.example", "c.example"];
        let mut m = NameMap::new(4);
        for (ts, last, n, ttl, look) in ops {
            if look {
                if let Some(found) = m.lookup(ip(last), ts) {
                    prop_assert!(names.contains(&found));
                }
            } else {
                m.insert(ts, ip(last), names[n], ttl);
            }
            prop_assert!(m.len() <= 4);
        }
    }
}

/// The two messages framed for TCP.
fn framed(msgs: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for m in msgs {
        v.extend_from_slice(&(m.len() as u16).to_be_bytes());
        v.extend_from_slice(m);
    }
    v
}

fn tcp(segments: &[(Dir, i64, &[u8])]) -> (Vec<DnsRow>, DnsStats) {
    let mut flow = DnsFlow::new(DnsConfig::default());
    let mut rows = Vec::new();
    let mut out = |r: DnsRow| rows.push(r);
    for &(dir, ts, bytes) in segments {
        if bytes.is_empty() {
            flow.on_gap(dir);
        } else {
            flow.on_stream(dir, ts, bytes, &mut out);
        }
    }
    flow.finish(segments.last().map_or(0, |s| s.1), &mut out);
    let stats = *flow.stats();
    (rows, stats)
}

fn ip(last: u8) -> IpAddr {
    v4([192, 0, 2, last])
}

mod name_map;
mod tcp;
