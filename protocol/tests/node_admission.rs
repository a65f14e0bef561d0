//! Goal: who may join a cluster and whose entries a node takes. With a cluster secret
//! (PROTOCOL.md 6.10) only nodes holding the same secret get a session, a mismatch is
//! reported on both ends with its reason and retried at the handshake backoff, never in a
//! hot loop. With member origins (8.12) a node takes entries of members only: the others are
//! refused, reported and counted, without holding up the members' entries beside them or
//! making the sender push them again and again, and a snapshot holding one is refused whole.
//! Method: nodes on hand-driven datagram links; every frame is delivered at once, syncs
//! complete at once, and the clock jumps from timer to timer.

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;
use ferry_protocol::node::{Event, LinkId, LinkKind, Node, NodeConfig, Output};
use ferry_protocol::session::{Identity, Role, SessionConfig};
use ferry_protocol::storage::DiskRequest;
use ferry_protocol::{Envelope, MessageType, NodeId};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

const SECOND: u64 = 1_000_000_000;
/// Steps of a run before a test gives up: a livelock.
const STEPS_MAX: usize = 100_000;

const SECRET_A: [u8; 32] = [0xa5; 32];
const SECRET_B: [u8; 32] = [0x5b; 32];

struct Side {
    node: Node,
    syncs: Vec<u64>,
    events: Vec<Event>,
    /// Frames waiting to be delivered: (link they were sent on, frame).
    outbox: VecDeque<(LinkId, Bytes)>,
}

/// Nodes whose link toward node `j` has id `j`, so a frame sent by `i` on link `j` arrives
/// at `j` on link `i`.
struct Mesh {
    sides: Vec<Side>,
    now_ns: u64,
    /// Every frame sent: (sender, receiver, message type).
    transcript: Vec<(usize, usize, MessageType)>,
}

fn config(name: &str, seed: u64, psk: Option<[u8; 32]>) -> NodeConfig {
    let identity = Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut session = SessionConfig::new(name, identity);
    session.psk = psk;
    NodeConfig::new(session)
}

impl Mesh {
    fn new(configs: Vec<NodeConfig>) -> Self {
        let sides = configs
            .into_iter()
            .enumerate()
            .map(|(index, config)| {
                let rng = Box::new(ChaCha8Rng::seed_from_u64(100 + index as u64));
                let node = Node::recover(config, &[], rng).expect("empty log");
                Side { node, syncs: Vec::new(), events: Vec::new(), outbox: VecDeque::new() }
            })
            .collect();
        let mut mesh = Self { sides, now_ns: 0, transcript: Vec::new() };
        for index in 0..mesh.sides.len() {
            mesh.drain(index);
        }
        mesh
    }

    fn drain(&mut self, index: usize) {
        let side = &mut self.sides[index];
        while let Some(output) = side.node.poll() {
            match output {
                Output::Send { link, frame, .. } => side.outbox.push_back((link, frame)),
                Output::Disk(DiskRequest::Sync { sync_id }) => side.syncs.push(sync_id),
                Output::Event(event) => side.events.push(event),
                _ => {}
            }
        }
    }

    /// Links `initiator` and `responder` (initiator dials).
    fn link(&mut self, initiator: usize, responder: usize) {
        let now_ns = self.now_ns;
        self.sides[initiator].node.link_up(now_ns, responder as LinkId, LinkKind::Datagram, Role::Initiator);
        self.sides[responder].node.link_up(now_ns, initiator as LinkId, LinkKind::Datagram, Role::Responder);
        self.drain(initiator);
        self.drain(responder);
    }

    /// Delivers frames and completes syncs until nothing moves at this instant.
    fn settle(&mut self) {
        for _ in 0..STEPS_MAX {
            let mut moved = false;
            for index in 0..self.sides.len() {
                let now_ns = self.now_ns;
                for sync_id in std::mem::take(&mut self.sides[index].syncs) {
                    self.sides[index].node.handle_synced(now_ns, sync_id);
                    moved = true;
                }
                self.drain(index);
                while let Some((link, frame)) = self.sides[index].outbox.pop_front() {
                    moved = true;
                    let to = usize::try_from(link).expect("link ids are node indexes");
                    // Frames here stay below 16 KiB: a prefix of at most two bytes.
                    let prefix = if frame[0] < 0x80 { 1 } else { 2 };
                    let kind =
                        Envelope::decode(frame.slice(prefix..)).expect("valid envelope").header.message_type;
                    self.transcript.push((index, to, kind));
                    self.sides[to].node.handle_datagram(now_ns, index as LinkId, frame);
                    self.drain(to);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the mesh never went quiet");
    }

    /// Runs every timer up to `until_ns`.
    fn run_until(&mut self, until_ns: u64) {
        for _ in 0..STEPS_MAX {
            self.settle();
            let next = self.sides.iter().filter_map(|side| side.node.poll_timeout()).min();
            match next {
                Some(next) if next <= until_ns => {
                    self.now_ns = self.now_ns.max(next);
                    for index in 0..self.sides.len() {
                        if self.sides[index].node.poll_timeout().is_some_and(|at| at <= self.now_ns) {
                            let now_ns = self.now_ns;
                            self.sides[index].node.handle_timeout(now_ns);
                            self.drain(index);
                        }
                    }
                }
                _ => {
                    self.now_ns = self.now_ns.max(until_ns);
                    return;
                }
            }
        }
        panic!("too many steps before {until_ns}");
    }

    fn connected(&self, index: usize) -> usize {
        self.sides[index].node.connected_peers().count()
    }

    fn handshake_failures(&self, index: usize) -> Vec<String> {
        self.sides[index]
            .events
            .iter()
            .filter_map(|event| match event {
                Event::HandshakeFailed { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }

    fn sent(&self, sender: usize, kind: MessageType) -> usize {
        self.transcript.iter().filter(|(from, _, sent)| *from == sender && *sent == kind).count()
    }
}

/// Goal: nodes with the same secret connect and replicate as without one.
/// Method: a write on the Initiator reaches the Responder; both report the peer connected.
#[test]
fn matching_secrets_connect_and_replicate() {
    let mut mesh = Mesh::new(vec![config("a", 1, Some(SECRET_A)), config("b", 2, Some(SECRET_A))]);
    mesh.link(0, 1);
    mesh.run_until(SECOND);
    assert_eq!((mesh.connected(0), mesh.connected(1)), (1, 1));
    let now_ns = mesh.now_ns;
    mesh.sides[0].node.put(now_ns, Bytes::from_static(b"k"), Bytes::from_static(b"v")).expect("put");
    mesh.drain(0);
    mesh.run_until(2 * SECOND);
    assert_eq!(mesh.sides[1].node.get(b"k").map(|value| &value[..]), Some(&b"v"[..]));
    assert_eq!(mesh.sides[0].node.digest(), mesh.sides[1].node.digest());
    assert!(mesh.handshake_failures(0).is_empty() && mesh.handshake_failures(1).is_empty());
}

/// Goal: different secrets never connect; both ends report "the cluster secret does not
/// match"; the Initiator retries at its handshake backoff (1, 2, 4, 8, 8 ... s), the
/// Responder never starts attempts of its own, and neither ever reports the peer connected.
/// Method: 60 s on one link; count Hellos and read every event.
#[test]
fn different_secrets_are_refused_and_retried_at_the_backoff() {
    let mut mesh = Mesh::new(vec![config("a", 1, Some(SECRET_A)), config("b", 2, Some(SECRET_B))]);
    mesh.link(0, 1);
    mesh.run_until(60 * SECOND);
    for index in [0, 1] {
        assert!(
            !mesh.sides[index].events.iter().any(|event| matches!(event, Event::PeerConnected { .. })),
            "node {index} reported a connection: {:?}",
            mesh.sides[index].events
        );
        let failures = mesh.handshake_failures(index);
        assert!(!failures.is_empty());
        assert!(
            failures.iter().all(|reason| reason.contains("the cluster secret does not match")),
            "node {index}: {failures:?}"
        );
    }
    // Refused attempts start 1, 2, 4, 8, 8, 8 ... s (plus jitter) after the previous one.
    let hellos = mesh.sent(0, MessageType::Hello);
    assert!((6..=10).contains(&hellos), "{hellos} attempts in 60 s");
    assert_eq!(mesh.handshake_failures(0).len(), hellos);
    assert_eq!(mesh.sent(1, MessageType::Hello), 0, "the Responder never initiates");
    assert_eq!(mesh.sent(1, MessageType::Close), hellos, "one refusal per attempt");
    assert_eq!(mesh.sent(0, MessageType::OutboxPull), 0, "nothing is sent under a refused session");
}

/// Goal: a secret on one end only is refused at the Hello, both ways, and each end says why.
/// Method: both pairings for 20 s; no HelloAck is ever sent.
#[test]
fn a_secret_against_none_is_refused_at_the_hello() {
    for (initiator, responder, responder_says) in [
        (Some(SECRET_A), None, "uses a cluster secret (pre-shared key) and this node has none"),
        (None, Some(SECRET_A), "uses no cluster secret (pre-shared key) and this node requires one"),
    ] {
        let mut mesh = Mesh::new(vec![config("a", 1, initiator), config("b", 2, responder)]);
        mesh.link(0, 1);
        mesh.run_until(20 * SECOND);
        assert_eq!((mesh.connected(0), mesh.connected(1)), (0, 0));
        assert_eq!(mesh.sent(1, MessageType::HelloAck), 0);
        for index in [0, 1] {
            let failures = mesh.handshake_failures(index);
            assert!(!failures.is_empty());
            assert!(
                failures.iter().all(|reason| reason.contains(responder_says)),
                "node {index}: {failures:?}"
            );
        }
        assert!(mesh.sent(0, MessageType::Hello) <= 5, "retried at the backoff");
    }
}

/// A node taking entries only of `members` (and its own).
fn member_config(name: &str, seed: u64, members: &[&str]) -> NodeConfig {
    let mut config = config(name, seed, None);
    config.member_origins = Some(members.iter().map(|name| NodeId::from_name(name)).collect::<BTreeSet<_>>());
    config
}

impl Mesh {
    fn write(&mut self, index: usize, key: &str, value: &str) {
        let now_ns = self.now_ns;
        self.sides[index]
            .node
            .put(now_ns, Bytes::from(key.to_owned()), Bytes::from(value.to_owned()))
            .expect("put");
        self.drain(index);
        self.settle();
    }

    fn get(&self, index: usize, key: &str) -> Option<Vec<u8>> {
        self.sides[index].node.get(key.as_bytes()).map(|value| value.to_vec())
    }

    fn rejections(&self, index: usize) -> Vec<String> {
        self.sides[index]
            .events
            .iter()
            .filter_map(|event| match event {
                Event::Rejected { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }

    fn sent_to(&self, sender: usize, receiver: usize, kind: MessageType) -> usize {
        self.transcript
            .iter()
            .filter(|(from, to, sent)| (*from, *to, *sent) == (sender, receiver, kind))
            .count()
    }
}

/// Goal: a push that mixes entries of a member and of another origin gets the member's
/// entries applied and acknowledged, the others refused with an event and a count, and the
/// sender does not push them again.
/// Method: c's entries reach a, which has no member set; a then meets b, whose members are
/// {a}, and pushes its own entries and c's in one WalPush. Then 30 s more, and c writes again.
#[test]
fn a_push_mixing_member_and_other_entries() {
    let mut mesh = Mesh::new(vec![config("a", 1, None), member_config("b", 2, &["a"]), config("c", 3, None)]);
    mesh.link(2, 0);
    mesh.run_until(SECOND);
    for round in 0..3 {
        mesh.write(2, &format!("c{round}"), "from c");
    }
    mesh.write(0, "a0", "from a");
    mesh.write(0, "a1", "from a");
    mesh.run_until(2 * SECOND);
    assert_eq!(mesh.get(0, "c2").as_deref(), Some(&b"from c"[..]), "a relays c's entries");

    mesh.link(0, 1);
    mesh.run_until(3 * SECOND);
    assert_eq!(mesh.sent_to(0, 1, MessageType::WalPush), 1, "one push carried a's entries and c's");
    assert_eq!(mesh.get(1, "a1").as_deref(), Some(&b"from a"[..]));
    assert_eq!(mesh.get(1, "c0"), None);
    let b = &mesh.sides[1].node;
    let (a_id, c_id) = (NodeId::from_name("a"), NodeId::from_name("c"));
    // Entries of an origin: its writes and its seals (PROTOCOL.md 8.13).
    let held = |mesh: &Mesh, index: usize, origin| mesh.sides[index].node.version_vector().get(origin);
    assert!(held(&mesh, 0, a_id) > 2 && held(&mesh, 2, c_id) > 3, "a and c sealed their writes");
    assert_eq!(b.version_vector().get(a_id), held(&mesh, 0, a_id));
    assert_eq!(b.version_vector().get(c_id), 0);
    let c_entries = held(&mesh, 2, c_id);
    assert_eq!(b.stats().entries_refused, c_entries);
    assert_eq!(
        mesh.rejections(1),
        [format!(
            "refused {c_entries} entries of origin {c_id}: not a member origin (PROTOCOL.md 8.12; reported at most once a minute per origin)"
        )]
    );
    assert!(mesh.sent_to(1, 0, MessageType::WalAck) >= 1, "b acknowledged a's entries");

    // Nothing is pushed again: no retransmission, no second push of c's entries.
    mesh.run_until(33 * SECOND);
    assert_eq!(mesh.sent_to(0, 1, MessageType::WalPush), 1);
    assert_eq!(mesh.sides[0].node.stats().retransmits, 0);
    assert_eq!(mesh.sides[1].node.stats().entries_refused, c_entries);

    // New entries of c are pushed once each, refused, and reported once a minute at most;
    // a's new entries keep flowing.
    mesh.write(2, "c3", "from c");
    mesh.write(0, "a2", "from a");
    mesh.run_until(40 * SECOND);
    assert_eq!(mesh.get(1, "a2").as_deref(), Some(&b"from a"[..]));
    assert_eq!(mesh.sides[1].node.stats().entries_refused, held(&mesh, 2, c_id));
    assert!(held(&mesh, 2, c_id) > c_entries);
    assert_eq!(mesh.rejections(1).len(), 1, "the next report waits for the minute");
    assert_eq!(mesh.sides[0].node.stats().retransmits, 0);
    // A minute after the first report, the next refusal reports both unreported entries.
    mesh.run_until(64 * SECOND);
    mesh.write(2, "c4", "from c");
    mesh.run_until(70 * SECOND);
    assert_eq!(mesh.sides[1].node.stats().entries_refused, held(&mesh, 2, c_id));
    let rejections = mesh.rejections(1);
    assert_eq!(rejections.len(), 2);
    let unreported = held(&mesh, 2, c_id) - c_entries;
    assert!(unreported >= 2, "c3 and c4, and their seals");
    assert!(
        rejections[1].starts_with(&format!("refused {unreported} entries of origin {c_id}")),
        "{rejections:?}"
    );
}

/// Goal: members that all refuse an outsider's entries converge among themselves, lose no
/// acknowledged write, and the outsider is not made to push forever.
/// Method: a and b take entries of {a, b}; outsider c is linked to a and writes; a and b
/// write too, across a then b, for 30 s.
#[test]
fn members_converge_without_an_outsider_s_entries() {
    let mut mesh = Mesh::new(vec![
        member_config("a", 1, &["a", "b"]),
        member_config("b", 2, &["a", "b"]),
        config("c", 3, None),
    ]);
    mesh.link(0, 1);
    mesh.link(2, 0);
    mesh.run_until(SECOND);
    for round in 0..20 {
        mesh.write(round % 3, &format!("k{}", round % 4), &format!("v{round}"));
        mesh.run_until(mesh.now_ns + 500_000_000);
    }
    mesh.run_until(40 * SECOND);
    assert_eq!(mesh.sides[0].node.digest(), mesh.sides[1].node.digest());
    let c_id = NodeId::from_name("c");
    for index in [0, 1] {
        assert_eq!(mesh.sides[index].node.version_vector().get(c_id), 0);
    }
    // Every acknowledged write of a member is at both members.
    for index in [0, 1] {
        for event in &mesh.sides[index].events {
            if let Event::Acked { entry } = event {
                for other in [0, 1] {
                    assert!(mesh.sides[other].node.entry(entry.origin, entry.sequence).is_some());
                }
            }
        }
    }
    // c wrote 6 times and sealed each write (they are 500 ms apart): each entry refused once.
    let c_entries = mesh.sides[2].node.version_vector().get(c_id);
    assert_eq!(c_entries, 12);
    assert_eq!(mesh.sides[0].node.stats().entries_refused, c_entries, "each of c's entries refused once");
    assert_eq!(mesh.sides[2].node.stats().retransmits, 0, "the outsider never retransmits");
    assert!(mesh.sent_to(2, 0, MessageType::WalPush) <= 12);
}

/// Goal: a snapshot holding an entry of a non-member origin is refused whole, changes
/// nothing, and is not pulled again when re-offered.
/// Method: a (no member set) holds c's entries and compacts; b (members {a}) joins with an
/// empty log, is offered a snapshot, pulls its first chunk and refuses it; 20 s more.
#[test]
fn a_snapshot_with_a_non_member_entry_is_refused_whole() {
    let mut compacting = config("a", 1, None);
    compacting.compaction_tail_bytes_min = 64;
    compacting.compaction_horizon_ns = SECOND;
    let mut mesh = Mesh::new(vec![compacting, member_config("b", 2, &["a"]), config("c", 3, None)]);
    mesh.link(2, 0);
    mesh.run_until(SECOND);
    for round in 0..60 {
        let writer = if round % 2 == 0 { 0 } else { 2 };
        let key = format!("{}{}", if writer == 0 { "a" } else { "c" }, round % 3);
        mesh.write(writer, &key, &format!("v{round}"));
        mesh.run_until(mesh.now_ns + 100_000_000);
    }
    mesh.run_until(mesh.now_ns + 10 * SECOND);
    assert!(mesh.sides[0].node.stats().compactions > 0, "a never compacted");
    assert!(mesh.sides[0].node.compaction_base().get(NodeId::from_name("a")) > 0);

    mesh.link(1, 0);
    mesh.run_until(mesh.now_ns + 20 * SECOND);
    let b = &mesh.sides[1].node;
    assert_eq!(b.stats().snapshots_refused, 1, "refused once, then its re-offers ignored");
    assert_eq!(b.stats().snapshots_applied, 0);
    assert_eq!(mesh.sent_to(1, 0, MessageType::SnapshotPull), 1);
    assert!(mesh.sent_to(0, 1, MessageType::SnapshotOffer) >= 2, "a offered again");
    assert_eq!(b.version_vector().total(), 0, "the refused snapshot changed nothing");
    assert_eq!(b.store().iter().count(), 0);
    let refused = b.stats().snapshots_refused;
    let reasons: Vec<&Event> =
        mesh.sides[1].events.iter().filter(|event| matches!(event, Event::SnapshotRefused { .. })).collect();
    assert_eq!(reasons.len() as u64, refused);
    let Event::SnapshotRefused { reason, .. } = reasons[0] else { unreachable!() };
    assert!(reason.contains("of an origin that is not a member"), "{reason}");
}
