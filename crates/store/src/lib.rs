//! Arrow schemas, Parquet writers, the run manifest and the schema reference of streamscope.
//!
//! This crate knows tables, not packets: the pipeline hands it finished rows
//! ([`FlowRow`], [`BinRow`]) and it writes them as Parquet files that DuckDB, pyarrow,
//! Polars and Spark all open with the same types.
//!
//! - [`schema`]: the single source of truth for every table's columns — the Arrow schema,
//!   `streamscope schema` and `docs/schema.md` are all generated from [`tables()`].
//! - [`Output`]: one run's table writers. Rows are appended to reused Arrow builders; full
//!   batches go to one writer thread per table, so the caller never waits on compression.
//!   Files are written under a temporary name and renamed only when every table is
//!   complete; on error, abort or drop the temporary files are removed.
//! - [`manifest`]: the `run.json` document and an atomic JSON writer.
//!
//! # The Parquet contract
//!
//! Timestamps are `timestamp[us, UTC]` (Spark, Hive and Trino reject nanosecond Parquet
//! timestamps; the pipeline's nanoseconds are floored to microseconds), ids and 64-bit
//! counters are signed `int64` (Java engines read unsigned 64-bit as a decimal), small
//! integers are `int32`, low-cardinality strings are dictionary-encoded, addresses are text
//! in canonical form (RFC 5952 for IPv6), and a value that does not apply is null, never a
//! magic zero. Files are zstd-compressed; integer and timestamp columns are
//! `DELTA_BINARY_PACKED` (see `writer::writer_properties`); the columns rows are ordered
//! by carry min/max statistics per row group and page ([`TableSpec::statistics`]).
//!
//! # Panics
//!
//! No function of this crate panics on any row value: out-of-range counters saturate at
//! `i64::MAX` and timestamp arithmetic is done with floor division on `i64`.

#![forbid(unsafe_code)]

mod error;
pub mod manifest;
mod rows;
pub mod schema;
mod writer;

pub use error::Error;
pub use manifest::{
    rfc3339_ns, write_json_atomic, Counts, InputEntry, RunManifest, TableEntry, Timings,
};
pub use rows::{BinRow, FlowRow, TcpFacts};
pub use schema::{
    arrow_schema, schema_markdown, schema_text, tables, ColType, Column, TableSpec, FLOWS,
    FLOW_BINS, SCHEMA_VERSION,
};
pub use writer::{Output, OutputSummary, TableSummary, BATCH_ROWS, ROW_GROUP_ROWS};

/// Name of the tool as written in `run.json` and in each file's `created_by`.
pub const TOOL_NAME: &str = "streamscope";

/// Version of the tool as written in `run.json` and in each file's `created_by`.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
