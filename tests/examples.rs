//! Goal: the walkthrough examples keep running and keep printing what their header comments
//! promise, so a newcomer following the README never meets one that rotted.
//!
//! Method: `cargo test` builds every example (without running it); each test runs one
//! compiled example from `target/<profile>/examples/`, asserts it exits 0, and checks lines
//! of its output. Examples are deterministic (seeded randomness, no clocks), so the lines
//! are exact. The benchmarks (`loopback_replication`, `ferry_cluster`) are left out: they
//! measure, and take seconds.

use std::path::PathBuf;
use std::process::Command;

/// The compiled example `name`, next to this test's own binary (`target/<profile>/deps/`).
fn example_path(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps/");
    profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Runs example `name` and returns its standard output; fails on a non-zero exit.
fn run_example(name: &str) -> String {
    let path = example_path(name);
    let output = Command::new(&path).output().unwrap_or_else(|error| {
        panic!("cannot run {}: {error} (does `cargo test` build examples?)", path.display())
    });
    let stdout = String::from_utf8(output.stdout).expect("examples print UTF-8");
    assert!(
        output.status.success(),
        "example {name} failed with {}:\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
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
