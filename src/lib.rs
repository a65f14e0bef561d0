//! The `ferry` command-line tool: scenario runner, seed sweeper, validator and real node.
//!
//! Code map: [`cli`] parses arguments and prints; [`scenario`] turns YAML into a validated
//! model; [`run`] drives one simulation and checks its expectations; [`chaos`] draws random
//! fault schedules; [`sweep`] runs many seeds of many files; [`shrink`] turns a failing seed
//! into a smaller scenario; [`inspect`] dumps a run's final state; [`text`] escapes
//! untrusted text; [`timeline`] and [`pcap`] draw and capture a run. [`node`] is the
//! `ferry-node` crate, which runs the protocol on real sockets.
//!
//! # Running a scenario from code
//!
//! A scenario is YAML (the README's scenario reference); [`run::run`] simulates it for one
//! seed and checks its expectations. The same seed gives the same trace hash, every time.
//!
//! ```
//! use ferry_simulator::Trace;
//!
//! let yaml = "name: doc\nduration: 20s\nnodes: [a, b, c]\n\
//!             network: {latency: 1ms..20ms, loss: 0.1}\n\
//!             workload:\n  - {from: 0s, until: 5s, rate: 20/s, keys: 10}\n\
//!             faults:\n  - {from: 1s, until: 3s, partition: [[a], [b, c]]}\n";
//! let scenario = ferry::scenario::parse("doc.yaml", yaml).expect("a valid scenario");
//! let report = ferry::run::run(&scenario, 7, Trace::default());
//! assert!(report.passed(), "{:?}", report.checks);
//! assert!(report.writes_acked > 0);
//! let again = ferry::run::run(&scenario, 7, Trace::default());
//! assert_eq!(report.trace_hash, again.trace_hash, "one seed replays everything");
//! ```
//!
//! # Snapshot-testing a trace with insta
//!
//! A run is deterministic, so its trace is a good [insta](https://insta.rs) snapshot: a
//! change of behaviour shows up as a reviewable diff (`cargo insta review`). Trace into a
//! [`SharedBuffer`](ferry_simulator::trace::SharedBuffer), keep the lines that matter to
//! your test (or all of them: `tests/trace_snapshots.rs` keeps whole traces in files), and
//! snapshot them; `insta` is then a dev-dependency of your crate.
//!
//! ```
//! use ferry_simulator::Trace;
//! use ferry_simulator::trace::SharedBuffer;
//!
//! let yaml = "name: greeting\nduration: 2s\nnodes: [a, b]\nnetwork: {latency: 1ms..5ms}\n\
//!             workload:\n  - {at: 100ms, node: a, put: {key: greeting, value: hello}}\n";
//! let scenario = ferry::scenario::parse("greeting.yaml", yaml).expect("a valid scenario");
//! let buffer = SharedBuffer::default();
//! let report = ferry::run::run(&scenario, 1, Trace::new(Some(Box::new(buffer.clone()))));
//! assert!(report.passed(), "{:?}", report.checks);
//! // The write's story: issued, durable (acked) on its origin, pushed to b, and convergence.
//! let story: Vec<String> = buffer
//!     .text()
//!     .lines()
//!     .filter(|line| [" command ", " acked ", "send WalPush", "converged"].iter().any(|word| line.contains(word)))
//!     .map(str::to_owned)
//!     .collect();
//! insta::assert_snapshot!(story.join("\n"), @r#"
//! [   0.100000000] a command put "greeting"="hello"
//! [   0.104388122] a acked af63dc4c8601ec8c#1 put greeting=hello @100.0
//! [   0.104388122] a -> b #6 send WalPush msg_id=2 a:1 67B
//! [   0.106955508] note converged at 0.106s
//! "#);
//! ```
#![recursion_limit = "256"]
#![warn(missing_docs, unreachable_pub)]

pub mod chaos;
pub mod cli;
pub mod inspect;
pub use ferry_node as node;
pub mod pcap;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod sweep;
pub mod text;
pub mod timeline;
