//! DNS messages per second through `DnsFlow::on_datagram`: a query and its response per
//! iteration, paired and emitted as a row (the row dropped at once).
//!
//! * `a_2_answers`: `www.example.com` A, two A answers (EDNS OPT in both).
//! * `cname_chain_3`: `www.example.com` AAAA behind a chain of three CNAMEs.
//! * `nxdomain`: an A query answered NXDOMAIN with an SOA in the authority section.
//! * `query_only`: queries alone, each timing out a second later (the unanswered path).
//!
//! Figures are in the workspace's `benches/RESULTS.md`.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use simple_dns::rdata::{RData, A, AAAA, CNAME, OPT, SOA};
use simple_dns::{Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};
use streamscope_media::dns::{Dir, DnsConfig, DnsFlow, DnsRow};

const NAME: &str = "www.example.com";

fn with_edns(p: &mut Packet<'_>) {
    *p.opt_mut() = Some(OPT {
        opt_codes: Vec::new(),
        udp_packet_size: 1232,
        version: 0,
    });
}

fn query(id: u16, t: TYPE) -> Vec<u8> {
    let mut p = Packet::new_query(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED);
    p.questions.push(Question::new(
        Name::new_unchecked(NAME),
        QTYPE::TYPE(t),
        CLASS::IN.into(),
        false,
    ));
    with_edns(&mut p);
    p.build_bytes_vec().expect("a query")
}

fn response(id: u16, t: TYPE, rcode: RCODE, answers: Vec<ResourceRecord<'static>>) -> Vec<u8> {
    let mut p = Packet::new_reply(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
    *p.rcode_mut() = rcode;
    p.questions.push(Question::new(
        Name::new_unchecked(NAME),
        QTYPE::TYPE(t),
        CLASS::IN.into(),
        false,
    ));
    p.answers = answers;
    if rcode == RCODE::NameError {
        p.name_servers.push(ResourceRecord::new(
            Name::new_unchecked("example.com"),
            CLASS::IN,
            900,
            RData::SOA(SOA {
                mname: Name::new_unchecked("ns.example.com"),
                rname: Name::new_unchecked("hostmaster.example.com"),
                serial: 2024010101,
                refresh: 7200,
                retry: 3600,
                expire: 1209600,
                minimum: 300,
            }),
        ));
    }
    with_edns(&mut p);
    p.build_bytes_vec_compressed().expect("a response")
}

fn a(owner: &'static str, addr: [u8; 4]) -> ResourceRecord<'static> {
    let address = u32::from(Ipv4Addr::from(addr));
    ResourceRecord::new(
        Name::new_unchecked(owner),
        CLASS::IN,
        300,
        RData::A(A { address }),
    )
}

fn cname(owner: &'static str, target: &'static str) -> ResourceRecord<'static> {
    let target = CNAME(Name::new_unchecked(target));
    ResourceRecord::new(
        Name::new_unchecked(owner),
        CLASS::IN,
        3600,
        RData::CNAME(target),
    )
}

/// Queries with their responses.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Feeds `pairs` (query, response) in turn, 1 ms apart, to one flow.
fn exchange(flow: &mut DnsFlow, ts: &mut i64, pairs: &[(Vec<u8>, Vec<u8>)]) -> usize {
    let mut rows = 0usize;
    let mut out = |r: DnsRow| {
        black_box(&r);
        rows += 1;
    };
    for (q, r) in pairs {
        *ts += 1_000_000;
        flow.on_datagram(Dir::ClientToServer, *ts, black_box(q), &mut out);
        *ts += 1_000_000;
        flow.on_datagram(Dir::ServerToClient, *ts, black_box(r), &mut out);
    }
    rows
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("dns");
    let cases: [(&str, Pairs); 3] = [
        (
            "a_2_answers",
            vec![(
                query(0x1234, TYPE::A),
                response(
                    0x1234,
                    TYPE::A,
                    RCODE::NoError,
                    vec![a(NAME, [93, 184, 216, 34]), a(NAME, [93, 184, 216, 35])],
                ),
            )],
        ),
        (
            "cname_chain_3",
            vec![(
                query(0x2345, TYPE::AAAA),
                response(
                    0x2345,
                    TYPE::AAAA,
                    RCODE::NoError,
                    vec![
                        cname(NAME, "www.example.com.cdn.example.net"),
                        cname("www.example.com.cdn.example.net", "e1234.a.cdn.example.net"),
                        cname("e1234.a.cdn.example.net", "e1234.dsca.edge.example.net"),
                        ResourceRecord::new(
                            Name::new_unchecked("e1234.dsca.edge.example.net"),
                            CLASS::IN,
                            20,
                            RData::AAAA(AAAA {
                                address: u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                            }),
                        ),
                    ],
                ),
            )],
        ),
        (
            "nxdomain",
            vec![(
                query(0x3456, TYPE::A),
                response(0x3456, TYPE::A, RCODE::NameError, vec![]),
            )],
        ),
    ];
    for (name, pairs) in &cases {
        let msgs = 2 * pairs.len() as u64;
        group.throughput(Throughput::Elements(msgs));
        let mut flow = DnsFlow::new(DnsConfig::default());
        let mut ts = 0i64;
        assert_eq!(exchange(&mut flow, &mut ts, pairs), pairs.len(), "{name}");
        group.bench_function(*name, |b| {
            b.iter(|| exchange(&mut flow, &mut ts, pairs));
        });
        assert_eq!(flow.stats().malformed(), 0, "{name}");
        assert_eq!(flow.stats().response_only, 0, "{name}");
    }

    // Queries alone: each is emitted unanswered when the next one comes a second past
    // its timeout.
    let q = query(0x4567, TYPE::A);
    let config = DnsConfig {
        timeout_ns: 1_000_000,
        ..DnsConfig::default()
    };
    let mut flow = DnsFlow::new(config);
    let mut ts = 0i64;
    group.throughput(Throughput::Elements(1));
    group.bench_function("query_only", |b| {
        b.iter(|| {
            ts += 1_000_000_000;
            let mut n = 0usize;
            flow.on_datagram(Dir::ClientToServer, ts, black_box(&q), &mut |r| {
                black_box(&r);
                n += 1;
            });
            n
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
