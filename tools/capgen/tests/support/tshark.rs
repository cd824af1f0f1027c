//! A small wrapper around `tshark` for cross-checking generated captures in tests.
//!
//! tshark is found through `streamscope_testkit::tshark` (the `TSHARK` environment
//! variable, else `tshark` on `PATH`): [`Tshark::get`] gives `None` after printing one
//! `SKIPPED` line when it is missing, so that a test without it says what it did not
//! check and passes, and fails instead under `STREAMSCOPE_REQUIRE_ORACLES=1`.
//!
//! Every run is `tshark -n -r FILE OPTIONS...` (no name resolution) with `TZ=UTC`,
//! `LC_ALL=C` and an empty configuration directory (`WIRESHARK_CONFIG_DIR`), so a
//! developer's Wireshark profile cannot change what the tests see. A run panics with a
//! clear message when tshark exits non-zero or writes anything to stderr other than its
//! "Running as user root" notice: a test that uses it fails instead of silently passing.
//!
//! Parsers for three outputs:
//! - `-T fields` ([`Tshark::fields`]): one [`Row`] per frame; fields with several
//!   occurrences in a frame are joined with [`AGGREGATOR`] and split again by
//!   [`Row::values`];
//! - `-z conv,udp` / `-z conv,tcp` ([`parse_conv`]): rows of the conversation table.
//!   tshark 4.0 prints bytes there rounded down to kB/MB from 10,000 on, so compare
//!   exact figures through [`format_size`];
//! - `-z rtp,streams` ([`parse_rtp_streams`]).
//!
//! Expert information per frame is read with [`Tshark::expert`], and tshark's JSON
//! output (for per-TS-packet trees such as `mp2t.cc.drop`) with [`Tshark::json`].
//!
//! The figures checked against were produced with TShark 4.0.17 (Debian 12).
//!
//! Each test crate uses a subset of these helpers.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use streamscope_testkit::TSHARK_HINT;

/// Joins several occurrences of one field in a frame (`-E aggregator=`): the ASCII unit
/// separator, which no decoded value contains.
pub const AGGREGATOR: char = '\u{1f}';

/// The notice tshark prints to stderr when run as root; not an error.
const ROOT_NOTICE: &str = "Running as user \"root\"";

/// A located tshark binary.
#[derive(Debug, Clone)]
pub struct Tshark {
    exe: PathBuf,
    version: String,
    config_dir: PathBuf,
}

impl Tshark {
    /// tshark for `test`, which checks `what` with it; `None` after saying (one
    /// `SKIPPED` line) that `test` did not check `what` because tshark is missing.
    /// Under `STREAMSCOPE_REQUIRE_ORACLES=1` a missing tshark panics instead.
    pub fn get(test: &str, what: &str) -> Option<&'static Tshark> {
        static T: OnceLock<Tshark> = OnceLock::new();
        let found = streamscope_testkit::tshark(test, what)?;
        Some(T.get_or_init(|| {
            // An empty configuration directory: default preferences only.
            let config_dir = std::env::temp_dir().join("streamscope-tshark-empty-config");
            std::fs::create_dir_all(&config_dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", config_dir.display()));
            Tshark {
                exe: found.exe.clone(),
                version: found.version.clone(),
                config_dir,
            }
        }))
    }

    /// The first line of `tshark --version`, e.g. `TShark (Wireshark) 4.0.17 (...)`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Runs `tshark -n -r FILE ARGS...` and returns its stdout. Panics when tshark
    /// exits non-zero or writes anything but the root notice to stderr (a capture
    /// cut short, an unknown option or field, a bad display filter).
    pub fn run(&self, file: &Path, args: &[&str]) -> String {
        let out = Command::new(&self.exe)
            .arg("-n")
            .arg("-r")
            .arg(file)
            .args(args)
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .env("WIRESHARK_CONFIG_DIR", &self.config_dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {TSHARK_HINT}", self.exe.display()));
        let stderr: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(ROOT_NOTICE))
            .map(str::to_string)
            .collect();
        assert!(
            out.status.success() && stderr.is_empty(),
            "tshark -n -r {} {} failed ({}): {}",
            file.display(),
            args.join(" "),
            out.status,
            stderr.join("\n")
        );
        String::from_utf8(out.stdout).expect("tshark writes UTF-8")
    }

    /// Extracts `fields` for every frame matching the display `filter` (all frames with
    /// `None`): `-T fields -E separator=/t -E occurrence=a -E aggregator=<US> -e F...`.
    /// `opts` come first (e.g. `-d udp.port==5000,mp2t`). One [`Row`] per frame, one
    /// column per field, in the order asked.
    pub fn fields(
        &self,
        file: &Path,
        opts: &[&str],
        filter: Option<&str>,
        fields: &[&str],
    ) -> Vec<Row> {
        let aggregator = format!("aggregator={AGGREGATOR}");
        let mut args: Vec<&str> = opts.to_vec();
        if let Some(f) = filter {
            args.extend(["-Y", f]);
        }
        args.extend([
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=a",
            "-E",
            &aggregator,
        ]);
        for f in fields {
            args.extend(["-e", f]);
        }
        parse_fields(&self.run(file, &args), fields.len())
    }

    /// Number of frames matching the display `filter`.
    pub fn count(&self, file: &Path, opts: &[&str], filter: &str) -> usize {
        self.fields(file, opts, Some(filter), &["frame.number"])
            .len()
    }

    /// The `-z conv,PROTO` table (`proto` is `udp`, `tcp`, `ip`, ...).
    pub fn conv(&self, file: &Path, opts: &[&str], proto: &str) -> Vec<Conv> {
        let z = format!("conv,{proto}");
        let mut args: Vec<&str> = opts.to_vec();
        args.extend(["-q", "-z", &z]);
        parse_conv(&self.run(file, &args))
    }

    /// The `-z rtp,streams` table. RTP over UDP is only decoded when `opts` say so
    /// (`-d udp.port==P,rtp` or `--enable-heuristic rtp_udp`).
    pub fn rtp_streams(&self, file: &Path, opts: &[&str]) -> Vec<RtpStream> {
        let mut args: Vec<&str> = opts.to_vec();
        args.extend(["-q", "-z", "rtp,streams"]);
        parse_rtp_streams(&self.run(file, &args))
    }

    /// Every expert item of every frame, in frame order. `extra` fields (e.g.
    /// `udp.dstport`) are extracted alongside for attributing items to flows.
    pub fn expert(&self, file: &Path, opts: &[&str], extra: &[&str]) -> Vec<Expert> {
        let mut fields = vec![
            "frame.number",
            "_ws.expert.severity",
            "_ws.expert.group",
            "_ws.expert.message",
        ];
        fields.extend_from_slice(extra);
        let rows = self.fields(file, opts, Some("_ws.expert"), &fields);
        let mut out = Vec::new();
        for row in rows {
            let frame = row.u64(0).expect("frame.number");
            let sev: Vec<&str> = row.values(1).collect();
            let grp: Vec<&str> = row.values(2).collect();
            let msg: Vec<&str> = row.values(3).collect();
            assert!(
                sev.len() == msg.len() && grp.len() == msg.len(),
                "frame {frame}: expert fields do not line up: {sev:?} {grp:?} {msg:?}"
            );
            for i in 0..msg.len() {
                out.push(Expert {
                    frame,
                    severity: Severity::from_code(sev[i].parse().unwrap_or(0)),
                    group: grp[i].parse().unwrap_or(0),
                    message: msg[i].to_string(),
                    extra: (0..extra.len())
                        .map(|k| row.get(4 + k).to_string())
                        .collect(),
                });
            }
        }
        out
    }

    /// tshark's JSON for the frames matching `filter` (`-T json --no-duplicate-keys`),
    /// limited to the `protocols` trees (`-J "p1 p2"`; other layers appear as
    /// `{"filtered": ...}`). Repeated layers or fields (e.g. several `mp2t` packets in
    /// one datagram) become arrays.
    pub fn json(
        &self,
        file: &Path,
        opts: &[&str],
        filter: &str,
        protocols: &[&str],
    ) -> serde_json::Value {
        let j = protocols.join(" ");
        let mut args: Vec<&str> = opts.to_vec();
        args.extend(["-Y", filter, "-T", "json", "--no-duplicate-keys", "-J", &j]);
        let text = self.run(file, &args);
        serde_json::from_str(&text).expect("tshark writes valid JSON")
    }
}

/// One frame of `-T fields` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    cols: Vec<String>,
}

impl Row {
    /// Column `i` as printed (occurrences joined with [`AGGREGATOR`]); `""` when the
    /// field is absent.
    pub fn get(&self, i: usize) -> &str {
        self.cols.get(i).map_or("", String::as_str)
    }

    /// Whether column `i` has at least one occurrence.
    pub fn has(&self, i: usize) -> bool {
        !self.get(i).is_empty()
    }

    /// The occurrences of column `i` (none when the field is absent).
    pub fn values(&self, i: usize) -> impl Iterator<Item = &str> {
        let s = self.get(i);
        s.split(AGGREGATOR).filter(move |_| !s.is_empty())
    }

    /// Column `i` as an unsigned integer, decimal or `0x` hexadecimal (first occurrence).
    pub fn u64(&self, i: usize) -> Option<u64> {
        self.values(i).next().and_then(parse_u64)
    }

    /// Column `i` as an address (first occurrence).
    pub fn addr(&self, i: usize) -> Option<IpAddr> {
        self.values(i).next().and_then(|v| v.parse().ok())
    }

    /// Column `i`, an epoch time such as `frame.time_epoch`, in nanoseconds.
    pub fn time_ns(&self, i: usize) -> Option<u64> {
        self.values(i).next().and_then(parse_epoch_ns)
    }

    /// Column `i`, a relative time such as `tcp.analysis.initial_rtt`, in nanoseconds.
    pub fn duration_ns(&self, i: usize) -> Option<u64> {
        self.time_ns(i)
    }
}

/// Splits `-T fields` output (tab-separated, one frame per line) into rows of `ncols`
/// columns (missing trailing columns are empty).
pub fn parse_fields(text: &str, ncols: usize) -> Vec<Row> {
    text.lines()
        .map(|line| {
            let mut cols: Vec<String> = line.split('\t').map(str::to_string).collect();
            cols.resize(ncols.max(cols.len()), String::new());
            Row { cols }
        })
        .collect()
}

/// An unsigned integer as tshark prints it: decimal or `0x` hexadecimal.
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `SECONDS.FRACTION` (up to 9 fraction digits) in nanoseconds, exactly.
pub fn parse_epoch_ns(s: &str) -> Option<u64> {
    let (sec, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ns = 0u64;
    for i in 0..9 {
        let d = frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
        ns = ns * 10 + d;
    }
    sec.parse::<u64>()
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(ns)
}

/// Expert severity (`_ws.expert.severity`, Wireshark's `PI_*` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Comment,
    Chat,
    Note,
    Warn,
    Error,
    Unknown(u32),
}

impl Severity {
    /// From the numeric code tshark prints (`0x00100000` comment ... `0x00800000` error).
    pub fn from_code(code: u32) -> Severity {
        match code {
            0x0010_0000 => Severity::Comment,
            0x0020_0000 => Severity::Chat,
            0x0040_0000 => Severity::Note,
            0x0060_0000 => Severity::Warn,
            0x0080_0000 => Severity::Error,
            n => Severity::Unknown(n),
        }
    }
}

/// Expert group code of sequence analysis (`PI_SEQUENCE`).
pub const GROUP_SEQUENCE: u32 = 0x0200_0000;
/// Expert group code of malformed packets (`PI_MALFORMED`).
pub const GROUP_MALFORMED: u32 = 0x0700_0000;

/// One expert item of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expert {
    pub frame: u64,
    pub severity: Severity,
    /// `_ws.expert.group` code (e.g. [`GROUP_SEQUENCE`]).
    pub group: u32,
    pub message: String,
    /// The `extra` fields asked for in [`Tshark::expert`], as printed.
    pub extra: Vec<String>,
}

/// A byte count as printed in a conversation table: an exact count or a rounded one.
///
/// tshark 4.0 formats sizes with SI prefixes from 10 units on, rounding down:
/// `8370 bytes`, `273 kB` for 273,192, `1003 kB` for 1,003,562.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size(pub String);

impl Size {
    /// Whether `exact` prints as this size.
    pub fn matches(&self, exact: u64) -> bool {
        self.0 == format_size(exact)
    }
}

/// Formats a byte count like tshark 4.0's conversation tables (`format_size` with SI
/// prefixes): the largest of P/T/G/M/k whose value is at least 10, rounded down,
/// otherwise plain bytes.
pub fn format_size(n: u64) -> String {
    const PREFIXES: [(u64, &str); 5] = [
        (1_000_000_000_000_000, "PB"),
        (1_000_000_000_000, "TB"),
        (1_000_000_000, "GB"),
        (1_000_000, "MB"),
        (1_000, "kB"),
    ];
    for (unit, name) in PREFIXES {
        if n / unit >= 10 {
            return format!("{} {name}", n / unit);
        }
    }
    format!("{n} bytes")
}

/// One row of a `-z conv,udp|tcp` table. `a` is the left endpoint, `b` the right one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conv {
    pub a_addr: IpAddr,
    pub a_port: u16,
    pub b_addr: IpAddr,
    pub b_port: u16,
    /// Frames and bytes from `b` to `a` (the `<-` column).
    pub frames_b_to_a: u64,
    pub bytes_b_to_a: Size,
    /// Frames and bytes from `a` to `b` (the `->` column).
    pub frames_a_to_b: u64,
    pub bytes_a_to_b: Size,
    pub frames: u64,
    pub bytes: Size,
    /// Start relative to the first frame of the capture, in nanoseconds.
    pub rel_start_ns: u64,
}

/// Parses a `-z conv,udp` or `-z conv,tcp` table (address:port endpoints). Lines that
/// are not conversation rows (banners, headers) are skipped.
pub fn parse_conv(text: &str) -> Vec<Conv> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        // A <-> B  f n unit  f n unit  f n unit  start duration
        if t.len() != 14 || t[1] != "<->" {
            continue;
        }
        let (Some((a_addr, a_port)), Some((b_addr, b_port))) = (endpoint(t[0]), endpoint(t[2]))
        else {
            continue;
        };
        let num = |s: &str| s.parse::<u64>().ok();
        let (Some(f1), Some(f2), Some(f3), Some(rel)) =
            (num(t[3]), num(t[6]), num(t[9]), parse_epoch_ns(t[12]))
        else {
            continue;
        };
        out.push(Conv {
            a_addr,
            a_port,
            b_addr,
            b_port,
            frames_b_to_a: f1,
            bytes_b_to_a: Size(format!("{} {}", t[4], t[5])),
            frames_a_to_b: f2,
            bytes_a_to_b: Size(format!("{} {}", t[7], t[8])),
            frames: f3,
            bytes: Size(format!("{} {}", t[10], t[11])),
            rel_start_ns: rel,
        });
    }
    out
}

/// `ADDR:PORT` with an IPv4 or (unbracketed) IPv6 address.
fn endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = s.rsplit_once(':')?;
    Some((a.parse().ok()?, p.parse().ok()?))
}

/// One row of `-z rtp,streams`.
#[derive(Debug, Clone, PartialEq)]
pub struct RtpStream {
    pub src_addr: IpAddr,
    pub src_port: u16,
    pub dst_addr: IpAddr,
    pub dst_port: u16,
    pub ssrc: u32,
    /// Payload description, e.g. `MPEG-II streams`.
    pub payload: String,
    pub packets: u64,
    /// Expected minus received packets (negative with duplicates).
    pub lost: i64,
    pub max_delta_ms: f64,
    pub mean_jitter_ms: f64,
    pub max_jitter_ms: f64,
    /// tshark's "Problems?" mark (sequence errors, wrong timestamps, ...).
    pub problems: bool,
}

/// Parses a `-z rtp,streams` table.
pub fn parse_rtp_streams(text: &str) -> Vec<RtpStream> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut t: Vec<&str> = line.split_whitespace().collect();
        // start end src sport dst dport ssrc payload... pkts lost (pct) 6 x delta/jitter [X]
        if t.len() < 17 || !t[6].starts_with("0x") {
            continue;
        }
        let problems = t.last() == Some(&"X");
        if problems {
            t.pop();
        }
        let n = t.len();
        let parsed = (|| {
            Some(RtpStream {
                src_addr: t[2].parse().ok()?,
                src_port: t[3].parse().ok()?,
                dst_addr: t[4].parse().ok()?,
                dst_port: t[5].parse().ok()?,
                ssrc: u32::from_str_radix(t[6].strip_prefix("0x")?, 16).ok()?,
                payload: t[7..n - 9].join(" "),
                packets: t[n - 9].parse().ok()?,
                lost: t[n - 8].parse().ok()?,
                max_delta_ms: t[n - 4].parse().ok()?,
                mean_jitter_ms: t[n - 2].parse().ok()?,
                max_jitter_ms: t[n - 1].parse().ok()?,
                problems,
            })
        })();
        if let Some(s) = parsed {
            out.push(s);
        }
    }
    out
}

/// Walks a JSON tree and calls `f` on every value stored under `key` (at any depth).
pub fn json_find<'a>(
    v: &'a serde_json::Value,
    key: &str,
    f: &mut dyn FnMut(&'a serde_json::Value),
) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    f(x);
                }
                json_find(x, key, f);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                json_find(x, key, f);
            }
        }
        _ => {}
    }
}

/// A JSON layer that may be one object or an array of them (`--no-duplicate-keys`).
pub fn json_each(v: Option<&serde_json::Value>) -> Vec<&serde_json::Value> {
    match v {
        Some(serde_json::Value::Array(a)) => a.iter().collect(),
        Some(x) => vec![x],
        None => Vec::new(),
    }
}
