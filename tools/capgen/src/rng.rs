//! A small seeded PRNG: xoshiro256** seeded through SplitMix64.
//!
//! Every component draws from its own stream (`Rng::stream(seed, tag, index)`), so
//! adding a channel does not change the flows of an unrelated player.

/// SplitMix64 step (Steele, Lea, Flood 2014), used for seeding and hashing.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256** 1.0 (Blackman, Vigna).
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from one 64-bit value.
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    /// An independent stream for component `tag` number `index`.
    pub fn stream(seed: u64, tag: u64, index: u64) -> Rng {
        let mut h = seed ^ 0x5DEE_CE66_D1CE_4E5B;
        let a = splitmix64(&mut h);
        let mut h2 = a ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let b = splitmix64(&mut h2);
        let mut h3 = b ^ index.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        Rng::new(splitmix64(&mut h3))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in [0, 1).
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [lo, hi] (inclusive); `lo` when hi <= lo.
    #[inline]
    pub fn range_u64(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo + 1;
        if span == 0 {
            return self.next_u64();
        }
        lo + ((self.next_u64() as u128 * span as u128) >> 64) as u64
    }

    /// Uniform real in [lo, hi].
    #[inline]
    pub fn range_f64(&mut self, r: [f64; 2]) -> f64 {
        r[0] + (r[1] - r[0]) * self.f64()
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.f64() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // Reference output of SplitMix64 seeded with 1234567 (from the public reference code).
        let mut s = 1_234_567u64;
        assert_eq!(splitmix64(&mut s), 6_457_827_717_110_365_317);
        assert_eq!(splitmix64(&mut s), 3_203_168_211_198_807_973);
    }

    #[test]
    fn ranges_stay_inside() {
        let mut r = Rng::new(7);
        for _ in 0..10_000 {
            let v = r.range_u64(3, 9);
            assert!((3..=9).contains(&v));
            let f = r.range_f64([1.5, 2.5]);
            assert!((1.5..=2.5).contains(&f));
        }
        let mut a = Rng::stream(1, 2, 3);
        let mut b = Rng::stream(1, 2, 4);
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
