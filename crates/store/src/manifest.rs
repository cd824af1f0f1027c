//! The run manifest (`run.json`) and an atomic JSON writer.
//!
//! `run.json` records what a run read and wrote: the tool and schema versions, the
//! command line, every input (size, time, fingerprint, link types, counts, error), the
//! options, packet/byte/error counts, the tables written, warnings and timings. Times
//! are RFC 3339 strings in UTC with microseconds ([`rfc3339_ns`]).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The content of `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// Always `"streamscope"`.
    pub tool: String,
    /// Version of the tool that wrote the run.
    pub version: String,
    /// [`crate::SCHEMA_VERSION`] of the tables.
    pub schema_version: u32,
    /// The command line, program name first.
    pub args: Vec<String>,
    /// When the run started (RFC 3339, UTC), supplied by the caller.
    pub started_at: String,
    /// Every input, in the order read.
    pub inputs: Vec<InputEntry>,
    /// The effective options, filled by the caller.
    pub options: serde_json::Value,
    /// Packet, byte, error and row counts.
    pub counts: Counts,
    /// The tables written.
    pub tables: Vec<TableEntry>,
    /// Warnings, one line each (e.g. a truncated input with its byte offset).
    pub warnings: Vec<String>,
    /// How long the run took.
    pub timings: Timings,
}

impl RunManifest {
    /// A manifest with the tool, version and schema version filled, the given command
    /// line and start time, and everything else empty.
    pub fn new(args: Vec<String>, started_at: String) -> RunManifest {
        RunManifest {
            tool: crate::TOOL_NAME.to_string(),
            version: crate::TOOL_VERSION.to_string(),
            schema_version: crate::SCHEMA_VERSION,
            args,
            started_at,
            inputs: Vec::new(),
            options: serde_json::Value::Object(serde_json::Map::new()),
            counts: Counts::default(),
            tables: Vec::new(),
            warnings: Vec::new(),
            timings: Timings::default(),
        }
    }
}

/// One input capture.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InputEntry {
    /// Path as given on the command line (`-` for stdin).
    pub path: String,
    /// Container format: `"pcap"`, `"pcapng"`, ...
    pub format: String,
    /// Compression: `"none"`, `"gzip"`, `"zstd"`.
    pub compression: String,
    /// File size in bytes; `None` for a stream.
    pub size: Option<u64>,
    /// Modification time (RFC 3339, UTC); `None` for a stream.
    pub mtime: Option<String>,
    /// Content fingerprint (algorithm-prefixed, e.g. `xxh3:...`); `None` if not computed.
    pub fingerprint: Option<String>,
    /// Link types (pcap LINKTYPE_ values) met in the input.
    pub link_types: Vec<u32>,
    /// Packets read.
    pub packets: u64,
    /// Original (wire) bytes of the packets read.
    pub bytes: u64,
    /// Captured bytes of the packets read.
    pub captured_bytes: u64,
    /// Capture time of the first packet (RFC 3339, UTC).
    pub first_ts: Option<String>,
    /// Capture time of the last packet (RFC 3339, UTC).
    pub last_ts: Option<String>,
    /// Why reading stopped early, with the byte offset; `None` when read to the end.
    pub error: Option<String>,
}

/// Totals over all inputs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Packets read.
    pub packets: u64,
    /// Original (wire) bytes.
    pub bytes: u64,
    /// Captured bytes.
    pub captured_bytes: u64,
    /// Packets without an IPv4 or IPv6 layer.
    pub non_ip_packets: u64,
    /// Malformed packets, per kind of decode error.
    pub decode_errors: BTreeMap<String, u64>,
    /// Packets whose timestamp was earlier than the previous packet's.
    pub timestamps_backwards: u64,
    /// Rows of the `flows` table.
    pub flows: u64,
    /// Flows evicted to keep the flow table within its bound.
    pub flows_evicted: u64,
    /// Rows of the `flow_bins` table.
    pub flow_bins: u64,
    /// Any other count, by name.
    pub extra: BTreeMap<String, u64>,
}

/// One table written.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableEntry {
    /// Table name.
    pub name: String,
    /// File path relative to the output folder.
    pub path: String,
    /// Rows.
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
}

/// How long the run took, in seconds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Wall-clock time of the whole run.
    pub wall_s: f64,
    /// Wall-clock time of named phases (e.g. `"read"`, `"write"`).
    pub phases: BTreeMap<String, f64>,
}

/// Writes `value` as pretty-printed JSON to `path` atomically: to `.<name>.tmp` in the
/// same folder, fsynced, then renamed over `path`. On error the temporary file is
/// removed and `path` is untouched.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<(), Error> {
    let mut json = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    json.push(b'\n');
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&json).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("sync", &tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io("rename", &tmp))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// `dir/name` → `dir/.name.tmp`.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Nanoseconds per second.
const NS_PER_S: i64 = 1_000_000_000;
/// Seconds per day.
const S_PER_DAY: i64 = 86_400;

/// Formats nanoseconds since the Unix epoch as RFC 3339 in UTC with microseconds,
/// e.g. `2001-09-09T01:46:40.123456Z`, flooring to the microsecond.
///
/// Every `i64` is in range (years 1677 to 2262, always four digits).
pub fn rfc3339_ns(ns: i64) -> String {
    let secs = ns.div_euclid(NS_PER_S);
    let micros = ns.rem_euclid(NS_PER_S) / 1_000;
    let days = secs.div_euclid(S_PER_DAY);
    let sod = secs.rem_euclid(S_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01, after Howard
/// Hinnant's `civil_from_days` ("chrono-Compatible Low-Level Date Algorithms").
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_at_known_instants() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000000Z");
        // `date -u -d @1000000000`: Sun Sep  9 01:46:40 UTC 2001
        assert_eq!(
            rfc3339_ns(1_000_000_000_123_456_789),
            "2001-09-09T01:46:40.123456Z"
        );
        // Leap day of a year divisible by 400, and the day after.
        assert_eq!(
            rfc3339_ns(951_782_400 * NS_PER_S),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            rfc3339_ns(951_868_800 * NS_PER_S - 1),
            "2000-02-29T23:59:59.999999Z"
        );
        // 2100 is not a leap year: the day after 2100-02-28 (`date -u -d @4107456000`) is
        // 2100-03-01.
        assert_eq!(
            rfc3339_ns(4_107_542_400 * NS_PER_S),
            "2100-03-01T00:00:00.000000Z"
        );
        // 2024-12-31T23:59:59 UTC, end of a leap year.
        assert_eq!(
            rfc3339_ns(1_735_689_599 * NS_PER_S + 500_000_000),
            "2024-12-31T23:59:59.500000Z"
        );
    }

    #[test]
    fn rfc3339_floors_before_the_epoch_and_covers_i64() {
        assert_eq!(rfc3339_ns(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339_ns(-1_000), "1969-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339_ns(-1_001), "1969-12-31T23:59:59.999998Z");
        assert_eq!(rfc3339_ns(i64::MAX), "2262-04-11T23:47:16.854775Z");
        assert_eq!(rfc3339_ns(i64::MIN), "1677-09-21T00:12:43.145224Z");
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("streamscope-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("create temp dir");
        d
    }

    #[test]
    fn manifest_round_trips_through_run_json() {
        let dir = temp_dir("manifest");
        let path = dir.join("run.json");
        let mut m = RunManifest::new(
            vec!["streamscope".into(), "run".into(), "x.pcap".into()],
            rfc3339_ns(1_700_000_000_000_000_000),
        );
        m.inputs.push(InputEntry {
            path: "x.pcap".into(),
            format: "pcap".into(),
            compression: "none".into(),
            size: Some(1234),
            link_types: vec![1],
            packets: 10,
            bytes: 1000,
            captured_bytes: 900,
            first_ts: Some(rfc3339_ns(0)),
            ..InputEntry::default()
        });
        m.counts.decode_errors.insert("ipv4_truncated".into(), 2);
        m.counts.extra.insert("igmp_packets".into(), 5);
        m.timings.wall_s = 1.5;
        write_json_atomic(&path, &m).expect("write run.json");

        let text = fs::read_to_string(&path).expect("read run.json");
        assert!(text.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&text).expect("parse");
        assert_eq!(v["tool"], "streamscope");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["started_at"], "2023-11-14T22:13:20.000000Z");
        assert_eq!(v["inputs"][0]["size"], 1234);
        assert_eq!(v["inputs"][0]["mtime"], serde_json::Value::Null);
        assert_eq!(v["counts"]["decode_errors"]["ipv4_truncated"], 2);
        let back: RunManifest = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, m);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("run.json")]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn write_json_atomic_fails_clearly_and_leaves_nothing() {
        let dir = temp_dir("json-fail");
        let missing = dir.join("no-such-folder").join("run.json");
        let err = write_json_atomic(&missing, &1u32).expect_err("folder is missing");
        let msg = err.to_string();
        assert!(msg.starts_with("cannot create "), "{msg}");
        assert!(msg.contains(".run.json.tmp"), "{msg}");
        assert!(!missing.exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
