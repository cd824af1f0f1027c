//! Releases per-flow time-bin rows in time order with bounded memory.
//!
//! A flow emits the row of a bin when its next packet falls into a later bin or when
//! the flow ends. Flows end at most `max idle timeout + sweep interval` after their last
//! packet, so at capture time `clock` no row older than
//! `clock − (max timeout + sweep interval + bin width)` can still arrive: rows older than
//! that watermark are released sorted by `(bin_start, flow_id)`. The buffer is capped;
//! past the cap the oldest buckets are released early and any row that then arrives
//! behind them is counted as out of order (never dropped).

use std::collections::BTreeMap;

/// One closed time bin of one flow. Index 0 is upstream (client → server), 1 downstream.
/// `counters` are what the flow's inspector added (`()` without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinRecord<C = ()> {
    pub flow_id: i64,
    pub bin_start_ns: i64,
    pub packets: [u32; 2],
    pub bytes: [u64; 2],
    pub counters: C,
}

/// Most rows reserved for a new bucket (2.5 MiB).
const MAX_BUCKET_RESERVE: usize = 1 << 16;

/// Time-ordering buffer for [`BinRecord`]s.
#[derive(Debug)]
pub struct BinOrderer<C = ()> {
    buckets: BTreeMap<i64, Vec<BinRecord<C>>>,
    /// The bucket pushed to last, kept out of the map: consecutive rows mostly share a
    /// bin (flows ending together, flows crossing into the same second), and this saves
    /// a map lookup for each of them.
    hot: Option<(i64, Vec<BinRecord<C>>)>,
    spare: Vec<Vec<BinRecord<C>>>,
    /// Rows of the bucket that was hot last: a new bucket starts with room for as many
    /// (up to [`MAX_BUCKET_RESERVE`]), so that the bins of a million flows ending together
    /// do not grow by copying.
    last_len: usize,
    buffered: usize,
    cap: usize,
    lateness_ns: i64,
    released_up_to: i64,
    out_of_order: u64,
    released_early: u64,
}

impl<C: Copy> BinOrderer<C> {
    /// `lateness_ns`: the longest delay between a bin's start and the moment its row can
    /// be emitted; `cap`: the most rows held before releasing early.
    pub fn new(lateness_ns: i64, cap: usize) -> BinOrderer<C> {
        BinOrderer {
            buckets: BTreeMap::new(),
            hot: None,
            spare: Vec::new(),
            last_len: 0,
            buffered: 0,
            cap: cap.max(1),
            lateness_ns,
            released_up_to: i64::MIN,
            out_of_order: 0,
            released_early: 0,
        }
    }

    pub fn push(&mut self, rec: BinRecord<C>) {
        if rec.bin_start_ns < self.released_up_to {
            self.out_of_order += 1;
        }
        self.buffered += 1;
        if let Some((start, rows)) = &mut self.hot {
            if *start == rec.bin_start_ns {
                rows.push(rec);
                return;
            }
        }
        self.cool();
        let want = self.last_len.min(MAX_BUCKET_RESERVE);
        let rows = match self.buckets.remove(&rec.bin_start_ns) {
            // A bucket that already has room, or an early start of one that will
            // not get many rows.
            Some(rows) if rows.capacity() - rows.len() >= want => rows,
            // A few rows so far (bins crossed by flows earlier on), about to get many
            // more (the flows of that bin ending together): they move into a spare
            // vector that has the room, instead of the small one growing by copies into
            // freshly faulted memory.
            Some(mut rows) => match self.spare.pop() {
                Some(mut bigger) if bigger.capacity() > rows.capacity() => {
                    bigger.extend_from_slice(&rows);
                    rows.clear();
                    self.spare.push(rows);
                    bigger.reserve(want);
                    bigger
                }
                other => {
                    self.spare.extend(other);
                    rows.reserve(want);
                    rows
                }
            },
            None => {
                let mut rows = self.spare.pop().unwrap_or_default();
                rows.reserve(want);
                rows
            }
        };
        let (_, rows) = self.hot.insert((rec.bin_start_ns, rows));
        rows.push(rec);
    }

    /// Puts the hot bucket back into the map.
    fn cool(&mut self) {
        if let Some((start, rows)) = self.hot.take() {
            self.last_len = rows.len();
            self.buckets.insert(start, rows);
        }
    }

    /// Releases, in order, every row whose bin can no longer receive company, and more
    /// if the buffer is over its cap.
    pub fn release(&mut self, clock_ns: i64, mut emit: impl FnMut(&BinRecord<C>)) {
        self.cool();
        let watermark = clock_ns.saturating_sub(self.lateness_ns);
        while let Some(entry) = self.buckets.first_entry() {
            let start = *entry.key();
            let over_cap = self.buffered > self.cap;
            if start >= watermark && !over_cap {
                break;
            }
            if start >= watermark {
                self.released_early += entry.get().len() as u64;
            }
            let mut rows = entry.remove();
            self.emit_bucket(start, &mut rows, &mut emit);
        }
    }

    /// Releases, in order, every row of a bin that starts before `start_ns`: the caller
    /// knows that no row of those bins can come any more.
    pub fn release_before(&mut self, start_ns: i64, emit: impl FnMut(&BinRecord<C>)) {
        self.release_below(Some(start_ns), emit);
    }

    /// Releases everything (end of capture).
    pub fn release_all(&mut self, emit: impl FnMut(&BinRecord<C>)) {
        self.release_below(None, emit);
    }

    /// Releases, in order, the buckets that start before `limit` (all of them if none).
    fn release_below(&mut self, limit: Option<i64>, mut emit: impl FnMut(&BinRecord<C>)) {
        self.cool();
        while let Some(entry) = self.buckets.first_entry() {
            let start = *entry.key();
            if limit.is_some_and(|l| start >= l) {
                break;
            }
            let mut rows = entry.remove();
            self.emit_bucket(start, &mut rows, &mut emit);
        }
    }

    fn emit_bucket(
        &mut self,
        start: i64,
        rows: &mut Vec<BinRecord<C>>,
        emit: &mut impl FnMut(&BinRecord<C>),
    ) {
        // A bucket is a few sorted runs (rows of flows that went on to a later bin, in
        // packet order, then rows of ending flows, in id order): the stable sort merges
        // runs instead of sorting from scratch. Flow ids are unique within a bin, so the
        // order is the same as an unstable sort's.
        rows.sort_by_key(|r| r.flow_id);
        for r in rows.iter() {
            emit(r);
        }
        self.buffered -= rows.len();
        self.released_up_to = self.released_up_to.max(start + 1);
        rows.clear();
        if self.spare.len() < 64 {
            self.spare.push(std::mem::take(rows));
        }
    }

    /// Rows that arrived after a later bin had already been released.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Rows released before their watermark because the buffer was full.
    pub fn released_early(&self) -> u64 {
        self.released_early
    }

    pub fn buffered(&self) -> usize {
        self.buffered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(flow_id: i64, bin: i64) -> BinRecord {
        BinRecord {
            flow_id,
            bin_start_ns: bin,
            packets: [1, 0],
            bytes: [10, 0],
            counters: (),
        }
    }

    #[test]
    fn releases_in_time_then_flow_order_after_the_watermark() {
        let mut o = BinOrderer::new(100, 1000);
        o.push(rec(2, 20));
        o.push(rec(1, 10));
        o.push(rec(1, 20));
        o.push(rec(3, 10));
        let mut out = Vec::new();
        o.release(115, |r| out.push((r.bin_start_ns, r.flow_id)));
        assert_eq!(out, vec![(10, 1), (10, 3)]);
        o.release(200, |r| out.push((r.bin_start_ns, r.flow_id)));
        assert_eq!(out, vec![(10, 1), (10, 3), (20, 1), (20, 2)]);
        assert_eq!(o.buffered(), 0);
        assert_eq!(o.out_of_order(), 0);
    }

    #[test]
    fn a_small_bucket_about_to_grow_takes_a_released_buckets_room() {
        // Bins 10 and 20 get a row each early on (flows crossing into them); then a
        // thousand flows end in bin 10, which is released, and more end in bin 20.
        let mut o = BinOrderer::new(1_000_000, 1 << 20);
        o.push(rec(1, 10));
        o.push(rec(2, 20));
        for id in 3..1003 {
            o.push(rec(id, 10));
        }
        let mut out = Vec::new();
        o.release_before(20, |r| out.push((r.bin_start_ns, r.flow_id)));
        assert_eq!(out.len(), 1001);
        o.push(rec(1003, 20));
        let room = o.hot.as_ref().map_or(0, |(_, rows)| rows.capacity());
        assert!(room >= 1001, "bin 20's bucket has room for {room} rows");
        for id in 1004..2004 {
            o.push(rec(id, 20));
        }
        o.release_all(|r| out.push((r.bin_start_ns, r.flow_id)));
        let mut want: Vec<(i64, i64)> = std::iter::once((10, 1))
            .chain((3..1003).map(|id| (10, id)))
            .chain(std::iter::once((20, 2)))
            .chain((1003..2004).map(|id| (20, id)))
            .collect();
        want.sort_unstable();
        assert_eq!(out, want);
        assert_eq!(o.buffered(), 0);
    }

    #[test]
    fn cap_releases_early_and_counts_late_rows() {
        let mut o = BinOrderer::new(1_000, 2);
        o.push(rec(1, 10));
        o.push(rec(1, 20));
        o.push(rec(1, 30));
        let mut out = Vec::new();
        o.release(40, |r| out.push(r.bin_start_ns));
        assert_eq!(out, vec![10]);
        assert_eq!(o.released_early(), 1);
        o.push(rec(2, 5));
        assert_eq!(o.out_of_order(), 1);
        o.release_all(|r| out.push(r.bin_start_ns));
        assert_eq!(out, vec![10, 5, 20, 30]);
    }
}
