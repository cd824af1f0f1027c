//! The flow table's inspector for this crate's protocols: [`MediaInspector`] implements
//! [`streamscope_flow::Inspector`], choosing per flow which protocol reads it, and hands
//! the rows it finds to a [`MediaOut`] that the pipeline's sink provides.
//!
//! Which flows are read, and how:
//!
//! * **DNS**: UDP and TCP flows with port 53 ([`crate::dns`]).
//! * **IGMP and MLD**: IGMP flows and ICMPv6 flows; each message (MLD types only for
//!   ICMPv6) becomes [`MulticastEvent`]s ([`crate::multicast`]).
//! * **MPEG-TS and RTP over UDP**: every other UDP flow is probed, by content, not port:
//!   MPEG-TS ([`ts::detect`]) and RTP ([`RtpFlow`]'s validating detection) are looked for
//!   in its first [`PROBE_DATAGRAMS`] datagrams; a flow where neither is found is let go
//!   (its packets cost nothing more), one where either is found is read to its end. A
//!   UDP flow to a multicast group is followed to its end whatever it carries: its
//!   datagrams feed the channel sessions ([`MediaOut::group_packet`]).
//! * **MPEG-TS in RTSP-interleaved TCP**, told by its first bytes (an RTSP message or an
//!   interleaved frame) on any port, and on port 554 for sessions picked up mid-stream:
//!   the server's byte stream ([`TsAnalyzer::on_interleaved`]).
//! * **HTTP/1.x on TCP**, told by its first bytes on any port ([`crate::http`]): every
//!   transaction, playlists read, segments in clear with their advertised duration, and
//!   MPEG-TS bodies (progressive TS of IPTV panels, TS segments) fed to a
//!   [`TsAnalyzer`] as a byte stream.
//! * **TLS on TCP and QUIC on UDP**: a TCP flow whose first payload is a TLS record, a
//!   UDP flow whose first datagram opens a QUIC connection of a named version (or is
//!   gQUIC's public header, [`quic::client_first_version`]): the hellos (SNI, ALPN,
//!   offered and chosen versions), and for TLS every record header to the flow's end
//!   (application_data records and bytes per direction, [`AppRecords`]); every packet's
//!   size feeds segment inference ([`crate::segments`]) to the flow's end.
//!
//! A TCP flow picked up after its start is probed over its first [`MID_STREAM_PROBES`]
//! payload packets for the start of a TLS record or an HTTP or RTSP message. A flow that
//! none of these found anything in is classed by its port, last ([`MediaClass::by_port`]).
//!
//! Dispatch is static: one enum with a variant per protocol, so the flow table stays
//! generic over one type and never names a protocol. The per-flow state of UDP flows
//! (`udp.rs`), TLS and QUIC flows (`encrypted.rs`) and HTTP flows (`http_flow.rs`) lives
//! in modules of its own; this one chooses among them and carries the rows out.

use std::net::IpAddr;

use streamscope_flow::{
    ClientRule, Dir as FlowDir, EndReason, FlowStart, Inspector, Segment, Want, Wants,
};
use streamscope_wire::{Packet, Transport};

use crate::dns::{self, DnsConfig, DnsRow, DnsSink, DnsState, DnsStats};
use crate::http::{
    self, HttpConfig, HttpFlow, HttpSink, HttpStats, HttpTransaction, PlaylistIndex, Role,
};
use crate::multicast::{GroupHandle, MulticastEvent, MulticastReader, MulticastStats};
use crate::quic::{self, QuicFlow, QuicStats};
use crate::rtp::{RtpConfig, RtpFlow};
use crate::segments::{InferredSegment, SegmentConfig, SegmentInference, SegmentSummary};
use crate::tls::{self, TlsFlow, TlsStats};
use crate::ts::{self, Encapsulation, TsAnalyzer, TsConfig};

mod encrypted;
mod http_flow;
mod udp;

use encrypted::Encrypted;
pub use encrypted::{AppRecords, Hello};
use http_flow::Http;
use udp::{Group, Udp};

/// UDP datagrams of a flow looked at for MPEG-TS and RTP before it is let go.
pub const PROBE_DATAGRAMS: u32 = 32;
/// Payload packets of a TCP flow picked up mid-connection looked at for the start of a
/// TLS record or an HTTP message before it is let go (a capture may begin inside a
/// multi-megabyte response: the next one starts hundreds of packets later).
pub const MID_STREAM_PROBES: u16 = 1024;
/// RTSP's port (RFC 2326), whose TCP flows are read for interleaved MPEG-TS.
const RTSP_PORT: u16 = 554;
/// ICMPv6 types of MLD: query, v1 report, v1 done, v2 report.
const MLD_TYPES: [u8; 4] = [130, 131, 132, 143];

/// Where the rows inspectors find go (the pipeline's table sink).
pub trait MediaOut {
    /// One DNS exchange (or a query or response alone) of `flow`.
    fn dns(&mut self, flow: &FlowStart, row: DnsRow);
    /// What the run's DNS flows read and could not read, counted as they go.
    fn dns_stats(&mut self) -> &mut DnsStats;
    /// The DNS flows' limits (default: [`DnsConfig::default`]).
    fn dns_config(&self) -> DnsConfig {
        DnsConfig::default()
    }
    /// One IGMP / MLD event (a message, or a group record of a report) of `flow`.
    fn multicast(&mut self, flow: &FlowStart, event: &MulticastEvent<'_>);
    /// What the run's IGMP / MLD messages were, by kind, counted as they go.
    fn multicast_stats(&mut self) -> &mut MulticastStats;
    /// A UDP datagram with `bytes` of payload from `source` to the multicast `group`;
    /// `handle` is the flow's, for
    /// [`ChannelSessions::on_group_packet`](crate::multicast::ChannelSessions::on_group_packet).
    fn group_packet(
        &mut self,
        ts_ns: i64,
        group: IpAddr,
        source: IpAddr,
        bytes: u64,
        handle: &mut GroupHandle,
    );
    /// The run's playlist index, shared by every HTTP flow (see
    /// [`HttpSink::playlist_index`]); default none.
    fn playlist_index(&mut self) -> Option<&mut PlaylistIndex> {
        None
    }
    /// The MPEG-TS analysers' settings (default: [`TsConfig::default`]; the pipeline's
    /// sink sets the capture's timestamp resolution).
    fn ts_config(&self) -> TsConfig {
        TsConfig::default()
    }
    /// A flow that carried MPEG-TS ended: its analyser, finished, and how the TS came.
    fn ts(&mut self, flow: &FlowStart, ts: &TsAnalyzer, carrier: Carrier);
    /// A flow with confirmed RTP streams ended: its analyser, finished.
    fn rtp(&mut self, flow: &FlowStart, rtp: &RtpFlow);
    /// A media segment inferred from an encrypted flow's shape.
    fn segment(&mut self, flow: &FlowStart, segment: &InferredSegment);
    /// One HTTP transaction of `flow`.
    fn http(&mut self, flow: &FlowStart, tx: &HttpTransaction);
    /// What the run's HTTP flows read and could not read, counted as they go.
    fn http_stats(&mut self) -> &mut HttpStats;
    /// What the run's TLS readers read and could not read, added as each flow ends (or
    /// its reader finds it is not TLS).
    fn tls_stats(&mut self) -> &mut TlsStats;
    /// What the run's QUIC readers read and could not read, added as each flow ends.
    fn quic_stats(&mut self) -> &mut QuicStats;
}

/// How a flow's MPEG-TS came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// TS packets straight in UDP.
    Udp,
    /// TS in RTP (RFC 2250) in UDP.
    Rtp,
    /// TS in RTSP-interleaved frames on TCP (RFC 2326 section 10.12).
    RtspInterleaved,
    /// TS in HTTP response bodies (progressive TS of IPTV panels, TS segments).
    Http,
}

impl Carrier {
    /// The name used in tables: `udp`, `rtp`, `rtsp_interleaved`.
    pub fn name(self) -> &'static str {
        match self {
            Carrier::Udp => "udp",
            Carrier::Rtp => "rtp",
            Carrier::RtspInterleaved => "rtsp_interleaved",
            Carrier::Http => "http",
        }
    }
}

/// What a flow was found to carry (`flows.class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaClass {
    /// MPEG-TS (in UDP or RTP) sent to a multicast group.
    IptvMulticast,
    /// MPEG-TS to one host: in UDP or RTP, or RTSP-interleaved on TCP.
    IptvUnicast,
    /// RTP streams that are not MPEG-TS (voice, video calls).
    RtpMedia,
    /// TLS whose traffic has the shape of segmented media.
    TlsStreaming,
    /// Other TLS.
    TlsOther,
    /// QUIC whose traffic has the shape of segmented media.
    QuicStreaming,
    /// Other QUIC.
    QuicOther,
    /// DNS (port 53, messages read).
    Dns,
    /// Progressive MPEG-TS over HTTP (IPTV panels).
    HttpTs,
    /// Nothing identified (an HTTP flow that is neither streaming nor a panel).
    Other,
    /// HLS or DASH over cleartext HTTP (playlists and segments).
    Hls,
}

impl MediaClass {
    /// The class of a flow no inspector found anything in, by its server port (the last
    /// evidence): TCP 443 and 8443 `tls_other`, UDP 443 `quic_other` (a connection
    /// refused, reset or picked up where no record or long header starts), with the
    /// evidence; `None` for other ports.
    pub fn by_port(protocol: u8, server_port: u16) -> Option<(MediaClass, &'static str)> {
        match (protocol, server_port) {
            (6, 443 | 8443) => Some((MediaClass::TlsOther, "tcp port 443/8443 only")),
            (17, 443) => Some((MediaClass::QuicOther, "udp port 443 only")),
            _ => None,
        }
    }

    /// The name used in tables: `iptv_multicast`, `iptv_unicast`, `rtp_media`.
    pub fn name(self) -> &'static str {
        match self {
            MediaClass::IptvMulticast => "iptv_multicast",
            MediaClass::IptvUnicast => "iptv_unicast",
            MediaClass::RtpMedia => "rtp_media",
            MediaClass::TlsStreaming => "tls_streaming",
            MediaClass::TlsOther => "tls_other",
            MediaClass::QuicStreaming => "quic_streaming",
            MediaClass::QuicOther => "quic_other",
            MediaClass::Dns => "dns",
            MediaClass::HttpTs => "http_ts",
            MediaClass::Hls => "hls",
            MediaClass::Other => "other",
        }
    }
}

/// Media counters of one flow's time bin (`flow_bins`), zero for flows without media.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MediaBin {
    /// MPEG-TS packets.
    pub ts_packets: u64,
    /// Continuity-counter errors (TR 101 290 Continuity_count_error).
    pub ts_cc_errors: u64,
    /// TS packets missing by the continuity counters.
    pub ts_lost_packets: u64,
    /// Packets with the transport error indicator set.
    pub ts_transport_errors: u64,
    /// PCR repetition, discontinuity and accuracy errors.
    pub ts_pcr_errors: u64,
    /// MDI delay factor over the bin, ms (RFC 4445); `None` without a PCR rate.
    pub ts_df_ms: Option<f64>,
    /// MDI media loss rate over the bin, TS packets per second (RFC 4445): from the RTP
    /// sequence numbers when the TS comes in RTP, else from the continuity counters;
    /// `None` without MPEG-TS or when the bin spans no time.
    pub ts_mlr_pps: Option<f64>,
    /// RTP packets counted in streams.
    pub rtp_packets: u64,
    /// RTP packets lost in the bin (expected less received; negative with duplicates).
    pub rtp_lost: i64,
    /// RTP duplicates.
    pub rtp_duplicates: u64,
    /// RTP packets out of order.
    pub rtp_reordered: u64,
    /// Largest RTP interarrival jitter in the bin, ms.
    pub rtp_max_jitter_ms: Option<f64>,
}

/// A DNS flow's rows and counters on their way to a [`MediaOut`].
struct DnsTo<'a> {
    out: &'a mut (dyn MediaOut + Send),
    flow: &'a FlowStart,
    config: DnsConfig,
}

impl<'a> DnsTo<'a> {
    fn new(out: &'a mut (dyn MediaOut + Send), flow: &'a FlowStart) -> DnsTo<'a> {
        let config = out.dns_config();
        DnsTo { out, flow, config }
    }
}

impl DnsSink for DnsTo<'_> {
    #[inline]
    fn config(&self) -> &DnsConfig {
        &self.config
    }
    #[inline]
    fn stats(&mut self) -> &mut DnsStats {
        self.out.dns_stats()
    }
    #[inline]
    fn row(&mut self, row: DnsRow) {
        self.out.dns(self.flow, row)
    }
}

/// Per-flow state of a flow one of this crate's protocols reads.
#[derive(Debug)]
pub struct MediaInspector {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// DNS; `tcp` when read as streams.
    Dns { state: DnsState, tcp: bool },
    /// IGMP or ICMPv6 (MLD).
    Multicast,
    /// UDP probed or read for MPEG-TS and RTP.
    Udp(Box<Udp>),
    /// UDP probed and let go: nothing kept.
    LetGo,
    /// RTSP on TCP: interleaved MPEG-TS from the server.
    Rtsp(Box<TsAnalyzer>),
    /// TCP waiting for a payload that tells what it carries (a TLS record, an HTTP or RTSP
    /// message, an RTSP interleaved frame): the first one of a connection seen from its
    /// SYN; one of the first [`MID_STREAM_PROBES`] of one picked up later (the capture
    /// began inside a message). The payload packets looked at.
    TcpProbe(u16),
    /// TLS (`quic: false`) or QUIC: segment inference on packet sizes.
    Encrypted(Box<Encrypted>),
    /// HTTP/1.x.
    Http(Box<Http>),
}

/// Whether a TCP payload starts an RTSP message (RFC 2326 section 4: a request line
/// ending in ` RTSP/1.0`, or a status line `RTSP/1.0 NNN`) or an interleaved frame
/// (section 10.12: `$`, a channel, a 16-bit length, then MPEG-TS or RTP version 2).
fn rtsp_start(p: &[u8]) -> bool {
    if let [b'$', _, _, _, first, ..] = p {
        return *first == 0x47 || first >> 6 == 2;
    }
    if let Some(rest) = p.strip_prefix(b"RTSP/1.0 ") {
        return rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit);
    }
    let line = &p[..p.len().min(1024)];
    let Some(end) = line.iter().position(|&b| b == b'\n') else {
        return false;
    };
    let line = line[..end].strip_suffix(b"\r").unwrap_or(&line[..end]);
    line.first().is_some_and(u8::is_ascii_uppercase) && line.ends_with(b" RTSP/1.0")
}

/// Whether a TCP payload starts with a TLS record header: content type 20-23 (change
/// cipher spec, alert, handshake, application data), version 3.x (SSL 3.0 to TLS 1.3's
/// legacy 3.3).
fn tls_record_start(p: &[u8]) -> bool {
    matches!(p, [20..=23, 3, 0..=4, ..])
}

/// The DNS and HTTP readers' direction (client to server or back) of a flow direction.
fn dns_dir(d: FlowDir) -> dns::Dir {
    match d {
        FlowDir::Up => dns::Dir::ClientToServer,
        FlowDir::Down => dns::Dir::ServerToClient,
    }
}

impl MediaInspector {
    /// What the flow was found to carry, once it ended: `None` for flows without media.
    pub fn class(&self) -> Option<MediaClass> {
        match &self.kind {
            Kind::Udp(u) => u.class,
            Kind::Rtsp(t) => (t.summary().packets > 0).then_some(MediaClass::IptvUnicast),
            Kind::Dns { .. } => Some(MediaClass::Dns),
            Kind::Http(h) => Some(h.class()),
            Kind::Encrypted(e) => Some(match (e.quic, e.streaming()) {
                (false, true) => MediaClass::TlsStreaming,
                (false, false) => MediaClass::TlsOther,
                (true, true) => MediaClass::QuicStreaming,
                (true, false) => MediaClass::QuicOther,
            }),
            _ => None,
        }
    }

    /// What a TLS or QUIC flow's hellos said (`None` for other flows, or when no
    /// ClientHello was read).
    pub fn hello(&self) -> Option<&Hello> {
        match &self.kind {
            Kind::Encrypted(e) => e.hello.as_ref(),
            _ => None,
        }
    }

    /// A TLS flow's application_data records per direction (up, down), once it ended
    /// (`None` for other flows).
    pub fn tls_app_records(&self) -> Option<[AppRecords; 2]> {
        match &self.kind {
            Kind::Encrypted(e) => e.app_records,
            _ => None,
        }
    }

    /// A QUIC flow's version, named ([`quic::version_name`]): that of its first long
    /// header (or gQUIC public header), whether or not its ClientHello was read.
    pub fn quic_version(&self) -> Option<String> {
        match &self.kind {
            Kind::Encrypted(e) => e.quic_version().map(|v| quic::version_name(v).into_owned()),
            _ => None,
        }
    }

    /// The first HTTP Host of an HTTP flow.
    pub fn http_host(&self) -> Option<&str> {
        match &self.kind {
            Kind::Http(h) => h.host.as_deref(),
            _ => None,
        }
    }

    /// The shape of the segments inferred on a TLS or QUIC flow.
    pub fn segments(&self) -> Option<SegmentSummary> {
        match &self.kind {
            Kind::Encrypted(e) => Some(e.seg.summary()),
            _ => None,
        }
    }

    /// The evidence for [`MediaInspector::class`]: how the media was found.
    pub fn class_evidence(&self) -> Option<&'static str> {
        match (&self.kind, self.class()?) {
            (Kind::Rtsp(_), _) => Some("mpeg-ts in rtsp-interleaved tcp"),
            (Kind::Dns { .. }, _) => Some("port 53"),
            (Kind::Http(_), MediaClass::HttpTs) => Some("http response bodies of mpeg-ts"),
            (Kind::Http(_), MediaClass::Hls) => Some("http playlists or media segments"),
            (Kind::Http(_), _) => Some("http"),
            (Kind::Encrypted(_), MediaClass::TlsStreaming) => {
                Some("tls records; segment-shaped downloads (3 or more, on at most half the time)")
            }
            (Kind::Encrypted(_), MediaClass::TlsOther) => Some("tls records"),
            (Kind::Encrypted(_), MediaClass::QuicStreaming) => {
                Some("quic initial; segment-shaped downloads (3 or more, on at most half the time)")
            }
            (Kind::Encrypted(_), _) => Some("quic initial"),
            (Kind::Udp(_), MediaClass::RtpMedia) => {
                Some("rtp streams (rfc 3550 validation), not mpeg-ts")
            }
            (Kind::Udp(u), c) => Some(match (u.carrier, c == MediaClass::IptvMulticast) {
                (Carrier::Rtp, true) => "mpeg-ts in rtp to a multicast group",
                (_, true) => "mpeg-ts in udp to a multicast group",
                (Carrier::Rtp, false) => "mpeg-ts in rtp to one host",
                (_, false) => "mpeg-ts in udp to one host",
            }),
            _ => None,
        }
    }

    /// Reads one IGMP or MLD message: the 8-byte header the dissector kept, then the
    /// payload.
    fn multicast_message(flow: &FlowStart, s: &Segment<'_>, out: &mut (dyn MediaOut + Send)) {
        let (header, mld) = match s.transport {
            Transport::Igmp { header, .. } => (header, false),
            Transport::Icmpv6 { kind, header, .. } if MLD_TYPES.contains(&kind) => (header, true),
            _ => return,
        };
        let (src, dst) = match s.dir {
            FlowDir::Up => (flow.client.addr, flow.server.addr),
            FlowDir::Down => (flow.server.addr, flow.client.addr),
        };
        // A copy puts the message in one piece: on the stack (a report of a full
        // Ethernet frame fits), on the heap only past that.
        let n = header.len() + s.payload.len();
        let mut stack = [0u8; 1536];
        let heap;
        let msg: &[u8] = if n <= stack.len() {
            stack[..header.len()].copy_from_slice(&header);
            stack[header.len()..n].copy_from_slice(s.payload);
            &stack[..n]
        } else {
            heap = [&header[..], s.payload].concat();
            &heap
        };
        let mut reader = MulticastReader::new();
        let mut emit = |e: MulticastEvent<'_>| out.multicast(flow, &e);
        if mld {
            reader.on_mld(s.ts_ns, src, dst, msg, &mut emit);
        } else {
            reader.on_igmp(s.ts_ns, src, dst, msg, &mut emit);
        }
        out.multicast_stats().merge(reader.stats());
    }
}

impl Inspector for MediaInspector {
    type Out = dyn MediaOut + Send;
    type BinCounters = MediaBin;

    #[inline]
    fn may_read(packet: &Packet<'_>) -> bool {
        match packet.transport {
            // Any UDP datagram may be DNS, MPEG-TS or RTP; a later fragment (no transport
            // here) may complete one.
            Transport::Udp { .. } | Transport::None | Transport::Igmp { .. } => true,
            // TLS is told by its first bytes, on any port.
            Transport::Tcp(_) => true,
            Transport::Icmpv6 { kind, .. } => MLD_TYPES.contains(&kind),
            _ => false,
        }
    }

    #[inline]
    fn start(flow: &FlowStart, out: &mut Self::Out) -> Option<MediaInspector> {
        let kind = match flow.protocol {
            2 | 58 => Kind::Multicast,
            6 | 17
                if flow.has_ports
                    && (dns::is_dns_port(flow.server.port)
                        || dns::is_dns_port(flow.client.port)) =>
            {
                let mut d = DnsState::default();
                if flow.protocol == 6 && flow.client_rule != ClientRule::Syn {
                    // Picked up mid-connection: the first bytes need not start a message.
                    let mut to = DnsTo::new(out, flow);
                    d.on_gap(dns::Dir::ClientToServer, &mut to);
                    d.on_gap(dns::Dir::ServerToClient, &mut to);
                }
                Kind::Dns {
                    state: d,
                    tcp: flow.protocol == 6,
                }
            }
            6 if flow.server.port == RTSP_PORT || flow.client.port == RTSP_PORT => {
                Kind::Rtsp(Box::new(TsAnalyzer::new(out.ts_config())))
            }
            6 => Kind::TcpProbe(0),
            17 => {
                let group = [flow.server.addr, flow.client.addr]
                    .into_iter()
                    .find(|a| a.is_multicast());
                Kind::Udp(Box::new(Udp {
                    group: group.map(|addr| {
                        Box::new(Group {
                            addr,
                            handle: GroupHandle::default(),
                        })
                    }),
                    ts: None,
                    carrier: Carrier::Udp,
                    rtp: None,
                    datagrams: 0,
                    let_go: false,
                    last_ns: flow.ts_ns,
                    quic: false,
                    class: None,
                }))
            }
            _ => return None,
        };
        Some(MediaInspector { kind })
    }

    fn wants(&self) -> Wants {
        match &self.kind {
            Kind::Dns { tcp: true, .. } => Wants::STREAMS,
            Kind::Dns { tcp: false, .. } | Kind::Multicast => Wants::PACKETS,
            Kind::Udp(u) => u.wants(),
            Kind::LetGo => Wants::NOTHING,
            Kind::TcpProbe(_) => Wants::PACKETS,
            Kind::Encrypted(e) => e.wants(),
            Kind::Http(_) => Wants::STREAMS,
            Kind::Rtsp(_) => Wants {
                up: Want::Nothing,
                down: Want::Stream,
            },
        }
    }

    fn packet(&mut self, flow: &FlowStart, s: &Segment<'_>, out: &mut Self::Out) -> Wants {
        match &mut self.kind {
            // A fragmented datagram comes whole, put back together by the flow table.
            Kind::Dns { state, .. } => {
                let mut to = DnsTo::new(out, flow);
                state.on_datagram(dns_dir(s.dir), s.ts_ns, s.payload, &mut to)
            }
            Kind::Multicast => MediaInspector::multicast_message(flow, s, out),
            Kind::Udp(u) => {
                u.datagram(flow, s, out);
                if u.quic {
                    let mut e = Encrypted::new(true);
                    e.packet(flow, s, out);
                    self.kind = Kind::Encrypted(e);
                } else if u.let_go {
                    // Nothing found: the state goes, the flow is only counted from now on.
                    self.kind = Kind::LetGo;
                }
            }
            Kind::TcpProbe(probed) => {
                if s.payload_len > 0 {
                    if tls_record_start(s.payload) {
                        let mut e = Encrypted::new(false);
                        // This packet's bytes; the stream from the next segment on.
                        e.stream(flow, s.dir, s.ts_ns, s.payload, out);
                        self.kind = Kind::Encrypted(e);
                    } else if http::looks_like_http(dns_dir(s.dir), s.payload) {
                        let mut h = Box::new(Http {
                            flow: HttpFlow::new(HttpConfig::default()),
                            ts: None,
                            host: None,
                            playlists: 0,
                            segments: 0,
                            panel_streams: 0,
                        });
                        // This packet's bytes; the stream from the next segment on.
                        let (f, mut to) = h.to(flow, out);
                        if flow.client_rule != ClientRule::Syn {
                            // Picked up mid-connection: either direction may be inside
                            // a message, and is read from its next one.
                            f.on_gap(dns::Dir::ClientToServer, s.ts_ns, 0, &mut to);
                            f.on_gap(dns::Dir::ServerToClient, s.ts_ns, 0, &mut to);
                        }
                        f.on_stream(dns_dir(s.dir), s.ts_ns, s.payload, &mut to);
                        self.kind = Kind::Http(h);
                    } else if rtsp_start(s.payload) {
                        // RTSP on another port than 554: its server's interleaved data
                        // from the next segment on (this one's too, if it is the
                        // server's).
                        let mut t = Box::new(TsAnalyzer::new(out.ts_config()));
                        if s.dir == FlowDir::Down {
                            t.on_interleaved(s.ts_ns, s.payload);
                        }
                        self.kind = Kind::Rtsp(t);
                    } else if flow.client_rule == ClientRule::Syn
                        || *probed + 1 >= MID_STREAM_PROBES
                    {
                        self.kind = Kind::LetGo;
                    } else {
                        *probed += 1;
                    }
                }
            }
            Kind::Encrypted(e) => e.packet(flow, s, out),
            // Read as streams: packets come only before the switch.
            Kind::Http(_) => {}
            Kind::LetGo => {}
            Kind::Rtsp(_) => {}
        }
        self.wants()
    }

    fn stream(
        &mut self,
        flow: &FlowStart,
        dir: FlowDir,
        ts_ns: i64,
        bytes: &[u8],
        out: &mut Self::Out,
    ) -> Wants {
        match &mut self.kind {
            Kind::Dns { state, .. } => {
                state.on_stream(dns_dir(dir), ts_ns, bytes, &mut DnsTo::new(out, flow))
            }
            Kind::Rtsp(t) if dir == FlowDir::Down => t.on_interleaved(ts_ns, bytes),
            Kind::Http(h) => {
                let (f, mut to) = h.to(flow, out);
                f.on_stream(dns_dir(dir), ts_ns, bytes, &mut to);
            }
            Kind::Encrypted(e) => e.stream(flow, dir, ts_ns, bytes, out),
            _ => {}
        }
        self.wants()
    }

    fn gap(
        &mut self,
        flow: &FlowStart,
        dir: FlowDir,
        ts_ns: i64,
        missing: u64,
        out: &mut Self::Out,
    ) -> Wants {
        match &mut self.kind {
            Kind::Dns { state, .. } => state.on_gap(dns_dir(dir), &mut DnsTo::new(out, flow)),
            Kind::Http(h) => {
                let (f, mut to) = h.to(flow, out);
                f.on_gap(dns_dir(dir), ts_ns, missing, &mut to);
            }
            Kind::Encrypted(e) => e.gap(dir, ts_ns, missing),
            _ => {}
        }
        self.wants()
    }

    fn close_bin(&mut self) -> MediaBin {
        match &mut self.kind {
            Kind::Udp(u) => u.close_bin(),
            _ => MediaBin::default(),
        }
    }

    fn end(&mut self, flow: &FlowStart, _: EndReason, _: i64, ended_ns: i64, out: &mut Self::Out) {
        match &mut self.kind {
            Kind::Dns { state, .. } => state.finish(ended_ns, &mut DnsTo::new(out, flow)),
            Kind::Udp(u) => u.end(flow, ended_ns, out),
            Kind::Rtsp(t) => {
                t.finish(ended_ns);
                if t.summary().packets > 0 {
                    out.ts(flow, t, Carrier::RtspInterleaved);
                }
            }
            Kind::Encrypted(e) => {
                e.end_readers(ended_ns, out);
                e.seg.finish(&mut |x| out.segment(flow, &x));
            }
            Kind::Http(h) => {
                let (f, mut to) = h.to(flow, out);
                f.finish(ended_ns, &mut to);
                out.http_stats().merge(h.flow.stats());
                if let Some(t) = h.ts.as_mut() {
                    t.finish(ended_ns);
                    if t.summary().packets > 0 {
                        out.ts(flow, t, Carrier::Http);
                    }
                }
            }
            Kind::Multicast | Kind::LetGo | Kind::TcpProbe(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RTSP by its first bytes: requests, responses, interleaved frames of TS or RTP;
    /// not HTTP, not a frame of something else.
    #[test]
    fn rtsp_starts() {
        assert!(rtsp_start(
            b"OPTIONS rtsp://h/s RTSP/1.0\r\nCSeq: 1\r\n\r\n"
        ));
        assert!(rtsp_start(b"SETUP rtsp://h/s/track1 RTSP/1.0\n"));
        assert!(rtsp_start(b"RTSP/1.0 200 OK\r\n"));
        assert!(rtsp_start(&[b'$', 0, 5, 0x2c, 0x47, 0x40]));
        assert!(rtsp_start(&[b'$', 1, 0, 12, 0x80, 33]));
        assert!(!rtsp_start(&[b'$', 1, 0, 12, 0x17, 3]));
        assert!(!rtsp_start(b"GET /s HTTP/1.1\r\n"));
        assert!(!rtsp_start(b"OPTIONS rtsp://h/s RTSP/1.0"));
        assert!(!rtsp_start(b"RTSP/1.0 2x"));
        assert!(!rtsp_start(b"options rtsp://h/s RTSP/1.0\r\n"));
    }

    /// A capture of a million DNS flows keeps a million of these: the flow's identity
    /// and the DNS counters stay out of it.
    #[test]
    fn per_flow_state_is_small() {
        assert_eq!(std::mem::size_of::<DnsState>(), 40);
        assert_eq!(std::mem::size_of::<MediaInspector>(), 48);
        // A UDP flow being probed: the analysers are boxed and made only when the
        // payload looks like theirs.
        assert!(
            std::mem::size_of::<Udp>() <= 64,
            "{}",
            std::mem::size_of::<Udp>()
        );
    }
}
