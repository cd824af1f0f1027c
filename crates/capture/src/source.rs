//! Byte sources: a memory map of a regular file, or a bounded, reusable buffer refilled
//! from any [`Read`] (a file read with read(2), stdin, a gzip or zstd decoder).
//!
//! The parser asks [`Input::fill`] for `n` bytes at the current position, looks at them
//! with [`Input::window`], then [`Input::consume`]s what it used — the borrow / consume /
//! refill cycle of pcap-parser. The stream buffer is compacted only inside `fill`, so a
//! slice handed out for a record stays valid until the next call to `fill`.

use std::io::{self, Read};
use std::sync::Arc;

use memmap2::Mmap;
use streamscope_memory::{self as memory, AheadThread};

/// Size of one read(2) on the streaming path, and the buffer's initial size.
pub(crate) const CHUNK: usize = 4 << 20;

pub(crate) enum Input {
    Map {
        map: Arc<Mmap>,
        pos: usize,
        /// End of the prefix whose page tables were populated ahead of the reader
        /// (`usize::MAX` once the kernel refused: then pages fault in one by one), when
        /// the reader populates them itself.
        populated: usize,
        /// End of the prefix whose cache lines the CPU was asked to load.
        prefetched: usize,
        /// The thread populating them instead, started at the first record.
        ahead: Ahead,
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
    /// A mapped file; with a budget of two threads or more its pages are populated
    /// ahead of the reader by a thread of its own.
    pub(crate) fn map(map: Mmap, threads: usize) -> Input {
        Input::Map {
            map: Arc::new(map),
            pos: 0,
            populated: 0,
            prefetched: 0,
            ahead: if threads >= 2 {
                Ahead::NotStarted
            } else {
                Ahead::Inline
            },
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

    /// The whole map (empty for a stream): records of a map are cut from it by absolute
    /// offsets.
    #[inline]
    pub(crate) fn whole(&self) -> &[u8] {
        match self {
            Input::Map { map, .. } => map,
            Input::Stream(_) => &[],
        }
    }

    /// Makes at least `n` bytes available from the current position, reading and
    /// compacting as needed. Returns the number available: less than `n` only at the
    /// end of input. `n` must already be bounded by the caller (it is the size the
    /// buffer may grow to).
    #[inline]
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<usize> {
        match self {
            Input::Map {
                map, pos, ahead, ..
            } => {
                if let Ahead::NotStarted = ahead {
                    *ahead = Populator::start(map);
                }
                Ok(map.len().saturating_sub(*pos))
            }
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
                prefetched,
                ahead,
            } => {
                *pos = (*pos + n).min(map.len());
                // Every cache line up to PREFETCH_AHEAD past the reader, each once: the
                // loads are then in flight together, as in a copy, instead of one at a
                // time as the parser reaches each record.
                let want = (*pos + PREFETCH_AHEAD).min(map.len());
                *prefetched = (*prefetched).max(*pos & !(CACHE_LINE - 1));
                while *prefetched < want {
                    prefetch(map.as_ptr().wrapping_add(*prefetched));
                    *prefetched += CACHE_LINE;
                }
                // Then a few lines more, up to PREFETCH_BANK past the reader (see there).
                let bank = (*pos + PREFETCH_BANK).min(map.len());
                let mut extra = PREFETCH_EXTRA;
                while extra > 0 && *prefetched < bank {
                    prefetch(map.as_ptr().wrapping_add(*prefetched));
                    *prefetched += CACHE_LINE;
                    extra -= 1;
                }
                match ahead {
                    Ahead::Running(p) => p.reader_at(*pos),
                    Ahead::NotStarted | Ahead::Inline => {
                        if *pos + POPULATE_AHEAD > *populated && *populated < map.len() {
                            populate(map, populated);
                        }
                    }
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

/// How far ahead of the reader, in bytes, the CPU is asked to load the map's data,
/// line by line. The parser touches a line or two of each record, one record after the
/// other, so by itself it has one miss to memory in flight at a time and the hardware
/// prefetchers, which stop at every 4 KiB page, do not cover that. On the streaming
/// benchmark capture (1 GB, 2.2 M packets, from the page cache) asking for every line
/// one page ahead halved the time of `analyze` (0.40 s to 0.20 s, against 0.15 s for
/// `cat`), where one line per record 2 KiB ahead had left most of the misses.
const PREFETCH_AHEAD: usize = 4096;
/// How far past the reader the loads may run when the reader is slow, and how many
/// lines past [`PREFETCH_AHEAD`] each record asks for until they reach it. Where records
/// are small and their work long (one TS packet per datagram, each through the MPEG-TS
/// analyser), the loads run ahead of the page-ahead window and bank the lines that the
/// next stretch of large records with little work each (a burst of a segment download)
/// would otherwise wait for, one page ahead, with the CPU's line-fill buffers full. The
/// bank stays well inside a core's L2 cache. More lines per record than this, and the
/// small records' stretch itself waits for the bank's loads.
const PREFETCH_BANK: usize = 256 << 10;
const PREFETCH_EXTRA: usize = 8;
/// Cache line size of the CPUs this matters on (x86-64).
const CACHE_LINE: usize = 64;

/// Asks the CPU to start loading the cache line at `p` (a hint: it never faults, whatever
/// the address). The hardware prefetcher stops at every 4 KiB page of the map; this keeps
/// the records a few cache lines ahead of the reader loaded.
#[inline(always)]
fn prefetch(p: *const u8) {
    // SAFETY: PREFETCHT0 reads no memory architecturally and cannot fault; SSE, which
    // the intrinsic requires, is part of every x86-64 CPU.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// How far ahead of the reader the map's page tables are populated, and in what steps,
/// when the reader does it itself.
const POPULATE_AHEAD: usize = 8 << 20;
const POPULATE_STEP: usize = 16 << 20;
/// How far ahead of the reader the populating thread may go: it also reads the pages in
/// when they are not cached, and a capture may be far larger than memory.
const THREAD_AHEAD: usize = 256 << 20;

/// How far behind the reader the populating thread unmaps the file's pages again: the
/// records there were read (a record's bytes are copied where they are kept), and
/// taking 262 144 page-table entries down per GB at the end, on the reader's CPU, was a
/// tenth of a fast run.
const RELEASE_BEHIND: usize = 32 << 20;

/// Who maps the file's pages ahead of the reader.
pub(crate) enum Ahead {
    /// Nothing read yet: the thread starts when the first record is looked for, so that
    /// the inputs of a multi-file run, all opened first, are populated one at a time.
    NotStarted,
    Running(Populator),
    /// No thread (one CPU, or it could not start): the reader populates itself.
    Inline,
}

/// A thread that maps the file's pages into the page tables (`MADV_POPULATE_READ`)
/// up to [`THREAD_AHEAD`] bytes ahead of the reader, on another CPU: on a fast capture
/// this kernel work is a tenth of the read loop's time. (The thread is
/// `streamscope_memory`'s; this tells it where the reader is, once per step.)
pub(crate) struct Populator {
    thread: AheadThread,
    /// Where the reader's position was last told, to tell it once per step only.
    told: usize,
}

impl Populator {
    fn start(map: &Arc<Mmap>) -> Ahead {
        let ahead = memory::Ahead {
            name: "populate",
            distance: THREAD_AHEAD,
            step: POPULATE_STEP,
            how: memory::Populate::Read,
            release_behind: Some(RELEASE_BEHIND),
        };
        // SAFETY: the range is the map's, and the thread holds a reference to the map
        // (`keep`) until it ends.
        let thread = unsafe {
            AheadThread::start(
                map.as_ptr() as usize,
                map.len(),
                ahead,
                Some(Box::new(Arc::clone(map))),
            )
        };
        match thread {
            Some(thread) => Ahead::Running(Populator { thread, told: 0 }),
            None => Ahead::Inline,
        }
    }

    #[inline]
    fn reader_at(&mut self, pos: usize) {
        if pos >= self.told + POPULATE_STEP {
            self.told = pos;
            self.thread.at(pos);
        }
    }
}

/// Maps the next [`POPULATE_STEP`] bytes of the file's pages in one call
/// (`MADV_POPULATE_READ`, Linux 5.14) instead of one page fault per few pages: the
/// reader then finds them mapped. Only a hint: where the kernel refuses, it stops trying.
#[cold]
fn populate(map: &Mmap, populated: &mut usize) {
    let len = POPULATE_STEP.min(map.len() - *populated);
    let start = map.as_ptr() as usize + *populated;
    // SAFETY: the range lies inside the map, alive for the call.
    if unsafe { memory::populate_range(start, len, memory::Populate::Read) } {
        *populated += len;
    } else {
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
