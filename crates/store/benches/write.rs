//! Write throughput of the `flow_bins` table, the largest table of a run: rows pushed per
//! second through `Output`, including Arrow building, zstd encoding on the writer
//! thread, and the final fsync and rename.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use streamscope_store::{BinRow, Output};

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
    }
}

fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("store-bench-write")
}

fn write_flow_bins(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(ROWS));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("flow_bins_rows", |b| {
        b.iter_batched(
            || {
                let dir = out_dir();
                let _ = std::fs::remove_dir_all(&dir);
                dir
            },
            |dir| {
                let mut out = Output::create(&dir, BIN_NS).expect("create output");
                for i in 0..ROWS {
                    out.push_bin(&row(i)).expect("push");
                }
                out.finish().expect("finish")
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let _ = std::fs::remove_dir_all(out_dir());
}

criterion_group!(benches, write_flow_bins);
criterion_main!(benches);
