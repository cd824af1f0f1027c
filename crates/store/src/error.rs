//! The error type of this crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while writing a run's output.
///
/// I/O errors keep the [`io::Error`] as their source and name the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The output folder could not be created.
    #[error("cannot create output folder {path}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file in the output folder could not be created, written, synced or renamed.
    #[error("cannot {op} {path}")]
    Io {
        /// What was being done: "create", "write", "sync", "rename", ...
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The Parquet encoder failed.
    #[error("cannot write table {table}")]
    Parquet {
        /// The table being written.
        table: &'static str,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// A batch of rows did not match the table's Arrow schema (a bug in this crate).
    #[error("cannot build a batch for table {table}")]
    Arrow {
        /// The table being written.
        table: &'static str,
        /// The underlying error.
        source: arrow_schema::ArrowError,
    },
    /// A table's writer thread stopped after an error that was already reported, or
    /// panicked.
    #[error("the writer of table {table} has stopped")]
    WriterStopped {
        /// The table concerned.
        table: &'static str,
    },
    /// The writer was aborted before the table was complete.
    #[error("the writer of table {table} was aborted")]
    Aborted {
        /// The table concerned.
        table: &'static str,
    },
    /// The time-bin width given to [`crate::Table::flow_bins`] is not positive.
    #[error("invalid time-bin width {0} ns: it must be positive")]
    InvalidBinWidth(i64),
    /// A row did not match its table's declaration (a bug in its [`crate::Row`] impl).
    #[error("a row of table {table} does not match column {index} ({column}): {problem}")]
    Row {
        /// The table.
        table: &'static str,
        /// Position of the column in the table's declaration.
        index: usize,
        /// The column's declared name (for [`RowMismatch::Extra`], the name the row gave).
        column: &'static str,
        /// What was wrong.
        problem: RowMismatch,
    },
    /// A row was pushed to a table this run does not write.
    #[error("table {table} is not written by this run")]
    NotWritten {
        /// The table.
        table: &'static str,
    },
    /// The same table was given twice to [`crate::Output::create`].
    #[error("table {table} is given twice")]
    DuplicateTable {
        /// The table.
        table: &'static str,
    },
    /// A value could not be serialized as JSON.
    #[error("cannot serialize {path} as JSON")]
    Json {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
}

/// How a row failed to match its table's declaration ([`Error::Row`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowMismatch {
    /// The row named another column here.
    Name {
        /// The name the row gave.
        given: &'static str,
    },
    /// The row gave a value of another kind than the column's type.
    Type {
        /// What the row gave: `"i64"`, `"text"`, ...
        given: &'static str,
    },
    /// The row gave a null for a column that is not nullable.
    Null,
    /// The row ended before this column.
    Missing,
    /// The row gave more values than the table has columns.
    Extra,
    /// The text of a batch outgrew Arrow's 32-bit offsets (over 2 GiB in 8,192 rows).
    Overflow,
}

impl std::fmt::Display for RowMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowMismatch::Name { given } => write!(f, "the row names it {given}"),
            RowMismatch::Type { given } => write!(f, "the row gives it a value of type {given}"),
            RowMismatch::Null => f.write_str("the row gives it a null, and it is not nullable"),
            RowMismatch::Missing => f.write_str("the row gives no value for it"),
            RowMismatch::Extra => f.write_str("the row gives more values than there are columns"),
            RowMismatch::Overflow => f.write_str("the batch's text is over 2 GiB"),
        }
    }
}
