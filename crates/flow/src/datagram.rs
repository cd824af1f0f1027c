//! Bounded reassembly of IP-fragmented UDP datagrams, for the inspectors of a flow.
//!
//! The flow table counts every fragment to its datagram's flow (later fragments found
//! by IP id); an inspector that reads packets wants whole messages, so the fragments of
//! a datagram are put back together here, by their offsets, and given to it once every
//! byte is in. A flow holds at most a few datagrams at a time, each at most 64 KiB; a
//! datagram that cannot complete (a fragment lost, or cut by the capture) is dropped
//! and counted when a newer one pushes it out or when the flow ends.

/// Datagrams open at once per flow.
const MAX_OPEN: usize = 4;
/// The largest UDP payload.
const MAX_PAYLOAD: usize = 65_535 - 8;

/// Counters of a flow's reassembly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatagramStats {
    /// Datagrams put back together.
    pub reassembled: u64,
    /// Datagrams given up incomplete.
    pub incomplete: u64,
}

impl DatagramStats {
    pub fn add(&mut self, other: &DatagramStats) {
        self.reassembled += other.reassembled;
        self.incomplete += other.incomplete;
    }
}

#[derive(Debug)]
struct Partial {
    id: u32,
    data: Vec<u8>,
    /// Byte ranges received, of the UDP payload.
    have: Vec<(usize, usize)>,
    /// The payload's length, once the last fragment is in.
    total: Option<usize>,
}

impl Partial {
    fn complete(&mut self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        self.have.sort_unstable();
        let mut covered = 0;
        for &(a, b) in &self.have {
            if a > covered {
                return false;
            }
            covered = covered.max(b);
        }
        covered >= total
    }
}

/// The fragmented datagrams of one flow being put back together.
#[derive(Debug, Default)]
pub struct Datagrams {
    open: Vec<Partial>,
    stats: DatagramStats,
}

impl Datagrams {
    pub fn stats(&self) -> DatagramStats {
        self.stats
    }

    /// A fragment of datagram `id`: `bytes` of its UDP payload starting at payload
    /// offset `at` (a first fragment's payload after the UDP header is at 0; a later
    /// fragment at IP offset `o` is at `o - 8`). `last`: no more fragments follow it.
    /// Returns the whole payload when this fragment completes it.
    pub fn push(&mut self, id: u32, at: usize, bytes: &[u8], last: bool) -> Option<Vec<u8>> {
        let end = at.checked_add(bytes.len()).filter(|&e| e <= MAX_PAYLOAD)?;
        let i = match self.open.iter().position(|p| p.id == id) {
            Some(i) => i,
            None => {
                if self.open.len() >= MAX_OPEN {
                    self.open.remove(0);
                    self.stats.incomplete += 1;
                }
                self.open.push(Partial {
                    id,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                });
                self.open.len() - 1
            }
        };
        let p = &mut self.open[i];
        if p.data.len() < end {
            p.data.resize(end, 0);
        }
        // The first copy of a byte wins, as in the flow's other reassembly: only the gaps
        // between the ranges already in are filled.
        p.have.sort_unstable();
        let mut pos = at;
        for &(a, b) in p.have.iter().chain(std::iter::once(&(end, end))) {
            if b <= pos {
                continue;
            }
            let stop = a.clamp(pos, end);
            p.data[pos..stop].copy_from_slice(&bytes[pos - at..stop - at]);
            pos = pos.max(b.min(end));
            if pos >= end {
                break;
            }
        }
        p.have.push((at, end));
        if last {
            p.total = Some(end);
        }
        if !p.complete() {
            return None;
        }
        let mut p = self.open.remove(i);
        p.data.truncate(p.total.unwrap_or(end));
        self.stats.reassembled += 1;
        Some(p.data)
    }

    /// The flow ends: what is still open is given up.
    pub fn finish(&mut self) {
        self.stats.incomplete += self.open.len() as u64;
        self.open.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_in_any_order_make_the_datagram() {
        let mut d = Datagrams::default();
        assert_eq!(d.push(7, 8, b"ijklmnop", false), None);
        assert_eq!(d.push(7, 16, b"qr", true), None);
        assert_eq!(
            d.push(7, 0, b"abcdefgh", false).as_deref(),
            Some(&b"abcdefghijklmnopqr"[..])
        );
        assert_eq!(d.stats().reassembled, 1);
    }

    #[test]
    fn overlaps_keep_the_first_copy_and_holes_never_complete() {
        let mut d = Datagrams::default();
        assert_eq!(d.push(1, 0, b"abcd", false), None);
        assert_eq!(d.push(1, 2, b"XXef", true).as_deref(), Some(&b"abcdef"[..]));
        assert_eq!(d.push(2, 0, b"ab", false), None);
        assert_eq!(d.push(2, 4, b"ef", true), None);
        d.finish();
        assert_eq!(
            d.stats(),
            DatagramStats {
                reassembled: 1,
                incomplete: 1
            }
        );
    }

    #[test]
    fn a_few_datagrams_at_most_are_held() {
        let mut d = Datagrams::default();
        for id in 0..10 {
            assert_eq!(d.push(id, 0, b"ab", false), None);
        }
        assert_eq!(d.stats().incomplete, 6);
        // Past the largest UDP payload, or past the end of memory: refused.
        assert_eq!(d.push(3, 70_000, b"ab", true), None);
        assert_eq!(d.push(9, usize::MAX - 1, b"ab", true), None);
        assert_eq!(d.stats().reassembled, 0);
    }
}
