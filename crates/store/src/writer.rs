//! Parquet writers for one run: one thread per table (and a helper where there is a
//! second CPU) turns rows into Arrow arrays and encodes them through parquet-rs's
//! public API.
//!
//! The caller's thread only moves each row into a plain vector ([`Output::push`]); every
//! [`BATCH_ROWS`] rows (fewer on one CPU: [`SHARED_CPU_BATCH_ROWS`]) the vector is sent
//! over a bounded channel to the table's writer thread, which hands it back emptied for
//! reuse once its rows are written. The caller only waits when a writer thread is more
//! than [`QUEUE_BATCHES`] batches behind. Building the arrays there rather than on the
//! caller's thread matters when a capture ends with a million flows open: they are all
//! written at once, and the thread that ends them is the one that pushes the rows. Rows
//! that borrow their text ([`Output::push_ref`]) are built into arrays on the caller's
//! thread instead, and their batches go to the writer thread whole.
//!
//! The writer thread builds the rows into record batches of [`TILE_ROWS`] rows
//! ([`Builders`], made from the table's declaration) and encodes them with
//! parquet-rs's [`ArrowColumnWriter`]s, one per column, into row groups of
//! [`ROW_GROUP_ROWS`] rows. Tiles start where each vector handed over starts and row
//! groups are cut by count, so the file does not depend on the number of CPUs. Where
//! there is a second CPU, a table that fills a batch gets a helper thread that encodes
//! part of the columns of every batch while the table's thread builds the next ones
//! and encodes the rest ([`encoder::balance`] splits the columns by the time they
//! took); at the end of a row group each lane closes its own writers, and the chunks go
//! to the file in column order once both lanes' are there, while the next row group is
//! built (module [`encoder`]: the writer thread's side). The
//! encodings, dictionary limits and statistics of each column come from the writer
//! properties ([`writer_properties`]): nothing of the Parquet format is written here.
//!
//! [`Output::finish`] flushes, closes and fsyncs every file, and renames the temporary
//! files `OUT/.<table>.parquet.tmp` to `OUT/<table>.parquet` only once all tables are
//! complete. On any error, on [`Output::abort`] and when an `Output` is dropped
//! unfinished, the temporary files are removed, so no reader ever sees a half-written
//! table from this run.
//!
//! A writer thread's error is reported by the next push to its table (or by `finish`).

use std::any::Any;
use std::fs::{self, File};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::{Fields, SchemaRef};
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory,
};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;

use crate::error::Error;
use crate::row::{Builders, Row};
use crate::schema::{arrow_schema, ColType, TableSpec, FLOW_BINS, SCHEMA_VERSION};

/// Rows per batch handed to a writer thread where there is a CPU besides the caller's.
pub const BATCH_ROWS: usize = 8 * 1024;

/// Rows built into Arrow arrays and encoded at a time, whatever the batches handed
/// over: a row writes to every column, and the columns of 1,024 rows (8 KiB each for
/// integers, a quarter of a MiB for the 32 columns of `flows`) stay in the core's
/// level-2 cache while they are built, where those of 8,192 rows do not.
pub const TILE_ROWS: usize = 1024;

/// Rows per batch handed to a writer thread when the writer threads share the caller's
/// only CPU: the writer then runs on the same core right after the caller filled the
/// batch, so a batch that fits the core's level-2 cache with room to spare (2,048 flow
/// rows are ~0.5 MiB) is read back from there instead of from memory.
const SHARED_CPU_BATCH_ROWS: usize = 2 * 1024;

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Batches that may wait in a table's queue before a push blocks.
const QUEUE_BATCHES: usize = 4;

/// Largest dictionary page of a text column (`Utf8`, `ListUtf8`), in bytes (about 4,000
/// distinct IPv4 addresses as text). Servers and names usually repeat within a row
/// group, so their column stays dictionary-encoded: smaller, and cheaper than
/// compressing the text again with zstd every time. Past it, parquet-rs writes the rest
/// of the column chunk as plain text: the dictionary indices of nearly distinct values
/// (clients of a large network, a scan) would be nearly as many bits as rows, which
/// zstd cannot shrink, where the repeated prefixes of plain text compress well.
const TEXT_DICTIONARY_BYTES: usize = 64 << 10;

/// zstd level. On delta-encoded integers level 1 makes files as small as zstd's default
/// level 3 (within 1 % on a million flows) with a quarter less work for the writer.
const ZSTD_LEVEL: i32 = 1;

/// The text written as each file's `created_by`.
///
/// It follows the `<application> version <semver>` form that parquet-java parses
/// (`VersionParser`): a value it cannot parse makes Spark and Hive ignore the min/max
/// statistics of every string column.
pub(crate) fn created_by() -> String {
    format!("{} version {}", crate::TOOL_NAME, crate::TOOL_VERSION)
}

/// Writer properties of the contract for a table: zstd, page statistics on the columns
/// of [`TableSpec::statistics`] (and none on the others), pages cut by size only,
/// [`ROW_GROUP_ROWS`]-row groups, `created_by`, and the schema version, the table and
/// `extra` in the file's key-value metadata. Per column type:
///
/// - integers and timestamps: `DELTA_BINARY_PACKED`, no dictionary. Ids and times grow
///   steadily and counters are small, so the deltas pack into a few bits each before
///   zstd sees them; that halves what zstd has to compress and makes `flow_bins` an
///   order of magnitude smaller than plain encoding. (Readers: every version of DuckDB,
///   pyarrow and Polars of the last years, parquet-java, and Spark's vectorized reader
///   from 3.3 on.)
/// - `DictUtf8`: a dictionary (parquet-rs's default page limit of 1 MiB).
/// - `Utf8` and `ListUtf8`: a dictionary while it stays within
///   [`TEXT_DICTIONARY_BYTES`], plain text past it.
/// - booleans and doubles: plain.
///
/// Data pages are cut by size only (parquet's 1 MiB default), not also every 20 000
/// rows as parquet-rs does by default: delta-packed columns of a whole row group fit in
/// one small page, and each extra page costs a page header, statistics, an encoder
/// flush and a fresh zstd context; readers still prune by row group and by the page
/// index.
fn writer_properties(
    spec: &TableSpec,
    schema: &SchemaRef,
    extra: &[(String, String)],
) -> Result<WriterProperties, Error> {
    let table = spec.name;
    let parquet = |source| Error::Parquet { table, source };
    let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(parquet)?;
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
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    );
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(usize::MAX)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(created_by())
        .set_key_value_metadata(Some(kv));
    // Settings go to the Parquet leaf columns: a list column's leaf is
    // `<column>.list.item`.
    let leaves = ArrowSchemaConverter::new()
        .convert(schema)
        .map_err(parquet)?;
    for leaf in leaves.columns() {
        let path = leaf.path().clone();
        let root = path.parts().first().map(String::as_str).unwrap_or_default();
        let Some(column) = spec.column(root) else {
            continue;
        };
        builder = match column.ty {
            ColType::DictUtf8 => builder.set_column_dictionary_enabled(path.clone(), true),
            ColType::Utf8 | ColType::ListUtf8 => builder
                .set_column_dictionary_enabled(path.clone(), true)
                .set_column_dictionary_page_size_limit(path.clone(), TEXT_DICTIONARY_BYTES),
            ColType::Int64 | ColType::Int32 | ColType::TimestampUs => {
                builder.set_column_encoding(path.clone(), Encoding::DELTA_BINARY_PACKED)
            }
            ColType::Bool | ColType::Float64 => builder,
        };
        if !spec.statistics.contains(&column.name) {
            builder = builder.set_column_statistics_enabled(path, EnabledStatistics::None);
        }
    }
    Ok(builder.build())
}

/// A table a run writes, and what its file's key-value metadata adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    spec: &'static TableSpec,
    metadata: Vec<(String, String)>,
}

impl Table {
    /// The table `spec`, with the standard key-value metadata only
    /// (`streamscope.table`, `streamscope.schema_version`).
    pub fn new(spec: &'static TableSpec) -> Table {
        Table {
            spec,
            metadata: Vec::new(),
        }
    }

    /// Adds `key` = `value` to the file's key-value metadata.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Table {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// The `flow_bins` table of bins `bin_ns` nanoseconds wide (recorded in the file's
    /// metadata as `streamscope.bin_ns`; each row carries its own bitrate). Fails with
    /// [`Error::InvalidBinWidth`] unless `bin_ns` is positive.
    pub fn flow_bins(bin_ns: i64) -> Result<Table, Error> {
        if bin_ns <= 0 {
            return Err(Error::InvalidBinWidth(bin_ns));
        }
        Ok(Table::new(&FLOW_BINS).with_metadata("streamscope.bin_ns", bin_ns.to_string()))
    }

    /// The table's declaration.
    pub fn spec(&self) -> &'static TableSpec {
        self.spec
    }
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
    /// One entry per table, in the order given to [`Output::create`].
    pub tables: Vec<TableSummary>,
}

impl OutputSummary {
    /// This summary and `other`'s (of another [`Output`] of the same run), the tables in
    /// the order [`crate::tables`] declares them (others after, as given).
    pub fn merge(mut self, other: OutputSummary) -> OutputSummary {
        self.tables.extend(other.tables);
        let all = crate::tables();
        self.tables.sort_by_key(|t| {
            all.iter()
                .position(|s| s.name == t.name)
                .unwrap_or(all.len())
        });
        self
    }

    /// Removes the tables' files: the run they belong to failed after they were written
    /// (best effort: a file that cannot be removed stays).
    pub fn remove(&self) {
        for t in &self.tables {
            let _ = fs::remove_file(&t.path);
        }
    }

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

/// Rows of one type waiting for a table's writer thread, whatever their type.
trait Queue: Send {
    fn len(&self) -> usize;
    /// Appends rows `range` to the table's builders.
    fn append_to(&self, range: Range<usize>, builders: &mut Builders) -> Result<(), Error>;
    fn clear(&mut self);
    /// A new, empty vector for rows of the same type.
    fn empty(&self, capacity: usize) -> Box<dyn Queue>;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<R: Row + Send + 'static> Queue for Vec<R> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn append_to(&self, range: Range<usize>, builders: &mut Builders) -> Result<(), Error> {
        for row in self.get(range).unwrap_or_default() {
            builders.append(row)?;
        }
        Ok(())
    }

    fn clear(&mut self) {
        Vec::clear(self)
    }

    fn empty(&self, capacity: usize) -> Box<dyn Queue> {
        Box::new(Vec::<R>::with_capacity(capacity))
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// What a writer thread receives.
enum Message {
    /// Rows to append to the table's builders.
    Rows(Box<dyn Queue>),
    /// Rows already built into arrays ([`Output::push_ref`]).
    Batch(RecordBatch),
    /// Makes the writer fail as an encoder error would (for the tests).
    #[cfg(test)]
    Fail,
}

/// One table's file and writer thread, and the rows not yet handed to it.
struct Sink {
    spec: &'static TableSpec,
    tmp: PathBuf,
    path: PathBuf,
    /// Rows of [`Output::push`], not yet handed over.
    queue: Option<Box<dyn Queue>>,
    /// Rows of [`Output::push_ref`], not yet handed over.
    direct: Option<Builders>,
    /// Rows handed over at a time ([`BATCH_ROWS`] or [`SHARED_CPU_BATCH_ROWS`]).
    batch_rows: usize,
    tx: Option<SyncSender<Message>>,
    /// Emptied row vectors coming back from the writer thread.
    spare: Receiver<Box<dyn Queue>>,
    handle: Option<JoinHandle<Written>>,
    cancel: Arc<AtomicBool>,
}

impl Sink {
    /// Starts the writer thread of `table` into `dir`. `two_lanes`: there is a CPU
    /// besides the caller's, so the table may get a helper encoding thread, and the
    /// larger batches; without one, the smaller batches of [`SHARED_CPU_BATCH_ROWS`].
    fn create(dir: &Path, table: &Table, two_lanes: bool) -> Result<Sink, Error> {
        let spec = table.spec;
        let name = spec.name;
        let schema = arrow_schema(spec);
        let tmp = dir.join(format!(".{name}.parquet.tmp"));
        let path = dir.join(format!("{name}.parquet"));
        let props = writer_properties(spec, &schema, &table.metadata)?;
        let file = File::create(&tmp).map_err(|source| Error::Io {
            op: "create",
            path: tmp.clone(),
            source,
        })?;
        let writer = match ArrowWriter::try_new(file, schema.clone(), Some(props)) {
            Ok(w) => w,
            Err(source) => {
                let _ = fs::remove_file(&tmp);
                return Err(Error::Parquet {
                    table: name,
                    source,
                });
            }
        };
        let (tx, rx) = sync_channel(QUEUE_BATCHES);
        let (spare_tx, spare) = sync_channel(QUEUE_BATCHES + 1);
        let cancel = Arc::new(AtomicBool::new(false));
        let thread = WriterThread {
            spec,
            fields: schema.fields().clone(),
            two_lanes,
            writer,
            rx,
            spare: spare_tx,
            cancel: Arc::clone(&cancel),
            tmp: tmp.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("parquet-{name}"))
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
            spec,
            tmp,
            path,
            queue: None,
            direct: None,
            batch_rows,
            tx: Some(tx),
            spare,
            handle: Some(handle),
            cancel,
        })
    }

    /// Fails if the writer thread has stopped (it only stops early on an error).
    #[inline(always)]
    fn check_running(&mut self) -> Result<(), Error> {
        match &self.handle {
            Some(h) if !h.is_finished() => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// Queues one row; hands a full batch to the writer thread.
    #[inline(always)]
    fn push<R: Row + Send + 'static>(&mut self, row: R) -> Result<(), Error> {
        self.check_running()?;
        if self.direct.is_some() {
            return self.push_first(row);
        }
        let queue = self
            .queue
            .as_mut()
            .and_then(|q| q.as_any_mut().downcast_mut::<Vec<R>>());
        let full = match queue {
            Some(q) => {
                q.push(row);
                q.len() >= self.batch_rows
            }
            None => return self.push_first(row),
        };
        if full {
            self.flush_queue()?;
        }
        Ok(())
    }

    /// [`Sink::push`] of a row when no vector of its type is waiting, or rows of
    /// [`Sink::push_ref`] are: hands over what waits, then starts a vector of rows of
    /// this type.
    #[cold]
    fn push_first<R: Row + Send + 'static>(&mut self, row: R) -> Result<(), Error> {
        self.flush_queue()?;
        self.flush_direct(false)?;
        let mut queue = self.spare_queue::<R>();
        if let Some(q) = queue.as_any_mut().downcast_mut::<Vec<R>>() {
            q.push(row);
        }
        self.queue = Some(queue);
        Ok(())
    }

    /// An emptied vector for rows of type `R`: one back from the writer thread if it
    /// is of that type, else a new one.
    fn spare_queue<R: Row + Send + 'static>(&mut self) -> Box<dyn Queue> {
        if let Ok(mut q) = self.spare.try_recv() {
            if q.as_any_mut().is::<Vec<R>>() {
                return q;
            }
        }
        Box::new(Vec::<R>::with_capacity(self.batch_rows))
    }

    /// Appends one row to builders on this thread; hands a full batch to the writer
    /// thread. A row that does not match its declaration stops the table.
    fn push_ref<R: Row + ?Sized>(&mut self, row: &R) -> Result<(), Error> {
        self.check_running()?;
        if self.queue.as_ref().is_some_and(|q| q.len() > 0) {
            self.flush_queue()?;
        }
        let spec = self.spec;
        let direct = self
            .direct
            .get_or_insert_with(|| Builders::new(spec, TILE_ROWS));
        if let Err(e) = direct.append(row) {
            self.abort();
            return Err(e);
        }
        if direct.rows() >= TILE_ROWS {
            self.flush_direct(true)?;
        }
        Ok(())
    }

    /// Hands the queued rows to the writer thread, taking an emptied vector back.
    fn flush_queue(&mut self) -> Result<(), Error> {
        let Some(queue) = self.queue.take_if(|q| q.len() > 0) else {
            return Ok(());
        };
        let next = match self.spare.try_recv() {
            Ok(q) => q,
            Err(_) => queue.empty(self.batch_rows),
        };
        self.queue = Some(next);
        self.send(Message::Rows(queue))
    }

    /// Hands the rows built on this thread to the writer thread. `full`: more rows of
    /// [`Sink::push_ref`] are likely to follow, so the builders are kept.
    fn flush_direct(&mut self, full: bool) -> Result<(), Error> {
        let Some(mut direct) = self.direct.take() else {
            return Ok(());
        };
        if direct.rows() == 0 {
            return Ok(());
        }
        let batch = direct.finish()?;
        if full {
            self.direct = Some(direct);
        }
        self.send(Message::Batch(batch))
    }

    /// The error that stopped the writer thread; joins it.
    #[cold]
    fn stopped(&mut self) -> Error {
        self.tx = None;
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => Error::WriterStopped {
                table: self.spec.name,
            },
        }
    }

    fn send(&mut self, message: Message) -> Result<(), Error> {
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

    /// Hands over the last rows and closes the queue: the writer thread goes on to
    /// finish the file ([`Sink::join`] waits for it). The tables of a run are ended
    /// first and joined after, so that their last rows are encoded side by side.
    fn end(&mut self) -> Result<(), Error> {
        self.check_running()?;
        self.flush_queue()?;
        self.flush_direct(false)?;
        self.tx = None;
        Ok(())
    }

    /// Waits for the writer thread to finish the file, once [`Sink::end`]ed.
    fn join(&mut self) -> Written {
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(Error::WriterStopped {
                table: self.spec.name,
            }),
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
            name: self.spec.name,
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

/// The table writers of one run.
///
/// ```no_run
/// use streamscope_store::{BinRow, Output, Table, FLOWS};
///
/// let mut out = Output::create(
///     "out".as_ref(),
///     [Table::new(&FLOWS), Table::flow_bins(1_000_000_000)?],
/// )?;
/// out.push(BinRow {
///     flow_id: 1,
///     bin_start_ns: 1_700_000_000_000_000_000,
///     packets_up: 1,
///     packets_down: 2,
///     bytes_up: 60,
///     bytes_down: 1_500,
///     bitrate_down_bps: 12_000,
///     media: Default::default(),
/// })?;
/// let summary = out.finish()?;
/// # Ok::<(), streamscope_store::Error>(())
/// ```
///
/// Dropping an `Output` without calling [`Output::finish`] behaves like
/// [`Output::abort`]: no `<table>.parquet` is written and the temporary files are removed.
pub struct Output {
    dir: PathBuf,
    sinks: Vec<Sink>,
    done: bool,
}

impl Output {
    /// Creates the output folder `dir` if needed and starts one writer per table of
    /// `tables`, each writing to `dir/.<table>.parquet.tmp`.
    ///
    /// Fails with [`Error::DuplicateTable`] if a table is given twice (before anything
    /// is created), and with [`Error::CreateDir`] or [`Error::Io`] (naming the path) if
    /// the folder cannot be created or written to.
    pub fn create(dir: &Path, tables: impl IntoIterator<Item = Table>) -> Result<Output, Error> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Output::create_with_threads(dir, tables, cpus)
    }

    /// [`Output::create`] within a run's thread budget: with `threads` of 2 or more, a
    /// large table gets a second encoding thread and the caller hands its rows over in
    /// larger batches; with 1, the writers share the caller's CPU. The files are the
    /// same either way.
    pub fn create_with_threads(
        dir: &Path,
        tables: impl IntoIterator<Item = Table>,
        threads: usize,
    ) -> Result<Output, Error> {
        Output::create_with_lanes(dir, tables, threads > 1)
    }

    /// [`Output::create`] with or without each table's second encoding thread.
    fn create_with_lanes(
        dir: &Path,
        tables: impl IntoIterator<Item = Table>,
        two_lanes: bool,
    ) -> Result<Output, Error> {
        let tables: Vec<Table> = tables.into_iter().collect();
        for (i, t) in tables.iter().enumerate() {
            if tables[..i].iter().any(|u| u.spec.name == t.spec.name) {
                return Err(Error::DuplicateTable { table: t.spec.name });
            }
        }
        fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut out = Output {
            dir: dir.to_path_buf(),
            sinks: Vec::with_capacity(tables.len()),
            done: false,
        };
        for t in &tables {
            // On error, dropping `out` removes the files already created.
            out.sinks.push(Sink::create(dir, t, two_lanes)?);
        }
        Ok(out)
    }

    /// The output folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this run writes table `spec`.
    pub fn writes(&self, spec: &TableSpec) -> bool {
        self.sinks.iter().any(|s| s.spec.name == spec.name)
    }

    /// The sink of `table`. Tables are told apart by name; the same name is most
    /// often the same static text, which is compared first (a push costs a few
    /// nanoseconds, and the flow tables take two pushes per flow).
    #[inline(always)]
    fn sink(&mut self, table: &'static TableSpec) -> Result<&mut Sink, Error> {
        let name = table.name;
        let same = |s: &&mut Sink| {
            std::ptr::eq(s.spec.name.as_ptr(), name.as_ptr()) && s.spec.name.len() == name.len()
                || s.spec.name == name
        };
        self.sinks
            .iter_mut()
            .find(same)
            .ok_or(Error::NotWritten { table: name })
    }

    /// Appends one row to its table ([`Row::TABLE`]). The row is moved into a batch
    /// and its values are written into Arrow arrays on the table's writer thread.
    ///
    /// Fails with [`Error::NotWritten`] if the run does not write the table, or with the
    /// error that stopped the table's writer (a failed encoder, a row that did not
    /// match its declaration: [`Error::Row`]).
    #[inline(always)]
    pub fn push<R: Row + Send + 'static>(&mut self, row: R) -> Result<(), Error> {
        self.sink(R::TABLE)?.push(row)
    }

    /// Appends one row that borrows its text: its values are written into the table's
    /// Arrow builders now, on the caller's thread, and the built batches go to the
    /// writer thread. Slower for the caller than [`Output::push`]; for rows that
    /// cannot be moved to another thread.
    pub fn push_ref<R: Row + ?Sized>(&mut self, row: &R) -> Result<(), Error> {
        self.sink(R::TABLE)?.push_ref(row)
    }

    /// Writes the remaining rows, completes and fsyncs every file, then renames each
    /// `.<table>.parquet.tmp` to `<table>.parquet`.
    ///
    /// The renames happen only once every table is complete; on error all temporary files
    /// are removed and the first error is returned.
    pub fn finish(mut self) -> Result<OutputSummary, Error> {
        self.done = true;
        let ended: Vec<Result<(), Error>> = self.sinks.iter_mut().map(Sink::end).collect();
        let closed: Vec<Written> = self
            .sinks
            .iter_mut()
            .zip(ended)
            .map(|(sink, ended)| ended.and_then(|()| sink.join()))
            .collect();
        let mut written = Vec::with_capacity(closed.len());
        let mut first_error = None;
        for c in closed {
            match c {
                Ok(w) => written.push(w),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            self.sinks.iter_mut().for_each(Sink::abort);
            return Err(e);
        }
        let published: Result<Vec<TableSummary>, Error> = self
            .sinks
            .iter()
            .zip(written)
            .map(|(s, w)| s.publish(w))
            .collect();
        let tables = match published {
            Ok(tables) => tables,
            Err(e) => {
                for s in &self.sinks {
                    let _ = fs::remove_file(&s.tmp);
                }
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
        self.sinks.iter_mut().for_each(Sink::abort);
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

mod encoder;
#[cfg(test)]
use encoder::balance;
use encoder::WriterThread;

#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;
