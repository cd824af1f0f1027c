//! Link-layer headers that etherparse does not slice the way captures need them.
//!
//! * Linux cooked capture v1 and v2: etherparse's `LinuxSllSlice` rejects ARPHRD values
//!   it does not know (for example `ARPHRD_LOOPBACK` and `ARPHRD_NONE`, which the Linux
//!   "any" device and tun interfaces produce), so the header is read here, as libpcap
//!   and Wireshark read it: the protocol field is an EtherType for every hardware type
//!   except the few listed in [`sll_protocol_is_ethertype`].
//! * BSD loopback (`DLT_NULL`, `DLT_LOOP`): a 4-byte address family.
//! * PPPoE session stage (RFC 2516) carrying PPP (RFC 1661).
//!
//! Each view is created with a `new_checked` function that verifies the length once;
//! after that no accessor can panic.

use crate::ethertype;

fn be16(data: &[u8], at: usize) -> u16 {
    match data.get(at..at + 2) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// Linux cooked capture v1 (`LINKTYPE_LINUX_SLL`, 113): a 16-byte pseudo header.
///
/// Layout (<https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html>): packet type (2),
/// ARPHRD type (2), link-layer address length (2), address (8), protocol (2).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinuxSll<'a> {
    data: &'a [u8],
}

mod sll {
    pub const ARPHRD: usize = 2;
    pub const PROTOCOL: usize = 14;
    pub const LEN: usize = 16;
}

impl<'a> LinuxSll<'a> {
    pub(crate) fn new_checked(data: &'a [u8]) -> Option<Self> {
        (data.len() >= sll::LEN).then_some(LinuxSll { data })
    }
    pub(crate) fn arphrd(&self) -> u16 {
        be16(self.data, sll::ARPHRD)
    }
    pub(crate) fn protocol(&self) -> u16 {
        be16(self.data, sll::PROTOCOL)
    }
    pub(crate) fn payload(&self) -> &'a [u8] {
        self.data.get(sll::LEN..).unwrap_or(&[])
    }
}

/// Linux cooked capture v2 (`LINKTYPE_LINUX_SLL2`, 276): a 20-byte pseudo header.
///
/// Layout (<https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html>): protocol (2),
/// reserved (2), interface index (4), ARPHRD type (2), packet type (1), address
/// length (1), address (8).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinuxSll2<'a> {
    data: &'a [u8],
}

mod sll2 {
    pub const PROTOCOL: usize = 0;
    pub const ARPHRD: usize = 8;
    pub const LEN: usize = 20;
}

impl<'a> LinuxSll2<'a> {
    pub(crate) fn new_checked(data: &'a [u8]) -> Option<Self> {
        (data.len() >= sll2::LEN).then_some(LinuxSll2 { data })
    }
    pub(crate) fn arphrd(&self) -> u16 {
        be16(self.data, sll2::ARPHRD)
    }
    pub(crate) fn protocol(&self) -> u16 {
        be16(self.data, sll2::PROTOCOL)
    }
    pub(crate) fn payload(&self) -> &'a [u8] {
        self.data.get(sll2::LEN..).unwrap_or(&[])
    }
}

/// `ARPHRD_NETLINK`: the SLL protocol field is a netlink family.
const ARPHRD_NETLINK: u16 = 824;
/// `ARPHRD_IEEE80211_RADIOTAP`: the protocol field carries no meaning.
const ARPHRD_IEEE80211_RADIOTAP: u16 = 803;
/// `ARPHRD_FRAD`: the protocol field carries no meaning.
const ARPHRD_FRAD: u16 = 770;
/// Protocol values below this are Linux's own `ETH_P_*` pseudo protocols (802.2 LLC,
/// 802.3, CAN...), not EtherTypes (IEEE 802.3 clause 3.2.6: 1536 and above are types).
pub(crate) const MIN_ETHERTYPE: u16 = 0x0600;

/// Whether a Linux SLL / SLL2 protocol field is an EtherType worth dispatching on.
pub(crate) fn sll_protocol_is_ethertype(arphrd: u16, protocol: u16) -> bool {
    protocol >= MIN_ETHERTYPE
        && !matches!(
            arphrd,
            ARPHRD_NETLINK | ARPHRD_IEEE80211_RADIOTAP | ARPHRD_FRAD
        )
}

/// BSD loopback address family (`LINKTYPE_NULL` 0 in host byte order of the capturing
/// machine, `LINKTYPE_LOOP` 108 in network byte order). Both byte orders are accepted
/// for both link types, as libpcap and Wireshark do.
///
/// Returns the EtherType equivalent (IPv4 or IPv6) or `None` for other families.
/// `AF_INET` is 2 everywhere; `AF_INET6` is 24 (NetBSD, OpenBSD, BSD/OS), 28 (FreeBSD,
/// DragonFly) or 30 (macOS) (<https://www.tcpdump.org/linktypes/LINKTYPE_NULL.html>).
pub(crate) fn loopback_family(header: [u8; 4]) -> Option<u16> {
    const AF_INET: u32 = 2;
    let to_ethertype = |af: u32| match af {
        AF_INET => Some(ethertype::IPV4),
        24 | 28 | 30 => Some(ethertype::IPV6),
        _ => None,
    };
    to_ethertype(u32::from_le_bytes(header)).or_else(|| to_ethertype(u32::from_be_bytes(header)))
}

/// Length of the BSD loopback header.
pub(crate) const LOOPBACK_LEN: usize = 4;

/// PPPoE session stage header (RFC 2516 section 4) followed by the 2-byte PPP protocol
/// field (RFC 1661 section 2).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PppoeSession<'a> {
    data: &'a [u8],
}

mod pppoe {
    pub const VER_TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const LENGTH: usize = 4;
    pub const PPP_PROTOCOL: usize = 6;
    pub const LEN: usize = 8;
    /// Version 1, type 1.
    pub const VER_TYPE_1_1: u8 = 0x11;
    /// Code of a session-stage data packet.
    pub const CODE_SESSION_DATA: u8 = 0x00;
}

/// PPP protocol number of IPv4 (RFC 1332).
const PPP_IPV4: u16 = 0x0021;
/// PPP protocol number of IPv6 (RFC 5072).
const PPP_IPV6: u16 = 0x0057;

/// Problems with a PPPoE session header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PppoeError {
    Truncated,
    Header,
}

impl<'a> PppoeSession<'a> {
    pub(crate) fn new_checked(data: &'a [u8]) -> Result<Self, PppoeError> {
        if data.len() < pppoe::LEN {
            return Err(PppoeError::Truncated);
        }
        let view = PppoeSession { data };
        if data.get(pppoe::VER_TYPE) != Some(&pppoe::VER_TYPE_1_1)
            || data.get(pppoe::CODE) != Some(&pppoe::CODE_SESSION_DATA)
        {
            return Err(PppoeError::Header);
        }
        Ok(view)
    }

    /// The PPP protocol as an EtherType equivalent, when it is IPv4 or IPv6.
    pub(crate) fn ethertype(&self) -> Option<u16> {
        match be16(self.data, pppoe::PPP_PROTOCOL) {
            PPP_IPV4 => Some(ethertype::IPV4),
            PPP_IPV6 => Some(ethertype::IPV6),
            _ => None,
        }
    }

    /// The PPP payload, limited by the PPPoE length field when that fits the capture
    /// (the field counts the PPP protocol field too).
    pub(crate) fn payload(&self) -> &'a [u8] {
        let rest = self.data.get(pppoe::LEN..).unwrap_or(&[]);
        let declared = usize::from(be16(self.data, pppoe::LENGTH)).saturating_sub(2);
        rest.get(..declared).unwrap_or(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_family_both_byte_orders() {
        assert_eq!(loopback_family([2, 0, 0, 0]), Some(ethertype::IPV4));
        assert_eq!(loopback_family([0, 0, 0, 2]), Some(ethertype::IPV4));
        for af in [24u32, 28, 30] {
            assert_eq!(loopback_family(af.to_le_bytes()), Some(ethertype::IPV6));
            assert_eq!(loopback_family(af.to_be_bytes()), Some(ethertype::IPV6));
        }
        assert_eq!(loopback_family([7, 0, 0, 0]), None);
        assert_eq!(loopback_family([0xff; 4]), None);
    }

    #[test]
    fn sll_protocol_rules() {
        assert!(sll_protocol_is_ethertype(1, 0x0800));
        assert!(sll_protocol_is_ethertype(772, 0x86dd)); // ARPHRD_LOOPBACK
        assert!(sll_protocol_is_ethertype(65534, 0x0800)); // ARPHRD_NONE (tun)
        assert!(!sll_protocol_is_ethertype(1, 0x0004)); // LINUX_SLL_P_802_2
        assert!(!sll_protocol_is_ethertype(ARPHRD_NETLINK, 0x0800));
    }

    #[test]
    fn pppoe_checks() {
        assert_eq!(
            PppoeSession::new_checked(&[0x11, 0, 0, 1, 0, 2, 0]).err(),
            Some(PppoeError::Truncated)
        );
        assert_eq!(
            PppoeSession::new_checked(&[0x12, 0, 0, 1, 0, 2, 0, 0x21]).err(),
            Some(PppoeError::Header)
        );
        assert_eq!(
            PppoeSession::new_checked(&[0x11, 0x09, 0, 1, 0, 2, 0, 0x21]).err(),
            Some(PppoeError::Header)
        );
        let s = PppoeSession::new_checked(&[0x11, 0, 0, 1, 0, 4, 0, 0x57, 0xaa, 0xbb, 0xcc])
            .expect("valid header");
        assert_eq!(s.ethertype(), Some(ethertype::IPV6));
        assert_eq!(s.payload(), &[0xaa, 0xbb]);
        let s = PppoeSession::new_checked(&[0x11, 0, 0, 1, 0, 0x40, 0xc0, 0x21, 1])
            .expect("valid header");
        assert_eq!(s.ethertype(), None);
        assert_eq!(s.payload(), &[1]);
    }
}
