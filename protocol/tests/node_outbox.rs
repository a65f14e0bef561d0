//! Goal: the outbox retransmits an unacknowledged push with exponential backoff, stops once
//! acknowledged, and a WalAck waits for the sync that covers the entries. Method: two nodes
//! on a hand-driven datagram link; the test decides which frames arrive and when syncs
//! complete, and inspects the message type of every frame in the envelope header.

use std::collections::VecDeque;

use bytes::Bytes;
use ferry_protocol::node::{Event, LinkKind, Node, NodeConfig, Output};
use ferry_protocol::session::{Identity, Role, SessionConfig};
use ferry_protocol::storage::DiskRequest;
use ferry_protocol::{Envelope, MessageType};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

const MS: u64 = 1_000_000;

struct Side {
    node: Node,
    frames: VecDeque<Bytes>,
    syncs: Vec<u64>,
    acked: Vec<u64>,
}

fn side(name: &str, seed: u64) -> Side {
    // Pulls would also resend; keep them out of the way so only retransmission is measured.
    side_pulling_every(name, seed, 3_600_000 * MS)
}

fn side_pulling_every(name: &str, seed: u64, pull_interval_ns: u64) -> Side {
    let identity = Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut config = NodeConfig::new(SessionConfig::new(name, identity));
    config.pull_interval_ns = pull_interval_ns;
    // Seals would be pushed too; keep them out of the way (an hour) like the pulls.
    config.seal_delay_ns = 3_600_000 * MS;
    let node = Node::recover(config, &[], Box::new(ChaCha8Rng::seed_from_u64(seed + 1))).expect("empty log");
    Side { node, frames: VecDeque::new(), syncs: Vec::new(), acked: Vec::new() }
}

fn drain(side: &mut Side) {
    while let Some(output) = side.node.poll() {
        match output {
            Output::Send { frame, .. } => side.frames.push_back(frame),
            Output::Disk(DiskRequest::Sync { sync_id }) => side.syncs.push(sync_id),
            Output::Event(Event::Acked { entry }) => side.acked.push(entry.sequence),
            _ => {}
        }
    }
}

fn message_type(frame: &Bytes) -> MessageType {
    // One-byte length prefix for these small frames.
    let (_, prefix_bytes) = ferry_protocol::varint::decode(frame).expect("a length prefix");
    Envelope::decode(frame.slice(prefix_bytes..)).expect("valid envelope").header.message_type
}

fn complete_syncs(side: &mut Side, now_ns: u64) {
    for sync_id in std::mem::take(&mut side.syncs) {
        side.node.handle_synced(now_ns, sync_id);
        drain(side);
    }
}

/// Delivers every queued frame both ways until quiet, completing syncs as they come.
fn settle(left: &mut Side, right: &mut Side, now_ns: u64) {
    for _ in 0..100 {
        complete_syncs(left, now_ns);
        complete_syncs(right, now_ns);
        if left.frames.is_empty() && right.frames.is_empty() {
            return;
        }
        while let Some(frame) = left.frames.pop_front() {
            right.node.handle_datagram(now_ns, 0, frame);
            drain(right);
        }
        while let Some(frame) = right.frames.pop_front() {
            left.node.handle_datagram(now_ns, 1, frame);
            drain(left);
        }
    }
    panic!("the link never went quiet");
}

fn connected_pair() -> (Side, Side) {
    connect(side("a", 1), side("b", 2))
}

fn connect(mut a: Side, mut b: Side) -> (Side, Side) {
    drain(&mut a);
    drain(&mut b);
    a.node.link_up(0, 1, LinkKind::Datagram, Role::Initiator);
    b.node.link_up(0, 0, LinkKind::Datagram, Role::Responder);
    drain(&mut a);
    drain(&mut b);
    settle(&mut a, &mut b, 0);
    assert_eq!(a.node.connected_peers().count(), 1);
    (a, b)
}

#[test]
fn lost_push_is_retransmitted_with_backoff_until_acknowledged() {
    let (mut a, mut b) = connected_pair();
    a.node.put(10 * MS, Bytes::from_static(b"k"), Bytes::from_static(b"v")).expect("valid put");
    drain(&mut a);
    assert!(a.frames.is_empty(), "nothing leaves before the write is durable");
    complete_syncs(&mut a, 11 * MS);
    assert_eq!(a.acked, vec![1]);
    let push = a.frames.pop_front().expect("the durable entry is pushed");
    assert_eq!(message_type(&push), MessageType::WalPush);
    drop(push); // Lost.

    // First retransmission after the initial 200 ms, the next after 400 ms more.
    let deadline = a.node.poll_timeout().expect("a retransmission is armed");
    assert_eq!(deadline, 11 * MS + 200 * MS);
    a.node.handle_timeout(deadline);
    drain(&mut a);
    let again: Vec<MessageType> = a.frames.drain(..).map(|frame| message_type(&frame)).collect();
    assert_eq!(again, vec![MessageType::WalPush]);
    let second = a.node.poll_timeout().expect("still unacknowledged");
    assert_eq!(second, deadline + 400 * MS, "backoff doubled");
    a.node.handle_timeout(second);
    drain(&mut a);
    assert_eq!(a.node.stats().retransmits, 2);

    // This time it arrives; b acknowledges only after its own sync.
    let push = a.frames.pop_front().expect("pushed again");
    b.node.handle_datagram(second, 0, push);
    drain(&mut b);
    assert!(
        b.frames.iter().all(|frame| message_type(frame) != MessageType::WalAck),
        "no ack before the entry is durable at b"
    );
    complete_syncs(&mut b, second + MS);
    let ack = b.frames.pop_front().expect("ack after the sync");
    assert_eq!(message_type(&ack), MessageType::WalAck);
    a.node.handle_datagram(second + 2 * MS, 1, ack);
    drain(&mut a);
    assert_eq!(b.node.get(b"k").map(|value| &value[..]), Some(&b"v"[..]));
    // Acknowledged: no retransmission is armed any more; only the (hour-long) pull remains.
    let next = a.node.poll_timeout().expect("the pull timer");
    assert!(next >= 3_600_000 * MS, "next deadline {next} is a retransmission");
}

/// A partition lets the retransmission timer back off (200 ms, 400, 800, 1.6 s...). When it
/// heals, a pull from the peer proves the link carries messages again: if it comes too soon
/// after the last resend to resend again (that push may still be on its way), the backoff
/// starts over, so the next resend is one timeout after the last instead of 1.6 s later.
/// Found by `tests/scenarios/line-partition.yaml` at seed 146: with 10% loss, two resends
/// after the heal were lost and the third was due after the scenario's 2 s bound.
#[test]
fn a_pull_after_a_partition_starts_the_backoff_over() {
    let (mut a, mut b) = connect(side("a", 1), side_pulling_every("b", 2, 1_000 * MS));
    a.node.put(10 * MS, Bytes::from_static(b"k"), Bytes::from_static(b"v")).expect("valid put");
    drain(&mut a);
    complete_syncs(&mut a, 11 * MS);
    assert_eq!(
        a.frames.drain(..).map(|frame| message_type(&frame)).collect::<Vec<_>>(),
        [MessageType::WalPush]
    );
    // That push is lost, and so are the next three resends.
    for expected_ms in [211, 611, 1_411] {
        let deadline = a.node.poll_timeout().expect("a resend is armed");
        assert_eq!(deadline, expected_ms * MS);
        a.node.handle_timeout(deadline);
        drain(&mut a);
        assert_eq!(
            a.frames.drain(..).map(|frame| message_type(&frame)).collect::<Vec<_>>(),
            [MessageType::WalPush]
        );
    }
    assert_eq!(a.node.poll_timeout(), Some(3_011 * MS), "backed off to 1.6 s");

    // b's next periodic pull (it lacks the entry) reaches a 50 ms after the last resend.
    let pull = loop {
        let deadline = b.node.poll_timeout().expect("b pulls periodically");
        assert!(deadline <= 1_411 * MS, "no pull from b before the last resend");
        b.node.handle_timeout(deadline);
        drain(&mut b);
        if let Some(pull) = b.frames.drain(..).find(|frame| message_type(frame) == MessageType::OutboxPull) {
            break pull;
        }
    };
    a.node.handle_datagram(1_461 * MS, 1, pull);
    drain(&mut a);
    assert!(a.frames.is_empty(), "too soon to resend: the last push may still be on its way");
    assert_eq!(a.node.poll_timeout(), Some(1_611 * MS), "one timeout after the last resend");

    a.node.handle_timeout(1_611 * MS);
    drain(&mut a);
    settle(&mut a, &mut b, 1_615 * MS);
    assert_eq!(b.node.get(b"k").map(|value| &value[..]), Some(&b"v"[..]));
    assert_eq!(a.node.stats().retransmits, 4);
}

#[test]
fn duplicate_push_is_acknowledged_at_once() {
    let (mut a, mut b) = connected_pair();
    a.node.put(10 * MS, Bytes::from_static(b"k"), Bytes::from_static(b"v")).expect("valid put");
    drain(&mut a);
    complete_syncs(&mut a, 11 * MS);
    let push = a.frames.pop_front().expect("pushed");
    b.node.handle_datagram(12 * MS, 0, push.clone());
    drain(&mut b);
    complete_syncs(&mut b, 13 * MS);
    b.frames.clear();
    // The same push again (a duplicate on the network, or a retransmission).
    b.node.handle_datagram(14 * MS, 0, push);
    drain(&mut b);
    let types: Vec<MessageType> = b.frames.iter().map(message_type).collect();
    assert!(types.is_empty() || types == vec![MessageType::WalAck], "{types:?}");
}
