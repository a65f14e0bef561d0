//! A manual connection over real TCP, in two terminals. The server is a real node (the code
//! of `ferry node`); the client drives the protocol's `Node` state machine by hand over a
//! `TcpStream`, the way the node's runtime does, and prints every frame that crosses the
//! socket: the Noise XX handshake in the clear, then encrypted envelopes (PROTOCOL.md 3, 4,
//! 6 and 7; 6.9 says who dials is the Initiator). The client pings the server, writes a key
//! and waits for the server's reply key; then both stop.
//!
//! Run, in two terminals:
//!
//! ```sh
//! cargo run --example manual_connect -- server            # prints its port
//! cargo run --example manual_connect -- client 127.0.0.1 PORT
//! ```
//!
//! (`-- server ADDR` listens on ADDR instead of a free port of 127.0.0.1.) The server node
//! logs what it does on stderr; both sides print their steps on stdout.

use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry::node::{Clock, NodeArguments, spawn_node};
use ferry::text;
use ferry_protocol::session::{Identity, Role, SessionConfig, hex};
use ferry_protocol::{
    Decoded, DiskRequest, Envelope, Event, FRAME_BYTES_MAX_DEFAULT, FrameDecoder, LinkKind, Node, NodeConfig,
    Output,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{OsRng, SeedableRng};

/// The client's name for its one link (the runtime numbers its sockets the same way).
const LINK: u64 = 0;
/// Longest wait of either side for the other.
const DEADLINE: Duration = Duration::from_secs(120);

fn main() -> Result<(), Box<dyn Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["server"] => server("127.0.0.1:0"),
        ["server", address] => server(address),
        ["client", host, port] => client(&format!("{host}:{port}")),
        _ => Err("usage: manual_connect server [ADDR] | client HOST PORT".into()),
    }
}

/// A real node named "server": waits for the client, answers its greeting with a reply key,
/// and stops once the client has left.
fn server(listen: &str) -> Result<(), Box<dyn Error>> {
    let data = std::env::temp_dir().join(format!("ferry-example-manual-connect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut arguments = NodeArguments::new("server", listen);
    arguments.data = Some(data.clone());
    let node = spawn_node(arguments)?;
    let address = node.listen_address();
    println!("server: listening on {address}");
    println!(
        "server: now run, in another terminal: cargo run --example manual_connect -- client {} {}",
        address.ip(),
        address.port()
    );

    node.request_until("peers", DEADLINE, |answer| answer == "peers: client")?;
    println!("server: session with \"client\" established");
    node.request_until("get greeting", DEADLINE, |answer| answer != "(nil)")?;
    let greeting = node.request("get greeting").ok_or("node stopped")?;
    println!("server: received greeting = {greeting}");
    let answer = node.request("put reply hello-from-the-server").ok_or("node stopped")?;
    println!("server: put reply hello-from-the-server -> {answer}");
    node.request_until("peers", DEADLINE, |answer| answer == "peers: (none)")?;
    println!("server: the client has left; stopping");
    node.shutdown()?;
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

/// What the client does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Handshake,
    Ping,
    Write,
    AwaitReply,
    Done,
}

/// A protocol node named "client" on one TCP connection, driven by hand.
fn client(address: &str) -> Result<(), Box<dyn Error>> {
    let mut stream =
        TcpStream::connect(address).map_err(|error| format!("cannot connect to {address}: {error}"))?;
    println!("client: connected to {address}; the side that dials is the Noise Initiator");
    // Reads wait at most 20 ms, so the loop also runs the node's timers.
    stream.set_read_timeout(Some(Duration::from_millis(20)))?;
    stream.set_nodelay(true)?;

    // The node's clock must be comparable with the server's: it stamps writes with it.
    let clock = Clock::new();
    let identity = Identity::generate(&mut OsRng);
    let session = SessionConfig::new("client", identity);
    // An empty WAL (a node that never ran); this client keeps its log in memory.
    let mut node = Node::recover(NodeConfig::new(session), &[], Box::new(ChaCha20Rng::from_entropy()))?;
    node.link_up(clock.now_ns(), LINK, LinkKind::Stream, Role::Initiator);

    let mut incoming = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    let mut buffer = vec![0; 64 * 1024];
    let mut step = Step::Handshake;
    let started = Instant::now();
    while step != Step::Done {
        if started.elapsed() > DEADLINE {
            return Err(format!("gave up after {DEADLINE:?} at step {step:?}").into());
        }
        // 1. Perform everything the node asked for.
        while let Some(output) = node.poll() {
            match output {
                Output::Send { frame, .. } => {
                    describe_frames("client ->", &mut FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT), &frame);
                    stream.write_all(&frame)?;
                }
                Output::Close { .. } => return Err("the node closed the connection".into()),
                // Memory is this client's disk: a sync completes at once. A real node
                // answers only after fsync returned.
                Output::Disk(DiskRequest::Sync { sync_id }) => node.handle_synced(clock.now_ns(), sync_id),
                Output::Disk(_) => {}
                Output::Event(event) => step = on_event(&mut node, &clock, step, event)?,
            }
        }
        if step == Step::AwaitReply
            && let Some(reply) = node.get(b"reply")
        {
            println!("client: received reply = {}", text::one_line(&String::from_utf8_lossy(reply)));
            // A clean goodbye: a Close to every peer, then the socket closes.
            node.shutdown(clock.now_ns(), "done");
            while let Some(output) = node.poll() {
                if let Output::Send { frame, .. } = output {
                    describe_frames("client ->", &mut FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT), &frame);
                    stream.write_all(&frame)?;
                }
            }
            println!("client: done");
            step = Step::Done;
            continue;
        }
        // 2. Hand the node whatever the socket delivered, and let its timers run.
        match stream.read(&mut buffer) {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(length) => {
                describe_frames("client <-", &mut incoming, &buffer[..length]);
                node.handle_stream(clock.now_ns(), LINK, &buffer[..length]);
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(error) => return Err(error.into()),
        }
        node.handle_timeout(clock.now_ns());
    }
    Ok(())
}

/// Reacts to one of the node's events; returns the next step.
fn on_event(node: &mut Node, clock: &Clock, step: Step, event: Event) -> Result<Step, Box<dyn Error>> {
    Ok(match event {
        Event::PeerConnected { name, static_key, .. } => {
            println!(
                "client: session with {name:?} established; its static key begins {}",
                hex(&static_key[..8])
            );
            node.ping(clock.now_ns(), LINK);
            Step::Ping
        }
        Event::Pong { round_trip_ns, .. } if step == Step::Ping => {
            println!("client: Pong after {:.3} ms", round_trip_ns as f64 / 1e6);
            let key = Bytes::from_static(b"greeting");
            node.put(clock.now_ns(), key, Bytes::from_static(b"hello-from-the-client"))?;
            println!("client: put greeting hello-from-the-client");
            Step::Write
        }
        Event::Acked { .. } if step == Step::Write => {
            println!(
                "client: greeting is durable here (Event::Acked); pushing it until the server acknowledges"
            );
            Step::AwaitReply
        }
        Event::PeerDisconnected { reason, .. } | Event::HandshakeFailed { reason, .. } => {
            return Err(format!("lost the server: {}", text::one_line(&reason)).into());
        }
        Event::Rejected { reason, .. } => {
            println!("client: a frame was refused: {}", text::one_line(&reason));
            step
        }
        _ => step,
    })
}

/// Prints the envelope header of every whole frame in `bytes` (feeding `decoder`, which keeps
/// a partial frame for the next call). Headers travel in the clear; payloads after the
/// handshake do not.
fn describe_frames(direction: &str, decoder: &mut FrameDecoder, bytes: &[u8]) {
    decoder.push(bytes);
    loop {
        match decoder.next_frame() {
            Ok(Decoded::Frame(frame)) => {
                let length = frame.len();
                match Envelope::decode(frame) {
                    Ok(envelope) => {
                        let header = &envelope.header;
                        let sealed = match header.nonce {
                            Some(nonce) => format!(", encrypted, nonce {nonce}"),
                            None => String::new(),
                        };
                        println!(
                            "  {direction} {:?} msg_id {} ({length} bytes{sealed})",
                            header.message_type, header.msg_id
                        );
                    }
                    Err(error) => println!("  {direction} an invalid envelope: {error}"),
                }
            }
            Ok(Decoded::NeedMore) => return,
            Err(error) => return println!("  {direction} a broken stream: {error}"),
        }
    }
}
