//! What `DnsFlow` allocates per message, watched by a counting global allocator on this
//! thread: nothing for messages that give no row (garbage, short, not DNS) and for TCP
//! messages that lie whole in one call; for a query or a response, the row's own strings
//! and address list plus simple-dns's section and label vectors, pinned here per kind of
//! message (simple-dns 0.13), so that a change in either shows.

use std::hint::black_box;
use std::net::Ipv4Addr;
use streamscope_testkit::CountingAlloc;

use simple_dns::rdata::{RData, A, CNAME};
use simple_dns::{Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};
use streamscope_media::dns::{Dir, DnsConfig, DnsFlow, DnsRow};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn watched<R>(f: impl FnOnce() -> R) -> (R, u64) {
    CountingAlloc::watched(f)
}

const NAME: &str = "www.example.com";

fn question(t: TYPE) -> Question<'static> {
    Question::new(
        Name::new_unchecked(NAME),
        QTYPE::TYPE(t),
        CLASS::IN.into(),
        false,
    )
}

fn query(id: u16) -> Vec<u8> {
    let mut p = Packet::new_query(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED);
    p.questions.push(question(TYPE::A));
    p.build_bytes_vec().unwrap()
}

fn response(id: u16, rcode: RCODE, answers: Vec<ResourceRecord<'static>>) -> Vec<u8> {
    let mut p = Packet::new_reply(id);
    *p.rcode_mut() = rcode;
    p.questions.push(question(TYPE::A));
    p.answers = answers;
    p.build_bytes_vec_compressed().unwrap()
}

fn a(owner: &'static str, last: u8) -> ResourceRecord<'static> {
    let address = u32::from(Ipv4Addr::new(192, 0, 2, last));
    ResourceRecord::new(
        Name::new_unchecked(owner),
        CLASS::IN,
        60,
        RData::A(A { address }),
    )
}

/// Allocations of one message given to a flow in the state `setup` leaves it in, rows
/// dropped outside the watch. The flow has had one exchange before (its in-flight queue
/// has grown: that is once per flow).
fn allocations(setup: &[&[u8]], dir: Dir, msg: &[u8], tcp: bool) -> (u64, usize) {
    let mut flow = DnsFlow::new(DnsConfig::default());
    let mut kept: Vec<DnsRow> = Vec::with_capacity(4);
    let mut warm = Packet::new_query(0xffff);
    warm.questions.push(Question::new(
        Name::new_unchecked("warm.example"),
        QTYPE::TYPE(TYPE::A),
        CLASS::IN.into(),
        false,
    ));
    let warm_query = warm.build_bytes_vec().unwrap();
    let warm_response = warm.into_reply().build_bytes_vec().unwrap();
    flow.on_datagram(Dir::ClientToServer, 0, &warm_query, &mut |r| kept.push(r));
    flow.on_datagram(Dir::ServerToClient, 0, &warm_response, &mut |r| {
        kept.push(r)
    });
    for m in setup {
        flow.on_datagram(Dir::ClientToServer, 0, m, &mut |r| kept.push(r));
    }
    if tcp {
        // The TCP state exists before the watched call.
        flow.on_stream(dir, 0, &[], &mut |r| kept.push(r));
    }
    kept.clear();
    let ((), n) = watched(|| {
        if tcp {
            flow.on_stream(dir, 1, black_box(msg), &mut |r| kept.push(r));
        } else {
            flow.on_datagram(dir, 1, black_box(msg), &mut |r| kept.push(r));
        }
    });
    (n, kept.len())
}

/// (what, messages before, the message, over TCP, allocations, rows).
type Case<'a> = (&'a str, &'a [&'a [u8]], Vec<u8>, bool, u64, usize);

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

#[test]
fn messages_without_rows_do_not_allocate() {
    let q = query(1);
    let mut z = q.clone();
    z[3] |= 0x40; // reserved bit
    let mut op = q.clone();
    op[2] |= 3 << 3; // unassigned opcode
    for (what, msg) in [
        ("empty", &[][..]),
        ("short", &q[..11]),
        ("reserved bit", &z[..]),
        ("opcode", &op[..]),
        ("http", &b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"[..]),
    ] {
        let (n, rows) = allocations(&[], Dir::ClientToServer, msg, false);
        assert_eq!((n, rows), (0, 0), "{what}");
    }
}

#[test]
fn allocations_per_message_are_pinned() {
    let q = query(7);
    let answered = response(7, RCODE::NoError, vec![a(NAME, 1), a(NAME, 2)]);
    let nx = response(7, RCODE::NameError, vec![]);
    let chain = response(
        7,
        RCODE::NoError,
        vec![
            ResourceRecord::new(
                Name::new_unchecked(NAME),
                CLASS::IN,
                300,
                RData::CNAME(CNAME(Name::new_unchecked("edge.cdn.example.net"))),
            ),
            a("edge.cdn.example.net", 3),
        ],
    );
    let s2c = Dir::ServerToClient;
    let cases: [Case; 6] = [
        // simple-dns: questions and label vectors (2); the query's name (1); the queue
        // of queries in flight (1: an empty queue gives its memory back, so that a
        // flow with nothing in flight holds none).
        ("query", &[], q.clone(), false, 4, 0),
        // simple-dns: questions, answers, 3 label vectors (5); the addresses (1).
        ("response, 2 A", &[&q], answered.clone(), false, 6, 1),
        // simple-dns: questions and label vector (2).
        ("response, NXDOMAIN", &[&q], nx.clone(), false, 2, 1),
        // simple-dns: questions, answers, 4 label vectors (6); the addresses and the
        // CNAME list with its string (3).
        ("response, CNAME and A", &[&q], chain, false, 9, 1),
        // A response without a query: its name too.
        ("response only, 2 A", &[], answered.clone(), false, 7, 1),
        // TCP, the message whole in one call: as over UDP, no buffer.
        ("tcp response, 2 A", &[&q], framed(&answered), true, 6, 1),
    ];
    let mut got = Vec::new();
    for (what, setup, msg, tcp, want, rows) in &cases {
        let dir = if setup.is_empty() && !msg.is_empty() && msg == &q {
            Dir::ClientToServer
        } else {
            s2c
        };
        let (n, r) = allocations(setup, dir, msg, *tcp);
        got.push((
            (n, r),
            (*want, *rows),
            format!("{what}: {n} allocations, {r} rows"),
        ));
    }
    let report: Vec<&str> = got.iter().map(|g| g.2.as_str()).collect();
    for (found, pinned, what) in &got {
        assert_eq!(found, pinned, "{what} (all: {})", report.join("; "));
    }
}
