//! String column chunks, dictionary-encoded here rather than by parquet-rs.
//!
//! parquet-rs's byte-array encoder interns every row's string (a hash of its bytes and a
//! comparison), also when the Arrow input is already a dictionary, and the text of each
//! row has to be built first. Our string columns are addresses and names from a fixed
//! set, whose distinct values have a cheaper identity: the address as an integer, the
//! name's static text. [`DictColumn`] keys its dictionary by that, writes each distinct
//! value's text once, and writes the chunk's pages itself ([`super::pages`]): a PLAIN
//! dictionary page and RLE_DICTIONARY data pages. A chunk whose dictionary outgrows the
//! column's dictionary page limit is written PLAIN instead (parquet-rs switches to PLAIN
//! mid-chunk; here the whole chunk is in memory, so it decides once).
//!
//! On a million flows (50,000 clients, 250 servers) on one CPU, the four string columns
//! cost the `flows` writer about 80 ms through parquet-rs (a quarter of its time).

use std::net::IpAddr;

use bytes::Bytes;
use hashbrown::HashMap;
use parquet::basic::{Encoding, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result as PqResult};
use parquet::file::properties::WriterPropertiesPtr;
use parquet::schema::types::ColumnDescPtr;

use super::pages::{self, hybrid, ChunkPages, Zstd};
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
        let level = pages::check(&descr, &props)?;
        let path = descr.path();
        if descr.max_def_level() > 0 {
            // No table has one yet; nulls would need definition levels in the pages.
            return Err(ParquetError::General(format!(
                "string column {path}: nullable, which is not written yet"
            )));
        }
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

    /// Encodes and compresses the chunk: its bytes (pages with their headers) and what
    /// the row group needs to append them.
    pub(super) fn close(self, zstd: &mut Zstd) -> PqResult<(Bytes, ColumnCloseResult)> {
        let page_limit = self.props.data_page_size_limit().max(1);
        let mut pages = ChunkPages::new(self.level, &self.props);
        match &self.rows {
            Rows::Dict(d) => {
                pages.dictionary_page(zstd, &d.text, d.starts.len())?;
                // Text bytes of each entry, for the offset index.
                let lens: Vec<i64> = (0..d.starts.len() as u32)
                    .map(|k| d.plain(k).len() as i64 - 4)
                    .collect();
                let width = bit_width(d.starts.len());
                let per_page = (page_limit.saturating_mul(8) / usize::from(width.max(1))).max(8);
                let mut buf = Vec::new();
                for keys in d.keys.chunks(per_page) {
                    buf.clear();
                    buf.push(width);
                    hybrid(&mut buf, width, keys.iter().copied());
                    let text = keys.iter().map(|&k| lens[k as usize]).sum();
                    let encoding = Encoding::RLE_DICTIONARY;
                    pages.data_page(zstd, &buf, keys.len(), encoding, Some(text))?;
                }
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
                    let text_bytes = Some((end - at - 4 * n) as i64);
                    pages.data_page(zstd, &text[at..end], n, Encoding::PLAIN, text_bytes)?;
                    at = end;
                }
            }
        }
        pages.finish(&self.descr)
    }
}

/// Bits per dictionary index for `entries` entries (0 for one entry, as parquet-rs).
fn bit_width(entries: usize) -> u8 {
    let max = entries.saturating_sub(1) as u64;
    (64 - max.leading_zeros()) as u8
}

#[cfg(test)]
pub(super) mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::metadata::ParquetMetaData;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
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
    /// then reads the file with parquet-rs's Arrow reader: the strings and the metadata.
    fn round_trip(
        props: WriterProperties,
        push: impl FnOnce(&mut DictColumn),
    ) -> (Vec<String>, Arc<ParquetMetaData>) {
        let schema = "message t { required binary s (STRING); }";
        let (arrays, meta) = pages::tests::round_trip(schema, props, |descr, props| {
            let mut col = DictColumn::new(descr, props)?;
            push(&mut col);
            col.close(&mut Zstd::default())
        });
        let values = arrays
            .iter()
            .flat_map(|a| a.as_string::<i32>().iter())
            .map(|v| v.expect("not null").to_string())
            .collect();
        (values, meta)
    }

    fn encodings(meta: &ParquetMetaData) -> Vec<Encoding> {
        meta.row_group(0).column(0).encodings().collect()
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
        let first = pages::tests::first_rows(&meta);
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
        let first = pages::tests::first_rows(&meta);
        let text: usize = want.iter().map(|s| 4 + s.len()).sum();
        assert!(first.len() >= text / (16 << 10), "{} pages", first.len());
        assert_eq!(first[0], 0);
        assert!(first.windows(2).all(|w| w[0] < w[1]));
        let locations = pages::tests::pages(&meta);
        assert!(locations.iter().all(|p| p.compressed_page_size < 16 << 10));
    }

    /// A chunk that keeps its dictionary is written byte for byte as parquet-rs's Arrow
    /// writer writes the same strings (same dictionary order, same run encoding, same
    /// zstd frames): the encoder's oracle.
    #[test]
    fn dictionary_chunks_match_parquet_rs_byte_for_byte() {
        use arrow_array::{ArrayRef, RecordBatch, StringArray};
        use arrow_schema::{DataType, Field, Schema};
        use parquet::arrow::ArrowWriter;
        use parquet::file::reader::{FileReader, SerializedFileReader};

        const NAMES: [&str; 4] = ["syn", "multicast", "well_known_port", "first_sender"];
        let props = || {
            WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level")))
                .set_statistics_enabled(EnabledStatistics::None)
                .set_dictionary_page_size_limit(64 << 20)
                .set_data_page_row_count_limit(usize::MAX)
                .build()
        };
        // Each case: the strings, and how to push them into a DictColumn.
        type Push = Box<dyn Fn(&mut DictColumn)>;
        let cases: Vec<(Vec<String>, Push)> = vec![
            {
                let keys = runs(5000, 4);
                let text = keys
                    .iter()
                    .map(|&k| NAMES[k as usize].to_string())
                    .collect();
                (
                    text,
                    Box::new(move |c| keys.iter().for_each(|&k| c.push_name(NAMES[k as usize]))),
                )
            },
            {
                let keys = runs(20_000, 3000);
                let text = keys.iter().map(|&k| addr(k).to_string()).collect();
                (
                    text,
                    Box::new(move |c| keys.iter().for_each(|&k| c.push_addr(addr(k)))),
                )
            },
            {
                let keys = vec![9u32; 700];
                let text = keys.iter().map(|&k| addr(k).to_string()).collect();
                (
                    text,
                    Box::new(move |c| keys.iter().for_each(|&k| c.push_addr(addr(k)))),
                )
            },
        ];
        for (text, push) in cases {
            let field = Field::new("s", DataType::Utf8, false);
            let schema = Arc::new(Schema::new(vec![field]));
            let mut theirs = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props()))
                .expect("writer");
            let array: ArrayRef = Arc::new(StringArray::from(text.clone()));
            let batch = RecordBatch::try_new(schema, vec![array]).expect("batch");
            theirs.write(&batch).expect("write");
            let file = Bytes::from(theirs.into_inner().expect("finish"));
            let reader = SerializedFileReader::new(file.clone()).expect("footer");
            let chunk = reader.metadata().row_group(0).column(0);
            let start = chunk.dictionary_page_offset().expect("a dictionary") as usize;
            let theirs = &file[start..start + chunk.compressed_size() as usize];

            let descr_schema = "message t { required binary s (STRING); }";
            let descr = parquet::schema::types::SchemaDescriptor::new(Arc::new(
                parse_message_type(descr_schema).expect("schema"),
            ));
            let mut ours = DictColumn::new(descr.column(0), Arc::new(props())).expect("column");
            push(&mut ours);
            let (ours, _) = ours.close(&mut Zstd::default()).expect("close");
            assert_eq!(&ours[..], theirs, "{} rows", text.len());
        }
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
