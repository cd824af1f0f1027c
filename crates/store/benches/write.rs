//! Write throughput of the two tables: rows pushed per second through `Output`,
//! including building the Arrow arrays and encoding them on the writer threads, and the
//! final fsync and rename. `flow_bins` is the largest table of a streaming run; `flows` is what a capture
//! with a million short flows (benches/compare.sh) ends with.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use streamscope_store::{BinRow, FlowRow, Output, Table, TcpFacts, FLOWS};

/// Rows per iteration: several batches and row groups.
const ROWS: u64 = 1_000_000;

/// One-second bins.
const BIN_NS: i64 = 1_000_000_000;

/// A plausible mix: 2 000 concurrent flows, one row per flow and bin, varied counters.
fn row(i: u64) -> BinRow {
    let flow = i % 2_000;
    let bin = i / 2_000;
    BinRow {
        flow_id: flow as i64,
        bin_start_ns: 1_700_000_000_000_000_000 + bin as i64 * BIN_NS,
        packets_up: 10 + (i * 7) % 50,
        packets_down: 100 + (i * 13) % 900,
        bytes_up: 600 + (i * 31) % 4_000,
        bytes_down: 150_000 + (i * 977) % 1_300_000,
        bitrate_down_bps: (150_000 + (i * 977) % 1_300_000) as i64 * 8,
        media: Default::default(),
    }
}

/// Short flows as in the million-flow benchmark capture: DNS over UDP with 5 % IPv6 and
/// 5 % VLAN-tagged, every fourth flow TCP, distinct client ports, ended in order.
fn flow(i: u64) -> FlowRow {
    let first_ts_ns = 1_700_000_000_000_000_000 + (i * 60_013) as i64;
    let duration_ns = 1_000_000 + ((i * 7_919) % 29_000_000) as i64;
    let v6 = i % 20 == 0;
    let (client_addr, server_addr) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                1,
                0,
                0,
                (i >> 16) as u16,
                i as u16,
            )),
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0xffff,
                0,
                0,
                0,
                0,
                (i % 250) as u16,
            )),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::from(0x0a14_0000 + (i % 50_000) as u32)),
            IpAddr::V4(Ipv4Addr::from(0xc633_6400 + (i % 250) as u32)),
        )
    };
    let tcp = i % 4 == 0;
    FlowRow {
        flow_id: i as i64,
        first_ts_ns,
        last_ts_ns: first_ts_ns + duration_ns,
        ip_version: if v6 { 6 } else { 4 },
        protocol: if tcp { 6 } else { 17 },
        client_addr,
        client_port: Some(32_768 + (i % 28_000) as u16),
        server_addr,
        server_port: Some(if tcp { 443 } else { 53 }),
        server_name: None,
        vlan: (i % 20 == 7).then_some(100),
        vlan_inner: None,
        client_rule: if tcp { "syn" } else { "well_known_port" },
        packets_up: 1 + i % 3,
        packets_down: 1 + i % 2,
        bytes_up: 76 + i % 40,
        bytes_down: 92 + i % 300,
        payload_bytes_up: 34 + i % 40,
        payload_bytes_down: 50 + i % 300,
        tcp: tcp.then_some(TcpFacts {
            syn_seen: true,
            handshake_seen: true,
            handshake_rtt_ns: Some(duration_ns / 2),
            retransmitted_packets_up: 0,
            retransmitted_packets_down: i % 7 / 6,
            fin_up: false,
            fin_down: false,
            rst_seen: true,
        }),
        end_reason: "capture_end",
        bins: 1,
        bitrate_down_p50_bps: Some(((92 + i % 300) * 8) as i64),
        bitrate_down_p95_bps: Some(((92 + i % 300) * 8) as i64),
        bitrate_down_max_bps: Some(((92 + i % 300) * 8) as i64),
        class: Some("other"),
        class_evidence: Some("no payload evidence"),
        service: Some("198.51.100.0/24".to_string()),
        service_source: Some("prefix"),
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

fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("store-bench-write")
}

/// Times pushing [`ROWS`] rows with `push` and finishing the output, as benchmark `name`.
fn write_rows(c: &mut Criterion, name: &str, push: impl Fn(&mut Output, u64)) {
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(ROWS));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function(name, |b| {
        b.iter_batched(
            || {
                let dir = out_dir();
                let _ = std::fs::remove_dir_all(&dir);
                dir
            },
            |dir| {
                let tables = [
                    Table::new(&FLOWS),
                    Table::flow_bins(BIN_NS).expect("bin width"),
                ];
                let mut out = Output::create(&dir, tables).expect("create output");
                for i in 0..ROWS {
                    push(&mut out, i);
                }
                out.finish().expect("finish")
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let _ = std::fs::remove_dir_all(out_dir());
}

fn write_flow_bins(c: &mut Criterion) {
    write_rows(c, "flow_bins_rows", |out, i| {
        out.push(row(i)).expect("push")
    });
}

fn write_flows(c: &mut Criterion) {
    write_rows(c, "flows_rows", |out, i| out.push(flow(i)).expect("push"));
}

criterion_group!(benches, write_flow_bins, write_flows);
criterion_main!(benches);
