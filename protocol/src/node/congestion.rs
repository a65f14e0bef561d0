//! How much a node pushes to one peer before it hears back: a congestion window in bytes and
//! a retransmission timeout measured from round trips.
//!
//! Without them a sender keeps up to [`PEER_INFLIGHT_ENTRIES_MAX`](super::PEER_INFLIGHT_ENTRIES_MAX)
//! entries in flight whatever the link carries: on a slow link with a short queue the pushes
//! fill the queue, the tail is dropped, the acknowledgements wait behind the pushes, the
//! retransmission timer fires, and the same window is pushed again into the same queue
//! (congestion collapse). The window here is TCP's (RFC 5681): it starts at
//! [`WINDOW_BYTES_INITIAL`], grows by the bytes each acknowledgement covers until it reaches
//! the slow-start threshold (slow start), then by about one push per round trip (congestion
//! avoidance), and falls to [`WINDOW_BYTES_MIN`] when the retransmission timer fires, with
//! the threshold at half of what was in flight. The timer is RFC 6298's: a smoothed round
//! trip plus four times its variation, sampled on one push at a time and never on a push that
//! was sent again (Karn's rule).
//!
//! All of this is local to the sender: the wire does not change, and a peer that implements
//! none of it interoperates (PROTOCOL.md §8.4).

use crate::entry::VersionVector;
use crate::message::WAL_PUSH_BYTES_MAX;

/// Bytes a sender may have in flight to a peer before its first acknowledgement.
pub const WINDOW_BYTES_INITIAL: u64 = 64 * 1024;
/// The window after a retransmission timeout: a few small entries, so that a link that
/// dropped a burst is probed gently. One entry is always allowed when nothing is in flight,
/// however large.
pub const WINDOW_BYTES_MIN: u64 = 4 * 1024;
/// Bytes in flight to one peer, at most, however fast it acknowledges.
pub const PEER_INFLIGHT_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Growth per round trip in congestion avoidance: one full push.
const GROWTH_BYTES: u64 = WAL_PUSH_BYTES_MAX as u64;

/// One push being timed: acknowledged once the peer's acknowledged positions reach `until`.
#[derive(Debug, Clone)]
struct Sample {
    until: VersionVector,
    sent_ns: u64,
}

/// A peer's congestion window and round-trip estimate.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    bytes: u64,
    threshold: u64,
    smoothed_ns: Option<u64>,
    variation_ns: u64,
    sample: Option<Sample>,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            bytes: WINDOW_BYTES_INITIAL,
            threshold: PEER_INFLIGHT_BYTES_MAX,
            smoothed_ns: None,
            variation_ns: 0,
            sample: None,
        }
    }
}

impl Window {
    /// Bytes that may be in flight now.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The smoothed round trip, once one was measured.
    #[cfg(test)]
    pub(crate) fn round_trip_ns(&self) -> Option<u64> {
        self.smoothed_ns
    }

    /// `acked_bytes` newly acknowledged: the window grows.
    pub(crate) fn on_acknowledged(&mut self, acked_bytes: u64) {
        if acked_bytes == 0 {
            return;
        }
        let growth = if self.bytes < self.threshold {
            acked_bytes
        } else {
            (GROWTH_BYTES.saturating_mul(acked_bytes) / self.bytes.max(1)).max(1)
        };
        self.bytes = self.bytes.saturating_add(growth).min(PEER_INFLIGHT_BYTES_MAX);
    }

    /// The retransmission timer fired with `inflight_bytes` unacknowledged: the link dropped
    /// or held what it was given, so the window restarts small.
    pub(crate) fn on_timeout(&mut self, inflight_bytes: u64) {
        self.threshold = (inflight_bytes / 2).max(2 * WINDOW_BYTES_MIN);
        self.bytes = WINDOW_BYTES_MIN;
        self.sample = None;
    }

    /// The neighbour reported, by a pull, that it still lacks what has been in flight for
    /// longer than a retransmission timeout: a loss, as TCP's fast retransmit sees one. The
    /// window halves rather than restarting small, since acknowledgements were flowing.
    pub(crate) fn on_loss(&mut self, inflight_bytes: u64) {
        self.threshold = (inflight_bytes / 2).max(2 * WINDOW_BYTES_MIN);
        self.bytes = self.threshold;
        self.sample = None;
    }

    /// A push just went out and the peer's copy will reach `until` once it is acknowledged;
    /// it is timed unless another push is.
    pub(crate) fn on_push(&mut self, until: &VersionVector, now_ns: u64) {
        if self.sample.is_none() {
            self.sample = Some(Sample { until: until.clone(), sent_ns: now_ns });
        }
    }

    /// What was in flight will be pushed again: a sample taken now could time the copy
    /// rather than the original (Karn's rule).
    pub(crate) fn on_rewind(&mut self) {
        self.sample = None;
    }

    /// The peer acknowledged up to `acked`: if that covers the timed push, the round trip
    /// is measured.
    pub(crate) fn on_ack(&mut self, acked: &VersionVector, now_ns: u64) {
        let Some(sample) = &self.sample else { return };
        if !sample.until.iter().all(|(origin, position)| acked.get(origin) >= position) {
            return;
        }
        let measured = now_ns.saturating_sub(sample.sent_ns);
        self.sample = None;
        match self.smoothed_ns {
            None => {
                self.smoothed_ns = Some(measured);
                self.variation_ns = measured / 2;
            }
            Some(smoothed) => {
                // RFC 6298 §2.3 with alpha 1/8 and beta 1/4.
                self.variation_ns = (3 * self.variation_ns + smoothed.abs_diff(measured)) / 4;
                self.smoothed_ns = Some((7 * smoothed + measured) / 8);
            }
        }
    }

    /// The retransmission timeout to arm after progress: the measured round trip plus four
    /// variations, within `[min_ns, max_ns]`; `min_ns` until a round trip was measured.
    pub(crate) fn timeout_ns(&self, min_ns: u64, max_ns: u64) -> u64 {
        let Some(smoothed) = self.smoothed_ns else { return min_ns.min(max_ns) };
        smoothed.saturating_add(self.variation_ns.saturating_mul(4)).clamp(min_ns, max_ns.max(min_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::NodeId;

    fn vector(position: u64) -> VersionVector {
        [(NodeId(1), position)].into_iter().collect()
    }

    #[test]
    fn slow_start_doubles_then_avoidance_adds_about_a_push_per_window() {
        let mut window = Window::default();
        window.on_acknowledged(WINDOW_BYTES_INITIAL);
        assert_eq!(window.bytes(), 2 * WINDOW_BYTES_INITIAL);
        window.on_timeout(2 * WINDOW_BYTES_INITIAL);
        assert_eq!(window.bytes(), WINDOW_BYTES_MIN);
        // Slow start up to the threshold (half of what was in flight), then linear growth.
        while window.bytes() < WINDOW_BYTES_INITIAL {
            window.on_acknowledged(window.bytes());
        }
        let at_threshold = window.bytes();
        window.on_acknowledged(at_threshold);
        assert_eq!(window.bytes(), at_threshold + GROWTH_BYTES);
    }

    #[test]
    fn the_window_never_passes_its_bound() {
        let mut window = Window::default();
        for _ in 0..100 {
            window.on_acknowledged(u64::MAX / 4);
        }
        assert_eq!(window.bytes(), PEER_INFLIGHT_BYTES_MAX);
    }

    #[test]
    fn the_timeout_follows_measured_round_trips_and_karn_skips_resent_pushes() {
        let mut window = Window::default();
        assert_eq!(window.timeout_ns(200, 5_000), 200);
        window.on_push(&vector(3), 1_000);
        window.on_push(&vector(5), 1_100); // another push is already timed
        window.on_ack(&vector(2), 1_500); // does not cover the timed push
        assert_eq!(window.round_trip_ns(), None);
        window.on_ack(&vector(3), 2_000);
        assert_eq!(window.round_trip_ns(), Some(1_000));
        assert_eq!(window.timeout_ns(200, 5_000), 1_000 + 4 * 500);
        // A rewound push is not timed.
        window.on_push(&vector(6), 3_000);
        window.on_rewind();
        window.on_ack(&vector(6), 90_000);
        assert_eq!(window.round_trip_ns(), Some(1_000));
        // Bounds hold.
        assert_eq!(window.timeout_ns(200, 2_500), 2_500);
    }

    #[test]
    fn a_loss_reported_by_a_pull_halves_the_window() {
        let mut window = Window::default();
        window.on_acknowledged(WINDOW_BYTES_INITIAL);
        window.on_loss(2 * WINDOW_BYTES_INITIAL);
        assert_eq!(window.bytes(), WINDOW_BYTES_INITIAL);
        window.on_loss(WINDOW_BYTES_MIN);
        assert_eq!(window.bytes(), 2 * WINDOW_BYTES_MIN);
    }
}
