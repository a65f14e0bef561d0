//! Per-node clocks: virtual time seen through a skew, a drift and scripted jumps.
//!
//! `local = virtual + offset + virtual * drift_ppm / 1e6 + jumps`. Nodes only ever see their
//! own clock; the simulator converts their timer deadlines back to virtual time.

/// One node's view of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeClock {
    /// Constant offset from virtual time (skew), plus every scripted jump so far.
    pub offset_ns: i64,
    /// Rate error in parts per million; positive runs fast.
    pub drift_ppm: i64,
}

impl NodeClock {
    /// A clock with the given skew and drift.
    #[must_use]
    pub const fn new(offset_ns: i64, drift_ppm: i64) -> Self {
        Self { offset_ns, drift_ppm }
    }

    /// The local reading at virtual time `virtual_ns`. Never negative: a node's clock
    /// saturates at zero (it cannot read before its epoch).
    #[must_use]
    pub fn local_ns(&self, virtual_ns: u64) -> u64 {
        let drift = i128::from(virtual_ns) * i128::from(self.drift_ppm) / 1_000_000;
        let local = i128::from(virtual_ns) + i128::from(self.offset_ns) + drift;
        local.clamp(0, i128::from(u64::MAX)) as u64
    }

    /// The virtual duration after which this clock has advanced by `local_delta_ns`
    /// (rounded up, so a timer never fires before its local deadline).
    #[must_use]
    pub fn virtual_delta_ns(&self, local_delta_ns: u64) -> u64 {
        let rate = 1_000_000 + i128::from(self.drift_ppm);
        if rate <= 0 {
            return local_delta_ns;
        }
        let numerator = i128::from(local_delta_ns) * 1_000_000;
        let delta = (numerator + rate - 1) / rate;
        delta.clamp(0, i128::from(u64::MAX)) as u64
    }

    /// Moves the clock by `by_ns` (negative jumps backwards).
    pub fn jump(&mut self, by_ns: i64) {
        self.offset_ns = self.offset_ns.saturating_add(by_ns);
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
        clock.jump(-2_000_000_000);
        assert_eq!(clock.local_ns(1_000_000_000), 0, "saturates at the epoch");
        let fast = NodeClock::new(0, 1_000_000);
        assert_eq!(fast.virtual_delta_ns(10), 5, "a clock running 2x needs half the virtual time");
        let exact = NodeClock::default();
        assert_eq!(exact.virtual_delta_ns(10), 10);
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
}
