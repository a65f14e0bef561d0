//! Goal: a node that shuts down tells each peer with an authenticated Close (Shutdown), and
//! forgets its links. Method: two nodes on a hand-driven datagram link establish a session;
//! one shuts down, and its frames are delivered to the other, whose events are read.

use std::collections::VecDeque;

use bytes::Bytes;
use ferry_protocol::node::{Event, LinkKind, Node, NodeConfig, Output};
use ferry_protocol::session::{Identity, Role, SessionConfig};
use ferry_protocol::{Envelope, MessageType};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

/// Exchanges before a test gives up.
const STEPS_MAX: usize = 1_000;

struct Side {
    node: Node,
    frames: VecDeque<Bytes>,
    events: Vec<Event>,
}

fn side(name: &str, seed: u64) -> Side {
    let identity = Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut config = NodeConfig::new(SessionConfig::new(name, identity));
    config.routing = true;
    let node = Node::recover(config, &[], Box::new(ChaCha8Rng::seed_from_u64(seed + 1))).expect("empty log");
    let mut side = Side { node, frames: VecDeque::new(), events: Vec::new() };
    drain(&mut side);
    side
}

fn drain(side: &mut Side) {
    while let Some(output) = side.node.poll() {
        match output {
            Output::Send { frame, .. } => side.frames.push_back(frame),
            Output::Event(event) => side.events.push(event),
            _ => {}
        }
    }
}

/// Delivers frames both ways until quiet; a sits on link 1, b on link 0.
fn settle(a: &mut Side, b: &mut Side) {
    for _ in 0..STEPS_MAX {
        if a.frames.is_empty() && b.frames.is_empty() {
            return;
        }
        while let Some(frame) = a.frames.pop_front() {
            b.node.handle_datagram(0, 0, frame);
            drain(b);
        }
        while let Some(frame) = b.frames.pop_front() {
            a.node.handle_datagram(0, 1, frame);
            drain(a);
        }
    }
    panic!("the link never went quiet");
}

fn message_type(frame: &Bytes) -> MessageType {
    let (_, prefix_bytes) = ferry_protocol::varint::decode(frame).expect("a length prefix");
    Envelope::decode(frame.slice(prefix_bytes..)).expect("valid envelope").header.message_type
}

#[test]
fn shutdown_closes_every_session_with_shutdown() {
    let (mut a, mut b) = (side("a", 1), side("b", 2));
    // b dials: after the Close it will try a new handshake, which a must ignore.
    a.node.link_up(0, 1, LinkKind::Datagram, Role::Responder);
    b.node.link_up(0, 0, LinkKind::Datagram, Role::Initiator);
    drain(&mut a);
    drain(&mut b);
    settle(&mut a, &mut b);
    assert_eq!(a.node.connected_peers().collect::<Vec<_>>(), vec![(1, "b")]);
    assert_eq!(b.node.connected_peers().collect::<Vec<_>>(), vec![(0, "a")]);
    a.events.clear();
    b.events.clear();

    a.node.shutdown(1, "maintenance");
    drain(&mut a);
    let types: Vec<MessageType> = a.frames.iter().map(message_type).collect();
    assert_eq!(types, vec![MessageType::Close], "one Close, nothing after it");
    assert_eq!(
        a.events,
        vec![Event::PeerDisconnected {
            link: 1,
            reason: "this node closed the session (Shutdown): maintenance".to_owned()
        }]
    );
    assert_eq!(a.node.connected_peers().count(), 0);

    let close = a.frames.pop_front().expect("the Close");
    b.node.handle_datagram(2, 0, close);
    drain(&mut b);
    assert!(
        b.events.contains(&Event::PeerDisconnected {
            link: 0,
            reason: "peer closed the session (Shutdown): maintenance".to_owned()
        }),
        "{:?}",
        b.events
    );
    assert_eq!(b.node.connected_peers().count(), 0);

    // b, the Initiator, handshakes again after its retry wait; a forgot the link and answers
    // nothing.
    let mut hellos_count = 0;
    for _ in 0..STEPS_MAX {
        let Some(deadline_ns) = b.node.poll_timeout() else { break };
        b.node.handle_timeout(deadline_ns);
        drain(&mut b);
        while let Some(frame) = b.frames.pop_front() {
            hellos_count += usize::from(message_type(&frame) == MessageType::Hello);
            a.node.handle_datagram(deadline_ns, 1, frame);
            drain(&mut a);
        }
        if hellos_count > 0 {
            break;
        }
    }
    assert!(hellos_count > 0, "b tried a new handshake");
    assert!(a.frames.is_empty(), "a answers nothing after its shutdown");
}
