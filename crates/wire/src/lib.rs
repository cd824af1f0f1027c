//! Zero-copy L2–L4 dissection of captured frames.
//!
//! [`dissect`] turns one captured record (link type, captured bytes, original length) into a
//! small `Copy` [`Packet`] that borrows the capture buffer: VLAN tags, the final EtherType,
//! the IP addresses and fragment facts, the transport header fields and the transport
//! payload. It is built on etherparse's slicing API (`Ethernet2Slice`, `SingleVlanSlice`,
//! `LaxIpv4Slice`, `LaxIpv6Slice`, `TcpSlice`, `UdpHeaderSlice`); the few headers
//! etherparse does not slice the way captures need them (Linux SLL/SLL2, BSD loopback,
//! PPPoE) are read by small checked views in this crate.
//!
//! # Contract
//!
//! * `dissect` never panics and never allocates, whatever the bytes.
//! * Parsing is lax: every layer that decodes stays filled in, and [`Packet::error`] names
//!   the first layer that was malformed ([`DecodeError`]). Dissection stops at that layer,
//!   except for pure length disagreements (IPv4 total length below the header length, an
//!   IP length exceeding an uncut frame, a UDP length that disagrees with the IP payload
//!   length): those are recorded and the next layers are still decoded from the bytes that
//!   are present.
//! * A frame cut by the capture's snaplen (`orig_len` larger than the captured length) is
//!   not an error as long as every header is complete; lengths are then taken from the
//!   headers ([`Packet::payload_len`]) while [`Packet::payload`] holds what was captured.
//! * Non-IP frames (ARP, LLDP, ...) and unknown IP protocols are not errors.
//! * IP fragments are not reassembled. A first fragment (offset 0, more-fragments set)
//!   still yields its transport header when it is captured; later fragments have
//!   [`Transport::None`] and carry their fragment data as payload.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod link;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{
    Ethernet2Slice, IpNumber, Ipv6ExtensionsSlice, LaxIpv4Slice, LaxIpv6Slice, SingleVlanSlice,
    TcpSlice, UdpHeaderSlice,
};

pub use error::{DecodeError, DecodeErrorCounts};
pub use streamscope_capture::LinkType;

/// EtherType values the dissector dispatches on (IEEE 802.3 clause 3.2.6, IANA registry).
pub mod ethertype {
    /// Internet Protocol version 4 (RFC 894).
    pub const IPV4: u16 = 0x0800;
    /// Address Resolution Protocol (RFC 826).
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// Internet Protocol version 6 (RFC 8200).
    pub const IPV6: u16 = 0x86dd;
    /// PPPoE discovery stage (RFC 2516).
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    /// PPPoE session stage (RFC 2516).
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// IEEE 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag used by some vendors.
    pub const QINQ_OLD: u16 = 0x9100;
}

/// IP protocol numbers the dissector decodes (IANA "Assigned Internet Protocol Numbers").
pub mod ip_proto {
    /// Internet Control Message Protocol (RFC 792).
    pub const ICMP: u8 = 1;
    /// Internet Group Management Protocol (RFC 1112, 2236, 9776).
    pub const IGMP: u8 = 2;
    /// Transmission Control Protocol (RFC 9293).
    pub const TCP: u8 = 6;
    /// User Datagram Protocol (RFC 768).
    pub const UDP: u8 = 17;
    /// ICMP for IPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
}

/// One dissected frame: borrowed views and small copied header fields.
#[derive(Clone, Copy, Debug, Default)]
pub struct Packet<'a> {
    /// VLAN ids (IEEE 802.1Q / 802.1ad), outermost first; only the first `vlan_count`
    /// (at most 2) entries are meaningful.
    pub vlan: [u16; 2],
    /// Number of VLAN tags seen; may exceed 2, but only two ids are kept.
    pub vlan_count: u8,
    /// The final EtherType after VLAN tags and PPPoE (PPPoE carrying IP reports
    /// 0x0800 / 0x86dd), the Linux SLL protocol field, or for raw-IP and loopback links
    /// the EtherType of the IP version found; 0 when there is none (IEEE 802.3 length
    /// field, unknown loopback address family).
    pub ethertype: u16,
    /// The IP layer; `None` for non-IP frames or when the IP header did not decode
    /// (see `error`).
    pub ip: Option<Ip>,
    /// The transport layer.
    pub transport: Transport,
    /// The captured transport payload (may be shorter than `payload_len` when the capture
    /// cut the frame). For non-first fragments and unknown protocols: the captured IP
    /// payload. Empty for non-IP frames.
    pub payload: &'a [u8],
    /// Length of the transport payload according to the headers (IP and UDP lengths), not
    /// the capture. For a first fragment it counts the transport payload carried in that
    /// fragment; for a non-first fragment, the fragment's data.
    pub payload_len: u32,
    /// Where and why lax parsing stopped (the first problem found); layers before it stay
    /// filled in.
    pub error: Option<DecodeError>,
}

impl Packet<'_> {
    /// The packet without its payload: every header field, `payload_len` included, and
    /// an empty `payload`. It borrows nothing, so it can be handed to another thread
    /// (the flow table reads no payload).
    pub fn without_payload(&self) -> Packet<'static> {
        Packet {
            vlan: self.vlan,
            vlan_count: self.vlan_count,
            ethertype: self.ethertype,
            ip: self.ip,
            transport: self.transport,
            payload: &[],
            payload_len: self.payload_len,
            error: self.error,
        }
    }
}

/// The IP layer of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// 4 or 6.
    pub version: u8,
    /// The final protocol number: for IPv6 the next header after the extension headers
    /// (hop-by-hop, routing, destination options, fragment, AH); for IPv4 after AH.
    pub protocol: u8,
    /// IPv4 time to live or IPv6 hop limit.
    pub ttl: u8,
    /// Set when the packet is a fragment (more-fragments flag or a non-zero offset).
    pub fragment: Option<Fragment>,
}

/// Fragment facts of an IP packet (RFC 791 section 3.2, RFC 8200 section 4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// IPv4 identification or IPv6 fragment header identification.
    pub id: u32,
    /// Offset of this fragment's data in the original datagram, in bytes.
    pub offset: u16,
    /// The more-fragments flag.
    pub more: bool,
    /// Length of this fragment's data according to the IP header, in bytes: what it
    /// contributes to the datagram at `offset` (the IPv4 payload; for IPv6, what follows
    /// the fragment header).
    pub len: u16,
}

/// The transport layer of a packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// No transport header: non-IP, non-first fragment, or the transport header did not
    /// decode (see [`Packet::error`]).
    #[default]
    None,
    /// TCP (RFC 9293).
    Tcp(Tcp),
    /// UDP (RFC 768).
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// ICMP for IPv4 (RFC 792).
    Icmpv4 {
        /// Type.
        kind: u8,
        /// Code.
        code: u8,
    },
    /// ICMP for IPv6 (RFC 4443), including MLD (RFC 2710, RFC 9777).
    Icmpv6 {
        /// Type.
        kind: u8,
        /// Code.
        code: u8,
        /// The 8-byte header as captured: type, code, checksum and the type's next four
        /// bytes (for MLD, the maximum response delay and a reserved field); the rest of
        /// the message is the payload.
        header: [u8; 8],
    },
    /// IGMP (RFC 1112, RFC 2236, RFC 9776).
    Igmp {
        /// The type byte.
        kind: u8,
        /// The 8-byte header as captured: type, maximum response code, checksum and group
        /// address (the whole of a version 1 or 2 message); the rest is the payload.
        header: [u8; 8],
    },
    /// Another IP protocol ([`Ip::protocol`]); its bytes are the payload.
    Other,
}

/// TCP header fields (RFC 9293 section 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags byte (see [`tcp_flags`]).
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Header length in bytes, options included.
    pub header_len: u8,
}

/// Bits of [`Tcp::flags`] (RFC 9293 section 3.1, RFC 3168 section 6.1).
pub mod tcp_flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field is significant.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

impl Tcp {
    /// Whether every bit of `mask` is set in the flags.
    #[inline]
    pub fn has(&self, mask: u8) -> bool {
        self.flags & mask == mask
    }
}

/// Whether [`dissect`] decodes this link type.
///
/// Ethernet (1), Linux SLL (113) and SLL2 (276), raw IP (101, and 12 / 14 as `DLT_RAW`
/// appears on BSDs and OpenBSD), raw IPv4 (228), raw IPv6 (229), BSD loopback NULL (0)
/// and LOOP (108).
pub fn supported(link: LinkType) -> bool {
    matches!(
        link.0,
        LT_NULL
            | LT_ETHERNET
            | LT_RAW_BSD
            | LT_RAW_OPENBSD
            | LT_RAW
            | LT_LOOP
            | LT_LINUX_SLL
            | LT_IPV4
            | LT_IPV6
            | LT_LINUX_SLL2
    )
}

// Link type numbers (https://www.tcpdump.org/linktypes.html).
const LT_NULL: u32 = 0;
const LT_ETHERNET: u32 = 1;
const LT_RAW_BSD: u32 = 12;
const LT_RAW_OPENBSD: u32 = 14;
const LT_RAW: u32 = 101;
const LT_LOOP: u32 = 108;
const LT_LINUX_SLL: u32 = 113;
const LT_IPV4: u32 = 228;
const LT_IPV6: u32 = 229;
const LT_LINUX_SLL2: u32 = 276;

/// Dissects one captured frame. Never panics, never allocates.
///
/// `data` is the captured bytes, `orig_len` the frame's length on the wire as the capture
/// record states it (used to tell a snaplen cut from a malformed length field).
pub fn dissect(link: LinkType, data: &[u8], orig_len: u32) -> Packet<'_> {
    let mut d = Dissector {
        packet: Packet::default(),
        cut: usize::try_from(orig_len).map_or(true, |orig| orig > data.len()),
    };
    if let Err(err) = d.link(link.0, data) {
        d.note(err);
    }
    d.packet
}

type Result<T> = core::result::Result<T, DecodeError>;

struct Dissector<'a> {
    packet: Packet<'a>,
    /// The capture cut the frame (snaplen): lengths beyond the data are expected.
    cut: bool,
}

impl<'a> Dissector<'a> {
    /// Records `err` unless an earlier problem was already recorded.
    fn note(&mut self, err: DecodeError) {
        if self.packet.error.is_none() {
            self.packet.error = Some(err);
        }
    }

    fn link(&mut self, link: u32, data: &'a [u8]) -> Result<()> {
        match link {
            LT_ETHERNET => {
                let eth = Ethernet2Slice::from_slice_without_fcs(data)
                    .map_err(|_| DecodeError::LinkTruncated)?;
                let ethertype = eth.ether_type().0;
                if ethertype < link::MIN_ETHERTYPE {
                    // IEEE 802.3 length field: an LLC frame, not an EtherType.
                    return Ok(());
                }
                self.ether(ethertype, eth.payload_slice())
            }
            LT_LINUX_SLL => {
                let sll = link::LinuxSll::new_checked(data).ok_or(DecodeError::LinkTruncated)?;
                self.sll(sll.arphrd(), sll.protocol(), sll.payload())
            }
            LT_LINUX_SLL2 => {
                let sll = link::LinuxSll2::new_checked(data).ok_or(DecodeError::LinkTruncated)?;
                self.sll(sll.arphrd(), sll.protocol(), sll.payload())
            }
            LT_RAW | LT_RAW_BSD | LT_RAW_OPENBSD => match data.first().map(|b| b >> 4) {
                Some(4) => self.ether(ethertype::IPV4, data),
                Some(6) => self.ether(ethertype::IPV6, data),
                Some(_) => Err(DecodeError::IpVersion),
                None => Err(DecodeError::Ipv4Truncated),
            },
            LT_IPV4 => self.ether(ethertype::IPV4, data),
            LT_IPV6 => self.ether(ethertype::IPV6, data),
            LT_NULL | LT_LOOP => {
                let (header, rest) = data
                    .split_first_chunk::<{ link::LOOPBACK_LEN }>()
                    .ok_or(DecodeError::LinkTruncated)?;
                match link::loopback_family(*header) {
                    Some(ethertype) => self.ether(ethertype, rest),
                    None => Ok(()),
                }
            }
            _ => Err(DecodeError::UnsupportedLinkType),
        }
    }

    fn sll(&mut self, arphrd: u16, protocol: u16, payload: &'a [u8]) -> Result<()> {
        if link::sll_protocol_is_ethertype(arphrd, protocol) {
            self.ether(protocol, payload)
        } else {
            self.packet.ethertype = protocol;
            Ok(())
        }
    }

    /// Dispatches on an EtherType, peeling VLAN tags and PPPoE.
    fn ether(&mut self, mut ethertype: u16, mut data: &'a [u8]) -> Result<()> {
        loop {
            self.packet.ethertype = ethertype;
            match ethertype {
                ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                    // Each tag consumes 4 bytes, so the loop ends.
                    let tag = SingleVlanSlice::from_slice(data)
                        .map_err(|_| DecodeError::VlanTruncated)?;
                    let count = usize::from(self.packet.vlan_count);
                    if let Some(slot) = self.packet.vlan.get_mut(count) {
                        *slot = tag.vlan_identifier().value();
                    }
                    self.packet.vlan_count = self.packet.vlan_count.saturating_add(1);
                    ethertype = tag.ether_type().0;
                    data = tag.payload_slice();
                }
                ethertype::PPPOE_SESSION => {
                    let session = link::PppoeSession::new_checked(data).map_err(|e| match e {
                        link::PppoeError::Truncated => DecodeError::PppoeTruncated,
                        link::PppoeError::Header => DecodeError::PppoeHeader,
                    })?;
                    match session.ethertype() {
                        Some(inner) => {
                            ethertype = inner;
                            data = session.payload();
                        }
                        None => return Ok(()),
                    }
                }
                ethertype::IPV4 => return self.ipv4(data),
                ethertype::IPV6 => return self.ipv6(data),
                _ if ethertype < link::MIN_ETHERTYPE => {
                    // IEEE 802.3 length field behind a VLAN tag: LLC, not an EtherType.
                    self.packet.ethertype = 0;
                    return Ok(());
                }
                _ => return Ok(()),
            }
        }
    }

    /// IPv4, RFC 791 section 3.1.
    fn ipv4(&mut self, data: &'a [u8]) -> Result<()> {
        if data.first().is_some_and(|b| b >> 4 != 4) {
            return Err(DecodeError::Ipv4Header);
        }
        use etherparse::err::ipv4::HeaderSliceError as E;
        let (ip, auth_err) = LaxIpv4Slice::from_slice(data).map_err(|e| match e {
            E::Len(_) => DecodeError::Ipv4Truncated,
            E::Content(_) => DecodeError::Ipv4Header,
        })?;
        let header = ip.header();
        let payload = ip.payload();
        let header_len = header.slice().len();
        let total_len = usize::from(header.total_len());
        let fragment = header.is_fragmenting_payload().then(|| Fragment {
            id: u32::from(header.identification()),
            offset: header.fragments_offset().byte_offset(),
            more: header.more_fragments(),
            len: u16::try_from(total_len.saturating_sub(header_len)).unwrap_or(u16::MAX),
        });
        self.packet.ip = Some(Ip {
            src: IpAddr::V4(Ipv4Addr::from(header.source())),
            dst: IpAddr::V4(Ipv4Addr::from(header.destination())),
            version: 4,
            protocol: payload.ip_number.0,
            ttl: header.ttl(),
            fragment,
        });

        // Bytes between the IPv4 header and the transport payload (an AH header).
        let ext_len = ip.extensions().auth.map_or(0, |auth| auth.slice().len());
        let declared = if total_len < header_len {
            // Inconsistent (for example 0, as some TSO captures show): use what is there.
            self.note(DecodeError::Ipv4Header);
            payload.payload.len()
        } else {
            if payload.incomplete && !self.cut {
                self.note(DecodeError::Ipv4Truncated);
            }
            (total_len - header_len).saturating_sub(ext_len)
        };
        if auth_err.is_some() {
            return Err(DecodeError::Ipv4AuthHeader);
        }
        self.transport(payload.ip_number.0, payload.payload, declared, fragment)
    }

    /// IPv6, RFC 8200 sections 3 and 4.
    fn ipv6(&mut self, data: &'a [u8]) -> Result<()> {
        if data.first().is_some_and(|b| b >> 4 != 6) {
            return Err(DecodeError::Ipv6Header);
        }
        use etherparse::err::ipv6::HeaderSliceError as E;
        let (ip, ext_err) = LaxIpv6Slice::from_slice(data).map_err(|e| match e {
            E::Len(_) => DecodeError::Ipv6Truncated,
            E::Content(_) => DecodeError::Ipv6Header,
        })?;
        let header = ip.header();
        let payload = ip.payload();
        let payload_length = usize::from(header.payload_length());
        let fragment = ipv6_fragment(ip.extensions()).map(|(mut fragment, end)| {
            fragment.len = u16::try_from(payload_length.saturating_sub(end)).unwrap_or(u16::MAX);
            fragment
        });
        self.packet.ip = Some(Ip {
            src: IpAddr::V6(Ipv6Addr::from(header.source())),
            dst: IpAddr::V6(Ipv6Addr::from(header.destination())),
            version: 6,
            protocol: payload.ip_number.0,
            ttl: header.hop_limit(),
            fragment,
        });
        if payload.incomplete && !self.cut {
            self.note(DecodeError::Ipv6Truncated);
        }
        if ext_err.is_some() {
            return Err(DecodeError::Ipv6ExtHeader);
        }
        let ext_len = ip.extensions().slice().len();
        let declared = if payload_length == 0 {
            // Jumbogram (RFC 2675) or an unset length: the captured bytes are all we know.
            payload.payload.len()
        } else {
            payload_length.saturating_sub(ext_len)
        };
        self.transport(payload.ip_number.0, payload.payload, declared, fragment)
    }

    /// The transport layer. `data` is the captured IP payload, `declared` its length
    /// according to the IP header.
    fn transport(
        &mut self,
        protocol: u8,
        data: &'a [u8],
        declared: usize,
        fragment: Option<Fragment>,
    ) -> Result<()> {
        let p = &mut self.packet;
        if fragment.is_some_and(|f| f.offset > 0) {
            p.payload = data;
            p.payload_len = clamp_u32(declared);
            return Ok(());
        }
        match protocol {
            ip_proto::TCP => self.tcp(data, declared),
            ip_proto::UDP => self.udp(data, declared, fragment.is_some()),
            ip_proto::ICMP => {
                let [kind, code, ..] =
                    self.icmp_like(data, declared, DecodeError::IcmpTruncated)?;
                self.packet.transport = Transport::Icmpv4 { kind, code };
                Ok(())
            }
            ip_proto::ICMPV6 => {
                let header = self.icmp_like(data, declared, DecodeError::Icmpv6Truncated)?;
                let [kind, code, ..] = header;
                self.packet.transport = Transport::Icmpv6 { kind, code, header };
                Ok(())
            }
            ip_proto::IGMP => {
                let header = self.icmp_like(data, declared, DecodeError::IgmpTruncated)?;
                self.packet.transport = Transport::Igmp {
                    kind: header[0],
                    header,
                };
                Ok(())
            }
            _ => {
                p.transport = Transport::Other;
                p.payload = data;
                p.payload_len = clamp_u32(declared);
                Ok(())
            }
        }
    }

    /// TCP, RFC 9293 section 3.1.
    fn tcp(&mut self, data: &'a [u8], declared: usize) -> Result<()> {
        use etherparse::err::tcp::HeaderSliceError as E;
        let tcp = TcpSlice::from_slice(data).map_err(|e| match e {
            E::Content(_) => DecodeError::TcpHeader,
            // The header runs past the segment the IP header describes: inconsistent.
            E::Len(l) if declared < l.required_len => DecodeError::TcpHeader,
            // The segment is long enough but the capture ends inside the header.
            E::Len(_) => DecodeError::TcpTruncated,
        })?;
        let header = tcp.header_slice();
        let header_len = header.len();
        if declared < header_len {
            // Only reachable when the captured bytes exceed the declared length.
            return Err(DecodeError::TcpHeader);
        }
        self.packet.transport = Transport::Tcp(Tcp {
            src_port: tcp.source_port(),
            dst_port: tcp.destination_port(),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            flags: header.get(TCP_FLAGS).copied().unwrap_or(0),
            window: tcp.window_size(),
            header_len: u8::try_from(header_len).unwrap_or(u8::MAX),
        });
        let payload_len = declared - header_len;
        self.set_payload(data, header_len, payload_len);
        Ok(())
    }

    /// UDP, RFC 768.
    fn udp(&mut self, data: &'a [u8], declared: usize, first_fragment: bool) -> Result<()> {
        let udp = UdpHeaderSlice::from_slice(data).map_err(|_| {
            if declared < UDP_HEADER_LEN {
                DecodeError::UdpHeader
            } else {
                DecodeError::UdpTruncated
            }
        })?;
        if declared < UDP_HEADER_LEN {
            return Err(DecodeError::UdpHeader);
        }
        self.packet.transport = Transport::Udp {
            src_port: udp.source_port(),
            dst_port: udp.destination_port(),
        };
        let udp_len = usize::from(udp.length());
        let len = if first_fragment {
            // The UDP length covers the whole datagram, the IP length only this fragment.
            if udp_len < declared {
                self.note(DecodeError::UdpHeader);
            }
            declared
        } else if udp_len == declared {
            declared
        } else if udp_len == 0 && declared > usize::from(u16::MAX) {
            // IPv6 jumbogram (RFC 2675 section 4): the UDP length is 0 by definition.
            declared
        } else {
            self.note(DecodeError::UdpHeader);
            udp_len.max(UDP_HEADER_LEN).min(declared)
        };
        self.set_payload(data, UDP_HEADER_LEN, len - UDP_HEADER_LEN);
        Ok(())
    }

    /// The 8-byte header shared by ICMP (RFC 792), ICMPv6 (RFC 4443) and IGMP: returns
    /// the type and code bytes.
    /// The 8-byte header of ICMP, ICMPv6 or IGMP; the rest is the payload.
    fn icmp_like(
        &mut self,
        data: &'a [u8],
        declared: usize,
        err: DecodeError,
    ) -> Result<[u8; ICMP_HEADER_LEN]> {
        match data.get(..ICMP_HEADER_LEN) {
            Some(h) if declared >= ICMP_HEADER_LEN => {
                let mut header = [0; ICMP_HEADER_LEN];
                header.copy_from_slice(h);
                self.set_payload(data, ICMP_HEADER_LEN, declared - ICMP_HEADER_LEN);
                Ok(header)
            }
            _ => Err(err),
        }
    }

    fn set_payload(&mut self, data: &'a [u8], header_len: usize, payload_len: usize) {
        let rest = data.get(header_len..).unwrap_or(&[]);
        self.packet.payload = rest.get(..payload_len).unwrap_or(rest);
        self.packet.payload_len = clamp_u32(payload_len);
    }
}

/// Finds the fragment header among IPv6 extension headers that etherparse has already
/// validated, and returns its facts if it fragments the payload (RFC 8200 section 4.5),
/// with the offset just past it in the extension headers (`len` is left at 0).
///
/// The headers are walked here with checked reads rather than with etherparse's
/// `Ipv6ExtensionSliceIter`: that iterator re-reads the chain without length checks and
/// runs past the end of the slice when lax parsing stopped inside the chain.
fn ipv6_fragment(exts: &Ipv6ExtensionsSlice<'_>) -> Option<(Fragment, usize)> {
    let mut next = exts.first_header()?;
    let chain = exts.slice();
    let mut rest = chain;
    loop {
        let len = match next {
            IpNumber::IPV6_HEADER_HOP_BY_HOP
            | IpNumber::IPV6_ROUTE_HEADER
            | IpNumber::IPV6_DESTINATION_OPTIONS => (usize::from(*rest.get(1)?) + 1) * 8,
            IpNumber::AUTHENTICATION_HEADER => (usize::from(*rest.get(1)?) + 2) * 4,
            IpNumber::IPV6_FRAGMENTATION_HEADER => {
                let Some(&[_, _, hi, lo, i0, i1, i2, i3]) = rest.get(..IPV6_FRAG_LEN) else {
                    return None;
                };
                let word = u16::from_be_bytes([hi, lo]);
                // 13-bit offset in 8-byte units, in place above 2 reserved bits and M.
                let offset = word & !7;
                let more = word & 1 == 1;
                if offset != 0 || more {
                    let end = chain.len() - rest.len() + IPV6_FRAG_LEN;
                    let id = u32::from_be_bytes([i0, i1, i2, i3]);
                    return Some((
                        Fragment {
                            id,
                            offset,
                            more,
                            len: 0,
                        },
                        end,
                    ));
                }
                IPV6_FRAG_LEN
            }
            _ => return None,
        };
        next = IpNumber(*rest.first()?);
        rest = rest.get(len..)?;
    }
}

/// Length of the IPv6 fragment header.
const IPV6_FRAG_LEN: usize = 8;
/// Offset of the TCP flags byte (CWR..FIN) in the TCP header.
const TCP_FLAGS: usize = 13;
/// Length of the UDP header.
const UDP_HEADER_LEN: usize = 8;
/// Length of the fixed ICMP / ICMPv6 / IGMP header.
const ICMP_HEADER_LEN: usize = 8;

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
