//! Which peers to dial and when: the `--connect` addresses, and the peers learned from UDP
//! discovery or a registry, each redialed with exponential backoff.
//!
//! Pure bookkeeping on the caller's clock (nanoseconds): it never opens a socket. The runtime
//! asks for [`Dialer::due`] targets, dials them on its own threads and reports back.

use std::collections::BTreeMap;

use ferry_protocol::LinkId;

/// First wait before redialing a target that failed or went away.
pub(crate) const BACKOFF_NS_INITIAL: u64 = 100_000_000;
/// Longest wait between two dials of one target; the backoff doubles up to it.
pub(crate) const BACKOFF_NS_MAX: u64 = 5_000_000_000;
/// A learned peer not heard of for this long, and not connected, is forgotten.
pub(crate) const LEARNED_PEER_TTL_NS: u64 = 30_000_000_000;
/// Most learned peers remembered at once; announces beyond it are ignored.
pub(crate) const LEARNED_PEERS_MAX: usize = 256;

const _: () = assert!(BACKOFF_NS_INITIAL < BACKOFF_NS_MAX);
const _: () = assert!(BACKOFF_NS_MAX < LEARNED_PEER_TTL_NS);

/// Names one dial target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TargetKey {
    /// A `--connect` address, dialed for the node's whole life.
    Configured(String),
    /// A peer learned by name; its address may change as it is heard again.
    Learned(String),
}

/// Where a target is in its dial cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Dial once the clock reaches `at_ns`.
    Waiting { at_ns: u64 },
    /// A dial is in progress.
    Dialing,
    /// Connected on `link`; redialed when it closes.
    Connected { link: LinkId },
}

#[derive(Debug, Clone)]
struct Target {
    address: String,
    state: State,
    backoff_ns: u64,
    /// Failed dials since the last established session: the first is worth a log line.
    failures_count: u64,
    /// When a learned peer was last heard of; `None` for configured targets.
    heard_at_ns: Option<u64>,
}

/// The dial targets and their backoff.
#[derive(Debug, Default)]
pub(crate) struct Dialer {
    targets: BTreeMap<TargetKey, Target>,
}

impl Dialer {
    /// Adds a `--connect` address, due at once.
    pub(crate) fn add_configured(&mut self, address: String, now_ns: u64) {
        let target = Target::new(address.clone(), now_ns, None);
        self.targets.entry(TargetKey::Configured(address)).or_insert(target);
    }

    /// A peer named `name` was heard of at `address`. Returns true when it is new.
    pub(crate) fn learn(&mut self, name: String, address: String, now_ns: u64) -> bool {
        let key = TargetKey::Learned(name);
        if let Some(target) = self.targets.get_mut(&key) {
            target.heard_at_ns = Some(now_ns);
            if target.address != address && !matches!(target.state, State::Connected { .. }) {
                // It moved (restarted on another port): try the new address right away.
                target.address = address;
                target.state = State::Waiting { at_ns: now_ns };
                target.backoff_ns = BACKOFF_NS_INITIAL;
            }
            return false;
        }
        let learned_count = self.targets.keys().filter(|key| matches!(key, TargetKey::Learned(_))).count();
        if learned_count >= LEARNED_PEERS_MAX {
            return false;
        }
        self.targets.insert(key, Target::new(address, now_ns, Some(now_ns)));
        true
    }

    /// Targets whose time has come, marked as dialing: `(key, address)` to dial now.
    pub(crate) fn due(&mut self, now_ns: u64) -> Vec<(TargetKey, String)> {
        let mut due = Vec::new();
        for (key, target) in &mut self.targets {
            if matches!(target.state, State::Waiting { at_ns } if at_ns <= now_ns) {
                target.state = State::Dialing;
                due.push((key.clone(), target.address.clone()));
            }
        }
        due
    }

    /// True while a dial of `key` is in progress: its result is still wanted.
    pub(crate) fn is_dialing(&self, key: &TargetKey) -> bool {
        self.targets.get(key).is_some_and(|target| target.state == State::Dialing)
    }

    /// The dial of `key` connected on `link`.
    pub(crate) fn connected(&mut self, key: &TargetKey, link: LinkId) {
        if let Some(target) = self.targets.get_mut(key) {
            target.state = State::Connected { link };
        }
    }

    /// A session was established with `key`: the next loss redials quickly again.
    pub(crate) fn established(&mut self, key: &TargetKey) {
        if let Some(target) = self.targets.get_mut(key) {
            target.backoff_ns = BACKOFF_NS_INITIAL;
            target.failures_count = 0;
        }
    }

    /// The dial of `key` failed, or its connection closed: wait the backoff, then double it.
    /// Returns the failures since the last established session (1 for the first).
    pub(crate) fn failed(&mut self, key: &TargetKey, now_ns: u64) -> u64 {
        let Some(target) = self.targets.get_mut(key) else { return 0 };
        target.state = State::Waiting { at_ns: now_ns.saturating_add(target.backoff_ns) };
        target.backoff_ns = target.backoff_ns.saturating_mul(2).min(BACKOFF_NS_MAX);
        target.failures_count += 1;
        target.failures_count
    }

    /// The dial of `key` is not needed now (already connected another way): look again later
    /// without counting a failure.
    pub(crate) fn postpone(&mut self, key: &TargetKey, now_ns: u64) {
        if let Some(target) = self.targets.get_mut(key) {
            target.state = State::Waiting { at_ns: now_ns.saturating_add(BACKOFF_NS_MAX) };
        }
    }

    /// Forgets learned peers not heard of within [`LEARNED_PEER_TTL_NS`] and not connected.
    pub(crate) fn expire(&mut self, now_ns: u64) {
        self.targets.retain(|_, target| match target.heard_at_ns {
            None => true,
            Some(heard_at_ns) => {
                matches!(target.state, State::Connected { .. } | State::Dialing)
                    || now_ns.saturating_sub(heard_at_ns) < LEARNED_PEER_TTL_NS
            }
        });
    }

    /// The earliest time a target is due, if any is waiting.
    pub(crate) fn next_deadline_ns(&self) -> Option<u64> {
        self.targets
            .values()
            .filter_map(|target| match target.state {
                State::Waiting { at_ns } => Some(at_ns),
                State::Dialing | State::Connected { .. } => None,
            })
            .min()
    }

    /// The address of `key`.
    pub(crate) fn address(&self, key: &TargetKey) -> Option<&str> {
        self.targets.get(key).map(|target| target.address.as_str())
    }
}

impl Target {
    fn new(address: String, now_ns: u64, heard_at_ns: Option<u64>) -> Self {
        Self {
            address,
            state: State::Waiting { at_ns: now_ns },
            backoff_ns: BACKOFF_NS_INITIAL,
            failures_count: 0,
            heard_at_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn configured(address: &str) -> TargetKey {
        TargetKey::Configured(address.to_owned())
    }

    #[test]
    fn backoff_doubles_to_its_maximum_and_resets_on_a_session() {
        let mut dialer = Dialer::default();
        let key = configured("127.0.0.1:1");
        dialer.add_configured("127.0.0.1:1".to_owned(), 0);
        assert_eq!(dialer.due(0), vec![(key.clone(), "127.0.0.1:1".to_owned())]);
        assert_eq!(dialer.due(0), vec![], "a dialing target is not due again");
        let mut now_ns = 0;
        let mut waits_ms = Vec::new();
        for _ in 0..8 {
            dialer.failed(&key, now_ns);
            let deadline_ns = dialer.next_deadline_ns().expect("a failed target waits");
            waits_ms.push((deadline_ns - now_ns) / MS);
            now_ns = deadline_ns;
            assert_eq!(dialer.due(now_ns).len(), 1);
        }
        assert_eq!(waits_ms, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        dialer.connected(&key, 7);
        dialer.established(&key);
        assert_eq!(dialer.next_deadline_ns(), None);
        assert_eq!(dialer.failed(&key, now_ns), 1, "the failure count restarts after a session");
        assert_eq!(dialer.next_deadline_ns(), Some(now_ns + 100 * MS));
    }

    #[test]
    fn learned_peers_update_and_expire() {
        let mut dialer = Dialer::default();
        assert!(dialer.learn("b".to_owned(), "127.0.0.1:2".to_owned(), 0));
        assert!(!dialer.learn("b".to_owned(), "127.0.0.1:2".to_owned(), 5 * MS), "heard again");
        let key = TargetKey::Learned("b".to_owned());
        assert_eq!(dialer.due(5 * MS), vec![(key.clone(), "127.0.0.1:2".to_owned())]);
        dialer.failed(&key, 5 * MS);
        assert!(!dialer.learn("b".to_owned(), "127.0.0.1:3".to_owned(), 6 * MS));
        assert_eq!(dialer.address(&key), Some("127.0.0.1:3"));
        assert_eq!(dialer.next_deadline_ns(), Some(6 * MS), "a moved peer is dialed at once");
        dialer.expire(6 * MS + LEARNED_PEER_TTL_NS - 1);
        assert_eq!(dialer.address(&key), Some("127.0.0.1:3"));
        dialer.expire(6 * MS + LEARNED_PEER_TTL_NS);
        assert_eq!(dialer.address(&key), None);
    }

    #[test]
    fn learned_peers_are_bounded() {
        let mut dialer = Dialer::default();
        for index in 0..LEARNED_PEERS_MAX {
            assert!(dialer.learn(format!("n{index}"), "127.0.0.1:1".to_owned(), 0));
        }
        assert!(!dialer.learn("one-too-many".to_owned(), "127.0.0.1:1".to_owned(), 0));
        dialer.add_configured("127.0.0.1:9".to_owned(), 0);
        assert_eq!(dialer.due(0).len(), LEARNED_PEERS_MAX + 1, "configured targets are not bounded by it");
    }
}
