//! Byte sources: a memory map of a regular file, or a bounded, reusable buffer refilled
//! from any [`Read`] (a file read with read(2), stdin, a gzip or zstd decoder).
//!
//! The parser asks [`Input::fill`] for `n` bytes at the current position, looks at them
//! with [`Input::window`], then [`Input::consume`]s what it used — the borrow / consume /
//! refill cycle of pcap-parser. The stream buffer is compacted only inside `fill`, so a
//! slice handed out for a record stays valid until the next call to `fill`.

use std::io::{self, Read};

use memmap2::Mmap;

/// Size of one read(2) on the streaming path, and the buffer's initial size.
pub(crate) const CHUNK: usize = 4 << 20;

pub(crate) enum Input {
    Map {
        map: Mmap,
        pos: usize,
        /// End of the prefix whose page tables were populated ahead of the reader
        /// (`usize::MAX` once the kernel refused: then pages fault in one by one).
        populated: usize,
    },
    /// A reusable buffer refilled from a reader (read(2) on a file, stdin, a decoder).
    Stream(Stream),
}

pub(crate) struct Stream {
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Absolute offset of `buf[start]`.
    base: u64,
}

impl Input {
    pub(crate) fn map(map: Mmap) -> Input {
        Input::Map {
            map,
            pos: 0,
            populated: 0,
        }
    }

    /// A stream whose first bytes were already read into `prefix` (magic-number sniffing).
    pub(crate) fn stream(prefix: &[u8], reader: Box<dyn Read + Send>) -> Input {
        let mut buf = vec![0u8; CHUNK.max(prefix.len())];
        buf[..prefix.len()].copy_from_slice(prefix);
        Input::Stream(Stream {
            reader,
            buf,
            start: 0,
            end: prefix.len(),
            eof: false,
            base: 0,
        })
    }

    /// Absolute offset of the current position.
    #[inline]
    pub(crate) fn position(&self) -> u64 {
        match self {
            Input::Map { pos, .. } => *pos as u64,
            Input::Stream(s) => s.base,
        }
    }

    /// The bytes available from the current position (after `fill`, at least the
    /// number it returned).
    #[inline]
    pub(crate) fn window(&self) -> &[u8] {
        match self {
            Input::Map { map, pos, .. } => map.get(*pos..).unwrap_or(&[]),
            Input::Stream(s) => &s.buf[s.start..s.end],
        }
    }

    /// Makes at least `n` bytes available from the current position, reading and
    /// compacting as needed. Returns the number available: less than `n` only at the
    /// end of input. `n` must already be bounded by the caller (it is the size the
    /// buffer may grow to).
    #[inline]
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<usize> {
        match self {
            Input::Map { map, pos, .. } => Ok(map.len().saturating_sub(*pos)),
            Input::Stream(s) => {
                if s.end - s.start >= n {
                    return Ok(s.end - s.start);
                }
                s.refill(n)
            }
        }
    }

    /// Advances the position by `n` bytes (at most the bytes available).
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        match self {
            Input::Map {
                map,
                pos,
                populated,
            } => {
                *pos = (*pos + n).min(map.len());
                if *pos + POPULATE_AHEAD > *populated && *populated < map.len() {
                    populate(map, populated);
                }
            }
            Input::Stream(s) => {
                let n = n.min(s.end - s.start);
                s.start += n;
                s.base += n as u64;
            }
        }
    }

    /// The capacity of the stream buffer (bounded-memory checks in tests).
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        match self {
            Input::Map { .. } => 0,
            Input::Stream(s) => s.buf.len(),
        }
    }
}

/// How far ahead of the reader the map's page tables are populated, and in what steps.
const POPULATE_AHEAD: usize = 8 << 20;
const POPULATE_STEP: usize = 16 << 20;

/// Maps the next [`POPULATE_STEP`] bytes of the file's pages in one call
/// (`MADV_POPULATE_READ`, Linux 5.14) instead of one page fault per few pages: the
/// reader then finds them mapped. Only a hint: where the kernel refuses, it stops trying.
#[cold]
fn populate(map: &Mmap, populated: &mut usize) {
    #[cfg(target_os = "linux")]
    {
        let len = POPULATE_STEP.min(map.len() - *populated);
        match map.advise_range(memmap2::Advice::PopulateRead, *populated, len) {
            Ok(()) => *populated += len,
            Err(_) => *populated = usize::MAX,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = map;
        *populated = usize::MAX;
    }
}

impl Stream {
    #[cold]
    fn refill(&mut self, n: usize) -> io::Result<usize> {
        // Compact when the wanted bytes would run past the end of the buffer.
        if self.buf.len() - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < n {
            // Only for records larger than a chunk; the caller bounds `n`.
            self.buf.resize(n, 0);
        }
        while self.end - self.start < n && !self.eof {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k.min(self.buf.len() - self.end),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }
}

/// Reads until `buf` is full or the reader ends; returns the number of bytes read.
pub(crate) fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
