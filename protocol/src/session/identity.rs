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

use super::dh_memo::{DhMemo, MemoDh};
use super::{NOISE_PATTERN, NOISE_PATTERN_PSK, SessionError, hex};

/// Length of an X25519 key, secret or public, and of an identity seed.
pub const KEY_BYTES: usize = 32;

/// A node's identity: an Ed25519 key pair, which signs the node's entries (PROTOCOL.md
/// 8.13), and its X25519 form, the static key a Noise handshake authenticates.
///
/// Everything derives from the 32-byte `seed`, the Ed25519 secret key of RFC 8032: the
/// X25519 secret is the first 32 bytes of SHA-512(seed) (the Ed25519 signing scalar before
/// clamping) and the X25519 public key is the Montgomery form of the Ed25519 public key, as
/// libsodium's `crypto_sign_ed25519_*_to_curve25519` convert them. So anyone who knows a
/// node's static key can check that an Ed25519 key is its signing key, without meeting it.
#[derive(Clone)]
pub struct Identity {
    /// The Ed25519 secret key everything else derives from (what the key file stores).
    pub seed: [u8; KEY_BYTES],
    /// The X25519 secret scalar (X25519 clamps it when used).
    pub secret: [u8; KEY_BYTES],
    /// The X25519 public key, `X25519(secret, 9)`.
    pub public: [u8; KEY_BYTES],
    signing: ed25519_dalek::SigningKey,
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.seed == other.seed
    }
}

impl Eq for Identity {}

impl Identity {
    /// A fresh identity from 32 bytes of `rng` (so the same RNG state gives the same one).
    #[must_use]
    pub fn generate(rng: &mut dyn RngCore) -> Self {
        let mut seed = [0; KEY_BYTES];
        rng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    /// The identity whose Ed25519 secret key is `seed`, with every other key derived.
    #[must_use]
    pub fn from_seed(seed: [u8; KEY_BYTES]) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let secret = signing.to_scalar_bytes();
        let public = signing.verifying_key().to_montgomery().to_bytes();
        Self { seed, secret, public, signing }
    }

    /// An identity from stored halves, checked to belong together.
    ///
    /// # Errors
    /// [`SessionError::KeypairMismatch`] when `public` is not the X25519 public key derived
    /// from `seed`.
    pub fn from_stored(seed: [u8; KEY_BYTES], public: [u8; KEY_BYTES]) -> Result<Self, SessionError> {
        let identity = Self::from_seed(seed);
        if identity.public != public {
            return Err(SessionError::KeypairMismatch { public });
        }
        Ok(identity)
    }

    /// The Ed25519 public key: what every entry this node writes names as its signer.
    #[must_use]
    pub fn signing_public(&self) -> [u8; KEY_BYTES] {
        self.signing.verifying_key().to_bytes()
    }

    /// The Ed25519 signature of `message` (deterministic, RFC 8032).
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret never reaches a log or trace.
        formatter.debug_struct("Identity").field("public", &hex(&self.public)).finish_non_exhaustive()
    }
}

/// The X25519 public key of `secret`, through snow (a check on the derivation).
#[cfg(test)]
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
///
/// With a [`DhMemo`], its X25519 shares results with the other end of the handshake when
/// both run in this process.
pub(crate) struct SeededResolver {
    seed: [u8; 32],
    dh_memo: Option<DhMemo>,
}

impl SeededResolver {
    /// A resolver seeded with the next 32 bytes of `rng`.
    pub(crate) fn from_rng(rng: &mut dyn RngCore, dh_memo: Option<DhMemo>) -> Self {
        let mut seed = [0; 32];
        rng.fill_bytes(&mut seed);
        Self { seed, dh_memo }
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(self.seed))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        let inner = DefaultResolver.resolve_dh(choice)?;
        Some(match &self.dh_memo {
            Some(memo) => Box::new(MemoDh { inner, memo: memo.clone() }),
            None => inner,
        })
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
        assert_eq!(Identity::from_seed(first.seed), first);
        // The X25519 public key is both X25519(secret, 9) and the Ed25519 key's Montgomery form.
        assert_eq!(public_key(&first.secret), first.public);
        assert_eq!(
            curve25519_dalek::edwards::CompressedEdwardsY(first.signing_public())
                .decompress()
                .map(|point| point.to_montgomery().to_bytes()),
            Some(first.public)
        );
        assert_eq!(Identity::from_stored(first.seed, first.public), Ok(first.clone()));
        assert_eq!(
            Identity::from_stored(first.seed, other.public),
            Err(SessionError::KeypairMismatch { public: other.public })
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let identity = Identity::from_seed([0x11; KEY_BYTES]);
        let text = format!("{identity:?}");
        assert!(!text.contains(&"11".repeat(KEY_BYTES)), "{text}");
        assert!(!text.contains(&hex(&identity.secret)), "{text}");
        assert!(text.contains(&hex(&identity.public)), "{text}");
    }
}
