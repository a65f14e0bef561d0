//! The sans-IO vocabulary between a node and its log file: the requests a node issues, the
//! completions it is told about, and the crash semantics both sides rely on.
//!
//! This module owns types and an in-memory model only. It never touches a file: the real
//! binary and the simulator each implement these semantics on their own disk.
//!
//! # Semantics
//! A node owns one append-only log file and issues [`DiskRequest`]s in order:
//! - Requests take effect in the order issued. [`DiskRequest::Append`] adds bytes at the end;
//!   [`DiskRequest::Truncate`] cuts the file to a length no greater than its current one;
//!   [`DiskRequest::Replace`] swaps the whole file for new contents atomically (compaction).
//! - [`DiskRequest::Sync`] makes every request issued before it durable, then completes with
//!   [`DiskCompletion::Synced`] carrying the same `sync_id`. Only then may the node treat
//!   those bytes as surviving a crash (and, for example, acknowledge the writes in them).
//! - A crash keeps everything made durable by completed syncs, plus possibly a prefix of the
//!   requests issued after the last completed sync, in order; the prefix may end part way
//!   through an append (a torn tail). Nothing issued after a sync can survive without
//!   everything issued before it.
//! - A `Replace` survives whole or not at all: after a crash the file is either the old one
//!   (as the crash left it) or exactly the new contents followed by a prefix of what was
//!   appended after the `Replace`. A real disk gets this from the classic sequence: write a
//!   new file, fsync it, rename it over the old one, fsync the directory; every crash point
//!   between those steps leaves one of the two files whole. The node issues a `Replace`
//!   only with no sync in flight, follows it with a `Sync`, and issues no other `Replace`
//!   before that sync completes.
//! - After a crash the node reads the whole file, parses it with [`crate::wal::recover`] and,
//!   if the tail is torn, issues `Truncate` to the valid length followed by `Sync` before
//!   appending again, so new records never follow garbage.
//!
//! [`MemoryDisk`] implements exactly this model in memory, for tests and examples.

use bytes::Bytes;

/// What a node asks its log file to do. Requests are executed in the order issued.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DiskRequest {
    /// Append `bytes` at the end of the log. Not durable until a later `Sync` completes.
    Append {
        /// Whole WAL records, typically.
        bytes: Bytes,
    },
    /// Make every earlier request durable, then answer [`DiskCompletion::Synced`].
    Sync {
        /// Echoed in the completion; chosen by the node, typically increasing.
        sync_id: u64,
    },
    /// Cut the log to `length_bytes`, at most its current length. Issued on recovery to
    /// remove a torn tail; durable once a later `Sync` completes.
    Truncate {
        /// The new length of the log.
        length_bytes: u64,
    },
    /// Atomically replace the whole log with `bytes` (a compacted image: PROTOCOL.md 8.11).
    /// Durable once a later `Sync` completes; a crash before that leaves the old log or the
    /// new one, never a mix.
    Replace {
        /// The new log, whole records only.
        bytes: Bytes,
    },
}

/// What the disk reports back to the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiskCompletion {
    /// Everything issued before the [`DiskRequest::Sync`] with this id is durable.
    Synced {
        /// The request's id.
        sync_id: u64,
    },
}

/// A request issued after the last sync, kept so a crash can replay a prefix of it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unsynced {
    Append(Bytes),
    Truncate(usize),
    Replace(Bytes),
}

/// An in-memory log file implementing the [module's](self) semantics, for tests and
/// examples (the simulator models latency and faults itself).
///
/// [`submit`](Self::submit) requests in order; a `Sync` completes at once. Call
/// [`crash`](Self::crash) to lose unsynced requests, or keep a prefix of them and tear the
/// last append, then read [`contents`](Self::contents) as a restarting node would. The list
/// of unsynced requests grows until the next `Sync` or crash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryDisk {
    /// The file as reads see it: every request applied.
    contents: Vec<u8>,
    /// The file as of the last sync: what survives a crash for certain.
    synced: Vec<u8>,
    /// Requests since the last sync, in order.
    unsynced: Vec<Unsynced>,
}

impl MemoryDisk {
    /// An empty disk.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A disk holding `contents`, all durable: for recovery tests on a crafted log.
    #[must_use]
    pub fn with_contents(contents: &[u8]) -> Self {
        Self { contents: contents.to_vec(), synced: contents.to_vec(), unsynced: Vec::new() }
    }

    /// Executes one request; a `Sync` completes immediately.
    ///
    /// # Panics
    /// On a `Truncate` beyond the current length: the node must only cut a tail it read.
    pub fn submit(&mut self, request: DiskRequest) -> Option<DiskCompletion> {
        match request {
            DiskRequest::Append { bytes } => {
                self.contents.extend_from_slice(&bytes);
                self.unsynced.push(Unsynced::Append(bytes));
                None
            }
            DiskRequest::Truncate { length_bytes } => {
                let length =
                    usize::try_from(length_bytes).ok().filter(|length| *length <= self.contents.len());
                let length = length.unwrap_or_else(|| {
                    panic!("truncate to {length_bytes} bytes beyond the log's {} bytes", self.contents.len())
                });
                self.contents.truncate(length);
                self.unsynced.push(Unsynced::Truncate(length));
                None
            }
            DiskRequest::Replace { bytes } => {
                self.contents.clear();
                self.contents.extend_from_slice(&bytes);
                self.unsynced.push(Unsynced::Replace(bytes));
                None
            }
            DiskRequest::Sync { sync_id } => {
                Self::replay(&mut self.synced, self.unsynced.drain(..), usize::MAX);
                debug_assert_eq!(self.synced, self.contents);
                Some(DiskCompletion::Synced { sync_id })
            }
        }
    }

    /// The log as a read sees it now, unsynced requests included.
    #[must_use]
    pub fn contents(&self) -> &[u8] {
        &self.contents
    }

    /// The log as of the last sync: what any crash keeps.
    #[must_use]
    pub fn synced_contents(&self) -> &[u8] {
        &self.synced
    }

    /// Bytes appended since the last sync, whether or not a later truncate removed them.
    #[must_use]
    pub fn unsynced_bytes(&self) -> u64 {
        self.unsynced
            .iter()
            .map(|request| match request {
                Unsynced::Append(bytes) => bytes.len() as u64,
                Unsynced::Truncate(_) | Unsynced::Replace(_) => 0,
            })
            .sum()
    }

    /// Simulates a crash and restart. What survives is the synced log followed by the
    /// shortest prefix of the unsynced requests that holds `keep_unsynced_prefix_bytes`
    /// appended bytes (all of them if they hold fewer), the last append cut to fit: a torn
    /// tail. `0` loses every unsynced request; `u64::MAX` keeps them all. The survivor
    /// becomes the durable contents.
    pub fn crash(&mut self, keep_unsynced_prefix_bytes: u64) {
        let keep_bytes = usize::try_from(keep_unsynced_prefix_bytes).unwrap_or(usize::MAX);
        Self::replay(&mut self.synced, self.unsynced.drain(..), keep_bytes);
        self.contents.clone_from(&self.synced);
    }

    /// Applies `requests` to `file` until `keep_bytes` appended bytes have been applied.
    fn replay(file: &mut Vec<u8>, requests: impl Iterator<Item = Unsynced>, keep_bytes: usize) {
        let mut budget_bytes = keep_bytes;
        for request in requests {
            if budget_bytes == 0 {
                break;
            }
            match request {
                Unsynced::Append(bytes) => {
                    let taken = bytes.len().min(budget_bytes);
                    file.extend_from_slice(&bytes[..taken]);
                    budget_bytes -= taken;
                }
                Unsynced::Truncate(length) => file.truncate(length),
                Unsynced::Replace(bytes) => {
                    file.clear();
                    file.extend_from_slice(&bytes);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(bytes: &'static [u8]) -> DiskRequest {
        DiskRequest::Append { bytes: Bytes::from_static(bytes) }
    }

    #[test]
    fn sync_makes_appends_durable() {
        let mut disk = MemoryDisk::new();
        assert_eq!(disk.submit(append(b"abc")), None);
        assert_eq!(disk.contents(), b"abc");
        assert_eq!(disk.synced_contents(), b"");
        assert_eq!(disk.unsynced_bytes(), 3);
        assert_eq!(
            disk.submit(DiskRequest::Sync { sync_id: 7 }),
            Some(DiskCompletion::Synced { sync_id: 7 })
        );
        assert_eq!(disk.synced_contents(), b"abc");
        assert_eq!(disk.unsynced_bytes(), 0);
        disk.crash(0);
        assert_eq!(disk.contents(), b"abc");
    }

    #[test]
    fn crash_loses_unsynced_appends() {
        let mut disk = MemoryDisk::new();
        disk.submit(append(b"abc"));
        disk.submit(DiskRequest::Sync { sync_id: 1 });
        disk.submit(append(b"def"));
        disk.crash(0);
        assert_eq!(disk.contents(), b"abc");
        assert_eq!(disk.unsynced_bytes(), 0);
    }

    #[test]
    fn crash_can_tear_the_last_append() {
        // Goal: every prefix length of the unsynced stream is reachable, and the stream is
        // kept in order.
        for keep in 0..=7u64 {
            let mut disk = MemoryDisk::new();
            disk.submit(append(b"ab"));
            disk.submit(DiskRequest::Sync { sync_id: 1 });
            disk.submit(append(b"cde"));
            disk.submit(append(b"fg"));
            disk.crash(keep);
            let expected = &b"abcdefg"[..2 + usize::try_from(keep.min(5)).expect("at most 5")];
            assert_eq!(disk.contents(), expected, "keep {keep}");
            assert_eq!(disk.synced_contents(), expected, "keep {keep}");
        }
    }

    #[test]
    fn truncate_survives_only_with_its_prefix() {
        // Goal: an unsynced truncate is replayed only if the crash keeps the stream up to it.
        let setup = || {
            let mut disk = MemoryDisk::with_contents(b"good-torn");
            disk.submit(DiskRequest::Truncate { length_bytes: 4 });
            disk.submit(append(b"-new"));
            disk
        };
        let mut disk = setup();
        assert_eq!(disk.contents(), b"good-new");
        disk.crash(0);
        assert_eq!(disk.contents(), b"good-torn");

        let mut disk = setup();
        disk.crash(2);
        assert_eq!(disk.contents(), b"good-n");

        let mut disk = setup();
        disk.submit(DiskRequest::Truncate { length_bytes: 6 });
        disk.crash(4);
        assert_eq!(disk.contents(), b"good-new", "the truncate after the kept bytes is lost");

        let mut disk = setup();
        disk.submit(DiskRequest::Truncate { length_bytes: 6 });
        disk.crash(u64::MAX);
        assert_eq!(disk.contents(), b"good-n");
    }

    #[test]
    fn sync_after_truncate_is_durable() {
        let mut disk = MemoryDisk::with_contents(b"good-torn");
        disk.submit(DiskRequest::Truncate { length_bytes: 4 });
        disk.submit(DiskRequest::Sync { sync_id: 1 });
        disk.crash(0);
        assert_eq!(disk.contents(), b"good");
    }

    #[test]
    fn replace_survives_whole_or_not_at_all() {
        // Goal: every crash point around a Replace leaves the old file or the new one whole,
        // and appends after it survive only with it.
        let setup = || {
            let mut disk = MemoryDisk::with_contents(b"old-log");
            disk.submit(append(b"+tail"));
            disk.submit(DiskRequest::Replace { bytes: Bytes::from_static(b"NEW") });
            disk.submit(append(b"+after"));
            disk
        };
        let mut disk = setup();
        assert_eq!(disk.contents(), b"NEW+after");
        disk.crash(0);
        assert_eq!(disk.contents(), b"old-log", "nothing unsynced kept: the old file");
        let mut disk = setup();
        disk.crash(3);
        assert_eq!(disk.contents(), b"old-log+ta", "torn before the replace: the old file");
        let mut disk = setup();
        disk.crash(5);
        assert_eq!(disk.contents(), b"old-log+tail", "the crash stopped just before the replace");
        let mut disk = setup();
        disk.crash(7);
        assert_eq!(disk.contents(), b"NEW+a", "past the replace: the new file and a torn append");
        let mut disk = setup();
        disk.submit(DiskRequest::Sync { sync_id: 1 });
        disk.crash(0);
        assert_eq!(disk.contents(), b"NEW+after");
    }

    #[test]
    #[should_panic(expected = "truncate to 5 bytes beyond the log's 4 bytes")]
    fn truncate_beyond_the_end_is_a_bug() {
        let mut disk = MemoryDisk::with_contents(b"good");
        disk.submit(DiskRequest::Truncate { length_bytes: 5 });
    }
}
