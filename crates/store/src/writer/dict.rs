//! String column chunks, dictionary-encoded here rather than by parquet-rs.
//!
//! parquet-rs's byte-array encoder interns every row's string (a hash of its bytes and a
//! comparison), also when the Arrow input is already a dictionary, and the text of each
//! row has to be built first. Our string columns are addresses and names from a fixed
//! set, whose distinct values have a cheaper identity: the address as an integer, the
//! name's static text. [`DictColumn`] keys its dictionary by that, writes each distinct
//! value's text once, and writes the column chunk itself: a PLAIN dictionary page and
//! RLE_DICTIONARY data pages (format v1, as the rest of the file), zstd-compressed,
//! through parquet's page writer (page headers), with the chunk metadata and offset
//! index laid out as parquet-rs's column writer lays them out. A chunk whose dictionary
//! outgrows the column's dictionary page limit is written PLAIN instead (parquet-rs
//! switches to PLAIN mid-chunk; here the whole chunk is in memory, so it decides once).
//!
//! The RLE / bit-packing hybrid of the data pages is encoded here too ([`hybrid`]):
//! parquet-rs exports its encoder only with its `experimental` feature, which pulls in
//! the Variant crates.
//!
//! On a million flows (50,000 clients, 250 servers) on one CPU, the four string columns
//! cost the `flows` writer about 80 ms through parquet-rs (a quarter of its time).

use std::net::IpAddr;

use bytes::Bytes;
use hashbrown::HashMap;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType, ZstdLevel};
use parquet::column::page::{CompressedPage, Page, PageWriteSpec, PageWriter as _};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result as PqResult};
use parquet::file::metadata::{ColumnChunkMetaData, OffsetIndexBuilder, PageEncodingStats};
use parquet::file::properties::{EnabledStatistics, WriterPropertiesPtr};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use super::push_addr;

type FixedState = foldhash::fast::FixedState;

/// One string column chunk being built.
pub(super) struct DictColumn {
    descr: ColumnDescPtr,
    props: WriterPropertiesPtr,
    level: ZstdLevel,
    /// The largest dictionary (its PLAIN bytes) the chunk may have: past it the chunk
    /// is written as plain text.
    dict_limit: usize,
    rows: Rows,
}

/// The rows of a chunk so far.
enum Rows {
    Dict(Dict),
    /// Every row's value PLAIN-encoded (a 4-byte little-endian length and the UTF-8
    /// text), as the data pages hold them, and where each row ends.
    Plain {
        text: Vec<u8>,
        ends: Vec<usize>,
    },
}

/// A dictionary of the distinct values and each row's index into it.
#[derive(Default)]
struct Dict {
    /// The distinct values in order of first use, PLAIN-encoded: the dictionary page as
    /// it is written.
    text: Vec<u8>,
    /// Where each distinct value starts in `text` (its length prefix).
    starts: Vec<usize>,
    /// Per row, the index of its value.
    keys: Vec<u32>,
    v4: HashMap<u32, u32, FixedState>,
    v6: HashMap<u128, u32, FixedState>,
    names: Vec<&'static str>,
}

impl Dict {
    /// The PLAIN bytes of entry `key` (length prefix and text).
    fn plain(&self, key: u32) -> &[u8] {
        let start = self.starts[key as usize];
        let end = self
            .starts
            .get(key as usize + 1)
            .copied()
            .unwrap_or(self.text.len());
        &self.text[start..end]
    }
}

/// Appends one PLAIN value, written by `text`, to `out`: a 4-byte length and the text.
#[inline]
fn push_plain(out: &mut Vec<u8>, text: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    text(out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

impl DictColumn {
    /// A writer for the chunk of column `descr` (a string column) in a row group.
    pub(super) fn new(descr: ColumnDescPtr, props: WriterPropertiesPtr) -> PqResult<DictColumn> {
        let path = descr.path();
        let fail = |what: &str| {
            Err(ParquetError::General(format!(
                "string column {path}: {what}"
            )))
        };
        if props.statistics_enabled(path) != EnabledStatistics::None {
            // Not a limitation of the format: min/max of a string column are not written
            // here. No table asks for them (writing one that did would fail here).
            return fail("statistics requested, which are not written");
        }
        if descr.max_rep_level() > 0 || descr.max_def_level() > 0 {
            // No table has one yet; nulls would need definition levels in the pages.
            return fail("nullable or nested, which is not written");
        }
        let Compression::ZSTD(level) = props.compression(path) else {
            return fail("only zstd is written");
        };
        let dict_limit = if props.dictionary_enabled(path) {
            props.column_dictionary_page_size_limit(path)
        } else {
            0
        };
        Ok(DictColumn {
            descr,
            props,
            level,
            dict_limit,
            rows: Rows::Dict(Dict::default()),
        })
    }

    /// Appends a row with address `addr` (as text: see `push_addr`).
    #[inline]
    pub(super) fn push_addr(&mut self, addr: IpAddr) {
        let d = match &mut self.rows {
            Rows::Dict(d) => d,
            Rows::Plain { text, ends } => {
                push_plain(text, |out| push_addr(out, addr));
                ends.push(text.len());
                return;
            }
        };
        let Dict {
            text,
            starts,
            keys,
            v4,
            v6,
            ..
        } = d;
        let mut add = || {
            let key = starts.len() as u32;
            starts.push(text.len());
            push_plain(text, |out| push_addr(out, addr));
            key
        };
        let key = match addr {
            IpAddr::V4(a) => *v4.entry(u32::from(a)).or_insert_with(&mut add),
            IpAddr::V6(a) => *v6.entry(u128::from(a)).or_insert_with(&mut add),
        };
        keys.push(key);
        if text.len() > self.dict_limit {
            self.drop_dictionary();
        }
    }

    /// Appends a row with `name`, one of a handful of static names (the same name is
    /// mostly the same pointer, compared first).
    #[inline]
    pub(super) fn push_name(&mut self, name: &'static str) {
        let d = match &mut self.rows {
            Rows::Dict(d) => d,
            Rows::Plain { text, ends } => {
                push_plain(text, |out| out.extend_from_slice(name.as_bytes()));
                ends.push(text.len());
                return;
            }
        };
        let found = d
            .names
            .iter()
            .position(|n| std::ptr::eq(*n, name) || *n == name);
        let key = match found {
            Some(k) => k as u32,
            None => {
                d.names.push(name);
                d.starts.push(d.text.len());
                push_plain(&mut d.text, |out| out.extend_from_slice(name.as_bytes()));
                (d.starts.len() - 1) as u32
            }
        };
        d.keys.push(key);
        if d.text.len() > self.dict_limit {
            self.drop_dictionary();
        }
    }

    /// Gives up the dictionary, which has outgrown its limit: the rows so far become
    /// plain text, and so will the rest.
    #[cold]
    fn drop_dictionary(&mut self) {
        if let Rows::Dict(d) = &self.rows {
            let mut text = Vec::with_capacity(d.keys.len() * 20);
            let mut ends = Vec::with_capacity(d.keys.len());
            for &key in &d.keys {
                text.extend_from_slice(d.plain(key));
                ends.push(text.len());
            }
            self.rows = Rows::Plain { text, ends };
        }
    }

    /// Rows so far.
    fn len(&self) -> usize {
        match &self.rows {
            Rows::Dict(d) => d.keys.len(),
            Rows::Plain { ends, .. } => ends.len(),
        }
    }

    /// Encodes and compresses the chunk: its bytes (pages with their headers) and what
    /// the row group needs to append them.
    pub(super) fn close(self, zstd: &mut Zstd) -> PqResult<(Bytes, ColumnCloseResult)> {
        let rows = self.len();
        let mut zstd = zstd.at(self.level.compression_level())?;
        let page_limit = self.props.data_page_size_limit().max(1);
        let mut sink = TrackedWrite::new(Vec::new());
        let mut chunk = Chunk {
            pages: SerializedPageWriter::new(&mut sink),
            sizes: (0, 0, 0),
            offsets: (!self.props.offset_index_disabled()).then(OffsetIndexBuilder::new),
            data_page_offset: None,
            data_pages: 0,
        };
        let mut buf = Vec::new();
        let (dictionary_page_offset, encoding) = match &self.rows {
            Rows::Dict(d) => {
                let page = Page::DictionaryPage {
                    buf: Bytes::from(zstd.compress(&d.text)?),
                    num_values: d.starts.len() as u32,
                    encoding: Encoding::PLAIN,
                    is_sorted: false,
                };
                let spec = chunk
                    .pages
                    .write_page(CompressedPage::new(page, d.text.len()))?;
                chunk.count(&spec);
                // Text bytes of each entry, for the offset index.
                let lens: Vec<i64> = (0..d.starts.len() as u32)
                    .map(|k| d.plain(k).len() as i64 - 4)
                    .collect();
                let width = bit_width(d.starts.len());
                let per_page = (page_limit.saturating_mul(8) / usize::from(width.max(1))).max(8);
                for keys in d.keys.chunks(per_page) {
                    buf.clear();
                    buf.push(width);
                    hybrid(&mut buf, width, keys.iter().copied());
                    let text_bytes = keys.iter().map(|&k| lens[k as usize]).sum();
                    let encoding = Encoding::RLE_DICTIONARY;
                    chunk.data_page(&mut zstd, &buf, keys.len(), encoding, text_bytes)?;
                }
                (Some(spec.offset as i64), Encoding::RLE_DICTIONARY)
            }
            Rows::Plain { text, ends } => {
                let (mut row, mut at) = (0, 0);
                while row < ends.len() {
                    // Rows until the page holds `page_limit` bytes (at least one row).
                    let first = row;
                    row += 1;
                    while row < ends.len() && ends[row] - at <= page_limit {
                        row += 1;
                    }
                    let end = ends[row - 1];
                    let n = row - first;
                    let text_bytes = (end - at - 4 * n) as i64;
                    chunk.data_page(&mut zstd, &text[at..end], n, Encoding::PLAIN, text_bytes)?;
                    at = end;
                }
                (None, Encoding::PLAIN)
            }
        };
        let Chunk {
            pages: _,
            sizes: (uncompressed, compressed, written),
            offsets,
            data_page_offset,
            data_pages,
        } = chunk;
        let mut encodings = vec![Encoding::RLE, Encoding::PLAIN, encoding];
        let mut encoding_stats = Vec::new();
        if dictionary_page_offset.is_some() {
            encoding_stats.push(PageEncodingStats {
                page_type: PageType::DICTIONARY_PAGE,
                encoding: Encoding::PLAIN,
                count: 1,
            });
        }
        if data_pages > 0 {
            encoding_stats.push(PageEncodingStats {
                page_type: PageType::DATA_PAGE,
                encoding,
                count: data_pages,
            });
        }
        encodings.dedup();
        let metadata = ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(Compression::ZSTD(self.level))
            .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
            .set_page_encoding_stats(encoding_stats)
            .set_total_compressed_size(compressed as i64)
            .set_total_uncompressed_size(uncompressed as i64)
            .set_num_values(rows as i64)
            .set_data_page_offset(data_page_offset.unwrap_or(0))
            .set_dictionary_page_offset(dictionary_page_offset)
            .build()?;
        let closed = ColumnCloseResult {
            bytes_written: written,
            rows_written: rows as u64,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: offsets.map(OffsetIndexBuilder::build),
        };
        Ok((Bytes::from(sink.into_inner()?), closed))
    }
}

/// The pages of a chunk being written, and what its metadata records of them.
struct Chunk<'a> {
    pages: SerializedPageWriter<'a, Vec<u8>>,
    /// Uncompressed and compressed sizes (headers included) and bytes written.
    sizes: (usize, usize, u64),
    offsets: Option<OffsetIndexBuilder>,
    data_page_offset: Option<i64>,
    data_pages: i32,
}

impl Chunk<'_> {
    fn count(&mut self, spec: &PageWriteSpec) {
        self.sizes.0 += spec.uncompressed_size;
        self.sizes.1 += spec.compressed_size;
        self.sizes.2 += spec.bytes_written;
    }

    /// Compresses and writes one data page of `rows` values, `text_bytes` bytes of text.
    fn data_page(
        &mut self,
        zstd: &mut Level<'_>,
        data: &[u8],
        rows: usize,
        encoding: Encoding,
        text_bytes: i64,
    ) -> PqResult<()> {
        let page = Page::DataPage {
            buf: Bytes::from(zstd.compress(data)?),
            num_values: rows as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let spec = self
            .pages
            .write_page(CompressedPage::new(page, data.len()))?;
        self.count(&spec);
        self.data_page_offset.get_or_insert(spec.offset as i64);
        self.data_pages += 1;
        if let Some(o) = self.offsets.as_mut() {
            o.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
            o.append_row_count(rows as i64);
            o.append_unencoded_byte_array_data_bytes(Some(text_bytes));
        }
        Ok(())
    }
}

/// A zstd compression context kept for a writer thread's pages (making one costs more
/// than compressing a small page); made at the level of the first chunk that asks.
#[derive(Default)]
pub(super) struct Zstd(Option<(i32, zstd::bulk::Compressor<'static>)>);

impl Zstd {
    fn at(&mut self, level: i32) -> PqResult<Level<'_>> {
        let fresh = match &self.0 {
            Some((l, _)) => *l != level,
            None => true,
        };
        if fresh {
            let c = zstd::bulk::Compressor::new(level).map_err(zstd_err)?;
            self.0 = Some((level, c));
        }
        match &mut self.0 {
            Some((_, c)) => Ok(Level(c)),
            None => Err(ParquetError::General("no zstd context".into())),
        }
    }
}

/// [`Zstd`]'s context at the level of the chunk being written.
struct Level<'a>(&'a mut zstd::bulk::Compressor<'static>);

impl Level<'_> {
    fn compress(&mut self, data: &[u8]) -> PqResult<Vec<u8>> {
        self.0.compress(data).map_err(zstd_err)
    }
}

#[cold]
fn zstd_err(e: std::io::Error) -> ParquetError {
    ParquetError::General(format!("zstd: {e}"))
}

/// Bits per dictionary index for `entries` entries (0 for one entry, as parquet-rs).
fn bit_width(entries: usize) -> u8 {
    let max = entries.saturating_sub(1) as u64;
    (64 - max.leading_zeros()) as u8
}

/// Appends `values` (each below 2^`width`) in Parquet's RLE / bit-packing hybrid
/// encoding: a run of 8 or more equal values as one RLE run (its length and the value
/// once), everything else bit-packed in groups of 8, least significant bit first, the
/// last group padded with zeros (the page's value count tells the reader where the values
/// end).
pub(super) fn hybrid(out: &mut Vec<u8>, width: u8, values: impl Iterator<Item = u32>) {
    let mut enc = Hybrid {
        out,
        width,
        group: [0; 8],
        filled: 0,
        groups: 0,
        literal: Vec::new(),
        run_value: 0,
        run_len: 0,
    };
    for v in values {
        enc.put(v);
    }
    enc.finish();
}

/// The state of [`hybrid`]: values are first counted into a run of equal values; a
/// run too short for RLE goes into the current group of 8 literals.
struct Hybrid<'a> {
    out: &'a mut Vec<u8>,
    width: u8,
    /// The group being filled, and how many of it are filled.
    group: [u32; 8],
    filled: usize,
    /// Complete groups waiting to be written as one bit-packed run, and their bytes.
    groups: usize,
    literal: Vec<u8>,
    run_value: u32,
    run_len: usize,
}

impl Hybrid<'_> {
    #[inline]
    fn put(&mut self, v: u32) {
        if self.run_len > 0 && v == self.run_value {
            self.run_len += 1;
            return;
        }
        self.end_run();
        self.run_value = v;
        self.run_len = 1;
    }

    /// Places the current run: as an RLE run if it is long enough once it has filled
    /// the current group, else as literals.
    fn end_run(&mut self) {
        let (v, mut n) = (self.run_value, self.run_len);
        self.run_len = 0;
        // Complete the group being filled first: a bit-packed run is whole groups.
        while n > 0 && self.filled > 0 {
            self.literal_value(v);
            n -= 1;
        }
        if n >= 8 {
            self.flush_literals();
            self.rle(v, n);
        } else {
            for _ in 0..n {
                self.literal_value(v);
            }
        }
    }

    #[inline]
    fn literal_value(&mut self, v: u32) {
        self.group[self.filled] = v;
        self.filled += 1;
        if self.filled == 8 {
            self.pack_group();
        }
    }

    /// Bit-packs the current group (padded with zeros) onto `literal`.
    fn pack_group(&mut self) {
        let width = u32::from(self.width);
        let mut acc: u64 = 0;
        let mut bits = 0;
        for (i, &v) in self.group.iter().enumerate() {
            let v = if i < self.filled { u64::from(v) } else { 0 };
            acc |= v << bits;
            bits += width;
            while bits >= 8 {
                self.literal.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        }
        // 8 values of `width` bits are exactly `width` bytes: nothing is left over.
        self.filled = 0;
        self.group = [0; 8];
        self.groups += 1;
        if self.groups == 63 {
            // The most groups a one-byte run header counts.
            self.flush_literals();
        }
    }

    /// Writes the complete groups waiting in `literal` as one bit-packed run.
    fn flush_literals(&mut self) {
        if self.groups == 0 {
            return;
        }
        varint(self.out, ((self.groups as u64) << 1) | 1);
        self.out.extend_from_slice(&self.literal);
        self.literal.clear();
        self.groups = 0;
    }

    /// An RLE run of `n` times `v`: the length, then the value in whole bytes.
    fn rle(&mut self, v: u32, n: usize) {
        varint(self.out, (n as u64) << 1);
        let bytes = usize::from(self.width).div_ceil(8);
        self.out.extend_from_slice(&v.to_le_bytes()[..bytes]);
    }

    fn finish(mut self) {
        self.end_run();
        if self.filled > 0 {
            self.pack_group();
        }
        self.flush_literals();
    }
}

/// ULEB128, as the hybrid encoding's run headers.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
pub(super) mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
    use parquet::file::page_index::offset_index::PageLocation;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    use super::*;

    /// Properties as the tables' (zstd, no statistics) with the given limits.
    fn props(dict_limit: usize, page_limit: usize) -> WriterProperties {
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level")))
            .set_statistics_enabled(EnabledStatistics::None)
            .set_dictionary_page_size_limit(dict_limit)
            .set_data_page_size_limit(page_limit)
            .build()
    }

    /// Writes the rows that `push` pushes as the one column chunk of a file of its own,
    /// then reads the file with parquet-rs's Arrow reader (page index included): the
    /// strings and the metadata.
    fn round_trip(
        props: WriterProperties,
        push: impl FnOnce(&mut DictColumn),
    ) -> (Vec<String>, Arc<ParquetMetaData>) {
        let schema = "message t { required binary s (STRING); }";
        let schema = Arc::new(parse_message_type(schema).expect("schema"));
        let props = Arc::new(props);
        let mut file =
            SerializedFileWriter::new(Vec::new(), schema, Arc::clone(&props)).expect("file");
        let mut col = DictColumn::new(file.schema_descr().column(0), props).expect("column");
        push(&mut col);
        let (bytes, closed) = col.close(&mut Zstd::default()).expect("close");
        let mut group = file.next_row_group().expect("row group");
        group.append_column(&bytes, closed).expect("append");
        group.close().expect("close row group");
        let data = Bytes::from(file.into_inner().expect("finish"));
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let reader =
            ParquetRecordBatchReaderBuilder::try_new_with_options(data, options).expect("read");
        let meta = Arc::clone(reader.metadata());
        let mut values = Vec::new();
        for batch in reader.build().expect("reader") {
            let batch = batch.expect("batch");
            let col = batch.column(0).as_string::<i32>();
            values.extend(col.iter().map(|v| v.expect("not null").to_string()));
        }
        (values, meta)
    }

    fn encodings(meta: &ParquetMetaData) -> Vec<Encoding> {
        meta.row_group(0).column(0).encodings().collect()
    }

    /// The offset index of the one chunk: where its data pages are.
    fn pages(meta: &ParquetMetaData) -> Vec<PageLocation> {
        let index = meta.page_index_for_row_group(0);
        index
            .offset_index(0)
            .expect("offset index")
            .page_locations()
            .clone()
    }

    /// Each data page's first row, from the offset index.
    fn first_rows(meta: &ParquetMetaData) -> Vec<i64> {
        pages(meta).iter().map(|p| p.first_row_index).collect()
    }

    /// A sequence of `n` values below `distinct`, in runs of 1 to 20 equal values (so that
    /// runs start and end everywhere in the groups of 8 of the bit-packed encoding).
    fn runs(n: usize, distinct: u32) -> Vec<u32> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let value = (next() % u64::from(distinct)) as u32;
            let len = (next() % 20 + 1) as usize;
            v.extend(std::iter::repeat_n(value, len.min(n - v.len())));
        }
        v
    }

    /// Distinct addresses by number: IPv4 in 10/8, one in seven IPv6.
    pub(in crate::writer) fn addr(i: u32) -> IpAddr {
        if i % 7 == 3 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                (i >> 16) as u16,
                i as u16,
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
        }
    }

    /// Dictionaries of 1 to 70,000 entries (index widths 0 to 17 bits), rows in runs of
    /// every length, read back as written; the dictionary is used throughout.
    #[test]
    fn addresses_read_back_at_every_index_width() {
        for (n, distinct) in [
            (5, 1),
            (1000, 1),
            (3, 2),
            (1000, 2),
            (2000, 5),
            (5000, 256),
            (5000, 257),
            (200_000, 70_000),
        ] {
            let keys = runs(n, distinct);
            let (values, meta) = round_trip(props(64 << 20, 1 << 20), |c| {
                keys.iter().for_each(|&k| c.push_addr(addr(k)));
            });
            let want: Vec<String> = keys.iter().map(|&k| addr(k).to_string()).collect();
            assert_eq!(values, want, "{n} rows of {distinct} values");
            let enc = encodings(&meta);
            assert!(enc.contains(&Encoding::RLE_DICTIONARY), "{enc:?}");
            assert!(meta
                .row_group(0)
                .column(0)
                .dictionary_page_offset()
                .is_some());
        }
    }

    /// Names, compared by text as well as by pointer: the same name from two places is
    /// one dictionary entry.
    #[test]
    fn names_read_back_one_entry_each() {
        const NAMES: [&str; 5] = ["fin", "rst", "idle", "capture_end", "evicted"];
        let other_fin: &'static str = String::leak(String::from("fin"));
        let keys = runs(3000, 6);
        let name = |k: u32| NAMES.get(k as usize).copied().unwrap_or(other_fin);
        let (values, meta) = round_trip(props(1 << 20, 1 << 20), |c| {
            keys.iter().for_each(|&k| c.push_name(name(k)));
        });
        let want: Vec<String> = keys.iter().map(|&k| name(k).to_string()).collect();
        assert_eq!(values, want);
        let chunk = meta.row_group(0).column(0);
        // Five names: the dictionary page is their PLAIN text and nothing more.
        let text: usize = NAMES.iter().map(|n| 4 + n.len()).sum();
        assert!(chunk.dictionary_page_offset().is_some());
        assert!(encodings(&meta).contains(&Encoding::RLE_DICTIONARY));
        assert!(
            (chunk.uncompressed_size() as usize) < text + 3000,
            "{}",
            chunk.uncompressed_size()
        );
    }

    /// Small pages: a chunk of many pages, each starting where the offset index says.
    #[test]
    fn pages_are_cut_at_the_page_limit_and_indexed() {
        let keys = runs(10_000, 300);
        let (values, meta) = round_trip(props(1 << 20, 256), |c| {
            keys.iter().for_each(|&k| c.push_addr(addr(k)));
        });
        let want: Vec<String> = keys.iter().map(|&k| addr(k).to_string()).collect();
        assert_eq!(values, want);
        let first = first_rows(&meta);
        // 9-bit indices, 256 bytes: 227 rows a page.
        assert_eq!(first.len(), 10_000usize.div_ceil(227), "{first:?}");
        assert!(first.iter().enumerate().all(|(i, &r)| r == 227 * i as i64));
    }

    /// A dictionary past its limit: the rows so far and all later ones become plain
    /// text, in pages of at most the page limit.
    #[test]
    fn a_dictionary_past_its_limit_becomes_plain_text() {
        let keys = runs(20_000, 5_000);
        let (values, meta) = round_trip(props(4 << 10, 16 << 10), |c| {
            keys.iter().for_each(|&k| c.push_addr(addr(k)));
        });
        let want: Vec<String> = keys.iter().map(|&k| addr(k).to_string()).collect();
        assert_eq!(values, want);
        let chunk = meta.row_group(0).column(0);
        assert!(chunk.dictionary_page_offset().is_none());
        let enc = encodings(&meta);
        assert!(!enc.contains(&Encoding::RLE_DICTIONARY), "{enc:?}");
        assert!(enc.contains(&Encoding::PLAIN), "{enc:?}");
        let first = first_rows(&meta);
        let text: usize = want.iter().map(|s| 4 + s.len()).sum();
        assert!(first.len() >= text / (16 << 10), "{} pages", first.len());
        assert_eq!(first[0], 0);
        assert!(first.windows(2).all(|w| w[0] < w[1]));
        assert!(pages(&meta)
            .iter()
            .all(|p| p.compressed_page_size < 16 << 10));
    }

    /// What the writer does not write is refused, not written wrong.
    #[test]
    fn statistics_and_nulls_are_refused() {
        let schema = "message t { required binary s (STRING); optional binary n (STRING); }";
        let schema = parquet::schema::types::SchemaDescriptor::new(Arc::new(
            parse_message_type(schema).expect("schema"),
        ));
        let with_stats = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let e = DictColumn::new(schema.column(0), Arc::new(with_stats)).err();
        assert!(e.is_some_and(|e| e.to_string().contains("statistics")));
        let e = DictColumn::new(schema.column(1), Arc::new(props(1024, 1024))).err();
        assert!(e.is_some_and(|e| e.to_string().contains("nullable")));
        let snappy = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::None)
            .build();
        let e = DictColumn::new(schema.column(0), Arc::new(snappy)).err();
        assert!(e.is_some_and(|e| e.to_string().contains("zstd")));
    }
}
