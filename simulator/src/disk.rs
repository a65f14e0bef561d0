//! The virtual disk: one append-only byte log per node, with fsync and crash semantics.
//!
//! Appends land in the log at once but are only *durable* once a later sync completes.
//! A crash keeps the durable prefix and, depending on the configuration, loses every
//! unsynced byte or keeps a random prefix of them (a torn tail). Reads at restart may
//! optionally flip one bit (bit rot), off by default.
//!
//! A *replace* (compaction's rewrite of the whole log) runs as the four steps of a real disk,
//! each taking virtual time: write the new file, fsync it, rename it over the old one, fsync
//! the directory. A crash before the rename keeps the old log; between the rename and the
//! directory's fsync the rename may or may not have reached the disk (a coin flip); after it
//! the new log is durable. [`CrashDamage::replace_step`] says which point a crash hit.

use rand_chacha::rand_core::RngCore;

use crate::random;

/// How a node's disk behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskConfig {
    /// Smallest fsync latency.
    pub fsync_latency_ns_min: u64,
    /// Largest fsync latency.
    pub fsync_latency_ns_max: u64,
    /// A crash loses writes that were not synced.
    pub lose_unsynced: bool,
    /// A crash may keep a random prefix of the unsynced bytes (a torn write).
    pub torn_writes: bool,
    /// Probability that the read at restart returns one flipped bit.
    pub corrupt_read: f64,
}

impl Default for DiskConfig {
    fn default() -> Self {
        Self {
            fsync_latency_ns_min: 1_000_000,
            fsync_latency_ns_max: 5_000_000,
            lose_unsynced: true,
            torn_writes: false,
            corrupt_read: 0.0,
        }
    }
}

/// What a crash did to a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CrashDamage {
    /// Unsynced bytes thrown away.
    pub lost_bytes: u64,
    /// Unsynced bytes that survived as a torn tail.
    pub torn_bytes: u64,
    /// The crash hit a replace of the log before its directory fsync: at which step, and
    /// which file survived.
    pub replace_step: Option<(ReplaceStep, ReplaceOutcome)>,
}

/// Where a crash interrupted a replace of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReplaceStep {
    /// The new file was being written or fsynced: it was never renamed.
    BeforeRename,
    /// Renamed, but the directory was not fsynced yet.
    BeforeDirectorySync,
}

/// Which log a crash during a replace left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReplaceOutcome {
    /// The log as it was before the replace (with its own unsynced tail lost or torn).
    Old,
    /// The new log, whole.
    New,
}

/// A replace whose directory fsync has not yet completed.
#[derive(Debug, Clone, Default)]
struct PendingReplace {
    old_log: Vec<u8>,
    old_durable_bytes: usize,
    image_bytes: usize,
    renamed_at_ns: u64,
    directory_synced_at_ns: u64,
}

/// One node's disk.
#[derive(Debug, Clone, Default)]
pub struct VirtualDisk {
    log: Vec<u8>,
    durable_bytes: usize,
    replace: Option<PendingReplace>,
}

impl VirtualDisk {
    /// Replaces the whole log with `bytes` at `now_ns`: the new file is written and
    /// fsynced by `now_ns + file_sync_ns`, renamed then, and the directory fsynced
    /// `directory_sync_ns` later. Appends after it go to the new file.
    pub fn replace(&mut self, bytes: &[u8], now_ns: u64, file_sync_ns: u64, directory_sync_ns: u64) {
        let old_log = std::mem::replace(&mut self.log, bytes.to_vec());
        let renamed_at_ns = now_ns.saturating_add(file_sync_ns);
        self.replace = Some(PendingReplace {
            old_log,
            old_durable_bytes: self.durable_bytes,
            image_bytes: bytes.len(),
            renamed_at_ns,
            directory_synced_at_ns: renamed_at_ns.saturating_add(directory_sync_ns),
        });
        self.durable_bytes = 0;
    }

    /// When the replace in progress, if any, has fsynced its directory: a sync issued
    /// after it cannot complete earlier.
    #[must_use]
    pub fn replace_done_ns(&self) -> Option<u64> {
        self.replace.as_ref().map(|replace| replace.directory_synced_at_ns)
    }

    /// Appends bytes; not durable until a sync covering them completes.
    pub fn append(&mut self, bytes: &[u8]) {
        self.log.extend_from_slice(bytes);
    }

    /// The log length a sync issued now would make durable.
    #[must_use]
    pub fn length_bytes(&self) -> usize {
        self.log.len()
    }

    /// Bytes guaranteed to survive a crash.
    #[must_use]
    pub fn durable_bytes(&self) -> usize {
        self.durable_bytes
    }

    /// Marks the first `length_bytes` bytes durable (a sync completed; a sync issued after a
    /// replace completes after its directory fsync, so the replace is done too).
    pub fn synced(&mut self, length_bytes: usize) {
        self.replace = None;
        let length_bytes = length_bytes.min(self.log.len());
        self.durable_bytes = self.durable_bytes.max(length_bytes);
    }

    /// Cuts the log to `length_bytes` (durable at once, like ftruncate + fsync).
    pub fn truncate(&mut self, length_bytes: u64) {
        let length_bytes = usize::try_from(length_bytes).unwrap_or(usize::MAX).min(self.log.len());
        self.log.truncate(length_bytes);
        self.durable_bytes = self.durable_bytes.min(length_bytes);
    }

    /// A misdirected append: the log grows by `length_bytes`, but the bytes landed
    /// somewhere else, so their intended place keeps stale contents (zeros, a fresh
    /// region). The disk reports success; a checksum on recovery is the only witness.
    pub fn append_misdirected(&mut self, length_bytes: usize) {
        self.log.resize(self.log.len() + length_bytes, 0);
    }

    /// After a failed fsync: nothing since the last successful sync is on the disk (Linux
    /// may drop the failed dirty pages, so even a later "successful" fsync would not bring
    /// them back). Returns how many bytes were thrown away.
    pub fn drop_unsynced(&mut self) -> u64 {
        if let Some(replace) = self.replace.take() {
            // Conservatively, the replace never happened: the old file at its durable length.
            let dropped = self.log.len() as u64;
            self.log = replace.old_log;
            self.log.truncate(replace.old_durable_bytes);
            self.durable_bytes = self.log.len();
            return dropped;
        }
        let dropped = (self.log.len() - self.durable_bytes) as u64;
        self.log.truncate(self.durable_bytes);
        dropped
    }

    /// Applies crash semantics at `now_ns` and returns what was lost.
    pub fn crash(&mut self, config: &DiskConfig, now_ns: u64, rng: &mut impl RngCore) -> CrashDamage {
        let mut replace_step = None;
        if let Some(replace) = self.replace.take() {
            let (step, outcome) = if now_ns < replace.renamed_at_ns {
                (ReplaceStep::BeforeRename, ReplaceOutcome::Old)
            } else if now_ns < replace.directory_synced_at_ns {
                let outcome =
                    if random::chance(rng, 0.5) { ReplaceOutcome::New } else { ReplaceOutcome::Old };
                (ReplaceStep::BeforeDirectorySync, outcome)
            } else {
                // The directory fsync is done: the replace is durable, appends after it not.
                (ReplaceStep::BeforeDirectorySync, ReplaceOutcome::New)
            };
            let done = now_ns >= replace.directory_synced_at_ns;
            match outcome {
                ReplaceOutcome::Old => {
                    self.log = replace.old_log;
                    self.durable_bytes = replace.old_durable_bytes;
                }
                ReplaceOutcome::New => self.durable_bytes = self.durable_bytes.max(replace.image_bytes),
            }
            if !done {
                replace_step = Some((step, outcome));
            }
        }
        let unsynced = (self.log.len() - self.durable_bytes) as u64;
        if !config.lose_unsynced || unsynced == 0 {
            self.durable_bytes = self.log.len();
            return CrashDamage { replace_step, ..CrashDamage::default() };
        }
        let torn_bytes = if config.torn_writes { random::uniform(rng, 0, unsynced) } else { 0 };
        // torn_bytes <= unsynced, which came from a usize.
        self.log.truncate(self.durable_bytes + torn_bytes as usize);
        self.durable_bytes = self.log.len();
        CrashDamage { lost_bytes: unsynced - torn_bytes, torn_bytes, replace_step }
    }

    /// What a restarting node reads: the whole log, possibly with one bit flipped.
    /// Returns the bytes and the flipped bit's offset, if any.
    pub fn read_all(&self, config: &DiskConfig, rng: &mut impl RngCore) -> (Vec<u8>, Option<u64>) {
        let mut bytes = self.log.clone();
        if !bytes.is_empty() && random::chance(rng, config.corrupt_read) {
            let bit = random::uniform(rng, 0, bytes.len() as u64 * 8 - 1);
            // bit / 8 < bytes.len(), a usize.
            bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
            return (bytes, Some(bit));
        }
        (bytes, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{Stream, stream};

    #[test]
    fn crash_loses_unsynced_bytes() {
        let mut disk = VirtualDisk::default();
        disk.append(b"durable");
        disk.synced(disk.length_bytes());
        disk.append(b"-lost");
        let damage = disk.crash(&DiskConfig::default(), 0, &mut stream(1, Stream::Disk));
        assert_eq!(damage, CrashDamage { lost_bytes: 5, torn_bytes: 0, replace_step: None });
        let (bytes, flipped) = disk.read_all(&DiskConfig::default(), &mut stream(1, Stream::Disk));
        assert_eq!(bytes, b"durable");
        assert_eq!(flipped, None);
    }

    #[test]
    fn torn_tail_keeps_a_prefix() {
        let config = DiskConfig { torn_writes: true, ..DiskConfig::default() };
        let mut rng = stream(3, Stream::Disk);
        let mut torn_seen = false;
        for _ in 0..50 {
            let mut disk = VirtualDisk::default();
            disk.append(b"abc");
            disk.synced(3);
            disk.append(b"0123456789");
            let damage = disk.crash(&config, 0, &mut rng);
            assert_eq!(damage.lost_bytes + damage.torn_bytes, 10);
            let (bytes, _) = disk.read_all(&config, &mut rng);
            assert!(b"abc0123456789".starts_with(&bytes));
            torn_seen |= damage.torn_bytes > 0 && damage.lost_bytes > 0;
        }
        assert!(torn_seen);
    }

    #[test]
    fn keep_unsynced_when_configured_and_truncate() {
        let config = DiskConfig { lose_unsynced: false, ..DiskConfig::default() };
        let mut disk = VirtualDisk::default();
        disk.append(b"abcdef");
        assert_eq!(disk.crash(&config, 0, &mut stream(0, Stream::Disk)), CrashDamage::default());
        assert_eq!(disk.durable_bytes(), 6);
        disk.truncate(2);
        assert_eq!(disk.length_bytes(), 2);
        assert_eq!(disk.durable_bytes(), 2);
    }

    /// Goal: a failed fsync keeps only what earlier syncs made durable, and a misdirected
    /// append leaves stale bytes where the record should be. Method: one disk, both faults.
    #[test]
    fn failed_fsync_drops_unsynced_and_misdirected_append_leaves_stale_bytes() {
        let mut disk = VirtualDisk::default();
        disk.append(b"durable");
        disk.synced(disk.length_bytes());
        disk.append(b"failed");
        assert_eq!(disk.drop_unsynced(), 6);
        assert_eq!(disk.length_bytes(), 7);
        disk.append_misdirected(3);
        let (bytes, _) = disk.read_all(&DiskConfig::default(), &mut stream(0, Stream::Disk));
        assert_eq!(bytes, b"durable\0\0\0");
    }

    #[test]
    fn corrupt_read_flips_one_bit() {
        let config = DiskConfig { corrupt_read: 1.0, ..DiskConfig::default() };
        let mut disk = VirtualDisk::default();
        disk.append(&[0u8; 16]);
        let (bytes, flipped) = disk.read_all(&config, &mut stream(0, Stream::Disk));
        let ones: u32 = bytes.iter().map(|byte| byte.count_ones()).sum();
        assert_eq!(ones, 1);
        assert!(flipped.is_some());
    }

    #[test]
    fn a_crash_at_every_step_of_a_replace_leaves_one_whole_log() {
        // Goal: before the rename the old log survives (its unsynced tail lost), after the
        // directory fsync the new one, and in between either, whole; appends made after the
        // replace survive only with the new log, and only once synced.
        let setup = || {
            let mut disk = VirtualDisk::default();
            disk.append(b"old-log");
            disk.synced(7);
            disk.append(b"+unsynced");
            disk.replace(b"NEW", 100, 10, 5);
            disk.append(b"+after");
            disk
        };
        let config = DiskConfig::default();
        let mut rng = stream(3, Stream::Disk);
        let mut disk = setup();
        let damage = disk.crash(&config, 105, &mut rng);
        assert_eq!(disk.read_all(&config, &mut rng).0, b"old-log");
        assert_eq!(damage.replace_step, Some((ReplaceStep::BeforeRename, ReplaceOutcome::Old)));
        let mut outcomes = std::collections::BTreeSet::new();
        for _ in 0..64 {
            let mut disk = setup();
            let damage = disk.crash(&config, 112, &mut rng);
            let (step, outcome) = damage.replace_step.expect("inside the replace");
            assert_eq!(step, ReplaceStep::BeforeDirectorySync);
            let expected: &[u8] = if outcome == ReplaceOutcome::New { b"NEW" } else { b"old-log" };
            assert_eq!(disk.read_all(&config, &mut rng).0, expected);
            outcomes.insert(outcome);
        }
        assert_eq!(outcomes.len(), 2, "both files can survive between rename and directory fsync");
        let mut disk = setup();
        let damage = disk.crash(&config, 115, &mut rng);
        assert_eq!(damage.replace_step, None);
        assert_eq!(disk.read_all(&config, &mut rng).0, b"NEW");
        let mut disk = setup();
        disk.synced(7);
        disk.crash(&config, 200, &mut rng);
        assert_eq!(
            disk.read_all(&config, &mut rng).0,
            b"NEW+aft",
            "the sync after the replace covers 7 bytes"
        );
    }
}
