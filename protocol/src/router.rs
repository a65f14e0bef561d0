//! Multi-hop routing: a distance-vector table built from neighbours' announcements, so a
//! directed message (a routed ping) reaches a node that is not directly connected.
//!
//! Each node announces, on every link, the distance at which it reaches every node it knows
//! (itself at 0). A node's route to a target is the neighbour with the smallest announced
//! distance plus one, ties broken by the lower neighbour id so every run picks the same
//! route. Loops are contained the classic way: split horizon with poison reverse (a route
//! learnt from a neighbour is announced back to it as unreachable), distances capped at
//! [`DISTANCE_UNREACHABLE`], and a neighbour's table expires when it stops announcing.
//! Sans-IO: the caller feeds announcements and link changes with `now_ns` and asks what to
//! send.

use std::collections::BTreeMap;

use crate::entry::NodeId;
use crate::message::{ROUTES_MAX, Route};

/// A distance meaning "unreachable" (as in RIP): bounds counting to infinity.
pub const DISTANCE_UNREACHABLE: u8 = 16;

/// Where to send a message for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop<L> {
    /// The link to send on.
    pub link: L,
    /// Hops to the target through it.
    pub distance: u8,
}

#[derive(Debug, Clone)]
struct Neighbour {
    node_id: NodeId,
    /// The neighbour's last announcement: target → distance from the neighbour.
    table: BTreeMap<NodeId, u8>,
    /// When the table stops counting, on the caller's clock.
    expires_at_ns: u64,
}

/// A distance-vector routing table over links named by `L`.
#[derive(Debug, Clone)]
pub struct Router<L: Ord + Copy> {
    own: NodeId,
    neighbours: BTreeMap<L, Neighbour>,
    /// How long a neighbour's announcement stays valid.
    expiry_ns: u64,
}

impl<L: Ord + Copy> Router<L> {
    /// A router for node `own`; announcements older than `expiry_ns` are forgotten.
    #[must_use]
    pub fn new(own: NodeId, expiry_ns: u64) -> Self {
        Self { own, neighbours: BTreeMap::new(), expiry_ns }
    }

    /// A session to `node_id` is up on `link`: it is a neighbour at distance 1.
    pub fn neighbour_up(&mut self, now_ns: u64, link: L, node_id: NodeId) {
        let mut table = BTreeMap::new();
        table.insert(node_id, 0);
        let expires_at_ns = now_ns.saturating_add(self.expiry_ns);
        self.neighbours.insert(link, Neighbour { node_id, table, expires_at_ns });
    }

    /// `link` is gone: every route through it goes with it.
    pub fn neighbour_down(&mut self, link: L) {
        self.neighbours.remove(&link);
    }

    /// Takes in a neighbour's announcement. Returns true when any best route changed.
    pub fn update(&mut self, now_ns: u64, link: L, routes: &[Route]) -> bool {
        let before = self.table(now_ns);
        let expiry_ns = self.expiry_ns;
        let Some(neighbour) = self.neighbours.get_mut(&link) else { return false };
        neighbour.table.clear();
        neighbour.table.insert(neighbour.node_id, 0);
        for route in routes.iter().take(ROUTES_MAX) {
            if route.target != neighbour.node_id {
                // Only the neighbour itself is at distance 0 (and never expires while the link
                // is up); anything else it claims is at least one hop beyond it.
                neighbour.table.insert(route.target, route.distance.clamp(1, DISTANCE_UNREACHABLE));
            }
        }
        neighbour.expires_at_ns = now_ns.saturating_add(expiry_ns);
        before != self.table(now_ns)
    }

    /// The best next hop toward `target`, if it is reachable.
    #[must_use]
    pub fn next_hop(&self, now_ns: u64, target: NodeId) -> Option<NextHop<L>> {
        let mut best: Option<(u8, NodeId, L)> = None;
        for (link, neighbour) in &self.neighbours {
            let distance = match neighbour.table.get(&target) {
                Some(0) => 1,
                Some(distance) if neighbour.expires_at_ns > now_ns => distance.saturating_add(1),
                _ => continue,
            };
            if distance >= DISTANCE_UNREACHABLE {
                continue;
            }
            let candidate = (distance, neighbour.node_id, *link);
            if best.is_none_or(|current| (candidate.0, candidate.1) < (current.0, current.1)) {
                best = Some(candidate);
            }
        }
        best.map(|(distance, _, link)| NextHop { link, distance })
    }

    /// Every reachable target with its next hop, in target order (the node itself excluded).
    #[must_use]
    pub fn table(&self, now_ns: u64) -> BTreeMap<NodeId, NextHop<L>> {
        let mut targets: Vec<NodeId> =
            self.neighbours.values().flat_map(|neighbour| neighbour.table.keys().copied()).collect();
        targets.sort_unstable();
        targets.dedup();
        targets
            .into_iter()
            .filter(|target| *target != self.own)
            .filter_map(|target| self.next_hop(now_ns, target).map(|hop| (target, hop)))
            .collect()
    }

    /// The announcement for `link`: ourselves at 0, every route at its distance, and routes
    /// that go through `link` itself as unreachable (poison reverse). At most
    /// [`ROUTES_MAX`] routes, ascending by target.
    #[must_use]
    pub fn announcement(&self, now_ns: u64, link: L) -> Vec<Route> {
        let mut routes = vec![Route { target: self.own, distance: 0 }];
        for (target, hop) in self.table(now_ns) {
            let distance = if hop.link == link { DISTANCE_UNREACHABLE } else { hop.distance };
            routes.push(Route { target, distance });
        }
        routes.sort_unstable_by_key(|route| route.target);
        routes.truncate(ROUTES_MAX);
        routes
    }

    /// The links with neighbours, in order.
    pub fn links(&self) -> impl Iterator<Item = L> + '_ {
        self.neighbours.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Runs announcement rounds between routers wired by `edges` (link id = peer index).
    fn settle(routers: &mut [Router<usize>], edges: &[(usize, usize)], now_ns: u64) {
        for _ in 0..routers.len() + 2 {
            for &(left, right) in edges {
                for (from, to) in [(left, right), (right, left)] {
                    if routers[to].links().any(|link| link == from) {
                        let routes = routers[from].announcement(now_ns, to);
                        routers[to].update(now_ns, from, &routes);
                    }
                }
            }
        }
    }

    fn line(count: usize) -> (Vec<Router<usize>>, Vec<(usize, usize)>) {
        let mut routers: Vec<Router<usize>> =
            (0..count).map(|index| Router::new(NodeId(index as u64), 10 * S)).collect();
        let edges: Vec<(usize, usize)> = (1..count).map(|index| (index - 1, index)).collect();
        for &(left, right) in &edges {
            routers[left].neighbour_up(0, right, NodeId(right as u64));
            routers[right].neighbour_up(0, left, NodeId(left as u64));
        }
        (routers, edges)
    }

    #[test]
    fn a_line_learns_every_distance() {
        let (mut routers, edges) = line(5);
        settle(&mut routers, &edges, 0);
        assert_eq!(routers[0].next_hop(0, NodeId(4)), Some(NextHop { link: 1, distance: 4 }));
        assert_eq!(routers[4].next_hop(0, NodeId(0)), Some(NextHop { link: 3, distance: 4 }));
        assert_eq!(routers[2].next_hop(0, NodeId(2)), None, "no route to oneself");
    }

    #[test]
    fn a_broken_link_does_not_count_to_infinity_forever() {
        let (mut routers, mut edges) = line(4);
        settle(&mut routers, &edges, 0);
        // Cut 2-3: node 3 becomes unreachable; poison reverse keeps 1 and 2 from bouncing a
        // stale route between them, and the cap ends any count.
        routers[2].neighbour_down(3);
        routers[3].neighbour_down(2);
        edges.retain(|edge| *edge != (2, 3));
        settle(&mut routers, &edges, 0);
        assert_eq!(routers[0].next_hop(0, NodeId(3)), None);
        assert_eq!(routers[1].next_hop(0, NodeId(3)), None);
        assert_eq!(routers[2].next_hop(0, NodeId(3)), None);
    }

    #[test]
    fn stale_tables_expire() {
        let (mut routers, edges) = line(3);
        settle(&mut routers, &edges, 0);
        assert!(routers[0].next_hop(0, NodeId(2)).is_some());
        // Nothing heard for longer than the expiry: only direct neighbours remain.
        assert_eq!(routers[0].next_hop(11 * S, NodeId(2)), None);
        assert_eq!(routers[0].next_hop(11 * S, NodeId(1)), Some(NextHop { link: 1, distance: 1 }));
    }

    #[test]
    fn ties_prefer_the_lower_neighbour_id() {
        // A square 0-1-3 and 0-2-3: node 0 reaches 3 through 1 (id 1 < 2).
        let mut routers: Vec<Router<usize>> =
            (0..4).map(|index| Router::new(NodeId(index as u64), 10 * S)).collect();
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3)];
        for &(left, right) in &edges {
            routers[left].neighbour_up(0, right, NodeId(right as u64));
            routers[right].neighbour_up(0, left, NodeId(left as u64));
        }
        settle(&mut routers, &edges, 0);
        assert_eq!(routers[0].next_hop(0, NodeId(3)), Some(NextHop { link: 1, distance: 2 }));
    }
}
