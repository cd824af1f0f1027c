//! Capture input for streamscope: classic pcap and pcapng records, borrowed, one at a time.
//!
//! [`Capture`] opens a file (memory-mapped or read in 4 MiB chunks), stdin (`-`) or any
//! byte stream, undoes gzip or zstd compression found by magic bytes, recognises classic
//! pcap (draft-ietf-opsawg-pcap) or pcapng (draft-ietf-opsawg-pcapng) by magic number,
//! and hands out [`Record`]s that borrow the mapped file or the reader's buffer: no
//! allocation per record on either path, and memory bounded by
//! max(4 MiB, the largest record a format allows) on the streaming path.
//!
//! # What is checked
//!
//! - At open: the input is readable and not empty, the (decompressed) input starts with a
//!   pcap or pcapng magic number, and the file header (pcap global header, first pcapng
//!   Section Header Block) is whole and of a supported version. Failures here mean the
//!   input is unusable.
//! - Per record: see [`pcap`](crate#classic-pcap) and [`pcapng`](crate#pcapng) below.
//!   A record or block that is malformed yields [`Error::Corrupt`] at its byte offset; one
//!   cut by the end of the input is first returned with the bytes present (if its header
//!   is whole) and then reported as [`Error::Truncated`]. After an error the capture
//!   ends: [`Capture::next_record`] returns `Ok(None)`. Records returned earlier stay valid.
//! - Oddities that readers such as libpcap and Wireshark accept are accepted and counted
//!   in [`Anomalies`].
//!
//! ## Classic pcap
//!
//! Magic a1b2c3d4 (µs) or a1b23c4d (ns), either byte order; major version 2. The link
//! type is the low 16 bits of the LinkType field; the FCS length in its upper bits is
//! reported by [`Capture::fcs_len`]. A captured length above the snap length is counted
//! ([`Anomalies::caplen_over_snaplen`]); one above 262144 bytes is corrupt. Files older
//! than format 2.3 have the captured and original lengths swapped, as libpcap and
//! libwiretap know; they are swapped back and counted.
//!
//! ## pcapng
//!
//! Block Total Length ≥ 12, multiple of 4, ≤ 16 MiB, equal to its trailing copy; sections
//! with their own byte order; interfaces with their own link type, snap length,
//! `if_tsresol` and `if_tsoffset`; EPB, SPB and the obsolete PB carry packets, other
//! blocks are skipped and counted.
//!
//! # Panics
//!
//! No input makes this crate panic: every field is read through a length-checked slice
//! and lengths are validated before use (property tests feed it arbitrary and mutated
//! captures). The memory-mapped path shares one hazard with every mmap reader: if another
//! process truncates the file while it is mapped, the operating system may signal the
//! process; use [`ReadMode::Read`] for files that may change underneath.

#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod error;
pub mod pcap;
pub mod pcapng;
mod source;

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub use error::Error;
use source::Input;

/// A link-layer header type: a `LINKTYPE_*` number of the tcpdump link-type registry
/// (draft-ietf-opsawg-pcaplinktype), exactly as stored in the file.
///
/// Numbers are never rejected here: some writers use DLT values (12 or 14 for raw IP),
/// others 101; the `wire` crate decides what each means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: 4-byte host-order address family, then the packet.
    pub const NULL: LinkType = LinkType(0);
    /// IEEE 802.3 Ethernet.
    pub const ETHERNET: LinkType = LinkType(1);
    /// PPP (RFC 1661).
    pub const PPP: LinkType = LinkType(9);
    /// Raw IP under its old DLT number on some BSDs (DLT_RAW = 12).
    pub const RAW_DLT12: LinkType = LinkType(12);
    /// Raw IP under its old DLT number on OpenBSD (DLT_RAW = 14).
    pub const RAW_DLT14: LinkType = LinkType(14);
    /// PPP in HDLC-like framing (RFC 1662).
    pub const PPP_HDLC: LinkType = LinkType(50);
    /// PPPoE session traffic.
    pub const PPP_ETHER: LinkType = LinkType(51);
    /// Raw IP, version from the first nibble.
    pub const RAW: LinkType = LinkType(101);
    /// IEEE 802.11 wireless LAN.
    pub const IEEE802_11: LinkType = LinkType(105);
    /// OpenBSD loopback: 4-byte network-order address family.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux "cooked" capture, version 1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// 802.11 with a radiotap header.
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux "cooked" capture, version 2.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The registry name without its `LINKTYPE_` prefix, or `"UNKNOWN"`.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "NULL",
            1 => "ETHERNET",
            9 => "PPP",
            12 | 14 => "RAW (DLT)",
            50 => "PPP_HDLC",
            51 => "PPP_ETHER",
            101 => "RAW",
            105 => "IEEE802_11",
            108 => "LOOP",
            113 => "LINUX_SLL",
            127 => "IEEE802_11_RADIOTAP",
            228 => "IPV4",
            229 => "IPV6",
            276 => "LINUX_SLL2",
            _ => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for LinkType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// One captured packet, borrowed from the map or the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// Nanoseconds since the Unix epoch, UTC (pcap §5; pcapng §4.3 with the interface's
    /// `if_tsresol` and `if_tsoffset`). A Simple Packet Block has none: it gets the
    /// previous record's.
    pub ts_ns: i64,
    /// The interface's link type.
    pub link_type: LinkType,
    /// pcapng interface id within its section (0 for pcap and for Simple Packet Blocks).
    pub interface: u32,
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// Captured bytes (may be shorter than `orig_len`).
    pub data: &'a [u8],
}

impl Record<'_> {
    const EMPTY: Record<'static> = Record {
        ts_ns: 0,
        link_type: LinkType(0),
        interface: 0,
        orig_len: 0,
        data: &[],
    };
}

/// Most records in a [`Batch`].
pub const BATCH: usize = 16;

/// Records read together by [`Capture::next_batch`], all borrowed until the next call.
/// Dereferences to a slice of them.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    records: [Record<'a>; BATCH],
    len: usize,
}

impl<'a> std::ops::Deref for Batch<'a> {
    type Target = [Record<'a>];

    #[inline]
    fn deref(&self) -> &[Record<'a>] {
        &self.records[..self.len]
    }
}

/// The container format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic pcap (draft-ietf-opsawg-pcap).
    Pcap {
        /// Timestamps in nanoseconds (magic a1b23c4d) rather than microseconds.
        nanosecond: bool,
        /// Fields stored big-endian.
        big_endian: bool,
    },
    /// pcapng (draft-ietf-opsawg-pcapng).
    PcapNg,
}

/// Compression found by magic bytes (RFC 1952 gzip 1f 8b; RFC 8878 zstd 28 b5 2f fd).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain capture.
    None,
    /// gzip, possibly several members.
    Gzip,
    /// Zstandard, possibly several frames.
    Zstd,
}

/// How a regular, uncompressed file is read. Stdin and compressed input always stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Memory-map the file (advised sequential); records borrow the map. The default:
    /// reading every record of a 1 GB pcap (2.2 M packets) from the page cache took
    /// about 0.08 s (13 GB/s), against 0.18 s for [`ReadMode::Read`] and 0.14 s for
    /// `cat FILE > /dev/null` (2-core machine, `examples/count.rs`, 2026-11-28).
    #[default]
    Mmap,
    /// read(2) into a reusable 4 MiB buffer; records borrow the buffer. Use it for files
    /// that may be truncated while being read.
    Read,
}

/// Counters of oddities that were accepted, not errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Anomalies {
    /// Records whose captured length exceeds the snap length (pcap header or pcapng IDB).
    pub caplen_over_snaplen: u64,
    /// Records whose original length is below the captured length.
    pub orig_len_below_caplen: u64,
    /// pcapng blocks other than SHB, IDB, EPB, SPB and PB (NRB, ISB, DSB, custom, unknown).
    pub unknown_blocks_skipped: u64,
    /// Obsolete pcapng Packet Blocks (type 2, Appendix A) read.
    pub obsolete_packet_blocks: u64,
    /// pcapng Simple Packet Blocks read (their timestamp is the previous record's).
    pub simple_packet_blocks: u64,
    /// pcap records whose captured and original lengths were swapped back (format < 2.3).
    pub lengths_swapped: u64,
    /// pcapng Interface Description Blocks with malformed options (rest of options ignored).
    pub bad_options: u64,
    /// pcapng sections (Section Header Blocks) read.
    pub sections: u64,
}

/// What is known about the input without reading it twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputInfo {
    /// The path given (`-` for stdin, the name for [`Capture::from_reader`]).
    pub path: PathBuf,
    /// File size on disk (compressed size for a compressed file); `None` for streams.
    pub size: Option<u64>,
    /// Modification time, nanoseconds since the Unix epoch; `None` for streams.
    pub mtime_ns: Option<i64>,
    /// `xxh3:<16 hex>`: XXH3-64 over the file size (u64 little-endian), its first MiB and
    /// its last MiB, read at open; `None` for streams.
    pub fingerprint: Option<String>,
}

/// Bytes hashed at each end of the file for [`InputInfo::fingerprint`].
pub const FINGERPRINT_SPAN: u64 = 1 << 20;

/// Where a packet's bytes are, relative to the current input position.
#[derive(Debug)]
pub(crate) struct Span {
    pub lo: usize,
    pub hi: usize,
    /// Bytes to consume once the record has been handed out.
    pub consume: usize,
    pub ts_ns: i64,
    pub link_type: LinkType,
    pub interface: u32,
    pub orig_len: u32,
    /// An error to report on the next call (the record was cut by the end of input).
    pub then: Option<Error>,
}

impl Span {
    const EMPTY: Span = Span {
        lo: 0,
        hi: 0,
        consume: 0,
        ts_ns: 0,
        link_type: LinkType(0),
        interface: 0,
        orig_len: 0,
        then: None,
    };

    /// The record of this span in `bytes` (the window it was parsed in, or the whole map
    /// for spans made absolute).
    #[inline]
    fn record<'a>(&self, bytes: &'a [u8]) -> Record<'a> {
        Record {
            ts_ns: self.ts_ns,
            link_type: self.link_type,
            interface: self.interface,
            orig_len: self.orig_len,
            data: bytes.get(self.lo..self.hi).unwrap_or(&[]),
        }
    }
}

/// Context for building errors.
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
}

impl Ctx<'_> {
    #[cold]
    pub(crate) fn io(&self, source: io::Error, offset: Option<u64>) -> Error {
        Error::Io {
            path: self.path.to_path_buf(),
            offset,
            source,
        }
    }

    #[cold]
    pub(crate) fn truncated(
        &self,
        offset: u64,
        what: &'static str,
        needed: u64,
        available: u64,
    ) -> Error {
        Error::Truncated {
            path: self.path.to_path_buf(),
            offset,
            what,
            needed,
            available,
        }
    }
}

enum Parser {
    Pcap(pcap::Pcap),
    PcapNg(pcapng::PcapNg),
}

/// An open capture: a lending iterator over its records.
///
/// ```no_run
/// # fn main() -> Result<(), streamscope_capture::Error> {
/// let mut cap = streamscope_capture::Capture::open("trace.pcap".as_ref())?;
/// while let Some(rec) = cap.next_record()? {
///     println!("{} {} {}", rec.ts_ns, rec.link_type, rec.data.len());
/// }
/// # Ok(()) }
/// ```
pub struct Capture {
    input: Input,
    parser: Parser,
    compression: Compression,
    info: InputInfo,
    anomalies: Anomalies,
    /// Bytes of the last record handed out, consumed at the next call.
    pending_consume: usize,
    /// Error to return at the next call (after a record cut by the end of input).
    pending_error: Option<Error>,
    done: bool,
    records: u64,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("info", &self.info)
            .field("format", &self.format())
            .field("compression", &self.compression)
            .field("offset", &self.offset())
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

fn compression_of(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if prefix.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn io_err(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        offset: None,
        source,
    }
}

impl Capture {
    /// Opens a path (`-` = stdin) with the default [`ReadMode`].
    ///
    /// gzip and zstd are recognised by magic bytes (not by extension), then pcap or
    /// pcapng by magic number. Any error here means the input is unusable: unreadable,
    /// empty, not a capture, or a bad file header.
    pub fn open(path: &Path) -> Result<Capture, Error> {
        Capture::open_with(path, ReadMode::default())
    }

    /// Opens a path (`-` = stdin), reading a regular uncompressed file as `mode` says,
    /// on one thread.
    pub fn open_with(path: &Path, mode: ReadMode) -> Result<Capture, Error> {
        Capture::open_with_threads(path, mode, 1)
    }

    /// [`Capture::open_with`] with a budget of `threads`: with two or more, a mapped
    /// file's pages are populated ahead of the reader by a thread of its own.
    pub fn open_with_threads(
        path: &Path,
        mode: ReadMode,
        threads: usize,
    ) -> Result<Capture, Error> {
        if path.as_os_str() == "-" {
            return Capture::from_reader("-", Box::new(io::stdin()));
        }
        let mut file = File::open(path).map_err(|e| io_err(path, e))?;
        let meta = file.metadata().map_err(|e| io_err(path, e))?;
        if !meta.is_file() {
            // A FIFO, a character device, /dev/stdin: stream it.
            let mut cap = Capture::from_reader_at(path.to_path_buf(), Box::new(file))?;
            cap.info.mtime_ns = None;
            return Ok(cap);
        }
        let size = meta.len();
        if size == 0 {
            return Err(Error::Empty {
                path: path.to_path_buf(),
            });
        }
        let mtime_ns = meta.modified().ok().and_then(|t| {
            let ns = match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => i128::try_from(d.as_nanos()).ok()?,
                Err(e) => -i128::try_from(e.duration().as_nanos()).ok()?,
            };
            i64::try_from(ns).ok()
        });
        let mut info = InputInfo {
            path: path.to_path_buf(),
            size: Some(size),
            mtime_ns,
            fingerprint: None,
        };
        // Fingerprint and magic sniffing from the first and last MiB.
        let head_len = size.min(FINGERPRINT_SPAN) as usize;
        let mut head = vec![0u8; head_len];
        let got = source::read_up_to(&mut file, &mut head).map_err(|e| io_err(path, e))?;
        head.truncate(got);
        let mut tail = Vec::new();
        if size > FINGERPRINT_SPAN {
            file.seek(SeekFrom::Start(size - FINGERPRINT_SPAN))
                .map_err(|e| io_err(path, e))?;
            tail = vec![0u8; FINGERPRINT_SPAN as usize];
            let got = source::read_up_to(&mut file, &mut tail).map_err(|e| io_err(path, e))?;
            tail.truncate(got);
        }
        info.fingerprint = Some(fingerprint(
            size,
            &head,
            if tail.is_empty() { &head } else { &tail },
        ));
        let compression = compression_of(&head);
        let input = match (compression, mode) {
            (Compression::None, ReadMode::Mmap) => {
                // SAFETY: the map is read-only and only read through bounds-checked
                // slices; truncation of the file by another process while mapped is the
                // documented hazard of every mmap reader (see the crate docs).
                let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_err(path, e))?;
                #[cfg(unix)]
                {
                    // Advice is a hint: failing to give it changes nothing.
                    let _ = map.advise(memmap2::Advice::Sequential);
                }
                Input::map(map, threads)
            }
            (Compression::None, ReadMode::Read) => {
                // The first MiB is already here: start the buffer with it.
                file.seek(SeekFrom::Start(head.len() as u64))
                    .map_err(|e| io_err(path, e))?;
                Input::stream(&head, Box::new(file))
            }
            (c, _) => {
                file.seek(SeekFrom::Start(0)).map_err(|e| io_err(path, e))?;
                Input::stream(
                    &[],
                    decoder(c, Box::new(file)).map_err(|e| io_err(path, e))?,
                )
            }
        };
        drop(head);
        drop(tail);
        Capture::start(info, input, compression)
    }

    /// Reads a capture from any byte stream (tests, stdin, a socket); `name` is used in
    /// messages. gzip and zstd are undone as for files.
    pub fn from_reader(name: &str, r: Box<dyn Read + Send>) -> Result<Capture, Error> {
        Capture::from_reader_at(PathBuf::from(name), r)
    }

    fn from_reader_at(path: PathBuf, mut r: Box<dyn Read + Send>) -> Result<Capture, Error> {
        let mut prefix = [0u8; 4];
        let got = source::read_up_to(&mut *r, &mut prefix).map_err(|e| io_err(&path, e))?;
        let prefix = &prefix[..got];
        let compression = compression_of(prefix);
        let info = InputInfo {
            path,
            size: None,
            mtime_ns: None,
            fingerprint: None,
        };
        let input = match compression {
            Compression::None => Input::stream(prefix, r),
            c => {
                let chained: Box<dyn Read + Send> = Box::new(Cursor::new(prefix.to_vec()).chain(r));
                Input::stream(&[], decoder(c, chained).map_err(|e| io_err(&info.path, e))?)
            }
        };
        Capture::start(info, input, compression)
    }

    /// Sniffs the format and reads the file header.
    fn start(
        info: InputInfo,
        mut input: Input,
        compression: Compression,
    ) -> Result<Capture, Error> {
        let mut anomalies = Anomalies::default();
        let ctx = Ctx { path: &info.path };
        let avail = input.fill(4).map_err(|e| ctx.io(e, Some(0)))?;
        if avail == 0 {
            return Err(Error::Empty {
                path: info.path.clone(),
            });
        }
        let mut magic = [0u8; 4];
        let n = avail.min(4);
        magic[..n].copy_from_slice(input.window().get(..n).unwrap_or(&[]));
        let parser = if n == 4 && pcap::sniff(magic).is_some() {
            Parser::Pcap(pcap::Pcap::read_header(&mut input, &ctx)?)
        } else if n == 4 && u32::from_le_bytes(magic) == pcapng::block::SHB {
            Parser::PcapNg(pcapng::PcapNg::read_first_section(
                &mut input,
                &ctx,
                &mut anomalies,
            )?)
        } else {
            return Err(Error::NotACapture {
                path: info.path.clone(),
                magic,
                len: n as u8,
            });
        };
        Ok(Capture {
            input,
            parser,
            compression,
            info,
            anomalies,
            pending_consume: 0,
            pending_error: None,
            done: false,
            records: 0,
        })
    }

    /// The next record, borrowed until the next call.
    ///
    /// `Ok(None)` at the clean end of the capture. An `Err` is a mid-file problem
    /// (truncated input, corrupt record or block, read error): everything returned
    /// before stays valid, and every later call returns `Ok(None)`.
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, Error> {
        self.consume_pending();
        let Some(span) = self.step()? else {
            return Ok(None);
        };
        self.pending_consume = span.consume;
        Ok(Some(span.record(self.input.window())))
    }

    /// The next records, up to [`BATCH`] of them, all borrowed until the next call; an
    /// empty batch at the clean end of the capture. Errors are those of
    /// [`Capture::next_record`], and come after the records before them: a batch ends
    /// early at a problem, which the next call returns.
    ///
    /// Holding several records at once lets a caller start the memory loads of later
    /// records' work (a flow-table lookup) before it needs them. Records of a map come
    /// [`BATCH`] at a time; a stream's buffer may be compacted between two records, so
    /// its batches hold one.
    #[inline]
    pub fn next_batch(&mut self) -> Result<Batch<'_>, Error> {
        self.consume_pending();
        let mut spans = [Span::EMPTY; BATCH];
        let mut len = 0;
        let mapped = matches!(self.input, Input::Map { .. });
        while len < BATCH {
            let span = match self.step() {
                Ok(Some(span)) => span,
                Ok(None) => break,
                Err(e) if len == 0 => return Err(e),
                Err(e) => {
                    // Reported at the next call, after these records.
                    self.done = false;
                    self.pending_error = Some(e);
                    break;
                }
            };
            if !mapped {
                self.pending_consume = span.consume;
                let mut records = [Record::EMPTY; BATCH];
                records[0] = span.record(self.input.window());
                return Ok(Batch { records, len: 1 });
            }
            // The map never moves: the record stays where it is once consumed. (The
            // span is relative to the window after the blocks the parser skipped.)
            let at = self.input.position() as usize;
            spans[len] = Span {
                lo: at + span.lo,
                hi: at + span.hi,
                then: None,
                ..span
            };
            len += 1;
            self.input.consume(span.consume);
            if self.pending_error.is_some() {
                break;
            }
        }
        let whole = self.input.whole();
        let mut records = [Record::EMPTY; BATCH];
        for (r, span) in records.iter_mut().zip(&spans[..len]) {
            *r = span.record(whole);
        }
        Ok(Batch { records, len })
    }

    #[inline]
    fn consume_pending(&mut self) {
        if self.pending_consume != 0 {
            self.input.consume(self.pending_consume);
            self.pending_consume = 0;
        }
    }

    /// Parses the next record: its span within the window (not consumed). Inlined in
    /// both callers: as a call it cost the streaming benchmark 8 %.
    #[inline(always)]
    fn step(&mut self) -> Result<Option<Span>, Error> {
        if self.done {
            return Ok(None);
        }
        if let Some(e) = self.pending_error.take() {
            self.done = true;
            return Err(e);
        }
        let ctx = Ctx {
            path: &self.info.path,
        };
        let step = match &mut self.parser {
            Parser::Pcap(p) => p.next(&mut self.input, &ctx, &mut self.anomalies),
            Parser::PcapNg(n) => n.next(&mut self.input, &ctx, &mut self.anomalies),
        };
        match step {
            Ok(Some(mut span)) => {
                self.records += 1;
                self.pending_error = span.then.take();
                Ok(Some(span))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// The container format.
    pub fn format(&self) -> FileFormat {
        match &self.parser {
            Parser::Pcap(p) => FileFormat::Pcap {
                nanosecond: p.nanosecond,
                big_endian: p.big_endian,
            },
            Parser::PcapNg(_) => FileFormat::PcapNg,
        }
    }

    /// Byte order of the current pcapng section or of the pcap file.
    pub fn big_endian(&self) -> bool {
        match &self.parser {
            Parser::Pcap(p) => p.big_endian,
            Parser::PcapNg(n) => n.big_endian(),
        }
    }

    /// The compression undone.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Distinct link types of the interfaces seen so far, in order of appearance (the
    /// pcap header's one link type for classic pcap).
    pub fn link_types(&self) -> &[LinkType] {
        match &self.parser {
            Parser::Pcap(p) => std::slice::from_ref(&p.link_type),
            Parser::PcapNg(n) => &n.link_types,
        }
    }

    /// The timestamps' resolution in nanoseconds: 1 or 1,000 for classic pcap (its
    /// magic number), for pcapng the coarsest of the interfaces seen so far (their
    /// `if_tsresol`; 1,000, the format's default, before any).
    pub fn ts_resolution_ns(&self) -> u64 {
        match &self.parser {
            Parser::Pcap(p) if p.nanosecond => 1,
            Parser::Pcap(_) => 1_000,
            Parser::PcapNg(n) => n.ts_resolution_ns(),
        }
    }

    /// Snap length of a classic pcap file (§4); `None` for pcapng (per interface).
    pub fn snaplen(&self) -> Option<u32> {
        match &self.parser {
            Parser::Pcap(p) => Some(p.snaplen),
            Parser::PcapNg(_) => None,
        }
    }

    /// FCS length in bytes when a classic pcap header says frames carry one (§4).
    pub fn fcs_len(&self) -> Option<u8> {
        match &self.parser {
            Parser::Pcap(p) => p.fcs_len,
            Parser::PcapNg(_) => None,
        }
    }

    /// Byte offset, in the decompressed capture, of the next record or block.
    pub fn offset(&self) -> u64 {
        self.input.position() + self.pending_consume as u64
    }

    /// Records returned so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Oddities accepted so far.
    pub fn anomalies(&self) -> &Anomalies {
        &self.anomalies
    }

    /// Path, size, modification time and fingerprint of the input.
    pub fn info(&self) -> &InputInfo {
        &self.info
    }

    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.input.buffer_capacity()
    }
}

fn decoder(c: Compression, r: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    Ok(match c {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        Compression::None => r,
    })
}

/// `xxh3:<16 hex>` over (size as u64 LE, first MiB, last MiB).
fn fingerprint(size: u64, head: &[u8], tail: &[u8]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&size.to_le_bytes());
    h.update(head);
    h.update(tail);
    format!("xxh3:{:016x}", h.digest())
}

#[cfg(test)]
mod tests;
