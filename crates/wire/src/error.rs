//! Decode errors: why lax dissection of one packet stopped, and their counters.
//!
//! A [`DecodeError`] is a plain number: it carries no allocation and no text, so it can be
//! produced on every packet. Each kind has a stable snake_case [`name`](DecodeError::name)
//! that is used as a column or JSON key by the tools that report the counts.

/// Why lax dissection of a packet stopped (or, for a few length disagreements, what was
/// inconsistent). One kind per distinct reason; the numbering is stable and dense, so that
/// [`DecodeErrorCounts`] can be a fixed array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
#[repr(u8)]
pub enum DecodeError {
    /// The capture's link type is not one [`supported`](crate::supported) by the dissector.
    #[error("unsupported link type")]
    UnsupportedLinkType = 0,
    /// The captured data is shorter than the link-layer header (Ethernet 14 bytes,
    /// Linux SLL 16, SLL2 20, BSD loopback 4).
    #[error("link-layer header truncated")]
    LinkTruncated,
    /// An IEEE 802.1Q / 802.1ad tag is cut short (fewer than 4 bytes after its TPID).
    #[error("VLAN tag truncated")]
    VlanTruncated,
    /// A PPPoE session header (RFC 2516 section 4) plus PPP protocol field is cut short.
    #[error("PPPoE session header truncated")]
    PppoeTruncated,
    /// A PPPoE session header has a version/type other than 1/1 or a non-zero code
    /// (RFC 2516 section 4).
    #[error("invalid PPPoE session header")]
    PppoeHeader,
    /// A raw-IP link carries a packet whose version nibble is neither 4 nor 6.
    #[error("IP version is neither 4 nor 6")]
    IpVersion,
    /// An IPv4 header is inconsistent: wrong version, IHL below 5, or a total length
    /// smaller than the header itself (RFC 791 section 3.1).
    #[error("invalid IPv4 header")]
    Ipv4Header,
    /// An IPv4 header (with its options) is not completely captured, or the total length
    /// exceeds the frame although the capture did not cut the frame (snaplen). An empty
    /// raw-IP record counts here too.
    #[error("IPv4 packet truncated")]
    Ipv4Truncated,
    /// An IPv4 authentication header (RFC 4302) is truncated or invalid.
    #[error("invalid IPv4 authentication header")]
    Ipv4AuthHeader,
    /// An IPv6 header has a version other than 6 (RFC 8200 section 3).
    #[error("invalid IPv6 header")]
    Ipv6Header,
    /// The fixed 40-byte IPv6 header is not completely captured, or the payload length
    /// exceeds the frame although the capture did not cut the frame (snaplen).
    #[error("IPv6 packet truncated")]
    Ipv6Truncated,
    /// An IPv6 extension header (RFC 8200 section 4) is truncated or misplaced, or an
    /// authentication header in the chain is invalid.
    #[error("invalid IPv6 extension header")]
    Ipv6ExtHeader,
    /// A TCP header is inconsistent: data offset below 5, or a header longer than the
    /// segment the IP header describes (RFC 9293 section 3.1).
    #[error("invalid TCP header")]
    TcpHeader,
    /// A TCP header (with options) is not completely captured.
    #[error("TCP header truncated")]
    TcpTruncated,
    /// A UDP length field below 8 or disagreeing with the IP payload length (RFC 768),
    /// or an IP payload too short for the 8-byte UDP header.
    #[error("invalid UDP header")]
    UdpHeader,
    /// A UDP header is not completely captured.
    #[error("UDP header truncated")]
    UdpTruncated,
    /// An ICMP message is shorter than its 8-byte header (RFC 792).
    #[error("ICMP header truncated")]
    IcmpTruncated,
    /// An ICMPv6 message is shorter than its 8-byte header (RFC 4443 section 2.1 plus the
    /// message body word every type carries).
    #[error("ICMPv6 header truncated")]
    Icmpv6Truncated,
    /// An IGMP message is shorter than the 8-byte header common to every version
    /// (RFC 1112 appendix I, RFC 2236 section 2, RFC 9776 section 4).
    #[error("IGMP header truncated")]
    IgmpTruncated,
}

impl DecodeError {
    /// Number of kinds.
    pub const COUNT: usize = 19;

    /// Every kind, in [`index`](Self::index) order.
    pub const ALL: &'static [DecodeError] = &[
        DecodeError::UnsupportedLinkType,
        DecodeError::LinkTruncated,
        DecodeError::VlanTruncated,
        DecodeError::PppoeTruncated,
        DecodeError::PppoeHeader,
        DecodeError::IpVersion,
        DecodeError::Ipv4Header,
        DecodeError::Ipv4Truncated,
        DecodeError::Ipv4AuthHeader,
        DecodeError::Ipv6Header,
        DecodeError::Ipv6Truncated,
        DecodeError::Ipv6ExtHeader,
        DecodeError::TcpHeader,
        DecodeError::TcpTruncated,
        DecodeError::UdpHeader,
        DecodeError::UdpTruncated,
        DecodeError::IcmpTruncated,
        DecodeError::Icmpv6Truncated,
        DecodeError::IgmpTruncated,
    ];

    /// Stable snake_case name, used as a column or JSON key.
    pub const fn name(self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinkType => "unsupported_link_type",
            DecodeError::LinkTruncated => "link_truncated",
            DecodeError::VlanTruncated => "vlan_truncated",
            DecodeError::PppoeTruncated => "pppoe_truncated",
            DecodeError::PppoeHeader => "pppoe_header",
            DecodeError::IpVersion => "ip_version",
            DecodeError::Ipv4Header => "ipv4_header",
            DecodeError::Ipv4Truncated => "ipv4_truncated",
            DecodeError::Ipv4AuthHeader => "ipv4_auth_header",
            DecodeError::Ipv6Header => "ipv6_header",
            DecodeError::Ipv6Truncated => "ipv6_truncated",
            DecodeError::Ipv6ExtHeader => "ipv6_ext_header",
            DecodeError::TcpHeader => "tcp_header",
            DecodeError::TcpTruncated => "tcp_truncated",
            DecodeError::UdpHeader => "udp_header",
            DecodeError::UdpTruncated => "udp_truncated",
            DecodeError::IcmpTruncated => "icmp_truncated",
            DecodeError::Icmpv6Truncated => "icmpv6_truncated",
            DecodeError::IgmpTruncated => "igmp_truncated",
        }
    }

    /// Dense index in `0..COUNT`, the position of this kind in [`ALL`](Self::ALL).
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Per-kind decode error counters: a fixed array, no allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeErrorCounts {
    counts: [u64; DecodeError::COUNT],
}

impl DecodeErrorCounts {
    /// All counters at zero.
    pub const fn new() -> Self {
        DecodeErrorCounts {
            counts: [0; DecodeError::COUNT],
        }
    }

    /// Counts one occurrence of `err`.
    #[inline]
    pub fn add(&mut self, err: DecodeError) {
        let slot = &mut self.counts[err.index()];
        *slot = slot.saturating_add(1);
    }

    /// Counts `packet.error` if there is one.
    #[inline]
    pub fn add_opt(&mut self, err: Option<DecodeError>) {
        if let Some(err) = err {
            self.add(err);
        }
    }

    /// Occurrences of `err`.
    pub fn get(&self, err: DecodeError) -> u64 {
        self.counts[err.index()]
    }

    /// `(name, count)` for every kind, zeros included, in [`DecodeError::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DecodeError::ALL
            .iter()
            .map(move |&err| (err.name(), self.counts[err.index()]))
    }

    /// Sum over all kinds.
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |acc, &c| acc.saturating_add(c))
    }

    /// Adds every counter of `other` to this one.
    pub fn merge(&mut self, other: &DecodeErrorCounts) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_dense_and_in_index_order() {
        assert_eq!(DecodeError::ALL.len(), DecodeError::COUNT);
        for (i, err) in DecodeError::ALL.iter().enumerate() {
            assert_eq!(err.index(), i, "{err:?}");
        }
    }

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for err in DecodeError::ALL {
            let name = err.name();
            assert!(seen.insert(name), "duplicate name {name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            assert!(!name.starts_with('_') && !name.ends_with('_'), "{name}");
        }
        assert_eq!(DecodeError::Ipv6ExtHeader.name(), "ipv6_ext_header");
        assert_eq!(
            DecodeError::UnsupportedLinkType.to_string(),
            "unsupported link type"
        );
    }

    #[test]
    fn counts_add_get_total_merge() {
        let mut a = DecodeErrorCounts::new();
        a.add(DecodeError::TcpTruncated);
        a.add(DecodeError::TcpTruncated);
        a.add_opt(Some(DecodeError::IgmpTruncated));
        a.add_opt(None);
        assert_eq!(a.get(DecodeError::TcpTruncated), 2);
        assert_eq!(a.get(DecodeError::IgmpTruncated), 1);
        assert_eq!(a.get(DecodeError::UdpHeader), 0);
        assert_eq!(a.total(), 3);

        let mut b = DecodeErrorCounts::default();
        b.add(DecodeError::UdpHeader);
        b.merge(&a);
        assert_eq!(b.total(), 4);
        assert_eq!(b.get(DecodeError::TcpTruncated), 2);

        let named: Vec<_> = b.iter().filter(|&(_, c)| c > 0).collect();
        assert_eq!(
            named,
            vec![
                ("tcp_truncated", 2),
                ("udp_header", 1),
                ("igmp_truncated", 1)
            ]
        );
        assert_eq!(b.iter().count(), DecodeError::COUNT);
    }
}
