//! The virtual disk: one append-only byte log per node, with fsync and crash semantics.
//!
//! Appends land in the log at once but are only *durable* once a later sync completes.
//! A crash keeps the durable prefix and, depending on the configuration, loses every
//! unsynced byte or keeps a random prefix of them (a torn tail). Reads at restart may
//! optionally flip one bit (bit rot), off by default.

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
}

/// One node's disk.
#[derive(Debug, Clone, Default)]
pub struct VirtualDisk {
    log: Vec<u8>,
    durable_bytes: usize,
}

impl VirtualDisk {
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

    /// Marks the first `length_bytes` bytes durable (a sync completed).
    pub fn synced(&mut self, length_bytes: usize) {
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
        let dropped = (self.log.len() - self.durable_bytes) as u64;
        self.log.truncate(self.durable_bytes);
        dropped
    }

    /// Applies crash semantics and returns what was lost.
    pub fn crash(&mut self, config: &DiskConfig, rng: &mut impl RngCore) -> CrashDamage {
        let unsynced = (self.log.len() - self.durable_bytes) as u64;
        if !config.lose_unsynced || unsynced == 0 {
            self.durable_bytes = self.log.len();
            return CrashDamage::default();
        }
        let torn_bytes = if config.torn_writes { random::uniform(rng, 0, unsynced) } else { 0 };
        // torn_bytes <= unsynced, which came from a usize.
        self.log.truncate(self.durable_bytes + torn_bytes as usize);
        self.durable_bytes = self.log.len();
        CrashDamage { lost_bytes: unsynced - torn_bytes, torn_bytes }
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
        let damage = disk.crash(&DiskConfig::default(), &mut stream(1, Stream::Disk));
        assert_eq!(damage, CrashDamage { lost_bytes: 5, torn_bytes: 0 });
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
            let damage = disk.crash(&config, &mut rng);
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
        assert_eq!(disk.crash(&config, &mut stream(0, Stream::Disk)), CrashDamage::default());
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
}
