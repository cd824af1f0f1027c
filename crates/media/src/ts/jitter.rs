//! PCR jitter against capture time (the module documentation's "PCR"): windows of up to
//! 1 s or 128 PCRs of the reference PID, capture time less PCR time fitted by least
//! squares against PCR time (the drift between the two clocks removed), max − min of the
//! residuals.

use super::packet::{pcr_delta, ticks_to_ns};

/// Jitter window: at most this many PCRs...
const JITTER_POINTS: usize = 128;
/// ... or this much PCR time.
const JITTER_SPAN_NS: i64 = 1_000_000_000;

/// PCR jitter window (reference PCR PID): (PCR time, capture time) pairs relative to
/// the window's first.
#[derive(Clone, Debug)]
pub(crate) struct Jitter {
    points: [(i64, i64); JITTER_POINTS],
    n: usize,
    /// PCR and capture time of the window's first point.
    origin: (u64, i64),
    /// Largest window jitter: of the stream, of the current interval.
    pub(crate) max: Option<i64>,
    pub(crate) interval_max: Option<i64>,
}

impl Jitter {
    pub(crate) fn new() -> Jitter {
        Jitter {
            points: [(0, 0); JITTER_POINTS],
            n: 0,
            origin: (0, 0),
            max: None,
            interval_max: None,
        }
    }

    /// A PCR of the reference PID; `continuous` false after a time-base change.
    pub(crate) fn add(&mut self, pcr: u64, ts: i64, continuous: bool) {
        if !continuous {
            self.close();
        }
        if self.n == 0 {
            self.origin = (pcr, ts);
        }
        let x = ticks_to_ns(pcr_delta(self.origin.0, pcr));
        if !(0..=JITTER_SPAN_NS).contains(&x) || self.n == JITTER_POINTS {
            self.close();
            self.origin = (pcr, ts);
            self.points[0] = (0, 0);
            self.n = 1;
            return;
        }
        self.points[self.n] = (x, ts - self.origin.1);
        self.n += 1;
    }

    /// Ends the window: least-squares line of capture time on PCR time, max − min of
    /// the residuals.
    pub(crate) fn close(&mut self) {
        let pts = &self.points[..self.n];
        self.n = 0;
        if pts.len() < 3 {
            return;
        }
        let k = pts.len() as f64;
        let (sx, sy) = pts
            .iter()
            .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x as f64, b + y as f64));
        let (mx, my) = (sx / k, sy / k);
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for &(x, y) in pts {
            let dx = x as f64 - mx;
            sxx += dx * dx;
            sxy += dx * (y as f64 - my);
        }
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in pts {
            let r = y as f64 - my - slope * (x as f64 - mx);
            lo = lo.min(r);
            hi = hi.max(r);
        }
        let j = (hi - lo).round() as i64;
        self.max = Some(self.max.map_or(j, |m| m.max(j)));
        self.interval_max = Some(self.interval_max.map_or(j, |m| m.max(j)));
    }
}
