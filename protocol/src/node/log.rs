//! The replicated log held in memory: every entry this node has, per origin, contiguous from
//! sequence 1, plus the bounded buffer of entries that arrived before their predecessors.
//!
//! `held` counts entries present (applied to the store, appended to the WAL); `durable`
//! counts those whose WAL records a completed sync covers. `durable <= held` per origin.

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

/// Per-origin entries, contiguous from sequence 1.
#[derive(Debug, Default)]
pub(crate) struct Log {
    entries: BTreeMap<NodeId, Vec<WalEntry>>,
    /// Per origin, the encoded bytes of its entries 1..=n at index n-1 (running totals), so
    /// the bytes of any range cost two lookups.
    ends: BTreeMap<NodeId, Vec<u64>>,
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

    pub(crate) fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Entry `sequence` of `origin`, if held.
    pub(crate) fn get(&self, origin: NodeId, sequence: u64) -> Option<&WalEntry> {
        let index = usize::try_from(sequence.checked_sub(1)?).ok()?;
        self.entries.get(&origin)?.get(index)
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
        assert_eq!(list.len() as u64 + 1, sequence, "log must stay contiguous per origin");
        list.push(entry.clone());
        let ends = self.ends.entry(origin).or_default();
        let end = ends.last().copied().unwrap_or(0) + message::entry_encoded_len(&entry) as u64;
        ends.push(end);
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

    /// Entries of `origin` in `from..=to` (1-based), clamped to what is held.
    pub(crate) fn range(&self, origin: NodeId, from: u64, to: u64) -> &[WalEntry] {
        let Some(list) = self.entries.get(&origin) else { return &[] };
        let start = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX).min(list.len());
        let end = usize::try_from(to).unwrap_or(usize::MAX).min(list.len());
        if start >= end { &[] } else { &list[start..end] }
    }

    /// Encoded bytes of `origin`'s entries in `after + 1..=through`, clamped to what is held.
    pub(crate) fn bytes_between(&self, origin: NodeId, after: u64, through: u64) -> u64 {
        let Some(ends) = self.ends.get(&origin) else { return 0 };
        let end_at = |position: u64| {
            let count = usize::try_from(position).unwrap_or(usize::MAX).min(ends.len());
            count.checked_sub(1).map_or(0, |index| ends[index])
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
}
