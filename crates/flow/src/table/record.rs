//! What the flow table hands out: ended flows and their end reasons, the sink they
//! go to, and the table's counters.

use crate::bins::BinRecord;
use crate::datagram::DatagramStats;
use crate::inspect::Inspector;
use crate::key::{ClientRule, Endpoint};
use crate::stream::StreamStats;
use crate::tcp::TcpSummary;

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Fin,
    Rst,
    Idle,
    CaptureEnd,
    Evicted,
}

impl EndReason {
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::Idle => "idle",
            EndReason::CaptureEnd => "capture_end",
            EndReason::Evicted => "evicted",
        }
    }
}

/// Receives what the table produces: closed time bins (in time order), ended flows
/// with their inspector, and (through [`FlowSink::out`]) the rows inspectors find
/// mid-flow.
pub trait FlowSink<S: Inspector> {
    fn bin(&mut self, bin: &BinRecord<S::BinCounters>);
    /// A flow ended; `inspector` is its inspector, if it had one, after
    /// [`Inspector::end`].
    fn flow(&mut self, flow: &FlowRecord, inspector: Option<&S>);
    /// Where inspectors put the rows they find.
    fn out(&mut self) -> &mut S::Out;
}

/// Downstream bitrate over a flow's bins, in bits per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bitrate {
    pub p50_bps: i64,
    pub p95_bps: i64,
    pub max_bps: i64,
}

/// A finished flow. Index 0 of the arrays is upstream (client → server).
#[derive(Clone, Debug)]
pub struct FlowRecord {
    pub id: i64,
    pub first_ns: i64,
    pub last_ns: i64,
    pub ip_version: u8,
    pub protocol: u8,
    pub client: Endpoint,
    pub server: Endpoint,
    /// The protocol has ports (TCP, UDP); otherwise the ports are meaningless.
    pub has_ports: bool,
    pub vlan: [Option<u16>; 2],
    pub client_rule: ClientRule,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub payload_bytes: [u64; 2],
    pub tcp: Option<TcpSummary>,
    pub end_reason: EndReason,
    pub bins: u64,
    pub bitrate_down: Option<Bitrate>,
}

/// Running counters of the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub packets: u64,
    pub flows_created: u64,
    pub flows_ended: u64,
    pub flows_evicted: u64,
    pub active_flows: u64,
    pub peak_active_flows: u64,
    /// Packets whose timestamp is earlier than a packet before them.
    pub timestamps_backwards: u64,
    /// Non-first IP fragments whose first fragment was not seen (counted to a flow
    /// without ports).
    pub fragments_unmatched: u64,
    /// Non-first IP fragments counted to the flow of their first fragment.
    pub fragments_matched: u64,
    /// TCP flows split because a new SYN arrived after the previous connection closed.
    pub tcp_port_reuse: u64,
    /// Flows an inspector took on.
    pub inspected_flows: u64,
    /// The byte streams inspectors read, summed over the flows that ended.
    pub streams: StreamStats,
    /// Fragmented UDP datagrams put back together for inspectors, or given up.
    pub datagrams: DatagramStats,
    pub bins_emitted: u64,
    /// Bin rows written after a later bin (only when the ordering buffer overflowed).
    pub bins_out_of_order: u64,
}
