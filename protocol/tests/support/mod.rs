//! Helpers shared by the session integration tests. They build on snow and the envelope
//! layout written out by hand, never on ferry's session code, so these tests check ferry
//! against an independent reading of the specification.
#![allow(dead_code, unreachable_pub)] // Each test crate uses its own subset.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// The Noise protocol name, restated from PROTOCOL.md rather than imported.
pub const PATTERN: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// The protocol name of a handshake with a cluster secret (PROTOCOL.md 6.10).
pub const PATTERN_PSK: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
/// The prologue, restated from PROTOCOL.md rather than imported.
pub const PROLOGUE: &[u8] = b"ferry/1";

struct TestRandom(ChaCha20Rng);

impl Random for TestRandom {
    fn try_fill_bytes(&mut self, destination: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(destination);
        Ok(())
    }
}

/// Provides only an RNG; everything else falls back to snow's default resolver.
struct RngOnly([u8; 32]);

impl CryptoResolver for RngOnly {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(TestRandom(ChaCha20Rng::from_seed(self.0))))
    }

    fn resolve_dh(&self, _: &DHChoice) -> Option<Box<dyn Dh>> {
        None
    }

    fn resolve_hash(&self, _: &HashChoice) -> Option<Box<dyn Hash>> {
        None
    }

    fn resolve_cipher(&self, _: &CipherChoice) -> Option<Box<dyn Cipher>> {
        None
    }
}

/// A snow builder for ferry's pattern whose RNG is ChaCha20 seeded with `seed`.
pub fn builder(seed: [u8; 32]) -> snow::Builder<'static> {
    builder_for(PATTERN, seed)
}

/// A snow builder for `pattern` whose RNG is ChaCha20 seeded with `seed`.
pub fn builder_for(pattern: &str, seed: [u8; 32]) -> snow::Builder<'static> {
    let resolver = FallbackResolver::new(Box::new(RngOnly(seed)), Box::new(DefaultResolver));
    snow::Builder::with_resolver(pattern.parse().expect("valid pattern"), Box::new(resolver))
}

/// snow's own ChaCha20-Poly1305 (Noise nonce layout: 4 zero bytes, then the counter
/// little-endian) keyed with `key`.
pub fn cipher(key: &[u8; 32]) -> Box<dyn Cipher> {
    let mut cipher = DefaultResolver.resolve_cipher(&CipherChoice::ChaChaPoly).expect("chacha20poly1305");
    cipher.set(key);
    cipher
}

/// The X25519 public key of `secret`, computed by snow.
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    let mut dh = DefaultResolver.resolve_dh(&DHChoice::Curve25519).expect("x25519");
    dh.set(secret);
    dh.pubkey().try_into().expect("32-byte public key")
}

/// A plaintext envelope header: "FY", version 1, type, msg_id 0, flags 0.
pub fn plain_header(code: u8) -> [u8; 9] {
    [0x46, 0x59, 0x01, code, 0, 0, 0, 0, 0x00]
}

/// The header of a handshake message: as [`plain_header`], with the PSK flag (0x02) when
/// the handshake uses a cluster secret.
pub fn handshake_header(code: u8, psk: bool) -> [u8; 9] {
    let mut header = plain_header(code);
    if psk {
        header[8] = 0x02;
    }
    header
}

/// An encrypted envelope header: "FY", version 1, type, msg_id big-endian, flags 1, nonce
/// big-endian.
pub fn encrypted_header(code: u8, msg_id: u32, nonce: u64) -> [u8; 17] {
    let mut header = [0; 17];
    header[..4].copy_from_slice(&[0x46, 0x59, 0x01, code]);
    header[4..8].copy_from_slice(&msg_id.to_be_bytes());
    header[8] = 0x01;
    header[9..].copy_from_slice(&nonce.to_be_bytes());
    header
}

/// Encrypts an application payload the way PROTOCOL.md section 7 says, with snow's cipher.
pub fn seal(key: &[u8; 32], code: u8, msg_id: u32, nonce: u64, plaintext: &[u8]) -> Vec<u8> {
    let header = encrypted_header(code, msg_id, nonce);
    let mut body = vec![0; plaintext.len() + 16];
    let length = cipher(key).encrypt(nonce, &header, plaintext, &mut body);
    body.truncate(length);
    [&header[..], &body].concat()
}

/// Decrypts an encrypted envelope with snow's cipher; returns the plaintext payload.
pub fn open(key: &[u8; 32], envelope: &[u8]) -> Result<Vec<u8>, snow::Error> {
    let nonce = u64::from_be_bytes(envelope[9..17].try_into().expect("8 nonce bytes"));
    let mut plaintext = vec![0; envelope.len() - 17];
    let length = cipher(key).decrypt(nonce, &envelope[..17], &envelope[17..], &mut plaintext)?;
    plaintext.truncate(length);
    Ok(plaintext)
}
