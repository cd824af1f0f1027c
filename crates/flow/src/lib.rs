//! Bidirectional flows over dissected packets.
//!
//! [`FlowTable`] keys packets by a direction-independent 5-tuple plus VLAN tags
//! ([`FlowKey`]), decides which side is the client ([`ClientRule`]), tracks TCP facts
//! ([`TcpState`]), cuts every flow's traffic into fixed time bins released in time
//! order ([`BinOrderer`]), and summarises each flow's downstream bitrate over its bins
//! ([`RateSummary`]).
//!
//! Time comes only from packet timestamps: idle timeouts, bins and sweeps are driven by
//! capture time, never by the wall clock, so a replay gives the same flows at any speed.
//! The table is bounded (`FlowConfig::max_flows`); evictions are counted. Nothing on
//! the per-packet path allocates once a flow exists; allocation happens per flow (table
//! growth) and per bin bucket.

mod bins;
mod datagram;
mod dispatch;
mod index;
mod inspect;
mod key;
mod prefault;
mod rate;
mod stream;
mod table;
mod tcp;
mod wheel;

pub use bins::{BinOrderer, BinRecord};
pub use datagram::{DatagramStats, Datagrams};
pub use inspect::{Dir, FlowStart, Inspector, Segment, Want, Wants};
pub use key::{choose_client, ClientRule, Endpoint, FlowKey};
pub use rate::{BinRate, Percentiles, RateSummary, EXACT_LIMIT};
pub use stream::{Piece, Reassembler, StreamStats};
pub use table::{
    Ahead, Bitrate, EndReason, Faults, FlowConfig, FlowRecord, FlowSink, FlowStats, FlowTable,
    Keyer,
};
pub use tcp::{flags as tcp_flags, TcpState, TcpSummary};
