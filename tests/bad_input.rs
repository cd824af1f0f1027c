//! End-to-end tests of the `streamscope` binary on bad input (DESIGN.md, "Errors and bad
//! input"):
//!
//! - not a capture, empty, unreadable, unknown link type: exit code 2, one line on stderr
//!   naming the file and what was expected, no output table written;
//! - truncated or corrupt capture: a warning naming the file and the byte offset,
//!   everything before it kept and written, the manifest records it, exit code 0;
//! - malformed packets: counted per kind in `run.json`, processing goes on;
//! - no input ever panics the program, and no output file is left half-written.
//!
//! Every capture is built here, byte by byte, from hand-made frames with correct
//! Ethernet, IPv4 (RFC 791), UDP (RFC 768) and TCP (RFC 9293) headers, in classic pcap
//! (draft-ietf-opsawg-pcap) or pcapng (draft-ietf-opsawg-pcapng) form, so each expected
//! count below follows from the bytes written.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use arrow_array::{Array, Int64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_streamscope");

/// The files a complete `analyze` run leaves in its output folder, sorted: a Parquet file
/// per table the schema declares, and `run.json`.
fn complete_output() -> Vec<String> {
    let mut names: Vec<String> = streamscope_store::tables()
        .iter()
        .map(|t| format!("{}.parquet", t.name))
        .chain(["run.json".to_string()])
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The one line of stderr (panics unless stderr is exactly one newline-ended line).
    fn one_stderr_line(&self) -> &str {
        assert!(
            self.stderr.ends_with('\n') && self.stderr.lines().count() == 1,
            "expected exactly one line on stderr, got {:?}",
            self.stderr
        );
        self.stderr.trim_end()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }
}

fn run_with(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().expect("the streamscope binary starts");
    let feeder = stdin.map(|bytes| {
        let bytes = bytes.to_vec();
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // The program may stop reading early (an error): a broken pipe is fine here.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let out = child
        .wait_with_output()
        .expect("streamscope runs to its end");
    if let Some(f) = feeder {
        f.join().expect("the stdin feeder thread ends");
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(code) = out.status.code() else {
        panic!(
            "streamscope {args:?} was killed by a signal ({:?}); stderr: {stderr}",
            out.status
        );
    };
    assert_ne!(
        code, 101,
        "streamscope {args:?} panicked (exit code 101); stderr: {stderr}"
    );
    Run {
        code,
        stdout,
        stderr,
    }
}

fn run(args: &[&str]) -> Run {
    run_with(args, None)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn analyze(inputs: &[&Path], out: &Path) -> Run {
    let mut args = vec!["analyze", "--quiet"];
    args.extend(inputs.iter().map(|p| s(p)));
    args.extend(["-o", s(out)]);
    run(&args)
}

// ---------------------------------------------------------------------------------------
// Reading the output back
// ---------------------------------------------------------------------------------------

/// Names in `dir` (hidden ones included), sorted; empty when `dir` does not exist.
fn listing(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn assert_complete_output(out: &Path) {
    assert_eq!(
        listing(out),
        complete_output(),
        "{} should hold exactly the tables and run.json (no .tmp left)",
        out.display()
    );
}

fn manifest(out: &Path) -> Value {
    let text = fs::read_to_string(out.join("run.json")).expect("run.json is readable");
    serde_json::from_str(&text).expect("run.json is valid JSON")
}

/// A table read back with the parquet crate.
struct Table {
    rows: usize,
    /// Sum of packets_up + packets_down over all rows.
    packets: i64,
    /// packets_up + packets_down of each row, in file order.
    per_row_packets: Vec<i64>,
}

fn read_table(path: &Path) -> Table {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap_or_else(|e| panic!("{} is not valid Parquet: {e}", path.display()));
    let footer_rows = builder.metadata().file_metadata().num_rows();
    let reader = builder.build().expect("a record batch reader");
    let mut t = Table {
        rows: 0,
        packets: 0,
        per_row_packets: Vec::new(),
    };
    for batch in reader {
        let batch = batch.unwrap_or_else(|e| panic!("{}: bad batch: {e}", path.display()));
        t.rows += batch.num_rows();
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                .unwrap_or_else(|| panic!("{}: no int64 column {name}", path.display()))
                .clone()
        };
        let (up, down) = (col("packets_up"), col("packets_down"));
        assert_eq!(up.null_count() + down.null_count(), 0);
        for i in 0..batch.num_rows() {
            let n = up.value(i) + down.value(i);
            t.packets += n;
            t.per_row_packets.push(n);
        }
    }
    assert_eq!(
        usize::try_from(footer_rows).ok(),
        Some(t.rows),
        "{}: footer row count differs from the rows read",
        path.display()
    );
    t
}

// ---------------------------------------------------------------------------------------
// Building frames
// ---------------------------------------------------------------------------------------

/// Internet checksum (RFC 1071) of `data`, starting from `sum`.
fn checksum(mut sum: u32, data: &[u8]) -> u16 {
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sum of the IPv4 pseudo-header used by the UDP and TCP checksums.
fn pseudo_sum(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> u32 {
    let mut sum = 0u32;
    for w in [src, dst] {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        sum += u32::from(u16::from_be_bytes([w[2], w[3]]));
    }
    sum + u32::from(proto) + len as u32
}

/// Ethernet II frame: destination, source, EtherType, payload.
fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header (RFC 791 §3.1, IHL 5, DF, TTL 64, correct header checksum) + payload.
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&(total as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = checksum(0, &h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn udp_frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let c = checksum(pseudo_sum(src, dst, 17, len), &u);
    u[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    ethernet(0x0800, &ipv4(src, dst, 17, &u))
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    let c = checksum(pseudo_sum(src, dst, 6, t.len()), &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ethernet(0x0800, &ipv4(src, dst, 6, &t))
}

/// One packet: capture time and frame bytes.
#[derive(Clone)]
struct Frame {
    ts_ns: i64,
    data: Vec<u8>,
}

/// Capture time of the first sample frame: 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000_000_000;
const MS: i64 = 1_000_000;

const MCAST_SRC: [u8; 4] = [10, 0, 0, 1];
const MCAST_GROUP: [u8; 4] = [239, 1, 1, 1];
const WEB_CLIENT: [u8; 4] = [192, 168, 1, 10];
const WEB_SERVER: [u8; 4] = [192, 168, 1, 20];
const DNS_CLIENT: [u8; 4] = [10, 0, 0, 2];
const DNS_SERVER: [u8; 4] = [10, 0, 0, 3];

fn mcast_frame(ts_ns: i64) -> Frame {
    Frame {
        ts_ns,
        data: udp_frame(MCAST_SRC, 40000, MCAST_GROUP, 5000, &[0x47; 100]),
    }
}

/// Eight valid packets in three flows, 1 ms apart:
/// - packets 0-2: UDP 10.0.0.1:40000 → 239.1.1.1:5000, 142-byte frames;
/// - packets 3-6: TCP 192.168.1.10:50000 ↔ 192.168.1.20:80, SYN, SYN-ACK, ACK (54 bytes
///   each), then 200 bytes of data from the server (254 bytes);
/// - packet 7: UDP 10.0.0.2:53000 → 10.0.0.3:53, 72 bytes.
fn sample_frames() -> Vec<Frame> {
    let mut f: Vec<Frame> = (0..3).map(|i| mcast_frame(T0 + i * MS)).collect();
    let (c, sv) = (WEB_CLIENT, WEB_SERVER);
    let tcp = [
        tcp_frame(c, 50000, sv, 80, 1000, 0, SYN, &[]),
        tcp_frame(sv, 80, c, 50000, 5000, 1001, SYN | ACK, &[]),
        tcp_frame(c, 50000, sv, 80, 1001, 5001, ACK, &[]),
        tcp_frame(sv, 80, c, 50000, 5001, 1001, PSH | ACK, &[b'x'; 200]),
    ];
    for (i, data) in tcp.into_iter().enumerate() {
        f.push(Frame {
            ts_ns: T0 + (3 + i as i64) * MS,
            data,
        });
    }
    f.push(Frame {
        ts_ns: T0 + 7 * MS,
        data: udp_frame(DNS_CLIENT, 53000, DNS_SERVER, 53, &[0xab; 30]),
    });
    f
}

const SAMPLE_PACKETS: u64 = 8;
/// 3 × 142 + 3 × 54 + 254 + 72.
const SAMPLE_BYTES: u64 = 914;
const SAMPLE_FLOWS: usize = 3;

#[test]
fn sample_frames_are_what_the_tests_assume() {
    let f = sample_frames();
    let lens: Vec<usize> = f.iter().map(|f| f.data.len()).collect();
    assert_eq!(lens, [142, 142, 142, 54, 54, 54, 254, 72]);
    assert_eq!(lens.iter().sum::<usize>() as u64, SAMPLE_BYTES);
    assert_eq!(f.len() as u64, SAMPLE_PACKETS);
    // Header checksums verify (sum over the header including its checksum is 0).
    let ip = &f[3].data[14..34];
    assert_eq!(checksum(0, ip), 0);
    let tcp = &f[3].data[34..];
    assert_eq!(
        checksum(pseudo_sum(WEB_CLIENT, WEB_SERVER, 6, tcp.len()), tcp),
        0
    );
    let udp = &f[0].data[34..];
    assert_eq!(
        checksum(pseudo_sum(MCAST_SRC, MCAST_GROUP, 17, udp.len()), udp),
        0
    );
}

// ---------------------------------------------------------------------------------------
// Building captures
// ---------------------------------------------------------------------------------------

const PCAP_HEADER_LEN: usize = 24;
const PCAP_RECORD_HEADER_LEN: usize = 16;

/// Classic pcap global header (§4): little-endian, microseconds, version 2.4.
fn pcap_header(link_type: u32, snaplen: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(PCAP_HEADER_LEN);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&snaplen.to_le_bytes());
    h.extend_from_slice(&link_type.to_le_bytes());
    h
}

/// One pcap record (§5) with explicit captured and original lengths.
fn pcap_record(out: &mut Vec<u8>, ts_ns: i64, caplen: u32, orig_len: u32, data: &[u8]) {
    let us = ts_ns / 1000;
    out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
    out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
    out.extend_from_slice(&caplen.to_le_bytes());
    out.extend_from_slice(&orig_len.to_le_bytes());
    out.extend_from_slice(data);
}

fn pcap_with(link_type: u32, snaplen: u32, frames: &[Frame]) -> Vec<u8> {
    let mut out = pcap_header(link_type, snaplen);
    for f in frames {
        let n = f.data.len() as u32;
        pcap_record(&mut out, f.ts_ns, n, n, &f.data);
    }
    out
}

/// An Ethernet pcap with snap length 65535.
fn pcap(frames: &[Frame]) -> Vec<u8> {
    pcap_with(1, 65535, frames)
}

/// Byte offset of record `i` in a pcap built from `frames`.
fn pcap_record_offset(frames: &[Frame], i: usize) -> usize {
    PCAP_HEADER_LEN
        + frames[..i]
            .iter()
            .map(|f| PCAP_RECORD_HEADER_LEN + f.data.len())
            .sum::<usize>()
}

const SHB_LEN: usize = 28;
const IDB_LEN: usize = 20;

/// A pcapng block (§3.1): type, total length, body padded to 32 bits, total length.
fn pcapng_block(out: &mut Vec<u8>, block_type: u32, body: &[u8]) {
    let padded = (body.len() + 3) & !3;
    let total = (12 + padded) as u32;
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
    out.extend_from_slice(&total.to_le_bytes());
}

/// Section Header Block (§4.1, version 1.0, section length unknown) and one Interface
/// Description Block (§4.2, no options: microsecond timestamps).
fn pcapng_head(link_type: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    pcapng_block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&link_type.to_le_bytes());
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&0u32.to_le_bytes());
    pcapng_block(&mut out, 1, &idb);
    debug_assert_eq!(out.len(), SHB_LEN + IDB_LEN);
    out
}

/// Enhanced Packet Block (§4.3) on interface 0, microsecond timestamp.
fn pcapng_epb(out: &mut Vec<u8>, f: &Frame) {
    let us = (f.ts_ns / 1000) as u64;
    let mut body = Vec::with_capacity(20 + f.data.len());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&((us >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(us as u32).to_le_bytes());
    body.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
    body.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
    body.extend_from_slice(&f.data);
    pcapng_block(out, 6, &body);
}

fn pcapng_with(link_type: u16, frames: &[Frame]) -> Vec<u8> {
    let mut out = pcapng_head(link_type);
    for f in frames {
        pcapng_epb(&mut out, f);
    }
    out
}

fn pcapng(frames: &[Frame]) -> Vec<u8> {
    pcapng_with(1, frames)
}

fn epb_len(f: &Frame) -> usize {
    32 + ((f.data.len() + 3) & !3)
}

/// Byte offset of the Enhanced Packet Block of packet `i`.
fn pcapng_block_offset(frames: &[Frame], i: usize) -> usize {
    SHB_LEN + IDB_LEN + frames[..i].iter().map(epb_len).sum::<usize>()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).expect("write a test input");
    p
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

// ---------------------------------------------------------------------------------------
// Unusable input: exit code 2, one line, no output
// ---------------------------------------------------------------------------------------

#[test]
fn text_file_exits_2_with_one_line_and_writes_nothing() {
    let dir = tmp();
    let input = write(dir.path(), "notes.pcap", b"hello, this is not a capture\n");
    let out = dir.path().join("out");

    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    let line = r.one_stderr_line();
    assert!(line.contains(s(&input)), "names the file: {line}");
    assert!(line.contains("not a capture"), "{line}");
    assert!(line.contains("0x68656c6c"), "shows the first bytes: {line}");
    assert!(
        line.contains("expected pcap magic a1b2c3d4/a1b23c4d") && line.contains("pcapng 0a0d0d0a"),
        "says what was expected: {line}"
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        !out.exists(),
        "no output folder is created for unusable input"
    );

    // An existing output folder is left as it was.
    fs::create_dir(&out).expect("mkdir");
    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 2);
    r.one_stderr_line();
    assert_eq!(listing(&out), Vec::<String>::new());

    let r = run(&["inspect", "--json", s(&input)]);
    assert_eq!(r.code, 2);
    assert!(r.one_stderr_line().contains(s(&input)));
    assert!(r.stdout.is_empty());
}

#[test]
fn empty_file_exits_2_with_one_line_and_writes_nothing() {
    let dir = tmp();
    let input = write(dir.path(), "empty.pcap", b"");
    let out = dir.path().join("out");
    fs::create_dir(&out).expect("mkdir");

    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert_eq!(
        r.one_stderr_line(),
        format!(
            "streamscope: error: {}: empty input, expected a pcap or pcapng capture",
            input.display()
        )
    );
    assert_eq!(listing(&out), Vec::<String>::new(), "nothing written");

    // Empty on stdin: the same, named `-`.
    let r = run_with(&["inspect", "--json", "-"], Some(b""));
    assert_eq!(r.code, 2);
    assert!(r.one_stderr_line().contains("-: "), "{}", r.stderr);
}

#[test]
fn cut_file_header_exits_2() {
    let dir = tmp();
    // A pcap magic number and 6 more bytes: the 24-byte global header is cut.
    let input = write(dir.path(), "short.pcap", &pcap_header(1, 65535)[..10]);
    let out = dir.path().join("out");
    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 2);
    let line = r.one_stderr_line();
    assert!(line.contains(s(&input)), "{line}");
    assert!(
        line.contains("bad pcap header at byte 0") && line.contains("24 bytes expected"),
        "{line}"
    );
    assert!(!out.exists());

    // A pcapng Section Header Block with a bad byte-order magic.
    let mut ng = pcapng(&[]);
    ng[8..12].copy_from_slice(&[1, 2, 3, 4]);
    let input = write(dir.path(), "bad-shb.pcapng", &ng);
    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 2);
    let line = r.one_stderr_line();
    assert!(
        line.contains(s(&input)) && line.contains("bad pcapng header at byte 0"),
        "{line}"
    );
    assert!(!out.exists());
}

#[test]
fn unreadable_inputs_exit_2_naming_the_file() {
    let dir = tmp();
    let out = dir.path().join("out");

    let missing = dir.path().join("no-such-file.pcap");
    let r = analyze(&[&missing], &out);
    assert_eq!(r.code, 2);
    let line = r.one_stderr_line();
    assert!(
        line.contains(s(&missing)) && line.contains("cannot read input"),
        "{line}"
    );
    assert!(line.contains("No such file"), "{line}");
    assert!(!out.exists());

    // A folder given as a capture.
    let folder = dir.path().join("a-folder");
    fs::create_dir(&folder).expect("mkdir");
    let r = analyze(&[&folder], &out);
    assert_eq!(r.code, 2);
    let line = r.one_stderr_line();
    assert!(
        line.contains(s(&folder)) && line.contains("cannot read input"),
        "{line}"
    );
    assert!(!out.exists());

    // A good first input does not make a bad second one acceptable: all inputs are
    // opened before anything is written.
    let good = write(dir.path(), "good.pcap", &pcap(&sample_frames()));
    let r = analyze(&[&good, &missing], &out);
    assert_eq!(r.code, 2);
    assert!(r.one_stderr_line().contains(s(&missing)));
    assert!(!out.exists());
}

#[test]
fn unknown_link_type_in_pcap_exits_2_naming_the_link_type() {
    let dir = tmp();
    // LINKTYPE_USER0 (147), with frames that would otherwise be fine.
    let input = write(
        dir.path(),
        "user0.pcap",
        &pcap_with(147, 65535, &sample_frames()),
    );
    let out = dir.path().join("out");
    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    let line = r.one_stderr_line();
    assert!(line.contains(s(&input)), "{line}");
    assert!(line.contains("unsupported link type 147"), "{line}");
    assert!(line.contains("expected Ethernet"), "{line}");
    assert!(!out.exists());

    let r = run(&["inspect", s(&input)]);
    assert_eq!(r.code, 2);
    assert!(r.one_stderr_line().contains("147"));
}

#[test]
fn unknown_link_type_in_pcapng_is_counted_per_packet() {
    // pcapng interfaces may appear anywhere in the file, so an unknown one is not an
    // error at open: each of its packets is a decode error of its kind.
    let dir = tmp();
    let input = write(
        dir.path(),
        "user0.pcapng",
        &pcapng_with(147, &sample_frames()),
    );
    let out = dir.path().join("out");
    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_complete_output(&out);
    let m = manifest(&out);
    assert_eq!(m["counts"]["packets"], SAMPLE_PACKETS);
    assert_eq!(
        m["counts"]["decode_errors"],
        serde_json::json!({ "unsupported_link_type": SAMPLE_PACKETS })
    );
    assert_eq!(m["inputs"][0]["link_types"], serde_json::json!([147]));
    assert_eq!(read_table(&out.join("flows.parquet")).rows, 0);
}

// ---------------------------------------------------------------------------------------
// Valid but empty
// ---------------------------------------------------------------------------------------

fn assert_zero_packet_run(input: &Path, format: &str) {
    let dir = tmp();
    let out = dir.path().join("out");
    let r = analyze(&[input], &out);
    assert_eq!(r.code, 0, "{}: stderr: {}", input.display(), r.stderr);
    assert!(r.stderr.is_empty(), "no warning: {}", r.stderr);
    assert_complete_output(&out);
    let flows = read_table(&out.join("flows.parquet"));
    assert_eq!(flows.rows, 0);
    let bins = read_table(&out.join("flow_bins.parquet"));
    assert_eq!(bins.rows, 0);
    let m = manifest(&out);
    assert_eq!(m["counts"]["packets"], 0);
    assert_eq!(m["counts"]["bytes"], 0);
    assert_eq!(m["counts"]["flows"], 0);
    assert_eq!(m["counts"]["decode_errors"], serde_json::json!({}));
    assert_eq!(m["warnings"], serde_json::json!([]));
    assert_eq!(m["inputs"][0]["format"], format);
    assert_eq!(m["inputs"][0]["packets"], 0);
    assert!(m["inputs"][0]["error"].is_null());
    assert_eq!(m["tables"][0]["rows"], 0);
    assert_eq!(m["tables"][1]["rows"], 0);

    let r = run(&["inspect", "--json", s(input)]);
    assert_eq!(r.code, 0);
    let j = r.json();
    assert_eq!(j["packets"], 0);
    assert_eq!(j["flows"], 0);
    assert_eq!(j["top_flows"], serde_json::json!([]));
}

#[test]
fn zero_packet_captures_give_empty_valid_tables() {
    let dir = tmp();
    let ng = write(dir.path(), "zero.pcapng", &pcapng(&[]));
    assert_zero_packet_run(&ng, "pcapng");
    let classic = write(dir.path(), "zero.pcap", &pcap(&[]));
    assert_zero_packet_run(&classic, "pcap");
}

#[test]
fn corpus_empty_pcapng_gives_empty_valid_tables() {
    let Some(corpus) = streamscope_testkit::corpus(
        "bad_input::corpus_empty_pcapng_gives_empty_valid_tables",
        "empty tables from the corpus's tcpdump__empty.pcapng",
    ) else {
        return;
    };
    let file = corpus.path("tcpdump__empty.pcapng");
    assert!(file.is_file(), "corpus file {} is missing", file.display());
    assert_zero_packet_run(&file, "pcapng");
}

// ---------------------------------------------------------------------------------------
// Truncated and corrupt captures: warning with offset, data before it kept, exit 0
// ---------------------------------------------------------------------------------------

/// Whether `text` says `{what} at byte {offset}`, the number ending there.
fn says_offset(text: &str, what: &str, offset: usize) -> bool {
    let needle = format!("{what} at byte {offset}");
    text.match_indices(&needle)
        .any(|(i, _)| !text[i + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// Checks a run that stopped reading `input` early: exit 0, one warning line naming the
/// file and `at byte {offset}`, complete output, the manifest recording the problem.
fn assert_kept_with_warning(r: &Run, input: &Path, out: &Path, offset: usize, what: &str) -> Value {
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let warning = r.one_stderr_line();
    assert!(
        warning.starts_with("streamscope: warning: "),
        "a warning: {warning}"
    );
    assert!(warning.contains(s(input)), "names the file: {warning}");
    assert!(
        says_offset(warning, what, offset),
        "gives the offset {offset}: {warning}"
    );
    assert_complete_output(out);
    let m = manifest(out);
    let error = m["inputs"][0]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("inputs[0].error is set: {m}"));
    assert!(says_offset(error, what, offset), "{error}");
    let warnings = m["warnings"].as_array().expect("warnings is a list");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].as_str(), Some(error));
    m
}

#[test]
fn pcap_cut_inside_a_record_header_keeps_every_complete_record() {
    let dir = tmp();
    let frames = sample_frames();
    let full = pcap(&frames);
    // Keep 10 of the 16 header bytes of the last record.
    let last = pcap_record_offset(&frames, 7);
    let input = write(dir.path(), "cut-header.pcap", &full[..last + 10]);
    let out = dir.path().join("out");
    let r = analyze(&[&input], &out);
    let m = assert_kept_with_warning(&r, &input, &out, last, "pcap record header");
    assert!(
        r.stderr.contains("needs 16 bytes, only 10 present"),
        "{}",
        r.stderr
    );
    // Packets 0-6: the multicast and TCP flows, no DNS flow.
    assert_eq!(m["counts"]["packets"], 7);
    assert_eq!(m["counts"]["bytes"], SAMPLE_BYTES - 72);
    assert_eq!(m["counts"]["captured_bytes"], SAMPLE_BYTES - 72);
    assert_eq!(m["inputs"][0]["packets"], 7);
    assert_eq!(m["counts"]["flows"], 2);
    let flows = read_table(&out.join("flows.parquet"));
    assert_eq!(flows.rows, 2);
    assert_eq!(flows.packets, 7);
}

#[test]
fn pcap_cut_inside_record_data_keeps_complete_records_and_the_bytes_present() {
    let dir = tmp();
    let frames = sample_frames();
    let full = pcap(&frames);
    // The TCP data segment (packet 6, 254 bytes) keeps its header and 100 bytes.
    let sixth = pcap_record_offset(&frames, 6);
    let input = write(dir.path(), "cut-data.pcap", &full[..sixth + 16 + 100]);
    let out = dir.path().join("out");
    let r = analyze(&[&input], &out);
    let m = assert_kept_with_warning(&r, &input, &out, sixth, "pcap record");
    assert!(
        r.stderr.contains("needs 270 bytes, only 116 present"),
        "{}",
        r.stderr
    );
    // Records 0-5 are whole; record 6, whose header is whole, is handed on with the 100
    // bytes present (like a snap-length cut: its wire length stays 254).
    assert_eq!(m["counts"]["packets"], 7);
    assert_eq!(m["counts"]["bytes"], 3 * 142 + 3 * 54 + 254);
    assert_eq!(m["counts"]["captured_bytes"], 3 * 142 + 3 * 54 + 100);
    assert_eq!(m["counts"]["decode_errors"], serde_json::json!({}));
    let flows = read_table(&out.join("flows.parquet"));
    assert_eq!(flows.rows, 2);
    assert_eq!(flows.per_row_packets.iter().copied().max(), Some(4));
    assert_eq!(flows.packets, 7);

    // The same bytes through the read(2) path and through stdin.
    let out2 = dir.path().join("out-read");
    let r = run(&["analyze", "--read-mode", "read", s(&input), "-o", s(&out2)]);
    let m2 = assert_kept_with_warning(&r, &input, &out2, sixth, "pcap record");
    assert_eq!(m2["counts"], m["counts"]);
    let r = run_with(&["inspect", "--json", "-"], Some(&full[..sixth + 16 + 100]));
    assert_eq!(r.code, 0);
    assert!(
        says_offset(r.one_stderr_line(), "-: cut short: pcap record", sixth),
        "{}",
        r.stderr
    );
    let j = r.json();
    assert_eq!(j["packets"], 7);
    assert_eq!(j["flows"], 2);
    assert_eq!(j["warnings"].as_array().map(Vec::len), Some(1));
}

#[test]
fn pcapng_with_a_corrupt_block_length_keeps_the_blocks_before_it() {
    let dir = tmp();
    let frames = sample_frames();
    let fourth = pcapng_block_offset(&frames, 3);

    // Leading Block Total Length of packet 3 (the TCP SYN) not a multiple of 4.
    let mut bytes = pcapng(&frames);
    bytes[fourth + 4..fourth + 8].copy_from_slice(&61u32.to_le_bytes());
    let input = write(dir.path(), "odd-length.pcapng", &bytes);
    let out = dir.path().join("out");
    let r = analyze(&[&input], &out);
    let m = assert_kept_with_warning(&r, &input, &out, fourth, "corrupt pcapng block");
    assert!(
        r.stderr.contains("not a multiple of 4 (value 61)"),
        "{}",
        r.stderr
    );
    assert_eq!(m["counts"]["packets"], 3);
    assert_eq!(m["counts"]["bytes"], 3 * 142);
    let flows = read_table(&out.join("flows.parquet"));
    assert_eq!(flows.rows, 1);
    assert_eq!(flows.per_row_packets, [3]);

    // Trailing copy of the length differs from the leading one.
    let mut bytes = pcapng(&frames);
    let end = fourth + epb_len(&frames[3]);
    bytes[end - 4..end].copy_from_slice(&68u32.to_le_bytes());
    let input = write(dir.path(), "trailer.pcapng", &bytes);
    let out = dir.path().join("out-trailer");
    let r = analyze(&[&input], &out);
    let m = assert_kept_with_warning(&r, &input, &out, fourth, "corrupt pcapng block");
    assert!(
        r.stderr.contains("trailing block total length differs"),
        "{}",
        r.stderr
    );
    assert_eq!(m["counts"]["packets"], 3);
    assert_eq!(read_table(&out.join("flows.parquet")).rows, 1);

    // A length of 1 GiB: above the 16 MiB bound, reported without reading further.
    let mut bytes = pcapng(&frames);
    bytes[fourth + 4..fourth + 8].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let input = write(dir.path(), "huge.pcapng", &bytes);
    let out = dir.path().join("out-huge");
    let r = analyze(&[&input], &out);
    let m = assert_kept_with_warning(&r, &input, &out, fourth, "corrupt pcapng block");
    assert!(r.stderr.contains("above 16 MiB"), "{}", r.stderr);
    assert_eq!(m["counts"]["packets"], 3);
}

#[test]
fn pcapng_cut_mid_block_keeps_the_blocks_before_it() {
    let dir = tmp();
    let frames = sample_frames();
    let bytes = pcapng(&frames);
    let last = pcapng_block_offset(&frames, 7);
    // Only 6 bytes of the last block's 8-byte header.
    let input = write(dir.path(), "cut.pcapng", &bytes[..last + 6]);
    let out = dir.path().join("out");
    let r = analyze(&[&input], &out);
    let m = assert_kept_with_warning(&r, &input, &out, last, "pcapng block header");
    assert_eq!(m["counts"]["packets"], 7);
    assert_eq!(m["counts"]["bytes"], SAMPLE_BYTES - 72);
    assert_eq!(read_table(&out.join("flows.parquet")).rows, 2);
}

#[test]
fn caplen_over_snaplen_is_accepted_and_counted() {
    let dir = tmp();
    let frames = sample_frames();
    // Snap length 64, but records of up to 254 captured bytes: accepted as libpcap does.
    let input = write(dir.path(), "snap64.pcap", &pcap_with(1, 64, &frames));
    let out = dir.path().join("out");
    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(r.stderr.is_empty(), "no warning: {}", r.stderr);
    assert_complete_output(&out);
    let m = manifest(&out);
    assert_eq!(m["counts"]["packets"], SAMPLE_PACKETS);
    assert_eq!(m["counts"]["bytes"], SAMPLE_BYTES);
    assert_eq!(m["counts"]["captured_bytes"], SAMPLE_BYTES);
    assert_eq!(m["counts"]["decode_errors"], serde_json::json!({}));
    assert!(m["inputs"][0]["error"].is_null());
    // The five frames longer than 64 bytes (3 × 142, 254, 72) are counted.
    assert_eq!(m["counts"]["extra"]["caplen_over_snaplen"], 5);
    let flows = read_table(&out.join("flows.parquet"));
    assert_eq!(flows.rows, SAMPLE_FLOWS);
    assert_eq!(flows.packets, SAMPLE_PACKETS as i64);

    let r = run(&["inspect", "--json", s(&input)]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.json()["capture_anomalies"],
        serde_json::json!({ "caplen_over_snaplen": 5 })
    );
    let r = run(&["inspect", s(&input)]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .contains("accepted capture oddities:\n  caplen_over_snaplen      5\n"),
        "{}",
        r.stdout
    );

    // With the default snap length nothing is counted.
    let plain = write(dir.path(), "snap65535.pcap", &pcap(&frames));
    let out = dir.path().join("out-plain");
    assert_eq!(analyze(&[&plain], &out).code, 0);
    assert_eq!(manifest(&out)["counts"]["extra"]["caplen_over_snaplen"], 0);
}

#[test]
fn caplen_above_262144_is_a_corrupt_record_with_its_offset() {
    let dir = tmp();
    let frames = sample_frames();
    let mut bytes = pcap(&frames[..4]);
    let bad = bytes.len();
    // A record header claiming 262145 captured bytes, followed by the real data of
    // packet 4 and the rest: nothing after the bad header can be trusted.
    pcap_record(&mut bytes, T0 + 4 * MS, 262_145, 262_145, &frames[4].data);
    for f in &frames[5..] {
        let n = f.data.len() as u32;
        pcap_record(&mut bytes, f.ts_ns, n, n, &f.data);
    }
    let input = write(dir.path(), "huge-caplen.pcap", &bytes);
    let out = dir.path().join("out");
    let r = analyze(&[&input], &out);
    let m = assert_kept_with_warning(&r, &input, &out, bad, "corrupt pcap record");
    assert!(r.stderr.contains("(value 262145)"), "{}", r.stderr);
    assert_eq!(m["counts"]["packets"], 4);
    assert_eq!(m["counts"]["bytes"], 3 * 142 + 54);
    let flows = read_table(&out.join("flows.parquet"));
    assert_eq!(flows.rows, 2);
    assert_eq!(flows.packets, 4);

    // 262144 itself is the largest accepted: a record that size, complete, is read.
    let mut bytes = pcap(&frames[..1]);
    let big = udp_frame(MCAST_SRC, 40000, MCAST_GROUP, 5000, &[0x47; 1400]);
    let mut jumbo = big.clone();
    jumbo.resize(262_144, 0);
    pcap_record(&mut bytes, T0 + MS, 262_144, 262_144, &jumbo);
    let input = write(dir.path(), "max-caplen.pcap", &bytes);
    let out = dir.path().join("out-max");
    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_complete_output(&out);
    let m = manifest(&out);
    assert_eq!(m["counts"]["packets"], 2);
    assert_eq!(m["counts"]["captured_bytes"], 142 + 262_144);
    assert!(m["inputs"][0]["error"].is_null());
}

// ---------------------------------------------------------------------------------------
// Malformed packets: counted per kind, processing goes on
// ---------------------------------------------------------------------------------------

/// xorshift64*: a small seeded generator, so every run builds the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn garbage_after_the_link_header_is_counted_by_kind_and_the_rest_is_intact() {
    let dir = tmp();
    let mut rng = Rng(0x5eed_0001);
    let mut frames = sample_frames();
    let good = frames.clone();
    // EtherType IPv4 followed by 46 random bytes whose version nibble is 6: an IPv4
    // header that is not one.
    let mut junk = rng.bytes(46);
    junk[0] = 0x60 | (junk[0] & 0x0f);
    let bad_version = ethernet(0x0800, &junk);
    // EtherType IPv4 followed by 3 bytes: the 20-byte header cannot be there (and the
    // frame was not cut by the snap length: wire length = captured length).
    let short_ip = ethernet(0x0800, &[0x45, 0x00, 0x00]);
    // 10 random bytes: not even an Ethernet header.
    let short_link = rng.bytes(10);
    for (i, data) in [bad_version, short_ip, short_link].into_iter().enumerate() {
        frames.insert(
            2 + 2 * i,
            Frame {
                ts_ns: frames[2 * i + 1].ts_ns,
                data,
            },
        );
    }
    let garbage_bytes = 60 + 17 + 10;
    let input = write(dir.path(), "garbage.pcap", &pcap(&frames));
    let out = dir.path().join("out");
    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(
        r.stderr.is_empty(),
        "malformed packets are not warnings: {}",
        r.stderr
    );
    assert_complete_output(&out);
    let m = manifest(&out);
    assert_eq!(m["counts"]["packets"], SAMPLE_PACKETS + 3);
    assert_eq!(m["counts"]["bytes"], SAMPLE_BYTES + garbage_bytes);
    assert_eq!(
        m["counts"]["decode_errors"],
        serde_json::json!({ "ipv4_header": 1, "ipv4_truncated": 1, "link_truncated": 1 })
    );
    assert_eq!(m["counts"]["non_ip_packets"], 0);
    assert_eq!(m["warnings"], serde_json::json!([]));
    assert!(m["inputs"][0]["error"].is_null());
    assert_eq!(m["counts"]["flows"], SAMPLE_FLOWS);
    let flows = read_table(&out.join("flows.parquet"));
    assert_eq!(flows.rows, SAMPLE_FLOWS);
    assert_eq!(flows.packets, SAMPLE_PACKETS as i64);

    // The flows equal those of the capture without the garbage.
    let clean = write(dir.path(), "clean.pcap", &pcap(&good));
    let out_clean = dir.path().join("out-clean");
    let r = analyze(&[&clean], &out_clean);
    assert_eq!(r.code, 0);
    let clean_flows = read_table(&out_clean.join("flows.parquet"));
    assert_eq!(flows.per_row_packets, clean_flows.per_row_packets);
    assert_eq!(flows.per_row_packets, [3, 4, 1]);

    // inspect reports the same counts.
    let r = run(&["inspect", "--json", s(&input)]);
    assert_eq!(r.code, 0);
    let j = r.json();
    assert_eq!(j["decode_errors"], m["counts"]["decode_errors"]);
    assert_eq!(j["flows"], 3);
}

// ---------------------------------------------------------------------------------------
// Several inputs, compression, stdin
// ---------------------------------------------------------------------------------------

#[test]
fn second_input_truncated_first_kept_whole_and_flows_continue() {
    let dir = tmp();
    let first = sample_frames();
    // Inputs 2 and 3 continue the multicast flow, 4 packets each, 1 s later.
    let more = |start: i64| -> Vec<Frame> {
        (0..4)
            .map(|i| mcast_frame(T0 + start * 1_000_000_000 + i * MS))
            .collect()
    };
    let second = more(1);
    let third = more(2);
    let a = write(dir.path(), "a.pcap", &pcap(&first));
    // The second file ends 5 bytes into its third record's header.
    let cut_at = pcap_record_offset(&second, 2);
    let b = write(dir.path(), "b.pcap", &pcap(&second)[..cut_at + 5]);
    let c = write(dir.path(), "c.pcap", &pcap(&third));
    let out = dir.path().join("out");

    let r = analyze(&[&a, &b, &c], &out);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let warning = r.one_stderr_line();
    assert!(
        warning.contains(s(&b)) && says_offset(warning, "pcap record header", cut_at),
        "{warning}"
    );
    assert_complete_output(&out);
    let m = manifest(&out);
    let inputs = m["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 3);
    assert_eq!(inputs[0]["packets"], SAMPLE_PACKETS);
    assert_eq!(inputs[0]["bytes"], SAMPLE_BYTES);
    assert!(inputs[0]["error"].is_null());
    assert_eq!(inputs[1]["packets"], 2);
    assert!(inputs[1]["error"]
        .as_str()
        .is_some_and(|e| e.contains(s(&b)) && says_offset(e, "pcap record header", cut_at)));
    assert_eq!(inputs[2]["packets"], 4);
    assert!(inputs[2]["error"].is_null());
    assert_eq!(m["counts"]["packets"], SAMPLE_PACKETS + 2 + 4);
    assert_eq!(m["warnings"].as_array().map(Vec::len), Some(1));
    // One timeline: the multicast flow runs through all three files.
    assert_eq!(m["counts"]["flows"], SAMPLE_FLOWS);
    let flows = read_table(&out.join("flows.parquet"));
    assert_eq!(flows.rows, SAMPLE_FLOWS);
    let mut per_flow = flows.per_row_packets.clone();
    per_flow.sort_unstable();
    assert_eq!(per_flow, [1, 4, 3 + 2 + 4]);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

#[test]
fn gzip_zstd_and_stdin_give_the_same_counts_as_the_plain_file() {
    let dir = tmp();
    let plain_bytes = pcapng(&sample_frames());
    let plain = write(dir.path(), "s.pcapng", &plain_bytes);
    let gz = write(dir.path(), "s.pcapng.gz", &gzip(&plain_bytes));
    let zst = write(
        dir.path(),
        "s.pcapng.zst",
        &zstd::encode_all(&plain_bytes[..], 3).expect("zstd in memory"),
    );

    let out_plain = dir.path().join("out-plain");
    let r = analyze(&[&plain], &out_plain);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let reference = manifest(&out_plain);
    assert_eq!(reference["counts"]["packets"], SAMPLE_PACKETS);
    assert_eq!(reference["counts"]["bytes"], SAMPLE_BYTES);
    assert_eq!(reference["counts"]["flows"], SAMPLE_FLOWS);
    let reference_flows = read_table(&out_plain.join("flows.parquet"));
    assert_eq!(reference_flows.rows, SAMPLE_FLOWS);

    let check = |m: &Value, out: &Path, compression: &str, path: &str| {
        assert_eq!(m["counts"], reference["counts"], "{compression}");
        assert_eq!(m["inputs"][0]["compression"], compression);
        assert_eq!(m["inputs"][0]["path"], path);
        assert_eq!(m["inputs"][0]["format"], "pcapng");
        assert!(m["inputs"][0]["error"].is_null());
        let flows = read_table(&out.join("flows.parquet"));
        assert_eq!(flows.per_row_packets, reference_flows.per_row_packets);
    };
    for (input, compression) in [(&gz, "gzip"), (&zst, "zstd")] {
        let out = dir.path().join(format!("out-{compression}"));
        let r = analyze(&[input], &out);
        assert_eq!(r.code, 0, "{compression}: stderr: {}", r.stderr);
        assert!(r.stderr.is_empty(), "{}", r.stderr);
        assert_complete_output(&out);
        check(&manifest(&out), &out, compression, s(input));
    }

    // stdin, plain and compressed.
    for (bytes, compression) in [
        (plain_bytes.clone(), "none"),
        (gzip(&plain_bytes), "gzip"),
        (zstd::encode_all(&plain_bytes[..], 3).expect("zstd"), "zstd"),
    ] {
        let out = dir.path().join(format!("out-stdin-{compression}"));
        let r = run_with(&["analyze", "-", "-o", s(&out)], Some(&bytes));
        assert_eq!(r.code, 0, "stdin {compression}: stderr: {}", r.stderr);
        assert_complete_output(&out);
        let m = manifest(&out);
        check(&m, &out, compression, "-");
        assert!(m["inputs"][0]["size"].is_null());
    }
}

#[test]
fn gzip_cut_mid_stream_keeps_what_was_decompressed() {
    let dir = tmp();
    let frames: Vec<Frame> = (0..200).map(|i| mcast_frame(T0 + i * MS)).collect();
    let gz = gzip(&pcap(&frames));
    let input = write(dir.path(), "cut.pcap.gz", &gz[..gz.len() / 2]);
    let out = dir.path().join("out");
    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let warning = r.one_stderr_line();
    assert!(
        warning.contains(s(&input)) && warning.contains("at byte "),
        "{warning}"
    );
    assert_complete_output(&out);
    let m = manifest(&out);
    assert!(m["inputs"][0]["error"].is_string());
    let kept = m["counts"]["packets"].as_u64().expect("packets");
    assert!(0 < kept && kept < 200, "kept {kept} of 200");
    // What was kept is whole records: one flow with every kept packet.
    let flows = read_table(&out.join("flows.parquet"));
    assert_eq!(flows.per_row_packets, [kept as i64]);
}

// ---------------------------------------------------------------------------------------
// Output and usage errors
// ---------------------------------------------------------------------------------------

#[test]
fn output_folder_under_a_regular_file_exits_1_with_a_clear_message() {
    let dir = tmp();
    let input = write(dir.path(), "s.pcap", &pcap(&sample_frames()));
    let blocker = write(dir.path(), "a-file", b"keep me");

    let out = blocker.join("out");
    let r = analyze(&[&input], &out);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    let line = r.one_stderr_line();
    assert!(line.starts_with("streamscope: error: "), "{line}");
    assert!(
        line.contains(&format!("cannot write to {}", out.display())),
        "{line}"
    );
    assert!(line.contains("Not a directory"), "{line}");
    assert_eq!(
        line.matches("Not a directory").count(),
        1,
        "the cause is given once: {line}"
    );
    assert!(r.stdout.is_empty());

    // The output path is itself a regular file.
    let r = analyze(&[&input], &blocker);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    let line = r.one_stderr_line();
    assert!(
        line.contains(&format!("cannot write to {}", blocker.display())),
        "{line}"
    );
    assert_eq!(fs::read(&blocker).expect("read"), b"keep me");
    assert_eq!(listing(dir.path()), ["a-file", "s.pcap"]);
}

#[test]
fn bad_usage_exits_2() {
    let dir = tmp();
    let input = write(dir.path(), "s.pcap", &pcap(&sample_frames()));
    let out = dir.path().join("out");

    let r = run(&["analyze", "--no-such-flag", s(&input), "-o", s(&out)]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains("unexpected argument '--no-such-flag'"),
        "{}",
        r.stderr
    );

    let r = run(&["analyze", "--bin", "5ms", s(&input), "-o", s(&out)]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr
            .contains("bin width `5ms` must be between 10ms and 1h"),
        "{}",
        r.stderr
    );

    let r = run(&["analyze", "--bin", "fast", s(&input), "-o", s(&out)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("`fast` is not a duration"),
        "{}",
        r.stderr
    );

    // No output folder, no input, no command.
    let r = run(&["analyze", s(&input)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--out <OUT>"), "{}", r.stderr);
    let r = run(&["analyze", "-o", s(&out)]);
    assert_eq!(r.code, 2);
    let r = run(&[]);
    assert_eq!(r.code, 2);

    // stdin twice.
    let r = run_with(&["inspect", "-", "-"], Some(b""));
    assert_eq!(r.code, 2);
    assert!(r
        .one_stderr_line()
        .contains("stdin (`-`) can be given only once"));

    assert!(!out.exists(), "bad usage writes nothing");
}

/// Runs with stdout's reading end closed before the program can write: the capture comes
/// on stdin only after the close, so the program's first write meets a broken pipe.
fn run_with_stdout_closed(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the streamscope binary starts");
    drop(child.stdout.take());
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let _ = pipe.write_all(stdin);
    drop(pipe);
    let out = child
        .wait_with_output()
        .expect("streamscope runs to its end");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(code) = out.status.code() else {
        panic!(
            "streamscope {args:?} was killed by a signal ({:?})",
            out.status
        );
    };
    Run {
        code,
        stdout: String::new(),
        stderr,
    }
}

#[test]
fn closed_stdout_is_not_a_crash() {
    // `streamscope inspect x | head -1`: the reader leaving early is not a failure.
    let dir = tmp();
    let bytes = pcap(&sample_frames());
    for args in [&["inspect", "-"][..], &["inspect", "--json", "-"]] {
        let r = run_with_stdout_closed(args, &bytes);
        assert_eq!(r.code, 0, "{args:?}: stderr: {}", r.stderr);
        assert!(r.stderr.is_empty(), "{args:?}: {}", r.stderr);
    }
    for json in [false, true] {
        let out = dir.path().join(format!("out-{json}"));
        let mut args = vec!["analyze", "-", "-o", s(&out)];
        if json {
            args.push("--json");
        }
        let r = run_with_stdout_closed(&args, &bytes);
        assert_eq!(r.code, 0, "{args:?}: stderr: {}", r.stderr);
        assert!(r.stderr.is_empty(), "{args:?}: {}", r.stderr);
        assert_complete_output(&out);
        assert_eq!(manifest(&out)["counts"]["packets"], SAMPLE_PACKETS);
    }
}

// ---------------------------------------------------------------------------------------
// Mutations: no input crashes the program
// ---------------------------------------------------------------------------------------

/// Where the length fields of a capture built from `frames` are.
fn length_fields(ng: bool, frames: &[Frame]) -> Vec<usize> {
    let mut at = Vec::new();
    if ng {
        at.push(4); // SHB total length
        at.push(SHB_LEN + 4); // IDB total length
        for (i, f) in frames.iter().enumerate() {
            let o = pcapng_block_offset(frames, i);
            at.push(o + 4); // leading total length
            at.push(o + epb_len(f) - 4); // trailing total length
            at.push(o + 20); // captured length
            at.push(o + 24); // original length
            at.push(o + 8); // interface id
        }
    } else {
        at.push(16); // snap length
        at.push(20); // link type
        for i in 0..frames.len() {
            let o = pcap_record_offset(frames, i);
            at.push(o + 8); // captured length
            at.push(o + 12); // original length
        }
    }
    at
}

const EDGE_VALUES: [u32; 12] = [
    0,
    1,
    3,
    12,
    13,
    16,
    0xffff,
    262_144,
    262_145,
    16 << 20,
    0x8000_0000,
    u32::MAX,
];

/// Applies 1-3 random mutations; returns what was done, for the failure message.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, fields: &[usize]) -> String {
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(3) {
        match rng.below(4) {
            0 => {
                let bits = 1 + rng.below(8);
                for _ in 0..bits {
                    if bytes.is_empty() {
                        break;
                    }
                    let i = rng.below(bytes.len());
                    let bit = rng.below(8);
                    bytes[i] ^= 1 << bit;
                    done.push(format!("flip byte {i} bit {bit}"));
                }
            }
            1 => {
                let n = rng.below(bytes.len() + 1);
                bytes.truncate(n);
                done.push(format!("truncate to {n}"));
            }
            2 | 3 => {
                let at = fields[rng.below(fields.len())];
                let value = if rng.below(3) == 0 {
                    rng.next() as u32
                } else {
                    EDGE_VALUES[rng.below(EDGE_VALUES.len())]
                };
                if let Some(field) = bytes.get_mut(at..at + 4) {
                    field.copy_from_slice(&value.to_le_bytes());
                    done.push(format!("u32 at {at} = {value}"));
                }
            }
            _ => unreachable!(),
        }
    }
    done.join(", ")
}

#[test]
fn mutated_captures_never_crash_inspect_or_leave_partial_output() {
    let dir = tmp();
    let frames = sample_frames();
    let bases = [
        (false, pcap(&frames), length_fields(false, &frames)),
        (true, pcapng(&frames), length_fields(true, &frames)),
    ];
    let mut rng = Rng(0x0bad_1dea_5eed_2024);
    let (mut ok, mut rejected) = (0, 0);
    for i in 0..200 {
        let (ng, base, fields) = &bases[i % 2];
        let mut bytes = base.clone();
        let what = mutate(&mut rng, &mut bytes, fields);
        let name = format!("m{i}.{}", if *ng { "pcapng" } else { "pcap" });
        let path = write(dir.path(), &name, &bytes);
        let context = format!("mutation {i} ({name}: {what})");

        let r = match i % 5 {
            // Every fifth through stdin, the rest alternating mmap and read(2).
            4 => run_with(&["inspect", "--json", "-"], Some(&bytes)),
            k => run(&[
                "inspect",
                "--json",
                "--read-mode",
                if k % 2 == 0 { "mmap" } else { "read" },
                s(&path),
            ]),
        };
        match r.code {
            0 => {
                ok += 1;
                let j: Value = serde_json::from_str(&r.stdout)
                    .unwrap_or_else(|e| panic!("{context}: stdout is not JSON ({e})"));
                let packets = j["packets"].as_u64();
                assert!(packets.is_some(), "{context}: {j}");
                assert_eq!(j["inputs"][0]["packets"].as_u64(), packets, "{context}");
                // A warning on stderr exactly when the summary has one.
                let warned = !r.stderr.is_empty();
                assert_eq!(
                    warned,
                    j["warnings"].as_array().is_some_and(|w| !w.is_empty()),
                    "{context}: stderr {:?}",
                    r.stderr
                );
            }
            2 => {
                rejected += 1;
                let line = r.one_stderr_line();
                assert!(
                    line.starts_with("streamscope: error: "),
                    "{context}: {line}"
                );
                assert!(r.stdout.is_empty(), "{context}");
            }
            code => panic!("{context}: exit code {code}; stderr: {}", r.stderr),
        }

        // Every tenth also through analyze: all three output files, or none.
        if i % 10 == 0 {
            let out = dir.path().join(format!("out{i}"));
            let a = analyze(&[&path], &out);
            match a.code {
                0 => {
                    assert_complete_output(&out);
                    let m = manifest(&out);
                    let rows = read_table(&out.join("flows.parquet")).rows;
                    assert_eq!(m["tables"][0]["rows"], rows, "{context}");
                }
                2 => assert!(!out.exists(), "{context}: output left for unusable input"),
                code => panic!("{context}: analyze exit code {code}; stderr: {}", a.stderr),
            }
        }
    }
    // Both outcomes occur, so the mutations reach past the file header.
    assert!(
        ok > 20 && rejected > 10,
        "accepted {ok}, rejected {rejected}"
    );
}
