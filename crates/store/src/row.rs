//! The generic row interface: a [`Row`] writes its values, column by column in the
//! order its table declares them, through a [`RowWriter`] into column buffers that the
//! declaration created ([`Builders`]), which become Arrow arrays batch by batch.
//!
//! The buffers are plain vectors (values, validity, text bytes and offsets, dictionary
//! keys), handed to Arrow's arrays without a copy. A dictionary column finds a value by
//! comparing it with the row before's, then with the few distinct values of the batch,
//! then through a hash table; an address is formatted straight into the column's text
//! ([`push_addr`]). See [`RowWriter`] for which call fits which column type and what is
//! checked.

use std::hash::BuildHasher as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int32Array, Int64Array, ListArray,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_buffer::{BooleanBuffer, NullBuffer, OffsetBuffer};
use arrow_schema::{ArrowError, DataType, Field, SchemaRef};
use hashbrown::HashTable;

use crate::error::{Error, RowMismatch};
use crate::schema::{arrow_schema, ColType, Column, TableSpec, LIST_ITEM, TIMEZONE};

/// A row of one table.
///
/// ```
/// use streamscope_store::{Row, RowWriter, TableSpec, Column, ColType};
///
/// // The declaration (in `schema.rs`, listed in `tables()`).
/// const PINGS: TableSpec = TableSpec {
///     name: "pings",
///     description: "One row per echo request.",
///     sort: "ts",
///     statistics: &["ts"],
///     columns: &[
///         Column { name: "ts", ty: ColType::TimestampUs, nullable: false,
///                  meaning: "Capture time of the request." },
///         Column { name: "host", ty: ColType::Utf8, nullable: true,
///                  meaning: "Name asked for. Null when unknown." },
///         Column { name: "answers", ty: ColType::ListUtf8, nullable: false,
///                  meaning: "Addresses that answered, as text." },
///     ],
/// };
///
/// // The row, with owned text.
/// struct Ping { ts_ns: i64, host: Option<String>, answers: Vec<std::net::IpAddr> }
///
/// impl Row for Ping {
///     const TABLE: &'static TableSpec = &PINGS;
///     fn append(&self, w: &mut RowWriter<'_>) {
///         w.ts_ns("ts", self.ts_ns);
///         w.opt_str("host", self.host.as_deref());
///         w.addrs("answers", self.answers.iter().copied());
///     }
/// }
/// ```
pub trait Row {
    /// The table the row belongs to.
    const TABLE: &'static TableSpec;

    /// Writes the row's values, one call per column in the order of
    /// [`TableSpec::columns`].
    fn append(&self, w: &mut RowWriter<'_>);
}

/// Distinct values up to which a dictionary column looks values up by comparing them
/// one by one (after the value of the row before); past this many, through a hash table.
const DICT_SCAN: usize = 4;

/// The text values of one column of a batch: their UTF-8 bytes end to end, and where
/// each ends (Arrow's offsets, starting with 0).
struct Text {
    bytes: Vec<u8>,
    offsets: Vec<i32>,
}

impl Text {
    fn with_capacity(values: usize, bytes: usize) -> Text {
        let mut offsets = Vec::with_capacity(values + 1);
        offsets.push(0);
        Text {
            bytes: Vec::with_capacity(bytes),
            offsets,
        }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Ends the value whose bytes were appended since the last end. Returns false if
    /// the batch's text no longer fits Arrow's 32-bit offsets (over 2 GiB): the value
    /// is then empty.
    #[inline]
    fn end(&mut self) -> bool {
        let last = self.offsets.last().copied().unwrap_or(0);
        match i32::try_from(self.bytes.len()) {
            Ok(end) => {
                self.offsets.push(end);
                true
            }
            Err(_) => {
                self.bytes.truncate(last as usize);
                self.offsets.push(last);
                false
            }
        }
    }

    #[inline]
    fn push(&mut self, s: &str) -> bool {
        self.bytes.extend_from_slice(s.as_bytes());
        self.end()
    }

    /// Value `i`'s bytes.
    fn value(&self, i: usize) -> &[u8] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => self.bytes.get(a as usize..b as usize).unwrap_or_default(),
            _ => &[],
        }
    }

    fn finish(self, nulls: Option<NullBuffer>) -> Result<StringArray, ArrowError> {
        // Offsets start at 0 and never decrease (see `end`): `OffsetBuffer::new` holds.
        StringArray::try_new(
            OffsetBuffer::new(self.offsets.into()),
            self.bytes.into(),
            nulls,
        )
    }
}

/// A dictionary column of a batch: each row's key and the distinct values.
struct Dict {
    keys: Vec<i32>,
    values: Text,
    /// The key of the value looked up last (names come in runs).
    last: Option<i32>,
    /// The keys of the distinct values by the hash of their text, once there are more
    /// than [`DICT_SCAN`].
    index: HashTable<i32>,
    /// The text of the address being looked up.
    scratch: Vec<u8>,
}

/// The hash of a dictionary value's text.
fn text_hash(b: &[u8]) -> u64 {
    foldhash::fast::FixedState::default().hash_one(b)
}

impl Dict {
    fn new(rows: usize) -> Dict {
        Dict {
            keys: Vec::with_capacity(rows),
            values: Text::with_capacity(DICT_SCAN, 256),
            last: None,
            index: HashTable::new(),
            scratch: Vec::new(),
        }
    }

    /// The key of `b` (UTF-8), adding it to the dictionary if new; `None` if the
    /// batch's text is over 2 GiB.
    #[inline]
    fn key(&mut self, b: &[u8]) -> Option<i32> {
        if let Some(k) = self.last {
            if self.values.value(k as usize) == b {
                return Some(k);
            }
        }
        let n = self.values.len();
        let values = &self.values;
        let found = if n <= DICT_SCAN {
            (0..n).find(|&i| values.value(i) == b).map(|i| i as i32)
        } else {
            let eq = |&k: &i32| values.value(k as usize) == b;
            self.index.find(text_hash(b), eq).copied()
        };
        let key = match found {
            Some(k) => k,
            None => self.add(b)?,
        };
        self.last = Some(key);
        Some(key)
    }

    /// Adds a value that is not in the dictionary yet.
    #[cold]
    fn add(&mut self, b: &[u8]) -> Option<i32> {
        let n = self.values.len();
        let k = i32::try_from(n).ok()?;
        self.values.bytes.extend_from_slice(b);
        if !self.values.end() {
            return None;
        }
        if n + 1 > DICT_SCAN {
            let values = &self.values;
            let rehash = |&k: &i32| text_hash(values.value(k as usize));
            if self.index.is_empty() {
                for i in 0..n as i32 {
                    self.index.insert_unique(rehash(&i), i, rehash);
                }
            }
            self.index.insert_unique(text_hash(b), k, rehash);
        }
        Some(k)
    }

    /// The key of an address's text.
    #[inline]
    fn addr_key(&mut self, a: IpAddr) -> Option<i32> {
        let mut text = std::mem::take(&mut self.scratch);
        text.clear();
        push_addr(&mut text, a);
        let key = self.key(&text);
        self.scratch = text;
        key
    }
}

/// The values of one column of a batch, by type.
enum Data {
    I64(Vec<i64>),
    I32(Vec<i32>),
    Bool(Vec<bool>),
    F64(Vec<f64>),
    Ts(Vec<i64>),
    Utf8(Text),
    Dict(Dict),
    /// Where each row's list ends in `items` (offsets starting with 0), and the items.
    List(Vec<i32>, Text),
}

/// One column of a batch being built.
struct Col {
    name: &'static str,
    nullable: bool,
    data: Data,
    /// Whether each row has a value (nullable columns only).
    valid: Vec<bool>,
}

impl Col {
    fn new(column: &Column, rows: usize) -> Col {
        let data = match column.ty {
            ColType::Int64 => Data::I64(Vec::with_capacity(rows)),
            ColType::Int32 => Data::I32(Vec::with_capacity(rows)),
            ColType::Bool => Data::Bool(Vec::with_capacity(rows)),
            ColType::Float64 => Data::F64(Vec::with_capacity(rows)),
            ColType::TimestampUs => Data::Ts(Vec::with_capacity(rows)),
            // Room for values of 16 bytes (an address) to start with.
            ColType::Utf8 => Data::Utf8(Text::with_capacity(rows, rows * 16)),
            ColType::DictUtf8 => Data::Dict(Dict::new(rows)),
            ColType::ListUtf8 => {
                let mut ends = Vec::with_capacity(rows + 1);
                ends.push(0);
                Data::List(ends, Text::with_capacity(rows, rows * 16))
            }
        };
        Col {
            name: column.name,
            nullable: column.nullable,
            data,
            valid: Vec::with_capacity(if column.nullable { rows } else { 0 }),
        }
    }

    /// The column as an Arrow array.
    fn finish(self) -> Result<ArrayRef, ArrowError> {
        let nulls = match self.valid.contains(&false) {
            true => Some(NullBuffer::from(self.valid)),
            false => None,
        };
        Ok(match self.data {
            Data::I64(v) => Arc::new(Int64Array::try_new(v.into(), nulls)?),
            Data::I32(v) => Arc::new(Int32Array::try_new(v.into(), nulls)?),
            Data::F64(v) => Arc::new(Float64Array::try_new(v.into(), nulls)?),
            Data::Ts(v) => Arc::new(
                TimestampMicrosecondArray::try_new(v.into(), nulls)?.with_timezone(TIMEZONE),
            ),
            Data::Bool(v) => {
                if nulls.as_ref().is_some_and(|n| n.len() != v.len()) {
                    return Err(ArrowError::InvalidArgumentError(
                        "booleans and nulls of different lengths".into(),
                    ));
                }
                Arc::new(BooleanArray::new(BooleanBuffer::from(v), nulls))
            }
            Data::Utf8(t) => Arc::new(t.finish(nulls)?),
            Data::Dict(d) => {
                let keys = Int32Array::try_new(d.keys.into(), nulls)?;
                let values = d.values.finish(None)?;
                Arc::new(DictionaryArray::try_new(keys, Arc::new(values))?)
            }
            Data::List(ends, items) => {
                let item = Arc::new(Field::new(LIST_ITEM, DataType::Utf8, false));
                // Ends start at 0 and never decrease (see `RowWriter::opt_list`).
                let ends = OffsetBuffer::new(ends.into());
                let items = Arc::new(items.finish(None)?);
                Arc::new(ListArray::try_new(item, ends, items, nulls)?)
            }
        })
    }
}

/// The columns of one table's batch being built, made from its declaration.
pub(crate) struct Builders {
    spec: &'static TableSpec,
    schema: SchemaRef,
    cols: Vec<Col>,
    /// Rows a batch is made for (the columns' initial capacity).
    capacity: usize,
    rows: usize,
}

impl Builders {
    /// Builders for every column of `spec`, each with room for `capacity` rows.
    pub(crate) fn new(spec: &'static TableSpec, capacity: usize) -> Builders {
        Builders {
            spec,
            schema: arrow_schema(spec),
            cols: Builders::columns(spec, capacity),
            capacity,
            rows: 0,
        }
    }

    fn columns(spec: &'static TableSpec, capacity: usize) -> Vec<Col> {
        spec.columns.iter().map(|c| Col::new(c, capacity)).collect()
    }

    /// Rows appended since the last [`Builders::finish`].
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one row. On error the columns are left part-written: the table's
    /// writer stops.
    #[inline]
    pub(crate) fn append<R: Row + ?Sized>(&mut self, row: &R) -> Result<(), Error> {
        let mut w = RowWriter {
            cols: &mut self.cols,
            at: 0,
            check_names: self.rows == 0,
            error: None,
        };
        row.append(&mut w);
        let (at, error) = (w.at, w.error);
        if let Some((index, column, problem)) = error {
            return Err(Error::Row {
                table: self.spec.name,
                index,
                column,
                problem,
            });
        }
        if at != self.cols.len() {
            return Err(Error::Row {
                table: self.spec.name,
                index: at,
                column: self.spec.columns.get(at).map_or("", |c| c.name),
                problem: RowMismatch::Missing,
            });
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows appended so far as a record batch; the builders start again, empty.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch, Error> {
        let table = self.spec.name;
        let arrow = |source| Error::Arrow { table, source };
        // The columns' buffers become the arrays' (no copy); new ones of the full size
        // follow, rather than buffers grown by doubling through the next batch.
        let fresh = Builders::columns(self.spec, self.capacity);
        let cols = std::mem::replace(&mut self.cols, fresh);
        self.rows = 0;
        let columns = cols
            .into_iter()
            .map(Col::finish)
            .collect::<Result<Vec<ArrayRef>, ArrowError>>()
            .map_err(arrow)?;
        RecordBatch::try_new(self.schema.clone(), columns).map_err(arrow)
    }
}

/// Where a [`Row`] writes its values: the next column of its table.
///
/// [`Row::append`] makes one call per column, in declaration order. Each call names
/// the column and gives a value of a kind the column's [`ColType`] accepts; the
/// conversions of the Parquet contract happen here (nanoseconds floored to
/// microseconds, unsigned counters saturated to `i64`, addresses formatted as text):
///
/// | call | columns |
/// |---|---|
/// | [`RowWriter::i64`], [`RowWriter::count`] (u64, saturating) | `Int64` |
/// | [`RowWriter::i32`] (anything `Into<i32>`: u8, u16, i16, ...) | `Int32` |
/// | [`RowWriter::bool`] | `Bool` |
/// | [`RowWriter::f64`] | `Float64` |
/// | [`RowWriter::ts_ns`] (ns since the epoch, floored to µs) | `TimestampUs` |
/// | [`RowWriter::str`], [`RowWriter::addr`] | `Utf8`, `DictUtf8` |
/// | [`RowWriter::strs`], [`RowWriter::addrs`] | `ListUtf8` |
/// | [`RowWriter::null`] | any nullable column |
///
/// and an `opt_` variant of each taking an `Option` (null when `None`).
///
/// # What is checked
///
/// Every call is checked against the declared column: its type, and that a null goes
/// only to a nullable column; a row must give exactly one value per column. The column
/// names are compared with the declaration on the first row of every batch (a string
/// comparison each, and a row's calls are the same code for every row). A row that does
/// not match its declaration is a bug of the row type: the table's writer stops with
/// [`Error::Row`], naming the column; nothing panics and no file is written with a
/// wrong type. A batch's text over 2 GiB (Arrow's 32-bit offsets) is
/// [`RowMismatch::Overflow`].
pub struct RowWriter<'a> {
    cols: &'a mut [Col],
    at: usize,
    check_names: bool,
    /// The first mismatch: column index, its name, what was wrong.
    error: Option<(usize, &'static str, RowMismatch)>,
}

impl RowWriter<'_> {
    /// The next column, if `name` and the nullability fit it (recording whether the
    /// row has a value in it); records the mismatch otherwise.
    #[inline(always)]
    fn next(&mut self, name: &'static str, null: bool) -> Option<&mut Col> {
        let at = self.at;
        self.at += 1;
        let fits = match self.cols.get(at) {
            Some(col) => (!self.check_names || col.name == name) && (!null || col.nullable),
            None => false,
        };
        if !fits {
            self.mismatch(at, name, null);
            return None;
        }
        let col = self.cols.get_mut(at)?;
        if col.nullable {
            col.valid.push(!null);
        }
        Some(col)
    }

    /// Records why column `at` does not fit.
    #[cold]
    #[inline(never)]
    fn mismatch(&mut self, at: usize, name: &'static str, null: bool) {
        let error = match self.cols.get(at) {
            None => (at, name, RowMismatch::Extra),
            Some(col) if col.name != name && self.check_names => {
                (at, col.name, RowMismatch::Name { given: name })
            }
            Some(col) => {
                debug_assert!(null);
                (at, col.name, RowMismatch::Null)
            }
        };
        self.error.get_or_insert(error);
    }

    /// Records that the last column was given a value of another kind than its type,
    /// or (`Overflow`) text that does not fit a batch.
    #[cold]
    #[inline(never)]
    fn wrong(&mut self, problem: RowMismatch) {
        let at = self.at - 1;
        let column = self.cols.get(at).map_or("", |c| c.name);
        self.error.get_or_insert((at, column, problem));
    }

    /// A null in a nullable column of any type.
    pub fn null(&mut self, name: &'static str) {
        let Some(col) = self.next(name, true) else {
            return;
        };
        match &mut col.data {
            Data::I64(v) | Data::Ts(v) => v.push(0),
            Data::I32(v) => v.push(0),
            Data::Bool(v) => v.push(false),
            Data::F64(v) => v.push(0.0),
            // No text is added: nothing can overflow.
            Data::Utf8(t) => {
                let _ = t.end();
            }
            Data::Dict(d) => d.keys.push(0),
            Data::List(ends, _) => ends.push(ends.last().copied().unwrap_or(0)),
        }
    }

    /// An `Int64` value.
    #[inline(always)]
    pub fn i64(&mut self, name: &'static str, v: i64) {
        self.opt_i64(name, Some(v));
    }

    /// An `Int64` value or null.
    #[inline(always)]
    pub fn opt_i64(&mut self, name: &'static str, v: Option<i64>) {
        let fits = match self.next(name, v.is_none()) {
            Some(Col {
                data: Data::I64(x), ..
            }) => {
                x.push(v.unwrap_or(0));
                true
            }
            Some(_) => false,
            None => true,
        };
        if !fits {
            self.wrong(RowMismatch::Type { given: "i64" });
        }
    }

    /// A counter in an `Int64` column, saturating at `i64::MAX`.
    #[inline(always)]
    pub fn count(&mut self, name: &'static str, v: u64) {
        self.i64(name, count(v));
    }

    /// A counter or null in an `Int64` column, saturating at `i64::MAX`.
    #[inline(always)]
    pub fn opt_count(&mut self, name: &'static str, v: Option<u64>) {
        self.opt_i64(name, v.map(count));
    }

    /// An `Int32` value (ports, VLAN IDs, protocol numbers: `u8`, `u16`, `i16`, ...).
    #[inline(always)]
    pub fn i32(&mut self, name: &'static str, v: impl Into<i32>) {
        self.opt_i32(name, Some(v.into()));
    }

    /// An `Int32` value or null.
    #[inline(always)]
    pub fn opt_i32<T: Into<i32>>(&mut self, name: &'static str, v: Option<T>) {
        let v = v.map(Into::into);
        let fits = match self.next(name, v.is_none()) {
            Some(Col {
                data: Data::I32(x), ..
            }) => {
                x.push(v.unwrap_or(0));
                true
            }
            Some(_) => false,
            None => true,
        };
        if !fits {
            self.wrong(RowMismatch::Type { given: "i32" });
        }
    }

    /// A `Bool` value.
    #[inline(always)]
    pub fn bool(&mut self, name: &'static str, v: bool) {
        self.opt_bool(name, Some(v));
    }

    /// A `Bool` value or null.
    #[inline(always)]
    pub fn opt_bool(&mut self, name: &'static str, v: Option<bool>) {
        let fits = match self.next(name, v.is_none()) {
            Some(Col {
                data: Data::Bool(x),
                ..
            }) => {
                x.push(v.unwrap_or(false));
                true
            }
            Some(_) => false,
            None => true,
        };
        if !fits {
            self.wrong(RowMismatch::Type { given: "bool" });
        }
    }

    /// A `Float64` value.
    #[inline(always)]
    pub fn f64(&mut self, name: &'static str, v: f64) {
        self.opt_f64(name, Some(v));
    }

    /// A `Float64` value or null.
    #[inline(always)]
    pub fn opt_f64(&mut self, name: &'static str, v: Option<f64>) {
        let fits = match self.next(name, v.is_none()) {
            Some(Col {
                data: Data::F64(x), ..
            }) => {
                x.push(v.unwrap_or(0.0));
                true
            }
            Some(_) => false,
            None => true,
        };
        if !fits {
            self.wrong(RowMismatch::Type { given: "f64" });
        }
    }

    /// A time in a `TimestampUs` column, given in nanoseconds since the Unix epoch and
    /// floored to the microsecond ([`ns_to_us`]).
    #[inline(always)]
    pub fn ts_ns(&mut self, name: &'static str, ns: i64) {
        self.opt_ts_ns(name, Some(ns));
    }

    /// A time (ns since the Unix epoch, floored to µs) or null.
    #[inline(always)]
    pub fn opt_ts_ns(&mut self, name: &'static str, ns: Option<i64>) {
        let fits = match self.next(name, ns.is_none()) {
            Some(Col {
                data: Data::Ts(x), ..
            }) => {
                x.push(ns.map_or(0, ns_to_us));
                true
            }
            Some(_) => false,
            None => true,
        };
        if !fits {
            self.wrong(RowMismatch::Type { given: "timestamp" });
        }
    }

    /// Text in a `Utf8` or `DictUtf8` column.
    #[inline]
    pub fn str(&mut self, name: &'static str, v: &str) {
        self.opt_str(name, Some(v));
    }

    /// Text or null in a `Utf8` or `DictUtf8` column.
    #[inline]
    pub fn opt_str(&mut self, name: &'static str, v: Option<&str>) {
        let problem = match self.next(name, v.is_none()) {
            Some(Col {
                data: Data::Utf8(t),
                ..
            }) => (!t.push(v.unwrap_or_default())).then_some(RowMismatch::Overflow),
            Some(Col {
                data: Data::Dict(d),
                ..
            }) => match v {
                Some(v) => match d.key(v.as_bytes()) {
                    Some(k) => {
                        d.keys.push(k);
                        None
                    }
                    None => {
                        d.keys.push(0);
                        Some(RowMismatch::Overflow)
                    }
                },
                None => {
                    d.keys.push(0);
                    None
                }
            },
            Some(_) => Some(RowMismatch::Type { given: "text" }),
            None => None,
        };
        if let Some(p) = problem {
            self.wrong(p);
        }
    }

    /// An address as text (dotted quad, RFC 5952 for IPv6) in a `Utf8` or `DictUtf8`
    /// column.
    #[inline]
    pub fn addr(&mut self, name: &'static str, v: IpAddr) {
        self.opt_addr(name, Some(v));
    }

    /// An address as text, or null.
    #[inline]
    pub fn opt_addr(&mut self, name: &'static str, v: Option<IpAddr>) {
        let problem = match self.next(name, v.is_none()) {
            // Written straight into the column's text.
            Some(Col {
                data: Data::Utf8(t),
                ..
            }) => {
                if let Some(a) = v {
                    push_addr(&mut t.bytes, a);
                }
                (!t.end()).then_some(RowMismatch::Overflow)
            }
            Some(Col {
                data: Data::Dict(d),
                ..
            }) => {
                let key = match v {
                    Some(a) => d.addr_key(a),
                    None => Some(0),
                };
                d.keys.push(key.unwrap_or(0));
                key.is_none().then_some(RowMismatch::Overflow)
            }
            Some(_) => Some(RowMismatch::Type { given: "address" }),
            None => None,
        };
        if let Some(p) = problem {
            self.wrong(p);
        }
    }

    /// A list of text in a `ListUtf8` column (empty when the iterator is).
    #[inline]
    pub fn strs<S: AsRef<str>>(&mut self, name: &'static str, v: impl IntoIterator<Item = S>) {
        self.opt_strs(name, Some(v));
    }

    /// A list of text, or null, in a `ListUtf8` column.
    pub fn opt_strs<S: AsRef<str>, I: IntoIterator<Item = S>>(
        &mut self,
        name: &'static str,
        v: Option<I>,
    ) {
        self.opt_list(name, v, |items, s| items.push(s.as_ref()), "list of text");
    }

    /// A list of addresses as text (dotted quad, RFC 5952) in a `ListUtf8` column.
    #[inline]
    pub fn addrs(&mut self, name: &'static str, v: impl IntoIterator<Item = IpAddr>) {
        self.opt_addrs(name, Some(v));
    }

    /// A list of addresses as text, or null, in a `ListUtf8` column.
    pub fn opt_addrs<I: IntoIterator<Item = IpAddr>>(&mut self, name: &'static str, v: Option<I>) {
        let push = |items: &mut Text, a: IpAddr| {
            push_addr(&mut items.bytes, a);
            items.end()
        };
        self.opt_list(name, v, push, "list of addresses");
    }

    /// A list (or null) whose items `push` appends to the column's items.
    fn opt_list<T, I: IntoIterator<Item = T>>(
        &mut self,
        name: &'static str,
        v: Option<I>,
        push: impl Fn(&mut Text, T) -> bool,
        given: &'static str,
    ) {
        let problem = match self.next(name, v.is_none()) {
            Some(Col {
                data: Data::List(ends, items),
                ..
            }) => {
                let mut fits = true;
                for item in v.into_iter().flatten() {
                    fits &= push(items, item);
                }
                // Ends never decrease: the items only grow.
                match i32::try_from(items.len()) {
                    Ok(end) if fits => {
                        ends.push(end);
                        None
                    }
                    _ => {
                        ends.push(ends.last().copied().unwrap_or(0));
                        Some(RowMismatch::Overflow)
                    }
                }
            }
            Some(_) => Some(RowMismatch::Type { given }),
            None => None,
        };
        if let Some(p) = problem {
            self.wrong(p);
        }
    }
}

/// Nanoseconds per microsecond.
const NS_PER_US: i64 = 1_000;

/// Converts capture nanoseconds to the contract's microseconds, flooring (so that a
/// time before the epoch stays in the microsecond that contains it).
pub fn ns_to_us(ns: i64) -> i64 {
    ns.div_euclid(NS_PER_US)
}

/// Converts a counter to the contract's signed 64 bits, saturating at `i64::MAX`.
pub fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Every octet value as text followed by a dot, packed little-endian in a `u32`
/// (`"7."`, `"42."`, `"255."`), and the number of those bytes.
const OCTETS: [(u32, u32); 256] = {
    let mut t = [(0u32, 0u32); 256];
    let mut v = 0;
    while v < 256 {
        let (h, d, u) = ((v / 100) as u32, (v / 10 % 10) as u32, (v % 10) as u32);
        let zero = b'0' as u32;
        let dot = b'.' as u32;
        t[v] = if v >= 100 {
            (
                (zero + h) | (zero + d) << 8 | (zero + u) << 16 | dot << 24,
                4,
            )
        } else if v >= 10 {
            ((zero + d) | (zero + u) << 8 | dot << 16, 3)
        } else {
            ((zero + u) | dot << 8, 2)
        };
        v += 1;
    }
    t
};

/// Appends an address as text to `out`: the dotted quad for IPv4, RFC 5952 for IPv6,
/// byte for byte what `IpAddr`'s `Display` writes (a test compares them). Formatted
/// here because this runs twice per flow: `Display` went through the formatting
/// machinery, over a thousand instructions for an IPv6 address.
pub(crate) fn push_addr(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => push_v4(out, a),
        IpAddr::V6(a) => push_v6(out, a),
    }
}

/// The dotted quad, from a digit table: the four octets' text is gathered in one
/// 128-bit word and appended at once (a copy of fixed size, then the extra bytes cut:
/// two moves, where a copy of the address's own length was a call to memcpy).
fn push_v4(out: &mut Vec<u8>, a: Ipv4Addr) {
    let (mut text, mut n) = (0u128, 0u32);
    for octet in a.octets() {
        let (digits, len) = OCTETS[usize::from(octet)];
        text |= u128::from(digits) << (8 * n);
        n += len;
    }
    // `n` counts a dot after the last octet too.
    let end = out.len() + n as usize - 1;
    out.extend_from_slice(&text.to_le_bytes());
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

#[cfg(test)]
mod tests {
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
