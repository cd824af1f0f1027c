//! A table's writer thread ([`WriterThread`]): the rows handed over built into record
//! batches and encoded into row groups, its columns split between the thread and a
//! helper ([`Lane`]s, balanced by [`balance`] on the times each column took). The
//! module documentation of [`super`] tells the whole path.

use super::*;

/// The relative cost of building and encoding a column of type `ty`, by the times
/// measured on the `flows` table of the million-flow benchmark capture: a column of
/// mostly distinct text, formatted and compressed as plain text, costs as much as
/// several integer columns; a dictionary of a handful of names, less than one.
fn weight(ty: ColType) -> u64 {
    match ty {
        ColType::Utf8 | ColType::ListUtf8 => 10,
        ColType::TimestampUs => 3,
        ColType::Int64 | ColType::Int32 | ColType::Float64 => 2,
        ColType::DictUtf8 | ColType::Bool => 1,
    }
}

/// Which encoding lane (0: the table's thread, 1: its helper) each column of the first
/// row group goes to, split by [`balance`] from the weights of their types ([`weight`]).
/// Later row groups are split by the times measured on the run.
fn lanes(spec: &TableSpec) -> Vec<u8> {
    let weights: Vec<u64> = spec.columns.iter().map(|c| weight(c.ty)).collect();
    balance(&weights, 0)
}

/// The lanes of the next row group from the measured encoding time of every column so
/// far (`costs`, ns) and the table thread's own work (building the batches, appending
/// chunks to the file: `overhead`, ns): the longest column first, each to the lane with
/// less work (LPT). The relative costs of columns differ between machines; a lane that waits for
/// the other at every row group is a CPU left idle while a million flows are written.
pub(super) fn balance(costs: &[u64], overhead: u64) -> Vec<u8> {
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

/// Column writers of one lane for the row group being written, with their column index.
type LaneWriters = Vec<(usize, ArrowColumnWriter)>;
/// Encoded column chunks of one lane, with their column index.
type LaneChunks = Vec<(usize, ArrowColumnChunk)>;

/// Adds the time since `since` to column `index`'s cost; returns now.
#[inline]
fn charge(costs: &mut [u64], index: usize, since: Instant) -> Instant {
    let now = Instant::now();
    if let Some(c) = costs.get_mut(index) {
        *c += now.duration_since(since).as_nanos() as u64;
    }
    now
}

/// One encoding lane: the columns it encodes in the row group being written, and the
/// time each column took so far.
struct Lane {
    table: &'static str,
    fields: Fields,
    writers: LaneWriters,
    /// Encoding time of each column, ns (by column index).
    costs: Vec<u64>,
}

impl Lane {
    fn new(table: &'static str, fields: Fields) -> Lane {
        Lane {
            table,
            costs: vec![0; fields.len()],
            fields,
            writers: LaneWriters::new(),
        }
    }

    /// Encodes the lane's columns of `batches`.
    fn encode(&mut self, batches: &[RecordBatch]) -> Result<(), Error> {
        let table = self.table;
        let parquet = |source| Error::Parquet { table, source };
        for batch in batches {
            let mut clock = Instant::now();
            for (index, writer) in self.writers.iter_mut() {
                let (Some(field), Some(column)) =
                    (self.fields.get(*index), batch.columns().get(*index))
                else {
                    return Err(parquet(ParquetError::General(format!(
                        "no column {index} in a batch of {table}"
                    ))));
                };
                for leaf in compute_leaves(field, column).map_err(parquet)? {
                    writer.write(&leaf).map_err(parquet)?;
                }
                clock = charge(&mut self.costs, *index, clock);
            }
        }
        Ok(())
    }

    /// Closes the lane's writers into encoded chunks (the last pages are encoded and
    /// compressed here: that time goes to the costs too).
    fn close(&mut self) -> Result<LaneChunks, Error> {
        let table = self.table;
        let mut clock = Instant::now();
        std::mem::take(&mut self.writers)
            .into_iter()
            .map(|(i, w)| {
                let chunk = w
                    .close()
                    .map(|chunk| (i, chunk))
                    .map_err(|source| Error::Parquet { table, source });
                clock = charge(&mut self.costs, i, clock);
                chunk
            })
            .collect()
    }

    /// The costs so far, and zero from now on.
    fn take_costs(&mut self) -> Vec<u64> {
        std::mem::replace(&mut self.costs, vec![0; self.fields.len()])
    }
}

/// Work for a table's helper lane.
enum LaneJob {
    /// Column writers of a new row group, for the helper's columns.
    Start(LaneWriters),
    /// Encode the helper's columns of these batches.
    Encode(Arc<[RecordBatch]>),
    /// The row group is complete: send the encoded chunks back, with the time spent on
    /// each column.
    Close,
}

/// A helper lane's encoded chunks of a row group and its time per column (ns, by
/// column index).
type LaneDone = Result<(LaneChunks, Vec<u64>), Error>;

/// A table's second encoding thread: it encodes its share of the columns of every
/// batch while the table's thread builds the next ones and encodes the rest.
struct Helper {
    jobs: Option<SyncSender<LaneJob>>,
    done: Receiver<LaneDone>,
    handle: Option<JoinHandle<()>>,
}

impl Helper {
    fn spawn(table: &'static str, fields: Fields) -> std::io::Result<Helper> {
        let (jobs_tx, jobs) = sync_channel::<LaneJob>(QUEUE_BATCHES);
        let (done_tx, done) = sync_channel(1);
        let handle = std::thread::Builder::new()
            .name(format!("parquet-{table}-2"))
            .spawn(move || {
                let mut lane = Lane::new(table, fields);
                let mut failed = None;
                for job in jobs {
                    match job {
                        LaneJob::Start(w) => lane.writers = w,
                        LaneJob::Encode(batches) => {
                            if failed.is_none() {
                                failed = lane.encode(&batches).err();
                            }
                        }
                        LaneJob::Close => {
                            let closed = lane.close();
                            let result = match failed.take() {
                                Some(e) => Err(e),
                                None => closed.map(|chunks| (chunks, lane.take_costs())),
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

    fn send(&self, table: &'static str, job: LaneJob) -> Result<(), Error> {
        match &self.jobs {
            Some(tx) if tx.send(job).is_ok() => Ok(()),
            _ => Err(Error::WriterStopped { table }),
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The row group being written: whether the helper has part of its columns, and its
/// rows so far.
struct Group {
    helped: bool,
    rows: usize,
}

/// Rows and batches in, row groups of [`ROW_GROUP_ROWS`] rows out.
struct Encoder {
    spec: &'static TableSpec,
    fields: Fields,
    file: SerializedFileWriter<File>,
    factory: ArrowRowGroupWriterFactory,
    /// The columns of the tile being built from rows handed over.
    builders: Builders,
    /// This thread's lane (lane 0).
    lane: Lane,
    /// Whether a helper may be started.
    two_lanes: bool,
    /// Whether the caller has handed over a full batch ([`BATCH_ROWS`]).
    large: bool,
    helper: Option<Helper>,
    tmp: PathBuf,
    /// Lane of each column ([`lanes`], then [`balance`]).
    lanes: Vec<u8>,
    /// Encoding time of every column so far (both lanes), ns.
    costs: Vec<u64>,
    /// This thread's time spent building batches and appending chunks to the file, ns.
    overhead: u64,
    group: Option<Group>,
    /// The next row group's column writers, made before its first rows come: making
    /// them (a zstd context per column) then costs nothing at the end of a run, when
    /// every table's rows come at once.
    standby: Option<Vec<ArrowColumnWriter>>,
    /// The last row group ended, until its chunks are appended to the file.
    closed: Option<Closed>,
    groups: usize,
    rows: u64,
}

/// A row group whose writers are closed: this lane's chunks, and whether the helper's
/// are still to come.
struct Closed {
    chunks: LaneChunks,
    helped: bool,
}

impl Encoder {
    /// Writes rows handed over by the caller: builds them into batches of
    /// [`TILE_ROWS`] rows (fewer where a row group ends or the rows do), then encodes
    /// the batches' columns on both lanes.
    fn rows(&mut self, rows: &dyn Queue) -> Result<(), Error> {
        let n = rows.len();
        self.large |= n >= BATCH_ROWS;
        let mut at = 0;
        while at < n {
            let end = at + self.room()?.min(n - at);
            let clock = Instant::now();
            let mut batches = Vec::with_capacity((end - at).div_ceil(TILE_ROWS));
            while at < end {
                let tile = at..end.min(at + TILE_ROWS);
                at = tile.end;
                rows.append_to(tile, &mut self.builders)?;
                batches.push(self.builders.finish()?);
            }
            self.overhead += clock.elapsed().as_nanos() as u64;
            self.encode(batches.into())?;
        }
        Ok(())
    }

    /// Writes a batch built on the caller's thread, cutting it where a row group ends.
    fn batch(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        let n = batch.num_rows();
        let mut at = 0;
        while at < n {
            let take = self.room()?.min(n - at);
            self.encode(Arc::new([batch.slice(at, take)]))?;
            at += take;
        }
        Ok(())
    }

    /// Encodes `batches`, which fit in the row group being written: the helper's
    /// columns there, the others here.
    fn encode(&mut self, batches: Arc<[RecordBatch]>) -> Result<(), Error> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if self.helped() {
            if let Some(h) = &self.helper {
                h.send(self.spec.name, LaneJob::Encode(Arc::clone(&batches)))?;
            }
        }
        self.lane.encode(&batches)?;
        self.append_closed(false)?;
        self.wrote(rows)
    }

    fn helped(&self) -> bool {
        self.group.as_ref().is_some_and(|g| g.helped)
    }

    /// Rows the row group being written has room for, starting one if needed.
    fn room(&mut self) -> Result<usize, Error> {
        let rows = match &self.group {
            Some(g) => g.rows,
            None => {
                self.start_group()?;
                0
            }
        };
        Ok(ROW_GROUP_ROWS - rows)
    }

    /// Counts `n` rows written to the row group; closes it when full.
    fn wrote(&mut self, n: usize) -> Result<(), Error> {
        self.rows += n as u64;
        let full = match &mut self.group {
            Some(g) => {
                g.rows += n;
                g.rows >= ROW_GROUP_ROWS
            }
            None => false,
        };
        if full {
            self.close_group()?;
        }
        Ok(())
    }

    /// Column writers for the next row group, split between the lanes when the helper
    /// takes part: where there is a second CPU and the table is large (the caller has
    /// handed over a full batch, or a row group was already written).
    fn start_group(&mut self) -> Result<(), Error> {
        let table = self.spec.name;
        let parquet = |source| Error::Parquet { table, source };
        let helped = self.two_lanes && (self.large || self.groups > 0);
        if helped && self.helper.is_none() {
            let spawned = Helper::spawn(table, self.fields.clone());
            let helper = spawned.map_err(|source| Error::Io {
                op: "start the encoding thread of",
                path: self.tmp.clone(),
                source,
            })?;
            self.helper = Some(helper);
        }
        let all = match self.standby.take() {
            Some(all) => all,
            None => self
                .factory
                .create_column_writers(self.groups)
                .map_err(parquet)?,
        };
        if all.len() != self.fields.len() {
            return Err(parquet(ParquetError::General(format!(
                "{} columns in the schema, {} Parquet columns",
                self.fields.len(),
                all.len()
            ))));
        }
        let lanes = &self.lanes;
        let (mine, theirs): (LaneWriters, LaneWriters) = all
            .into_iter()
            .enumerate()
            .partition(|(i, _)| !helped || lanes[*i] == 0);
        if helped {
            if let Some(h) = &self.helper {
                h.send(table, LaneJob::Start(theirs))?;
            }
        }
        self.lane.writers = mine;
        self.group = Some(Group { helped, rows: 0 });
        Ok(())
    }

    /// Ends the row group being written: closes this lane's writers and asks the
    /// helper to close its own, without waiting for it; the chunks are appended once
    /// the helper's come back ([`Encoder::append_closed`]), while the next row group is
    /// already being built.
    fn close_group(&mut self) -> Result<(), Error> {
        let table = self.spec.name;
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        // A row group still waiting for the helper goes to the file first.
        self.append_closed(true)?;
        if group.helped {
            if let Some(h) = &self.helper {
                h.send(table, LaneJob::Close)?;
            }
        }
        let chunks = self.lane.close()?;
        for (c, t) in self.costs.iter_mut().zip(self.lane.take_costs()) {
            *c += t;
        }
        self.closed = Some(Closed {
            chunks,
            helped: group.helped,
        });
        self.groups += 1;
        Ok(())
    }

    /// Appends the closed row group to the file once the helper's chunks of it are
    /// back: waiting for them if `wait`, else only if they are, and rebalances the
    /// lanes with the times measured so far.
    fn append_closed(&mut self, wait: bool) -> Result<(), Error> {
        let table = self.spec.name;
        let parquet = |source| Error::Parquet { table, source };
        let Some(closed) = self.closed.take() else {
            return Ok(());
        };
        let Closed { mut chunks, helped } = closed;
        if let Some(h) = self.helper.as_ref().filter(|_| helped) {
            let theirs = match wait {
                true => h.done.recv().ok(),
                false => match h.done.try_recv() {
                    Ok(theirs) => Some(theirs),
                    Err(TryRecvError::Empty) => {
                        self.closed = Some(Closed { chunks, helped });
                        return Ok(());
                    }
                    Err(TryRecvError::Disconnected) => None,
                },
            };
            let Some(theirs) = theirs else {
                return Err(Error::WriterStopped { table });
            };
            let (theirs, their_costs) = theirs?;
            chunks.extend(theirs);
            for (c, t) in self.costs.iter_mut().zip(their_costs) {
                *c += t;
            }
        }
        let start = Instant::now();
        chunks.sort_unstable_by_key(|(i, _)| *i);
        let mut group = self.file.next_row_group().map_err(parquet)?;
        for (_, chunk) in chunks {
            chunk.append_to_row_group(&mut group).map_err(parquet)?;
        }
        group.close().map_err(parquet)?;
        self.overhead += start.elapsed().as_nanos() as u64;
        self.lanes = balance(&self.costs, self.overhead);
        Ok(())
    }

    /// Completes the last row group and the file, and fsyncs it.
    fn finish(mut self) -> Written {
        let table = self.spec.name;
        if self.group.as_ref().is_some_and(|g| g.rows > 0) {
            self.close_group()?;
        }
        self.append_closed(true)?;
        drop(self.helper.take());
        self.file
            .finish()
            .map_err(|source| Error::Parquet { table, source })?;
        let io = |op: &'static str| {
            let path = self.tmp.clone();
            move |source| Error::Io { op, path, source }
        };
        let f = self.file.inner();
        f.sync_all().map_err(io("sync"))?;
        let bytes = f.metadata().map_err(io("stat"))?.len();
        Ok((self.rows, bytes))
    }
}

/// What a table's writer thread owns.
pub(super) struct WriterThread {
    pub(super) spec: &'static TableSpec,
    pub(super) fields: Fields,
    /// Whether a helper thread may encode part of the columns.
    pub(super) two_lanes: bool,
    pub(super) writer: ArrowWriter<File>,
    pub(super) rx: Receiver<Message>,
    pub(super) spare: SyncSender<Box<dyn Queue>>,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) tmp: PathBuf,
}

impl WriterThread {
    /// Builds and encodes what the caller hands over until the queue closes, then
    /// completes and fsyncs the file. Columns are built and encoded [`TILE_ROWS`] rows
    /// at a time from where each vector of rows starts (the vectors handed over hold a
    /// multiple of it, but the last), and cut into row groups of [`ROW_GROUP_ROWS`], so
    /// the file is the same however many CPUs there are.
    pub(super) fn run(self) -> Written {
        let WriterThread {
            spec,
            fields,
            two_lanes,
            writer,
            rx,
            spare,
            cancel,
            tmp,
        } = self;
        let table = spec.name;
        let (file, factory) = writer
            .into_serialized_writer()
            .map_err(|source| Error::Parquet { table, source })?;
        let mut enc = Encoder {
            spec,
            builders: Builders::new(spec, TILE_ROWS),
            lane: Lane::new(table, fields.clone()),
            costs: vec![0; fields.len()],
            fields,
            file,
            factory,
            two_lanes,
            large: false,
            helper: None,
            tmp,
            lanes: lanes(spec),
            overhead: 0,
            group: None,
            standby: None,
            closed: None,
            groups: 0,
            rows: 0,
        };
        enc.standby = Some(
            enc.factory
                .create_column_writers(0)
                .map_err(|source| Error::Parquet { table, source })?,
        );
        while let Ok(message) = rx.recv() {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Aborted { table });
            }
            match message {
                Message::Rows(mut queue) => {
                    enc.rows(&*queue)?;
                    queue.clear();
                    // The caller makes a new vector if none comes back.
                    let _ = spare.try_send(queue);
                }
                Message::Batch(batch) => enc.batch(&batch)?,
                #[cfg(test)]
                Message::Fail => {
                    return Err(Error::Parquet {
                        table,
                        source: ParquetError::General("injected encoder failure".into()),
                    })
                }
            }
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Aborted { table });
        }
        enc.finish()
    }
}
