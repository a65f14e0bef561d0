//! The UDP discovery announce: the JSON document a node started with `ferry node --discover`
//! broadcasts every second, and how a receiver checks one before it dials anybody. Built
//! with the node's own types (`ferry::node::discovery`); the README's "Discovery and
//! bootstrap" describes the mechanism, `udp_discovery` runs it between two processes.
//!
//! Run: `cargo run --example discovery_announce_json`

use std::net::SocketAddr;

use ferry::node::Transport;
use ferry::node::discovery::{ANNOUNCE_BYTES_MAX, Announce, decode};
use ferry::text;
use ferry_protocol::session::Identity;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

fn main() {
    // A node's identity is its Noise static key pair; a fixed seed keeps this output fixed.
    let identity = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1));
    // `--listen 0.0.0.0:7001`: "every interface", so receivers dial the address the
    // announce came from.
    let listen: SocketAddr = "0.0.0.0:7001".parse().expect("a valid address");
    let announce = Announce::new("a", listen, Transport::Tcp, &identity.public);

    println!("node \"a\" listening on {listen} announces, as JSON:");
    let pretty = serde_json::to_string_pretty(&announce).expect("strings and integers serialize");
    for line in pretty.lines() {
        println!("  {line}");
    }
    let datagram = announce.encode();
    println!(
        "on the wire: one UDP datagram of {} bytes (at most {ANNOUNCE_BYTES_MAX} are read):",
        datagram.len()
    );
    println!("  {}", String::from_utf8_lossy(&datagram));

    // A receiver learns the TCP address to dial: the announced host, or the datagram's source
    // when the host is unspecified.
    let source: SocketAddr = "192.168.1.20:47474".parse().expect("a valid address");
    match decode(&datagram, source) {
        Ok((heard, address)) => println!(
            "heard from {source}: node {:?}, key {}..., dial {address}",
            heard.node_id,
            text::one_line(&heard.key_fingerprint)
        ),
        Err(error) => println!("refused: {error}"),
    }

    // Anything else on the port is ignored (logged only with --verbose), never a panic.
    // Datagrams are untrusted: what they hold is printed as one inert line.
    println!("datagrams a receiver ignores:");
    let mut other_version = announce.clone();
    other_version.version = 2;
    let mut port_zero = announce.clone();
    port_zero.tcp_port = 0;
    let mut named_host = announce.clone();
    named_host.host = "example.org".to_owned();
    let mut long_name = announce.clone();
    long_name.node_id = "n".repeat(300);
    let cases: [(&str, Vec<u8>); 6] = [
        ("not json", b"\x00\xffhello".to_vec()),
        ("another version", other_version.encode()),
        ("port 0", port_zero.encode()),
        ("a host name", named_host.encode()),
        ("a 300-byte node id", long_name.encode()),
        ("oversized", vec![b' '; ANNOUNCE_BYTES_MAX + 1]),
    ];
    for (what, datagram) in cases {
        match decode(&datagram, source) {
            Ok((heard, address)) => println!("  {what}: accepted {:?} at {address}", heard.node_id),
            Err(error) => println!("  {what}: {}", text::one_line(&error.to_string())),
        }
    }
}
