//! The flow table's index: flow keys' hashes to slab slots.

/// An open-addressing hash index from 32-bit key hashes to slab slots, with linear
/// probing and 8-byte entries.
///
/// Each entry holds a slot (plus one, so that an all-zero entry is empty) in its low 32
/// bits and the hash in its high 32 bits; the home position is the hash's low bits. A
/// lookup reads one run of entries from its home on, which is one cache line nearly
/// always (at most half the entries are in use), and compares the stored hash before
/// asking the caller to compare keys. A `hashbrown` table of the same entries reads a
/// control-byte group and then the entry, in two distant places: on a table too large
/// for the caches that is two misses per lookup instead of one.
///
/// Removal shifts the entries after it back (no tombstones), so probe runs stay as short
/// as if the removed entries had never been there.
pub(crate) struct FlowIndex {
    entries: Box<[u64]>,
    mask: usize,
    len: usize,
}

/// Entries of a new index (8 KiB per 1,024).
const MIN_ENTRIES: usize = 16;
/// Tables of at least this many entries (256 KiB) are populated when made.
const POPULATE_FROM: usize = 1 << 15;

impl FlowIndex {
    /// An index that holds `n` slots before it grows.
    pub(crate) fn with_capacity(n: usize) -> FlowIndex {
        let cap = n
            .saturating_mul(2)
            .max(MIN_ENTRIES)
            .checked_next_power_of_two()
            .unwrap_or(1 << (usize::BITS - 1));
        FlowIndex {
            entries: vec![0u64; cap].into_boxed_slice(),
            mask: cap - 1,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn entry(hash: u32, slot: u32) -> u64 {
        u64::from(hash) << 32 | (u64::from(slot) + 1)
    }

    #[inline]
    fn home(&self, hash: u32) -> usize {
        hash as usize & self.mask
    }

    /// The slot whose entry has `hash` and for which `is_key(slot)` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u32, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut i = self.home(hash);
        loop {
            let e = self.entries[i];
            if e == 0 {
                return None;
            }
            if (e >> 32) as u32 == hash {
                let slot = (e as u32).wrapping_sub(1);
                if is_key(slot) {
                    return Some(slot);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Asks the CPU to load the cache line where a lookup of `hash` starts.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u32) {
        let p = self.entries.as_ptr().wrapping_add(self.home(hash));
        // SAFETY: PREFETCHT0 reads no memory architecturally and cannot fault.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }

    /// Adds `slot` under `hash`. The caller has made sure that no entry of the same key
    /// exists. `slot` must be below `u32::MAX`.
    #[inline]
    pub(crate) fn insert(&mut self, hash: u32, slot: u32) {
        debug_assert!(slot < u32::MAX);
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        self.place(Self::entry(hash, slot));
        self.len += 1;
    }

    #[inline]
    fn place(&mut self, e: u64) {
        let mut i = self.home((e >> 32) as u32);
        while self.entries[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.entries[i] = e;
    }

    /// Twice the entries. Entries are taken in order, so the new table is written in
    /// two nearly sequential streams; no key is hashed again. A large table's pages are
    /// mapped in one call first ([`crate::prefault::populate`]): faulted in one by one,
    /// the 4,096 pages of a 16 MiB table cost two faults each, as the first touch of a
    /// page is usually a lookup's read (paired runs on the million-flow capture: wall
    /// -3 %, 16 pairs). It is advised for huge pages before: lookups land anywhere in
    /// it, and with 4 KiB pages nearly every one also missed the TLB (one CPU, 10 pairs:
    /// wall -1.3 %, read loop -2.6 %; two CPUs unchanged).
    #[cold]
    fn grow(&mut self) {
        let cap = self.entries.len() * 2;
        let mut table = vec![0u64; cap].into_boxed_slice();
        if cap >= POPULATE_FROM {
            crate::prefault::huge_pages(&mut table);
            crate::prefault::populate(&mut table);
        }
        let old = std::mem::replace(&mut self.entries, table);
        self.mask = cap - 1;
        for &e in old.iter().filter(|&&e| e != 0) {
            self.place(e);
        }
    }

    /// Removes the entry of `slot` under `hash`; false if there is none.
    pub(crate) fn remove(&mut self, hash: u32, slot: u32) -> bool {
        let want = Self::entry(hash, slot);
        let mut i = self.home(hash);
        loop {
            match self.entries[i] {
                0 => return false,
                e if e == want => break,
                _ => i = (i + 1) & self.mask,
            }
        }
        // Backward shift: move later entries of the run into the hole when the hole is
        // not before their home position.
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        loop {
            let e = self.entries[j];
            if e == 0 {
                break;
            }
            let home = self.home((e >> 32) as u32);
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.entries[hole] = e;
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        self.entries[hole] = 0;
        self.len -= 1;
        true
    }

    /// Removes every entry and gives the memory back.
    pub(crate) fn clear(&mut self) {
        *self = FlowIndex::with_capacity(0);
    }
}

#[cfg(test)]
mod tests {
    use super::FlowIndex;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u32),
        Remove(usize),
        Find(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few hash values, so that runs collide, wrap around the end and shift back.
        prop_oneof![
            3 => (0u32..64).prop_map(Op::Insert),
            2 => any::<usize>().prop_map(Op::Remove),
            2 => (0u32..64).prop_map(Op::Find),
        ]
    }

    /// Slots and hashes against a plain map: every slot is found under its hash, no
    /// other slot is, and the length agrees, through growth, removals and reinsertions.
    #[test]
    fn agrees_with_a_map() {
        proptest!(ProptestConfig::with_cases(256), |(ops in proptest::collection::vec(op(), 1..400))| {
            let mut index = FlowIndex::with_capacity(0);
            let mut model: HashMap<u32, u32> = HashMap::new(); // slot -> hash
            let mut next_slot = 0u32;
            for op in ops {
                match op {
                    Op::Insert(h) => {
                        // High bits too, so that positions and stored hashes differ.
                        let hash = h.wrapping_mul(0x9e37_79b9) ^ (h << 7);
                        index.insert(hash, next_slot);
                        model.insert(next_slot, hash);
                        next_slot += 1;
                    }
                    Op::Remove(k) if !model.is_empty() => {
                        let mut slots: Vec<u32> = model.keys().copied().collect();
                        slots.sort_unstable();
                        let slot = slots[k % slots.len()];
                        let hash = model.remove(&slot).unwrap();
                        prop_assert!(index.remove(hash, slot));
                        prop_assert!(!index.remove(hash, slot));
                    }
                    Op::Remove(_) => {}
                    Op::Find(h) => {
                        let hash = h.wrapping_mul(0x9e37_79b9) ^ (h << 7);
                        let mut seen = Vec::new();
                        let found = index.find(hash, |s| {
                            seen.push(s);
                            false
                        });
                        prop_assert_eq!(found, None);
                        let mut want: Vec<u32> = model
                            .iter()
                            .filter(|&(_, &mh)| mh == hash)
                            .map(|(&s, _)| s)
                            .collect();
                        want.sort_unstable();
                        seen.sort_unstable();
                        prop_assert_eq!(seen, want);
                    }
                }
                prop_assert_eq!(index.len(), model.len());
                for (&slot, &hash) in &model {
                    prop_assert_eq!(index.find(hash, |s| s == slot), Some(slot));
                }
            }
        });
    }

    #[test]
    fn grows_at_half_full_and_clears() {
        let mut index = FlowIndex::with_capacity(0);
        assert_eq!(index.entries.len(), 16);
        for slot in 0..8 {
            index.insert(slot * 16, slot); // all share home 0
        }
        assert_eq!(index.entries.len(), 16);
        index.insert(3, 8);
        assert_eq!(index.entries.len(), 32);
        for slot in 0..8 {
            assert_eq!(index.find(slot * 16, |s| s == slot), Some(slot));
        }
        // Home 0 now holds hashes 0, 32, 64, 96 at 0..=3, and hash 3 (home 3) went to 4.
        assert_eq!(index.entries[4] >> 32, 3);
        assert!(index.remove(0, 0));
        // The run shifted back over the hole, hash 3 back to its home.
        assert_eq!(index.entries[0] >> 32, 32);
        assert_eq!(index.entries[3] >> 32, 3);
        assert_eq!(index.entries[4], 0);
        assert_eq!(index.find(3, |s| s == 8), Some(8));
        assert_eq!(index.find(0, |_| true), None);
        index.clear();
        assert_eq!(index.len(), 0);
        assert_eq!(index.find(16, |_| true), None);
    }
}
