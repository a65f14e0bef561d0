//! Everything QUIC and TLS draw at random, from one seed, so that a simulated run replays to
//! the byte.
//!
//! quinn-proto seeds its own generator from `rng_seed`, but several of its defaults and all of
//! TLS draw from the operating system: the token key, connection ids, the first destination id a client picks, TLS randoms and key shares, and the
//! certificate's key. A seeded endpoint replaces each with a draw from its own ChaCha20
//! stream, and makes the certificate an Ed25519 one (whose signatures are deterministic,
//! unlike ECDSA's). Validation tokens read the endpoint's virtual time, not the system's.
//!
//! rustls asks a process-wide provider for randomness; the seeded provider answers from the
//! stream of the endpoint currently inside a call (lent to this thread for the call's
//! duration), and panics when no seeded endpoint is: randomness drawn outside one is a bug
//! that would break replay, so it fails loudly instead.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use quinn_proto::{ConnectionId, ConnectionIdGenerator, TimeSource};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SecureRandom, SharedSecret, SupportedKxGroup,
};
use rustls::{NamedGroup, PeerMisbehaved};

use crate::QuicError;

/// Bytes of the connection ids a seeded endpoint issues (quinn's default length).
const CID_BYTES: usize = 8;

thread_local! {
    /// The random stream of the seeded endpoint now inside a call on this thread.
    static LENT: RefCell<Option<ChaCha20Rng>> = const { RefCell::new(None) };
}

/// Fills `bytes` from the lent stream; panics when none is lent.
fn fill(bytes: &mut [u8]) {
    LENT.with(|lent| match lent.borrow_mut().as_mut() {
        Some(rng) => rng.fill_bytes(bytes),
        None => panic!(
            "ferry-quic: TLS drew randomness outside a seeded endpoint's call; a simulated run \
             would not replay"
        ),
    });
}

/// One seeded endpoint's random stream and clock.
#[derive(Debug)]
pub(crate) struct Seeded {
    /// The stream, while no call holds it.
    rng: Option<ChaCha20Rng>,
    /// The endpoint's current time, for validation tokens.
    now_ns: Arc<AtomicU64>,
}

/// The parts of a seeded endpoint's configuration.
pub(crate) struct SeededConfig {
    pub(crate) seeded: Seeded,
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) rng_seed: [u8; 32],
    pub(crate) token_key: ring::hkdf::Prk,
    pub(crate) cids: SeededCids,
    pub(crate) initial_cids: Arc<Mutex<SeededCids>>,
    pub(crate) certificate_seed: [u8; 32],
    pub(crate) time: Arc<VirtualTime>,
}

impl Seeded {
    /// Splits `seed` into every key and stream a seeded endpoint needs.
    pub(crate) fn config(seed: [u8; 32]) -> SeededConfig {
        let mut root = ChaCha20Rng::from_seed(seed);
        let mut draw = || {
            let mut bytes = [0u8; 32];
            root.fill_bytes(&mut bytes);
            bytes
        };
        let rng_seed = draw();
        let token_key = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(&draw());
        let cids = SeededCids::new(draw());
        let initial_cids = Arc::new(Mutex::new(SeededCids::new(draw())));
        let certificate_seed = draw();
        let tls = draw();
        let now_ns = Arc::new(AtomicU64::new(0));
        let provider = Arc::new(CryptoProvider {
            kx_groups: vec![&SEEDED_X25519],
            secure_random: &SEEDED_RANDOM,
            ..rustls::crypto::ring::default_provider()
        });
        SeededConfig {
            seeded: Seeded { rng: Some(ChaCha20Rng::from_seed(tls)), now_ns: Arc::clone(&now_ns) },
            provider,
            rng_seed,
            token_key,
            cids,
            initial_cids,
            certificate_seed,
            time: Arc::new(VirtualTime { now_ns }),
        }
    }

    /// Lends the stream to this thread for a call at `now_ns`; [`reclaim`](Self::reclaim)
    /// takes it back.
    pub(crate) fn lend(&mut self, now_ns: Option<u64>) {
        if let Some(now_ns) = now_ns {
            self.now_ns.store(now_ns, Ordering::Relaxed);
        }
        let rng = self.rng.take();
        LENT.with(|lent| *lent.borrow_mut() = rng);
    }

    /// Takes the stream back after a call.
    pub(crate) fn reclaim(&mut self) {
        self.rng = LENT.with(|lent| lent.borrow_mut().take());
    }
}

/// The endpoint's virtual time as a wall clock, for validation tokens: the Unix epoch plus
/// the endpoint's nanoseconds.
#[derive(Debug)]
pub(crate) struct VirtualTime {
    now_ns: Arc<AtomicU64>,
}

impl TimeSource for VirtualTime {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.now_ns.load(Ordering::Relaxed))
    }
}

/// Connection ids from a seeded stream.
#[derive(Debug)]
pub(crate) struct SeededCids {
    rng: ChaCha20Rng,
}

impl SeededCids {
    fn new(seed: [u8; 32]) -> Self {
        Self { rng: ChaCha20Rng::from_seed(seed) }
    }

    pub(crate) fn next(&mut self) -> ConnectionId {
        let mut bytes = [0u8; CID_BYTES];
        self.rng.fill_bytes(&mut bytes);
        ConnectionId::new(&bytes)
    }
}

impl ConnectionIdGenerator for SeededCids {
    fn generate_cid(&mut self) -> ConnectionId {
        self.next()
    }

    fn cid_len(&self) -> usize {
        CID_BYTES
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// TLS randomness from the lent stream.
#[derive(Debug)]
struct SeededRandom;

static SEEDED_RANDOM: SeededRandom = SeededRandom;

impl SecureRandom for SeededRandom {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), GetRandomFailed> {
        fill(bytes);
        Ok(())
    }
}

/// X25519 key shares whose secrets come from the lent stream (x25519-dalek does the math).
#[derive(Debug)]
struct SeededX25519;

static SEEDED_X25519: SeededX25519 = SeededX25519;

impl SupportedKxGroup for SeededX25519 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        let mut secret = [0u8; 32];
        fill(&mut secret);
        let secret = x25519_dalek::StaticSecret::from(secret);
        let public = x25519_dalek::PublicKey::from(&secret);
        Ok(Box::new(X25519Share { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

struct X25519Share {
    secret: x25519_dalek::StaticSecret,
    public: x25519_dalek::PublicKey,
}

impl ActiveKeyExchange for X25519Share {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, rustls::Error> {
        let peer: [u8; 32] = peer.try_into().map_err(|_| PeerMisbehaved::InvalidKeyShare)?;
        let shared = self.secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        if !shared.was_contributory() {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        Ok(SharedSecret::from(&shared.as_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        self.public.as_bytes()
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// A self-signed Ed25519 certificate and its key, both from `seed`: the same bytes for the
/// same seed.
pub(crate) fn certificate(
    seed: [u8; 32],
) -> Result<(rustls::pki_types::CertificateDer<'static>, rustls::pki_types::PrivateKeyDer<'static>), QuicError>
{
    // PKCS #8 v1 of an Ed25519 seed (RFC 8410 section 7): a fixed prefix, then the seed.
    const PKCS8_ED25519_PREFIX: [u8; 16] =
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    let mut pkcs8 = PKCS8_ED25519_PREFIX.to_vec();
    pkcs8.extend_from_slice(&seed);
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8);
    let key = rcgen::KeyPair::try_from(&der).map_err(|error| QuicError::Tls(error.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec![crate::SERVER_NAME.to_owned()])
        .map_err(|error| QuicError::Tls(error.to_string()))?;
    params.serial_number = Some(rcgen::SerialNumber::from(1u64));
    let certificate = params.self_signed(&key).map_err(|error| QuicError::Tls(error.to_string()))?;
    Ok((certificate.der().clone(), rustls::pki_types::PrivateKeyDer::Pkcs8(der)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "TLS drew randomness outside a seeded endpoint's call")]
    fn tls_randomness_outside_a_seeded_call_fails_loudly() {
        let mut bytes = [0u8; 32];
        let _ = SEEDED_RANDOM.fill(&mut bytes);
    }

    #[test]
    fn a_lent_stream_is_drawn_from_and_taken_back() {
        let mut seeded = Seeded::config([7; 32]).seeded;
        seeded.lend(Some(5));
        let mut first = [0u8; 16];
        let _ = SEEDED_RANDOM.fill(&mut first);
        seeded.reclaim();
        assert!(seeded.rng.is_some());
        assert!(LENT.with(|lent| lent.borrow().is_none()));
        let mut again = Seeded::config([7; 32]).seeded;
        again.lend(None);
        let mut second = [0u8; 16];
        let _ = SEEDED_RANDOM.fill(&mut second);
        again.reclaim();
        assert_eq!(first, second, "one seed, one stream");
    }
}
