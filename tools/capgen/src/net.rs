//! Frame writers: Ethernet II (+ 802.1Q), IPv4, IPv6, UDP and TCP with correct
//! checksums (RFC 791 §3.1, RFC 8200 §8.1, RFC 768, RFC 9293 §3.1, RFC 1071).
//!
//! A [`Path`] holds everything that is fixed for one flow (addresses, MACs, VLAN, TTLs);
//! frames are appended to a reused `Vec<u8>`, so nothing is allocated per packet.

use std::net::IpAddr;

/// EtherType values (IEEE 802.3 / IANA).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// IP protocol numbers.
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// TCP flag bits (RFC 9293 §3.1).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

const IPV4_HDR: usize = 20;
const IPV6_HDR: usize = 40;
const UDP_HDR: usize = 8;
const TCP_HDR: usize = 20;

/// The multicast MAC of a group (RFC 1112 §6.4, RFC 2464 §7).
pub fn multicast_mac(group: IpAddr) -> [u8; 6] {
    match group {
        IpAddr::V4(a) => {
            let o = a.octets();
            [0x01, 0x00, 0x5E, o[1] & 0x7F, o[2], o[3]]
        }
        IpAddr::V6(a) => {
            let o = a.octets();
            [0x33, 0x33, o[12], o[13], o[14], o[15]]
        }
    }
}

/// A locally administered unicast MAC derived from a host number.
pub fn host_mac(host: u32) -> [u8; 6] {
    let h = host.to_be_bytes();
    [0x02, 0x00, h[0], h[1], h[2], h[3]]
}

/// Per-host sender state: the IPv4 identification counter (incremented per packet).
#[derive(Debug, Clone, Copy)]
pub struct Host {
    pub ip_id: u16,
    pub next_port: u16,
    pub ttl: u8,
}

/// Endpoints and link-layer facts of one flow. "Up" is client → server.
#[derive(Debug, Clone)]
pub struct Path {
    pub v6: bool,
    pub client: IpAddr,
    pub server: IpAddr,
    pub client_port: u16,
    pub server_port: u16,
    pub vlan: Option<u16>,
    c_bytes: [u8; 16],
    s_bytes: [u8; 16],
    l2_up: [u8; 18],
    l2_down: [u8; 18],
    l2_len: usize,
    ttl_up: u8,
    ttl_down: u8,
    /// Host table indices of the sender of each direction.
    pub host_up: u32,
    pub host_down: u32,
    label_up: u32,
    label_down: u32,
}

/// Link-layer and IP facts needed to build a [`Path`].
pub struct PathSpec {
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
    pub client_mac: [u8; 6],
    /// Destination MAC of up frames and source MAC of down frames.
    pub server_mac: [u8; 6],
    pub vlan: Option<u16>,
    pub ttl_up: u8,
    pub ttl_down: u8,
    pub host_up: u32,
    pub host_down: u32,
    /// IPv6 flow labels (20 bits used).
    pub labels: (u32, u32),
}

fn addr_bytes(a: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v) => b[..4].copy_from_slice(&v.octets()),
        IpAddr::V6(v) => b.copy_from_slice(&v.octets()),
    }
    b
}

fn l2(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>, ethertype: u16) -> ([u8; 18], usize) {
    let mut h = [0u8; 18];
    h[0..6].copy_from_slice(&dst);
    h[6..12].copy_from_slice(&src);
    match vlan {
        Some(v) => {
            h[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            h[14..16].copy_from_slice(&(v & 0x0FFF).to_be_bytes());
            h[16..18].copy_from_slice(&ethertype.to_be_bytes());
            (h, 18)
        }
        None => {
            h[12..14].copy_from_slice(&ethertype.to_be_bytes());
            (h, 14)
        }
    }
}

impl Path {
    pub fn new(s: PathSpec) -> Path {
        let v6 = s.client.is_ipv6();
        let et = if v6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 };
        let (l2_up, l2_len) = l2(s.server_mac, s.client_mac, s.vlan, et);
        let (l2_down, _) = l2(s.client_mac, s.server_mac, s.vlan, et);
        Path {
            v6,
            client: s.client,
            server: s.server,
            client_port: s.client_port,
            server_port: s.server_port,
            vlan: s.vlan,
            c_bytes: addr_bytes(s.client),
            s_bytes: addr_bytes(s.server),
            l2_up,
            l2_down,
            l2_len,
            ttl_up: s.ttl_up,
            ttl_down: s.ttl_down,
            host_up: s.host_up,
            host_down: s.host_down,
            label_up: s.labels.0 & 0xF_FFFF,
            label_down: s.labels.1 & 0xF_FFFF,
        }
    }

    /// Bytes before the L4 header.
    pub fn l3_overhead(&self) -> usize {
        self.l2_len + if self.v6 { IPV6_HDR } else { IPV4_HDR }
    }

    /// Writes L2 + L3 headers (lengths and checksum filled later), returns (ip_off, l4_off).
    fn begin(
        &self,
        buf: &mut Vec<u8>,
        up: bool,
        proto: u8,
        ip_id: u16,
        df: bool,
    ) -> (usize, usize) {
        let l2h = if up { &self.l2_up } else { &self.l2_down };
        buf.extend_from_slice(&l2h[..self.l2_len]);
        let ip_off = buf.len();
        let (src, dst) = if up {
            (&self.c_bytes, &self.s_bytes)
        } else {
            (&self.s_bytes, &self.c_bytes)
        };
        let ttl = if up { self.ttl_up } else { self.ttl_down };
        if self.v6 {
            let label = if up { self.label_up } else { self.label_down };
            let w = (6u32 << 28) | label;
            buf.extend_from_slice(&w.to_be_bytes());
            buf.extend_from_slice(&[0, 0, proto, ttl]);
            buf.extend_from_slice(src);
            buf.extend_from_slice(dst);
        } else {
            let id = ip_id.to_be_bytes();
            let frag = if df { 0x40 } else { 0x00 };
            buf.extend_from_slice(&[0x45, 0, 0, 0, id[0], id[1], frag, 0, ttl, proto, 0, 0]);
            buf.extend_from_slice(&src[..4]);
            buf.extend_from_slice(&dst[..4]);
        }
        (ip_off, buf.len())
    }

    /// Fills IP length fields, the IPv4 header checksum and the L4 checksum.
    fn finish(&self, buf: &mut [u8], ip_off: usize, l4_off: usize, proto: u8, csum_at: usize) {
        let l4_len = buf.len() - l4_off;
        let src_dst: &[u8];
        let mut acc: u64;
        if self.v6 {
            buf[ip_off + 4..ip_off + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            src_dst = &buf[ip_off + 8..ip_off + 40];
            acc = sum_words(src_dst, 0);
            acc += l4_len as u64 + proto as u64;
        } else {
            let total = (IPV4_HDR + l4_len) as u16;
            buf[ip_off + 2..ip_off + 4].copy_from_slice(&total.to_be_bytes());
            let c = checksum(&buf[ip_off..ip_off + IPV4_HDR], 0);
            buf[ip_off + 10..ip_off + 12].copy_from_slice(&c.to_be_bytes());
            src_dst = &buf[ip_off + 12..ip_off + 20];
            acc = sum_words(src_dst, 0);
            acc += l4_len as u64 + proto as u64;
        }
        let mut c = checksum(&buf[l4_off..], acc);
        if proto == PROTO_UDP && c == 0 {
            c = 0xFFFF;
        }
        buf[l4_off + csum_at..l4_off + csum_at + 2].copy_from_slice(&c.to_be_bytes());
    }

    /// Appends a UDP frame; `payload` appends the datagram payload. Returns the payload length.
    pub fn udp(
        &self,
        buf: &mut Vec<u8>,
        up: bool,
        hosts: &mut [Host],
        payload: impl FnOnce(&mut Vec<u8>),
    ) -> usize {
        let id = self.next_id(up, hosts);
        let (ip_off, l4_off) = self.begin(buf, up, PROTO_UDP, id, false);
        let (sp, dp) = if up {
            (self.client_port, self.server_port)
        } else {
            (self.server_port, self.client_port)
        };
        buf.extend_from_slice(&sp.to_be_bytes());
        buf.extend_from_slice(&dp.to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0, 0]);
        payload(buf);
        let len = buf.len() - l4_off;
        buf[l4_off + 4..l4_off + 6].copy_from_slice(&(len as u16).to_be_bytes());
        self.finish(buf, ip_off, l4_off, PROTO_UDP, 6);
        len - UDP_HDR
    }

    /// Appends a TCP segment; `options` must be a multiple of 4 bytes. Returns the payload length.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        &self,
        buf: &mut Vec<u8>,
        up: bool,
        hosts: &mut [Host],
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        options: &[u8],
        payload: impl FnOnce(&mut Vec<u8>),
    ) -> usize {
        let id = self.next_id(up, hosts);
        let (ip_off, l4_off) = self.begin(buf, up, PROTO_TCP, id, true);
        let (sp, dp) = if up {
            (self.client_port, self.server_port)
        } else {
            (self.server_port, self.client_port)
        };
        let hdr_len = TCP_HDR + options.len();
        buf.extend_from_slice(&sp.to_be_bytes());
        buf.extend_from_slice(&dp.to_be_bytes());
        buf.extend_from_slice(&seq.to_be_bytes());
        buf.extend_from_slice(&ack.to_be_bytes());
        buf.push(((hdr_len / 4) as u8) << 4);
        buf.push(flags);
        buf.extend_from_slice(&window.to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0, 0]);
        buf.extend_from_slice(options);
        payload(buf);
        self.finish(buf, ip_off, l4_off, PROTO_TCP, 16);
        buf.len() - l4_off - hdr_len
    }

    fn next_id(&self, up: bool, hosts: &mut [Host]) -> u16 {
        if self.v6 {
            return 0;
        }
        let h = if up { self.host_up } else { self.host_down };
        match hosts.get_mut(h as usize) {
            Some(st) => {
                let id = st.ip_id;
                st.ip_id = st.ip_id.wrapping_add(1);
                id
            }
            None => 0,
        }
    }
}

/// Adds the big-endian 16-bit words of `data` to `acc` (unfolded).
///
/// Sums 64-bit big-endian words with end-around carry, which is the same one's
/// complement sum as summing 16-bit words (RFC 1071 §2(B), byte-order independence).
#[inline]
pub fn sum_words(data: &[u8], acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    let mut wide = acc as u128;
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        wide += w as u128;
    }
    // Fold 128 -> 64 bits with end-around carry.
    let (lo, c1) = (wide as u64).overflowing_add((wide >> 64) as u64);
    let mut s = lo.wrapping_add(c1 as u64);
    // Fold 64 -> 32 bits so the remainder additions below cannot overflow.
    s = (s & 0xFFFF_FFFF) + (s >> 32);
    s = (s & 0xFFFF_FFFF) + (s >> 32);
    let mut rest = chunks.remainder();
    while rest.len() >= 2 {
        s += u16::from_be_bytes([rest[0], rest[1]]) as u64;
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        s += (b as u64) << 8;
    }
    s
}

/// The Internet checksum (RFC 1071) of `data` plus a pre-summed `acc`.
#[inline]
pub fn checksum(data: &[u8], acc: u64) -> u16 {
    let mut s = sum_words(data, acc);
    while s >> 16 != 0 {
        s = (s & 0xFFFF) + (s >> 16);
    }
    !(s as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement 220d).
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&d, 0), !0xddf2);
        // Odd length: the last byte is padded with zero.
        assert_eq!(checksum(&[0x01], 0), !0x0100);
    }

    #[test]
    fn ipv4_header_checksum_known_value() {
        // A well-known header (Wikipedia "IPv4 header checksum"): checksum b861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h, 0), 0xb861);
    }

    #[test]
    fn multicast_macs() {
        assert_eq!(
            multicast_mac("239.129.1.2".parse().unwrap()),
            [1, 0, 0x5e, 1, 1, 2]
        );
        assert_eq!(
            multicast_mac("ff3e::8000:1".parse().unwrap()),
            [0x33, 0x33, 0x80, 0, 0, 1]
        );
    }
}
