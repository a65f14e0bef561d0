//! Which envelopes may travel in plaintext. Only the handshake (Hello, HelloAck, HelloFinish)
//! and a Close refusing a handshake are plaintext; every other message must be encrypted, and
//! a handshake message never is. This module classifies headers; it decrypts nothing.

use super::SessionError;
use crate::envelope::{Header, MessageType};

/// Where an envelope goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeClass {
    /// A plaintext Hello, HelloAck or HelloFinish: to the handshake.
    Handshake,
    /// A plaintext Close: a peer refusing a handshake in progress.
    HandshakeClose,
    /// An encrypted application message (Close included): to the session's transport.
    Application,
}

/// Classifies an envelope by its header.
///
/// # Errors
/// [`SessionError::EncryptedHandshake`] for an encrypted Hello, HelloAck or HelloFinish, and
/// [`SessionError::Unencrypted`] for a plaintext application message other than Close.
pub fn dispatch(header: &Header) -> Result<EnvelopeClass, SessionError> {
    let message_type = header.message_type;
    match (message_type.is_handshake(), header.flags.encrypted()) {
        (true, false) => Ok(EnvelopeClass::Handshake),
        (true, true) => Err(SessionError::EncryptedHandshake { message_type }),
        (false, true) => Ok(EnvelopeClass::Application),
        (false, false) if message_type == MessageType::Close => Ok(EnvelopeClass::HandshakeClose),
        (false, false) => Err(SessionError::Unencrypted { message_type }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_both_ways() {
        for message_type in MessageType::ALL {
            let plain = dispatch(&Header::plain(message_type, 0));
            let encrypted = dispatch(&Header::encrypted(message_type, 0, 0));
            match message_type {
                MessageType::Hello | MessageType::HelloAck | MessageType::HelloFinish => {
                    assert_eq!(plain, Ok(EnvelopeClass::Handshake));
                    assert_eq!(encrypted, Err(SessionError::EncryptedHandshake { message_type }));
                }
                MessageType::Close => {
                    assert_eq!(plain, Ok(EnvelopeClass::HandshakeClose));
                    assert_eq!(encrypted, Ok(EnvelopeClass::Application));
                }
                _ => {
                    assert_eq!(plain, Err(SessionError::Unencrypted { message_type }));
                    assert_eq!(encrypted, Ok(EnvelopeClass::Application));
                }
            }
        }
    }
}
