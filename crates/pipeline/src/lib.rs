//! The one-pass loop of streamscope: capture → wire → flow → inspectors → table sinks.
//!
//! [`run`] reads every capture in order as one timeline, dissects each record
//! ([`streamscope_wire::dissect`]), counts it into a [`RunReport`] and hands the packet
//! to a [`FlowTable`], which gives each flow's inspector the payload it asks for and its
//! sink the ended flows, the closed bins and the rows inspectors find. The loop is
//! generic over the inspector (`S`) and the sink (`K`); progress goes through the small
//! [`Progress`] trait. The binary keeps its command line, progress bar and manifest; its
//! benchmarks, fuzz targets and tests call this crate rather than a loop of their own.
//!
//! Threads: [`Options::threads`] is the run's budget, decided by the caller (the
//! binary's `--threads`). With two or more, the flow table moves to a thread of its own
//! once it outgrows the caches (see [`run`]); every packet reaches it in capture order,
//! payload included, on every path, so the tables are the same whatever the threads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use serde::Serialize;
use streamscope_capture::{
    Anomalies, Capture, Compression, Error, FileFormat, ReadMode, Record, BATCH,
};
use streamscope_flow::{Ahead, FlowSink, FlowStats, FlowTable, Inspector, Keyer};
use streamscope_wire::{DecodeErrorCounts, Packet};

/// Where a run reports how far it got and what went wrong along the way.
pub trait Progress: Sync {
    /// Bytes of input read so far (over all inputs).
    fn set(&self, bytes: u64) {
        let _ = bytes;
    }
    /// A warning for the user (it is also in [`RunReport::warnings`]).
    fn warn(&self, msg: &str) {
        let _ = msg;
    }
}

/// No progress shown, warnings only in the report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}

/// When the flow table moves to a thread of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Handoff {
    /// Once it outgrows the caches, if the budget has a second thread.
    #[default]
    Auto,
    /// Never: everything on the calling thread.
    Never,
    /// From the first packet, whatever the budget (to test that path).
    FromStart,
}

/// How a run uses the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Threads the run may keep busy (at least 1).
    pub threads: usize,
    pub handoff: Handoff,
}

impl Default for Options {
    /// One thread.
    fn default() -> Options {
        Options {
            threads: 1,
            handoff: Handoff::Auto,
        }
    }
}

/// The number of threads this machine can run at once: the binary's default budget.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Why an input cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("stdin (`-`) can be given only once")]
    StdinTwice,
    #[error(transparent)]
    Capture(#[from] Error),
    #[error("{path}: unsupported link type {link_type} ({name}); expected Ethernet, Linux SLL/SLL2, raw IPv4/IPv6 or BSD loopback")]
    LinkType {
        path: PathBuf,
        link_type: u32,
        name: &'static str,
    },
}

/// Opens every input before anything is read, so that an unusable input fails the run
/// before any output is written. `threads` is the budget for reading ahead (see
/// [`streamscope_capture::Capture::open_with_threads`]).
pub fn open_all(
    inputs: &[PathBuf],
    mode: ReadMode,
    threads: usize,
) -> Result<Vec<Capture>, OpenError> {
    if inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(OpenError::StdinTwice);
    }
    let mut captures = Vec::with_capacity(inputs.len());
    for path in inputs {
        let cap = Capture::open_with_threads(path, mode, threads)?;
        check_link_types(path, &cap)?;
        captures.push(cap);
    }
    Ok(captures)
}

fn check_link_types(path: &Path, cap: &Capture) -> Result<(), OpenError> {
    if let FileFormat::Pcap { .. } = cap.format() {
        for lt in cap.link_types().iter().copied() {
            if !streamscope_wire::supported(lt) {
                return Err(OpenError::LinkType {
                    path: path.to_path_buf(),
                    link_type: lt.0,
                    name: lt.name(),
                });
            }
        }
    }
    Ok(())
}

/// What was read from one input.
#[derive(Debug, Clone, Serialize)]
pub struct InputReport {
    pub path: String,
    pub format: &'static str,
    pub compression: &'static str,
    pub size: Option<u64>,
    pub mtime_ns: Option<i64>,
    pub fingerprint: Option<String>,
    pub link_types: Vec<u32>,
    pub packets: u64,
    pub bytes: u64,
    pub captured_bytes: u64,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// The problem that ended reading early (truncated or corrupt file), if any.
    pub error: Option<String>,
}

/// Totals of a whole run.
#[derive(Debug, Default)]
pub struct RunReport {
    pub inputs: Vec<InputReport>,
    pub packets: u64,
    pub bytes: u64,
    pub captured_bytes: u64,
    /// Packets without an IP layer that were not malformed (ARP, LLDP, ...).
    pub non_ip_packets: u64,
    pub decode_errors: DecodeErrorCounts,
    pub flow_stats: FlowStats,
    pub warnings: Vec<String>,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// Oddities the capture readers accepted (`streamscope_capture::Anomalies`), summed
    /// over the inputs, by field name.
    pub capture_anomalies: BTreeMap<&'static str, u64>,
    /// Seconds spent ending the flows still open at the end of the capture (their rows
    /// handed to the sink), part of the read loop's time.
    pub end_flows_s: f64,
}

pub fn format_name(f: FileFormat) -> &'static str {
    match f {
        FileFormat::Pcap {
            nanosecond: false, ..
        } => "pcap",
        FileFormat::Pcap {
            nanosecond: true, ..
        } => "pcap-ns",
        FileFormat::PcapNg => "pcapng",
    }
}

pub fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    }
}

/// Reads every capture in order as one timeline. `healthy` is asked now and then
/// whether the sink can still take rows; when it says no the run stops early.
///
/// Once the flow table outgrows the caches ([`FlowTable::lookahead_pays`]) and the
/// budget has a second thread ([`Options`]), the table moves to a thread of its own
/// ("flows"): this thread reads and dissects the records and works out each packet's
/// flow key, and hands the packets over in order, 1,024 at a time, with their
/// payloads copied alongside where the table's inspectors may read them
/// ([`Inspector::may_read`]).
/// On a million new flows the table's work (memory misses, mostly) and the reading and
/// dissecting are each about half of the loop, and the second CPU was mostly idle. A
/// small table stays on this thread: handing packets over costs more than tracking a
/// few flows (the streaming benchmark, 62 flows, took 1.7 times as long). Every packet
/// reaches the table in capture order, with its payload, whichever way, so the tables
/// are the same.
pub fn run<S, K>(
    captures: Vec<Capture>,
    table: &mut FlowTable<S>,
    sink: &mut K,
    progress: &impl Progress,
    healthy: impl Fn(&K) -> bool + Sync,
    options: Options,
) -> RunReport
where
    S: Inspector + Send,
    K: FlowSink<S> + Send,
{
    let may_hand = match options.handoff {
        Handoff::Auto => options.threads >= 2,
        Handoff::Never => false,
        Handoff::FromStart => true,
    };
    let mut report = RunReport::default();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut tracker = Switching {
            scope,
            mode: Some(Mode::Direct(Direct {
                table: &mut *table,
                sink: &mut *sink,
                healthy: &healthy,
            })),
            worker: None,
            may_hand,
            from_start: options.handoff == Handoff::FromStart,
            stop: &stop,
        };
        read(captures, &mut report, progress, &mut tracker);
        tracker.close();
    });
    let ending = std::time::Instant::now();
    table.finish(sink);
    report.end_flows_s = ending.elapsed().as_secs_f64();
    report.flow_stats = table.stats();
    if report.flow_stats.timestamps_backwards > 0 {
        let msg = format!(
            "{} packets have a timestamp earlier than a packet before them (counted to the flow's current bin)",
            report.flow_stats.timestamps_backwards
        );
        warn(&mut report, progress, msg);
    }
    if report.flow_stats.flows_evicted > 0 {
        let msg = format!(
            "the flow table was full: {} flows were evicted before they ended (raise --max-flows)",
            report.flow_stats.flows_evicted
        );
        warn(&mut report, progress, msg);
    }
    report
}

/// A warning about the whole run: on the terminal and in `run.json`.
fn warn(report: &mut RunReport, progress: &impl Progress, msg: String) {
    progress.warn(&format!("warning: {msg}"));
    report.warnings.push(msg);
}

/// Where the read loop's dissected packets go: straight into the flow table, or to the
/// flow table's thread.
trait Tracker {
    /// Whether records are read [`BATCH`] at a time (see [`FlowTable::lookahead_pays`]).
    fn batched(&mut self) -> bool;
    /// A batch of records and their dissections (same length), counted already.
    fn batch(&mut self, records: &[Record<'_>], packets: &[Packet<'_>]);
    /// One record and its dissection.
    fn one(&mut self, record: &Record<'_>, packet: &Packet<'_>);
    /// Whether the run goes on (asked about every 16K packets).
    fn healthy(&self) -> bool;
}

/// The flow table on the reading thread.
struct Direct<'t, S: Inspector, K, H> {
    table: &'t mut FlowTable<S>,
    sink: &'t mut K,
    healthy: H,
}

impl<S: Inspector, K: FlowSink<S>, H: Fn(&K) -> bool> Tracker for Direct<'_, S, K, H> {
    fn batched(&mut self) -> bool {
        self.table.lookahead_pays()
    }

    #[inline]
    fn batch(&mut self, records: &[Record<'_>], packets: &[Packet<'_>]) {
        // Ask for each packet's flow-index line first, so that the lookups' cache
        // misses overlap instead of coming one by one. (Only once the table outgrows the
        // caches: on a small table the batch costs more in reading than it saves.)
        let mut ahead = [Ahead::default(); BATCH];
        for (a, packet) in ahead.iter_mut().zip(packets) {
            *a = self.table.prefetch(packet);
        }
        for ((rec, packet), a) in records.iter().zip(packets).zip(ahead) {
            self.table
                .process_ahead(rec.ts_ns, rec.orig_len, packet, a, self.sink);
        }
    }

    #[inline]
    fn one(&mut self, rec: &Record<'_>, packet: &Packet<'_>) {
        self.table
            .process(rec.ts_ns, rec.orig_len, packet, self.sink);
    }

    fn healthy(&self) -> bool {
        (self.healthy)(self.sink)
    }
}

/// Packets per hand-over to the flow table's thread.
const HANDOFF: usize = 1024;
/// Payload bytes per hand-over, at most (past it the hand-over goes early).
const HANDOFF_BYTES: usize = 1 << 20;
/// Hand-overs in flight before the reader waits.
const HANDOFF_DEPTH: usize = 4;

/// A packet for the flow table's thread: its record's time and length, its headers, its
/// flow key, and where its payload is in the hand-over's bytes.
#[derive(Clone, Copy)]
struct Handed {
    ts_ns: i64,
    orig_len: u32,
    packet: Packet<'static>,
    ahead: Ahead,
    payload: (u32, u32),
}

/// One hand-over: packets in order, and their payloads one after another (only those an
/// inspector may read, [`Inspector::may_read`]: nobody reads the others).
#[derive(Default)]
struct Batch {
    items: Vec<Handed>,
    bytes: Vec<u8>,
}

impl Batch {
    fn with_capacity(n: usize) -> Batch {
        Batch {
            items: Vec::with_capacity(n),
            bytes: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.items.clear();
        self.bytes.clear();
    }

    /// The packet of `h`, its payload back in place.
    #[inline]
    fn packet<'b>(&'b self, h: &Handed) -> Packet<'b> {
        let (at, len) = (h.payload.0 as usize, h.payload.1 as usize);
        Packet {
            payload: self.bytes.get(at..at + len).unwrap_or_default(),
            ..h.packet
        }
    }
}

/// The flow table's thread: the packets of one hand-over, in order.
fn track<S: Inspector, K: FlowSink<S>>(table: &mut FlowTable<S>, sink: &mut K, batch: &Batch) {
    let items = &batch.items;
    if table.lookahead_pays() {
        for group in items.chunks(BATCH) {
            for h in group {
                table.prefetch_ahead(&h.ahead);
            }
            for h in group {
                table.process_ahead(h.ts_ns, h.orig_len, &batch.packet(h), h.ahead, sink);
            }
        }
    } else {
        for h in items {
            table.process_ahead(h.ts_ns, h.orig_len, &batch.packet(h), h.ahead, sink);
        }
    }
}

/// The reading thread's end of the hand-over.
struct Hand<'s> {
    keyer: Keyer,
    tx: Option<SyncSender<Batch>>,
    spare: Receiver<Batch>,
    batch: Batch,
    /// Whether a packet's payload goes over too: an inspector may read it.
    may_read: fn(&Packet<'_>) -> bool,
    /// Set by the flow table's thread when the sink cannot take more rows.
    stop: &'s AtomicBool,
}

impl Hand<'_> {
    #[inline]
    fn push(&mut self, rec: &Record<'_>, packet: &Packet<'_>) {
        // Packets without an IP layer do nothing in the flow table.
        if packet.ip.is_none() {
            return;
        }
        let payload = if (self.may_read)(packet) {
            let at = self.batch.bytes.len();
            self.batch.bytes.extend_from_slice(packet.payload);
            (at as u32, packet.payload.len() as u32)
        } else {
            (0, 0)
        };
        self.batch.items.push(Handed {
            ts_ns: rec.ts_ns,
            orig_len: rec.orig_len,
            packet: packet.without_payload(),
            ahead: self.keyer.ahead(packet),
            payload,
        });
        if self.batch.items.len() >= HANDOFF || self.batch.bytes.len() >= HANDOFF_BYTES {
            self.send();
        }
    }

    fn send(&mut self) {
        if self.batch.items.is_empty() {
            return;
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Batch::with_capacity(HANDOFF));
        let batch = std::mem::replace(&mut self.batch, next);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok());
        if !sent {
            // The flow table's thread is gone (it panicked: `run` passes that on).
            self.tx = None;
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Hands over the last packets and closes the hand-over.
    fn close(&mut self) {
        self.send();
        self.tx = None;
    }
}

impl Tracker for Hand<'_> {
    fn batched(&mut self) -> bool {
        true
    }

    #[inline]
    fn batch(&mut self, records: &[Record<'_>], packets: &[Packet<'_>]) {
        for (rec, packet) in records.iter().zip(packets) {
            self.push(rec, packet);
        }
    }

    #[inline]
    fn one(&mut self, rec: &Record<'_>, packet: &Packet<'_>) {
        self.push(rec, packet);
    }

    fn healthy(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

/// The flow table on the reading thread ([`Direct`]) until it outgrows the caches, then
/// on a thread of its own fed by a [`Hand`] (see [`run`]).
struct Switching<'scope, 'env, S: Inspector, K, H> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    /// Where packets go now (`None` only while [`Switching::hand_over`] moves the table).
    mode: Option<Mode<'env, S, K, H>>,
    worker: Option<std::thread::ScopedJoinHandle<'scope, ()>>,
    /// Whether there is a second thread for the table.
    may_hand: bool,
    /// Hand the table over at the first packet, not when it outgrows the caches.
    from_start: bool,
    stop: &'env AtomicBool,
}

/// The flow table on the reading thread, or on its own thread behind a hand-over.
enum Mode<'env, S: Inspector, K, H> {
    Direct(Direct<'env, S, K, &'env H>),
    Hand(Hand<'env>),
}

impl<'scope, 'env, S, K, H> Switching<'scope, 'env, S, K, H>
where
    S: Inspector + Send,
    K: FlowSink<S> + Send,
    H: Fn(&K) -> bool + Sync,
{
    /// Starts the flow table's thread and gives it the table and the sink. If the
    /// system refuses the thread, the table stays here.
    fn hand_over(&mut self) {
        let Direct {
            table,
            sink,
            healthy,
        } = match self.mode.take() {
            Some(Mode::Direct(direct)) => direct,
            other => {
                self.mode = other;
                return;
            }
        };
        let keyer = table.keyer();
        let (tx, rx) = sync_channel::<Batch>(HANDOFF_DEPTH);
        let (spare_tx, spare) = sync_channel::<Batch>(HANDOFF_DEPTH + 2);
        // The table and the sink go over once the thread runs, so that they are still
        // here if it cannot be started.
        let (give, take) = sync_channel::<(&'env mut FlowTable<S>, &'env mut K)>(1);
        let stop = self.stop;
        let started = std::thread::Builder::new()
            .name("flows".into())
            .spawn_scoped(self.scope, move || {
                let Ok((table, sink)) = take.recv() else {
                    return;
                };
                for mut batch in rx {
                    track(table, sink, &batch);
                    if !healthy(sink) {
                        stop.store(true, Ordering::Relaxed);
                    }
                    batch.clear();
                    // The reader makes a new one if none comes back.
                    let _ = spare_tx.try_send(batch);
                }
            });
        let kept = match started {
            Ok(worker) => {
                // The thread ends only once it has received (or panicked: joining
                // passes that on), so the table can come back only then.
                self.worker = Some(worker);
                match give.send((table, sink)) {
                    Ok(()) => {
                        self.mode = Some(Mode::Hand(Hand {
                            keyer,
                            tx: Some(tx),
                            spare,
                            batch: Batch::with_capacity(HANDOFF),
                            may_read: S::may_read,
                            stop: self.stop,
                        }));
                        return;
                    }
                    Err(back) => back.0,
                }
            }
            Err(_) => (table, sink),
        };
        self.may_hand = false;
        self.mode = Some(Mode::Direct(Direct {
            table: kept.0,
            sink: kept.1,
            healthy,
        }));
    }

    /// Hands over the last packets and waits for the flow table's thread.
    fn close(&mut self) {
        if let Some(Mode::Hand(hand)) = &mut self.mode {
            hand.close();
        }
        if let Some(worker) = self.worker.take() {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl<S, K, H> Tracker for Switching<'_, '_, S, K, H>
where
    S: Inspector + Send,
    K: FlowSink<S> + Send,
    H: Fn(&K) -> bool + Sync,
{
    fn batched(&mut self) -> bool {
        match &mut self.mode {
            Some(Mode::Direct(direct)) => {
                let batched = direct.batched() || self.from_start;
                if batched && self.may_hand {
                    self.hand_over();
                }
                batched
            }
            _ => true,
        }
    }

    #[inline]
    fn batch(&mut self, records: &[Record<'_>], packets: &[Packet<'_>]) {
        match &mut self.mode {
            Some(Mode::Hand(hand)) => hand.batch(records, packets),
            Some(Mode::Direct(direct)) => direct.batch(records, packets),
            None => {}
        }
    }

    #[inline]
    fn one(&mut self, record: &Record<'_>, packet: &Packet<'_>) {
        match &mut self.mode {
            Some(Mode::Hand(hand)) => hand.one(record, packet),
            Some(Mode::Direct(direct)) => direct.one(record, packet),
            None => {}
        }
    }

    fn healthy(&self) -> bool {
        match &self.mode {
            Some(Mode::Hand(hand)) => hand.healthy(),
            Some(Mode::Direct(direct)) => direct.healthy(),
            None => false,
        }
    }
}

/// The read loop: every record of every capture, dissected, counted and handed to
/// `tracker`.
fn read(
    captures: Vec<Capture>,
    report: &mut RunReport,
    progress: &impl Progress,
    tracker: &mut impl Tracker,
) {
    let mut done_bytes = 0u64;
    for mut cap in captures {
        let info = cap.info().clone();
        let mut input = InputReport {
            path: info.path.display().to_string(),
            format: format_name(cap.format()),
            compression: compression_name(cap.compression()),
            size: info.size,
            mtime_ns: info.mtime_ns,
            fingerprint: info.fingerprint.clone(),
            link_types: Vec::new(),
            packets: 0,
            bytes: 0,
            captured_bytes: 0,
            first_ns: None,
            last_ns: None,
            error: None,
        };
        let mut stopped = false;
        loop {
            let read = if tracker.batched() {
                let batch = match cap.next_batch() {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => batch,
                    Err(e) => {
                        read_error(report, &mut input, progress, e);
                        break;
                    }
                };
                let mut packets = [Packet::default(); BATCH];
                for (packet, rec) in packets.iter_mut().zip(batch.iter()) {
                    *packet = streamscope_wire::dissect(rec.link_type, rec.data, rec.orig_len);
                    count(report, &mut input, rec, packet);
                }
                tracker.batch(&batch, &packets[..batch.len()]);
                batch.len()
            } else {
                let rec = match cap.next_record() {
                    Ok(Some(rec)) => rec,
                    Ok(None) => break,
                    Err(e) => {
                        read_error(report, &mut input, progress, e);
                        break;
                    }
                };
                let packet = streamscope_wire::dissect(rec.link_type, rec.data, rec.orig_len);
                count(report, &mut input, &rec, &packet);
                tracker.one(&rec, &packet);
                1
            };
            // About every 16K packets.
            if input.packets & 0x3fff < read as u64 {
                progress.set(done_bytes + cap.offset());
                if !tracker.healthy() {
                    stopped = true;
                    break;
                }
            }
        }
        input.link_types = cap.link_types().iter().map(|l| l.0).collect();
        add_anomalies(&mut report.capture_anomalies, cap.anomalies());
        done_bytes += cap.offset();
        progress.set(done_bytes);
        report.packets += input.packets;
        report.bytes += input.bytes;
        report.captured_bytes += input.captured_bytes;
        report.first_ns = min_opt(report.first_ns, input.first_ns);
        report.last_ns = max_opt(report.last_ns, input.last_ns);
        report.inputs.push(input);
        if stopped {
            break;
        }
    }
}

/// Counts one record and its dissection into the input's and the run's totals.
#[inline]
fn count(report: &mut RunReport, input: &mut InputReport, rec: &Record<'_>, packet: &Packet<'_>) {
    input.packets += 1;
    input.bytes += u64::from(rec.orig_len);
    input.captured_bytes += rec.data.len() as u64;
    input.first_ns = Some(input.first_ns.map_or(rec.ts_ns, |t| t.min(rec.ts_ns)));
    input.last_ns = Some(input.last_ns.map_or(rec.ts_ns, |t| t.max(rec.ts_ns)));
    match packet.error {
        Some(err) => report.decode_errors.add(err),
        None if packet.ip.is_none() => report.non_ip_packets += 1,
        None => {}
    }
}

/// A read error ends the input: it becomes a warning, and what came before is kept.
#[cold]
fn read_error(report: &mut RunReport, input: &mut InputReport, progress: &impl Progress, e: Error) {
    let msg = e.to_string();
    report.warnings.push(msg.clone());
    progress.warn(&format!("warning: {msg}; everything before it is kept"));
    input.error = Some(msg);
}

fn add_anomalies(sum: &mut BTreeMap<&'static str, u64>, a: &Anomalies) {
    for (name, n) in [
        ("caplen_over_snaplen", a.caplen_over_snaplen),
        ("orig_len_below_caplen", a.orig_len_below_caplen),
        ("lengths_swapped", a.lengths_swapped),
        ("unknown_blocks_skipped", a.unknown_blocks_skipped),
        ("obsolete_packet_blocks", a.obsolete_packet_blocks),
        ("simple_packet_blocks", a.simple_packet_blocks),
        ("bad_options", a.bad_options),
    ] {
        *sum.entry(name).or_default() += n;
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Total size of the inputs, for the progress bar (`None` when one is a stream).
pub fn total_size(captures: &[Capture]) -> Option<u64> {
    captures.iter().map(|c| c.info().size).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufWriter, Write};
    use std::sync::atomic::AtomicUsize;
    use streamscope_flow::{BinRecord, FlowConfig, FlowRecord};

    /// A flow as the tests compare it: id, packets and bytes per direction, first and
    /// last time, end reason.
    type FlowFacts = (i64, [u64; 2], [u64; 2], i64, i64, &'static str);

    /// What a sink saw: every flow and every bin (flow id, start, packets and bytes),
    /// and how many flows reached it on the flow table's own thread.
    #[derive(Default)]
    struct Seen {
        flows: Vec<FlowFacts>,
        bins: Vec<(i64, i64, [u32; 2], [u64; 2])>,
        on_flows_thread: usize,
    }

    impl FlowSink<()> for Seen {
        fn out(&mut self) -> &mut () {
            // A zero-sized box: no allocation.
            Box::leak(Box::new(()))
        }

        fn bin(&mut self, b: &BinRecord) {
            self.bins
                .push((b.flow_id, b.bin_start_ns, b.packets, b.bytes));
        }
        fn flow(&mut self, f: &FlowRecord, _: Option<&()>) {
            if std::thread::current().name() == Some("flows") {
                self.on_flows_thread += 1;
            }
            self.flows.push((
                f.id,
                f.packets,
                f.bytes,
                f.first_ns,
                f.last_ns,
                f.end_reason.name(),
            ));
        }
    }

    /// A capgen capture of `flows` DNS flows over 4 s, with 5 % IPv6 and 5 % VLAN.
    fn capture(dir: &Path, flows: u64) -> std::path::PathBuf {
        let text = include_str!("../../../tools/capgen/scenarios/bench-flows.toml");
        let mut sc = capgen::Scenario::from_toml(text).expect("bench-flows.toml parses");
        sc.duration_s = 4.0;
        sc.small_flows.as_mut().expect("small_flows").count = flows;
        let opts = capgen::Options {
            seed: 3,
            format: capgen::Format::Pcap,
            ts_resolution: None,
        };
        let path = dir.join("flows.pcap");
        let file = std::fs::File::create(&path).expect("create");
        let (_, mut w) = capgen::generate(&sc, &opts, BufWriter::new(file)).expect("generate");
        w.flush().expect("write");
        path
    }

    fn analyze(
        path: &Path,
        may_hand: bool,
        healthy: impl Fn(&Seen) -> bool + Sync,
    ) -> (Seen, RunReport) {
        let captures = vec![Capture::open(path).expect("open")];
        let mut table = FlowTable::new(FlowConfig {
            udp_idle_ns: 1_000_000_000,
            ..FlowConfig::default()
        });
        let mut seen = Seen::default();
        let options = Options {
            threads: if may_hand { 2 } else { 1 },
            handoff: Handoff::Auto,
        };
        let report = run(captures, &mut table, &mut seen, &Silent, healthy, options);
        (seen, report)
    }

    /// An inspector that folds every payload byte it is given, per flow, into a hash:
    /// the flows' hashes tell whether every path gave it the same bytes.
    #[derive(Debug)]
    struct Fold(u64, u64);

    impl Inspector for Fold {
        type Out = ();
        type BinCounters = ();

        fn start(_: &streamscope_flow::FlowStart, _: &mut ()) -> Option<Fold> {
            Some(Fold(0xcbf2_9ce4_8422_2325, 0))
        }

        fn wants(&self) -> streamscope_flow::Wants {
            streamscope_flow::Wants::PACKETS
        }

        fn packet(
            &mut self,
            _: &streamscope_flow::FlowStart,
            s: &streamscope_flow::Segment<'_>,
            _: &mut (),
        ) -> streamscope_flow::Wants {
            for &b in s.payload {
                self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            self.1 += s.payload.len() as u64;
            self.wants()
        }
    }

    #[derive(Default)]
    struct Folds(Vec<(i64, u64, u64)>);

    impl FlowSink<Fold> for Folds {
        fn bin(&mut self, _: &BinRecord) {}

        fn flow(&mut self, f: &FlowRecord, i: Option<&Fold>) {
            let i = i.expect("every flow is inspected");
            self.0.push((f.id, i.0, i.1));
        }

        fn out(&mut self) -> &mut () {
            Box::leak(Box::new(()))
        }
    }

    #[test]
    fn inspectors_get_the_same_payload_on_every_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = capture(dir.path(), 40_000);
        let mut runs = Vec::new();
        for (threads, handoff) in [
            (1, Handoff::Auto),
            (2, Handoff::Auto),
            (2, Handoff::FromStart),
            (1, Handoff::FromStart),
        ] {
            let mut table = FlowTable::<Fold>::new(FlowConfig::default());
            let mut folds = Folds::default();
            let options = Options { threads, handoff };
            let captures = vec![Capture::open(&path).expect("open")];
            let report = run(captures, &mut table, &mut folds, &Silent, |_| true, options);
            assert_eq!(report.flow_stats.inspected_flows, 40_000);
            runs.push(folds.0);
        }
        // Every DNS query and answer has a payload: the hashes are not the empty one.
        assert!(runs[0].iter().all(|f| f.2 > 0));
        for r in &runs[1..] {
            assert!(r == &runs[0], "payloads differ between paths");
        }
    }

    #[test]
    fn the_flow_tables_thread_sees_what_the_reading_thread_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = capture(dir.path(), 80_000);
        let (alone, alone_report) = analyze(&path, false, |_| true);
        let (handed, handed_report) = analyze(&path, true, |_| true);
        // Every flow, every bin, in the same order; the same counts.
        assert_eq!(alone.flows.len(), 80_000);
        assert!(alone.bins.len() >= 80_000);
        assert!(alone.flows == handed.flows, "flows differ");
        assert!(alone.bins == handed.bins, "bins differ");
        assert_eq!(alone_report.packets, handed_report.packets);
        assert_eq!(alone_report.flow_stats, handed_report.flow_stats);
        // The table did move to its thread once it held 32K flows.
        assert_eq!(alone.on_flows_thread, 0);
        assert!(handed.on_flows_thread > 0);
        // With a one-second idle timeout (and sweeps up to three seconds late) the
        // flows of the capture's first half end during it: 39,701 of them, all from
        // the table's thread, while packets were still coming.
        let idle = handed.flows.iter().filter(|f| f.5 == "idle").count();
        assert!(idle > 30_000, "{idle} idle");
        assert_eq!(handed.on_flows_thread, idle);
    }

    #[test]
    fn a_sink_that_fails_on_the_flow_tables_thread_stops_the_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = capture(dir.path(), 80_000);
        let asked = AtomicUsize::new(0);
        // The sink gives out after the table's thread has asked 40 times (each after a
        // hand-over of up to 1,024 packets, once it runs).
        let (_, report) = analyze(&path, true, |_| asked.fetch_add(1, Ordering::Relaxed) < 40);
        let all = 160_000; // a query and an answer per flow
        assert!(
            report.packets < all,
            "read {} of {all} packets",
            report.packets
        );
        assert!(
            report.packets > 32_000,
            "read only {} packets",
            report.packets
        );
    }
}
