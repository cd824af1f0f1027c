//! Integer column chunks in DELTA_BINARY_PACKED, encoded here rather than by parquet-rs.
//!
//! Most columns of `flows` and `flow_bins` are integers (counts, ports, durations,
//! bitrates) without statistics. parquet-rs's typed writer takes them in batches of
//! values, splits them into mini-batches, encodes definition levels one at a time and
//! makes a codec (two zstd contexts) for every column of every row group.
//! [`DeltaColumn`] takes the deltas of each tile's values as they come, packs each block
//! of deltas as it fills, and writes the chunk's pages itself ([`super::pages`]):
//! on a million flows on one CPU, the run's end phase (writing both tables) took 10 %
//! less time.
//!
//! The encoding is the format's: a header (block size, 4 miniblocks of 64 values for
//! INT64 and 32 for INT32, value count, first value), then per block the smallest delta and each miniblock's
//! deltas less it, bit-packed at the miniblock's width (parquet-rs's layout). INT32
//! columns take their deltas in 32-bit wrapping arithmetic, as the format's readers
//! (parquet-java among them) restore them, so no width passes 32 bits.
//!
//! Columns with min/max statistics stay with parquet-rs's writer.

use bytes::Bytes;
use parquet::basic::{Encoding, Type as PhysicalType, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result as PqResult};
use parquet::file::properties::WriterPropertiesPtr;
use parquet::schema::types::ColumnDescPtr;

use super::pages::{self, levels, varint, ChunkPages, Zstd};

/// Miniblocks per block, and values per miniblock of INT64 and INT32 columns
/// (parquet-rs's layout: 64 and 32 values; INT64 miniblocks of 32 values made
/// `flow_bins` 9 % larger after zstd: their widths vary more, which makes the packed
/// bytes less regular).
const MINIBLOCKS: usize = 4;
const MINI_WIDE: usize = 64;
const MINI_NARROW: usize = 32;
/// The larger block.
const BLOCK: usize = MINIBLOCKS * MINI_WIDE;

/// One integer column chunk being built.
pub(super) struct DeltaColumn {
    descr: ColumnDescPtr,
    props: WriterPropertiesPtr,
    level: ZstdLevel,
    /// INT64 (else INT32).
    wide: bool,
    nullable: bool,
    /// The page being filled.
    page: PageState,
    /// Pages complete but not yet compressed: their data and rows.
    done: Vec<(Vec<u8>, usize)>,
}

/// The values of the page being filled.
struct PageState {
    /// Per row, whether it has a value (nullable columns only).
    present: Vec<bool>,
    rows: usize,
    /// The first value and the last one so far; how many values.
    first: i64,
    prev: i64,
    values: usize,
    /// Deltas of the block being filled: the first `filled`, the smallest `min`.
    block: Box<[i64; BLOCK]>,
    filled: usize,
    min: i64,
    /// The blocks packed so far.
    body: Vec<u8>,
}

impl Default for PageState {
    fn default() -> PageState {
        PageState {
            present: Vec::new(),
            rows: 0,
            first: 0,
            prev: 0,
            values: 0,
            block: Box::new([0; BLOCK]),
            filled: 0,
            min: i64::MAX,
            body: Vec::new(),
        }
    }
}

impl DeltaColumn {
    /// A writer for the chunk of column `descr` (INT32 or INT64, DELTA_BINARY_PACKED
    /// in `props`, no statistics) in a row group.
    pub(super) fn new(descr: ColumnDescPtr, props: WriterPropertiesPtr) -> PqResult<DeltaColumn> {
        let level = pages::check(&descr, &props)?;
        let path = descr.path();
        let wide = match descr.physical_type() {
            PhysicalType::INT64 => true,
            PhysicalType::INT32 => false,
            other => {
                return Err(ParquetError::General(format!(
                    "column {path}: {other} is not an integer type"
                )))
            }
        };
        if props.encoding(path) != Some(Encoding::DELTA_BINARY_PACKED) {
            return Err(ParquetError::General(format!(
                "column {path}: not DELTA_BINARY_PACKED"
            )));
        }
        Ok(DeltaColumn {
            nullable: descr.max_def_level() > 0,
            descr,
            props,
            level,
            wide,
            page: PageState::default(),
            done: Vec::new(),
        })
    }

    /// Values per miniblock.
    fn mini(&self) -> usize {
        if self.wide {
            MINI_WIDE
        } else {
            MINI_NARROW
        }
    }

    /// Values per block.
    fn block_len(&self) -> usize {
        MINIBLOCKS * self.mini()
    }

    /// Whether the column takes 64-bit values (else 32-bit).
    pub(super) fn wide(&self) -> bool {
        self.wide
    }

    pub(super) fn nullable(&self) -> bool {
        self.nullable
    }

    /// Appends rows with `values` (`i32`s widened, for an INT32 column), all present.
    pub(super) fn extend(&mut self, values: &[i64]) {
        if self.nullable {
            self.page
                .present
                .extend(std::iter::repeat_n(true, values.len()));
        }
        self.page.rows += values.len();
        self.add(values);
        self.end_full_page();
    }

    /// Appends a row per item of `values`, null where it is `None` (the column must then
    /// be nullable: the caller checks); `buf` is room for the values present.
    pub(super) fn extend_options(
        &mut self,
        values: impl Iterator<Item = Option<i64>>,
        buf: &mut Vec<i64>,
    ) {
        buf.clear();
        let p = &mut self.page;
        for v in values {
            p.present.push(v.is_some());
            p.rows += 1;
            if let Some(v) = v {
                buf.push(v);
            }
        }
        self.add(buf);
        self.end_full_page();
    }

    /// Ends the page once it holds the page limit. Only between the calls that add
    /// rows, so that a page ends with the rows whose values it holds.
    #[inline]
    fn end_full_page(&mut self) {
        let p = &self.page;
        if p.body.len() + p.present.len() / 8 >= self.props.data_page_size_limit() {
            self.end_page();
        }
    }

    /// Adds `values` to the page's values (their rows are counted by the caller).
    fn add(&mut self, values: &[i64]) {
        let block_len = self.block_len();
        let mut rest = values;
        while let Some((&v, tail)) = rest.split_first() {
            let p = &mut self.page;
            if p.values == 0 {
                p.first = v;
                p.prev = v;
                p.values = 1;
                rest = tail;
                continue;
            }
            // Deltas of as many values as the block has room for.
            let n = (block_len - p.filled).min(rest.len());
            let (take, tail) = rest.split_at(n);
            // The smallest delta is kept as they are made: a pass of its own over the
            // block took half of the packing time (a 64-bit minimum has no SSE2
            // instruction).
            let (mut prev, mut min) = (p.prev, p.min);
            let block = &mut p.block[p.filled..p.filled + n];
            if self.wide {
                for (d, &v) in block.iter_mut().zip(take) {
                    *d = v.wrapping_sub(prev);
                    min = min.min(*d);
                    prev = v;
                }
            } else {
                for (d, &v) in block.iter_mut().zip(take) {
                    *d = i64::from((v as i32).wrapping_sub(prev as i32));
                    min = min.min(*d);
                    prev = v;
                }
            }
            p.prev = prev;
            p.min = min;
            p.filled += n;
            p.values += n;
            rest = tail;
            if p.filled == block_len {
                self.pack_block();
            }
        }
    }

    /// Packs the deltas of the block being filled (the last block of a page may have
    /// fewer than [`BLOCK`]) onto the page's body.
    #[cold]
    #[inline(never)]
    fn pack_block(&mut self) {
        let mini = self.mini();
        let p = &mut self.page;
        pack_block(&mut p.body, &p.block[..p.filled], p.min, self.wide, mini);
        (p.filled, p.min) = (0, i64::MAX);
    }

    /// Completes the page being filled: levels, header, blocks.
    fn end_page(&mut self) {
        if self.page.filled > 0 {
            self.pack_block();
        }
        let p = std::mem::take(&mut self.page);
        if p.rows == 0 {
            return;
        }
        let mut data = Vec::with_capacity(p.body.len() + p.present.len() / 4 + 32);
        if self.nullable {
            levels(&mut data, p.present.iter().copied());
        }
        varint(&mut data, self.block_len() as u64);
        varint(&mut data, MINIBLOCKS as u64);
        varint(&mut data, p.values as u64);
        varint(&mut data, zigzag(if p.values == 0 { 0 } else { p.first }));
        data.extend_from_slice(&p.body);
        self.done.push((data, p.rows));
    }

    /// Encodes and compresses the chunk: its bytes (pages with their headers) and what
    /// the row group needs to append them.
    pub(super) fn close(mut self, zstd: &mut Zstd) -> PqResult<(Bytes, ColumnCloseResult)> {
        self.end_page();
        let mut pages = ChunkPages::new(self.level, &self.props);
        for (data, rows) in &self.done {
            pages.data_page(zstd, data, *rows, Encoding::DELTA_BINARY_PACKED, None)?;
        }
        pages.finish(&self.descr)
    }
}

/// ZigZag: small negative and positive numbers to small unsigned ones.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Appends one block: the smallest delta, the four miniblock widths, and the miniblocks
/// that hold deltas, each of `mini` values (the last padded with zeros), bit-packed
/// least significant bit first. `deltas` holds 1 to 4 × `mini` deltas, the smallest
/// `min`; for an INT32 column they are 32-bit deltas sign-extended, and are packed less
/// the smallest in 32-bit arithmetic.
fn pack_block(out: &mut Vec<u8>, deltas: &[i64], min: i64, wide: bool, mini: usize) {
    debug_assert_eq!(deltas.iter().copied().min(), Some(min));
    varint(out, zigzag(min));
    let mut offsets = [0u64; BLOCK];
    if wide {
        for (o, &d) in offsets.iter_mut().zip(deltas) {
            *o = d.wrapping_sub(min) as u64;
        }
    } else {
        for (o, &d) in offsets.iter_mut().zip(deltas) {
            *o = u64::from((d as i32).wrapping_sub(min as i32) as u32);
        }
    }
    // A miniblock's width: the bits of the largest offset, which the OR of them all has.
    let used = deltas.len().div_ceil(mini);
    let mut widths = [0u8; MINIBLOCKS];
    for (w, mini) in widths.iter_mut().zip(offsets.chunks_exact(mini)).take(used) {
        let any = mini.iter().fold(0, |a, &o| a | o);
        *w = (64 - any.leading_zeros()) as u8;
    }
    out.extend_from_slice(&widths);
    for (&width, mini) in widths.iter().zip(offsets.chunks_exact(mini)).take(used) {
        pack(out, mini, u32::from(width));
    }
}

/// Bit-packs `values` (each below 2^`width`), least significant bit first, in 64-bit
/// words and, for 32 values of an odd width, a last half word.
#[inline]
fn pack(out: &mut Vec<u8>, values: &[u64], width: u32) {
    if width == 0 {
        return;
    }
    let (mut acc, mut bits) = (0u64, 0u32);
    for &v in values {
        acc |= v << bits;
        bits += width;
        if bits >= 64 {
            out.extend_from_slice(&acc.to_le_bytes());
            bits -= 64;
            // The bits of `v` that did not fit (none when it ended the word exactly).
            acc = if bits == 0 { 0 } else { v >> (width - bits) };
        }
    }
    out.extend_from_slice(&acc.to_le_bytes()[..(bits / 8) as usize]);
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type};
    use arrow_array::Array;
    use parquet::basic::Compression;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};

    use super::*;
    use crate::writer::pages::tests::{first_rows, round_trip};

    /// Properties as the tables' (zstd, delta encoding, no statistics) with the given
    /// page limit.
    fn props(page_limit: usize) -> WriterProperties {
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level")))
            .set_dictionary_enabled(false)
            .set_encoding(Encoding::DELTA_BINARY_PACKED)
            .set_statistics_enabled(EnabledStatistics::None)
            .set_data_page_size_limit(page_limit)
            .build()
    }

    /// Writes `rows` (null where `None`) as a chunk of an `int64` or `int32` column
    /// (`wide`), in tiles of varied sizes as the table writers hand them over, and reads
    /// them back with parquet-rs's reader. Returns the values and the data pages' first
    /// rows.
    fn round_trip_ints(
        rows: &[Option<i64>],
        wide: bool,
        nullable: bool,
        page_limit: usize,
    ) -> (Vec<Option<i64>>, Vec<i64>) {
        let schema = format!(
            "message t {{ {} {} v; }}",
            if nullable { "optional" } else { "required" },
            if wide { "int64" } else { "int32" }
        );
        let (arrays, meta) = round_trip(&schema, props(page_limit), |descr, props| {
            let mut col = DeltaColumn::new(descr, props)?;
            let mut buf = Vec::new();
            let mut at = 0;
            for tile in [1, 7, 1000, 3, 256, 255, 257, 1024].iter().cycle() {
                if at >= rows.len() {
                    break;
                }
                let part = &rows[at..(at + tile).min(rows.len())];
                if nullable {
                    col.extend_options(part.iter().copied(), &mut buf);
                } else {
                    let values: Vec<i64> = part.iter().map(|v| v.expect("value")).collect();
                    col.extend(&values);
                }
                at += part.len();
            }
            col.close(&mut Zstd::default())
        });
        let mut values = Vec::new();
        for a in &arrays {
            if wide {
                let a = a.as_primitive::<Int64Type>();
                values.extend((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))));
            } else {
                let a = a.as_primitive::<Int32Type>();
                values.extend((0..a.len()).map(|i| a.is_valid(i).then(|| i64::from(a.value(i)))));
            }
        }
        let encodings: Vec<Encoding> = meta.row_group(0).column(0).encodings().collect();
        assert!(
            encodings.contains(&Encoding::DELTA_BINARY_PACKED),
            "{encodings:?}"
        );
        (values, first_rows(&meta))
    }

    /// Value sequences that stress the encoding: constants, steps, counters, random values
    /// over the whole range (deltas that wrap), the extremes in turn, and lengths around
    /// the block (256) and miniblock (64) sizes.
    fn sequences(wide: bool) -> Vec<Vec<i64>> {
        let (lo, hi) = if wide {
            (i64::MIN, i64::MAX)
        } else {
            (i64::from(i32::MIN), i64::from(i32::MAX))
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut random = |n: usize, bits: u32| -> Vec<i64> {
            (0..n)
                .map(|_| {
                    let v = next() as i64 >> (64 - bits);
                    if wide {
                        v
                    } else {
                        i64::from(v as i32)
                    }
                })
                .collect()
        };
        let mut seqs = vec![
            vec![7],
            vec![7; 256],
            vec![-3; 257],
            (0..1000).collect(),
            (0..1000).map(|i| 1_000_000 - 3 * i).collect(),
            (0..600).map(|i| [lo, hi, 0, -1][i % 4]).collect(),
            (0..65).map(|i| i * i).collect(),
        ];
        for n in [2, 63, 64, 65, 255, 256, 257, 511, 513, 5000] {
            seqs.push(random(n, if wide { 64 } else { 32 }));
            seqs.push(random(n, 9));
        }
        seqs
    }

    /// Every sequence reads back as written, in 64- and 32-bit columns, with and without
    /// nulls, in one page or many.
    #[test]
    fn integers_read_back_as_written() {
        for wide in [true, false] {
            for seq in sequences(wide) {
                for page_limit in [1 << 20, 100] {
                    let rows: Vec<Option<i64>> = seq.iter().map(|&v| Some(v)).collect();
                    let (got, _) = round_trip_ints(&rows, wide, false, page_limit);
                    assert_eq!(got, rows, "wide {wide} limit {page_limit}");
                    // Nulls in runs and alone, at the start and the end.
                    let rows: Vec<Option<i64>> = seq
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| (i % 7 != 0 && i % 50 > 10).then_some(v))
                        .collect();
                    let (got, _) = round_trip_ints(&rows, wide, true, page_limit);
                    assert_eq!(got, rows, "wide {wide} limit {page_limit}, nulls");
                }
            }
            let nulls = vec![None; 300];
            assert_eq!(round_trip_ints(&nulls, wide, true, 1 << 20).0, nulls);
        }
    }

    /// A column without nulls is written byte for byte as parquet-rs's own column writer
    /// writes it (same block layout, same zstd frames): the encoder's oracle.
    #[test]
    fn required_columns_match_parquet_rs_byte_for_byte() {
        use parquet::column::writer::{get_column_writer, ColumnWriter};
        let schema = "message t { required int64 a; required int32 b; }";
        let schema = parquet::schema::types::SchemaDescriptor::new(std::sync::Arc::new(
            parquet::schema::parser::parse_message_type(schema).expect("schema"),
        ));
        let props = std::sync::Arc::new(props(1 << 20));
        for wide in [true, false] {
            let descr = schema.column(usize::from(!wide));
            for seq in sequences(wide) {
                let pages = crate::writer::PageBuf::new();
                let mut theirs =
                    get_column_writer(descr.clone(), props.clone(), Box::new(pages.clone()));
                let written = match &mut theirs {
                    ColumnWriter::Int64ColumnWriter(w) => w.write_batch(&seq, None, None),
                    ColumnWriter::Int32ColumnWriter(w) => {
                        let narrow: Vec<i32> = seq.iter().map(|&v| v as i32).collect();
                        w.write_batch(&narrow, None, None)
                    }
                    _ => unreachable!("an integer column"),
                };
                assert_eq!(written.expect("write"), seq.len());
                let theirs_closed = theirs.close().expect("close");
                let theirs = pages.take().expect("pages");

                let mut ours = DeltaColumn::new(descr.clone(), props.clone()).expect("column");
                for tile in seq.chunks(1000) {
                    ours.extend(tile);
                }
                let (ours, ours_closed) = ours.close(&mut Zstd::default()).expect("close");
                assert_eq!(ours, theirs, "wide {wide}, {} values", seq.len());
                let (a, b) = (&ours_closed.metadata, &theirs_closed.metadata);
                assert_eq!(a.num_values(), b.num_values());
                assert_eq!(a.compressed_size(), b.compressed_size());
                assert_eq!(a.uncompressed_size(), b.uncompressed_size());
            }
        }
    }

    /// A small page limit cuts the chunk into pages, each ending with the rows the
    /// writer was given when it passed the limit; the offset index has each page's
    /// first row.
    #[test]
    fn pages_end_at_the_limit_and_are_indexed() {
        let rows: Vec<Option<i64>> = (0..10_000).map(|i| Some(i * 1_000_003 % 65_536)).collect();
        for nullable in [false, true] {
            let (got, first) = round_trip_ints(&rows, true, nullable, 512);
            assert_eq!(got, rows);
            // 16-bit deltas, a block of 256 is ~520 bytes: a page ends after the first
            // tile (of 1, 7, 1000, 3, 256, 255, 257, 1024 rows in turn) that completes
            // a block of its deltas (the 255 rows after the first 256 do not).
            assert_eq!(
                first,
                [
                    0, 1008, 1267, 1779, 2803, 3811, 4070, 4582, 5606, 6614, 6873, 7385, 8409,
                    9417, 9676
                ]
            );
        }
    }

    /// What the writer does not write is refused, not written wrong.
    #[test]
    fn other_columns_are_refused() {
        let schema = "message t { required int64 a; required double b; }";
        let schema = parquet::schema::types::SchemaDescriptor::new(std::sync::Arc::new(
            parquet::schema::parser::parse_message_type(schema).expect("schema"),
        ));
        let refused = |col: usize, props: WriterProperties| {
            DeltaColumn::new(schema.column(col), std::sync::Arc::new(props))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(refused(1, props(1024)).contains("not an integer"));
        let plain = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_statistics_enabled(EnabledStatistics::None)
            .build();
        assert!(refused(0, plain).contains("DELTA_BINARY_PACKED"));
        let stats = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_encoding(Encoding::DELTA_BINARY_PACKED)
            .build();
        assert!(refused(0, stats).contains("statistics"));
    }
}
