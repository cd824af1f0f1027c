//! Payload inspectors for streamscope: the per-flow state that reads what a flow carries
//! and turns it into rows (one module per protocol).
//!
//! * [`dns`]: unicast DNS over UDP and TCP, with queries paired to their responses
//!   ([`dns::DnsFlow`]) and the address → name map their answers build
//!   ([`dns::NameMap`]);
//! * [`ts`]: MPEG-TS found by content (in UDP, RTP, RTSP-interleaved TCP or any byte
//!   stream): continuity, PCR, PSI, ETSI TR 101 290 priority 1 and 2, MDI (RFC 4445);
//! * [`rtp`]: RTP found by a validating state machine, with RFC 3550 loss and jitter;
//! * [`multicast`]: IGMP v1/v2/v3 and MLD v1/v2 messages and the channel sessions they
//!   open and close;
//! * [`tls`]: TLS over TCP: the ClientHello and ServerHello (SNI, ALPN, versions) and
//!   every record header after them, per direction;
//! * [`quic`]: QUIC (v1, v2 and the versions it only names): client Initials decrypted
//!   for the ClientHello, packets and datagrams counted per direction.
//!
//! [`MediaInspector`] is the flow table's inspector for these protocols
//! (`streamscope_flow::Inspector`): it chooses per flow which of them reads it; the rows
//! it finds go to a [`MediaOut`].
//!
//! # Contract
//!
//! No input makes this crate panic (property tests feed it arbitrary bytes). Malformed
//! messages are counted by kind and skipped; memory per flow is bounded whatever the
//! traffic (see each type's documentation for its bounds).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod counters;

pub mod dns;
pub mod http;
mod inspector;
pub mod multicast;
pub mod quic;
pub mod rtp;
pub mod segments;
pub mod service;
pub mod tls;
pub mod ts;

pub use inspector::{
    AppRecords, Carrier, Hello, MediaBin, MediaClass, MediaInspector, MediaOut, PROBE_DATAGRAMS,
};
