//! Length-prefixed framing: `varint(length) | bytes`, and a streaming decoder.
//!
//! The decoder accepts bytes in whatever pieces the transport delivers them (one byte at a
//! time included) and hands out each complete frame as a [`Bytes`] that shares the receive
//! buffer, so payloads are not copied. An announced length over the configured maximum is
//! rejected as soon as the length prefix is complete, before any buffer of that size exists.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::varint::{self, VarintError};

/// Largest frame accepted by default (1 MiB); checked before allocating.
pub const FRAME_BYTES_MAX_DEFAULT: u32 = 1 << 20;

/// Why a byte stream is not a valid sequence of frames. After an error the stream is
/// unusable (frame boundaries are lost) and the decoder keeps returning the same error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The length prefix is not a valid canonical varint.
    #[error("invalid frame length prefix: {0}")]
    Length(VarintError),
    /// The announced length exceeds the configured maximum.
    #[error("frame length {length_bytes} exceeds maximum {maximum_bytes}")]
    FrameTooLong {
        /// Length announced by the prefix.
        length_bytes: u64,
        /// Configured maximum.
        maximum_bytes: u32,
    },
}

/// Appends one frame holding `payload` to `out`.
///
/// # Errors
/// [`FrameError::FrameTooLong`] when `payload` is longer than `frame_bytes_max`, so a sender
/// can never produce a frame its peer must reject.
pub fn encode(payload: &[u8], frame_bytes_max: u32, out: &mut BytesMut) -> Result<(), FrameError> {
    let length_bytes = payload.len() as u64;
    if length_bytes > u64::from(frame_bytes_max) {
        return Err(FrameError::FrameTooLong { length_bytes, maximum_bytes: frame_bytes_max });
    }
    out.reserve(varint::encoded_len(length_bytes) + payload.len());
    if length_bytes < 0x80 {
        // The one-byte prefix of every frame under 128 bytes, written without a call to
        // memcpy for a single byte.
        out.put_u8(length_bytes as u8);
    } else {
        varint::encode(length_bytes, out);
    }
    out.extend_from_slice(payload);
    Ok(())
}

/// Encodes one frame into a new buffer; see [`encode`].
///
/// # Errors
/// As [`encode`].
pub fn encode_to_bytes(payload: &[u8], frame_bytes_max: u32) -> Result<Bytes, FrameError> {
    let mut out = BytesMut::new();
    encode(payload, frame_bytes_max, &mut out)?;
    Ok(out.freeze())
}

/// One step of the streaming decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// No complete frame is buffered yet; push more bytes.
    NeedMore,
    /// One complete frame's contents (without the length prefix).
    Frame(Bytes),
}

/// Streaming frame decoder.
///
/// Call order: [`push`](Self::push) bytes as they arrive, then call
/// [`next_frame`](Self::next_frame) until it returns [`Decoded::NeedMore`].
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: BytesMut,
    frame_bytes_max: u32,
    /// Length of the frame being received, once its prefix is complete; the prefix itself
    /// has then already been consumed from `buffer`.
    pending_length: Option<usize>,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder that accepts frames of at most `frame_bytes_max` bytes.
    #[must_use]
    pub fn new(frame_bytes_max: u32) -> Self {
        Self { buffer: BytesMut::new(), frame_bytes_max, pending_length: None, failed: None }
    }

    /// Appends received bytes. Memory use stays bounded: the buffer never holds more than
    /// one maximal frame plus what the caller pushed since the last `next_frame`. Once the
    /// decoder has failed, pushed bytes are discarded, since no frame can follow.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Appends a received buffer, taking it over without a copy when nothing is buffered and
    /// the caller held the only reference (a receiver that reads into a fresh `BytesMut` and
    /// freezes it); otherwise copies like [`push`](Self::push).
    pub fn push_bytes(&mut self, bytes: Bytes) {
        if self.failed.is_some() {
            return;
        }
        if self.buffer.is_empty() {
            match bytes.try_into_mut() {
                Ok(owned) => self.buffer = owned,
                Err(shared) => self.buffer.extend_from_slice(&shared),
            }
        } else {
            self.buffer.extend_from_slice(&bytes);
        }
    }

    /// Bytes buffered and not yet returned as frames.
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// Returns the next complete frame, if one is buffered.
    ///
    /// # Errors
    /// A [`FrameError`] when the stream is malformed; the decoder then stays failed.
    #[must_use = "a decoded frame or error must be handled"]
    pub fn next_frame(&mut self) -> Result<Decoded, FrameError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if let Some(length) = self.pending_length {
            if self.buffer.len() < length {
                return Ok(Decoded::NeedMore);
            }
            self.pending_length = None;
            return Ok(Decoded::Frame(self.buffer.split_to(length).freeze()));
        }
        let (length_bytes, prefix_bytes) = match varint::decode(&self.buffer) {
            Ok(decoded) => decoded,
            Err(VarintError::Truncated) => return Ok(Decoded::NeedMore),
            Err(error) => return Err(self.fail(FrameError::Length(error))),
        };
        if length_bytes > u64::from(self.frame_bytes_max) {
            return Err(
                self.fail(FrameError::FrameTooLong { length_bytes, maximum_bytes: self.frame_bytes_max })
            );
        }
        // Advancing drops the prefix in place; `split_to` would clone and release a handle to
        // the shared buffer, two atomic operations per frame.
        self.buffer.advance(prefix_bytes);
        // Cannot truncate: length_bytes <= frame_bytes_max, a u32.
        let length = length_bytes as usize;
        if self.buffer.len() >= length {
            // The whole frame is here, as it mostly is on a busy stream: hand it out without
            // recording a pending length or touching the buffer's capacity.
            return Ok(Decoded::Frame(self.buffer.split_to(length).freeze()));
        }
        // Remember the length so the prefix is parsed once however many pushes the frame
        // takes, and reserve the rest once, bounded by the checked maximum.
        self.pending_length = Some(length);
        self.buffer.reserve(length - self.buffer.len());
        Ok(Decoded::NeedMore)
    }

    fn fail(&mut self, error: FrameError) -> FrameError {
        self.failed = Some(error);
        self.buffer = BytesMut::new();
        error
    }
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(FRAME_BYTES_MAX_DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(decoder: &mut FrameDecoder) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Decoded::Frame(frame) = decoder.next_frame().expect("valid stream") {
            out.push(frame);
        }
        out
    }

    #[test]
    fn byte_at_a_time() {
        let mut stream = BytesMut::new();
        encode(b"hello", 64, &mut stream).expect("fits");
        encode(b"", 64, &mut stream).expect("fits");
        encode(&[7u8; 200], 1024, &mut stream).expect("fits");
        let mut decoder = FrameDecoder::new(1024);
        let mut got = Vec::new();
        for byte in stream.iter() {
            decoder.push(&[*byte]);
            got.extend(frames(&mut decoder));
        }
        assert_eq!(got, vec![Bytes::from_static(b"hello"), Bytes::new(), Bytes::from(vec![7u8; 200])]);
        assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn push_bytes_takes_over_a_unique_buffer() {
        let mut stream = BytesMut::new();
        encode(b"abc", 64, &mut stream).expect("fits");
        encode(b"de", 64, &mut stream).expect("fits");
        let stream = stream.freeze();
        let mut decoder = FrameDecoder::new(64);
        decoder.push_bytes(stream.slice(0..2));
        decoder.push_bytes(stream.slice(2..));
        assert_eq!(frames(&mut decoder), vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")]);
        // A unique buffer is adopted in place: the frame points into it.
        let mut unique = BytesMut::new();
        encode(b"xyz", 64, &mut unique).expect("fits");
        let unique = unique.freeze();
        let start = unique.as_ptr();
        decoder.push_bytes(unique);
        let frame = frames(&mut decoder).remove(0);
        assert_eq!(frame.as_ptr(), start.wrapping_add(1));
    }

    #[test]
    fn oversized_length_rejected_before_payload() {
        let mut decoder = FrameDecoder::new(16);
        decoder.push(&[0x11]); // 17 > 16, and no payload bytes pushed at all.
        let expected = FrameError::FrameTooLong { length_bytes: 17, maximum_bytes: 16 };
        assert_eq!(decoder.next_frame(), Err(expected));
        assert_eq!(decoder.next_frame(), Err(expected), "the decoder stays failed");
        // A huge announced length never reserves memory.
        let mut decoder = FrameDecoder::default();
        decoder.push(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(decoder.next_frame(), Err(FrameError::FrameTooLong { .. })));
        assert!(decoder.buffer.capacity() < 64);
    }

    #[test]
    fn bad_prefixes() {
        let mut decoder = FrameDecoder::default();
        decoder.push(&[0x80, 0x00]);
        assert_eq!(decoder.next_frame(), Err(FrameError::Length(VarintError::NonCanonical)));
        let mut decoder = FrameDecoder::new(u32::MAX);
        decoder.push(&[0xff; 11]);
        assert_eq!(decoder.next_frame(), Err(FrameError::Length(VarintError::TooLong)));
    }

    #[test]
    fn failed_decoder_discards_pushed_bytes() {
        // Goal: a failed decoder must not buffer without bound while a careless caller keeps
        // pushing. Method: fail it, push more, and check nothing is kept.
        let mut decoder = FrameDecoder::new(16);
        decoder.push(&[0x11]);
        assert!(decoder.next_frame().is_err());
        decoder.push(&[0u8; 1000]);
        assert_eq!(decoder.buffered_bytes(), 0);
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::FrameTooLong { length_bytes: 17, maximum_bytes: 16 })
        );
    }

    #[test]
    fn encode_refuses_oversized_payload() {
        let mut out = BytesMut::new();
        assert_eq!(
            encode(&[0; 9], 8, &mut out),
            Err(FrameError::FrameTooLong { length_bytes: 9, maximum_bytes: 8 })
        );
        assert!(out.is_empty());
    }
}
