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
    /// The time-bin width given to [`crate::Output::create`] is not positive.
    #[error("invalid time-bin width {0} ns: it must be positive")]
    InvalidBinWidth(i64),
    /// A value could not be serialized as JSON.
    #[error("cannot serialize {path} as JSON")]
    Json {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
}
