//! How the flow table hands a flow's packets to its inspector ([`Inspector`]): as
//! packets, as in-order TCP streams ([`Reassembler`]), or as whole UDP datagrams put
//! back together from IP fragments ([`Datagrams`]), each as the inspector asked, and what
//! is still held when the flow ends.

use streamscope_wire::{Packet, Transport};

use crate::datagram::Datagrams;
use crate::inspect::{Dir, FlowStart, Inspector, Segment, Want, Wants};
use crate::stream::{Piece, Reassembler, StreamStats};
use crate::{EndReason, FlowStats};

/// A flow's inspector, what it wants, and the byte streams it reads (made when it
/// first asks for one: most inspected flows never do).
#[derive(Debug)]
pub(crate) struct Inspected<S> {
    inspector: S,
    wants: Wants,
    streams: Option<Box<Streams>>,
    /// Fragmented UDP datagrams being put back together for it.
    datagrams: Option<Box<Datagrams>>,
}

/// The byte streams of a flow's two TCP directions, and what the ended ones counted.
#[derive(Debug, Default)]
struct Streams {
    dirs: [Option<Reassembler>; 2],
    stats: StreamStats,
}

impl<S: Inspector> Inspected<S> {
    pub(crate) fn new(inspector: S, wants: Wants) -> Inspected<S> {
        Inspected {
            inspector,
            wants,
            streams: None,
            datagrams: None,
        }
    }

    pub(crate) fn inspector(&self) -> &S {
        &self.inspector
    }

    pub(crate) fn inspector_mut(&mut self) -> &mut S {
        &mut self.inspector
    }

    /// What it wants of `dir` now.
    #[inline]
    pub(crate) fn wants(&self, dir: Dir) -> Want {
        self.wants.of(dir)
    }

    /// The flow ends: held stream bytes come out (holes as gaps), datagrams still
    /// incomplete are given up, then the inspector hears the end. Their counts go to
    /// `stats`.
    pub(crate) fn end(
        &mut self,
        flow: &FlowStart,
        reason: EndReason,
        last_ns: i64,
        ended_ns: i64,
        out: &mut S::Out,
        stats: &mut FlowStats,
    ) {
        if let Some(mut streams) = self.streams.take() {
            for d in [Dir::Up, Dir::Down] {
                if let Some(mut r) = streams.dirs[d.index()].take() {
                    let inspector = &mut self.inspector;
                    r.finish(|p| {
                        let _ = feed(inspector, flow, d, last_ns, p, out);
                    });
                    streams.stats.add(&r.stats());
                }
            }
            stats.streams.add(&streams.stats);
        }
        if let Some(mut d) = self.datagrams.take() {
            d.finish();
            stats.datagrams.add(&d.stats());
        }
        self.inspector.end(flow, reason, last_ns, ended_ns, out);
    }

    /// Hands one packet of direction `dir` to the inspector, as it asked: the payload
    /// (a fragmented UDP datagram's once whole), or its direction's stream in order.
    /// Updates what it wants.
    #[inline(never)]
    pub(crate) fn packet(
        &mut self,
        flow: &FlowStart,
        dir: Dir,
        ts_ns: i64,
        packet: &Packet<'_>,
        (max_bytes, max_segments): (usize, usize),
        out: &mut S::Out,
    ) {
        let tcp = match packet.transport {
            Transport::Tcp(t) => Some(t),
            _ => None,
        };
        let want = self.wants.of(dir);
        match (want, tcp) {
            (Want::Stream, Some(t)) => {
                let syn = t.flags & crate::tcp::flags::SYN != 0;
                if packet.payload_len == 0 && !syn {
                    return;
                }
                let stream = self.streams.get_or_insert_with(Box::default).dirs[dir.index()]
                    .get_or_insert_with(|| Reassembler::new(max_bytes, max_segments));
                let inspector = &mut self.inspector;
                let mut wants = self.wants;
                stream.segment(t.seq, syn, packet.payload, packet.payload_len, |p| {
                    if wants.of(dir) == Want::Stream {
                        wants = feed(inspector, flow, dir, ts_ns, p, out);
                    }
                });
                self.wants = wants;
            }
            (_, None) => match packet.ip.and_then(|ip| ip.fragment) {
                None => {
                    let seg = segment(
                        dir,
                        ts_ns,
                        packet.transport,
                        None,
                        packet.payload,
                        packet.payload_len,
                        false,
                    );
                    self.wants = self.inspector.packet(flow, &seg, out);
                }
                // UDP in fragments: the datagram is given whole once every fragment is in.
                // A later fragment's data sits after the 8-byte UDP header in the datagram.
                Some(f) if matches!(packet.transport, Transport::Udp { .. } | Transport::None) => {
                    let at = match f.offset {
                        0 => Some(0),
                        o => usize::from(o).checked_sub(8),
                    };
                    let d = self.datagrams.get_or_insert_with(Box::default);
                    if let Some(whole) = at.and_then(|at| d.push(f.id, at, packet.payload, !f.more))
                    {
                        let seg = segment(
                            dir,
                            ts_ns,
                            packet.transport,
                            None,
                            &whole,
                            whole.len() as u32,
                            true,
                        );
                        self.wants = self.inspector.packet(flow, &seg, out);
                    }
                }
                Some(_) => {}
            },
            // TCP in IP fragments is too rare to put back together: not inspected.
            (_, Some(_)) if packet.ip.is_some_and(|ip| ip.fragment.is_some()) => {}
            (_, Some(t)) => {
                let seg = segment(
                    dir,
                    ts_ns,
                    packet.transport,
                    Some((t.seq, t.flags)),
                    packet.payload,
                    packet.payload_len,
                    false,
                );
                self.wants = self.inspector.packet(flow, &seg, out);
                if self.wants.of(dir) == Want::Stream {
                    // The inspector read this segment itself: its direction's stream
                    // starts after it, so that a retransmitted copy is not read again.
                    let syn = u32::from(t.flags & crate::tcp::flags::SYN != 0);
                    let next = t.seq.wrapping_add(syn).wrapping_add(packet.payload_len);
                    self.streams.get_or_insert_with(Box::default).dirs[dir.index()]
                        .get_or_insert_with(|| {
                            Reassembler::starting_at(next, max_bytes, max_segments)
                        });
                }
            }
        }
        // A direction no longer read as a stream lets its held bytes go.
        if let Some(streams) = self.streams.as_mut() {
            for d in [Dir::Up, Dir::Down] {
                if self.wants.of(d) != Want::Stream {
                    if let Some(r) = streams.dirs[d.index()].take() {
                        streams.stats.add(&r.stats());
                    }
                }
            }
        }
    }
}

fn segment<'a>(
    dir: Dir,
    ts_ns: i64,
    transport: Transport,
    tcp: Option<(u32, u8)>,
    payload: &'a [u8],
    payload_len: u32,
    reassembled: bool,
) -> Segment<'a> {
    Segment {
        dir,
        ts_ns,
        tcp,
        transport,
        payload,
        payload_len,
        reassembled,
    }
}

/// One piece of a stream to its inspector.
fn feed<S: Inspector>(
    inspector: &mut S,
    flow: &FlowStart,
    dir: Dir,
    ts_ns: i64,
    piece: Piece<'_>,
    out: &mut S::Out,
) -> Wants {
    match piece {
        Piece::Bytes(b) => inspector.stream(flow, dir, ts_ns, b, out),
        Piece::Gap(n) => inspector.gap(flow, dir, ts_ns, n, out),
    }
}
