//! QUIC inside the simulator: each node runs a real QUIC stack (ferry-quic's seeded endpoint
//! on quinn-proto and rustls) over the simulated datagram links, and the protocol's stream
//! links ride on its connections, as on a real node with `--transport quic`.
//!
//! Every QUIC packet is one simulated datagram, so loss, duplication, reordering, partitions
//! and crashes apply to packets, and the trace records each one. The endpoint's randomness
//! comes from the node's seeded stream and its time from the node's steady clock: a seed
//! replays every packet byte for byte. quinn-proto counts time in `Instant`s; the endpoint
//! takes one `Instant` as its origin and adds virtual nanoseconds to it, so the value of the
//! origin never reaches the run.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use ferry_quic::{QuicEndpoint, QuicError, QuicEvent, QuicLink};

/// The UDP port every simulated node's endpoint uses.
const PORT: u16 = 4433;

/// What the node's protocol links must learn from its QUIC connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkChange {
    /// A peer dialed this node and completed QUIC's handshake: a responder link is up.
    Accepted { peer: u32 },
    /// This node's dial completed QUIC's handshake: an initiator link is up.
    Connected { peer: u32 },
    /// Bytes of the peer's stream.
    Received { peer: u32, bytes: Vec<u8> },
    /// The peer's connection ended; `up` when its link was (a dial that never completed
    /// QUIC's handshake never brought one up).
    Closed { peer: u32, up: bool },
}

/// One node's QUIC endpoint and which connection serves which peer.
#[derive(Debug)]
pub(crate) struct QuicLinks {
    endpoint: QuicEndpoint,
    by_peer: BTreeMap<u32, QuicLink>,
    peers: BTreeMap<QuicLink, u32>,
    /// Changes decided but not yet handed out.
    pending: VecDeque<LinkChange>,
    /// Peers whose connection completed QUIC's handshake: their links are up.
    up: BTreeSet<u32>,
}

/// The simulated address of node `index`: 10.x.y.z, port 4433.
pub(crate) fn address(index: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0x0a00_0000 | (index & 0x00ff_ffff)), PORT))
}

/// The node whose simulated address `address` is.
fn index(address: SocketAddr) -> Option<u32> {
    match address {
        SocketAddr::V4(v4) if v4.port() == PORT && v4.ip().octets()[0] == 10 => {
            Some(u32::from(*v4.ip()) & 0x00ff_ffff)
        }
        _ => None,
    }
}

impl QuicLinks {
    /// An endpoint whose every random draw comes from `seed`, its stateless-reset keys from
    /// the node's lasting `identity` (so a restarted node resets its old connections).
    pub(crate) fn new(seed: [u8; 32], identity: &[u8]) -> Result<Self, QuicError> {
        // The origin of the endpoint's `Instant`s only: nothing in the run depends on its value.
        let origin = Instant::now();
        Ok(Self {
            endpoint: QuicEndpoint::seeded(origin, true, seed, identity)?,
            by_peer: BTreeMap::new(),
            peers: BTreeMap::new(),
            pending: VecDeque::new(),
            up: BTreeSet::new(),
        })
    }

    /// Dials `peer`; a connection it had is closed first. Returns the change to report for
    /// the old connection, if there was one.
    pub(crate) fn dial(&mut self, now_ns: u64, peer: u32) -> Result<Option<LinkChange>, QuicError> {
        let replaced = self.forget(now_ns, peer);
        let link = self.endpoint.connect(now_ns, address(peer))?;
        self.by_peer.insert(peer, link);
        self.peers.insert(link, peer);
        Ok(replaced)
    }

    /// Closes and forgets `peer`'s connection; returns `Closed` if there was one.
    fn forget(&mut self, now_ns: u64, peer: u32) -> Option<LinkChange> {
        let link = self.by_peer.remove(&peer)?;
        self.peers.remove(&link);
        self.endpoint.close(now_ns, link);
        Some(LinkChange::Closed { peer, up: self.up.remove(&peer) })
    }

    /// Closes `peer`'s connection after what is queued on it.
    pub(crate) fn close(&mut self, now_ns: u64, peer: u32) {
        if let Some(link) = self.by_peer.get(&peer) {
            self.endpoint.close(now_ns, *link);
        }
    }

    /// Queues `frame` on `peer`'s connection; without one (not yet accepted, or gone) it is
    /// dropped, as a frame sent on a broken TCP connection would be.
    pub(crate) fn send(&mut self, peer: u32, frame: &[u8]) {
        if let Some(link) = self.by_peer.get(&peer) {
            // Refused only by a closing link or a full queue; QUIC's close reports either.
            let _ = self.endpoint.send(*link, frame);
        }
    }

    pub(crate) fn handle_datagram(&mut self, now_ns: u64, from: u32, bytes: &[u8]) {
        self.endpoint.handle_datagram(now_ns, address(from), bytes);
    }

    pub(crate) fn deadline(&mut self) -> Option<u64> {
        self.endpoint.poll_timeout()
    }

    pub(crate) fn handle_timeout(&mut self, now_ns: u64) {
        if self.endpoint.poll_timeout().is_some_and(|deadline| deadline <= now_ns) {
            self.endpoint.handle_timeout(now_ns);
        }
    }

    /// The next packet to send and the node it goes to.
    pub(crate) fn transmit(&mut self, now_ns: u64) -> Option<(u32, Vec<u8>)> {
        loop {
            let datagram = self.endpoint.poll_transmit(now_ns)?;
            // Only simulated addresses ever reach the endpoint.
            if let Some(peer) = index(datagram.destination) {
                return Some((peer, datagram.bytes));
            }
        }
    }

    /// The next change to the node's links.
    pub(crate) fn change(&mut self, now_ns: u64) -> Option<LinkChange> {
        if let Some(change) = self.pending.pop_front() {
            return Some(change);
        }
        loop {
            let change = match self.endpoint.poll_event()? {
                QuicEvent::Accepted { link, remote } => {
                    let Some(peer) = index(remote) else {
                        self.endpoint.close(now_ns, link);
                        continue;
                    };
                    // A peer that dials again (it restarted) replaces its old connection:
                    // the old link goes down before the new one comes up.
                    let replaced = self.forget(now_ns, peer);
                    self.by_peer.insert(peer, link);
                    self.peers.insert(link, peer);
                    self.up.insert(peer);
                    match replaced {
                        Some(closed) => {
                            self.pending.push_back(LinkChange::Accepted { peer });
                            closed
                        }
                        None => LinkChange::Accepted { peer },
                    }
                }
                QuicEvent::Connected { link } => match self.peers.get(&link) {
                    Some(&peer) => {
                        self.up.insert(peer);
                        LinkChange::Connected { peer }
                    }
                    None => continue,
                },
                QuicEvent::Received { link, bytes } => match self.peers.get(&link) {
                    Some(&peer) => LinkChange::Received { peer, bytes },
                    None => continue,
                },
                QuicEvent::Closed { link, .. } => match self.peers.remove(&link) {
                    Some(peer) => {
                        self.by_peer.remove(&peer);
                        LinkChange::Closed { peer, up: self.up.remove(&peer) }
                    }
                    // A connection this node already replaced or forgot.
                    None => continue,
                },
            };
            return Some(change);
        }
    }
}
