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
