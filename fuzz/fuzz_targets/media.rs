//! Arbitrary bytes through every payload reader of the media crate, cut into pieces that
//! alternate direction: DNS (datagrams and TCP streams), MPEG-TS (datagrams, byte
//! streams, RTSP-interleaved frames), RTP, HTTP/1.x, TLS, QUIC, IGMP and MLD, and segment
//! inference. None may panic, whatever the bytes and however they are cut; memory stays
//! bounded by each reader's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamscope_media::dns::{self, DnsConfig, DnsFlow};
use streamscope_media::http::{HttpConfig, HttpFlow};
use streamscope_media::multicast::{parse_igmp, parse_mld};
use streamscope_media::quic::QuicFlow;
use streamscope_media::rtp::{Dir, RtpConfig, RtpFlow};
use streamscope_media::segments::{SegmentConfig, SegmentInference};
use streamscope_media::tls::TlsFlow;
use streamscope_media::ts::{TsAnalyzer, TsConfig};

fuzz_target!(|data: &[u8]| {
    // The first byte sets the piece length (1-256); the rest is the traffic.
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(cut) + 1;
    let mut dns_udp = DnsFlow::new(DnsConfig::default());
    let mut dns_tcp = DnsFlow::new(DnsConfig::default());
    let mut ts = [
        TsAnalyzer::new(TsConfig::default()),
        TsAnalyzer::new(TsConfig::default()),
        TsAnalyzer::new(TsConfig::default()),
    ];
    let mut rtp = RtpFlow::new(RtpConfig::default());
    let mut http = HttpFlow::new(HttpConfig::default());
    let mut tls = TlsFlow::new();
    let mut quic = QuicFlow::new();
    let mut seg = SegmentInference::new(SegmentConfig::default());
    let mut ts_ns = 0i64;
    for (i, p) in rest.chunks(piece).enumerate() {
        ts_ns += 1_000_000 * i64::from(p[0]);
        let (d, dd) = if i % 2 == 0 {
            (Dir::Up, dns::Dir::ClientToServer)
        } else {
            (Dir::Down, dns::Dir::ServerToClient)
        };
        dns_udp.on_datagram(dd, ts_ns, p, &mut |_| {});
        dns_tcp.on_stream(dd, ts_ns, p, &mut |_| {});
        ts[0].on_datagram(ts_ns, p);
        ts[1].on_bytes(ts_ns, p);
        ts[2].on_interleaved(ts_ns, p);
        let _ = rtp.on_datagram(d, ts_ns, p);
        http.on_stream(dd, ts_ns, p, &mut |_| {});
        tls.on_stream(d, ts_ns, p, &mut |_| {});
        quic.on_datagram(d, ts_ns, p, &mut |_| {});
        seg.on_packet(d, ts_ns, p.len() as u32, &mut |_| {});
        let _ = parse_igmp(p).map(|m| m.records().count());
        let _ = parse_mld(p).map(|m| m.records().count());
        if p[0] == 0 {
            // Now and then a gap.
            dns_tcp.on_gap(dd);
            http.on_gap(dd, ts_ns, u64::from(p.len() as u32), &mut |_| {});
            tls.on_gap(d, ts_ns, 1);
        }
    }
    dns_udp.finish(ts_ns, &mut |_| {});
    dns_tcp.finish(ts_ns, &mut |_| {});
    for t in &mut ts {
        t.finish(ts_ns);
        let _ = t.summary();
        let _ = t.pids().count();
    }
    rtp.finish(ts_ns);
    let _ = rtp.streams().count();
    http.finish(ts_ns, &mut |_| {});
    tls.finish(ts_ns);
    quic.finish(ts_ns);
    seg.finish(&mut |_| {});
    let _ = seg.summary();
});
