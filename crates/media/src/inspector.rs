//! The flow table's inspector for this crate's protocols: [`MediaInspector`] implements
//! [`streamscope_flow::Inspector`], choosing per flow which protocol reads it, and hands
//! the rows it finds to a [`MediaOut`] that the pipeline's sink provides.
//!
//! Dispatch is static: one enum with a variant per protocol (DNS so far), so the flow
//! table stays generic over one type and never names a protocol.

use streamscope_flow::{
    ClientRule, Dir as FlowDir, EndReason, FlowStart, Inspector, Segment, Wants,
};
use streamscope_wire::{Packet, Transport};

use crate::dns::{self, DnsConfig, DnsRow, DnsSink, DnsState, DnsStats};

/// Where the rows inspectors find go (the pipeline's table sink).
pub trait MediaOut {
    /// One DNS exchange (or a query or response alone) of `flow`.
    fn dns(&mut self, flow: &FlowStart, row: DnsRow);
    /// What the run's DNS flows read and could not read, counted as they go.
    fn dns_stats(&mut self) -> &mut DnsStats;
    /// The DNS flows' limits (default: [`DnsConfig::default`]).
    fn dns_config(&self) -> DnsConfig {
        DnsConfig::default()
    }
}

/// A DNS flow's rows and counters on their way to a [`MediaOut`].
struct DnsTo<'a> {
    out: &'a mut (dyn MediaOut + Send),
    flow: &'a FlowStart,
    config: DnsConfig,
}

impl<'a> DnsTo<'a> {
    fn new(out: &'a mut (dyn MediaOut + Send), flow: &'a FlowStart) -> DnsTo<'a> {
        let config = out.dns_config();
        DnsTo { out, flow, config }
    }
}

impl DnsSink for DnsTo<'_> {
    #[inline]
    fn config(&self) -> &DnsConfig {
        &self.config
    }
    #[inline]
    fn stats(&mut self) -> &mut DnsStats {
        self.out.dns_stats()
    }
    #[inline]
    fn row(&mut self, row: DnsRow) {
        self.out.dns(self.flow, row)
    }
}

/// Per-flow state of a flow one of this crate's protocols reads.
#[derive(Debug)]
pub struct MediaInspector {
    kind: Kind,
    /// The flow is TCP (read as streams).
    tcp: bool,
}

#[derive(Debug)]
enum Kind {
    Dns(DnsState),
}

fn dns_dir(d: FlowDir) -> dns::Dir {
    match d {
        FlowDir::Up => dns::Dir::ClientToServer,
        FlowDir::Down => dns::Dir::ServerToClient,
    }
}

impl Inspector for MediaInspector {
    type Out = dyn MediaOut + Send;
    type BinCounters = ();

    #[inline]
    fn may_read(packet: &Packet<'_>) -> bool {
        // A later fragment has no ports here; the flow table finds its flow by IP id.
        if packet
            .ip
            .is_some_and(|ip| ip.fragment.is_some_and(|f| f.offset > 0))
        {
            return true;
        }
        match packet.transport {
            Transport::Udp { src_port, dst_port } => {
                dns::is_dns_port(src_port) || dns::is_dns_port(dst_port)
            }
            Transport::Tcp(t) => dns::is_dns_port(t.src_port) || dns::is_dns_port(t.dst_port),
            _ => false,
        }
    }

    #[inline]
    fn start(flow: &FlowStart, out: &mut Self::Out) -> Option<MediaInspector> {
        if !flow.has_ports || !matches!(flow.protocol, 6 | 17) {
            return None;
        }
        if !(dns::is_dns_port(flow.server.port) || dns::is_dns_port(flow.client.port)) {
            return None;
        }
        let mut d = DnsState::default();
        if flow.protocol == 6 && flow.client_rule != ClientRule::Syn {
            // Picked up mid-connection: the first bytes need not start a message.
            let mut to = DnsTo::new(out, flow);
            d.on_gap(dns::Dir::ClientToServer, &mut to);
            d.on_gap(dns::Dir::ServerToClient, &mut to);
        }
        Some(MediaInspector {
            kind: Kind::Dns(d),
            tcp: flow.protocol == 6,
        })
    }

    fn wants(&self) -> Wants {
        match (&self.kind, self.tcp) {
            (Kind::Dns(_), true) => Wants::STREAMS,
            (Kind::Dns(_), false) => Wants::PACKETS,
        }
    }

    fn packet(&mut self, flow: &FlowStart, s: &Segment<'_>, out: &mut Self::Out) -> Wants {
        match &mut self.kind {
            // A fragmented datagram comes whole, put back together by the flow table.
            Kind::Dns(d) => {
                let mut to = DnsTo::new(out, flow);
                d.on_datagram(dns_dir(s.dir), s.ts_ns, s.payload, &mut to)
            }
        }
        self.wants()
    }

    fn stream(
        &mut self,
        flow: &FlowStart,
        dir: FlowDir,
        ts_ns: i64,
        bytes: &[u8],
        out: &mut Self::Out,
    ) -> Wants {
        match &mut self.kind {
            Kind::Dns(d) => d.on_stream(dns_dir(dir), ts_ns, bytes, &mut DnsTo::new(out, flow)),
        }
        self.wants()
    }

    fn gap(
        &mut self,
        flow: &FlowStart,
        dir: FlowDir,
        _: i64,
        _: u64,
        out: &mut Self::Out,
    ) -> Wants {
        match &mut self.kind {
            Kind::Dns(d) => d.on_gap(dns_dir(dir), &mut DnsTo::new(out, flow)),
        }
        self.wants()
    }

    fn end(&mut self, flow: &FlowStart, _: EndReason, _: i64, ended_ns: i64, out: &mut Self::Out) {
        match &mut self.kind {
            Kind::Dns(d) => d.finish(ended_ns, &mut DnsTo::new(out, flow)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A capture of a million DNS flows keeps a million of these: the flow's identity
    /// and the DNS counters stay out of it.
    #[test]
    fn per_flow_state_is_small() {
        assert_eq!(std::mem::size_of::<DnsState>(), 40);
        assert_eq!(std::mem::size_of::<MediaInspector>(), 48);
    }
}
