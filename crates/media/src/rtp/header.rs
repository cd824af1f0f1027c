//! Checked reading of RTP fixed headers (RFC 3550 section 5.1) and RTCP compound packets
//! (RFC 3550 section 6, RFC 3550 appendix A.2). Every accessor works on lengths checked
//! first; nothing here can panic.

/// Named byte offsets of the RTP fixed header.
mod field {
    pub const FLAGS: usize = 0;
    pub const MARKER_PT: usize = 1;
    pub const SEQ: usize = 2;
    pub const TIMESTAMP: usize = 4;
    pub const SSRC: usize = 8;
    /// Length of the fixed header.
    pub const FIXED_LEN: usize = 12;
    /// Length of the header extension's own header (profile, length in words).
    pub const EXT_HEADER_LEN: usize = 4;
}

/// RTP and RTCP version (RFC 3550 section 5.1).
pub const VERSION: u8 = 2;

/// The second byte values (marker bit and payload type together) that RFC 5761 section
/// 4 leaves to RTCP: packet types 192 to 223, i.e. RTP payload types 64 to 95 with the
/// marker bit set. This covers the RTCP types 200 to 204 (RFC 3550), 205 and 206
/// (RFC 4585 feedback), 207 (RFC 3611 XR) and 192 to 195 (historic).
pub const RTCP_RANGE: core::ops::RangeInclusive<u8> = 192..=223;

/// Why a datagram is not an RTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Shorter than the 12-byte fixed header.
    TooShort,
    /// Version field other than 2.
    Version,
    /// Marker and payload type in the RTCP range (RFC 5761 section 4), yet not a valid
    /// RTCP compound packet.
    RtcpRange,
    /// The CSRC list (4 bytes each) runs past the end.
    Csrc,
    /// The header extension runs past the end.
    Extension,
    /// The padding count is zero or longer than what follows the header.
    Padding,
}

/// The fields of an RTP header that the analyser uses, and where the payload lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    /// The marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Offset of the payload: after the fixed header, the CSRCs and the extension.
    pub payload_start: usize,
    /// Offset of the end of the payload: before the padding.
    pub payload_end: usize,
}

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at + 2) {
        Some(&[x, y]) => Some(u16::from_be_bytes([x, y])),
        _ => None,
    }
}

#[inline]
fn be32(b: &[u8], at: usize) -> Option<u32> {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => Some(u32::from_be_bytes([a, c, d, e])),
        _ => None,
    }
}

/// Reads an RTP header (RFC 3550 section 5.1): version 2, the CSRC list and the header
/// extension (section 5.3.1) within the datagram, and a padding count (last byte, when P
/// is set) of at least 1 that fits after them. A second byte in [`RTCP_RANGE`] is
/// rejected ([`Reject::RtcpRange`]).
pub fn parse_rtp(b: &[u8]) -> Result<RtpHeader, Reject> {
    let (Some(&flags), Some(&mpt)) = (b.get(field::FLAGS), b.get(field::MARKER_PT)) else {
        return Err(Reject::TooShort);
    };
    if flags >> 6 != VERSION {
        return Err(Reject::Version);
    }
    if RTCP_RANGE.contains(&mpt) {
        return Err(Reject::RtcpRange);
    }
    let (Some(seq), Some(timestamp), Some(ssrc)) = (
        be16(b, field::SEQ),
        be32(b, field::TIMESTAMP),
        be32(b, field::SSRC),
    ) else {
        return Err(Reject::TooShort);
    };
    let padding = flags & 0x20 != 0;
    let extension = flags & 0x10 != 0;
    let csrc_count = usize::from(flags & 0x0f);
    let mut start = field::FIXED_LEN + 4 * csrc_count;
    if start > b.len() {
        return Err(Reject::Csrc);
    }
    if extension {
        let words = be16(b, start + 2).ok_or(Reject::Extension)?;
        start += field::EXT_HEADER_LEN + 4 * usize::from(words);
        if start > b.len() {
            return Err(Reject::Extension);
        }
    }
    let mut end = b.len();
    if padding {
        let count = usize::from(b.last().copied().unwrap_or(0));
        if count == 0 || count > end - start {
            return Err(Reject::Padding);
        }
        end -= count;
    }
    Ok(RtpHeader {
        marker: mpt & 0x80 != 0,
        payload_type: mpt & 0x7f,
        seq,
        timestamp,
        ssrc,
        payload_start: start,
        payload_end: end,
    })
}

/// RTCP packet types (RFC 3550 section 12.1, RFC 4585, RFC 3611).
#[allow(dead_code)] // The full list, for reference; the analyser counts the first four.
pub mod rtcp_type {
    /// Sender report.
    pub const SR: u8 = 200;
    /// Receiver report.
    pub const RR: u8 = 201;
    /// Source description.
    pub const SDES: u8 = 202;
    /// Goodbye.
    pub const BYE: u8 = 203;
    /// Application-defined.
    pub const APP: u8 = 204;
    /// Transport-layer feedback (RFC 4585).
    pub const RTPFB: u8 = 205;
    /// Payload-specific feedback (RFC 4585).
    pub const PSFB: u8 = 206;
    /// Extended report (RFC 3611).
    pub const XR: u8 = 207;
}

/// Length of a report block (RFC 3550 section 6.4.1).
const REPORT_BLOCK_LEN: usize = 24;
/// Offset of an SR's first report block: header, SSRC, 20 bytes of sender info.
const SR_BLOCKS: usize = 28;
/// Offset of an RR's first report block: header and SSRC.
const RR_BLOCKS: usize = 8;

/// One RTCP packet of a compound packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtcpPacket<'a> {
    /// Packet type (200 SR, 201 RR, ...).
    pub packet_type: u8,
    /// The 5-bit count field (report blocks for SR / RR).
    pub count: u8,
    /// The whole packet, its header included (padding included for the last).
    pub bytes: &'a [u8],
}

/// A sender report's sender info (RFC 3550 section 6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderInfo {
    /// The sender's SSRC.
    pub ssrc: u32,
    /// The sender's packet count.
    pub packets: u32,
    /// The sender's octet count (payload octets).
    pub octets: u32,
}

/// A report block of an SR or RR (RFC 3550 section 6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportBlock {
    /// The reporter's SSRC.
    pub reporter: u32,
    /// The source this block reports on.
    pub source: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative number of packets lost (24-bit signed: duplicates may make it
    /// negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
}

impl<'a> RtcpPacket<'a> {
    /// The sender info of an SR.
    pub fn sender_info(&self) -> Option<SenderInfo> {
        if self.packet_type != rtcp_type::SR {
            return None;
        }
        Some(SenderInfo {
            ssrc: be32(self.bytes, 4)?,
            packets: be32(self.bytes, 20)?,
            octets: be32(self.bytes, 24)?,
        })
    }

    /// The report blocks of an SR or RR (none for other types), as many as the count
    /// says and the packet holds.
    pub fn report_blocks(&self) -> impl Iterator<Item = ReportBlock> + 'a {
        let bytes = self.bytes;
        let first = match self.packet_type {
            rtcp_type::SR => Some(SR_BLOCKS),
            rtcp_type::RR => Some(RR_BLOCKS),
            _ => None,
        };
        let reporter = be32(bytes, 4).unwrap_or(0);
        let count = if first.is_some() { self.count } else { 0 };
        (0..usize::from(count)).map_while(move |i| {
            let at = first? + i * REPORT_BLOCK_LEN;
            let b = bytes.get(at..at + REPORT_BLOCK_LEN)?;
            let lost = u32::from_be_bytes([0, b[5], b[6], b[7]]);
            // Sign-extend the 24-bit count.
            let cumulative_lost = ((lost << 8) as i32) >> 8;
            Some(ReportBlock {
                reporter,
                source: be32(b, 0)?,
                fraction_lost: b[4],
                cumulative_lost,
                highest_seq: be32(b, 8)?,
                jitter: be32(b, 12)?,
            })
        })
    }
}

/// Whether `b` is a valid RTCP compound packet (RFC 3550 appendix A.2, relaxed for
/// RFC 5506 reduced-size RTCP): it starts in [`RTCP_RANGE`], and its packets, each of
/// version 2 with a type in that range, follow each other by their length fields to
/// exactly the end of the datagram, only the last with padding. SR and RR must hold
/// their report blocks.
pub fn is_rtcp(b: &[u8]) -> bool {
    match b.get(1) {
        Some(t) if RTCP_RANGE.contains(t) => {}
        _ => return false,
    }
    let mut n = 0usize;
    let mut ok = true;
    for p in rtcp_packets(b) {
        match p {
            Some(p) => {
                n += 1;
                let need = match p.packet_type {
                    rtcp_type::SR => SR_BLOCKS + REPORT_BLOCK_LEN * usize::from(p.count),
                    rtcp_type::RR => RR_BLOCKS + REPORT_BLOCK_LEN * usize::from(p.count),
                    _ => 4,
                };
                if p.bytes.len() < need {
                    ok = false;
                }
            }
            None => ok = false,
        }
    }
    ok && n > 0
}

/// The packets of a compound packet; `None` marks a bad one (the walk then stops).
pub fn rtcp_packets(b: &[u8]) -> impl Iterator<Item = Option<RtcpPacket<'_>>> {
    let mut at = 0usize;
    let mut done = false;
    core::iter::from_fn(move || {
        if done || at >= b.len() {
            return None;
        }
        let bad = |done: &mut bool| {
            *done = true;
            Some(None)
        };
        let (Some(&flags), Some(&packet_type), Some(words)) =
            (b.get(at), b.get(at + 1), be16(b, at + 2))
        else {
            return bad(&mut done);
        };
        let len = 4 * (usize::from(words) + 1);
        if flags >> 6 != VERSION || !RTCP_RANGE.contains(&packet_type) {
            return bad(&mut done);
        }
        let Some(bytes) = b.get(at..at + len) else {
            return bad(&mut done);
        };
        at += len;
        // Padding only in the last packet of the compound.
        if flags & 0x20 != 0 && at != b.len() {
            return bad(&mut done);
        }
        Some(Some(RtcpPacket {
            packet_type,
            count: flags & 0x1f,
            bytes,
        }))
    })
}
