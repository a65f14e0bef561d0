//! [`SteadyClock`]: the caller's clock readings turned into a clock that never goes back, for
//! timers.
//!
//! It owns two numbers: the latest reading the caller passed in, and the steady time that
//! reading maps to. It never reads a clock itself. Timers are set and compared in steady
//! time, so a deadline is a span of elapsed time after the moment it was set: a reading that
//! steps backwards pauses the steady clock for that one step instead of rewinding it, and a
//! timer set before the step still comes due after the same elapsed time. Without this, a
//! wall clock stepped back by an hour would hold every deadline an hour away. A step forwards
//! is followed, so timers may fire early; every timer of the protocol tolerates that (its
//! work is a retransmission or a check that is repeated anyway).
//!
//! While readings never go back, steady time equals the reading, so a caller with a
//! monotonic clock sees no difference. The hybrid logical clock keeps using the raw wall
//! readings: timestamps must follow wall time, and it has its own guard against steps back.

/// Caller clock readings as a clock that never goes back. See the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SteadyClock {
    /// The latest reading, and the steady time it maps to; `None` before the first.
    latest: Option<Latest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Latest {
    reading_ns: u64,
    steady_ns: u64,
}

impl SteadyClock {
    /// A clock that has seen no reading yet.
    #[must_use]
    pub const fn new() -> Self {
        Self { latest: None }
    }

    /// Takes the caller's clock reading `reading_ns` and returns the steady time now. The
    /// first reading maps to itself; after that steady time advances by how far the reading
    /// advanced since the previous one, or not at all when it went back.
    pub fn advance(&mut self, reading_ns: u64) -> u64 {
        let steady_ns = match self.latest {
            None => reading_ns,
            Some(latest) => latest.steady_ns.saturating_add(reading_ns.saturating_sub(latest.reading_ns)),
        };
        if let Some(latest) = self.latest {
            assert!(steady_ns >= latest.steady_ns, "steady time never goes back");
        }
        self.latest = Some(Latest { reading_ns, steady_ns });
        steady_ns
    }

    /// Whether any reading was taken yet.
    #[must_use]
    pub const fn has_reading(&self) -> bool {
        self.latest.is_some()
    }

    /// The steady time `reading_ns` would map to, without taking it: for queries that must
    /// not change state.
    #[must_use]
    pub fn peek(&self, reading_ns: u64) -> u64 {
        let mut copy = *self;
        copy.advance(reading_ns)
    }

    /// The steady time of the latest reading (0 before the first).
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        self.latest.map_or(0, |latest| latest.steady_ns)
    }

    /// The latest raw reading (0 before the first).
    #[must_use]
    pub fn reading_ns(&self) -> u64 {
        self.latest.map_or(0, |latest| latest.reading_ns)
    }

    /// Converts a steady deadline to the caller's clock, for arming the caller's timer: the
    /// latest reading plus the steady time still to wait (the latest reading itself when the
    /// deadline has passed). Before the first reading the deadline is returned unchanged.
    #[must_use]
    pub fn to_reading_ns(&self, deadline_ns: u64) -> u64 {
        match self.latest {
            None => deadline_ns,
            Some(latest) => latest.reading_ns.saturating_add(deadline_ns.saturating_sub(latest.steady_ns)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: while readings rise, steady time is the reading and deadlines map to themselves,
    /// so a monotonic caller sees no change. Method: feed rising readings.
    #[test]
    fn rising_readings_are_unchanged() {
        let mut clock = SteadyClock::new();
        assert_eq!(clock.to_reading_ns(7), 7, "before any reading");
        for reading in [5, 5, 9, 1_000, u64::MAX / 2] {
            assert_eq!(clock.advance(reading), reading);
            assert_eq!(clock.to_reading_ns(reading + 250), reading + 250);
        }
    }

    /// Goal: a step back neither rewinds steady time nor postpones a deadline set before it.
    /// Method: set a deadline 100 ns after reading 10,000, step the reading back to 50, and
    /// check the deadline is due after 100 ns of further readings, not at 10,100.
    #[test]
    fn a_step_back_pauses_instead_of_rewinding() {
        let mut clock = SteadyClock::new();
        let deadline = clock.advance(10_000) + 100;
        assert_eq!(clock.advance(50), 10_000, "the step back is not elapsed time");
        assert_eq!(clock.to_reading_ns(deadline), 150, "the caller's timer is 100 ns away");
        assert_eq!(clock.advance(149), 10_099);
        assert!(clock.now_ns() < deadline);
        assert_eq!(clock.advance(150), deadline);
        assert_eq!(clock.reading_ns(), 150);
        assert_eq!(clock.to_reading_ns(deadline - 1), 150, "a passed deadline is due now");
    }

    /// Goal: extreme readings never panic or overflow. Method: alternate 0 and `u64::MAX`.
    #[test]
    fn extreme_readings_saturate() {
        let mut clock = SteadyClock::new();
        assert_eq!(clock.advance(u64::MAX), u64::MAX);
        assert_eq!(clock.advance(0), u64::MAX);
        assert_eq!(clock.advance(u64::MAX), u64::MAX);
        assert_eq!(clock.to_reading_ns(u64::MAX), u64::MAX);
    }
}
