//! The `ferry` command-line tool: scenario runner, seed sweeper, validator and real node.
//!
//! Code map: [`cli`] parses arguments and prints; [`scenario`] turns YAML into a validated
//! model; [`run`] drives one simulation and checks its expectations; [`chaos`] draws random
//! fault schedules; [`sweep`] runs many seeds of many files; [`shrink`] turns a failing seed
//! into a smaller scenario; [`inspect`] dumps a run's final state; [`text`] escapes
//! untrusted text; [`timeline`] and [`pcap`] draw and capture a run; [`node`] runs the
//! protocol on real sockets.
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
#![warn(missing_docs, unreachable_pub)]

pub mod chaos;
pub mod cli;
pub mod inspect;
pub mod node;
pub mod pcap;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod sweep;
pub mod text;
pub mod timeline;
