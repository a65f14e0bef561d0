//! The handshake payloads, hand-encoded like every other payload (see `message`): unsigned
//! LEB128 varints, fields in a fixed order, canonical encodings only, no trailing bytes.
//!
//! ```text
//! Hello (Noise message 1, sent in the clear):
//!   varint versions.min | varint versions.max
//! HelloAck and HelloFinish (Noise messages 2 and 3, encrypted and bound to the handshake):
//!   varint name_length | name (UTF-8, <= 255 bytes) | varint node_id
//!   | varint versions.min | varint versions.max | varint version | varint capabilities
//! ```
//!
//! This module only encodes and decodes; the handshake decides what the values mean.

use bytes::BufMut;

use super::{HandshakeError, NAME_BYTES_MAX, VersionRange};
use crate::entry::NodeId;
use crate::envelope::MessageType;
use crate::varint::{self, VarintError};

/// What a HelloAck or HelloFinish says about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdentityPayload {
    pub(crate) name: String,
    pub(crate) node_id: NodeId,
    pub(crate) versions: VersionRange,
    /// The version the session speaks.
    pub(crate) version: u16,
    pub(crate) capabilities: u64,
}

/// Appends the Hello payload.
pub(crate) fn encode_hello(versions: VersionRange, out: &mut impl BufMut) {
    varint::encode(u64::from(versions.min), out);
    varint::encode(u64::from(versions.max), out);
}

/// Appends a HelloAck or HelloFinish payload. The name must be at most [`NAME_BYTES_MAX`]
/// bytes (`SessionConfig::validate` checks it).
pub(crate) fn encode_identity(payload: &IdentityPayload, out: &mut impl BufMut) {
    debug_assert!(payload.name.len() <= NAME_BYTES_MAX);
    varint::encode(payload.name.len() as u64, out);
    out.put_slice(payload.name.as_bytes());
    varint::encode(payload.node_id.0, out);
    encode_hello(payload.versions, out);
    varint::encode(u64::from(payload.version), out);
    varint::encode(payload.capabilities, out);
}

/// Decodes a Hello payload.
///
/// # Errors
/// A payload [`HandshakeError`] naming the first bad field.
pub(crate) fn decode_hello(bytes: &[u8]) -> Result<VersionRange, HandshakeError> {
    let mut reader = Reader { bytes, position: 0, message_type: MessageType::Hello };
    let versions = reader.versions()?;
    reader.finish()?;
    Ok(versions)
}

/// Decodes a HelloAck or HelloFinish payload.
///
/// # Errors
/// A payload [`HandshakeError`] naming the first bad field.
pub(crate) fn decode_identity(
    message_type: MessageType,
    bytes: &[u8],
) -> Result<IdentityPayload, HandshakeError> {
    let mut reader = Reader { bytes, position: 0, message_type };
    let name_length = reader.varint("name length")?;
    if name_length > NAME_BYTES_MAX as u64 {
        return Err(HandshakeError::PayloadValueTooLarge {
            message_type,
            field: "name length",
            value: name_length,
            maximum: NAME_BYTES_MAX as u64,
        });
    }
    // Cannot truncate: name_length <= NAME_BYTES_MAX.
    let name = reader.take("name", name_length as usize)?;
    let name = String::from_utf8(name.to_vec()).map_err(|_| HandshakeError::NameNotUtf8)?;
    let node_id = NodeId(reader.varint("node id")?);
    let versions = reader.versions()?;
    let version = reader.u16("version")?;
    let capabilities = reader.varint("capabilities")?;
    reader.finish()?;
    Ok(IdentityPayload { name, node_id, versions, version, capabilities })
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    message_type: MessageType,
}

impl<'a> Reader<'a> {
    fn varint(&mut self, field: &'static str) -> Result<u64, HandshakeError> {
        let message_type = self.message_type;
        match varint::decode(&self.bytes[self.position..]) {
            Ok((value, used)) => {
                self.position += used;
                Ok(value)
            }
            Err(VarintError::Truncated) => Err(HandshakeError::PayloadTruncated { message_type, field }),
            Err(error) => Err(HandshakeError::PayloadVarint { message_type, field, error }),
        }
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, HandshakeError> {
        let value = self.varint(field)?;
        u16::try_from(value).map_err(|_| HandshakeError::PayloadValueTooLarge {
            message_type: self.message_type,
            field,
            value,
            maximum: u64::from(u16::MAX),
        })
    }

    fn versions(&mut self) -> Result<VersionRange, HandshakeError> {
        let min = self.u16("versions min")?;
        let max = self.u16("versions max")?;
        let versions = VersionRange::new(min, max);
        if !versions.is_valid() {
            return Err(HandshakeError::InvalidVersionRange { min, max });
        }
        Ok(versions)
    }

    fn take(&mut self, field: &'static str, length: usize) -> Result<&'a [u8], HandshakeError> {
        if length > self.bytes.len() - self.position {
            return Err(HandshakeError::PayloadTruncated { message_type: self.message_type, field });
        }
        let slice = &self.bytes[self.position..self.position + length];
        self.position += length;
        Ok(slice)
    }

    fn finish(self) -> Result<(), HandshakeError> {
        match self.bytes.len() - self.position {
            0 => Ok(()),
            count => Err(HandshakeError::PayloadTrailingBytes { message_type: self.message_type, count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IdentityPayload {
        IdentityPayload {
            name: "alpha".into(),
            node_id: NodeId(300),
            versions: VersionRange::new(1, 2),
            version: 2,
            capabilities: 0b101,
        }
    }

    #[test]
    fn known_encodings_round_trip() {
        let mut out = Vec::new();
        encode_hello(VersionRange::new(1, 300), &mut out);
        assert_eq!(out, [0x01, 0xac, 0x02]);
        assert_eq!(decode_hello(&out), Ok(VersionRange::new(1, 300)));

        let mut out = Vec::new();
        encode_identity(&sample(), &mut out);
        assert_eq!(out, [5, b'a', b'l', b'p', b'h', b'a', 0xac, 0x02, 1, 2, 2, 5]);
        assert_eq!(decode_identity(MessageType::HelloAck, &out), Ok(sample()));
    }

    #[test]
    fn exact_errors() {
        let hello = MessageType::Hello;
        let ack = MessageType::HelloAck;
        assert_eq!(
            decode_hello(&[1]),
            Err(HandshakeError::PayloadTruncated { message_type: hello, field: "versions max" })
        );
        assert_eq!(
            decode_hello(&[1, 1, 0]),
            Err(HandshakeError::PayloadTrailingBytes { message_type: hello, count: 1 })
        );
        assert_eq!(
            decode_hello(&[0x81, 0x00, 1]),
            Err(HandshakeError::PayloadVarint {
                message_type: hello,
                field: "versions min",
                error: VarintError::NonCanonical
            })
        );
        assert_eq!(
            decode_hello(&[1, 0x80, 0x80, 0x04]),
            Err(HandshakeError::PayloadValueTooLarge {
                message_type: hello,
                field: "versions max",
                value: 65_536,
                maximum: 65_535
            })
        );
        assert_eq!(decode_hello(&[3, 2]), Err(HandshakeError::InvalidVersionRange { min: 3, max: 2 }));
        assert_eq!(
            decode_identity(ack, &[0x80, 0x02]),
            Err(HandshakeError::PayloadValueTooLarge {
                message_type: ack,
                field: "name length",
                value: 256,
                maximum: 255
            })
        );
        assert_eq!(
            decode_identity(ack, &[3, b'a']),
            Err(HandshakeError::PayloadTruncated { message_type: ack, field: "name" })
        );
        assert_eq!(decode_identity(ack, &[1, 0xff, 1, 1, 1, 1, 0]), Err(HandshakeError::NameNotUtf8));
        assert_eq!(
            decode_identity(ack, &[0, 1, 1, 1, 1]),
            Err(HandshakeError::PayloadTruncated { message_type: ack, field: "capabilities" })
        );
    }
}
