//! The one-pass read loop shared by `analyze` and `inspect`: capture → wire → flow.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::anyhow;
use serde::Serialize;
use streamscope_capture::{Anomalies, Capture, Compression, Error, FileFormat, Record, BATCH};
use streamscope_flow::{Ahead, FlowConfig, FlowSink, FlowStats, FlowTable};
use streamscope_wire::{DecodeErrorCounts, Packet};

use crate::args::{ReadMode, ReadOpts};
use crate::progress::Progress;
use crate::Failure;

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

pub fn flow_config(opts: &ReadOpts, bin_ns: i64) -> FlowConfig {
    FlowConfig {
        bin_ns,
        max_flows: opts.max_flows.max(1),
        tcp_idle_ns: opts.tcp_timeout,
        tcp_closed_ns: opts.tcp_closed_timeout,
        udp_idle_ns: opts.udp_timeout,
        other_idle_ns: opts.other_timeout,
        ..FlowConfig::default()
    }
}

/// Opens every input before anything is read, so that an unusable input fails the run
/// (exit code 2) before any output is written.
pub fn open_all(opts: &ReadOpts) -> Result<Vec<Capture>, Failure> {
    if opts.inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(Failure::Input(anyhow!(
            "stdin (`-`) can be given only once"
        )));
    }
    let mut captures = Vec::with_capacity(opts.inputs.len());
    for path in &opts.inputs {
        let cap = match opts.read_mode {
            ReadMode::Auto => Capture::open(path),
            ReadMode::Mmap => Capture::open_with(path, streamscope_capture::ReadMode::Mmap),
            ReadMode::Read => Capture::open_with(path, streamscope_capture::ReadMode::Read),
        }
        .map_err(|e| Failure::Input(e.into()))?;
        check_link_types(path, &cap)?;
        captures.push(cap);
    }
    Ok(captures)
}

fn check_link_types(path: &Path, cap: &Capture) -> Result<(), Failure> {
    if let FileFormat::Pcap { .. } = cap.format() {
        for lt in cap.link_types().iter().copied() {
            if !streamscope_wire::supported(lt) {
                return Err(Failure::Input(anyhow!(
                    "{}: unsupported link type {} ({}); expected Ethernet, Linux SLL/SLL2, raw IPv4/IPv6 or BSD loopback",
                    path.display(),
                    lt.0,
                    lt.name()
                )));
            }
        }
    }
    Ok(())
}

/// Reads every capture in order as one timeline. `healthy` is asked now and then
/// whether the sink can still take rows; when it says no the run stops early.
pub fn run<K: FlowSink<()>>(
    captures: Vec<Capture>,
    table: &mut FlowTable<()>,
    sink: &mut K,
    progress: &Progress,
    healthy: impl Fn(&K) -> bool,
) -> RunReport {
    let mut report = RunReport::default();
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
            let read = if table.lookahead_pays() {
                // Dissect a batch first and ask for each packet's flow-index line, so
                // that the lookups' cache misses overlap instead of coming one by one.
                // (Only once the table outgrows the caches: on a small table the batch
                // costs more in reading than it saves.)
                let batch = match cap.next_batch() {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => batch,
                    Err(e) => {
                        read_error(&mut report, &mut input, progress, e);
                        break;
                    }
                };
                let mut packets = [(Packet::default(), Ahead::default()); BATCH];
                for ((packet, ahead), rec) in packets.iter_mut().zip(batch.iter()) {
                    *packet = streamscope_wire::dissect(rec.link_type, rec.data, rec.orig_len);
                    *ahead = table.prefetch(packet);
                }
                for (rec, (packet, ahead)) in batch.iter().zip(&packets) {
                    count(&mut report, &mut input, rec, packet);
                    table.process_ahead(rec.ts_ns, rec.orig_len, packet, *ahead, sink);
                }
                batch.len()
            } else {
                let rec = match cap.next_record() {
                    Ok(Some(rec)) => rec,
                    Ok(None) => break,
                    Err(e) => {
                        read_error(&mut report, &mut input, progress, e);
                        break;
                    }
                };
                let packet = streamscope_wire::dissect(rec.link_type, rec.data, rec.orig_len);
                count(&mut report, &mut input, &rec, &packet);
                table.process(rec.ts_ns, rec.orig_len, &packet, sink);
                1
            };
            // About every 16K packets.
            if input.packets & 0x3fff < read as u64 {
                progress.set(done_bytes + cap.offset());
                if !healthy(sink) {
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
    let ending = std::time::Instant::now();
    table.finish(sink);
    report.end_flows_s = ending.elapsed().as_secs_f64();
    report.flow_stats = table.stats();
    if report.flow_stats.timestamps_backwards > 0 {
        let msg = format!(
            "{} packets have a timestamp earlier than a packet before them (counted to the flow's current bin)",
            report.flow_stats.timestamps_backwards
        );
        progress.warn(&format!("warning: {msg}"));
        report.warnings.push(msg);
    }
    if report.flow_stats.flows_evicted > 0 {
        let msg = format!(
            "the flow table was full: {} flows were evicted before they ended (raise --max-flows)",
            report.flow_stats.flows_evicted
        );
        progress.warn(&format!("warning: {msg}"));
        report.warnings.push(msg);
    }
    report
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
fn read_error(report: &mut RunReport, input: &mut InputReport, progress: &Progress, e: Error) {
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
