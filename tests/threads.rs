//! Identical tables whatever the threads: `streamscope analyze` with one thread, with
//! two, and with the flow table handed to its own thread from the first packet (on one
//! thread's budget and on two), must write the same tables, byte for byte, on the
//! bundled captures, on a capture of 40,000 flows (past the point where the table moves
//! to its own thread on its own) and on the public corpus where it is found.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

mod support;

/// The runs compared: (label, extra options).
const RUNS: [(&str, &[&str]); 4] = [
    ("1 thread", &["--threads", "1"]),
    ("2 threads", &["--threads", "2"]),
    (
        "2 threads, hand-off from the start",
        &["--threads", "2", "--handoff", "from-start"],
    ),
    (
        "1 thread, hand-off from the start",
        &["--threads", "1", "--handoff", "from-start"],
    ),
];

/// The tables of one run, by file name.
fn tables(capture: &Path, out: &Path, extra: &[&str]) -> Vec<(String, Vec<u8>)> {
    support::analyze(capture, out, extra);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no tables written");
    files
}

fn check(capture: &Path, scratch: &Path) {
    let mut first: Option<Vec<(String, Vec<u8>)>> = None;
    for (i, (label, extra)) in RUNS.iter().enumerate() {
        let got = tables(capture, &scratch.join(format!("run{i}")), extra);
        match &first {
            None => first = Some(got),
            Some(want) => {
                let names =
                    |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
                assert_eq!(names(&got), names(want), "{}: {label}", capture.display());
                for ((name, a), (_, b)) in got.iter().zip(want) {
                    assert!(
                        a == b,
                        "{}: {name} differs between {} and {label}",
                        capture.display(),
                        RUNS[0].0
                    );
                }
            }
        }
    }
}

/// A capgen capture of `flows` DNS flows over 4 s.
fn many_flows(dir: &Path, flows: u64) -> PathBuf {
    let text = include_str!("../tools/capgen/scenarios/bench-flows.toml");
    let mut sc = capgen::Scenario::from_toml(text).expect("bench-flows.toml parses");
    sc.duration_s = 4.0;
    sc.small_flows.as_mut().expect("small_flows").count = flows;
    let opts = capgen::Options {
        seed: 5,
        format: capgen::Format::Pcap,
        ts_resolution: None,
    };
    let path = dir.join("flows.pcap");
    let file = std::fs::File::create(&path).expect("create");
    let (_, mut w) = capgen::generate(&sc, &opts, BufWriter::new(file)).expect("generate");
    w.flush().expect("write");
    path
}

#[test]
fn tables_are_the_same_whatever_the_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut captures: Vec<PathBuf> = [
        "demo.pcap",
        "testbed-steady.pcap",
        "testbed-takedown.pcap",
        "testbed-loss.pcap",
    ]
    .iter()
    .map(|f| root.join("captures").join(f))
    .collect();
    captures.push(many_flows(tmp.path(), 40_000));
    if let Some(corpus) = streamscope_testkit::corpus(
        "threads::tables_are_the_same_whatever_the_threads",
        "the corpus captures run with 1 and 2 threads (the bundled ones are checked)",
    ) {
        captures.extend(corpus.files().map(|(name, _)| corpus.path(name)));
    }
    for (i, c) in captures.iter().enumerate() {
        let scratch = tmp.path().join(format!("c{i}"));
        check(c, &scratch);
    }
    streamscope_testkit::say(&format!(
        "threads: {} captures, {} runs each, tables equal byte for byte",
        captures.len(),
        RUNS.len()
    ));
}
