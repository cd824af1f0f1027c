//! QUIC wire format: variable-length integers (RFC 9000 section 16), long headers
//! (section 17.2; RFC 9369 section 3.2 for version 2's packet types), gQUIC's public
//! header, and the frames an Initial packet may carry (section 19).

use super::crypto::Protection;
use super::{LongType, VERSION_1, VERSION_2};

/// Most bytes of a connection ID in versions 1 and 2 (RFC 9000 section 17.2).
pub(crate) const MAX_CID_LEN: usize = 20;

/// A cursor over a byte slice whose reads return `None` past the end.
pub(crate) struct Cursor<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, at: 0 }
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(b)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A variable-length integer (RFC 9000 section 16): the top two bits of the first
    /// byte give its length, 1, 2, 4 or 8 bytes.
    pub(crate) fn varint(&mut self) -> Option<u64> {
        let first = *self.buf.get(self.at)?;
        let len = 1usize << (first >> 6);
        let b = self.bytes(len)?;
        let mut v = u64::from(first & 0x3f);
        for &x in &b[1..] {
            v = v << 8 | u64::from(x);
        }
        Some(v)
    }

    /// A varint-length-prefixed run of bytes.
    pub(crate) fn varint_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        self.bytes(n)
    }

    pub(crate) fn rest(&self) -> usize {
        self.buf.len().saturating_sub(self.at)
    }
}

/// The version-independent part of a long header (RFC 8999 section 5.1).
pub(crate) struct Long<'a> {
    pub(crate) first: u8,
    pub(crate) version: u32,
    pub(crate) dcid: &'a [u8],
    /// Where the version-specific part starts.
    pub(crate) after_cids: usize,
}

/// Reads the invariant fields of the long header at the start of `d` (its first byte
/// has the top bit set).
pub(crate) fn long(d: &[u8]) -> Option<Long<'_>> {
    let mut c = Cursor::new(d);
    let first = c.u8()?;
    let version = c.u32()?;
    let dcid_len = usize::from(c.u8()?);
    let dcid = c.bytes(dcid_len)?;
    let scid_len = usize::from(c.u8()?);
    c.bytes(scid_len)?;
    Some(Long {
        first,
        version,
        dcid,
        after_cids: c.at,
    })
}

/// The long packet type of a version 1 or 2 packet from its first byte (RFC 9000
/// section 17.2, RFC 9369 section 3.2).
pub(crate) fn long_type(version: u32, first: u8) -> LongType {
    let bits = (first >> 4) & 0x03;
    match (version == VERSION_2, bits) {
        (false, 0) | (true, 1) => LongType::Initial,
        (false, 1) | (true, 2) => LongType::ZeroRtt,
        (false, 2) | (true, 3) => LongType::Handshake,
        _ => LongType::Retry,
    }
}

/// The protection of a version whose Initials are opened here: versions 1 and 2, IETF
/// drafts 23 to 34 (33 and 34 have version 1's salt), Meta's mvfst 0xfaceb002 (draft 27)
/// and 0xfaceb00e (its experimental version, draft-27 keys), as tshark opens them.
pub(crate) fn protection(version: u32) -> Option<Protection> {
    match version {
        VERSION_1 | 0xff00_0021 | 0xff00_0022 => Some(Protection::V1),
        VERSION_2 => Some(Protection::V2),
        0xff00_0017..=0xff00_001c | 0xface_b002 | 0xface_b00e => Some(Protection::Draft23),
        0xff00_001d..=0xff00_0020 => Some(Protection::Draft29),
        _ => None,
    }
}

/// Where a version 1 or 2 packet (Initial, 0-RTT or Handshake) ends and its packet
/// number starts, from its Token (Initial only) and Length fields (RFC 9000 sections
/// 17.2.1 to 17.2.4). `None` when the fields, or the bytes they announce, are not all
/// in `d`.
pub(crate) fn packet_bounds(d: &[u8], h: &Long<'_>, ty: LongType) -> Option<(usize, usize)> {
    let mut c = Cursor::new(d);
    c.at = h.after_cids;
    if ty == LongType::Initial {
        c.varint_bytes()?;
    }
    let len = usize::try_from(c.varint()?).ok()?;
    let pn_offset = c.at;
    let end = pn_offset.checked_add(len)?;
    (end <= d.len()).then_some((pn_offset, end))
}

/// The version of a gQUIC packet with the public header of versions up to Q043 (first
/// byte's top bit clear, its version flag 0x01 set, an 8-byte connection ID when flag
/// 0x08 is set, then a version `Q0xx`), as a 32-bit value.
pub(crate) fn gquic_public_header_version(d: &[u8]) -> Option<u32> {
    let first = *d.first()?;
    if first & 0x80 != 0 || first & 0x01 == 0 {
        return None;
    }
    let at = if first & 0x08 != 0 { 9 } else { 1 };
    let v = d.get(at..at + 4)?;
    let digits = v[1..].iter().all(u8::is_ascii_digit);
    (v[0] == b'Q' && digits).then(|| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
}

/// Frame types an Initial packet may carry (RFC 9000 section 12.4, table 3).
pub(crate) mod frame {
    pub const PADDING: u64 = 0x00;
    pub const PING: u64 = 0x01;
    pub const ACK: u64 = 0x02;
    pub const ACK_ECN: u64 = 0x03;
    pub const CRYPTO: u64 = 0x06;
    pub const CONNECTION_CLOSE: u64 = 0x1c;
}

/// A frame of an Initial packet, as far as it matters here.
pub(crate) enum Frame<'a> {
    Padding,
    Ping,
    Ack,
    Crypto { offset: u64, data: &'a [u8] },
    ConnectionClose,
}

/// Reads the next frame; `None` when the rest is not a frame allowed in an Initial
/// packet or is cut short.
pub(crate) fn next_frame<'a>(c: &mut Cursor<'a>) -> Option<Frame<'a>> {
    let t = c.varint()?;
    Some(match t {
        frame::PADDING => {
            // A run of padding is one frame here.
            while c.buf.get(c.at) == Some(&0) {
                c.at += 1;
            }
            Frame::Padding
        }
        frame::PING => Frame::Ping,
        frame::ACK | frame::ACK_ECN => {
            c.varint()?; // largest acknowledged
            c.varint()?; // delay
            let ranges = c.varint()?;
            c.varint()?; // first range
            for _ in 0..ranges {
                // Each range is two varints of at least one byte.
                if c.rest() < 2 {
                    return None;
                }
                c.varint()?;
                c.varint()?;
            }
            if t == frame::ACK_ECN {
                for _ in 0..3 {
                    c.varint()?;
                }
            }
            Frame::Ack
        }
        frame::CRYPTO => {
            let offset = c.varint()?;
            let data = c.varint_bytes()?;
            Frame::Crypto { offset, data }
        }
        frame::CONNECTION_CLOSE => {
            c.varint()?; // error code
            c.varint()?; // frame type
            c.varint_bytes()?; // reason
            Frame::ConnectionClose
        }
        _ => return None,
    })
}
