//! Parquet writers for one run: one thread per table (and a helper where there is a
//! second CPU) turns rows into columns and encodes them.
//!
//! The caller's thread only copies each row into a plain vector; every [`BATCH_ROWS`]
//! rows (fewer on one CPU: [`SHARED_CPU_BATCH_ROWS`]) the vector is sent over a bounded
//! channel to the table's writer thread, which builds the columns (plain slices for
//! numbers, dictionaries for strings: see [`ColWriter`]), encodes them (zstd) into
//! `OUT/.<table>.parquet.tmp` and hands the emptied vector back for reuse. The caller
//! only waits when a writer thread is more than [`QUEUE_BATCHES`] batches behind.
//! Building the columns there rather than on the caller's thread matters when a capture
//! ends with a million flows open: they are all written at once, and the read loop's
//! thread is the one that ends them.
//!
//! [`Output::finish`] flushes, closes and fsyncs every file, and renames the temporary
//! files to `OUT/<table>.parquet` only once all tables are complete. On any error, on
//! [`Output::abort`] and when an `Output` is dropped unfinished, the temporary files are
//! removed, so no reader ever sees a half-written table from this run.
//!
//! A writer thread's error is reported by the next `push_*` call on its table (or by
//! `finish`).

use std::fs::{self, File};
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use arrow_schema::{Field, Fields};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::page::{CompressedPage, PageWriteSpec, PageWriter};
use parquet::column::writer::{get_column_writer, ColumnCloseResult, ColumnWriter};
use parquet::data_type::{
    BoolType, DataType, DoubleType, Int32Type as PqInt32, Int64Type as PqInt64,
};
use parquet::errors::{ParquetError, Result as PqResult};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::types::{ColumnDescPtr, ColumnPath};

mod delta;
mod dict;
mod pages;

use crate::error::Error;
use crate::rows::{BinRow, FlowRow, TcpFacts};
use crate::schema::{arrow_schema, ColType, TableSpec, FLOWS, FLOW_BINS, SCHEMA_VERSION};
use delta::DeltaColumn;
use dict::DictColumn;
use pages::Zstd;

/// Rows per batch handed to a writer thread where there is a CPU besides the caller's
/// (small enough that a batch of flow rows stays in the writer's cache while its columns
/// are built); 2,048 where there is not.
pub const BATCH_ROWS: usize = 8 * 1024;

/// Rows per batch when the writer threads share the caller's only CPU: the writer
/// then runs on the same core right after the caller filled the batch, so a batch that
/// fits the core's level-2 cache with room to spare (2,048 flow rows are ~0.5 MiB) is
/// read back from there instead of from memory (one CPU, a million flows: wall −1.5 %
/// to −4 % against 8,192 in three series of alternating runs; with two CPUs 2,048 is
/// 3.5 % slower).
const SHARED_CPU_BATCH_ROWS: usize = 2 * 1024;

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Batches that may wait in a table's queue before `push_*` blocks.
const QUEUE_BATCHES: usize = 4;

/// Largest dictionary page of an address column, in bytes (about 4,000 distinct IPv4
/// addresses as text). Servers usually repeat within a row group, so their column stays
/// dictionary-encoded: smaller, and cheaper than compressing the text again with zstd
/// every time. A column chunk of more distinct addresses (clients of a large network, a
/// scan) is written as plain text: its dictionary indices would be nearly as many bits
/// as rows, which zstd cannot shrink, where the repeated prefixes of plain text
/// compress well. Million flows (250 servers, 82,000 client addresses) on one CPU,
/// against a 1 MiB limit that kept the clients' dictionary: `flows` 5 % smaller, wall
/// time the same (8 alternating pairs).
const ADDRESS_DICTIONARY_BYTES: usize = 64 << 10;

/// zstd level. On delta-encoded integers level 1 makes files as small as zstd's default
/// level 3 (within 1 % on a million flows) with a quarter less work for the writer.
const ZSTD_LEVEL: i32 = 1;

/// Nanoseconds per microsecond.
const NS_PER_US: i64 = 1_000;

/// The decimal digits of every octet value, and how many there are.
const OCTETS: [([u8; 3], u8); 256] = {
    let mut t = [([0u8; 3], 0u8); 256];
    let mut v = 0;
    while v < 256 {
        let (h, d, u) = ((v / 100) as u8, (v / 10 % 10) as u8, (v % 10) as u8);
        t[v] = if v >= 100 {
            ([b'0' + h, b'0' + d, b'0' + u], 3)
        } else if v >= 10 {
            ([b'0' + d, b'0' + u, 0], 2)
        } else {
            ([b'0' + u, 0, 0], 1)
        };
        v += 1;
    }
    t
};

/// Appends an address as text to `out`: the dotted quad for IPv4, RFC 5952 for IPv6,
/// byte for byte what `IpAddr`'s `Display` writes (a test compares them). Formatted
/// here because this runs twice per flow: `Display` went through the formatting
/// machinery, over a thousand instructions for an IPv6 address.
fn push_addr(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => push_v4(out, a),
        IpAddr::V6(a) => push_v6(out, a),
    }
}

/// The dotted quad, from a digit table.
fn push_v4(out: &mut Vec<u8>, a: Ipv4Addr) {
    let mut buf = [0u8; 16];
    let mut n = 0;
    for octet in a.octets() {
        let (digits, len) = OCTETS[usize::from(octet)];
        buf[n..n + 3].copy_from_slice(&digits);
        n += usize::from(len);
        buf[n] = b'.';
        n += 1;
    }
    // All 16 bytes, then the extra ones cut: a copy of fixed size is two moves, where
    // one of the address's own length was a call to memcpy.
    let end = out.len() + n - 1;
    out.extend_from_slice(&buf);
    out.truncate(end);
}

/// RFC 5952 as `Ipv6Addr`'s `Display` writes it: an IPv4-mapped address as
/// `::ffff:` and a dotted quad; otherwise eight groups in lowercase hexadecimal without
/// leading zeros, the first longest run of two or more zero groups written `::`.
fn push_v6(out: &mut Vec<u8>, a: Ipv6Addr) {
    let groups = a.segments();
    if let [0, 0, 0, 0, 0, 0xffff, hi, lo] = groups {
        out.extend_from_slice(b"::ffff:");
        push_v4(out, Ipv4Addr::from(u32::from(hi) << 16 | u32::from(lo)));
        return;
    }
    let (mut zeros_at, mut zeros) = (0, 0);
    let (mut run_at, mut run) = (0, 0);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if run == 0 {
                run_at = i;
            }
            run += 1;
            if run > zeros {
                (zeros_at, zeros) = (run_at, run);
            }
        } else {
            run = 0;
        }
    }
    let hex = |out: &mut Vec<u8>, g: u16| {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let digits = (16 - g.leading_zeros()).div_ceil(4).max(1);
        for k in (0..digits).rev() {
            out.push(DIGITS[usize::from((g >> (4 * k)) & 0xf)]);
        }
    };
    let join = |out: &mut Vec<u8>, groups: &[u16]| {
        for (i, &g) in groups.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            hex(out, g);
        }
    };
    if zeros > 1 {
        join(out, &groups[..zeros_at]);
        out.extend_from_slice(b"::");
        join(out, &groups[zeros_at + zeros..]);
    } else {
        join(out, &groups);
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

/// The text written as each file's `created_by`.
///
/// It follows the `<application> version <semver>` form that parquet-java parses
/// (`VersionParser`): a value it cannot parse makes Spark and Hive ignore the min/max
/// statistics of every string column.
pub(crate) fn created_by() -> String {
    format!("{} version {}", crate::TOOL_NAME, crate::TOOL_VERSION)
}

/// Writer properties of the contract: zstd, dictionary encoding of the low-cardinality
/// string columns, page statistics on the columns of [`TableSpec::statistics`] (and
/// none on the others), pages cut by size only, [`ROW_GROUP_ROWS`]-row groups,
/// `created_by`, and the schema version and table in the file's key-value metadata.
///
/// Integer and timestamp columns are `DELTA_BINARY_PACKED`: ids and times grow
/// steadily and counters are small, so the deltas pack into a few bits each before zstd
/// sees them. That halves what zstd has to compress and makes `flow_bins` an order of
/// magnitude smaller than plain encoding. (Readers: every version of DuckDB, pyarrow and
/// Polars of the last years, parquet-java, and Spark's vectorized reader from 3.3 on.)
///
/// Data pages are cut by size only (parquet's 1 MiB default), not also every 20 000
/// rows as parquet-rs does by default: delta-packed columns of a whole row group fit in one
/// small page, and each extra page costs a page header, statistics, an encoder flush and
/// a fresh zstd context (a fifth of the writer's CPU in the `flows_rows` benchmark, whose
/// flows mix TCP and UDP); readers still prune by row group and by the page index.
///
/// Address columns get a dictionary while it stays small ([`ADDRESS_DICTIONARY_BYTES`]);
/// a column chunk whose dictionary outgrows that is plain text. (The string columns'
/// pages are written by [`DictColumn`], which reads these settings.)
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
        .set_data_page_row_count_limit(usize::MAX)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(created_by())
        .set_key_value_metadata(Some(kv));
    for column in spec.columns {
        let path = ColumnPath::from(column.name);
        builder = match column.ty {
            ColType::DictUtf8 => builder.set_column_dictionary_enabled(path, true),
            ColType::Utf8 => builder
                .set_column_dictionary_enabled(path.clone(), true)
                .set_column_dictionary_page_size_limit(path, ADDRESS_DICTIONARY_BYTES),
            ColType::Int64 | ColType::Int32 | ColType::TimestampUs => {
                builder.set_column_encoding(path, Encoding::DELTA_BINARY_PACKED)
            }
            _ => builder,
        };
        if !spec.statistics.contains(&column.name) {
            let path = ColumnPath::from(column.name);
            builder = builder.set_column_statistics_enabled(path, EnabledStatistics::None);
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

/// A table's row type: how rows become the table's columns, one column at a time (so
/// that two threads can build and encode different columns of the same rows).
trait TableRows: Copy + Send + Sync + 'static {
    /// Writes column `index` (schema order) of `rows` to `out`.
    fn column(rows: &[Self], index: usize, out: Out<'_>) -> PqResult<()>;
}

/// What a writer thread receives.
enum Message<R> {
    Rows(Vec<R>),
    /// Makes the writer fail as an encoder error would (for the tests).
    #[cfg(test)]
    Fail,
}

/// One table's file and writer thread, and the rows not yet handed to it.
struct Sink<R: TableRows> {
    table: &'static str,
    tmp: PathBuf,
    path: PathBuf,
    rows: Vec<R>,
    /// Rows handed over at a time ([`BATCH_ROWS`] or [`SHARED_CPU_BATCH_ROWS`]).
    batch_rows: usize,
    tx: Option<SyncSender<Message<R>>>,
    /// Emptied row vectors coming back from the writer thread.
    spare: Receiver<Vec<R>>,
    handle: Option<JoinHandle<Written>>,
    cancel: Arc<AtomicBool>,
}

impl<R: TableRows> Sink<R> {
    /// Starts the writer thread of table `spec` into `dir`. `two_lanes`: there is a CPU
    /// besides the caller's, so the table gets a helper encoding thread and the larger
    /// batches; without one, the smaller batches of [`SHARED_CPU_BATCH_ROWS`].
    fn create(
        dir: &Path,
        spec: &TableSpec,
        extra_kv: &[(&str, String)],
        two_lanes: bool,
    ) -> Result<Sink<R>, Error> {
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
        let (spare_tx, spare) = sync_channel(QUEUE_BATCHES + 1);
        let cancel = Arc::new(AtomicBool::new(false));
        let thread = WriterThread {
            table,
            fields: schema.fields().clone(),
            lanes: lanes(spec),
            two_lanes,
            writer,
            rx,
            spare: spare_tx,
            cancel: Arc::clone(&cancel),
            tmp: tmp.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("parquet-{table}"))
            .spawn(move || thread.run());
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
        let batch_rows = if two_lanes {
            BATCH_ROWS
        } else {
            SHARED_CPU_BATCH_ROWS
        };
        Ok(Sink {
            table,
            tmp,
            path,
            rows: Vec::with_capacity(batch_rows),
            batch_rows,
            tx: Some(tx),
            spare,
            handle: Some(handle),
            cancel,
        })
    }

    /// Appends one row; hands a full batch to the writer thread. Fails if the writer
    /// thread has stopped (it only stops early on an error).
    #[inline]
    fn push(&mut self, row: &R) -> Result<(), Error> {
        match &self.handle {
            Some(h) if !h.is_finished() => {}
            _ => return Err(self.stopped()),
        }
        self.rows.push(*row);
        if self.rows.len() >= self.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the buffered rows to the writer thread, taking an emptied vector back.
    fn flush(&mut self) -> Result<(), Error> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.batch_rows));
        let rows = std::mem::replace(&mut self.rows, next);
        self.send(Message::Rows(rows))
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

    fn send(&mut self, message: Message<R>) -> Result<(), Error> {
        let sent = match &self.tx {
            Some(tx) => tx.send(message).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.stopped())
        }
    }

    /// Hands over the last rows, closes the queue and waits for the writer thread to
    /// finish the file.
    fn close(&mut self) -> Written {
        self.flush()?;
        self.tx = None;
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(Error::WriterStopped { table: self.table }),
        }
    }

    /// Renames the completed file to its final name.
    fn publish(&self, (rows, bytes): (u64, u64)) -> Result<TableSummary, Error> {
        fs::rename(&self.tmp, &self.path).map_err(|source| Error::Io {
            op: "rename",
            path: self.tmp.clone(),
            source,
        })?;
        Ok(TableSummary {
            name: self.table,
            path: self.path.clone(),
            rows,
            bytes,
        })
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

/// Which encoding lane (0: the table's thread, 1: its helper) each column of the first
/// row group goes to, split by [`balance`] from estimated weights: the columns' encoding
/// times in the `flows` table of the million-flow benchmark capture on one machine, in
/// units of ~3 ms per million rows (a column of mostly distinct addresses, written and
/// compressed as plain text, costs as much as five to eight integer columns; the name
/// columns, a handful of values in long runs, less than one). Later row groups are split
/// by the times measured on the run.
fn lanes(spec: &TableSpec) -> Vec<u8> {
    let weights: Vec<u64> = spec
        .columns
        .iter()
        .map(|c| match c.ty {
            ColType::Utf8 => 10,
            ColType::TimestampUs => 3,
            ColType::Int64 | ColType::Int32 | ColType::Float64 => 2,
            ColType::DictUtf8 | ColType::Bool => 1,
        })
        .collect();
    balance(&weights, 0)
}

/// The lanes of the next row group from the measured encoding time of every column so
/// far (`costs`, ns) and the table thread's own work between row groups (`overhead`,
/// ns): the longest column first, each to the lane with less work (LPT). The relative
/// costs of columns differ between machines (one measured a zstd-heavy address column
/// at 4.5 integer columns, another at 3); a lane that waits for the other at every row
/// group is a CPU left idle while a million flows are written.
fn balance(costs: &[u64], overhead: u64) -> Vec<u8> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(costs[i]), i));
    let mut load = [overhead, 0];
    let mut lanes = vec![0u8; costs.len()];
    for i in order {
        let lane = usize::from(load[1] < load[0]);
        load[lane] += costs[i];
        lanes[i] = lane as u8;
    }
    lanes
}

/// The encoded pages of one column chunk, in memory until the row group is complete.
///
/// Shared between the column writer, which owns its page writer, and the lane, which
/// takes the bytes back once the writer is closed.
#[derive(Clone)]
struct PageBuf(Arc<Mutex<TrackedWrite<Vec<u8>>>>);

impl PageBuf {
    fn new() -> PageBuf {
        PageBuf(Arc::new(Mutex::new(TrackedWrite::new(Vec::new()))))
    }

    /// The bytes written so far (all of them, once the column writer is closed).
    fn take(&self) -> PqResult<Bytes> {
        let mut sink = self.0.lock().map_err(|_| poisoned())?;
        sink.flush()?;
        Ok(Bytes::from(std::mem::take(sink.inner_mut())))
    }
}

#[cold]
fn poisoned() -> ParquetError {
    ParquetError::General("a page buffer's lock was poisoned".into())
}

impl PageWriter for PageBuf {
    fn write_page(&mut self, page: CompressedPage) -> PqResult<PageWriteSpec> {
        let mut sink = self.0.lock().map_err(|_| poisoned())?;
        // Page header and data, the way the file writer itself lays them out.
        SerializedPageWriter::new(&mut sink).write_page(page)
    }

    fn close(&mut self) -> PqResult<()> {
        Ok(())
    }
}

/// The writer of one column chunk of the row group being written.
///
/// Integer and timestamp columns without statistics, most of them, are delta-encoded
/// by [`DeltaColumn`] as their values come (see the `delta` module); string columns are
/// dictionary-encoded by [`DictColumn`], keyed by the address or the static name rather
/// than by the text (see the `dict` module). The rest (the columns with min/max
/// statistics, booleans, floating point) go to parquet's typed column writer as plain
/// slices, with definition levels where a column is nullable: going through Arrow
/// arrays instead costs each value two more copies (parquet's Arrow writer lists the
/// non-null positions of every array and gathers the values by them again).
enum ColWriter {
    Typed(Box<ColumnWriter<'static>>, PageBuf),
    Delta(DeltaColumn),
    Dict(DictColumn),
}

/// An encoded column chunk, ready to be appended to its row group: its pages and what
/// the row group records of them.
type Chunk = (Bytes, ColumnCloseResult);

impl ColWriter {
    fn close(self, zstd: &mut Zstd) -> PqResult<Chunk> {
        match self {
            ColWriter::Typed(w, pages) => {
                let closed = (*w).close()?;
                Ok((pages.take()?, closed))
            }
            ColWriter::Delta(d) => d.close(zstd),
            ColWriter::Dict(d) => d.close(zstd),
        }
    }
}

/// The column writers of a row group ([`ColWriter`]): [`DictColumn`]s for the strings,
/// [`DeltaColumn`]s for the integers without statistics, parquet's typed writers for the
/// rest.
fn column_writers<W: std::io::Write + Send>(
    file: &SerializedFileWriter<W>,
    fields: &Fields,
) -> PqResult<Vec<ColWriter>> {
    let descr = file.schema_descr();
    let props = file.properties();
    if descr.num_columns() != fields.len() {
        return Err(ParquetError::General(format!(
            "{} columns in the schema, {} Parquet columns",
            fields.len(),
            descr.num_columns()
        )));
    }
    fields
        .iter()
        .enumerate()
        .map(|(i, field)| match field.data_type() {
            arrow_schema::DataType::Utf8 | arrow_schema::DataType::Dictionary(..) => {
                DictColumn::new(descr.column(i), props.clone()).map(ColWriter::Dict)
            }
            _ if delta_encoded(&descr.column(i), props) => {
                DeltaColumn::new(descr.column(i), props.clone()).map(ColWriter::Delta)
            }
            _ => {
                let pages = PageBuf::new();
                let typed =
                    get_column_writer(descr.column(i), props.clone(), Box::new(pages.clone()));
                Ok(ColWriter::Typed(Box::new(typed), pages))
            }
        })
        .collect()
}

/// Whether a column is written by [`DeltaColumn`]: integers delta-encoded without
/// statistics (those with statistics stay with parquet-rs's writer, which keeps them).
fn delta_encoded(descr: &ColumnDescPtr, props: &WriterProperties) -> bool {
    let path = descr.path();
    matches!(
        descr.physical_type(),
        parquet::basic::Type::INT32 | parquet::basic::Type::INT64
    ) && props.encoding(path) == Some(Encoding::DELTA_BINARY_PACKED)
        && props.statistics_enabled(path) == EnabledStatistics::None
}

/// Column writers of one lane for the row group being written, with their column index.
type LaneWriters = Vec<(usize, ColWriter)>;
/// Encoded column chunks of one lane, with their column index.
type LaneChunks = Vec<(usize, Chunk)>;

/// Rows per slice in [`encode`]: a slice of rows stays in the core's cache while each of
/// its columns is built from it.
const TILE_ROWS: usize = 1024;

/// Reused buffers for the values and definition levels of one column of a tile.
#[derive(Default)]
struct Scratch {
    /// The zstd context of the pages of the [`DeltaColumn`]s and [`DictColumn`]s.
    zstd: Zstd,
    i64s: Vec<i64>,
    i32s: Vec<i32>,
    f64s: Vec<f64>,
    bools: Vec<bool>,
    defs: Vec<i16>,
}

/// A plain value type of a typed column, and its scratch buffer.
trait Leaf: Copy {
    type Pq: DataType<T = Self>;
    /// The value buffer and the definition levels.
    fn bufs(s: &mut Scratch) -> (&mut Vec<Self>, &mut Vec<i16>);
    /// For an integer type, whether it is 64-bit (what a [`DeltaColumn`] checks); `None`
    /// for the others.
    const INT_WIDE: Option<bool>;
    /// The value widened to 64 bits (for a [`DeltaColumn`], which takes integers only).
    fn widen(self) -> i64;
}

/// `Leaf` for a value type, its parquet type and its scratch buffer.
macro_rules! leaf {
    ($($t:ty => $pq:ty, $buf:ident, $wide:expr;)*) => {$(
        impl Leaf for $t {
            type Pq = $pq;
            fn bufs(s: &mut Scratch) -> (&mut Vec<$t>, &mut Vec<i16>) {
                (&mut s.$buf, &mut s.defs)
            }
            const INT_WIDE: Option<bool> = $wide;
            #[inline]
            fn widen(self) -> i64 {
                self as i64
            }
        }
    )*};
}

leaf! {
    i64 => PqInt64, i64s, Some(true);
    i32 => PqInt32, i32s, Some(false);
    f64 => DoubleType, f64s, None;
    bool => BoolType, bools, None;
}

/// Where one column of a tile goes: its writer, its field and the lane's scratch
/// buffers. The column builders of each table call one of its methods.
struct Out<'a> {
    writer: &'a mut ColWriter,
    field: &'a Field,
    scratch: &'a mut Scratch,
}

impl Out<'_> {
    /// A column with a value in every row.
    fn values<T: Leaf>(self, values: impl Iterator<Item = T>) -> PqResult<()> {
        if let ColWriter::Delta(d) = self.writer {
            if T::INT_WIDE != Some(d.wide()) || d.nullable() {
                return Err(mismatch(self.field, std::any::type_name::<T>(), false));
            }
            let buf = &mut self.scratch.i64s;
            buf.clear();
            buf.extend(values.map(Leaf::widen));
            d.extend(buf);
            return Ok(());
        }
        let (buf, _) = T::bufs(self.scratch);
        buf.clear();
        buf.extend(values);
        self.write::<T>(false)
    }

    /// A nullable column: the values present and a definition level per row.
    ///
    /// A tile without a single value (the TCP columns of UDP flows, the inner VLAN of
    /// untagged ones) is found by a first look that stops at the first value, and is
    /// written as null levels only.
    fn options<T: Leaf>(
        self,
        values: impl ExactSizeIterator<Item = Option<T>> + Clone,
    ) -> PqResult<()> {
        if let ColWriter::Delta(d) = self.writer {
            if T::INT_WIDE != Some(d.wide()) || !d.nullable() {
                return Err(mismatch(self.field, std::any::type_name::<T>(), true));
            }
            let ints = values.map(|v| v.map(Leaf::widen));
            d.extend_options(ints, &mut self.scratch.i64s);
            return Ok(());
        }
        let (buf, defs) = T::bufs(self.scratch);
        buf.clear();
        defs.clear();
        if values.clone().all(|v| v.is_none()) {
            defs.resize(values.len(), 0);
        } else {
            for v in values {
                defs.push(i16::from(v.is_some()));
                if let Some(v) = v {
                    buf.push(v);
                }
            }
        }
        self.write::<T>(true)
    }

    /// Writes the values in `T`'s scratch buffer, with the definition levels if the
    /// column is `nullable`.
    fn write<T: Leaf>(self, nullable: bool) -> PqResult<()> {
        let Out {
            writer,
            field,
            scratch,
        } = self;
        let typed = match writer {
            ColWriter::Typed(w, _) if nullable == field.is_nullable() => {
                T::Pq::get_column_writer_mut(w)
            }
            _ => None,
        };
        let Some(typed) = typed else {
            return Err(mismatch(field, std::any::type_name::<T>(), nullable));
        };
        let (buf, defs) = T::bufs(scratch);
        typed.write_batch(buf, nullable.then_some(defs.as_slice()), None)?;
        Ok(())
    }

    /// A string column of addresses, as text (see [`push_addr`]).
    fn addresses(self, values: impl Iterator<Item = IpAddr>) -> PqResult<()> {
        match self.writer {
            ColWriter::Dict(d) => {
                values.for_each(|v| d.push_addr(v));
                Ok(())
            }
            _ => Err(mismatch(self.field, "address", false)),
        }
    }

    /// A string column of names from a handful of static ones.
    fn names(self, values: impl Iterator<Item = &'static str>) -> PqResult<()> {
        match self.writer {
            ColWriter::Dict(d) => {
                values.for_each(|v| d.push_name(v));
                Ok(())
            }
            _ => Err(mismatch(self.field, "name", false)),
        }
    }
}

/// A column builder and the schema disagree (a bug).
#[cold]
fn mismatch(field: &Field, given: &str, nullable: bool) -> ParquetError {
    ParquetError::General(format!(
        "column {} was given {}{} values, the schema says {}{}",
        field.name(),
        if nullable { "nullable " } else { "" },
        given,
        if field.is_nullable() { "nullable " } else { "" },
        field.data_type()
    ))
}

/// Builds the columns of `writers` from `rows` and encodes them, [`TILE_ROWS`] rows at a
/// time: gathering one column from a whole batch of wide rows (8 192 rows of a few
/// hundred bytes) would read the batch from memory once per column.
///
/// Adds each column's time to `costs` (ns, by column index).
fn encode<R: TableRows>(
    table: &'static str,
    writers: &mut LaneWriters,
    fields: &Fields,
    rows: &[R],
    scratch: &mut Scratch,
    costs: &mut [u64],
) -> Result<(), Error> {
    for tile in rows.chunks(TILE_ROWS) {
        let mut clock = Instant::now();
        for (index, writer) in writers.iter_mut() {
            let out = Out {
                writer,
                field: &fields[*index],
                scratch,
            };
            R::column(tile, *index, out).map_err(|source| Error::Parquet { table, source })?;
            clock = charge(costs, *index, clock);
        }
    }
    Ok(())
}

/// Adds the time since `since` to column `index`'s cost; returns now.
#[inline]
fn charge(costs: &mut [u64], index: usize, since: Instant) -> Instant {
    let now = Instant::now();
    if let Some(c) = costs.get_mut(index) {
        *c += now.duration_since(since).as_nanos() as u64;
    }
    now
}

/// Closes a lane's writers into encoded chunks (the last pages are encoded and
/// compressed here: that time goes to `costs` too).
fn close_lane(
    table: &'static str,
    writers: LaneWriters,
    scratch: &mut Scratch,
    costs: &mut [u64],
) -> Result<LaneChunks, Error> {
    let mut clock = Instant::now();
    writers
        .into_iter()
        .map(|(i, w)| {
            let chunk = w
                .close(&mut scratch.zstd)
                .map(|chunk| (i, chunk))
                .map_err(|source| Error::Parquet { table, source });
            clock = charge(costs, i, clock);
            chunk
        })
        .collect()
}

/// Hands an emptied row vector back to the caller once no lane uses it any more.
fn recycle<R>(rows: Arc<Vec<R>>, spare: &SyncSender<Vec<R>>) {
    if let Ok(mut v) = Arc::try_unwrap(rows) {
        v.clear();
        // The caller makes a new vector if none comes back.
        let _ = spare.try_send(v);
    }
}

/// Work for a table's helper lane.
enum LaneJob<R> {
    /// Column writers of a new row group, for the helper's columns.
    Start(LaneWriters),
    /// Encode these rows of a batch.
    Write(Arc<Vec<R>>, Range<usize>),
    /// The row group is complete: send the encoded chunks back, with the time spent on
    /// each column.
    Close,
}

/// A helper lane's encoded chunks of a row group and its time per column (ns, by
/// column index).
type LaneDone = Result<(LaneChunks, Vec<u64>), Error>;

/// A table's second encoding thread: it builds and encodes its share of the columns of
/// every batch while the table's thread does the rest.
struct Helper<R> {
    jobs: Option<SyncSender<LaneJob<R>>>,
    done: Receiver<LaneDone>,
    handle: Option<JoinHandle<()>>,
}

impl<R: TableRows> Helper<R> {
    fn spawn(
        table: &'static str,
        fields: Fields,
        spare: SyncSender<Vec<R>>,
    ) -> std::io::Result<Helper<R>> {
        let (jobs_tx, jobs) = sync_channel::<LaneJob<R>>(QUEUE_BATCHES);
        let (done_tx, done) = sync_channel(1);
        let handle = std::thread::Builder::new()
            .name(format!("parquet-{table}-2"))
            .spawn(move || {
                let mut writers = LaneWriters::new();
                let mut failed = None;
                let mut costs = vec![0u64; fields.len()];
                let mut scratch = Scratch::default();
                for job in jobs {
                    match job {
                        LaneJob::Start(w) => writers = w,
                        LaneJob::Write(rows, range) => {
                            if failed.is_none() {
                                let rows = &rows[range];
                                let scratch = &mut scratch;
                                if let Err(e) =
                                    encode(table, &mut writers, &fields, rows, scratch, &mut costs)
                                {
                                    failed = Some(e);
                                }
                            }
                            recycle(rows, &spare);
                        }
                        LaneJob::Close => {
                            let w = std::mem::take(&mut writers);
                            let result = match failed.take() {
                                Some(e) => Err(e),
                                None => {
                                    close_lane(table, w, &mut scratch, &mut costs).map(|chunks| {
                                        let costs =
                                            std::mem::replace(&mut costs, vec![0u64; fields.len()]);
                                        (chunks, costs)
                                    })
                                }
                            };
                            if done_tx.send(result).is_err() {
                                return;
                            }
                        }
                    }
                }
            })?;
        Ok(Helper {
            jobs: Some(jobs_tx),
            done,
            handle: Some(handle),
        })
    }

    fn send(&self, table: &'static str, job: LaneJob<R>) -> Result<(), Error> {
        match &self.jobs {
            Some(tx) if tx.send(job).is_ok() => Ok(()),
            _ => Err(Error::WriterStopped { table }),
        }
    }
}

impl<R> Drop for Helper<R> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What a table's writer thread owns.
struct WriterThread<R: TableRows> {
    table: &'static str,
    fields: Fields,
    /// Encoding lane of each column ([`lanes`]).
    lanes: Vec<u8>,
    /// Whether lane 1 has a thread; without one, lane 0 encodes every column.
    two_lanes: bool,
    writer: ArrowWriter<File>,
    rx: Receiver<Message<R>>,
    spare: SyncSender<Vec<R>>,
    cancel: Arc<AtomicBool>,
    tmp: PathBuf,
}

impl<R: TableRows> WriterThread<R> {
    /// Builds and encodes batches until the queue closes, then completes and fsyncs the
    /// file. Row groups hold [`ROW_GROUP_ROWS`] rows (the last one fewer), whatever the
    /// batch sizes and the number of lanes, so the file is the same either way.
    fn run(self) -> Written {
        let WriterThread {
            table,
            fields,
            lanes,
            two_lanes,
            writer,
            rx,
            spare,
            cancel,
            tmp,
        } = self;
        let parquet = |source| Error::Parquet { table, source };
        let (mut file, _) = writer.into_serialized_writer().map_err(parquet)?;
        let helper = match two_lanes {
            false => None,
            true => Some(Helper::spawn(table, fields.clone(), spare.clone()).map_err(
                |source| Error::Io {
                    op: "start the encoding thread of",
                    path: tmp.clone(),
                    source,
                },
            )?),
        };
        let mut lanes = lanes;
        // Encoding time of every column so far (both lanes), and this thread's own time
        // spent between row groups.
        let mut costs = vec![0u64; fields.len()];
        let mut overhead = 0u64;

        let mut scratch = Scratch::default();
        let mut mine: Option<LaneWriters> = None;
        let mut group_rows = 0usize;
        let mut rows_written = 0u64;
        while let Ok(message) = rx.recv() {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Aborted { table });
            }
            let rows = match message {
                Message::Rows(v) => Arc::new(v),
                #[cfg(test)]
                Message::Fail => {
                    return Err(parquet(parquet::errors::ParquetError::General(
                        "injected encoder failure".into(),
                    )))
                }
            };
            let mut at = 0;
            while at < rows.len() {
                let writers = match &mut mine {
                    Some(w) => w,
                    None => {
                        let all = column_writers(&file, &fields).map_err(parquet)?;
                        let two = helper.is_some();
                        let (ours, theirs): (LaneWriters, LaneWriters) = all
                            .into_iter()
                            .enumerate()
                            .partition(|(i, _)| !two || lanes[*i] == 0);
                        if let Some(h) = &helper {
                            h.send(table, LaneJob::Start(theirs))?;
                        }
                        mine.insert(ours)
                    }
                };
                let n = (rows.len() - at).min(ROW_GROUP_ROWS - group_rows);
                let range = at..at + n;
                if let Some(h) = &helper {
                    h.send(table, LaneJob::Write(Arc::clone(&rows), range.clone()))?;
                }
                let part = &rows[range];
                encode(table, writers, &fields, part, &mut scratch, &mut costs)?;
                at += n;
                group_rows += n;
                rows_written += n as u64;
                if group_rows == ROW_GROUP_ROWS {
                    if let Some(w) = mine.take() {
                        let h = helper.as_ref();
                        let s = &mut scratch;
                        overhead += close_row_group(table, &mut file, w, h, s, &mut costs)?;
                        lanes = balance(&costs, overhead);
                    }
                    group_rows = 0;
                }
            }
            recycle(rows, &spare);
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Aborted { table });
        }
        if let Some(w) = mine.take() {
            let h = helper.as_ref();
            close_row_group(table, &mut file, w, h, &mut scratch, &mut costs)?;
        }
        drop(helper);
        file.finish().map_err(parquet)?;
        let io = |op: &'static str| {
            let path = tmp.clone();
            move |source| Error::Io { op, path, source }
        };
        let f = file.inner();
        f.sync_all().map_err(io("sync"))?;
        let bytes = f.metadata().map_err(io("stat"))?.len();
        Ok((rows_written, bytes))
    }
}

/// Completes a row group: closes both lanes' writers (the helper's in parallel) and
/// appends the chunks in column order. Adds both lanes' time per column to `costs`;
/// returns the time spent appending (ns), which only this thread does.
fn close_row_group<R: TableRows>(
    table: &'static str,
    file: &mut SerializedFileWriter<File>,
    mine: LaneWriters,
    helper: Option<&Helper<R>>,
    scratch: &mut Scratch,
    costs: &mut [u64],
) -> Result<u64, Error> {
    let parquet = |source| Error::Parquet { table, source };
    if let Some(h) = helper {
        h.send(table, LaneJob::Close)?;
    }
    let mut chunks = close_lane(table, mine, scratch, costs)?;
    if let Some(h) = helper {
        match h.done.recv() {
            Ok(theirs) => {
                let (theirs, their_costs) = theirs?;
                chunks.extend(theirs);
                for (c, t) in costs.iter_mut().zip(their_costs) {
                    *c += t;
                }
            }
            Err(_) => return Err(Error::WriterStopped { table }),
        }
    }
    let start = Instant::now();
    chunks.sort_unstable_by_key(|(i, _)| *i);
    let mut group = file.next_row_group().map_err(parquet)?;
    for (_, (bytes, closed)) in chunks {
        group.append_column(&bytes, closed).map_err(parquet)?;
    }
    group.close().map_err(parquet)?;
    Ok(start.elapsed().as_nanos() as u64)
}

impl TableRows for FlowRow {
    fn column(rows: &[FlowRow], index: usize, out: Out<'_>) -> PqResult<()> {
        flow_column(rows, index, out)
    }
}

impl TableRows for BinRow {
    fn column(rows: &[BinRow], index: usize, out: Out<'_>) -> PqResult<()> {
        bin_column(rows, index, out)
    }
}

/// A column a table's code does not know (the schema and the builders disagree: a bug).
fn unknown_column(table: &str, index: usize) -> ParquetError {
    ParquetError::General(format!("{table} has no builder for column {index}"))
}

/// Column `index` of the `flows` table, found by its name in [`FLOWS`].
fn flow_column(rows: &[FlowRow], index: usize, out: Out<'_>) -> PqResult<()> {
    let rows = rows.iter();
    let tcp_count =
        |f: fn(&TcpFacts) -> u64| move |r: &FlowRow| r.tcp.as_ref().map(|t| count(f(t)));
    let tcp_flag = |f: fn(&TcpFacts) -> bool| move |r: &FlowRow| r.tcp.as_ref().map(f);
    let name = FLOWS.columns.get(index).map(|c| c.name);
    match name.unwrap_or_default() {
        "flow_id" => out.values(rows.map(|r| r.flow_id)),
        "first_ts" => out.values(rows.map(|r| ns_to_us(r.first_ts_ns))),
        "last_ts" => out.values(rows.map(|r| ns_to_us(r.last_ts_ns))),
        "duration_us" => {
            out.values(rows.map(|r| ns_to_us(r.last_ts_ns).saturating_sub(ns_to_us(r.first_ts_ns))))
        }
        "ip_version" => out.values(rows.map(|r| i32::from(r.ip_version))),
        "protocol" => out.values(rows.map(|r| i32::from(r.protocol))),
        "client_addr" => out.addresses(rows.map(|r| r.client_addr)),
        "client_port" => out.options(rows.map(|r| r.client_port.map(i32::from))),
        "server_addr" => out.addresses(rows.map(|r| r.server_addr)),
        "server_port" => out.options(rows.map(|r| r.server_port.map(i32::from))),
        "vlan" => out.options(rows.map(|r| r.vlan.map(i32::from))),
        "vlan_inner" => out.options(rows.map(|r| r.vlan_inner.map(i32::from))),
        "client_rule" => out.names(rows.map(|r| r.client_rule)),
        "packets_up" => out.values(rows.map(|r| count(r.packets_up))),
        "packets_down" => out.values(rows.map(|r| count(r.packets_down))),
        "bytes_up" => out.values(rows.map(|r| count(r.bytes_up))),
        "bytes_down" => out.values(rows.map(|r| count(r.bytes_down))),
        "payload_bytes_up" => out.values(rows.map(|r| count(r.payload_bytes_up))),
        "payload_bytes_down" => out.values(rows.map(|r| count(r.payload_bytes_down))),
        "syn_seen" => out.options(rows.map(tcp_flag(|t| t.syn_seen))),
        "handshake_seen" => out.options(rows.map(tcp_flag(|t| t.handshake_seen))),
        "handshake_rtt_us" => out.options(rows.map(|r| {
            r.tcp
                .as_ref()
                .and_then(|t| t.handshake_rtt_ns)
                .map(ns_to_us)
        })),
        "retransmitted_packets_up" => {
            out.options(rows.map(tcp_count(|t| t.retransmitted_packets_up)))
        }
        "retransmitted_packets_down" => {
            out.options(rows.map(tcp_count(|t| t.retransmitted_packets_down)))
        }
        "fin_up" => out.options(rows.map(tcp_flag(|t| t.fin_up))),
        "fin_down" => out.options(rows.map(tcp_flag(|t| t.fin_down))),
        "rst_seen" => out.options(rows.map(tcp_flag(|t| t.rst_seen))),
        "end_reason" => out.names(rows.map(|r| r.end_reason)),
        "bins" => out.values(rows.map(|r| count(r.bins))),
        "bitrate_down_p50_bps" => out.options(rows.map(|r| r.bitrate_down_p50_bps)),
        "bitrate_down_p95_bps" => out.options(rows.map(|r| r.bitrate_down_p95_bps)),
        "bitrate_down_max_bps" => out.options(rows.map(|r| r.bitrate_down_max_bps)),
        _ => Err(unknown_column(FLOWS.name, index)),
    }
}

/// Column `index` of the `flow_bins` table, found by its name in [`FLOW_BINS`].
fn bin_column(rows: &[BinRow], index: usize, out: Out<'_>) -> PqResult<()> {
    let rows = rows.iter();
    let name = FLOW_BINS.columns.get(index).map(|c| c.name);
    match name.unwrap_or_default() {
        "flow_id" => out.values(rows.map(|r| r.flow_id)),
        "bin_start" => out.values(rows.map(|r| ns_to_us(r.bin_start_ns))),
        "packets_up" => out.values(rows.map(|r| count(r.packets_up))),
        "packets_down" => out.values(rows.map(|r| count(r.packets_down))),
        "bytes_up" => out.values(rows.map(|r| count(r.bytes_up))),
        "bytes_down" => out.values(rows.map(|r| count(r.bytes_down))),
        "bitrate_down_bps" => out.values(rows.map(|r| r.bitrate_down_bps)),
        _ => Err(unknown_column(FLOW_BINS.name, index)),
    }
}

/// The table writers of one run.
///
/// Dropping an `Output` without calling [`Output::finish`] behaves like
/// [`Output::abort`]: no `<table>.parquet` is written and the temporary files are removed.
pub struct Output {
    dir: PathBuf,
    flows_sink: Sink<FlowRow>,
    bins_sink: Sink<BinRow>,
    done: bool,
}

impl Output {
    /// Creates the output folder `dir` if needed and starts one writer per table, each
    /// writing to `dir/.<table>.parquet.tmp`.
    ///
    /// `bin_ns` is the width of the time bins of `flow_bins`, in nanoseconds (recorded in
    /// the file's metadata; each row carries its own bitrate); it must be positive. Fails with [`Error::CreateDir`] or [`Error::Io`] (naming the path) if the
    /// folder cannot be created or written to.
    pub fn create(dir: &Path, bin_ns: i64) -> Result<Output, Error> {
        // A second encoding thread per table only where there is a second CPU to run it.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Output::create_with_lanes(dir, bin_ns, cpus > 1)
    }

    /// [`Output::create`] with or without each table's second encoding thread.
    fn create_with_lanes(dir: &Path, bin_ns: i64, two_lanes: bool) -> Result<Output, Error> {
        if bin_ns <= 0 {
            return Err(Error::InvalidBinWidth(bin_ns));
        }
        fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let flows_sink = Sink::create(dir, &FLOWS, &[], two_lanes)?;
        let bins_kv = [("streamscope.bin_ns", bin_ns.to_string())];
        let bins_sink = match Sink::create(dir, &FLOW_BINS, &bins_kv, two_lanes) {
            Ok(s) => s,
            Err(e) => {
                let mut flows_sink = flows_sink;
                flows_sink.abort();
                return Err(e);
            }
        };
        Ok(Output {
            dir: dir.to_path_buf(),
            flows_sink,
            bins_sink,
            done: false,
        })
    }

    /// The output folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one row to `flows`. Fails if the table's writer has failed.
    #[inline]
    pub fn push_flow(&mut self, row: &FlowRow) -> Result<(), Error> {
        self.flows_sink.push(row)
    }

    /// Appends one row to `flow_bins`. Fails if the table's writer has failed.
    #[inline]
    pub fn push_bin(&mut self, row: &BinRow) -> Result<(), Error> {
        self.bins_sink.push(row)
    }

    /// Writes the remaining rows, completes and fsyncs every file, then renames each
    /// `.<table>.parquet.tmp` to `<table>.parquet`.
    ///
    /// The renames happen only once every table is complete; on error all temporary files
    /// are removed and the first error is returned.
    pub fn finish(mut self) -> Result<OutputSummary, Error> {
        self.done = true;
        let flows = self.flows_sink.close();
        let bins = self.bins_sink.close();
        let (flows, bins) = match (flows, bins) {
            (Ok(f), Ok(b)) => (f, b),
            (Err(e), _) | (_, Err(e)) => {
                self.flows_sink.abort();
                self.bins_sink.abort();
                return Err(e);
            }
        };
        let published = self
            .flows_sink
            .publish(flows)
            .and_then(|f| Ok(vec![f, self.bins_sink.publish(bins)?]));
        let tables = match published {
            Ok(tables) => tables,
            Err(e) => {
                let _ = fs::remove_file(&self.flows_sink.tmp);
                let _ = fs::remove_file(&self.bins_sink.tmp);
                return Err(e);
            }
        };
        sync_dir(&self.dir);
        Ok(OutputSummary { tables })
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
    use super::push_addr;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn addresses_print_as_their_display_does() {
        let mut addrs: Vec<IpAddr> = [
            "0.0.0.0",
            "10.0.0.1",
            "192.168.100.9",
            "255.255.255.255",
            "100.64.10.200",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "fe80::1:2:3:4",
            "::",
            "::1",
            "1::",
            "1:0:0:1::",
            "1::1:0:0:1",
            "1:0:1:0:1:0:1:0",
            "0:1:0:1:0:1:0:1",
            "1:0:0:2:0:0:0:3",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::1.2.3.4",
            "::ffff:0.0.0.0",
            "::fffe:1.2.3.4",
            "0:0:0:0:1:ffff:1.2.3.4",
            "64:ff9b::192.0.2.33",
            "2001:db8:0:0:1:0:0:1",
            "abcd:ef01:2345:6789:a:bc:def:f00",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        // IPv6 addresses of random groups, each zero with probability 1/2 (runs of zeros
        // of every length and place) and of every width (1 to 4 hex digits).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut groups = [0u16; 8];
            for g in &mut groups {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x & 1 == 1 {
                    *g = (x >> 8) as u16 >> ((x >> 4) % 16);
                }
            }
            addrs.push(IpAddr::V6(Ipv6Addr::from(groups)));
        }
        // Every octet value in every position.
        for v in 0..=255u8 {
            addrs.push(IpAddr::V4(Ipv4Addr::new(
                v,
                255 - v,
                v / 3,
                v.wrapping_mul(7),
            )));
        }
        let mut text = Vec::new();
        for a in &addrs {
            text.clear();
            push_addr(&mut text, *a);
            assert_eq!(std::str::from_utf8(&text), Ok(a.to_string().as_str()));
        }
    }
}
