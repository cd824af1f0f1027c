//! Unit tests with hand-built RTP and RTCP packets.

use proptest::prelude::*;

use super::{
    is_mpeg_ts_payload, static_clock_rate, ClockRateSource, Dir, RtpConfig, RtpFlow, RtpOutcome,
    RtpStreamSummary,
};

const UP: Dir = Dir::Up;
const DOWN: Dir = Dir::Down;
const MS: i64 = 1_000_000;
const SSRC: u32 = 0x1234_5678;

/// An RTP packet: fixed header and `payload`.
fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0x80, (u8::from(marker) << 7) | pt];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

/// A PCMU packet (PT 0, 8 kHz) with a 160-byte payload.
fn pcmu(seq: u16, ts: u32) -> Vec<u8> {
    rtp(0, false, seq, ts, SSRC, &[0xff; 160])
}

fn flow() -> RtpFlow {
    RtpFlow::new(RtpConfig::default())
}

/// Feeds `(arrival ns, seq, timestamp)` as PCMU upstream; returns the only stream.
fn run(packets: &[(i64, u16, u32)]) -> RtpStreamSummary {
    let mut f = flow();
    for &(t, seq, ts) in packets {
        f.on_datagram(UP, t, &pcmu(seq, ts));
    }
    let streams: Vec<_> = f.streams().collect();
    assert_eq!(streams.len(), 1, "{streams:?}");
    streams[0]
}

/// Packets with the given sequence numbers, 20 ms and 160 units apart by index.
fn seqs(list: &[u16]) -> Vec<(i64, u16, u32)> {
    list.iter()
        .enumerate()
        .map(|(i, &s)| (i as i64 * 20 * MS, s, 160 * u32::from(s)))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn one_stray_packet_is_not_a_stream() {
    let mut f = flow();
    let first = pcmu(100, 0);
    let out = f.on_datagram(UP, 0, &first);
    assert!(matches!(
        out,
        RtpOutcome::Media {
            confirmed: false,
            ..
        }
    ));
    assert_eq!(f.streams().count(), 0);
    assert_eq!(f.stats().held, 1);
    // A packet of the same source that does not follow it: still on probation.
    f.on_datagram(UP, 20 * MS, &pcmu(102, 320));
    assert_eq!(f.streams().count(), 0);
    f.finish(40 * MS);
    assert_eq!(f.stats().held, 0);
    assert_eq!(f.stats().discarded, 2);
}

#[test]
fn probation_counts_from_the_first_packet() {
    let mut f = flow();
    f.on_datagram(UP, 0, &pcmu(100, 0));
    let second = pcmu(101, 160);
    let out = f.on_datagram(UP, 20 * MS, &second);
    assert!(matches!(
        out,
        RtpOutcome::Media {
            confirmed: true,
            ssrc: SSRC,
            ..
        }
    ));
    let s: Vec<_> = f.streams().collect();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].packets, 2);
    assert_eq!(s[0].first_ts_ns, 0);
    assert_eq!(s[0].expected, 2);
    assert_eq!(s[0].lost, 0);
    assert_eq!(s[0].clock_rate, Some(8000));
    assert_eq!(s[0].clock_rate_source, ClockRateSource::Static);
    assert_eq!(f.stats().held, 0);
    assert!(f.is_rtp(UP));
    assert!(!f.is_rtp(DOWN));
}

#[test]
fn probation_replays_earlier_packets_of_the_source() {
    // 10, then 50 (not consecutive: probation restarts), then 51 confirms. All three
    // count, as Wireshark counts them: 10..=51 expected, 3 received.
    let s = run(&seqs(&[10, 50, 51]));
    assert_eq!(s.packets, 3);
    assert_eq!(s.expected, 42);
    assert_eq!(s.lost, 39);
}

#[test]
fn sequence_wraps_around() {
    let list: Vec<u16> = (65530..=65535).chain(0..6).collect();
    let s = run(&seqs(&list));
    assert_eq!(s.packets, 12);
    assert_eq!(s.expected, 12);
    assert_eq!(s.lost, 0);
    assert_eq!(s.seq_errors, 0);
    assert_eq!(s.duplicates + s.reordered, 0);
}

#[test]
fn loss_is_counted_across_a_wrap() {
    // 65534, 65535, [0 lost], 1, 2, [3, 4 lost], 5.
    let s = run(&seqs(&[65534, 65535, 1, 2, 5]));
    assert_eq!(s.packets, 5);
    assert_eq!(s.expected, 8);
    assert_eq!(s.lost, 3);
}

#[test]
fn duplicates_make_loss_negative() {
    let s = run(&seqs(&[1, 2, 3, 3, 4, 2]));
    assert_eq!(s.packets, 6);
    assert_eq!(s.duplicates, 2);
    assert_eq!(s.reordered, 0);
    assert_eq!(s.expected, 4);
    assert_eq!(s.lost, -2);
}

#[test]
fn reordered_packets_are_not_lost() {
    let s = run(&seqs(&[1, 2, 4, 3, 5, 7, 6]));
    assert_eq!(s.packets, 7);
    assert_eq!(s.reordered, 2);
    assert_eq!(s.duplicates, 0);
    assert_eq!(s.lost, 0);
    // A late packet arriving twice is a duplicate the second time.
    let s = run(&seqs(&[1, 2, 4, 3, 3, 5]));
    assert_eq!((s.reordered, s.duplicates, s.lost), (1, 1, -1));
}

#[test]
fn big_jump_resyncs_on_two_sequential_packets() {
    // 1..=5, then the source restarts at 5000: the first is a sequence error, the second
    // resyncs; the new epoch starts at 5000.
    let s = run(&seqs(&[1, 2, 3, 4, 5, 5000, 5001, 5002]));
    assert_eq!(s.packets, 8);
    assert_eq!(s.seq_errors, 1);
    assert_eq!(s.resyncs, 1);
    assert_eq!(s.expected, 5 + 3);
    assert_eq!(s.lost, 0);
}

#[test]
fn a_stray_jump_does_not_move_the_highest() {
    // 9000 is a sequence error not followed: the stream goes on from 5.
    let s = run(&seqs(&[1, 2, 3, 4, 5, 9000, 6, 7]));
    assert_eq!(s.packets, 8);
    assert_eq!(s.seq_errors, 1);
    assert_eq!(s.resyncs, 0);
    assert_eq!(s.expected, 7);
    assert_eq!(s.lost, -1);
    // Back by more than MAX_MISORDER is an error too.
    let s = run(&seqs(&[1000, 1001, 1002, 800, 1003]));
    assert_eq!((s.seq_errors, s.reordered, s.expected), (1, 0, 4));
}

/// 8 kHz, 160 units (20 ms) per packet; odd packets arrive 1 ms late: |D| = 1 ms for
/// every packet after the first, so J_k = 1 − (15/16)^k ms.
#[test]
fn jitter_of_a_constant_rate_stream() {
    let packets: Vec<_> = (0..4u16)
        .map(|i| {
            let late = if i % 2 == 1 { MS } else { 0 };
            (i64::from(i) * 20 * MS + late, i, 160 * u32::from(i))
        })
        .collect();
    let s = run(&packets);
    // J1 = 1/16, J2 = 31/256, J3 = 721/4096.
    let j3 = 721.0 / 4096.0;
    assert!(close(s.jitter_ms.unwrap(), j3), "{:?}", s.jitter_ms);
    assert!(close(s.max_jitter_ms.unwrap(), j3));
    // Wireshark's running mean over packets 2..4: (1/16 + 31/256 + 721/4096) / 3.
    let mean = (1.0 / 16.0 + 31.0 / 256.0 + 721.0 / 4096.0) / 3.0;
    assert!(
        close(s.mean_jitter_ms.unwrap(), mean),
        "{:?}",
        s.mean_jitter_ms
    );
    // Deltas: 21, 19, 21 ms.
    assert!(close(s.max_delta_ms.unwrap(), 21.0));
    assert!(close(s.max_gap_ms.unwrap(), 21.0));
}

/// Transit decreasing: every packet arrives 1 ms earlier relative to its timestamp than
/// the one before (D = −1 ms). In unsigned arithmetic D would wrap to a huge value.
#[test]
fn jitter_with_decreasing_transit_is_signed() {
    let packets: Vec<_> = (0..4u16)
        .map(|i| (i64::from(i) * 19 * MS, i, 160 * u32::from(i)))
        .collect();
    let s = run(&packets);
    assert!(
        close(s.jitter_ms.unwrap(), 721.0 / 4096.0),
        "{:?}",
        s.jitter_ms
    );
}

#[test]
fn jitter_across_a_timestamp_wrap_is_zero_for_perfect_timing() {
    let start = u32::MAX - 200;
    let packets: Vec<_> = (0..6u16)
        .map(|i| {
            (
                i64::from(i) * 20 * MS,
                i,
                start.wrapping_add(160 * u32::from(i)),
            )
        })
        .collect();
    let s = run(&packets);
    assert!(close(s.jitter_ms.unwrap(), 0.0), "{:?}", s.jitter_ms);
    assert!(close(s.max_jitter_ms.unwrap(), 0.0));
}

#[test]
fn marker_and_comfort_noise_packets_are_not_regular() {
    // Packet 2 has the marker after a 100 ms silence: no max delta from it.
    let mut f = flow();
    f.on_datagram(UP, 0, &pcmu(1, 0));
    f.on_datagram(UP, 20 * MS, &pcmu(2, 160));
    f.on_datagram(UP, 120 * MS, &rtp(0, true, 3, 960, SSRC, &[0; 160]));
    f.on_datagram(UP, 140 * MS, &pcmu(4, 1120));
    let s = f.streams().next().unwrap();
    assert!(close(s.max_delta_ms.unwrap(), 20.0));
    assert!(close(s.max_gap_ms.unwrap(), 100.0));
    assert_eq!(s.markers, 1);
}

#[test]
fn rtcp_is_not_taken_for_rtp() {
    // SR (no report blocks) + SDES with a CNAME, then RRs from the same SSRC.
    let mut sr = vec![0x80, 200, 0x00, 0x06];
    sr.extend_from_slice(&SSRC.to_be_bytes());
    sr.extend_from_slice(&[0; 8]); // NTP
    sr.extend_from_slice(&1000u32.to_be_bytes()); // RTP ts
    sr.extend_from_slice(&50u32.to_be_bytes()); // packets
    sr.extend_from_slice(&8000u32.to_be_bytes()); // octets
    let mut sdes = vec![0x81, 202, 0x00, 0x02];
    sdes.extend_from_slice(&SSRC.to_be_bytes());
    sdes.extend_from_slice(&[1, 1, b'x', 0]);
    let compound = [sr.clone(), sdes].concat();
    let mut f = flow();
    for i in 0..20 {
        assert_eq!(f.on_datagram(UP, i * MS, &compound), RtpOutcome::Rtcp);
    }
    let rr = [0x80, 201, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78];
    assert_eq!(f.on_datagram(UP, 30 * MS, &rr), RtpOutcome::Rtcp);
    assert_eq!(f.streams().count(), 0);
    assert_eq!(f.stats().rtcp_compounds, 21);
    assert_eq!(
        (f.stats().rtcp_sr, f.stats().rtcp_sdes, f.stats().rtcp_rr),
        (20, 20, 1)
    );
    assert!(!f.gave_up(UP));
    // A length that does not add up: neither RTCP nor RTP.
    let bad = [0x80, 200, 0x00, 0x09, 0, 0, 0, 0];
    assert_eq!(f.on_datagram(UP, 40 * MS, &bad), RtpOutcome::NotRtp);
    assert_eq!(f.stats().bad_rtcp, 1);
    // RTP payload types 72..=76 with the marker are RTCP's 200..=204.
    let clash = rtp(72, true, 1, 0, SSRC, &[0; 20]);
    assert_ne!(
        f.on_datagram(UP, 50 * MS, &clash),
        RtpOutcome::Media {
            ssrc: SSRC,
            payload: &[0; 20],
            mpeg_ts: false,
            confirmed: false
        }
    );
}

#[test]
fn rtcp_reports_attach_to_the_stream() {
    let mut f = flow();
    f.on_datagram(UP, 0, &pcmu(1, 0));
    f.on_datagram(UP, 20 * MS, &pcmu(2, 160));
    let mut sr = vec![0x80, 200, 0x00, 0x06];
    sr.extend_from_slice(&SSRC.to_be_bytes());
    sr.extend_from_slice(&[0; 12]);
    sr.extend_from_slice(&2u32.to_be_bytes());
    sr.extend_from_slice(&320u32.to_be_bytes());
    assert_eq!(f.on_datagram(UP, 30 * MS, &sr), RtpOutcome::Rtcp);
    // An RR from the other side with a block about SSRC: 1/4 lost, cumulative -3
    // (24-bit signed), jitter 80 units (10 ms at 8 kHz).
    let mut rr = vec![0x81, 201, 0x00, 0x07, 0, 0, 0, 9];
    rr.extend_from_slice(&SSRC.to_be_bytes());
    rr.extend_from_slice(&[64, 0xff, 0xff, 0xfd]);
    rr.extend_from_slice(&2u32.to_be_bytes());
    rr.extend_from_slice(&80u32.to_be_bytes());
    rr.extend_from_slice(&[0; 8]);
    assert_eq!(f.on_datagram(DOWN, 40 * MS, &rr), RtpOutcome::Rtcp);
    let s = f.streams().next().unwrap();
    let sender = s.sender_report.unwrap();
    assert_eq!((sender.packets, sender.octets), (2, 320));
    let r = s.receiver_report.unwrap();
    assert_eq!(r.reporter, 9);
    assert!(close(r.fraction_lost, 0.25));
    assert_eq!(r.cumulative_lost, -3);
    assert_eq!(r.jitter, 80);
    assert!(close(r.jitter_ms.unwrap(), 10.0));
}

/// A small deterministic generator for the "random traffic" tests.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u8
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next()).collect()
    }
}

#[test]
fn random_payloads_are_never_confirmed() {
    let mut g = Lcg(7);
    let mut f = flow();
    for i in 0..1000 {
        let n = 20 + usize::from(g.next());
        let mut b = g.bytes(n);
        // Version 2 and no padding, so most are candidates.
        b[0] = 0x80 | (b[0] & 0x1f & !0x10);
        f.on_datagram(UP, i * MS, &b);
    }
    assert_eq!(f.streams().count(), 0);
    assert!(f.gave_up(UP));
    assert_eq!(f.stats().held, 0);
    assert_eq!(f.on_datagram(UP, 0, &pcmu(1, 0)), RtpOutcome::Ignored);
}

#[test]
fn quic_like_datagrams_give_up() {
    let mut g = Lcg(11);
    let mut f = flow();
    for i in 0..200 {
        let mut b = g.bytes(1200);
        // Long header (0xc0..) for the first, short header (0x40..0x7f) after.
        b[0] = if i < 4 {
            0xc0 | (b[0] & 0x3f)
        } else {
            0x40 | (b[0] & 0x3f)
        };
        assert_ne!(
            std::mem::discriminant(&f.on_datagram(UP, i * MS, &b)),
            std::mem::discriminant(&RtpOutcome::Rtcp)
        );
    }
    assert_eq!(f.streams().count(), 0);
    assert!(f.gave_up(UP));
    assert_eq!(f.stats().bad_version, 64);
}

#[test]
fn dns_like_datagrams_are_never_confirmed() {
    // Responses with ids 0x80xx: the flags (0x8180) land in the sequence number, which
    // never advances.
    let mut f = flow();
    for i in 0..40u16 {
        let mut b = vec![0x80, i as u8, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        b.extend_from_slice(&[3, b'w', b'w', b'w', 0, 0, 1, 0, 1]);
        f.on_datagram(DOWN, i64::from(i) * MS, &b);
    }
    assert_eq!(f.streams().count(), 0);
    assert!(f.gave_up(DOWN));
}

#[test]
fn mpeg_ts_payload_is_handed_back() {
    let mut ts = vec![0u8; 7 * 188];
    for p in ts.chunks_mut(188) {
        p[0] = 0x47;
    }
    assert!(is_mpeg_ts_payload(&ts));
    assert!(!is_mpeg_ts_payload(&ts[..187]));
    let mut f = flow();
    // PT 33 with one CSRC, a one-word header extension and 3 bytes of padding.
    let build = |seq: u16| {
        let mut b = vec![0x80 | 0x20 | 0x10 | 1, 33];
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
        b.extend_from_slice(&SSRC.to_be_bytes());
        b.extend_from_slice(&[0xaa; 4]); // CSRC
        b.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 1, 2, 3, 4]); // extension
        b.extend_from_slice(&ts);
        b.extend_from_slice(&[0, 0, 3]); // padding
        b
    };
    let first = build(1);
    let out = f.on_datagram(UP, 0, &first);
    assert_eq!(out.mpeg_ts(), None, "unconfirmed");
    let second = build(2);
    let out = f.on_datagram(UP, MS, &second);
    assert_eq!(out.mpeg_ts(), Some(&ts[..]));
    let s = f.streams().next().unwrap();
    assert_eq!(s.mpeg_ts_packets, 2);
    assert_eq!(s.payload_bytes, 2 * 1316);
    assert_eq!(s.clock_rate, Some(90000));
    // A plain payload of TS packets under a dynamic type is TS too; a bad padding count
    // is not RTP.
    let dynamic = rtp(96, false, 5, 0, 1, &ts);
    assert!(matches!(
        f.on_datagram(DOWN, 0, &dynamic),
        RtpOutcome::Media { mpeg_ts: true, .. }
    ));
    let mut bad = rtp(96, false, 6, 0, 1, &[1, 2, 3]);
    bad[0] |= 0x20;
    *bad.last_mut().unwrap() = 200;
    assert_eq!(f.on_datagram(DOWN, 0, &bad), RtpOutcome::NotRtp);
    assert_eq!(f.stats().bad_padding, 1);
}

#[test]
fn dynamic_clock_rate_is_estimated() {
    // PT 96 at 90 kHz: 3000 units per 33.3 ms over 2 s.
    let mut f = flow();
    for i in 0..60u16 {
        let t = i64::from(i) * 100 * MS / 3;
        f.on_datagram(
            UP,
            t,
            &rtp(96, false, i, 3000 * u32::from(i), SSRC, &[0; 100]),
        );
    }
    let s = f.streams().next().unwrap();
    assert_eq!(s.clock_rate, Some(90000));
    assert_eq!(s.clock_rate_source, ClockRateSource::Estimated);
    assert!(s.jitter_ms.unwrap() < 0.001, "{:?}", s.jitter_ms);
    // Too short to estimate: unknown, no jitter.
    let mut f = flow();
    for i in 0..5u16 {
        f.on_datagram(
            UP,
            i64::from(i) * 20 * MS,
            &rtp(111, false, i, 960 * u32::from(i), SSRC, &[0; 50]),
        );
    }
    let s = f.streams().next().unwrap();
    assert_eq!(s.clock_rate_source, ClockRateSource::Unknown);
    assert_eq!(
        (s.clock_rate, s.jitter_ms, s.mean_jitter_ms),
        (None, None, None)
    );
    assert!(s.max_delta_ms.is_some());
}

#[test]
fn interval_counters_restart() {
    let mut f = flow();
    for &(t, seq, ts) in &seqs(&[1, 2, 3, 5, 5]) {
        f.on_datagram(UP, t, &pcmu(seq, ts));
    }
    let a = f.take_interval();
    assert_eq!((a.packets, a.lost, a.duplicates, a.reordered), (5, 0, 1, 0));
    for &(t, seq, ts) in &seqs(&[4, 8, 9]) {
        f.on_datagram(UP, t + 200 * MS, &pcmu(seq, ts));
    }
    let b = f.take_interval();
    // 6..=9 expected (4), 3 received; the late 4 is reordered.
    assert_eq!((b.packets, b.lost, b.duplicates, b.reordered), (3, 1, 0, 1));
    assert!(b.max_jitter_ms.is_some());
    assert_eq!(f.take_interval().packets, 0);
}

#[test]
fn streams_are_bounded_per_direction() {
    let mut f = RtpFlow::new(RtpConfig {
        max_streams_per_dir: 2,
        ..RtpConfig::default()
    });
    for ssrc in 1..=3u32 {
        for seq in 0..3u16 {
            f.on_datagram(UP, 0, &rtp(0, false, seq, 0, ssrc, &[0; 10]));
        }
    }
    assert_eq!(f.streams().count(), 2);
    assert_eq!(f.stats().untracked, 2);
    // The other direction has its own bound.
    f.on_datagram(DOWN, 0, &rtp(0, false, 0, 0, 9, &[0; 10]));
    f.on_datagram(DOWN, 0, &rtp(0, false, 1, 0, 9, &[0; 10]));
    assert_eq!(f.streams().count(), 3);
}

#[test]
fn two_sources_in_one_direction() {
    // Interleaved, as an audio stream and its telephone events.
    let mut f = flow();
    f.on_datagram(UP, 0, &rtp(0, false, 10, 0, 1, &[0; 10]));
    f.on_datagram(UP, MS, &rtp(101, false, 500, 0, 2, &[0; 4]));
    f.on_datagram(UP, 2 * MS, &rtp(0, false, 11, 160, 1, &[0; 10]));
    f.on_datagram(UP, 3 * MS, &rtp(101, false, 501, 0, 2, &[0; 4]));
    let s: Vec<_> = f.streams().collect();
    assert_eq!(s.len(), 2);
    assert_eq!((s[0].ssrc, s[0].packets), (1, 2));
    assert_eq!((s[1].ssrc, s[1].packets), (2, 2));
    assert!(s[1].payload_types.contains(101));
}

#[test]
fn static_clock_rates() {
    assert_eq!(static_clock_rate(0), Some(8000));
    assert_eq!(static_clock_rate(8), Some(8000));
    assert_eq!(static_clock_rate(9), Some(8000));
    assert_eq!(static_clock_rate(18), Some(8000));
    assert_eq!(static_clock_rate(26), Some(90000));
    assert_eq!(static_clock_rate(33), Some(90000));
    assert_eq!(static_clock_rate(34), Some(90000));
    assert_eq!(static_clock_rate(10), Some(44100));
    assert_eq!(static_clock_rate(20), None);
    assert_eq!(static_clock_rate(96), None);
}

proptest! {
    #[test]
    fn arbitrary_datagrams_never_panic(msgs in prop::collection::vec(
        (any::<bool>(), 0i64..10_000_000_000, prop::collection::vec(any::<u8>(), 0..300)),
        0..40,
    )) {
        let mut f = RtpFlow::new(RtpConfig { max_streams_per_dir: 2, ..RtpConfig::default() });
        for (up, ts, bytes) in &msgs {
            let dir = if *up { UP } else { DOWN };
            f.on_datagram(dir, *ts, bytes);
        }
        f.take_interval();
        f.finish(10_000_000_000);
        for s in f.streams() {
            prop_assert_eq!(s.lost, s.expected - s.packets as i64);
        }
    }

    #[test]
    fn arbitrary_rtp_sequences_keep_their_invariants(pkts in prop::collection::vec(
        (0u16..8, any::<u16>(), any::<u32>(), 0u8..128, any::<bool>(), 0i64..1_000_000_000),
        0..200,
    )) {
        let mut f = flow();
        let mut interval_packets = 0;
        let mut interval_lost = 0;
        for (i, &(ssrc, seq, ts, pt, m, t)) in pkts.iter().enumerate() {
            let b = rtp(pt, m, seq, ts, u32::from(ssrc), &[0; 8]);
            f.on_datagram(if i % 3 == 0 { DOWN } else { UP }, t, &b);
            if i % 17 == 0 {
                let iv = f.take_interval();
                interval_packets += iv.packets;
                interval_lost += iv.lost;
            }
        }
        let iv = f.take_interval();
        interval_packets += iv.packets;
        interval_lost += iv.lost;
        let streams: Vec<_> = f.streams().collect();
        prop_assert_eq!(interval_packets, streams.iter().map(|s| s.packets).sum::<u64>());
        prop_assert_eq!(interval_lost, streams.iter().map(|s| s.lost).sum::<i64>());
        prop_assert_eq!(f.stats().rtp_packets, interval_packets);
        for s in &streams {
            prop_assert!(s.duplicates + s.reordered < s.packets);
            prop_assert!(s.jitter_ms.is_none_or(|j| j.is_finite() && j >= 0.0));
        }
    }
}
