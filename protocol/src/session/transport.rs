//! The AEAD envelope codec of an established session.
//!
//! After the handshake, Noise's split yields one ChaCha20-Poly1305 key per direction. ferry
//! uses them directly rather than through Noise transport messages, because its envelopes
//! carry an explicit nonce (datagram links lose and reorder messages, so the receiver cannot
//! count) and authenticate their header:
//!
//! - nonce (12 bytes) = 4 zero bytes ‖ counter as u64 little-endian, exactly Noise's
//!   ChaChaPoly nonce; the counter travels big-endian in the header's nonce field;
//! - associated data = the 17 header bytes `Header::encrypted(type, msg_id, counter)` encodes;
//! - body = ciphertext of the payload ‖ 16-byte tag.
//!
//! The sender uses counters 0, 1, 2, ... and never reuses one; it refuses to send at
//! `u64::MAX`. The receiver checks the replay window before decrypting and records the counter
//! only after the tag verified, so a forged or corrupted envelope changes nothing.

use std::fmt;

use bytes::{Bytes, BytesMut};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};

use super::SessionError;
use super::handshake::Keys;
use super::replay::ReplayWindow;
use crate::envelope::{Envelope, HEADER_BYTES_ENCRYPTED, Header, TAG_BYTES};
use crate::message::Message;

/// The 12-byte ChaCha20-Poly1305 nonce for `counter`: Noise's layout.
pub(crate) fn aead_nonce(counter: u64) -> Nonce {
    let mut nonce = [0; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    nonce.into()
}

/// One session's ciphers, send counter and replay window.
pub(crate) struct Transport {
    send_cipher: ChaCha20Poly1305,
    /// The counter the next envelope sent uses.
    send_counter_next: u64,
    receive_cipher: ChaCha20Poly1305,
    window: ReplayWindow,
    /// The session's name ([`Keys::session_id`]), for audits.
    session_id: u64,
}

impl fmt::Debug for Transport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys stay out of logs.
        formatter
            .debug_struct("Transport")
            .field("send_counter_next", &self.send_counter_next)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(keys: &Keys) -> Self {
        Self {
            send_cipher: ChaCha20Poly1305::new(&keys.send.into()),
            send_counter_next: 0,
            receive_cipher: ChaCha20Poly1305::new(&keys.receive.into()),
            window: ReplayWindow::new(),
            session_id: keys.session_id,
        }
    }

    /// The session's name: the first 8 bytes of its handshake hash.
    pub(crate) const fn session_id(&self) -> u64 {
        self.session_id
    }

    /// Encrypts `message` into a complete envelope under the next counter.
    ///
    /// # Errors
    /// [`SessionError::NonceExhausted`] once the counter reached `u64::MAX`.
    pub(crate) fn seal(&mut self, msg_id: u32, message: &Message) -> Result<Bytes, SessionError> {
        let counter = self.send_counter_next;
        if counter == u64::MAX {
            return Err(SessionError::NonceExhausted);
        }
        let header = Header::encrypted(message.message_type(), msg_id, counter);
        let mut buffer = BytesMut::with_capacity(HEADER_BYTES_ENCRYPTED + 64);
        header.encode(&mut buffer);
        message.encode_payload(&mut buffer);
        let (header_bytes, body) = buffer.split_at_mut(HEADER_BYTES_ENCRYPTED);
        let tag = self
            .send_cipher
            .encrypt_in_place_detached(&aead_nonce(counter), header_bytes, body)
            .expect("payloads live in memory, far below ChaCha20-Poly1305's 256 GiB limit");
        buffer.extend_from_slice(&tag);
        self.send_counter_next = counter + 1;
        Ok(buffer.freeze())
    }

    /// Authenticates and decrypts an encrypted envelope; returns its plaintext payload.
    ///
    /// # Errors
    /// [`SessionError::Replay`] or [`SessionError::TooOld`] from the window, then
    /// [`SessionError::Decrypt`] when the tag does not verify. Nothing changes on error.
    pub(crate) fn open(&mut self, envelope: &Envelope) -> Result<Bytes, SessionError> {
        let Some(counter) = envelope.header.nonce else {
            return Err(SessionError::Unencrypted { message_type: envelope.header.message_type });
        };
        self.window.check(counter)?;
        let Some(body_length) = envelope.payload.len().checked_sub(TAG_BYTES) else {
            return Err(SessionError::Decrypt { nonce: counter });
        };
        let mut plaintext = BytesMut::from(&envelope.payload[..body_length]);
        let tag = Tag::from_slice(&envelope.payload[body_length..]);
        self.receive_cipher
            .decrypt_in_place_detached(&aead_nonce(counter), &envelope.header_bytes, &mut plaintext, tag)
            .map_err(|_| SessionError::Decrypt { nonce: counter })?;
        self.window.record(counter);
        Ok(plaintext.freeze())
    }

    /// The counter the next sent envelope will use.
    #[cfg(test)]
    pub(crate) const fn send_counter_next(&self) -> u64 {
        self.send_counter_next
    }

    /// Moves the send counter, so tests can reach its end.
    #[cfg(test)]
    pub(crate) fn set_send_counter_next(&mut self, counter: u64) {
        self.send_counter_next = counter;
    }

    /// The receive window, to compare before and after a rejected envelope.
    #[cfg(test)]
    pub(crate) const fn window(&self) -> &ReplayWindow {
        &self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::MessageType;

    fn pair() -> (Transport, Transport) {
        let (forward, backward) = ([1; 32], [2; 32]);
        (
            Transport::new(&Keys { send: forward, receive: backward, session_id: 1 }),
            Transport::new(&Keys { send: backward, receive: forward, session_id: 1 }),
        )
    }

    fn open_bytes(transport: &mut Transport, bytes: Bytes) -> Result<Message, SessionError> {
        let envelope = Envelope::decode(bytes)?;
        let plaintext = transport.open(&envelope)?;
        Ok(crate::message::decode_payload(envelope.header.message_type, plaintext).expect("valid payload"))
    }

    #[test]
    fn seal_layout_and_round_trip() {
        let (mut alice, mut bob) = pair();
        let bytes = alice.seal(7, &Message::Ping { token: 9 }).expect("counter 0");
        assert_eq!(
            &bytes[..HEADER_BYTES_ENCRYPTED],
            &[0x46, 0x59, 1, 4, 0, 0, 0, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(bytes.len(), HEADER_BYTES_ENCRYPTED + 1 + TAG_BYTES);
        assert_eq!(open_bytes(&mut bob, bytes), Ok(Message::Ping { token: 9 }));
        assert_eq!(alice.send_counter_next(), 1);
    }

    #[test]
    fn nonce_exhaustion_and_last_counter() {
        let (mut alice, mut bob) = pair();
        alice.set_send_counter_next(u64::MAX - 1);
        let last = alice.seal(0, &Message::Ping { token: 1 }).expect("u64::MAX - 1 is the last counter");
        assert_eq!(alice.seal(0, &Message::Ping { token: 2 }), Err(SessionError::NonceExhausted));
        assert_eq!(alice.send_counter_next(), u64::MAX);
        assert_eq!(open_bytes(&mut bob, last), Ok(Message::Ping { token: 1 }));
    }

    #[test]
    fn wrong_direction_fails_authentication() {
        let (mut alice, _) = pair();
        let bytes = alice.seal(0, &Message::Pong { token: 3 }).expect("counter 0");
        let envelope = Envelope::decode(bytes).expect("valid");
        assert_eq!(envelope.header.message_type, MessageType::Pong);
        assert_eq!(alice.open(&envelope), Err(SessionError::Decrypt { nonce: 0 }));
    }
}
