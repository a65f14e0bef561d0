//! The node's use of the [`Router`]: announcing routes to neighbours, forwarding routed
//! messages hop by hop, and answering routed pings. Active only with `NodeConfig::routing`.

use std::collections::BTreeMap;

use super::{Audit, Event, LinkId, Node, NodeError, Output};
use crate::entry::NodeId;
use crate::message::{Message, Route, RoutedBody};
use crate::router::{DISTANCE_UNREACHABLE, Router};

/// Routed pings awaiting an answer, at most; the oldest is forgotten first.
pub const ROUTE_PINGS_MAX: usize = 64;

pub(super) struct Routing {
    pub(super) router: Router<LinkId>,
    interval_ns: u64,
    next_announce_ns: Option<u64>,
    /// token → (target, local send time).
    pings: BTreeMap<u64, (NodeId, u64)>,
}

impl Routing {
    pub(super) fn new(own: NodeId, interval_ns: u64) -> Self {
        // A neighbour that missed three announcements is presumed gone.
        Self {
            router: Router::new(own, interval_ns.saturating_mul(3)),
            interval_ns,
            next_announce_ns: None,
            pings: BTreeMap::new(),
        }
    }

    pub(super) fn deadline_ns(&self) -> Option<u64> {
        self.next_announce_ns
    }
}

impl Node {
    pub(super) fn routing_neighbour_up(&mut self, now_ns: u64, link: LinkId, node_id: NodeId) {
        if !self.config.routing {
            return;
        }
        self.routing.router.neighbour_up(now_ns, link, node_id);
        self.announce_routes(now_ns);
    }

    pub(super) fn routing_neighbour_down(&mut self, now_ns: u64, link: LinkId) {
        if !self.config.routing {
            return;
        }
        self.routing.router.neighbour_down(link);
        self.announce_routes(now_ns);
    }

    /// Sends every neighbour its announcement and re-arms the periodic timer.
    pub(super) fn announce_routes(&mut self, now_ns: u64) {
        let links: Vec<LinkId> = self.routing.router.links().collect();
        for link in links {
            let routes = self.routing.router.announcement(now_ns, link);
            self.send_message(link, &Message::RouteAnnounce { routes });
        }
        self.routing.next_announce_ns = Some(now_ns + self.routing.interval_ns);
    }

    pub(super) fn handle_announce(&mut self, now_ns: u64, link: LinkId, routes: &[Route]) {
        if !self.config.routing {
            return;
        }
        if self.routing.router.update(now_ns, link, routes) {
            // A triggered update spreads the change without waiting for the next period.
            self.announce_routes(now_ns);
        }
    }

    pub(super) fn handle_routed(
        &mut self,
        now_ns: u64,
        source: NodeId,
        target: NodeId,
        hops_left: u8,
        body: RoutedBody,
    ) {
        if !self.config.routing {
            return;
        }
        if target != self.node_id() {
            if hops_left == 0 {
                return;
            }
            let hops_left_sent = hops_left - 1;
            let message = Message::Routed { source, target, hops_left: hops_left_sent, body };
            if let Some(hop) = self.routing.router.next_hop(now_ns, target) {
                let hops_left_received = hops_left;
                self.audit(Audit::RoutedRelayed { source, target, hops_left_received, hops_left_sent });
                self.send_message(hop.link, &message);
            }
            return;
        }
        match body {
            RoutedBody::Ping { token } => {
                let _ = self.send_routed(now_ns, source, RoutedBody::Pong { token });
            }
            RoutedBody::Pong { token } => {
                if let Some((expected, sent_ns)) = self.routing.pings.remove(&token)
                    && expected == source
                {
                    let round_trip_ns = now_ns.saturating_sub(sent_ns);
                    self.outputs
                        .push_back(Output::Event(Event::RoutedPong { target: source, round_trip_ns }));
                }
            }
        }
    }

    fn send_routed(&mut self, now_ns: u64, target: NodeId, body: RoutedBody) -> Result<(), NodeError> {
        let hop = self.routing.router.next_hop(now_ns, target).ok_or(NodeError::NoRoute { target })?;
        let message =
            Message::Routed { source: self.node_id(), target, hops_left: DISTANCE_UNREACHABLE, body };
        self.send_message(hop.link, &message);
        Ok(())
    }

    /// Sends a ping to `target` over the routing table; the answer arrives as
    /// `Event::RoutedPong`. Returns the hop count of the route used.
    ///
    /// # Errors
    /// [`NodeError::RoutingDisabled`] without `NodeConfig::routing`, [`NodeError::NoRoute`]
    /// when no neighbour announces a route to `target`.
    pub fn route_ping(&mut self, now_ns: u64, target: NodeId) -> Result<u8, NodeError> {
        let now_ns = self.steady.advance(now_ns);
        if !self.config.routing {
            return Err(NodeError::RoutingDisabled);
        }
        let hop = self.routing.router.next_hop(now_ns, target).ok_or(NodeError::NoRoute { target })?;
        let token = self.rng.next_u64();
        if self.routing.pings.len() >= ROUTE_PINGS_MAX {
            let oldest =
                self.routing.pings.iter().min_by_key(|(_, (_, sent_ns))| *sent_ns).map(|(token, _)| *token);
            if let Some(token) = oldest {
                self.routing.pings.remove(&token);
            }
        }
        self.routing.pings.insert(token, (target, now_ns));
        self.send_routed(now_ns, target, RoutedBody::Ping { token })?;
        Ok(hop.distance)
    }

    /// Reachable nodes with their distance in hops (empty without routing).
    #[must_use]
    pub fn routes(&self, now_ns: u64) -> Vec<(NodeId, u8)> {
        self.routing
            .router
            .table(self.steady.peek(now_ns))
            .into_iter()
            .map(|(target, hop)| (target, hop.distance))
            .collect()
    }
}
