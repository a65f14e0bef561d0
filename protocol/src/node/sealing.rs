//! Sealing (PROTOCOL.md 8.13): an origin seals what it wrote, and every node works out which
//! of its entries it can prove to others.
//!
//! An origin's writes leave it without a proof: its neighbours take them on the strength of
//! the session. While a session is up, the origin seals its unsealed writes once
//! [`SEAL_ENTRIES_MAX`] of them wait or the oldest has waited `seal_delay_ns`: one
//! signature over the root of the range, appended to its log as a seal entry, which
//! replicates like a write. A node that applies a seal keeps it pending; when it first needs
//! the proofs of its range (to relay the origin's writes, to offer a snapshot, to compact) it
//! rebuilds the range's tree from the writes it holds, checks the root against the seal's,
//! and gives each write its proof. `sealed` is, per origin, how far every write held is
//! proven: a node relays another origin's entries only that far. `boundary` is the highest
//! position at or below it that no seal's range straddles: where a base may go.

use std::sync::Arc;

use super::authorship::Forgery;
use super::{Event, Node, Output};
use crate::entry::{NodeId, Operation, Timestamp, VersionVector, WalEntry};
use crate::seal::{SEAL_ENTRIES_MAX, Seal, SealTree};

impl Node {
    /// How far every write of `origin` this node holds is proven (or compacted): it relays
    /// that origin's entries up to here.
    pub(super) fn sealed_position(&self, origin: NodeId) -> u64 {
        self.sealed.get(origin).max(self.log.base().get(origin))
    }

    /// Samples what the broadcast tree could carry on from this node now, for lazy outboxes
    /// (PROTOCOL.md 8.6): its durable vector, lowered for every other origin to
    /// [`sealed_position`](Self::sealed_position) (it relays no further) and for its own to
    /// its last sealed write (its neighbours relay no further). Built only when the history
    /// keeps a sample.
    pub(super) fn note_relayable(&mut self, now_ns: u64) {
        if !self.relayable_history.due(now_ns, self.config.pull_interval_ns) {
            return;
        }
        let own = self.session.node_id;
        let own_sealed = self.first_unsealed() - 1;
        let base = self.log.base();
        let relayable: VersionVector = self
            .log
            .durable()
            .beside(&self.sealed)
            .map(|(origin, durable, sealed)| {
                let top = if origin == own { own_sealed } else { sealed.max(base.get(origin)) };
                let top = durable.min(top);
                (origin, top)
            })
            .filter(|&(_, top)| top > 0)
            .collect();
        self.relayable_history.push(now_ns, relayable);
    }

    /// The highest position at or below [`sealed_position`](Self::sealed_position) that no
    /// seal's range straddles: where compaction and a snapshot may put a base, so that every
    /// range above a base lies wholly above it.
    pub(super) fn sealed_boundary(&self, origin: NodeId) -> u64 {
        self.boundary.get(origin).max(self.log.base().get(origin))
    }

    /// The highest position at or below `position` (itself at or below the sealed boundary,
    /// so every write up to it is proven) that no seal's range straddles: `position` when it
    /// holds a seal or ends its write's range, else the position before that range begins.
    pub(super) fn boundary_at_or_below(&self, origin: NodeId, position: u64) -> u64 {
        let base = self.log.base().get(origin);
        match self.log.get(origin, position) {
            // At or below the base (compacted already), or not held: no further than the base.
            None => position.min(base),
            Some(entry) if entry.is_seal() => position,
            Some(entry) => match &entry.proof {
                Some(proof) if proof.range().1 == position => position,
                Some(proof) => proof.range().0.saturating_sub(1).max(base),
                None => base,
            },
        }
    }

    /// Raises `origin`'s sealed position over every held entry that needs no proof (a seal)
    /// or has one, and its boundary with it.
    pub(super) fn advance_sealed(&mut self, origin: NodeId) {
        let mut position = self.sealed_position(origin);
        let mut boundary = self.sealed_boundary(origin);
        while let Some(entry) = position.checked_add(1).and_then(|next| self.log.get(origin, next)) {
            match &entry.proof {
                _ if entry.is_seal() => boundary = entry.sequence,
                Some(proof) if proof.range().1 == entry.sequence => boundary = entry.sequence,
                Some(_) => {}
                None => break,
            }
            position += 1;
        }
        self.sealed.set(origin, position);
        self.boundary.set(origin, boundary);
    }

    /// Seals this node's unsealed writes when it is due: a session is up, and
    /// [`SEAL_ENTRIES_MAX`] writes wait or the oldest has waited `seal_delay_ns`. Sets
    /// `seal_at_ns` to when it will be due otherwise.
    pub(super) fn seal_if_due(&mut self, now_ns: u64) {
        let own = self.node_id();
        self.seal_at_ns = None;
        let unsealed = (self.log.held().get(own) + 1).saturating_sub(self.first_unsealed());
        if unsealed == 0 {
            self.unsealed_since_ns = None;
            return;
        }
        // With nobody to send them to, the writes wait: a node alone signs nothing.
        if !self.peers.values().any(|peer| peer.node_id.is_some()) {
            return;
        }
        let since_ns = *self.unsealed_since_ns.get_or_insert(now_ns);
        let due_ns = since_ns.saturating_add(self.config.seal_delay_ns);
        if unsealed < SEAL_ENTRIES_MAX && now_ns < due_ns {
            self.seal_at_ns = Some(due_ns);
            return;
        }
        self.seal_all();
        self.unsealed_since_ns = None;
    }

    /// The position of this node's first write no seal covers (or one past its last entry).
    /// Writes at or below the base were proven where they came from (a snapshot); the seals
    /// after the last sealed write are no writes to seal.
    fn first_unsealed(&self) -> u64 {
        let own = self.node_id();
        let mut first = self.sealed_through.max(self.log.base().get(own)) + 1;
        while self.log.get(own, first).is_some_and(WalEntry::is_seal) {
            first += 1;
        }
        first
    }

    /// Seals every unsealed write, [`SEAL_ENTRIES_MAX`] at most per seal.
    fn seal_all(&mut self) {
        let own = self.node_id();
        loop {
            let first = self.first_unsealed();
            let held = self.log.held().get(own);
            if first > held {
                return;
            }
            let last = held.min(first + SEAL_ENTRIES_MAX - 1);
            // A range holds writes only: it stops before a seal (one of this loop's own).
            let writes: Vec<&WalEntry> =
                self.log.range(own, first, last).iter().take_while(|entry| !entry.is_seal()).collect();
            let Ok(tree) = SealTree::create_from(&self.session.identity, writes.iter().copied()) else {
                debug_assert!(false, "the log holds every unsealed write of this node");
                return;
            };
            self.sealed_through = tree.seal.last;
            let sequence = held + 1;
            // A seal writes no key and moves no clock: it bears its last write's timestamp.
            let timestamp = writes.last().map_or(Timestamp(0), |write| write.timestamp);
            let entry = WalEntry::new(own, sequence, timestamp, Operation::Seal(Arc::new(tree.seal)));
            let offer = self.log.offer(entry);
            debug_assert_eq!(offer, super::log::Offer::Accepted, "a seal is the next entry of its origin");
            self.stats.seals_made += 1;
            self.apply_accepted();
        }
    }

    /// A seal entry was applied. The writes of its range that lack a proof get theirs when
    /// this node first needs them ([`prove`](Self::prove): to relay them, offer a snapshot or
    /// compact), so a node that never relays an origin's writes never rebuilds its trees.
    pub(super) fn settle_seal(&mut self, seal: &Arc<Seal>) {
        if seal.origin == self.node_id() {
            self.sealed_through = self.sealed_through.max(seal.last);
        }
        self.pending_seals.entry(seal.origin).or_default().push_back(Arc::clone(seal));
        self.advance_sealed(seal.origin);
    }

    /// Proves the writes of every origin's seals applied here whose writes lack proofs.
    pub(super) fn prove_all(&mut self) {
        let origins: Vec<NodeId> = self.pending_seals.keys().copied().collect();
        for origin in origins {
            self.prove(origin);
        }
    }

    /// Gives the writes of `origin`'s applied seals their proofs, in order: from a tree
    /// rebuilt from the writes held, when its root is the seal's.
    pub(super) fn prove(&mut self, origin: NodeId) {
        let Some(mut seals) = self.pending_seals.remove(&origin) else { return };
        while let Some(seal) = seals.pop_front() {
            let range = self.log.range(origin, seal.first, seal.last);
            // Compacted (it was proven before), or brought with proofs by a relay.
            if seal.last <= self.log.base().get(origin) || range.iter().all(|entry| entry.proof.is_some()) {
                continue;
            }
            match SealTree::rebuild(Seal::clone(&seal), range).map(Arc::new) {
                Ok(tree) => {
                    for sequence in seal.first..=seal.last {
                        let Some(entry) = self.log.get(origin, sequence) else { continue };
                        if entry.proof.is_some() {
                            continue;
                        }
                        let key = entry.operation.key().clone();
                        let Some(proof) = tree.proof(sequence) else { continue };
                        self.store.attach_proof(&key, origin, sequence, &proof);
                        self.log.set_proof(origin, sequence, proof);
                    }
                }
                Err(_) => {
                    // The origin signed a history other than the one it sent: its writes of
                    // the range stay unproven, so this node never relays them.
                    self.stats.seals_refused += 1;
                    if let Some(&link) = self.sources.get(&origin) {
                        let reason = format!(
                            "seal of origin {origin} over {}..={}: {} (PROTOCOL.md 8.13)",
                            seal.first,
                            seal.last,
                            Forgery::OtherHistory
                        );
                        self.outputs.push_back(Output::Event(Event::Rejected { link, reason }));
                    }
                }
            }
        }
        self.advance_sealed(origin);
    }
}
