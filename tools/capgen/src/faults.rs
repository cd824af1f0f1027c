//! Multicast stream faults of one channel: `multicast_duplicate` (a datagram is written
//! twice), `multicast_reorder` (a datagram is swapped with the next one) and
//! `pcr_discontinuity` (the PCR and PTS jump without the discontinuity_indicator).
//!
//! The decisions draw from a random stream of their own, so a channel without these
//! faults writes exactly the bytes it wrote before they existed. The channel applies
//! them (`crate::ts`) and computes what a receiver sees from the written datagrams:
//! CC errors, RTP duplicates, late (reordered) packets and PCR discontinuities.

use crate::rng::Rng;
use crate::scenario::{FaultConfig, Scenario};

const TAG_STREAM_FAULTS: u64 = 0x4D43_0003;

/// The stream faults of one channel, in absolute nanoseconds.
pub(crate) struct StreamFaults {
    /// `[t0, t1)` and probability per datagram.
    pub duplicates: Vec<(u64, u64, f64)>,
    pub reorders: Vec<(u64, u64, f64)>,
    /// `(at, jump)`: from `at` on, PCRs are shifted by `jump` more 27 MHz ticks.
    pub pcr_jumps: Vec<(u64, i64)>,
    pub rng: Rng,
}

impl Default for StreamFaults {
    fn default() -> Self {
        StreamFaults {
            duplicates: Vec::new(),
            reorders: Vec::new(),
            pcr_jumps: Vec::new(),
            rng: Rng::new(0),
        }
    }
}

impl StreamFaults {
    /// Whether the datagram sent at `t` is duplicated.
    pub fn duplicate(&mut self, t: u64) -> bool {
        let rng = &mut self.rng;
        self.duplicates
            .iter()
            .any(|&(a, b, p)| t >= a && t < b && rng.chance(p))
    }

    /// Whether the datagram sent at `t` is held back behind the next one.
    pub fn reorder(&mut self, t: u64) -> bool {
        let rng = &mut self.rng;
        self.reorders
            .iter()
            .any(|&(a, b, p)| t >= a && t < b && rng.chance(p))
    }
}

/// The stream faults of channel number `idx` of the scenario.
pub(crate) fn for_channel(sc: &Scenario, idx: usize, seed: u64, start_ns: u64) -> StreamFaults {
    let Some(name) = sc.channels.get(idx).map(|c| c.name.as_str()) else {
        return StreamFaults::default();
    };
    let at = |s: f64| start_ns + (s.max(0.0) * 1e9) as u64;
    let applies = |chs: &[String]| chs.is_empty() || chs.iter().any(|c| c == name);
    let mut f = StreamFaults {
        rng: Rng::stream(seed, TAG_STREAM_FAULTS, idx as u64),
        ..StreamFaults::default()
    };
    for fc in &sc.faults {
        match fc {
            FaultConfig::MulticastDuplicate {
                channels,
                start_s,
                end_s,
                probability,
            } if applies(channels) => f.duplicates.push((at(*start_s), at(*end_s), *probability)),
            FaultConfig::MulticastReorder {
                channels,
                start_s,
                end_s,
                probability,
            } if applies(channels) => f.reorders.push((at(*start_s), at(*end_s), *probability)),
            FaultConfig::PcrDiscontinuity {
                channels,
                at_s,
                jump_ms,
            } if applies(channels) => f.pcr_jumps.push((at(*at_s), (jump_ms * 27_000.0) as i64)),
            _ => {}
        }
    }
    f.pcr_jumps.sort_by_key(|j| j.0);
    f
}
