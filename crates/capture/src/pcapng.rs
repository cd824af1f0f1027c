//! pcapng (draft-ietf-opsawg-pcapng, "PCAP Now Generic (pcapng) Capture File Format").
//!
//! Checked here, for every block (§3.1): the 8-byte block header is present, the Block
//! Total Length is at least 12, a multiple of 4, at most [`MAX_BLOCK_LEN`] (so hostile
//! input cannot make the reader allocate more) and equal to the trailing copy. Each
//! Section Header Block (§4.1) sets the byte order from its Byte-Order Magic and must
//! have major version 1; interfaces are numbered afresh in each section. Interface
//! Description Blocks (§4.2) give the link type, snap length, `if_tsresol` (power of 10
//! or of 2) and `if_tsoffset`. Packet data comes from Enhanced Packet Blocks (§4.3),
//! Simple Packet Blocks (§4.4, no timestamp: the previous record's is used) and the
//! obsolete Packet Block (Appendix A); a packet's interface must have been described
//! in its section and its captured length must fit in the block. Every other block
//! (Name Resolution, Interface Statistics, Decryption Secrets, custom, unknown) is
//! skipped and counted. Options that cannot be parsed are ignored and counted.
//! Nothing in this module can panic: every read goes through a length-checked slice.

use crate::source::Input;
use crate::{Anomalies, Ctx, Error, LinkType, Span};

/// Largest Block Total Length accepted (16 MiB).
pub const MAX_BLOCK_LEN: u32 = 16 << 20;
/// Most interfaces accepted in one section.
pub const MAX_INTERFACES: usize = 1 << 16;

/// Block types (§10.1 "Block Type Codes").
pub(crate) mod block {
    pub const SHB: u32 = 0x0A0D_0D0A;
    pub const IDB: u32 = 1;
    pub const PB: u32 = 2;
    pub const SPB: u32 = 3;
    pub const EPB: u32 = 6;
}

/// Byte-Order Magic of the Section Header Block (§4.1).
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Option codes (§3.5, §4.2).
mod opt {
    pub const END: u16 = 0;
    pub const IF_TSRESOL: u16 = 9;
    pub const IF_TSOFFSET: u16 = 14;
}

/// Named offsets inside a block (from the block's first byte).
mod field {
    pub const TYPE: usize = 0;
    pub const TOTAL_LEN: usize = 4;
    pub const BODY: usize = 8;
    // SHB (§4.1)
    pub const SHB_BOM: usize = 8;
    pub const SHB_MAJOR: usize = 12;
    pub const SHB_MIN_LEN: usize = 28;
    // IDB (§4.2)
    pub const IDB_LINKTYPE: usize = 8;
    pub const IDB_SNAPLEN: usize = 12;
    pub const IDB_OPTIONS: usize = 16;
    pub const IDB_MIN_LEN: usize = 20;
    // EPB (§4.3) and PB (Appendix A): same layout but for the interface id width
    pub const EPB_IFACE: usize = 8;
    pub const EPB_TS_HIGH: usize = 12;
    pub const EPB_TS_LOW: usize = 16;
    pub const EPB_CAPLEN: usize = 20;
    pub const EPB_ORIG_LEN: usize = 24;
    pub const EPB_DATA: usize = 28;
    // SPB (§4.4)
    pub const SPB_ORIG_LEN: usize = 8;
    pub const SPB_DATA: usize = 12;
    /// Trailing Block Total Length.
    pub const TRAILER: usize = 4;
}

/// Smallest possible block: type, length, trailing length.
const MIN_BLOCK_LEN: usize = 12;

/// How an interface's timestamp units become nanoseconds (§4.2 `if_tsresol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TsScale {
    /// 10^-k with k ≤ 9: multiply by 10^(9-k).
    Mul(u64),
    /// 10^-k with k > 9: divide by 10^(k-9); `None` when the divisor exceeds i128.
    Div(Option<i128>),
    /// 2^-k.
    Pow2(u8),
}

impl TsScale {
    pub(crate) fn from_tsresol(v: u8) -> TsScale {
        if v & 0x80 != 0 {
            TsScale::Pow2(v & 0x7f)
        } else if v <= 9 {
            TsScale::Mul(10u64.pow(9 - u32::from(v)))
        } else {
            TsScale::Div(10i128.checked_pow(u32::from(v) - 9))
        }
    }

    /// Nanoseconds per unit, rounded up (at least 1).
    pub(crate) fn unit_ns(self) -> u64 {
        match self {
            TsScale::Mul(m) => m.max(1),
            TsScale::Div(_) => 1,
            TsScale::Pow2(k) if k < 64 => 1_000_000_000u64.div_ceil(1u64 << k).max(1),
            TsScale::Pow2(_) => 1,
        }
    }

    #[inline]
    fn to_ns(self, units: u64, offset_s: i64) -> i64 {
        let u = i128::from(units);
        let ns = match self {
            TsScale::Mul(m) => u * i128::from(m),
            TsScale::Div(Some(d)) => u / d,
            TsScale::Div(None) => 0,
            TsScale::Pow2(k) if k < 127 => (u * 1_000_000_000) >> k,
            TsScale::Pow2(_) => 0,
        };
        let total = ns + i128::from(offset_s) * 1_000_000_000;
        total.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Interface {
    pub link_type: LinkType,
    pub snaplen: u32,
    pub scale: TsScale,
    pub tsoffset: i64,
}

#[derive(Clone)]
pub(crate) struct PcapNg {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Distinct link types of all interfaces seen so far, in order of appearance.
    pub link_types: Vec<LinkType>,
    last_ts: i64,
}

#[inline]
fn rd_u32(b: &[u8], at: usize, be: bool) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

#[inline]
fn rd_u16(b: &[u8], at: usize, be: bool) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

impl PcapNg {
    /// The coarsest timestamp resolution of the interfaces seen so far, ns (1,000, the
    /// default `if_tsresol`, before any).
    pub(crate) fn ts_resolution_ns(&self) -> u64 {
        self.interfaces
            .iter()
            .map(|i| i.scale.unit_ns())
            .max()
            .unwrap_or(1_000)
    }

    /// Reads and consumes the first Section Header Block; its problems are header problems.
    pub(crate) fn read_first_section(
        input: &mut Input,
        ctx: &Ctx<'_>,
        anomalies: &mut Anomalies,
    ) -> Result<PcapNg, Error> {
        let mut ng = PcapNg {
            big_endian: false,
            interfaces: Vec::new(),
            link_types: Vec::new(),
            last_ts: 0,
        };
        match ng.block(input, ctx, anomalies, true) {
            Ok(Step::Skipped(n)) => {
                input.consume(n);
                ng.read_leading_interfaces(input, ctx, anomalies);
                Ok(ng)
            }
            Ok(_) => Err(bad_header(ctx, "a Section Header Block must come first")),
            Err(Error::Corrupt { reason, .. }) => Err(bad_header(ctx, reason)),
            Err(Error::Truncated { .. }) => Err(bad_header(
                ctx,
                "Section Header Block cut short (at least 28 bytes expected)",
            )),
            Err(e) => Err(e),
        }
    }

    /// Reads the Interface Description Blocks right after the first section header, so
    /// that the interfaces (their timestamp resolution) are known before the first
    /// record. A block that does not read cleanly is left for [`PcapNg::next`], which
    /// reports it as it would have.
    fn read_leading_interfaces(
        &mut self,
        input: &mut Input,
        ctx: &Ctx<'_>,
        anomalies: &mut Anomalies,
    ) {
        loop {
            if !matches!(input.fill(8), Ok(n) if n >= 8) {
                return;
            }
            let Some(&[a, b, c, d]) = input.window().get(..4) else {
                return;
            };
            let kind = if self.big_endian {
                u32::from_be_bytes([a, b, c, d])
            } else {
                u32::from_le_bytes([a, b, c, d])
            };
            if kind != block::IDB {
                return;
            }
            let (mut ng, mut seen) = (self.clone(), *anomalies);
            match ng.block(input, ctx, &mut seen, false) {
                Ok(Step::Skipped(n)) => {
                    input.consume(n);
                    *self = ng;
                    *anomalies = seen;
                }
                _ => return,
            }
        }
    }

    pub(crate) fn big_endian(&self) -> bool {
        self.big_endian
    }

    /// Reads blocks until a packet; returns its span (not consumed) or `None` at the end.
    #[inline]
    pub(crate) fn next(
        &mut self,
        input: &mut Input,
        ctx: &Ctx<'_>,
        anomalies: &mut Anomalies,
    ) -> Result<Option<Span>, Error> {
        loop {
            match self.block(input, ctx, anomalies, false)? {
                Step::End => return Ok(None),
                Step::Skipped(n) => input.consume(n),
                Step::Packet(span) => return Ok(Some(span)),
            }
        }
    }

    fn block(
        &mut self,
        input: &mut Input,
        ctx: &Ctx<'_>,
        anomalies: &mut Anomalies,
        first: bool,
    ) -> Result<Step, Error> {
        let offset = input.position();
        let io = |e| ctx.io(e, Some(offset));
        let avail = input.fill(field::BODY).map_err(io)?;
        if avail == 0 {
            return Ok(Step::End);
        }
        if avail < field::BODY {
            return Err(ctx.truncated(
                offset,
                "pcapng block header",
                MIN_BLOCK_LEN as u64,
                avail as u64,
            ));
        }
        let corrupt = |reason, value: u64| Error::Corrupt {
            path: ctx.path.to_path_buf(),
            offset,
            what: "pcapng block",
            reason,
            value,
        };
        let raw_type = rd_u32(input.window(), field::TYPE, false);
        let mut be = self.big_endian;
        if raw_type == block::SHB {
            // The byte order of a section comes from its own Byte-Order Magic (§4.1).
            let avail = input.fill(field::SHB_BOM + 4).map_err(io)?;
            if avail < field::SHB_BOM + 4 {
                return Err(ctx.truncated(
                    offset,
                    "pcapng section header",
                    field::SHB_MIN_LEN as u64,
                    avail as u64,
                ));
            }
            be = match rd_u32(input.window(), field::SHB_BOM, false) {
                BYTE_ORDER_MAGIC => false,
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                m => {
                    return Err(corrupt(
                        "Section Header Block byte-order magic is not 1a2b3c4d",
                        u64::from(m),
                    ))
                }
            };
        } else if first {
            return Err(corrupt(
                "a Section Header Block must come first",
                u64::from(raw_type),
            ));
        }
        let w = input.window();
        let btype = rd_u32(w, field::TYPE, be);
        let len32 = rd_u32(w, field::TOTAL_LEN, be);
        if (len32 as usize) < MIN_BLOCK_LEN {
            return Err(corrupt("block total length below 12", u64::from(len32)));
        }
        if len32 % 4 != 0 {
            return Err(corrupt(
                "block total length not a multiple of 4",
                u64::from(len32),
            ));
        }
        if len32 > MAX_BLOCK_LEN {
            return Err(corrupt("block total length above 16 MiB", u64::from(len32)));
        }
        let len = len32 as usize;
        let avail = input.fill(len).map_err(io)?;
        let w = input.window();
        if avail < len {
            // Cut by the end of input: a packet block whose header is whole is returned
            // with the bytes present; anything else is just truncation.
            let trunc = ctx.truncated(offset, "pcapng block", len as u64, avail as u64);
            let partial = match btype {
                block::EPB | block::PB | block::SPB => {
                    self.packet(btype, w.get(..avail).unwrap_or(&[]), len, offset, ctx)
                }
                _ => None,
            };
            return match partial {
                Some(Ok(mut span)) => {
                    self.count_packet(&span, btype, anomalies);
                    span.consume = avail;
                    span.then = Some(trunc);
                    Ok(Step::Packet(span))
                }
                _ => Err(trunc),
            };
        }
        let blk = w.get(..len).unwrap_or(&[]);
        let trailer = rd_u32(blk, len - field::TRAILER, be);
        if trailer != len32 {
            return Err(corrupt(
                "trailing block total length differs from the leading one",
                u64::from(trailer),
            ));
        }
        match btype {
            block::SHB => {
                if len < field::SHB_MIN_LEN {
                    return Err(corrupt(
                        "Section Header Block shorter than 28 bytes",
                        len as u64,
                    ));
                }
                let major = rd_u16(blk, field::SHB_MAJOR, be);
                if major != 1 {
                    return Err(corrupt(
                        "unsupported pcapng major version (1 expected)",
                        u64::from(major),
                    ));
                }
                self.big_endian = be;
                self.interfaces.clear();
                anomalies.sections += 1;
                Ok(Step::Skipped(len))
            }
            block::IDB => {
                if len < field::IDB_MIN_LEN {
                    return Err(corrupt(
                        "Interface Description Block shorter than 20 bytes",
                        len as u64,
                    ));
                }
                if self.interfaces.len() >= MAX_INTERFACES {
                    return Err(corrupt(
                        "more than 65536 interfaces in one section",
                        self.interfaces.len() as u64,
                    ));
                }
                let link_type = LinkType(u32::from(rd_u16(blk, field::IDB_LINKTYPE, be)));
                let snaplen = rd_u32(blk, field::IDB_SNAPLEN, be);
                let mut iface = Interface {
                    link_type,
                    snaplen,
                    scale: TsScale::Mul(1000),
                    tsoffset: 0,
                };
                let opts = blk
                    .get(field::IDB_OPTIONS..len - field::TRAILER)
                    .unwrap_or(&[]);
                if !parse_idb_options(opts, be, &mut iface) {
                    anomalies.bad_options += 1;
                }
                self.interfaces.push(iface);
                if !self.link_types.contains(&link_type) {
                    self.link_types.push(link_type);
                }
                Ok(Step::Skipped(len))
            }
            block::EPB | block::PB | block::SPB => {
                match self.packet(btype, blk, len, offset, ctx) {
                    Some(Ok(span)) => {
                        self.count_packet(&span, btype, anomalies);
                        Ok(Step::Packet(span))
                    }
                    Some(Err(e)) => Err(e),
                    None => Err(corrupt(
                        "packet block too short for its fixed fields",
                        len as u64,
                    )),
                }
            }
            _ => {
                anomalies.unknown_blocks_skipped += 1;
                Ok(Step::Skipped(len))
            }
        }
    }

    fn count_packet(&self, span: &Span, btype: u32, anomalies: &mut Anomalies) {
        let caplen = (span.hi - span.lo) as u32;
        if let Some(iface) = self.interfaces.get(span.interface as usize) {
            if iface.snaplen != 0 && caplen > iface.snaplen {
                anomalies.caplen_over_snaplen += 1;
            }
        }
        if span.orig_len < caplen {
            anomalies.orig_len_below_caplen += 1;
        }
        match btype {
            block::PB => anomalies.obsolete_packet_blocks += 1,
            block::SPB => anomalies.simple_packet_blocks += 1,
            _ => {}
        }
    }

    /// Parses a packet block. `blk` holds the bytes present (all `len` of them unless
    /// the input was cut). `None` when even the fixed fields are missing.
    #[inline]
    fn packet(
        &mut self,
        btype: u32,
        blk: &[u8],
        len: usize,
        offset: u64,
        ctx: &Ctx<'_>,
    ) -> Option<Result<Span, Error>> {
        let be = self.big_endian;
        let corrupt = |reason, value: u64| Error::Corrupt {
            path: ctx.path.to_path_buf(),
            offset,
            what: "pcapng packet block",
            reason,
            value,
        };
        if btype == block::SPB {
            if blk.len() < field::SPB_DATA || len < field::SPB_DATA + field::TRAILER {
                return None;
            }
            let Some(iface) = self.interfaces.first().copied() else {
                return Some(Err(corrupt(
                    "Simple Packet Block before any interface in its section",
                    0,
                )));
            };
            let orig_len = rd_u32(blk, field::SPB_ORIG_LEN, be);
            let room = (len - field::SPB_DATA - field::TRAILER) as u32;
            let mut caplen = orig_len.min(room);
            if iface.snaplen != 0 {
                caplen = caplen.min(iface.snaplen);
            }
            let hi = (field::SPB_DATA + caplen as usize).min(blk.len());
            return Some(Ok(Span {
                lo: field::SPB_DATA,
                hi,
                consume: len,
                ts_ns: self.last_ts,
                link_type: iface.link_type,
                interface: 0,
                orig_len,
                then: None,
            }));
        }
        if blk.len() < field::EPB_DATA || len < field::EPB_DATA + field::TRAILER {
            return None;
        }
        let iface_id = if btype == block::PB {
            u32::from(rd_u16(blk, field::EPB_IFACE, be))
        } else {
            rd_u32(blk, field::EPB_IFACE, be)
        };
        let Some(iface) = self.interfaces.get(iface_id as usize).copied() else {
            return Some(Err(corrupt(
                "interface id not described in this section",
                u64::from(iface_id),
            )));
        };
        let caplen = rd_u32(blk, field::EPB_CAPLEN, be);
        let room = len - field::EPB_DATA - field::TRAILER;
        if caplen as usize > room {
            return Some(Err(corrupt(
                "captured length larger than the block",
                u64::from(caplen),
            )));
        }
        let units = (u64::from(rd_u32(blk, field::EPB_TS_HIGH, be)) << 32)
            | u64::from(rd_u32(blk, field::EPB_TS_LOW, be));
        let ts_ns = iface.scale.to_ns(units, iface.tsoffset);
        self.last_ts = ts_ns;
        let hi = (field::EPB_DATA + caplen as usize).min(blk.len());
        Some(Ok(Span {
            lo: field::EPB_DATA,
            hi,
            consume: len,
            ts_ns,
            link_type: iface.link_type,
            interface: iface_id,
            orig_len: rd_u32(blk, field::EPB_ORIG_LEN, be),
            then: None,
        }))
    }
}

enum Step {
    End,
    Skipped(usize),
    Packet(Span),
}

fn bad_header(ctx: &Ctx<'_>, reason: &'static str) -> Error {
    Error::BadHeader {
        path: ctx.path.to_path_buf(),
        format: "pcapng",
        offset: 0,
        reason,
    }
}

/// Walks IDB options (§3.5); returns false when they are malformed (the rest is ignored).
fn parse_idb_options(mut opts: &[u8], be: bool, iface: &mut Interface) -> bool {
    while opts.len() >= 4 {
        let code = rd_u16(opts, 0, be);
        let olen = usize::from(rd_u16(opts, 2, be));
        if code == opt::END {
            return true;
        }
        let padded = (olen + 3) & !3;
        let Some(value) = opts.get(4..4 + olen) else {
            return false;
        };
        match code {
            opt::IF_TSRESOL if olen == 1 => iface.scale = TsScale::from_tsresol(value[0]),
            opt::IF_TSOFFSET if olen == 8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(value);
                iface.tsoffset = if be {
                    i64::from_be_bytes(a)
                } else {
                    i64::from_le_bytes(a)
                };
            }
            opt::IF_TSRESOL | opt::IF_TSOFFSET => return false,
            _ => {}
        }
        opts = opts.get(4 + padded..).unwrap_or(&[]);
    }
    opts.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_scales() {
        assert_eq!(TsScale::from_tsresol(6).to_ns(1_500_000, 0), 1_500_000_000);
        assert_eq!(TsScale::from_tsresol(6).unit_ns(), 1_000);
        assert_eq!(TsScale::from_tsresol(9).unit_ns(), 1);
        assert_eq!(TsScale::from_tsresol(12).unit_ns(), 1);
        assert_eq!(TsScale::from_tsresol(0x80 | 20).unit_ns(), 954);
        assert_eq!(TsScale::from_tsresol(9).to_ns(7, 0), 7);
        assert_eq!(TsScale::from_tsresol(12).to_ns(1_234_567, 0), 1_234);
        // 2^-20: 3 * 2^20 + 2^19 units = 3.5 s
        assert_eq!(
            TsScale::from_tsresol(0x80 | 20).to_ns(3 << 20 | 1 << 19, 0),
            3_500_000_000
        );
        // 1 unit of 2^-20 s = 953.674... ns, truncated like libwiretap
        assert_eq!(TsScale::from_tsresol(0x80 | 20).to_ns(1, 0), 953);
        assert_eq!(TsScale::from_tsresol(6).to_ns(0, 10), 10_000_000_000);
        assert_eq!(TsScale::from_tsresol(255).to_ns(u64::MAX, 0), 0);
        assert_eq!(TsScale::from_tsresol(0).to_ns(u64::MAX, 0), i64::MAX);
    }

    #[test]
    fn idb_options_walk() {
        let mut iface = Interface {
            link_type: LinkType(1),
            snaplen: 0,
            scale: TsScale::Mul(1000),
            tsoffset: 0,
        };
        // if_name "eth0", if_tsresol 9, if_tsoffset 5, end
        let mut o = vec![
            2, 0, 4, 0, b'e', b't', b'h', b'0', 9, 0, 1, 0, 9, 0, 0, 0, 14, 0, 8, 0,
        ];
        o.extend_from_slice(&5i64.to_le_bytes());
        o.extend_from_slice(&[0, 0, 0, 0]);
        assert!(parse_idb_options(&o, false, &mut iface));
        assert_eq!(iface.scale, TsScale::Mul(1));
        assert_eq!(iface.tsoffset, 5);
        // an option running past the end
        assert!(!parse_idb_options(&[2, 0, 40, 0, 1, 2], false, &mut iface));
    }
}
