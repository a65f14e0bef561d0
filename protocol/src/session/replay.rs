//! The receiver's anti-replay window over AEAD nonce counters (RFC 6479, as WireGuard does it).
//!
//! A bitmap of [`BLOCKS`] 64-bit words is used as a ring: bit `n % 64` of word `(n / 64) %
//! BLOCKS` records whether counter `n` was accepted. Moving the highest counter forward clears
//! whole words, which is why the ring holds one word more than the window needs: every counter
//! within [`REPLAY_WINDOW_WIDTH`] of the highest still has its own bit. Checking and recording
//! are separate steps so the caller records only after the envelope authenticated.

use super::SessionError;

/// How far below the highest accepted counter a counter may be and still be accepted (once).
pub const REPLAY_WINDOW_WIDTH: u64 = 2048;

const BITS_PER_BLOCK: u64 = 64;
/// Words in the ring: the window's words plus one that is being recycled.
const BLOCKS: usize = (REPLAY_WINDOW_WIDTH / BITS_PER_BLOCK) as usize + 1;

const _: () = assert!(REPLAY_WINDOW_WIDTH >= 1024);
const _: () = assert!(REPLAY_WINDOW_WIDTH.is_multiple_of(BITS_PER_BLOCK));

/// Which counters have been accepted, near the highest one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    /// The highest counter accepted; 0 before the first (0 is then still unmarked).
    highest: u64,
    bitmap: [u64; BLOCKS],
}

impl ReplayWindow {
    /// A window that has accepted nothing.
    pub(crate) const fn new() -> Self {
        Self { highest: 0, bitmap: [0; BLOCKS] }
    }

    fn position(counter: u64) -> (usize, u64) {
        // Cannot truncate: the remainder is below BLOCKS.
        (((counter / BITS_PER_BLOCK) % BLOCKS as u64) as usize, 1 << (counter % BITS_PER_BLOCK))
    }

    /// Checks `counter` without changing anything.
    ///
    /// # Errors
    /// [`SessionError::Replay`] when it was accepted before, [`SessionError::TooOld`] when it
    /// lies below the window.
    pub(crate) fn check(&self, counter: u64) -> Result<(), SessionError> {
        if counter > self.highest {
            return Ok(());
        }
        if self.highest - counter >= REPLAY_WINDOW_WIDTH {
            return Err(SessionError::TooOld { nonce: counter, nonce_highest: self.highest });
        }
        let (block, mask) = Self::position(counter);
        if self.bitmap[block] & mask != 0 {
            return Err(SessionError::Replay { nonce: counter });
        }
        Ok(())
    }

    /// Records `counter` as accepted. Call only after [`check`](Self::check) passed and the
    /// envelope authenticated.
    pub(crate) fn record(&mut self, counter: u64) {
        debug_assert_eq!(self.check(counter), Ok(()));
        if counter > self.highest {
            let block_current = counter / BITS_PER_BLOCK;
            let block_last = self.highest / BITS_PER_BLOCK;
            let blocks_advanced = (block_current - block_last).min(BLOCKS as u64);
            for step in 1..=blocks_advanced {
                // Cannot truncate: the remainder is below BLOCKS.
                self.bitmap[((block_last + step) % BLOCKS as u64) as usize] = 0;
            }
            self.highest = counter;
        }
        let (block, mask) = Self::position(counter);
        self.bitmap[block] |= mask;
    }

    /// The highest counter accepted so far (0 before any).
    #[cfg(test)]
    pub(crate) const fn highest(&self) -> u64 {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn accept(window: &mut ReplayWindow, counter: u64) -> Result<(), SessionError> {
        window.check(counter)?;
        window.record(counter);
        Ok(())
    }

    #[test]
    fn in_order_replay_and_reorder() {
        let mut window = ReplayWindow::new();
        assert_eq!(accept(&mut window, 0), Ok(()));
        assert_eq!(accept(&mut window, 0), Err(SessionError::Replay { nonce: 0 }));
        assert_eq!(accept(&mut window, 5), Ok(()));
        assert_eq!(accept(&mut window, 3), Ok(()));
        assert_eq!(accept(&mut window, 3), Err(SessionError::Replay { nonce: 3 }));
        assert_eq!(accept(&mut window, 4), Ok(()));
        assert_eq!(window.highest(), 5);
    }

    #[test]
    fn window_edges() {
        let mut window = ReplayWindow::new();
        assert_eq!(accept(&mut window, 10_000), Ok(()));
        // Exactly the width below the highest is just outside; one above is the oldest inside.
        assert_eq!(
            accept(&mut window, 10_000 - REPLAY_WINDOW_WIDTH),
            Err(SessionError::TooOld { nonce: 10_000 - REPLAY_WINDOW_WIDTH, nonce_highest: 10_000 })
        );
        assert_eq!(accept(&mut window, 10_000 - REPLAY_WINDOW_WIDTH + 1), Ok(()));
        assert_eq!(
            accept(&mut window, 10_000 - REPLAY_WINDOW_WIDTH + 1),
            Err(SessionError::Replay { nonce: 10_000 - REPLAY_WINDOW_WIDTH + 1 })
        );
        // A jump far ahead forgets everything behind the new window.
        assert_eq!(accept(&mut window, u64::MAX - 1), Ok(()));
        assert_eq!(
            accept(&mut window, 10_001),
            Err(SessionError::TooOld { nonce: 10_001, nonce_highest: u64::MAX - 1 })
        );
        assert_eq!(accept(&mut window, u64::MAX - 2), Ok(()));
    }

    #[test]
    fn check_changes_nothing() {
        let mut window = ReplayWindow::new();
        window.record(7);
        let before = window.clone();
        let _ = window.check(8);
        let _ = window.check(7);
        let _ = window.check(100_000);
        assert_eq!(window, before);
    }

    proptest! {
        /// Goal: the bitmap agrees with a plain set model for any sequence of counters.
        /// Method: replay the sequence against both and compare every verdict.
        #[test]
        fn agrees_with_a_set_model(counters in proptest::collection::vec(0u64..6000, 1..400)) {
            let mut window = ReplayWindow::new();
            let mut seen = std::collections::BTreeSet::new();
            let mut highest = 0u64;
            for counter in counters {
                let expected = if seen.contains(&counter) && highest - counter < REPLAY_WINDOW_WIDTH {
                    Err(SessionError::Replay { nonce: counter })
                } else if counter <= highest && highest - counter >= REPLAY_WINDOW_WIDTH {
                    Err(SessionError::TooOld { nonce: counter, nonce_highest: highest })
                } else {
                    Ok(())
                };
                prop_assert_eq!(accept(&mut window, counter), expected.clone());
                if expected.is_ok() {
                    seen.insert(counter);
                    highest = highest.max(counter);
                }
            }
        }
    }
}
