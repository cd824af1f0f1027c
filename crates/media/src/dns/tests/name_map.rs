//! The address → name map: lookups in time, history, bounds, compaction.

use super::*;

#[test]
fn name_map_lookup_in_time() {
    let mut m = NameMap::default();
    m.insert(10 * S, ip(1), "first.example", 60);
    m.insert(100 * S, ip(1), "second.example", 60);
    assert_eq!(m.lookup(ip(1), 9 * S), None); // before any answer
    assert_eq!(m.lookup(ip(1), 10 * S), Some("first.example"));
    assert_eq!(m.lookup(ip(1), 99 * S), Some("first.example")); // expired, the only one
    assert_eq!(m.lookup(ip(1), 100 * S), Some("second.example"));
    assert_eq!(m.lookup(ip(1), 10_000 * S), Some("second.example")); // expired long ago
    assert_eq!(m.lookup(ip(2), 100 * S), None);
}

#[test]
fn name_map_prefers_a_live_answer() {
    let mut m = NameMap::default();
    m.insert(0, ip(1), "long-lived.example", 3600);
    m.insert(10 * S, ip(1), "short-lived.example", 20);
    assert_eq!(m.lookup(ip(1), 20 * S), Some("short-lived.example"));
    // Past the short TTL the older answer is still live.
    assert_eq!(m.lookup(ip(1), 100 * S), Some("long-lived.example"));
    // Past both: the most recent.
    assert_eq!(m.lookup(ip(1), 4000 * S), Some("short-lived.example"));
}

#[test]
fn name_map_runs_history_and_order() {
    let mut m = NameMap::default();
    // The same name again extends its run.
    m.insert(0, ip(1), "a.example", 10);
    m.insert(50 * S, ip(1), "a.example", 10);
    assert_eq!(m.lookup(ip(1), 55 * S), Some("a.example"));
    // Five other names: the oldest runs fall out of the history of four.
    for (i, n) in ["b", "c", "d", "e"].iter().enumerate() {
        m.insert((100 + i as i64) * S, ip(1), &format!("{n}.example"), 1);
    }
    assert_eq!(m.lookup(ip(1), 60 * S), None);
    assert_eq!(m.lookup(ip(1), 101 * S), Some("c.example"));
    // An answer older than the newest (out of order) goes into the history.
    m.insert(102 * S + 1, ip(1), "late.example", 1);
    assert_eq!(m.lookup(ip(1), 102 * S + 2), Some("late.example"));
    assert_eq!(m.lookup(ip(1), 103 * S + 1), Some("e.example"));
}

#[test]
fn name_map_is_bounded() {
    let mut m = NameMap::new(64);
    for i in 0..1000u32 {
        let addr = IpAddr::V4(Ipv4Addr::from(i));
        m.insert(i64::from(i), addr, "x.example", 60);
        assert!(m.len() <= 64);
    }
    assert!(m.stats().evictions >= 1000 - 64);
    assert_eq!(m.stats().inserts, 1000);
    // The most recent addresses are kept.
    assert_eq!(
        m.lookup(IpAddr::V4(Ipv4Addr::from(999)), 1000),
        Some("x.example")
    );
    assert_eq!(m.lookup(IpAddr::V4(Ipv4Addr::from(0)), 1000), None);
}

/// Names no answer refers to any longer are dropped as the map goes (its names are kept
/// in one buffer that is compacted): every answer still held reads back its own name,
/// including names shared by the addresses of one response.
#[test]
fn name_map_keeps_its_names_through_compaction() {
    let mut m = NameMap::default();
    let addrs: Vec<IpAddr> = (0..=255).map(ip).collect();
    // 200,000 distinct 40-byte names (8 MB), each answered for two addresses at once.
    let name = |i: i64| format!("{i:0>10}.many-names.streamscope.example");
    for i in 0..200_000i64 {
        let a = addrs[(i % 256) as usize];
        let b = addrs[((i + 1) % 256) as usize];
        m.insert(i * S, a, &name(i), 3600);
        m.insert(i * S, b, &name(i), 3600);
    }
    // An address keeps its last four answers: those of the last two rounds.
    for i in 199_500..200_000i64 {
        let a = addrs[(i % 256) as usize];
        assert_eq!(m.lookup(a, i * S), Some(name(i).as_str()), "{i}");
    }
    let last = addrs[(199_999 % 256) as usize];
    assert_eq!(m.lookup(last, 300_000 * S), Some(name(199_999).as_str()));
    assert_eq!(m.stats().inserts, 400_000);
}

#[test]
fn name_map_from_rows_uses_the_question_name() {
    let addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    let q = query(7, "www.example.com", TYPE::AAAA);
    let r = response(
        7,
        "www.example.com",
        TYPE::AAAA,
        RCODE::NoError,
        vec![
            cname("www.example.com", 300, "edge.cdn.net"),
            aaaa("edge.cdn.net", 30, addr),
        ],
    );
    let nx = response(8, "gone.example", TYPE::A, RCODE::NameError, vec![]);
    let (rows, _) = udp(&[(C2S, 0, &q), (S2C, S, &r), (S2C, 2 * S, &nx)]);
    let mut m = NameMap::default();
    for row in &rows {
        m.insert_row(row);
    }
    assert_eq!(m.len(), 1);
    assert_eq!(m.lookup(IpAddr::V6(addr), 2 * S), Some("www.example.com"));
}
