//! [`NameMap`]: which name DNS gave for an address, at a given time.

use std::hash::BuildHasher as _;
use std::net::IpAddr;

use hashbrown::HashMap;

use super::DnsRow;

/// Most answers kept per address (distinct names, or the same name again after another).
const HISTORY: usize = 4;
/// Nanoseconds per second.
const NS_PER_S: i64 = 1_000_000_000;
/// Bytes of names the map may hold before it first compacts them, and the slack it
/// allows over the names in use after each compaction.
const ARENA_SLACK: usize = 1 << 20;

/// A name held in the map's arena: where its bytes are, and a hash of them, so that
/// telling two names apart rarely needs their bytes (which lie elsewhere in memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NameRef {
    at: u32,
    len: u32,
    hash: u32,
}

/// A run of answers giving one name for an address: first at `first_ts_ns`, last at
/// `last_ts_ns`, the last with `ttl_s`.
#[derive(Clone, Copy, Debug)]
struct Answer {
    first_ts_ns: i64,
    last_ts_ns: i64,
    ttl_s: u32,
    name: NameRef,
}

impl Answer {
    /// Whether the answer was live at `at_ns` (given at or before it): answered again
    /// after `at_ns`, or its last TTL not yet run out.
    fn live_at(&self, at_ns: i64) -> bool {
        at_ns <= self.last_ts_ns
            || at_ns.saturating_sub(self.last_ts_ns)
                <= i64::from(self.ttl_s).saturating_mul(NS_PER_S)
    }
}

#[derive(Clone, Debug)]
struct Entry {
    /// The answer with the latest `first_ts_ns`.
    newest: Answer,
    /// Older answers, oldest first (at most `HISTORY - 1`; room for them all is made
    /// at the first).
    older: Vec<Answer>,
    /// When the address was last answered, in insertions: eviction takes the lowest.
    last_insert: u64,
}

/// The names of a [`NameMap`]'s answers, end to end in one buffer: an answer costs no
/// allocation of its own, and the names of a response's addresses are stored once.
/// Names no answer refers to any longer are dropped when the buffer has grown past
/// twice what was in use at the last compaction ([`NameMap::compact`]).
#[derive(Clone, Debug, Default)]
struct Arena {
    bytes: Vec<u8>,
    /// Length of `bytes` past which the next insertion compacts first.
    limit: usize,
}

impl Arena {
    fn get(&self, r: NameRef) -> &str {
        let (at, len) = (r.at as usize, r.len as usize);
        self.bytes
            .get(at..at + len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// Appends `name` (with `hash`); the caller made room ([`NameMap::make_room`]).
    fn push(&mut self, name: &str, hash: u32) -> NameRef {
        let r = NameRef {
            at: self.bytes.len() as u32,
            len: name.len() as u32,
            hash,
        };
        self.bytes.extend_from_slice(name.as_bytes());
        r
    }

    /// Whether `r` is `name` (with `hash`): by hash and length first, bytes last.
    fn is(&self, r: NameRef, name: &str, hash: u32) -> bool {
        r.hash == hash && r.len as usize == name.len() && self.get(r) == name
    }
}

/// The hash kept with a name.
fn name_hash(name: &str) -> u32 {
    foldhash::fast::FixedState::default().hash_one(name.as_bytes()) as u32
}

/// Counters of a [`NameMap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameMapStats {
    /// Address answers inserted.
    pub inserts: u64,
    /// Addresses dropped to stay within the bound.
    pub evictions: u64,
}

/// A bounded, time-aware map from addresses to the names DNS answers gave for them.
///
/// * **Which name.** [`NameMap::lookup`]`(addr, t)` gives the name of the most recent
///   answer at or before `t` that gave `addr`, preferring an answer still live at `t`
///   (its TTL not run out since it was last given) over an expired one. Expired answers
///   still count: passive captures often see a flow start long after the answer's TTL
///   (a client caches longer than told, or the capture missed a later answer), and the
///   name is still the best evidence of what the address served.
/// * **CNAME chains.** The name is the question's, what the user asked for
///   (`www.example.com`), not the chain's last target (`e123.cdn.example.net`): rows
///   give the chain in [`DnsRow::cnames`] for whoever wants the CDN.
/// * **History.** Consecutive answers of one name for one address make one run; an
///   address keeps its last four runs, so a lookup before the oldest kept one finds
///   nothing.
/// * **Bound.** At most `max_addresses` addresses (default 2^20); when an insert goes
///   past it, the sixteenth of the addresses answered least recently is dropped at once
///   and counted ([`NameMapStats::evictions`]).
#[derive(Clone, Debug)]
pub struct NameMap {
    map: HashMap<IpAddr, Entry, foldhash::fast::FixedState>,
    names: Arena,
    max_addresses: usize,
    inserts: u64,
    stats: NameMapStats,
}

impl Default for NameMap {
    fn default() -> Self {
        NameMap::new(NameMap::DEFAULT_MAX_ADDRESSES)
    }
}

impl NameMap {
    /// Default bound: 2^20 addresses.
    pub const DEFAULT_MAX_ADDRESSES: usize = 1 << 20;

    /// An empty map holding at most `max_addresses` addresses (at least 1).
    pub fn new(max_addresses: usize) -> NameMap {
        NameMap {
            map: HashMap::default(),
            names: Arena {
                bytes: Vec::new(),
                limit: ARENA_SLACK,
            },
            max_addresses: max_addresses.max(1),
            inserts: 0,
            stats: NameMapStats::default(),
        }
    }

    /// Addresses held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no address is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Counters so far.
    pub fn stats(&self) -> NameMapStats {
        self.stats
    }

    /// An answer at `ts_ns` gave `addr` for `name`, valid for `ttl_s` seconds.
    pub fn insert(&mut self, ts_ns: i64, addr: IpAddr, name: &str, ttl_s: u32) {
        self.insert_all(ts_ns, &[addr], name, ttl_s);
    }

    /// The answers of a row: each address for the row's question name, at the response's
    /// time, with the row's smallest TTL. Rows without a response, with an RCODE other
    /// than NOERROR, without a name or without addresses add nothing.
    pub fn insert_row(&mut self, row: &DnsRow) {
        let (Some(ts_ns), Some(0), Some(name)) = (row.response_ts_ns, row.rcode, &row.name) else {
            return;
        };
        self.insert_all(ts_ns, &row.addresses, name, row.min_ttl_s.unwrap_or(0));
    }

    /// `name` for each of `addrs`; the name's bytes are stored once, when the first
    /// address needs them.
    fn insert_all(&mut self, ts_ns: i64, addrs: &[IpAddr], name: &str, ttl_s: u32) {
        if addrs.is_empty() {
            return;
        }
        self.make_room(name.len());
        let hash = name_hash(name);
        let mut stored = None;
        for &addr in addrs {
            self.insert_one(ts_ns, addr, name, hash, ttl_s, &mut stored);
        }
    }

    /// Makes room in the arena for a name of `len` bytes: compacts it when it has grown
    /// past its limit. Offsets are 32-bit: should the names in use pass 4 GiB, the map
    /// starts again empty (its addresses counted as evicted).
    fn make_room(&mut self, len: usize) {
        if self.names.bytes.len() + len > self.names.limit {
            self.compact();
        }
        if u32::try_from(self.names.bytes.len() + len).is_err() {
            self.stats.evictions += self.map.len() as u64;
            self.map.clear();
            self.names.bytes.clear();
        }
    }

    fn insert_one(
        &mut self,
        ts_ns: i64,
        addr: IpAddr,
        name: &str,
        hash: u32,
        ttl_s: u32,
        stored: &mut Option<NameRef>,
    ) {
        self.inserts += 1;
        self.stats.inserts += 1;
        let seq = self.inserts;
        let names = &mut self.names;
        // The name's place in the arena: stored at the first address that needs it
        // (`make_room` made room for it).
        let mut answer = |names: &mut Arena| {
            let r = *stored.get_or_insert_with(|| names.push(name, hash));
            Answer {
                first_ts_ns: ts_ns,
                last_ts_ns: ts_ns,
                ttl_s,
                name: r,
            }
        };
        let Some(e) = self.map.get_mut(&addr) else {
            let a = answer(names);
            return self.insert_new(addr, a, seq);
        };
        e.last_insert = seq;
        if ts_ns >= e.newest.first_ts_ns {
            if names.is(e.newest.name, name, hash) {
                // The same name again: the run goes on.
                let newest = &mut e.newest;
                if ts_ns >= newest.last_ts_ns {
                    newest.last_ts_ns = ts_ns;
                    newest.ttl_s = ttl_s;
                }
                return;
            }
            let old = std::mem::replace(&mut e.newest, answer(names));
            if e.older.capacity() == 0 {
                e.older.reserve_exact(HISTORY - 1);
            }
            if e.older.len() == HISTORY - 1 {
                e.older.remove(0);
            }
            e.older.push(old);
        } else {
            // Older than the newest (captures are not always in time order).
            let at = e.older.partition_point(|a| a.first_ts_ns <= ts_ns);
            e.older.insert(at, answer(names));
            if e.older.len() > HISTORY - 1 {
                e.older.remove(0);
            }
        }
    }

    fn insert_new(&mut self, addr: IpAddr, answer: Answer, seq: u64) {
        self.map.insert(
            addr,
            Entry {
                newest: answer,
                older: Vec::new(),
                last_insert: seq,
            },
        );
        if self.map.len() > self.max_addresses {
            self.evict();
        }
    }

    /// Copies the names the answers refer to into a new arena (each once, however many
    /// answers share it) and drops the rest; the next compaction comes when the arena
    /// has grown past twice that, plus [`ARENA_SLACK`].
    fn compact(&mut self) {
        let old = std::mem::take(&mut self.names.bytes);
        // The names kept are at most the old ones.
        let mut bytes = Vec::with_capacity(old.len());
        let mut moved: HashMap<u32, u32, foldhash::fast::FixedState> = HashMap::default();
        for e in self.map.values_mut() {
            for a in std::iter::once(&mut e.newest).chain(e.older.iter_mut()) {
                let r = &mut a.name;
                r.at = *moved.entry(r.at).or_insert_with(|| {
                    let at = bytes.len() as u32;
                    let (from, len) = (r.at as usize, r.len as usize);
                    bytes.extend_from_slice(old.get(from..from + len).unwrap_or_default());
                    at
                });
            }
        }
        self.names.limit = bytes.len().saturating_mul(2).saturating_add(ARENA_SLACK);
        // Room up to the limit at once: growing by doubling copied the names (and
        // faulted new pages) several times between compactions.
        bytes.reserve_exact(self.names.limit - bytes.len());
        self.names.bytes = bytes;
    }

    /// Drops the sixteenth (at least one) of the addresses answered least recently.
    fn evict(&mut self) {
        let target = self.max_addresses - self.max_addresses / 16;
        let excess = self.map.len().saturating_sub(target).max(1);
        let mut seqs: Vec<u64> = self.map.values().map(|e| e.last_insert).collect();
        let (_, &mut threshold, _) = seqs.select_nth_unstable(excess - 1);
        let before = self.map.len();
        self.map.retain(|_, e| e.last_insert > threshold);
        self.stats.evictions += (before - self.map.len()) as u64;
    }

    /// The name of the most recent answer at or before `at_ts_ns` that gave `addr`,
    /// preferring one still live then (see the type's documentation).
    pub fn lookup(&self, addr: IpAddr, at_ts_ns: i64) -> Option<&str> {
        let e = self.map.get(&addr)?;
        let mut live: Option<(i64, &Answer)> = None;
        let mut any: Option<(i64, &Answer)> = None;
        for a in std::iter::once(&e.newest).chain(e.older.iter().rev()) {
            if a.first_ts_ns > at_ts_ns {
                continue;
            }
            // When it was last given, as seen from `at_ts_ns`.
            let recency = a.last_ts_ns.min(at_ts_ns);
            let better = |best: Option<(i64, &Answer)>| best.is_none_or(|(r, _)| recency > r);
            if a.live_at(at_ts_ns) && better(live) {
                live = Some((recency, a));
            }
            if better(any) {
                any = Some((recency, a));
            }
        }
        live.or(any).map(|(_, a)| self.names.get(a.name))
    }
}
