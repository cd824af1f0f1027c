//! The binary's side of the read loop (`streamscope_pipeline`): its options from the
//! command line, its errors as exit codes, its progress on the terminal.

use anyhow::anyhow;
use streamscope_capture::Capture;
use streamscope_flow::{FlowConfig, FlowSink, FlowTable, Inspector};
pub use streamscope_pipeline::{total_size, InputReport, RunReport};
use streamscope_pipeline::{Handoff, OpenError, Options};

use crate::args::{HandoffArg, ReadMode, ReadOpts};
use crate::progress::Progress;
use crate::Failure;

pub fn flow_config(opts: &ReadOpts, bin_ns: i64) -> FlowConfig {
    FlowConfig {
        bin_ns,
        max_flows: opts.max_flows.max(1),
        tcp_idle_ns: opts.tcp_timeout,
        tcp_closed_ns: opts.tcp_closed_timeout,
        udp_idle_ns: opts.udp_timeout,
        other_idle_ns: opts.other_timeout,
        threads: opts.threads(),
        ..FlowConfig::default()
    }
}

/// Opens every input before anything is read, so that an unusable input fails the run
/// (exit code 2) before any output is written.
pub fn open_all(opts: &ReadOpts) -> Result<Vec<Capture>, Failure> {
    let mode = match opts.read_mode {
        ReadMode::Auto => streamscope_capture::ReadMode::default(),
        ReadMode::Mmap => streamscope_capture::ReadMode::Mmap,
        ReadMode::Read => streamscope_capture::ReadMode::Read,
    };
    streamscope_pipeline::open_all(&opts.inputs, mode, opts.threads()).map_err(|e| match e {
        OpenError::Capture(e) => Failure::Input(e.into()),
        other => Failure::Input(anyhow!("{other}")),
    })
}

impl streamscope_pipeline::Progress for Progress {
    fn set(&self, bytes: u64) {
        Progress::set(self, bytes);
    }

    fn warn(&self, msg: &str) {
        Progress::warn(self, msg);
    }
}

/// [`streamscope_pipeline::run`] with the thread budget of `opts`.
pub fn run<S, K>(
    opts: &ReadOpts,
    captures: Vec<Capture>,
    table: &mut FlowTable<S>,
    sink: &mut K,
    progress: &Progress,
    healthy: impl Fn(&K) -> bool + Sync,
) -> RunReport
where
    S: Inspector + Send,
    K: FlowSink<S> + Send,
{
    let options = Options {
        threads: opts.threads(),
        handoff: match opts.handoff {
            HandoffArg::Auto => Handoff::Auto,
            HandoffArg::Never => Handoff::Never,
            HandoffArg::FromStart => Handoff::FromStart,
        },
    };
    streamscope_pipeline::run(captures, table, sink, progress, healthy, options)
}
