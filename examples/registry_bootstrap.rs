//! Bootstrap from an HTTP registry: two real nodes (the code of `ferry node --bootstrap URL`)
//! register themselves with a registry, fetch its peer list, dial each other and replicate a
//! write. The registry only introduces them; the handshake and the data go node to node.
//!
//! Run: `cargo run --example registry_bootstrap` starts a registry (the code of `ferry
//! registry`) inside this process on a free port of 127.0.0.1. To use one of your own:
//!
//! ```sh
//! cargo run -- registry --listen 127.0.0.1:7000            # in another terminal
//! cargo run --example registry_bootstrap -- http://127.0.0.1:7000
//! curl http://127.0.0.1:7000/peers                          # while the example runs
//! ```
//!
//! Nodes re-register and re-fetch every 2 s; the registry forgets a node after 30 s of
//! silence. The nodes log on stderr (`learned peer ... via registry`, `peer connected`);
//! this example prints its steps on stdout.

use std::error::Error;
use std::time::{Duration, Instant};

use ferry::node::registry::{self, BootstrapUrl};
use ferry::node::{NodeArguments, RegistryArguments, spawn_node, spawn_registry};
use ferry::text;

/// Longest wait for a registration, a connection or a replicated write.
const DEADLINE: Duration = Duration::from_secs(60);

fn main() -> Result<(), Box<dyn Error>> {
    let url = match std::env::args().nth(1) {
        Some(url) => {
            println!("using the registry at {}", text::one_line(&url));
            url
        }
        None => {
            let arguments = RegistryArguments::new("127.0.0.1:0");
            let address = spawn_registry(&arguments)?;
            println!("started a registry at http://{address}");
            format!("http://{address}")
        }
    };
    // The same check `ferry node --bootstrap` makes: plain http://HOST:PORT.
    let url = BootstrapUrl::parse(&url)?;

    let base = std::env::temp_dir().join(format!("ferry-example-registry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let start = |name: &str| {
        let mut arguments = NodeArguments::new(name, "127.0.0.1:0");
        arguments.data = Some(base.join(name));
        arguments.bootstrap = Some(url.as_str().to_owned());
        spawn_node(arguments)
    };
    let a = start("a")?;
    println!("a: listening on {}, registering with {}", a.listen_address(), url.as_str());
    let b = start("b")?;
    println!("b: listening on {}, registering with {}", b.listen_address(), url.as_str());

    // What a node fetches: GET /peers, every live registration ordered by name.
    let started = Instant::now();
    let peers = loop {
        let peers = registry::fetch(&url)?;
        let names: Vec<&str> = peers.iter().map(|peer| peer.node_id.as_str()).collect();
        if names.contains(&"a") && names.contains(&"b") {
            break peers;
        }
        if started.elapsed() > DEADLINE {
            return Err(format!("the registry still lists only {names:?} after {DEADLINE:?}").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("GET {}/peers lists:", url.as_str());
    for peer in &peers {
        // Records come from the network: printed escaped.
        println!("  {} at {}:{}", text::one_line(&peer.node_id), text::one_line(&peer.host), peer.tcp_port);
    }

    // Of two nodes that learn of each other, the lower name dials.
    a.request_until("peers", DEADLINE, |answer| answer.split_whitespace().any(|peer| peer == "b"))?;
    b.request_until("peers", DEADLINE, |answer| answer.split_whitespace().any(|peer| peer == "a"))?;
    println!("a and b found each other through the registry; a dialed b");

    let answer = a.request("put bootstrapped yes").ok_or("node a stopped")?;
    println!("a: put bootstrapped yes -> {answer}");
    b.request_until("get bootstrapped", DEADLINE, |answer| answer != "(nil)")?;
    println!("b: get bootstrapped -> {}", b.request("get bootstrapped").ok_or("node b stopped")?);

    a.shutdown()?;
    b.shutdown()?;
    let _ = std::fs::remove_dir_all(&base);
    println!("done");
    Ok(())
}
