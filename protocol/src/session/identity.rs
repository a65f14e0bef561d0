//! Static identities and the crypto resolver that makes snow deterministic.
//!
//! snow asks its resolver for a random number generator whenever it needs one (an ephemeral
//! key, a generated key pair). [`SeededResolver`] answers with a ChaCha20 stream seeded from
//! 32 bytes the caller's RNG provided when the handshake was created, and delegates X25519,
//! BLAKE2s and ChaCha20-Poly1305 to snow's default resolver. So the same caller seed gives the
//! same ephemeral keys and a byte-identical handshake, and no OS randomness is ever read.

use std::fmt;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

use super::{NOISE_PATTERN, NOISE_PATTERN_PSK, SessionError, hex};

/// Length of an X25519 key, secret or public.
pub const KEY_BYTES: usize = 32;

/// A node's static X25519 key pair: the identity a handshake authenticates.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// The secret scalar (as stored; X25519 clamps it when used).
    pub secret: [u8; KEY_BYTES],
    /// The public key, `X25519(secret, 9)`.
    pub public: [u8; KEY_BYTES],
}

impl Identity {
    /// A fresh key pair from 32 bytes of `rng` (through snow's key generation and the
    /// seeded resolver, so the same RNG state gives the same key pair).
    #[must_use]
    pub fn generate(rng: &mut dyn RngCore) -> Self {
        let builder =
            snow::Builder::with_resolver(noise_params(false), Box::new(SeededResolver::from_rng(rng)));
        let keypair =
            builder.generate_keypair().expect("the seeded resolver always provides an RNG and X25519");
        let mut identity = Self { secret: [0; KEY_BYTES], public: [0; KEY_BYTES] };
        identity.secret.copy_from_slice(&keypair.private);
        identity.public.copy_from_slice(&keypair.public);
        identity
    }

    /// The key pair whose secret is `secret`, with its public key derived.
    #[must_use]
    pub fn from_secret(secret: [u8; KEY_BYTES]) -> Self {
        Self { secret, public: public_key(&secret) }
    }

    /// A key pair from stored halves, checked to belong together.
    ///
    /// # Errors
    /// [`SessionError::KeypairMismatch`] when `public` is not the public key of `secret`.
    pub fn from_keypair(secret: [u8; KEY_BYTES], public: [u8; KEY_BYTES]) -> Result<Self, SessionError> {
        let identity = Self::from_secret(secret);
        if identity.public != public {
            return Err(SessionError::KeypairMismatch { public });
        }
        Ok(identity)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret never reaches a log or trace.
        formatter.debug_struct("Identity").field("public", &hex(&self.public)).finish_non_exhaustive()
    }
}

/// The X25519 public key of `secret`.
pub(crate) fn public_key(secret: &[u8; KEY_BYTES]) -> [u8; KEY_BYTES] {
    let mut dh = DefaultResolver
        .resolve_dh(&DHChoice::Curve25519)
        .expect("snow is built with use-curve25519, so the default resolver has X25519");
    dh.set(secret);
    let mut public = [0; KEY_BYTES];
    public.copy_from_slice(dh.pubkey());
    public
}

/// The parsed [`NOISE_PATTERN`], or [`NOISE_PATTERN_PSK`] for a handshake with a cluster
/// secret.
pub(crate) fn noise_params(psk: bool) -> NoiseParams {
    let pattern = if psk { NOISE_PATTERN_PSK } else { NOISE_PATTERN };
    pattern.parse().expect("the pattern constants name primitives snow is built with")
}

/// A snow resolver whose RNG is a ChaCha20 stream from a caller-provided seed.
///
/// snow resolves the RNG once per `Builder::build_*` and once per `generate_keypair`, so one
/// resolver must serve exactly one of those calls: a second would replay the same stream.
pub(crate) struct SeededResolver {
    seed: [u8; 32],
}

impl SeededResolver {
    /// A resolver seeded with the next 32 bytes of `rng`.
    pub(crate) fn from_rng(rng: &mut dyn RngCore) -> Self {
        let mut seed = [0; 32];
        rng.fill_bytes(&mut seed);
        Self { seed }
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(self.seed))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// snow's `Random` over a ChaCha20 stream.
struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, destination: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(destination);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_consistent() {
        let first = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let again = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let other = Identity::generate(&mut ChaCha20Rng::seed_from_u64(2));
        assert_eq!(first, again);
        assert_ne!(first.public, other.public);
        assert_eq!(Identity::from_secret(first.secret), first);
        assert_eq!(Identity::from_keypair(first.secret, first.public), Ok(first.clone()));
        assert_eq!(
            Identity::from_keypair(first.secret, other.public),
            Err(SessionError::KeypairMismatch { public: other.public })
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let identity = Identity::from_secret([0x11; KEY_BYTES]);
        let text = format!("{identity:?}");
        assert!(!text.contains(&"11".repeat(KEY_BYTES)), "{text}");
        assert!(text.contains(&hex(&identity.public)), "{text}");
    }
}
