//! DNS over TCP: length-prefixed messages across segments, gaps, resynchronisation.

use super::*;

#[test]
fn tcp_message_split_across_three_segments() {
    let q = framed(&[&QUERY]);
    let r = framed(&[&RESPONSE]);
    let (rows, stats) = tcp(&[
        (C2S, 0, &q),
        (S2C, MS, &r[..1]), // half the length prefix
        (S2C, 2 * MS, &r[1..30]),
        (S2C, 3 * MS, &r[30..]),
    ]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, Outcome::Answered);
    assert_eq!(rows[0].response_ts_ns, Some(3 * MS)); // the completing segment's time
    assert_eq!(rows[0].addresses.len(), 2);
    assert_eq!(stats.malformed(), 0);
}

#[test]
fn tcp_two_messages_in_one_segment() {
    let q2 = query(0x4321, "second.example", TYPE::AAAA);
    let r2 = response(
        0x4321,
        "second.example",
        TYPE::AAAA,
        RCODE::NameError,
        vec![],
    );
    let queries = framed(&[&QUERY, &q2]);
    let responses = framed(&[&RESPONSE, &r2]);
    // The responses' segment boundary falls inside the second message.
    let cut = responses.len() - 7;
    let (rows, stats) = tcp(&[
        (C2S, 0, &queries),
        (S2C, MS, &responses[..cut]),
        (S2C, 2 * MS, &responses[cut..]),
    ]);
    let got: Vec<(u16, Option<u8>, Option<i64>)> = rows
        .iter()
        .map(|r| (r.id, r.rcode, r.response_ts_ns))
        .collect();
    assert_eq!(
        got,
        [(0x1234, Some(0), Some(MS)), (0x4321, Some(3), Some(2 * MS))]
    );
    assert_eq!((stats.queries, stats.responses), (2, 2));
}

#[test]
fn tcp_gap_drops_the_partial_message_and_resynchronises() {
    let q2 = query(0x0bad, "after.example", TYPE::A);
    let r2 = response(0x0bad, "after.example", TYPE::A, RCODE::NoError, vec![]);
    let responses = framed(&[&RESPONSE]);
    let (rows, stats) = tcp(&[
        (C2S, 0, &framed(&[&QUERY, &q2])),
        (S2C, MS, &responses[..20]),
        (S2C, 2 * MS, &[]), // gap: the rest of the first response is lost
        (S2C, 3 * MS, &responses[40..]), // the bytes after the gap: mid-message, skipped
        (S2C, 4 * MS, &framed(&[&r2])), // starts like a message: read
    ]);
    let got: Vec<(u16, Outcome)> = rows.iter().map(|r| (r.id, r.outcome)).collect();
    assert_eq!(
        got,
        [(0x0bad, Outcome::Answered), (0x1234, Outcome::FlowEnd)]
    );
    assert_eq!(
        (stats.tcp_gaps, stats.tcp_incomplete, stats.tcp_resyncs),
        (1, 1, 1)
    );
}

#[test]
fn tcp_picked_up_mid_connection() {
    // The caller reports a gap before a direction's first bytes when the handshake was
    // not captured: the tail of a message is skipped, the next message start is read.
    let responses = framed(&[&RESPONSE]);
    let (rows, stats) = tcp(&[
        (S2C, 0, &[]),
        (S2C, MS, &responses[30..]),
        (S2C, 2 * MS, &responses),
    ]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, Outcome::ResponseOnly);
    assert_eq!(rows[0].response_ts_ns, Some(2 * MS));
    assert_eq!(
        (stats.tcp_gaps, stats.tcp_incomplete, stats.tcp_resyncs),
        (1, 0, 1)
    );
    assert_eq!(stats.malformed(), 0);
}

#[test]
fn tcp_bad_length_prefix_loses_the_framing() {
    let mut bytes = vec![0, 5, 1, 2, 3, 4, 5];
    bytes.extend_from_slice(&framed(&[&QUERY])); // not read: same call
    let (rows, stats) = tcp(&[
        (C2S, 0, &bytes),
        (C2S, 1, &framed(&[&QUERY])), // a new call that starts like a message
    ]);
    assert_eq!(rows.len(), 1);
    assert_eq!(stats.bad_length_prefix, 1);
    assert_eq!(stats.tcp_resyncs, 1);
    assert_eq!(stats.queries, 1);
}

#[test]
fn tcp_message_cut_by_the_flow_end() {
    let r = framed(&[&RESPONSE]);
    let (rows, stats) = tcp(&[(S2C, 0, &r[..30])]);
    assert!(rows.is_empty());
    assert_eq!(stats.tcp_incomplete, 1);
}
