//! TS packets per second through `TsAnalyzer::on_datagram`: 7 × 188-byte datagrams of a
//! constant-rate mux (PAT and PMT every 100 packets, a PCR every 10 on the video PID, a
//! null packet every 5), at the mux's pace (2.8 ms per datagram), with a time bin taken
//! every second; and the same datagrams in RTP.
//!
//! Figures are in the workspace's `benches/RESULTS.md`.

use std::hint::black_box;

use crc::{Crc, CRC_32_MPEG_2};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streamscope_media::ts::{TsAnalyzer, TsConfig};

const DATAGRAMS: usize = 1000;
/// 3.76 Mb/s: one packet every 400 µs, 10,800 PCR ticks.
const PACKET_NS: i64 = 400_000;
const PACKET_TICKS: u64 = 10_800;

fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
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
    let crc = Crc::<u32>::new(&CRC_32_MPEG_2).checksum(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

fn packet(pid: u16, cc: u8, pusi: bool, pcr: Option<u64>, data: &[u8]) -> [u8; 188] {
    let mut b = [0xffu8; 188];
    b[0] = 0x47;
    b[1] = u8::from(pusi) << 6 | (pid >> 8) as u8;
    b[2] = pid as u8;
    let mut at = 4;
    if let Some(pcr) = pcr {
        b[3] = 0x30 | cc;
        b[4] = 7;
        b[5] = 0x10;
        let base = pcr / 300;
        let ext = pcr % 300;
        b[6..10].copy_from_slice(&((base >> 1) as u32).to_be_bytes());
        b[10] = ((base & 1) << 7) as u8 | 0x7e | (ext >> 8) as u8;
        b[11] = ext as u8;
        at = 12;
    } else {
        b[3] = 0x10 | cc;
    }
    let n = data.len().min(188 - at);
    b[at..at + n].copy_from_slice(&data[..n]);
    b
}

fn mux() -> Vec<Vec<u8>> {
    let pat = section(0, 1, &[0, 1, 0xf0, 0x00]);
    let pmt = section(
        2,
        1,
        &[
            0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00, 0x0f, 0xe1, 0x01, 0xf0, 0x00,
        ],
    );
    let psi = |s: &[u8]| {
        let mut d = vec![0];
        d.extend_from_slice(s);
        d
    };
    let (pat, pmt) = (psi(&pat), psi(&pmt));
    let mut cc = [0u8; 4];
    let next = |c: &mut u8| {
        let v = *c;
        *c = (v + 1) & 0x0f;
        v
    };
    let mut pes = vec![0u8, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
    pes.resize(184, 0x55);
    (0..DATAGRAMS)
        .map(|d| {
            (0..7)
                .flat_map(|k| {
                    let n = (d * 7 + k) as u64;
                    match n % 100 {
                        0 => packet(0, next(&mut cc[0]), true, None, &pat),
                        1 => packet(0x1000, next(&mut cc[1]), true, None, &pmt),
                        _ if n % 10 == 2 => packet(
                            0x100,
                            next(&mut cc[2]),
                            false,
                            Some(n * PACKET_TICKS),
                            &[0x55; 176],
                        ),
                        _ if n % 5 == 3 => packet(0x1fff, 0, false, None, &[]),
                        _ if n % 25 == 4 => packet(0x100, next(&mut cc[2]), true, None, &pes),
                        _ => packet(
                            0x101 - (n % 2) as u16,
                            next(&mut cc[3 - (n % 2) as usize]),
                            false,
                            None,
                            &[0x55; 184],
                        ),
                    }
                })
                .collect()
        })
        .collect()
}

fn rtp(datagrams: &[Vec<u8>]) -> Vec<Vec<u8>> {
    datagrams
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut r = vec![0x80, 33, (i >> 8) as u8, i as u8, 0, 0, 0, 0, 1, 2, 3, 4];
            r.extend_from_slice(d);
            r
        })
        .collect()
}

fn run(datagrams: &[Vec<u8>]) -> u64 {
    let mut a = TsAnalyzer::new(TsConfig::default());
    let mut t = 0i64;
    let mut next_bin = 1_000_000_000;
    for d in datagrams {
        a.on_datagram(t, black_box(d));
        t += 7 * PACKET_NS;
        if t >= next_bin {
            black_box(a.take_interval(next_bin));
            next_bin += 1_000_000_000;
        }
    }
    a.finish(t);
    a.summary().packets
}

fn bench(c: &mut Criterion) {
    let raw = mux();
    let in_rtp = rtp(&raw);
    assert_eq!(run(&raw), (DATAGRAMS * 7) as u64);
    assert_eq!(run(&in_rtp), (DATAGRAMS * 7) as u64);
    let mut g = c.benchmark_group("ts_on_datagram");
    g.throughput(Throughput::Elements((DATAGRAMS * 7) as u64));
    g.bench_function("raw_7x188", |b| b.iter(|| run(&raw)));
    g.bench_function("rtp_7x188", |b| b.iter(|| run(&in_rtp)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
