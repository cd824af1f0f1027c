//! Arrow schemas, Parquet writers, the run manifest and the schema reference of streamscope.
//!
//! This crate knows tables, not packets: the pipeline hands it finished rows and it
//! writes them as Parquet files that DuckDB, pyarrow, Polars and Spark all open with the
//! same types.
//!
//! - [`schema`]: the single source of truth for every table: its columns with their
//!   types, nullability and meaning, its row order and the columns with statistics
//!   ([`TableSpec`]). The Arrow schema, the writer's Arrow builders and Parquet
//!   properties, `streamscope schema` (text and `--json`) and `docs/schema.md` are all
//!   derived from [`tables()`].
//! - [`Row`]: a table's row type writes its values, column by column, through a
//!   [`RowWriter`] that checks them against the declaration ([`FlowRow`], [`BinRow`],
//!   [`DnsRecord`]).
//! - [`Output`]: one run's table writers, for the tables the caller chooses
//!   ([`Table`]). Rows are pushed with one generic [`Output::push`]; full batches go to
//!   one writer thread per table, which builds Arrow arrays and encodes them through
//!   parquet-rs's `ArrowColumnWriter`s, so the caller never waits on compression.
//!   Files are written under a temporary name and renamed only when every table is
//!   complete; on error, abort or drop the temporary files are removed.
//! - [`manifest`]: the `run.json` document and an atomic JSON writer.
//!
//! # Adding a table
//!
//! Declare it in [`schema`] (a `TableSpec` constant listed in [`tables()`]; regenerate
//! `docs/schema.md`), write a row type that implements [`Row`] with one [`RowWriter`]
//! call per column, and give [`Table::new`] of it to [`Output::create`]. Rows given to
//! [`Output::push`] move to the table's writer thread (their text owned or static, and
//! freed there); rows that borrow their text go through [`Output::push_ref`], which
//! builds them on the caller's thread.
//!
//! # The Parquet contract
//!
//! Timestamps are `timestamp[us, UTC]` (Spark, Hive and Trino reject nanosecond Parquet
//! timestamps; the pipeline's nanoseconds are floored to microseconds), ids and 64-bit
//! counters are signed `int64` (Java engines read unsigned 64-bit as a decimal), small
//! integers are `int32`, low-cardinality strings are dictionary-encoded, addresses are text
//! in canonical form (RFC 5952 for IPv6), lists are `list<string>` with non-null items,
//! and a value that does not apply is null, never a magic zero. Files are
//! zstd-compressed; integer and timestamp columns are `DELTA_BINARY_PACKED` (see
//! `writer::writer_properties`); the columns rows are ordered by carry min/max
//! statistics per row group and page ([`TableSpec::statistics`]). Every byte of the
//! files is written by parquet-rs through its public API.
//!
//! # Panics
//!
//! No function of this crate panics on any row value: out-of-range counters saturate at
//! `i64::MAX`, timestamp arithmetic is done with floor division on `i64`, and a row that
//! does not match its table's declaration is an error ([`Error::Row`]).

#![forbid(unsafe_code)]

mod error;
pub mod manifest;
mod row;
mod rows;
pub mod schema;
mod writer;

pub use error::{Error, RowMismatch};
pub use manifest::{
    rfc3339_ns, write_json_atomic, Counts, InputEntry, RunManifest, TableEntry, Timings,
};
pub use row::{count, ns_to_us, Row, RowWriter};
pub use rows::{
    BinMedia, BinRow, ChannelSessionRow, DnsRecord, FlowRow, HttpRow, MulticastEventRow,
    RtpStreamRow, SegmentFacts, SegmentRow, TcpFacts, TlsAppFacts, TsPidRow, TsStreamRow,
    TS_TR101290_COLUMNS,
};
pub use schema::{
    arrow_schema, schema_markdown, schema_text, tables, ColType, Column, TableSpec,
    CHANNEL_SESSIONS, DNS, FLOWS, FLOW_BINS, HTTP, MULTICAST_EVENTS, RTP_STREAMS, SCHEMA_VERSION,
    SEGMENTS, TS_PIDS, TS_STREAMS,
};
pub use writer::{
    Output, OutputSummary, Table, TableSummary, BATCH_ROWS, ROW_GROUP_ROWS, TILE_ROWS,
};

/// Name of the tool as written in `run.json` and in each file's `created_by`.
pub const TOOL_NAME: &str = "streamscope";

/// Version of the tool as written in `run.json` and in each file's `created_by`.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
