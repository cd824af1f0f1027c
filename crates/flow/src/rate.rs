//! Per-flow distribution of downstream bytes per time bin, for bitrate percentiles.
//!
//! Most flows span one or two bins, so values are kept exactly in a small vector (no
//! allocation at all for a flow's first bin); once a flow has spanned more than
//! [`EXACT_LIMIT`] bins its values move into an `hdrhistogram` with two significant
//! digits (relative error ≤ 1 %), whose size grows only with the largest value seen.
//! Bins inside a flow's lifetime that carried no downstream byte count as zero.

use hdrhistogram::Histogram;

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
                    let q = r as f64 / h.len() as f64;
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
}
