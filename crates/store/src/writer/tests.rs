use super::*;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, Int32Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Encoding, LogicalType, TimeUnit};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;

use crate::row::{count, ns_to_us};
use crate::rows::{BinRow, FlowRow, TcpFacts};
use crate::schema::{FLOWS, FLOW_BINS};

/// The two flow tables, as `streamscope analyze` writes them.
fn flow_tables(bin_ns: i64) -> [Table; 2] {
    [
        Table::new(&FLOWS),
        Table::flow_bins(bin_ns).expect("positive bin width"),
    ]
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("streamscope-store-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every record batch of a Parquet file, in order, with the file's Arrow schema.
fn read_batches(path: &Path) -> (SchemaRef, Vec<RecordBatch>) {
    let file = File::open(path).expect("open parquet");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet footer");
    let schema = builder.schema().clone();
    let batches = builder
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect();
    (schema, batches)
}

fn read_all(path: &Path) -> (SchemaRef, RecordBatch) {
    let (schema, batches) = read_batches(path);
    assert_eq!(batches.len(), 1, "small test files are read as one batch");
    assert_eq!(batches[0].schema().fields(), schema.fields());
    (schema, batches[0].clone())
}

const SERVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

fn tcp_flow() -> FlowRow {
    FlowRow {
        flow_id: 1,
        first_ts_ns: 1_700_000_000_123_456_789,
        last_ts_ns: 1_700_000_002_000_000_999,
        ip_version: 4,
        protocol: 6,
        client_addr: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)),
        client_port: Some(51_000),
        server_addr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
        server_port: Some(443),
        server_name: None,
        vlan: Some(100),
        vlan_inner: Some(4095),
        client_rule: "syn",
        packets_up: 10,
        packets_down: 20,
        bytes_up: 1_000,
        bytes_down: 30_000,
        payload_bytes_up: 340,
        payload_bytes_down: 28_680,
        tcp: Some(TcpFacts {
            syn_seen: true,
            handshake_seen: true,
            handshake_rtt_ns: Some(12_345_678),
            retransmitted_packets_up: 1,
            retransmitted_packets_down: 2,
            fin_up: true,
            fin_down: false,
            rst_seen: true,
        }),
        end_reason: "rst",
        bins: 3,
        bitrate_down_p50_bps: Some(80_000),
        bitrate_down_p95_bps: Some(120_000),
        bitrate_down_max_bps: Some(120_000),
        class: Some("other"),
        class_evidence: Some("no payload evidence"),
        service: Some("198.51.100.0/24".to_string()),
        service_source: Some("prefix"),
        http_host: None,
        sni: None,
        alpn: None,
        tls_version: None,
        quic_version: None,
        tls_offered_versions: None,
        tls_app: None,
        segments: None,
    }
}

fn icmp6_flow() -> FlowRow {
    FlowRow {
        flow_id: 2,
        first_ts_ns: -1_500, // floors to -2 µs
        last_ts_ns: -1,      // floors to -1 µs
        ip_version: 6,
        protocol: 58,
        client_addr: IpAddr::V6(Ipv6Addr::new(
            0xfe80, 0, 0, 0, 0x0211, 0x22ff, 0xfe33, 0x4455,
        )),
        client_port: None,
        server_addr: IpAddr::V6(SERVER6),
        server_port: None,
        server_name: None,
        vlan: None,
        vlan_inner: None,
        client_rule: "first_sender",
        packets_up: u64::MAX, // saturates
        packets_down: 0,
        bytes_up: 70,
        bytes_down: 0,
        payload_bytes_up: 16,
        payload_bytes_down: 0,
        tcp: None,
        end_reason: "capture_end",
        bins: 1,
        bitrate_down_p50_bps: None,
        bitrate_down_p95_bps: None,
        bitrate_down_max_bps: None,
        class: Some("other"),
        class_evidence: Some("no payload evidence"),
        service: Some("198.51.100.0/24".to_string()),
        service_source: Some("prefix"),
        http_host: None,
        sni: None,
        alpn: None,
        tls_version: None,
        quic_version: None,
        tls_offered_versions: None,
        tls_app: None,
        segments: None,
    }
}

fn udp_flow() -> FlowRow {
    FlowRow {
        flow_id: 3,
        client_rule: "well_known_port",
        end_reason: "idle",
        protocol: 17,
        tcp: None,
        client_addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x10)),
        server_addr: IpAddr::V6(Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 0x1234)),
        ip_version: 6,
        ..tcp_flow()
    }
}

const BIN_NS: i64 = 500_000_000;

fn bins() -> [BinRow; 2] {
    [
        BinRow {
            flow_id: 1,
            bin_start_ns: 1_700_000_000_000_000_000,
            packets_up: 4,
            packets_down: 9,
            bytes_up: 400,
            bytes_down: 1_000,
            bitrate_down_bps: 16_000, // 1000 B in 0.5 s
            media: Default::default(),
        },
        BinRow {
            flow_id: 1,
            bin_start_ns: 1_700_000_000_500_000_000,
            packets_up: 6,
            packets_down: 11,
            bytes_up: 600,
            bytes_down: 29_000,
            bitrate_down_bps: 464_000,
            media: Default::default(),
        },
    ]
}

#[test]
fn round_trip_keeps_values_types_and_contract() {
    let dir = temp_dir("roundtrip");
    let mut out = Output::create(&dir, flow_tables(BIN_NS)).expect("create");
    for f in [tcp_flow(), icmp6_flow(), udp_flow()] {
        out.push(f).expect("push flow");
    }
    for b in bins() {
        out.push(b).expect("push bin");
    }
    let summary = out.finish().expect("finish");

    assert_eq!(file_names(&dir), ["flow_bins.parquet", "flows.parquet"]);
    assert_eq!(summary.tables.len(), 2);
    assert_eq!(summary.tables[0].name, "flows");
    assert_eq!(summary.tables[0].rows, 3);
    assert_eq!(summary.tables[1].name, "flow_bins");
    assert_eq!(summary.tables[1].rows, 2);
    for t in &summary.tables {
        let len = fs::metadata(&t.path).expect("stat").len();
        assert_eq!(t.bytes, len);
    }
    let entries = summary.manifest_tables();
    assert_eq!(entries[0].path, "flows.parquet");
    assert_eq!(entries[1].path, "flow_bins.parquet");

    // flows: values as written, in the contract's types.
    let (schema, b) = read_all(&dir.join("flows.parquet"));
    assert_eq!(schema.fields(), arrow_schema(&FLOWS).fields());
    assert_eq!(b.num_rows(), 3);
    let i64s = |name: &str| -> Vec<Option<i64>> {
        b.column_by_name(name)
            .expect(name)
            .as_primitive::<Int64Type>()
            .iter()
            .collect()
    };
    let i32s = |name: &str| -> Vec<Option<i32>> {
        b.column_by_name(name)
            .expect(name)
            .as_any()
            .downcast_ref::<Int32Array>()
            .expect(name)
            .iter()
            .collect()
    };
    let strs = |name: &str| -> Vec<String> {
        let col = b.column_by_name(name).expect(name);
        let col = arrow_cast_to_strings(col.as_ref());
        col
    };
    let bools = |name: &str| -> Vec<Option<bool>> {
        b.column_by_name(name)
            .expect(name)
            .as_boolean()
            .iter()
            .collect()
    };
    let ts = |name: &str| -> Vec<Option<i64>> {
        b.column_by_name(name)
            .expect(name)
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect()
    };
    assert_eq!(i64s("flow_id"), [Some(1), Some(2), Some(3)]);
    assert_eq!(
        ts("first_ts"),
        [
            Some(1_700_000_000_123_456),
            Some(-2),
            Some(1_700_000_000_123_456)
        ]
    );
    assert_eq!(
        ts("last_ts"),
        [
            Some(1_700_000_002_000_000),
            Some(-1),
            Some(1_700_000_002_000_000)
        ]
    );
    assert_eq!(
        i64s("duration_us"),
        [Some(1_876_544), Some(1), Some(1_876_544)]
    );
    assert_eq!(i32s("ip_version"), [Some(4), Some(6), Some(6)]);
    assert_eq!(i32s("protocol"), [Some(6), Some(58), Some(17)]);
    assert_eq!(
        strs("client_addr"),
        [
            "192.168.1.20",
            "fe80::211:22ff:fe33:4455",
            "2001:db8:0:1::10"
        ]
    );
    assert_eq!(
        strs("server_addr"),
        ["203.0.113.7", "2001:db8::1", "ff0e::1234"]
    );
    assert_eq!(i32s("client_port"), [Some(51_000), None, Some(51_000)]);
    assert_eq!(i32s("server_port"), [Some(443), None, Some(443)]);
    assert_eq!(i32s("vlan"), [Some(100), None, Some(100)]);
    assert_eq!(i32s("vlan_inner"), [Some(4095), None, Some(4095)]);
    assert_eq!(
        strs("client_rule"),
        ["syn", "first_sender", "well_known_port"]
    );
    assert_eq!(i64s("packets_up"), [Some(10), Some(i64::MAX), Some(10)]);
    assert_eq!(i64s("packets_down"), [Some(20), Some(0), Some(20)]);
    assert_eq!(i64s("bytes_up"), [Some(1_000), Some(70), Some(1_000)]);
    assert_eq!(i64s("bytes_down"), [Some(30_000), Some(0), Some(30_000)]);
    assert_eq!(i64s("payload_bytes_up"), [Some(340), Some(16), Some(340)]);
    assert_eq!(
        i64s("payload_bytes_down"),
        [Some(28_680), Some(0), Some(28_680)]
    );
    // TCP columns: values for the TCP flow, null for the others.
    assert_eq!(bools("syn_seen"), [Some(true), None, None]);
    assert_eq!(bools("handshake_seen"), [Some(true), None, None]);
    assert_eq!(i64s("handshake_rtt_us"), [Some(12_345), None, None]);
    assert_eq!(i64s("retransmitted_packets_up"), [Some(1), None, None]);
    assert_eq!(i64s("retransmitted_packets_down"), [Some(2), None, None]);
    assert_eq!(bools("fin_up"), [Some(true), None, None]);
    assert_eq!(bools("fin_down"), [Some(false), None, None]);
    assert_eq!(bools("rst_seen"), [Some(true), None, None]);
    assert_eq!(strs("end_reason"), ["rst", "capture_end", "idle"]);
    assert_eq!(i64s("bins"), [Some(3), Some(1), Some(3)]);
    assert_eq!(
        i64s("bitrate_down_p50_bps"),
        [Some(80_000), None, Some(80_000)]
    );
    assert_eq!(
        i64s("bitrate_down_p95_bps"),
        [Some(120_000), None, Some(120_000)]
    );
    assert_eq!(
        i64s("bitrate_down_max_bps"),
        [Some(120_000), None, Some(120_000)]
    );

    // flow_bins, with the bitrates as the rows gave them.
    let (schema, b) = read_all(&dir.join("flow_bins.parquet"));
    assert_eq!(schema.fields(), arrow_schema(&FLOW_BINS).fields());
    let col = |name: &str| -> Vec<i64> {
        b.column_by_name(name)
            .expect(name)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    };
    let starts: Vec<i64> = b
        .column_by_name("bin_start")
        .expect("bin_start")
        .as_primitive::<TimestampMicrosecondType>()
        .values()
        .to_vec();
    assert_eq!(starts, [1_700_000_000_000_000, 1_700_000_000_500_000]);
    assert_eq!(col("flow_id"), [1, 1]);
    assert_eq!(col("packets_up"), [4, 6]);
    assert_eq!(col("packets_down"), [9, 11]);
    assert_eq!(col("bytes_up"), [400, 600]);
    assert_eq!(col("bytes_down"), [1_000, 29_000]);
    assert_eq!(col("bitrate_down_bps"), [16_000, 464_000]);

    let _ = fs::remove_dir_all(&dir);
}

/// Renders a Utf8 or Dictionary(Int32, Utf8) column as strings (nulls as "<null>").
fn arrow_cast_to_strings(col: &dyn Array) -> Vec<String> {
    match col.data_type() {
        DataType::Utf8 => col
            .as_string::<i32>()
            .iter()
            .map(|v| v.unwrap_or("<null>").to_string())
            .collect(),
        DataType::Dictionary(_, _) => {
            let d = col.as_dictionary::<Int32Type>();
            let values = d.values().as_string::<i32>();
            d.keys()
                .iter()
                .map(|k| match k {
                    Some(k) => values.value(k as usize).to_string(),
                    None => "<null>".to_string(),
                })
                .collect()
        }
        other => panic!("not a string column: {other}"),
    }
}

#[test]
fn files_carry_zstd_created_by_statistics_and_parquet_types() {
    let dir = temp_dir("metadata");
    let mut out = Output::create(&dir, flow_tables(BIN_NS)).expect("create");
    out.push(tcp_flow()).expect("push");
    out.push(icmp6_flow()).expect("push");
    for b in bins() {
        out.push(b).expect("push");
    }
    out.finish().expect("finish");

    for t in [&FLOWS, &FLOW_BINS] {
        let path = dir.join(format!("{}.parquet", t.name));
        let reader = SerializedFileReader::new(File::open(&path).expect("open")).expect("footer");
        let meta = reader.metadata();
        let fm = meta.file_metadata();
        assert_eq!(
            fm.created_by(),
            Some(format!("streamscope version {}", crate::TOOL_VERSION).as_str())
        );
        let kv = fm.key_value_metadata().expect("key-value metadata");
        let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
        assert_eq!(get("streamscope.table").as_deref(), Some(t.name));
        assert_eq!(get("streamscope.schema_version").as_deref(), Some("1"));
        if t.name == "flow_bins" {
            assert_eq!(get("streamscope.bin_ns").as_deref(), Some("500000000"));
        }
        assert_eq!(meta.num_row_groups(), 1);
        let rg = meta.row_group(0);
        for (i, c) in t.columns.iter().enumerate() {
            let chunk = rg.column(i);
            assert!(
                matches!(chunk.compression(), Compression::ZSTD(_)),
                "{}.{}: {:?}",
                t.name,
                c.name,
                chunk.compression()
            );
            // Statistics, in the row group and in the page index, on the columns the
            // table names and only there.
            let wanted = t.statistics.contains(&c.name);
            assert_eq!(
                chunk.statistics().is_some(),
                wanted,
                "{}.{}: statistics",
                t.name,
                c.name
            );
            assert_eq!(
                chunk.column_index_offset().is_some(),
                wanted,
                "{}.{}: page-level statistics (column index)",
                t.name,
                c.name
            );
            if c.name == "flow_id" {
                // Both tables hold flows 1 and 2 (bins() are of flow 1 only).
                let max = if t.name == "flows" { 2 } else { 1 };
                match chunk.statistics() {
                    Some(Statistics::Int64(s)) => {
                        assert_eq!(
                            (s.min_opt(), s.max_opt()),
                            (Some(&1), Some(&max)),
                            "{}",
                            t.name
                        )
                    }
                    other => panic!("{}.flow_id: {other:?}", t.name),
                }
            }
            if matches!(
                c.ty,
                crate::ColType::Int64 | crate::ColType::Int32 | crate::ColType::TimestampUs
            ) {
                assert!(
                    chunk
                        .encodings()
                        .any(|e| e == Encoding::DELTA_BINARY_PACKED),
                    "{}.{}: {:?}",
                    t.name,
                    c.name,
                    chunk.encodings().collect::<Vec<_>>()
                );
            }
            let descr = fm.schema_descr().column(i);
            // A list's leaf is its item; the path starts with the column's name.
            assert_eq!(descr.path().parts()[0], c.name);
            let lt = descr.logical_type_ref();
            match c.ty {
                crate::ColType::TimestampUs => assert!(
                    matches!(
                        lt,
                        Some(LogicalType::Timestamp(t))
                            if t.is_adjusted_to_u_t_c && t.unit == TimeUnit::MICROS
                    ),
                    "{}.{}: {lt:?}",
                    t.name,
                    c.name
                ),
                crate::ColType::Int64 | crate::ColType::Int32 => assert!(
                    lt.is_none() || matches!(lt, Some(LogicalType::Integer(int)) if int.is_signed),
                    "{}.{}: {lt:?}",
                    t.name,
                    c.name
                ),
                _ => {}
            }
        }
    }
    // The dictionary-encoded string columns use a dictionary page.
    let reader = SerializedFileReader::new(File::open(dir.join("flows.parquet")).expect("open"))
        .expect("footer");
    let idx = FLOWS
        .columns
        .iter()
        .position(|c| c.name == "end_reason")
        .expect("end_reason");
    assert!(reader
        .metadata()
        .row_group(0)
        .column(idx)
        .dictionary_page_offset()
        .is_some());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn many_rows_span_batches_and_row_groups() {
    let dir = temp_dir("many");
    let mut out = Output::create(&dir, flow_tables(1_000_000_000)).expect("create");
    let n = ROW_GROUP_ROWS + BATCH_ROWS / 2 + 7;
    for i in 0..n as i64 {
        out.push(BinRow {
            flow_id: i,
            bin_start_ns: i * 1_000_000_000,
            packets_up: 1,
            packets_down: 2,
            bytes_up: 3,
            bytes_down: i as u64,
            bitrate_down_bps: i * 8,
            media: Default::default(),
        })
        .expect("push");
    }
    let summary = out.finish().expect("finish");
    assert_eq!(summary.tables[1].rows, n as u64);
    assert_eq!(summary.tables[0].rows, 0);

    let path = dir.join("flow_bins.parquet");
    let reader = SerializedFileReader::new(File::open(&path).expect("open")).expect("footer");
    let meta = reader.metadata();
    assert_eq!(meta.num_row_groups(), 2);
    assert_eq!(meta.row_group(0).num_rows(), ROW_GROUP_ROWS as i64);
    assert_eq!(meta.row_group(1).num_rows(), (n - ROW_GROUP_ROWS) as i64);
    // Row groups follow each other in time: the statistics of the ordering columns let
    // a reader skip the first one for a time after its maximum.
    let range = |rg: usize, col: usize| match meta.row_group(rg).column(col).statistics() {
        Some(Statistics::Int64(s)) => (s.min_opt().copied(), s.max_opt().copied()),
        other => panic!("row group {rg}, column {col}: {other:?}"),
    };
    let last = ROW_GROUP_ROWS as i64 - 1;
    assert_eq!(range(0, 1), (Some(0), Some(last * 1_000_000)));
    assert_eq!(
        range(1, 1),
        (
            Some((last + 1) * 1_000_000),
            Some((n as i64 - 1) * 1_000_000)
        )
    );
    assert_eq!(range(0, 0), (Some(0), Some(last)));
    // Rows keep their push order and values across batch boundaries.
    let mut next = 0i64;
    for batch in read_batches(&path).1 {
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let rate = batch.column(6).as_primitive::<Int64Type>();
        for (id, r) in ids.values().iter().zip(rate.values()) {
            assert_eq!(*id, next);
            assert_eq!(*r, next * 8);
            next += 1;
        }
    }
    assert_eq!(next, n as i64);
    // The empty flows table is still a valid file with the schema.
    let (schema, _) = read_batches(&dir.join("flows.parquet"));
    assert_eq!(schema.fields(), arrow_schema(&FLOWS).fields());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn abort_and_drop_leave_no_table() {
    for how in ["abort", "drop"] {
        let dir = temp_dir(how);
        let mut out = Output::create(&dir, flow_tables(BIN_NS)).expect("create");
        assert_eq!(
            file_names(&dir),
            [".flow_bins.parquet.tmp", ".flows.parquet.tmp"]
        );
        out.push(tcp_flow()).expect("push");
        for i in 0..(BATCH_ROWS as i64 + 10) {
            out.push(BinRow {
                flow_id: i,
                ..bins()[0]
            })
            .expect("push");
        }
        if how == "abort" {
            out.abort();
        } else {
            drop(out);
        }
        assert_eq!(file_names(&dir), Vec::<String>::new(), "{how}");
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn create_fails_clearly_when_the_folder_cannot_be_made() {
    let dir = temp_dir("notadir");
    fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("plain-file");
    fs::write(&file, b"x").expect("write");
    let err = Output::create(&file.join("out"), flow_tables(BIN_NS))
        .err()
        .expect("a file cannot hold a folder");
    assert!(matches!(err, Error::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("plain-file"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn flow_bins_reject_a_non_positive_bin_width() {
    for w in [0, -1] {
        assert!(matches!(
            Table::flow_bins(w),
            Err(Error::InvalidBinWidth(x)) if x == w
        ));
    }
}

#[test]
fn a_table_given_twice_is_refused_before_anything_is_created() {
    let dir = temp_dir("twice");
    let err = Output::create(&dir, [Table::new(&FLOWS), Table::new(&FLOWS)])
        .err()
        .expect("flows twice");
    assert!(
        matches!(err, Error::DuplicateTable { table: "flows" }),
        "{err:?}"
    );
    assert!(!dir.exists(), "nothing is created for invalid options");
}

#[test]
fn a_run_writes_the_tables_it_chose_and_refuses_rows_of_others() {
    let dir = temp_dir("choose");
    let mut out = Output::create(&dir, [Table::new(&FLOWS)]).expect("create");
    assert!(out.writes(&FLOWS));
    assert!(!out.writes(&FLOW_BINS));
    assert_eq!(file_names(&dir), [".flows.parquet.tmp"]);
    out.push(tcp_flow()).expect("push");
    let err = out.push(bins()[0]).expect_err("flow_bins is not written");
    assert!(
        matches!(err, Error::NotWritten { table: "flow_bins" }),
        "{err:?}"
    );
    // The refusal does not stop the tables that are written.
    out.push(udp_flow()).expect("push");
    let summary = out.finish().expect("finish");
    assert_eq!(summary.tables.len(), 1);
    assert_eq!(summary.tables[0].rows, 2);
    assert_eq!(file_names(&dir), ["flows.parquet"]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn writer_thread_error_surfaces_on_next_push_and_finish_cleans_up() {
    let dir = temp_dir("thread-error");
    let mut out = Output::create(&dir, flow_tables(BIN_NS)).expect("create");
    // The writer thread fails as an encoder error would make it.
    out.sinks[1].send(Message::Fail).expect("queued");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.sinks[1]
        .handle
        .as_ref()
        .is_some_and(|h| h.is_finished())
    {
        assert!(Instant::now() < deadline, "writer thread did not stop");
        std::thread::sleep(Duration::from_millis(5));
    }
    let err = out.push(bins()[0]).expect_err("the writer failed");
    assert!(
        matches!(
            err,
            Error::Parquet {
                table: "flow_bins",
                ..
            }
        ),
        "{err:?}"
    );
    let again = out.push(bins()[0]).expect_err("still failed");
    assert!(
        matches!(again, Error::WriterStopped { table: "flow_bins" }),
        "{again:?}"
    );
    // The other table still accepts rows, but finish fails and leaves nothing.
    out.push(tcp_flow()).expect("flows unaffected");
    assert!(out.finish().is_err());
    assert_eq!(file_names(&dir), Vec::<String>::new());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn conversions_floor_and_saturate() {
    assert_eq!(ns_to_us(0), 0);
    assert_eq!(ns_to_us(999), 0);
    assert_eq!(ns_to_us(1_000), 1);
    assert_eq!(ns_to_us(-1), -1);
    assert_eq!(ns_to_us(-1_000), -1);
    assert_eq!(ns_to_us(-1_001), -2);
    assert_eq!(ns_to_us(i64::MIN), -9_223_372_036_854_776);
    assert_eq!(count(5), 5);
    assert_eq!(count(u64::MAX), i64::MAX);
}

#[test]
fn output_can_move_to_another_thread() {
    fn is_send<T: Send>(_: &T) {}
    let dir = temp_dir("send");
    let out = Output::create(&dir, flow_tables(BIN_NS)).expect("create");
    is_send(&out);
    let summary = std::thread::spawn(move || {
        let mut out = out;
        out.push(bins()[1]).expect("push");
        out.finish().expect("finish")
    })
    .join()
    .expect("thread");
    assert_eq!(summary.tables[1].rows, 1);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn one_or_two_encoding_threads_write_the_same_bytes() {
    let mut files = Vec::new();
    for two_lanes in [false, true] {
        let dir = temp_dir(if two_lanes { "lanes2" } else { "lanes1" });
        let mut out =
            Output::create_with_lanes(&dir, flow_tables(BIN_NS), two_lanes).expect("create");
        // Past a row group and a half, in batches, with every kind of flow row.
        let kinds = [tcp_flow(), icmp6_flow(), udp_flow()];
        for i in 0..(ROW_GROUP_ROWS + ROW_GROUP_ROWS / 2 + 11) {
            let mut f = kinds[i % 3].clone();
            f.flow_id = i as i64;
            f.bytes_down = i as u64;
            out.push(f).expect("push");
            if i % 2 == 0 {
                out.push(BinRow {
                    flow_id: i as i64,
                    ..bins()[i % 4 / 2]
                })
                .expect("push");
            }
        }
        out.finish().expect("finish");
        let read = |t: &str| fs::read(dir.join(format!("{t}.parquet"))).expect("read");
        files.push((read("flows"), read("flow_bins")));
        let meta = SerializedFileReader::new(File::open(dir.join("flows.parquet")).expect("open"))
            .expect("footer")
            .metadata()
            .clone();
        assert_eq!(meta.num_row_groups(), 2);
        assert_eq!(meta.row_group(0).num_rows(), ROW_GROUP_ROWS as i64);
        let _ = fs::remove_dir_all(&dir);
    }
    assert!(
        files[0] == files[1],
        "the files differ with a second encoding thread"
    );
}

#[test]
fn columns_are_balanced_longest_first() {
    // 5 to one lane, 3 and 3 to the other, then 2 and 1 where there is less: 7 and 7.
    assert_eq!(balance(&[5, 3, 3, 2, 1], 0), [0, 1, 1, 0, 1]);
    // The table thread's own work counts against its lane.
    assert_eq!(balance(&[5, 3, 3, 2, 1], 4), [1, 0, 1, 0, 1]);
    // Ties keep column order: the same costs give the same lanes.
    assert_eq!(balance(&[2, 2, 2, 2], 0), [0, 1, 0, 1]);
    assert!(balance(&[], 9).is_empty());
}

/// Addresses that repeat keep a dictionary; a column of distinct addresses outgrows
/// [`ADDRESS_DICTIONARY_BYTES`] and its chunk is written as plain text. Either way every
/// address reads back as written.
#[test]
fn address_columns_keep_a_small_dictionary_and_fall_back_past_it() {
    let dir = temp_dir("addr-dict");
    let mut out = Output::create(&dir, flow_tables(BIN_NS)).expect("create");
    // Far more distinct clients than the dictionary holds (~16 bytes each), and a
    // mix of IPv6 among them; three servers.
    let n = 3 * TEXT_DICTIONARY_BYTES / 16;
    let client = |i: usize| distinct_addr(i as u32);
    let server = |i: usize| -> IpAddr { IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i % 3) as u8)) };
    for i in 0..n {
        out.push(FlowRow {
            flow_id: i as i64,
            client_addr: client(i),
            server_addr: server(i),
            ..tcp_flow()
        })
        .expect("push");
    }
    out.finish().expect("finish");

    let path = dir.join("flows.parquet");
    let reader = SerializedFileReader::new(File::open(&path).expect("open")).expect("footer");
    let rg = reader.metadata().row_group(0);
    let index = |name: &str| {
        FLOWS
            .columns
            .iter()
            .position(|c| c.name == name)
            .expect(name)
    };
    // The encodings of the column's data pages.
    let data_pages = |name: &str| -> Vec<Encoding> {
        let group = reader.get_row_group(0).expect("row group");
        let pages = group
            .get_column_page_reader(index(name))
            .expect("page reader");
        pages
            .map(|p| p.expect("page"))
            .filter(|p| p.page_type() != parquet::basic::PageType::DICTIONARY_PAGE)
            .map(|p| p.encoding())
            .collect()
    };
    let servers = data_pages("server_addr");
    assert!(
        !servers.is_empty() && servers.iter().all(|e| *e == Encoding::RLE_DICTIONARY),
        "server_addr: {servers:?}"
    );
    // parquet-rs falls back to plain text for the rest of the chunk once the
    // dictionary is full: the pages before it keep their dictionary.
    let clients = data_pages("client_addr");
    assert!(
        clients.contains(&Encoding::PLAIN),
        "client_addr: plain: {clients:?}"
    );
    let chunk = rg.column(index("client_addr"));
    let dict_page_bytes = chunk
        .dictionary_page_offset()
        .map(|at| chunk.data_page_offset() - at);
    assert!(
        dict_page_bytes.is_some_and(|b| (b as usize) <= TEXT_DICTIONARY_BYTES + 1024),
        "client_addr: dictionary page of {dict_page_bytes:?} bytes"
    );

    let (mut clients, mut servers) = (Vec::new(), Vec::new());
    for b in read_batches(&path).1 {
        assert_eq!(
            b.column_by_name("client_addr").expect("column").data_type(),
            &DataType::Utf8
        );
        clients.extend(arrow_cast_to_strings(
            b.column_by_name("client_addr").expect("column"),
        ));
        servers.extend(arrow_cast_to_strings(
            b.column_by_name("server_addr").expect("column"),
        ));
    }
    let want_clients: Vec<String> = (0..n).map(|i| client(i).to_string()).collect();
    let want_servers: Vec<String> = (0..n).map(|i| server(i).to_string()).collect();
    assert_eq!(clients, want_clients);
    assert_eq!(servers, want_servers);
    let _ = fs::remove_dir_all(&dir);
}

/// Long runs in which a nullable column has no value at all (UDP flows only: every
/// TCP column) and runs with values read back in order.
#[test]
fn nullable_columns_with_long_runs_of_nulls_read_back() {
    let dir = temp_dir("null-runs");
    let mut out = Output::create(&dir, flow_tables(BIN_NS)).expect("create");
    // Two runs of UDP flows, one of TCP flows, and a last, partial run of UDP flows.
    const RUN: usize = 1024;
    let n = 3 * RUN + 5;
    let is_tcp = |i: usize| (2 * RUN..3 * RUN).contains(&i);
    for i in 0..n {
        let base = if is_tcp(i) { tcp_flow() } else { udp_flow() };
        out.push(FlowRow {
            flow_id: i as i64,
            ..base
        })
        .expect("push");
    }
    out.finish().expect("finish");

    let (mut rtt, mut fin_up) = (Vec::new(), Vec::new());
    for b in read_batches(&dir.join("flows.parquet")).1 {
        let col = b.column_by_name("handshake_rtt_us").expect("column");
        rtt.extend(col.as_primitive::<Int64Type>().iter());
        let col = b.column_by_name("fin_up").expect("column");
        fin_up.extend(col.as_boolean().iter());
    }
    let want_rtt: Vec<Option<i64>> = (0..n).map(|i| is_tcp(i).then_some(12_345)).collect();
    let want_fin: Vec<Option<bool>> = (0..n).map(|i| is_tcp(i).then_some(true)).collect();
    assert_eq!(rtt, want_rtt);
    assert_eq!(fin_up, want_fin);
    let _ = fs::remove_dir_all(&dir);
}

/// Addresses all distinct, one in seven IPv6.
fn distinct_addr(i: u32) -> IpAddr {
    if i % 7 == 3 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            (i >> 16) as u16,
            i as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }
}
