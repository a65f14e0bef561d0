//! Goal: a node never stops trying. The Initiator of a link without a session retries a
//! failed handshake with a bounded backoff for as long as the link is up, the Responder
//! follows a fresh Hello even while a stale attempt of its own is under way, and timers count
//! elapsed time, so a clock that steps back holds no deadline hostage (PROTOCOL.md 6.7 and
//! 8.6). Method: two nodes on a hand-driven datagram link; the test decides which frames
//! arrive and when, steps the clock itself, and reads the message type of every frame from
//! its envelope header.

use std::collections::VecDeque;

use bytes::Bytes;
use ferry_protocol::node::{
    HELLO_BURST, HELLO_REFILL_NS, LinkKind, Node, NodeConfig, Output, SESSION_INVALID_MIN,
    SESSION_VALID_PER_INVALID,
};
use ferry_protocol::session::{Identity, Role, SessionConfig};
use ferry_protocol::storage::DiskRequest;
use ferry_protocol::{Envelope, MessageType};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;

/// Steps of a hand-driven loop before a test gives up.
const STEPS_MAX: usize = 10_000;

struct Side {
    node: Node,
    frames: VecDeque<Bytes>,
    syncs: Vec<u64>,
}

fn side(name: &str, seed: u64) -> Side {
    let identity = Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut config = NodeConfig::new(SessionConfig::new(name, identity));
    // Pulls would also resend, and seals push too; keep them out of the way (an hour) so only
    // the timer under test runs.
    config.pull_interval_ns = 3_600 * SECOND;
    config.seal_delay_ns = 3_600 * SECOND;
    let node = Node::recover(config, &[], Box::new(ChaCha8Rng::seed_from_u64(seed + 1))).expect("empty log");
    let mut side = Side { node, frames: VecDeque::new(), syncs: Vec::new() };
    drain(&mut side);
    side
}

fn drain(side: &mut Side) {
    while let Some(output) = side.node.poll() {
        match output {
            Output::Send { frame, .. } => side.frames.push_back(frame),
            Output::Disk(DiskRequest::Sync { sync_id }) => side.syncs.push(sync_id),
            _ => {}
        }
    }
}

fn message_type(frame: &Bytes) -> MessageType {
    let (_, prefix_bytes) = ferry_protocol::varint::decode(frame).expect("a length prefix");
    Envelope::decode(frame.slice(prefix_bytes..)).expect("valid envelope").header.message_type
}

/// a is the link's Initiator, b its Responder; neither has sent anything yet except a's
/// first Hello, which waits in `a.frames`.
fn linked_pair(now_ns: u64) -> (Side, Side) {
    let (mut a, mut b) = (side("a", 1), side("b", 2));
    a.node.link_up(now_ns, 1, LinkKind::Datagram, Role::Initiator);
    b.node.link_up(now_ns, 0, LinkKind::Datagram, Role::Responder);
    drain(&mut a);
    drain(&mut b);
    (a, b)
}

/// Runs `side`'s timer until its clock reads `until_ns`, dropping everything it sends, and
/// returns when each Hello with new bytes (a new attempt) was first sent; `first` is the
/// Hello of the attempt already under way, whose repeats are not new.
fn run_dropping(side: &mut Side, until_ns: u64, first: &Bytes) -> Vec<(u64, Bytes)> {
    let mut attempts: Vec<(u64, Bytes)> = Vec::new();
    for _ in 0..STEPS_MAX {
        let Some(deadline) = side.node.poll_timeout() else { break };
        if deadline > until_ns {
            break;
        }
        side.node.handle_timeout(deadline);
        drain(side);
        for frame in side.frames.drain(..) {
            let new = frame != *first && attempts.iter().all(|(_, hello)| *hello != frame);
            if message_type(&frame) == MessageType::Hello && new {
                attempts.push((deadline, frame));
            }
        }
    }
    attempts
}

/// Delivers frames both ways at `now_ns` until quiet; the last exchange's frames are kept.
fn settle(a: &mut Side, b: &mut Side, now_ns: u64) {
    for _ in 0..STEPS_MAX {
        if a.frames.is_empty() && b.frames.is_empty() {
            return;
        }
        while let Some(frame) = a.frames.pop_front() {
            b.node.handle_datagram(now_ns, 0, frame);
            drain(b);
        }
        while let Some(frame) = b.frames.pop_front() {
            a.node.handle_datagram(now_ns, 1, frame);
            drain(a);
        }
    }
    panic!("the link never went quiet");
}

#[test]
fn failed_first_handshake_is_retried_with_bounded_backoff() {
    let (mut a, mut b) = linked_pair(0);
    let first = a.frames.pop_front().expect("the first Hello");
    // Nothing arrives for 60 s: every attempt times out after 5 s.
    let attempts = run_dropping(&mut a, 60 * SECOND, &first);
    let starts: Vec<u64> = attempts.iter().map(|(at, _)| *at).collect();
    // The first attempt's Hello was sent by link_up at 0; the retries follow.
    let mut previous_end = 5 * SECOND;
    let mut backoff = SECOND;
    for start in &starts {
        let wait = start - previous_end;
        assert!(wait >= backoff && wait <= backoff + backoff / 4, "waited {wait} ns, backoff {backoff} ns");
        previous_end = start + 5 * SECOND;
        backoff = (backoff * 2).min(8 * SECOND);
    }
    // With the longest jitter the fifth retry starts 5 s + (1.25 + 2.5 + 5 + 10 + 10) s of
    // waits + 4 attempts of 5 s = 53.75 s in; its wait is the bound, 8 s plus jitter.
    assert!(starts.len() >= 5, "retries at {starts:?}");
    assert!(a.node.poll_timeout().is_some(), "the Initiator keeps trying");
    assert_eq!(b.node.poll_timeout(), None, "the Responder never retries on its own");

    // The link heals: the next attempt's Hello arrives and the handshake completes.
    let retry_ns = a.node.poll_timeout().expect("armed");
    let (next, _) = run_dropping_until_hello(&mut a, retry_ns + 10 * SECOND);
    settle(&mut a, &mut b, next);
    assert_eq!(a.node.connected_peers().count(), 1);
    assert_eq!(b.node.connected_peers().count(), 1);
    // Connected: the backoff is back at its start and no retry is armed.
    let deadline = a.node.poll_timeout().expect("the pull timer");
    assert!(deadline >= next + 3_600 * SECOND, "a handshake timer is still armed at {deadline}");
}

/// Runs `side`'s timer until it sends a Hello and keeps that Hello in `side.frames`.
fn run_dropping_until_hello(side: &mut Side, until_ns: u64) -> (u64, Bytes) {
    for _ in 0..STEPS_MAX {
        let deadline = side.node.poll_timeout().expect("a timer is armed");
        assert!(deadline <= until_ns, "no Hello by {until_ns}");
        side.node.handle_timeout(deadline);
        drain(side);
        if let Some(hello) = side.frames.iter().find(|frame| message_type(frame) == MessageType::Hello) {
            let hello = hello.clone();
            side.frames.retain(|frame| *frame == hello);
            side.frames.truncate(1);
            return (deadline, hello);
        }
        side.frames.clear();
    }
    panic!("no Hello");
}

#[test]
fn fresh_hello_replaces_a_stale_responder_attempt() {
    let (mut a, mut b) = linked_pair(0);
    // b answers a's first Hello just before a's attempt times out, and every HelloAck is
    // lost: b is still waiting for a HelloFinish when a gives up at 5 s.
    let first = a.frames.pop_front().expect("the first Hello");
    let first_copy = first.clone();
    b.node.handle_datagram(4_900 * MS, 0, first);
    drain(&mut b);
    assert_eq!(
        b.frames.drain(..).map(|frame| message_type(&frame)).collect::<Vec<_>>(),
        [MessageType::HelloAck]
    );
    let attempts = run_dropping(&mut a, 5 * SECOND, &first_copy);
    assert!(attempts.is_empty(), "no new attempt before the first one failed");
    // a's retry (1 to 1.25 s after its failure) reaches b, whose stale attempt lasts to 9.9 s.
    let (at, _) = run_dropping_until_hello(&mut a, 6_250 * MS);
    assert!(at < 9_900 * MS);
    settle(&mut a, &mut b, at);
    assert_eq!(a.node.connected_peers().count(), 1);
    assert_eq!(b.node.connected_peers().count(), 1);
}

#[test]
fn timers_count_elapsed_time_when_the_clock_steps_back() {
    // Connect an hour into the node's clock, then lose a push.
    let start = 3_600 * SECOND;
    let (mut a, mut b) = linked_pair(start);
    settle(&mut a, &mut b, start);
    assert_eq!(a.node.connected_peers().count(), 1);
    a.node.put(start + 10 * MS, Bytes::from_static(b"k"), Bytes::from_static(b"v")).expect("valid put");
    drain(&mut a);
    for sync_id in std::mem::take(&mut a.syncs) {
        a.node.handle_synced(start + 11 * MS, sync_id);
        drain(&mut a);
    }
    let push = a.frames.pop_front().expect("the durable entry is pushed");
    assert_eq!(message_type(&push), MessageType::WalPush);
    assert_eq!(a.node.poll_timeout(), Some(start + 211 * MS), "retransmission after 200 ms");

    // The clock steps back by an hour, to 12 ms. The step is no elapsed time, so the
    // retransmission is still 200 ms away on the clock as it now reads; before steady time
    // it stayed at `start + 211 ms`, an hour away.
    a.node.handle_timeout(12 * MS);
    drain(&mut a);
    assert!(a.frames.is_empty(), "nothing is due yet");
    assert_eq!(a.node.poll_timeout(), Some(212 * MS));
    a.node.handle_timeout(211 * MS);
    drain(&mut a);
    assert!(a.frames.is_empty(), "not due before 200 ms have elapsed");
    a.node.handle_timeout(212 * MS);
    drain(&mut a);
    let again: Vec<MessageType> = a.frames.iter().map(message_type).collect();
    assert_eq!(again, vec![MessageType::WalPush]);
    assert_eq!(a.node.stats().retransmits, 1);
    // A write after the step is still stamped above the one before it.
    let second = a.node.put(213 * MS, Bytes::from_static(b"k"), Bytes::from_static(b"w")).expect("valid put");
    let first_stamp = a.node.entry(a.node.node_id(), 1).expect("held").timestamp;
    let second_stamp = a.node.entry(a.node.node_id(), second).expect("held").timestamp;
    assert!(second_stamp > first_stamp);
}

/// a's next envelope toward b, a Ping, and a copy of it whose tag is flipped.
fn ping_and_forgery(a: &mut Side, now_ns: u64) -> (Bytes, Bytes) {
    a.node.ping(now_ns, 1);
    drain(a);
    let frame = a.frames.pop_back().expect("a ping is sent");
    let mut forged = frame.to_vec();
    *forged.last_mut().expect("a frame has bytes") ^= 0x01;
    (frame, Bytes::from(forged))
}

#[test]
fn invalid_envelopes_past_the_bound_close_the_session_and_a_new_one_follows() {
    // Goal: a session is closed with a reason once it has seen more than
    // SESSION_INVALID_MIN envelopes that fail authentication (PROTOCOL.md 9), and the
    // link recovers: the Initiator handshakes again. Method: a and b establish a session on
    // a datagram link; b is handed one forged envelope (a's ping with its tag flipped) again
    // and again; the frames b sends are read from their headers.
    let (mut a, mut b) = linked_pair(0);
    settle(&mut a, &mut b, 0);
    assert_eq!(b.node.connected_peers().count(), 1, "the session is up");
    let (_, forged) = ping_and_forgery(&mut a, MS);
    for _ in 0..SESSION_INVALID_MIN {
        b.node.handle_datagram(MS, 0, forged.clone());
        drain(&mut b);
    }
    assert!(b.frames.is_empty(), "up to the bound, nothing is answered");
    assert_eq!(b.node.connected_peers().count(), 1, "up to the bound, the session stays");
    b.node.handle_datagram(MS, 0, forged.clone());
    drain(&mut b);
    let sent: Vec<MessageType> = b.frames.iter().map(message_type_any).collect();
    assert_eq!(sent, [MessageType::Close], "one more closes the session with a Close");
    assert_eq!(b.node.stats().sessions_closed_invalid, 1);
    assert_eq!(b.node.connected_peers().count(), 0);
    // The Close reaches a, whose next attempt after its backoff establishes a new session.
    settle(&mut a, &mut b, MS);
    assert_eq!(a.node.connected_peers().count(), 0, "a heard the Close");
    let mut now_ns = MS;
    for _ in 0..STEPS_MAX {
        if a.node.connected_peers().count() == 1 && b.node.connected_peers().count() == 1 {
            return;
        }
        now_ns = a.node.poll_timeout().expect("a retries").max(now_ns);
        a.node.handle_timeout(now_ns);
        drain(&mut a);
        settle(&mut a, &mut b, now_ns);
    }
    panic!("no new session after the close");
}

#[test]
fn occasional_corruption_never_closes_a_busy_session() {
    // Goal: the bound tolerates a link that damages some envelopes: one forged envelope
    // per SESSION_VALID_PER_INVALID valid ones, far past SESSION_INVALID_MIN in total,
    // never closes the session. Method: 40 rounds of 8 valid pings and one forgery.
    let (mut a, mut b) = linked_pair(0);
    settle(&mut a, &mut b, 0);
    for round in 0..40 {
        let now_ns = (round + 1) * MS;
        for _ in 0..SESSION_VALID_PER_INVALID {
            let (valid, _) = ping_and_forgery(&mut a, now_ns);
            b.node.handle_datagram(now_ns, 0, valid);
            drain(&mut b);
        }
        let (_, forged) = ping_and_forgery(&mut a, now_ns);
        b.node.handle_datagram(now_ns, 0, forged);
        drain(&mut b);
    }
    assert_eq!(b.node.stats().frames_rejected, 40, "every forgery was rejected");
    assert_eq!(b.node.stats().sessions_closed_invalid, 0);
    assert_eq!(b.node.connected_peers().count(), 1);
}

/// The type of any frame, whatever the length of its prefix.
fn message_type_any(frame: &Bytes) -> MessageType {
    let start = frame.iter().position(|byte| byte & 0x80 == 0).map_or(frame.len(), |index| index + 1);
    Envelope::decode(frame.slice(start..)).expect("valid envelope").header.message_type
}

#[test]
fn a_link_starts_a_bounded_burst_of_handshake_attempts() {
    // Goal: each new Hello costs the Responder a key generation and Diffie-Hellman, so a link
    // starts at most HELLO_BURST attempts at once and one more per HELLO_REFILL_NS; repeats
    // of the last Hello (a retransmitted attempt) cost nothing. Method: b is handed Hellos
    // of 20 fresh initiators on one link at one instant and answers only the first 8; a repeat
    // of the 8th is answered; a second later one more new Hello is.
    let mut b = side("b", 2);
    b.node.link_up(0, 0, LinkKind::Datagram, Role::Responder);
    drain(&mut b);
    let hello = |seed: u64| {
        let mut initiator = side("x", 100 + seed);
        initiator.node.link_up(0, 1, LinkKind::Datagram, Role::Initiator);
        drain(&mut initiator);
        initiator.frames.pop_front().expect("a Hello")
    };
    let hellos: Vec<Bytes> = (0..20).map(hello).collect();
    let mut answered = 0;
    for frame in &hellos {
        b.node.handle_datagram(MS, 0, frame.clone());
        drain(&mut b);
        answered += b.frames.drain(..).filter(|frame| message_type(frame) == MessageType::HelloAck).count();
    }
    assert_eq!(answered as u32, HELLO_BURST);
    assert_eq!(b.node.stats().frames_rejected, 20 - u64::from(HELLO_BURST));
    b.node.handle_datagram(MS, 0, hellos[7].clone());
    drain(&mut b);
    let repeats = b.frames.drain(..).filter(|frame| message_type(frame) == MessageType::HelloAck).count();
    assert_eq!(repeats, 1, "the repeat of the last attempt is answered");
    b.node.handle_datagram(MS + HELLO_REFILL_NS, 0, hellos[19].clone());
    drain(&mut b);
    let later = b.frames.drain(..).filter(|frame| message_type(frame) == MessageType::HelloAck).count();
    assert_eq!(later, 1, "a second later, one more attempt");
}
