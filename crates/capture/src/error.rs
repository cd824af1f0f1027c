//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while opening or reading a capture.
///
/// Every variant's `Display` is one line that names the input and says what was
/// expected; errors found past the file header also give the byte offset (in the
/// decompressed capture) of the record or block at fault. The underlying
/// [`io::Error`], where there is one, is kept as the [`source`](std::error::Error::source)
/// and is not repeated in the message (print the chain, e.g. anyhow's `{:#}`, to see it).
///
/// Errors returned by [`Capture::open`](crate::Capture::open) mean the input is
/// unusable; errors returned by [`Capture::next_record`](crate::Capture::next_record)
/// are mid-file problems: every record returned before stays valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be opened, mapped or read.
    #[error("{}: cannot read input{}", path.display(), at(*offset))]
    Io {
        /// The input's path (or name for a stream).
        path: PathBuf,
        /// Offset in the decompressed capture where reading failed, when past the header.
        offset: Option<u64>,
        /// The operating system's (or the decompressor's) error.
        #[source]
        source: io::Error,
    },
    /// The input holds no bytes at all.
    #[error("{}: empty input, expected a pcap or pcapng capture", path.display())]
    Empty {
        /// The input's path.
        path: PathBuf,
    },
    /// The first bytes are no pcap or pcapng magic number.
    #[error(
        "{}: not a capture: starts with {}, expected pcap magic a1b2c3d4/a1b23c4d (either byte order) or pcapng 0a0d0d0a",
        path.display(),
        Hex(&magic[..usize::from(*len)])
    )]
    NotACapture {
        /// The input's path.
        path: PathBuf,
        /// The first bytes of the (decompressed) input.
        magic: [u8; 4],
        /// How many of `magic` were present (fewer than 4 for a tiny input).
        len: u8,
    },
    /// The file header (pcap global header or first pcapng Section Header Block) is unusable.
    #[error("{}: bad {} header at byte {offset}: {reason}", path.display(), format)]
    BadHeader {
        /// The input's path.
        path: PathBuf,
        /// `"pcap"` or `"pcapng"`.
        format: &'static str,
        /// Offset of the header.
        offset: u64,
        /// What was expected.
        reason: &'static str,
    },
    /// The input ends inside a record or block.
    ///
    /// `offset` is where that record (or block) starts; `needed` is its full length
    /// as its header gives it (or the header length when the header itself is cut),
    /// `available` the bytes present from `offset` on.
    #[error(
        "{}: cut short: {what} at byte {offset} needs {needed} bytes, only {available} present",
        path.display()
    )]
    Truncated {
        /// The input's path.
        path: PathBuf,
        /// Offset of the incomplete record or block.
        offset: u64,
        /// What was being read (e.g. `"pcap record header"`).
        what: &'static str,
        /// Bytes the record or block needs.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// A record or block is malformed; nothing after it can be trusted.
    #[error("{}: corrupt {what} at byte {offset}: {reason} (value {value})", path.display())]
    Corrupt {
        /// The input's path.
        path: PathBuf,
        /// Offset of the record or block.
        offset: u64,
        /// What was being read (e.g. `"pcapng block"`).
        what: &'static str,
        /// What was expected.
        reason: &'static str,
        /// The offending number (a length, an interface id, ...).
        value: u64,
    },
}

impl Error {
    /// Byte offset (in the decompressed capture) where the problem was found, if known.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::Io { offset, .. } => *offset,
            Error::Empty { .. } | Error::NotACapture { .. } => None,
            Error::BadHeader { offset, .. }
            | Error::Truncated { offset, .. }
            | Error::Corrupt { offset, .. } => Some(*offset),
        }
    }

    /// The input's path (or stream name) the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Error::Io { path, .. }
            | Error::Empty { path }
            | Error::NotACapture { path, .. }
            | Error::BadHeader { path, .. }
            | Error::Truncated { path, .. }
            | Error::Corrupt { path, .. } => path,
        }
    }
}

fn at(offset: Option<u64>) -> String {
    match offset {
        Some(o) => format!(" at byte {o}"),
        None => String::new(),
    }
}

struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(nothing)");
        }
        f.write_str("0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
