//! More flows than the caches hold. Once 32K flows are open, `analyze` reads records in
//! batches and asks for each packet's flow-index line before it looks the flow up
//! (`FlowTable::lookahead_pays`), and with a second CPU the flow table moves to a thread
//! of its own. On a capgen capture of 60,000 DNS flows, all open at the end, every flow
//! of the truth must come out exactly (key, id, packets, bytes and payload per
//! direction, first and last time), read from the file (batches of 16) and from stdin
//! (batches of one); and pinned to one CPU (`taskset`, where there is one), the tables
//! must be the same bytes as with two, also when the capture is cut mid-record and
//! followed by a second input. Without taskset or a second CPU the test says, on one
//! `SKIPPED` line, that it did not check the one-CPU run.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const FLOWS: u64 = 60_000;

fn generate(path: &Path) -> capgen::Truth {
    let text = include_str!("../tools/capgen/scenarios/bench-flows.toml");
    let mut sc = capgen::Scenario::from_toml(text).expect("bench-flows.toml parses");
    sc.duration_s = 6.0;
    sc.small_flows
        .as_mut()
        .expect("a small_flows section")
        .count = FLOWS;
    sc.truth.per_flow = true;
    let opts = capgen::Options {
        seed: 7,
        format: capgen::Format::Pcap,
        ts_resolution: None,
    };
    let file = File::create(path).expect("create the capture");
    let (truth, mut w) =
        capgen::generate(&sc, &opts, BufWriter::new(file)).expect("generate the capture");
    w.flush().expect("write the capture");
    truth
}

/// `flows.parquet`, by key (client, client port, server, server port, VLAN): the id,
/// packets, bytes and payload up and down, first and last time in µs.
type Key = (String, i32, String, i32, Option<i32>);
fn read_flows(path: &Path) -> HashMap<Key, [i64; 9]> {
    let file = File::open(path).expect("flows.parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    let mut rows = HashMap::new();
    for batch in reader {
        let b: RecordBatch = batch.expect("a row group");
        let col = |name: &str| b.column_by_name(name).unwrap_or_else(|| panic!("{name}"));
        let text = |name| col(name).as_string::<i32>().clone();
        let int = |name| col(name).as_primitive::<Int32Type>().clone();
        let long = |name| col(name).as_primitive::<Int64Type>().clone();
        let ts = |name| col(name).as_primitive::<TimestampMicrosecondType>().clone();
        let (client, server) = (text("client_addr"), text("server_addr"));
        let (cport, sport, vlan) = (int("client_port"), int("server_port"), int("vlan"));
        let longs = [
            "flow_id",
            "packets_up",
            "packets_down",
            "bytes_up",
            "bytes_down",
            "payload_bytes_up",
            "payload_bytes_down",
        ]
        .map(long);
        let (first, last) = (ts("first_ts"), ts("last_ts"));
        for i in 0..b.num_rows() {
            let key = (
                client.value(i).to_owned(),
                cport.value(i),
                server.value(i).to_owned(),
                sport.value(i),
                (!vlan.is_null(i)).then(|| vlan.value(i)),
            );
            let mut v = [0i64; 9];
            for (slot, c) in v.iter_mut().zip(&longs) {
                *slot = c.value(i);
            }
            v[7] = first.value(i);
            v[8] = last.value(i);
            assert!(rows.insert(key, v).is_none(), "two rows share a key");
        }
    }
    rows
}

fn check(out: &Path, truth: &capgen::Truth, how: &str) {
    let rows = read_flows(&out.join("flows.parquet"));
    let flows = truth.flows.as_ref().expect("per-flow truth");
    assert_eq!(flows.len() as u64, FLOWS);
    assert_eq!(rows.len(), flows.len(), "{how}: flows");
    for t in flows {
        let key = (
            t.client_addr.to_string(),
            i32::from(t.client_port),
            t.server_addr.to_string(),
            i32::from(t.server_port),
            t.vlan.map(i32::from),
        );
        let got = rows
            .get(&key)
            .unwrap_or_else(|| panic!("{how}: no row for truth flow {} {key:?}", t.flow_id));
        let want = [
            t.flow_id as i64,
            t.packets_up as i64,
            t.packets_down as i64,
            t.frame_bytes_up as i64,
            t.frame_bytes_down as i64,
            t.payload_bytes_up as i64,
            t.payload_bytes_down as i64,
            (t.first_ts_ns / 1000) as i64,
            (t.last_ts_ns / 1000) as i64,
        ];
        assert_eq!(
            *got, want,
            "{how}: truth flow {} (id, packets, bytes, payload up/down, first, last)",
            t.flow_id
        );
    }
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let counts = &run["counts"];
    assert_eq!(counts["packets"], truth.totals.packets, "{how}: packets");
    assert_eq!(counts["flows"], FLOWS, "{how}: flows");
    assert_eq!(
        counts["extra"]["peak_active_flows"], FLOWS,
        "{how}: flows open at once"
    );
}

/// Runs `streamscope analyze INPUTS -o OUT`, pinned to CPU 0 when `pinned`; it must
/// succeed.
fn analyze(inputs: &[&Path], out: &Path, pinned: bool) {
    let bin = env!("CARGO_BIN_EXE_streamscope");
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", bin]);
        c
    } else {
        Command::new(bin)
    };
    let o = cmd
        .args(["analyze", "--quiet"])
        .args(inputs)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run streamscope");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn sixty_thousand_flows_equal_the_truth_from_a_file_and_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("flows.pcap");
    let truth = generate(&pcap);

    let file = dir.path().join("file");
    analyze(&[&pcap], &file, false);
    check(&file, &truth, "file");

    let out = dir.path().join("stdin");
    let o = Command::new(env!("CARGO_BIN_EXE_streamscope"))
        .args(["analyze", "--quiet", "-", "-o"])
        .arg(&out)
        .stdin(File::open(&pcap).unwrap())
        .stdout(Stdio::null())
        .output()
        .expect("run streamscope");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check(&out, &truth, "stdin");

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let taskset = Command::new("taskset").arg("-V").output();
    let why = if cpus < 2 {
        Some(format!(
            "{cpus} CPU available: the runs above already had one"
        ))
    } else if !taskset.as_ref().is_ok_and(|o| o.status.success()) {
        Some(match taskset {
            Ok(o) => format!("`taskset -V` failed ({})", o.status),
            Err(e) => format!("cannot run taskset ({e}); it comes with util-linux"),
        })
    } else {
        None
    };
    if let Some(why) = why {
        streamscope_testkit::skip(
            "many_flows::sixty_thousand_flows_equal_the_truth_from_a_file_and_from_stdin",
            "the run pinned to one CPU (tables equal to the two-CPU run's, whole and cut \
             captures)",
            &why,
        );
        return;
    }
    let one = dir.path().join("one-cpu");
    analyze(&[&pcap], &one, true);
    check(&one, &truth, "one CPU");
    same_tables(&file, &one, "one file");

    // A capture cut mid-record, then the whole capture again as a second input (a flow
    // continues across files; timestamps go back): the read error ends the first input
    // while the flow table's thread is running, the second input goes on.
    let cut = dir.path().join("cut.pcap");
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 7 / 10 + 5]).unwrap();
    let (two, one) = (dir.path().join("cut-two"), dir.path().join("cut-one"));
    for (out, pinned) in [(&two, false), (&one, true)] {
        analyze(&[&cut, &pcap], out, pinned);
        let run: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
        let error = run["inputs"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            error.contains("cut short"),
            "first input's error: {error:?}"
        );
        assert!(run["inputs"][1]["error"].is_null());
    }
    same_tables(&two, &one, "a cut file and a whole one");
}

/// The Parquet tables of two runs are the same bytes.
fn same_tables(a: &Path, b: &Path, what: &str) {
    for table in ["flows.parquet", "flow_bins.parquet"] {
        let x = std::fs::read(a.join(table)).unwrap();
        let y = std::fs::read(b.join(table)).unwrap();
        assert!(x == y, "{what}: {table} differs between one CPU and two");
    }
}
