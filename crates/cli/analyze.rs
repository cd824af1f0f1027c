//! `streamscope analyze`: captures in, Parquet tables and `run.json` out.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use std::net::IpAddr;
use streamscope_flow::{BinRate, BinRecord, FlowRecord, FlowSink, FlowStart, FlowTable};
use streamscope_media::dns::{DnsRow, DnsStats};

use streamscope_media::http::{HttpStats, HttpTransaction, PlaylistIndex, Role};
use streamscope_media::multicast::{
    ChannelSession, ChannelSessions, GroupHandle, MulticastEvent, MulticastStats, SessionConfig,
};
use streamscope_media::quic::QuicStats;
use streamscope_media::rtp::RtpFlow;
use streamscope_media::segments::InferredSegment;
use streamscope_media::tls::TlsStats;
use streamscope_media::ts::{TsAnalyzer, TsConfig};
use streamscope_media::{Carrier, MediaBin, MediaInspector, MediaOut};
use streamscope_store::{
    rfc3339_ns, write_json_atomic, BinMedia, BinRow, ChannelSessionRow, Counts, FlowRow, HttpRow,
    InputEntry, MulticastEventRow, Output, RtpStreamRow, RunManifest, SegmentRow, Table,
    TableEntry, TcpFacts, Timings, TsPidRow, TsStreamRow, DNS, FLOWS, FLOW_BINS, SCHEMA_VERSION,
    TOOL_NAME, TOOL_VERSION,
};

use crate::args::AnalyzeArgs;
use crate::naming::{Found, Namer, Naming};
use crate::pipeline::{self, RunReport};
use crate::progress::Progress;
use crate::Failure;

/// Turns the flow table's records and the inspectors' findings into table rows.
/// Entries of the run's playlist index (segment templates, media playlists and
/// patterns, each kind bounded by it): a few thousand players' renditions.
const RUN_PLAYLIST_ENTRIES: usize = 4096;

struct TableSink {
    output: Output,
    error: Option<streamscope_store::Error>,
    /// The bin width's bytes to bit/s.
    rate: BinRate,
    /// The `flows` and `dns` tables, and the address → name map between them.
    naming: Naming,
    /// What the DNS flows read and could not.
    dns: DnsStats,
    /// What the IGMP / MLD messages were.
    multicast: MulticastStats,
    /// What the HTTP flows read and could not.
    http: HttpStats,
    /// What the TLS readers read and could not.
    tls: TlsStats,
    /// What the QUIC readers read and could not.
    quic: QuicStats,
    /// Memberships open, and the group traffic they see.
    sessions: ChannelSessions,
    /// What every HTTP flow's playlists advertised, for segments fetched on other flows.
    playlists: PlaylistIndex,
    /// A record's sources, reused.
    sources: Vec<IpAddr>,
    /// The MPEG-TS analysers' settings: the captures' timestamp resolution.
    ts_config: TsConfig,
}

impl TableSink {
    fn keep(&mut self, r: Result<(), streamscope_store::Error>) {
        if let (Err(e), None) = (r, &self.error) {
            self.error = Some(e);
        }
    }
}

impl MediaOut for TableSink {
    fn dns(&mut self, flow: &FlowStart, row: DnsRow) {
        self.naming.dns(flow, row);
    }

    fn dns_stats(&mut self) -> &mut DnsStats {
        &mut self.dns
    }

    fn multicast(&mut self, flow: &FlowStart, e: &MulticastEvent<'_>) {
        let output = &mut self.output;
        let mut first = Ok(());
        self.sessions.on_event(e, &mut |s| {
            let r = output.push(session_row(&s));
            if first.is_ok() {
                first = r;
            }
        });
        self.keep(first);
        if self.error.is_some() {
            return;
        }
        self.sources.clear();
        self.sources.extend(e.sources.iter());
        let row = MulticastEventRow {
            ts_ns: e.ts_ns,
            flow_id: flow.id,
            host_addr: e.host,
            destination_addr: e.destination,
            protocol: if e.version.is_some_and(|v| v.is_mld()) || flow.protocol == 58 {
                "mld"
            } else {
                "igmp"
            },
            version: e.version.map(|v| v.name()),
            kind: e.kind.name(),
            message_type: e.message_type,
            other_protocol: e.other.map(|o| o.name()),
            group_addr: e.group,
            record_type: e.record_type.map(|r| r.name()),
            sources: &self.sources,
            max_resp_ms: e.max_resp_ms,
            checksum_ok: e.checksum_ok,
            malformed: e.malformed,
        };
        let r = self.output.push_ref(&row);
        self.keep(r);
    }

    fn multicast_stats(&mut self) -> &mut MulticastStats {
        &mut self.multicast
    }

    fn group_packet(
        &mut self,
        ts_ns: i64,
        group: IpAddr,
        source: IpAddr,
        bytes: u64,
        handle: &mut GroupHandle,
    ) {
        self.sessions
            .on_group_packet(ts_ns, group, source, bytes, handle);
    }

    fn playlist_index(&mut self) -> Option<&mut PlaylistIndex> {
        Some(&mut self.playlists)
    }

    fn ts_config(&self) -> TsConfig {
        self.ts_config
    }

    fn ts(&mut self, flow: &FlowStart, ts: &TsAnalyzer, carrier: Carrier) {
        if self.error.is_some() {
            return;
        }
        let s = ts.summary();
        let t = &s.tr101290;
        let row = TsStreamRow {
            flow_id: flow.id,
            carrier: carrier.name(),
            first_ts_ns: s.first_ns,
            last_ts_ns: s.last_ns,
            packet_len: s.stream_packet_len.or(s.framing.map(|f| f.packet_len)),
            packets: s.packets,
            null_share: s.null_share,
            pids: s.pids,
            programs: s.programs,
            pcr_pid: s.pcr_pid,
            bitrate_bps: s.bitrate_bps,
            pcr_jitter_ns: s.pcr_jitter_ns,
            ts_resolution_ns: s.ts_resolution_ns,
            df_max_ms: s.df_max_ms,
            lost_packets: s.lost_packets,
            rtp_lost_packets: s.rtp_lost_packets,
            mlr_pps: s.mlr_pps,
            tr101290: [
                t.ts_sync_loss,
                t.sync_byte_error,
                t.pat_error_2,
                t.continuity_count_error,
                t.pmt_error_2,
                t.pid_error,
                t.transport_error,
                t.crc_error,
                t.pcr_repetition_error,
                t.pcr_discontinuity_indicator_error,
                t.pcr_accuracy_error,
                t.pts_error,
            ],
        };
        let r = self.output.push(row);
        self.keep(r);
        for p in ts.pids() {
            let row = TsPidRow {
                flow_id: flow.id,
                pid: p.pid,
                kind: p.kind,
                program: p.program,
                stream_type: p.stream_type,
                packets: p.packets,
                cc_errors: p.cc_errors,
                lost_packets: p.lost_packets,
                duplicates: p.duplicates,
                transport_errors: p.transport_errors,
                scrambled_packets: p.scrambled,
                pcr_count: p.pcr_count,
                pcr_interval_min_ns: p.pcr_interval_min_ns,
                pcr_interval_max_ns: p.pcr_interval_max_ns,
                pcr_repetition_errors: p.pcr_repetition_errors,
                pcr_discontinuity_errors: p.pcr_discontinuity_errors,
                pcr_accuracy_errors: p.pcr_accuracy_errors,
                pts_errors: p.pts_errors,
            };
            let r = self.output.push(row);
            self.keep(r);
        }
    }

    fn http(&mut self, flow: &FlowStart, tx: &HttpTransaction) {
        if self.error.is_some() {
            return;
        }
        let row = HttpRow {
            flow_id: flow.id,
            pairing: tx.pairing.name(),
            request_ts_ns: tx.request_ts_ns,
            response_ts_ns: tx.response_ts_ns,
            response_end_ns: tx.response_end_ns,
            method: tx.method.map(|m| m.name()),
            host: tx.host.as_deref(),
            path_template: tx.path_template.as_deref(),
            extension: tx.extension.as_deref(),
            query_names: tx.query_names.as_deref(),
            status: tx.status,
            content_type: tx.content_type.as_deref(),
            content_length: tx.content_length,
            body_bytes: tx.body_bytes,
            missing_bytes: tx.missing_bytes,
            transfer: tx.transfer.map(|t| t.name()),
            role: tx.role.name(),
            complete: tx.complete,
            duration_s: tx.duration_s,
            bitrate_bps: tx.bitrate_bps,
        };
        let r = self.output.push_ref(&row);
        self.keep(r);
        // A media segment in clear.
        if let (Role::Segment, Some(first), Some(last)) =
            (tx.role, tx.response_ts_ns, tx.response_end_ns)
        {
            let rendition = tx.rendition.as_ref();
            let row = SegmentRow {
                flow_id: flow.id,
                method: "http",
                request_ts_ns: tx.request_ts_ns.unwrap_or(first),
                first_byte_ts_ns: first,
                last_byte_ts_ns: last,
                request_bytes: None,
                bytes: tx.body_bytes,
                packets: None,
                duration_s: tx.duration_s,
                bitrate_bps: tx.bitrate_bps,
                rendition_bandwidth_bps: rendition.and_then(|r| r.bandwidth_bps),
                rendition_resolution: rendition
                    .and_then(|r| Some(format!("{}x{}", r.width?, r.height?))),
            };
            let r = self.output.push(row);
            self.keep(r);
        }
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

    fn segment(&mut self, flow: &FlowStart, s: &InferredSegment) {
        if self.error.is_some() {
            return;
        }
        let row = SegmentRow {
            flow_id: flow.id,
            method: "inferred",
            request_ts_ns: s.request_ts_ns,
            first_byte_ts_ns: s.first_byte_ts_ns,
            last_byte_ts_ns: s.last_byte_ts_ns,
            request_bytes: Some(s.request_bytes),
            bytes: s.bytes,
            packets: Some(s.packets),
            duration_s: None,
            bitrate_bps: None,
            rendition_bandwidth_bps: None,
            rendition_resolution: None,
        };
        let r = self.output.push(row);
        self.keep(r);
    }

    fn rtp(&mut self, flow: &FlowStart, rtp: &RtpFlow) {
        if self.error.is_some() {
            return;
        }
        for s in rtp.streams() {
            let row = RtpStreamRow {
                flow_id: flow.id,
                direction: match s.dir {
                    streamscope_flow::Dir::Up => "up",
                    streamscope_flow::Dir::Down => "down",
                },
                ssrc: s.ssrc,
                first_ts_ns: s.first_ts_ns,
                last_ts_ns: s.last_ts_ns,
                payload_type: s.first_payload_type,
                clock_rate_hz: s.clock_rate,
                clock_rate_source: s.clock_rate_source.name(),
                packets: s.packets,
                bytes: s.bytes,
                expected: s.expected,
                lost: s.lost,
                duplicates: s.duplicates,
                reordered: s.reordered,
                sequence_errors: s.seq_errors,
                mean_jitter_ms: s.mean_jitter_ms,
                max_jitter_ms: s.max_jitter_ms,
                max_delta_ms: s.max_delta_ms,
                max_gap_ms: s.max_gap_ms,
                mpeg_ts_packets: s.mpeg_ts_packets,
            };
            let r = self.output.push(row);
            self.keep(r);
        }
    }
}

fn session_row(s: &ChannelSession) -> ChannelSessionRow {
    ChannelSessionRow {
        host_addr: s.host,
        group_addr: s.group,
        source_addr: s.source,
        version: s.version.name(),
        join_ts_ns: s.join_ts_ns,
        last_report_ts_ns: s.last_report_ts_ns,
        leave_ts_ns: s.leave_ts_ns,
        end_reason: s.end.name(),
        duration_ns: s.duration_ns,
        reports: s.reports,
        first_packet_ts_ns: s.first_packet_ts_ns,
        zap_ns: s.zap_ns,
        packets: s.packets,
        bytes: s.bytes,
        mean_bps: s.mean_bps,
    }
}

impl FlowSink<MediaInspector> for TableSink {
    fn out(&mut self) -> &mut (dyn MediaOut + Send + 'static) {
        self
    }

    fn bin(&mut self, b: &BinRecord<MediaBin>) {
        if self.error.is_some() {
            return;
        }
        let row = BinRow {
            flow_id: b.flow_id,
            bin_start_ns: b.bin_start_ns,
            packets_up: u64::from(b.packets[0]),
            packets_down: u64::from(b.packets[1]),
            bytes_up: b.bytes[0],
            bytes_down: b.bytes[1],
            bitrate_down_bps: self.rate.bps(b.bytes[1]),
            media: BinMedia {
                ts_packets: b.counters.ts_packets,
                ts_cc_errors: b.counters.ts_cc_errors,
                ts_lost_packets: b.counters.ts_lost_packets,
                ts_transport_errors: b.counters.ts_transport_errors,
                ts_pcr_errors: b.counters.ts_pcr_errors,
                ts_df_ms: b.counters.ts_df_ms,
                ts_mlr_pps: b.counters.ts_mlr_pps,
                rtp_packets: b.counters.rtp_packets,
                rtp_lost: b.counters.rtp_lost,
                rtp_duplicates: b.counters.rtp_duplicates,
                rtp_reordered: b.counters.rtp_reordered,
                rtp_max_jitter_ms: b.counters.rtp_max_jitter_ms,
            },
        };
        let r = self.output.push(row);
        self.keep(r);
    }

    fn flow(&mut self, f: &FlowRecord, inspector: Option<&MediaInspector>) {
        self.naming.flow(f, Found::of(inspector));
    }
}

pub fn flow_row(f: &FlowRecord) -> FlowRow {
    let port = |p: u16| f.has_ports.then_some(p);
    FlowRow {
        flow_id: f.id,
        first_ts_ns: f.first_ns,
        last_ts_ns: f.last_ns,
        ip_version: f.ip_version,
        protocol: f.protocol,
        client_addr: f.client.addr,
        client_port: port(f.client.port),
        server_addr: f.server.addr,
        server_port: port(f.server.port),
        server_name: None,
        vlan: f.vlan[0],
        vlan_inner: f.vlan[1],
        client_rule: f.client_rule.name(),
        packets_up: f.packets[0],
        packets_down: f.packets[1],
        bytes_up: f.bytes[0],
        bytes_down: f.bytes[1],
        payload_bytes_up: f.payload_bytes[0],
        payload_bytes_down: f.payload_bytes[1],
        tcp: f.tcp.map(|t| TcpFacts {
            syn_seen: t.syn_seen,
            handshake_seen: t.handshake_seen,
            handshake_rtt_ns: t.handshake_rtt_ns,
            retransmitted_packets_up: t.retransmitted[0],
            retransmitted_packets_down: t.retransmitted[1],
            fin_up: t.fin[0],
            fin_down: t.fin[1],
            rst_seen: t.rst,
        }),
        end_reason: f.end_reason.name(),
        bins: f.bins,
        bitrate_down_p50_bps: f.bitrate_down.map(|b| b.p50_bps),
        bitrate_down_p95_bps: f.bitrate_down.map(|b| b.p95_bps),
        bitrate_down_max_bps: f.bitrate_down.map(|b| b.max_bps),
        class: None,
        class_evidence: None,
        service: None,
        service_source: None,
        http_host: None,
        sni: None,
        alpn: None,
        tls_version: None,
        quic_version: None,
        tls_offered_versions: None,
        tls_app: None,
        segments: None,
    }
}

pub fn run(args: &AnalyzeArgs) -> Result<(), Failure> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let captures = pipeline::open_all(&args.read)?;
    // Every table the schema declares; flow_bins carries the bin width. `flows` and
    // `dns` are written by the [`Namer`], the others here.
    let threads = args.read.threads();
    let tables = streamscope_store::tables()
        .iter()
        .map(|t| match t.name {
            n if n == FLOW_BINS.name => Table::flow_bins(args.bin),
            _ => Ok(Table::new(t)),
        })
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot write to {}", args.out.display()))?;
    let named = |t: &Table| [FLOWS.name, DNS.name].contains(&t.spec().name);
    let (named_tables, tables): (Vec<_>, Vec<_>) = tables.into_iter().partition(named);
    let create = |tables| {
        Output::create_with_threads(&args.out, tables, threads)
            .with_context(|| format!("cannot write to {}", args.out.display()))
    };
    let output = create(tables)?;
    let naming = Naming::start(Namer::new(create(named_tables)?), threads);
    let progress = Progress::new(args.read.quiet, pipeline::total_size(&captures));
    let mut table = FlowTable::<MediaInspector>::new(pipeline::flow_config(&args.read, args.bin));
    let mut sink = TableSink {
        output,
        error: None,
        rate: BinRate::new(args.bin),
        naming,
        dns: DnsStats::default(),
        multicast: MulticastStats::default(),
        http: HttpStats::default(),
        tls: TlsStats::default(),
        quic: QuicStats::default(),
        sessions: ChannelSessions::new(SessionConfig::default()),
        playlists: PlaylistIndex::new(RUN_PLAYLIST_ENTRIES),
        sources: Vec::new(),
        ts_config: TsConfig {
            // The coarsest of the inputs' (the jitter figures cannot be finer).
            ts_resolution_ns: captures
                .iter()
                .map(|c| c.ts_resolution_ns())
                .max()
                .unwrap_or(1_000),
            ..TsConfig::default()
        },
    };
    let report = pipeline::run(
        &args.read,
        captures,
        &mut table,
        &mut sink,
        &progress,
        |s| s.error.is_none() && s.naming.healthy(),
    );
    progress.finish();
    // Memberships still open end with the capture.
    if let Some(end) = report.inputs.iter().filter_map(|i| i.last_ns).max() {
        let output = &mut sink.output;
        let mut first = Ok(());
        sink.sessions.finish(end, &mut |s| {
            let r = output.push(session_row(&s));
            if first.is_ok() {
                first = r;
            }
        });
        sink.keep(first);
    }
    let read_s = started.elapsed().as_secs_f64();
    // The table's memory (hundreds of MiB with a million flows) goes back to the kernel
    // on another thread while the writers finish and sync their files.
    let freeing = std::thread::Builder::new()
        .name("free".into())
        .spawn(move || drop(table));
    let named = sink.naming.finish();
    let failed = |e| Failure::Run(anyhow::Error::new(e).context("writing the tables failed"));
    if let Some(e) = sink.error.take() {
        sink.output.abort();
        if let Ok(summary) = named.tables {
            summary.remove();
        }
        return Err(failed(e));
    }
    let named_summary = match named.tables {
        Ok(summary) => summary,
        Err(e) => {
            sink.output.abort();
            return Err(failed(e));
        }
    };
    let summary = match sink.output.finish() {
        Ok(summary) => summary.merge(named_summary),
        Err(e) => {
            named_summary.remove();
            return Err(failed(e));
        }
    };
    if let Ok(h) = freeing {
        let _ = h.join();
    }
    let wall_s = started.elapsed().as_secs_f64();

    let mut manifest = manifest(args, &report, &summary, started_at, read_s, wall_s);
    let extra = &mut manifest.counts.extra;
    for (name, n) in sink.dns.iter() {
        extra.insert(format!("dns_{name}"), n);
    }
    let names = named.names;
    extra.insert("dns_names_inserted".to_string(), names.inserts);
    extra.insert("dns_names_evicted".to_string(), names.evictions);
    for (name, n) in sink.http.iter() {
        extra.insert(format!("http_{name}"), n);
    }
    // Playlist entries pushed out of the run's bounded index by newer ones.
    extra.insert(
        "http_playlist_index_evicted".to_string(),
        sink.playlists.evicted(),
    );
    for (name, n) in sink.tls.iter() {
        extra.insert(format!("tls_{name}"), n);
    }
    for (name, n) in sink.quic.iter() {
        extra.insert(format!("quic_{name}"), n);
    }
    for (name, n) in sink.multicast.iter() {
        extra.insert(format!("multicast_{name}"), n);
    }
    for (name, n) in sink.sessions.stats().iter() {
        extra.insert(format!("channel_sessions_{name}"), n);
    }
    write_json_atomic(&args.out.join("run.json"), &manifest).context("writing run.json failed")?;

    let text = if args.json {
        let mut text = serde_json::to_string_pretty(&manifest).context("encoding the summary")?;
        text.push('\n');
        text
    } else {
        summary_text(args, &report, &summary, wall_s).context("formatting the summary")?
    };
    crate::print_stdout(&text)
}

fn manifest(
    args: &AnalyzeArgs,
    report: &RunReport,
    summary: &streamscope_store::OutputSummary,
    started_at: String,
    read_s: f64,
    wall_s: f64,
) -> RunManifest {
    let fs = &report.flow_stats;
    let mut decode_errors = BTreeMap::new();
    for (name, n) in report.decode_errors.iter() {
        if n > 0 {
            decode_errors.insert(name.to_string(), n);
        }
    }
    let mut extra = BTreeMap::new();
    extra.insert("flows_ended_by_port_reuse".to_string(), fs.tcp_port_reuse);
    extra.insert("peak_active_flows".to_string(), fs.peak_active_flows);
    extra.insert("fragments_matched".to_string(), fs.fragments_matched);
    extra.insert("fragments_unmatched".to_string(), fs.fragments_unmatched);
    extra.insert("flow_bins_out_of_order".to_string(), fs.bins_out_of_order);
    extra.insert("inspected_flows".to_string(), fs.inspected_flows);
    extra.insert("stream_gaps".to_string(), fs.streams.gaps);
    extra.insert("stream_gap_bytes".to_string(), fs.streams.gap_bytes);
    extra.insert("stream_overlap_bytes".to_string(), fs.streams.overlap_bytes);
    extra.insert(
        "datagrams_reassembled".to_string(),
        fs.datagrams.reassembled,
    );
    extra.insert("datagrams_incomplete".to_string(), fs.datagrams.incomplete);
    for (name, n) in &report.capture_anomalies {
        extra.insert((*name).to_string(), *n);
    }
    let r = &args.read;
    RunManifest {
        tool: TOOL_NAME.to_string(),
        version: TOOL_VERSION.to_string(),
        schema_version: SCHEMA_VERSION,
        args: std::env::args().collect(),
        started_at,
        inputs: report
            .inputs
            .iter()
            .map(|i| InputEntry {
                path: i.path.clone(),
                format: i.format.to_string(),
                compression: i.compression.to_string(),
                size: i.size,
                mtime: i.mtime_ns.map(rfc3339_ns),
                fingerprint: i.fingerprint.clone(),
                link_types: i.link_types.clone(),
                packets: i.packets,
                bytes: i.bytes,
                captured_bytes: i.captured_bytes,
                first_ts: i.first_ns.map(rfc3339_ns),
                last_ts: i.last_ns.map(rfc3339_ns),
                error: i.error.clone(),
            })
            .collect(),
        options: json!({
            "bin_ns": args.bin,
            "max_flows": r.max_flows,
            "tcp_timeout_ns": r.tcp_timeout,
            "tcp_closed_timeout_ns": r.tcp_closed_timeout,
            "udp_timeout_ns": r.udp_timeout,
            "other_timeout_ns": r.other_timeout,
            "read_mode": format!("{:?}", r.read_mode).to_lowercase(),
        }),
        counts: Counts {
            packets: report.packets,
            bytes: report.bytes,
            captured_bytes: report.captured_bytes,
            non_ip_packets: report.non_ip_packets,
            decode_errors,
            timestamps_backwards: fs.timestamps_backwards,
            flows: fs.flows_ended,
            flows_evicted: fs.flows_evicted,
            flow_bins: fs.bins_emitted,
            extra,
        },
        tables: summary
            .tables
            .iter()
            .map(|t| TableEntry {
                name: t.name.to_string(),
                path: t.path.display().to_string(),
                rows: t.rows,
                bytes: t.bytes,
            })
            .collect(),
        warnings: report.warnings.clone(),
        timings: Timings {
            wall_s,
            phases: BTreeMap::from([
                ("read_and_track_s".to_string(), read_s),
                ("end_open_flows_s".to_string(), report.end_flows_s),
                ("finish_tables_s".to_string(), wall_s - read_s),
            ]),
        },
    }
}

fn summary_text(
    args: &AnalyzeArgs,
    report: &RunReport,
    summary: &streamscope_store::OutputSummary,
    wall_s: f64,
) -> Result<String, std::fmt::Error> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mb = report.captured_bytes as f64 / 1e6;
    writeln!(
        out,
        "read {} packets, {} bytes from {} input(s) in {:.2} s ({:.0} MB/s)",
        report.packets,
        report.bytes,
        report.inputs.len(),
        wall_s,
        if wall_s > 0.0 { mb / wall_s } else { 0.0 }
    )?;
    let errors = report.decode_errors.total();
    if errors > 0 {
        writeln!(out, "decode errors: {errors} (per kind in run.json)")?;
    }
    for t in &summary.tables {
        writeln!(out, "wrote {} ({} rows)", t.path.display(), t.rows)?;
    }
    writeln!(out, "wrote {}", args.out.join("run.json").display())?;
    Ok(out)
}

/// The wall-clock start of the run, for the manifest only (never used in measurements).
fn now_rfc3339() -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    rfc3339_ns(ns)
}
