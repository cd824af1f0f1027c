//! Parquet writers for one run: reused Arrow builders on the caller's thread, one
//! encoding thread per table.
//!
//! Rows are appended to Arrow builders; every [`BATCH_ROWS`] rows the builders are
//! finished into a `RecordBatch` and sent over a bounded channel to the table's writer
//! thread, which encodes it (zstd) into `OUT/.<table>.parquet.tmp`. The caller only
//! waits when a writer thread is more than [`QUEUE_BATCHES`] batches behind.
//!
//! [`Output::finish`] flushes, closes and fsyncs every file, and renames the temporary
//! files to `OUT/<table>.parquet` only once all tables are complete. On any error, on
//! [`Output::abort`] and when an `Output` is dropped unfinished, the temporary files are
//! removed, so no reader ever sees a half-written table from this run.
//!
//! A writer thread's error is reported by the next `push_*` call on its table (or by
//! `finish`).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow_array::builder::{
    BooleanBuilder, Int32Builder, Int64Builder, StringBuilder, StringDictionaryBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::Error;
use crate::rows::{BinRow, FlowRow};
use crate::schema::{arrow_schema, ColType, TableSpec, FLOWS, FLOW_BINS, SCHEMA_VERSION, TIMEZONE};

/// Rows per Arrow batch handed to a writer thread.
pub const BATCH_ROWS: usize = 64 * 1024;

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Batches that may wait in a table's queue before `push_*` blocks.
const QUEUE_BATCHES: usize = 2;

/// zstd level: 3 is zstd's own default, a good speed/size balance for counters.
const ZSTD_LEVEL: i32 = 3;

/// Nanoseconds per microsecond.
const NS_PER_US: i64 = 1_000;

/// Nanoseconds per second.
const NS_PER_S: i128 = 1_000_000_000;

/// Appends an address as text: the dotted quad for IPv4 (formatted by hand: this runs
/// twice per flow), RFC 5952 for IPv6 (`Ipv6Addr`'s `Display`). Writes straight into
/// the builder, without an intermediate `String`.
fn append_addr(b: &mut arrow_array::builder::StringBuilder, addr: std::net::IpAddr) {
    match addr {
        std::net::IpAddr::V4(a) => {
            let mut buf = [0u8; 15];
            let mut n = 0;
            for (i, octet) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[n] = b'.';
                    n += 1;
                }
                if octet >= 100 {
                    buf[n] = b'0' + octet / 100;
                    n += 1;
                }
                if octet >= 10 {
                    buf[n] = b'0' + octet / 10 % 10;
                    n += 1;
                }
                buf[n] = b'0' + octet % 10;
                n += 1;
            }
            // Only ASCII digits and dots were written.
            b.append_value(std::str::from_utf8(&buf[..n]).unwrap_or_default());
        }
        std::net::IpAddr::V6(a) => {
            let _ = write!(b, "{a}");
            b.append_value("");
        }
    }
}

/// Converts capture nanoseconds to the contract's microseconds, flooring (so that a time
/// before the epoch stays in the microsecond that contains it).
pub(crate) fn ns_to_us(ns: i64) -> i64 {
    ns.div_euclid(NS_PER_US)
}

/// Converts a counter to the contract's signed 64 bits, saturating at `i64::MAX`.
fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `bytes * 8 / (bin_ns / 1e9)` in bit/s, floored, saturating at `i64::MAX`.
fn bitrate_bps(bytes: u64, bin_ns: i64) -> i64 {
    let bits_ns = i128::from(bytes) * 8 * NS_PER_S;
    let bps = bits_ns / i128::from(bin_ns.max(1));
    i64::try_from(bps).unwrap_or(i64::MAX)
}

/// The text written as each file's `created_by`.
///
/// It follows the `<application> version <semver>` form that parquet-java parses
/// (`VersionParser`): a value it cannot parse makes Spark and Hive ignore the min/max
/// statistics of every string column.
pub(crate) fn created_by() -> String {
    format!("{} version {}", crate::TOOL_NAME, crate::TOOL_VERSION)
}

/// Writer properties of the contract: zstd, dictionary encoding of the string columns,
/// page statistics, [`ROW_GROUP_ROWS`]-row groups, `created_by`, and the schema version
/// and table in the file's key-value metadata.
///
/// Numeric and timestamp columns are written plainly: ids, times and counters are
/// mostly distinct, so building a dictionary for them only to abandon it costs the
/// writer time for nothing; zstd compresses them well without one.
fn writer_properties(
    spec: &TableSpec,
    extra: &[(&str, String)],
) -> Result<WriterProperties, Error> {
    let table = spec.name;
    let level =
        ZstdLevel::try_new(ZSTD_LEVEL).map_err(|source| Error::Parquet { table, source })?;
    let mut kv = vec![
        KeyValue::new("streamscope.table".to_string(), table.to_string()),
        KeyValue::new(
            "streamscope.schema_version".to_string(),
            SCHEMA_VERSION.to_string(),
        ),
    ];
    kv.extend(
        extra
            .iter()
            .map(|(k, v)| KeyValue::new((*k).to_string(), v.clone())),
    );
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_size(ROW_GROUP_ROWS)
        .set_created_by(created_by())
        .set_key_value_metadata(Some(kv));
    for column in spec.columns {
        if matches!(column.ty, ColType::DictUtf8 | ColType::Utf8) {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(column.name), true);
        }
    }
    Ok(builder.build())
}

/// What one finished table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    /// Table name.
    pub name: &'static str,
    /// Final path, `OUT/<name>.parquet`.
    pub path: PathBuf,
    /// Rows written.
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
}

/// What [`Output::finish`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSummary {
    /// One entry per table, in [`crate::tables()`] order.
    pub tables: Vec<TableSummary>,
}

impl OutputSummary {
    /// The `tables` section of `run.json`: paths relative to the output folder.
    pub fn manifest_tables(&self) -> Vec<crate::manifest::TableEntry> {
        self.tables
            .iter()
            .map(|t| crate::manifest::TableEntry {
                name: t.name.to_string(),
                path: t
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                rows: t.rows,
                bytes: t.bytes,
            })
            .collect()
    }
}

/// Result of a writer thread: rows and bytes written.
type Written = Result<(u64, u64), Error>;

/// One table's file and writer thread.
struct Sink {
    table: &'static str,
    schema: SchemaRef,
    tmp: PathBuf,
    path: PathBuf,
    tx: Option<SyncSender<RecordBatch>>,
    handle: Option<JoinHandle<Written>>,
    cancel: Arc<AtomicBool>,
}

impl Sink {
    fn create(dir: &Path, spec: &TableSpec, extra_kv: &[(&str, String)]) -> Result<Sink, Error> {
        let table = spec.name;
        let schema = arrow_schema(spec);
        let tmp = dir.join(format!(".{table}.parquet.tmp"));
        let path = dir.join(format!("{table}.parquet"));
        let props = writer_properties(spec, extra_kv)?;
        let file = File::create(&tmp).map_err(|source| Error::Io {
            op: "create",
            path: tmp.clone(),
            source,
        })?;
        let writer = match ArrowWriter::try_new(file, schema.clone(), Some(props)) {
            Ok(w) => w,
            Err(source) => {
                let _ = fs::remove_file(&tmp);
                return Err(Error::Parquet { table, source });
            }
        };
        let (tx, rx) = sync_channel(QUEUE_BATCHES);
        let cancel = Arc::new(AtomicBool::new(false));
        let thread_cancel = Arc::clone(&cancel);
        let thread_tmp = tmp.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("parquet-{table}"))
            .spawn(move || write_table(table, writer, rx, &thread_cancel, &thread_tmp));
        let handle = match spawned {
            Ok(h) => h,
            Err(source) => {
                let _ = fs::remove_file(&tmp);
                return Err(Error::Io {
                    op: "start the writer thread of",
                    path: tmp,
                    source,
                });
            }
        };
        Ok(Sink {
            table,
            schema,
            tmp,
            path,
            tx: Some(tx),
            handle: Some(handle),
            cancel,
        })
    }

    /// Fails if the writer thread has stopped (it only stops early on an error).
    #[inline]
    fn check(&mut self) -> Result<(), Error> {
        match &self.handle {
            Some(h) if !h.is_finished() => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// The error that stopped the writer thread; joins it.
    #[cold]
    fn stopped(&mut self) -> Error {
        self.tx = None;
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => Error::WriterStopped { table: self.table },
        }
    }

    fn send(&mut self, batch: RecordBatch) -> Result<(), Error> {
        let sent = match &self.tx {
            Some(tx) => tx.send(batch).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.stopped())
        }
    }

    /// Closes the queue and waits for the writer thread to finish the file.
    fn close(&mut self) -> Written {
        self.tx = None;
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(Error::WriterStopped { table: self.table }),
        }
    }

    /// Stops the writer thread without completing the file and removes the file.
    fn abort(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Body of a writer thread: encodes batches until the queue closes, then completes and
/// fsyncs the file.
fn write_table(
    table: &'static str,
    mut writer: ArrowWriter<File>,
    rx: Receiver<RecordBatch>,
    cancel: &AtomicBool,
    tmp: &Path,
) -> Written {
    let mut rows = 0u64;
    for batch in rx {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Aborted { table });
        }
        writer
            .write(&batch)
            .map_err(|source| Error::Parquet { table, source })?;
        rows += batch.num_rows() as u64;
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Aborted { table });
    }
    writer
        .finish()
        .map_err(|source| Error::Parquet { table, source })?;
    let io = |op: &'static str| {
        move |source| Error::Io {
            op,
            path: tmp.to_path_buf(),
            source,
        }
    };
    let file = writer.inner();
    file.sync_all().map_err(io("sync"))?;
    let bytes = file.metadata().map_err(io("stat"))?.len();
    Ok((rows, bytes))
}

/// Builders of the `flows` table, in [`FLOWS`] column order.
struct FlowBatch {
    len: usize,
    flow_id: Int64Builder,
    first_ts: TimestampMicrosecondBuilder,
    last_ts: TimestampMicrosecondBuilder,
    duration_us: Int64Builder,
    ip_version: Int32Builder,
    protocol: Int32Builder,
    client_addr: StringBuilder,
    client_port: Int32Builder,
    server_addr: StringBuilder,
    server_port: Int32Builder,
    vlan: Int32Builder,
    vlan_inner: Int32Builder,
    client_rule: StringDictionaryBuilder<Int32Type>,
    packets_up: Int64Builder,
    packets_down: Int64Builder,
    bytes_up: Int64Builder,
    bytes_down: Int64Builder,
    payload_bytes_up: Int64Builder,
    payload_bytes_down: Int64Builder,
    syn_seen: BooleanBuilder,
    handshake_seen: BooleanBuilder,
    handshake_rtt_us: Int64Builder,
    retransmitted_packets_up: Int64Builder,
    retransmitted_packets_down: Int64Builder,
    fin_up: BooleanBuilder,
    fin_down: BooleanBuilder,
    rst_seen: BooleanBuilder,
    end_reason: StringDictionaryBuilder<Int32Type>,
    bins: Int64Builder,
    bitrate_down_p50_bps: Int64Builder,
    bitrate_down_p95_bps: Int64Builder,
    bitrate_down_max_bps: Int64Builder,
}

fn ts_builder() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone(TIMEZONE)
}

impl FlowBatch {
    fn new() -> FlowBatch {
        FlowBatch {
            len: 0,
            flow_id: Int64Builder::new(),
            first_ts: ts_builder(),
            last_ts: ts_builder(),
            duration_us: Int64Builder::new(),
            ip_version: Int32Builder::new(),
            protocol: Int32Builder::new(),
            client_addr: StringBuilder::new(),
            client_port: Int32Builder::new(),
            server_addr: StringBuilder::new(),
            server_port: Int32Builder::new(),
            vlan: Int32Builder::new(),
            vlan_inner: Int32Builder::new(),
            client_rule: StringDictionaryBuilder::new(),
            packets_up: Int64Builder::new(),
            packets_down: Int64Builder::new(),
            bytes_up: Int64Builder::new(),
            bytes_down: Int64Builder::new(),
            payload_bytes_up: Int64Builder::new(),
            payload_bytes_down: Int64Builder::new(),
            syn_seen: BooleanBuilder::new(),
            handshake_seen: BooleanBuilder::new(),
            handshake_rtt_us: Int64Builder::new(),
            retransmitted_packets_up: Int64Builder::new(),
            retransmitted_packets_down: Int64Builder::new(),
            fin_up: BooleanBuilder::new(),
            fin_down: BooleanBuilder::new(),
            rst_seen: BooleanBuilder::new(),
            end_reason: StringDictionaryBuilder::new(),
            bins: Int64Builder::new(),
            bitrate_down_p50_bps: Int64Builder::new(),
            bitrate_down_p95_bps: Int64Builder::new(),
            bitrate_down_max_bps: Int64Builder::new(),
        }
    }

    fn append(&mut self, r: &FlowRow) {
        self.len += 1;
        // A dictionary append fails only when its keys overflow, which cannot happen with
        // at most BATCH_ROWS distinct values per batch; were it to, the null appended
        // instead keeps the builders aligned and fails the batch's schema check (the
        // column is not nullable), which is reported as an error.
        if self.client_rule.append(r.client_rule).is_err() {
            self.client_rule.append_null();
        }
        if self.end_reason.append(r.end_reason).is_err() {
            self.end_reason.append_null();
        }
        let first_us = ns_to_us(r.first_ts_ns);
        let last_us = ns_to_us(r.last_ts_ns);
        self.flow_id.append_value(r.flow_id);
        self.first_ts.append_value(first_us);
        self.last_ts.append_value(last_us);
        self.duration_us
            .append_value(last_us.saturating_sub(first_us));
        self.ip_version.append_value(i32::from(r.ip_version));
        self.protocol.append_value(i32::from(r.protocol));
        append_addr(&mut self.client_addr, r.client_addr);
        self.client_port.append_option(r.client_port.map(i32::from));
        append_addr(&mut self.server_addr, r.server_addr);
        self.server_port.append_option(r.server_port.map(i32::from));
        self.vlan.append_option(r.vlan.map(i32::from));
        self.vlan_inner.append_option(r.vlan_inner.map(i32::from));
        self.packets_up.append_value(count(r.packets_up));
        self.packets_down.append_value(count(r.packets_down));
        self.bytes_up.append_value(count(r.bytes_up));
        self.bytes_down.append_value(count(r.bytes_down));
        self.payload_bytes_up
            .append_value(count(r.payload_bytes_up));
        self.payload_bytes_down
            .append_value(count(r.payload_bytes_down));
        let tcp = r.tcp.as_ref();
        self.syn_seen.append_option(tcp.map(|t| t.syn_seen));
        self.handshake_seen
            .append_option(tcp.map(|t| t.handshake_seen));
        self.handshake_rtt_us
            .append_option(tcp.and_then(|t| t.handshake_rtt_ns).map(ns_to_us));
        self.retransmitted_packets_up
            .append_option(tcp.map(|t| count(t.retransmitted_packets_up)));
        self.retransmitted_packets_down
            .append_option(tcp.map(|t| count(t.retransmitted_packets_down)));
        self.fin_up.append_option(tcp.map(|t| t.fin_up));
        self.fin_down.append_option(tcp.map(|t| t.fin_down));
        self.rst_seen.append_option(tcp.map(|t| t.rst_seen));
        self.bins.append_value(count(r.bins));
        self.bitrate_down_p50_bps
            .append_option(r.bitrate_down_p50_bps);
        self.bitrate_down_p95_bps
            .append_option(r.bitrate_down_p95_bps);
        self.bitrate_down_max_bps
            .append_option(r.bitrate_down_max_bps);
    }

    /// Finishes the builders into a batch (the builders are left empty, ready for reuse).
    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, Error> {
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.flow_id.finish()),
            Arc::new(self.first_ts.finish()),
            Arc::new(self.last_ts.finish()),
            Arc::new(self.duration_us.finish()),
            Arc::new(self.ip_version.finish()),
            Arc::new(self.protocol.finish()),
            Arc::new(self.client_addr.finish()),
            Arc::new(self.client_port.finish()),
            Arc::new(self.server_addr.finish()),
            Arc::new(self.server_port.finish()),
            Arc::new(self.vlan.finish()),
            Arc::new(self.vlan_inner.finish()),
            Arc::new(self.client_rule.finish()),
            Arc::new(self.packets_up.finish()),
            Arc::new(self.packets_down.finish()),
            Arc::new(self.bytes_up.finish()),
            Arc::new(self.bytes_down.finish()),
            Arc::new(self.payload_bytes_up.finish()),
            Arc::new(self.payload_bytes_down.finish()),
            Arc::new(self.syn_seen.finish()),
            Arc::new(self.handshake_seen.finish()),
            Arc::new(self.handshake_rtt_us.finish()),
            Arc::new(self.retransmitted_packets_up.finish()),
            Arc::new(self.retransmitted_packets_down.finish()),
            Arc::new(self.fin_up.finish()),
            Arc::new(self.fin_down.finish()),
            Arc::new(self.rst_seen.finish()),
            Arc::new(self.end_reason.finish()),
            Arc::new(self.bins.finish()),
            Arc::new(self.bitrate_down_p50_bps.finish()),
            Arc::new(self.bitrate_down_p95_bps.finish()),
            Arc::new(self.bitrate_down_max_bps.finish()),
        ];
        RecordBatch::try_new(Arc::clone(schema), columns).map_err(|source| Error::Arrow {
            table: FLOWS.name,
            source,
        })
    }
}

/// Builders of the `flow_bins` table, in [`FLOW_BINS`] column order.
struct BinBatch {
    len: usize,
    bin_ns: i64,
    flow_id: Int64Builder,
    bin_start: TimestampMicrosecondBuilder,
    packets_up: Int64Builder,
    packets_down: Int64Builder,
    bytes_up: Int64Builder,
    bytes_down: Int64Builder,
    bitrate_down_bps: Int64Builder,
}

impl BinBatch {
    fn new(bin_ns: i64) -> BinBatch {
        BinBatch {
            len: 0,
            bin_ns,
            flow_id: Int64Builder::new(),
            bin_start: ts_builder(),
            packets_up: Int64Builder::new(),
            packets_down: Int64Builder::new(),
            bytes_up: Int64Builder::new(),
            bytes_down: Int64Builder::new(),
            bitrate_down_bps: Int64Builder::new(),
        }
    }

    #[inline]
    fn append(&mut self, r: &BinRow) {
        self.len += 1;
        self.flow_id.append_value(r.flow_id);
        self.bin_start.append_value(ns_to_us(r.bin_start_ns));
        self.packets_up.append_value(count(r.packets_up));
        self.packets_down.append_value(count(r.packets_down));
        self.bytes_up.append_value(count(r.bytes_up));
        self.bytes_down.append_value(count(r.bytes_down));
        self.bitrate_down_bps
            .append_value(bitrate_bps(r.bytes_down, self.bin_ns));
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, Error> {
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.flow_id.finish()),
            Arc::new(self.bin_start.finish()),
            Arc::new(self.packets_up.finish()),
            Arc::new(self.packets_down.finish()),
            Arc::new(self.bytes_up.finish()),
            Arc::new(self.bytes_down.finish()),
            Arc::new(self.bitrate_down_bps.finish()),
        ];
        RecordBatch::try_new(Arc::clone(schema), columns).map_err(|source| Error::Arrow {
            table: FLOW_BINS.name,
            source,
        })
    }
}

/// The table writers of one run.
///
/// Dropping an `Output` without calling [`Output::finish`] behaves like
/// [`Output::abort`]: no `<table>.parquet` is written and the temporary files are removed.
pub struct Output {
    dir: PathBuf,
    flows: FlowBatch,
    flows_sink: Sink,
    bins: BinBatch,
    bins_sink: Sink,
    done: bool,
}

impl Output {
    /// Creates the output folder `dir` if needed and starts one writer per table, each
    /// writing to `dir/.<table>.parquet.tmp`.
    ///
    /// `bin_ns` is the width of the time bins of `flow_bins`, in nanoseconds; it must be
    /// positive. Fails with [`Error::CreateDir`] or [`Error::Io`] (naming the path) if the
    /// folder cannot be created or written to.
    pub fn create(dir: &Path, bin_ns: i64) -> Result<Output, Error> {
        if bin_ns <= 0 {
            return Err(Error::InvalidBinWidth(bin_ns));
        }
        fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let flows_sink = Sink::create(dir, &FLOWS, &[])?;
        let bins_kv = [("streamscope.bin_ns", bin_ns.to_string())];
        let bins_sink = match Sink::create(dir, &FLOW_BINS, &bins_kv) {
            Ok(s) => s,
            Err(e) => {
                let mut flows_sink = flows_sink;
                flows_sink.abort();
                return Err(e);
            }
        };
        Ok(Output {
            dir: dir.to_path_buf(),
            flows: FlowBatch::new(),
            flows_sink,
            bins: BinBatch::new(bin_ns),
            bins_sink,
            done: false,
        })
    }

    /// The output folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one row to `flows`. Fails if the table's writer has failed.
    pub fn push_flow(&mut self, row: &FlowRow) -> Result<(), Error> {
        self.flows_sink.check()?;
        self.flows.append(row);
        if self.flows.len >= BATCH_ROWS {
            let batch = self.flows.finish(&self.flows_sink.schema)?;
            self.flows_sink.send(batch)?;
        }
        Ok(())
    }

    /// Appends one row to `flow_bins`. Fails if the table's writer has failed.
    #[inline]
    pub fn push_bin(&mut self, row: &BinRow) -> Result<(), Error> {
        self.bins_sink.check()?;
        self.bins.append(row);
        if self.bins.len >= BATCH_ROWS {
            let batch = self.bins.finish(&self.bins_sink.schema)?;
            self.bins_sink.send(batch)?;
        }
        Ok(())
    }

    /// Writes the remaining rows, completes and fsyncs every file, then renames each
    /// `.<table>.parquet.tmp` to `<table>.parquet`.
    ///
    /// The renames happen only once every table is complete; on error all temporary files
    /// are removed and the first error is returned.
    pub fn finish(mut self) -> Result<OutputSummary, Error> {
        self.done = true;
        let flows = self.flush_and_close_flows();
        let bins = self.flush_and_close_bins();
        let (flows, bins) = match (flows, bins) {
            (Ok(f), Ok(b)) => (f, b),
            (Err(e), _) | (_, Err(e)) => {
                self.flows_sink.abort();
                self.bins_sink.abort();
                return Err(e);
            }
        };
        let mut tables = Vec::with_capacity(2);
        for (sink, (rows, bytes)) in [(&self.flows_sink, flows), (&self.bins_sink, bins)] {
            if let Err(source) = fs::rename(&sink.tmp, &sink.path) {
                let err = Error::Io {
                    op: "rename",
                    path: sink.tmp.clone(),
                    source,
                };
                let _ = fs::remove_file(&self.flows_sink.tmp);
                let _ = fs::remove_file(&self.bins_sink.tmp);
                return Err(err);
            }
            tables.push(TableSummary {
                name: sink.table,
                path: sink.path.clone(),
                rows,
                bytes,
            });
        }
        sync_dir(&self.dir);
        Ok(OutputSummary { tables })
    }

    fn flush_and_close_flows(&mut self) -> Written {
        if self.flows.len > 0 {
            let batch = self.flows.finish(&self.flows_sink.schema)?;
            self.flows_sink.send(batch)?;
        }
        self.flows_sink.close()
    }

    fn flush_and_close_bins(&mut self) -> Written {
        if self.bins.len > 0 {
            let batch = self.bins.finish(&self.bins_sink.schema)?;
            self.bins_sink.send(batch)?;
        }
        self.bins_sink.close()
    }

    /// Stops the writers and removes the temporary files; no table of this run is
    /// written.
    pub fn abort(mut self) {
        self.abort_all();
    }

    fn abort_all(&mut self) {
        self.done = true;
        self.flows_sink.abort();
        self.bins_sink.abort();
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.done {
            self.abort_all();
        }
    }
}

/// Makes the renames durable (best effort: not every platform can sync a folder).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod addr_tests {
    use super::append_addr;
    use arrow_array::builder::StringBuilder;
    use arrow_array::Array;

    #[test]
    fn addresses_print_as_their_display_does() {
        let mut b = StringBuilder::new();
        let addrs = [
            "0.0.0.0",
            "10.0.0.1",
            "192.168.100.9",
            "255.255.255.255",
            "100.64.10.200",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "fe80::1:2:3:4",
        ];
        for a in addrs {
            append_addr(&mut b, a.parse().unwrap());
        }
        let arr = b.finish();
        assert_eq!(arr.len(), addrs.len());
        for (i, a) in addrs.iter().enumerate() {
            let want = a.parse::<std::net::IpAddr>().unwrap().to_string();
            assert_eq!(arr.value(i), want);
        }
    }
}
