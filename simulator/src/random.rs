//! Seeds and random streams.
//!
//! One `u64` seed per run. Every subsystem (network, disk, clocks, workload, chaos) and every
//! node draws from its own ChaCha8 stream derived from that seed, so adding a node or a
//! workload item never reshuffles the other streams. Nothing here touches the OS RNG.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// The independent random streams of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stream {
    /// Message loss, duplication and latency.
    Network,
    /// fsync latency, torn tails, read corruption.
    Disk,
    /// Clock skew and drift.
    Clock,
    /// Random workload writes.
    Workload,
    /// Chaos fault schedules.
    Chaos,
    /// The process on node `index` (its handshake keys, jitter, ...).
    Node(u32),
    /// The static identity key of node `index`.
    Identity(u32),
    /// Workload item `index` (so adding an item leaves the others' draws alone).
    WorkloadItem(u32),
    /// Chaos fault kind `index`.
    ChaosKind(u32),
    /// Anything else a caller wants, keyed by a number of its choosing.
    Custom(u32),
}

impl Stream {
    fn id(self) -> u64 {
        match self {
            Self::Network => 1,
            Self::Disk => 2,
            Self::Clock => 3,
            Self::Workload => 4,
            Self::Chaos => 5,
            Self::Node(index) => (1 << 32) | u64::from(index),
            Self::Custom(index) => (2 << 32) | u64::from(index),
            Self::Identity(index) => (3 << 32) | u64::from(index),
            Self::WorkloadItem(index) => (4 << 32) | u64::from(index),
            Self::ChaosKind(index) => (5 << 32) | u64::from(index),
        }
    }
}

/// SplitMix64: expands the run seed into a ChaCha key (a fixed, documented bijection).
fn split_mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut value = *state;
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// The ChaCha8 stream `stream` of run seed `seed`: key from the seed, ChaCha stream number
/// from the subsystem, so streams are independent by construction.
#[must_use]
pub fn stream(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut state = seed;
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&split_mix(&mut state).to_le_bytes());
    }
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stream.id());
    rng
}

/// A uniform integer in `min..=max` (Lemire's multiply-and-reject, unbiased).
#[inline(always)]
pub fn uniform(rng: &mut impl RngCore, min: u64, max: u64) -> u64 {
    if min >= max {
        return min;
    }
    let span = max - min;
    if span == u64::MAX {
        return rng.next_u64();
    }
    let range = span + 1;
    // Lemire's method: a draw is taken when the low half of the product is at least
    // `2^64 mod range`, which is below `range`; so a low half of `range` or more is taken
    // without the division, which only the rare draws below `range` pay for.
    let mut product = u128::from(rng.next_u64()) * u128::from(range);
    if (product as u64) < range {
        let threshold = range.wrapping_neg() % range;
        while (product as u64) < threshold {
            product = u128::from(rng.next_u64()) * u128::from(range);
        }
    }
    min + (product >> 64) as u64
}

/// A uniform float in `[0, 1)` with 53 random bits.
pub fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True with probability `probability` (0 never draws).
pub fn chance(rng: &mut impl RngCore, probability: f64) -> bool {
    probability > 0.0 && unit(rng) < probability
}

/// A uniform signed integer in `-magnitude..=magnitude`.
pub fn signed(rng: &mut impl RngCore, magnitude: u64) -> i64 {
    let magnitude = magnitude.min(i64::MAX as u64);
    uniform(rng, 0, magnitude * 2) as i64 - magnitude as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let first: Vec<u64> = (0..4).map(|_| stream(7, Stream::Network).next_u64()).collect();
        assert!(first.windows(2).all(|pair| pair[0] == pair[1]));
        assert_ne!(stream(7, Stream::Network).next_u64(), stream(7, Stream::Disk).next_u64());
        assert_ne!(stream(7, Stream::Node(0)).next_u64(), stream(7, Stream::Node(1)).next_u64());
        assert_ne!(stream(7, Stream::Network).next_u64(), stream(8, Stream::Network).next_u64());
    }

    /// The division-free fast path draws exactly what the plain loop draws, so runs replay
    /// across the change: same values and same number of draws from the stream.
    #[test]
    fn uniform_draws_what_the_plain_rejection_loop_draws() {
        fn plain(rng: &mut impl RngCore, min: u64, max: u64) -> u64 {
            let range = max - min + 1;
            let threshold = range.wrapping_neg() % range;
            loop {
                let product = u128::from(rng.next_u64()) * u128::from(range);
                if (product as u64) >= threshold {
                    return min + (product >> 64) as u64;
                }
            }
        }
        // Ranges where rejection is rare and where it is common (just above 2^63).
        for (min, max) in [(0, 1), (1_000_000, 20_000_000), (0, 9), (5, (1 << 63) + 5), (0, u64::MAX - 1)] {
            let (mut fast, mut reference) = (stream(3, Stream::Custom(1)), stream(3, Stream::Custom(1)));
            for _ in 0..2_000 {
                assert_eq!(uniform(&mut fast, min, max), plain(&mut reference, min, max));
            }
            assert_eq!(fast.next_u64(), reference.next_u64(), "as many draws taken");
        }
    }

    #[test]
    fn uniform_stays_in_range_and_covers_it() {
        let mut rng = stream(1, Stream::Custom(0));
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let value = uniform(&mut rng, 10, 14);
            assert!((10..=14).contains(&value));
            seen[(value - 10) as usize] = true;
        }
        assert!(seen.iter().all(|seen| *seen));
        assert_eq!(uniform(&mut rng, 3, 3), 3);
        assert_eq!(uniform(&mut rng, 5, 2), 5);
        assert!(!chance(&mut rng, 0.0));
        assert!(chance(&mut rng, 1.0));
    }
}
