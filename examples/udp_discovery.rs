//! Two processes find each other over UDP with no address given: each runs a real node (the
//! code of `ferry node --discover`) that broadcasts its announce (see
//! `discovery_announce_json`) every second on one UDP port and dials the nodes it hears.
//! Once connected, a writes a key, b waits until it arrives, and both stop.
//!
//! Run, in two terminals, with the same free UDP port:
//!
//! ```sh
//! cargo run --example udp_discovery -- node-a 47474
//! cargo run --example udp_discovery -- node-b 47474
//! ```
//!
//! Announces go to 127.255.255.255:PORT, which reaches every process on this machine bound
//! to PORT; on a LAN `ferry node --discover` uses 255.255.255.255. The nodes log what they do
//! (`learned peer`, `peer connected`) on stderr; this example prints its steps on stdout.

use std::error::Error;
use std::time::Duration;

use ferry::node::{NodeArguments, spawn_node};

/// Longest wait for the other process to appear, or to finish.
const DEADLINE: Duration = Duration::from_secs(120);

fn main() -> Result<(), Box<dyn Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let (role, port) = match arguments.as_slice() {
        [role, port] if role == "node-a" || role == "node-b" => {
            let port: u16 = port.parse().map_err(|_| format!("PORT must be a UDP port, not {port:?}"))?;
            (role.as_str(), port)
        }
        _ => return Err("usage: udp_discovery node-a PORT | node-b PORT (the same PORT in both)".into()),
    };
    let (name, other) = if role == "node-a" { ("a", "b") } else { ("b", "a") };

    let data =
        std::env::temp_dir().join(format!("ferry-example-udp-discovery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut node_arguments = NodeArguments::new(name, "127.0.0.1:0");
    node_arguments.data = Some(data.clone());
    node_arguments.discover = true;
    node_arguments.discover_addr = Some(format!("127.255.255.255:{port}"));
    let node = spawn_node(node_arguments)?;
    println!(
        "{name}: listening on {} (TCP), announcing on UDP 127.255.255.255:{port} every second",
        node.listen_address()
    );

    println!("{name}: waiting to hear from {other}...");
    node.request_until("peers", DEADLINE, |answer| answer.split_whitespace().any(|peer| peer == other))?;
    // Of two nodes that hear each other, the lower name dials: one connection, not two.
    let dialer = name.min(other);
    println!("{name}: found {other} over UDP; {dialer} dialed and the Noise handshake completed");

    if name == "a" {
        let answer = node.request("put greeting hello-from-a").ok_or("node stopped")?;
        println!("{name}: put greeting hello-from-a -> {answer} (durable here; replicating to {other})");
        node.request_until("peers", DEADLINE, |answer| answer == "peers: (none)")?;
        println!("{name}: {other} has left; stopping");
    } else {
        node.request_until("get greeting", DEADLINE, |answer| answer != "(nil)")?;
        let value = node.request("get greeting").ok_or("node stopped")?;
        println!("{name}: received greeting = {value}; stopping");
    }
    node.shutdown()?;
    let _ = std::fs::remove_dir_all(&data);
    println!("{name}: done");
    Ok(())
}
