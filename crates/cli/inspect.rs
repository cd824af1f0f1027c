//! `streamscope inspect`: a fast summary of captures, written to stdout.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use anyhow::Context;
use serde::Serialize;
use streamscope_flow::{BinRecord, FlowRecord, FlowSink, FlowTable};
use streamscope_store::rfc3339_ns;

use crate::args::InspectArgs;
use crate::pipeline::{self, InputReport};
use crate::progress::Progress;
use crate::Failure;

/// Keeps the `n` largest flows by total bytes.
struct TopFlows {
    n: usize,
    heap: BinaryHeap<Reverse<(u64, i64, TopFlow)>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct TopFlow {
    flow_id: i64,
    protocol: u8,
    client: String,
    server: String,
    packets: u64,
    bytes: u64,
    bytes_up: u64,
    bytes_down: u64,
    duration_s: String,
    end_reason: &'static str,
}

impl FlowSink<()> for TopFlows {
    fn out(&mut self) -> &mut () {
        // A zero-sized box: no allocation.
        Box::leak(Box::new(()))
    }

    fn bin(&mut self, _bin: &BinRecord) {}

    fn flow(&mut self, f: &FlowRecord, _state: Option<&()>) {
        let bytes = f.bytes[0] + f.bytes[1];
        if self.heap.len() == self.n {
            match self.heap.peek() {
                Some(Reverse((min, id, _))) if (bytes, -f.id) > (*min, *id) => {
                    self.heap.pop();
                }
                _ => return,
            }
        }
        if self.n == 0 {
            return;
        }
        let endpoint = |e: streamscope_flow::Endpoint| {
            if f.has_ports {
                match e.addr {
                    std::net::IpAddr::V6(a) => format!("[{a}]:{}", e.port),
                    a => format!("{a}:{}", e.port),
                }
            } else {
                e.addr.to_string()
            }
        };
        let top = TopFlow {
            flow_id: f.id,
            protocol: f.protocol,
            client: endpoint(f.client),
            server: endpoint(f.server),
            packets: f.packets[0] + f.packets[1],
            bytes,
            bytes_up: f.bytes[0],
            bytes_down: f.bytes[1],
            duration_s: format!("{:.3}", (f.last_ns - f.first_ns) as f64 / 1e9),
            end_reason: f.end_reason.name(),
        };
        self.heap.push(Reverse((bytes, -f.id, top)));
    }
}

#[derive(Serialize)]
struct Summary<'a> {
    inputs: &'a [InputReport],
    packets: u64,
    bytes: u64,
    captured_bytes: u64,
    first_ts: Option<String>,
    last_ts: Option<String>,
    duration_s: Option<f64>,
    flows: u64,
    non_ip_packets: u64,
    decode_errors: std::collections::BTreeMap<&'static str, u64>,
    /// Oddities the capture readers accepted (caplen over snaplen, ...), those seen.
    capture_anomalies: std::collections::BTreeMap<&'static str, u64>,
    warnings: &'a [String],
    top_flows: Vec<TopFlow>,
}

pub fn run(args: &InspectArgs) -> Result<(), Failure> {
    let captures = pipeline::open_all(&args.read)?;
    let progress = Progress::new(args.read.quiet, pipeline::total_size(&captures));
    let mut table = FlowTable::<()>::new(pipeline::flow_config(&args.read, 1_000_000_000));
    let mut top = TopFlows {
        n: args.top,
        heap: BinaryHeap::new(),
    };
    let report = pipeline::run(
        &args.read,
        captures,
        &mut table,
        &mut top,
        &progress,
        |_| true,
    );
    progress.finish();
    let mut top_flows: Vec<TopFlow> = top.heap.into_iter().map(|Reverse((_, _, t))| t).collect();
    top_flows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.flow_id.cmp(&b.flow_id)));
    let summary = Summary {
        inputs: &report.inputs,
        packets: report.packets,
        bytes: report.bytes,
        captured_bytes: report.captured_bytes,
        first_ts: report.first_ns.map(rfc3339_ns),
        last_ts: report.last_ns.map(rfc3339_ns),
        duration_s: report
            .first_ns
            .zip(report.last_ns)
            .map(|(a, b)| (b - a) as f64 / 1e9),
        flows: report.flow_stats.flows_ended,
        non_ip_packets: report.non_ip_packets,
        decode_errors: report
            .decode_errors
            .iter()
            .filter(|(_, n)| *n > 0)
            .collect(),
        capture_anomalies: report
            .capture_anomalies
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (*k, *n))
            .collect(),
        warnings: &report.warnings,
        top_flows,
    };
    let text = if args.json {
        let mut text = serde_json::to_string_pretty(&summary).context("encoding the summary")?;
        text.push('\n');
        text
    } else {
        summary_text(&summary).context("formatting the summary")?
    };
    crate::print_stdout(&text)
}

fn summary_text(summary: &Summary<'_>) -> Result<String, std::fmt::Error> {
    use std::fmt::Write as _;
    let mut out = String::new();
    for i in summary.inputs {
        writeln!(
            out,
            "{}: {}{}, link types {:?}, {} packets, {} bytes{}",
            i.path,
            i.format,
            if i.compression == "none" {
                String::new()
            } else {
                format!(" ({})", i.compression)
            },
            i.link_types,
            i.packets,
            i.bytes,
            i.error
                .as_ref()
                .map(|e| format!(" — stopped early: {e}"))
                .unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "total: {} packets, {} bytes ({} captured), {} flows",
        summary.packets, summary.bytes, summary.captured_bytes, summary.flows
    )?;
    if let (Some(a), Some(b), Some(d)) = (&summary.first_ts, &summary.last_ts, summary.duration_s) {
        writeln!(out, "time: {a} .. {b} ({d:.3} s)")?;
    }
    if summary.non_ip_packets > 0 {
        writeln!(out, "non-IP packets: {}", summary.non_ip_packets)?;
    }
    if summary.decode_errors.is_empty() {
        writeln!(out, "decode errors: none")?;
    } else {
        writeln!(out, "decode errors:")?;
        for (k, n) in &summary.decode_errors {
            writeln!(out, "  {k:<24} {n}")?;
        }
    }
    if !summary.capture_anomalies.is_empty() {
        writeln!(out, "accepted capture oddities:")?;
        for (k, n) in &summary.capture_anomalies {
            writeln!(out, "  {k:<24} {n}")?;
        }
    }
    if !summary.top_flows.is_empty() {
        writeln!(out, "top flows by bytes:")?;
        writeln!(
            out,
            "  {:>8} {:>5} {:<45} {:<45} {:>9} {:>12} {:>10}  end",
            "flow_id", "proto", "client", "server", "packets", "bytes", "seconds"
        )?;
        for t in &summary.top_flows {
            writeln!(
                out,
                "  {:>8} {:>5} {:<45} {:<45} {:>9} {:>12} {:>10}  {}",
                t.flow_id,
                t.protocol,
                t.client,
                t.server,
                t.packets,
                t.bytes,
                t.duration_s,
                t.end_reason
            )?;
        }
    }
    Ok(out)
}
