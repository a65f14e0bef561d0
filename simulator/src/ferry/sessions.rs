//! The session checker: holds every node to PROTOCOL.md 7.4 to 7.6 on what it accepts.
//!
//! It reads the nodes' [`Audit`] records (only nodes booted with `NodeConfig::audit` send
//! them) and checks three rules per receiving node:
//!
//! - no envelope is accepted twice: a `(session, counter)` pair is accepted at most once;
//! - none is accepted after its session ended (a Close, a replacement whose old keys were
//!   dropped, the link's end, the node's restart), nor under a session never established on
//!   the link it arrived on;
//! - no application message is accepted in plaintext.
//!
//! It owns no node and decrypts nothing: a session is a name (the first 8 bytes of its
//! handshake hash), a counter is a number.

use std::collections::{BTreeMap, BTreeSet};

use ferry_protocol::node::{Audit, LinkId};

use super::Violation;
use super::causal::node_name;

/// Violations kept with their detail; later ones are only counted.
pub const SESSION_VIOLATIONS_KEPT_MAX: usize = 10;

/// Checks what sessions accept; see the module docs.
#[derive(Debug, Default)]
pub struct SessionChecker {
    /// Per `(receiving node, session)`: the link it was established on and the counters
    /// accepted under it.
    sessions: BTreeMap<(u32, u64), (LinkId, BTreeSet<u64>)>,
    /// `(receiving node, session)` pairs that ended.
    ended: BTreeSet<(u32, u64)>,
    /// Sessions established (a session counts once, though both ends report it).
    pub sessions_count: u64,
    /// Every session established, by name.
    session_ids: BTreeSet<u64>,
    /// Application envelopes accepted.
    pub envelopes_accepted: u64,
    /// Violations found, counted.
    pub violations_count: u64,
    /// The first [`SESSION_VIOLATIONS_KEPT_MAX`] violations.
    pub violations: Vec<Violation>,
}

impl SessionChecker {
    /// Node `node` reported `audit` at virtual time `at_ns`. `names` names the run's nodes;
    /// a link is named by the peer's index, as the simulator adapter does.
    pub fn audit(&mut self, at_ns: u64, node: u32, audit: &Audit, names: &[String]) {
        // Every accepted envelope is audited and almost none is a violation: names and
        // descriptions are built only for one.
        let name = || node_name(names, node);
        let peer = |link: &LinkId| {
            u32::try_from(*link).map_or_else(|_| link.to_string(), |link| node_name(names, link))
        };
        match audit {
            Audit::SessionEstablished { link, session_id } => {
                if self.session_ids.insert(*session_id) {
                    self.sessions_count += 1;
                }
                if self.ended.contains(&(node, *session_id)) {
                    let detail = format!(
                        "node {} established session {session_id:016x} with {} again after it ended",
                        name(),
                        peer(link)
                    );
                    self.violation(at_ns, detail);
                }
                self.sessions.entry((node, *session_id)).or_insert_with(|| (*link, BTreeSet::new()));
            }
            Audit::SessionEnded { session_id, .. } => {
                self.ended.insert((node, *session_id));
            }
            Audit::EnvelopeAccepted { link, message_type, receipt: None } => {
                self.envelopes_accepted += 1;
                let established =
                    self.sessions.iter().any(|((receiver, _), (on, _))| *receiver == node && on == link);
                let when = if established { " after a session was established on that link" } else { "" };
                let detail = format!(
                    "node {} accepted a plaintext {message_type:?} from {}{when}",
                    name(),
                    peer(link)
                );
                self.violation(at_ns, detail);
            }
            Audit::EnvelopeAccepted { link, message_type, receipt: Some(receipt) } => {
                self.envelopes_accepted += 1;
                let (session_id, counter) = (receipt.session_id, receipt.counter);
                let envelope = || {
                    format!(
                        "{message_type:?} counter {counter} of session {session_id:016x} from {}",
                        peer(link)
                    )
                };
                if self.ended.contains(&(node, session_id)) {
                    let detail = format!("node {} accepted {} after that session ended", name(), envelope());
                    self.violation(at_ns, detail);
                }
                match self.sessions.get_mut(&(node, session_id)) {
                    Some((on, _)) if on != link => {
                        let on = *on;
                        let detail = format!(
                            "node {} accepted {}, a session established with {}",
                            name(),
                            envelope(),
                            peer(&on)
                        );
                        self.violation(at_ns, detail);
                    }
                    Some((_, counters)) => {
                        if !counters.insert(counter) {
                            let detail = format!("node {} accepted {} twice", name(), envelope());
                            self.violation(at_ns, detail);
                        }
                    }
                    None => {
                        let detail = format!(
                            "node {} accepted {}, a session it never established",
                            name(),
                            envelope()
                        );
                        self.violation(at_ns, detail);
                    }
                }
            }
            Audit::ClockRefused { .. }
            | Audit::ClockRestarted { .. }
            | Audit::Pushed { .. }
            | Audit::RoutedRelayed { .. }
            | Audit::Grafted { .. } => {}
        }
    }

    /// Node `node` restarted: every session it held is gone with its memory.
    pub fn restarted(&mut self, node: u32) {
        for (receiver, session_id) in self.sessions.keys() {
            if *receiver == node {
                self.ended.insert((node, *session_id));
            }
        }
    }

    fn violation(&mut self, at_ns: u64, detail: String) {
        self.violations_count += 1;
        if self.violations.len() < SESSION_VIOLATIONS_KEPT_MAX {
            self.violations.push(Violation { at_ns, detail });
        }
    }
}

#[cfg(test)]
mod tests {
    use ferry_protocol::MessageType;
    use ferry_protocol::session::Receipt;

    use super::*;

    fn names() -> Vec<String> {
        vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]
    }

    fn accepted(link: LinkId, session_id: u64, counter: u64) -> Audit {
        Audit::EnvelopeAccepted {
            link,
            message_type: MessageType::WalPush,
            receipt: Some(Receipt { session_id, counter }),
        }
    }

    #[test]
    fn envelopes_in_any_order_once_each_pass() {
        // Goal: the checker must not reject what the window allows: reordering. Method: b
        // accepts counters 2, 0, 1 of one session from a.
        let mut checker = SessionChecker::default();
        checker.audit(0, 1, &Audit::SessionEstablished { link: 0, session_id: 7 }, &names());
        for counter in [2, 0, 1] {
            checker.audit(0, 1, &accepted(0, 7, counter), &names());
        }
        assert_eq!((checker.violations_count, checker.envelopes_accepted, checker.sessions_count), (0, 3, 1));
    }

    #[test]
    fn duplicate_counter_is_rejected() {
        // Goal: the replay fault's target. Method: b accepts counter 4 of one session twice.
        let mut checker = SessionChecker::default();
        checker.audit(0, 1, &Audit::SessionEstablished { link: 0, session_id: 7 }, &names());
        checker.audit(1, 1, &accepted(0, 7, 4), &names());
        checker.audit(2_500_000_000, 1, &accepted(0, 7, 4), &names());
        assert_eq!(checker.violations_count, 1);
        assert_eq!(checker.violations[0].at_ns, 2_500_000_000);
        assert_eq!(
            checker.violations[0].detail,
            "node b accepted WalPush counter 4 of session 0000000000000007 from a twice"
        );
    }

    #[test]
    fn envelope_after_its_session_ended_is_rejected() {
        // Goal: a replaced or closed session's keys must be gone. Method: the session ends,
        // then a new counter of it is accepted; then the node restarts and one more arrives.
        let mut checker = SessionChecker::default();
        checker.audit(0, 1, &Audit::SessionEstablished { link: 0, session_id: 7 }, &names());
        checker.audit(0, 1, &Audit::SessionEnded { link: 0, session_id: 7 }, &names());
        checker.audit(0, 1, &accepted(0, 7, 1), &names());
        assert_eq!(checker.violations_count, 1);
        assert_eq!(
            checker.violations[0].detail,
            "node b accepted WalPush counter 1 of session 0000000000000007 from a after that session ended"
        );
        checker.audit(0, 2, &Audit::SessionEstablished { link: 0, session_id: 9 }, &names());
        checker.restarted(2);
        checker.audit(0, 2, &accepted(0, 9, 0), &names());
        assert_eq!(checker.violations_count, 2);
    }

    #[test]
    fn plaintext_and_unknown_sessions_are_rejected() {
        // Goal: nothing reaches the node outside an established session. Method: a plaintext
        // WalPush after a session, a counter of a session never established, and one of a
        // session established on another link.
        let mut checker = SessionChecker::default();
        checker.audit(0, 1, &Audit::SessionEstablished { link: 0, session_id: 7 }, &names());
        let plaintext =
            Audit::EnvelopeAccepted { link: 0, message_type: MessageType::WalPush, receipt: None };
        checker.audit(0, 1, &plaintext, &names());
        checker.audit(0, 1, &accepted(0, 8, 0), &names());
        checker.audit(0, 1, &accepted(2, 7, 0), &names());
        let details: Vec<&str> =
            checker.violations.iter().map(|violation| violation.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                "node b accepted a plaintext WalPush from a after a session was established on that link",
                "node b accepted WalPush counter 0 of session 0000000000000008 from a, a session it never \
                 established",
                "node b accepted WalPush counter 0 of session 0000000000000007 from c, a session established \
                 with a",
            ]
        );
    }
}
