//! Arbitrary bytes as a capture, through the pipeline library's loop (dissector, flow
//! table) into a small flow table (a few flows, so that eviction, idle expiry and early
//! bin release all happen): nothing panics, every packet the table counts ends up in
//! exactly one flow and one bin, and bin rows come out in (bin start, flow id) order but
//! for the late rows the table counted.
#![no_main]

use std::collections::HashSet;
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use streamscope_capture::Capture;
use streamscope_flow::{BinRecord, FlowConfig, FlowRecord, FlowSink, FlowTable};

#[derive(Default)]
struct Totals {
    flow_ids: HashSet<i64>,
    flow_packets: u64,
    flow_bytes: u64,
    bin_packets: u64,
    bin_bytes: u64,
    /// The last bin row's (start, flow id), and how many rows came out behind it.
    last_bin: Option<(i64, i64)>,
    bins_behind: u64,
}

impl FlowSink<()> for Totals {
    fn out(&mut self) -> &mut () {
        // A zero-sized box: no allocation.
        Box::leak(Box::new(()))
    }

    fn bin(&mut self, b: &BinRecord) {
        self.bin_packets += u64::from(b.packets[0]) + u64::from(b.packets[1]);
        self.bin_bytes += b.bytes[0] + b.bytes[1];
        let at = (b.bin_start_ns, b.flow_id);
        if self.last_bin.is_some_and(|last| at < last) {
            self.bins_behind += 1;
        }
        self.last_bin = Some(at);
    }
    fn flow(&mut self, f: &FlowRecord, _: Option<&()>) {
        assert!(self.flow_ids.insert(f.id), "flow {} ended twice", f.id);
        assert!(f.first_ns <= f.last_ns);
        self.flow_packets += f.packets[0] + f.packets[1];
        self.flow_bytes += f.bytes[0] + f.bytes[1];
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(cap) = Capture::from_reader("fuzz", Box::new(Cursor::new(data.to_vec()))) else {
        return;
    };
    let mut table = FlowTable::<()>::new(FlowConfig {
        bin_ns: 1_000_000,
        max_flows: 4,
        tcp_idle_ns: 50_000_000,
        tcp_closed_ns: 5_000_000,
        udp_idle_ns: 20_000_000,
        other_idle_ns: 10_000_000,
        max_buffered_bins: 8,
        ..FlowConfig::default()
    });
    let mut sink = Totals::default();
    let report = streamscope_pipeline::run(
        vec![cap],
        &mut table,
        &mut sink,
        &streamscope_pipeline::Silent,
        |_| true,
        streamscope_pipeline::Options::default(),
    );
    // Every packet the table took (the IP ones) is in exactly one flow and one bin.
    let stats = report.flow_stats.clone();
    let packets = stats.packets;
    assert!(packets <= report.packets - report.non_ip_packets);
    assert_eq!(sink.flow_packets, packets, "packets counted to flows");
    assert_eq!(sink.bin_packets, packets, "packets counted to bins");
    assert!(sink.flow_bytes <= report.bytes, "bytes counted to flows");
    assert_eq!(sink.bin_bytes, sink.flow_bytes, "bytes counted to bins");
    assert_eq!(sink.flow_ids.len() as u64, stats.flows_created);
    // A late row goes out with the rest of its bin: one step back per late bucket at most.
    assert!(
        sink.bins_behind <= stats.bins_out_of_order,
        "{} bin rows out of order, {} counted late",
        sink.bins_behind,
        stats.bins_out_of_order
    );
});
