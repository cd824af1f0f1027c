//! `capgen SCENARIO.toml --seed N -o OUT.pcap [--format pcap|pcapng]`: writes OUT and
//! `OUT.truth.json`.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;

use capgen::{Format, Options, Scenario, TsResolution};

/// Deterministic synthetic streaming-traffic capture generator with exact ground truth.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Seed of every random choice; same scenario and seed give identical bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output capture; the truth goes to OUT.truth.json.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Container (default: pcapng when OUT ends in .pcapng, else pcap).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Timestamp resolution (default: the scenario's output.ts_resolution).
    #[arg(long, value_parser = parse_res)]
    ts_resolution: Option<TsResolution>,
}

fn parse_res(s: &str) -> Result<TsResolution, String> {
    match s {
        "us" => Ok(TsResolution::Us),
        "ns" => Ok(TsResolution::Ns),
        _ => Err("expected us or ns".into()),
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("capgen: {e:#}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.scenario)
        .with_context(|| format!("cannot read scenario {}", args.scenario.display()))?;
    let sc =
        Scenario::from_toml(&text).with_context(|| format!("in {}", args.scenario.display()))?;
    let format = args.format.unwrap_or_else(|| {
        if args.output.extension().is_some_and(|e| e == "pcapng") {
            Format::Pcapng
        } else {
            Format::Pcap
        }
    });
    let opts = Options {
        seed: args.seed,
        format,
        ts_resolution: args.ts_resolution,
    };
    let tmp = with_suffix(&args.output, ".part");
    let truth_path = with_suffix(&args.output, ".truth.json");
    let truth_tmp = with_suffix(&truth_path, ".part");
    let t0 = Instant::now();
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let (truth, w) = capgen::generate(&sc, &opts, BufWriter::with_capacity(8 << 20, file))?;
    w.into_inner().map_err(|e| e.into_error())?;
    let secs = t0.elapsed().as_secs_f64();
    let tw = BufWriter::with_capacity(1 << 20, File::create(&truth_tmp)?);
    let listed = truth.flows.as_ref().map_or(0, |f| f.len());
    if listed <= 20_000 {
        serde_json::to_writer_pretty(tw, &truth)?;
    } else {
        serde_json::to_writer(tw, &truth)?;
    }
    std::fs::rename(&tmp, &args.output)?;
    std::fs::rename(&truth_tmp, &truth_path)?;
    let t = &truth.totals;
    eprintln!(
        "capgen: {} packets, {} flows, {:.1} MB in {:.2} s ({:.0} MB/s) -> {}",
        t.packets,
        t.flows,
        t.file_bytes as f64 / 1e6,
        secs,
        t.file_bytes as f64 / 1e6 / secs.max(1e-9),
        args.output.display()
    );
    Ok(())
}

fn with_suffix(p: &std::path::Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
