//! Direction-independent flow keys and the rule that decides which side is the client.

use std::net::IpAddr;

/// A bidirectional flow key: both directions of a conversation map to the same key.
///
/// The two endpoints are stored in a canonical order (the smaller `(address, port)`
/// first), so a lookup needs no second probe for the reverse direction. VLAN tags are
/// part of the key: the same 5-tuple on two VLANs is two flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    lo_addr: [u8; 16],
    hi_addr: [u8; 16],
    lo_port: u16,
    hi_port: u16,
    /// Outer tag in the high 16 bits, inner tag in the low 16 bits; tag + 1 so that
    /// "no tag" (0) differs from VLAN 0.
    vlan: u32,
    protocol: u8,
    ip_version: u8,
}

/// One endpoint of a packet as seen on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

/// The address as a 128-bit integer, IPv4 in the low 32 bits; its big-endian bytes are
/// the key's address bytes.
#[inline]
fn addr_int(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl std::hash::Hash for FlowKey {
    /// Hashes the key as six machine words rather than field by field (the derived
    /// version feeds the address arrays byte slices with length prefixes).
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let word = |b: &[u8; 16], i: usize| {
            u64::from_ne_bytes([
                b[i],
                b[i + 1],
                b[i + 2],
                b[i + 3],
                b[i + 4],
                b[i + 5],
                b[i + 6],
                b[i + 7],
            ])
        };
        state.write_u64(word(&self.lo_addr, 0));
        state.write_u64(word(&self.lo_addr, 8));
        state.write_u64(word(&self.hi_addr, 0));
        state.write_u64(word(&self.hi_addr, 8));
        state.write_u64(
            u64::from(self.lo_port)
                | u64::from(self.hi_port) << 16
                | u64::from(self.protocol) << 32
                | u64::from(self.ip_version) << 40,
        );
        state.write_u32(self.vlan);
    }
}

impl FlowKey {
    /// Builds the key of a packet going `src → dst`; the second value is `true` when `src`
    /// is the key's canonical low side.
    #[inline]
    pub fn new(
        src: Endpoint,
        dst: Endpoint,
        protocol: u8,
        vlan: [Option<u16>; 2],
    ) -> (FlowKey, bool) {
        // Compared as integers in registers (the same order as the byte arrays'), and
        // stored as bytes once.
        let s = addr_int(src.addr);
        let d = addr_int(dst.addr);
        let src_is_lo = (s, src.port) <= (d, dst.port);
        let (lo, lo_port, hi, hi_port) = if src_is_lo {
            (s, src.port, d, dst.port)
        } else {
            (d, dst.port, s, src.port)
        };
        let (lo_addr, hi_addr) = (lo.to_be_bytes(), hi.to_be_bytes());
        let tag = |t: Option<u16>| t.map_or(0u32, |v| u32::from(v) + 1);
        let key = FlowKey {
            lo_addr,
            hi_addr,
            lo_port,
            hi_port,
            vlan: (tag(vlan[0]) << 16) | tag(vlan[1]),
            protocol,
            ip_version: if src.addr.is_ipv4() { 4 } else { 6 },
        };
        (key, src_is_lo)
    }

    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    pub fn ip_version(&self) -> u8 {
        self.ip_version
    }

    /// Outer and inner VLAN ids.
    pub fn vlan(&self) -> [Option<u16>; 2] {
        let tag = |t: u32| (t != 0).then(|| (t - 1) as u16);
        [tag(self.vlan >> 16), tag(self.vlan & 0xffff)]
    }

    fn addr(&self, bytes: &[u8; 16]) -> IpAddr {
        if self.ip_version == 4 {
            IpAddr::from([bytes[12], bytes[13], bytes[14], bytes[15]])
        } else {
            IpAddr::from(*bytes)
        }
    }

    /// The canonical low endpoint.
    pub fn lo(&self) -> Endpoint {
        Endpoint {
            addr: self.addr(&self.lo_addr),
            port: self.lo_port,
        }
    }

    /// The canonical high endpoint.
    pub fn hi(&self) -> Endpoint {
        Endpoint {
            addr: self.addr(&self.hi_addr),
            port: self.hi_port,
        }
    }
}

/// A [`FlowKey`] as a flow-table slot holds it: 20 bytes instead of 44. IPv4 addresses
/// are kept inline; an IPv6 flow keeps its two addresses in the table's [`V6Pairs`]
/// and the index of that pair here, so that the slots of a million flows, nearly all of
/// them IPv4 on most networks, are 24 MB smaller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackedKey {
    /// IPv4: the low address (big-endian bits); IPv6: the index of the address pair.
    lo: u32,
    /// IPv4: the high address; IPv6: unused (0).
    hi: u32,
    lo_port: u16,
    hi_port: u16,
    vlan: u32,
    protocol: u8,
    ip_version: u8,
}

/// The IPv6 address pairs (low, high) of the packed keys of one table. A pair is freed
/// with its flow ([`PackedKey::release`]) and its place reused.
#[derive(Debug, Default)]
pub(crate) struct V6Pairs {
    pairs: Vec<([u8; 16], [u8; 16])>,
    free: Vec<u32>,
}

impl V6Pairs {
    /// Pairs held (for the tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pairs.len() - self.free.len()
    }

    /// Frees every pair.
    pub(crate) fn clear(&mut self) {
        self.pairs.clear();
        self.free.clear();
    }
}

/// The IPv4 address held in the last four bytes of a key's address.
#[inline]
fn v4(bytes: &[u8; 16]) -> u32 {
    u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]])
}

/// The key bytes of an IPv4 address.
#[inline]
fn v4_bytes(addr: u32) -> [u8; 16] {
    u128::from(addr).to_be_bytes()
}

impl FlowKey {
    /// The key as a slot holds it; an IPv6 key takes a pair in `v6`, which
    /// [`PackedKey::release`] gives back.
    pub(crate) fn pack(&self, v6: &mut V6Pairs) -> PackedKey {
        if let Some(packed) = PackedKey::of_v4(self) {
            return packed;
        }
        let pair = (self.lo_addr, self.hi_addr);
        let index = match v6.free.pop() {
            Some(i) => {
                v6.pairs[i as usize] = pair;
                i
            }
            None => {
                v6.pairs.push(pair);
                // A table holds fewer than 2^32 flows.
                (v6.pairs.len() - 1) as u32
            }
        };
        PackedKey {
            lo: index,
            hi: 0,
            lo_port: self.lo_port,
            hi_port: self.hi_port,
            vlan: self.vlan,
            protocol: self.protocol,
            ip_version: self.ip_version,
        }
    }
}

impl PackedKey {
    /// `key` packed, if it is an IPv4 key (which needs no pair): a lookup compares slots
    /// with it as plain integers.
    #[inline]
    pub(crate) fn of_v4(key: &FlowKey) -> Option<PackedKey> {
        (key.ip_version == 4).then(|| PackedKey {
            lo: v4(&key.lo_addr),
            hi: v4(&key.hi_addr),
            lo_port: key.lo_port,
            hi_port: key.hi_port,
            vlan: key.vlan,
            protocol: key.protocol,
            ip_version: key.ip_version,
        })
    }

    /// Whether this is `key` packed: an IPv4 key compared packed, an IPv6 key by its
    /// ports, tags and protocol and then its address pair.
    #[inline]
    pub(crate) fn matches(&self, key: &FlowKey, v6: &V6Pairs) -> bool {
        match PackedKey::of_v4(key) {
            Some(packed) => *self == packed,
            None => {
                (
                    self.lo_port,
                    self.hi_port,
                    self.vlan,
                    self.protocol,
                    self.ip_version,
                ) == (
                    key.lo_port,
                    key.hi_port,
                    key.vlan,
                    key.protocol,
                    key.ip_version,
                ) && v6.pairs.get(self.lo as usize) == Some(&(key.lo_addr, key.hi_addr))
            }
        }
    }

    /// The full key again.
    pub(crate) fn unpack(&self, v6: &V6Pairs) -> FlowKey {
        let (lo_addr, hi_addr) = if self.ip_version == 4 {
            (v4_bytes(self.lo), v4_bytes(self.hi))
        } else {
            v6.pairs.get(self.lo as usize).copied().unwrap_or_default()
        };
        FlowKey {
            lo_addr,
            hi_addr,
            lo_port: self.lo_port,
            hi_port: self.hi_port,
            vlan: self.vlan,
            protocol: self.protocol,
            ip_version: self.ip_version,
        }
    }

    /// Gives an IPv6 key's address pair back to `v6` (the key must not be used after).
    pub(crate) fn release(&self, v6: &mut V6Pairs) {
        if self.ip_version != 4 {
            v6.free.push(self.lo);
        }
    }

    pub(crate) fn protocol(&self) -> u8 {
        self.protocol
    }
}

/// How the client side of a flow was decided; see [`choose_client`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientRule {
    /// The sender of the TCP SYN (or the receiver of a SYN+ACK).
    Syn,
    /// The destination is a multicast or broadcast address: the sender is the server and
    /// the group (or broadcast address) the client, so the stream is downstream.
    Multicast,
    /// One port is a well-known or registered service port and the other is not.
    WellKnownPort,
    /// One port is in the ephemeral range (≥ 32768) and the other is not.
    EphemeralPort,
    /// No rule applied: the first sender seen is the client.
    FirstSender,
}

impl ClientRule {
    pub fn name(self) -> &'static str {
        match self {
            ClientRule::Syn => "syn",
            ClientRule::Multicast => "multicast",
            ClientRule::WellKnownPort => "well_known_port",
            ClientRule::EphemeralPort => "ephemeral_port",
            ClientRule::FirstSender => "first_sender",
        }
    }
}

/// Service ports above 1023 that are servers far more often than clients (registered
/// ports of streaming, web and signalling services).
const SERVICE_PORTS: &[u16] = &[
    1194, 1234, 1433, 1521, 1900, 1935, 3128, 3306, 3478, 4433, 5000, 5001, 5004, 5060, 5061, 5222,
    5353, 5432, 5555, 6379, 8000, 8008, 8080, 8088, 8443, 8554, 8888, 9000, 9443, 25461,
];

fn is_service_port(port: u16) -> bool {
    (1..1024).contains(&port) || SERVICE_PORTS.contains(&port)
}

fn is_multicast_or_broadcast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast() || a.octets()[3] == 255,
        IpAddr::V6(a) => a.is_multicast(),
    }
}

/// Decides whether the sender of the first packet seen (`src → dst`) is the client,
/// for flows whose first packet is not a TCP SYN or SYN+ACK (the caller handles those).
///
/// Rules, first match wins:
/// 1. destination multicast/broadcast → the sender is the server (the group is the
///    client: a channel's traffic is downstream);
/// 2. exactly one side uses a well-known port (< 1024) or a registered service port
///    (`SERVICE_PORTS`) → that side is the server;
/// 3. exactly one side uses an ephemeral port (≥ 32768) → the other side is the server;
/// 4. otherwise the first sender is the client.
///
/// Port rules apply only to protocols with ports (`has_ports`).
pub fn choose_client(src: Endpoint, dst: Endpoint, has_ports: bool) -> (bool, ClientRule) {
    if is_multicast_or_broadcast(dst.addr) {
        // The sender serves the group: the group (its receivers) is the client and the
        // stream is downstream, so a channel's bitrate is its `bitrate_down`.
        return (false, ClientRule::Multicast);
    }
    if has_ports {
        let (s, d) = (is_service_port(src.port), is_service_port(dst.port));
        if s != d {
            return (d, ClientRule::WellKnownPort);
        }
        let (s, d) = (src.port >= 32768, dst.port >= 32768);
        if s != d {
            return (s, ClientRule::EphemeralPort);
        }
    }
    (true, ClientRule::FirstSender)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(a: &str, port: u16) -> Endpoint {
        Endpoint {
            addr: a.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn both_directions_share_a_key() {
        let a = ep("10.0.0.1", 40000);
        let b = ep("10.0.0.2", 443);
        let (k1, lo1) = FlowKey::new(a, b, 6, [None, None]);
        let (k2, lo2) = FlowKey::new(b, a, 6, [None, None]);
        assert_eq!(k1, k2);
        assert_ne!(lo1, lo2);
        assert_eq!(k1.lo(), a);
        assert_eq!(k1.hi(), b);
        assert_eq!(k1.ip_version(), 4);
    }

    #[test]
    fn vlan_is_part_of_the_key() {
        let a = ep("10.0.0.1", 40000);
        let b = ep("10.0.0.2", 443);
        let (k1, _) = FlowKey::new(a, b, 6, [None, None]);
        let (k2, _) = FlowKey::new(a, b, 6, [Some(0), None]);
        let (k3, _) = FlowKey::new(a, b, 6, [Some(10), Some(13)]);
        assert_ne!(k1, k2);
        assert_eq!(k2.vlan(), [Some(0), None]);
        assert_eq!(k3.vlan(), [Some(10), Some(13)]);
    }

    #[test]
    fn ipv6_round_trips() {
        let a = ep("2001:db8::1", 5353);
        let b = ep("ff02::fb", 5353);
        let (k, _) = FlowKey::new(a, b, 17, [None, None]);
        assert_eq!(k.ip_version(), 6);
        assert!(k.lo() == a || k.hi() == a);
    }

    #[test]
    fn client_rules() {
        let c = ep("10.0.0.1", 51000);
        let s = ep("10.0.0.2", 443);
        assert_eq!(choose_client(c, s, true), (true, ClientRule::WellKnownPort));
        assert_eq!(
            choose_client(s, c, true),
            (false, ClientRule::WellKnownPort)
        );
        let m = ep("239.1.1.1", 5000);
        assert_eq!(choose_client(c, m, true), (false, ClientRule::Multicast));
        let hi = ep("10.0.0.3", 40000);
        let mid = ep("10.0.0.4", 20000);
        assert_eq!(
            choose_client(mid, hi, true),
            (false, ClientRule::EphemeralPort)
        );
        assert_eq!(
            choose_client(ep("10.0.0.3", 2000), ep("10.0.0.4", 3000), true),
            (true, ClientRule::FirstSender)
        );
        assert_eq!(choose_client(c, s, false), (true, ClientRule::FirstSender));
    }

    /// Packing keeps every field: a packed key matches its own key and no other, unpacks
    /// to it, and IPv6 pairs are reused once released.
    #[test]
    fn packed_keys_match_and_unpack() {
        let mut v6 = V6Pairs::default();
        let keys: Vec<FlowKey> = [
            (ep("10.0.0.1", 40000), ep("10.0.0.2", 443), 6, [None, None]),
            (ep("10.0.0.2", 40000), ep("10.0.0.1", 443), 6, [None, None]),
            (ep("10.0.0.1", 40000), ep("10.0.0.2", 443), 17, [None, None]),
            (
                ep("10.0.0.1", 40000),
                ep("10.0.0.2", 443),
                6,
                [Some(0), None],
            ),
            (
                ep("0.0.0.0", 0),
                ep("255.255.255.255", 65535),
                1,
                [Some(5), Some(7)],
            ),
            (
                ep("2001:db8::1", 5353),
                ep("ff02::fb", 5353),
                17,
                [None, None],
            ),
            (
                ep("2001:db8::2", 5353),
                ep("ff02::fb", 5353),
                17,
                [None, None],
            ),
            (
                ep("::ffff:10.0.0.1", 40000),
                ep("::ffff:10.0.0.2", 443),
                6,
                [None, None],
            ),
        ]
        .iter()
        .map(|&(a, b, p, v)| FlowKey::new(a, b, p, v).0)
        .collect();
        let packed: Vec<PackedKey> = keys.iter().map(|k| k.pack(&mut v6)).collect();
        assert_eq!(v6.len(), 3);
        for (i, p) in packed.iter().enumerate() {
            assert_eq!(p.unpack(&v6), keys[i]);
            for (j, k) in keys.iter().enumerate() {
                assert_eq!(p.matches(k, &v6), i == j, "{i} {j}");
            }
        }
        // An IPv4 key and its IPv4-mapped IPv6 twin stay apart.
        assert_ne!(keys[0], keys[7]);
        packed[5].release(&mut v6);
        assert_eq!(v6.len(), 2);
        let again = keys[6].pack(&mut v6);
        assert_eq!(v6.len(), 3);
        assert_eq!(again.unpack(&v6), keys[6]);
        assert!(again.matches(&keys[6], &v6) && packed[6].matches(&keys[6], &v6));
    }
}
