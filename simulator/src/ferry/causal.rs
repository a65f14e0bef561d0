//! The causality checker: holds every node to PROTOCOL.md 8.2's promise that a write made
//! after seeing another wins over it.
//!
//! It owns no node and reads no trace. The adapter tells it, for every local write, the
//! version of the key the node held just before (its store's register, tombstones included)
//! and the write it issued; the checker's caller adds acknowledgements, restarts and the
//! timestamps a node's clock refused. Two rules follow:
//!
//! - **Newer than what it saw:** the issued `(timestamp, origin)` version exceeds the
//!   version the node held of that key, always: also when that version was stamped far
//!   ahead of the node's clock (the node then stamps its write just above it).
//! - **Monotonic:** each timestamp a node's clock issues exceeds the one before; after a
//!   restart, it exceeds every clock-stamped timestamp of the node's acknowledged writes (an
//!   unacknowledged write may be lost with its timestamp, and never left the node). Two
//!   exceptions the node reports with the write: a write stamped above a far-ahead held
//!   version is outside the clock's sequence, and a clock that restarted from the wall time
//!   (it was more than the drift bound ahead) begins a new sequence.
//!
//! It sees only the key written, not every entry the node applied: a write that follows
//! another to a different key is not checked against it.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use ferry_protocol::node::{EVENT_KEY_BYTES_SHOWN_MAX, Escaped};
use ferry_protocol::store::WriteId;
use ferry_protocol::{NodeId, Timestamp};

use super::{Violation, WriteDisplay};

/// Violations kept with their detail; later ones are only counted.
pub const CAUSAL_VIOLATIONS_KEPT_MAX: usize = 10;

/// One local write, as the node issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedWrite {
    /// The key written.
    pub key: Bytes,
    /// The key's register on the node just before the write (a tombstone too), if any.
    pub seen: Option<WriteId>,
    /// The write the node issued.
    pub issued: WriteId,
    /// The node's clock started again from the wall time for this write (it was far ahead).
    pub clock_restarted: bool,
    /// The node stamped this write just above the held version, which was ahead of its clock.
    pub stamped_above_held: bool,
}

/// Checks that every local write is newer than what its node had seen; see the module docs.
#[derive(Debug, Default)]
pub struct CausalChecker {
    /// Per node, the write its next one must follow: the last issued in this incarnation,
    /// or after a restart the highest it acknowledged.
    last_issued: BTreeMap<u32, WriteId>,
    /// Per node, its acknowledged write of highest timestamp.
    acked_max: BTreeMap<u32, WriteId>,
    /// Per node, its writes stamped above a held version rather than by its clock.
    stamped_above: BTreeSet<(u32, Timestamp)>,
    /// Local writes checked.
    pub writes_checked: u64,
    /// Writes stamped just above a version that was ahead of their node's clock (one its
    /// clock refused to follow, or its own from before its clock restarted).
    pub writes_stamped_above: u64,
    /// Violations found, counted.
    pub violations_count: u64,
    /// The first [`CAUSAL_VIOLATIONS_KEPT_MAX`] violations.
    pub violations: Vec<Violation>,
}

impl CausalChecker {
    /// Node `node` issued `write` at virtual time `at_ns`. `names` names the run's nodes.
    pub fn issued(&mut self, at_ns: u64, node: u32, write: &IssuedWrite, names: &[String]) {
        self.writes_checked += 1;
        let name = node_name(names, node);
        let issued = WriteDisplay(&write.issued, &origin_name(names, write.issued.origin));
        let key = Escaped { bytes: &write.key, bytes_max: EVENT_KEY_BYTES_SHOWN_MAX };
        if write.clock_restarted {
            self.last_issued.remove(&node);
        }
        if write.stamped_above_held {
            self.writes_stamped_above += 1;
            self.stamped_above.insert((node, write.issued.timestamp));
        } else if let Some(previous) = self.last_issued.get(&node)
            && write.issued.timestamp <= previous.timestamp
        {
            let previous = WriteDisplay(previous, &origin_name(names, previous.origin));
            let detail = format!(
                "node {name} issued {issued} to key {key}, no later than its earlier write {previous}: a \
                 node's timestamps must strictly increase (PROTOCOL.md 8.2)"
            );
            self.violation(at_ns, detail);
        }
        if !write.stamped_above_held {
            self.last_issued.insert(node, write.issued);
        }
        let Some(seen) = &write.seen else { return };
        if version(&write.issued) > version(seen) {
            return;
        }
        let seen = WriteDisplay(seen, &origin_name(names, seen.origin));
        let detail = format!(
            "node {name} issued {issued} to key {key} after applying {seen}, but its version is not \
             greater: a write made after seeing another must win over it (PROTOCOL.md 8.2)"
        );
        self.violation(at_ns, detail);
    }

    /// Node `node` acknowledged its own write `write`.
    pub fn acknowledged(&mut self, node: u32, write: WriteId) {
        if self.stamped_above.contains(&(node, write.timestamp)) {
            return;
        }
        let highest = self.acked_max.entry(node).or_insert(write);
        if write.timestamp > highest.timestamp {
            *highest = write;
        }
    }

    /// Node `node` restarted: what it issued but never acknowledged may be gone.
    pub fn restarted(&mut self, node: u32) {
        match self.acked_max.get(&node) {
            Some(highest) => self.last_issued.insert(node, *highest),
            None => self.last_issued.remove(&node),
        };
    }

    fn violation(&mut self, at_ns: u64, detail: String) {
        self.violations_count += 1;
        if self.violations.len() < CAUSAL_VIOLATIONS_KEPT_MAX {
            self.violations.push(Violation { at_ns, detail });
        }
    }
}

/// The version users see: `(timestamp, origin)`.
fn version(write: &WriteId) -> (Timestamp, NodeId) {
    (write.timestamp, write.origin)
}

/// Node `node`'s name, or its index if the run has no such node.
pub(crate) fn node_name(names: &[String], node: u32) -> String {
    names.get(node as usize).cloned().unwrap_or_else(|| format!("#{node}"))
}

/// The name of the node whose id is `origin`, or the id.
pub(crate) fn origin_name(names: &[String], origin: NodeId) -> String {
    names.iter().find(|name| NodeId::from_name(name) == origin).cloned().unwrap_or_else(|| origin.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["a".to_owned(), "b".to_owned()]
    }

    fn write(origin: &str, sequence: u64, physical_ms: u64, logical: u16, delete: bool) -> WriteId {
        WriteId {
            timestamp: Timestamp::new(physical_ms, logical),
            origin: NodeId::from_name(origin),
            sequence,
            delete,
        }
    }

    fn issued(seen: Option<WriteId>, issued: WriteId) -> IssuedWrite {
        IssuedWrite {
            key: Bytes::from_static(b"k"),
            seen,
            issued,
            clock_restarted: false,
            stamped_above_held: false,
        }
    }

    #[test]
    fn write_after_applying_a_newer_one_is_rejected() {
        // Goal: the planted bug of issue #12, an HLC that ignores received timestamps. Method:
        // node b applied a#5 stamped 2.000s+3, then issued b#1 stamped 1.500s+0 to the same
        // key; the checker must name both writes, the key and the node.
        let mut checker = CausalChecker::default();
        let seen = write("a", 5, 2000, 3, false);
        checker.issued(7_000_000_000, 1, &issued(Some(seen), write("b", 1, 1500, 0, false)), &names());
        assert_eq!(checker.violations_count, 1);
        assert_eq!(checker.violations[0].at_ns, 7_000_000_000);
        assert_eq!(
            checker.violations[0].detail,
            "node b issued put b#1@1.500s+0 to key \"k\" after applying put a#5@2.000s+3, but its version is \
             not greater: a write made after seeing another must win over it (PROTOCOL.md 8.2)"
        );
    }

    #[test]
    fn equal_timestamp_loses_to_a_higher_origin_and_is_rejected() {
        // Goal: versions compare (timestamp, origin), so an equal timestamp is not enough when
        // the seen write's origin id is higher. Method: find which of a and b has the higher
        // id, let the lower one issue at the higher one's exact timestamp after applying it.
        let (low, high) =
            if NodeId::from_name("a") < NodeId::from_name("b") { ("a", "b") } else { ("b", "a") };
        let low_index = u32::from(low == "b");
        let mut checker = CausalChecker::default();
        let seen = write(high, 2, 1000, 4, true);
        checker.issued(0, low_index, &issued(Some(seen), write(low, 1, 1000, 4, false)), &names());
        assert_eq!(checker.violations_count, 1);
        // The other way round the version is greater, and the write passes.
        let mut checker = CausalChecker::default();
        let seen = write(low, 2, 1000, 4, false);
        checker.issued(0, 1 - low_index, &issued(Some(seen), write(high, 1, 1000, 4, false)), &names());
        assert_eq!(checker.violations_count, 0);
    }

    #[test]
    fn timestamps_that_go_backwards_are_rejected_even_across_keys() {
        // Goal: a node's own readings strictly increase. Method: node a issues 1.000s+5 then
        // 1.000s+5 again to an unseen key.
        let mut checker = CausalChecker::default();
        checker.issued(0, 0, &issued(None, write("a", 1, 1000, 5, false)), &names());
        checker.issued(1, 0, &issued(None, write("a", 2, 1000, 5, false)), &names());
        assert_eq!(checker.violations_count, 1);
        assert_eq!(
            checker.violations[0].detail,
            "node a issued put a#2@1.000s+5 to key \"k\", no later than its earlier write put a#1@1.000s+5: a \
             node's timestamps must strictly increase (PROTOCOL.md 8.2)"
        );
    }

    #[test]
    fn restart_forgives_only_unacknowledged_timestamps() {
        // Goal: a write lost in a crash may have its timestamp reused; an acknowledged one may
        // not. Method: a issues #1 (acknowledged) and #2 (lost), restarts, and issues #2 again
        // below the lost one (fine), then #3 below the acknowledged one (rejected).
        let mut checker = CausalChecker::default();
        checker.issued(0, 0, &issued(None, write("a", 1, 1000, 0, false)), &names());
        checker.acknowledged(0, write("a", 1, 1000, 0, false));
        checker.issued(0, 0, &issued(None, write("a", 2, 3000, 0, false)), &names());
        checker.restarted(0);
        checker.issued(0, 0, &issued(None, write("a", 2, 2000, 0, false)), &names());
        assert_eq!(checker.violations_count, 0);
        checker.restarted(0);
        checker.issued(0, 0, &issued(None, write("a", 3, 900, 0, false)), &names());
        assert_eq!(checker.violations_count, 1);
    }

    #[test]
    fn a_far_ahead_version_must_still_lose_to_the_next_write() {
        // Goal: no exemption for far-future timestamps (PROTOCOL.md 8.2): a write that loses
        // to a version its node held is a violation even when that version was stamped an
        // hour ahead of the clock. Method: b holds a's write stamped at one hour and issues
        // its own at one second; then does it right, just above, which is counted.
        let mut checker = CausalChecker::default();
        let seen = write("a", 1, 3_600_000, 0, false);
        checker.issued(0, 1, &issued(Some(seen), write("b", 1, 1000, 0, false)), &names());
        assert_eq!(checker.violations_count, 1);
        let mut checker = CausalChecker::default();
        let mut above = issued(Some(seen), write("b", 1, 3_600_000, 1, false));
        above.stamped_above_held = true;
        checker.issued(0, 1, &above, &names());
        assert_eq!((checker.violations_count, checker.writes_stamped_above), (0, 1));
    }

    #[test]
    fn writes_stamped_above_and_clock_restarts_leave_the_clock_sequence() {
        // Goal: a write stamped above a far-ahead version does not raise the bar for the
        // clock's next reading, nor does its acknowledgement survive a restart as one; a
        // clock restart begins a new sequence, and anything else going backwards is still
        // caught. Method: hand-built writes of node b.
        let mut checker = CausalChecker::default();
        checker.issued(0, 1, &issued(None, write("b", 1, 1000, 0, false)), &names());
        let seen = write("a", 1, 3_600_000, 0, false);
        let mut above = issued(Some(seen), write("b", 2, 3_600_000, 1, false));
        above.stamped_above_held = true;
        checker.issued(0, 1, &above, &names());
        checker.acknowledged(1, above.issued);
        checker.issued(0, 1, &issued(None, write("b", 3, 1001, 0, false)), &names());
        checker.restarted(1);
        checker.issued(0, 1, &issued(None, write("b", 4, 1002, 0, false)), &names());
        assert_eq!(checker.violations_count, 0);
        let mut restarted = issued(None, write("b", 5, 500, 0, false));
        restarted.clock_restarted = true;
        checker.issued(0, 1, &restarted, &names());
        assert_eq!(checker.violations_count, 0);
        checker.issued(0, 1, &issued(None, write("b", 6, 400, 0, false)), &names());
        assert_eq!(checker.violations_count, 1, "backwards without a restart");
    }
}
