//! Conformance with tshark on the public corpus (`../shared/corpus`, facts in
//! `oracle.json`, see its MANIFEST.md).
//!
//! For every corpus file, `streamscope analyze` must report tshark's total packets and
//! bytes, and every row of tshark's `tcp_conversations` / `udp_conversations` must match
//! one flow of ours in packets and bytes per direction. Where our flow definition
//! differs by design, the difference must be accounted for, entirely, by one of the
//! named rules below; the test computes each rule's share independently from the
//! capture (with the capture and wire crates) and fails on any remainder.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::{
    Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_wire::{dissect, Transport};

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    assert!(
        dir.join("oracle.json").is_file(),
        "the public corpus is missing: expected {} (the `shared` folder must sit beside the checkout)",
        dir.display()
    );
    dir
}

/// An endpoint as (address, port).
type Ep = (IpAddr, u16);

/// Packets and bytes in the two directions of a conversation, oriented from its
/// canonical low endpoint: `[lo→hi packets, lo→hi bytes, hi→lo packets, hi→lo bytes]`.
type Counts = [i64; 4];

#[derive(Debug)]
struct OurFlow {
    protocol: i32,
    client: Ep,
    server: Ep,
    up: (i64, i64),
    down: (i64, i64),
    first_us: i64,
    last_us: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ConvKey {
    protocol: i32,
    lo: Ep,
    hi: Ep,
}

fn conv_key(protocol: i32, a: Ep, b: Ep) -> (ConvKey, bool) {
    if a <= b {
        (
            ConvKey {
                protocol,
                lo: a,
                hi: b,
            },
            true,
        )
    } else {
        (
            ConvKey {
                protocol,
                lo: b,
                hi: a,
            },
            false,
        )
    }
}

fn oriented(a_is_lo: bool, ab: (i64, i64), ba: (i64, i64)) -> Counts {
    if a_is_lo {
        [ab.0, ab.1, ba.0, ba.1]
    } else {
        [ba.0, ba.1, ab.0, ab.1]
    }
}

fn add(a: &mut Counts, b: Counts) {
    for i in 0..4 {
        a[i] += b[i];
    }
}

fn col<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("flows.parquet has no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has an unexpected type"))
}

fn read_flows(path: &Path) -> Vec<OurFlow> {
    let file = std::fs::File::open(path).expect("flows.parquet exists");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("flows.parquet is Parquet")
        .build()
        .expect("reader");
    let mut out = Vec::new();
    for batch in reader {
        let b = batch.expect("batch");
        let proto = col::<Int32Array>(&b, "protocol");
        let ca = col::<StringArray>(&b, "client_addr");
        let cp = col::<Int32Array>(&b, "client_port");
        let sa = col::<StringArray>(&b, "server_addr");
        let sp = col::<Int32Array>(&b, "server_port");
        let pu = col::<Int64Array>(&b, "packets_up");
        let pd = col::<Int64Array>(&b, "packets_down");
        let bu = col::<Int64Array>(&b, "bytes_up");
        let bd = col::<Int64Array>(&b, "bytes_down");
        let first = col::<TimestampMicrosecondArray>(&b, "first_ts");
        let last = col::<TimestampMicrosecondArray>(&b, "last_ts");
        for i in 0..b.num_rows() {
            let port = |a: &Int32Array| if a.is_null(i) { 0 } else { a.value(i) as u16 };
            out.push(OurFlow {
                protocol: proto.value(i),
                client: (ca.value(i).parse().expect("address"), port(cp)),
                server: (sa.value(i).parse().expect("address"), port(sp)),
                up: (pu.value(i), bu.value(i)),
                down: (pd.value(i), bd.value(i)),
                first_us: first.value(i),
                last_us: last.value(i),
            });
        }
    }
    out
}

fn epoch_us(s: &str) -> i64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let mut frac = frac.to_string();
    frac.truncate(6);
    while frac.len() < 6 {
        frac.push('0');
    }
    secs.parse::<i64>().expect("seconds") * 1_000_000 + frac.parse::<i64>().expect("fraction")
}

/// What the capture itself says about the frames where tshark and a flow meter differ.
#[derive(Default)]
struct Scan {
    /// Fragment frames that do not complete a datagram (tshark gives them no stream;
    /// we count them to the flow of their first fragment), per conversation.
    fragments: HashMap<ConvKey, Counts>,
    /// ICMP error frames quoting a conversation's transport header (tshark counts them
    /// to that conversation; we count them to an ICMP flow), per conversation.
    icmp_quotes: HashMap<ConvKey, Counts>,
    /// (src, dst, protocol, µs) of final fragments (more-fragments clear, offset > 0):
    /// where the first fragment has no usable transport header, tshark still reads ports
    /// from the reassembled datagram and labels this frame; we count the fragments to
    /// the host pair's flow without ports.
    last_fragments: Vec<(IpAddr, IpAddr, u8, i64)>,
}

fn quoted_tuple(quote: &[u8]) -> Option<(IpAddr, IpAddr, u8, u16, u16)> {
    let v = quote.first()? >> 4;
    let (src, dst, proto, l4) = match v {
        4 => {
            let ihl = usize::from(quote[0] & 0x0f) * 4;
            let src: [u8; 4] = quote.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = quote.get(16..20)?.try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                *quote.get(9)?,
                quote.get(ihl..)?,
            )
        }
        6 => {
            let src: [u8; 16] = quote.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = quote.get(24..40)?.try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                *quote.get(6)?,
                quote.get(40..)?,
            )
        }
        _ => return None,
    };
    let sp = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
    let dp = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    Some((src, dst, proto, sp, dp))
}

fn scan(path: &Path) -> Scan {
    struct Frag {
        dir_src: IpAddr,
        frames: Vec<(usize, i64)>,
        ports: Option<(u16, u16)>,
        have_last: bool,
        covered: u64,
        end: u64,
        dst: IpAddr,
        proto: u8,
    }
    let mut s = Scan::default();
    let mut frags: BTreeMap<(String, String, u8, u32), Frag> = BTreeMap::new();
    let mut cap = Capture::open(path).expect("corpus file opens");
    let mut index = 0usize;
    while let Ok(Some(rec)) = cap.next_record() {
        index += 1;
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        let Some(ip) = p.ip else { continue };
        let len = i64::from(rec.orig_len);
        if let Some(f) = ip.fragment {
            let e = frags
                .entry((ip.src.to_string(), ip.dst.to_string(), ip.protocol, f.id))
                .or_insert(Frag {
                    dir_src: ip.src,
                    frames: Vec::new(),
                    ports: None,
                    have_last: false,
                    covered: 0,
                    end: 0,
                    dst: ip.dst,
                    proto: ip.protocol,
                });
            e.frames.push((index, len));
            e.covered += u64::from(f.len);
            if !f.more && f.offset > 0 {
                s.last_fragments
                    .push((ip.src, ip.dst, ip.protocol, rec.ts_ns.div_euclid(1000)));
            }
            if !f.more {
                e.have_last = true;
                e.end = u64::from(f.offset) + u64::from(f.len);
            }
            if f.offset == 0 {
                match p.transport {
                    Transport::Tcp(t) => e.ports = Some((t.src_port, t.dst_port)),
                    Transport::Udp { src_port, dst_port } => e.ports = Some((src_port, dst_port)),
                    _ => {}
                }
            }
        }
        let quote = match p.transport {
            Transport::Icmpv4 {
                kind: 3 | 4 | 5 | 11 | 12,
                ..
            } => Some(p.payload),
            Transport::Icmpv6 { kind: 1..=4, .. } => Some(p.payload),
            _ => None,
        };
        if let Some((qs, qd, qp, sp, dp)) = quote.and_then(quoted_tuple) {
            if qp == 6 || qp == 17 {
                let (key, src_is_lo) = conv_key(i32::from(qp), (qs, sp), (qd, dp));
                // The ICMP frame travels towards the quoted packet's sender.
                let c = oriented(!src_is_lo, (1, len), (0, 0));
                add(s.icmp_quotes.entry(key).or_default(), c);
            }
        }
    }
    for f in frags.into_values() {
        let Some((sp, dp)) = f.ports else { continue };
        let complete = f.have_last && f.covered >= f.end;
        // tshark labels only the frame that completes the datagram (the last to arrive).
        let last = f.frames.iter().map(|x| x.0).max().unwrap_or(0);
        let (key, src_is_lo) = conv_key(i32::from(f.proto), (f.dir_src, sp), (f.dst, dp));
        for (i, len) in f.frames {
            if complete && i == last {
                continue;
            }
            add(
                s.fragments.entry(key).or_default(),
                oriented(src_is_lo, (1, len), (0, 0)),
            );
        }
    }
    s
}

#[derive(Default, Debug)]
struct Tally {
    exact: usize,
    rules: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

#[test]
fn totals_and_conversations_agree_with_tshark() {
    let dir = corpus();
    let oracle: Value =
        serde_json::from_slice(&std::fs::read(dir.join("oracle.json")).unwrap()).unwrap();
    let files = oracle["files"].as_object().expect("files");
    let tmp = tempfile::tempdir().unwrap();
    let mut tally = Tally::default();
    let udp_timeout_us = 120_000_000i64; // streamscope's default --udp-timeout
    let tcp_timeout_us = 300_000_000i64;

    for (name, facts) in files {
        let path = dir.join(name);
        let out = tmp.path().join(name);
        let run = Command::new(env!("CARGO_BIN_EXE_streamscope"))
            .args(["analyze", "--quiet"])
            .arg(&path)
            .arg("-o")
            .arg(&out)
            .output()
            .expect("run streamscope");
        assert!(
            run.status.success(),
            "{name}: analyze failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
        let counts = &manifest["counts"];
        if counts["packets"] != facts["tshark_frames"] || counts["bytes"] != facts["sum_frame_len"]
        {
            tally.failures.push(format!(
                "{name}: totals {} packets / {} bytes, tshark {} / {}",
                counts["packets"], counts["bytes"], facts["tshark_frames"], facts["sum_frame_len"]
            ));
        }

        let flows = read_flows(&out.join("flows.parquet"));
        let mut ours: HashMap<ConvKey, Vec<(Counts, i64, i64)>> = HashMap::new();
        for f in &flows {
            let (key, client_is_lo) = conv_key(f.protocol, f.client, f.server);
            ours.entry(key).or_default().push((
                oriented(client_is_lo, f.up, f.down),
                f.first_us,
                f.last_us,
            ));
        }
        let mut theirs: BTreeMap<ConvKey, Vec<(Counts, i64)>> = BTreeMap::new();
        for (proto, table) in [(6, "tcp_conversations"), (17, "udp_conversations")] {
            for row in facts[table].as_array().into_iter().flatten() {
                let ep = |a: &str, p: &str| -> Ep {
                    (
                        row[a].as_str().unwrap().parse().unwrap(),
                        row[p].as_u64().unwrap() as u16,
                    )
                };
                let (key, a_is_lo) =
                    conv_key(proto, ep("a_addr", "a_port"), ep("b_addr", "b_port"));
                let n = |k: &str| row[k].as_i64().unwrap();
                let c = oriented(
                    a_is_lo,
                    (n("a_to_b_packets"), n("a_to_b_bytes")),
                    (n("b_to_a_packets"), n("b_to_a_bytes")),
                );
                theirs
                    .entry(key)
                    .or_default()
                    .push((c, epoch_us(row["first_epoch"].as_str().unwrap())));
            }
        }
        let needs_scan = theirs.iter().any(|(k, rows)| {
            let mine = ours.get(k).map_or(&[][..], |v| v.as_slice());
            mine.len() != rows.len() || {
                let mut m: Vec<_> = mine.iter().map(|x| (x.1, x.0)).collect();
                m.sort();
                let mut t: Vec<_> = rows.iter().map(|x| (x.1, x.0)).collect();
                t.sort();
                m.iter().zip(&t).any(|(a, b)| a.1 != b.1)
            }
        });
        let scan = if needs_scan {
            scan(&path)
        } else {
            Scan::default()
        };

        for (key, rows) in &theirs {
            let mut mine = ours.get(key).cloned().unwrap_or_default();
            mine.sort_by_key(|x| x.1);
            let mut rows = rows.clone();
            rows.sort_by_key(|x| x.1);
            if mine.len() == rows.len() && mine.iter().zip(&rows).all(|(m, t)| m.0 == t.0) {
                tally.exact += rows.len();
                continue;
            }
            // Sum both sides over the conversation, then take out what each rule explains.
            let mut diff = [0i64; 4];
            for m in &mine {
                add(&mut diff, m.0);
            }
            for t in &rows {
                add(&mut diff, t.0.map(|x| -x));
            }
            let mut used: Vec<&'static str> = Vec::new();
            if let Some(extra) = scan.fragments.get(key) {
                add(&mut diff, extra.map(|x| -x));
                used.push("ip_fragments: tshark labels only the frame completing a datagram");
            }
            if let Some(quoted) = scan.icmp_quotes.get(key) {
                add(&mut diff, *quoted);
                used.push("icmp_quote: tshark counts ICMP errors to the quoted conversation");
            }
            if mine.is_empty() {
                // Datagrams whose ports only the reassembled datagram shows.
                let portless = ours.contains_key(&ConvKey {
                    protocol: key.protocol,
                    lo: (key.lo.0.min(key.hi.0), 0),
                    hi: (key.lo.0.max(key.hi.0), 0),
                });
                let n = rows
                    .iter()
                    .filter(|(c, first)| {
                        c[0] + c[2] == 1
                            && portless
                            && scan.last_fragments.iter().any(|&(s, d, p, ts)| {
                                i32::from(p) == key.protocol
                                    && ts == *first
                                    && ((s, d) == (key.lo.0, key.hi.0)
                                        || (d, s) == (key.lo.0, key.hi.0))
                            })
                    })
                    .count();
                if n == rows.len() {
                    tally
                        .rules
                        .entry("reassembled_ports: tshark reads ports from a reassembled datagram whose first fragment has no usable header; we count it to the host pair without ports")
                        .and_modify(|c| *c += n)
                        .or_insert(n);
                    continue;
                }
            }
            if mine.len() > rows.len() {
                let timeout = if key.protocol == 6 {
                    tcp_timeout_us
                } else {
                    udp_timeout_us
                };
                let gaps_ok = mine.windows(2).all(|w| w[1].1 - w[0].2 >= timeout);
                if gaps_ok {
                    used.push("idle_timeout: a silence longer than the idle timeout ends our flow");
                }
            } else if mine.len() < rows.len() {
                used.push(if key.protocol == 6 {
                    "port_reuse: tshark starts a new stream on a reused port pair"
                } else {
                    "udp_stream_split: tshark splits a UDP 5-tuple into several streams (SDP-signalled RTP/T.38, per direction)"
                });
            }
            if diff == [0; 4] && !used.is_empty() {
                for r in used {
                    *tally.rules.entry(r).or_default() += rows.len();
                }
            } else {
                tally.failures.push(format!(
                    "{name}: {:?} ours {:?} tshark {:?} unexplained remainder {:?} (rules tried: {:?})",
                    key,
                    mine.iter().map(|m| m.0).collect::<Vec<_>>(),
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                    diff,
                    used
                ));
            }
        }
    }
    eprintln!("rows matched exactly: {}", tally.exact);
    for (rule, n) in &tally.rules {
        eprintln!("rows explained by {rule}: {n}");
    }
    assert!(
        tally.failures.is_empty(),
        "unexplained differences with tshark:\n{}",
        tally.failures.join("\n")
    );
    // The corpus exercises every rule; if one stops being needed the flow definition
    // changed and this test must be revisited.
    assert!(
        tally.exact >= 150,
        "only {} rows matched exactly",
        tally.exact
    );
    assert_eq!(tally.rules.len(), 5, "rules used: {:?}", tally.rules);
}
