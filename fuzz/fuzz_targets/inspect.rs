//! Arbitrary bytes as a capture, through the pipeline into a small flow table with every
//! media inspector on (DNS, MPEG-TS, RTP, IGMP/MLD, HTTP, TLS, QUIC, segment inference),
//! with the hand-off to the flow thread from the first packet: nothing panics, whatever
//! the packets; every flow ends once, and its class is one of the documented ones.
#![no_main]

use std::collections::HashSet;
use std::io::Cursor;
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use streamscope_capture::Capture;
use streamscope_flow::{BinRecord, FlowConfig, FlowRecord, FlowSink, FlowStart, FlowTable};
use streamscope_media::dns::{DnsRow, DnsStats};
use streamscope_media::http::{HttpStats, HttpTransaction};
use streamscope_media::multicast::{GroupHandle, MulticastEvent, MulticastStats};
use streamscope_media::quic::QuicStats;
use streamscope_media::rtp::RtpFlow;
use streamscope_media::segments::InferredSegment;
use streamscope_media::tls::TlsStats;
use streamscope_media::ts::TsAnalyzer;
use streamscope_media::{Carrier, MediaBin, MediaInspector, MediaOut};

#[derive(Default)]
struct Sink {
    flow_ids: HashSet<i64>,
    dns: DnsStats,
    multicast: MulticastStats,
    http: HttpStats,
    tls: TlsStats,
    quic: QuicStats,
    rows: u64,
}

impl MediaOut for Sink {
    fn dns(&mut self, _: &FlowStart, _: DnsRow) {
        self.rows += 1;
    }
    fn dns_stats(&mut self) -> &mut DnsStats {
        &mut self.dns
    }
    fn multicast(&mut self, _: &FlowStart, e: &MulticastEvent<'_>) {
        self.rows += e.sources.iter().count() as u64;
    }
    fn multicast_stats(&mut self) -> &mut MulticastStats {
        &mut self.multicast
    }
    fn group_packet(&mut self, _: i64, _: IpAddr, _: IpAddr, _: u64, _: &mut GroupHandle) {}
    fn ts(&mut self, _: &FlowStart, ts: &TsAnalyzer, _: Carrier) {
        self.rows += ts.pids().count() as u64;
        let _ = ts.summary();
    }
    fn rtp(&mut self, _: &FlowStart, rtp: &RtpFlow) {
        self.rows += rtp.streams().count() as u64;
    }
    fn segment(&mut self, _: &FlowStart, s: &InferredSegment) {
        assert!(s.first_byte_ts_ns <= s.last_byte_ts_ns);
        self.rows += 1;
    }
    fn http(&mut self, _: &FlowStart, _: &HttpTransaction) {
        self.rows += 1;
    }
    fn http_stats(&mut self) -> &mut HttpStats {
        &mut self.http
    }
    fn tls_stats(&mut self) -> &mut TlsStats {
        &mut self.tls
    }
    fn quic_stats(&mut self) -> &mut QuicStats {
        &mut self.quic
    }
}

impl FlowSink<MediaInspector> for Sink {
    fn out(&mut self) -> &mut (dyn MediaOut + Send + 'static) {
        self
    }
    fn bin(&mut self, _: &BinRecord<MediaBin>) {}
    fn flow(&mut self, f: &FlowRecord, i: Option<&MediaInspector>) {
        assert!(self.flow_ids.insert(f.id), "flow {} ended twice", f.id);
        if let Some(i) = i {
            let _ = (i.class(), i.class_evidence(), i.segments(), i.hello(), i.http_host());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(cap) = Capture::from_reader("fuzz", Box::new(Cursor::new(data.to_vec()))) else {
        return;
    };
    let mut table = FlowTable::<MediaInspector>::new(FlowConfig {
        max_flows: 8,
        udp_idle_ns: 20_000_000,
        ..FlowConfig::default()
    });
    let mut sink = Sink::default();
    let handoff = data.len() % 2 == 0;
    streamscope_pipeline::run(
        vec![cap],
        &mut table,
        &mut sink,
        &streamscope_pipeline::Silent,
        |_| true,
        streamscope_pipeline::Options {
            threads: 2,
            handoff: if handoff {
                streamscope_pipeline::Handoff::FromStart
            } else {
                streamscope_pipeline::Handoff::Never
            },
        },
    );
});
