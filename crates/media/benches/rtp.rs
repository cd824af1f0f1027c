//! RTP packets per second through `RtpFlow::on_datagram`.
//!
//! * `mp2t_90k`: a confirmed PT 33 stream (90 kHz, 7 × 188-byte TS payload), in order,
//!   1 ms apart with a little arrival jitter: the IPTV case, payload handed back as TS.
//! * `pcmu_8k_loss`: a confirmed PCMU stream (8 kHz, 160-byte payload) with every 50th
//!   packet missing and every 97th arriving late.
//!
//! Figures are in the workspace's `benches/RESULTS.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streamscope_media::rtp::{Dir, RtpConfig, RtpFlow};

const BATCH: u16 = 1000;

fn packet(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0x80, pt];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtp");
    g.throughput(Throughput::Elements(u64::from(BATCH)));

    let mut ts_payload = vec![0xffu8; 7 * 188];
    for p in ts_payload.chunks_mut(188) {
        p[0] = 0x47;
    }
    let mut mp2t: Vec<Vec<u8>> = (0..BATCH).map(|_| packet(33, 0, 0, &ts_payload)).collect();
    g.bench_function("mp2t_90k", |b| {
        let mut flow = RtpFlow::new(RtpConfig::default());
        let mut t = 0i64;
        let mut seq = 0u16;
        b.iter(|| {
            for (i, p) in mp2t.iter_mut().enumerate() {
                // Sequence numbers and timestamps rewritten in place: no copy per packet.
                seq = seq.wrapping_add(1);
                p[2..4].copy_from_slice(&seq.to_be_bytes());
                p[4..8].copy_from_slice(&(90 * u32::from(seq)).to_be_bytes());
                t += 1_000_000 + (i as i64 % 7) * 1_000;
                black_box(flow.on_datagram(Dir::Down, t, black_box(p)).mpeg_ts());
            }
        });
    });

    let mut pcmu: Vec<Vec<u8>> = (0..BATCH).map(|_| packet(0, 0, 0, &[0xff; 160])).collect();
    g.bench_function("pcmu_8k_loss", |b| {
        let mut flow = RtpFlow::new(RtpConfig::default());
        let mut t = 0i64;
        let mut seq = 0u16;
        b.iter(|| {
            for p in pcmu.iter_mut() {
                seq = seq.wrapping_add(if seq % 50 == 0 { 2 } else { 1 });
                let s = if seq % 97 == 0 {
                    seq.wrapping_sub(3)
                } else {
                    seq
                };
                p[2..4].copy_from_slice(&s.to_be_bytes());
                p[4..8].copy_from_slice(&(160 * u32::from(s)).to_be_bytes());
                t += 20_000_000;
                black_box(flow.on_datagram(Dir::Up, t, black_box(p)));
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
