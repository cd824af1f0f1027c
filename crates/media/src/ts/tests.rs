//! Unit tests of the TS analyser with hand-built packets.

use proptest::prelude::*;

use super::*;

const MS: i64 = 1_000_000;

/// A packet to build.
#[derive(Clone, Debug, Default)]
struct P {
    pid: u16,
    cc: u8,
    pusi: bool,
    /// adaptation_field_control 10 (no payload) when false.
    payload: bool,
    af: bool,
    disc: bool,
    pcr: Option<u64>,
    tei: bool,
    scrambling: u8,
    data: Vec<u8>,
}

impl P {
    fn new(pid: u16, cc: u8) -> P {
        P {
            pid,
            cc,
            payload: true,
            ..P::default()
        }
    }

    fn build(&self) -> [u8; 188] {
        let mut b = [0xffu8; 188];
        b[0] = 0x47;
        b[1] = u8::from(self.tei) << 7 | u8::from(self.pusi) << 6 | (self.pid >> 8) as u8 & 0x1f;
        b[2] = self.pid as u8;
        let af = self.af || self.disc || self.pcr.is_some() || !self.payload;
        let afc = u8::from(af) << 1 | u8::from(self.payload);
        b[3] = self.scrambling << 6 | afc << 4 | (self.cc & 0x0f);
        let mut at = 4;
        if af {
            let data_len = if self.payload {
                self.data.len().min(182)
            } else {
                0
            };
            let af_len = 183 - data_len;
            b[4] = af_len as u8;
            if af_len > 0 {
                b[5] = u8::from(self.disc) << 7 | u8::from(self.pcr.is_some()) << 4;
                if let Some(pcr) = self.pcr {
                    let base = pcr / 300;
                    let ext = pcr % 300;
                    b[6] = (base >> 25) as u8;
                    b[7] = (base >> 17) as u8;
                    b[8] = (base >> 9) as u8;
                    b[9] = (base >> 1) as u8;
                    b[10] = ((base & 1) << 7) as u8 | 0x7e | (ext >> 8) as u8;
                    b[11] = ext as u8;
                }
            }
            at = 5 + af_len;
        }
        if self.payload {
            let n = self.data.len().min(188 - at);
            b[at..at + n].copy_from_slice(&self.data[..n]);
        }
        b
    }
}

fn crc(data: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_MPEG_2).checksum(data)
}

fn with_crc(mut s: Vec<u8>) -> Vec<u8> {
    let c = crc(&s);
    s.extend_from_slice(&c.to_be_bytes());
    s
}

fn long_section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    let len = 5 + body.len() + 4;
    let mut s = vec![
        table_id,
        0xb0 | (len >> 8) as u8,
        len as u8,
        (id >> 8) as u8,
        id as u8,
        0xc1,
        0,
        0,
    ];
    s.extend_from_slice(body);
    with_crc(s)
}

fn pat(programs: &[(u16, u16)]) -> Vec<u8> {
    let mut body = Vec::new();
    for &(n, pid) in programs {
        body.extend_from_slice(&n.to_be_bytes());
        body.extend_from_slice(&(0xe000 | pid).to_be_bytes());
    }
    long_section(0, 1, &body)
}

fn pmt(program: u16, pcr_pid: u16, streams: &[(u8, u16, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(0xe000 | pcr_pid).to_be_bytes());
    body.extend_from_slice(&0xf000u16.to_be_bytes());
    for &(st, pid, desc) in streams {
        body.push(st);
        body.extend_from_slice(&(0xe000 | pid).to_be_bytes());
        body.extend_from_slice(&(0xf000 | desc.len() as u16).to_be_bytes());
        body.extend_from_slice(desc);
    }
    long_section(2, program, &body)
}

/// A section cut into packets (pointer_field 0 in the first), counters from `cc`.
fn section_packets(pid: u16, cc: u8, section: &[u8]) -> Vec<[u8; 188]> {
    let mut data = vec![0u8];
    data.extend_from_slice(section);
    data.chunks(184)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = P::new(pid, cc.wrapping_add(i as u8));
            p.pusi = i == 0;
            p.data = chunk.to_vec();
            p.build()
        })
        .collect()
}

fn feed(a: &mut TsAnalyzer, ts: i64, pkts: &[[u8; 188]]) {
    for p in pkts {
        assert!(a.on_datagram(ts, p));
    }
}

fn pid_row(a: &TsAnalyzer, pid: u16) -> PidSummary {
    a.pids().find(|p| p.pid == pid).expect("the PID")
}

fn ccs(pid: u16, seq: &[u8]) -> Vec<[u8; 188]> {
    seq.iter().map(|&c| P::new(pid, c).build()).collect()
}

#[test]
fn crc_mpeg2_check_value() {
    assert_eq!(psi::crc32(b"123456789"), 0x0376_e6e7);
}

#[test]
fn cc_in_order_wraps_without_error() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let seq: Vec<u8> = (0..40).map(|i| (i % 16) as u8).collect();
    feed(&mut a, 0, &ccs(0x100, &seq));
    let r = pid_row(&a, 0x100);
    assert_eq!(
        (r.packets, r.cc_errors, r.duplicates, r.lost_packets),
        (40, 0, 0, 0)
    );
    assert_eq!(a.tr101290().continuity_count_error, 0);
}

#[test]
fn cc_one_duplicate_is_allowed() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    feed(&mut a, 0, &ccs(0x100, &[3, 4, 4, 5, 6]));
    let r = pid_row(&a, 0x100);
    assert_eq!((r.cc_errors, r.duplicates, r.lost_packets), (0, 1, 0));
}

#[test]
fn cc_two_duplicates_are_an_error() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    feed(&mut a, 0, &ccs(0x100, &[3, 4, 4, 4, 5]));
    let r = pid_row(&a, 0x100);
    assert_eq!((r.cc_errors, r.duplicates), (1, 1));
    assert_eq!(a.tr101290().continuity_count_error, 1);
}

#[test]
fn cc_adaptation_only_does_not_advance() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let mut pk = ccs(0x100, &[7]);
    let mut af = P::new(0x100, 7);
    af.payload = false;
    pk.push(af.build());
    pk.push(af.build());
    pk.extend(ccs(0x100, &[8, 9]));
    // An AF-only packet that increments is an error, once (the next payload packet
    // continues from the payload counter).
    let mut bad = P::new(0x100, 10);
    bad.payload = false;
    pk.push(bad.build());
    pk.extend(ccs(0x100, &[10]));
    feed(&mut a, 0, &pk);
    let r = pid_row(&a, 0x100);
    assert_eq!((r.cc_errors, r.duplicates, r.lost_packets), (1, 0, 0));
}

#[test]
fn cc_discontinuity_indicator_is_honoured() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let mut pk = ccs(0x100, &[1, 2]);
    let mut d = P::new(0x100, 9);
    d.disc = true;
    pk.push(d.build());
    pk.extend(ccs(0x100, &[10, 11]));
    feed(&mut a, 0, &pk);
    assert_eq!(pid_row(&a, 0x100).cc_errors, 0);
    // Without the indicator the same jump is an error with 6 packets lost.
    let mut b = TsAnalyzer::new(TsConfig::default());
    feed(&mut b, 0, &ccs(0x100, &[1, 2, 9, 10]));
    let r = pid_row(&b, 0x100);
    assert_eq!((r.cc_errors, r.lost_packets), (1, 6));
}

#[test]
fn cc_gap_counts_lost_packets_and_mlr() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    // 0 1 [2 3 4 lost] 5 ... 14 15 [0 lost] 1
    feed(&mut a, 0, &ccs(0x100, &[0, 1, 5, 6, 15, 1]));
    let r = pid_row(&a, 0x100);
    assert_eq!((r.cc_errors, r.lost_packets), (3, 3 + 8 + 1));
    let bin = a.take_interval(2_000 * MS);
    assert_eq!(bin.lost_packets, 12);
    assert_eq!(bin.cc_errors, 3);
    assert!((bin.mlr_pps - 6.0).abs() < 1e-9, "{}", bin.mlr_pps);
    assert_eq!(a.summary().lost_packets, 12);
}

#[test]
fn null_pid_is_not_checked_and_shares_are_counted() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let mut pk = ccs(NULL_PID, &[0, 0, 5, 0]);
    pk.extend(ccs(0x100, &[0, 1, 2, 3]));
    feed(&mut a, 0, &pk);
    let s = a.summary();
    assert_eq!(s.tr101290.continuity_count_error, 0);
    assert_eq!((s.packets, s.null_packets), (8, 4));
    assert_eq!(s.null_share, Some(0.5));
    assert_eq!(pid_row(&a, NULL_PID).kind, "null");
}

#[test]
fn transport_error_and_scrambling_are_counted() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let mut t = P::new(0x100, 0);
    t.tei = true;
    let mut s1 = P::new(0x100, 0);
    s1.scrambling = 2;
    let mut s2 = P::new(0x100, 1);
    s2.scrambling = 3;
    feed(&mut a, 0, &[t.build(), s1.build(), s2.build()]);
    let r = pid_row(&a, 0x100);
    assert_eq!(
        (r.packets, r.transport_errors, r.scrambled, r.cc_errors),
        (3, 1, 2, 0)
    );
    assert_eq!(a.tr101290().transport_error, 1);
}

fn pcr_packet(pid: u16, cc: u8, pcr: u64, disc: bool) -> [u8; 188] {
    let mut p = P::new(pid, cc);
    p.pcr = Some(pcr);
    p.disc = disc;
    p.build()
}

const TICKS_PER_MS: u64 = 27_000;

#[test]
fn pcr_repetition_error_by_capture_time() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    a.on_datagram(0, &pcr_packet(0x100, 0, 0, false));
    a.on_datagram(30 * MS, &pcr_packet(0x100, 1, 30 * TICKS_PER_MS, false));
    a.on_datagram(80 * MS, &pcr_packet(0x100, 2, 80 * TICKS_PER_MS, false));
    let r = pid_row(&a, 0x100);
    assert_eq!(r.pcr_count, 3);
    assert_eq!(r.pcr_repetition_errors, 1);
    assert_eq!(r.pcr_interval_min_ns, Some(30 * MS));
    assert_eq!(r.pcr_interval_max_ns, Some(50 * MS));
    assert_eq!(a.tr101290().pcr_repetition_error, 1);
    assert_eq!(a.tr101290().pcr_discontinuity_indicator_error, 0);
}

#[test]
fn pcr_discontinuity_errors_and_indicator() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let t = [0u64, 20, 240, 230, 250];
    for (i, &ms) in t.iter().enumerate() {
        a.on_datagram(
            i as i64 * 20 * MS,
            &pcr_packet(0x100, i as u8, ms * TICKS_PER_MS, false),
        );
    }
    // 20 → 240: jump of 220 ms; 240 → 230: backwards.
    assert_eq!(a.tr101290().pcr_discontinuity_indicator_error, 2);
    // The same jumps with the discontinuity_indicator set are no error.
    let mut b = TsAnalyzer::new(TsConfig::default());
    for (i, &ms) in t.iter().enumerate() {
        let disc = i == 2 || i == 3;
        b.on_datagram(
            i as i64 * 20 * MS,
            &pcr_packet(0x100, i as u8, ms * TICKS_PER_MS, disc),
        );
    }
    assert_eq!(b.tr101290().pcr_discontinuity_indicator_error, 0);
}

#[test]
fn pcr_wraps_at_2_pow_33() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let top = (1u64 << 33) * 300 - 10 * TICKS_PER_MS;
    a.on_datagram(0, &pcr_packet(0x100, 0, top, false));
    a.on_datagram(20 * MS, &pcr_packet(0x100, 1, 10 * TICKS_PER_MS, false));
    assert_eq!(a.tr101290().pcr_discontinuity_indicator_error, 0);
}

/// A constant-rate mux: PAT and PMT every 100 packets, video PID 0x100 with a PCR every
/// 10 packets, a null packet every 5; 3.76 Mb/s, so one packet = 400 µs = 10,800 ticks.
struct Cbr {
    n: u64,
    cc: [u8; 3],
    pat: Vec<u8>,
    pmt: Vec<u8>,
}

const CBR_BPS: f64 = 3_760_000.0;
const CBR_TICKS: u64 = 10_800;
const CBR_PACKET_NS: i64 = 400_000;

impl Cbr {
    fn new() -> Cbr {
        Cbr {
            n: 0,
            cc: [0; 3],
            pat: pat(&[(1, 0x1000)]),
            pmt: pmt(1, 0x100, &[(0x1b, 0x100, &[]), (0x0f, 0x101, &[])]),
        }
    }

    fn next(&mut self) -> [u8; 188] {
        let n = self.n;
        self.n += 1;
        let bump = |c: &mut u8| {
            let v = *c;
            *c = (v + 1) & 0x0f;
            v
        };
        match n % 100 {
            0 => section_packets(0, bump(&mut self.cc[0]), &self.pat)[0],
            1 => section_packets(0x1000, bump(&mut self.cc[1]), &self.pmt)[0],
            _ if n % 10 == 2 => pcr_packet(
                0x100,
                bump(&mut self.cc[2]),
                1_000_000 + n * CBR_TICKS,
                false,
            ),
            _ if n % 5 == 3 => P::new(NULL_PID, 0).build(),
            _ => P::new(0x100, bump(&mut self.cc[2])).build(),
        }
    }

    /// A datagram of 7 packets.
    fn datagram(&mut self) -> Vec<u8> {
        (0..7).flat_map(|_| self.next()).collect()
    }
}

#[test]
fn pcr_bitrate_is_exact_on_a_constant_rate_mux() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let mut m = Cbr::new();
    for i in 0..1000 {
        let d = m.datagram();
        assert!(a.on_datagram(i * 7 * CBR_PACKET_NS, &d));
    }
    let s = a.summary();
    let rate = s.bitrate_bps.expect("a rate");
    assert!((rate - CBR_BPS).abs() < 1e-6, "{rate}");
    assert_eq!(s.pcr_pid, Some(0x100));
    assert_eq!(pid_row(&a, 0x100).pcr_bitrate_bps, Some(rate));
    let tr = s.tr101290;
    assert_eq!(tr, Tr101290::default(), "{tr:?}");
    assert_eq!(s.programs, 1);
    assert_eq!(pid_row(&a, 0x100).kind, "h264");
    // PID 0x101 is named in the PMT and never seen: a PID_error once 5 s have passed
    // (the mux lasts 2.8 s).
    assert_eq!(pid_row(&a, 0x101).packets, 0);
}

#[test]
fn pid_error_when_a_referenced_pid_is_missing() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let mut m = Cbr::new();
    // 7 s of mux: 0x101 never appears.
    for i in 0..2500 {
        a.on_datagram(i * 7 * CBR_PACKET_NS, &m.datagram());
    }
    assert_eq!(a.tr101290().pid_error, 1);
}

#[test]
fn pcr_accuracy_error_on_a_displaced_pcr() {
    // A constant-rate multiplex: a PCR packet and nine null packets (stuffing) in turn;
    // the same with a payload PID instead of the stuffing has no constant rate to check
    // against (a variable-rate multiplex: its PCRs are not checked).
    for (filler, errors) in [(0x1fff, 2), (0x200, 0)] {
        let mut a = TsAnalyzer::new(TsConfig::default());
        let mut cc = 0u8;
        for i in 0..20u64 {
            let mut pcr = i * 10 * CBR_TICKS;
            if i == 12 {
                pcr += 27; // 1 µs off
            }
            a.on_datagram(
                i as i64 * 10 * CBR_PACKET_NS,
                &pcr_packet(0x100, cc, pcr, false),
            );
            cc = (cc + 1) & 0x0f;
            for _ in 0..9 {
                a.on_datagram(i as i64 * 10 * CBR_PACKET_NS, &P::new(filler, 0).build());
            }
        }
        // PCR 12 is late by 1 µs, and PCR 13 early by 1 µs relative to it.
        assert_eq!(
            a.tr101290().pcr_accuracy_error,
            errors,
            "filler {filler:#x}"
        );
    }
}

/// PCR jitter (module docs, "PCR"): capture time less PCR time, fitted by least squares
/// against PCR time, max − min of the residuals. Four PCRs 10 ms apart (x = 0, 10, 20,
/// 30 ms) arrive on time but for the second, 4 µs late: offsets e = 0, 4, 0, 0 µs.
/// By hand: x̄ = 15 ms, ē = 1 µs, Σ(x − x̄)(e − ē) = 15 − 15 − 5 − 15 = −20 ms·µs,
/// Σ(x − x̄)² = 500 ms², slope −0.04 µs/ms; the line gives 1.6, 1.2, 0.8, 0.4 µs, the
/// residuals −1.6, 2.8, −0.8, −0.4 µs: jitter 4.4 µs. A capture clock running 100 ppm
/// fast (a drift) changes nothing; the same arrivals on time give 0.
#[test]
fn pcr_jitter_is_the_residual_range_against_arrival_times() {
    let run = |late_ns: [i64; 4], ppm: i64| {
        let mut a = TsAnalyzer::new(TsConfig::default());
        let t0 = 5_000 * MS;
        for (i, late) in late_ns.into_iter().enumerate() {
            let x = i as i64 * 10 * MS;
            let pcr = 1_000_000 + i as u64 * 10 * TICKS_PER_MS;
            a.on_datagram(
                t0 + x + x * ppm / 1_000_000 + late,
                &pcr_packet(0x100, i as u8, pcr, false),
            );
        }
        // The window closes at the end of the stream (or when it spans 1 s).
        assert_eq!(a.summary().pcr_jitter_ns, None, "no window closed yet");
        a.finish(t0 + 40 * MS);
        a.summary()
    };
    let s = run([0, 4_000, 0, 0], 0);
    assert_eq!(s.pcr_jitter_ns, Some(4_400));
    assert_eq!(
        s.ts_resolution_ns, 1_000,
        "the default: a microsecond capture"
    );
    assert_eq!(run([0, 4_000, 0, 0], 100).pcr_jitter_ns, Some(4_400));
    assert_eq!(run([0; 4], 100).pcr_jitter_ns, Some(0));
    // The configured resolution is reported beside the figure.
    let a = TsAnalyzer::new(TsConfig {
        ts_resolution_ns: 1,
        ..TsConfig::default()
    });
    assert_eq!(a.summary().ts_resolution_ns, 1);
}

/// A window takes at most 1 s of PCR time: PCRs 100 ms apart, one 2 µs late in the first
/// second (points 0 to 10) and none in the next: the first window's residuals give the
/// stream's figure, and the interval's figure is the largest window closed in it.
#[test]
fn pcr_jitter_windows_span_one_second() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let t0 = 5_000 * MS;
    for i in 0..21i64 {
        let x = i * 100 * MS;
        let late = if i == 5 { 2_000 } else { 0 };
        let pcr = i as u64 * 100 * TICKS_PER_MS;
        a.on_datagram(
            t0 + x + late,
            &pcr_packet(0x100, (i % 16) as u8, pcr, false),
        );
    }
    // PCR 11 (1.1 s after the window's first) closed the first window: points 0..=10,
    // x = 0..1000 ms. One late point at the middle of a symmetric window: the slope is 0,
    // the mean 2/11 µs, residuals 2 − 2/11 and −2/11 µs: 2 µs.
    assert_eq!(a.summary().pcr_jitter_ns, Some(2_000));
    a.finish(t0 + 2_100 * MS);
    // The second window (PCRs 11..=20) is on time.
    assert_eq!(a.summary().pcr_jitter_ns, Some(2_000));
    assert_eq!(a.take_interval(t0 + 2_100 * MS).pcr_jitter_ns, Some(2_000));
}

#[test]
fn mdi_delay_factor_constant_and_bursty() {
    // Constant rate: a 7-packet datagram every 2.8 ms at 3.76 Mb/s. RFC 4445 samples the
    // virtual buffer before and after each arrival: DF = one datagram's drain time.
    let mut a = TsAnalyzer::new(TsConfig::default());
    let mut m = Cbr::new();
    let period = 7 * CBR_PACKET_NS;
    let mut t = 0;
    for _ in 0..100 {
        a.on_datagram(t, &m.datagram());
        t += period;
    }
    let warm = a.take_interval(t);
    assert_eq!(warm.packets, 700);
    for _ in 0..100 {
        a.on_datagram(t, &m.datagram());
        t += period;
    }
    let bin = a.take_interval(t);
    let df = bin.df_ms.expect("a DF");
    assert!((df - 2.8).abs() < 1e-6, "{df}");

    // Bursty: the same datagrams in pairs every 5.6 ms. From the bin's first arrival:
    // VB = 0 → 1316 → 2632 at t0, drains 2632 bytes in 5.6 ms, so back to 0 → 2632 at
    // the next pair: DF = 2632 B / 470 B/ms = 5.6 ms. One pair 2.8 ms late adds
    // 2.8 ms of drain below 0: VB min −1316, DF = (2632 + 1316) / 470 = 8.4 ms.
    let mut b = TsAnalyzer::new(TsConfig::default());
    let mut m = Cbr::new();
    let mut t = 0;
    for _ in 0..100 {
        b.on_datagram(t, &m.datagram());
        t += period;
    }
    b.take_interval(t);
    for _ in 0..50 {
        b.on_datagram(t, &m.datagram());
        b.on_datagram(t, &m.datagram());
        t += 2 * period;
    }
    let bin = b.take_interval(t);
    let df = bin.df_ms.expect("a DF");
    assert!((df - 5.6).abs() < 1e-6, "{df}");
    for k in 0..50 {
        let late = if k == 20 { period } else { 0 };
        b.on_datagram(t + late, &m.datagram());
        b.on_datagram(t + late, &m.datagram());
        t += 2 * period;
    }
    let bin = b.take_interval(t);
    let df = bin.df_ms.expect("a DF");
    assert!((df - 8.4).abs() < 1e-6, "{df}");
    assert!((b.summary().df_max_ms.expect("a max") - 8.4).abs() < 1e-6);
}

#[test]
fn mdi_is_null_before_a_rate_is_known() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    feed(&mut a, 0, &ccs(0x100, &[0, 1, 2]));
    assert_eq!(a.take_interval(MS).df_ms, None);
}

#[test]
fn pat_and_pmt_are_parsed_and_labelled() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let ac3 = [0x6a, 0x01, 0x00];
    let sub = [0x59, 0x08, b'e', b'n', b'g', 0x10, 0, 1, 0, 1];
    let pm = pmt(
        7,
        0x100,
        &[
            (0x02, 0x100, &[]),
            (0x06, 0x101, &ac3),
            (0x06, 0x102, &sub),
            (0x11, 0x103, &[]),
            (0x24, 0x104, &[]),
        ],
    );
    feed(
        &mut a,
        0,
        &section_packets(0, 0, &pat(&[(0, 0x10), (7, 0x1000)])),
    );
    feed(&mut a, 0, &section_packets(0x1000, 0, &pm));
    let progs: Vec<ProgramSummary> = a.programs().collect();
    assert_eq!(
        progs,
        vec![ProgramSummary {
            number: 7,
            pmt_pid: 0x1000,
            pcr_pid: Some(0x100),
            streams: 5
        }]
    );
    let kinds: Vec<(u16, &str, Option<u8>)> =
        a.pids().map(|p| (p.pid, p.kind, p.stream_type)).collect();
    assert_eq!(
        kinds,
        vec![
            (0, "pat", None),
            (0x1000, "pmt", None),
            (0x100, "mpeg2_video", Some(2)),
            (0x101, "ac3", Some(6)),
            (0x102, "dvb_subtitles", Some(6)),
            (0x103, "aac_latm", Some(0x11)),
            (0x104, "hevc", Some(0x24)),
        ]
    );
    assert_eq!(a.summary().sections, 2);
    assert_eq!(a.tr101290().crc_error, 0);
}

#[test]
fn pmt_section_spanning_two_packets() {
    let desc = [0x0a, 0x04, b'e', b'n', b'g', 0];
    let streams: Vec<(u8, u16, &[u8])> = (0..20).map(|i| (0x0f, 0x200 + i, &desc[..])).collect();
    let pm = pmt(1, 0x200, &streams);
    assert!(pm.len() > 183, "{}", pm.len());
    let pk = section_packets(0x1000, 0, &pm);
    assert_eq!(pk.len(), 2);
    let mut a = TsAnalyzer::new(TsConfig::default());
    feed(&mut a, 0, &section_packets(0, 0, &pat(&[(1, 0x1000)])));
    feed(&mut a, 0, &pk);
    assert_eq!(a.programs().next().map(|p| p.streams), Some(20));
    assert_eq!(pid_row(&a, 0x213).kind, "aac_adts");
    // With the second packet lost (counter gap), the section is dropped.
    let mut b = TsAnalyzer::new(TsConfig::default());
    feed(&mut b, 0, &section_packets(0, 0, &pat(&[(1, 0x1000)])));
    feed(&mut b, 0, &pk[..1]);
    let mut next = section_packets(0x1000, 2, &pm);
    next[0] = P::new(0x1000, 2).build(); // a continuation after a gap
    feed(&mut b, 0, &next[..1]);
    assert_eq!(b.programs().next().map(|p| p.streams), Some(0));
    assert_eq!(b.summary().bad_sections, 1);
}

#[test]
fn bad_crc_is_counted_and_not_read() {
    let mut s = pat(&[(1, 0x1000)]);
    s[9] ^= 0x01;
    let mut a = TsAnalyzer::new(TsConfig::default());
    feed(&mut a, 0, &section_packets(0, 0, &s));
    assert_eq!(a.tr101290().crc_error, 1);
    assert_eq!(a.programs().count(), 0);
}

#[test]
fn pat_error_2_on_absence_and_wrong_table_id() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let p = pat(&[(1, 0x1000)]);
    a.on_datagram(0, &section_packets(0, 0, &p)[0]);
    a.on_datagram(400 * MS, &section_packets(0, 1, &p)[0]);
    // 1.1 s without a PAT: errors at the first packet after 900 ms and after 1.45 s.
    for (i, t) in [600, 950, 1300, 1500].into_iter().enumerate() {
        a.on_datagram(t * MS, &P::new(0x100, i as u8).build());
    }
    assert_eq!(a.tr101290().pat_error_2, 2);
    // A table_id other than 0 on PID 0.
    let mut wrong = p.clone();
    wrong[0] = 0x42;
    let len = wrong.len();
    let c = crc(&wrong[..len - 4]);
    wrong[len - 4..].copy_from_slice(&c.to_be_bytes());
    a.on_datagram(1510 * MS, &section_packets(0, 2, &wrong)[0]);
    assert_eq!(a.tr101290().pat_error_2, 3);
    // PMT 0x1000 was named and never seen: PMT_error_2 too.
    assert!(a.tr101290().pmt_error_2 >= 2);
}

#[test]
fn pts_error_over_700_ms() {
    let pes = |pts: u64| {
        let mut d = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
        d.push(0x21 | ((pts >> 29) & 0x0e) as u8);
        d.push((pts >> 22) as u8);
        d.push(0x01 | ((pts >> 14) & 0xfe) as u8);
        d.push((pts >> 7) as u8);
        d.push(0x01 | ((pts << 1) & 0xfe) as u8);
        d
    };
    assert_eq!(packet::pes_pts(&pes(0x1_2345_6789)), Some(0x1_2345_6789));
    let mut a = TsAnalyzer::new(TsConfig::default());
    for (i, t) in [0i64, 500, 1300, 1400].into_iter().enumerate() {
        let mut p = P::new(0x100, i as u8);
        p.pusi = true;
        p.data = pes(t as u64 * 90);
        a.on_datagram(t * MS, &p.build());
    }
    assert_eq!(a.tr101290().pts_error, 1);
    assert_eq!(pid_row(&a, 0x100).pts_errors, 1);
}

fn stream_of(n: usize) -> Vec<u8> {
    let mut m = Cbr::new();
    (0..n).flat_map(|_| m.next()).collect()
}

#[test]
fn byte_stream_locks_across_calls_and_counts_sync_loss() {
    let mut bytes = b"HTTP junk before the stream".to_vec();
    let skipped = bytes.len() as u64;
    bytes.extend(stream_of(50));
    // Corrupt the sync bytes of packets 20 and 21 (two in a row: loss), and 30 (one).
    for k in [20, 21, 30] {
        bytes[skipped as usize + k * 188] = 0x00;
    }
    for cut in [1usize, 7, 188, 500, 100_000] {
        let mut a = TsAnalyzer::new(TsConfig::default());
        for chunk in bytes.chunks(cut) {
            a.on_bytes(0, chunk);
        }
        let s = a.summary();
        assert_eq!(s.tr101290.sync_byte_error, 3, "cut {cut}");
        assert_eq!(s.tr101290.ts_sync_loss, 1, "cut {cut}");
        // Lost: packets 20 and 21; after the loss the search starts inside packet 21 and
        // locks again at packet 22.
        assert_eq!(s.packets, 47, "cut {cut}");
        assert_eq!(s.stream_packet_len, Some(188));
        assert_eq!(s.bytes_skipped, skipped + 187, "cut {cut}");
    }
}

#[test]
fn byte_stream_of_204_byte_packets() {
    let bytes: Vec<u8> = stream_of(30)
        .chunks(188)
        .flat_map(|p| p.iter().copied().chain([0xaa; 16]))
        .collect();
    let mut a = TsAnalyzer::new(TsConfig::default());
    for chunk in bytes.chunks(333) {
        a.on_bytes(0, chunk);
    }
    let s = a.summary();
    assert_eq!((s.packets, s.stream_packet_len), (30, Some(204)));
    assert_eq!(s.tr101290.continuity_count_error, 0);
}

#[test]
fn detect_raw_204_and_rtp() {
    let seven = stream_of(7);
    let f = detect(&seven).expect("raw");
    assert_eq!(
        (f.encapsulation, f.offset, f.packet_len, f.packets),
        (Encapsulation::Raw, 0, 188, 7)
    );
    assert_eq!(detect(&seven[..188]).map(|f| f.packets), Some(1));
    assert_eq!(detect(&seven[..187]), None);
    let rs: Vec<u8> = seven
        .chunks(188)
        .flat_map(|p| p.iter().copied().chain([0; 16]))
        .collect();
    assert_eq!(detect(&rs).map(|f| f.packet_len), Some(204));

    // RTP: 2 CSRCs, an extension of 1 word, 3 bytes of padding, PT 96.
    let mut rtp = vec![0xb2, 96, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4];
    rtp.extend([0; 8]);
    rtp.extend([0xbe, 0xde, 0, 1, 9, 9, 9, 9]);
    rtp.extend(&seven[..3 * 188]);
    rtp.extend([0, 0, 3]);
    let f = detect(&rtp).expect("rtp");
    assert_eq!(
        (f.encapsulation, f.offset, f.packets),
        (Encapsulation::Rtp { payload_type: 96 }, 28, 3)
    );
    let mut a = TsAnalyzer::new(TsConfig::default());
    assert!(a.on_datagram(0, &rtp));
    assert_eq!(a.summary().packets, 3);

    // Not TS: a DNS query, a QUIC long header, RTP carrying something else.
    let dns = [
        0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'w', b'w', 0, 0, 1, 0, 1,
    ];
    assert_eq!(detect(&dns), None);
    let mut quic = vec![0xc3, 0, 0, 0, 1];
    quic.resize(1200, 0x47);
    assert_eq!(detect(&quic), None);
    let mut audio = vec![0x80, 8, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4];
    audio.resize(12 + 160, 0xd5);
    assert_eq!(detect(&audio), None);
    // 8 raw packets are more than a datagram of raw TS carries.
    assert_eq!(detect(&stream_of(8)), None);
}

#[test]
fn datagrams_of_204_byte_packets_and_bad_sync_bytes() {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let mut m = Cbr::new();
    for i in 0..10 {
        let d: Vec<u8> = m
            .datagram()
            .chunks(188)
            .flat_map(|p| p.iter().copied().chain([0; 16]))
            .collect();
        assert!(a.on_datagram(i, &d));
    }
    // One with a bad sync byte: read with the last framing.
    let mut d: Vec<u8> = m
        .datagram()
        .chunks(188)
        .flat_map(|p| p.iter().copied().chain([0; 16]))
        .collect();
    d[204] = 0;
    assert!(a.on_datagram(10, &d));
    let s = a.summary();
    assert_eq!(s.packets, 76);
    assert_eq!(s.tr101290.sync_byte_error, 1);
    assert_eq!(
        s.tr101290.ts_sync_loss, 0,
        "one bad sync byte is not a loss"
    );
    assert_eq!(s.framing.map(|f| f.packet_len), Some(204));
    // Two bad slots in a row: TS_sync_loss, once; then the last slot of one datagram
    // and the first good one of the next do not make another.
    let mut bad = |slots: &[usize]| {
        let mut d: Vec<u8> = m
            .datagram()
            .chunks(188)
            .flat_map(|p| p.iter().copied().chain([0; 16]))
            .collect();
        for &i in slots {
            d[i * 204] = 0;
        }
        d
    };
    assert!(a.on_datagram(11, &bad(&[2, 3, 4])));
    assert_eq!(a.summary().tr101290.ts_sync_loss, 1);
    assert!(a.on_datagram(12, &bad(&[6])));
    assert!(a.on_datagram(13, &bad(&[])));
    assert_eq!(a.summary().tr101290.ts_sync_loss, 1);
    assert_eq!(a.summary().tr101290.sync_byte_error, 5);
    // A run across datagrams: the last slot of one, the second of the next (the first
    // carries the framing's sync byte).
    assert!(a.on_datagram(14, &bad(&[6])));
    let mut d = bad(&[]);
    d[0] = 0x47;
    d[204] = 0;
    assert!(a.on_datagram(15, &d));
    assert_eq!(
        a.summary().tr101290.ts_sync_loss,
        1,
        "a good slot between them"
    );
    assert!(!a.on_datagram(16, b"not ts"));
    assert_eq!(a.summary().datagrams_not_ts, 1);
}

#[test]
fn rtsp_interleaved_with_and_without_rtp_across_calls() {
    let ts = stream_of(28);
    let mut wire = Vec::new();
    // Frame 1: raw TS, 7 packets.
    wire.extend([b'$', 0, 0x05, 0x24]);
    wire.extend(&ts[..1316]);
    // An RTCP frame on channel 1.
    wire.extend([b'$', 1, 0, 8, 0x80, 200, 0, 1, 0, 0, 0, 0]);
    // Frame 2: RTP (1 CSRC, padding 2) with 7 packets.
    let mut rtp = vec![0xa1, 33, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    rtp.extend(&ts[1316..2632]);
    rtp.extend([0, 2]);
    wire.push(b'$');
    wire.push(0);
    wire.extend((rtp.len() as u16).to_be_bytes());
    wire.extend(&rtp);
    // An RTSP reply inside the stream (framing lost, found again at the next `$`).
    wire.extend(b"RTSP/1.0 200 OK\r\nCSeq: 5\r\n\r\n");
    // Frame 3 and 4: raw TS.
    for k in 2..4 {
        wire.extend([b'$', 0, 0x05, 0x24]);
        wire.extend(&ts[k * 1316..(k + 1) * 1316]);
    }
    for cut in [1usize, 3, 5, 17, 1320, 10_000] {
        let mut a = TsAnalyzer::new(TsConfig::default());
        for chunk in wire.chunks(cut) {
            a.on_interleaved(0, chunk);
        }
        let s = a.summary();
        assert_eq!(s.packets, 28, "cut {cut}");
        assert_eq!(s.interleaved_frames, 5, "cut {cut}");
        assert_eq!(s.interleaved_resyncs, 1, "cut {cut}");
        assert_eq!(s.tr101290.continuity_count_error, 0, "cut {cut}");
        assert_eq!(s.tr101290.sync_byte_error, 0, "cut {cut}");
    }
}

#[test]
fn max_pids_bounds_the_table() {
    let mut a = TsAnalyzer::new(TsConfig {
        max_pids: 4,
        ..TsConfig::default()
    });
    for pid in 0..10u16 {
        a.on_datagram(0, &P::new(0x100 + pid, 0).build());
    }
    let s = a.summary();
    assert_eq!((s.pids, s.untracked_packets, s.packets), (4, 6, 10));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000), cut in 1usize..400) {
        let _ = detect(&data);
        let mut a = TsAnalyzer::new(TsConfig::default());
        a.on_datagram(0, &data);
        for (i, c) in data.chunks(cut).enumerate() {
            a.on_bytes(i as i64, c);
        }
        let mut b = TsAnalyzer::new(TsConfig::default());
        for (i, c) in data.chunks(cut).enumerate() {
            b.on_interleaved(i as i64, c);
        }
        a.finish(10);
        let _ = a.take_interval(10);
        let _ = a.summary();
        let _ = a.pids().count();
    }

    #[test]
    fn arbitrary_synced_packets_never_panic(
        pkts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 188), 1..60),
        times in proptest::collection::vec(-1_000_000_000i64..5_000_000_000, 60),
    ) {
        let mut a = TsAnalyzer::new(TsConfig::default());
        let mut stream = Vec::new();
        for (i, mut p) in pkts.into_iter().enumerate() {
            p[0] = 0x47;
            // Steer some packets onto PSI PIDs.
            if i % 3 == 0 { p[1] &= 0xe0; p[2] = 0; }
            a.on_datagram(times[i], &p);
            stream.extend(p);
        }
        a.on_bytes(0, &stream);
        a.finish(0);
        let _ = a.take_interval(i64::MAX / 2);
        let _ = a.summary();
        // A PAT-shaped prefix keeps PMT PIDs in play.
        let mut b = TsAnalyzer::new(TsConfig::default());
        for chunk in stream.chunks(188 * 7) {
            b.on_datagram(0, chunk);
        }
        let _ = b.summary();
    }
}
