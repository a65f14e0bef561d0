//! Member origins (PROTOCOL.md 8.12): with [`NodeConfig::member_origins`] set, a node takes
//! entries only of the origins in the set and of its own, wherever entries arrive (WalPush,
//! SnapshotChunk), and refuses the others.
//!
//! A refused entry must not be pushed again and again: the sender does not know the set, and
//! its retransmission timer would resend what it sees unacknowledged. The receiver cannot
//! acknowledge it (a WalAck is a durable promise the sender keeps across sessions, and the
//! origin may become a member later), so it reports the highest refused position of each
//! origin in its OutboxPulls instead, "held" as far as this session goes: at once, in a pull
//! naming only those origins, and in every later pull. A pull raises the sender's floor for
//! the session only, so after a new session (a restart, a new member set) the sender starts
//! from the honest acknowledged positions again.
//!
//! [`NodeConfig::member_origins`]: super::NodeConfig::member_origins

use super::{Event, LinkId, Node, Output};
use crate::entry::{NodeId, VersionVector};
use crate::message::Message;

/// Non-member origins whose refused positions a node remembers and reports; entries of
/// further origins are refused all the same, but their senders may push them again.
pub const REFUSED_ORIGINS_MAX: usize = 256;

/// How often refusals of one origin are reported at most (an `Event::Rejected` naming the
/// count since the last report); the first refusal of an origin is reported at once.
pub const REFUSED_REPORT_INTERVAL_NS: u64 = 60_000_000_000;

/// Refusals of one kind counted between reports, for reports at most once an interval: the
/// member refusals here and the signature refusals of `authorship.rs`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReportThrottle {
    /// Entries refused since the last report.
    unreported: u64,
    /// When the last report went out (steady time).
    reported_ns: Option<u64>,
}

impl ReportThrottle {
    /// Counts `count` more refusals; returns how many to report now, if a report is due (the
    /// first at once, then at most once per `interval_ns`).
    pub(crate) fn count(&mut self, now_ns: u64, count: u64, interval_ns: u64) -> Option<u64> {
        self.unreported += count;
        let due = self.reported_ns.is_none_or(|at_ns| now_ns >= at_ns.saturating_add(interval_ns));
        if !due {
            return None;
        }
        self.reported_ns = Some(now_ns);
        Some(std::mem::take(&mut self.unreported))
    }
}

/// What a node refused of one non-member origin.
#[derive(Debug, Clone, Default)]
pub(crate) struct RefusedOrigin {
    /// The highest sequence refused: reported as held in pulls.
    pub(crate) position: u64,
    /// Refusals not reported yet.
    pub(crate) throttle: ReportThrottle,
}

impl Node {
    /// Whether entries of `origin` may enter this node: it is this node, or a member, or the
    /// node has no member set.
    pub(crate) fn accepts_origin(&self, origin: NodeId) -> bool {
        origin == self.node_id()
            || self.config.member_origins.as_ref().is_none_or(|set| set.contains(&origin))
    }

    /// The highest refused position of each remembered non-member origin.
    pub(crate) fn refused_vector(&self) -> VersionVector {
        self.refused.iter().map(|(origin, refused)| (*origin, refused.position)).collect()
    }

    /// What pulls report as held: the log's held vector, raised to the refused positions.
    pub(crate) fn pull_vector(&self) -> VersionVector {
        let mut vector = self.log.held().clone();
        if !self.refused.is_empty() {
            vector.merge_max(&self.refused_vector());
        }
        vector
    }

    /// Entries of non-member origins arrived on `link` and were refused: `refused` holds, per
    /// origin, how many and the highest sequence. Counts them, reports them (rate-limited),
    /// and tells the sender at once, in a pull naming only those origins, that it need not
    /// push them again in this session.
    pub(crate) fn refuse_entries(&mut self, now_ns: u64, link: LinkId, refused: &[(NodeId, u64, u64)]) {
        let mut tell = VersionVector::new();
        for &(origin, count, highest) in refused {
            self.stats.entries_refused += count;
            let known = self.refused.contains_key(&origin);
            if !known && self.refused.len() >= REFUSED_ORIGINS_MAX {
                continue;
            }
            let entry = self.refused.entry(origin).or_default();
            entry.position = entry.position.max(highest);
            tell.set(origin, entry.position);
            if let Some(count) = entry.throttle.count(now_ns, count, REFUSED_REPORT_INTERVAL_NS) {
                let reason = format!(
                    "refused {count} entries of origin {origin}: not a member origin (PROTOCOL.md 8.12; \
                     reported at most once a minute per origin)"
                );
                self.outputs.push_back(Output::Event(Event::Rejected { link, reason }));
            }
        }
        if !tell.is_empty() && self.peers.get(&link).is_some_and(|peer| peer.node_id.is_some()) {
            self.send_message(link, &Message::OutboxPull { vector: tell });
        }
    }
}
