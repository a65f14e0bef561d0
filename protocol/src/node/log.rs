//! The replicated log held in memory: the entries this node has above its compaction `base`,
//! per origin, contiguous, plus the bounded buffer of entries that arrived before their
//! predecessors.
//!
//! `held` counts entries present (applied to the store, appended to the WAL); `durable`
//! counts those whose WAL records a completed sync covers; entries at or below `base` were
//! compacted away (their effect lives in the store) or skipped over by a snapshot.
//! `base <= held` and `durable <= held` per origin.

use std::collections::BTreeMap;

use crate::entry::{NodeId, VersionVector, WalEntry};
use crate::message;

/// Entries that arrived ahead of a gap, waiting for their predecessors.
pub const PENDING_ENTRIES_MAX: usize = 4096;

/// What became of an entry offered to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Already held; nothing to do.
    Duplicate,
    /// Held now (and possibly more from the pending buffer); the caller applies and logs
    /// everything returned by [`Log::take_accepted`].
    Accepted,
    /// Ahead of a gap; buffered.
    Buffered,
    /// Ahead of a gap and the buffer is full; dropped (a later push or pull brings it again).
    Dropped,
}

/// Per-origin entries above `base`, contiguous.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Per origin, entries `base + 1 ..= held`.
    entries: BTreeMap<NodeId, Vec<WalEntry>>,
    /// Per origin, running totals of encoded bytes: index `i` holds the bytes of its entries
    /// through sequence `base + 1 + i`, counted from the origin's first entry ever held (the
    /// total at `base` is in `ends_base`), so the bytes of any held range cost two lookups.
    ends: BTreeMap<NodeId, Vec<u64>>,
    ends_base: BTreeMap<NodeId, u64>,
    /// Positions compacted away or skipped by a snapshot.
    base: VersionVector,
    /// Encoded bytes of every entry held above `base`.
    bytes: u64,
    /// Entries held above `base`.
    count: u64,
    held: VersionVector,
    durable: VersionVector,
    pending: BTreeMap<(NodeId, u64), WalEntry>,
    accepted: Vec<WalEntry>,
}

impl Log {
    pub(crate) fn held(&self) -> &VersionVector {
        &self.held
    }

    pub(crate) fn durable(&self) -> &VersionVector {
        &self.durable
    }

    pub(crate) fn base(&self) -> &VersionVector {
        &self.base
    }

    /// Encoded bytes of the entries held above `base`.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Entries held above `base`.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Entry `sequence` of `origin`, if held above `base`.
    pub(crate) fn get(&self, origin: NodeId, sequence: u64) -> Option<&WalEntry> {
        let index = usize::try_from(sequence.checked_sub(self.base.get(origin) + 1)?).ok()?;
        self.entries.get(&origin)?.get(index)
    }

    /// Gives entry `sequence` of `origin` its proof, if held above `base` (its byte count
    /// stays the one it was logged with).
    pub(crate) fn set_proof(&mut self, origin: NodeId, sequence: u64, proof: crate::seal::Proof) {
        let Some(index) = sequence.checked_sub(self.base.get(origin) + 1) else { return };
        let Ok(index) = usize::try_from(index) else { return };
        if let Some(entry) = self.entries.get_mut(&origin).and_then(|list| list.get_mut(index)) {
            entry.proof = Some(proof);
        }
    }

    /// Entries held above `base`, per origin in sequence order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &WalEntry> + '_ {
        self.entries.values().flatten()
    }

    /// Starts a log recovered from a compacted WAL: everything at or below `base` is held
    /// (its effect is in the store) and nothing above it yet.
    pub(crate) fn with_base(base: VersionVector) -> Self {
        Self { held: base.clone(), base, ..Self::default() }
    }

    /// Drops the entries at or below `to` (clamped to `durable`) and raises `base` to it.
    pub(crate) fn compact(&mut self, to: &VersionVector) {
        let mut raised = VersionVector::new();
        for (origin, position) in to.iter() {
            let position = position.min(self.durable.get(origin));
            let base = self.base.get(origin);
            if position <= base {
                continue;
            }
            let dropped = usize::try_from(position - base).unwrap_or(usize::MAX);
            let (Some(list), Some(ends)) = (self.entries.get_mut(&origin), self.ends.get_mut(&origin)) else {
                continue;
            };
            let dropped = dropped.min(list.len());
            let total_before = self.ends_base.get(&origin).copied().unwrap_or(0);
            let total_at = dropped.checked_sub(1).map_or(total_before, |index| ends[index]);
            self.bytes -= total_at - total_before;
            self.count -= dropped as u64;
            list.drain(..dropped);
            ends.drain(..dropped);
            self.ends_base.insert(origin, total_at);
            raised.set(origin, base + dropped as u64);
        }
        self.base.merge_max(&raised);
    }

    /// Takes in a snapshot that reflects every entry at or below `vector`: for each origin
    /// where it is ahead of `held`, the entries held of that origin are dropped (the
    /// snapshot reflects them) and `base` and `held` jump to it; gap-buffered successors it
    /// unblocks are queued for [`take_accepted`](Self::take_accepted). `durable` stays: the
    /// snapshot is durable only once written.
    pub(crate) fn jump(&mut self, vector: &VersionVector) {
        for (origin, position) in vector.iter() {
            if position <= self.held.get(origin) {
                continue;
            }
            if let Some(list) = self.entries.remove(&origin) {
                self.count -= list.len() as u64;
                self.bytes -= self.bytes_between(origin, self.base.get(origin), self.held.get(origin));
            }
            self.ends.remove(&origin);
            self.ends_base.insert(origin, 0);
            self.base.set(origin, position);
            self.held.set(origin, position);
            self.pending
                .retain(|(pending_origin, sequence), _| *pending_origin != origin || *sequence > position);
            while let Some(next) = self.pending.remove(&(origin, self.held.get(origin) + 1)) {
                self.hold(next);
            }
        }
    }

    /// Offers an entry; contiguous ones (and any pending successors they unblock) are
    /// queued for [`take_accepted`](Self::take_accepted).
    pub(crate) fn offer(&mut self, entry: WalEntry) -> Offer {
        let held = self.held.get(entry.origin);
        if entry.sequence <= held {
            return Offer::Duplicate;
        }
        if entry.sequence > held + 1 {
            if self.pending.contains_key(&(entry.origin, entry.sequence)) {
                return Offer::Duplicate;
            }
            if self.pending.len() >= PENDING_ENTRIES_MAX {
                return Offer::Dropped;
            }
            self.pending.insert((entry.origin, entry.sequence), entry);
            return Offer::Buffered;
        }
        let origin = entry.origin;
        self.hold(entry);
        while let Some(next) = self.pending.remove(&(origin, self.held.get(origin) + 1)) {
            self.hold(next);
        }
        Offer::Accepted
    }

    fn hold(&mut self, entry: WalEntry) {
        let origin = entry.origin;
        let sequence = entry.sequence;
        let list = self.entries.entry(origin).or_default();
        assert_eq!(
            self.base.get(origin) + list.len() as u64 + 1,
            sequence,
            "log must stay contiguous per origin"
        );
        list.push(entry.clone());
        let ends = self.ends.entry(origin).or_default();
        let entry_bytes = message::entry_encoded_len(&entry) as u64;
        let before =
            ends.last().copied().unwrap_or_else(|| self.ends_base.get(&origin).copied().unwrap_or(0));
        ends.push(before + entry_bytes);
        self.bytes += entry_bytes;
        self.count += 1;
        self.held.set(origin, sequence);
        self.accepted.push(entry);
    }

    /// Entries accepted since the last call, in acceptance order.
    pub(crate) fn take_accepted(&mut self) -> Vec<WalEntry> {
        std::mem::take(&mut self.accepted)
    }

    /// Marks everything up to `vector` durable.
    pub(crate) fn mark_durable(&mut self, vector: &VersionVector) {
        self.durable.merge_max(vector);
        debug_assert!(self.durable.iter().all(|(origin, position)| position <= self.held.get(origin)));
    }

    /// Entries of `origin` in `from..=to` (1-based), clamped to what is held above `base`.
    pub(crate) fn range(&self, origin: NodeId, from: u64, to: u64) -> &[WalEntry] {
        let Some(list) = self.entries.get(&origin) else { return &[] };
        let base = self.base.get(origin);
        let start = usize::try_from(from.saturating_sub(1).saturating_sub(base))
            .unwrap_or(usize::MAX)
            .min(list.len());
        let end = usize::try_from(to.saturating_sub(base)).unwrap_or(usize::MAX).min(list.len());
        if start >= end { &[] } else { &list[start..end] }
    }

    /// Encoded bytes of `origin`'s entries in `after + 1..=through`, clamped to what is held
    /// above `base`.
    pub(crate) fn bytes_between(&self, origin: NodeId, after: u64, through: u64) -> u64 {
        let Some(ends) = self.ends.get(&origin) else { return 0 };
        let base = self.base.get(origin);
        let total_at_base = self.ends_base.get(&origin).copied().unwrap_or(0);
        let end_at = |position: u64| {
            let count = usize::try_from(position.saturating_sub(base)).unwrap_or(usize::MAX).min(ends.len());
            count.checked_sub(1).map_or(total_at_base, |index| ends[index])
        };
        end_at(through).saturating_sub(end_at(after))
    }

    /// Encoded bytes of the entries above `lower` and up to `upper`, over every origin.
    pub(crate) fn bytes_above(&self, lower: &VersionVector, upper: &VersionVector) -> u64 {
        // One walk of two origin-sorted vectors; only the origins where `upper` is ahead cost
        // a lookup (usually none: most of the time nothing is in flight).
        let mut lower_positions = lower.iter().peekable();
        let mut bytes = 0;
        for (origin, through) in upper.iter() {
            while lower_positions.peek().is_some_and(|(lower_origin, _)| *lower_origin < origin) {
                lower_positions.next();
            }
            let after = match lower_positions.peek() {
                Some((lower_origin, position)) if *lower_origin == origin => *position,
                _ => 0,
            };
            if through > after {
                bytes += self.bytes_between(origin, after, through);
            }
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::entry::{Operation, Timestamp};

    fn entry(origin: u64, sequence: u64) -> WalEntry {
        WalEntry {
            origin: NodeId(origin),
            sequence,
            timestamp: Timestamp::new(sequence, 0),
            operation: Operation::Delete { key: Bytes::from_static(b"k") },
            proof: None,
        }
    }

    #[test]
    fn gaps_buffer_then_fill_in_order() {
        let mut log = Log::default();
        assert_eq!(log.offer(entry(1, 2)), Offer::Buffered);
        assert_eq!(log.offer(entry(1, 3)), Offer::Buffered);
        assert_eq!(log.offer(entry(1, 3)), Offer::Duplicate);
        assert_eq!(log.held().get(NodeId(1)), 0);
        assert_eq!(log.offer(entry(1, 1)), Offer::Accepted);
        let accepted: Vec<u64> = log.take_accepted().iter().map(|entry| entry.sequence).collect();
        assert_eq!(accepted, vec![1, 2, 3]);
        assert_eq!(log.held().get(NodeId(1)), 3);
        assert_eq!(log.offer(entry(1, 2)), Offer::Duplicate);
        assert_eq!(log.pending_count(), 0);
        assert_eq!(log.range(NodeId(1), 2, 10).len(), 2);
        assert_eq!(log.get(NodeId(1), 3).map(|entry| entry.sequence), Some(3));
        assert_eq!(log.get(NodeId(1), 0), None);
    }

    #[test]
    fn bytes_of_ranges_are_the_encoded_sizes_clamped_to_what_is_held() {
        let mut log = Log::default();
        for sequence in 1..=3 {
            log.offer(entry(1, sequence));
        }
        log.offer(entry(2, 1));
        let size =
            |origin, sequence| message::entry_encoded_len(log.get(NodeId(origin), sequence).unwrap()) as u64;
        assert_eq!(log.bytes_between(NodeId(1), 0, 3), size(1, 1) + size(1, 2) + size(1, 3));
        assert_eq!(log.bytes_between(NodeId(1), 1, 2), size(1, 2));
        assert_eq!(log.bytes_between(NodeId(1), 2, 99), size(1, 3));
        assert_eq!(log.bytes_between(NodeId(1), 3, 1), 0);
        assert_eq!(log.bytes_between(NodeId(9), 0, 5), 0);
        let lower: VersionVector = [(NodeId(1), 2)].into_iter().collect();
        let upper: VersionVector = [(NodeId(1), 3), (NodeId(2), 1)].into_iter().collect();
        assert_eq!(log.bytes_above(&lower, &upper), size(1, 3) + size(2, 1));
    }

    #[test]
    fn pending_buffer_is_bounded() {
        let mut log = Log::default();
        for sequence in 0..PENDING_ENTRIES_MAX as u64 {
            assert_eq!(log.offer(entry(1, sequence + 2)), Offer::Buffered);
        }
        assert_eq!(log.offer(entry(2, 5)), Offer::Dropped);
        assert_eq!(log.pending_count(), PENDING_ENTRIES_MAX);
    }

    #[test]
    fn compaction_drops_a_durable_prefix_and_keeps_ranges_and_bytes_exact() {
        let mut log = Log::default();
        for sequence in 1..=5 {
            log.offer(entry(1, sequence));
        }
        log.offer(entry(2, 1));
        let size = |sequence| message::entry_encoded_len(&entry(1, sequence)) as u64;
        let total = log.bytes();
        log.compact(&[(NodeId(1), 3), (NodeId(2), 1)].into_iter().collect());
        assert!(log.base().is_empty(), "nothing is durable: nothing compacts");
        log.mark_durable(&[(NodeId(1), 4)].into_iter().collect());
        log.compact(&[(NodeId(1), 3), (NodeId(2), 1)].into_iter().collect());
        assert_eq!(log.base().get(NodeId(1)), 3);
        assert_eq!(log.base().get(NodeId(2)), 0, "clamped to durable");
        assert_eq!(log.count(), 3);
        assert_eq!(log.bytes(), total - size(1) - size(2) - size(3));
        assert_eq!(log.get(NodeId(1), 3), None);
        assert_eq!(log.get(NodeId(1), 4).map(|entry| entry.sequence), Some(4));
        assert_eq!(
            log.range(NodeId(1), 1, 10).iter().map(|entry| entry.sequence).collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert_eq!(log.bytes_between(NodeId(1), 3, 5), size(4) + size(5));
        assert_eq!(log.bytes_between(NodeId(1), 0, 4), size(4), "what lies below the base counts nothing");
        assert_eq!(log.offer(entry(1, 2)), Offer::Duplicate);
        assert_eq!(log.offer(entry(1, 6)), Offer::Accepted);
        assert_eq!(log.bytes_between(NodeId(1), 3, 6), size(4) + size(5) + size(6));
    }

    #[test]
    fn a_snapshot_jump_skips_what_it_reflects_and_unblocks_the_gap_buffer() {
        let mut log = Log::default();
        log.offer(entry(1, 1));
        assert_eq!(log.offer(entry(1, 5)), Offer::Buffered);
        assert_eq!(log.offer(entry(1, 3)), Offer::Buffered);
        log.take_accepted();
        log.jump(&[(NodeId(1), 4), (NodeId(2), 0)].into_iter().collect());
        assert_eq!(log.held().get(NodeId(1)), 5, "the buffered successor follows the jump");
        assert_eq!(log.base().get(NodeId(1)), 4);
        assert_eq!(log.pending_count(), 0, "the buffered entry the jump covers is gone");
        assert_eq!(log.take_accepted().iter().map(|entry| entry.sequence).collect::<Vec<_>>(), vec![5]);
        assert_eq!(log.count(), 1);
        assert_eq!(log.bytes(), message::entry_encoded_len(&entry(1, 5)) as u64);
        assert_eq!(log.durable().get(NodeId(1)), 0, "durable only once written");
    }
}
