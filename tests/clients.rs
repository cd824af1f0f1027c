//! Real-client tests of the Parquet output: `streamscope analyze` runs on a capture, then
//! `tests/clients/check_tables.py` opens the tables with pyarrow and DuckDB (and pandas
//! when installed) and compares them with the declared schema (`streamscope schema
//! --json`) and with the ground truth written next to the capture.
//!
//! - the bundled demo capture (`captures/demo.pcap`, truth `demo.pcap.truth.json`):
//!   every flow and bin against capgen's truth. It has no HTTP in clear, no TLS
//!   handshake and no QUIC, so it leaves the `http` table empty and `sni`, `alpn`,
//!   `http_host`, `tls_*` and `quic_version` null;
//! - hence, with `--ott`, `captures/testbed-steady.pcap` (real nginx, ffmpeg and
//!   players: HLS over HTTP and HTTPS, an IPTV panel, multicast) and a capture of capgen's
//!   `ott` scenario (HLS and a panel over HTTP, TLS with SNI and ALPN, QUIC v1): the
//!   `http` rows (role, path template, status, host, times), the flows' SNI, ALPN (a
//!   list), TLS and QUIC versions, HTTP host, service and class, and the segments by
//!   method, read with the declared types by each client and equal to the truth. Between
//!   them the two captures leave none of those empty; on the demo's tables the same
//!   checks fail.
//!
//! - the README's worked examples: every DuckDB query runs on fresh outputs of the demo
//!   and testbed-steady captures, and the rows it prints are the result's
//!   (`tests/clients/readme_queries.py`).
//!
//! The clients are required: without python3, duckdb or pyarrow these tests fail and say
//! how to install them (`python3 -m pip install duckdb pyarrow`); they never skip. pandas
//! is optional: without it the script does not read the flows table through pandas, and
//! the tests say so on a `SKIPPED` line.

mod support;

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
    let (out, schema) = analyze_into(dir.path(), &demo(), extra);
    (dir, out, schema)
}

/// Runs `streamscope analyze` on `capture` into `dir/out` and writes `streamscope schema
/// --json` to `dir/schema.json`; returns OUT and SCHEMA.
fn analyze_into(dir: &Path, capture: &Path, extra: &[&str]) -> (PathBuf, PathBuf) {
    let out = dir.join("out");
    let o = Command::new(BIN)
        .arg("analyze")
        .arg(capture)
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
    let schema_path = dir.join("schema.json");
    std::fs::write(&schema_path, &o.stdout).expect("write schema.json");
    (out, schema_path)
}

fn check_tables(out: &Path, truth: &Path, schema: &Path) -> Output {
    check_tables_with(&[], out, truth, schema)
}

fn check_tables_with(options: &[&str], out: &Path, truth: &Path, schema: &Path) -> Output {
    Command::new(python())
        .arg(script())
        .args(options)
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
        .find_map(|l| {
            l.strip_prefix("check_tables: ")?
                .split_once(" checks passed")?
                .0
                .parse()
                .ok()
        })
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

/// What `check_tables.py --ott` checks non-empty (its `non-empty:` line): rows of
/// `http` with role, path_template and status; flows' sni, alpn, tls_version,
/// quic_version, http_host, service and class; segments of each method; multicast
/// channels.
const OTT_FEATURES: [&str; 14] = [
    "http",
    "role",
    "path_template",
    "status",
    "sni",
    "alpn",
    "tls_version",
    "quic_version",
    "http_host",
    "service",
    "class",
    "segments_http",
    "segments_inferred",
    "multicast",
];

/// The features the script saw non-empty, from its line `check_tables: non-empty: ...`.
fn non_empty(o: &Output) -> std::collections::BTreeSet<String> {
    let stdout = String::from_utf8_lossy(&o.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("check_tables: non-empty: "))
        .unwrap_or_else(|| panic!("no `non-empty:` line\n{}", text(o)))
        .split(", ")
        .map(str::to_owned)
        .collect()
}

/// Generates capgen's `ott` scenario (seed 1) into `dir`; returns the capture and its
/// truth file.
fn generate_ott(dir: &Path) -> (PathBuf, PathBuf) {
    let toml = std::fs::read_to_string(root().join("tools/capgen/scenarios/ott.toml"))
        .expect("read ott.toml");
    let (truth, pcap) = support::generate(dir, "ott", &toml);
    let truth_path = dir.join("ott.pcap.truth.json");
    std::fs::write(&truth_path, serde_json::to_vec(&truth).expect("truth JSON"))
        .expect("write the ott truth");
    (pcap, truth_path)
}

/// Runs `check_tables.py --ott` on the testbed's steady capture and on capgen's `ott`
/// capture, requires success, and returns the features each saw non-empty.
fn ott_outputs() -> Vec<(&'static str, Output)> {
    let dir = tempfile::tempdir().expect("temporary folder");
    let steady = dir.path().join("steady");
    std::fs::create_dir(&steady).unwrap();
    let (out, schema) = analyze_into(&steady, &root().join("captures/testbed-steady.pcap"), &[]);
    let a = check_tables_with(
        &["--ott"],
        &out,
        &root().join("captures/testbed-steady.truth.json"),
        &schema,
    );
    let ott = dir.path().join("ott");
    std::fs::create_dir(&ott).unwrap();
    let (pcap, truth) = generate_ott(&ott);
    let (out, schema) = analyze_into(&ott, &pcap, &[]);
    let b = check_tables_with(&["--ott"], &out, &truth, &schema);
    vec![("testbed-steady", a), ("ott", b)]
}

#[test]
fn pyarrow_and_duckdb_read_the_http_tls_and_quic_columns_as_declared_and_as_the_truth_says() {
    require_clients();
    let mut union = std::collections::BTreeSet::new();
    for (name, o) in ott_outputs() {
        assert!(
            o.status.success(),
            "check_tables.py --ott found a mismatch on {name}\n{}",
            text(&o)
        );
        // The schema checks alone are about 1,500; the OTT columns add over 1,000.
        let n = checks_passed(&o);
        assert!(n >= 2500, "{name}: only {n} checks ran\n{}", text(&o));
        let seen = non_empty(&o);
        // The testbed has no QUIC; capgen's ott scenario no multicast.
        let absent = if name == "ott" {
            "multicast"
        } else {
            "quic_version"
        };
        let want: std::collections::BTreeSet<String> = OTT_FEATURES
            .iter()
            .filter(|f| **f != absent)
            .map(|f| f.to_string())
            .collect();
        assert_eq!(seen, want, "{name}: the features seen non-empty");
        union.extend(seen);
        say_if_no_pandas(
            "pyarrow_and_duckdb_read_the_http_tls_and_quic_columns_as_declared_and_as_the_truth_says",
            &o,
        );
        print!("{name}: {}", String::from_utf8_lossy(&o.stdout));
    }
    assert_eq!(union.len(), OTT_FEATURES.len(), "{union:?}");
}

#[test]
fn the_ott_checks_fail_on_the_demo_tables_and_on_a_wrong_quic_version() {
    require_clients();
    let dir = tempfile::tempdir().expect("temporary folder");
    let (pcap, ott_truth) = generate_ott(dir.path());

    // The demo's tables have none of the ott capture's HTTP, TLS or QUIC.
    let demo_dir = dir.path().join("demo");
    std::fs::create_dir(&demo_dir).unwrap();
    let (out, schema) = analyze_into(&demo_dir, &demo(), &[]);
    let o = check_tables_with(&["--ott"], &out, &ott_truth, &schema);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(
            "MISMATCH: [pyarrow] http rows vs the truth's requests in clear: \
             streamscope has 0, expected 24"
        ),
        "{}",
        text(&o)
    );
    // With its own truth the demo passes, but shows only what it has.
    let o = check_tables_with(&["--ott"], &out, &truth(), &schema);
    assert!(o.status.success(), "{}", text(&o));
    let seen = non_empty(&o);
    for f in [
        "http",
        "sni",
        "alpn",
        "tls_version",
        "quic_version",
        "http_host",
    ] {
        assert!(!seen.contains(f), "the demo has {f}: {seen:?}");
    }

    // The ott capture against a truth whose QUIC flows are version 2.
    let ott = dir.path().join("ott");
    std::fs::create_dir(&ott).unwrap();
    let (out, schema) = analyze_into(&ott, &pcap, &[]);
    let mut t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ott_truth).unwrap()).expect("truth is JSON");
    let mut quic = 0;
    for f in t["flows"].as_array_mut().unwrap() {
        if !f["quic"].is_null() {
            f["quic"]["version"] = 0x6b33_43cf.into();
            quic += 1;
        }
    }
    assert_eq!(quic, 2, "the ott scenario's QUIC flows");
    let tampered = dir.path().join("tampered.truth.json");
    std::fs::write(&tampered, t.to_string()).unwrap();
    let o = check_tables_with(&["--ott"], &out, &tampered, &schema);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("MISMATCH: [pyarrow] QUIC flows (sni, alpn, quic_version)")
            && stderr.contains("'v1'")
            && stderr.contains("'v2'"),
        "{}",
        text(&o)
    );
}

/// The README's worked examples print what DuckDB returns: every query runs on fresh
/// outputs of `captures/demo.pcap` and `captures/testbed-steady.pcap` (the README's
/// `out/demo` and `out/steady`), and the rows each prints in its comments must be the
/// result's (`tests/clients/readme_queries.py`).
#[test]
fn readme_queries_print_what_duckdb_returns() {
    require_clients();
    let tmp = tempfile::tempdir().unwrap();
    for (capture, out) in [
        ("captures/demo.pcap", "demo"),
        ("captures/testbed-steady.pcap", "steady"),
    ] {
        support::analyze(&root().join(capture), &tmp.path().join(out), &[]);
    }
    let o = Command::new(python())
        .arg(root().join("tests/clients/readme_queries.py"))
        .arg(root().join("README.md"))
        .arg(tmp.path())
        .output()
        .expect("run readme_queries.py");
    assert!(o.status.success(), "{}", text(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    streamscope_testkit::say(said.lines().last().unwrap_or_default());
}
