//! One 188-byte transport packet: header and adaptation field (ISO/IEC 13818-1 sections
//! 2.4.3.2 to 2.4.3.5), read from a fixed-size array so that no accessor can panic.

use super::{SYNC_BYTE, TS_PACKET_LEN};

/// PCR wrap: the 33-bit base times 300 plus the 9-bit extension (27 MHz ticks).
pub(crate) const PCR_MODULUS: u64 = (1 << 33) * 300;
/// PCR ticks per second (27 MHz system clock, section 2.4.2.1).
pub(crate) const PCR_HZ: u64 = 27_000_000;

/// Adaptation field flags (section 2.4.3.5, byte after the length).
mod af {
    pub const DISCONTINUITY: u8 = 0x80;
    pub const PCR: u8 = 0x10;
}

/// A header read from a packet (section 2.4.3.2) plus what the adaptation field says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub sync_ok: bool,
    pub tei: bool,
    pub pusi: bool,
    pub pid: u16,
    /// transport_scrambling_control (2 bits).
    pub scrambling: u8,
    /// adaptation_field_control (2 bits): 01 payload only, 10 AF only, 11 both, 00
    /// reserved (no payload).
    pub afc: u8,
    pub cc: u8,
    /// discontinuity_indicator of the adaptation field.
    pub discontinuity: bool,
    /// PCR in 27 MHz ticks.
    pub pcr: Option<u64>,
    /// Where the payload starts (188 when there is none or the AF overruns it).
    pub payload_start: usize,
    /// The adaptation field's length byte runs past the packet (AF-only packets must
    /// have 183, packets with payload at most 182).
    pub bad_af: bool,
}

impl Header {
    /// Whether the packet carries payload bytes (adaptation_field_control 01 or 11).
    #[inline]
    pub fn has_payload(&self) -> bool {
        self.afc & 0b01 != 0
    }

    /// Reads a packet.
    #[inline]
    pub fn parse(p: &[u8; TS_PACKET_LEN]) -> Header {
        let afc = (p[3] >> 4) & 0b11;
        let mut h = Header {
            sync_ok: p[0] == SYNC_BYTE,
            tei: p[1] & 0x80 != 0,
            pusi: p[1] & 0x40 != 0,
            pid: u16::from_be_bytes([p[1] & 0x1f, p[2]]),
            scrambling: p[3] >> 6,
            afc,
            cc: p[3] & 0x0f,
            discontinuity: false,
            pcr: None,
            payload_start: 4,
            bad_af: false,
        };
        if afc & 0b10 != 0 {
            let len = usize::from(p[4]);
            // AF: length byte, then `len` bytes (section 2.4.3.4).
            let end = 5 + len;
            if end > TS_PACKET_LEN {
                h.bad_af = true;
                h.payload_start = TS_PACKET_LEN;
                return h;
            }
            h.payload_start = end;
            if len > 0 {
                let flags = p[5];
                h.discontinuity = flags & af::DISCONTINUITY != 0;
                if flags & af::PCR != 0 && len >= 7 {
                    let b = &p[6..12];
                    let base = u64::from(b[0]) << 25
                        | u64::from(b[1]) << 17
                        | u64::from(b[2]) << 9
                        | u64::from(b[3]) << 1
                        | u64::from(b[4] >> 7);
                    let ext = u64::from(b[4] & 0x01) << 8 | u64::from(b[5]);
                    h.pcr = Some(base * 300 + ext);
                }
            }
        }
        if afc & 0b01 == 0 {
            h.payload_start = TS_PACKET_LEN;
        }
        h
    }
}

/// The signed difference `b - a` of two PCRs on the 2^33 × 300 circle, in ticks.
#[inline]
pub(crate) fn pcr_delta(a: u64, b: u64) -> i64 {
    let d = ((b % PCR_MODULUS) + PCR_MODULUS - (a % PCR_MODULUS)) % PCR_MODULUS;
    if d > PCR_MODULUS / 2 {
        d as i64 - PCR_MODULUS as i64
    } else {
        d as i64
    }
}

/// PCR ticks to nanoseconds (exact to the tick's 37 ns rounding).
#[inline]
pub(crate) fn ticks_to_ns(ticks: i64) -> i64 {
    // 27 MHz: 1 tick = 1000/27 ns.
    (i128::from(ticks) * 1000 / 27) as i64
}

/// Reads the 33-bit PTS of a PES header at the start of `payload` (section 2.4.3.6 and
/// 2.4.3.7), when the header is there and has one.
pub(crate) fn pes_pts(payload: &[u8]) -> Option<u64> {
    let h = payload.get(..14)?;
    if h[0] != 0 || h[1] != 0 || h[2] != 1 {
        return None;
    }
    // Stream ids without the optional PES header (section 2.4.3.7, Table 2-22).
    match h[3] {
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF => return None,
        _ => {}
    }
    // '10' marker, then PTS_DTS_flags in the next byte.
    if h[6] & 0xC0 != 0x80 || h[7] & 0x80 == 0 {
        return None;
    }
    let p = &h[9..14];
    Some(
        u64::from(p[0] >> 1 & 0x07) << 30
            | u64::from(p[1]) << 22
            | u64::from(p[2] >> 1) << 15
            | u64::from(p[3]) << 7
            | u64::from(p[4] >> 1),
    )
}
