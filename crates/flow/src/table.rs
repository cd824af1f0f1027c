//! The bounded flow table.

use std::net::IpAddr;

use std::hash::BuildHasher;

use hashbrown::HashMap;
use streamscope_wire::{Packet, Transport};

use crate::bins::{BinOrderer, BinRecord};
use crate::dispatch::Inspected;
use crate::index::FlowIndex;
use crate::inspect::{Dir, FlowStart, Inspector, Want};
use crate::key::{choose_client, ClientRule, Endpoint, FlowKey, PackedKey, V6Pairs};
use crate::prefault::Prefault;
use crate::rate::{BinRate, Percentiles, RateSummary};
use crate::tcp::{flags, TcpState};
use crate::wheel::{id_tag, Wheel};

mod config;
mod record;

pub use config::{Faults, FlowConfig};
pub use record::{Bitrate, EndReason, FlowRecord, FlowSink, FlowStats};

type FixedHasher = foldhash::fast::FixedState;

pub(crate) const NS_PER_S: i64 = 1_000_000_000;

/// How often (in capture time) idle flows are looked for.
const SWEEP_NS: i64 = NS_PER_S;
/// How long the first fragment's ports are remembered for later fragments.
const FRAGMENT_TTL_NS: i64 = 30 * NS_PER_S;
/// Most datagrams whose fragments are being matched at once.
const MAX_FRAGMENTS: usize = 65_536;

/// The state of one flow, one slab slot each (88 bytes).
///
/// Kept small, because every byte is paid a million times over by a capture of a
/// million flows, and fresh memory is not free (on a virtual machine, 0.5 to 2 ms per
/// MiB to fault in): the counters are 32 bits, with whatever passes 32 bits carried in
/// [`More`]; the current bin's counts are the totals less what they were when the bin
/// started, kept in [`More`] too; TCP state and [`More`] are out of line behind one
/// pointer ([`Ext`]) and exist only for the flows that need them (TCP flows; flows
/// spanning several bins or counting past 4 Gi).
#[derive(Debug)]
struct Flow<S> {
    id: i64,
    key: PackedKey,
    lo_is_client: bool,
    rule: ClientRule,
    first_ns: i64,
    last_ns: i64,
    /// Per direction (index 0 client → server, 1 server → client), the low 32 bits:
    /// the counts are these plus [`Carry`] ([`Flow::packets`], [`Flow::bytes`],
    /// [`Flow::payload`]).
    packets: [u32; 2],
    bytes: [u32; 2],
    payload: [u32; 2],
    /// TCP state and [`More`], for the flows that need them.
    ext: Option<Box<Ext<S>>>,
    /// Start of the current bin. Its counts are the totals less the totals at its start
    /// ([`More::bin_base`], zero in a flow's first bin), so that a flow of one bin, most
    /// flows of a busy network, keeps no counts of its own for it.
    bin_start: i64,
}

/// What a slot keeps out of line: a TCP flow's state (made with the flow), [`More`]
/// (made when a flow first needs it) and the flow's inspector with its byte streams
/// (made when an inspector takes the flow on). One pointer in the slot for all: every slot
/// would pay for a second one, where a TCP flow that needs [`More`] pays a pointer in
/// this box and a UDP flow that needs it an empty TCP state (such flows span several
/// bins or pass 4 Gi: few, and large anyway).
#[derive(Debug)]
struct Ext<S> {
    tcp: Option<TcpState>,
    more: Option<Box<More>>,
    /// The flow's inspector: its slot in [`FlowTable`]'s [`Inspectors`].
    inspected: Option<u32>,
    _inspector: std::marker::PhantomData<fn() -> S>,
}

/// The inspectors of the flows that have one, in one vector of slots reused as flows
/// end, rather than a box each: on a capture of a million inspected flows, a million
/// allocations fewer on the flow table's thread, and a million frees fewer (on another
/// thread, in another arena of the allocator's) when they end.
#[derive(Debug)]
struct Inspectors<S> {
    slots: Vec<Option<Inspected<S>>>,
    /// Slots free for the next inspector.
    free: Vec<u32>,
}

impl<S> Inspectors<S> {
    /// Stores an inspector; its slot.
    fn insert(&mut self, inspected: Inspected<S>) -> u32 {
        match self.free.pop() {
            Some(k) => {
                self.slots[k as usize] = Some(inspected);
                k
            }
            None => {
                self.slots.push(Some(inspected));
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn get(&self, k: Option<u32>) -> Option<&Inspected<S>> {
        self.slots.get(k? as usize)?.as_ref()
    }

    fn get_mut(&mut self, k: Option<u32>) -> Option<&mut Inspected<S>> {
        self.slots.get_mut(k? as usize)?.as_mut()
    }

    /// Takes the inspector out of slot `k`, which becomes free.
    fn remove(&mut self, k: Option<u32>) -> Option<Inspected<S>> {
        let k = k?;
        let taken = self.slots.get_mut(k as usize)?.take();
        if taken.is_some() {
            self.free.push(k);
        }
        taken
    }
}

impl<S> Default for Ext<S> {
    fn default() -> Ext<S> {
        Ext {
            tcp: None,
            more: None,
            inspected: None,
            _inspector: std::marker::PhantomData,
        }
    }
}

/// What only some flows need.
#[derive(Debug, Default)]
struct More {
    /// Down bytes of the bins closed so far (created when the flow leaves its first bin;
    /// a flow given one only for a carry has recorded none, which ends the same way).
    rates: RateSummary,
    carry: Carry,
    /// The flow's totals when its current bin started: packets (`[0]`) and bytes (`[1]`),
    /// each per direction.
    bin_base: [[u64; 2]; 2],
}

/// The parts of a flow's counts past the 32 bits kept in the flow, per direction.
#[derive(Debug, Default)]
struct Carry {
    packets: [u64; 2],
    bytes: [u64; 2],
    payload: [u64; 2],
}

/// Adds `n` to a 32-bit count; whether it wrapped (the caller carries 2^32).
#[inline]
fn add32(low: &mut u32, n: u32) -> bool {
    let (v, wrapped) = low.overflowing_add(n);
    *low = v;
    wrapped
}

/// A 32-bit count and its carry, per direction.
#[inline]
fn wide(low: [u32; 2], carry: Option<[u64; 2]>) -> [u64; 2] {
    let c = carry.unwrap_or_default();
    [u64::from(low[0]) + c[0], u64::from(low[1]) + c[1]]
}

impl<S> Flow<S> {
    /// The flow as inspectors see it; `key` is its key unpacked.
    fn view(&self, key: &FlowKey) -> FlowStart {
        let (client, server) = if self.lo_is_client {
            (key.lo(), key.hi())
        } else {
            (key.hi(), key.lo())
        };
        FlowStart {
            id: self.id,
            ts_ns: self.first_ns,
            ip_version: key.ip_version(),
            protocol: key.protocol(),
            client,
            server,
            has_ports: matches!(key.protocol(), 6 | 17) && (client.port, server.port) != (0, 0),
            client_rule: self.rule,
            vlan: key.vlan(),
        }
    }

    fn tcp(&self) -> Option<&TcpState> {
        self.ext.as_ref().and_then(|e| e.tcp.as_ref())
    }

    fn more(&self) -> Option<&More> {
        self.ext.as_ref().and_then(|e| e.more.as_deref())
    }

    /// [`More`], made if the flow has none yet.
    fn more_mut(&mut self) -> &mut More {
        let ext = self.ext.get_or_insert_with(Box::default);
        ext.more.get_or_insert_with(Box::default)
    }

    fn tcp_closed(&self) -> bool {
        self.tcp().is_some_and(|t| t.closed())
    }

    /// Counts one packet of `len` frame bytes, `payload` of them after the transport
    /// header, in direction `dir` (0 up, 1 down) to the flow's totals.
    #[inline]
    fn count(&mut self, dir: usize, len: u32, payload: u32) {
        let p = add32(&mut self.packets[dir], 1);
        let b = add32(&mut self.bytes[dir], len);
        let l = add32(&mut self.payload[dir], payload);
        if p | b | l {
            self.carry(|c| {
                for (wrapped, high) in [
                    (p, &mut c.packets[dir]),
                    (b, &mut c.bytes[dir]),
                    (l, &mut c.payload[dir]),
                ] {
                    *high += u64::from(wrapped) << 32;
                }
            });
        }
    }

    #[cold]
    #[inline(never)]
    fn carry(&mut self, f: impl FnOnce(&mut Carry)) {
        f(&mut self.more_mut().carry);
    }

    fn packets(&self) -> [u64; 2] {
        wide(self.packets, self.more().map(|m| m.carry.packets))
    }

    fn bytes(&self) -> [u64; 2] {
        wide(self.bytes, self.more().map(|m| m.carry.bytes))
    }

    fn payload(&self) -> [u64; 2] {
        wide(self.payload, self.more().map(|m| m.carry.payload))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    protocol: u8,
}

#[derive(Clone, Copy, Debug)]
struct FragPorts {
    src_port: u16,
    dst_port: u16,
    ts_ns: i64,
}

/// Slab slots in use when its pages start being populated ahead ([`Prefault`]): below
/// this a capture has too few flows for the faults to matter.
const PREFAULT_FROM_SLOTS: usize = 1 << 15;
/// Flows held when lookups start being prefetched ([`FlowTable::lookahead_pays`]): a
/// 1 MiB index and a 5 MiB slab, past a core's level-2 cache. Below it reading packets
/// in batches costs more than the misses it hides (measured on the streaming benchmark,
/// 62 flows: +17 % with batches of 4, +34 % with 16).
const LOOKAHEAD_FROM_FLOWS: usize = 1 << 15;
/// The populator is told the slab's length every this many new slots.
const PREFAULT_TELL_SLOTS: usize = 1 << 12;

/// Most slab slots reserved when a table is made (see [`FlowTable::new`]).
const MAX_SLAB_RESERVE: usize = 1 << 22;

/// Bidirectional flows keyed by 5-tuple and VLAN tags, bounded in size, expired by
/// capture time.
///
/// Flows live in a slab (`Vec`) whose free slots are reused; the index (`FlowIndex`)
/// has 8-byte entries, each a slab slot and 32 bits of its key's hash. The keys stay in
/// the slab: a lookup compares the stored hash bits first and reads the flow (which it
/// needs anyway) only on a match, and growing the index moves 8 bytes per flow without
/// rehashing any key. A million flows need a 16 MiB index, which stays in the
/// last-level cache, instead of 96 MiB with the keys inside.
pub struct FlowTable<S: Inspector = ()> {
    cfg: FlowConfig,
    keyer: Keyer,
    index: FlowIndex,
    /// Populates the slab's pages ahead of its use. Declared before `slab` so that it is
    /// dropped (its thread joined) before the slab's memory is freed.
    prefault: Prefault,
    slab: Vec<Option<Flow<S>>>,
    free: Vec<u32>,
    inspectors: Inspectors<S>,
    fragments: HashMap<FragKey, FragPorts, FixedHasher>,
    bins: BinOrderer<S::BinCounters>,
    wheel: Wheel,
    next_id: i64,
    clock: i64,
    next_sweep: i64,
    stats: FlowStats,
    ended: Vec<Flow<S>>,
    /// Reused list of slots found idle by a sweep.
    free_due: Vec<u32>,
    /// A freed slot has been given to a new flow: slot order is no longer id order.
    slots_reused: bool,
    /// Bytes per bin to bit/s, for the bitrate percentiles.
    rate: BinRate,
    /// The address pairs of the IPv6 flows' keys.
    v6: V6Pairs,
}

impl<S: Inspector> FlowTable<S> {
    pub fn new(mut cfg: FlowConfig) -> FlowTable<S> {
        // Slots are 32-bit (and the index stores them plus one).
        cfg.max_flows = cfg.max_flows.min(u32::MAX as usize - 1);
        // A flow ends at most two sweeps after its deadline (see `Wheel`).
        let lateness = cfg.max_timeout() + 3 * SWEEP_NS + cfg.bin_ns;
        let wheel = Wheel::new(cfg.max_timeout());
        let bins = BinOrderer::new(lateness, cfg.max_buffered_bins);
        // The slab's whole bound is reserved up front (address space only: pages are
        // touched as slots are used), so that growing to a million flows never copies
        // the slab; if the reservation is refused it grows as usual.
        let mut slab = Vec::new();
        let _ = slab.try_reserve_exact(cfg.max_flows.min(MAX_SLAB_RESERVE));
        // The inspectors' slots likewise (one per inspected flow at most): growing a
        // vector of a million by doubling copied it (and faulted its pages) each time.
        let mut slots = Vec::new();
        let _ = slots.try_reserve_exact(cfg.max_flows.min(MAX_SLAB_RESERVE));
        let rate = BinRate::new(cfg.bin_ns);
        FlowTable {
            keyer: Keyer::new(),
            index: FlowIndex::with_capacity(cfg.max_flows.min(1 << 16)),
            prefault: Prefault::none(),
            slab,
            free: Vec::new(),
            inspectors: Inspectors {
                slots,
                free: Vec::new(),
            },
            fragments: HashMap::with_hasher(FixedHasher::with_seed(0)),
            bins,
            wheel,
            cfg,
            next_id: 0,
            clock: i64::MIN,
            next_sweep: i64::MIN,
            stats: FlowStats::default(),
            ended: Vec::new(),
            free_due: Vec::new(),
            slots_reused: false,
            rate,
            v6: V6Pairs::default(),
        }
    }

    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    pub fn stats(&self) -> FlowStats {
        let mut s = self.stats.clone();
        s.active_flows = self.index.len() as u64;
        s.bins_out_of_order = self.bins.out_of_order();
        s
    }

    /// Before a slot is pushed: keeps the slab's page populator ([`Prefault`]) a few
    /// MiB ahead once the slab is large enough to be worth it, and stops it before the
    /// push could move the slab.
    #[inline]
    fn grow_slab(&mut self) {
        let len = self.slab.len();
        if len == self.slab.capacity() {
            self.prefault.stop();
        } else if len % PREFAULT_TELL_SLOTS == 0 {
            if len == PREFAULT_FROM_SLOTS {
                self.prefault = Prefault::start(&self.slab, self.cfg.threads);
            }
            self.prefault
                .used(len * std::mem::size_of::<Option<Flow<S>>>());
        }
    }

    /// The index hash of `key`.
    #[inline]
    fn hash(&self, key: &FlowKey) -> u32 {
        self.keyer.hash(key)
    }

    /// The slot of the flow with `key`.
    #[inline]
    fn find(&self, hash: u32, key: &FlowKey) -> Option<u32> {
        let (slab, v6) = (&self.slab, &self.v6);
        let at = |slot: u32| slab.get(slot as usize).and_then(Option::as_ref);
        match PackedKey::of_v4(key) {
            // Packed once for the whole probe, then compared as integers.
            Some(packed) => self
                .index
                .find(hash, |slot| at(slot).is_some_and(|f| f.key == packed)),
            None => self.index.find(hash, |slot| {
                at(slot).is_some_and(|f| f.key.matches(key, v6))
            }),
        }
    }

    /// Whether the table has outgrown the caches, so that [`FlowTable::prefetch`] ahead
    /// of a lookup pays for itself.
    #[inline]
    pub fn lookahead_pays(&self) -> bool {
        self.index.len() >= LOOKAHEAD_FROM_FLOWS
    }

    /// Works out `packet`'s flow key and asks the CPU to load the part of the index where
    /// the lookup will look; pass the result to [`FlowTable::process_ahead`]. A caller
    /// holding several packets calls it for all of them first: on a table larger than
    /// the caches each lookup is a miss to memory, and this lets them overlap. Non-first
    /// fragments, whose ports come from their first fragment, get no key ahead.
    #[inline]
    pub fn prefetch(&self, packet: &Packet<'_>) -> Ahead {
        let ahead = self.keyer.ahead(packet);
        self.prefetch_ahead(&ahead);
        ahead
    }

    /// Asks the CPU to load the part of the index where the lookup of a key worked out
    /// by a [`Keyer`] (on another thread, say) will look.
    #[inline]
    pub fn prefetch_ahead(&self, ahead: &Ahead) {
        if let Some((_, _, hash)) = ahead.0 {
            self.index.prefetch(hash);
        }
    }

    /// What works out packets' flow keys for this table, on any thread.
    pub fn keyer(&self) -> Keyer {
        self.keyer
    }

    /// Takes the flow in `slot` out of the table.
    fn take(&mut self, slot: u32) -> Option<Flow<S>> {
        let flow = self.slab.get_mut(slot as usize)?.take()?;
        let hash = self.hash(&flow.key.unpack(&self.v6));
        self.index.remove(hash, slot);
        self.free.push(slot);
        Some(flow)
    }

    /// Accounts one packet. Packets without an IP layer are ignored (the caller counts
    /// them). Returns the flow id the packet was counted to.
    #[inline]
    pub fn process(
        &mut self,
        ts_ns: i64,
        orig_len: u32,
        packet: &Packet<'_>,
        sink: &mut impl FlowSink<S>,
    ) -> Option<i64> {
        self.process_ahead(ts_ns, orig_len, packet, Ahead(None), sink)
    }

    /// [`FlowTable::process`] with the key [`FlowTable::prefetch`] worked out for this
    /// packet (it must be the same packet).
    pub fn process_ahead(
        &mut self,
        ts_ns: i64,
        orig_len: u32,
        packet: &Packet<'_>,
        ahead: Ahead,
        sink: &mut impl FlowSink<S>,
    ) -> Option<i64> {
        let ip = packet.ip?;
        if ts_ns < self.clock {
            self.stats.timestamps_backwards += 1;
        } else {
            self.clock = ts_ns;
        }
        if self.clock >= self.next_sweep {
            self.sweep(sink);
        }
        self.stats.packets += 1;

        let (src_port, dst_port, has_ports, tcp) = ports(packet.transport);
        let (src_port, dst_port, has_ports) = match ip.fragment {
            Some(frag) if frag.offset == 0 && has_ports => {
                self.remember_fragment(&ip, frag.id, src_port, dst_port, ts_ns);
                (src_port, dst_port, true)
            }
            Some(frag) if frag.offset > 0 => {
                let key = FragKey {
                    src: ip.src,
                    dst: ip.dst,
                    id: frag.id,
                    protocol: ip.protocol,
                };
                match self.fragments.get(&key) {
                    Some(p) if !self.cfg.faults.no_fragment_matching => {
                        self.stats.fragments_matched += 1;
                        (p.src_port, p.dst_port, true)
                    }
                    _ => {
                        self.stats.fragments_unmatched += 1;
                        (0, 0, false)
                    }
                }
            }
            _ => (src_port, dst_port, has_ports),
        };

        let (key, src_is_lo, hash) = match ahead.0 {
            Some(known) => known,
            None => self.keyer.key_of(packet, &ip, src_port, dst_port),
        };

        // The common case: a packet of a flow that exists, found with one lookup.
        let syn_only = tcp.is_some_and(|t| t.flags & (flags::SYN | flags::ACK) == flags::SYN);
        if let Some(slot) = self.find(hash, &key) {
            let reused = syn_only
                && !self.cfg.faults.no_syn_split
                && self.slab[slot as usize]
                    .as_ref()
                    .and_then(Flow::tcp)
                    .is_some_and(|t| t.closed() || t.any_fin());
            if !reused {
                return Some(self.account(slot, src_is_lo, ts_ns, orig_len, packet, sink));
            }
            // A new SYN on a connection that has closed starts a new flow (port reuse).
            if let Some(old) = self.take(slot) {
                self.stats.tcp_port_reuse += 1;
                self.end_flow(old, None, sink);
            }
        }

        if self.index.len() >= self.cfg.max_flows {
            self.make_room(sink);
        }
        let (src_is_client, rule) = match tcp {
            Some(_) if syn_only => (true, ClientRule::Syn),
            Some(t) if t.flags & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK => {
                (false, ClientRule::Syn)
            }
            _ => {
                let (src, dst) = endpoints(&ip, src_port, dst_port);
                choose_client(src, dst, has_ports)
            }
        };
        let id = self.next_id;
        let flow = Flow {
            id,
            key: key.pack(&mut self.v6),
            lo_is_client: src_is_client == src_is_lo,
            rule,
            first_ns: ts_ns,
            last_ns: ts_ns,
            packets: [0; 2],
            bytes: [0; 2],
            payload: [0; 2],
            ext: tcp.map(|_| {
                Box::new(Ext {
                    tcp: Some(TcpState::default()),
                    ..Ext::default()
                })
            }),
            bin_start: ts_ns.div_euclid(self.cfg.bin_ns) * self.cfg.bin_ns,
        };
        let mut flow = flow;
        self.start_inspector(&mut flow, &key, sink);
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots_reused = true;
                self.slab[slot as usize] = Some(flow);
                slot
            }
            None => {
                self.grow_slab();
                self.slab.push(Some(flow));
                (self.slab.len() - 1) as u32
            }
        };
        self.index.insert(hash, slot);
        self.next_id += 1;
        self.stats.flows_created += 1;
        self.stats.peak_active_flows = self.stats.peak_active_flows.max(self.index.len() as u64);
        let deadline = ts_ns.saturating_add(self.cfg.timeout(key.protocol(), false));
        self.wheel.file(slot, id, deadline);
        Some(self.account(slot, src_is_lo, ts_ns, orig_len, packet, sink))
    }

    /// Counts a packet to the flow in `slot`.
    fn account(
        &mut self,
        slot: u32,
        src_is_lo: bool,
        ts_ns: i64,
        orig_len: u32,
        packet: &Packet<'_>,
        sink: &mut impl FlowSink<S>,
    ) -> i64 {
        let tcp = match packet.transport {
            Transport::Tcp(t) => Some(t),
            _ => None,
        };
        let Some(Some(flow)) = self.slab.get_mut(slot as usize) else {
            return -1;
        };
        let dir = usize::from(src_is_lo != flow.lo_is_client);

        flow.first_ns = flow.first_ns.min(ts_ns);
        flow.last_ns = flow.last_ns.max(ts_ns);
        let bin_ns = self.cfg.bin_ns;
        if ts_ns - flow.bin_start >= bin_ns {
            // The packet starts a new bin: the current one closes without it.
            let bin_start = ts_ns.div_euclid(bin_ns) * bin_ns;
            let inspected = flow.ext.as_ref().and_then(|e| e.inspected);
            let (rec, base) = close_bin(flow, self.inspectors.get_mut(inspected));
            self.bins.push(rec);
            self.stats.bins_emitted += 1;
            let skipped = ((bin_start - flow.bin_start) / bin_ns - 1) as u64;
            flow.bin_start = bin_start;
            let more = flow.more_mut();
            more.rates.record(rec.bytes[1]);
            more.rates.record_zeros(skipped);
            more.bin_base = base;
        }
        flow.count(dir, orig_len, packet.payload_len);
        let state = flow.ext.as_mut().and_then(|e| e.tcp.as_mut());
        if let (Some(t), Some(state)) = (tcp, state) {
            let was_closed = state.closed();
            state.on_segment(dir, ts_ns, t.seq, t.ack, t.flags, packet.payload_len);
            if !was_closed && state.closed() {
                // Its idle deadline just got shorter: file it again.
                let deadline = flow.last_ns.saturating_add(self.cfg.tcp_closed_ns);
                self.wheel.file(slot, flow.id, deadline);
            }
        }

        let id = flow.id;
        let d = Dir::from_index(dir);
        let inspected = flow.ext.as_ref().and_then(|e| e.inspected);
        let wanted = (self.inspectors.get(inspected)).is_some_and(|i| i.wants(d) != Want::Nothing);
        if wanted {
            let view = flow.view(&flow.key.unpack(&self.v6));
            if let Some(i) = self.inspectors.get_mut(inspected) {
                let limits = (self.cfg.stream_max_bytes, self.cfg.stream_max_segments);
                i.packet(&view, d, ts_ns, packet, limits, sink.out());
            }
        }
        id
    }

    /// A flow starts: an inspector for it, if one wants it.
    #[inline]
    fn start_inspector(&mut self, flow: &mut Flow<S>, key: &FlowKey, sink: &mut impl FlowSink<S>) {
        if let Some(inspector) = S::start(&flow.view(key), sink.out()) {
            self.stats.inspected_flows += 1;
            let wants = inspector.wants();
            let k = self.inspectors.insert(Inspected::new(inspector, wants));
            let ext = flow.ext.get_or_insert_with(Box::default);
            ext.inspected = Some(k);
        }
    }

    fn remember_fragment(
        &mut self,
        ip: &streamscope_wire::Ip,
        id: u32,
        src_port: u16,
        dst_port: u16,
        ts_ns: i64,
    ) {
        if self.fragments.len() >= MAX_FRAGMENTS {
            let horizon = self.clock - FRAGMENT_TTL_NS;
            self.fragments.retain(|_, p| p.ts_ns > horizon);
            if self.fragments.len() >= MAX_FRAGMENTS {
                self.fragments.clear();
            }
        }
        self.fragments.insert(
            FragKey {
                src: ip.src,
                dst: ip.dst,
                id,
                protocol: ip.protocol,
            },
            FragPorts {
                src_port,
                dst_port,
                ts_ns,
            },
        );
    }

    /// Ends idle flows and releases the bin rows that can no longer be joined by others.
    fn sweep(&mut self, sink: &mut impl FlowSink<S>) {
        self.next_sweep = self.clock.saturating_add(SWEEP_NS);
        let clock = self.clock;
        let mut due = std::mem::take(&mut self.free_due);
        {
            let (slab, cfg) = (&self.slab, &self.cfg);
            self.wheel.expire(clock, |slot, id| {
                let flow = match slab.get(slot as usize) {
                    Some(Some(f)) if id_tag(f.id) == id => f,
                    // The flow already ended (its slot may hold a newer flow, which
                    // has an entry of its own).
                    _ => return None,
                };
                let deadline = flow
                    .last_ns
                    .saturating_add(cfg.timeout(flow.key.protocol(), flow.tcp_closed()));
                if deadline <= clock {
                    due.push(slot);
                    None
                } else {
                    Some(deadline)
                }
            });
        }
        for &slot in &due {
            if let Some(f) = self.take(slot) {
                self.ended.push(f);
            }
        }
        due.clear();
        self.free_due = due;
        self.emit_ended(EndReason::Idle, sink);
        if !self.fragments.is_empty() {
            let horizon = clock - FRAGMENT_TTL_NS;
            self.fragments.retain(|_, p| p.ts_ns > horizon);
        }
        self.bins.release(clock, |b| sink.bin(b));
    }

    /// The table is full: sweep, then evict the longest-idle sixteenth.
    fn make_room(&mut self, sink: &mut impl FlowSink<S>) {
        self.sweep(sink);
        if self.index.len() < self.cfg.max_flows {
            return;
        }
        let mut idle: Vec<(i64, i64, u32)> = self
            .slab
            .iter()
            .enumerate()
            .filter_map(|(slot, f)| f.as_ref().map(|f| (f.last_ns, f.id, slot as u32)))
            .collect();
        let n = (self.cfg.max_flows / 16).max(1).min(idle.len());
        idle.select_nth_unstable(n - 1);
        for &(_, _, slot) in &idle[..n] {
            if let Some(f) = self.take(slot) {
                self.ended.push(f);
            }
        }
        self.stats.flows_evicted += self.ended.len() as u64;
        self.emit_ended(EndReason::Evicted, sink);
    }

    fn emit_ended(&mut self, reason: EndReason, sink: &mut impl FlowSink<S>) {
        if self.ended.is_empty() {
            return;
        }
        let mut ended = std::mem::take(&mut self.ended);
        ended.sort_unstable_by_key(|f| f.id);
        for flow in ended.drain(..) {
            self.end_flow(flow, Some(reason), sink);
        }
        self.ended = ended;
    }

    /// Finishes a flow: closes its last bin and hands its record to the sink. A closed
    /// TCP connection ends by `fin`/`rst` whatever the occasion; `None` means "it closed".
    fn end_flow(
        &mut self,
        mut flow: Flow<S>,
        reason: Option<EndReason>,
        sink: &mut impl FlowSink<S>,
    ) {
        let end_reason = match flow.tcp() {
            Some(t) if t.rst => EndReason::Rst,
            Some(t) if t.any_fin() && reason != Some(EndReason::Evicted) => EndReason::Fin,
            _ => reason.unwrap_or(EndReason::Idle),
        };
        let key = flow.key.unpack(&self.v6);
        let mut inspected =
            (self.inspectors).remove(flow.ext.as_mut().and_then(|e| e.inspected.take()));
        {
            let view = flow.view(&key);
            if let Some(i) = inspected.as_mut() {
                // Before its last bin closes, so that what it finds now counts in that bin.
                let ended_ns = self.clock.max(flow.last_ns);
                i.end(
                    &view,
                    end_reason,
                    flow.last_ns,
                    ended_ns,
                    sink.out(),
                    &mut self.stats,
                );
            }
        }
        let (rec, _) = close_bin(&mut flow, inspected.as_mut());
        self.bins.push(rec);
        self.stats.bins_emitted += 1;
        self.stats.flows_ended += 1;

        flow.key.release(&mut self.v6);
        let tcp = flow.tcp().map(TcpState::summary);
        let (client, server) = if flow.lo_is_client {
            (key.lo(), key.hi())
        } else {
            (key.hi(), key.lo())
        };
        // A flow that never left its first bin needs no distribution.
        let more = flow.ext.as_mut().and_then(|e| e.more.as_deref_mut());
        let (percentiles, bins) = match more.map(|m| &mut m.rates) {
            Some(rates) => {
                rates.record(rec.bytes[1]);
                (rates.percentiles(), rates.bins())
            }
            None => {
                let v = rec.bytes[1];
                (
                    Some(Percentiles {
                        p50: v,
                        p95: v,
                        max: v,
                    }),
                    1,
                )
            }
        };
        let rate = self.rate;
        let bitrate_down = percentiles.map(|p| {
            // Mostly one value (a flow of one bin): converted once.
            let max_bps = rate.bps(p.max);
            let p95_bps = if p.p95 == p.max {
                max_bps
            } else {
                rate.bps(p.p95)
            };
            let p50_bps = if p.p50 == p.p95 {
                p95_bps
            } else {
                rate.bps(p.p50)
            };
            Bitrate {
                p50_bps,
                p95_bps,
                max_bps,
            }
        });
        let record = FlowRecord {
            id: flow.id,
            first_ns: flow.first_ns,
            last_ns: flow.last_ns,
            ip_version: key.ip_version(),
            protocol: key.protocol(),
            client,
            server,
            has_ports: matches!(key.protocol(), 6 | 17) && (client.port, server.port) != (0, 0),
            vlan: key.vlan(),
            client_rule: flow.rule,
            packets: flow.packets(),
            bytes: flow.bytes(),
            payload_bytes: flow.payload(),
            tcp,
            end_reason,
            bins,
            bitrate_down,
        };
        let inspector = inspected.as_ref().map(|i| i.inspector());
        sink.flow(&record, inspector);
    }

    /// End of the capture: every flow still open ends (`capture_end`, or `fin`/`rst`
    /// if its connection closed) and every bin row is released.
    pub fn finish(&mut self, sink: &mut impl FlowSink<S>) {
        // One flow at a time, in id order, so that ending a million flows needs no
        // second copy of them. Bin rows are released as the flows end, not all at the
        // end, so that the bins table is written alongside the flows table: once every
        // flow still open started in bin B or later, no row of an earlier bin can come.
        let bin_ns = self.cfg.bin_ns.max(1);
        if !self.slots_reused && self.stats.timestamps_backwards == 0 {
            self.finish_in_slot_order(bin_ns, sink);
            return;
        }
        let mut open: Vec<(i64, u32, i64)> = Vec::with_capacity(self.index.len());
        open.extend(self.slab.iter().enumerate().filter_map(|(slot, f)| {
            let f = f.as_ref()?;
            Some((f.id, slot as u32, f.first_ns))
        }));
        open.sort_unstable();
        // Each entry's third field becomes the earliest first packet of the flows from
        // it on: ids follow first packets, so this mostly grows; the minimum keeps it
        // right when timestamps went backwards.
        for i in (1..open.len()).rev() {
            open[i - 1].2 = open[i - 1].2.min(open[i].2);
        }
        // Bins before this one have been released.
        let mut released = i64::MIN;
        for i in 0..open.len() {
            // The whole index goes below: no need to remove keys one by one.
            let slot = open[i].1 as usize;
            if let Some(flow) = self.slab.get_mut(slot).and_then(Option::take) {
                self.end_flow(flow, Some(EndReason::CaptureEnd), sink);
            }
            if let Some(&(_, _, later)) = open.get(i + 1) {
                self.release_bins_before(later, &mut released, bin_ns, sink);
            }
        }
        self.clear(sink);
    }

    /// At the end of the input, once no open flow started before `first_ns`: releases
    /// the bins before `first_ns`'s bin, which are complete. `released` is the bin
    /// released up to so far (a division only when a bin boundary is passed, not per
    /// flow).
    #[inline]
    fn release_bins_before(
        &mut self,
        first_ns: i64,
        released: &mut i64,
        bin_ns: i64,
        sink: &mut impl FlowSink<S>,
    ) {
        if first_ns >= released.saturating_add(bin_ns) {
            *released = first_ns.div_euclid(bin_ns).saturating_mul(bin_ns);
            self.bins.release_before(*released, |b| sink.bin(b));
        }
    }

    /// [`FlowTable::finish`] when no slot was ever reused and time never went backwards:
    /// the slab is then in id order, and so are the flows' first packets, so the flows
    /// end in slot order with no list to sort (on a million flows, one pass over the slab
    /// fewer), and the bins before a flow's first bin are complete once it is reached.
    /// The rows and their order are the same as [`FlowTable::finish`]'s general path.
    fn finish_in_slot_order(&mut self, bin_ns: i64, sink: &mut impl FlowSink<S>) {
        let mut released = i64::MIN;
        // Drained, so that the slab is left empty by this one pass (clearing a slab of
        // taken slots would read all of it again); its memory stays with the table.
        let mut slab = std::mem::take(&mut self.slab);
        for flow in slab.drain(..).flatten() {
            self.release_bins_before(flow.first_ns, &mut released, bin_ns, sink);
            self.end_flow(flow, Some(EndReason::CaptureEnd), sink);
        }
        self.slab = slab;
        self.clear(sink);
    }

    /// After the last flow has ended: empties the table and releases the last bins.
    fn clear(&mut self, sink: &mut impl FlowSink<S>) {
        self.prefault.stop();
        self.index.clear();
        self.slab.clear();
        self.free.clear();
        self.v6.clear();
        self.slots_reused = false;
        self.bins.release_all(|b| sink.bin(b));
    }
}

/// A packet's flow key, whether its source is the key's low side, and the key's index
/// hash, worked out by [`FlowTable::prefetch`] or a [`Keyer`] (nothing for packets
/// without a key of their own: not IP, or a non-first fragment).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ahead(Option<(FlowKey, bool, u32)>);

/// Works out packets' flow keys and their index hashes, as the table that made it
/// ([`FlowTable::keyer`]) would, without the table: a thread that dissects packets can
/// hand them to the table's thread with their keys ready.
#[derive(Clone, Copy, Debug)]
pub struct Keyer {
    hasher: FixedHasher,
}

impl Keyer {
    fn new() -> Keyer {
        Keyer {
            hasher: FixedHasher::with_seed(0),
        }
    }

    /// The key of `packet` for [`FlowTable::process_ahead`].
    #[inline]
    pub fn ahead(&self, packet: &Packet<'_>) -> Ahead {
        let Some(ip) = packet.ip else {
            return Ahead(None);
        };
        if ip.fragment.is_some_and(|f| f.offset > 0) {
            return Ahead(None);
        }
        let (src_port, dst_port, _, _) = ports(packet.transport);
        Ahead(Some(self.key_of(packet, &ip, src_port, dst_port)))
    }

    /// The flow key of `packet` with these ports, whether its source is the key's low
    /// side, and the key's index hash.
    #[inline]
    fn key_of(
        &self,
        packet: &Packet<'_>,
        ip: &streamscope_wire::Ip,
        src_port: u16,
        dst_port: u16,
    ) -> (FlowKey, bool, u32) {
        let (src, dst) = endpoints(ip, src_port, dst_port);
        let (key, src_is_lo) = FlowKey::new(src, dst, ip.protocol, vlan_tags(packet));
        (key, src_is_lo, self.hash(&key))
    }

    #[inline]
    fn hash(&self, key: &FlowKey) -> u32 {
        let full = self.hasher.hash_one(key);
        (full ^ (full >> 32)) as u32
    }
}

/// Source and destination ports of a transport header, whether it has ports, and the
/// TCP header.
#[inline]
fn ports(t: Transport) -> (u16, u16, bool, Option<streamscope_wire::Tcp>) {
    match t {
        Transport::Tcp(t) => (t.src_port, t.dst_port, true, Some(t)),
        Transport::Udp { src_port, dst_port } => (src_port, dst_port, true, None),
        _ => (0, 0, false, None),
    }
}

#[inline]
fn endpoints(ip: &streamscope_wire::Ip, src_port: u16, dst_port: u16) -> (Endpoint, Endpoint) {
    let src = Endpoint {
        addr: ip.src,
        port: src_port,
    };
    let dst = Endpoint {
        addr: ip.dst,
        port: dst_port,
    };
    (src, dst)
}

/// The packet's VLAN ids, outer first.
#[inline]
fn vlan_tags(packet: &Packet<'_>) -> [Option<u16>; 2] {
    [
        (packet.vlan_count > 0).then_some(packet.vlan[0]),
        (packet.vlan_count > 1).then_some(packet.vlan[1]),
    ]
}

/// The row of a flow's current bin: its counts since the bin started. Also the flow's
/// totals (packets, bytes), the next bin's base when the flow goes on.
/// `inspected`: the flow's inspector, asked for its counters.
fn close_bin<S: Inspector>(
    flow: &mut Flow<S>,
    inspected: Option<&mut Inspected<S>>,
) -> (BinRecord<S::BinCounters>, [[u64; 2]; 2]) {
    let [packets, bytes] = flow.more().map(|m| m.bin_base).unwrap_or_default();
    let totals = [flow.packets(), flow.bytes()];
    let [total_packets, total_bytes] = totals;
    let counters = match inspected {
        Some(i) => i.inspector_mut().close_bin(),
        None => S::BinCounters::default(),
    };
    let rec = BinRecord {
        flow_id: flow.id,
        bin_start_ns: flow.bin_start,
        packets: [0, 1].map(|d| u32::try_from(total_packets[d] - packets[d]).unwrap_or(u32::MAX)),
        bytes: [0, 1].map(|d| total_bytes[d] - bytes[d]),
        counters,
    };
    (rec, totals)
}

#[cfg(test)]
mod tests;
