//! The pages of a column chunk encoded by this crate rather than by parquet-rs's column
//! writers ([`super::dict`] for strings, [`super::delta`] for integers): page headers
//! through parquet's page writer, zstd through one context per writer thread, and the
//! chunk metadata and offset index laid out as parquet-rs's column writer lays them out
//! (format v1 data pages, as the rest of the file).
//!
//! Also the RLE / bit-packing hybrid ([`hybrid`]) that dictionary indices and definition
//! levels are written in: parquet-rs exports its encoder only with its `experimental`
//! feature, which pulls in the Variant crates.

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType, ZstdLevel};
use parquet::column::page::{CompressedPage, Page, PageWriteSpec, PageWriter as _};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result as PqResult};
use parquet::file::metadata::{ColumnChunkMetaData, OffsetIndexBuilder, PageEncodingStats};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// What a column written here needs of the writer properties, checked once: zstd and
/// no statistics (min/max are not computed here; the columns that have them stay with
/// parquet-rs's writers).
pub(super) fn check(descr: &ColumnDescPtr, props: &WriterProperties) -> PqResult<ZstdLevel> {
    let path = descr.path();
    let fail = |what: &str| Err(ParquetError::General(format!("column {path}: {what}")));
    if props.statistics_enabled(path) != EnabledStatistics::None {
        return fail("statistics requested, which are not written here");
    }
    if descr.max_rep_level() > 0 {
        return fail("repeated, which is not written here");
    }
    match props.compression(path) {
        Compression::ZSTD(level) => Ok(level),
        _ => fail("only zstd is written here"),
    }
}

/// The pages of one column chunk as they are written, and what its metadata records.
pub(super) struct ChunkPages {
    level: ZstdLevel,
    sink: TrackedWrite<Vec<u8>>,
    /// Sizes of the pages, headers included: uncompressed, compressed.
    uncompressed: usize,
    compressed: usize,
    offsets: Option<OffsetIndexBuilder>,
    dictionary_page_offset: Option<i64>,
    data_page_offset: Option<i64>,
    data_pages: i32,
    encoding: Option<Encoding>,
    rows: usize,
}

impl ChunkPages {
    pub(super) fn new(level: ZstdLevel, props: &WriterProperties) -> ChunkPages {
        ChunkPages {
            level,
            sink: TrackedWrite::new(Vec::new()),
            uncompressed: 0,
            compressed: 0,
            offsets: (!props.offset_index_disabled()).then(OffsetIndexBuilder::new),
            dictionary_page_offset: None,
            data_page_offset: None,
            data_pages: 0,
            encoding: None,
            rows: 0,
        }
    }

    fn write(&mut self, page: Page, uncompressed_size: usize) -> PqResult<PageWriteSpec> {
        let page = CompressedPage::new(page, uncompressed_size);
        let spec = SerializedPageWriter::new(&mut self.sink).write_page(page)?;
        self.uncompressed += spec.uncompressed_size;
        self.compressed += spec.compressed_size;
        Ok(spec)
    }

    /// The dictionary page (PLAIN), before any data page.
    pub(super) fn dictionary_page(
        &mut self,
        zstd: &mut Zstd,
        plain: &[u8],
        entries: usize,
    ) -> PqResult<()> {
        let page = Page::DictionaryPage {
            buf: Bytes::from(zstd.compress(self.level, plain)?),
            num_values: entries as u32,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        };
        let spec = self.write(page, plain.len())?;
        self.dictionary_page_offset = Some(spec.offset as i64);
        Ok(())
    }

    /// A data page of `rows` rows whose levels and values are `data`, values in
    /// `encoding` (one for the whole chunk). `text_bytes`: for string columns, the bytes
    /// of their text (the offset index records them).
    pub(super) fn data_page(
        &mut self,
        zstd: &mut Zstd,
        data: &[u8],
        rows: usize,
        encoding: Encoding,
        text_bytes: Option<i64>,
    ) -> PqResult<()> {
        let page = Page::DataPage {
            buf: Bytes::from(zstd.compress(self.level, data)?),
            num_values: rows as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let spec = self.write(page, data.len())?;
        self.data_page_offset.get_or_insert(spec.offset as i64);
        self.data_pages += 1;
        self.encoding = Some(encoding);
        self.rows += rows;
        if let Some(o) = self.offsets.as_mut() {
            o.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
            o.append_row_count(rows as i64);
            o.append_unencoded_byte_array_data_bytes(text_bytes);
        }
        Ok(())
    }

    /// The chunk's bytes and what the row group records of it.
    pub(super) fn finish(self, descr: &ColumnDescPtr) -> PqResult<(Bytes, ColumnCloseResult)> {
        // RLE for the levels, as parquet-rs records it whether or not there are any.
        let mut encodings = vec![Encoding::RLE];
        let mut stats = Vec::new();
        if self.dictionary_page_offset.is_some() {
            encodings.push(Encoding::PLAIN);
            stats.push(PageEncodingStats {
                page_type: PageType::DICTIONARY_PAGE,
                encoding: Encoding::PLAIN,
                count: 1,
            });
        }
        if let Some(encoding) = self.encoding {
            encodings.push(encoding);
            stats.push(PageEncodingStats {
                page_type: PageType::DATA_PAGE,
                encoding,
                count: self.data_pages,
            });
        }
        let metadata = ColumnChunkMetaData::builder(descr.clone())
            .set_compression(Compression::ZSTD(self.level))
            .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
            .set_page_encoding_stats(stats)
            .set_total_compressed_size(self.compressed as i64)
            .set_total_uncompressed_size(self.uncompressed as i64)
            .set_num_values(self.rows as i64)
            .set_data_page_offset(self.data_page_offset.unwrap_or(0))
            .set_dictionary_page_offset(self.dictionary_page_offset)
            .build()?;
        let closed = ColumnCloseResult {
            bytes_written: self.sink.bytes_written() as u64,
            rows_written: self.rows as u64,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: self.offsets.map(OffsetIndexBuilder::build),
        };
        Ok((Bytes::from(self.sink.into_inner()?), closed))
    }
}

/// A zstd compression context kept for a writer thread's pages (making one costs more
/// than compressing a small page), remade only if the level changes.
#[derive(Default)]
pub(super) struct Zstd(Option<(i32, zstd::bulk::Compressor<'static>)>);

impl Zstd {
    fn compress(&mut self, level: ZstdLevel, data: &[u8]) -> PqResult<Vec<u8>> {
        let level = level.compression_level();
        let compressor = match &mut self.0 {
            Some((l, c)) if *l == level => c,
            _ => {
                let c = zstd::bulk::Compressor::new(level).map_err(zstd_err)?;
                &mut self.0.insert((level, c)).1
            }
        };
        compressor.compress(data).map_err(zstd_err)
    }
}

#[cold]
fn zstd_err(e: std::io::Error) -> ParquetError {
    ParquetError::General(format!("zstd: {e}"))
}

/// Definition levels of a v1 data page (bit width 1, a level per row): a 4-byte
/// little-endian length, then the hybrid encoding.
pub(super) fn levels(out: &mut Vec<u8>, present: impl Iterator<Item = bool>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    hybrid(out, 1, present.map(u32::from));
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
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

/// ULEB128, as run headers and the delta encoding's headers are written.
pub(super) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use arrow_array::ArrayRef;
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
    use parquet::file::page_index::offset_index::PageLocation;
    use parquet::file::properties::WriterPropertiesPtr;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    use super::*;

    /// Writes the chunk that `chunk` makes (from the column's descriptor and `props`) as
    /// the one column of a file of `schema`, then reads the file with parquet-rs's Arrow
    /// reader, page index required: the column's arrays and the metadata.
    pub(in crate::writer) fn round_trip(
        schema: &str,
        props: WriterProperties,
        chunk: impl FnOnce(ColumnDescPtr, WriterPropertiesPtr) -> PqResult<(Bytes, ColumnCloseResult)>,
    ) -> (Vec<ArrayRef>, Arc<ParquetMetaData>) {
        let schema = Arc::new(parse_message_type(schema).expect("schema"));
        let props = Arc::new(props);
        let mut file =
            SerializedFileWriter::new(Vec::new(), schema, Arc::clone(&props)).expect("file");
        let (bytes, closed) = chunk(file.schema_descr().column(0), props).expect("chunk");
        let mut group = file.next_row_group().expect("row group");
        group.append_column(&bytes, closed).expect("append");
        group.close().expect("close row group");
        let data = Bytes::from(file.into_inner().expect("finish"));
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let reader =
            ParquetRecordBatchReaderBuilder::try_new_with_options(data, options).expect("read");
        let meta = Arc::clone(reader.metadata());
        let arrays = reader
            .build()
            .expect("reader")
            .map(|b| Arc::clone(b.expect("batch").column(0)))
            .collect();
        (arrays, meta)
    }

    /// The offset index of the one chunk: where its data pages are.
    pub(in crate::writer) fn pages(meta: &ParquetMetaData) -> Vec<PageLocation> {
        let index = meta.page_index_for_row_group(0);
        index
            .offset_index(0)
            .expect("offset index")
            .page_locations()
            .clone()
    }

    /// Each data page's first row, from the offset index.
    pub(in crate::writer) fn first_rows(meta: &ParquetMetaData) -> Vec<i64> {
        pages(meta).iter().map(|p| p.first_row_index).collect()
    }

    /// Levels and dictionary indices: runs of every length around the groups of 8, at
    /// widths 0 to 17, decode as written (a decoder written from the format's text).
    #[test]
    fn hybrid_runs_decode_as_written() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for width in [0u8, 1, 2, 3, 7, 8, 9, 16, 17] {
            let mut values = Vec::new();
            while values.len() < 5000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = if width == 0 {
                    0
                } else {
                    (x >> 20) as u32 & ((1 << width) - 1)
                };
                values.extend(std::iter::repeat_n(v, (x % 23 + 1) as usize));
            }
            let mut out = Vec::new();
            hybrid(&mut out, width, values.iter().copied());
            assert_eq!(
                decode_hybrid(&out, width, values.len()),
                values,
                "width {width}"
            );
        }
    }

    /// The format's RLE / bit-packing hybrid, decoded.
    fn decode_hybrid(mut data: &[u8], width: u8, n: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let varint = |data: &mut &[u8]| {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let b = data[0];
                *data = &data[1..];
                v |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b < 0x80 {
                    return v;
                }
            }
        };
        while out.len() < n {
            let header = varint(&mut data);
            if header & 1 == 1 {
                let count = (header >> 1) as usize * 8;
                let bytes = (header >> 1) as usize * usize::from(width);
                let (packed, rest) = data.split_at(bytes);
                for i in 0..count {
                    let mut v = 0u32;
                    for b in 0..usize::from(width) {
                        let bit = i * usize::from(width) + b;
                        v |= u32::from((packed[bit / 8] >> (bit % 8)) & 1) << b;
                    }
                    out.push(v);
                }
                data = rest;
            } else {
                let bytes = usize::from(width).div_ceil(8);
                let mut v = [0u8; 4];
                v[..bytes].copy_from_slice(&data[..bytes]);
                data = &data[bytes..];
                out.extend(std::iter::repeat_n(
                    u32::from_le_bytes(v),
                    (header >> 1) as usize,
                ));
            }
        }
        out.truncate(n);
        assert!(data.is_empty(), "{} bytes left", data.len());
        out
    }
}
