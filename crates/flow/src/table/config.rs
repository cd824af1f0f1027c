//! The flow table's settings.

use super::NS_PER_S;

/// Flow-table settings. Every duration is in capture time (nanoseconds).
#[derive(Clone, Debug)]
pub struct FlowConfig {
    /// Width of a time bin.
    pub bin_ns: i64,
    /// Most flows held at once; past it the longest-idle flows are evicted (and counted).
    pub max_flows: usize,
    /// Idle timeout of a TCP flow that has not closed.
    pub tcp_idle_ns: i64,
    /// How long a TCP flow stays after FIN in both directions or RST (trailing ACKs).
    pub tcp_closed_ns: i64,
    /// Idle timeout of UDP flows.
    pub udp_idle_ns: i64,
    /// Idle timeout of other IP flows (ICMP, IGMP, ...).
    pub other_idle_ns: i64,
    /// Most bin rows held for time ordering before they are released early.
    pub max_buffered_bins: usize,
    /// Per TCP direction an inspector reads as a stream: most bytes, and most
    /// segments, held ahead of a hole before the hole is given up.
    pub stream_max_bytes: usize,
    pub stream_max_segments: usize,
    /// Threads the table may keep busy: with two or more, the slab's pages are
    /// populated ahead of its use on a thread of its own.
    pub threads: usize,
    /// Deliberate faults, all off by default: the conformance tests turn one on to show
    /// that they catch it. Not for use outside tests.
    #[doc(hidden)]
    pub faults: Faults,
}

/// Flow-accounting rules a conformance test can switch off to show it notices
/// ([`FlowConfig::faults`]). The idle timeouts need no switch: a test sets them long.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// A new SYN on a closed connection continues the old flow.
    pub no_syn_split: bool,
    /// Non-first IP fragments are never matched to their first fragment's ports.
    pub no_fragment_matching: bool,
}

impl Default for FlowConfig {
    fn default() -> FlowConfig {
        FlowConfig {
            bin_ns: NS_PER_S,
            max_flows: 2_000_000,
            tcp_idle_ns: 300 * NS_PER_S,
            tcp_closed_ns: 10 * NS_PER_S,
            udp_idle_ns: 120 * NS_PER_S,
            other_idle_ns: 60 * NS_PER_S,
            max_buffered_bins: 4_000_000,
            stream_max_bytes: 256 * 1024,
            stream_max_segments: 256,
            threads: 1,
            faults: Faults::default(),
        }
    }
}

impl FlowConfig {
    /// Idle timeout of a flow of `protocol` in its current TCP state.
    pub(super) fn timeout(&self, protocol: u8, tcp_closed: bool) -> i64 {
        match protocol {
            6 if tcp_closed => self.tcp_closed_ns,
            6 => self.tcp_idle_ns,
            17 => self.udp_idle_ns,
            _ => self.other_idle_ns,
        }
    }

    pub(super) fn max_timeout(&self) -> i64 {
        self.tcp_idle_ns
            .max(self.tcp_closed_ns)
            .max(self.udp_idle_ns)
            .max(self.other_idle_ns)
    }
}
