//! Goal: the walkthrough examples keep running and keep printing what their header comments
//! promise, so a newcomer following the README never meets one that rotted.
//!
//! Method: `cargo test` builds every example (without running it); each test runs one
//! compiled example from `target/<profile>/examples/`, asserts it exits 0, and checks lines
//! of its output. The in-memory examples are deterministic (seeded randomness, no clocks),
//! so their lines are exact; the network ones (`manual_connect`, `udp_discovery`,
//! `registry_bootstrap`) print ports and timings, so only their fixed lines are checked.
//! The two-terminal examples run as two child processes on loopback; every wait for a child
//! is bounded only to catch a hang (never to judge speed), and a child left running when a
//! test fails is killed. The README's table must list exactly the examples tested here
//! (`readme_lists_every_walkthrough_example`). The benchmarks (`loopback_replication`,
//! `ferry_cluster`) are left out: they measure, and take seconds.
//!
//! `cargo test --test examples` alone does not rebuild the examples: run `cargo test` (or
//! `cargo build --examples`) after changing one.

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The walkthrough, in reading order: what the README's table lists, one test each below.
const WALKTHROUGH: [&str; 10] = [
    "envelope_and_framing",
    "hello_messages",
    "discovery_announce_json",
    "router_in_memory",
    "pack_secure_envelope",
    "dispatch_decode",
    "wal_push_and_ack",
    "manual_connect",
    "udp_discovery",
    "registry_bootstrap",
];

/// Longest wait for a child's next line or its exit: a hang guard, far above any normal run
/// (the network examples give up by themselves after 60 to 120 s).
const HANG_GUARD: Duration = Duration::from_secs(180);

/// The compiled example `name`, next to this test's own binary (`target/<profile>/deps/`).
fn example_path(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps/");
    profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Runs example `name` with `arguments` and returns its standard output; fails on a non-zero
/// exit or a hang.
fn run_example_with(name: &str, arguments: &[&str]) -> String {
    let mut child = Running::start(name, arguments);
    let status = child.wait();
    let stdout = child.stdout_so_far();
    assert!(status.success(), "example {name} failed with {status}:\n{stdout}\n{}", child.stderr_so_far());
    stdout
}

/// Runs example `name` without arguments; see [`run_example_with`].
fn run_example(name: &str) -> String {
    run_example_with(name, &[])
}

/// Asserts that every line of `expected` appears, whole, in `stdout`.
fn assert_lines(name: &str, stdout: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            stdout.lines().any(|printed| printed == *line),
            "example {name} did not print {line:?}:\n{stdout}"
        );
    }
}

/// A child process (an example or the ferry binary) whose stdout arrives line by line and
/// whose stderr is kept for failure messages. Killed when dropped while still running, so a
/// failing test leaves nothing behind.
struct Running {
    name: String,
    child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Starts example `name`.
    fn start(name: &str, arguments: &[&str]) -> Self {
        Self::start_program(name, example_path(name), arguments)
    }

    /// Starts `program`, called `name` in messages.
    fn start_program(name: &str, program: PathBuf, arguments: &[&str]) -> Self {
        let mut child = Command::new(&program)
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run {}: {error} (run `cargo test`, which builds the examples)",
                    program.display()
                )
            });
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(length @ 1..) = pipe.read(&mut buffer) {
                sink.lock().expect("stderr buffer").push_str(&String::from_utf8_lossy(&buffer[..length]));
            }
        });
        Self { name: name.to_owned(), child, lines, stdout: Vec::new(), stderr }
    }

    fn stdout_so_far(&self) -> String {
        self.stdout.iter().map(|line| format!("{line}\n")).collect()
    }

    fn stderr_so_far(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Waits for the next stdout line that satisfies `accept` and returns it.
    fn wait_line(&mut self, accept: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if accept(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.fail("printed no expected line in time"),
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail("closed its output before the expected line")
                }
            }
        }
    }

    /// Reads the rest of stdout and waits for the exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stdout.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => self.fail("did not finish in time"),
            }
        }
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                return status;
            }
            if Instant::now() > deadline {
                self.fail("closed its output but did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for a successful exit and returns all of stdout.
    fn finish(mut self) -> String {
        let status = self.wait();
        let stdout = self.stdout_so_far();
        assert!(status.success(), "{} failed with {status}:\n{stdout}\n{}", self.name, self.stderr_so_far());
        stdout
    }

    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("{} {what}:\n{}\nstderr:\n{}", self.name, self.stdout_so_far(), self.stderr_so_far());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn envelope_and_framing() {
    let stdout = run_example("envelope_and_framing");
    assert_lines(
        "envelope_and_framing",
        &stdout,
        &[
            "after 5 bytes: NeedMore",
            "after 12 bytes: Header { message_type: Ping, msg_id: 7, flags: Flags(0), nonce: None } -> Ping { token: 300 }",
        ],
    );
}

#[test]
fn hello_messages() {
    let stdout = run_example("hello_messages");
    assert_lines(
        "hello_messages",
        &stdout,
        &[
            "got Hello: Noise message 1, 32 bytes",
            "got HelloAck: Noise message 2, 96 bytes",
            "got HelloFinish: Noise message 3, 64 bytes",
            "an empty Hello is rejected: empty noise message",
        ],
    );
}

#[test]
fn dispatch_decode() {
    let stdout = run_example("dispatch_decode");
    assert_lines(
        "dispatch_decode",
        &stdout,
        &[
            "message 5: Pong 42",
            "message 6: Close Shutdown (bye)",
            "frame error, closing the connection: invalid frame length prefix: varint is not canonical: overlong encoding",
        ],
    );
}

#[test]
fn wal_push_and_ack() {
    let stdout = run_example("wal_push_and_ack");
    assert_lines(
        "wal_push_and_ack",
        &stdout,
        &[
            "receiver: WalAck for message 41 in a 33-byte frame",
            "sender: ack of message 41: af63dc4c8601ec8c durable through #3",
        ],
    );
}

#[test]
fn router_in_memory() {
    let stdout = run_example("router_in_memory");
    assert_lines(
        "router_in_memory",
        &stdout,
        &[
            "after 2 rounds of announcements:",
            "  a: b via b (1 hop), c via b (2 hops), d via b (3 hops)",
            "  d: a via c (3 hops), b via c (2 hops), c via c (1 hop)",
            "c - d down; after 2 more rounds:",
            "  a: b via b (1 hop), c via b (2 hops)",
            "  d: no routes",
        ],
    );
}

#[test]
fn pack_secure_envelope() {
    let stdout = run_example("pack_secure_envelope");
    assert_lines(
        "pack_secure_envelope",
        &stdout,
        &[
            "alice: session with \"bob\" established",
            "bob: session with \"alice\" established",
            "    type Ping, msg_id 1, flags Flags(1), nonce counter Some(0)",
            "bob opened it: Some((1, Ping { token: 42 }))",
            "the same envelope again: envelope with nonce 0 is a replay",
            "one flipped bit: envelope with nonce 1 failed authentication",
            "the intact copy: Some((2, Ping { token: 43 }))",
        ],
    );
}

#[test]
fn discovery_announce_json() {
    let stdout = run_example("discovery_announce_json");
    assert_lines(
        "discovery_announce_json",
        &stdout,
        &[
            "    \"node_id\": \"a\",",
            "on the wire: one UDP datagram of 116 bytes (at most 512 are read):",
            "  {\"protocol\":\"ferry\",\"version\":1,\"node_id\":\"a\",\"host\":\"0.0.0.0\",\"tcp_port\":7001,\"key_fingerprint\":\"dcb43773588d604d\"}",
            "heard from 192.168.1.20:47474: node \"a\", key dcb43773588d604d..., dial 192.168.1.20:7001",
            "  not json: malformed announce: expected value at line 1 column 1",
            "  another version: announce for protocol \"ferry\" version 2, expected \"ferry\" version 1",
            "  port 0: tcp port 0 is not a listening port",
            "  a 300-byte node id: node id of 300 bytes is not within 1..=255",
            "  oversized: announce of at least 513 bytes exceeds maximum 512",
        ],
    );
}

#[test]
fn manual_connect_server_and_client() {
    let mut server = Running::start("manual_connect", &["server"]);
    let listening = server.wait_line(|line| line.starts_with("server: listening on "));
    let address = listening.trim_start_matches("server: listening on ");
    let (host, port) = address.rsplit_once(':').expect("HOST:PORT");
    let client = Running::start("manual_connect", &["client", host, port]).finish();
    assert_lines(
        "manual_connect client",
        &client,
        &[
            "  client -> Hello msg_id 0 (43 bytes)",
            "client: put greeting hello-from-the-client",
            "client: received reply = hello-from-the-server",
            "client: done",
        ],
    );
    // The server's key differs every run.
    assert!(
        client
            .lines()
            .any(|line| line
                .starts_with("client: session with \"server\" established; its static key begins ")),
        "the client established no session:\n{client}"
    );
    for message in ["HelloAck", "Pong", "WalAck", "WalPush"] {
        assert!(
            client.lines().any(|line| line.starts_with(&format!("  client <- {message} "))),
            "the client received no {message}:\n{client}"
        );
    }
    let server = server.finish();
    assert_lines(
        "manual_connect server",
        &server,
        &[
            "server: session with \"client\" established",
            "server: received greeting = hello-from-the-client",
            "server: put reply hello-from-the-server -> ok",
            "server: the client has left; stopping",
        ],
    );
}

/// A UDP port no socket holds right now (both examples bind it with SO_REUSEADDR).
fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("0.0.0.0:0").expect("a free UDP port");
    socket.local_addr().expect("its address").port()
}

#[test]
fn udp_discovery_between_two_processes() {
    let port = free_udp_port().to_string();
    let a = Running::start("udp_discovery", &["node-a", &port]);
    let b = Running::start("udp_discovery", &["node-b", &port]);
    let b = b.finish();
    let a = a.finish();
    assert_lines(
        "udp_discovery node-a",
        &a,
        &[
            "a: found b over UDP; a dialed and the Noise handshake completed",
            "a: put greeting hello-from-a -> ok (durable here; replicating to b)",
            "a: b has left; stopping",
            "a: done",
        ],
    );
    assert_lines(
        "udp_discovery node-b",
        &b,
        &[
            "b: found a over UDP; a dialed and the Noise handshake completed",
            "b: received greeting = hello-from-a; stopping",
            "b: done",
        ],
    );
}

/// The lines `registry_bootstrap` prints whichever registry it uses.
const REGISTRY_BOOTSTRAP_LINES: [&str; 5] = [
    "a and b found each other through the registry; a dialed b",
    "a: put bootstrapped yes -> ok",
    "b: get bootstrapped -> yes",
    "done",
    "GET {URL}/peers lists:",
];

fn assert_registry_bootstrap(stdout: &str, url: &str) {
    let expected = REGISTRY_BOOTSTRAP_LINES.map(|line| line.replace("{URL}", url));
    assert_lines("registry_bootstrap", stdout, &expected.each_ref().map(String::as_str));
    for name in ["a", "b"] {
        assert!(
            stdout.lines().any(|line| line.starts_with(&format!("  {name} at 127.0.0.1:"))),
            "the registry did not list {name}:\n{stdout}"
        );
    }
}

#[test]
fn registry_bootstrap_with_its_own_registry() {
    let stdout = run_example("registry_bootstrap");
    let started = stdout.lines().find_map(|line| line.strip_prefix("started a registry at "));
    let url = started.unwrap_or_else(|| panic!("no registry started:\n{stdout}"));
    assert_registry_bootstrap(&stdout, url);
}

#[test]
fn registry_bootstrap_with_ferry_registry() {
    let ferry = PathBuf::from(env!("CARGO_BIN_EXE_ferry"));
    let registry = Running::start_program("ferry registry", ferry, &["registry", "--listen", "127.0.0.1:0"]);
    // `ferry registry` says where it listens on stderr.
    let deadline = Instant::now() + HANG_GUARD;
    let url = loop {
        let stderr = registry.stderr_so_far();
        if let Some(address) =
            stderr.lines().find_map(|line| line.strip_prefix("ferry registry: listening on "))
        {
            break format!("http://{address}");
        }
        assert!(Instant::now() < deadline, "ferry registry did not say where it listens:\n{stderr}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = run_example_with("registry_bootstrap", &[&url]);
    assert_lines("registry_bootstrap", &stdout, &[&format!("using the registry at {url}")]);
    assert_registry_bootstrap(&stdout, &url);
    drop(registry);
}

/// The README's walkthrough table lists exactly [`WALKTHROUGH`], in order, and this file has
/// a test running each; every example file is either in the walkthrough or a benchmark.
#[test]
fn readme_lists_every_walkthrough_example() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let section = readme.split("## Walkthrough examples").nth(1).expect("a walkthrough section");
    let listed: Vec<&str> = section
        .lines()
        .take_while(|line| !line.starts_with("## "))
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .collect();
    assert_eq!(listed, WALKTHROUGH, "README's walkthrough table");
    let this_file = std::fs::read_to_string(root.join("tests/examples.rs")).expect("tests/examples.rs");
    for name in WALKTHROUGH {
        let runs = [format!("run_example(\"{name}\")"), format!("Running::start(\"{name}\"")];
        assert!(runs.iter().any(|call| this_file.contains(call.as_str())), "no test runs {name}");
    }
    let mut files: Vec<String> = std::fs::read_dir(root.join("examples"))
        .expect("examples/")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.strip_suffix(".rs").map(str::to_owned))
        .collect();
    files.sort();
    let mut expected: Vec<String> = WALKTHROUGH
        .iter()
        .chain(&["ferry_cluster", "loopback_replication"])
        .map(|name| (*name).to_owned())
        .collect();
    expected.sort();
    assert_eq!(files, expected, "examples/ holds the walkthrough and the two benchmarks");
}
