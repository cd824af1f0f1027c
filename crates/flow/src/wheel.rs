//! The flow table's timing wheel: when flows are checked for their idle timeout.

use crate::table::NS_PER_S;

/// Idle-expiry wheel: one slot per second of capture time. A flow is filed under the
/// second its idle deadline falls in; when that second has passed, the flow is checked:
/// ended if its deadline (recomputed from its last packet and TCP state) has passed,
/// filed again under its new deadline otherwise. Each flow is looked at about once per
/// idle timeout, instead of every flow at every sweep.
///
/// An entry is 8 bytes: the flow's slab slot and the low 32 bits of its id ([`id_tag`]),
/// which tell whether the slot still holds the flow filed (a million flows need 8 MiB of
/// entries instead of 16). Should a newer flow in the same slot share the tag (its id
/// 2^32 flows later, while the old entry is still pending), it is only checked early:
/// the check recomputes its deadline from its own last packet.
#[derive(Debug)]
pub(crate) struct Wheel {
    slots: Vec<Vec<(u32, u32)>>,
    /// The first second whose slot has not been processed yet.
    next_second: Option<i64>,
}

/// The part of a flow id a [`Wheel`] entry keeps: its low 32 bits.
#[inline]
pub(crate) fn id_tag(id: i64) -> u32 {
    id as u32
}

impl Wheel {
    pub(crate) fn new(max_timeout_ns: i64) -> Wheel {
        let n = (max_timeout_ns / NS_PER_S).clamp(1, 1 << 16) as usize + 3;
        Wheel {
            slots: (0..n).map(|_| Vec::new()).collect(),
            next_second: None,
        }
    }

    fn slot_of(&self, deadline_ns: i64) -> usize {
        let n = self.slots.len() as i64;
        let second = deadline_ns.div_euclid(NS_PER_S);
        // Deadlines further out than the wheel turns are filed in its last slot ahead
        // and checked (and filed again) when it comes round.
        let second = match self.next_second {
            Some(first) => second.clamp(first, first + n - 1),
            None => second,
        };
        second.rem_euclid(n) as usize
    }

    pub(crate) fn file(&mut self, slot_id: u32, id: i64, deadline_ns: i64) {
        if self.next_second.is_none() {
            self.next_second = Some(deadline_ns.div_euclid(NS_PER_S));
        }
        let slot = self.slot_of(deadline_ns);
        self.slots[slot].push((slot_id, id_tag(id)));
    }

    /// Processes every slot of the seconds before `clock_ns`'s second. `check` gets the
    /// slab slot and [`id_tag`] of an entry and returns `None` when the entry is done with,
    /// or the flow's new deadline.
    pub(crate) fn expire(&mut self, clock_ns: i64, mut check: impl FnMut(u32, u32) -> Option<i64>) {
        let now = clock_ns.div_euclid(NS_PER_S);
        let Some(first) = self.next_second else {
            // The first packet: the wheel starts turning at its second.
            self.next_second = Some(now);
            return;
        };
        if now <= first {
            return;
        }
        let n = self.slots.len() as i64;
        let steps = (now - first).min(n);
        self.next_second = Some(now);
        let mut entries = Vec::new();
        for i in 0..steps {
            let slot = (first + i).rem_euclid(n) as usize;
            std::mem::swap(&mut entries, &mut self.slots[slot]);
            for (flow_slot, id) in entries.drain(..) {
                if let Some(deadline) = check(flow_slot, id) {
                    let slot = self.slot_of(deadline);
                    self.slots[slot].push((flow_slot, id));
                }
            }
            // Hand the emptied vector back so the slot keeps its capacity.
            std::mem::swap(&mut entries, &mut self.slots[slot]);
            if !entries.is_empty() {
                // Entries were filed into this very slot while it was processed.
                let refiled = std::mem::take(&mut entries);
                self.slots[slot].extend(refiled);
            }
        }
    }
}
