//! The bundled captures (`captures/`, made by tools/capgen and tools/testbed): analyze
//! reads every packet and byte their truth files list, and no credential that the
//! captured URLs carry appears in any output file.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn analyze(capture: &Path, out: &Path) -> Value {
    let run = Command::new(env!("CARGO_BIN_EXE_streamscope"))
        .args(["analyze", "--quiet"])
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
    serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap()
}

fn truth(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("truth file")).expect("truth JSON")
}

#[test]
fn testbed_captures_are_read_whole_and_leak_no_credentials() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for scenario in ["steady", "takedown", "loss"] {
        let pcap = dir.join(format!("testbed-{scenario}.pcap"));
        let t = truth(&dir.join(format!("testbed-{scenario}.truth.json")));
        let out = tmp.path().join(scenario);
        let run = analyze(&pcap, &out);
        assert_eq!(
            run["counts"]["packets"], t["capture"]["packets"],
            "{scenario}"
        );
        assert_eq!(
            run["counts"]["bytes"], t["capture"]["wire_bytes"],
            "{scenario}"
        );
        let creds: Vec<String> = t["credentials"]
            .as_array()
            .expect("credentials list")
            .iter()
            .map(|c| c["value"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(creds.len(), 2, "{scenario}: a username and a password");
        for entry in std::fs::read_dir(&out).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            for c in &creds {
                assert!(
                    !bytes.windows(c.len()).any(|w| w == c.as_bytes()),
                    "{}: contains the credential {c}",
                    path.display()
                );
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 9, "three files per run");
}

#[test]
fn demo_capture_totals_equal_its_truth() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let tmp = tempfile::tempdir().unwrap();
    let run = analyze(&dir.join("demo.pcap"), tmp.path());
    let t = truth(&dir.join("demo.pcap.truth.json"));
    assert_eq!(run["counts"]["packets"], t["totals"]["packets"]);
    assert_eq!(run["counts"]["bytes"], t["totals"]["frame_bytes"]);
    assert_eq!(
        run["counts"]["flows"].as_u64(),
        t["flows"].as_array().map(|f| f.len() as u64)
    );
}
