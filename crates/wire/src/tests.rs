//! Unit tests on hand-built frames (see `tests/support/frames.rs` for their contents).

use super::*;

#[path = "../tests/support/frames.rs"]
mod frames;
use frames::*;

fn full(link: u32, data: &[u8]) -> Packet<'_> {
    dissect(LinkType(link), data, data.len() as u32)
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().expect("valid literal"))
}

fn udp_ports(p: &Packet) -> (u16, u16) {
    match p.transport {
        Transport::Udp { src_port, dst_port } => (src_port, dst_port),
        other => panic!("expected UDP, got {other:?}"),
    }
}

fn tcp_of(p: &Packet) -> Tcp {
    match p.transport {
        Transport::Tcp(t) => t,
        other => panic!("expected TCP, got {other:?}"),
    }
}

#[test]
fn test_parse_ethernet_ipv4_tcp() {
    let p = full(1, ETH_IPV4_TCP);
    assert_eq!(p.error, None);
    assert_eq!(p.ethertype, 0x0800);
    assert_eq!(p.vlan_count, 0);
    let ip = p.ip.expect("ip");
    assert_eq!(ip.src, v4([192, 0, 2, 1]));
    assert_eq!(ip.dst, v4([198, 51, 100, 2]));
    assert_eq!((ip.version, ip.protocol, ip.ttl), (4, 6, 64));
    assert_eq!(ip.fragment, None);
    let t = tcp_of(&p);
    assert_eq!(
        t,
        Tcp {
            src_port: 49152,
            dst_port: 80,
            seq: 0x0102_0304,
            ack: 0x0a0b_0c0d,
            flags: tcp_flags::PSH | tcp_flags::ACK,
            window: 502,
            header_len: 32,
        }
    );
    assert!(t.has(tcp_flags::ACK) && !t.has(tcp_flags::SYN));
    assert_eq!(p.payload, b"GET / HTTP/1.1\r\n");
    assert_eq!(p.payload_len, 16);
}

#[test]
fn test_parse_padding_is_not_payload() {
    let p = full(1, ETH_IPV4_TCP_SYN_PADDED);
    assert_eq!(p.error, None);
    let t = tcp_of(&p);
    assert_eq!(
        (t.src_port, t.dst_port, t.seq, t.flags),
        (50000, 443, 1000, tcp_flags::SYN)
    );
    assert_eq!(t.header_len, 20);
    assert_eq!(p.ip.map(|ip| ip.ttl), Some(128));
    assert!(p.payload.is_empty());
    assert_eq!(p.payload_len, 0);
}

#[test]
fn test_parse_vlan() {
    let p = full(1, ETH_VLAN_IPV4_UDP);
    assert_eq!(p.error, None);
    assert_eq!((p.vlan_count, p.vlan[0]), (1, 123));
    assert_eq!(p.ethertype, 0x0800);
    assert_eq!(udp_ports(&p), (5000, 2000));
    assert_eq!(p.ip.map(|ip| ip.dst), Some(v4([239, 1, 1, 1])));
    assert_eq!(p.payload_len, 12);
    assert_eq!(p.payload.first(), Some(&0x80));
}

#[test]
fn test_parse_qinq() {
    let p = full(1, ETH_QINQ_IPV4_UDP);
    assert_eq!(p.error, None);
    assert_eq!(p.vlan_count, 2);
    assert_eq!(p.vlan, [10, 13]);
    assert_eq!(udp_ports(&p), (47808, 47808));
    assert_eq!(p.payload, &[0x81, 0x0b, 0x00, 0x04]);
}

#[test]
fn test_parse_three_tags_keeps_two_and_arp_is_not_an_error() {
    let p = full(1, ETH_TRIPLE_VLAN_ARP);
    assert_eq!(p.error, None);
    assert_eq!(p.vlan_count, 3);
    assert_eq!(p.vlan, [100, 200]);
    assert_eq!(p.ethertype, ethertype::ARP);
    assert!(p.ip.is_none());
    assert_eq!(p.transport, Transport::None);
    assert!(p.payload.is_empty());
}

#[test]
fn test_parse_ipv4_options_igmp() {
    let p = full(1, ETH_IPV4_RA_IGMP);
    assert_eq!(p.error, None);
    let ip = p.ip.expect("ip");
    assert_eq!((ip.protocol, ip.ttl), (2, 1));
    assert_eq!(ip.dst, v4([239, 255, 255, 250]));
    // An IGMPv2 report for the group: type, max response 0, checksum, group.
    let Transport::Igmp { kind, header } = p.transport else {
        panic!("not IGMP: {:?}", p.transport)
    };
    assert_eq!(kind, 0x16);
    assert_eq!((header[0], header[1]), (0x16, 0));
    assert_eq!(header[4..], [239, 255, 255, 250]);
    assert_eq!(p.payload_len, 0);
}

#[test]
fn test_parse_icmp() {
    let p = full(1, ETH_IPV4_ICMP_ECHO);
    assert_eq!(p.error, None);
    assert_eq!(p.transport, Transport::Icmpv4 { kind: 8, code: 0 });
    assert_eq!(p.payload, b"pingdata");

    let p = full(1, ETH_IPV4_ICMP_UNREACH);
    assert_eq!(p.error, None);
    assert_eq!(p.transport, Transport::Icmpv4 { kind: 3, code: 3 });
    assert_eq!(p.payload_len, 28);
    // The quoted datagram dissects as raw IP (its IP length exceeds the quote: cut).
    let quoted = dissect(LinkType::RAW, p.payload, 32);
    assert_eq!(quoted.error, None);
    assert_eq!(udp_ports(&quoted), (33434, 53));
}

#[test]
fn test_parse_ipv4_fragment_series() {
    let first = full(1, ETH_IPV4_FRAG_1);
    assert_eq!(first.error, None);
    assert_eq!(
        first.ip.and_then(|ip| ip.fragment),
        Some(Fragment {
            id: 0xbeef,
            offset: 0,
            more: true,
            len: 24,
        })
    );
    assert_eq!(udp_ports(&first), (40000, 53));
    assert_eq!(first.payload_len, 16);
    assert_eq!(first.payload, &(0u8..16).collect::<Vec<_>>()[..]);

    let second = full(1, ETH_IPV4_FRAG_2);
    assert_eq!(second.error, None);
    assert_eq!(
        second.ip.and_then(|ip| ip.fragment),
        Some(Fragment {
            id: 0xbeef,
            offset: 24,
            more: true,
            len: 16,
        })
    );
    assert_eq!(second.transport, Transport::None);
    assert_eq!(second.payload, &(16u8..32).collect::<Vec<_>>()[..]);
    assert_eq!(second.payload_len, 16);

    let last = full(1, ETH_IPV4_FRAG_3);
    assert_eq!(last.error, None);
    assert_eq!(
        last.ip.and_then(|ip| ip.fragment),
        Some(Fragment {
            id: 0xbeef,
            offset: 40,
            more: false,
            len: 8,
        })
    );
    assert_eq!(last.transport, Transport::None);
    assert_eq!(last.payload_len, 8);
    // The series carries the whole 40-byte UDP payload.
    assert_eq!(
        first.payload_len + second.payload_len + last.payload_len,
        40
    );
}

#[test]
fn test_parse_ipv6_extension_headers() {
    let p = full(1, ETH_IPV6_EXT_UDP);
    assert_eq!(p.error, None);
    assert_eq!(p.ethertype, ethertype::IPV6);
    let ip = p.ip.expect("ip");
    assert_eq!((ip.version, ip.protocol, ip.ttl), (6, 17, 64));
    assert_eq!(ip.src, v6("2001:db8::1"));
    assert_eq!(ip.dst, v6("2001:db8::2"));
    assert_eq!(ip.fragment, None);
    assert_eq!(udp_ports(&p), (5000, 6000));
    assert_eq!(p.payload, b"0123456789");
    assert_eq!(p.payload_len, 10);
}

#[test]
fn test_parse_ipv6_fragment_series() {
    let first = full(1, ETH_IPV6_FRAG_1);
    assert_eq!(first.error, None);
    let ip = first.ip.expect("ip");
    assert_eq!(ip.protocol, 17);
    assert_eq!(
        ip.fragment,
        Some(Fragment {
            id: 0xdead_beef,
            offset: 0,
            more: true,
            len: 24,
        })
    );
    assert_eq!(udp_ports(&first), (5353, 5353));
    assert_eq!(first.payload_len, 16);

    let last = full(1, ETH_IPV6_FRAG_2);
    assert_eq!(last.error, None);
    let ip = last.ip.expect("ip");
    assert_eq!(
        ip.fragment,
        Some(Fragment {
            id: 0xdead_beef,
            offset: 24,
            more: false,
            len: 8,
        })
    );
    assert_eq!(last.transport, Transport::None);
    assert_eq!(last.payload, &(116u8..124).collect::<Vec<_>>()[..]);
}

#[test]
fn test_parse_mld() {
    let p = full(1, ETH_IPV6_MLD);
    assert_eq!(p.error, None);
    let ip = p.ip.expect("ip");
    assert_eq!((ip.protocol, ip.ttl), (58, 1));
    assert_eq!(ip.dst, v6("ff02::16"));
    let Transport::Icmpv6 { kind, code, header } = p.transport else {
        panic!("not ICMPv6: {:?}", p.transport)
    };
    assert_eq!((kind, code, header[0], header[1]), (143, 0, 143, 0));
}

#[test]
fn test_parse_linux_sll_and_sll2() {
    let p = full(113, SLL_IPV4_TCP);
    assert_eq!(p.error, None);
    assert_eq!(p.ethertype, 0x0800);
    let t = tcp_of(&p);
    assert_eq!((t.src_port, t.dst_port, t.seq, t.ack), (443, 50000, 7, 9));
    assert_eq!(
        (t.flags, t.window, t.header_len),
        (tcp_flags::ACK, 1024, 20)
    );
    assert_eq!(p.payload, b"hello");

    let p = full(276, SLL2_LOOPBACK_IPV6_UDP);
    assert_eq!(p.error, None);
    assert_eq!(p.ethertype, ethertype::IPV6);
    assert_eq!(udp_ports(&p), (53, 45000));
    assert_eq!(p.payload, &[0x12, 0x34, 0x81, 0x80]);
}

#[test]
fn test_parse_raw_ip_under_every_number() {
    for link in [101, 12, 14, 228] {
        let p = full(link, RAW_IPV4_UDP);
        assert_eq!(p.error, None, "link {link}");
        assert_eq!(p.ethertype, ethertype::IPV4);
        assert_eq!(udp_ports(&p), (1234, 4321));
        assert_eq!(p.payload, b"xyz");
    }
    for link in [101, 12, 14, 229] {
        let p = full(link, RAW_IPV6_TCP);
        assert_eq!(p.error, None, "link {link}");
        let t = tcp_of(&p);
        assert_eq!((t.src_port, t.dst_port), (80, 40000));
        assert_eq!(t.flags, tcp_flags::FIN | tcp_flags::ACK);
    }
    // The single-version link types insist on their version.
    assert_eq!(full(228, RAW_IPV6_TCP).error, Some(DecodeError::Ipv4Header));
    assert_eq!(full(229, RAW_IPV4_UDP).error, Some(DecodeError::Ipv6Header));
}

#[test]
fn test_parse_loopback_both_byte_orders() {
    let p = full(0, NULL_LE_IPV4_UDP);
    assert_eq!(p.error, None);
    assert_eq!(udp_ports(&p), (1234, 4321));
    for (link, frame) in [
        (0, NULL_LE_IPV6_TCP),
        (108, LOOP_BE_IPV6_TCP),
        (0, LOOP_BE_IPV6_TCP),
    ] {
        let p = full(link, frame);
        assert_eq!(p.error, None);
        assert_eq!(p.ethertype, ethertype::IPV6);
        assert_eq!(tcp_of(&p).seq, 100);
    }
    // An unknown address family is not IP, and not an error.
    let mut other = NULL_LE_IPV4_UDP.to_vec();
    other[0] = 7;
    let p = full(0, &other);
    assert_eq!((p.error, p.ethertype), (None, 0));
    assert!(p.ip.is_none());
}

#[test]
fn test_parse_pppoe() {
    let p = full(1, ETH_PPPOE_IPV4_UDP);
    assert_eq!(p.error, None);
    assert_eq!(p.ethertype, ethertype::IPV4);
    assert_eq!(udp_ports(&p), (5353, 53));
    assert_eq!(p.payload, b"qqqqqqqqq");
}

#[test]
fn test_parse_llc_is_not_an_error() {
    let p = full(1, ETH_LLC);
    assert_eq!((p.error, p.ethertype), (None, 0));
    assert!(p.ip.is_none());
    // The same behind a VLAN tag.
    let mut v = ETH_LLC[..12].to_vec();
    v.extend_from_slice(&[0x81, 0x00, 0x00, 0x07, 0x00, 38]);
    v.extend_from_slice(&ETH_LLC[14..]);
    let p = full(1, &v);
    assert_eq!(
        (p.error, p.ethertype, p.vlan_count, p.vlan[0]),
        (None, 0, 1, 7)
    );
}

#[test]
fn test_parse_ipv6_fragment_walk_skips_leading_headers() {
    // Hop-by-hop (8 bytes) then a fragment header: the walk must step over the first.
    let exts = [44, 0, 1, 4, 0, 0, 0, 0, 17, 0, 0x00, 0x19, 0, 0, 0, 42];
    let (slice, next, rest) =
        Ipv6ExtensionsSlice::from_slice(IpNumber::IPV6_HEADER_HOP_BY_HOP, &exts)
            .expect("valid chain");
    assert_eq!((next, rest.len()), (IpNumber::UDP, 0));
    let (frag, end) = ipv6_fragment(&slice).expect("fragmenting header");
    assert_eq!(end, 16);
    assert_eq!((frag.id, frag.offset, frag.more), (42, 24, true));
}

#[test]
fn snaplen_cut_is_not_an_error() {
    // Cut inside the TCP payload: headers complete, lengths from the headers.
    let cut = &ETH_IPV4_TCP[..ETH_IPV4_TCP.len() - 10];
    let p = dissect(LinkType::ETHERNET, cut, ETH_IPV4_TCP.len() as u32);
    assert_eq!(p.error, None);
    assert_eq!(p.payload, b"GET / ");
    assert_eq!(p.payload_len, 16);
    // Same bytes, but the record says nothing was cut: the IP length lies.
    let p = dissect(LinkType::ETHERNET, cut, cut.len() as u32);
    assert_eq!(p.error, Some(DecodeError::Ipv4Truncated));
    assert_eq!(tcp_of(&p).dst_port, 80, "later layers are still decoded");
}

fn with(frame: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
    let mut v = frame.to_vec();
    for &(at, value) in edits {
        v[at] = value;
    }
    v
}

/// Offset of the IPv4 header in an Ethernet frame, and of its transport header.
const IP: usize = 14;
const L4: usize = 34;

#[test]
fn error_unsupported_link_type() {
    let p = full(147, ETH_IPV4_TCP);
    assert_eq!(p.error, Some(DecodeError::UnsupportedLinkType));
    assert!(p.ip.is_none());
    assert!(!supported(LinkType(147)));
    assert!(
        !supported(LinkType(7)),
        "7 is ARCNET in the LINKTYPE registry"
    );
    for link in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276] {
        assert!(supported(LinkType(link)), "{link}");
    }
}

#[test]
fn error_link_truncated() {
    assert_eq!(
        full(1, &ETH_IPV4_TCP[..13]).error,
        Some(DecodeError::LinkTruncated)
    );
    assert_eq!(
        full(113, &SLL_IPV4_TCP[..15]).error,
        Some(DecodeError::LinkTruncated)
    );
    assert_eq!(
        full(276, &SLL2_LOOPBACK_IPV6_UDP[..19]).error,
        Some(DecodeError::LinkTruncated)
    );
    assert_eq!(
        full(0, &NULL_LE_IPV4_UDP[..3]).error,
        Some(DecodeError::LinkTruncated)
    );
    assert_eq!(full(108, &[]).error, Some(DecodeError::LinkTruncated));
    // A complete Ethernet header with nothing after it is fine up to the IP layer.
    assert_eq!(
        full(1, &ETH_IPV4_TCP[..14]).error,
        Some(DecodeError::Ipv4Truncated)
    );
}

#[test]
fn error_vlan_truncated() {
    let p = full(1, &ETH_QINQ_IPV4_UDP[..20]);
    assert_eq!(p.error, Some(DecodeError::VlanTruncated));
    assert_eq!((p.vlan_count, p.vlan[0]), (1, 10), "the outer tag stays");
}

#[test]
fn error_pppoe() {
    assert_eq!(
        full(1, &ETH_PPPOE_IPV4_UDP[..20]).error,
        Some(DecodeError::PppoeTruncated)
    );
    assert_eq!(
        full(1, &with(ETH_PPPOE_IPV4_UDP, &[(14, 0x21)])).error,
        Some(DecodeError::PppoeHeader)
    );
}

#[test]
fn error_ip_version() {
    let v = with(RAW_IPV4_UDP, &[(0, 0x55)]);
    let p = full(101, &v);
    assert_eq!(p.error, Some(DecodeError::IpVersion));
    assert_eq!(full(101, &[]).error, Some(DecodeError::Ipv4Truncated));
}

#[test]
fn error_ipv4_header() {
    // IHL 4.
    assert_eq!(
        full(1, &with(ETH_IPV4_TCP, &[(IP, 0x44)])).error,
        Some(DecodeError::Ipv4Header)
    );
    // Version 6 under EtherType IPv4.
    assert_eq!(
        full(1, &with(ETH_IPV4_TCP, &[(IP, 0x65)])).error,
        Some(DecodeError::Ipv4Header)
    );
    // Total length 0 (below the header): recorded, and the segment is still decoded
    // from the captured bytes.
    let v = with(ETH_IPV4_TCP, &[(IP + 2, 0), (IP + 3, 0)]);
    let p = full(1, &v);
    assert_eq!(p.error, Some(DecodeError::Ipv4Header));
    assert_eq!(tcp_of(&p).src_port, 49152);
    assert_eq!(p.payload_len, 16);
}

#[test]
fn error_ipv4_truncated() {
    let p = full(1, &ETH_IPV4_TCP[..IP + 19]);
    assert_eq!(p.error, Some(DecodeError::Ipv4Truncated));
    assert!(p.ip.is_none());
    // Options announced by the IHL but not captured.
    let p = full(1, &ETH_IPV4_RA_IGMP[..IP + 22]);
    assert_eq!(p.error, Some(DecodeError::Ipv4Truncated));
}

#[test]
fn error_ipv4_auth_header() {
    let p = full(1, ETH_IPV4_AUTH_TRUNCATED);
    assert_eq!(p.error, Some(DecodeError::Ipv4AuthHeader));
    assert_eq!(p.ip.map(|ip| ip.protocol), Some(51), "the IP layer stays");
}

#[test]
fn error_ipv6_header() {
    let v = with(ETH_IPV6_EXT_UDP, &[(IP, 0x40)]);
    let p = full(1, &v);
    assert_eq!(p.error, Some(DecodeError::Ipv6Header));
}

#[test]
fn error_ipv6_truncated() {
    assert_eq!(
        full(1, &ETH_IPV6_EXT_UDP[..IP + 39]).error,
        Some(DecodeError::Ipv6Truncated)
    );
    // Payload length beyond an uncut frame.
    let v = with(ETH_IPV6_EXT_UDP, &[(IP + 5, 0x60)]);
    let p = full(1, &v);
    assert_eq!(p.error, Some(DecodeError::Ipv6Truncated));
    assert_eq!(udp_ports(&p), (5000, 6000));
}

#[test]
fn error_ipv6_ext_header() {
    // Cut inside the destination options header. Regression guard: etherparse's
    // `Ipv6ExtensionSliceIter` reads past the end of the chain in this case, which is why
    // the fragment header is looked up by `ipv6_fragment` instead.
    let cut = &ETH_IPV6_EXT_UDP[..IP + 40 + 12];
    let p = dissect(LinkType::ETHERNET, cut, ETH_IPV6_EXT_UDP.len() as u32);
    assert_eq!(p.error, Some(DecodeError::Ipv6ExtHeader));
    assert_eq!(p.ip.map(|ip| ip.protocol), Some(60));
    // Hop-by-hop after the destination options header (it must come first).
    let v = with(ETH_IPV6_EXT_UDP, &[(IP + 48, 0)]);
    let p = full(1, &v);
    assert_eq!(p.error, Some(DecodeError::Ipv6ExtHeader));
}

#[test]
fn error_tcp_header() {
    // Data offset 4.
    let v = with(ETH_IPV4_TCP, &[(L4 + 12, 0x40)]);
    let p = full(1, &v);
    assert_eq!(p.error, Some(DecodeError::TcpHeader));
    assert_eq!(p.transport, Transport::None);
    assert!(p.ip.is_some());
    // Data offset 15 (60 bytes) but the IP packet holds only 48 bytes of TCP.
    let v = with(ETH_IPV4_TCP, &[(L4 + 12, 0xf0)]);
    let p = full(1, &v);
    assert_eq!(p.error, Some(DecodeError::TcpHeader));
}

#[test]
fn error_tcp_truncated() {
    let cut = &ETH_IPV4_TCP[..L4 + 24];
    let p = dissect(LinkType::ETHERNET, cut, ETH_IPV4_TCP.len() as u32);
    assert_eq!(p.error, Some(DecodeError::TcpTruncated));
    assert_eq!(p.transport, Transport::None);
    let p = dissect(
        LinkType::ETHERNET,
        &ETH_IPV4_TCP[..L4 + 10],
        ETH_IPV4_TCP.len() as u32,
    );
    assert_eq!(p.error, Some(DecodeError::TcpTruncated));
}

/// Offset of the UDP header in `ETH_QINQ_IPV4_UDP`.
const QINQ_UDP: usize = 14 + 8 + 20;

#[test]
fn error_udp_header() {
    // UDP length 100, IP says 12 bytes of UDP: keep going with the smaller.
    let v = with(ETH_QINQ_IPV4_UDP, &[(QINQ_UDP + 4, 0), (QINQ_UDP + 5, 100)]);
    let p = full(1, &v);
    assert_eq!(p.error, Some(DecodeError::UdpHeader));
    assert_eq!(udp_ports(&p), (47808, 47808));
    assert_eq!(p.payload_len, 4);
    // UDP length 4, below its own header.
    let v = with(ETH_QINQ_IPV4_UDP, &[(QINQ_UDP + 5, 4)]);
    let p = full(1, &v);
    assert_eq!(p.error, Some(DecodeError::UdpHeader));
    assert_eq!(p.payload_len, 0);
    // IP total length leaves 6 bytes for UDP.
    let v = with(RAW_IPV4_UDP, &[(3, 26)]);
    let p = full(101, &v);
    assert_eq!(p.error, Some(DecodeError::UdpHeader));
    assert_eq!(p.transport, Transport::None);
}

#[test]
fn error_udp_truncated() {
    let p = dissect(
        LinkType::RAW,
        &RAW_IPV4_UDP[..24],
        RAW_IPV4_UDP.len() as u32,
    );
    assert_eq!(p.error, Some(DecodeError::UdpTruncated));
    assert_eq!(p.transport, Transport::None);
}

#[test]
fn error_icmp_truncated() {
    // The IP packet holds only 4 bytes of ICMP.
    let mut v = ETH_IPV4_ICMP_ECHO[..L4 + 4].to_vec();
    v[IP + 3] = 24;
    assert_eq!(full(1, &v).error, Some(DecodeError::IcmpTruncated));
    let cut = &ETH_IPV4_ICMP_ECHO[..L4 + 7];
    assert_eq!(
        dissect(LinkType::ETHERNET, cut, 60).error,
        Some(DecodeError::IcmpTruncated)
    );
}

#[test]
fn error_icmpv6_truncated() {
    let cut = &ETH_IPV6_MLD[..IP + 40 + 8 + 4];
    let p = dissect(LinkType::ETHERNET, cut, ETH_IPV6_MLD.len() as u32);
    assert_eq!(p.error, Some(DecodeError::Icmpv6Truncated));
    assert_eq!(p.ip.map(|ip| ip.protocol), Some(58));
}

#[test]
fn error_igmp_truncated() {
    let cut = &ETH_IPV4_RA_IGMP[..IP + 24 + 7];
    let p = dissect(LinkType::ETHERNET, cut, ETH_IPV4_RA_IGMP.len() as u32);
    assert_eq!(p.error, Some(DecodeError::IgmpTruncated));
}

#[test]
fn every_error_kind_has_a_test_above() {
    // Guard: adding a kind without a test here fails this list's length check.
    let tested = [
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
    assert_eq!(tested, DecodeError::ALL);
}

#[test]
fn first_fragment_too_short_for_the_tcp_header() {
    // A first fragment carrying only 8 bytes of a TCP segment (tiny-fragment attack).
    let mut v = ETH_IPV4_TCP[..L4 + 8].to_vec();
    v[IP + 2] = 0;
    v[IP + 3] = 28; // total length 28: header + 8 bytes
    v[IP + 6] = 0x20; // MF
    let p = full(1, &v);
    assert_eq!(p.error, Some(DecodeError::TcpHeader));
    assert_eq!(
        p.ip.and_then(|ip| ip.fragment),
        Some(Fragment {
            id: 0x1234,
            offset: 0,
            more: true,
            len: 8,
        })
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    const LINKS: &[u32] = &[0, 1, 12, 14, 101, 108, 113, 228, 229, 276];

    fn check(link: u32, data: &[u8], orig_len: u32) {
        let p = dissect(LinkType(link), data, orig_len);
        // The payload is a view into the input.
        if !p.payload.is_empty() {
            let start = p.payload.as_ptr() as usize - data.as_ptr() as usize;
            assert!(start + p.payload.len() <= data.len());
        }
        assert!(usize::from(p.vlan_count.min(2)) <= p.vlan.len());
        if let Transport::Tcp(t) = p.transport {
            assert!(t.header_len >= 20 && t.header_len <= 60);
        }
        if !matches!(p.transport, Transport::None) {
            assert!(p.ip.is_some());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn arbitrary_bytes_never_panic(
            link in proptest::sample::select(LINKS),
            data in proptest::collection::vec(any::<u8>(), 0..200),
            extra in 0u32..3000,
        ) {
            check(link, &data, data.len() as u32);
            check(link, &data, data.len() as u32 + extra);
            check(link, &data, 0);
        }

        #[test]
        fn mutated_frames_never_panic(
            index in 0..frames::ALL.len(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
        ) {
            let (link, _, frame) = frames::ALL[index];
            let mut v = frame.to_vec();
            for (at, value) in edits {
                let at = at % v.len();
                v[at] = value;
            }
            let cut = cut % (v.len() + 1);
            check(link, &v[..cut], v.len() as u32);
            check(link, &v[..cut], cut as u32);
        }
    }
}
