//! Real-client tests of the Parquet output: `streamscope analyze` runs on the bundled
//! demo capture, then `tests/clients/check_tables.py` opens the tables with pyarrow and
//! DuckDB (and pandas when installed) and compares them with the declared schema
//! (`streamscope schema --json`) and with the ground truth capgen wrote next to the
//! capture (`captures/demo.pcap.truth.json`).
//!
//! The clients are required: without python3, duckdb or pyarrow these tests fail and say
//! how to install them (`python3 -m pip install duckdb pyarrow`); they never skip. pandas
//! is optional: without it the script does not read the flows table through pandas, and
//! the tests say so on a `SKIPPED` line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_streamscope");
const INSTALL: &str = "python3 -m pip install duckdb pyarrow";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn demo() -> PathBuf {
    root().join("captures/demo.pcap")
}

fn truth() -> PathBuf {
    root().join("captures/demo.pcap.truth.json")
}

fn script() -> PathBuf {
    root().join("tests/clients/check_tables.py")
}

/// The interpreter: `STREAMSCOPE_PYTHON` if set, else `python3`.
fn python() -> String {
    std::env::var("STREAMSCOPE_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Fails the test, with the install command, unless python3 imports duckdb and pyarrow.
fn require_clients() {
    let py = python();
    let out = Command::new(&py)
        .args(["-c", "import duckdb, pyarrow"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{py}` ({e}): the client tests need python3 with `{INSTALL}`")
        });
    assert!(
        out.status.success(),
        "`{py}` cannot import duckdb and pyarrow: run `{INSTALL}`\n{}",
        text(&out)
    );
}

/// Runs `streamscope analyze` on the demo capture (with `extra` options) and writes
/// `streamscope schema --json` next to the output; returns the folder, OUT and SCHEMA.
fn analyze(extra: &[&str]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let out = dir.path().join("out");
    let o = Command::new(BIN)
        .arg("analyze")
        .arg(demo())
        .arg("-o")
        .arg(&out)
        .arg("-q")
        .args(extra)
        .output()
        .expect("run streamscope analyze");
    assert!(
        o.status.success(),
        "streamscope analyze failed\n{}",
        text(&o)
    );

    let o = Command::new(BIN)
        .args(["schema", "--json"])
        .output()
        .expect("run streamscope schema --json");
    assert!(
        o.status.success(),
        "streamscope schema --json failed\n{}",
        text(&o)
    );
    let schema: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("schema --json prints JSON");
    let names: Vec<&str> = schema
        .as_array()
        .expect("schema --json is an array of tables")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let declared: Vec<&str> = streamscope_store::tables().iter().map(|t| t.name).collect();
    assert_eq!(
        names, declared,
        "schema --json lists the declared tables, in order"
    );
    let schema_path = dir.path().join("schema.json");
    std::fs::write(&schema_path, &o.stdout).expect("write schema.json");
    (dir, out, schema_path)
}

fn check_tables(out: &Path, truth: &Path, schema: &Path) -> Output {
    Command::new(python())
        .arg(script())
        .arg(out)
        .arg(truth)
        .arg(schema)
        .output()
        .expect("run check_tables.py")
}

/// Says that `test` did not read the flows table through pandas when the script's
/// closing line (`... clients: pyarrow, duckdb[, pandas]; ...`) does not name it.
fn say_if_no_pandas(test: &str, o: &Output) {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let clients = stdout
        .lines()
        .find_map(|l| l.split_once("clients: "))
        .map_or("", |(_, rest)| rest.split(';').next().unwrap_or(""));
    if !clients.split(", ").any(|c| c == "pandas") {
        streamscope_testkit::skip(
            &format!("clients::{test}"),
            "the flows table read through pandas",
            &format!(
                "`{}` cannot import pandas (`python3 -m pip install pandas`)",
                python()
            ),
        );
    }
}

/// Checks passed, from the script's closing line `check_tables: N checks passed (...)`.
fn checks_passed(o: &Output) -> usize {
    let stdout = String::from_utf8_lossy(&o.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("check_tables: "))
        .and_then(|l| l.split_once(" checks passed"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no `N checks passed` line\n{}", text(o)))
}

#[test]
fn pyarrow_and_duckdb_read_the_demo_tables_as_declared_and_equal_to_the_truth() {
    require_clients();
    let (_dir, out, schema) = analyze(&[]);
    let o = check_tables(&out, &truth(), &schema);
    assert!(
        o.status.success(),
        "check_tables.py found a mismatch\n{}",
        text(&o)
    );
    // 16 flows x about 37 per-flow comparisons by each of pyarrow and DuckDB, plus the
    // table checks, make 1,210 without pandas: far fewer means parts did not run.
    let n = checks_passed(&o);
    assert!(n >= 1000, "only {n} checks ran\n{}", text(&o));
    say_if_no_pandas(
        "pyarrow_and_duckdb_read_the_demo_tables_as_declared_and_equal_to_the_truth",
        &o,
    );
    print!("{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn the_checks_hold_with_another_bin_width() {
    require_clients();
    let (_dir, out, schema) = analyze(&["--bin", "250ms"]);
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).expect("run.json written"))
            .expect("run.json is JSON");
    assert_eq!(run["options"]["bin_ns"], 250_000_000);
    let o = check_tables(&out, &truth(), &schema);
    assert!(
        o.status.success(),
        "check_tables.py found a mismatch\n{}",
        text(&o)
    );
    assert!(checks_passed(&o) >= 1000, "{}", text(&o));
    say_if_no_pandas("the_checks_hold_with_another_bin_width", &o);
}

#[test]
fn a_difference_from_the_truth_is_reported_with_flow_and_field() {
    require_clients();
    let (dir, out, schema) = analyze(&[]);
    // One byte more downstream for the IPv6 HTTPS session of flow 5.
    let mut truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(truth()).expect("read the truth"))
            .expect("truth is JSON");
    let flow = &mut truth["flows"][5];
    assert_eq!(flow["kind"], "https");
    assert_eq!(flow["frame_bytes_down"], 264_806);
    flow["frame_bytes_down"] = 264_807.into();
    let tampered = dir.path().join("tampered.truth.json");
    std::fs::write(&tampered, truth.to_string()).expect("write the tampered truth");

    let o = check_tables(&out, &tampered, &schema);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("MISMATCH")
            && stderr.contains("truth flow 5 ")
            && stderr.contains("bytes_down: streamscope has 264806, expected 264807"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_schema_that_differs_from_the_files_is_reported() {
    require_clients();
    let (dir, out, schema) = analyze(&[]);
    let mut decl: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&schema).expect("read schema.json"))
            .expect("schema is JSON");
    // Declare flow_bins.bin_start as nanoseconds: the file must not match it.
    let col = &mut decl[1]["columns"][1];
    assert_eq!(col["name"], "bin_start");
    col["type"] = "timestamp[ns, tz=UTC]".into();
    let wrong = dir.path().join("wrong-schema.json");
    std::fs::write(&wrong, decl.to_string()).expect("write the wrong schema");

    let o = check_tables(&out, &truth(), &wrong);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("flow_bins.bin_start: type: streamscope has 'timestamp[us, tz=UTC]'"),
        "{}",
        text(&o)
    );
}
