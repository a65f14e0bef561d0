//! Per-link state: the secure connection, the stream decoder, and the outbox toward that peer.
//!
//! The outbox is not a copy of entries: it is three version vectors. `acked` is what the peer
//! reported durable (WalAck), which no crash of the peer can undo. `floor` is `acked` joined
//! with the peer's OutboxPulls of this session (what it holds, durable or not); a peer that
//! crashed and lost unsynced entries comes back in a new session, which starts again from
//! `acked`. `sent` is how far we have pushed. Entries in `(floor, sent]` are in flight; on a
//! retransmission timeout `sent` falls back to `floor` (go-back-N) and the same entries are
//! pushed again from the log.
//!
//! The outbox is also eager or lazy: eager outboxes form the broadcast tree of PROTOCOL.md
//! 8.6 and push entries as soon as they are durable; lazy ones push only what the peer has
//! lacked for one of its pull intervals.

use std::collections::VecDeque;

use bytes::Bytes;
use rand_core::RngCore;

use super::NodeConfig;
use super::congestion::Window;
use crate::entry::{NodeId, VersionVector};
use crate::frame::FrameDecoder;
use crate::session::{Connection, Role};

/// How a link carries frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// One frame per datagram; datagrams may be lost, duplicated or reordered.
    Datagram,
    /// A byte stream (TCP); frames may be split anywhere.
    Stream,
}

/// Entries pushed to one peer and not yet acknowledged, at most.
pub const PEER_INFLIGHT_ENTRIES_MAX: u64 = 2048;

/// Handshake attempts a link may start in a burst as Responder, each costing a key
/// generation and two Diffie-Hellman operations (PROTOCOL.md 6.7): one new Hello more is
/// allowed per [`HELLO_REFILL_NS`]; a repeated Hello (the same attempt) is free.
pub const HELLO_BURST: u32 = 8;
/// Time that earns a link one more handshake attempt, up to [`HELLO_BURST`].
pub const HELLO_REFILL_NS: u64 = 1_000_000_000;

/// Invalid envelopes a session tolerates in any case before it is closed.
pub const SESSION_INVALID_MIN: u64 = 16;
/// Valid envelopes that earn a session one more tolerated invalid one, past
/// [`SESSION_INVALID_MIN`].
pub const SESSION_VALID_PER_INVALID: u64 = 8;

pub(crate) struct Peer {
    pub(crate) kind: LinkKind,
    pub(crate) connection: Connection,
    pub(crate) decoder: FrameDecoder,
    /// The peer's node id once a handshake finished.
    pub(crate) node_id: Option<NodeId>,
    pub(crate) name: String,
    pub(crate) acked: VersionVector,
    pub(crate) floor: VersionVector,
    pub(crate) sent: VersionVector,
    pub(crate) retransmit_at_ns: Option<u64>,
    /// When the retransmission timer was last started: the last progress or push of the
    /// entries in flight.
    pub(crate) retransmit_armed_ns: u64,
    pub(crate) backoff_ns: u64,
    /// How much may be in flight, and the measured round trip that sets `backoff_ns`.
    pub(crate) window: Window,
    /// We accepted entries from this peer and owe it a WalAck once the sync with this id
    /// (or a later one) completes; the msg_id of its latest push, echoed by the ack.
    pub(crate) ack_due: Option<(u64, u32)>,
    pub(crate) next_pull_ns: Option<u64>,
    /// Outstanding ping: token and local send time.
    pub(crate) ping: Option<(u64, u64)>,
    /// When the Initiator starts its next handshake attempt on a link without a session.
    pub(crate) handshake_retry_at_ns: Option<u64>,
    /// The wait before that attempt, before jitter; doubles per retry up to
    /// `NodeConfig::handshake_retry_ns_max`.
    pub(crate) handshake_backoff_ns: u64,
    /// Envelopes the current session authenticated, and envelopes it rejected as invalid
    /// (not repeats): the abuse bound of PROTOCOL.md 9.
    pub(crate) session_valid_count: u64,
    pub(crate) session_invalid_count: u64,
    /// Handshake attempts this link may still start now, and when it last earned one.
    hello_tokens: u32,
    hello_refilled_ns: u64,
    /// The payload of the last Hello that started an attempt: its repeats cost nothing.
    pub(crate) last_hello: Option<Bytes>,
    /// When the current session last authenticated an envelope (or was established).
    pub(crate) last_authenticated_ns: Option<u64>,
    /// Whether entries are pushed to this peer as soon as they are durable (an eager link of
    /// the broadcast tree) or only once it has lacked them for a pull interval (a lazy link):
    /// PROTOCOL.md 8.6. Every session starts eager; a Prune makes it lazy, a repair eager.
    pub(crate) eager: bool,
    /// What we could relay a pull interval before the peer's latest pull arrived
    /// ([`RelayableHistory`]): a lazy outbox pushes only entries within it, which the peer has
    /// lacked for at least a pull interval.
    pub(crate) lazy_limit: VersionVector,
    /// What our pulls (our held vector) and our WalAcks (our durable vector) told this peer
    /// in this session: each names only the origins that moved since the one before last.
    pub(crate) pulls: Told,
    acks: Told,
    /// When we last offered this peer a snapshot (PROTOCOL.md 8.11).
    pub(crate) snapshot_offered_ns: Option<u64>,
    /// A pull arrived in this session: until one does, what the peer holds is known only
    /// from its acks, too old to decide that it needs a snapshot.
    pub(crate) pulled_in_session: bool,
}

/// Sessions that start eager, at most: a new session starts lazy when this many others
/// already push eagerly (the fan-out of Plumtree's active view; PROTOCOL.md 8.6).
pub const EAGER_LINKS_INITIAL: usize = 4;

/// Every this many WalAcks on a session (and the first), an ack names every origin rather
/// than those that moved since the ack before last.
pub const ACK_FULL_EVERY: u64 = 8;

/// Every this many pulls on a session (and the first), a pull names every origin rather than
/// those that moved, so that a receiver that lost a few pulls learns everything again.
pub const PULL_FULL_EVERY: u64 = 8;

/// A node's lazy outboxes together are pulled about this many times per pull interval: each
/// lazy link is pulled every `ceil(lazy links / LAZY_PULLS_PER_INTERVAL)` pull intervals, at
/// most [`LAZY_PULL_INTERVALS_MAX`] (PROTOCOL.md 8.6).
pub const LAZY_PULLS_PER_INTERVAL: usize = 8;

/// The most pull intervals between two pulls on one lazy link.
pub const LAZY_PULL_INTERVALS_MAX: u64 = 16;

/// Samples a [`RelayableHistory`] keeps, at most.
pub const RELAYABLE_SAMPLES_MAX: usize = 16;

/// How many pull intervals lie between two pulls on a link whose outbox is lazy, when
/// `lazy_links` of the node's outboxes with a session are lazy.
#[must_use]
pub(crate) fn lazy_pull_intervals(lazy_links: usize) -> u64 {
    (lazy_links.div_ceil(LAZY_PULLS_PER_INTERVAL) as u64).clamp(1, LAZY_PULL_INTERVALS_MAX)
}

/// What this node could relay over the last pull interval (its durable vector, lowered for
/// other origins to what is proven and for its own to what is sealed, PROTOCOL.md 8.13),
/// sampled at most every eighth of one: a
/// lazy outbox pushes what the node could have pushed for a pull interval (PROTOCOL.md 8.6),
/// whenever the neighbour's pull arrives. A sample stands for a time at or after its own, so
/// the vector it gives is never more than what was relayable then. (Sampling the durable
/// vector instead made a lazy outbox graft whenever a seal took longer than a pull interval
/// to come: the eager path was waiting for the seal, not failing.)
#[derive(Debug, Default)]
pub(crate) struct RelayableHistory {
    samples: VecDeque<(u64, VersionVector)>,
}

impl RelayableHistory {
    /// Forgets samples that a newer one at least `interval_ns` old supersedes, and says
    /// whether a sample taken at `now_ns` would be kept: not if the latest sample is less
    /// than `interval_ns / 8` old, nor once [`RELAYABLE_SAMPLES_MAX`] are held.
    pub(crate) fn due(&mut self, now_ns: u64, interval_ns: u64) -> bool {
        let cutoff_ns = now_ns.saturating_sub(interval_ns);
        while self.samples.get(1).is_some_and(|(at_ns, _)| *at_ns <= cutoff_ns) {
            self.samples.pop_front();
        }
        let spacing_ns = interval_ns / 8;
        let recent = self.samples.back().is_some_and(|(at_ns, _)| now_ns < at_ns.saturating_add(spacing_ns));
        !recent && self.samples.len() < RELAYABLE_SAMPLES_MAX
    }

    /// Keeps `relayable` as the sample at `now_ns` (after [`due`](Self::due) said so),
    /// unless the latest sample holds the same vector.
    pub(crate) fn push(&mut self, now_ns: u64, relayable: VersionVector) {
        if self.samples.back().is_none_or(|(_, last)| *last != relayable) {
            self.samples.push_back((now_ns, relayable));
        }
    }

    /// [`due`](Self::due), then [`push`](Self::push).
    #[cfg(test)]
    pub(crate) fn note(&mut self, now_ns: u64, relayable: &VersionVector, interval_ns: u64) {
        if self.due(now_ns, interval_ns) {
            self.push(now_ns, relayable.clone());
        }
    }

    /// The relayable vector of the newest sample taken at or before `at_ns`, if any.
    pub(crate) fn as_of(&self, at_ns: u64) -> Option<&VersionVector> {
        self.samples.iter().rev().find(|(sampled_ns, _)| *sampled_ns <= at_ns).map(|(_, vector)| vector)
    }
}

/// The vectors a series of messages of one session told a peer (our pulls, or our WalAcks):
/// the latest two, and how many were sent. The next names the origins that moved since the
/// one before last, or every origin on the first, every `full_every`-th, and when asked.
#[derive(Debug, Default)]
pub(crate) struct Told {
    latest: VersionVector,
    before: VersionVector,
    sent: u64,
}

impl Told {
    /// What the next message carries, out of `current`; remembers `current` as told.
    pub(crate) fn next(&mut self, current: &VersionVector, full_every: u64, full: bool) -> VersionVector {
        let full = full || self.sent.is_multiple_of(full_every);
        let vector = if full { current.clone() } else { current.above(&self.before) };
        self.sent += 1;
        // `before` takes `latest`, whose storage is then reused for `current`.
        std::mem::swap(&mut self.before, &mut self.latest);
        self.latest.clone_from(current);
        vector
    }

    /// The next message names every origin, and the series counts from there.
    pub(crate) fn restart_full(&mut self) {
        self.sent = 0;
    }
}

impl Peer {
    pub(crate) fn new(kind: LinkKind, connection: Connection, config: &NodeConfig) -> Self {
        Self {
            kind,
            connection,
            decoder: FrameDecoder::new(config.frame_bytes_max),
            node_id: None,
            name: String::new(),
            acked: VersionVector::new(),
            floor: VersionVector::new(),
            sent: VersionVector::new(),
            retransmit_at_ns: None,
            retransmit_armed_ns: 0,
            backoff_ns: config.retransmit_ns_initial,
            window: Window::default(),
            ack_due: None,
            next_pull_ns: None,
            ping: None,
            handshake_retry_at_ns: None,
            handshake_backoff_ns: config.handshake_retry_ns_initial,
            session_valid_count: 0,
            session_invalid_count: 0,
            hello_tokens: HELLO_BURST,
            hello_refilled_ns: 0,
            last_hello: None,
            last_authenticated_ns: None,
            eager: true,
            lazy_limit: VersionVector::new(),
            pulls: Told::default(),
            acks: Told::default(),
            snapshot_offered_ns: None,
            pulled_in_session: false,
        }
    }

    /// Spends one handshake attempt at `now_ns` (steady), if the link has one left.
    pub(crate) fn take_hello_token(&mut self, now_ns: u64) -> bool {
        let earned = now_ns.saturating_sub(self.hello_refilled_ns) / HELLO_REFILL_NS;
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(HELLO_BURST);
            self.hello_tokens = self.hello_tokens.saturating_add(earned).min(HELLO_BURST);
            self.hello_refilled_ns = now_ns;
        }
        if self.hello_tokens == 0 {
            return false;
        }
        self.hello_tokens -= 1;
        true
    }

    /// One more invalid envelope under the current session: true once the session has seen
    /// more than [`SESSION_INVALID_MIN`] of them and more than one per
    /// [`SESSION_VALID_PER_INVALID`] valid ones (PROTOCOL.md 9). A garbage flood crosses the
    /// bound after a few frames; a link that corrupts one envelope in a hundred never does.
    pub(crate) fn session_abused(&mut self) -> bool {
        self.session_invalid_count += 1;
        self.session_invalid_count > SESSION_INVALID_MIN
            && self.session_invalid_count > self.session_valid_count / SESSION_VALID_PER_INVALID
    }

    /// After a failed attempt or a closed session: if this end is the link's Initiator and
    /// has neither a session nor an attempt under way, arms the next attempt after the
    /// current backoff plus a jitter of up to a quarter of it, drawn from `rng`, so that
    /// many links that failed together do not retry in lockstep. The Responder never
    /// retries: the Initiator's next Hello, or its next envelope under a session we lack,
    /// reaches it.
    pub(crate) fn schedule_handshake_retry(&mut self, now_ns: u64, rng: &mut dyn RngCore) {
        if self.connection.role() != Role::Initiator
            || self.connection.is_established()
            || self.connection.is_handshaking()
            || self.handshake_retry_at_ns.is_some()
        {
            return;
        }
        let jitter_ns = rng.next_u64() % (self.handshake_backoff_ns / 4 + 1);
        self.handshake_retry_at_ns =
            Some(now_ns.saturating_add(self.handshake_backoff_ns).saturating_add(jitter_ns));
    }

    /// Entries pushed beyond what the peer holds. `sent >= floor` pointwise always holds
    /// (every update of `floor` also raises or resets `sent`), so this is a difference of
    /// totals.
    pub(crate) fn inflight_count(&self) -> u64 {
        self.sent.total().saturating_sub(self.floor.total())
    }

    /// A WalAck: the peer's durable positions. Returns true when any of them advanced.
    pub(crate) fn acknowledge(&mut self, positions: &VersionVector) -> bool {
        let progress = self.acked.merge_max(positions);
        self.floor.merge_max(positions);
        self.sent.merge_max(positions);
        progress
    }

    /// An OutboxPull: the peer holds at least `vector` now. Within a session a peer's held
    /// positions only grow (a restart is a new session, which starts from `acked` again), so
    /// pulls raise `floor` and never lower it, whatever order they arrive in, and a pull
    /// that names only some origins says nothing about the others.
    ///
    /// What is in flight beyond the pull stays in flight: it may still be on its way (on a
    /// slow link, behind a queue), and if it was lost the retransmission timer pushes it
    /// again. Pushing it again at every pull would refill the very queue that delays it.
    pub(crate) fn pulled(&mut self, vector: &VersionVector) {
        self.pulled_in_session = true;
        self.floor.merge_max(vector);
        self.sent.merge_max(vector);
    }

    /// The pull's bookkeeping for lazy pushes: `limit` is what we held durably a pull
    /// interval ago. Returns true when this lazy outbox turns eager again (a graft): the peer
    /// still lacks entries of other origins that we have held durably for a pull interval,
    /// so whatever delivers them to it through the tree is broken or slow.
    pub(crate) fn pulled_lazy(&mut self, limit: &VersionVector, peer_id: NodeId) -> bool {
        self.lazy_limit.clone_from(limit);
        if self.eager {
            return false;
        }
        let lacking = self
            .lazy_limit
            .beside(&self.floor)
            .any(|(origin, limit, floor)| origin != peer_id && floor < limit);
        if lacking {
            self.eager = true;
        }
        lacking
    }

    /// The vector our next pull to this peer carries, out of our held vector `held`: every
    /// origin on the first pull of a session and every [`PULL_FULL_EVERY`]-th, otherwise
    /// only those that moved since the pull before last (so one lost pull hides nothing).
    pub(crate) fn next_pull(&mut self, held: &VersionVector) -> VersionVector {
        self.pulls.next(held, PULL_FULL_EVERY, false)
    }

    /// The vector our next WalAck to this peer carries, out of our durable vector
    /// `durable`: every origin when `full` (an answer to a push that brought nothing new:
    /// the peer is resending, so it may have missed our acks), on the first ack of a session
    /// and every [`ACK_FULL_EVERY`]-th; otherwise only the origins that moved since the ack
    /// before last, so one lost ack hides nothing (PROTOCOL.md 8.6).
    pub(crate) fn next_ack(&mut self, durable: &VersionVector, full: bool) -> VersionVector {
        self.acks.next(durable, ACK_FULL_EVERY, full)
    }

    /// Go-back-N: forget what is in flight so it is pushed again.
    pub(crate) fn rewind(&mut self) {
        self.sent = self.floor.clone();
        self.window.on_rewind();
    }

    /// A new session with the same peer: only its durable positions are still known. The
    /// link starts eager and our pulls start again with a full one.
    pub(crate) fn reset_to_acked(&mut self) {
        self.floor = self.acked.clone();
        self.sent = self.acked.clone();
        self.window.on_rewind();
        self.eager = true;
        self.lazy_limit = VersionVector::new();
        self.pulls = Told::default();
        self.acks = Told::default();
        self.pulled_in_session = false;
    }

    /// The earliest deadline of this peer's own timers (not the connection's).
    pub(crate) fn deadline_ns(&self) -> Option<u64> {
        [self.retransmit_at_ns, self.next_pull_ns, self.handshake_retry_at_ns].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(position: u64) -> VersionVector {
        let mut vector = VersionVector::new();
        vector.set(NodeId(1), position);
        vector
    }

    #[test]
    fn lazy_links_are_pulled_so_that_a_node_pulls_about_eight_of_them_an_interval() {
        assert_eq!(lazy_pull_intervals(0), 1);
        assert_eq!(lazy_pull_intervals(LAZY_PULLS_PER_INTERVAL), 1);
        assert_eq!(lazy_pull_intervals(LAZY_PULLS_PER_INTERVAL + 1), 2);
        assert_eq!(lazy_pull_intervals(95), 12);
        assert_eq!(lazy_pull_intervals(100_000), LAZY_PULL_INTERVALS_MAX);
    }

    #[test]
    fn relayable_history_answers_with_what_was_relayable_at_least_an_interval_ago() {
        const SECOND: u64 = 1_000_000_000;
        let mut history = RelayableHistory::default();
        assert_eq!(history.as_of(5 * SECOND), None);
        history.note(0, &vector(1), SECOND);
        // Within an eighth of an interval of the last sample: not sampled again.
        history.note(SECOND / 16, &vector(2), SECOND);
        history.note(SECOND / 2, &vector(3), SECOND);
        // Between samples the older one stands, which is never more than what was durable.
        assert_eq!(history.as_of(SECOND / 4), Some(&vector(1)));
        history.note(3 * SECOND / 2, &vector(4), SECOND);
        // At 1.5 s, what was durable at 0.5 s or earlier: the sample at 0.5 s.
        assert_eq!(history.as_of(SECOND / 2), Some(&vector(3)));
        assert_eq!(history.as_of(SECOND), Some(&vector(3)));
        // Samples older than the newest one at least an interval old are forgotten.
        history.note(3 * SECOND, &vector(5), SECOND);
        assert_eq!(history.as_of(SECOND), None);
        assert_eq!(history.as_of(2 * SECOND), Some(&vector(4)));
    }

    #[test]
    fn relayable_history_is_bounded() {
        // The spacing keeps about nine samples within an interval; the bound holds whatever
        // the interval and however often the vector changes.
        for interval_ns in [1, 7, 8, 100, 1_000_000_000, u64::MAX] {
            let mut history = RelayableHistory::default();
            for position in 0..1_000 {
                history.note(position, &vector(position), interval_ns);
                assert!(history.samples.len() <= RELAYABLE_SAMPLES_MAX, "interval {interval_ns}");
            }
            if interval_ns <= 100 {
                assert!(history.samples.len() >= 2, "interval {interval_ns}: the history sampled");
            }
        }
    }

    #[test]
    fn acks_name_what_moved_since_the_ack_before_last_and_every_eighth_names_all() {
        let config = NodeConfig::new(crate::session::SessionConfig::new(
            "a".to_owned(),
            crate::session::Identity::from_seed([1; 32]),
        ));
        let mut rng = <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(1);
        let connection =
            Connection::new(std::sync::Arc::new(config.session.clone()), Role::Initiator, 0, &mut rng)
                .expect("valid settings");
        let mut peer = Peer::new(LinkKind::Datagram, connection, &config);
        let mut durable = VersionVector::new();
        for origin in 1..=50 {
            durable.set(NodeId(origin), 3);
        }
        assert_eq!(peer.next_ack(&durable, false), durable, "the first ack of a session names all");
        // The second: everything moved since the ack before last, which was none.
        assert_eq!(peer.next_ack(&durable, false), durable);
        durable.set(NodeId(7), 4);
        let mut moved = VersionVector::new();
        moved.set(NodeId(7), 4);
        assert_eq!(peer.next_ack(&durable, false), moved);
        durable.set(NodeId(9), 4);
        // Moved since the ack before last: 7 again (in case that ack was lost), and 9.
        moved.set(NodeId(9), 4);
        assert_eq!(peer.next_ack(&durable, false), moved);
        assert_eq!(peer.next_ack(&durable, false).get(NodeId(9)), 4);
        assert!(peer.next_ack(&durable, false).is_empty(), "nothing moved");
        assert_eq!(peer.next_ack(&durable, true), durable, "an answer to a resend names all");
        peer.next_ack(&durable, false);
        assert_eq!(peer.next_ack(&durable, false), durable, "the ninth (every eighth from 0) names all");
        peer.reset_to_acked();
        assert_eq!(peer.next_ack(&durable, false), durable, "a new session starts with all");
    }
}
