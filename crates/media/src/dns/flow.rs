//! [`DnsFlow`]: one flow's DNS state, pairing queries with responses (see the
//! [module documentation](super#pairing)).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{Name, ResourceRecord};

use super::message::{self, Message, Question, Reject};
use super::{Dir, DnsConfig, DnsRow, DnsStats, Outcome};

/// Longest CNAME chain followed from the question name.
const MAX_CHAIN: usize = 16;
/// A TCP buffer that held a larger message is released once that message is read.
const KEEP_BUFFER: usize = 4096;
/// Length of the TCP length prefix (RFC 1035 section 4.2.2).
const PREFIX_LEN: usize = 2;
/// Length of the DNS header: the shortest message a length prefix can announce.
const HEADER_LEN: usize = 12;

/// A query waiting for its response.
#[derive(Debug)]
struct Pending {
    ts_ns: i64,
    dir: Dir,
    id: u16,
    qtype: Option<u16>,
    qclass: Option<u16>,
    name: Option<String>,
    retransmissions: u16,
    malformed: bool,
}

impl Pending {
    /// Whether `q` (a message's first question, or none) is this query's question.
    fn asks(&self, q: Option<&Question<'_>>) -> bool {
        match (q, self.name.as_deref()) {
            (None, None) => true,
            (Some(q), Some(name)) => {
                self.qtype == Some(q.qtype)
                    && self.qclass == Some(q.qclass)
                    && message::name_is(&q.name, name)
            }
            _ => false,
        }
    }

    fn unanswered(self, outcome: Outcome) -> DnsRow {
        DnsRow {
            query_ts_ns: Some(self.ts_ns),
            response_ts_ns: None,
            query_dir: self.dir,
            id: self.id,
            name: self.name,
            qtype: self.qtype,
            rcode: None,
            answers: None,
            addresses: Vec::new(),
            cnames: Vec::new(),
            min_ttl_s: None,
            latency_ns: None,
            truncated: false,
            retransmissions: self.retransmissions,
            malformed: self.malformed,
            outcome,
        }
    }
}

/// Where a TCP direction's framing stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Framing {
    /// At a message boundary or inside the message in the buffer.
    #[default]
    Synced,
    /// Lost (a gap or a bad length prefix): waiting for a call that starts like a
    /// message.
    Lost,
}

/// One TCP direction.
#[derive(Debug, Default)]
struct StreamDir {
    /// The message being completed: its prefix and the bytes so far.
    buf: Vec<u8>,
    framing: Framing,
    /// The query / response bit of this direction's messages so far.
    response: Option<bool>,
}

/// Where a flow's DNS rows go, with the limits and counters the flows of a run share
/// (kept once per run rather than once per flow: a capture of a million DNS flows keeps a
/// million [`DnsState`]s).
pub trait DnsSink {
    /// The limits.
    fn config(&self) -> &DnsConfig;
    /// The counters, added to as messages are read.
    fn stats(&mut self) -> &mut DnsStats;
    /// One exchange's row.
    fn row(&mut self, row: DnsRow);
}

/// One flow's DNS state alone: the queries in flight and the TCP framing. Its calls take
/// a [`DnsSink`] with the limits and counters; [`DnsFlow`] bundles one with a closure.
#[derive(Debug, Default)]
pub struct DnsState {
    queue: Queue,
    /// The two directions' TCP framing, made at the first TCP bytes.
    tcp: Option<Box<[StreamDir; 2]>>,
}

/// The DNS state of one flow with its own limits and counters: see the
/// [module documentation](super).
///
/// Rows go to the `out` closure of each call as soon as they are known: at a response,
/// when a query times out or is evicted, and at [`DnsFlow::finish`].
#[derive(Debug)]
pub struct DnsFlow {
    state: DnsState,
    config: DnsConfig,
    stats: DnsStats,
}

/// A [`DnsFlow`]'s limits and counters with the caller's closure.
struct Own<'a, F> {
    config: &'a DnsConfig,
    stats: &'a mut DnsStats,
    out: &'a mut F,
}

impl<F: FnMut(DnsRow)> DnsSink for Own<'_, F> {
    #[inline]
    fn config(&self) -> &DnsConfig {
        self.config
    }
    #[inline]
    fn stats(&mut self) -> &mut DnsStats {
        self.stats
    }
    #[inline]
    fn row(&mut self, row: DnsRow) {
        (self.out)(row)
    }
}

impl DnsFlow {
    /// The state of a new flow. Directions are the flow's: [`Dir::ClientToServer`] is from
    /// the side the flow table calls the client.
    pub fn new(config: DnsConfig) -> DnsFlow {
        DnsFlow {
            state: DnsState::default(),
            config,
            stats: DnsStats::default(),
        }
    }

    /// What this flow read so far.
    pub fn stats(&self) -> &DnsStats {
        &self.stats
    }

    /// Queries in flight.
    pub fn in_flight(&self) -> usize {
        self.state.in_flight()
    }

    fn with<F: FnMut(DnsRow)>(
        &mut self,
        out: &mut F,
        f: impl FnOnce(&mut DnsState, &mut Own<'_, F>),
    ) {
        let mut sink = Own {
            config: &self.config,
            stats: &mut self.stats,
            out,
        };
        f(&mut self.state, &mut sink);
    }

    /// One UDP datagram's payload: one message (RFC 1035 section 4.2.1).
    pub fn on_datagram(
        &mut self,
        dir: Dir,
        ts_ns: i64,
        payload: &[u8],
        out: &mut impl FnMut(DnsRow),
    ) {
        self.with(out, |st, sink| st.on_datagram(dir, ts_ns, payload, sink));
    }

    /// The next bytes of a TCP direction, in order: messages with their 2-byte length
    /// prefix (RFC 1035 section 4.2.2, RFC 7766 section 8), split anyhow across calls.
    /// `ts_ns` is the time of the segment that brought them; a message gets the time of
    /// the call that completes it.
    pub fn on_stream(&mut self, dir: Dir, ts_ns: i64, bytes: &[u8], out: &mut impl FnMut(DnsRow)) {
        self.with(out, |st, sink| st.on_stream(dir, ts_ns, bytes, sink));
    }

    /// Bytes of a TCP direction were lost before the next [`DnsFlow::on_stream`] call:
    /// the partial message is dropped, and the direction reads nothing until a call
    /// starts like a message (see [TCP](super#tcp)).
    pub fn on_gap(&mut self, dir: Dir) {
        self.with(&mut |_| {}, |st, sink| st.on_gap(dir, sink));
    }

    /// Emits the queries that have waited longer than the timeout at `now_ns` (the flow
    /// does so itself at every message; call this when the flow is idle, e.g. when a
    /// time bin closes).
    pub fn expire(&mut self, now_ns: i64, out: &mut impl FnMut(DnsRow)) {
        self.with(out, |st, sink| st.expire(now_ns, sink));
    }

    /// The flow ended at `end_ts_ns`: every query still in flight is emitted, as timed
    /// out if it waited longer than the timeout, else as [`Outcome::FlowEnd`]; partial TCP
    /// messages are dropped and counted.
    ///
    /// `end_ts_ns` is when the flow is known to have ended: for a flow ended by its idle
    /// timeout, the time the timeout ran out (not its last packet's, or a query that was
    /// its last packet would count as [`Outcome::FlowEnd`]); at the end of the capture,
    /// the capture's last time.
    pub fn finish(&mut self, end_ts_ns: i64, out: &mut impl FnMut(DnsRow)) {
        self.with(out, |st, sink| st.finish(end_ts_ns, sink));
    }
}

impl DnsState {
    /// Queries in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.pending.len()
    }

    /// One UDP datagram's payload: one message (RFC 1035 section 4.2.1).
    pub fn on_datagram(&mut self, dir: Dir, ts_ns: i64, payload: &[u8], sink: &mut impl DnsSink) {
        self.queue.handle(dir, ts_ns, payload, sink);
    }

    /// The next bytes of a TCP direction, in order: messages with their 2-byte length
    /// prefix (RFC 1035 section 4.2.2, RFC 7766 section 8), split anyhow across calls.
    /// `ts_ns` is the time of the segment that brought them; a message gets the time of
    /// the call that completes it.
    pub fn on_stream(&mut self, dir: Dir, ts_ns: i64, bytes: &[u8], sink: &mut impl DnsSink) {
        let queue = &mut self.queue;
        let st = &mut self.tcp.get_or_insert_with(Default::default)[dir.index()];
        let mut rest = bytes;
        if st.framing == Framing::Lost {
            if !message::looks_like_start(rest, st.response) {
                return;
            }
            st.framing = Framing::Synced;
            sink.stats().tcp_resyncs += 1;
        }
        while !rest.is_empty() {
            if st.buf.is_empty() {
                // At a message boundary: read whole messages where they lie.
                let Some(&[l0, l1]) = rest.get(..PREFIX_LEN) else {
                    st.buf.extend_from_slice(rest);
                    return;
                };
                let len = usize::from(u16::from_be_bytes([l0, l1]));
                if len < HEADER_LEN {
                    lose_framing(st, sink);
                    return;
                }
                let Some(msg) = rest.get(PREFIX_LEN..PREFIX_LEN + len) else {
                    st.buf.reserve_exact(PREFIX_LEN + len);
                    st.buf.extend_from_slice(rest);
                    return;
                };
                rest = &rest[PREFIX_LEN + len..];
                if let Some(r) = queue.handle(dir, ts_ns, msg, sink) {
                    st.response = Some(r);
                }
            } else {
                // Completing the buffered message: its prefix first.
                if st.buf.len() < PREFIX_LEN {
                    let take = (PREFIX_LEN - st.buf.len()).min(rest.len());
                    st.buf.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if st.buf.len() < PREFIX_LEN {
                        return;
                    }
                }
                let len = usize::from(u16::from_be_bytes([st.buf[0], st.buf[1]]));
                if len < HEADER_LEN {
                    lose_framing(st, sink);
                    return;
                }
                let total = PREFIX_LEN + len;
                let take = (total - st.buf.len()).min(rest.len());
                st.buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if st.buf.len() < total {
                    return;
                }
                if let Some(r) = queue.handle(dir, ts_ns, &st.buf[PREFIX_LEN..], sink) {
                    st.response = Some(r);
                }
                st.buf.clear();
                if st.buf.capacity() > KEEP_BUFFER {
                    st.buf = Vec::new();
                }
            }
        }
    }

    /// Bytes of a TCP direction were lost before the next [`DnsFlow::on_stream`] call:
    /// the partial message is dropped, and the direction reads nothing until a call
    /// starts like a message (see [TCP](super#tcp)).
    pub fn on_gap(&mut self, dir: Dir, sink: &mut impl DnsSink) {
        sink.stats().tcp_gaps += 1;
        let st = &mut self.tcp.get_or_insert_with(Default::default)[dir.index()];
        if !st.buf.is_empty() {
            sink.stats().tcp_incomplete += 1;
        }
        st.buf = Vec::new();
        st.framing = Framing::Lost;
    }

    /// Emits the queries that have waited longer than the timeout at `now_ns` (the flow
    /// does so itself at every message; call this when the flow is idle, e.g. when a
    /// time bin closes).
    pub fn expire(&mut self, now_ns: i64, sink: &mut impl DnsSink) {
        self.queue.expire(now_ns, sink);
    }

    /// The flow ended at `end_ts_ns`: every query still in flight is emitted, as timed
    /// out if it waited longer than the timeout, else as [`Outcome::FlowEnd`]; partial TCP
    /// messages are dropped and counted.
    ///
    /// `end_ts_ns` is when the flow is known to have ended: for a flow ended by its idle
    /// timeout, the time the timeout ran out (not its last packet's, or a query that was
    /// its last packet would count as [`Outcome::FlowEnd`]); at the end of the capture,
    /// the capture's last time.
    pub fn finish(&mut self, end_ts_ns: i64, sink: &mut impl DnsSink) {
        self.queue.expire(end_ts_ns, sink);
        for p in self.queue.pending.drain(..) {
            sink.stats().unanswered += 1;
            sink.row(p.unanswered(Outcome::FlowEnd));
        }
        if let Some(tcp) = self.tcp.take() {
            for st in tcp.iter() {
                if !st.buf.is_empty() {
                    sink.stats().tcp_incomplete += 1;
                }
            }
        }
    }
}

/// A direction's framing is lost (a length prefix below the header's length).
fn lose_framing(st: &mut StreamDir, sink: &mut impl DnsSink) {
    sink.stats().bad_length_prefix += 1;
    st.buf = Vec::new();
    st.framing = Framing::Lost;
}

/// The queries in flight, oldest first.
#[derive(Debug, Default)]
struct Queue {
    pending: VecDeque<Pending>,
}

impl Queue {
    fn expire(&mut self, now_ns: i64, sink: &mut impl DnsSink) {
        while let Some(front) = self.pending.front() {
            if now_ns.saturating_sub(front.ts_ns) <= sink.config().timeout_ns {
                break;
            }
            if let Some(p) = self.pending.pop_front() {
                sink.stats().unanswered += 1;
                sink.row(p.unanswered(Outcome::Timeout));
            }
        }
    }

    /// Reads one message; returns its query / response bit when it was read.
    fn handle(
        &mut self,
        dir: Dir,
        ts_ns: i64,
        msg: &[u8],
        sink: &mut impl DnsSink,
    ) -> Option<bool> {
        self.expire(ts_ns, sink);
        let mut scratch = Vec::new();
        let m = match message::read(msg, &mut scratch) {
            Ok(m) => m,
            Err(reject) => {
                let s = sink.stats();
                *match reject {
                    Reject::TooShort => &mut s.too_short,
                    Reject::BadHeader => &mut s.bad_header,
                    Reject::NotDns => &mut s.not_dns,
                    Reject::BadQuestion => &mut s.bad_question,
                } += 1;
                return None;
            }
        };
        if m.malformed {
            sink.stats().bad_record += 1;
        }
        let response = m.response;
        if response {
            sink.stats().responses += 1;
            self.response(dir, ts_ns, m, sink);
        } else {
            sink.stats().queries += 1;
            self.query(dir, ts_ns, m, sink);
        }
        Some(response)
    }

    fn query(&mut self, dir: Dir, ts_ns: i64, m: Message<'_>, sink: &mut impl DnsSink) {
        let q = m.question.as_ref();
        if let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.dir == dir && p.id == m.id && p.asks(q))
        {
            p.retransmissions = p.retransmissions.saturating_add(1);
            p.malformed |= m.malformed;
            sink.stats().retransmissions += 1;
            return;
        }
        if self.pending.len() >= sink.config().max_in_flight.max(1) {
            if let Some(old) = self.pending.pop_front() {
                sink.stats().unanswered += 1;
                sink.stats().evicted += 1;
                sink.row(old.unanswered(Outcome::Evicted));
            }
        }
        self.pending.push_back(Pending {
            ts_ns,
            dir,
            id: m.id,
            qtype: q.map(|q| q.qtype),
            qclass: q.map(|q| q.qclass),
            name: q.map(|q| message::name_string(&q.name)),
            retransmissions: 0,
            malformed: m.malformed,
        });
    }

    fn response(&mut self, dir: Dir, ts_ns: i64, m: Message<'_>, sink: &mut impl DnsSink) {
        let qdir = dir.reverse();
        let q = m.question.as_ref();
        let at = match q {
            Some(_) => self
                .pending
                .iter()
                .position(|p| p.dir == qdir && p.id == m.id && p.asks(q)),
            // No question: the oldest query in flight with this id.
            None => self
                .pending
                .iter()
                .position(|p| p.dir == qdir && p.id == m.id),
        };
        let query = at.and_then(|i| self.pending.remove(i));
        if self.pending.is_empty() {
            // Nothing in flight: give the queue's memory back (a capture of a million
            // one-exchange flows keeps a million of these open until they time out).
            self.pending = VecDeque::new();
        }
        let qname = q.map(|q| &q.name);
        let answers = Answers::of(qname, &m.answers);
        let row = match query {
            Some(p) => {
                sink.stats().answered += 1;
                DnsRow {
                    query_ts_ns: Some(p.ts_ns),
                    latency_ns: Some(ts_ns.saturating_sub(p.ts_ns)),
                    query_dir: p.dir,
                    name: p.name,
                    qtype: p.qtype,
                    retransmissions: p.retransmissions,
                    malformed: p.malformed | m.malformed,
                    outcome: Outcome::Answered,
                    ..answers.row(ts_ns, &m)
                }
            }
            None => {
                sink.stats().response_only += 1;
                DnsRow {
                    query_dir: qdir,
                    name: qname.map(message::name_string),
                    qtype: q.map(|q| q.qtype),
                    ..answers.row(ts_ns, &m)
                }
            }
        };
        sink.row(row);
    }
}

/// What a response answers for its question: the CNAME chain, the addresses, the
/// smallest TTL.
struct Answers {
    addresses: Vec<IpAddr>,
    cnames: Vec<String>,
    min_ttl_s: Option<u32>,
}

impl Answers {
    fn of(qname: Option<&Name<'_>>, records: &[ResourceRecord<'_>]) -> Answers {
        // The chain: the question name, then each CNAME target in turn.
        let mut chain: [Option<&Name<'_>>; MAX_CHAIN + 1] = [None; MAX_CHAIN + 1];
        let mut n = 0;
        if let Some(q) = qname {
            chain[0] = Some(q);
            n = 1;
            while n <= MAX_CHAIN {
                let current = chain[n - 1];
                let next = records.iter().find_map(|rr| match &rr.rdata {
                    RData::CNAME(target) if Some(&rr.name) == current => Some(&target.0),
                    _ => None,
                });
                match next {
                    Some(t) if !chain[..n].contains(&Some(t)) => {
                        chain[n] = Some(t);
                        n += 1;
                    }
                    _ => break,
                }
            }
        }
        // Without a question every record counts.
        let in_chain = |owner: &Name<'_>| n == 0 || chain[..n].contains(&Some(owner));
        let mut addresses = Vec::new();
        let mut min_ttl_s: Option<u32> = None;
        for rr in records.iter().filter(|rr| in_chain(&rr.name)) {
            // RFC 2181 section 8: a TTL with the top bit set is taken as zero.
            let ttl = if rr.ttl > i32::MAX as u32 { 0 } else { rr.ttl };
            min_ttl_s = Some(min_ttl_s.map_or(ttl, |m| m.min(ttl)));
            match &rr.rdata {
                RData::A(a) => addresses.push(IpAddr::V4(Ipv4Addr::from(a.address))),
                RData::AAAA(a) => addresses.push(IpAddr::V6(Ipv6Addr::from(a.address))),
                _ => {}
            }
        }
        let cnames = chain[1..n.max(1)]
            .iter()
            .flatten()
            .map(|name| message::name_string(name))
            .collect();
        Answers {
            addresses,
            cnames,
            min_ttl_s,
        }
    }

    /// A response-only row; the caller fills in the query's side.
    fn row(self, ts_ns: i64, m: &Message<'_>) -> DnsRow {
        DnsRow {
            query_ts_ns: None,
            response_ts_ns: Some(ts_ns),
            query_dir: Dir::ClientToServer,
            id: m.id,
            name: None,
            qtype: None,
            rcode: Some(m.rcode),
            answers: Some(m.ancount),
            addresses: self.addresses,
            cnames: self.cnames,
            min_ttl_s: self.min_ttl_s,
            latency_ns: None,
            truncated: m.truncated,
            retransmissions: 0,
            malformed: m.malformed,
            outcome: Outcome::ResponseOnly,
        }
    }
}
