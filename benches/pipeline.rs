//! Throughput of the whole pipeline, stage by stage, in bytes of capture per second.
//!
//! The input is the streaming mix of `tools/capgen/scenarios/bench-streaming.toml`
//! (multicast MPEG-TS over UDP and RTP, HTTPS-like bursty TCP, some VLAN and IPv6)
//! shortened to its first seconds, about 50 MB, generated once into a temporary folder
//! (so it is in the page cache while the stages run):
//!
//! * `read`: [`Capture`] only, every record's bytes touched;
//! * `read+dissect`: plus [`streamscope_wire::dissect`] on every record;
//! * `read+dissect+flow`: the pipeline library's loop (`streamscope_pipeline::run`, one
//!   thread) with a [`FlowTable`] and a sink that drops what it gets;
//! * `analyze`: the `streamscope analyze FILE -o OUT --quiet` binary, Parquet included
//!   (skipped with a message when the binary is missing).
//!
//! `cargo bench --bench pipeline`; `benches/compare.sh` compares the binary with a raw
//! read and with tshark on the full-size captures.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streamscope_capture::Capture;
use streamscope_flow::{BinRecord, FlowConfig, FlowRecord, FlowSink, FlowTable};

/// Seconds of the benchmark scenario to generate: about 18 MB per second.
const DURATION_S: f64 = 2.8;
const SEED: u64 = 1;

/// A sink that only counts, so the flow table's own work is measured.
#[derive(Default)]
struct CountSink {
    bins: u64,
    flows: u64,
}

impl FlowSink<()> for CountSink {
    fn out(&mut self) -> &mut () {
        // A zero-sized box: no allocation.
        Box::leak(Box::new(()))
    }

    fn bin(&mut self, bin: &BinRecord) {
        black_box(bin);
        self.bins += 1;
    }

    fn flow(&mut self, flow: &FlowRecord, _state: Option<&()>) {
        self.flows += u64::from(black_box(flow).id >= 0);
    }
}

/// Writes the shortened streaming scenario to `dir/streaming.pcap`; returns its path and size.
fn generate(dir: &Path) -> (PathBuf, u64) {
    let text = include_str!("../tools/capgen/scenarios/bench-streaming.toml");
    let mut sc = capgen::Scenario::from_toml(text).expect("bench-streaming.toml parses");
    sc.duration_s = DURATION_S;
    // The loss window of the full scenario starts later; keep the channels clean.
    sc.faults.clear();
    let opts = capgen::Options {
        seed: SEED,
        format: capgen::Format::Pcap,
        ts_resolution: None,
    };
    let path = dir.join("streaming.pcap");
    let file = File::create(&path).expect("create the capture");
    let (truth, mut w) = capgen::generate(&sc, &opts, BufWriter::with_capacity(8 << 20, file))
        .expect("generate the capture");
    w.flush().expect("write the capture");
    drop(w);
    let size = std::fs::metadata(&path).expect("capture written").len();
    eprintln!(
        "pipeline bench input: {} packets, {:.1} MB ({} s of bench-streaming.toml, seed {SEED})",
        truth.totals.packets,
        size as f64 / 1e6,
        DURATION_S
    );
    (path, size)
}

fn read_only(path: &Path) -> u64 {
    let mut cap = Capture::open(path).expect("open the capture");
    let mut sum = 0u64;
    while let Some(rec) = cap.next_record().expect("read a record") {
        // Touch the first and last byte so the data is really read.
        let d = black_box(rec.data);
        sum +=
            u64::from(d.first().copied().unwrap_or(0)) + u64::from(d.last().copied().unwrap_or(0));
        sum += u64::from(rec.orig_len);
    }
    sum
}

fn read_dissect(path: &Path) -> u64 {
    let mut cap = Capture::open(path).expect("open the capture");
    let mut sum = 0u64;
    while let Some(rec) = cap.next_record().expect("read a record") {
        let p = streamscope_wire::dissect(rec.link_type, rec.data, rec.orig_len);
        sum += u64::from(black_box(&p).payload_len);
    }
    sum
}

/// The library's loop ([`streamscope_pipeline::run`]) on one thread, as the binary runs
/// it less the tables.
fn read_dissect_flow(path: &Path) -> (u64, u64) {
    let captures = vec![Capture::open(path).expect("open the capture")];
    let mut table = FlowTable::<()>::new(FlowConfig::default());
    let mut sink = CountSink::default();
    let report = streamscope_pipeline::run(
        captures,
        &mut table,
        &mut sink,
        &streamscope_pipeline::Silent,
        |_| true,
        streamscope_pipeline::Options::default(),
    );
    black_box(report);
    (sink.flows, sink.bins)
}

/// The `streamscope` binary built with this bench (same profile), if it is there.
fn binary() -> Option<PathBuf> {
    let path = PathBuf::from(option_env!("CARGO_BIN_EXE_streamscope")?);
    path.is_file().then_some(path)
}

fn analyze(bin: &Path, input: &Path, out: &Path) {
    let status = Command::new(bin)
        .arg("analyze")
        .arg(input)
        .arg("-o")
        .arg(out)
        .arg("--quiet")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("spawn streamscope");
    assert!(status.success(), "streamscope analyze failed: {status}");
}

fn pipeline(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (path, size) = generate(dir.path());

    // The stages must see the same capture: check once, outside the timing.
    let (flows, bins) = read_dissect_flow(&path);
    assert!(flows > 0 && bins > 0, "the flow table produced nothing");
    eprintln!("pipeline bench input: {flows} flows, {bins} bin rows");

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(size));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("read", |b| b.iter(|| read_only(&path)));
    g.bench_function("read+dissect", |b| b.iter(|| read_dissect(&path)));
    g.bench_function("read+dissect+flow", |b| b.iter(|| read_dissect_flow(&path)));
    match binary() {
        Some(bin) => {
            let out = dir.path().join("analysis");
            g.bench_function("analyze", |b| b.iter(|| analyze(&bin, &path, &out)));
        }
        None => eprintln!(
            "pipeline/analyze skipped: the streamscope binary was not built with this bench"
        ),
    }
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
