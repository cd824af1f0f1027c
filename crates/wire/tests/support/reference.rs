//! A reference parser for the corpus test, written from the specifications and sharing
//! nothing with the dissector under test (no etherparse, nothing from `streamscope_wire`):
//! it finds the IP header of a captured frame and reads the few fields the test needs to
//! replay tshark's view (addresses, protocol, fragment fields, transport ports).
//!
//! Link layers (<https://www.tcpdump.org/linktypes.html>): NULL (0, a 4-byte address
//! family in the capture file's byte order), Ethernet (1; 802.1Q / 802.1ad / 0x9100 tags,
//! possibly stacked; PPPoE session stage, RFC 2516, carrying PPP IPv4 or IPv6), raw IP
//! (12, 14, 101), raw IPv4 (228), raw IPv6 (229), Linux SLL (113) and SLL2 (276).
//! IPv4: RFC 791 section 3.1. IPv6: RFC 8200 sections 3 and 4 (hop-by-hop 0, routing 43,
//! destination options 60, fragment 44) and RFC 4302 (AH 51).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP header found in a frame.
#[derive(Clone, Copy, Debug)]
pub struct Ip<'a> {
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The protocol after the IPv6 extension headers (for a later fragment: the fragment
    /// header's next header).
    pub protocol: u8,
    pub fragment: Option<Fragment>,
    /// Every byte the IP length field announces is in the capture.
    pub whole: bool,
    /// The captured bytes after the IP header and its extension headers, up to the IP
    /// length: the transport header and payload, or a later fragment's data.
    pub l4: &'a [u8],
}

/// Fragment fields: the packet has more-fragments set or a non-zero offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    pub id: u32,
    /// In bytes.
    pub offset: u32,
    pub more: bool,
    /// The fragment's data length according to the IP header.
    pub len: u32,
}

impl Ip<'_> {
    /// TCP (6) or UDP (17) source and destination ports, when this packet starts its
    /// datagram (not a later fragment) and the first 4 transport bytes are captured.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.l4 {
            [a, b, c, d, ..] if self.starts_datagram() && matches!(self.protocol, 6 | 17) => {
                Some((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])))
            }
            _ => None,
        }
    }

    /// For an ICMP error (ICMPv4 types 3, 4, 5, 11, 12, RFC 792; ICMPv6 types 1 to 4,
    /// RFC 4443), the quoted IP packet that follows the 8-byte ICMP header.
    pub fn icmp_quote(&self) -> Option<Ip<'_>> {
        let kind = *self.l4.first()?;
        let error = match self.protocol {
            1 => matches!(kind, 3 | 4 | 5 | 11 | 12),
            58 => matches!(kind, 1..=4),
            _ => false,
        };
        if error && self.starts_datagram() {
            ip(self.l4.get(8..)?)
        } else {
            None
        }
    }

    /// Not a later fragment: the transport header is here.
    pub fn starts_datagram(&self) -> bool {
        self.fragment.is_none_or(|f| f.offset == 0)
    }
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

/// The IP header of a captured frame of link type `link`; `big_endian` is the capture
/// file's byte order (for the NULL link type's address family).
pub fn frame(link: u32, big_endian: bool, data: &[u8]) -> Option<Ip<'_>> {
    match link {
        0 => {
            let af: [u8; 4] = data.get(..4)?.try_into().ok()?;
            let af = if big_endian {
                u32::from_be_bytes(af)
            } else {
                u32::from_le_bytes(af)
            };
            match af {
                2 => ipv4(&data[4..]),
                24 | 28 | 30 => ipv6(&data[4..]),
                _ => None,
            }
        }
        1 => ethertype(be16(data, 12)?, &data[14..]),
        12 | 14 | 101 => ip(data),
        228 => ipv4(data),
        229 => ipv6(data),
        113 => ethertype(be16(data, 14)?, data.get(16..)?),
        276 => ethertype(be16(data, 0)?, data.get(20..)?),
        _ => None,
    }
}

/// Follows VLAN tags and PPPoE to IPv4 or IPv6.
fn ethertype(mut kind: u16, mut data: &[u8]) -> Option<Ip<'_>> {
    loop {
        match kind {
            0x0800 => return ipv4(data),
            0x86dd => return ipv6(data),
            // A tag: 2 bytes of priority and VLAN id, then the next type.
            0x8100 | 0x88a8 | 0x9100 => {
                kind = be16(data, 2)?;
                data = data.get(4..)?;
            }
            // PPPoE session: ver/type, code, session id, length, then the PPP protocol.
            0x8864 => {
                kind = match be16(data, 6)? {
                    0x0021 => 0x0800,
                    0x0057 => 0x86dd,
                    _ => return None,
                };
                data = data.get(8..)?;
            }
            _ => return None,
        }
    }
}

/// An IP packet of either version (raw IP, or an ICMP error's quote).
pub fn ip(data: &[u8]) -> Option<Ip<'_>> {
    match data.first()? >> 4 {
        4 => ipv4(data),
        6 => ipv6(data),
        _ => None,
    }
}

fn ipv4(data: &[u8]) -> Option<Ip<'_>> {
    let h = data.get(..20)?;
    let header_len = usize::from(h[0] & 0x0f) * 4;
    if h[0] >> 4 != 4 || header_len < 20 || data.len() < header_len {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let flags_offset = u16::from_be_bytes([h[6], h[7]]);
    let offset = u32::from(flags_offset & 0x1fff) * 8;
    let more = flags_offset & 0x2000 != 0;
    let end = total.min(data.len()).max(header_len);
    Some(Ip {
        version: 4,
        src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
        dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
        protocol: h[9],
        fragment: (more || offset > 0).then(|| Fragment {
            id: u32::from(u16::from_be_bytes([h[4], h[5]])),
            offset,
            more,
            len: total.saturating_sub(header_len) as u32,
        }),
        whole: data.len() >= total,
        l4: &data[header_len..end],
    })
}

fn ipv6(data: &[u8]) -> Option<Ip<'_>> {
    let h = data.get(..40)?;
    if h[0] >> 4 != 6 {
        return None;
    }
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let addr = |at: usize| {
        let bytes: [u8; 16] = h[at..at + 16].try_into().expect("16 bytes");
        IpAddr::V6(Ipv6Addr::from(bytes))
    };
    // A payload length of 0 (a jumbogram, RFC 2675): whatever is captured.
    let end = if payload_len == 0 {
        data.len()
    } else {
        (40 + payload_len).min(data.len())
    };
    let mut ip = Ip {
        version: 6,
        src: addr(8),
        dst: addr(24),
        protocol: h[6],
        fragment: None,
        whole: data.len() >= 40 + payload_len,
        l4: &data[40..end],
    };
    // Walk the extension headers; `at` is where the current one starts. A chain cut by
    // the capture or the payload length stops the walk at the header it could not read.
    let mut at = 40;
    loop {
        let rest = &data[at..end];
        let len = match ip.protocol {
            0 | 43 | 60 => rest.get(1).map(|&n| (usize::from(n) + 1) * 8),
            51 => rest.get(1).map(|&n| (usize::from(n) + 2) * 4),
            44 => Some(8),
            _ => return Some(ip),
        };
        let Some(ext) = len.and_then(|len| rest.get(..len)) else {
            return Some(ip);
        };
        if ip.protocol == 44 {
            let word = u16::from_be_bytes([ext[2], ext[3]]);
            let (offset, more) = (u32::from(word & 0xfff8), word & 1 == 1);
            if offset > 0 || more {
                ip.fragment = Some(Fragment {
                    id: u32::from_be_bytes([ext[4], ext[5], ext[6], ext[7]]),
                    offset,
                    more,
                    len: (40 + payload_len).saturating_sub(at + 8) as u32,
                });
            }
            if offset > 0 {
                // A later fragment: what follows the fragment header is fragment data.
                ip.protocol = ext[0];
                ip.l4 = &rest[8..];
                return Some(ip);
            }
        }
        ip.protocol = ext[0];
        at += ext.len();
        ip.l4 = &data[at..end];
    }
}
