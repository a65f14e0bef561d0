//! Per-node clocks: virtual time seen through a skew, a drift and scripted jumps.
//!
//! `local = virtual + offset + virtual * drift_ppm / 1e6`, where `offset` starts as the skew
//! and takes every jump. Nodes only ever see their own clock; the simulator converts their
//! timer deadlines back to virtual time.
//!
//! A local clock never stands still: it reads between 0 and [`LOCAL_NS_CEILING`] when it
//! starts and after every jump, and from there runs at a rate of at least 0.9 (drift is
//! bounded by [`DRIFT_PPM_MAX`]), so it never needs clamping and every later reading is
//! larger. A jump that would take the clock below 0 (before its epoch) or above the ceiling
//! is cut short at that bound; the simulator traces it. A clock that clamped at zero instead
//! stood still for as long as the jump was deep, and with it every timer of the node
//! (issue #12).

/// The highest reading a clock starts at or jumps to: 2^62 ns, about 146 years. Virtual time
/// is at most `i64::MAX` ns and a clock runs at most 1.1 times as fast, so no reading
/// reaches `u64::MAX`.
pub const LOCAL_NS_CEILING: u64 = 1 << 62;

/// Largest drift magnitude in parts per million: clocks run at a rate within 0.9 to 1.1.
pub const DRIFT_PPM_MAX: i64 = 100_000;

const _: () = assert!(
    (LOCAL_NS_CEILING as u128) + (i64::MAX as u128) * (1_000_000 + DRIFT_PPM_MAX as u128) / 1_000_000
        < u64::MAX as u128
);

/// `12.345s`-style rendering of a virtual time (milliseconds, cut, not rounded).
#[must_use]
pub fn format_ns(at_ns: u64) -> String {
    format!("{}.{:03}s", at_ns / 1_000_000_000, at_ns % 1_000_000_000 / 1_000_000)
}

/// One node's view of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeClock {
    /// Constant offset from virtual time (skew), plus every scripted jump so far.
    pub offset_ns: i64,
    /// Rate error in parts per million; positive runs fast.
    pub drift_ppm: i64,
}

impl NodeClock {
    /// A clock that reads `offset_ns` at virtual time 0, cut to `0..=LOCAL_NS_CEILING`, with
    /// the given drift, cut to `±DRIFT_PPM_MAX`.
    #[must_use]
    pub fn new(offset_ns: i64, drift_ppm: i64) -> Self {
        let offset_ns = offset_ns.clamp(0, LOCAL_NS_CEILING as i64);
        Self { offset_ns, drift_ppm: drift_ppm.clamp(-DRIFT_PPM_MAX, DRIFT_PPM_MAX) }
    }

    /// The reading at virtual time `virtual_ns`, unclamped.
    fn reading(&self, virtual_ns: u64) -> i128 {
        // Every event reads a clock: 64-bit arithmetic when it is exact (no drift, or a product
        // that fits), since a 128-bit division is a library call. Both truncate toward zero.
        let drift = match i64::try_from(virtual_ns).ok().and_then(|ns| ns.checked_mul(self.drift_ppm)) {
            Some(product) => i128::from(product / 1_000_000),
            None => i128::from(virtual_ns) * i128::from(self.drift_ppm) / 1_000_000,
        };
        i128::from(virtual_ns) + i128::from(self.offset_ns) + drift
    }

    /// The local reading at virtual time `virtual_ns`, for any virtual time at or after the
    /// clock's start and its latest jump (the simulator never asks about the past).
    #[must_use]
    pub fn local_ns(&self, virtual_ns: u64) -> u64 {
        let local = self.reading(virtual_ns);
        debug_assert!(local >= 0, "a local clock never reads before its epoch");
        local.clamp(0, i128::from(u64::MAX)) as u64
    }

    /// The virtual duration after which this clock has advanced by `local_delta_ns`
    /// (rounded up, so a timer never fires before its local deadline).
    #[must_use]
    pub fn virtual_delta_ns(&self, local_delta_ns: u64) -> u64 {
        let rate = 1_000_000 + i128::from(self.drift_ppm);
        // A clock without drift runs at the virtual rate.
        if rate <= 0 || self.drift_ppm == 0 {
            return local_delta_ns;
        }
        let numerator = i128::from(local_delta_ns) * 1_000_000;
        let delta = (numerator + rate - 1) / rate;
        delta.clamp(0, i128::from(u64::MAX)) as u64
    }

    /// Moves the clock by `by_ns` (negative jumps backwards) at virtual time `virtual_ns`,
    /// cut short so that it reads between 0 and [`LOCAL_NS_CEILING`] afterwards. Returns the
    /// jump applied, which differs from `by_ns` only when it was cut.
    pub fn jump(&mut self, virtual_ns: u64, by_ns: i64) -> i64 {
        let before = self.reading(virtual_ns);
        let after = (before + i128::from(by_ns)).clamp(0, i128::from(LOCAL_NS_CEILING).max(before));
        // Cutting only shortens the jump: `after - before` lies between 0 and `by_ns`.
        let applied = i64::try_from(after - before).expect("a cut jump lies between 0 and the requested one");
        self.offset_ns = self.offset_ns.saturating_add(applied);
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_drift_and_jumps() {
        let mut clock = NodeClock::new(5_000, 100);
        assert_eq!(clock.local_ns(0), 5_000);
        assert_eq!(clock.local_ns(1_000_000_000), 1_000_000_000 + 5_000 + 100_000);
        assert_eq!(clock.jump(1_000_000_000, -500_000_000), -500_000_000);
        assert_eq!(clock.local_ns(1_000_000_000), 500_000_000 + 5_000 + 100_000);
        let fast = NodeClock::new(0, DRIFT_PPM_MAX);
        assert_eq!(fast.virtual_delta_ns(11), 10, "a clock running 1.1x needs less virtual time");
        assert_eq!(NodeClock::new(0, -2_000_000).drift_ppm, -DRIFT_PPM_MAX, "drift is cut to its bound");
        let exact = NodeClock::default();
        assert_eq!(exact.virtual_delta_ns(10), 10);
    }

    /// Goal: no clock stands still, whatever its skew and jumps (issue #12). Method: jump an
    /// hour back one second in, as `tests/scenarios/clock-jump-before-epoch.yaml` does, and
    /// start a clock with a negative skew; both must read 0 at worst and then keep ticking.
    #[test]
    fn a_clock_never_stands_still() {
        let second = 1_000_000_000u64;
        let mut clock = NodeClock::new(0, -DRIFT_PPM_MAX);
        let applied = clock.jump(second, -3_600 * 1_000_000_000);
        assert_eq!(applied, -900_000_000, "cut at the epoch: the clock read 0.9 s");
        assert_eq!(clock.local_ns(second), 0);
        assert_eq!(clock.local_ns(second + 10), 9, "ticking at 0.9");
        assert!(clock.local_ns(2 * second) > clock.local_ns(second + 10));
        let skewed = NodeClock::new(-5_000, 0);
        assert_eq!(skewed.local_ns(0), 0, "a negative start is cut to the epoch");
        assert_eq!(skewed.local_ns(7), 7);
        let mut high = NodeClock::new(i64::MAX, DRIFT_PPM_MAX);
        assert_eq!(high.local_ns(0), LOCAL_NS_CEILING);
        assert_eq!(high.jump(0, i64::MAX), 0, "cut at the ceiling");
        assert!(high.local_ns(i64::MAX as u64) < u64::MAX);
        assert_eq!(high.jump(i64::MAX as u64, i64::MIN), i64::MIN, "a jump back from above the ceiling");
    }

    #[test]
    fn timers_never_fire_early() {
        let clock = NodeClock::new(0, -300);
        for delta in [1u64, 7, 1_000, 999_999_937] {
            let virtual_delta = clock.virtual_delta_ns(delta);
            let start = 123_456_789;
            assert!(clock.local_ns(start + virtual_delta) >= clock.local_ns(start) + delta - 1);
        }
    }

    proptest::proptest! {
        /// The 64-bit fast paths give exactly what 128-bit arithmetic gives.
        #[test]
        fn readings_and_timer_delays_match_the_wide_arithmetic(
            virtual_ns in proptest::prop_oneof![0u64..=u64::MAX, 0u64..1 << 50],
            drift_ppm in -DRIFT_PPM_MAX..=DRIFT_PPM_MAX,
            offset_ns in proptest::prop_oneof![proptest::num::i64::ANY, 0i64..1 << 40],
            local_delta_ns in 0u64..=u64::MAX,
        ) {
            let clock = NodeClock::new(offset_ns, drift_ppm);
            let wide = i128::from(virtual_ns)
                + i128::from(clock.offset_ns)
                + i128::from(virtual_ns) * i128::from(drift_ppm) / 1_000_000;
            proptest::prop_assert_eq!(clock.reading(virtual_ns), wide);
            let rate = 1_000_000 + i128::from(drift_ppm);
            let delay = ((i128::from(local_delta_ns) * 1_000_000 + rate - 1) / rate).clamp(0, i128::from(u64::MAX)) as u64;
            proptest::prop_assert_eq!(clock.virtual_delta_ns(local_delta_ns), delay);
        }
    }
}
