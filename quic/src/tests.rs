//! Two endpoints over an in-memory network with a virtual clock.

use super::*;

const A: &str = "127.0.0.1:7001";
const B: &str = "127.0.0.1:7002";

struct Pair {
    a: QuicEndpoint,
    b: QuicEndpoint,
    now_ns: u64,
    /// Datagrams b would have received are dropped while set.
    b_silent: bool,
    /// The address b sees a's datagrams come from (a NAT rebinding or a new network moves it).
    a_from: SocketAddr,
    /// Where b's datagrams went, in order.
    b_destinations: Vec<SocketAddr>,
    a_events: Vec<QuicEvent>,
    b_events: Vec<QuicEvent>,
}

fn address(text: &str) -> SocketAddr {
    text.parse().expect("an address")
}

impl Pair {
    fn new() -> Self {
        let epoch = Instant::now();
        Self {
            a: QuicEndpoint::new(epoch, true, b"a").expect("endpoint a"),
            b: QuicEndpoint::new(epoch, true, b"b").expect("endpoint b"),
            now_ns: 0,
            b_silent: false,
            a_from: address(A),
            b_destinations: Vec::new(),
            a_events: Vec::new(),
            b_events: Vec::new(),
        }
    }

    /// Delivers datagrams (1 ms each way) and runs timers until nothing moves or `until_ns`.
    fn run_until(&mut self, until_ns: u64) {
        while self.now_ns <= until_ns {
            let mut moved = false;
            while let Some(datagram) = self.a.poll_transmit(self.now_ns) {
                moved = true;
                assert_eq!(datagram.destination, address(B));
                assert!(datagram.bytes.len() <= DATAGRAM_BYTES_MAX);
                if !self.b_silent {
                    self.b.handle_datagram(self.now_ns, self.a_from, &datagram.bytes);
                }
            }
            while let Some(datagram) = self.b.poll_transmit(self.now_ns) {
                moved = true;
                self.b_destinations.push(datagram.destination);
                self.a.handle_datagram(self.now_ns, address(B), &datagram.bytes);
            }
            self.a_events.extend(std::iter::from_fn(|| self.a.poll_event()));
            self.b_events.extend(std::iter::from_fn(|| self.b.poll_event()));
            if moved {
                self.now_ns += 1_000_000;
                continue;
            }
            let next = [self.a.poll_timeout(), self.b.poll_timeout()].into_iter().flatten().min();
            match next {
                Some(deadline) if deadline <= until_ns => {
                    self.now_ns = self.now_ns.max(deadline);
                    self.a.handle_timeout(self.now_ns);
                    self.b.handle_timeout(self.now_ns);
                }
                _ => return,
            }
        }
    }
}

fn received(events: &[QuicEvent]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|event| match event {
            QuicEvent::Received { bytes, .. } => bytes.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn closed(events: &[QuicEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            QuicEvent::Closed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_megabyte_each_way_arrives_whole_and_in_order() {
    let mut pair = Pair::new();
    let link = pair.a.connect(0, address(B)).expect("dial");
    let outbound: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    for chunk in outbound.chunks(10_000) {
        pair.a.send(link, chunk).expect("queued");
    }
    pair.run_until(5_000_000_000);
    assert!(pair.a_events.contains(&QuicEvent::Connected { link }));
    let accepted = pair.b_events.iter().find_map(|event| match event {
        QuicEvent::Accepted { link, remote } => Some((*link, *remote)),
        _ => None,
    });
    let (b_link, remote) = accepted.expect("b accepted the dial");
    assert_eq!(remote, address(A));
    assert_eq!(received(&pair.b_events), outbound);
    let inbound: Vec<u8> = outbound.iter().rev().copied().collect();
    pair.b.send(b_link, &inbound).expect("queued");
    pair.run_until(10_000_000_000);
    assert_eq!(received(&pair.a_events), inbound);
    assert!(closed(&pair.a_events).is_empty() && closed(&pair.b_events).is_empty());
}

/// Goal: a connection survives its dialer's address changing (a laptop moving to another
/// network, a NAT rebinding): the acceptor validates the new path and answers there, the
/// stream goes on in order both ways, and nothing closes. Method: after a first exchange, a's
/// datagrams reach b from another address; b must then send only there.
#[test]
fn a_connection_follows_its_dialer_to_a_new_address() {
    let mut pair = Pair::new();
    let link = pair.a.connect(0, address(B)).expect("dial");
    pair.a.send(link, b"before").expect("queued");
    pair.run_until(1_000_000_000);
    let b_link = pair
        .b_events
        .iter()
        .find_map(|event| match event {
            QuicEvent::Accepted { link, .. } => Some(*link),
            _ => None,
        })
        .expect("b accepted the dial");
    pair.a_from = address("10.9.8.7:40000");
    let sent_before = pair.b_destinations.len();
    pair.a.send(link, b" after").expect("queued");
    pair.run_until(2_000_000_000);
    pair.b.send(b_link, b"answer").expect("queued");
    pair.run_until(3_000_000_000);
    assert_eq!(received(&pair.b_events), b"before after");
    assert_eq!(received(&pair.a_events), b"answer");
    let after = &pair.b_destinations[sent_before..];
    assert!(!after.is_empty(), "b sent nothing after the move");
    assert_eq!(after.last(), Some(&address("10.9.8.7:40000")), "b answers at the new address: {after:?}");
    assert!(
        after.iter().filter(|to| **to == address(A)).count() <= 1,
        "b kept sending to the old address: {after:?}"
    );
    assert!(closed(&pair.a_events).is_empty() && closed(&pair.b_events).is_empty());
}

#[test]
fn a_close_delivers_what_was_queued_then_ends_both_sides() {
    let mut pair = Pair::new();
    let link = pair.a.connect(0, address(B)).expect("dial");
    pair.a.send(link, b"hello").expect("queued");
    pair.run_until(1_000_000_000);
    pair.a.send(link, b" and goodbye").expect("queued");
    pair.a.close(pair.now_ns, link);
    assert_eq!(pair.a.send(link, b"too late"), Err(SendError::Closed));
    pair.run_until(pair.now_ns + 500_000_000);
    assert_eq!(received(&pair.b_events), b"hello and goodbye");
    assert_eq!(closed(&pair.a_events), ["closed by this node"]);
    assert_eq!(closed(&pair.b_events), ["connection closed by peer"]);
    // Both sides forget the connection once QUIC's draining period ends.
    pair.run_until(pair.now_ns + 5 * IDLE_TIMEOUT.as_nanos() as u64);
    assert_eq!((pair.a.links_count(), pair.b.links_count()), (0, 0));
}

#[test]
fn a_dial_nobody_answers_fails_after_the_idle_timeout() {
    let mut pair = Pair::new();
    pair.b_silent = true;
    let link = pair.a.connect(0, address(B)).expect("dial");
    pair.run_until(60_000_000_000);
    assert_eq!(
        pair.a_events,
        [QuicEvent::Closed {
            link,
            reason: "no answer over QUIC (is the peer a TCP node, or gone?)".to_owned()
        }]
    );
    let idle_ns = IDLE_TIMEOUT.as_nanos() as u64;
    assert!(
        (idle_ns..idle_ns + 1_000_000_000).contains(&pair.now_ns),
        "failed at {} ns, the idle timeout is {idle_ns} ns",
        pair.now_ns
    );
}

#[test]
fn a_peer_that_stops_reading_fills_a_bounded_queue() {
    let mut pair = Pair::new();
    let link = pair.a.connect(0, address(B)).expect("dial");
    let chunk = vec![7u8; 64 * 1024];
    let mut sent = 0;
    let refused = loop {
        match pair.a.send(link, &chunk) {
            Ok(()) => sent += chunk.len(),
            Err(error) => break error,
        }
    };
    assert_eq!(refused, SendError::QueueFull);
    assert!(sent <= SEND_QUEUE_BYTES_MAX && sent + chunk.len() > SEND_QUEUE_BYTES_MAX);
}

#[test]
fn an_endpoint_that_does_not_accept_refuses_dials() {
    let epoch = Instant::now();
    let mut pair = Pair::new();
    pair.b = QuicEndpoint::new(epoch, false, b"b").expect("dial-only endpoint");
    let link = pair.a.connect(0, address(B)).expect("dial");
    pair.run_until(30_000_000_000);
    let reasons = closed(&pair.a_events);
    assert_eq!(reasons.len(), 1, "{:?}", pair.a_events);
    assert!(!pair.a_events.contains(&QuicEvent::Connected { link }));
    assert!(pair.b_events.is_empty());
}

/// Every datagram both seeded endpoints send in a short exchange, in order.
fn seeded_transcript(seed_a: u8, seed_b: u8) -> Vec<Vec<u8>> {
    let epoch = Instant::now();
    let mut a = QuicEndpoint::seeded(epoch, true, [seed_a; 32], b"a").expect("endpoint a");
    let mut b = QuicEndpoint::seeded(epoch, true, [seed_b; 32], b"b").expect("endpoint b");
    let mut transcript = Vec::new();
    let link = a.connect(0, address(B)).expect("dial");
    a.send(link, b"ferry frames").expect("queued");
    let mut now_ns = 0;
    let mut received = Vec::new();
    for _ in 0..50 {
        now_ns += 1_000_000;
        while let Some(datagram) = a.poll_transmit(now_ns) {
            b.handle_datagram(now_ns, address(A), &datagram.bytes);
            transcript.push(datagram.bytes);
        }
        while let Some(datagram) = b.poll_transmit(now_ns) {
            a.handle_datagram(now_ns, address(B), &datagram.bytes);
            transcript.push(datagram.bytes);
        }
        received.extend(received_bytes(&mut b));
        a.handle_timeout(now_ns);
        b.handle_timeout(now_ns);
    }
    assert_eq!(received, b"ferry frames");
    transcript
}

fn received_bytes(endpoint: &mut QuicEndpoint) -> Vec<u8> {
    let events: Vec<QuicEvent> = std::iter::from_fn(|| endpoint.poll_event()).collect();
    received(&events)
}

#[test]
fn seeded_endpoints_replay_to_the_byte() {
    let first = seeded_transcript(1, 2);
    assert!(first.len() >= 4, "a handshake and data: {} datagrams", first.len());
    assert_eq!(seeded_transcript(1, 2), first, "the same seeds send the same bytes");
    assert_ne!(seeded_transcript(1, 3), first, "another seed sends other bytes");
}

#[test]
fn a_restarted_peer_resets_its_old_connections_at_once() {
    // b restarts: a new endpoint at the same address with the same lasting secret. a's next
    // packet on the old connection draws a stateless reset, and a learns the connection is
    // gone long before the idle timeout.
    let mut pair = Pair::new();
    let link = pair.a.connect(0, address(B)).expect("dial");
    pair.a.send(link, b"before").expect("queued");
    pair.run_until(1_000_000_000);
    assert_eq!(received(&pair.b_events), b"before");
    let restarted_at = pair.now_ns;
    pair.b = QuicEndpoint::new(Instant::now(), true, b"b").expect("b again");
    pair.a.send(link, b"after the restart").expect("queued");
    pair.run_until(restarted_at + IDLE_TIMEOUT.as_nanos() as u64 / 2);
    let reasons = closed(&pair.a_events);
    assert_eq!(reasons.len(), 1, "{:?}", pair.a_events);
    assert!(reasons[0].contains("reset"), "{reasons:?}");
    assert!(pair.now_ns < restarted_at + 1_000_000_000, "closed at {} ns", pair.now_ns - restarted_at);
}
