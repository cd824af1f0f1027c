//! Unicast DNS (RFC 1035) over UDP and TCP: queries paired with their responses, one
//! [`DnsRow`] per exchange, and the address → name map their answers build.
//!
//! # What is here
//!
//! * [`DnsFlow`]: the DNS state of one flow (UDP or TCP) between a client side and a
//!   server side. It reads each message ([`DnsFlow::on_datagram`] for UDP, one message
//!   per datagram; [`DnsFlow::on_stream`] and [`DnsFlow::on_gap`] for TCP, RFC 1035
//!   section 4.2.2 and RFC 7766 section 8 framing), pairs queries with responses and
//!   emits a [`DnsRow`] per exchange through a caller's closure. The caller adds the flow
//!   id and the addresses.
//! * [`DnsState`] and [`DnsSink`]: the same without the limits and counters, which the
//!   flows of a run share through the sink (what [`crate::MediaInspector`] keeps per flow:
//!   40 bytes while nothing is in flight).
//! * [`NameMap`]: bounded, time-aware address → name map fed with the rows' answers
//!   ([`NameMap::insert_row`]); the flow table asks it for a server's name.
//! * [`DnsStats`]: what was read and what was not, by kind.
//! * [`is_dns_port`]: which flows get a `DnsFlow`.
//!
//! # Which protocol
//!
//! Unicast DNS on port 53 only. mDNS (RFC 6762, port 5353) and LLMNR (RFC 4795, port
//! 5355) share the wire format but not the semantics: they are multicast, carry
//! unsolicited announcements, reuse id 0, and set the top bit of the class for other
//! purposes; tshark dissects them as other protocols (`mdns`, `llmnr`), and a query /
//! response latency means nothing for them. DNS over TLS (853) and over HTTPS are
//! encrypted and belong to the TLS and QUIC inspectors. The caller decides by port
//! ([`is_dns_port`]) which flows get a `DnsFlow`.
//!
//! # The parsing crate: simple-dns
//!
//! Messages are read with [`simple_dns`] (0.13), chosen over `hickory-proto` and
//! `dns-parser`:
//!
//! * **Maintenance.** simple-dns and hickory-proto are maintained; dns-parser's last
//!   release (0.8.0) is from 2018 and it still rejects the HTTPS query type (65), which
//!   browsers and Apple devices send with every A/AAAA lookup (tailhook/dns-parser
//!   issue 46, open with an unmerged fix since 2023).
//! * **Borrowing.** simple-dns borrows labels and record data from the message
//!   (`Name<'a>`, `RData<'a>`); hickory-proto decodes into owned values (`Name`,
//!   `Record`, `Message`).
//! * **Compile weight.** simple-dns is about 9,000 lines with one dependency
//!   (`bitflags`). hickory-proto is about 37,000 lines and, even with default features
//!   only, pulls `url`, `idna` (the ICU4X normaliser tables), `rand`, `tracing`,
//!   `tinyvec`, `ipnet` and `data-encoding`; its current release also requires Rust 1.88,
//!   above this workspace's 1.85.
//! * **Robustness on malformed input.** All three return errors rather than panicking
//!   on bad names, pointers and lengths (simple-dns only follows compression pointers
//!   backwards and caps names at 255 octets). simple-dns parses a message all or
//!   nothing, and refuses question types and classes it does not know (NSEC3, TLSA, SPF,
//!   URI, ...) and records of an unknown class. hickory-proto is the most tolerant (a
//!   record at a time, unknown types and classes kept as numbers), and that is the one
//!   thing it would give us; we get the same from simple-dns by re-parsing on the
//!   malformed path only (below).
//!
//! What simple-dns does not do, and this module therefore does by hand, is small: the raw
//! 4-bit RCODE and OPCODE (the crate folds the unassigned values into `Reserved`), and
//! on the lax path below, the walk over the first question's name to find its type and
//! class.
//!
//! ## Lax reading
//!
//! A message is first parsed whole with `Packet::parse`. If that fails (a cut message, a
//! record the crate refuses), it is read again laxly from a copy (an allocation on the
//! malformed path only):
//!
//! 1. if the first question's type or class is one the crate does not know, the copy
//!    gets A / IN in its place and the real numbers are kept for the row; a message that
//!    then parses is not malformed;
//! 2. otherwise the copy's header counts are lowered: all questions with the answer
//!    section and no authority or additional records; then as many answers as parse
//!    (binary search on the answer count); then only the first question. What parses is
//!    used and the row is marked [`DnsRow::malformed`] ([`DnsStats::bad_record`]);
//! 3. a message whose first question does not parse gives no row
//!    ([`DnsStats::bad_question`]).
//!
//! ## Allocation
//!
//! Any of the three crates allocates while parsing: simple-dns collects each section
//! into a `Vec` and each name's labels into a `Vec` (a handful of small allocations per
//! message, freed before the next one; `tests/dns_no_alloc.rs` pins the count). Beyond
//! those, a row owns its name, CNAME strings and address list, and an in-flight query
//! owns its name until its row is emitted. Nothing else allocates per message once a
//! flow's in-flight queue has grown; TCP reassembly buffers are bounded (below). DNS is a
//! small share of a streaming capture's packets, so the parse's allocations are accepted;
//! should they ever matter, NLnet Labs' `domain` crate parses lazily without allocating.
//!
//! # Pairing
//!
//! A response answers the in-flight query sent the other way with the same transaction
//! id, question name (compared case-insensitively, for 0x20 randomisation), type and
//! class; a response without a question answers the oldest in-flight query with its id.
//! The row's query time is the query's, its latency the response's time less the
//! query's. A query repeated while in flight (same id and question, same direction) is a
//! retransmission: counted in [`DnsRow::retransmissions`], the time of the first is
//! kept. A query with no response within [`DnsConfig::timeout_ns`] (checked whenever the
//! flow sees a message, and by [`DnsFlow::expire`]) or by the flow's end
//! ([`DnsFlow::finish`]) gives a row with the response fields null; a response with no
//! query in flight gives a row with the query time and latency null (a second copy of a
//! response included). At most [`DnsConfig::max_in_flight`] queries are in flight per
//! flow; when a new one arrives at the bound, the oldest is emitted unanswered
//! ([`Outcome::Evicted`]).
//!
//! # TCP
//!
//! Each direction's bytes are framed by the 2-byte length prefix. A message whose bytes
//! are all in one [`DnsFlow::on_stream`] call is parsed where it lies; only a message
//! split across calls is copied, into a per-direction buffer of at most 2 + 65,535 bytes
//! (the largest a prefix can announce), released when it held more than 4 KiB. A message
//! completed by a later call has that call's time.
//!
//! After a gap ([`DnsFlow::on_gap`]) the partial message is dropped and counted
//! ([`DnsStats::tcp_incomplete`]), and the direction has lost its framing: the bytes
//! after a gap may start anywhere in a message, and no field marks a message start. The
//! direction then reads nothing until a call whose bytes start like a message: a length
//! prefix of at least 12, a header with the reserved bit clear, opcode QUERY, one
//! question, the same query / response bit as the direction's earlier messages, and, when
//! the whole message is in the call, a message that parses whole. Clients and servers
//! usually write each message with its prefix in one piece, so a later segment start is
//! often a message start; when it is not, the direction stays silent
//! ([`DnsStats::tcp_resyncs`] counts the recoveries). A length prefix below 12 (no room
//! for a header) loses the framing the same way ([`DnsStats::bad_length_prefix`]).
//!
//! A direction's first bytes are taken as a message start, as they are when the stream
//! starts with the connection. For a connection picked up in the middle (its handshake
//! not captured), the caller reports a gap before the first bytes, and the direction
//! waits for a message start as after any gap.
//!
//! # Names
//!
//! Names are written as tshark writes them, lower-cased: labels joined by dots, no
//! trailing dot, the root as `.`. Bytes other than printable ASCII, and `.` and `\`
//! inside a label, are escaped as in master files (RFC 1035 section 5.1, RFC 4343
//! section 2.1): `\DDD` in decimal, `\.`, `\\`.
//!
//! # Panics
//!
//! None: every read goes through the crate's checked buffer or a length check first.

mod flow;
mod message;
mod name_map;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::net::IpAddr;

pub use flow::{DnsFlow, DnsSink, DnsState};
pub use name_map::{NameMap, NameMapStats};

/// The DNS port (RFC 1035 section 4.2).
pub const DNS_PORT: u16 = 53;

/// Whether a flow with this port on either side carries unicast DNS: port 53 only (see
/// the [module documentation](self#which-protocol) for mDNS and LLMNR).
#[inline]
pub fn is_dns_port(port: u16) -> bool {
    port == DNS_PORT
}

/// Which way a message travels within its flow. (To be replaced by the flow table's own
/// direction type when the inspector is wired in.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// From the flow's client side to its server side.
    ClientToServer,
    /// From the flow's server side to its client side.
    ServerToClient,
}

impl Dir {
    /// The other direction.
    #[inline]
    pub fn reverse(self) -> Dir {
        match self {
            Dir::ClientToServer => Dir::ServerToClient,
            Dir::ServerToClient => Dir::ClientToServer,
        }
    }

    /// 0 for client to server, 1 for server to client.
    #[inline]
    pub fn index(self) -> usize {
        match self {
            Dir::ClientToServer => 0,
            Dir::ServerToClient => 1,
        }
    }
}

/// Limits of one [`DnsFlow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// A query with no response after this long is emitted unanswered
    /// ([`Outcome::Timeout`]). Default 5 s (glibc's and Windows' first retry interval).
    pub timeout_ns: i64,
    /// Most queries in flight per flow (at least 1). Default 1,024.
    pub max_in_flight: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            timeout_ns: 5_000_000_000,
            max_in_flight: 1024,
        }
    }
}

/// How an exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A query and its response.
    Answered,
    /// A query whose response did not come within [`DnsConfig::timeout_ns`].
    Timeout,
    /// A query still waiting when the flow ended, before its timeout.
    FlowEnd,
    /// A query pushed out of the in-flight queue by newer ones
    /// ([`DnsConfig::max_in_flight`]).
    Evicted,
    /// A response with no query in flight (the query was not captured, already answered,
    /// or timed out).
    ResponseOnly,
}

impl Outcome {
    /// The name used in tables: `answered`, `timeout`, `flow_end`, `evicted`,
    /// `response_only`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Timeout => "timeout",
            Outcome::FlowEnd => "flow_end",
            Outcome::Evicted => "evicted",
            Outcome::ResponseOnly => "response_only",
        }
    }
}

/// One DNS exchange: a query with its response, or either alone. The flow id and the
/// addresses are the caller's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRow {
    /// Time of the query (the first, for a retransmitted query); `None` for a response
    /// without a query.
    pub query_ts_ns: Option<i64>,
    /// Time of the response; `None` for an unanswered query.
    pub response_ts_ns: Option<i64>,
    /// Which way the query went: [`Dir::ClientToServer`] unless the flow's server side
    /// asked. For a response without a query, the reverse of the response's direction.
    pub query_dir: Dir,
    /// Transaction id (RFC 1035 section 4.1.1).
    pub id: u16,
    /// The first question's name (see [names](self#names)); `None` when the message has
    /// no question.
    pub name: Option<String>,
    /// The first question's type (QTYPE); see [`DnsRow::qtype_name`].
    pub qtype: Option<u16>,
    /// The response's 4-bit RCODE from the header; see [`DnsRow::rcode_name`]. `None`
    /// without a response.
    pub rcode: Option<u8>,
    /// The response's answer count (ANCOUNT, as the header states it).
    pub answers: Option<u16>,
    /// The IPv4 (A) and IPv6 (AAAA) addresses answered for the question name or a name of
    /// its CNAME chain, in answer order.
    pub addresses: Vec<IpAddr>,
    /// The CNAME chain from the question name, in order: each entry the target of the
    /// previous name's CNAME record (at most 16).
    pub cnames: Vec<String>,
    /// The smallest TTL of the answer records of the question name and its CNAME chain,
    /// in seconds.
    pub min_ttl_s: Option<u32>,
    /// Response time less query time, when both were seen.
    pub latency_ns: Option<i64>,
    /// The response's TC bit: it was truncated to fit (RFC 1035 section 4.1.1); the
    /// client is expected to ask again over TCP.
    pub truncated: bool,
    /// Copies of the query seen while it was in flight.
    pub retransmissions: u16,
    /// The query or the response did not parse whole: the fields are what parsed (the
    /// answers may be incomplete).
    pub malformed: bool,
    /// How the exchange ended.
    pub outcome: Outcome,
}

impl DnsRow {
    /// The query type's mnemonic (IANA "Resource Record (RR) TYPEs"), `TYPEn` for others
    /// (RFC 3597 section 5).
    pub fn qtype_name(&self) -> Option<Cow<'static, str>> {
        self.qtype.map(type_name)
    }

    /// The RCODE's mnemonic (IANA "DNS RCODEs"), `RCODEn` for others.
    pub fn rcode_name(&self) -> Option<Cow<'static, str>> {
        self.rcode.map(rcode_name)
    }
}

/// A resource record type's mnemonic (IANA "Resource Record (RR) TYPEs"), `TYPEn` for
/// the types not listed here (RFC 3597 section 5).
pub fn type_name(t: u16) -> Cow<'static, str> {
    let name = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        24 => "SIG",
        25 => "KEY",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return Cow::Owned(format!("TYPE{t}")),
    };
    Cow::Borrowed(name)
}

/// An RCODE's mnemonic (IANA "DNS RCODEs", RFC 1035 section 4.1.1, RFC 2136, RFC 8490),
/// `RCODEn` for the unassigned values.
pub fn rcode_name(rcode: u8) -> Cow<'static, str> {
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        _ => return Cow::Owned(format!("RCODE{rcode}")),
    };
    Cow::Borrowed(name)
}

/// What [`DnsFlow`]s read, and what they could not, by kind. Add flows' stats with
/// [`DnsStats::merge`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DnsStats {
    /// Query messages read (their first question parsed, or they had none).
    pub queries: u64,
    /// Response messages read.
    pub responses: u64,
    /// Responses paired with a query.
    pub answered: u64,
    /// Queries emitted without a response (timeout, flow end or eviction).
    pub unanswered: u64,
    /// Of those, queries pushed out by [`DnsConfig::max_in_flight`].
    pub evicted: u64,
    /// Queries repeated while in flight.
    pub retransmissions: u64,
    /// Responses with no query in flight.
    pub response_only: u64,
    /// Messages shorter than the 12-byte header.
    pub too_short: u64,
    /// Headers with the reserved Z bit set (RFC 1035 section 4.1.1: must be zero; the
    /// parser refuses them).
    pub bad_header: u64,
    /// Headers whose opcode is none of QUERY, IQUERY, STATUS, NOTIFY, UPDATE: taken as
    /// another protocol on port 53.
    pub not_dns: u64,
    /// Messages whose first question does not parse (no row).
    pub bad_question: u64,
    /// Messages whose first question parsed but not everything after it (the row is
    /// marked [`DnsRow::malformed`]).
    pub bad_record: u64,
    /// TCP length prefixes below the 12-byte header (the direction loses its framing).
    pub bad_length_prefix: u64,
    /// TCP gaps reported ([`DnsFlow::on_gap`]).
    pub tcp_gaps: u64,
    /// Partial TCP messages dropped at a gap or at the flow's end.
    pub tcp_incomplete: u64,
    /// TCP directions that found a message start again after losing their framing.
    pub tcp_resyncs: u64,
}

impl DnsStats {
    /// Adds another flow's counts.
    pub fn merge(&mut self, other: &DnsStats) {
        for (mine, theirs) in self.fields_mut().into_iter().zip(other.values()) {
            *mine += theirs;
        }
    }

    /// Every counter with its name, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        Self::NAMES.into_iter().zip(self.values())
    }

    /// Messages not read, all kinds together.
    pub fn malformed(&self) -> u64 {
        self.too_short
            + self.bad_header
            + self.not_dns
            + self.bad_question
            + self.bad_record
            + self.bad_length_prefix
    }

    const NAMES: [&'static str; 16] = [
        "queries",
        "responses",
        "answered",
        "unanswered",
        "evicted",
        "retransmissions",
        "response_only",
        "too_short",
        "bad_header",
        "not_dns",
        "bad_question",
        "bad_record",
        "bad_length_prefix",
        "tcp_gaps",
        "tcp_incomplete",
        "tcp_resyncs",
    ];

    fn values(&self) -> [u64; 16] {
        [
            self.queries,
            self.responses,
            self.answered,
            self.unanswered,
            self.evicted,
            self.retransmissions,
            self.response_only,
            self.too_short,
            self.bad_header,
            self.not_dns,
            self.bad_question,
            self.bad_record,
            self.bad_length_prefix,
            self.tcp_gaps,
            self.tcp_incomplete,
            self.tcp_resyncs,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u64; 16] {
        [
            &mut self.queries,
            &mut self.responses,
            &mut self.answered,
            &mut self.unanswered,
            &mut self.evicted,
            &mut self.retransmissions,
            &mut self.response_only,
            &mut self.too_short,
            &mut self.bad_header,
            &mut self.not_dns,
            &mut self.bad_question,
            &mut self.bad_record,
            &mut self.bad_length_prefix,
            &mut self.tcp_gaps,
            &mut self.tcp_incomplete,
            &mut self.tcp_resyncs,
        ]
    }
}
