//! The `ferry` command-line tool: scenario runner, seed sweeper, validator and real node.
//!
//! Code map: [`cli`] parses arguments and prints; [`scenario`] turns YAML into a validated
//! model; [`run`] drives one simulation and checks its expectations; [`chaos`] draws random
//! fault schedules; [`sweep`] runs many seeds of many files; [`text`] escapes untrusted text; [`timeline`] and [`pcap`] draw and capture a run; [`node`] runs the protocol on real sockets.
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
