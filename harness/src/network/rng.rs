//! The network's one pseudo-random generator (splitmix64), used in the test process by the
//! chaos scheduler (which must replay from a seed) and by the relays (which lose packets).
//!
//! splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
//! 2014; the seeder of xoshiro) passes BigCrush, is six lines, and its whole state is the
//! seed: what a schedule replayed from a seed printed in a failure needs. Not a crate: the
//! well-kept ones (`rand`, `fastrand`) either bring more than this needs or do not promise
//! that a seed gives the same numbers across their versions, and a replay must.

/// A splitmix64 generator. The same seed gives the same numbers, on every platform and in
/// every version of nstest that keeps this file.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed nobody chose: std's per-process random hasher keys (from the OS), mixed with
    /// the time, so two calls differ.
    pub(super) fn random_seed() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        hasher.finish()
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0.0..1.0`.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `0..n` (`n` > 0), by multiply-and-shift (Lemire): unbiased enough for
    /// the few choices a schedule makes, and the same on every platform.
    pub(super) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_published_sequence() {
        // The first outputs for seed 0 of the reference implementation (Vigna's
        // splitmix64.c).
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn draws_stay_in_range_and_spread() {
        let mut rng = Rng::new(42);
        let mut seen = [0usize; 5];
        for _ in 0..10_000 {
            seen[rng.below(5)] += 1;
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert!(
            seen.iter().all(|&n| (1_800..2_200).contains(&n)),
            "{seen:?}"
        );
        let lost = (0..10_000).filter(|_| rng.unit() < 0.3).count();
        assert!((2_700..3_300).contains(&lost), "{lost}");
        assert_ne!(Rng::random_seed(), Rng::random_seed());
    }
}
