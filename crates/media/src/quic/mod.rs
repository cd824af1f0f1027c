//! QUIC (RFC 9000, RFC 9001; version 2, RFC 9369): the client's ClientHello read from
//! its decrypted Initial packets, the versions named, packets and datagrams counted per
//! direction.
//!
//! # What is here
//!
//! * [`QuicFlow`]: the QUIC state of one UDP flow, fed each datagram's payload with its
//!   direction and time ([`QuicFlow::on_datagram`]). Each datagram is handed back to the
//!   caller as a [`QuicDatagram`] (direction, time, length, the form of its first
//!   packet): the sizes and times of short-header datagrams are what segment inference
//!   works from.
//! * The client's [`ClientHello`] (server name, ALPN, versions), read with the TLS
//!   module's reader ([`ClientHello::parse`]).
//! * [`DirStats`] per direction and [`QuicStats`], what was read and what was not, by
//!   kind. [`version_name`] names a version.
//!
//! # Packets
//!
//! A datagram holds one or more packets (RFC 9000 section 12.2). A packet whose first
//! byte has its top bit set has a long header: version, connection IDs, then for
//! versions 1 and 2 a type-specific part (section 17.2). Initial, 0-RTT and Handshake
//! packets end where their Length field says, and another packet may follow them in the
//! datagram (coalesced); a Retry or Version Negotiation packet, a packet of another
//! version and a short-header packet (top bit clear, section 17.3) take the rest of the
//! datagram. Version 2 numbers the long packet types differently (RFC 9369 section
//! 3.2): Initial 0b01, 0-RTT 0b10, Handshake 0b11, Retry 0b00.
//!
//! # Versions
//!
//! Versions 1 (0x00000001) and 2 (0x6b3343cf) are read in full, and so are the versions
//! whose Initials differ from version 1's only by their salt: IETF drafts 23 to 28 and
//! Meta's mvfst 0xfaceb002 and 0xfaceb00e (the draft-23 salt), drafts 29 to 32 (the
//! draft-29 salt), drafts 33 and 34 (version 1's), as tshark opens them. Others are
//! recognised by their long header's version field, named ([`version_name`]) and
//! counted, and not decrypted: earlier drafts (0xff0000xx), other mvfst versions
//! (0xfaceb00x), Google QUIC with an IETF long header (Q046, Q050, T050, T051:
//! 0x51303xxx, 0x54303xxx; its handshake is encrypted), reserved versions used to force
//! negotiation (0x?a?a?a?a, RFC 9000 section 15) and Version Negotiation (version 0,
//! section 17.2.1). Google QUIC up to Q043 has its own public header (top bit clear,
//! version flag 0x01, the version after an 8-byte connection ID) and is recognised by
//! it; its client hello travels in the clear, and its server name is read (`SNI` of the
//! `CHLO` message, [`QuicStats::gquic_hellos`]).
//!
//! # The client's Initial packets
//!
//! Initial packets sent by the client ([`Dir::Up`]) are opened until the ClientHello is
//! whole (RFC 9001 section 5):
//!
//! 1. keys: HKDF-Extract of the version's initial salt and the Destination Connection
//!    ID of the client's first Initial, HKDF-Expand-Label "client in", then "quic key",
//!    "quic iv", "quic hp" (version 2: "quicv2 key", "quicv2 iv", "quicv2 hp"), with
//!    HKDF-SHA256 (section 5.2). A client that got a Retry starts again with the
//!    Destination Connection ID the server chose: when a packet with another DCID does
//!    not open with the keys held, keys from its DCID are tried
//!    ([`QuicStats::keys_rederived`]).
//! 2. header protection: AES-128-ECB of the 16 bytes 4 bytes after the packet number's
//!    start gives the mask for the low bits of the first byte and for the packet number
//!    (section 5.4); the packet number is expanded from the largest seen (RFC 9000
//!    appendix A.3).
//! 3. payload: AES-128-GCM with the IV XORed with the packet number as nonce and the
//!    unprotected header as associated data (section 5.3).
//! 4. frames: PADDING, PING, ACK, CRYPTO and CONNECTION_CLOSE are read (the frames an
//!    Initial may carry, RFC 9000 section 12.4); any other ends the packet
//!    ([`QuicStats::bad_frames`]).
//! 5. CRYPTO frames are placed by their offset into a buffer of at most [`MAX_CRYPTO`]
//!    bytes (64 KiB), whatever packet and datagram they came in, in any order and
//!    duplicated or not: browsers now spread a ClientHello with a post-quantum key share
//!    (about 1.8 KB) over two or more Initial packets. Once the bytes from offset 0 hold a
//!    whole handshake message, it is read as a ClientHello, and the buffer and keys are
//!    released.
//!
//! The client gives up on the ClientHello after [`MAX_INITIALS`] Initial packets that do
//! not complete it ([`QuicStats::hello_not_found`]). The server's Initials (its
//! ServerHello) are counted, not opened: the ServerHello of QUIC (always TLS 1.3) says
//! nothing that the ClientHello and the version do not (ALPN is encrypted).
//!
//! # Not QUIC
//!
//! A flow is taken for QUIC by its first long header packet of a known version family (or
//! gQUIC public header). Short-header packets carry no version: a flow picked up after
//! its handshake is QUIC only if the caller knows so. A flow whose first
//! [`PROBE_DATAGRAMS`] datagrams show neither is given up ([`QuicFlow::is_quic`] is
//! `Some(false)`); its datagrams are then only counted.
//!
//! # Memory and cost
//!
//! A `QuicFlow` is 432 bytes inline (its counters and the ClientHello's fields
//! included). While
//! the client's Initials are being read it holds a boxed state (the keys, about 1 KB of
//! expanded AES state, and the CRYPTO buffer: what the ClientHello needs, at most
//! [`MAX_CRYPTO`] bytes, plus a scratch copy of one packet), dropped once the ClientHello
//! is read or given up. Opening an Initial costs a key derivation (once per flow), an AES
//! block and an AES-GCM decryption of about 1.2 KB; every later datagram costs a look at
//! its first bytes and a few counter updates.
//!
//! # Panics
//!
//! None: every read goes through a checked cursor; property tests feed arbitrary bytes,
//! and arbitrary bytes after a valid long header.

mod crypto;
mod flow;
mod gquic;
mod packet;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use crate::tls::ClientHello;
pub use flow::QuicFlow;
pub use streamscope_flow::Dir;

/// QUIC version 1 (RFC 9000 section 15).
pub const VERSION_1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369 section 3.1).
pub const VERSION_2: u32 = 0x6b33_43cf;

/// Largest CRYPTO stream offset reassembled in the client's Initials: 64 KiB.
pub const MAX_CRYPTO: usize = 64 * 1024;
/// Client Initial packets read in search of the ClientHello before giving up.
pub const MAX_INITIALS: u32 = 16;
/// Datagrams after which a flow with no QUIC long header (nor gQUIC public header) is
/// given up.
pub const PROBE_DATAGRAMS: u64 = 4;

/// A long header packet's type (RFC 9000 section 17.2, table 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LongType {
    /// Initial (section 17.2.2).
    Initial,
    /// 0-RTT (section 17.2.3).
    ZeroRtt,
    /// Handshake (section 17.2.4).
    Handshake,
    /// Retry (section 17.2.5).
    Retry,
}

/// The form of a datagram's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketForm {
    /// A version 1 or 2 long header packet of this type.
    Long(LongType),
    /// A Version Negotiation packet (version 0).
    VersionNegotiation,
    /// A long header packet of another version (see [`QuicFlow::version`]).
    OtherVersion,
    /// A Google QUIC packet with its own public header (up to Q043).
    Gquic,
    /// A short header (1-RTT) packet.
    Short,
    /// Not a QUIC packet (an empty datagram, a flow given up, bytes that are not QUIC).
    NotQuic,
}

impl PacketForm {
    /// Whether it has a long header.
    pub fn is_long(self) -> bool {
        matches!(
            self,
            PacketForm::Long(_) | PacketForm::VersionNegotiation | PacketForm::OtherVersion
        )
    }
}

/// One datagram as seen: the event given to [`QuicFlow::on_datagram`]'s callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuicDatagram {
    /// Which way it went.
    pub dir: Dir,
    /// Its time.
    pub ts_ns: i64,
    /// Its UDP payload length.
    pub len: u32,
    /// The form of its first packet.
    pub first: PacketForm,
    /// Packets read in it (coalesced packets, RFC 9000 section 12.2).
    pub packets: u8,
}

/// The version of a datagram that opens a QUIC connection from the client's side, or
/// `None`: a datagram padded to at least 1,200 bytes (RFC 9000 section 14.1; gQUIC pads
/// its client hellos the same way) whose first packet is an Initial of version 1 (packet
/// type 0b00) or 2 (0b01, RFC 9369), of an IETF draft, an mvfst or a gQUIC version with
/// an IETF long header (type 0b00), or a gQUIC public header carrying its version (up to
/// Q043). Reserved and unknown versions are not taken: a datagram of random bytes has the
/// top bit set half the time. `p` is the payload as captured, `len` the datagram's payload
/// length by its headers (a snap length may have cut the rest).
pub fn client_first_version(p: &[u8], len: usize) -> Option<u32> {
    if len < 1200 || p.len() < 5 {
        return None;
    }
    if p[0] & 0x80 == 0 {
        return packet::gquic_public_header_version(p).filter(|_| p[0] & 0x08 != 0);
    }
    if p[0] & 0x40 == 0 {
        return None;
    }
    let version = u32::from_be_bytes([p[1], p[2], p[3], p[4]]);
    let kind = (p[0] >> 4) & 3;
    let initial = match VersionKind::of(version) {
        VersionKind::V2 => kind == 1,
        VersionKind::V1 | VersionKind::Draft(_) | VersionKind::Mvfst | VersionKind::Gquic => {
            kind == 0
        }
        VersionKind::Negotiation | VersionKind::Reserved | VersionKind::Unknown => false,
    };
    initial.then_some(version)
}

/// What a version is (see [`version_name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VersionKind {
    /// 0: Version Negotiation.
    Negotiation,
    /// Version 1.
    V1,
    /// Version 2.
    V2,
    /// An IETF draft, 0xff0000xx (the draft number).
    Draft(u8),
    /// Meta's mvfst, 0xfaceb00x.
    Mvfst,
    /// Google QUIC, `Q0xx` or `T0xx` in ASCII.
    Gquic,
    /// Reserved to exercise negotiation, 0x?a?a?a?a (RFC 9000 section 15).
    Reserved,
    /// Anything else.
    Unknown,
}

impl VersionKind {
    /// What `v` is.
    pub fn of(v: u32) -> VersionKind {
        let b = v.to_be_bytes();
        match v {
            0 => VersionKind::Negotiation,
            VERSION_1 => VersionKind::V1,
            VERSION_2 => VersionKind::V2,
            0xff00_0000..=0xff00_00ff => VersionKind::Draft(b[3]),
            0xface_b000..=0xface_b00f => VersionKind::Mvfst,
            _ if v & 0x0f0f_0f0f == 0x0a0a_0a0a => VersionKind::Reserved,
            _ if matches!(b[0], b'Q' | b'T') && b[1..].iter().all(u8::is_ascii_digit) => {
                VersionKind::Gquic
            }
            _ => VersionKind::Unknown,
        }
    }
}

/// A version's name: `negotiation`, `v1`, `v2`, `draft-29`, `mvfst-0xfaceb00e`, `Q046`,
/// `T051`, `reserved-0x1a2a3a4a`, else `0x` and its eight hex digits.
pub fn version_name(v: u32) -> Cow<'static, str> {
    match VersionKind::of(v) {
        VersionKind::Negotiation => "negotiation".into(),
        VersionKind::V1 => "v1".into(),
        VersionKind::V2 => "v2".into(),
        VersionKind::Draft(n) => format!("draft-{n}").into(),
        VersionKind::Mvfst => format!("mvfst-0x{v:08x}").into(),
        VersionKind::Gquic => String::from_utf8_lossy(&v.to_be_bytes())
            .into_owned()
            .into(),
        VersionKind::Reserved => format!("reserved-0x{v:08x}").into(),
        VersionKind::Unknown => format!("0x{v:08x}").into(),
    }
}

/// Counts of one direction's datagrams and packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Datagrams.
    pub datagrams: u64,
    /// Their UDP payload bytes.
    pub bytes: u64,
    /// Long header packets (all versions).
    pub long_packets: u64,
    /// Short header packets.
    pub short_packets: u64,
    /// Short header datagrams' UDP payload bytes.
    pub short_bytes: u64,
}

counters! {
    /// What the QUIC reader read and did not, by kind (add flows with `merge`).
    pub struct QuicStats {
        /// Datagrams.
        pub datagrams: u64,
        /// Initial packets (versions 1 and 2).
        pub initial_packets: u64,
        /// 0-RTT packets.
        pub zero_rtt_packets: u64,
        /// Handshake packets.
        pub handshake_packets: u64,
        /// Retry packets.
        pub retry_packets: u64,
        /// Version Negotiation packets.
        pub version_negotiation_packets: u64,
        /// Long header packets of versions only named (drafts, mvfst, gQUIC, reserved).
        pub other_version_packets: u64,
        /// Long header packets of versions not known at all.
        pub unknown_version_packets: u64,
        /// gQUIC packets with the public header of Q043 and before.
        pub gquic_packets: u64,
        /// Short header packets.
        pub short_packets: u64,
        /// Long header packets cut short (their header, or the length it announces, not
        /// all in the datagram: a snap length, or not QUIC).
        pub truncated_packets: u64,
        /// Datagrams with bytes after their last packet that are not a packet.
        pub trailing_bytes: u64,
        /// Client Initial packets opened.
        pub initials_opened: u64,
        /// Client Initial packets that did not open (their tag did not verify).
        pub initials_not_opened: u64,
        /// Client Initial packets too short to open.
        pub initials_too_short: u64,
        /// Keys derived again from a later Initial's DCID (after a Retry).
        pub keys_rederived: u64,
        /// CRYPTO frames read.
        pub crypto_frames: u64,
        /// ACK frames read.
        pub ack_frames: u64,
        /// PING frames read.
        pub ping_frames: u64,
        /// CONNECTION_CLOSE frames read.
        pub connection_close_frames: u64,
        /// Frames that are not allowed in an Initial, or cut short: the rest of their
        /// packet is not read.
        pub bad_frames: u64,
        /// CRYPTO data past `MAX_CRYPTO`, or in too many pieces: the ClientHello is given
        /// up.
        pub crypto_overflow: u64,
        /// ClientHellos read.
        pub client_hellos: u64,
        /// gQUIC client hellos (`CHLO`, up to Q043, in the clear) whose server name was
        /// read.
        pub gquic_hellos: u64,
        /// CRYPTO streams whose first message is not a ClientHello, or does not parse.
        pub bad_client_hello: u64,
        /// Flows that gave up on the ClientHello after `MAX_INITIALS` Initials.
        pub hello_not_found: u64,
        /// Flows that ended with a ClientHello partly reassembled.
        pub hello_incomplete: u64,
        /// Flows given up as not QUIC.
        pub not_quic: u64,
    }
}
