//! [`NameMap`]: which name DNS gave for an address, at a given time.

use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashMap;

use super::DnsRow;

/// Most answers kept per address (distinct names, or the same name again after another).
const HISTORY: usize = 4;
/// Nanoseconds per second.
const NS_PER_S: i64 = 1_000_000_000;

/// A run of answers giving one name for an address: first at `first_ts_ns`, last at
/// `last_ts_ns`, the last with `ttl_s`.
#[derive(Clone, Debug)]
struct Answer {
    first_ts_ns: i64,
    last_ts_ns: i64,
    ttl_s: u32,
    name: Arc<str>,
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
    /// Older answers, oldest first (at most `HISTORY - 1`).
    older: Vec<Answer>,
    /// When the address was last answered, in insertions: eviction takes the lowest.
    last_insert: u64,
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
        self.insert_shared(ts_ns, addr, Arc::from(name), ttl_s);
    }

    /// The answers of a row: each address for the row's question name, at the response's
    /// time, with the row's smallest TTL. Rows without a response, with an RCODE other
    /// than NOERROR, without a name or without addresses add nothing.
    pub fn insert_row(&mut self, row: &DnsRow) {
        let (Some(ts_ns), Some(0), Some(name)) = (row.response_ts_ns, row.rcode, &row.name) else {
            return;
        };
        if row.addresses.is_empty() {
            return;
        }
        let name: Arc<str> = Arc::from(name.as_str());
        for &addr in &row.addresses {
            self.insert_shared(ts_ns, addr, Arc::clone(&name), row.min_ttl_s.unwrap_or(0));
        }
    }

    fn insert_shared(&mut self, ts_ns: i64, addr: IpAddr, name: Arc<str>, ttl_s: u32) {
        self.inserts += 1;
        self.stats.inserts += 1;
        let answer = Answer {
            first_ts_ns: ts_ns,
            last_ts_ns: ts_ns,
            ttl_s,
            name,
        };
        let seq = self.inserts;
        match self.map.get_mut(&addr) {
            Some(e) => {
                e.last_insert = seq;
                let newest = &mut e.newest;
                if ts_ns >= newest.first_ts_ns {
                    if *newest.name == *answer.name {
                        // The same name again: the run goes on.
                        if ts_ns >= newest.last_ts_ns {
                            newest.last_ts_ns = ts_ns;
                            newest.ttl_s = ttl_s;
                        }
                    } else {
                        let old = std::mem::replace(newest, answer);
                        e.older.push(old);
                    }
                } else {
                    // Older than the newest (captures are not always in time order).
                    let at = e.older.partition_point(|a| a.first_ts_ns <= ts_ns);
                    e.older.insert(at, answer);
                }
                if e.older.len() > HISTORY - 1 {
                    e.older.remove(0);
                }
            }
            None => {
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
        }
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
        live.or(any).map(|(_, a)| &*a.name)
    }
}
