//! A bounded in-order byte stream for one direction of a TCP connection.
//!
//! Segments are given in capture order with their sequence numbers; the bytes come out
//! in sequence order ([`Piece::Bytes`]). In-order segments are passed through without a
//! copy; a segment ahead of the next expected byte is copied and held, up to a bound in
//! bytes and segments. Bytes seen before (retransmissions, overlaps) are counted and
//! skipped: the first copy of a byte wins, as a receiver's would. A hole is never waited
//! on forever: when holding the next segment would pass the bound, the hole is given up
//! ([`Piece::Gap`], its length counted) and the stream goes on with what was held; at the
//! end of the flow ([`Reassembler::finish`]) whatever is held comes out the same way.
//! Bytes the capture cut off a segment (snap length) are a gap too.
//!
//! Sequence numbers wrap (RFC 9293 §3.4): positions are kept as 64-bit stream offsets,
//! each segment placed by its signed 32-bit distance from the next expected byte.

use std::collections::BTreeMap;

/// What comes out of a stream, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// The next bytes.
    Bytes(&'a [u8]),
    /// This many bytes will never come; the stream goes on after them.
    Gap(u64),
}

/// Counters of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Bytes delivered in order.
    pub bytes: u64,
    /// Holes given up, and their bytes.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Bytes received again (retransmissions, overlapping segments), skipped.
    pub overlap_bytes: u64,
    /// Segments that arrived ahead of a hole and were held.
    pub held_segments: u64,
}

impl StreamStats {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &StreamStats) {
        self.bytes += other.bytes;
        self.gaps += other.gaps;
        self.gap_bytes += other.gap_bytes;
        self.overlap_bytes += other.overlap_bytes;
        self.held_segments += other.held_segments;
    }
}

/// A held segment: its captured bytes and the bytes the capture cut off after them.
#[derive(Debug)]
struct Held {
    data: Vec<u8>,
    cut: u64,
}

/// One direction's byte stream. See the module documentation.
#[derive(Debug)]
pub struct Reassembler {
    /// Sequence number and stream offset of the next expected byte, once known.
    next: Option<(u32, u64)>,
    held: BTreeMap<u64, Held>,
    held_bytes: usize,
    max_bytes: usize,
    max_segments: usize,
    stats: StreamStats,
}

impl Reassembler {
    /// A stream holding at most `max_bytes` bytes in at most `max_segments` segments
    /// ahead of a hole.
    pub fn new(max_bytes: usize, max_segments: usize) -> Reassembler {
        Reassembler {
            next: None,
            held: BTreeMap::new(),
            held_bytes: 0,
            max_bytes,
            max_segments: max_segments.max(1),
            stats: StreamStats::default(),
        }
    }

    /// A stream whose bytes before sequence number `next_seq` were read elsewhere (the
    /// segment an inspector read itself before asking for the stream): a copy of them
    /// that comes again is a retransmission, counted and skipped.
    pub fn starting_at(next_seq: u32, max_bytes: usize, max_segments: usize) -> Reassembler {
        let mut r = Reassembler::new(max_bytes, max_segments);
        r.next = Some((next_seq, 0));
        r
    }

    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// Bytes held ahead of a hole.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// One segment: its sequence number, whether it carries SYN (which takes one
    /// sequence number before the data), its captured payload and the payload length
    /// its headers give. `emit` gets what the stream can now deliver, in order.
    pub fn segment(
        &mut self,
        seq: u32,
        syn: bool,
        payload: &[u8],
        payload_len: u32,
        mut emit: impl FnMut(Piece<'_>),
    ) {
        let data_seq = seq.wrapping_add(u32::from(syn));
        let (next_seq, pos) = *self.next.get_or_insert((data_seq, 0));
        let len = u64::from(payload_len.max(payload.len() as u32));
        if len == 0 {
            return;
        }
        let captured = &payload[..payload.len().min(len as usize)];
        let cut = len - captured.len() as u64;
        let start = pos as i64 + i64::from(data_seq.wrapping_sub(next_seq) as i32);
        if start + len as i64 <= pos as i64 {
            self.stats.overlap_bytes += len;
            return;
        }
        if start > pos as i64 {
            // Ahead of a hole: held, holes given up while it would not fit.
            let start = start as u64;
            while self.held_bytes + captured.len() > self.max_bytes
                || self.held.len() >= self.max_segments
            {
                let Some((&first, _)) = self.held.iter().next() else {
                    break;
                };
                self.skip_to(first.min(start), &mut emit);
                self.drain(&mut emit);
                if start <= self.pos() {
                    break;
                }
            }
            if start > self.pos() {
                if captured.len() <= self.max_bytes {
                    self.hold(start, captured, cut, len);
                    return;
                }
                // Larger than the bound on its own: the hole before it is given up.
                self.skip_to(start, &mut emit);
            }
        }
        // Starts at or before the next byte: delivered at once, the part seen skipped.
        let skip = (self.pos() as i64 - start) as u64;
        self.stats.overlap_bytes += skip;
        self.deliver(captured, cut, skip, &mut emit);
        self.drain(&mut emit);
    }

    /// The stream offset of the next expected byte.
    fn pos(&self) -> u64 {
        self.next.map_or(0, |n| n.1)
    }

    /// Holds a segment that starts at stream offset `start`, ahead of the next byte.
    fn hold(&mut self, start: u64, captured: &[u8], cut: u64, len: u64) {
        self.stats.held_segments += 1;
        match self.held.get_mut(&start) {
            // The same start seen again: the longer copy is kept.
            Some(h) if (h.data.len() as u64 + h.cut) >= len => {
                self.stats.overlap_bytes += len;
            }
            _ => {
                if let Some(old) = self.held.insert(
                    start,
                    Held {
                        data: captured.to_vec(),
                        cut,
                    },
                ) {
                    self.held_bytes -= old.data.len();
                    self.stats.overlap_bytes += old.data.len() as u64 + old.cut;
                }
                self.held_bytes += captured.len();
            }
        }
    }

    /// The flow ends: what is held comes out, the holes before it as gaps.
    pub fn finish(&mut self, mut emit: impl FnMut(Piece<'_>)) {
        while let Some((&first, _)) = self.held.iter().next() {
            self.skip_to(first, &mut emit);
            self.drain(&mut emit);
        }
    }

    /// Delivers `captured` (then `cut` missing bytes) less its first `skip` bytes, at the
    /// next position.
    fn deliver(&mut self, captured: &[u8], cut: u64, skip: u64, emit: &mut impl FnMut(Piece<'_>)) {
        let (seq, pos) = self.next.expect("known");
        let total = captured.len() as u64 + cut;
        let fresh = total.saturating_sub(skip);
        if skip < captured.len() as u64 {
            let bytes = &captured[skip as usize..];
            self.stats.bytes += bytes.len() as u64;
            emit(Piece::Bytes(bytes));
        }
        let missing = cut.min(fresh);
        if missing > 0 {
            self.stats.gaps += 1;
            self.stats.gap_bytes += missing;
            emit(Piece::Gap(missing));
        }
        self.next = Some((seq.wrapping_add(fresh as u32), pos + fresh));
    }

    /// Gives up the bytes up to stream offset `to` (a hole) if it is ahead.
    fn skip_to(&mut self, to: u64, emit: &mut impl FnMut(Piece<'_>)) {
        let (seq, pos) = self.next.expect("known");
        if to > pos {
            let missing = to - pos;
            self.stats.gaps += 1;
            self.stats.gap_bytes += missing;
            emit(Piece::Gap(missing));
            self.next = Some((seq.wrapping_add(missing as u32), to));
        }
    }

    /// Delivers the held segments that the next position has reached.
    fn drain(&mut self, emit: &mut impl FnMut(Piece<'_>)) {
        loop {
            let Some((_, pos)) = self.next else { return };
            let Some(entry) = self.held.first_entry() else {
                return;
            };
            let start = *entry.key();
            if start > pos {
                return;
            }
            let held = entry.remove();
            self.held_bytes -= held.data.len();
            let total = held.data.len() as u64 + held.cut;
            let skip = pos - start;
            if skip >= total {
                self.stats.overlap_bytes += total;
                continue;
            }
            self.stats.overlap_bytes += skip;
            self.deliver(&held.data, held.cut, skip, emit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs segments through a stream; the bytes with `?` for each gap byte.
    fn run(max: usize, segs: &[(u32, bool, &[u8], u32)]) -> (String, StreamStats) {
        let mut r = Reassembler::new(max, 64);
        let mut out = String::new();
        let mut take = |p: Piece<'_>| match p {
            Piece::Bytes(b) => out.push_str(std::str::from_utf8(b).unwrap()),
            Piece::Gap(n) => out.extend(std::iter::repeat_n('?', n as usize)),
        };
        for &(seq, syn, data, len) in segs {
            r.segment(seq, syn, data, len.max(data.len() as u32), &mut take);
        }
        r.finish(&mut take);
        (out, r.stats())
    }

    #[test]
    fn in_order_after_a_syn() {
        let (s, st) = run(
            100,
            &[
                (99, true, b"", 0),
                (100, false, b"abc", 0),
                (103, false, b"de", 0),
            ],
        );
        assert_eq!(s, "abcde");
        assert_eq!(st.bytes, 5);
        assert_eq!(st.gaps, 0);
    }

    #[test]
    fn out_of_order_is_held_and_put_back_in_order() {
        let (s, st) = run(
            100,
            &[
                (0, false, b"ab", 0),
                (4, false, b"ef", 0),
                (2, false, b"cd", 0),
            ],
        );
        assert_eq!(s, "abcdef");
        assert_eq!((st.held_segments, st.gaps, st.overlap_bytes), (1, 0, 0));
    }

    #[test]
    fn retransmissions_and_overlaps_are_counted_and_skipped() {
        let (s, st) = run(
            100,
            &[
                (0, false, b"abcd", 0),
                (2, false, b"cdef", 0),
                (0, false, b"ab", 0),
            ],
        );
        assert_eq!(s, "abcdef");
        assert_eq!(st.overlap_bytes, 4);
    }

    #[test]
    fn a_hole_is_given_up_when_the_bound_is_reached() {
        // Bound of 4 bytes: "gh" then "ij" would make 4 + 2 held; the hole of 2 goes.
        let (s, st) = run(
            4,
            &[
                (0, false, b"ab", 0),
                (4, false, b"ef", 0),
                (6, false, b"gh", 0),
                (8, false, b"ij", 0),
            ],
        );
        assert_eq!(s, "ab??efghij");
        assert_eq!((st.gaps, st.gap_bytes), (1, 2));
    }

    #[test]
    fn a_hole_never_filled_comes_out_at_the_end() {
        let (s, st) = run(100, &[(0, false, b"ab", 0), (5, false, b"fg", 0)]);
        assert_eq!(s, "ab???fg");
        assert_eq!((st.gaps, st.gap_bytes), (1, 3));
    }

    #[test]
    fn bytes_the_capture_cut_are_a_gap() {
        let (s, st) = run(100, &[(0, false, b"ab", 5), (5, false, b"fg", 0)]);
        assert_eq!(s, "ab???fg");
        assert_eq!(st.gap_bytes, 3);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let (s, _) = run(
            100,
            &[
                (u32::MAX - 1, false, b"ab", 0),
                (0, false, b"cd", 0),
                (4, false, b"gh", 0),
                (2, false, b"ef", 0),
            ],
        );
        assert_eq!(s, "abcdefgh");
    }

    #[test]
    fn a_segment_larger_than_the_bound_passes_the_hole() {
        let (s, _) = run(3, &[(0, false, b"a", 0), (2, false, b"cdefg", 0)]);
        assert_eq!(s, "a?cdefg");
    }

    #[test]
    fn at_most_the_bound_is_held() {
        let mut r = Reassembler::new(10, 64);
        let mut n = 0u64;
        r.segment(0, false, b"a", 1, |_| {});
        for i in 0..100u32 {
            r.segment(10 + i * 3, false, b"xyz", 3, |p| {
                if let Piece::Gap(g) = p {
                    n += g;
                }
            });
            assert!(r.held_bytes() <= 10);
        }
        assert!(n > 0);
    }

    proptest::proptest! {
        /// Whatever the order, duplicates and bound: every byte of the stream comes out
        /// once at its place, as itself or as part of a gap, and with a bound as large
        /// as the stream nothing is lost.
        #[test]
        fn every_byte_once_in_its_place(
            len in 1usize..400,
            cuts in proptest::collection::vec(1usize..40, 1..60),
            order in proptest::collection::vec(0usize..1000, 1..80),
            dups in proptest::collection::vec(0usize..1000, 0..10),
            max in 1usize..500,
            isn in proptest::num::u32::ANY,
        ) {
            let data: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut segs = Vec::new();
            let mut at = 0;
            for c in cuts.iter().cycle() {
                if at >= len {
                    break;
                }
                let end = (at + c).min(len);
                segs.push((at, end));
                at = end;
            }
            // A permutation from `order`, then some segments again.
            let mut keyed: Vec<(usize, (usize, usize))> = segs
                .iter()
                .enumerate()
                .map(|(i, s)| (order[i % order.len()] + i, *s))
                .collect();
            keyed.sort();
            let mut sent: Vec<(usize, usize)> = keyed.into_iter().map(|k| k.1).collect();
            for d in dups {
                let s = sent[d % sent.len()];
                sent.push(s);
            }
            let mut r = Reassembler::new(max, 16);
            let mut out: Vec<Option<u8>> = Vec::new();
            r.segment(isn, true, b"", 0, |_| {});
            for (a, b) in &sent {
                r.segment(isn.wrapping_add(1 + *a as u32), false, &data[*a..*b], (*b - *a) as u32, |p| match p {
                    Piece::Bytes(b) => out.extend(b.iter().map(|&x| Some(x))),
                    Piece::Gap(n) => out.extend(std::iter::repeat_n(None, n as usize)),
                });
                proptest::prop_assert!(r.held_bytes() <= max);
            }
            r.finish(|p| match p {
                Piece::Bytes(b) => out.extend(b.iter().map(|&x| Some(x))),
                Piece::Gap(n) => out.extend(std::iter::repeat_n(None, n as usize)),
            });
            proptest::prop_assert_eq!(out.len(), len);
            for (i, b) in out.iter().enumerate() {
                if let Some(b) = b {
                    proptest::prop_assert_eq!(*b, data[i]);
                }
            }
            if max >= len && segs.len() < 16 {
                proptest::prop_assert!(out.iter().all(Option::is_some));
            }
        }
    }
}
