//! Tests of the generic row interface on a table of every column type: nullable text,
//! nullable dictionary text, lists of text, rows with owned and with borrowed text, and
//! rows that do not match their declaration.

use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Encoding;
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::{Output, Table, ROW_GROUP_ROWS};
use crate::error::{Error, RowMismatch};
use crate::row::{Row, RowWriter};
use crate::schema::{arrow_schema, ColType, Column, TableSpec};

const fn col(name: &'static str, ty: ColType, nullable: bool) -> Column {
    Column {
        name,
        ty,
        nullable,
        meaning: "A test column.",
    }
}

/// A table of every column type, shaped like the DNS table to come.
const EVERY: TableSpec = TableSpec {
    name: "every_type",
    description: "One row per test value.",
    sort: "ts",
    statistics: &["id", "ts"],
    columns: &[
        col("id", ColType::Int64, false),
        col("ts", ColType::TimestampUs, false),
        col("port", ColType::Int32, true),
        col("ok", ColType::Bool, true),
        col("ratio", ColType::Float64, true),
        col("kind", ColType::DictUtf8, false),
        col("rcode", ColType::DictUtf8, true),
        col("name", ColType::Utf8, true),
        col("server_addr", ColType::Utf8, false),
        col("answer_addrs", ColType::ListUtf8, true),
        col("cnames", ColType::ListUtf8, false),
    ],
};

/// A row with owned text, pushed with [`Output::push`].
#[derive(Debug, Clone, PartialEq)]
struct Owned {
    id: i64,
    ts_ns: i64,
    port: Option<u16>,
    ok: Option<bool>,
    ratio: Option<f64>,
    kind: &'static str,
    rcode: Option<String>,
    name: Option<String>,
    server: IpAddr,
    answers: Option<Vec<IpAddr>>,
    cnames: Vec<String>,
}

impl Row for Owned {
    const TABLE: &'static TableSpec = &EVERY;

    fn append(&self, w: &mut RowWriter<'_>) {
        w.i64("id", self.id);
        w.ts_ns("ts", self.ts_ns);
        w.opt_i32("port", self.port);
        w.opt_bool("ok", self.ok);
        w.opt_f64("ratio", self.ratio);
        w.str("kind", self.kind);
        w.opt_str("rcode", self.rcode.as_deref());
        w.opt_str("name", self.name.as_deref());
        w.addr("server_addr", self.server);
        w.opt_addrs(
            "answer_addrs",
            self.answers.as_ref().map(|a| a.iter().copied()),
        );
        w.strs("cnames", &self.cnames);
    }
}

/// A row borrowing its text from the caller, pushed with [`Output::push_ref`].
struct Borrowed<'a> {
    id: i64,
    ts_ns: i64,
    name: Option<&'a str>,
    cnames: &'a [&'a str],
}

impl Row for Borrowed<'_> {
    const TABLE: &'static TableSpec = &EVERY;

    fn append(&self, w: &mut RowWriter<'_>) {
        w.i64("id", self.id);
        w.ts_ns("ts", self.ts_ns);
        w.null("port");
        w.null("ok");
        w.null("ratio");
        w.str("kind", "borrowed");
        w.null("rcode");
        w.opt_str("name", self.name);
        w.addr("server_addr", IpAddr::V4(Ipv4Addr::LOCALHOST));
        w.null("answer_addrs");
        w.strs("cnames", self.cnames);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "streamscope-store-{}-table-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&d);
    d
}

fn read_batches(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).expect("open parquet");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet footer");
    assert_eq!(
        builder.schema().fields(),
        arrow_schema(&EVERY).fields(),
        "the file's Arrow schema is the declared one"
    );
    builder
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect()
}

/// Every row of the file back as an [`Owned`] row (borrowed rows come back owned).
fn read_rows(path: &Path) -> Vec<Owned> {
    let mut rows = Vec::new();
    for b in read_batches(path) {
        let c = |name: &str| b.column_by_name(name).expect(name).clone();
        let id = c("id");
        let ts = c("ts");
        let port = c("port");
        let ok = c("ok");
        let ratio = c("ratio");
        let (kind, rcode) = (c("kind"), c("rcode"));
        let (name, server) = (c("name"), c("server_addr"));
        let (answers, cnames) = (c("answer_addrs"), c("cnames"));
        let dict = |a: &dyn Array, i: usize| -> Option<String> {
            let d = a.as_dictionary::<Int32Type>();
            let values = d.values().as_string::<i32>();
            d.key(i).map(|k| values.value(k).to_string())
        };
        let list = |a: &dyn Array, i: usize| -> Option<Vec<String>> {
            let l = a.as_list::<i32>();
            l.is_valid(i).then(|| {
                let v = l.value(i);
                let v = v.as_string::<i32>();
                (0..v.len()).map(|j| v.value(j).to_string()).collect()
            })
        };
        for i in 0..b.num_rows() {
            fn text(a: &dyn Array) -> &arrow_array::StringArray {
                a.as_string::<i32>()
            }
            rows.push(Owned {
                id: id.as_primitive::<Int64Type>().value(i),
                // Back to ns: the file holds µs.
                ts_ns: ts.as_primitive::<TimestampMicrosecondType>().value(i) * 1_000,
                port: port
                    .as_primitive::<Int32Type>()
                    .is_valid(i)
                    .then(|| port.as_primitive::<Int32Type>().value(i) as u16),
                ok: ok
                    .as_boolean()
                    .is_valid(i)
                    .then(|| ok.as_boolean().value(i)),
                ratio: ratio
                    .as_primitive::<Float64Type>()
                    .is_valid(i)
                    .then(|| ratio.as_primitive::<Float64Type>().value(i)),
                kind: match dict(kind.as_ref(), i).as_deref() {
                    Some("query") => "query",
                    Some("borrowed") => "borrowed",
                    other => panic!("kind {other:?}"),
                },
                rcode: dict(rcode.as_ref(), i),
                name: text(name.as_ref())
                    .is_valid(i)
                    .then(|| text(name.as_ref()).value(i).to_string()),
                server: text(server.as_ref()).value(i).parse().expect("address"),
                answers: list(answers.as_ref(), i)
                    .map(|l| l.iter().map(|a| a.parse().expect("address")).collect()),
                cnames: list(cnames.as_ref(), i).expect("cnames are never null"),
            });
        }
    }
    rows
}

fn owned(i: i64) -> Owned {
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16));
    Owned {
        id: i,
        ts_ns: 1_700_000_000_000_000_000 + i * 1_000,
        port: (i % 3 != 0).then_some(53),
        ok: (i % 5 != 0).then_some(i % 2 == 0),
        ratio: (i % 4 != 0).then_some(i as f64 / 7.0),
        kind: "query",
        // A handful of values, and past every 8th row many (the dictionary's index).
        rcode: match i % 3 {
            0 => None,
            1 => Some("NOERROR".to_string()),
            _ if i % 8 == 5 => Some(format!("RCODE{}", i % 1_000)),
            _ => Some("NXDOMAIN".to_string()),
        },
        name: match i % 4 {
            0 => None,
            1 => Some(String::new()),
            2 => Some(format!("host-{i}.example.org")),
            _ => Some(format!("ünïcödé-{i}.例え.jp")),
        },
        server: if i % 2 == 0 {
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 250) as u8))
        } else {
            v6
        },
        answers: match i % 3 {
            0 => None,
            1 => Some(Vec::new()),
            _ => Some(vec![IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), v6]),
        },
        cnames: (0..i % 4)
            .map(|k| format!("alias-{k}.cdn.example"))
            .collect(),
    }
}

#[test]
fn every_column_type_round_trips_with_owned_and_borrowed_rows() {
    let dir = temp_dir("every");
    let mut out = Output::create(&dir, [Table::new(&EVERY)]).expect("create");
    let long = "x".repeat(100_000);
    let names = ["a.example", "b.example"];
    let mut want = Vec::new();
    // Owned rows, then borrowed ones, then owned again: the table keeps the order.
    for i in 0..40 {
        if (10..20).contains(&i) {
            let name = match i % 3 {
                0 => None,
                1 => Some(long.as_str()),
                _ => Some(names[0]),
            };
            let cnames = &names[..(i % 3) as usize];
            out.push_ref(&Borrowed {
                id: i,
                ts_ns: 1_700_000_000_000_000_000 + i * 1_000,
                name,
                cnames,
            })
            .expect("push_ref");
            want.push(Owned {
                id: i,
                ts_ns: 1_700_000_000_000_000_000 + i * 1_000,
                port: None,
                ok: None,
                ratio: None,
                kind: "borrowed",
                rcode: None,
                name: name.map(str::to_string),
                server: IpAddr::V4(Ipv4Addr::LOCALHOST),
                answers: None,
                cnames: cnames.iter().map(|s| s.to_string()).collect(),
            });
        } else {
            out.push(owned(i)).expect("push");
            want.push(owned(i));
        }
    }
    let summary = out.finish().expect("finish");
    assert_eq!(summary.tables.len(), 1);
    assert_eq!(summary.tables[0].rows, 40);
    let path = dir.join("every_type.parquet");
    assert_eq!(read_rows(&path), want);

    // The Parquet side: statistics on the declared columns only, lists of text with a
    // dictionary, nullable columns optional.
    let reader = SerializedFileReader::new(File::open(&path).expect("open")).expect("footer");
    let rg = reader.metadata().row_group(0);
    let descr = reader.metadata().file_metadata().schema_descr();
    for i in 0..descr.num_columns() {
        let path = descr.column(i).path().string();
        let root = path.split('.').next().unwrap_or_default();
        let wanted = EVERY.statistics.contains(&root);
        assert_eq!(rg.column(i).statistics().is_some(), wanted, "{path}");
        if root == "cnames" || root == "answer_addrs" {
            assert_eq!(path, format!("{root}.list.item"));
            let enc: Vec<Encoding> = rg.column(i).encodings().collect();
            assert!(enc.contains(&Encoding::RLE_DICTIONARY), "{path}: {enc:?}");
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Text columns past their dictionary limit, lists across batches and row groups.
#[test]
fn text_and_lists_read_back_across_row_groups() {
    let dir = temp_dir("many");
    let mut out = Output::create(&dir, [Table::new(&EVERY)]).expect("create");
    let n = ROW_GROUP_ROWS as i64 + 3_000;
    let mut want = Vec::new();
    for i in 0..n {
        let row = owned(i);
        want.push(row.clone());
        out.push(row).expect("push");
    }
    out.finish().expect("finish");
    let path = dir.join("every_type.parquet");
    let reader = SerializedFileReader::new(File::open(&path).expect("open")).expect("footer");
    assert_eq!(reader.metadata().num_row_groups(), 2);
    assert_eq!(read_rows(&path), want);
    let _ = fs::remove_dir_all(&dir);
}

/// How [`Bad`] departs from the declaration.
#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// Another type for `id`.
    Type,
    /// `ts` written first.
    Name,
    /// A null `id`.
    Null,
    /// Only `id` and `ts`.
    Missing,
    /// One more value past the last column.
    Extra,
}

struct Bad(Fault);

impl Row for Bad {
    const TABLE: &'static TableSpec = &EVERY;

    fn append(&self, w: &mut RowWriter<'_>) {
        match self.0 {
            Fault::Type => w.i32("id", 7),
            Fault::Name => w.ts_ns("ts", 0),
            Fault::Null => w.null("id"),
            _ => w.i64("id", 1),
        }
        w.ts_ns("ts", 0);
        if let Fault::Missing = self.0 {
            return;
        }
        w.null("port");
        w.null("ok");
        w.null("ratio");
        w.str("kind", "query");
        w.null("rcode");
        w.null("name");
        w.str("server_addr", "192.0.2.1");
        w.null("answer_addrs");
        w.strs("cnames", [""; 0]);
        if let Fault::Extra = self.0 {
            w.i64("more", 1);
        }
    }
}

/// A row that does not match its declaration stops its table with an error naming the
/// column, whether it is built on the writer thread (reported by a later push or by
/// `finish`) or on the caller's (reported at once); nothing is written and nothing
/// panics.
#[test]
fn rows_that_do_not_match_their_declaration_stop_the_table() {
    let cases = [
        (Fault::Type, 0, "id", RowMismatch::Type { given: "i32" }),
        (Fault::Name, 0, "id", RowMismatch::Name { given: "ts" }),
        (Fault::Null, 0, "id", RowMismatch::Null),
        (Fault::Missing, 2, "port", RowMismatch::Missing),
        (Fault::Extra, 11, "more", RowMismatch::Extra),
    ];
    for (fault, index, column, problem) in cases {
        let want = |e: &Error| {
            matches!(e, Error::Row { table: "every_type", index: i, column: c, problem: p }
                if *i == index && *c == column && *p == problem)
        };
        // On the caller's thread: the push fails, and so does everything after.
        let dir = temp_dir("bad-ref");
        let mut out = Output::create(&dir, [Table::new(&EVERY)]).expect("create");
        out.push_ref(&Bad(Fault::None)).expect("a good row");
        let err = out.push_ref(&Bad(fault)).expect_err("a bad row");
        // Names are checked on the first row of a batch only.
        if !matches!(fault, Fault::Name) {
            assert!(want(&err), "{fault:?}: {err:?} ({err})");
        }
        assert!(out.push_ref(&Bad(Fault::None)).is_err(), "{fault:?}");
        assert!(out.finish().is_err(), "{fault:?}");
        assert_eq!(fs::read_dir(&dir).expect("dir").count(), 0, "{fault:?}");
        let _ = fs::remove_dir_all(&dir);

        // On the writer thread: reported by `finish`, which leaves nothing.
        let dir = temp_dir("bad-queued");
        let mut out = Output::create(&dir, [Table::new(&EVERY)]).expect("create");
        out.push(Bad(fault)).expect("queued");
        let err = out.finish().expect_err("a bad row");
        assert!(want(&err), "{fault:?}: {err:?} ({err})");
        assert_eq!(fs::read_dir(&dir).expect("dir").count(), 0, "{fault:?}");
        let _ = fs::remove_dir_all(&dir);
    }
}

/// The declared types are the ones the builders make (a list's item field included).
#[test]
fn builders_make_the_declared_arrow_types() {
    let schema = arrow_schema(&EVERY);
    let mut b = crate::row::Builders::new(&EVERY, 4);
    b.append(&owned(2)).expect("a good row");
    let batch = b.finish().expect("batch");
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        assert_eq!(f.data_type(), c.data_type(), "{}", f.name());
    }
    assert!(matches!(
        schema.field_with_name("cnames").map(|f| f.data_type().clone()),
        Ok(DataType::List(item)) if !item.is_nullable()
    ));
}
