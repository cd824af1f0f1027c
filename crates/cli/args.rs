//! Command-line definitions: each flag is defined once, here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "streamscope",
    version,
    about = "Passive measurement of IPTV and HLS streaming traffic from packet captures",
    long_about = "Passive measurement of aggregate IPTV and HLS streaming traffic from packet \
                  captures (pcap, pcapng, gzip or zstd compressed, or stdin), written as \
                  Parquet tables.\n\nExit codes: 0 done, 1 failed, 2 bad usage or unusable input."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyze captures into OUT/flows.parquet, OUT/flow_bins.parquet and OUT/run.json.
    Analyze(AnalyzeArgs),
    /// Print a fast summary of a capture: format, link types, packets, bytes, time span,
    /// top flows, decode errors.
    Inspect(InspectArgs),
    /// Print every output table's columns with type and meaning.
    Schema(SchemaArgs),
}

/// Options shared by every command that reads captures.
#[derive(Args, Debug, Clone)]
pub struct ReadOpts {
    /// Capture files (pcap or pcapng, optionally .gz/.zst; `-` for stdin). Several files
    /// form one timeline, in the order given: a flow continues across files.
    #[arg(required = true, value_name = "CAPTURE")]
    pub inputs: Vec<PathBuf>,

    /// How regular files are read.
    #[arg(long, value_enum, default_value_t = ReadMode::Auto)]
    pub read_mode: ReadMode,

    /// Most flows held at once; past it the longest-idle flows are evicted and counted.
    #[arg(long, default_value_t = 2_000_000, value_name = "N")]
    pub max_flows: usize,

    /// Idle timeout of open TCP flows.
    #[arg(long, default_value = "300s", value_parser = parse_duration, value_name = "DURATION")]
    pub tcp_timeout: i64,

    /// How long a TCP flow is kept after FIN in both directions or RST.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub tcp_closed_timeout: i64,

    /// Idle timeout of UDP flows.
    #[arg(long, default_value = "120s", value_parser = parse_duration, value_name = "DURATION")]
    pub udp_timeout: i64,

    /// Idle timeout of other IP flows (ICMP, IGMP, ...).
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub other_timeout: i64,

    /// Threads to keep busy (default: as many as the machine runs at once). The tables
    /// are the same whatever the number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// When the flow table moves to a thread of its own (for tests of that path).
    #[arg(long, value_enum, default_value_t = HandoffArg::Auto, hide = true)]
    pub handoff: HandoffArg,

    /// Never show a progress bar (it is shown only when stderr is a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl ReadOpts {
    /// The run's thread budget: `--threads`, else what the machine runs at once.
    pub fn threads(&self) -> usize {
        self.threads
            .map_or_else(streamscope_pipeline::available_threads, usize::from)
    }
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub read: ReadOpts,

    /// Output folder (created if missing).
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    pub out: PathBuf,

    /// Width of the per-flow time bins, from 10ms to 1h.
    #[arg(long, default_value = "1s", value_parser = parse_bin, value_name = "DURATION")]
    pub bin: i64,

    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub read: ReadOpts,

    /// How many of the largest flows to list.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,

    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Print Markdown (the text of docs/schema.md).
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,

    /// Print JSON: an array of tables (name, description, sort, columns), each column with
    /// name, type (the Arrow type as pyarrow prints it), nullable and meaning.
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// The faster of the two for this machine (see benches/RESULTS.md).
    Auto,
    /// Memory-map regular files.
    Mmap,
    /// read(2) into a reusable buffer.
    Read,
}

/// `--handoff`: when the flow table moves to a thread of its own.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoffArg {
    /// Once it outgrows the caches, if `--threads` allows a second thread.
    Auto,
    /// Never.
    Never,
    /// From the first packet, whatever `--threads` says.
    FromStart,
}

/// Parses `250ms`, `1s`, `1.5s`, `5m`, `1h`, `100us`, `10ns` into nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{s}` needs a unit: ns, us, ms, s, m or h"))?;
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms, 1s, 5m"))?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}`: use ns, us, ms, s, m or h"
            ))
        }
    };
    let ns = value * scale;
    // NaN and infinities are outside the range too.
    if !(1.0..1e18).contains(&ns) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(ns.round() as i64)
}

fn parse_bin(s: &str) -> Result<i64, String> {
    let ns = parse_duration(s)?;
    if !(10_000_000..=3_600_000_000_000).contains(&ns) {
        return Err(format!("bin width `{s}` must be between 10ms and 1h"));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(1_000_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("5m"), Ok(300_000_000_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000_000_000));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_bin("10ms"), Ok(10_000_000));
        assert!(parse_bin("5ms").is_err());
        assert!(parse_bin("2h").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
