//! Compaction and snapshot transfer (PROTOCOL.md 8.11).
//!
//! Compaction drops the log entries every neighbour already holds and asks for the WAL to be
//! rewritten as a *base record*, the store's winning entry of each key at or below the base,
//! and the log above it ([`DiskRequest::Replace`], then a sync). A neighbour that lacks
//! entries below the base can no longer get them pushed: it is offered a *snapshot* instead,
//! the store's registers in key order as of a vector, which it pulls chunk by chunk, checks
//! against the offered digest, and merges under last-writer-wins. Tombstones are never
//! dropped, so merging a snapshot is always safe, whatever the receiver holds: a
//! last-writer-wins map is a join semilattice.

use bytes::{Bytes, BytesMut};

use super::{Event, LinkId, Node, Output};
use crate::entry::{NodeId, VersionVector, WalEntry};
use crate::message::{
    Message, SNAPSHOT_CHUNKS_MAX, SNAPSHOT_ENTRIES_MAX, WAL_PUSH_BYTES_MAX, entry_encoded_len,
};
use crate::storage::DiskRequest;
use crate::store::Store;
use crate::wal;

/// A snapshot this node built to offer: its state as of `vector`, split into chunks.
#[derive(Debug)]
pub(crate) struct SnapshotImage {
    pub(crate) snapshot_id: u64,
    pub(crate) vector: VersionVector,
    pub(crate) digest: [u8; 32],
    pub(crate) entries_count: u64,
    pub(crate) chunks: Vec<Vec<WalEntry>>,
    /// When a chunk of it was last asked for: an image nobody pulls is dropped.
    pub(crate) used_ns: u64,
}

/// A snapshot being received: at most one at a time, from one neighbour.
#[derive(Debug)]
pub(crate) struct IncomingSnapshot {
    pub(crate) link: LinkId,
    pub(crate) from: NodeId,
    pub(crate) snapshot_id: u64,
    pub(crate) vector: VersionVector,
    pub(crate) digest: [u8; 32],
    pub(crate) entries_count: u64,
    pub(crate) chunks_count: u64,
    /// The next chunk wanted; everything before it is in `entries`.
    pub(crate) next_index: u64,
    pub(crate) entries: Vec<WalEntry>,
    /// When the last chunk arrived (or the offer): a transfer that stalls for
    /// [`SNAPSHOT_STALL_PULLS`] pull intervals gives way to another offer.
    pub(crate) progress_ns: u64,
    /// When we last asked for a chunk.
    pub(crate) pulled_ns: u64,
    /// Every chunk arrived and checked: merged at the next point with no sync in flight.
    pub(crate) complete: bool,
}

/// Pull intervals an incoming snapshot may go without a chunk before another neighbour's
/// offer replaces it.
pub const SNAPSHOT_STALL_PULLS: u64 = 4;

/// Pull intervals after a node starts before it compacts: time for its neighbours to
/// reconnect and say what they hold, so that a restart does not force them onto snapshots.
pub const COMPACTION_GRACE_PULLS: u64 = 4;

/// Pull intervals an offered snapshot image is kept without a pull before it is dropped.
pub const SNAPSHOT_IMAGE_IDLE_PULLS: u64 = 16;

/// `a` lowered to `b` origin by origin (origins missing from `b` count as 0).
fn meet(a: &mut VersionVector, b: &VersionVector) {
    let lowered: Vec<(NodeId, u64)> = a
        .iter()
        .filter(|(origin, position)| b.get(*origin) < *position)
        .map(|(origin, _)| (origin, b.get(origin)))
        .collect();
    for (origin, position) in lowered {
        a.set(origin, position);
    }
}

impl Node {
    /// Whether the peer on `link`, by its latest pull, holds less of some origin (not its
    /// own) than was compacted here, so pushes cannot bring it up to date. Before its
    /// first pull of a session nothing is decided: its acks may be far behind what it holds.
    pub(super) fn needs_snapshot(&self, link: LinkId) -> bool {
        let Some(peer) = self.peers.get(&link) else { return false };
        let Some(peer_id) = peer.node_id else { return false };
        if !peer.pulled_in_session {
            return false;
        }
        self.log.base().iter().any(|(origin, base)| origin != peer_id && peer.sent.get(origin) < base)
    }

    /// Offers a snapshot on `link` (at most once per pull interval), building the image if
    /// there is no usable one. An image is built only when everything held is durable, so
    /// it never reflects an entry a crash here could take back.
    pub(super) fn offer_snapshot(&mut self, now_ns: u64, link: LinkId) {
        let pull_interval_ns = self.config.pull_interval_ns;
        let Some(peer) = self.peers.get(&link) else { return };
        if peer.snapshot_offered_ns.is_some_and(|at_ns| now_ns < at_ns.saturating_add(pull_interval_ns)) {
            return;
        }
        let usable = self.snapshot.as_ref().is_some_and(|image| {
            self.log.base().iter().all(|(origin, base)| image.vector.get(origin) >= base)
        });
        if !usable {
            if self.log.held() != self.log.durable() {
                return;
            }
            self.snapshot = self.build_snapshot(now_ns);
        }
        let Some(image) = &mut self.snapshot else { return };
        image.used_ns = now_ns;
        let offer = Message::SnapshotOffer {
            snapshot_id: image.snapshot_id,
            vector: image.vector.clone(),
            digest: image.digest,
            entries_count: image.entries_count,
            chunks_count: image.chunks.len() as u64,
        };
        if let Some(peer) = self.peers.get_mut(&link) {
            peer.snapshot_offered_ns = Some(now_ns);
        }
        self.stats.snapshots_offered += 1;
        self.send_message(link, &offer);
    }

    fn build_snapshot(&mut self, now_ns: u64) -> Option<SnapshotImage> {
        // A state beyond what an offer may announce cannot travel as a snapshot: every
        // receiver would refuse the offer. Not offering is the honest answer (the neighbour
        // stays behind, and `snapshots_unsendable` says why).
        if self.store.registers_count() as u64 > SNAPSHOT_ENTRIES_MAX
            || self.store.encoded_bytes() / (WAL_PUSH_BYTES_MAX as u64 / 2) > SNAPSHOT_CHUNKS_MAX
        {
            self.stats.snapshots_unsendable += 1;
            return None;
        }
        // A snapshot carries proven registers only (8.13): as of each origin's sealed
        // position, without the registers of writes beyond it, which pushes bring once
        // sealed (they stay in the log until then).
        self.prove_all();
        let vector: VersionVector =
            self.log.held().iter().map(|(origin, _)| (origin, self.sealed_boundary(origin))).collect();
        let mut left_out = false;
        let mut chunks: Vec<Vec<WalEntry>> = Vec::new();
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        for (key, register) in self.store.iter_all() {
            if register.sequence > vector.get(register.origin) || register.proof.is_none() {
                left_out = true;
                continue;
            }
            let entry = register.to_entry(key.clone());
            let entry_bytes = entry_encoded_len(&entry);
            if chunk_bytes + entry_bytes > WAL_PUSH_BYTES_MAX - 64 && !chunk.is_empty() {
                chunks.push(std::mem::take(&mut chunk));
                chunk_bytes = 0;
            }
            chunk_bytes += entry_bytes;
            chunk.push(entry);
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
        if chunks.len() as u64 > SNAPSHOT_CHUNKS_MAX {
            self.stats.snapshots_unsendable += 1;
            return None;
        }
        let (digest, entries_count) = if left_out {
            let mut image = Store::new();
            for entry in chunks.iter().flatten() {
                image.apply(entry);
            }
            (image.digest().0, image.registers_count() as u64)
        } else {
            (self.store.digest().0, self.store.registers_count() as u64)
        };
        Some(SnapshotImage {
            snapshot_id: self.rng.next_u64(),
            vector,
            digest,
            entries_count,
            chunks,
            used_ns: now_ns,
        })
    }

    /// A SnapshotOffer arrived on `link` (any other message is ignored).
    pub(super) fn handle_snapshot_offer(&mut self, now_ns: u64, link: LinkId, offer: Message) {
        let Message::SnapshotOffer { snapshot_id, vector, digest, entries_count, chunks_count } = offer
        else {
            return;
        };
        let Some(from) = self.peers.get(&link).and_then(|peer| peer.node_id) else { return };
        // Nothing in it we lack, or would take (PROTOCOL.md 8.12): our pulls will tell the
        // sender.
        if !vector
            .iter()
            .any(|(origin, position)| position > self.log.held().get(origin) && self.accepts_origin(origin))
        {
            return;
        }
        // This very snapshot held an entry of a non-member origin: it would be refused again.
        if self.refused_snapshot == Some((from, snapshot_id)) {
            return;
        }
        let sane = chunks_count <= SNAPSHOT_CHUNKS_MAX
            && chunks_count <= entries_count
            && (entries_count == 0 || chunks_count > 0);
        if !sane {
            let reason = format!("offer of {entries_count} entries in {chunks_count} chunks");
            self.refuse_snapshot(link, reason);
            return;
        }
        let stall_ns = self.config.pull_interval_ns.saturating_mul(SNAPSHOT_STALL_PULLS);
        if let Some(incoming) = &mut self.incoming {
            if incoming.from == from && incoming.snapshot_id == snapshot_id {
                // The same snapshot again (a new session, or our pull was lost): resume.
                incoming.link = link;
                if !incoming.complete {
                    let chunk_index = incoming.next_index;
                    incoming.pulled_ns = now_ns;
                    self.send_message(link, &Message::SnapshotPull { snapshot_id, chunk_index });
                }
                return;
            }
            if incoming.complete || now_ns < incoming.progress_ns.saturating_add(stall_ns) {
                return;
            }
        }
        self.incoming = Some(IncomingSnapshot {
            link,
            from,
            snapshot_id,
            vector,
            digest,
            entries_count,
            chunks_count,
            next_index: 0,
            entries: Vec::new(),
            progress_ns: now_ns,
            pulled_ns: now_ns,
            complete: false,
        });
        if chunks_count == 0 {
            self.finish_snapshot();
        } else {
            self.send_message(link, &Message::SnapshotPull { snapshot_id, chunk_index: 0 });
        }
    }

    pub(super) fn handle_snapshot_pull(
        &mut self,
        now_ns: u64,
        link: LinkId,
        snapshot_id: u64,
        chunk_index: u64,
    ) {
        let chunk =
            self.snapshot.as_ref().filter(|image| image.snapshot_id == snapshot_id).and_then(|image| {
                usize::try_from(chunk_index).ok().and_then(|index| image.chunks.get(index)).cloned()
            });
        let Some(entries) = chunk else {
            // An image we no longer have: offer the current one if the peer still needs it.
            if let Some(peer) = self.peers.get_mut(&link) {
                peer.snapshot_offered_ns = None;
            }
            if self.needs_snapshot(link) {
                self.offer_snapshot(now_ns, link);
            }
            return;
        };
        if let Some(image) = &mut self.snapshot {
            image.used_ns = now_ns;
        }
        self.stats.snapshot_chunks_sent += 1;
        self.send_message(link, &Message::SnapshotChunk { snapshot_id, chunk_index, entries });
    }

    pub(super) fn handle_snapshot_chunk(
        &mut self,
        now_ns: u64,
        link: LinkId,
        snapshot_id: u64,
        chunk_index: u64,
        entries: Vec<WalEntry>,
    ) {
        let Some(from) = self.peers.get(&link).and_then(|peer| peer.node_id) else { return };
        let Some(incoming) = &mut self.incoming else { return };
        if incoming.from != from
            || incoming.snapshot_id != snapshot_id
            || incoming.complete
            || incoming.next_index != chunk_index
        {
            // A repeat, or a chunk of a snapshot we gave up: nothing to do.
            return;
        }
        let mut problem = None;
        if entries.is_empty() {
            problem = Some("an empty chunk".to_owned());
        } else if incoming.entries.len() as u64 + entries.len() as u64 > incoming.entries_count {
            problem = Some(format!("more than the {} entries offered", incoming.entries_count));
        }
        let member_origins = self.config.member_origins.as_ref();
        let own = self.session.node_id;
        let mut non_member = false;
        for entry in entries {
            if problem.is_some() {
                break;
            }
            if entry.origin != own && member_origins.is_some_and(|set| !set.contains(&entry.origin)) {
                // A snapshot is checked whole against its digest: without this entry it is
                // not the state offered, and another register of the key may be lost with it.
                non_member = true;
                problem = Some(format!(
                    "entry {}#{} of an origin that is not a member (PROTOCOL.md 8.12)",
                    entry.origin, entry.sequence
                ));
            } else if entry.is_seal() {
                problem =
                    Some(format!("entry {}#{} is a seal, not a register", entry.origin, entry.sequence));
            } else if let Err(why) = self.origin_keys.check(&entry) {
                // As in a push (PROTOCOL.md 8.13), but the snapshot goes whole.
                problem =
                    Some(format!("entry {}#{}: {} (PROTOCOL.md 8.13)", entry.origin, entry.sequence, why));
            } else if entry.sequence > incoming.vector.get(entry.origin) {
                problem =
                    Some(format!("entry {}#{} beyond the offered vector", entry.origin, entry.sequence));
            } else if incoming
                .entries
                .last()
                .is_some_and(|last| last.operation.key() >= entry.operation.key())
            {
                problem = Some("keys out of order or repeated".to_owned());
            }
            if problem.is_none() {
                // Own the bytes: a slice would pin the whole received frame.
                incoming.entries.push(super::detach(entry));
            }
        }
        if let Some(reason) = problem {
            self.incoming = None;
            if non_member {
                self.refused_snapshot = Some((from, snapshot_id));
            }
            self.refuse_snapshot(link, reason);
            return;
        }
        incoming.next_index += 1;
        incoming.progress_ns = now_ns;
        if incoming.next_index < incoming.chunks_count {
            let chunk_index = incoming.next_index;
            incoming.pulled_ns = now_ns;
            self.send_message(link, &Message::SnapshotPull { snapshot_id, chunk_index });
        } else {
            self.finish_snapshot();
        }
    }

    /// Every chunk is in: checks the count and the digest; the merge waits for a moment
    /// with no sync in flight ([`rewrite_wal`](Self::rewrite_wal)).
    fn finish_snapshot(&mut self) {
        let Some(incoming) = &mut self.incoming else { return };
        let link = incoming.link;
        if incoming.entries.len() as u64 != incoming.entries_count {
            let reason =
                format!("{} entries arrived, {} offered", incoming.entries.len(), incoming.entries_count);
            self.incoming = None;
            return self.refuse_snapshot(link, reason);
        }
        let mut check = Store::new();
        for entry in &incoming.entries {
            check.apply(entry);
        }
        if check.digest().0 != incoming.digest {
            let reason = format!("digest {} does not match the offer", check.digest());
            self.incoming = None;
            return self.refuse_snapshot(link, reason);
        }
        incoming.complete = true;
    }

    fn refuse_snapshot(&mut self, link: LinkId, reason: String) {
        self.stats.snapshots_refused += 1;
        self.outputs.push_back(Output::Event(Event::SnapshotRefused { link, reason }));
    }

    /// Asks again for the chunk an incoming snapshot waits for on `link`, if the last ask
    /// is a pull interval old (it or its answer may have been lost).
    pub(super) fn repeat_snapshot_pull(&mut self, now_ns: u64, link: LinkId) {
        let Some(incoming) = &mut self.incoming else { return };
        if incoming.link != link
            || incoming.complete
            || now_ns < incoming.pulled_ns.saturating_add(self.config.pull_interval_ns)
        {
            return;
        }
        incoming.pulled_ns = now_ns;
        let pull =
            Message::SnapshotPull { snapshot_id: incoming.snapshot_id, chunk_index: incoming.next_index };
        self.send_message(link, &pull);
    }

    /// With no sync in flight: merges a complete incoming snapshot, or compacts the log when
    /// it is due, and asks for the WAL to be rewritten; the caller issues the sync that
    /// makes the new file durable right after.
    pub(super) fn rewrite_wal(&mut self, now_ns: u64) {
        if self.sync_inflight.is_some() {
            return;
        }
        if self.incoming.as_ref().is_some_and(|incoming| incoming.complete) {
            let Some(incoming) = self.incoming.take() else { return };
            self.merge_snapshot(now_ns, incoming);
            return;
        }
        if let Some(to) = self.compaction_due(now_ns) {
            let before = self.log.count();
            self.log.compact(&to);
            let entries_dropped = before - self.log.count();
            self.stats.compactions += 1;
            self.replace_wal();
            let event = Event::Compacted {
                entries_dropped,
                log_entries: self.log.count(),
                wal_bytes: self.wal_bytes,
            };
            self.outputs.push_back(Output::Event(event));
        }
    }

    fn merge_snapshot(&mut self, now_ns: u64, incoming: IncomingSnapshot) {
        let origins_advanced = incoming
            .vector
            .iter()
            .filter(|(origin, position)| *position > self.log.held().get(*origin))
            .count() as u64;
        if origins_advanced == 0 {
            // Pushes brought all of it while it was on its way: every entry it reflects is
            // held here already, so it changes nothing.
            return;
        }
        for entry in &incoming.entries {
            self.store.apply(entry);
            if entry.origin == self.node_id() {
                self.clock.restore(entry.timestamp);
            }
        }
        self.log.jump(&incoming.vector);
        // Entries the jump unblocked from the gap buffer are in the log now, so the image
        // below holds them: they go to the store here, not to the WAL a second time.
        for entry in self.log.take_accepted() {
            if let crate::entry::Operation::Seal(seal) = &entry.operation {
                self.settle_seal(seal);
            } else {
                self.apply_to_store(&entry);
            }
        }
        // What a snapshot reflects was proven where it was built.
        for (origin, _) in incoming.vector.iter() {
            self.advance_sealed(origin);
        }
        self.stats.snapshots_applied += 1;
        self.replace_wal();
        let link = incoming.link;
        let event = Event::SnapshotApplied { link, entries_count: incoming.entries_count, origins_advanced };
        self.outputs.push_back(Output::Event(event));
        // Tell the sender at once where we stand, so it pushes what lies beyond.
        if self.peers.get(&link).is_some_and(|peer| peer.node_id == Some(incoming.from)) {
            if let Some(peer) = self.peers.get_mut(&link) {
                peer.pulls.restart_full();
            }
            self.send_pull(now_ns, link);
        }
    }

    /// Issues the rewrite of the WAL as the current base, winners and log.
    fn replace_wal(&mut self) {
        let image = self.build_wal_image();
        self.wal_bytes = image.len() as u64;
        self.wal_bytes_peak = self.wal_bytes_peak.max(self.wal_bytes);
        self.outputs.push_back(Output::Disk(DiskRequest::Replace { bytes: image }));
        self.appended = true;
    }

    /// The WAL as it should be now: the base record, the store's winning entry of every key
    /// whose winner lies at or below the base, then every entry held above the base.
    pub(super) fn build_wal_image(&self) -> Bytes {
        let base = self.log.base();
        let mut out = BytesMut::new();
        wal::encode_base_record(base, &mut out);
        for (key, register) in self.store.iter_all() {
            if register.sequence <= base.get(register.origin) {
                wal::encode_record(&register.to_entry(key.clone()), &mut out);
            }
        }
        // The log is written without proofs, as it was appended (8.13): its seals, above the
        // base too, prove it again after a restart.
        for entry in self.log.iter() {
            if entry.proof.is_some() {
                wal::encode_record(&WalEntry { proof: None, ..entry.clone() }, &mut out);
            } else {
                wal::encode_record(entry, &mut out);
            }
        }
        out.freeze()
    }

    /// The vector to compact to, when compaction is due: the log holds at least
    /// `compaction_tail_bytes_min` bytes and at least as many as the state, and every
    /// neighbour (connected, or gone for less than the horizon) holds what would be dropped,
    /// or at least half the log.
    fn compaction_due(&mut self, now_ns: u64) -> Option<VersionVector> {
        let tail_bytes = self.log.bytes();
        if tail_bytes < self.config.compaction_tail_bytes_min || tail_bytes < self.store.encoded_bytes() {
            return None;
        }
        let grace_ns = self.config.pull_interval_ns.saturating_mul(COMPACTION_GRACE_PULLS);
        if now_ns < self.started_ns.unwrap_or(now_ns).saturating_add(grace_ns)
            || self
                .compaction_checked_ns
                .is_some_and(|at_ns| now_ns < at_ns.saturating_add(self.config.pull_interval_ns))
        {
            return None;
        }
        self.compaction_checked_ns = Some(now_ns);
        let horizon_ns = self.config.compaction_horizon_ns;
        let mut to = self.log.durable().clone();
        // A neighbour pins what it has not got while we hear from it, or heard from it less
        // than the horizon ago: a session that went silent (a datagram link does not go
        // down) counts as gone once the horizon passes.
        for peer in self.peers.values() {
            let heard =
                peer.last_authenticated_ns.is_some_and(|at_ns| now_ns < at_ns.saturating_add(horizon_ns));
            if peer.node_id.is_some() && heard {
                meet(&mut to, &peer.floor);
            }
        }
        let connected: Vec<NodeId> = self.peers.values().filter_map(|peer| peer.node_id).collect();
        self.members.retain(|_, (_, seen_ns)| now_ns < seen_ns.saturating_add(horizon_ns));
        for (member, (floor, _)) in &self.members {
            if !connected.contains(member) {
                meet(&mut to, floor);
            }
        }
        // Unproven writes stay in the log: their seal's tree is rebuilt from them (8.13), and
        // the base goes where no seal's range straddles it.
        self.prove_all();
        let proven: VersionVector =
            to.iter().map(|(origin, _)| (origin, self.sealed_boundary(origin))).collect();
        meet(&mut to, &proven);
        // A neighbour's floor may lie inside a seal's range: the base goes to the boundary
        // at or below it, so that no range is left half below the base.
        let snapped: VersionVector = to
            .iter()
            .map(|(origin, position)| (origin, self.boundary_at_or_below(origin, position)))
            .collect();
        meet(&mut to, &snapped);
        let base = self.log.base();
        let dropped: u64 = to
            .iter()
            .map(|(origin, position)| self.log.bytes_between(origin, base.get(origin), position))
            .sum();
        (dropped > 0 && dropped >= tail_bytes / 2).then_some(to)
    }

    /// Remembers what the neighbour on `link` held when its session ended, so that it pins
    /// compaction for `compaction_horizon_ns` more.
    pub(super) fn remember_member(&mut self, now_ns: u64, link: LinkId) {
        if let Some(peer) = self.peers.get(&link)
            && let Some(node_id) = peer.node_id
        {
            self.members.insert(node_id, (peer.floor.clone(), now_ns));
        }
    }

    /// Drops the offered image if nobody pulled from it for a while.
    pub(super) fn expire_snapshot_image(&mut self, now_ns: u64) {
        let idle_ns = self.config.pull_interval_ns.saturating_mul(SNAPSHOT_IMAGE_IDLE_PULLS);
        if self.snapshot.as_ref().is_some_and(|image| now_ns >= image.used_ns.saturating_add(idle_ns)) {
            self.snapshot = None;
        }
    }
}
