//! Unsigned LEB128 varints for `u64`: the integer encoding of frame lengths and payload fields.
//!
//! Seven bits per byte, least significant group first, high bit set on every byte but the last.
//! Decoding accepts only the canonical (shortest) encoding, so every value has exactly one
//! encoding on the wire and a frame can never be padded or smuggled through an overlong length.

use bytes::BufMut;
use thiserror::Error;

/// Longest canonical encoding of a `u64`: ceil(64 / 7) bytes.
pub const VARINT_BYTES_MAX: usize = 10;

/// Why a varint could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum VarintError {
    /// The input ended before the last byte (one without the continuation bit).
    #[error("varint truncated: input ended inside the encoding")]
    Truncated,
    /// The encoding has a redundant trailing zero group (e.g. `80 00` for 0).
    #[error("varint is not canonical: overlong encoding")]
    NonCanonical,
    /// More than ten bytes carry the continuation bit.
    #[error("varint longer than {VARINT_BYTES_MAX} bytes")]
    TooLong,
    /// The tenth byte sets bits above bit 63.
    #[error("varint overflows u64")]
    Overflow,
}

/// Number of bytes `encode` writes for `value`.
#[must_use]
pub const fn encoded_len(value: u64) -> usize {
    // 1 byte per started group of 7 bits; zero still takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode(value: u64, out: &mut impl BufMut) {
    let mut buffer = [0u8; VARINT_BYTES_MAX];
    let length = encode_to_array(value, &mut buffer);
    out.put_slice(&buffer[..length]);
}

/// Writes the canonical encoding of `value` to the front of `buffer`; returns its length.
pub fn encode_to_array(mut value: u64, buffer: &mut [u8; VARINT_BYTES_MAX]) -> usize {
    let mut index = 0;
    while value >= 0x80 {
        buffer[index] = (value as u8) | 0x80;
        value >>= 7;
        index += 1;
    }
    buffer[index] = value as u8;
    index + 1
}

/// Decodes one varint from the front of `input`; returns the value and the bytes it used.
///
/// # Errors
/// [`VarintError::Truncated`] when `input` ends inside the encoding (a streaming caller
/// should wait for more bytes), and the other variants for encodings that can never be valid.
pub fn decode(input: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (index, &byte) in input.iter().enumerate() {
        if index == VARINT_BYTES_MAX - 1 {
            // The tenth byte holds bit 63 only: anything above is overflow, and a
            // continuation bit here announces an eleventh byte.
            if byte & 0x80 != 0 {
                return Err(VarintError::TooLong);
            }
            if byte > 1 {
                return Err(VarintError::Overflow);
            }
        }
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            // A final zero byte after at least one other byte adds nothing: overlong.
            if byte == 0 && index > 0 {
                return Err(VarintError::NonCanonical);
            }
            return Ok((value, index + 1));
        }
    }
    Err(VarintError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: u64) {
        let mut out = Vec::new();
        encode(value, &mut out);
        assert_eq!(out.len(), encoded_len(value));
        assert_eq!(decode(&out), Ok((value, out.len())));
    }

    #[test]
    fn boundaries_round_trip() {
        for shift in 0..64 {
            let value = 1u64 << shift;
            round_trip(value);
            round_trip(value - 1);
            round_trip(value | (value - 1));
        }
        round_trip(u64::MAX);
    }

    #[test]
    fn known_encodings() {
        let mut out = Vec::new();
        encode(300, &mut out);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        encode(u64::MAX, &mut out);
        assert_eq!(out, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    }

    #[test]
    fn exact_errors() {
        assert_eq!(decode(&[]), Err(VarintError::Truncated));
        assert_eq!(decode(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(decode(&[0x80, 0x00]), Err(VarintError::NonCanonical));
        assert_eq!(decode(&[0xff, 0x80, 0x00]), Err(VarintError::NonCanonical));
        assert_eq!(decode(&[0xff; 10]), Err(VarintError::TooLong));
        let mut overflow = [0xff; 10];
        overflow[9] = 0x02;
        assert_eq!(decode(&overflow), Err(VarintError::Overflow));
    }

    #[test]
    fn trailing_bytes_are_left_alone() {
        assert_eq!(decode(&[0x05, 0xff, 0xff]), Ok((5, 1)));
    }
}
