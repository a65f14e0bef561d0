//! X25519 results shared by the two ends of a handshake that run in one process.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use snow::types::{Dh, Random};

use super::KEY_BYTES;

/// Diffie-Hellman results a [`DhMemo`] holds at once; past it the oldest is forgotten.
pub const DH_MEMO_MAX: usize = 65_536;

/// X25519 results waiting for the other end of their handshake, for nodes that run in one
/// process (a simulation).
///
/// Each Noise XX handshake computes three Diffie-Hellman results (`ee`, `es`, `se`), and
/// each of them twice, once at each end: `X25519(a, B)` at the end holding `a` and
/// `X25519(b, A)` at the other, which are the same 32 bytes for keys made as X25519 makes
/// them (`A = X25519(a, 9)`, `B = X25519(b, 9)`; both are `X25519(ab, 9)`). A simulation of
/// many nodes computes both ends in one process, and the 100-node mesh of `ferry_cluster`
/// spends almost half of its time there. With one memo handed to every node
/// (`SessionConfig::dh_memo`), the end that computes first leaves the result under the
/// pair of public keys, and the other end takes it instead of computing it again.
///
/// What a node decides is the same with and without it. The key of a result is the pair of
/// public keys, one of them the computing end's own public key, which snow derives from the
/// private key it computes with; so a result is only ever found by an end whose own key is
/// the other half of the pair, and for such keys the two results are equal (the test
/// `memoised_handshakes_match_computed_ones` checks it against a handshake without the
/// memo). A public key sent by a peer that no private key in the process derives (a forged
/// or malformed one) matches no stored pair and is computed as usual. A result is taken
/// out when found, so the memo holds only handshakes half done, at most [`DH_MEMO_MAX`].
///
/// It holds shared secrets: give it only to nodes that share a process anyway. A real node
/// has none (the default).
///
/// ```
/// use ferry_protocol::session::DhMemo;
/// let memo = DhMemo::default();
/// let shared = memo.clone(); // the same memo
/// assert!(shared.is_empty() && memo.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct DhMemo {
    inner: Arc<Mutex<MemoInner>>,
}

#[derive(Default)]
struct MemoInner {
    /// Each result with the serial number of its insertion.
    results: BTreeMap<[u8; 2 * KEY_BYTES], ([u8; KEY_BYTES], u64)>,
    /// Insertions, oldest first, results since taken included.
    order: VecDeque<([u8; 2 * KEY_BYTES], u64)>,
    inserted: u64,
    taken: u64,
}

impl fmt::Debug for DhMemo {
    /// Never the results: they are secrets.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("DhMemo").field("len", &self.len()).field("taken", &self.taken()).finish()
    }
}

/// Two handles are equal when they share one memo.
impl PartialEq for DhMemo {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
impl Eq for DhMemo {}

impl DhMemo {
    /// Results waiting for the other end of their handshake.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().results.len()
    }

    /// Whether none is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Results found by the other end, so not computed again.
    #[must_use]
    pub fn taken(&self) -> u64 {
        self.lock().taken
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pair of public keys, in byte order: both ends name it the same.
    /// snow hands the remote key in a buffer longer than the key; X25519 reads its first 32
    /// bytes, and so does this.
    fn key(own: &[u8], other: &[u8]) -> Option<[u8; 2 * KEY_BYTES]> {
        let own: &[u8; KEY_BYTES] = own.try_into().ok()?;
        let other: &[u8; KEY_BYTES] = other.get(..KEY_BYTES)?.try_into().ok()?;
        let (low, high) = if own <= other { (own, other) } else { (other, own) };
        let mut key = [0; 2 * KEY_BYTES];
        key[..KEY_BYTES].copy_from_slice(low);
        key[KEY_BYTES..].copy_from_slice(high);
        Some(key)
    }

    fn take(&self, key: &[u8; 2 * KEY_BYTES]) -> Option<[u8; KEY_BYTES]> {
        let mut inner = self.lock();
        let (result, _) = inner.results.remove(key)?;
        inner.taken += 1;
        // Its place in `order` goes when it reaches the front.
        Some(result)
    }

    fn insert(&self, key: [u8; 2 * KEY_BYTES], result: [u8; KEY_BYTES]) {
        let mut inner = self.lock();
        let serial = inner.inserted;
        inner.inserted += 1;
        inner.results.insert(key, (result, serial));
        inner.order.push_back((key, serial));
        // `order` also holds results since taken or replaced: forget from its front (a
        // forgotten result is computed again, nothing worse) until both are within bounds.
        while inner.results.len() > DH_MEMO_MAX || inner.order.len() > 2 * DH_MEMO_MAX {
            let Some((oldest, serial)) = inner.order.pop_front() else { break };
            if inner.results.get(&oldest).is_some_and(|(_, current)| *current == serial) {
                inner.results.remove(&oldest);
            }
        }
    }
}

/// snow's X25519 with a [`DhMemo`] in front of it.
pub(crate) struct MemoDh {
    pub(crate) inner: Box<dyn Dh>,
    pub(crate) memo: DhMemo,
}

impl Dh for MemoDh {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn pub_len(&self) -> usize {
        self.inner.pub_len()
    }

    fn priv_len(&self) -> usize {
        self.inner.priv_len()
    }

    fn set(&mut self, privkey: &[u8]) {
        self.inner.set(privkey);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        self.inner.generate(rng)
    }

    fn pubkey(&self) -> &[u8] {
        self.inner.pubkey()
    }

    fn privkey(&self) -> &[u8] {
        self.inner.privkey()
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        // `self.inner.pubkey()` is derived by snow from the private key used below.
        let Some(key) = DhMemo::key(self.inner.pubkey(), pubkey).filter(|_| out.len() >= KEY_BYTES) else {
            return self.inner.dh(pubkey, out);
        };
        if let Some(result) = self.memo.take(&key) {
            out[..KEY_BYTES].copy_from_slice(&result);
            return Ok(());
        }
        self.inner.dh(pubkey, out)?;
        let mut result = [0; KEY_BYTES];
        result.copy_from_slice(&out[..KEY_BYTES]);
        self.memo.insert(key, result);
        Ok(())
    }

    fn dh_len(&self) -> usize {
        self.inner.dh_len()
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use snow::HandshakeState;

    use super::*;
    use crate::session::Identity;
    use crate::session::identity::{SeededResolver, noise_params};

    fn state(identity: &Identity, seed: u64, initiator: bool, memo: Option<&DhMemo>) -> HandshakeState {
        let resolver = SeededResolver::from_rng(&mut ChaCha20Rng::seed_from_u64(seed), memo.cloned());
        let builder = snow::Builder::with_resolver(noise_params(false), Box::new(resolver))
            .local_private_key(&identity.secret)
            .expect("set once");
        if initiator { builder.build_initiator() } else { builder.build_responder() }.expect("complete")
    }

    /// Every message of a handshake, and each end's handshake hash.
    type Transcript = (Vec<Vec<u8>>, Vec<u8>, Vec<u8>);

    /// Runs XX between two fresh identities; `tamper` runs after the responder's message, when
    /// it has computed `ee` and `es`. Returns every message, both handshake hashes, or the error.
    fn handshake(memo: Option<&DhMemo>, tamper: impl FnOnce()) -> Result<Transcript, snow::Error> {
        let (alice, bob) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let (mut initiator, mut responder) = (state(&alice, 10, true, memo), state(&bob, 20, false, memo));
        let (mut messages, mut buffer, mut payload) = (Vec::new(), [0u8; 256], [0u8; 256]);
        let length = initiator.write_message(&[], &mut buffer)?;
        messages.push(buffer[..length].to_vec());
        responder.read_message(&buffer[..length], &mut payload)?;
        let length = responder.write_message(&[], &mut buffer)?;
        messages.push(buffer[..length].to_vec());
        tamper();
        initiator.read_message(&buffer[..length], &mut payload)?;
        let length = initiator.write_message(&[], &mut buffer)?;
        messages.push(buffer[..length].to_vec());
        responder.read_message(&buffer[..length], &mut payload)?;
        Ok((messages, initiator.get_handshake_hash().to_vec(), responder.get_handshake_hash().to_vec()))
    }

    #[test]
    fn memoised_handshakes_match_computed_ones() {
        let computed = handshake(None, || {}).expect("a plain handshake completes");
        let memo = DhMemo::default();
        let memoised = handshake(Some(&memo), || {}).expect("a memoised handshake completes");
        assert_eq!(memoised, computed, "the same messages and the same handshake hash");
        assert_eq!(computed.1, computed.2);
        // ee, es and se were each computed by one end and taken by the other.
        assert_eq!((memo.taken(), memo.len()), (3, 0));
    }

    #[test]
    fn a_wrong_result_in_the_memo_is_used_and_breaks_the_handshake() {
        // Shows the memo is consulted (and why only honest results may enter it): the
        // initiator takes the responder's `ee` and `es`, altered here, and cannot read the
        // responder's static key.
        let memo = DhMemo::default();
        let result = handshake(Some(&memo), || {
            for (result, _) in memo.lock().results.values_mut() {
                result[0] ^= 1;
            }
        });
        assert!(result.is_err(), "the altered results were used");
        assert_eq!(memo.taken(), 1, "the first of them, ee, broke the handshake at once");
    }

    #[test]
    fn the_memo_is_bounded() {
        let memo = DhMemo::default();
        for index in 0..DH_MEMO_MAX as u64 + 10 {
            let mut own = [0u8; KEY_BYTES];
            own[..8].copy_from_slice(&index.to_le_bytes());
            let key = DhMemo::key(&own, &[0xff; KEY_BYTES]).expect("32-byte keys");
            memo.insert(key, [7; KEY_BYTES]);
        }
        assert_eq!(memo.len(), DH_MEMO_MAX);
        let mut first = [0u8; KEY_BYTES];
        first[..8].copy_from_slice(&0u64.to_le_bytes());
        let oldest = DhMemo::key(&first, &[0xff; KEY_BYTES]).expect("32-byte keys");
        assert_eq!(memo.take(&oldest), None, "the oldest was forgotten");
        // Taken results leave `order` bounded too.
        for _ in 0..3 * DH_MEMO_MAX {
            let key = DhMemo::key(&[1; KEY_BYTES], &[2; KEY_BYTES]).expect("32-byte keys");
            memo.insert(key, [7; KEY_BYTES]);
            assert!(memo.take(&key).is_some());
        }
        assert!(memo.lock().order.len() <= 2 * DH_MEMO_MAX);
        assert_eq!(DhMemo::key(&[1; 31], &[2; KEY_BYTES]), None, "only 32-byte keys are memoised");
        assert_eq!(DhMemo::key(&[1; KEY_BYTES], &[2; 31]), None);
        assert_eq!(
            DhMemo::key(&[1; KEY_BYTES], &[2; 56]),
            DhMemo::key(&[2; KEY_BYTES], &[1; KEY_BYTES]),
            "a longer buffer is read to 32 bytes, and both ends name the pair the same"
        );
    }
}
