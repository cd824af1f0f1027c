use super::*;
use std::collections::HashSet;

/// Set `STREAMSCOPE_BLESS=1` to rewrite docs/schema.md instead of comparing.
#[test]
fn docs_schema_md_is_generated_from_the_specs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.md");
    if std::env::var_os("STREAMSCOPE_BLESS").is_some() {
        std::fs::write(path, schema_markdown()).expect("write docs/schema.md");
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == schema_markdown(),
        "docs/schema.md is out of date: regenerate it with `streamscope schema --markdown \
         > docs/schema.md` (or run this crate's tests with STREAMSCOPE_BLESS=1)"
    );
}

#[test]
fn every_column_follows_the_parquet_contract() {
    for t in tables() {
        let schema = arrow_schema(t);
        assert_eq!(schema.fields().len(), t.columns.len());
        let mut names = HashSet::new();
        for (f, c) in schema.fields().iter().zip(t.columns) {
            let what = format!("{}.{}", t.name, c.name);
            assert!(names.insert(c.name), "{what}: duplicate column");
            assert!(
                !c.name.is_empty()
                    && c.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{what}: not snake_case"
            );
            assert_eq!(f.name(), c.name);
            assert_eq!(f.is_nullable(), c.nullable, "{what}");
            match f.data_type() {
                DataType::Int64 | DataType::Int32 | DataType::Boolean | DataType::Utf8 => {}
                DataType::Float64 => {}
                DataType::Timestamp(unit, tz) => {
                    assert_eq!(*unit, TimeUnit::Microsecond, "{what}: timestamps are µs");
                    assert_eq!(tz.as_deref(), Some("UTC"), "{what}: timestamps are UTC");
                }
                DataType::Dictionary(k, v) => {
                    assert_eq!(**k, DataType::Int32, "{what}: dictionary keys are int32");
                    assert_eq!(**v, DataType::Utf8, "{what}: dictionary values are utf8");
                }
                DataType::List(item) => {
                    assert_eq!(item.data_type(), &DataType::Utf8, "{what}: lists of text");
                    assert!(!item.is_nullable(), "{what}: list items are never null");
                }
                other => panic!("{what}: type {other} is outside the contract"),
            }
            // Units in the name match the type.
            let counter = c.name.contains("bytes")
                || c.name.contains("packets")
                || c.name.ends_with("_us")
                || c.name.ends_with("_bps")
                || c.name.ends_with("_id");
            if counter {
                assert_eq!(c.ty, Int64, "{what}: ids, counters and durations are int64");
            }
            if c.name.ends_with("_ts") || c.name.ends_with("_start") {
                assert_eq!(c.ty, TimestampUs, "{what}: times are timestamps");
            }
            if c.name.ends_with("_port") || c.name.starts_with("vlan") {
                assert_eq!(c.ty, Int32, "{what}: ports and VLAN IDs are int32");
                // A flow's protocol may have no ports (DNS always has them).
                if t.name != "dns" {
                    assert!(c.nullable, "{what}: null when it does not apply");
                }
            }
            if c.name.ends_with("_addr") {
                // Plain text, or dictionary-encoded text where few addresses repeat
                // (resolvers).
                assert!(
                    matches!(c.ty, Utf8 | DictUtf8),
                    "{what}: addresses are text"
                );
            }
            if c.name.ends_with("_addrs") {
                assert_eq!(
                    c.ty, ListUtf8,
                    "{what}: lists of addresses are lists of text"
                );
            }
            // The meaning states the nullability rule.
            assert!(c.meaning.ends_with('.'), "{what}: meaning is a sentence");
            let says_null = c.meaning.contains("Null ");
            assert_eq!(
                says_null, c.nullable,
                "{what}: meaning must say when it is null"
            );
        }
    }
}

#[test]
fn table_names_and_column_lists() {
    let names: Vec<_> = tables().iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "flows",
            "flow_bins",
            "dns",
            "multicast_events",
            "channel_sessions",
            "ts_streams",
            "ts_pids",
            "rtp_streams",
            "segments",
            "http"
        ]
    );
    let flows: Vec<_> = FLOWS.columns.iter().map(|c| c.name).collect();
    assert_eq!(
        flows,
        [
            "flow_id",
            "first_ts",
            "last_ts",
            "duration_us",
            "ip_version",
            "protocol",
            "client_addr",
            "client_port",
            "server_addr",
            "server_port",
            "server_name",
            "vlan",
            "vlan_inner",
            "client_rule",
            "packets_up",
            "packets_down",
            "bytes_up",
            "bytes_down",
            "payload_bytes_up",
            "payload_bytes_down",
            "syn_seen",
            "handshake_seen",
            "handshake_rtt_us",
            "retransmitted_packets_up",
            "retransmitted_packets_down",
            "fin_up",
            "fin_down",
            "rst_seen",
            "end_reason",
            "bins",
            "bitrate_down_p50_bps",
            "bitrate_down_p95_bps",
            "bitrate_down_max_bps",
            "class",
            "class_evidence",
            "service",
            "service_source",
            "http_host",
            "sni",
            "alpn",
            "tls_version",
            "quic_version",
            "tls_offered_versions",
            "tls_app_records_up",
            "tls_app_records_down",
            "tls_app_bytes_up",
            "tls_app_bytes_down",
            "segments",
            "segment_median_bytes",
            "segment_median_interval_us",
            "segment_on_share",
        ]
    );
    let bins: Vec<_> = FLOW_BINS.columns.iter().map(|c| c.name).collect();
    assert_eq!(
        bins,
        [
            "flow_id",
            "bin_start",
            "packets_up",
            "packets_down",
            "bytes_up",
            "bytes_down",
            "bitrate_down_bps",
            "ts_packets",
            "ts_cc_errors",
            "ts_lost_packets",
            "ts_transport_errors",
            "ts_pcr_errors",
            "ts_df_ms",
            "ts_mlr_pps",
            "rtp_packets",
            "rtp_lost",
            "rtp_duplicates",
            "rtp_reordered",
            "rtp_max_jitter_ms",
        ]
    );
}

#[test]
fn statistics_are_on_columns_the_rows_are_ordered_by() {
    for t in tables() {
        assert!(!t.statistics.is_empty(), "{}: no statistics", t.name);
        for name in t.statistics {
            assert!(
                t.column(name).is_some(),
                "{}.{name}: no such column",
                t.name
            );
        }
    }
    // flow_bins is sorted by columns: each has statistics. flows is in order of end
    // time, which last_ts follows, with ids and first packets close behind.
    for key in FLOW_BINS.sort.split(", ") {
        assert!(FLOW_BINS.statistics.contains(&key), "flow_bins.{key}");
    }
    assert_eq!(FLOWS.statistics, ["flow_id", "first_ts", "last_ts"]);
}

#[test]
fn schema_text_is_aligned_and_complete() {
    let text = schema_text();
    assert!(text.starts_with("streamscope tables, schema version 1\n"));
    for t in tables() {
        assert!(text.contains(&format!("\n{}.parquet\n", t.name)));
        // One line per column; within a table the type, nullability and meaning start
        // at the same offsets on every line.
        let mut offsets = HashSet::new();
        for c in t.columns {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("  {} ", c.name)) && l.ends_with(c.meaning))
                .unwrap_or_else(|| panic!("no line for {}.{}", t.name, c.name));
            let null = if c.nullable { " null " } else { " not null " };
            let ty = line.find(&format!("  {}  ", c.ty.name())).unwrap_or(0);
            let nl = line.find(null).unwrap_or(0);
            offsets.insert((ty, nl, line.len() - c.meaning.len()));
        }
        assert_eq!(
            offsets.len(),
            1,
            "{}: columns not aligned: {offsets:?}",
            t.name
        );
    }
}

#[test]
fn schema_json_lists_every_column_with_its_client_type() {
    let v = schema_json();
    let arr = v.as_array().expect("an array of tables");
    assert_eq!(arr.len(), tables().len());
    for (jt, t) in arr.iter().zip(tables()) {
        assert_eq!(jt["name"], t.name);
        assert_eq!(jt["description"], t.description);
        assert_eq!(jt["sort"], t.sort);
        assert_eq!(jt["statistics"], serde_json::json!(t.statistics));
        let cols = jt["columns"].as_array().expect("columns");
        assert_eq!(cols.len(), t.columns.len(), "{}", t.name);
        for (jc, c) in cols.iter().zip(t.columns) {
            assert_eq!(jc["name"], c.name);
            assert_eq!(jc["type"], c.ty.arrow_text());
            assert_eq!(jc["nullable"], c.nullable);
            assert_eq!(jc["meaning"], c.meaning);
            assert_eq!(jc.as_object().map(|o| o.len()), Some(4));
        }
    }
    // Hand-checked spellings (pyarrow's `str(type)`).
    let flows = &arr[0]["columns"];
    let find = |name: &str| {
        flows
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("flows.{name} missing"))
    };
    assert_eq!(find("first_ts")["type"], "timestamp[us, tz=UTC]");
    assert_eq!(find("first_ts")["nullable"], false);
    assert_eq!(
        find("client_rule")["type"],
        "dictionary<values=string, indices=int32, ordered=0>"
    );
    assert_eq!(find("client_port")["type"], "int32");
    assert_eq!(find("client_port")["nullable"], true);
    assert_eq!(find("client_addr")["type"], "string");
    assert_eq!(find("packets_up")["type"], "int64");
    assert_eq!(find("syn_seen")["type"], "bool");
    assert_eq!(arr[1]["name"], "flow_bins");
    assert_eq!(arr[1]["columns"][1]["type"], "timestamp[us, tz=UTC]");
    // The timestamp spelling follows the declared zone.
    assert!(ColType::TimestampUs.arrow_text().contains(TIMEZONE));
    // It serializes and parses back unchanged.
    let text = serde_json::to_string_pretty(&v).expect("serialize");
    let back: serde_json::Value = serde_json::from_str(&text).expect("parse");
    assert_eq!(back, v);
}

#[test]
fn markdown_has_the_generated_header_and_one_row_per_column() {
    let md = schema_markdown();
    assert!(md.starts_with("<!-- generated by `streamscope schema --markdown`, do not edit"));
    let rows = md.lines().filter(|l| l.starts_with("| `")).count();
    let cols: usize = tables().iter().map(|t| t.columns.len()).sum();
    assert_eq!(rows, cols);
    assert!(md.contains("| `first_ts` | `timestamp[us, UTC]` | no |"));
    assert!(md.contains("| `client_port` | `int32` | yes |"));
}
