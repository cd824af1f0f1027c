//! No output holds what IPTV panel URLs carry: every capture with credentials (the
//! bundled testbed captures, and the capgen scenarios with an IPTV panel, generated) is
//! analyzed, and no decoded value of any output file (every column of every table,
//! run.json) holds a credential, a panel's raw URL or a raw query string the truth
//! lists; a self-check plants such values and finds them.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use arrow_array::{Int64Array, RecordBatch};
use serde_json::{json, Value};
use streamscope_testkit::say;
use support::batches;

mod support;

fn captures_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn analyze(capture: &Path, out: &Path) -> Value {
    support::analyze(capture, out, &[])
}

fn truth(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("truth file")).expect("truth JSON")
}

/// What must never reach the output of a capture: the credentials its truth lists, the
/// raw URLs (path and query) of its IPTV panel requests, and the raw query string, and
/// each `name=value` pair, of any request (the `http` table keeps path templates and
/// query parameter names only).
#[derive(Default)]
struct Secrets {
    credentials: BTreeSet<String>,
    urls: BTreeSet<String>,
}

impl Secrets {
    /// From a truth file of either kind: testbed (`credentials`, `http_log` with
    /// `{user}` / `{pass}` in the paths) or capgen (`flows[].http.credentials` and
    /// `.requests[].uri`).
    fn of_truth(t: &Value) -> Secrets {
        let mut s = Secrets::default();
        // testbed
        let mut user = None;
        let mut pass = None;
        for c in t["credentials"].as_array().into_iter().flatten() {
            let v = c["value"].as_str().expect("credential value").to_owned();
            match c["kind"].as_str() {
                Some("username") => user = Some(v.clone()),
                Some("password") => pass = Some(v.clone()),
                k => panic!("credential of kind {k:?}"),
            }
            s.credentials.insert(v);
        }
        for r in t["http_log"].as_array().into_iter().flatten() {
            let template = r["path"].as_str().expect("http_log path");
            let mut path = template.to_owned();
            for (k, v) in [("{user}", &user), ("{pass}", &pass)] {
                if path.contains(k) {
                    path = path.replace(k, v.as_deref().expect("the truth's credential"));
                }
            }
            s.add_url(&path, r["credential_bearing"] == true || path != template);
        }
        // capgen
        for f in t["flows"].as_array().into_iter().flatten() {
            let Some(h) = f.get("http").filter(|h| !h.is_null()) else {
                continue;
            };
            let panel = !h["credentials"].is_null();
            if panel {
                for k in ["username", "password"] {
                    let v = h["credentials"][k].as_str().expect("panel credential");
                    s.credentials.insert(v.to_owned());
                }
            }
            for r in h["requests"].as_array().expect("http requests") {
                s.add_url(r["uri"].as_str().expect("request uri"), panel);
            }
        }
        s
    }

    /// `panel`: the whole URL is secret; else only its query.
    fn add_url(&mut self, url: &str, panel: bool) {
        if panel {
            self.urls.insert(url.to_owned());
        }
        if let Some((_, query)) = url.split_once('?') {
            self.urls.insert(query.to_owned());
            for pair in query.split('&').filter(|p| p.contains('=')) {
                self.urls.insert(pair.to_owned());
            }
        }
    }

    fn merge(&mut self, other: Secrets) {
        self.credentials.extend(other.credentials);
        self.urls.extend(other.urls);
    }
}

/// Analyzes `capture` and asserts that no decoded value of the output holds a secret;
/// returns (files searched, values searched).
fn assert_no_secrets(label: &str, capture: &Path, out: &Path, secrets: &Secrets) -> (usize, usize) {
    analyze(capture, out);
    let decoded = support::Decoded::read(out);
    assert_eq!(
        decoded.parquet_files,
        streamscope_store::tables().len(),
        "{label}: a Parquet file per table"
    );
    assert_eq!(
        decoded.files,
        decoded.parquet_files + 1,
        "{label}: the tables and run.json"
    );
    for (what, needles) in [
        ("credential", &secrets.credentials),
        ("raw URL or query", &secrets.urls),
    ] {
        for n in needles {
            assert!(
                n.len() >= 6,
                "{label}: {what} {n:?} too short to search for"
            );
            if let Some((place, value)) = decoded.find(n) {
                panic!("{label}: the {what} {n:?} is in {place}: {value:?}");
            }
        }
    }
    (decoded.files, decoded.values())
}

#[test]
fn bundled_captures_leak_no_credentials_or_raw_urls() {
    let dir = captures_dir();
    let tmp = tempfile::tempdir().unwrap();
    let mut truths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".truth.json"))
        .collect();
    truths.sort();
    let (mut searched, mut files, mut creds, mut urls) = (Vec::new(), 0, 0, 0);
    for tp in &truths {
        let name = tp.file_name().unwrap().to_string_lossy().into_owned();
        let stem = name.strip_suffix(".truth.json").unwrap();
        let capture = [dir.join(stem), dir.join(format!("{stem}.pcap"))]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{name}: no capture next to it"));
        let secrets = Secrets::of_truth(&truth(tp));
        if secrets.credentials.is_empty() {
            continue;
        }
        let (f, _) = assert_no_secrets(stem, &capture, &tmp.path().join(stem), &secrets);
        files += f;
        creds += secrets.credentials.len();
        urls += secrets.urls.len();
        searched.push(stem.to_owned());
    }
    // The three testbed captures carry a panel account each; the steady one also the
    // panel's requests: two player_api.php calls and a /live/ stream (3 URLs), their
    // 2 query strings and 3 distinct name=value pairs.
    assert_eq!(
        searched,
        ["testbed-loss", "testbed-steady", "testbed-takedown"],
        "the bundled captures with credentials"
    );
    assert_eq!(creds, 6, "a username and a password per testbed capture");
    assert_eq!(urls, 3 + 2 + 3, "raw URLs and queries");
    say(&format!(
        "captures::bundled_captures_leak_no_credentials_or_raw_urls: {} captures, {files} \
         files, {creds} credentials, {urls} raw URLs and query strings: none found",
        searched.len()
    ));
}

/// A scenario's panel accounts, as its TOML sets them (capgen puts credentials only in
/// panel URLs).
fn panel_secrets(sc: &capgen::Scenario) -> Secrets {
    let mut s = Secrets::default();
    for p in &sc.panels {
        s.credentials.insert(p.username.clone());
        s.credentials.insert(p.password.clone());
    }
    s
}

/// Every capgen scenario with an IPTV panel (the only source of credentials in capgen
/// captures), generated and analyzed; the panel's accounts, its raw request URLs and
/// every query string the truth lists must not be in the output. bench-streaming.toml,
/// 1.4 GB, is generated whole: capgen writes it in about 10 s and streamscope reads it
/// in about 7 s in a debug build.
#[test]
fn generated_panel_captures_leak_no_credentials_or_raw_urls() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/capgen/scenarios");
    let mut tomls: Vec<_> = std::fs::read_dir(&scenarios)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    tomls.sort();
    let tmp = tempfile::tempdir().unwrap();
    let (mut searched, mut files, mut creds, mut urls) = (Vec::new(), 0, 0, 0);
    for path in &tomls {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let sc = capgen::Scenario::from_toml(&text).expect("scenario parses");
        let mut secrets = panel_secrets(&sc);
        if secrets.credentials.is_empty() {
            assert!(
                !text.contains("password"),
                "{name}: credentials outside a panel"
            );
            continue;
        }
        let started = std::time::Instant::now();
        let (t, pcap) = support::generate(tmp.path(), &name, &text);
        let generated = started.elapsed();
        let from_truth = Secrets::of_truth(&t);
        assert_eq!(
            from_truth.credentials, secrets.credentials,
            "{name}: the truth lists the panel accounts the scenario sets"
        );
        assert!(
            from_truth.urls.iter().any(|u| u.starts_with("/live/")),
            "{name}: the truth lists the panel's stream URLs"
        );
        secrets.merge(from_truth);
        let out = tmp.path().join(format!("{name}-out"));
        let (f, values) = assert_no_secrets(&name, &pcap, &out, &secrets);
        say(&format!(
            "captures: {name}: generated in {:.1} s, analyzed and searched in {:.1} s \
             ({values} distinct values)",
            generated.as_secs_f64(),
            (started.elapsed() - generated).as_secs_f64()
        ));
        std::fs::remove_file(&pcap).unwrap();
        files += f;
        creds += secrets.credentials.len();
        urls += secrets.urls.len();
        searched.push(name);
    }
    assert_eq!(
        searched,
        ["bench-streaming", "ott"],
        "the scenarios with a panel"
    );
    say(&format!(
        "captures::generated_panel_captures_leak_no_credentials_or_raw_urls: {} captures, \
         {files} files, {creds} credentials, {urls} raw URLs and query strings: none found",
        searched.len()
    ));
}

/// The search of [`support::Decoded`] finds what it should: values planted in a
/// dictionary column, a list column and an integer column of a real output's
/// flows.parquet (written again, zstd-compressed, with one more row), and in run.json
/// behind a JSON escape; none of them is found before planting.
#[test]
fn the_output_search_finds_planted_values() {
    use arrow_array::builder::{ListBuilder, StringBuilder, StringDictionaryBuilder};
    use arrow_array::types::Int32Type;
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    const IN_DICT: &str = "user=planted-in-a-dictionary";
    const IN_LIST: &str = "pass=planted-in-a-list";
    const IN_INT: &str = "8765432109876";
    const IN_JSON: &str = "/live/planted/in/json";

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    analyze(&captures_dir().join("demo.pcap"), &out);
    let before = support::Decoded::read(&out);
    for n in [IN_DICT, IN_LIST, IN_INT, IN_JSON] {
        assert!(!before.contains(n), "{n} is in the output before planting");
    }
    // Values the real output holds, of each kind.
    for n in ["capture_end", "239.1.1.1", "2963", "streamscope"] {
        assert!(before.contains(n), "{n} (in the demo's output) not found");
    }

    let flows = out.join("flows.parquet");
    let old = batches(&flows);
    let first = old[0].slice(0, 1);
    let schema = first.schema();
    let mut columns = first.columns().to_vec();
    let at = |name: &str| schema.index_of(name).unwrap();
    let mut dict = StringDictionaryBuilder::<Int32Type>::new();
    dict.append_value(IN_DICT);
    columns[at("http_host")] = Arc::new(dict.finish());
    let arrow_schema::DataType::List(item) = schema.field(at("alpn")).data_type().clone() else {
        panic!("alpn is a list")
    };
    let mut list = ListBuilder::new(StringBuilder::new()).with_field(item);
    list.values().append_value("h2");
    list.values().append_value(IN_LIST);
    list.append(true);
    columns[at("alpn")] = Arc::new(list.finish());
    columns[at("bytes_up")] = Arc::new(Int64Array::from(vec![IN_INT.parse::<i64>().unwrap()]));
    let planted = RecordBatch::try_new(schema.clone(), columns).expect("the planted row");
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
        .build();
    let mut w = ArrowWriter::try_new(File::create(&flows).unwrap(), schema, Some(props)).unwrap();
    for b in old.iter().chain([&planted]) {
        w.write(b).unwrap();
    }
    w.close().unwrap();

    let run_json = out.join("run.json");
    let mut run: Value = serde_json::from_slice(&std::fs::read(&run_json).unwrap()).unwrap();
    run["planted"] = json!(IN_JSON);
    // serde_json writes "/" as is; escape it as a client may.
    let text = run
        .to_string()
        .replace(IN_JSON, &IN_JSON.replace('/', "\\u002f"));
    std::fs::write(&run_json, &text).unwrap();
    assert!(!text.contains(IN_JSON));

    let after = support::Decoded::read(&out);
    for (n, place) in [
        (IN_DICT, "flows.parquet column http_host"),
        (IN_LIST, "flows.parquet column alpn"),
        (IN_INT, "flows.parquet column bytes_up"),
        (IN_JSON, "run.json"),
    ] {
        assert_eq!(after.find(n).map(|(p, _)| p), Some(place), "{n}");
        assert!(support::output_contains(&out, n), "{n}");
    }
    // Raw bytes would have found the JSON one only by luck of the escape: not at all.
    assert!(!std::fs::read(&run_json)
        .unwrap()
        .windows(IN_JSON.len())
        .any(|w| w == IN_JSON.as_bytes()));
}
