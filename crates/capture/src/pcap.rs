//! Classic pcap (draft-ietf-opsawg-pcap, "PCAP Capture File Format").
//!
//! Checked here: the magic number (§4, four values: µs or ns, either byte order), the
//! major version (2; also 543, DG/UX), the record header (§5) being present in full,
//! the captured length against 262144 bytes (libwiretap's
//! `WTAP_MAX_PACKET_SIZE_STANDARD`). A captured length above the snap length is accepted
//! and counted, as libpcap and Wireshark do. Files older than format 2.3 store the
//! captured and original lengths in the other order; like libpcap and libwiretap we swap
//! them back (always before 2.3, and in 2.3 when the captured length is the larger).
//! Nothing in this module can panic: every read goes through a length-checked slice.

use crate::source::Input;
use crate::{Anomalies, Ctx, Error, LinkType, Span};

/// Global header length (§4).
pub(crate) const HEADER_LEN: usize = 24;
/// Record header length (§5).
pub(crate) const RECORD_HEADER_LEN: usize = 16;
/// Largest captured length accepted: libwiretap's `WTAP_MAX_PACKET_SIZE_STANDARD`.
pub const MAX_CAPLEN: u32 = 262_144;

/// Magic number of a microsecond-resolution file, as a native integer (§4).
pub(crate) const MAGIC_US: u32 = 0xa1b2_c3d4;
/// Magic number of a nanosecond-resolution file (§4).
pub(crate) const MAGIC_NS: u32 = 0xa1b2_3c4d;

/// Named offsets of the global header (§4).
mod field {
    pub type Field = core::ops::Range<usize>;
    pub const MAGIC: Field = 0..4;
    pub const VERSION_MAJOR: Field = 4..6;
    pub const VERSION_MINOR: Field = 6..8;
    pub const SNAPLEN: Field = 16..20;
    pub const LINKTYPE: Field = 20..24;
    // Record header (§5).
    pub const TS_SEC: Field = 0..4;
    pub const TS_FRAC: Field = 4..8;
    pub const CAPLEN: Field = 8..12;
    pub const ORIG_LEN: Field = 12..16;
}

/// `P` bit of the LinkType and additional information field: the FCS length is valid (§4).
const FCS_PRESENT: u32 = 0x0400_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Swap {
    Not,
    Maybe,
    Always,
}

/// What the pcap global header says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pcap {
    pub big_endian: bool,
    pub nanosecond: bool,
    pub snaplen: u32,
    pub link_type: LinkType,
    /// FCS length in bytes when the header says one is present (§4: in 16-bit words).
    pub fcs_len: Option<u8>,
    swap: Swap,
}

#[inline]
fn u32_at(b: &[u8], f: field::Field, be: bool) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(f) {
        if s.len() == 4 {
            a.copy_from_slice(s);
        }
    }
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

#[inline]
fn u16_at(b: &[u8], f: field::Field, be: bool) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(f) {
        if s.len() == 2 {
            a.copy_from_slice(s);
        }
    }
    if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

/// Byte order and resolution for a magic number read little-endian, if it is a pcap one.
pub(crate) fn sniff(magic: [u8; 4]) -> Option<(bool, bool)> {
    match (u32::from_le_bytes(magic), u32::from_be_bytes(magic)) {
        (MAGIC_US, _) => Some((false, false)),
        (MAGIC_NS, _) => Some((false, true)),
        (_, MAGIC_US) => Some((true, false)),
        (_, MAGIC_NS) => Some((true, true)),
        _ => None,
    }
}

impl Pcap {
    /// Reads and consumes the 24-byte global header.
    pub(crate) fn read_header(input: &mut Input, ctx: &Ctx<'_>) -> Result<Pcap, Error> {
        let avail = input.fill(HEADER_LEN).map_err(|e| ctx.io(e, Some(0)))?;
        let bad = |reason| Error::BadHeader {
            path: ctx.path.to_path_buf(),
            format: "pcap",
            offset: 0,
            reason,
        };
        if avail < HEADER_LEN {
            return Err(bad("file header cut short: 24 bytes expected"));
        }
        let h = input.window();
        let mut magic = [0u8; 4];
        magic.copy_from_slice(h.get(field::MAGIC).unwrap_or(&[0; 4]));
        let (big_endian, nanosecond) = sniff(magic).ok_or_else(|| bad("unknown magic"))?;
        let major = u16_at(h, field::VERSION_MAJOR, big_endian);
        let minor = u16_at(h, field::VERSION_MINOR, big_endian);
        let swap = match (major, minor) {
            (2, m) if m < 3 => Swap::Always,
            (2, 3) => Swap::Maybe,
            (2, _) => Swap::Not,
            (543, _) => Swap::Always,
            _ => return Err(bad("unsupported major version (2 expected)")),
        };
        let snaplen = u32_at(h, field::SNAPLEN, big_endian);
        let lt = u32_at(h, field::LINKTYPE, big_endian);
        let fcs_len = if lt & FCS_PRESENT != 0 {
            Some((((lt >> 28) & 0xf) * 2) as u8)
        } else {
            None
        };
        input.consume(HEADER_LEN);
        Ok(Pcap {
            big_endian,
            nanosecond,
            snaplen,
            link_type: LinkType(lt & 0xffff),
            fcs_len,
            swap,
        })
    }

    /// Parses the record at the current position (§5) without consuming it.
    #[inline(always)]
    pub(crate) fn next(
        &self,
        input: &mut Input,
        ctx: &Ctx<'_>,
        anomalies: &mut Anomalies,
    ) -> Result<Option<Span>, Error> {
        let offset = input.position();
        let avail = input
            .fill(RECORD_HEADER_LEN)
            .map_err(|e| ctx.io(e, Some(offset)))?;
        if avail == 0 {
            return Ok(None);
        }
        if avail < RECORD_HEADER_LEN {
            return Err(ctx.truncated(
                offset,
                "pcap record header",
                RECORD_HEADER_LEN as u64,
                avail as u64,
            ));
        }
        let h = input.window();
        let be = self.big_endian;
        let sec = u32_at(h, field::TS_SEC, be);
        let frac = u32_at(h, field::TS_FRAC, be);
        let mut caplen = u32_at(h, field::CAPLEN, be);
        let mut orig_len = u32_at(h, field::ORIG_LEN, be);
        if self.swap == Swap::Always || (self.swap == Swap::Maybe && caplen > orig_len) {
            core::mem::swap(&mut caplen, &mut orig_len);
            anomalies.lengths_swapped += 1;
        }
        if caplen > MAX_CAPLEN {
            return Err(Error::Corrupt {
                path: ctx.path.to_path_buf(),
                offset,
                what: "pcap record",
                reason: "captured length above 262144 (WTAP_MAX_PACKET_SIZE_STANDARD)",
                value: u64::from(caplen),
            });
        }
        if self.snaplen != 0 && caplen > self.snaplen {
            anomalies.caplen_over_snaplen += 1;
        }
        if orig_len < caplen {
            anomalies.orig_len_below_caplen += 1;
        }
        let ts_ns = i64::from(sec) * 1_000_000_000
            + if self.nanosecond {
                i64::from(frac)
            } else {
                i64::from(frac) * 1000
            };
        let need = RECORD_HEADER_LEN + caplen as usize;
        let avail = input.fill(need).map_err(|e| ctx.io(e, Some(offset)))?;
        let mut span = Span {
            lo: RECORD_HEADER_LEN,
            hi: need,
            consume: need,
            ts_ns,
            link_type: self.link_type,
            interface: 0,
            orig_len,
            then: None,
        };
        if avail < need {
            span.hi = avail;
            span.consume = avail;
            span.then = Some(ctx.truncated(offset, "pcap record", need as u64, avail as u64));
        }
        Ok(Some(span))
    }
}
