//! Four routers in a line, a - b - c - d, exchanging RouteAnnounce contents in memory until
//! every node knows a next hop for every other; then the link c - d goes down and the routes
//! through it are withdrawn. No sockets, no clocks: `now_ns` is a number we advance by hand.
//! See PROTOCOL.md 8.10.
//!
//! Run: `cargo run --example router_in_memory`

use ferry_protocol::NodeId;
use ferry_protocol::router::Router;

/// How long a neighbour's announcement counts.
const EXPIRY_NS: u64 = 10_000_000_000;

fn main() {
    let names = ["a", "b", "c", "d"];
    let ids: Vec<NodeId> = names.iter().map(|name| NodeId::from_name(name)).collect();
    // Link `i` joins node `i` and node `i + 1`; each router names a link by the index of the
    // node at its other end, which is all a real node's `LinkId` is.
    let mut routers: Vec<Router<usize>> = ids.iter().map(|id| Router::new(*id, EXPIRY_NS)).collect();
    let mut links: Vec<(usize, usize)> = vec![(0, 1), (1, 2), (2, 3)];
    let now_ns = 0;
    for &(left, right) in &links {
        routers[left].neighbour_up(now_ns, right, ids[right]);
        routers[right].neighbour_up(now_ns, left, ids[left]);
    }

    let rounds = exchange(&mut routers, &links, now_ns);
    println!("after {rounds} rounds of announcements:");
    print_tables(&routers, &names, &ids, now_ns);

    // The c - d link breaks: both ends forget the neighbour; c's next announcements tell b
    // that d is gone, and b tells a.
    links.retain(|link| *link != (2, 3));
    routers[2].neighbour_down(3);
    routers[3].neighbour_down(2);
    let rounds = exchange(&mut routers, &links, now_ns);
    println!("\nc - d down; after {rounds} more rounds:");
    print_tables(&routers, &names, &ids, now_ns);
    assert!(routers[0].next_hop(now_ns, ids[3]).is_none(), "d is unreachable from a");
}

/// Every node announces on every link, once per round, until no table changes. Returns the
/// number of rounds that changed something.
fn exchange(routers: &mut [Router<usize>], links: &[(usize, usize)], now_ns: u64) -> usize {
    let mut rounds = 0;
    loop {
        let mut changed = false;
        for &(left, right) in links {
            // What `left` says on its link to `right`, and the other way round; a route learnt
            // over a link is announced back on it as unreachable (poison reverse).
            let to_right = routers[left].announcement(now_ns, right);
            let to_left = routers[right].announcement(now_ns, left);
            changed |= routers[right].update(now_ns, left, &to_right);
            changed |= routers[left].update(now_ns, right, &to_left);
        }
        if !changed {
            return rounds;
        }
        rounds += 1;
    }
}

fn print_tables(routers: &[Router<usize>], names: &[&str], ids: &[NodeId], now_ns: u64) {
    let name_of = |id: &NodeId| ids.iter().position(|other| other == id).map_or("?", |index| names[index]);
    for (index, router) in routers.iter().enumerate() {
        // The table is in node-id order; print it in name order.
        let mut routes: Vec<(&str, String)> = router
            .table(now_ns)
            .iter()
            .map(|(target, hop)| {
                let hops = if hop.distance == 1 { "hop" } else { "hops" };
                (
                    name_of(target),
                    format!("{} via {} ({} {hops})", name_of(target), names[hop.link], hop.distance),
                )
            })
            .collect();
        routes.sort();
        let routes: Vec<String> = routes.into_iter().map(|(_, route)| route).collect();
        let routes = if routes.is_empty() { "no routes".to_owned() } else { routes.join(", ") };
        println!("  {}: {routes}", names[index]);
    }
}
