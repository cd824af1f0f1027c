//! What the end-to-end tests share: running `streamscope analyze` and reading the tables
//! it writes. (Each test file uses a part of it.)
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

/// Runs `streamscope analyze --quiet EXTRA... CAPTURE -o OUT`, requires success, and
/// returns its `run.json`.
pub fn analyze(capture: &Path, out: &Path, extra: &[&str]) -> Value {
    let run = Command::new(env!("CARGO_BIN_EXE_streamscope"))
        .args(["analyze", "--quiet"])
        .args(extra)
        .arg(capture)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run streamscope");
    assert!(
        run.status.success(),
        "{}: {}",
        capture.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&std::fs::read(out.join("run.json")).expect("run.json"))
        .expect("run.json is JSON")
}

/// Every batch of a Parquet file.
pub fn batches(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("Parquet")
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect()
}

/// Column `name` of `batch` as the array type `T`.
pub fn col<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has an unexpected type"))
}

/// Row `i` of a string or dictionary-of-string column; `None` when null.
pub fn text(batch: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let c = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    if c.is_null(i) {
        return None;
    }
    if let Some(s) = c.as_any().downcast_ref::<StringArray>() {
        return Some(s.value(i).to_owned());
    }
    let d = c.as_dictionary::<Int32Type>();
    let values = d
        .values()
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("a dictionary of strings");
    Some(values.value(d.keys().value(i) as usize).to_owned())
}

/// Every row of a table, each as column name → JSON value (integers and timestamps in µs
/// as numbers, text as strings, lists as arrays, nulls as null).
pub fn rows(path: &Path) -> Vec<serde_json::Map<String, Value>> {
    use arrow_array::types::TimestampMicrosecondType;
    use arrow_schema::DataType;
    let mut out = Vec::new();
    for b in batches(path) {
        for i in 0..b.num_rows() {
            let mut row = serde_json::Map::new();
            for (f, c) in b.schema().fields().iter().zip(b.columns()) {
                let v = if c.is_null(i) {
                    Value::Null
                } else {
                    match f.data_type() {
                        DataType::Int64 => c
                            .as_primitive::<arrow_array::types::Int64Type>()
                            .value(i)
                            .into(),
                        DataType::Int32 => c.as_primitive::<Int32Type>().value(i).into(),
                        DataType::Float64 => c
                            .as_primitive::<arrow_array::types::Float64Type>()
                            .value(i)
                            .into(),
                        DataType::Boolean => c.as_boolean().value(i).into(),
                        DataType::Timestamp(..) => {
                            c.as_primitive::<TimestampMicrosecondType>().value(i).into()
                        }
                        DataType::List(_) => {
                            let l = c.as_list::<i32>().value(i);
                            let s = l.as_string::<i32>();
                            Value::Array((0..s.len()).map(|k| s.value(k).into()).collect())
                        }
                        _ => text(&b, f.name(), i).into(),
                    }
                };
                row.insert(f.name().clone(), v);
            }
            out.push(row);
        }
    }
    out
}

/// Every value an output folder holds, decoded: for each Parquet file every column of
/// every row group read through arrow (strings; dictionaries through their values;
/// lists, large lists, fixed-size lists, structs and maps through their children;
/// numbers, booleans and timestamps as text), every page of every column chunk
/// decompressed (so a dictionary entry no row uses is seen too), and the file's
/// key-value metadata and column names; `run.json` parsed (every key, string and number);
/// any other file as its bytes. Compression hides nothing from [`Decoded::find`], which
/// a search of the files' raw bytes cannot promise.
pub struct Decoded {
    /// Files read, Parquet files among them.
    pub files: usize,
    pub parquet_files: usize,
    /// (where, distinct values found there).
    places: Vec<(String, std::collections::BTreeSet<String>)>,
}

impl Decoded {
    /// Reads every file of the folder `dir` (not recursive).
    pub fn read(dir: &Path) -> Decoded {
        let mut d = Decoded {
            files: 0,
            parquet_files: 0,
            places: Vec::new(),
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("folder entry").path())
            .collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(path.is_file(), "{}: not a file", path.display());
            d.files += 1;
            if name.ends_with(".parquet") {
                d.parquet_files += 1;
                d.read_parquet(&path, &name);
            } else if name.ends_with(".json") {
                let v: Value = serde_json::from_slice(&std::fs::read(&path).expect("read"))
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let mut values = std::collections::BTreeSet::new();
                json_values(&v, &mut values);
                d.places.push((name, values));
            } else {
                let bytes = std::fs::read(&path).expect("read");
                let text = String::from_utf8_lossy(&bytes).into_owned();
                d.places
                    .push((format!("{name} (bytes)"), [text].into_iter().collect()));
            }
        }
        d
    }

    fn read_parquet(&mut self, path: &Path, name: &str) {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use std::collections::BTreeSet;

        // Through arrow: every column of every batch.
        let file = std::fs::File::open(path).expect("open");
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("Parquet");
        let mut meta = BTreeSet::new();
        if let Some(kv) = builder.metadata().file_metadata().key_value_metadata() {
            for e in kv {
                meta.insert(e.key.clone());
                meta.extend(e.value.clone());
            }
        }
        let schema = builder.schema().clone();
        for f in schema.fields() {
            meta.insert(f.name().clone());
        }
        for (k, v) in schema.metadata() {
            meta.insert(k.clone());
            meta.insert(v.clone());
        }
        self.places.push((format!("{name} metadata"), meta));
        let mut columns: Vec<BTreeSet<String>> = vec![BTreeSet::new(); schema.fields().len()];
        for batch in builder.build().expect("reader") {
            let batch = batch.expect("batch");
            for (i, c) in batch.columns().iter().enumerate() {
                array_values(c.as_ref(), &mut columns[i]);
            }
        }
        for (f, values) in schema.fields().iter().zip(columns) {
            self.places
                .push((format!("{name} column {}", f.name()), values));
        }

        // Page by page, decompressed: the dictionary pages whole and the data pages'
        // plain-encoded bytes, as text (invalid UTF-8 replaced, ASCII runs kept).
        let reader =
            SerializedFileReader::new(std::fs::File::open(path).expect("open")).expect("Parquet");
        let mut pages = BTreeSet::new();
        for g in 0..reader.num_row_groups() {
            let rg = reader.get_row_group(g).expect("row group");
            for c in 0..rg.num_columns() {
                let mut pr = rg.get_column_page_reader(c).expect("page reader");
                while let Some(page) = pr.get_next_page().expect("page") {
                    pages.insert(String::from_utf8_lossy(page.buffer().as_ref()).into_owned());
                }
            }
        }
        self.places.push((format!("{name} pages"), pages));
    }

    /// Where `needle` occurs inside a decoded value, with that value; `None` when nowhere.
    pub fn find(&self, needle: &str) -> Option<(&str, &str)> {
        self.places.iter().find_map(|(place, values)| {
            values
                .iter()
                .find(|v| v.contains(needle))
                .map(|v| (place.as_str(), v.as_str()))
        })
    }

    /// Whether `needle` occurs inside any decoded value.
    pub fn contains(&self, needle: &str) -> bool {
        self.find(needle).is_some()
    }

    /// Distinct decoded values, all places together.
    pub fn values(&self) -> usize {
        self.places.iter().map(|(_, v)| v.len()).sum()
    }
}

/// Whether `needle` occurs in any value of the output folder `dir` (see [`Decoded`]).
pub fn output_contains(dir: &Path, needle: &str) -> bool {
    Decoded::read(dir).contains(needle)
}

fn json_values(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Null => {}
        Value::Bool(b) => {
            out.insert(b.to_string());
        }
        Value::Number(n) => {
            out.insert(n.to_string());
        }
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|x| json_values(x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                out.insert(k.clone());
                json_values(x, out);
            }
        }
    }
}

/// Every value of an arrow array as text (nulls' slots included: they hold nothing or
/// a default). Panics on a type it does not know, so that a new column type cannot go
/// unsearched.
fn array_values(a: &dyn Array, out: &mut std::collections::BTreeSet<String>) {
    use arrow_array::types::*;
    use arrow_schema::{DataType, TimeUnit};
    fn prim<T: arrow_array::ArrowPrimitiveType>(
        a: &dyn Array,
        out: &mut std::collections::BTreeSet<String>,
    ) where
        T::Native: std::fmt::Display,
    {
        out.extend(a.as_primitive::<T>().values().iter().map(|v| v.to_string()));
    }
    match a.data_type() {
        DataType::Null => {}
        DataType::Boolean => {
            let b = a.as_boolean();
            out.extend((0..b.len()).map(|i| b.value(i).to_string()));
        }
        DataType::Int8 => prim::<Int8Type>(a, out),
        DataType::Int16 => prim::<Int16Type>(a, out),
        DataType::Int32 => prim::<Int32Type>(a, out),
        DataType::Int64 => prim::<Int64Type>(a, out),
        DataType::UInt8 => prim::<UInt8Type>(a, out),
        DataType::UInt16 => prim::<UInt16Type>(a, out),
        DataType::UInt32 => prim::<UInt32Type>(a, out),
        DataType::UInt64 => prim::<UInt64Type>(a, out),
        DataType::Float32 => prim::<Float32Type>(a, out),
        DataType::Float64 => prim::<Float64Type>(a, out),
        DataType::Date32 => prim::<Date32Type>(a, out),
        DataType::Date64 => prim::<Date64Type>(a, out),
        DataType::Decimal128(..) => prim::<Decimal128Type>(a, out),
        DataType::Timestamp(TimeUnit::Second, _) => prim::<TimestampSecondType>(a, out),
        DataType::Timestamp(TimeUnit::Millisecond, _) => prim::<TimestampMillisecondType>(a, out),
        DataType::Timestamp(TimeUnit::Microsecond, _) => prim::<TimestampMicrosecondType>(a, out),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => prim::<TimestampNanosecondType>(a, out),
        DataType::Utf8 => out.extend(a.as_string::<i32>().iter().flatten().map(str::to_owned)),
        DataType::LargeUtf8 => out.extend(a.as_string::<i64>().iter().flatten().map(str::to_owned)),
        DataType::Utf8View => out.extend(a.as_string_view().iter().flatten().map(str::to_owned)),
        DataType::Binary => out.extend(
            a.as_binary::<i32>()
                .iter()
                .flatten()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        ),
        DataType::LargeBinary => out.extend(
            a.as_binary::<i64>()
                .iter()
                .flatten()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        ),
        DataType::BinaryView => out.extend(
            a.as_binary_view()
                .iter()
                .flatten()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        ),
        // The dictionary's values, every one of them (used or not); keys are indices.
        DataType::Dictionary(..) => array_values(a.as_any_dictionary().values().as_ref(), out),
        DataType::List(_) => array_values(a.as_list::<i32>().values().as_ref(), out),
        DataType::LargeList(_) => array_values(a.as_list::<i64>().values().as_ref(), out),
        DataType::FixedSizeList(..) => array_values(a.as_fixed_size_list().values().as_ref(), out),
        DataType::Struct(_) => {
            for c in a.as_struct().columns() {
                array_values(c.as_ref(), out);
            }
        }
        DataType::Map(..) => {
            let m = a.as_map();
            array_values(m.keys().as_ref(), out);
            array_values(m.values().as_ref(), out);
        }
        other => panic!("no text for arrow type {other} yet: teach support::array_values"),
    }
}

/// Generates the capgen scenario `toml` with seed 1 into `dir/name.pcap` (written as it is
/// made, not held in memory) and returns its truth and path.
pub fn generate(dir: &Path, name: &str, toml: &str) -> (Value, std::path::PathBuf) {
    let sc = capgen::Scenario::from_toml(toml).expect("scenario parses");
    let opts = capgen::Options {
        seed: 1,
        format: capgen::Format::Pcap,
        ts_resolution: None,
    };
    let path = dir.join(format!("{name}.pcap"));
    let w = std::io::BufWriter::new(std::fs::File::create(&path).expect("create the capture"));
    let (truth, mut w) = capgen::generate(&sc, &opts, w).expect("generate");
    std::io::Write::flush(&mut w).expect("write the capture");
    (serde_json::to_value(&truth).expect("truth JSON"), path)
}

/// The testbed captures bundled in `captures/` (real software; see captures/README.md).
pub const TESTBED: [&str; 3] = ["steady", "takedown", "loss"];

/// Runs `streamscope analyze` on `captures/testbed-SCENARIO.pcap` into `out` and returns
/// the capture's truth file.
pub fn testbed(scenario: &str, out: &Path) -> Value {
    let captures = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    analyze(&captures.join(format!("testbed-{scenario}.pcap")), out, &[]);
    let truth = captures.join(format!("testbed-{scenario}.truth.json"));
    serde_json::from_slice(&std::fs::read(&truth).expect("the testbed truth file"))
        .expect("truth JSON")
}
