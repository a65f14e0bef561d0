//! The write-ahead log's record format, and recovery of a log image after a crash.
//!
//! This module owns the bytes of the log file and their interpretation: encoding one entry
//! as a record, and parsing a whole log back into entries while telling a torn tail (normal
//! after a crash, cut off and forgotten) from corruption before it (never skipped). It does
//! no I/O and decides nothing about when to append or sync; see [`crate::storage`] for the
//! requests that carry these bytes and the crash model they assume.
//!
//! # Record format
//! A log is a sequence of records, each
//!
//! ```text
//! length u32 LE | crc32c u32 LE | body (length bytes)
//! ```
//!
//! - `body` is the entry's payload encoding, [`crate::message::encode_entry`];
//! - `length` is the body's length in bytes, at most [`WAL_RECORD_BYTES_MAX`];
//! - `crc32c` is CRC-32C (Castagnoli) over the four `length` bytes followed by the body, so a
//!   damaged length is detected instead of being trusted to find the next record.
//!
//! # Base record
//! A compacted log (PROTOCOL.md 8.11) starts with one *base record*: its `length` field has
//! bit 31 set ([`WAL_BASE_FLAG`]), the low 31 bits are the body length (at most
//! [`WAL_BASE_BYTES_MAX`]) and the body is a version vector (`count`, then `origin |
//! position` pairs, as in an OutboxPull). It says that every entry at or below that vector
//! has been compacted: the entry records that follow it up to the first entry above the
//! vector are the store's winning entries of those positions (one per key), and the rest is
//! the log above the vector as usual. A base record anywhere but at offset 0 is damage. A
//! reader that predates compaction sees a length over its maximum followed by valid records,
//! and refuses the log as corrupt instead of misreading it.
//!
//! # Recovery
//! [`recover`] reads records from offset 0. A record is *valid* when its header is complete,
//! its length is within bounds, its body is complete, its checksum matches and its body
//! decodes as one entry with no trailing bytes. At the first record that is not valid:
//! - if a valid record starts at any later offset, the log is corrupt in the middle:
//!   [`WalError::CorruptMiddle`]. Skipping it could silently lose acknowledged writes, so
//!   recovery refuses and leaves the decision to an operator;
//! - otherwise the damage is a torn tail: recovery returns the entries before it,
//!   [`Recovery::valid_bytes`] to truncate the file to, and the damage in [`Recovery::tail`].
//!
//! Searching every later offset (not just where the damaged length points) is what catches a
//! flipped length bit. The search costs one header check per byte after the damage plus a
//! checksum for each offset whose length field fits, so it is linear for zeroed or random
//! tails and at worst `WAL_RECORD_BYTES_MAX` bytes of checksum per offset for crafted ones.
//! A put whose value itself contains a valid record makes damage inside that value look
//! like middle corruption: a false alarm, never a silent loss.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::entry::VersionVector;
use crate::entry::{KEY_BYTES_MAX, VALUE_BYTES_MAX, WalEntry};
use crate::message::{self, DecodeError, decode_entry, decode_vector, encode_entry, entry_encoded_len};
use crate::storage::DiskRequest;
use crate::varint::{self, VARINT_BYTES_MAX};

/// Bytes of a record's header: the length and the checksum.
pub const WAL_RECORD_HEADER_BYTES: usize = 8;

/// Largest encoded entry: three ten-byte varints, the operation byte, a key and value of the
/// largest sizes with their length prefixes, and the longest proof.
pub const WAL_ENTRY_BYTES_MAX: usize = 3 * VARINT_BYTES_MAX
    + 1
    + varint::encoded_len(KEY_BYTES_MAX as u64)
    + KEY_BYTES_MAX
    + varint::encoded_len(VALUE_BYTES_MAX as u64)
    + VALUE_BYTES_MAX
    + crate::message::PROOF_BYTES_MAX;

/// Bit 31 of a record's length field: the record is the base record of a compacted log.
pub const WAL_BASE_FLAG: u32 = 0x8000_0000;

/// Largest base record body: a vector of the most origins a message may name, each origin and
/// position a full ten-byte varint.
pub const WAL_BASE_BYTES_MAX: u32 = 128 * 1024;

const _: () = assert!(
    message::VECTOR_ORIGINS_MAX * 2 * VARINT_BYTES_MAX + VARINT_BYTES_MAX <= WAL_BASE_BYTES_MAX as usize
);

/// Largest record body (the value of the length field) recovery accepts. A larger length is
/// damage, so a garbage length is never believed.
pub const WAL_RECORD_BYTES_MAX: u32 = 64 * 1024;

// Every entry within KEY_BYTES_MAX and VALUE_BYTES_MAX fits in one record, so an
// acknowledged write can never be written as a record that recovery rejects.
const _: () = assert!(WAL_ENTRY_BYTES_MAX <= WAL_RECORD_BYTES_MAX as usize);

/// What is wrong with the record at some offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DamageKind {
    /// The log ends inside the record's header.
    HeaderTruncated {
        /// Header bytes present.
        available_bytes: u64,
    },
    /// The log ends inside the record's body.
    BodyTruncated {
        /// Body length announced by the header.
        length_bytes: u32,
        /// Body bytes present.
        available_bytes: u64,
    },
    /// The length field exceeds [`WAL_RECORD_BYTES_MAX`].
    LengthTooLarge {
        /// The length field.
        length_bytes: u32,
    },
    /// The stored checksum does not match the length and body.
    ChecksumMismatch {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the length and body as read.
        computed: u32,
    },
    /// The checksum matches but the body is not exactly one entry.
    Undecodable {
        /// Why the body does not decode.
        error: DecodeError,
    },
    /// A valid base record somewhere other than the start of the log.
    BaseNotFirst,
    /// A base record's length (bit 31 of the field cleared) exceeds [`WAL_BASE_BYTES_MAX`].
    BaseLengthTooLarge {
        /// The length, without the flag.
        length_bytes: u32,
    },
}

impl fmt::Display for DamageKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeaderTruncated { available_bytes } => write!(
                formatter,
                "log ends {available_bytes} bytes into the {WAL_RECORD_HEADER_BYTES}-byte record header"
            ),
            Self::BodyTruncated { length_bytes, available_bytes } => {
                write!(formatter, "log ends {available_bytes} bytes into a {length_bytes}-byte record body")
            }
            Self::LengthTooLarge { length_bytes } => {
                write!(formatter, "record length {length_bytes} exceeds maximum {WAL_RECORD_BYTES_MAX}")
            }
            Self::ChecksumMismatch { stored, computed } => {
                write!(formatter, "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
            Self::Undecodable { error } => write!(formatter, "record body does not decode: {error}"),
            Self::BaseNotFirst => write!(formatter, "base record after the start of the log"),
            Self::BaseLengthTooLarge { length_bytes } => {
                write!(formatter, "base record length {length_bytes} exceeds maximum {WAL_BASE_BYTES_MAX}")
            }
        }
    }
}

/// A damaged last record, cut off by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailDamage {
    /// Where the damaged record starts; equals [`Recovery::valid_bytes`].
    pub offset: u64,
    /// What is wrong with it.
    pub kind: DamageKind,
}

/// The outcome of recovering a log without middle corruption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The base record's vector: every entry at or below it was compacted, and the entries
    /// that reflect those positions are the winning entries of their keys. Empty for a log
    /// that was never compacted.
    pub base: VersionVector,
    /// Every entry of the valid prefix, in log order.
    pub entries: Vec<WalEntry>,
    /// Length of the valid prefix: the file must be truncated to it before appending.
    pub valid_bytes: u64,
    /// The torn or damaged last record, if any.
    pub tail: Option<TailDamage>,
}

impl Recovery {
    /// The request that cuts a damaged tail off the file, if there is one. Follow it with a
    /// [`DiskRequest::Sync`] before appending.
    #[must_use]
    pub fn repair(&self) -> Option<DiskRequest> {
        self.tail.as_ref().map(|_| DiskRequest::Truncate { length_bytes: self.valid_bytes })
    }
}

/// Why a log could not be recovered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WalError {
    /// A record is damaged but valid records follow it: not a torn tail, so it is reported
    /// rather than skipped.
    #[error(
        "wal record at offset {offset} is corrupt ({kind}) but a valid record follows at offset {next_valid_offset}"
    )]
    CorruptMiddle {
        /// Where the first damaged record starts.
        offset: u64,
        /// What is wrong with it.
        kind: DamageKind,
        /// Where the first valid record after it starts.
        next_valid_offset: u64,
    },
}

/// Bytes [`encode_record`] writes for `entry`.
#[must_use]
pub fn record_len(entry: &WalEntry) -> usize {
    WAL_RECORD_HEADER_BYTES + entry_encoded_len(entry)
}

/// Appends `entry` to `out` as one record.
///
/// # Panics
/// If `entry` could not be recovered: a sequence of 0, a key over [`KEY_BYTES_MAX`] or a
/// value over [`VALUE_BYTES_MAX`]. Writing it would lose the write at the next restart, so
/// the node must refuse such writes before stamping them (entries decoded from the wire
/// already satisfy these bounds).
pub fn encode_record(entry: &WalEntry, out: &mut BytesMut) {
    assert!(entry.sequence >= 1, "wal entry sequence must start at 1");
    let key_bytes = entry.operation.key().len();
    assert!(key_bytes <= KEY_BYTES_MAX, "wal entry key of {key_bytes} bytes exceeds {KEY_BYTES_MAX}");
    let value_bytes = entry.operation.value().map_or(0, Bytes::len);
    assert!(
        value_bytes <= VALUE_BYTES_MAX,
        "wal entry value of {value_bytes} bytes exceeds {VALUE_BYTES_MAX}"
    );
    let body_bytes = entry_encoded_len(entry);
    let length_bytes = u32::try_from(body_bytes)
        .ok()
        .filter(|length_bytes| *length_bytes <= WAL_RECORD_BYTES_MAX)
        .expect("an entry within the key and value bounds fits WAL_RECORD_BYTES_MAX (asserted)");

    out.reserve(WAL_RECORD_HEADER_BYTES + body_bytes);
    let start = out.len();
    out.put_u32_le(length_bytes);
    out.put_u32_le(0);
    encode_entry(entry, out);
    let record = &mut out[start..];
    assert_eq!(record.len(), WAL_RECORD_HEADER_BYTES + body_bytes, "entry_encoded_len matches encode_entry");
    let (header, body) = record.split_at_mut(WAL_RECORD_HEADER_BYTES);
    let checksum = record_checksum(length_bytes, body);
    header[4..].copy_from_slice(&checksum.to_le_bytes());
}

/// Appends the base record of a log compacted at `base` to `out`; see the
/// [module docs](self).
///
/// # Panics
/// If `base` names more than [`message::VECTOR_ORIGINS_MAX`] origins: the node's own
/// vectors never do (they come from messages bounded by it).
pub fn encode_base_record(base: &VersionVector, out: &mut BytesMut) {
    assert!(base.len() <= message::VECTOR_ORIGINS_MAX, "base vector of {} origins", base.len());
    let mut body = BytesMut::new();
    message::put_vector(&mut body, base);
    let length_field = u32::try_from(body.len()).expect("bounded by WAL_BASE_BYTES_MAX") | WAL_BASE_FLAG;
    out.reserve(WAL_RECORD_HEADER_BYTES + body.len());
    out.put_u32_le(length_field);
    out.put_u32_le(record_checksum(length_field, &body));
    out.put_slice(&body);
}

/// One record of a log.
enum Record {
    Entry(WalEntry),
    Base(VersionVector),
}

/// CRC-32C over the little-endian length followed by the body.
fn record_checksum(length_bytes: u32, body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&length_bytes.to_le_bytes()), body)
}

/// Parses the record at `offset`: its entry or base vector and the offset just after it.
fn read_record(log: &[u8], offset: usize) -> Result<(Record, usize), DamageKind> {
    let rest = log.get(offset..).unwrap_or_default();
    let Some((header, after)) = rest.split_first_chunk::<WAL_RECORD_HEADER_BYTES>() else {
        return Err(DamageKind::HeaderTruncated { available_bytes: rest.len() as u64 });
    };
    let length_bytes = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let length_field = length_bytes;
    let base = length_field & WAL_BASE_FLAG != 0;
    let length_bytes = length_field & !WAL_BASE_FLAG;
    if base && length_bytes > WAL_BASE_BYTES_MAX {
        return Err(DamageKind::BaseLengthTooLarge { length_bytes });
    }
    if !base && length_bytes > WAL_RECORD_BYTES_MAX {
        return Err(DamageKind::LengthTooLarge { length_bytes });
    }
    // Cannot truncate: length_bytes <= WAL_BASE_BYTES_MAX.
    let length = length_bytes as usize;
    let Some(body) = after.get(..length) else {
        return Err(DamageKind::BodyTruncated { length_bytes, available_bytes: after.len() as u64 });
    };
    let computed = record_checksum(length_field, body);
    if computed != stored {
        return Err(DamageKind::ChecksumMismatch { stored, computed });
    }
    let end = offset + WAL_RECORD_HEADER_BYTES + length;
    if base {
        let vector =
            decode_vector(Bytes::copy_from_slice(body)).map_err(|error| DamageKind::Undecodable { error })?;
        if offset != 0 {
            return Err(DamageKind::BaseNotFirst);
        }
        return Ok((Record::Base(vector), end));
    }
    // Copy the body so recovered entries own compact buffers instead of pinning the log.
    let entry =
        decode_entry(Bytes::copy_from_slice(body)).map_err(|error| DamageKind::Undecodable { error })?;
    Ok((Record::Entry(entry), end))
}

/// The first offset at or after `from` where a valid record starts.
fn next_valid_record(log: &[u8], from: usize) -> Option<usize> {
    let last_candidate = log.len().checked_sub(WAL_RECORD_HEADER_BYTES)?;
    (from..=last_candidate).find(|candidate| read_record(log, *candidate).is_ok())
}

/// Recovers the entries of a whole log image; see the [module docs](self) for the rules.
///
/// # Errors
/// [`WalError::CorruptMiddle`] when a damaged record is followed by a valid one. Never
/// panics, whatever the bytes.
pub fn recover(log: &[u8]) -> Result<Recovery, WalError> {
    let mut entries = Vec::new();
    let mut base = VersionVector::new();
    let mut offset = 0;
    while offset < log.len() {
        match read_record(log, offset) {
            Ok((Record::Entry(entry), end)) => {
                entries.push(entry);
                offset = end;
            }
            Ok((Record::Base(vector), end)) => {
                base = vector;
                offset = end;
            }
            Err(kind) => {
                if let Some(next_valid_offset) = next_valid_record(log, offset + 1) {
                    return Err(WalError::CorruptMiddle {
                        offset: offset as u64,
                        kind,
                        next_valid_offset: next_valid_offset as u64,
                    });
                }
                let tail = Some(TailDamage { offset: offset as u64, kind });
                return Ok(Recovery { base, entries, valid_bytes: offset as u64, tail });
            }
        }
    }
    Ok(Recovery { base, entries, valid_bytes: offset as u64, tail: None })
}

#[cfg(test)]
mod tests;
