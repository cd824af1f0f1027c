//! The per-flow inspector interface: how payload inspectors (DNS, MPEG-TS, RTP, HTTP, TLS,
//! QUIC, ...) ride on the flow table without the table knowing any of them.
//!
//! An [`Inspector`] is made when a flow starts ([`Inspector::start`], which sees the
//! flow's key and which side is the client, and why) and may decline: a flow nobody
//! inspects costs nothing more than the flow itself. Its state lives out of line, behind
//! the pointer a flow already has for its TCP state, so a flow slot keeps its size. Every
//! later call is given the flow again ([`FlowStart`], rebuilt from the slot), so an
//! inspector keeps only what it reads, not the flow's identity for its rows: a capture of
//! a million inspected flows pays for every byte of inspector state a million times.
//!
//! Per packet, an inspector gets what it asked for per direction ([`Wants`]): nothing,
//! each packet's transport payload ([`Segment`]), or for TCP the direction's bytes in
//! order ([`Inspector::stream`], from a bounded [`Reassembler`](crate::Reassembler) that
//! holds out-of-order segments up to a bound and counts and skips holes and overlaps,
//! never waiting on one forever). Every call returns what it wants next, so an
//! inspector that has seen enough (a TLS ClientHello read) stops costing anything.
//!
//! Rows an inspector finds mid-flow (a DNS answer, an IGMP report, an HTTP transaction)
//! go to its output ([`Inspector::Out`], which the layer that defines the inspector
//! defines; the pipeline's table sink provides it through
//! [`FlowSink::out`](crate::FlowSink::out)). When one of the flow's time bins closes it
//! adds its counters to the bin's row ([`Inspector::close_bin`]); when the flow ends it
//! hears why ([`Inspector::end`]) and the sink reads its per-flow columns from it
//! ([`FlowSink::flow`](crate::FlowSink::flow)).
//!
//! Dispatch is static: the table is generic over one inspector type, which the layer
//! above makes an enum of its inspectors; `flow` never names them.

use std::fmt::Debug;

use streamscope_wire::{Packet, Transport};

use crate::{ClientRule, EndReason, Endpoint};

/// Which way a packet travels within its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

impl Dir {
    /// 0 for [`Dir::Up`], 1 for [`Dir::Down`]: the index of per-direction arrays.
    #[inline]
    pub fn index(self) -> usize {
        match self {
            Dir::Up => 0,
            Dir::Down => 1,
        }
    }

    /// The direction of index `i` (0 up, anything else down).
    #[inline]
    pub fn from_index(i: usize) -> Dir {
        if i == 0 {
            Dir::Up
        } else {
            Dir::Down
        }
    }

    /// The other direction.
    #[inline]
    pub fn reverse(self) -> Dir {
        match self {
            Dir::Up => Dir::Down,
            Dir::Down => Dir::Up,
        }
    }
}

/// What an inspector wants of one direction of its flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Want {
    /// Nothing more: the direction's packets are only counted.
    #[default]
    Nothing,
    /// Each packet's transport payload, as captured ([`Inspector::packet`]).
    Packets,
    /// TCP only: the direction's bytes in sequence order ([`Inspector::stream`]); on a
    /// flow that is not TCP, the same as [`Want::Packets`].
    Stream,
}

/// What an inspector wants of each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wants {
    pub up: Want,
    pub down: Want,
}

impl Wants {
    /// Nothing in either direction.
    pub const NOTHING: Wants = Wants {
        up: Want::Nothing,
        down: Want::Nothing,
    };
    /// Every packet's payload in both directions.
    pub const PACKETS: Wants = Wants {
        up: Want::Packets,
        down: Want::Packets,
    };
    /// Both directions' byte streams.
    pub const STREAMS: Wants = Wants {
        up: Want::Stream,
        down: Want::Stream,
    };

    /// What is wanted of `dir`.
    #[inline]
    pub fn of(self, dir: Dir) -> Want {
        match dir {
            Dir::Up => self.up,
            Dir::Down => self.down,
        }
    }

    /// Whether anything is wanted at all.
    #[inline]
    pub fn any(self) -> bool {
        self != Wants::NOTHING
    }
}

/// A flow as it started: what [`Inspector::start`] sees, and what every later call is
/// given again, so that an inspector need not keep the flow's identity for its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowStart {
    /// The flow's id (as in the `flows` table).
    pub id: i64,
    /// Time of its first packet.
    pub ts_ns: i64,
    pub ip_version: u8,
    pub protocol: u8,
    /// The client side and the server side (ports 0 when the protocol has none).
    pub client: Endpoint,
    pub server: Endpoint,
    /// The protocol has ports (TCP, UDP).
    pub has_ports: bool,
    /// Why the client is the client.
    pub client_rule: ClientRule,
    /// Outer and inner VLAN ids.
    pub vlan: [Option<u16>; 2],
}

/// One packet of a flow, as [`Inspector::packet`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub dir: Dir,
    pub ts_ns: i64,
    /// TCP: the segment's sequence number and flags; `None` for other protocols.
    pub tcp: Option<(u32, u8)>,
    /// The packet's transport header as the dissector read it (ports, TCP fields, the
    /// ICMPv6 and IGMP headers); for a datagram put back together from fragments, that of
    /// the fragment that completed it.
    pub transport: Transport,
    /// The transport payload as captured: shorter than `payload_len` when the capture
    /// cut the packet.
    pub payload: &'a [u8],
    /// The transport payload's length according to the headers.
    pub payload_len: u32,
    /// The payload was put back together from the fragments of an IP datagram (UDP;
    /// `ts_ns` is then the time of the fragment that completed it).
    pub reassembled: bool,
}

/// Per-flow state of the layer above the flow table. See the module documentation.
pub trait Inspector: Sized {
    /// Where rows found mid-flow go; defined by the layer that implements the inspector
    /// and provided by the pipeline's sink ([`FlowSink::out`](crate::FlowSink::out)).
    type Out: ?Sized;
    /// Counters an inspector adds to each of its flow's bin rows (media errors per bin,
    /// say); `()` for none.
    type BinCounters: Copy + Default + Debug + PartialEq + Send;

    /// Whether an inspector of this type might read this packet's payload: a cheap
    /// test on its headers (ports, say) made on the reading thread, so that the pipeline
    /// copies payloads to the flow table's thread only where they can be read. `false`
    /// must mean never.
    #[inline]
    fn may_read(packet: &Packet<'_>) -> bool {
        let _ = packet;
        true
    }

    /// A flow starts: an inspector for it, or `None` when nobody inspects it.
    fn start(flow: &FlowStart, out: &mut Self::Out) -> Option<Self>;

    /// What it wants now (asked once, after [`Inspector::start`]).
    fn wants(&self) -> Wants;

    /// A packet of `flow`, of a direction it wants packets of. Returns what it wants next.
    fn packet(&mut self, flow: &FlowStart, segment: &Segment<'_>, out: &mut Self::Out) -> Wants;

    /// The next bytes of a TCP direction it wants the stream of, in sequence order.
    /// `ts_ns` is the time of the segment that completed them. Returns what it wants next.
    fn stream(
        &mut self,
        flow: &FlowStart,
        dir: Dir,
        ts_ns: i64,
        bytes: &[u8],
        out: &mut Self::Out,
    ) -> Wants {
        let _ = (flow, dir, ts_ns, bytes, out);
        self.wants()
    }

    /// `missing` bytes of a TCP direction's stream will never come (lost, not captured,
    /// or held too long); the stream goes on after them. Returns what it wants next.
    fn gap(
        &mut self,
        flow: &FlowStart,
        dir: Dir,
        ts_ns: i64,
        missing: u64,
        out: &mut Self::Out,
    ) -> Wants {
        let _ = (flow, dir, ts_ns, missing, out);
        self.wants()
    }

    /// The flow's current time bin closes: the counters for its row.
    fn close_bin(&mut self) -> Self::BinCounters {
        Self::BinCounters::default()
    }

    /// The flow ends for `reason`: its last packet was at `last_ns`, and it is known
    /// to have ended by `ended_ns` (the capture time at which the table ended it: past
    /// the idle timeout for `Idle`, the capture's last packet for `CaptureEnd`).
    /// Anything still pending is emitted now; the sink then reads the inspector's
    /// per-flow columns.
    fn end(
        &mut self,
        flow: &FlowStart,
        reason: EndReason,
        last_ns: i64,
        ended_ns: i64,
        out: &mut Self::Out,
    ) {
        let _ = (flow, reason, last_ns, ended_ns, out);
    }
}

/// No inspection: the flow table alone.
impl Inspector for () {
    type Out = ();
    type BinCounters = ();

    #[inline]
    fn may_read(_: &Packet<'_>) -> bool {
        false
    }

    #[inline]
    fn start(_: &FlowStart, _: &mut ()) -> Option<()> {
        None
    }

    fn wants(&self) -> Wants {
        Wants::NOTHING
    }

    fn packet(&mut self, _: &FlowStart, _: &Segment<'_>, _: &mut ()) -> Wants {
        Wants::NOTHING
    }
}
