//! The `dns` table and `flows.server_name`, end to end through `streamscope analyze`:
//!
//! - against tshark's oracle on the public corpus: per file, DNS queries and responses
//!   counted as `dns_queries` / `dns_responses`, each file's query names equal to
//!   `dns_query_names`, and every (name, rcode) pair of `dns_response_name_rcode` in our
//!   rows. One difference is by design and computed from the capture: a DNS message in
//!   the first fragment of a datagram the capture cut (snap length) is dissected alone by
//!   tshark; the flow table puts fragmented datagrams back together for inspectors and
//!   cannot complete one with a missing part. Its count is pinned per file.
//! - against ground truth: every DNS exchange capgen's demo capture lists is a row with
//!   its name, type, rcode, answers and latency; every lookup of the testbed captures'
//!   truth is there; `flows.server_name` names the servers those answers gave.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{
    Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use serde_json::Value;
use streamscope_capture::Capture;
use streamscope_wire::{dissect, DecodeError, Transport};
use support::{batches, col, text};

mod support;

/// A row of `dns.parquet`, as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dns {
    query_us: Option<i64>,
    response_us: Option<i64>,
    flow_id: i64,
    id: i32,
    name: Option<String>,
    qtype: Option<String>,
    rcode: Option<String>,
    answers: Option<i32>,
    addresses: Vec<String>,
    cnames: Vec<String>,
    latency_us: Option<i64>,
    retransmissions: i32,
    outcome: String,
}

fn list(batch: &RecordBatch, name: &str, i: usize) -> Vec<String> {
    let l = col::<ListArray>(batch, name);
    let v = l.value(i);
    let s = v
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("list of strings");
    (0..s.len()).map(|j| s.value(j).to_owned()).collect()
}

fn read_dns(path: &Path) -> Vec<Dns> {
    let mut out = Vec::new();
    for b in batches(path) {
        let qt = col::<TimestampMicrosecondArray>(&b, "query_ts");
        let rt = col::<TimestampMicrosecondArray>(&b, "response_ts");
        let flow = col::<Int64Array>(&b, "flow_id");
        let id = col::<Int32Array>(&b, "id");
        let answers = col::<Int32Array>(&b, "answers");
        let latency = col::<Int64Array>(&b, "latency_us");
        let retx = col::<Int32Array>(&b, "retransmissions");
        for i in 0..b.num_rows() {
            let opt_ts = |a: &TimestampMicrosecondArray| (!a.is_null(i)).then(|| a.value(i));
            out.push(Dns {
                query_us: opt_ts(qt),
                response_us: opt_ts(rt),
                flow_id: flow.value(i),
                id: id.value(i),
                name: text(&b, "name", i),
                qtype: text(&b, "qtype", i),
                rcode: text(&b, "rcode", i),
                answers: (!answers.is_null(i)).then(|| answers.value(i)),
                addresses: list(&b, "addresses", i),
                cnames: list(&b, "cnames", i),
                latency_us: (!latency.is_null(i)).then(|| latency.value(i)),
                retransmissions: retx.value(i),
                outcome: text(&b, "outcome", i).expect("outcome"),
            });
        }
    }
    out
}

fn analyze(capture: &Path, out: &Path) -> Value {
    support::analyze(capture, out, &[])
}

/// DNS messages tshark dissects from first fragments the capture cut: (queries,
/// responses, their (name, rcode) pairs), from the capture. A name is read from the
/// question as far as it is captured (tshark shows a cut name as empty).
fn cut_first_fragments(path: &Path) -> (u64, u64, Vec<(String, u8)>) {
    let mut cap = Capture::open(path).expect("opens");
    let (mut q, mut r, mut pairs) = (0, 0, Vec::new());
    while let Ok(Some(rec)) = cap.next_record() {
        let p = dissect(rec.link_type, rec.data, rec.orig_len);
        let Some(ip) = p.ip else { continue };
        let Some(f) = ip.fragment else { continue };
        let dns = matches!(
            p.transport,
            Transport::Udp { src_port: 53, .. } | Transport::Udp { dst_port: 53, .. }
        );
        let cut = rec.data.len() < rec.orig_len as usize
            || matches!(
                p.error,
                Some(DecodeError::Ipv4Truncated | DecodeError::Ipv6Truncated)
            );
        if f.offset != 0 || !dns || !cut || p.payload.len() < 4 {
            continue;
        }
        let m = p.payload;
        if m[2] & 0x80 == 0 {
            q += 1;
        } else {
            r += 1;
            pairs.push((question_name(m), m[3] & 0x0f));
        }
    }
    (q, r, pairs)
}

/// The first question's name, labels joined with dots, when the question is captured
/// whole (the name up to its terminating empty label, then type and class); empty
/// otherwise, as tshark shows a cut question.
fn question_name(m: &[u8]) -> String {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let Some(&len) = m.get(at) else {
            return String::new();
        };
        if len == 0 {
            return if m.len() >= at + 5 {
                labels.join(".")
            } else {
                String::new()
            };
        }
        if len & 0xc0 != 0 {
            return String::new();
        }
        let Some(l) = m.get(at + 1..at + 1 + usize::from(len)) else {
            return String::new();
        };
        labels.push(String::from_utf8_lossy(l).into_owned());
        at += 1 + usize::from(len);
    }
}

/// Pinned: (queries, responses) that only tshark dissects, per file (computed by
/// `cut_first_fragments`).
const CUT_FIRST_FRAGMENTS: &[(&str, u64, u64)] = &[("ndpi__badpackets.pcap", 0, 91)];

#[test]
fn dns_rows_agree_with_tshark() {
    let Some(corpus) = streamscope_testkit::corpus(
        "dns::dns_rows_agree_with_tshark",
        "DNS rows against tshark's oracle",
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut computed = String::new();
    let mut checked = 0;
    for (name, facts) in corpus.files() {
        let want_q = facts["dns_queries"].as_u64().unwrap_or(0);
        let want_r = facts["dns_responses"].as_u64().unwrap_or(0);
        if want_q + want_r == 0 {
            continue;
        }
        checked += 1;
        let path = corpus.path(name);
        let out = tmp.path().join(name);
        analyze(&path, &out);
        let rows = read_dns(&out.join("dns.parquet"));
        let (cut_q, cut_r, cut_pairs) = cut_first_fragments(&path);
        if cut_q + cut_r > 0 {
            computed.push_str(&format!("    ({name:?}, {cut_q}, {cut_r}),\n"));
        }
        let pinned = CUT_FIRST_FRAGMENTS
            .iter()
            .find(|p| p.0 == name)
            .map_or((0, 0), |p| (p.1, p.2));
        if pinned != (cut_q, cut_r) {
            failures.push(format!(
                "{name}: cut first fragments {:?}, pinned {pinned:?}",
                (cut_q, cut_r)
            ));
        }
        // Each query packet (retransmissions included) and each response packet.
        let got_q: u64 = rows
            .iter()
            .filter(|r| r.query_us.is_some())
            .map(|r| 1 + r.retransmissions as u64)
            .sum();
        let got_r = rows.iter().filter(|r| r.response_us.is_some()).count() as u64;
        if got_q + cut_q != want_q || got_r + cut_r != want_r {
            failures.push(format!(
                "{name}: queries {got_q} + {cut_q} cut, responses {got_r} + {cut_r} cut; tshark {want_q} / {want_r}"
            ));
        }
        // Query names: tshark's (name, count), each query packet counted.
        let mut want_names: BTreeMap<String, u64> = BTreeMap::new();
        for e in facts["dns_query_names"].as_array().into_iter().flatten() {
            let n = e[0].as_str().unwrap_or_default().to_lowercase();
            *want_names.entry(n).or_default() += e[1].as_u64().unwrap_or(0);
        }
        let mut got_names: BTreeMap<String, u64> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.query_us.is_some()) {
            *got_names
                .entry(r.name.clone().unwrap_or_default())
                .or_default() += 1 + r.retransmissions as u64;
        }
        if got_names != want_names && cut_q == 0 {
            failures.push(format!(
                "{name}: query names {got_names:?}, tshark {want_names:?}"
            ));
        }
        // (name, rcode) of each response: tshark's ("NAME rcode=N", count), several
        // questions' names joined with commas (a row keeps the first).
        let mut want_pairs: BTreeMap<(String, u8), u64> = BTreeMap::new();
        for e in facts["dns_response_name_rcode"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let text = e[0].as_str().unwrap_or_default();
            let (n, rcode) = text.rsplit_once(" rcode=").unwrap_or((text, "255"));
            let n = n.split(',').next().unwrap_or_default().to_lowercase();
            *want_pairs
                .entry((n, rcode.parse().unwrap_or(255)))
                .or_default() += e[1].as_u64().unwrap_or(0);
        }
        let mut got_pairs: BTreeMap<(String, u8), u64> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.response_us.is_some()) {
            let rcode = (0..=15u8)
                .find(|&c| {
                    r.rcode.as_deref() == Some(streamscope_media::dns::rcode_name(c).as_ref())
                })
                .unwrap_or(255);
            *got_pairs
                .entry((r.name.clone().unwrap_or_default(), rcode))
                .or_default() += 1;
        }
        for (n, c) in cut_pairs {
            *got_pairs.entry((n.to_lowercase(), c)).or_default() += 1;
        }
        if got_pairs != want_pairs {
            failures.push(format!(
                "{name}: responses by (name, rcode) {got_pairs:?}, tshark {want_pairs:?}"
            ));
        }
    }
    streamscope_testkit::say(&format!(
        "dns: {checked} corpus files with DNS compared with tshark"
    ));
    assert!(
        failures.is_empty(),
        "{}\ncomputed cut-first-fragment counts:\n{computed}",
        failures.join("\n")
    );
}

/// A flow of `flows.parquet`: (flow_id, client, client port, server, server port,
/// first µs, server_name).
type FlowFacts = (
    i64,
    String,
    Option<i32>,
    String,
    Option<i32>,
    i64,
    Option<String>,
);

fn read_flows(path: &Path) -> Vec<FlowFacts> {
    let mut out = Vec::new();
    for b in batches(path) {
        let id = col::<Int64Array>(&b, "flow_id");
        let cp = col::<Int32Array>(&b, "client_port");
        let sp = col::<Int32Array>(&b, "server_port");
        let first = col::<TimestampMicrosecondArray>(&b, "first_ts");
        for i in 0..b.num_rows() {
            let port = |a: &Int32Array| (!a.is_null(i)).then(|| a.value(i));
            out.push((
                id.value(i),
                text(&b, "client_addr", i).unwrap(),
                port(cp),
                text(&b, "server_addr", i).unwrap(),
                port(sp),
                first.value(i),
                text(&b, "server_name", i),
            ));
        }
    }
    out
}

/// Checks every DNS exchange of a capgen truth against our rows: one row each, with its
/// name, type, rcode, answers, CNAME chain and latency, and no row the truth does not
/// list; every flow to an address an earlier answer gave is named after it. Returns
/// (exchanges, answered, unanswered, named flows).
fn check_capgen(label: &str, capture: &Path, truth: &Value, out: &Path) -> [usize; 4] {
    analyze(capture, out);
    let rows = read_dns(&out.join("dns.parquet"));
    let flows = read_flows(&out.join("flows.parquet"));
    let mut failures = Vec::new();
    let mut counts = [0usize; 4];
    let truth_flows = truth["flows"].as_array().expect("per-flow truth");
    // (address, name, response time) of every answer, for server_name.
    let mut answers: Vec<(String, String, i64)> = Vec::new();
    for f in truth_flows.iter().filter(|f| f["dns"].is_object()) {
        let d = &f["dns"];
        counts[0] += 1;
        let ours: Vec<&Dns> = rows
            .iter()
            .filter(|r| {
                let flow = flows
                    .iter()
                    .find(|x| x.0 == r.flow_id)
                    .expect("the row's flow");
                flow.1 == f["client_addr"].as_str().unwrap()
                    && flow.2 == f["client_port"].as_i64().map(|p| p as i32)
                    && r.id == d["id"].as_i64().unwrap() as i32
            })
            .collect();
        let [r] = ours[..] else {
            failures.push(format!(
                "{label}: truth flow {} has {} rows of ours",
                f["flow_id"],
                ours.len()
            ));
            continue;
        };
        let qname = d["qname"].as_str().unwrap().to_lowercase();
        let q_ns = d["query_ts_ns"].as_i64().unwrap();
        let mut problems = Vec::new();
        if r.name.as_deref() != Some(qname.as_str()) {
            problems.push(format!("name {:?}", r.name));
        }
        if r.qtype.as_deref() != d["qtype"].as_str() {
            problems.push(format!("qtype {:?}", r.qtype));
        }
        if r.query_us != Some(q_ns.div_euclid(1000)) {
            problems.push(format!("query time {:?}", r.query_us));
        }
        match (d["rcode"].as_u64(), d["response_ts_ns"].as_i64()) {
            (Some(rcode), Some(resp_ns)) => {
                counts[1] += 1;
                let want = streamscope_media::dns::rcode_name(rcode as u8);
                if r.rcode.as_deref() != Some(want.as_ref()) {
                    problems.push(format!("rcode {:?}", r.rcode));
                }
                if r.latency_us != Some(resp_ns.div_euclid(1000) - q_ns.div_euclid(1000)) {
                    problems.push(format!("latency {:?}", r.latency_us));
                }
                let mut want_addrs: Vec<String> = d["answers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect();
                let mut got = r.addresses.clone();
                want_addrs.sort();
                got.sort();
                if got != want_addrs {
                    problems.push(format!("addresses {got:?}, truth {want_addrs:?}"));
                }
                let cnames: Vec<String> = f["dns_cnames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| c.as_str().unwrap().to_lowercase())
                    .collect();
                if r.cnames != cnames {
                    problems.push(format!("cnames {:?}, truth {cnames:?}", r.cnames));
                }
                for a in want_addrs {
                    answers.push((a, qname.clone(), resp_ns.div_euclid(1000)));
                }
            }
            _ => {
                counts[2] += 1;
                if r.response_us.is_some() || r.rcode.is_some() || r.outcome == "answered" {
                    problems.push(format!("a response: {r:?}"));
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{label}: {qname} (id {}): {}",
                d["id"],
                problems.join(", ")
            ));
        }
    }
    if rows.len() != counts[0] {
        failures.push(format!(
            "{label}: {} rows of ours, {} exchanges in the truth",
            rows.len(),
            counts[0]
        ));
    }
    // server_name: the latest answer for the address at or before the flow's start.
    for (id, _, _, server, _, first_us, name) in &flows {
        let want = answers
            .iter()
            .filter(|a| &a.0 == server && a.2 <= *first_us)
            .max_by_key(|a| a.2)
            .map(|a| a.1.clone());
        if want.is_some() {
            counts[3] += 1;
        }
        if *name != want {
            failures.push(format!(
                "{label}: flow {id} to {server}: server_name {name:?}, truth {want:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    counts
}

#[test]
fn capgen_dns_exchanges_are_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo: Value =
        serde_json::from_slice(&std::fs::read(root.join("captures/demo.pcap.truth.json")).unwrap())
            .unwrap();
    let [n, answered, unanswered, named] = check_capgen(
        "demo",
        &root.join("captures/demo.pcap"),
        &demo,
        &tmp.path().join("demo"),
    );
    assert_eq!([n, answered, unanswered], [7, 7, 0], "demo's DNS exchanges");
    assert!(named >= 7, "{named} flows named");

    // A name answering, then NXDOMAIN, SERVFAIL, no answer, and answering again.
    let (truth, path) = support::generate(
        tmp.path(),
        "dns-failures",
        include_str!("../tools/capgen/scenarios/dns-failures.toml"),
    );
    let [n, answered, unanswered, _] =
        check_capgen("dns-failures", &path, &truth, &tmp.path().join("failures"));
    assert_eq!(
        [n, answered, unanswered],
        [122, 109, 13],
        "dns-failures' exchanges"
    );
    let rows = read_dns(&tmp.path().join("failures/dns.parquet"));
    let by_rcode = |c: &str| {
        rows.iter()
            .filter(|r| r.rcode.as_deref() == Some(c))
            .count()
    };
    assert_eq!(
        [
            by_rcode("NOERROR"),
            by_rcode("NXDOMAIN"),
            by_rcode("SERVFAIL")
        ],
        [66, 24, 19]
    );
    assert_eq!(rows.iter().filter(|r| r.outcome == "timeout").count(), 13);
    streamscope_testkit::say(
        "dns: demo 7 exchanges, dns-failures 122 (66 NOERROR, 24 NXDOMAIN, 19 SERVFAIL, \
         13 unanswered) equal the truth",
    );
}

#[test]
fn testbed_lookups_are_rows_and_name_their_servers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut total = 0;
    for scenario in support::TESTBED {
        let out = tmp.path().join(scenario);
        let t = support::testbed(scenario, &out);
        let rows = read_dns(&out.join("dns.parquet"));
        let flows = read_flows(&out.join("flows.parquet"));
        // Queries per "client type name", as the lab's resolver logged them.
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.query_us.is_some()) {
            let flow = flows.iter().find(|f| f.0 == r.flow_id).expect("flow");
            let key = format!(
                "{} {} {}",
                flow.1,
                r.qtype.as_deref().unwrap_or("?"),
                r.name.as_deref().unwrap_or("?")
            );
            *got.entry(key).or_default() += 1 + r.retransmissions as u64;
        }
        let want: BTreeMap<String, u64> = t["dns"]["queries"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        assert_eq!(got, want, "{scenario}: queries by client, type and name");
        assert!(
            rows.iter().all(|r| r.rcode.as_deref() == Some("NOERROR")),
            "{scenario}: every lookup answered"
        );
        // Every TCP connection to a server the lab's DNS names, after a lookup of it by
        // that client, carries its name.
        let records = t["dns"]["records"].as_array().unwrap();
        for f in &flows {
            let Some(rec) = records
                .iter()
                .find(|r| r["ipv4"] == f.3.as_str() || r["ipv6"] == f.3.as_str())
            else {
                continue;
            };
            let looked_up = rows
                .iter()
                .any(|r| r.addresses.contains(&f.3) && r.response_us.is_some_and(|t| t <= f.5));
            if looked_up {
                total += 1;
                assert_eq!(
                    f.6.as_deref(),
                    rec["name"].as_str(),
                    "{scenario}: flow {} to {}",
                    f.0,
                    f.3
                );
            }
        }
    }
    assert!(total > 0, "no flow to a looked-up server");
    streamscope_testkit::say(&format!(
        "dns: testbed lookups equal the lab's log; {total} flows named"
    ));
}
