//! Builders of small pcap and pcapng byte strings for tests and benches, written field
//! by field from the layouts in draft-ietf-opsawg-pcap §4–5 and draft-ietf-opsawg-pcapng §4.
#![allow(dead_code)]

/// A record as owned values, to compare runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    pub ts_ns: i64,
    pub link_type: u32,
    pub interface: u32,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

pub struct W {
    pub be: bool,
    pub v: Vec<u8>,
}

impl W {
    pub fn new(be: bool) -> W {
        W { be, v: Vec::new() }
    }
    pub fn u16(&mut self, x: u16) -> &mut W {
        let b = if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.v.extend_from_slice(&b);
        self
    }
    pub fn u32(&mut self, x: u32) -> &mut W {
        let b = if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.v.extend_from_slice(&b);
        self
    }
    pub fn i64(&mut self, x: i64) -> &mut W {
        let b = if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.v.extend_from_slice(&b);
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut W {
        self.v.extend_from_slice(b);
        self
    }
    pub fn pad4(&mut self) -> &mut W {
        while self.v.len() % 4 != 0 {
            self.v.push(0);
        }
        self
    }
}

/// pcap global header (§4): version 2.4.
pub fn pcap_header(be: bool, ns: bool, snaplen: u32, linktype: u32) -> Vec<u8> {
    pcap_header_v(be, ns, 2, 4, snaplen, linktype)
}

pub fn pcap_header_v(
    be: bool,
    ns: bool,
    major: u16,
    minor: u16,
    snaplen: u32,
    linktype: u32,
) -> Vec<u8> {
    let mut w = W::new(be);
    w.u32(if ns { 0xa1b2_3c4d } else { 0xa1b2_c3d4 })
        .u16(major)
        .u16(minor)
        .u32(0)
        .u32(0)
        .u32(snaplen)
        .u32(linktype);
    w.v
}

/// pcap record (§5): header then `data` (caplen = data.len()).
pub fn pcap_record(be: bool, sec: u32, frac: u32, orig_len: u32, data: &[u8]) -> Vec<u8> {
    let mut w = W::new(be);
    w.u32(sec)
        .u32(frac)
        .u32(data.len() as u32)
        .u32(orig_len)
        .bytes(data);
    w.v
}

/// A pcapng block (§3.1) around `body` (padded to 4).
pub fn ng_block(be: bool, btype: u32, body: &[u8]) -> Vec<u8> {
    let padded = (body.len() + 3) & !3;
    let len = (12 + padded) as u32;
    let mut w = W::new(be);
    w.u32(btype).u32(len).bytes(body).pad4().u32(len);
    w.v
}

/// Section Header Block (§4.1), version 1.0, unknown section length.
pub fn shb(be: bool) -> Vec<u8> {
    let mut b = W::new(be);
    b.u32(0x1A2B_3C4D).u16(1).u16(0).i64(-1);
    ng_block(be, 0x0A0D_0D0A, &b.v)
}

/// Interface Description Block (§4.2) with optional if_tsresol and if_tsoffset.
pub fn idb(
    be: bool,
    linktype: u16,
    snaplen: u32,
    tsresol: Option<u8>,
    tsoffset: Option<i64>,
) -> Vec<u8> {
    let mut b = W::new(be);
    b.u16(linktype).u16(0).u32(snaplen);
    if let Some(r) = tsresol {
        b.u16(9).u16(1).bytes(&[r]).pad4();
    }
    if let Some(o) = tsoffset {
        b.u16(14).u16(8).i64(o);
    }
    if tsresol.is_some() || tsoffset.is_some() {
        b.u16(0).u16(0);
    }
    ng_block(be, 1, &b.v)
}

/// Enhanced Packet Block (§4.3).
pub fn epb(be: bool, iface: u32, ts: u64, orig_len: u32, data: &[u8]) -> Vec<u8> {
    let mut b = W::new(be);
    b.u32(iface)
        .u32((ts >> 32) as u32)
        .u32(ts as u32)
        .u32(data.len() as u32)
        .u32(orig_len)
        .bytes(data)
        .pad4();
    ng_block(be, 6, &b.v)
}

/// Simple Packet Block (§4.4).
pub fn spb(be: bool, orig_len: u32, data: &[u8]) -> Vec<u8> {
    let mut b = W::new(be);
    b.u32(orig_len).bytes(data).pad4();
    ng_block(be, 3, &b.v)
}

/// Obsolete Packet Block (Appendix A).
pub fn pb(be: bool, iface: u16, ts: u64, orig_len: u32, data: &[u8]) -> Vec<u8> {
    let mut b = W::new(be);
    b.u16(iface)
        .u16(0)
        .u32((ts >> 32) as u32)
        .u32(ts as u32)
        .u32(data.len() as u32)
        .u32(orig_len)
        .bytes(data)
        .pad4();
    ng_block(be, 2, &b.v)
}

/// A deterministic classic pcap of `n` Ethernet-sized records (for benches and
/// allocation tests): sizes cycle through 60..1514 bytes.
pub fn synthetic_pcap(n: usize) -> Vec<u8> {
    let mut v = pcap_header(false, false, 65535, 1);
    let payload = vec![0xabu8; 1514];
    for i in 0..n {
        let len = 60 + (i * 379) % (1514 - 60);
        v.extend_from_slice(&pcap_record(
            false,
            1_700_000_000 + (i / 1000) as u32,
            (i % 1000) as u32 * 1000,
            len as u32,
            &payload[..len],
        ));
    }
    v
}

/// The same packets as [`synthetic_pcap`] as a pcapng with one interface.
pub fn synthetic_pcapng(n: usize) -> Vec<u8> {
    let mut v = shb(false);
    v.extend_from_slice(&idb(false, 1, 0, None, None));
    let payload = vec![0xabu8; 1514];
    for i in 0..n {
        let len = 60 + (i * 379) % (1514 - 60);
        let ts = 1_700_000_000_000_000u64 + i as u64 * 1000;
        v.extend_from_slice(&epb(false, 0, ts, len as u32, &payload[..len]));
    }
    v
}
