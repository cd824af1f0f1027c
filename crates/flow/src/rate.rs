//! Per-flow distribution of downstream bytes per time bin, for bitrate percentiles.
//!
//! Most flows span one or two bins, so values are kept exactly in a small vector (no
//! allocation at all for a flow's first bin); once a flow has spanned more than
//! [`EXACT_LIMIT`] bins its values move into an `hdrhistogram` with two significant
//! digits (relative error ≤ 1 %), whose size grows only with the largest value seen.
//! Bins inside a flow's lifetime that carried no downstream byte count as zero.

use hdrhistogram::Histogram;

/// Bits in a byte times nanoseconds in a second: `bytes * BIT_NS / bin_ns` is bit/s.
const BIT_NS: u64 = 8 * 1_000_000_000;

/// Converts the bytes of one time bin to a bitrate: `bytes * 8 / (bin width in s)`, in
/// bit/s, floored, saturating at `i64::MAX`. Made once per run for its bin width.
///
/// Where the width divides 8 s (10 ms, 100 ms, 1 s, 2 s, ...) the rate is the bytes
/// times a whole factor: one multiplication instead of a 64-bit division per bin row
/// and per percentile, which cost ending a million flows more than anything else in it.
/// Otherwise it divides in 64 bits, and in 128 only when `bytes * 8e9` overflows 64
/// bits (over 2.3 GB in one bin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinRate {
    bin_ns: u64,
    /// `8e9 / bin_ns` when that is whole.
    per_byte: Option<u64>,
}

impl BinRate {
    /// The converter for bins of `bin_ns` nanoseconds (at least 1).
    pub fn new(bin_ns: i64) -> BinRate {
        let bin_ns = bin_ns.max(1) as u64;
        BinRate {
            bin_ns,
            per_byte: (BIT_NS % bin_ns == 0).then_some(BIT_NS / bin_ns),
        }
    }

    /// The bitrate of `bytes` in one bin, in bit/s.
    #[inline]
    pub fn bps(&self, bytes: u64) -> i64 {
        let bps = match self.per_byte {
            Some(factor) => bytes.checked_mul(factor),
            None => bytes
                .checked_mul(BIT_NS)
                .map(|bits_ns| bits_ns / self.bin_ns),
        };
        match bps {
            Some(v) => i64::try_from(v).unwrap_or(i64::MAX),
            None => {
                let v = u128::from(bytes) * u128::from(BIT_NS) / u128::from(self.bin_ns);
                i64::try_from(v).unwrap_or(i64::MAX)
            }
        }
    }
}

/// Number of bin values kept exactly before switching to a histogram.
pub const EXACT_LIMIT: usize = 64;

#[derive(Debug, Default)]
enum Values {
    #[default]
    Empty,
    One(u64),
    Exact(Vec<u64>),
    Hist(Box<Histogram<u32>>),
}

/// Distribution of per-bin byte counts.
#[derive(Debug, Default)]
pub struct RateSummary {
    values: Values,
    zeros: u64,
    max: u64,
}

/// Percentiles of a [`RateSummary`], in the unit it was fed (bytes per bin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: u64,
    pub p95: u64,
    pub max: u64,
}

impl RateSummary {
    /// Records `count` bins that carried no byte.
    pub fn record_zeros(&mut self, count: u64) {
        self.zeros += count;
    }

    /// Records one bin's byte count.
    pub fn record(&mut self, value: u64) {
        if value == 0 {
            self.zeros += 1;
            return;
        }
        self.max = self.max.max(value);
        match &mut self.values {
            Values::Empty => self.values = Values::One(value),
            Values::One(first) => self.values = Values::Exact(vec![*first, value]),
            Values::Exact(v) if v.len() < EXACT_LIMIT => v.push(value),
            Values::Exact(v) => {
                let mut h = new_histogram();
                for &x in v.iter() {
                    record(&mut h, x);
                }
                record(&mut h, value);
                self.values = Values::Hist(Box::new(h));
            }
            Values::Hist(h) => record(h, value),
        }
    }

    /// Number of bins recorded, zeros included.
    pub fn bins(&self) -> u64 {
        self.zeros
            + match &self.values {
                Values::Empty => 0,
                Values::One(_) => 1,
                Values::Exact(v) => v.len() as u64,
                Values::Hist(h) => h.len(),
            }
    }

    /// Nearest-rank percentiles (the value at rank ⌈q·n⌉), exact while the flow spans
    /// at most [`EXACT_LIMIT`] non-empty bins, within 1 % after. `None` when no bin was
    /// recorded.
    pub fn percentiles(&mut self) -> Option<Percentiles> {
        let n = self.bins();
        if n == 0 {
            return None;
        }
        let rank = |q: f64| ((q * n as f64).ceil() as u64).clamp(1, n);
        let (r50, r95) = (rank(0.5), rank(0.95));
        let at = |values: &Values, zeros: u64, r: u64| -> u64 {
            if r <= zeros {
                return 0;
            }
            let r = r - zeros; // 1-based rank among the non-zero values
            match values {
                Values::Empty => 0,
                Values::One(v) => *v,
                Values::Exact(v) => v[(r - 1) as usize],
                Values::Hist(h) => {
                    // The histogram takes the value at rank ⌈q·len⌉; half a rank below
                    // `r` keeps that `r` where r / len · len rounds up past it.
                    let q = (r as f64 - 0.5) / h.len() as f64;
                    h.highest_equivalent(h.value_at_quantile(q.min(1.0)))
                }
            }
        };
        if let Values::Exact(v) = &mut self.values {
            v.sort_unstable();
        }
        Some(Percentiles {
            p50: at(&self.values, self.zeros, r50).min(self.max),
            p95: at(&self.values, self.zeros, r95).min(self.max),
            max: self.max,
        })
    }
}

/// Records into an auto-resizing histogram; a value past what it can ever track (not
/// reachable for byte counts) saturates instead of being lost.
fn record(h: &mut Histogram<u32>, value: u64) {
    if h.record(value).is_err() {
        h.saturating_record(value);
    }
}

fn new_histogram() -> Histogram<u32> {
    // Auto-resizing: starts small and grows with the largest value recorded.
    let mut h = Histogram::new(2).expect("2 significant digits is a valid precision");
    h.auto(true);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_percentiles() {
        assert_eq!(RateSummary::default().percentiles(), None);
    }

    #[test]
    fn one_bin() {
        let mut r = RateSummary::default();
        r.record(1000);
        let p = r.percentiles().unwrap();
        assert_eq!((p.p50, p.p95, p.max), (1000, 1000, 1000));
    }

    #[test]
    fn exact_nearest_rank_with_zeros() {
        // 20 bins: 10 zeros and 1..=10 (×100). Sorted: 0×10, 100, 200, ..., 1000.
        let mut r = RateSummary::default();
        r.record_zeros(9);
        r.record(0);
        for i in 1..=10 {
            r.record(i * 100);
        }
        assert_eq!(r.bins(), 20);
        let p = r.percentiles().unwrap();
        // p50: rank 10 → the last zero; p95: rank 19 → 900.
        assert_eq!(p.p50, 0);
        assert_eq!(p.p95, 900);
        assert_eq!(p.max, 1000);
    }

    #[test]
    fn histogram_within_one_percent() {
        let mut r = RateSummary::default();
        for i in 1..=1000u64 {
            r.record(i * 1_000);
        }
        let p = r.percentiles().unwrap();
        assert_eq!(p.max, 1_000_000);
        let within = |got: u64, want: u64| (got as f64 - want as f64).abs() / want as f64 <= 0.01;
        assert!(within(p.p50, 500_000), "p50 {}", p.p50);
        assert!(within(p.p95, 950_000), "p95 {}", p.p95);
    }

    #[test]
    fn bin_rates_floor_and_saturate() {
        let second = BinRate::new(1_000_000_000);
        assert_eq!(second.bps(1_250_000), 10_000_000);
        assert_eq!(BinRate::new(3_000_000_000).bps(1), 2); // 8/3 floored
        assert_eq!(BinRate::new(1).bps(u64::MAX), i64::MAX);
        assert_eq!(BinRate::new(0), BinRate::new(1));
        // 3 GB in an hour: bytes * 8e9 passes 64 bits, the result does not.
        assert_eq!(
            BinRate::new(3_600_000_000_000).bps(3_000_000_000),
            6_666_666
        );
        // Just below and at the 64-bit limit of bytes * 8e9 (2^64 / 8e9 = 2,305,843,009.2):
        // the whole factor (8) does not care.
        assert_eq!(second.bps(2_305_843_009), 18_446_744_072);
        assert_eq!(second.bps(2_305_843_010), 18_446_744_080);
        // Past what 64 bits hold in bit/s.
        assert_eq!(second.bps(u64::MAX / 4), i64::MAX);
    }

    /// The factor and the division give the exact floored rate, for widths that divide
    /// 8 s and widths that do not, from the smallest bin (10 ms) to the largest (1 h).
    #[test]
    fn bin_rates_equal_the_exact_quotient() {
        let widths = [
            10_000_000i64,
            20_000_000,
            100_000_000,
            250_000_000,
            1_000_000_000,
            2_000_000_000,
            8_000_000_000,
            30_000_000,
            333_333_333,
            1_500_000_000,
            3_000_000_000,
            60_000_000_000,
            3_600_000_000_000,
        ];
        let mut bytes = vec![0u64, 1, 7, 1_316, 65_535, 1 << 32, u64::MAX / 3, u64::MAX];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push(x >> (x % 61));
        }
        for &w in &widths {
            let rate = BinRate::new(w);
            assert_eq!(rate.per_byte.is_some(), BIT_NS % w as u64 == 0, "width {w}");
            for &b in &bytes {
                let exact = u128::from(b) * u128::from(BIT_NS) / w as u128;
                let want = i64::try_from(exact).unwrap_or(i64::MAX);
                assert_eq!(rate.bps(b), want, "{b} bytes in {w} ns");
            }
        }
    }
}
