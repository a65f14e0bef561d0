//! The hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014) that stamps
//! every local write.
//!
//! It owns one [`Timestamp`]: the largest this node has issued or merged. It never reads a
//! clock itself: the caller passes the wall time in nanoseconds into every call, so the
//! simulator can run it in virtual time. It knows nothing of entries, the WAL or peers.
//!
//! Guarantees, for a [`HybridClock`] used as documented:
//! - [`HybridClock::now`] is strictly monotonic, even when the wall clock jumps backwards;
//! - a timestamp issued after [`HybridClock::observe`] of `remote` is greater than `remote`,
//!   so a write that causally follows another wins over it under last-writer-wins;
//! - a remote more than `drift_ms_max` ahead of our wall clock is refused, so one node with a
//!   clock far in the future cannot drag everyone's timestamps after it;
//! - after [`HybridClock::restore`], timestamps continue above those issued before a restart.

use thiserror::Error;

use crate::entry::Timestamp;

const NANOSECONDS_PER_MILLISECOND: u64 = 1_000_000;

// Any `u64` wall time in nanoseconds fits the 48-bit physical part without truncation.
const _: () = assert!(u64::MAX / NANOSECONDS_PER_MILLISECOND < 1 << (64 - Timestamp::LOGICAL_BITS));

/// Why the clock refused a remote timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ClockError {
    /// The remote's physical time lies more than the allowed drift beyond our wall clock.
    /// The clock is unchanged; the entry carrying it is still valid and should be stored.
    #[error("remote timestamp {remote} is more than {drift_ms_max} ms ahead of wall clock {wall_ms} ms")]
    RemoteTooFarAhead {
        /// The refused timestamp.
        remote: Timestamp,
        /// Our wall clock when it arrived, in milliseconds.
        wall_ms: u64,
        /// The configured bound.
        drift_ms_max: u64,
    },
}

/// A hybrid logical clock: physical milliseconds and a 16-bit logical counter packed into a
/// [`Timestamp`], so that plain `u64` order is HLC order.
///
/// Call order: after recovery, [`restore`](Self::restore) the largest timestamp of this
/// node's own recovered entries and [`observe`](Self::observe) those of remote entries (an
/// error there is harmless); then [`now`](Self::now) for each local write and `observe` for
/// each received entry, in any interleaving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HybridClock {
    /// The largest timestamp issued, merged or restored; `Timestamp(0)` at first.
    last: Timestamp,
    drift_ms_max: u64,
}

impl HybridClock {
    /// A clock that refuses remote timestamps more than `drift_ms_max` milliseconds ahead of
    /// the local wall clock.
    #[must_use]
    pub const fn new(drift_ms_max: u64) -> Self {
        Self { last: Timestamp(0), drift_ms_max }
    }

    /// A timestamp for a local event at wall time `wall_ns`: the wall time's millisecond if
    /// it is beyond everything seen so far, otherwise the last timestamp plus one.
    ///
    /// Adding one to the packed value carries a full logical counter into the next physical
    /// millisecond, so a burst of more than 65,536 events within one millisecond borrows time
    /// from the future rather than failing. The result is always greater than every earlier
    /// result, every merged remote and every restored timestamp, except at the unreachable
    /// ceiling `Timestamp(u64::MAX)` (physical year ~10,889, refused by `observe` for any
    /// sane drift bound), where it saturates instead of panicking.
    ///
    /// One exception keeps a clock that was far ahead from stamping every later write in its
    /// future: when `last` lies more than `drift_ms_max` beyond the wall clock (our own clock
    /// ran far ahead and was put right, or we restored such a timestamp), the clock starts
    /// again from the wall time. Writes to a key then still beat every version of it their
    /// node holds, by the node's own rule (PROTOCOL.md 8.2), not by the clock's.
    pub fn now(&mut self, wall_ns: u64) -> Timestamp {
        let wall_ms = wall_ns / NANOSECONDS_PER_MILLISECOND;
        if self.last.physical_ms() > wall_ms.saturating_add(self.drift_ms_max) {
            self.last = Timestamp(0);
        }
        let wall = Timestamp::new(wall_ms, 0);
        let next = if wall > self.last { wall } else { Timestamp(self.last.0.saturating_add(1)) };
        self.last = next;
        next
    }

    /// Merges a timestamp received from a peer at wall time `wall_ns`, so that every later
    /// [`now`](Self::now) exceeds it.
    ///
    /// # Errors
    /// [`ClockError::RemoteTooFarAhead`] when `remote`'s physical milliseconds exceed our
    /// wall clock's by more than `drift_ms_max`; the clock is then left unchanged.
    pub fn observe(&mut self, remote: Timestamp, wall_ns: u64) -> Result<(), ClockError> {
        let wall_ms = wall_ns / NANOSECONDS_PER_MILLISECOND;
        if remote.physical_ms() > wall_ms.saturating_add(self.drift_ms_max) {
            return Err(ClockError::RemoteTooFarAhead { remote, wall_ms, drift_ms_max: self.drift_ms_max });
        }
        self.last = self.last.max(remote);
        Ok(())
    }

    /// Raises the clock to at least `at_least` without a drift check, so timestamps never go
    /// backwards across a restart. Pass the largest timestamp of this node's own recovered
    /// entries (remote ones go through [`observe`](Self::observe)). Lower values are ignored.
    pub fn restore(&mut self, at_least: Timestamp) {
        self.last = self.last.max(at_least);
    }

    /// The largest timestamp issued, merged or restored so far; `Timestamp(0)` initially.
    #[must_use]
    pub const fn last(&self) -> Timestamp {
        self.last
    }

    /// The configured drift bound in milliseconds.
    #[must_use]
    pub const fn drift_ms_max(&self) -> u64 {
        self.drift_ms_max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = NANOSECONDS_PER_MILLISECOND;

    #[test]
    fn follows_the_wall_clock() {
        // Goal: with a steadily advancing wall clock, timestamps are the wall milliseconds.
        let mut clock = HybridClock::new(1000);
        assert_eq!(clock.last(), Timestamp(0));
        assert_eq!(clock.now(5 * MS), Timestamp::new(5, 0));
        assert_eq!(clock.now(7 * MS + 999_999), Timestamp::new(7, 0));
        assert_eq!(clock.last(), Timestamp::new(7, 0));
    }

    #[test]
    fn same_millisecond_counts_logically() {
        let mut clock = HybridClock::new(1000);
        assert_eq!(clock.now(5 * MS), Timestamp::new(5, 0));
        assert_eq!(clock.now(5 * MS + 1), Timestamp::new(5, 1));
        assert_eq!(clock.now(5 * MS + 2), Timestamp::new(5, 2));
    }

    #[test]
    fn first_reading_at_wall_zero_is_not_zero() {
        // Goal: Timestamp(0) means "nothing yet" and is never issued.
        let mut clock = HybridClock::new(1000);
        assert_eq!(clock.now(0), Timestamp(1));
    }

    #[test]
    fn monotonic_when_the_wall_clock_jumps_backwards() {
        // Goal: strict monotonicity across a backward jump within the drift bound. Method:
        // jump back 10 s (the bound is 60 s) and take many readings; each exceeds the one
        // before, and the physical part stays put until the wall clock catches up.
        let mut clock = HybridClock::new(60_000);
        let before = clock.now(20_000 * MS);
        let mut previous = before;
        for step in 0..1000 {
            let next = clock.now(10_000 * MS + step * MS);
            assert!(next > previous, "{next} after {previous}");
            assert_eq!(next.physical_ms(), 20_000);
            previous = next;
        }
        assert_eq!(previous, Timestamp::new(20_000, 1000));
        // Once the wall clock passes the old high-water mark, it takes over again.
        assert_eq!(clock.now(20_001 * MS), Timestamp::new(20_001, 0));
    }

    #[test]
    fn forward_jump_resets_the_logical_counter() {
        let mut clock = HybridClock::new(1000);
        clock.now(5 * MS);
        clock.now(5 * MS);
        assert_eq!(clock.now(3_600_000 * MS), Timestamp::new(3_600_000, 0));
    }

    #[test]
    fn logical_overflow_advances_physical_time() {
        // Goal: 65,536 events in one millisecond borrow the next millisecond, never panic.
        let mut clock = HybridClock::new(1000);
        clock.restore(Timestamp::new(5, u16::MAX - 1));
        assert_eq!(clock.now(5 * MS), Timestamp::new(5, u16::MAX));
        assert_eq!(clock.now(5 * MS), Timestamp::new(6, 0));
        assert_eq!(clock.now(5 * MS), Timestamp::new(6, 1));
        // The wall clock reaching millisecond 6 does not go back to logical 0.
        assert_eq!(clock.now(6 * MS), Timestamp::new(6, 2));
    }

    #[test]
    fn a_clock_far_ahead_of_the_wall_starts_again_from_it() {
        // Goal: a clock whose last timestamp lies more than the drift bound ahead of the
        // wall clock (it ran a year ahead and was put right, or restored such a timestamp)
        // stamps from the wall time again instead of staying a year ahead; within the bound
        // it stays monotonic. Method: restore a timestamp a year ahead, read at wall 10 s.
        const YEAR_MS: u64 = 365 * 24 * 3_600_000;
        let mut clock = HybridClock::new(60_000);
        clock.restore(Timestamp::new(YEAR_MS, 3));
        assert_eq!(clock.now(10_000 * MS), Timestamp::new(10_000, 0));
        assert_eq!(clock.now(10_000 * MS), Timestamp::new(10_000, 1));
        // Exactly at the bound it does not restart.
        let mut clock = HybridClock::new(60_000);
        clock.restore(Timestamp::new(70_000, 3));
        assert_eq!(clock.now(10_000 * MS), Timestamp::new(70_000, 4));
    }

    #[test]
    fn saturates_at_the_ceiling_instead_of_panicking() {
        // An unbounded drift never restarts, so the ceiling is reachable.
        let mut clock = HybridClock::new(u64::MAX);
        clock.restore(Timestamp(u64::MAX));
        assert_eq!(clock.now(u64::MAX), Timestamp(u64::MAX));
        assert_eq!(clock.now(0), Timestamp(u64::MAX));
    }

    #[test]
    fn observe_moves_later_readings_past_the_remote() {
        let mut clock = HybridClock::new(1000);
        clock.now(100 * MS);
        let remote = Timestamp::new(600, 9);
        assert_eq!(clock.observe(remote, 100 * MS), Ok(()));
        assert_eq!(clock.last(), remote);
        assert_eq!(clock.now(100 * MS), Timestamp::new(600, 10));
    }

    #[test]
    fn observe_of_an_older_remote_changes_nothing() {
        let mut clock = HybridClock::new(1000);
        let local = clock.now(100 * MS);
        assert_eq!(clock.observe(Timestamp::new(50, 3), 100 * MS), Ok(()));
        assert_eq!(clock.last(), local);
    }

    #[test]
    fn observe_rejects_beyond_the_drift_bound_without_merging() {
        // Goal: the bound is inclusive and a refused remote leaves the clock alone.
        let mut clock = HybridClock::new(1000);
        let local = clock.now(100 * MS);
        let remote = Timestamp::new(1101, 0);
        assert_eq!(
            clock.observe(remote, 100 * MS + 999_999),
            Err(ClockError::RemoteTooFarAhead { remote, wall_ms: 100, drift_ms_max: 1000 })
        );
        assert_eq!(clock.last(), local);
        assert_eq!(clock.now(100 * MS), Timestamp::new(100, 1));
        // Exactly at the bound, any logical counter is accepted.
        assert_eq!(clock.observe(Timestamp::new(1100, u16::MAX), 100 * MS), Ok(()));
        assert_eq!(clock.now(100 * MS), Timestamp::new(1101, 0));
    }

    #[test]
    fn drift_bound_does_not_overflow() {
        let mut clock = HybridClock::new(u64::MAX);
        assert_eq!(clock.observe(Timestamp::new(1 << 47, 0), u64::MAX), Ok(()));
        assert_eq!(clock.drift_ms_max(), u64::MAX);
    }

    #[test]
    fn restore_keeps_timestamps_rising_across_a_restart() {
        // Goal: a restarted node whose wall clock went backwards still issues larger
        // timestamps than before the crash.
        let mut before = HybridClock::new(60_000);
        let last_before_crash = before.now(50_000 * MS);
        let mut after = HybridClock::new(60_000);
        after.restore(last_before_crash);
        assert_eq!(after.now(40_000 * MS), Timestamp::new(50_000, 1));
        // A lower restore is ignored.
        after.restore(Timestamp::new(10, 0));
        assert_eq!(after.last(), Timestamp::new(50_000, 1));
    }

    proptest::proptest! {
        #[test]
        fn now_exceeds_everything_before_it(
            steps in proptest::collection::vec((0u64..4, 0u64..10_000, 0u64..20_000), 1..200),
        ) {
            // Goal: under any interleaving of readings, merges and restores with a wall clock
            // that wanders both ways, each reading exceeds every earlier reading and every
            // accepted remote, unless that mark lies more than the drift bound ahead of the
            // wall clock: then the reading starts again from the wall time. Method: track that
            // high-water mark beside the clock.
            let mut clock = HybridClock::new(500);
            let mut high = Timestamp(0);
            for (kind, wall_ms, remote_ms) in steps {
                let wall_ns = wall_ms * MS;
                let remote = Timestamp::new(remote_ms, (remote_ms % 7) as u16);
                match kind {
                    0 | 1 => {
                        if high.physical_ms() > wall_ms + 500 {
                            high = Timestamp(0);
                        }
                        let next = clock.now(wall_ns);
                        proptest::prop_assert!(next > high);
                        proptest::prop_assert!(next.physical_ms() >= wall_ms);
                        high = next;
                    }
                    2 => match clock.observe(remote, wall_ns) {
                        Ok(()) => high = high.max(remote),
                        Err(error) => {
                            proptest::prop_assert!(remote_ms > wall_ms + 500, "{error}");
                        }
                    },
                    _ => {
                        clock.restore(remote);
                        high = high.max(remote);
                    }
                }
                proptest::prop_assert_eq!(clock.last(), high);
            }
        }
    }

    #[test]
    fn error_message() {
        let error = ClockError::RemoteTooFarAhead {
            remote: Timestamp::new(9000, 1),
            wall_ms: 10,
            drift_ms_max: 1000,
        };
        assert_eq!(
            error.to_string(),
            "remote timestamp 9000.1 is more than 1000 ms ahead of wall clock 10 ms"
        );
    }
}
