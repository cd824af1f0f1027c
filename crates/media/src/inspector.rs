//! The flow table's inspector for this crate's protocols: [`MediaInspector`] implements
//! [`streamscope_flow::Inspector`], choosing per flow which protocol reads it, and hands
//! the rows it finds to a [`MediaOut`] that the pipeline's sink provides.
//!
//! Dispatch is static: one enum with a variant per protocol (DNS so far), so the flow
//! table stays generic over one type and never names a protocol.

use streamscope_flow::{
    ClientRule, Dir as FlowDir, EndReason, Endpoint, FlowStart, Inspector, Segment, Wants,
};
use streamscope_wire::{Packet, Transport};

use crate::dns::{self, DnsConfig, DnsFlow, DnsRow, DnsStats};

/// The flow a row belongs to, as the tables name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRef {
    /// The flow's id (`flows.flow_id`).
    pub id: i64,
    /// IP protocol (6 TCP, 17 UDP).
    pub protocol: u8,
    /// The flow's client and server sides.
    pub client: Endpoint,
    /// The flow's server side.
    pub server: Endpoint,
}

/// Where the rows inspectors find go (the pipeline's table sink).
pub trait MediaOut {
    /// One DNS exchange (or a query or response alone) of `flow`.
    fn dns(&mut self, flow: &FlowRef, row: DnsRow);
    /// A DNS flow ended: what it read and what it could not.
    fn dns_stats(&mut self, stats: &DnsStats) {
        let _ = stats;
    }
}

/// Per-flow state of a flow one of this crate's protocols reads.
#[derive(Debug)]
pub struct MediaInspector {
    flow: FlowRef,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Dns(DnsFlow),
}

fn dns_dir(d: FlowDir) -> dns::Dir {
    match d {
        FlowDir::Up => dns::Dir::ClientToServer,
        FlowDir::Down => dns::Dir::ServerToClient,
    }
}

impl MediaInspector {
    /// The flow this inspector reads.
    pub fn flow(&self) -> &FlowRef {
        &self.flow
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
    fn start(flow: &FlowStart, _: &mut Self::Out) -> Option<MediaInspector> {
        if !flow.has_ports || !matches!(flow.protocol, 6 | 17) {
            return None;
        }
        if !(dns::is_dns_port(flow.server.port) || dns::is_dns_port(flow.client.port)) {
            return None;
        }
        let mut d = DnsFlow::new(DnsConfig::default());
        if flow.protocol == 6 && flow.client_rule != ClientRule::Syn {
            // Picked up mid-connection: the first bytes need not start a message.
            d.on_gap(dns::Dir::ClientToServer);
            d.on_gap(dns::Dir::ServerToClient);
        }
        Some(MediaInspector {
            flow: FlowRef {
                id: flow.id,
                protocol: flow.protocol,
                client: flow.client,
                server: flow.server,
            },
            kind: Kind::Dns(d),
        })
    }

    fn wants(&self) -> Wants {
        match (&self.kind, self.flow.protocol) {
            (Kind::Dns(_), 6) => Wants::STREAMS,
            (Kind::Dns(_), _) => Wants::PACKETS,
        }
    }

    fn packet(&mut self, s: &Segment<'_>, out: &mut Self::Out) -> Wants {
        let flow = self.flow;
        match &mut self.kind {
            // A fragmented datagram comes whole, put back together by the flow table.
            Kind::Dns(d) => d.on_datagram(dns_dir(s.dir), s.ts_ns, s.payload, &mut |row| {
                out.dns(&flow, row)
            }),
        }
        self.wants()
    }

    fn stream(&mut self, dir: FlowDir, ts_ns: i64, bytes: &[u8], out: &mut Self::Out) -> Wants {
        let flow = self.flow;
        match &mut self.kind {
            Kind::Dns(d) => d.on_stream(dns_dir(dir), ts_ns, bytes, &mut |row| out.dns(&flow, row)),
        }
        self.wants()
    }

    fn gap(&mut self, dir: FlowDir, _: i64, _: u64, _: &mut Self::Out) -> Wants {
        match &mut self.kind {
            Kind::Dns(d) => d.on_gap(dns_dir(dir)),
        }
        self.wants()
    }

    fn end(&mut self, _: EndReason, _: i64, ended_ns: i64, out: &mut Self::Out) {
        let flow = self.flow;
        match &mut self.kind {
            Kind::Dns(d) => {
                d.finish(ended_ns, &mut |row| out.dns(&flow, row));
                out.dns_stats(d.stats());
            }
        }
    }
}
