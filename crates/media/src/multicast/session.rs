//! [`ChannelSessions`]: memberships per host, group and source, measured against the
//! group's data packets (see the [module documentation](super#channel-sessions)).

use core::cmp::Reverse;
use core::net::IpAddr;
use std::collections::BinaryHeap;

use hashbrown::HashMap;

use super::event::MulticastEvent;
use super::{Kind, RecordType, Version};

type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// Nanoseconds per second.
const NS_PER_S: i64 = 1_000_000_000;

/// Limits of a [`ChannelSessions`] tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// A membership with no report for this long ends by timeout. Default 260 s: the
    /// group membership interval of RFC 3376 section 8.4 and RFC 3810 section 9.4
    /// (robustness variable 2 × query interval 125 s + query response interval 10 s).
    pub membership_interval_ns: i64,
    /// Most sessions open at once (at least 1). Default 65,536; joins beyond are refused
    /// and counted ([`SessionStats::refused`]).
    pub max_sessions: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            membership_interval_ns: 260 * NS_PER_S,
            max_sessions: 65_536,
        }
    }
}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// A leave: IGMPv2 leave, MLDv1 done, an INCLUDE record with no source, or a BLOCK
    /// record naming the session's source.
    Leave,
    /// No report for the membership interval: ends at the last report plus the interval.
    Timeout,
    /// Still open at the capture's end.
    CaptureEnd,
    /// The host changed filter mode: an EXCLUDE record ended its source-specific
    /// sessions of the group, or a CHANGE_TO_INCLUDE record with sources its any-source
    /// session.
    Replaced,
}

impl EndReason {
    /// The name used in tables: `leave`, `timeout`, `capture_end`, `replaced`.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Leave => "leave",
            EndReason::Timeout => "timeout",
            EndReason::CaptureEnd => "capture_end",
            EndReason::Replaced => "replaced",
        }
    }
}

/// One membership, from join to end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelSession {
    /// The member host (the reports' IP source).
    pub host: IpAddr,
    /// The group.
    pub group: IpAddr,
    /// The source of a source-specific membership; `None` for any source.
    pub source: Option<IpAddr>,
    /// The version of the joining message.
    pub version: Version,
    /// Time of the joining report.
    pub join_ts_ns: i64,
    /// Time of the last report (the join or a refresh).
    pub last_report_ts_ns: i64,
    /// Time of the end: the leave, the last report plus the membership interval
    /// (timeout), or the capture's end.
    pub leave_ts_ns: i64,
    /// How it ended.
    pub end: EndReason,
    /// `leave_ts_ns - join_ts_ns` (0 when time ran backwards).
    pub duration_ns: i64,
    /// Reports that joined or refreshed it.
    pub reports: u32,
    /// Time of the group's (source's) first packet at or after the join, before the end.
    pub first_packet_ts_ns: Option<i64>,
    /// Zap time: `first_packet_ts_ns - join_ts_ns` (0 when time ran backwards).
    pub zap_ns: Option<i64>,
    /// The group's (source's) packets between join and end.
    pub packets: u64,
    /// Their bytes, as the caller counted them ([`ChannelSessions::on_group_packet`]).
    pub bytes: u64,
    /// `bytes × 8 / duration` in bits per second; `None` for a zero duration.
    pub mean_bps: Option<f64>,
}

/// What a [`ChannelSessions`] tracker did, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Sessions opened.
    pub opened: u64,
    /// Reports that refreshed an open session.
    pub refreshed: u64,
    /// Joins refused because [`SessionConfig::max_sessions`] were open.
    pub refused: u64,
    /// Leaves (IGMPv2 leave, MLDv1 done, BLOCK sources) for no open session.
    pub unmatched_leaves: u64,
    /// Sessions ended by a leave.
    pub ended_leave: u64,
    /// Sessions ended by timeout.
    pub ended_timeout: u64,
    /// Sessions ended at the capture's end.
    pub ended_capture_end: u64,
    /// Sessions ended by a filter-mode change.
    pub ended_replaced: u64,
    /// Group data packets counted (to a group with an open session).
    pub group_packets: u64,
}

impl SessionStats {
    /// Every counter with its name, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("opened", self.opened),
            ("refreshed", self.refreshed),
            ("refused", self.refused),
            ("unmatched_leaves", self.unmatched_leaves),
            ("ended_leave", self.ended_leave),
            ("ended_timeout", self.ended_timeout),
            ("ended_capture_end", self.ended_capture_end),
            ("ended_replaced", self.ended_replaced),
            ("group_packets", self.group_packets),
        ]
        .into_iter()
    }
}

/// (host, group, source).
type Key = (IpAddr, IpAddr, Option<IpAddr>);

/// An open session, in its slot.
#[derive(Debug)]
struct Open {
    key: Key,
    /// Unique over the tracker's life: tells a slot's sessions apart.
    id: u64,
    version: Version,
    join_ts: i64,
    last_report: i64,
    reports: u32,
    bytes_at_join: u64,
    packets_at_join: u64,
    first_packet: Option<i64>,
}

/// A running counter of a group's packets (key (group, None)) or of one source's packets
/// to a group (key (group, Some(source))). It exists while sessions use it.
#[derive(Debug, Default)]
struct Counter {
    bytes: u64,
    packets: u64,
    /// Sessions measured with this counter.
    refs: u32,
    /// For a group's counter: open source-specific sessions of the group (their counters
    /// are looked up only when this is not zero).
    ssm_refs: u32,
    /// Sessions (slot, id) waiting for their first packet.
    waiting: Vec<(u32, u64)>,
}

impl Counter {
    fn add(&mut self, ts_ns: i64, bytes: u64, slots: &mut [Option<Open>]) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.packets = self.packets.saturating_add(1);
        // Each session is visited once, by its first packet.
        for (slot, id) in self.waiting.drain(..) {
            if let Some(Some(o)) = slots.get_mut(slot as usize) {
                if o.id == id && o.first_packet.is_none() {
                    o.first_packet = Some(ts_ns);
                }
            }
        }
    }
}

/// Where a flow's group counters are in a [`ChannelSessions`]: kept by the caller of
/// [`ChannelSessions::on_group_packet`], one per multicast flow, and refreshed there
/// when counters came or went since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupHandle {
    epoch: u64,
    /// The group's counter (any source).
    any: Option<u32>,
    /// The counter of the flow's source to the group (source-specific sessions).
    source: Option<u32>,
}

impl Default for GroupHandle {
    /// Not looked up yet.
    fn default() -> GroupHandle {
        GroupHandle {
            epoch: u64::MAX,
            any: None,
            source: None,
        }
    }
}

/// Channel sessions: see the [module documentation](super#channel-sessions).
///
/// Feed it every IGMP / MLD event in capture order ([`ChannelSessions::on_event`]) and
/// every multicast data packet ([`ChannelSessions::on_group_packet`]); ended sessions go
/// to the `out` closure of the next call that takes one (an expiry found by
/// `on_group_packet` waits for it), and [`ChannelSessions::finish`] ends the rest.
#[derive(Debug)]
pub struct ChannelSessions {
    config: SessionConfig,
    slots: Vec<Option<Open>>,
    free: Vec<u32>,
    index: Map<Key, u32>,
    /// Open slots per (host, group): to end all of a host's sessions of a group.
    by_host_group: Map<(IpAddr, IpAddr), Vec<u32>>,
    /// The counter of each (group, source) in use: its place in `counter_slab`.
    counters: Map<(IpAddr, Option<IpAddr>), u32>,
    counter_slab: Vec<Counter>,
    counter_free: Vec<u32>,
    /// Changes whenever a counter comes or goes: a [`GroupHandle`] of another epoch is
    /// looked up again.
    epoch: u64,
    /// (deadline, slot, id), earliest first; an entry may be stale (session ended or
    /// refreshed since): checked when popped.
    expiry: BinaryHeap<Reverse<(i64, u32, u64)>>,
    /// Sessions ended and not yet handed out.
    done: Vec<ChannelSession>,
    open: usize,
    next_id: u64,
    stats: SessionStats,
}

impl ChannelSessions {
    /// An empty tracker.
    pub fn new(config: SessionConfig) -> ChannelSessions {
        ChannelSessions {
            config: SessionConfig {
                membership_interval_ns: config.membership_interval_ns.max(0),
                max_sessions: config.max_sessions.clamp(1, u32::MAX as usize),
            },
            slots: Vec::new(),
            free: Vec::new(),
            index: Map::default(),
            by_host_group: Map::default(),
            counters: Map::default(),
            counter_slab: Vec::new(),
            counter_free: Vec::new(),
            epoch: 0,
            expiry: BinaryHeap::new(),
            done: Vec::new(),
            open: 0,
            next_id: 0,
            stats: SessionStats::default(),
        }
    }

    /// What was done so far.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.open
    }

    /// One IGMP / MLD event (from [`super::events`]), in capture order. Queries and
    /// other messages change nothing but let time move on.
    pub fn on_event(&mut self, ev: &MulticastEvent<'_>, out: &mut impl FnMut(ChannelSession)) {
        let ts = ev.ts_ns;
        self.expire_until(ts);
        if let (Some(group), Some(version)) = (ev.group, ev.version) {
            let host = ev.host;
            match (ev.kind, ev.record_type) {
                (Kind::Report, None) => self.join((host, group, None), version, ts),
                (Kind::Leave, _) => self.leave((host, group, None), ts),
                (Kind::Report, Some(rt)) => {
                    let sources = ev.sources;
                    match rt {
                        RecordType::ModeIsExclude | RecordType::ChangeToExclude => {
                            self.end_host_group(host, group, ts, true, EndReason::Replaced);
                            self.join((host, group, None), version, ts);
                        }
                        RecordType::ModeIsInclude | RecordType::ChangeToInclude
                            if sources.is_empty() =>
                        {
                            self.end_host_group(host, group, ts, false, EndReason::Leave);
                        }
                        RecordType::ModeIsInclude
                        | RecordType::ChangeToInclude
                        | RecordType::AllowNewSources => {
                            if rt == RecordType::ChangeToInclude {
                                if let Some(&slot) = self.index.get(&(host, group, None)) {
                                    self.end(slot, ts, EndReason::Replaced);
                                }
                            }
                            for s in sources {
                                self.join((host, group, Some(s)), version, ts);
                            }
                        }
                        RecordType::BlockOldSources => {
                            for s in sources {
                                self.leave((host, group, Some(s)), ts);
                            }
                        }
                        RecordType::Unknown(_) => {}
                    }
                }
                _ => {}
            }
        }
        self.drain(out);
    }

    /// One multicast data packet to `group` from `source`, of `bytes` bytes (the caller
    /// chooses what it counts: IP length or UDP payload). `handle` is the caller's memory
    /// of where this group's (and source's) counters are, one per flow: it is looked up
    /// again only when counters came or went since, so that a packet costs no hash
    /// look-up, only a look at the earliest expiry.
    pub fn on_group_packet(
        &mut self,
        ts_ns: i64,
        group: IpAddr,
        source: IpAddr,
        bytes: u64,
        handle: &mut GroupHandle,
    ) {
        if self.counters.is_empty() {
            // Nobody joined anything: nothing to count (a capture of the channels alone).
            return;
        }
        self.expire_until(ts_ns);
        if handle.epoch != self.epoch {
            *handle = GroupHandle {
                epoch: self.epoch,
                any: self.counters.get(&(group, None)).copied(),
                source: self.counters.get(&(group, Some(source))).copied(),
            };
        }
        let Some(c) = handle
            .any
            .and_then(|i| self.counter_slab.get_mut(i as usize))
        else {
            return;
        };
        self.stats.group_packets += 1;
        let ssm = c.ssm_refs > 0;
        c.add(ts_ns, bytes, &mut self.slots);
        if ssm {
            if let Some(c) = handle
                .source
                .and_then(|i| self.counter_slab.get_mut(i as usize))
            {
                c.add(ts_ns, bytes, &mut self.slots);
            }
        }
    }

    /// The counter of `key`, made if there is none.
    fn counter_entry(&mut self, key: (IpAddr, Option<IpAddr>)) -> &mut Counter {
        let i = match self.counters.get(&key) {
            Some(&i) => i,
            None => {
                let i = match self.counter_free.pop() {
                    Some(i) => i,
                    None => {
                        self.counter_slab.push(Counter::default());
                        (self.counter_slab.len() - 1) as u32
                    }
                };
                self.counters.insert(key, i);
                self.epoch += 1;
                i
            }
        };
        &mut self.counter_slab[i as usize]
    }

    fn counter(&self, key: &(IpAddr, Option<IpAddr>)) -> Option<&Counter> {
        let &i = self.counters.get(key)?;
        self.counter_slab.get(i as usize)
    }

    fn counter_mut(&mut self, key: &(IpAddr, Option<IpAddr>)) -> Option<&mut Counter> {
        let &i = self.counters.get(key)?;
        self.counter_slab.get_mut(i as usize)
    }

    fn remove_counter(&mut self, key: &(IpAddr, Option<IpAddr>)) {
        if let Some(i) = self.counters.remove(key) {
            if let Some(c) = self.counter_slab.get_mut(i as usize) {
                *c = Counter::default();
            }
            self.counter_free.push(i);
            self.epoch += 1;
        }
    }

    /// Ends the sessions whose membership interval ran out by `now_ns` (and hands out
    /// those ended by earlier [`Self::on_group_packet`] calls).
    pub fn expire(&mut self, now_ns: i64, out: &mut impl FnMut(ChannelSession)) {
        self.expire_until(now_ns);
        self.drain(out);
    }

    /// Ends every session at the capture's end: by timeout when its interval ran out
    /// before `capture_end_ns`, else by `capture_end` at `capture_end_ns`. Sessions come
    /// out in slot order (deterministic for the same input).
    pub fn finish(&mut self, capture_end_ns: i64, out: &mut impl FnMut(ChannelSession)) {
        self.expire_until(capture_end_ns);
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_some() {
                self.end(slot as u32, capture_end_ns, EndReason::CaptureEnd);
            }
        }
        self.expiry.clear();
        self.drain(out);
    }

    /// (index entries, counters, expiry entries, waiting sessions): for bound checks.
    #[cfg(test)]
    pub(super) fn internal_sizes(&self) -> (usize, usize, usize, usize) {
        let waiting = self.counter_slab.iter().map(|c| c.waiting.len()).sum();
        (
            self.index.len(),
            self.counters.len(),
            self.expiry.len(),
            waiting,
        )
    }

    fn drain(&mut self, out: &mut impl FnMut(ChannelSession)) {
        for s in self.done.drain(..) {
            out(s);
        }
    }

    /// Pops the expiries due by `now`: a session refreshed since its entry was pushed
    /// gets a new entry; one not refreshed ends by timeout.
    fn expire_until(&mut self, now: i64) {
        while let Some(&Reverse((deadline, slot, id))) = self.expiry.peek() {
            if deadline > now {
                break;
            }
            self.expiry.pop();
            let Some(Some(o)) = self.slots.get(slot as usize) else {
                continue;
            };
            if o.id != id {
                continue;
            }
            let due = o
                .last_report
                .saturating_add(self.config.membership_interval_ns);
            if due > deadline {
                self.expiry.push(Reverse((due, slot, id)));
            } else {
                self.end(slot, due, EndReason::Timeout);
            }
        }
    }

    fn join(&mut self, key: Key, version: Version, ts: i64) {
        if let Some(&slot) = self.index.get(&key) {
            if let Some(Some(o)) = self.slots.get_mut(slot as usize) {
                o.last_report = o.last_report.max(ts);
                o.reports = o.reports.saturating_add(1);
                self.stats.refreshed += 1;
            }
            return;
        }
        if self.open >= self.config.max_sessions {
            self.stats.refused += 1;
            return;
        }
        let (host, group, source) = key;
        let id = self.next_id;
        self.next_id += 1;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        if source.is_some() {
            self.counter_entry((group, None)).ssm_refs += 1;
        }
        let c = self.counter_entry((group, source));
        c.refs += 1;
        c.waiting.push((slot, id));
        let open = Open {
            key,
            id,
            version,
            join_ts: ts,
            last_report: ts,
            reports: 1,
            bytes_at_join: c.bytes,
            packets_at_join: c.packets,
            first_packet: None,
        };
        self.slots[slot as usize] = Some(open);
        self.index.insert(key, slot);
        self.by_host_group
            .entry((host, group))
            .or_default()
            .push(slot);
        self.expiry.push(Reverse((
            ts.saturating_add(self.config.membership_interval_ns),
            slot,
            id,
        )));
        self.open += 1;
        self.stats.opened += 1;
    }

    fn leave(&mut self, key: Key, ts: i64) {
        match self.index.get(&key) {
            Some(&slot) => self.end(slot, ts, EndReason::Leave),
            None => self.stats.unmatched_leaves += 1,
        }
    }

    /// Ends the host's sessions of the group: only the source-specific ones when
    /// `only_ssm`.
    fn end_host_group(
        &mut self,
        host: IpAddr,
        group: IpAddr,
        ts: i64,
        only_ssm: bool,
        why: EndReason,
    ) {
        let Some(list) = self.by_host_group.get(&(host, group)) else {
            if why == EndReason::Leave {
                self.stats.unmatched_leaves += 1;
            }
            return;
        };
        // At most the host's open sessions of this group; `end` edits the list.
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            let Some(&slot) = self
                .by_host_group
                .get(&(host, group))
                .and_then(|l| l.get(i))
            else {
                continue;
            };
            let ssm = matches!(self.slots.get(slot as usize), Some(Some(o)) if o.key.2.is_some());
            if ssm || !only_ssm {
                self.end(slot, ts, why);
            }
        }
    }

    fn end(&mut self, slot: u32, ts: i64, why: EndReason) {
        let Some(o) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        let (host, group, source) = o.key;
        self.index.remove(&o.key);
        self.free.push(slot);
        self.open -= 1;
        if let Some(list) = self.by_host_group.get_mut(&(host, group)) {
            list.retain(|&s| s != slot);
            if list.is_empty() {
                self.by_host_group.remove(&(host, group));
            }
        }
        let (mut bytes, mut packets) = (0, 0);
        if let Some(c) = self.counter_mut(&(group, source)) {
            bytes = c.bytes.saturating_sub(o.bytes_at_join);
            packets = c.packets.saturating_sub(o.packets_at_join);
            if o.first_packet.is_none() {
                c.waiting.retain(|&(_, id)| id != o.id);
            }
            c.refs = c.refs.saturating_sub(1);
        }
        if source.is_some() {
            if self.counter(&(group, source)).is_some_and(|c| c.refs == 0) {
                self.remove_counter(&(group, source));
            }
            if let Some(g) = self.counter_mut(&(group, None)) {
                g.ssm_refs = g.ssm_refs.saturating_sub(1);
            }
        }
        if self
            .counter(&(group, None))
            .is_some_and(|g| g.refs == 0 && g.ssm_refs == 0)
        {
            self.remove_counter(&(group, None));
        }
        // Stale expiry entries are dropped when they outnumber the open sessions.
        if self.expiry.len() > 2 * self.open + 64 {
            let slots = &self.slots;
            self.expiry.retain(
                |&Reverse((_, s, id))| matches!(slots.get(s as usize), Some(Some(o)) if o.id == id),
            );
        }
        let leave = ts.max(o.join_ts);
        let duration_ns = leave - o.join_ts;
        let mean_bps =
            (duration_ns > 0).then(|| bytes as f64 * 8.0 * NS_PER_S as f64 / duration_ns as f64);
        *match why {
            EndReason::Leave => &mut self.stats.ended_leave,
            EndReason::Timeout => &mut self.stats.ended_timeout,
            EndReason::CaptureEnd => &mut self.stats.ended_capture_end,
            EndReason::Replaced => &mut self.stats.ended_replaced,
        } += 1;
        self.done.push(ChannelSession {
            host,
            group,
            source,
            version: o.version,
            join_ts_ns: o.join_ts,
            last_report_ts_ns: o.last_report,
            leave_ts_ns: leave,
            end: why,
            duration_ns,
            reports: o.reports,
            first_packet_ts_ns: o.first_packet,
            zap_ns: o.first_packet.map(|t| t.saturating_sub(o.join_ts).max(0)),
            packets,
            bytes,
            mean_bps,
        });
    }
}
