//! What the MPEG-TS analyser, the RTP reader and the IGMP/MLD reader allocate per packet
//! once a stream is known, watched by a counting global allocator on this thread:
//! nothing. A PID, an SSRC or a jitter window is set up when it first appears (the
//! warm-up below); after that every datagram, every byte-stream call, every bin close and
//! every membership report is allocation-free (the per-packet path of DESIGN's hot-path
//! rules).

use std::hint::black_box;

use streamscope_media::multicast::MulticastReader;
use streamscope_media::rtp::{Dir, RtpConfig, RtpFlow};
use streamscope_media::ts::{TsAnalyzer, TsConfig};
use streamscope_testkit::CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const MS: i64 = 1_000_000;

/// TS packet `i` of a small mux: PID 0x100 carries a PCR every 4th packet (adaptation
/// field), PID 0x101 payload only, PID 0x1FFF null; continuity counters run per PID.
fn ts_packet(i: u64, out: &mut Vec<u8>) {
    let (pid, cc) = match i % 4 {
        0 | 1 => (0x100u16, ((i / 4) * 2 + i % 4) as u8 & 0x0f),
        2 => (0x101, (i / 4) as u8 & 0x0f),
        _ => (0x1fff, 0),
    };
    let start = out.len();
    out.push(0x47);
    out.push((pid >> 8) as u8 & 0x1f);
    out.push(pid as u8);
    if i % 4 == 0 {
        // Adaptation field with a PCR (27 MHz: 90 kHz base × 300), 30 ms apart.
        out.push(0x30 | cc);
        out.push(7);
        out.push(0x10);
        let base = (i / 4) * 2_700;
        out.extend_from_slice(&[
            (base >> 25) as u8,
            (base >> 17) as u8,
            (base >> 9) as u8,
            (base >> 1) as u8,
            ((base & 1) << 7) as u8 | 0x7e,
            0,
        ]);
    } else {
        out.push(0x10 | cc);
    }
    out.resize(start + 188, 0xff);
}

/// Datagram `n`: 7 TS packets.
fn ts_datagram(n: u64) -> Vec<u8> {
    let mut d = Vec::with_capacity(7 * 188);
    for i in n * 7..n * 7 + 7 {
        ts_packet(i, &mut d);
    }
    d
}

fn rtp_packet(seq: u16, ts: u32) -> [u8; 172] {
    let mut p = [0u8; 172];
    p[0] = 0x80;
    p[1] = 0; // PCMU, 8 kHz
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    p
}

#[test]
fn ts_datagrams_allocate_nothing_once_the_pids_are_known() {
    let datagrams: Vec<Vec<u8>> = (0..400).map(ts_datagram).collect();
    let mut ts = TsAnalyzer::new(TsConfig::default());
    // Warm-up: every PID, the PCR rate and a jitter window.
    for (n, d) in datagrams[..200].iter().enumerate() {
        ts.on_datagram(n as i64 * 2 * MS, d);
    }
    black_box(ts.take_interval(400 * MS));
    let ((), allocations) = CountingAlloc::watched(|| {
        for (n, d) in datagrams.iter().enumerate().skip(200) {
            black_box(ts.on_datagram(n as i64 * 2 * MS, d));
            if n % 100 == 0 {
                black_box(ts.take_interval(n as i64 * 2 * MS));
            }
        }
    });
    assert_eq!(ts.summary().packets, 400 * 7);
    assert_eq!(ts.tr101290().continuity_count_error, 0);
    assert_eq!(allocations, 0, "200 datagrams of a known mux");
}

#[test]
fn ts_byte_stream_allocates_nothing_once_locked() {
    let bytes: Vec<u8> = (0..400).flat_map(ts_datagram).collect();
    let mut ts = TsAnalyzer::new(TsConfig::default());
    let (warm, rest) = bytes.split_at(bytes.len() / 2);
    ts.on_bytes(0, warm);
    let ((), allocations) = CountingAlloc::watched(|| {
        // Cut anyhow: 1,000-byte calls split packets.
        for (i, c) in rest.chunks(1_000).enumerate() {
            ts.on_bytes(i as i64 * MS, c);
        }
    });
    assert_eq!(ts.summary().packets, 400 * 7);
    assert_eq!(allocations, 0, "a locked byte stream");
}

#[test]
fn rtp_packets_allocate_nothing_once_the_source_is_confirmed() {
    let mut rtp = RtpFlow::new(RtpConfig::default());
    for i in 0..50u16 {
        rtp.on_datagram(
            Dir::Up,
            i64::from(i) * 20 * MS,
            &rtp_packet(i, u32::from(i) * 160),
        );
    }
    black_box(rtp.take_interval());
    let packets: Vec<[u8; 172]> = (50..1_050u16)
        .map(|i| rtp_packet(i, u32::from(i) * 160))
        .collect();
    let ((), allocations) = CountingAlloc::watched(|| {
        for (k, p) in packets.iter().enumerate() {
            let i = 50 + k as i64;
            black_box(rtp.on_datagram(Dir::Up, i * 20 * MS, p));
            if k % 50 == 0 {
                black_box(rtp.take_interval());
            }
        }
    });
    let s = rtp.streams().next().expect("the stream");
    assert_eq!((s.packets, s.lost), (1_050, 0));
    assert_eq!(allocations, 0, "1,000 packets of a confirmed source");
}

/// An IGMPv3 report of three group records (one with two sources) read into its events:
/// nothing allocated, the reader made and dropped for the message as the inspector does.
#[test]
fn igmp_reports_allocate_nothing() {
    let mut report = vec![0x22, 0, 0, 0, 0, 0, 0, 3];
    for (kind, group, sources) in [
        (4u8, [239, 1, 1, 1], 0u16),
        (3, [239, 1, 1, 2], 0),
        (1, [232, 1, 1, 1], 2),
    ] {
        report.extend_from_slice(&[kind, 0]);
        report.extend_from_slice(&sources.to_be_bytes());
        report.extend_from_slice(&group);
        for i in 0..sources {
            report.extend_from_slice(&[10, 0, 0, i as u8 + 1]);
        }
    }
    let (src, dst) = ("10.1.1.1".parse().unwrap(), "224.0.0.22".parse().unwrap());
    let mut events = 0;
    let ((), allocations) = CountingAlloc::watched(|| {
        for i in 0..100 {
            let mut reader = MulticastReader::new();
            reader.on_igmp(i, src, dst, &report, &mut |e| {
                black_box(&e);
                events += 1;
            });
            black_box(reader.stats());
        }
    });
    assert_eq!(events, 300, "a row per group record");
    assert_eq!(allocations, 0, "100 reports");
}
