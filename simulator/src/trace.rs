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
//! Text is formatted only when a sink is attached, and streamed to it line by line, in one
//! of two [`TraceFormat`]s: `text`, one line `[seconds.nanoseconds] text` per event, or
//! `jsonl`, one JSON object per event with the same text and structured fields (`t_ns`,
//! `kind`, `node`, `from`, `to`, `message_id`, ...) for tools to filter on. The hash does not
//! depend on the format, nor on whether a sink is attached.

use std::fmt::{self, Write as _};
use std::io::{self, Write as _};

/// Anything a process adds to the trace: it must hash canonically and print one line.
pub trait TraceRecord: fmt::Display {
    /// Feeds the canonical encoding of `self` to `hasher`.
    fn hash_into(&self, hasher: &mut TraceHasher);

    /// A short name of what kind of record this is (`acked`, `lww`), for the `event` field
    /// of a JSON line; `None` leaves the field out. Never hashed.
    fn name(&self) -> Option<&'static str> {
        None
    }
}

/// How a trace sink receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceFormat {
    /// One human-readable line per event: `[   1.500000000] a -> b #12 send ...`.
    #[default]
    Text,
    /// One JSON object per line (JSON Lines), with the text line as its `text` field.
    Jsonl,
}

impl TraceFormat {
    /// The format named `text` or `jsonl`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "text" => Some(Self::Text),
            "jsonl" => Some(Self::Jsonl),
            _ => None,
        }
    }

    /// `text` or `jsonl`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Jsonl => "jsonl",
        }
    }
}

/// The structured fields of one trace event, beside its text. Only a JSON-lines sink shows
/// them; an absent field is left out of the object.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineFields<'a> {
    /// The node the event happened on (the sender of a send, the receiver of a delivery).
    pub node: Option<&'a str>,
    /// A message's or connection's sending side.
    pub from: Option<&'a str>,
    /// A message's or connection's receiving side.
    pub to: Option<&'a str>,
    /// The simulator's id of a message (`#12` in text), the same on its send, delivery,
    /// drop and duplicate.
    pub message_id: Option<u64>,
    /// A message's size.
    pub bytes: Option<u64>,
    /// What a sent message carried, as the process described it.
    pub description: Option<&'a str>,
    /// Why a message was dropped.
    pub reason: Option<&'a str>,
    /// The name of a process event or command ([`TraceRecord::name`]).
    pub event: Option<&'static str>,
}

/// An observer of the trace that gets every event as structured values (the fields of a
/// JSON line and its text, without the time prefix) and every sent message's bytes. A tap
/// is how the timeline and the packet capture reuse the trace's own view of a run instead
/// of re-deriving it. Like a sink, a tap never touches the hash; attaching one makes
/// [`Trace::wants_text`] true, exactly as a sink does.
pub trait TraceTap: Send {
    /// One event of `kind`, as a sink would write it.
    fn line(&mut self, virtual_ns: u64, kind: &'static str, fields: &LineFields<'_>, text: &str);

    /// One message handed to the network by `from` for `to`, with the simulator's id of it
    /// (the `message_id` of its send line, written just before).
    fn packet(&mut self, _virtual_ns: u64, _from: u32, _to: u32, _message_id: u64, _bytes: &[u8]) {}
}

/// A tap shared with its owner, who reads it back after the run.
impl<T: TraceTap> TraceTap for std::sync::Arc<std::sync::Mutex<T>> {
    fn line(&mut self, virtual_ns: u64, kind: &'static str, fields: &LineFields<'_>, text: &str) {
        self.lock().unwrap_or_else(std::sync::PoisonError::into_inner).line(virtual_ns, kind, fields, text);
    }

    fn packet(&mut self, virtual_ns: u64, from: u32, to: u32, message_id: u64, bytes: &[u8]) {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .packet(virtual_ns, from, to, message_id, bytes);
    }
}

/// One JSON line, in a fixed field order.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    t_ns: u64,
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    text: &'a str,
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
    format: TraceFormat,
    taps: Vec<Box<dyn TraceTap>>,
    line: String,
    /// The JSON line being written, reused from event to event.
    json: Vec<u8>,
    events_count: u64,
}

impl fmt::Debug for Trace {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Trace")
            .field("hash", &self.hasher.finish_hex())
            .field("events_count", &self.events_count)
            .field("text", &self.sink.is_some())
            .field("taps", &self.taps.len())
            .field("format", &self.format)
            .finish()
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Trace {
    /// A trace that hashes every event and, with a sink, writes its text lines.
    #[must_use]
    pub fn new(sink: Option<Box<dyn io::Write + Send>>) -> Self {
        Self::with_format(sink, TraceFormat::Text)
    }

    /// A trace that hashes every event and, with a sink, writes it in `format`.
    #[must_use]
    pub fn with_format(sink: Option<Box<dyn io::Write + Send>>, format: TraceFormat) -> Self {
        Self {
            hasher: TraceHasher::default(),
            sink,
            sink_error: None,
            format,
            taps: Vec::new(),
            line: String::new(),
            json: Vec::new(),
            events_count: 0,
        }
    }

    /// The sink's format.
    #[must_use]
    pub fn format(&self) -> TraceFormat {
        self.format
    }

    /// Adds a tap: from now on it sees every line and every sent message's bytes.
    #[must_use]
    pub fn with_tap(mut self, tap: Box<dyn TraceTap>) -> Self {
        self.taps.push(tap);
        self
    }

    /// True when lines are being written or tapped (callers skip formatting work otherwise).
    #[must_use]
    pub fn wants_text(&self) -> bool {
        self.sink.is_some() || !self.taps.is_empty()
    }

    /// True when a tap wants the bytes of sent messages.
    #[must_use]
    pub fn wants_packets(&self) -> bool {
        !self.taps.is_empty()
    }

    /// Hands one sent message's bytes to the taps (never hashed).
    pub fn record_packet(&mut self, virtual_ns: u64, from: u32, to: u32, message_id: u64, bytes: &[u8]) {
        for tap in &mut self.taps {
            tap.packet(virtual_ns, from, to, message_id, bytes);
        }
    }

    /// The hasher, for a record's canonical words.
    pub fn hasher(&mut self) -> &mut TraceHasher {
        &mut self.hasher
    }

    /// Counts one event; its words must already have been fed to the hasher.
    pub fn count_event(&mut self) {
        self.events_count += 1;
    }

    /// Writes one free-form line of kind `note` (not hashed: use it for events whose words
    /// the caller hashed, or for commentary).
    pub fn line(&mut self, virtual_ns: u64, text: fmt::Arguments<'_>) {
        self.record_line(virtual_ns, "note", &LineFields::default(), text);
    }

    /// Writes one event of `kind` (`send`, `deliver`, `event`, ...): as a text line
    /// `[seconds.nanoseconds] text`, or as a JSON object with `fields` and the text. Does
    /// nothing without a sink; never touches the hash.
    pub fn record_line(
        &mut self,
        virtual_ns: u64,
        kind: &'static str,
        fields: &LineFields<'_>,
        text: fmt::Arguments<'_>,
    ) {
        if self.sink.is_none() && self.taps.is_empty() {
            return;
        }
        self.line.clear();
        let _ = self.line.write_fmt(text);
        for tap in &mut self.taps {
            tap.line(virtual_ns, kind, fields, &self.line);
        }
        let Some(sink) = self.sink.as_mut() else { return };
        self.json.clear();
        let written = match self.format {
            TraceFormat::Text => {
                let seconds = virtual_ns / 1_000_000_000;
                let _ = write!(self.json, "[{seconds:>4}.{:09}] ", virtual_ns % 1_000_000_000);
                self.json.extend_from_slice(self.line.as_bytes());
                self.json.push(b'\n');
                sink.write_all(&self.json)
            }
            TraceFormat::Jsonl => {
                let object = JsonLine {
                    t_ns: virtual_ns,
                    kind,
                    node: fields.node,
                    from: fields.from,
                    to: fields.to,
                    message_id: fields.message_id,
                    bytes: fields.bytes,
                    description: fields.description,
                    reason: fields.reason,
                    event: fields.event,
                    text: &self.line,
                };
                // Serializing plain strings and integers into a Vec cannot fail.
                serde_json::to_writer(&mut self.json, &object)
                    .expect("a JSON line of strings and integers serializes");
                self.json.push(b'\n');
                sink.write_all(&self.json)
            }
        };
        if let Err(error) = written {
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

    #[test]
    fn json_lines_carry_the_fields_and_the_escaped_text() {
        // Goal: one parseable object per event, absent fields left out, hostile text
        // escaped by the serializer rather than breaking the line.
        let buffer = SharedBuffer::default();
        let mut trace = Trace::with_format(Some(Box::new(buffer.clone())), TraceFormat::Jsonl);
        let fields = LineFields {
            node: Some("a"),
            from: Some("a"),
            to: Some("b"),
            message_id: Some(12),
            bytes: Some(66),
            description: Some("WalPush msg_id=5 a:1"),
            ..LineFields::default()
        };
        trace.record_line(1_500_000_000, "send", &fields, format_args!("a -> b #12 send"));
        trace.line(2, format_args!("quote \" newline \n end"));
        assert_eq!(
            buffer.text(),
            concat!(
                r#"{"t_ns":1500000000,"kind":"send","node":"a","from":"a","to":"b","message_id":12,"#,
                r#""bytes":66,"description":"WalPush msg_id=5 a:1","text":"a -> b #12 send"}"#,
                "\n",
                r#"{"t_ns":2,"kind":"note","text":"quote \" newline \n end"}"#,
                "\n",
            )
        );
        assert_eq!(TraceFormat::from_name("jsonl"), Some(TraceFormat::Jsonl));
        assert_eq!(TraceFormat::from_name("JSON"), None);
        assert_eq!(TraceFormat::Text.name(), "text");
    }
}
