//! ferry's deterministic simulator: many nodes in one process, virtual time, lossy and
//! partitioned links, crashes, a disk that loses unsynced writes, all from one seed.
//!
//! **Invariant:** nothing here reads a wall clock, spawns a thread (except the determinism
//! check, which compares two runs), asks the OS for randomness or iterates a randomly
//! ordered map. The same seed gives the same trace, byte for byte.
//!
//! Code map: [`sim`] is the event loop; [`process`] the trait hosted processes implement;
//! [`network`], [`disk`] and [`clock`] the fault models; [`random`] the seeded streams;
//! [`trace`] the hashed, optionally printed record of every event; [`ping`] a tiny process
//! for benchmarks and tests. With the default feature `protocol`, `ferry` hosts ferry's
//! protocol node (from `ferry-protocol`) as a process and checks its cluster; without it
//! (`default-features = false`) this crate is a generic simulator that does not depend on
//! ferry-protocol at all.
//!
//! # Hosting your own process
//!
//! Any protocol that implements [`Process`] runs here: the simulator calls it with messages,
//! timers, disk completions and link changes, and it answers through the [`Context`]. Below, a
//! toy "max gossip" protocol: each node sends the largest number it knows to every other
//! node every 10 ms, over links that lose a third of the messages, and the check is that all
//! nodes end up knowing the largest number any node was told.
//!
//! ```
//! use std::fmt;
//!
//! use bytes::Bytes;
//! use ferry_simulator::{Context, Control, LinkParams, Process, SimConfig, Simulation, Trace, TraceHasher, TraceRecord};
//!
//! const MS: u64 = 1_000_000;
//!
//! /// A command: "you now know this number".
//! struct Learn(u64);
//! impl fmt::Display for Learn {
//!     fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
//!         write!(formatter, "learn {}", self.0)
//!     }
//! }
//! impl TraceRecord for Learn {
//!     fn hash_into(&self, hasher: &mut TraceHasher) {
//!         hasher.word(self.0);
//!     }
//! }
//!
//! /// What a node reports: it learnt a larger number.
//! struct Raised(u64);
//! impl fmt::Display for Raised {
//!     fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
//!         write!(formatter, "raised to {}", self.0)
//!     }
//! }
//! impl TraceRecord for Raised {
//!     fn hash_into(&self, hasher: &mut TraceHasher) {
//!         hasher.word(self.0);
//!     }
//! }
//!
//! struct MaxGossip {
//!     known: u64,
//!     nodes_count: u32,
//! }
//!
//! impl MaxGossip {
//!     fn learn(&mut self, context: &mut Context<'_, Raised>, number: u64) {
//!         if number > self.known {
//!             self.known = number;
//!             context.emit(Raised(number));
//!         }
//!     }
//! }
//!
//! impl Process for MaxGossip {
//!     type Config = u32;
//!     type Command = Learn;
//!     type Event = Raised;
//!
//!     fn boot(nodes_count: &u32, context: &mut Context<'_, Raised>, _disk: &[u8]) -> Self {
//!         context.set_timer(Some(context.now_ns() + 10 * MS));
//!         Self { known: 0, nodes_count: *nodes_count }
//!     }
//!     fn on_message(&mut self, context: &mut Context<'_, Raised>, _from: u32, bytes: Bytes) {
//!         // Bytes from the network are untrusted: a short message is ignored, not a panic.
//!         if let Ok(word) = <[u8; 8]>::try_from(&bytes[..]) {
//!             self.learn(context, u64::from_le_bytes(word));
//!         }
//!     }
//!     fn on_timer(&mut self, context: &mut Context<'_, Raised>) {
//!         let me = context.node();
//!         for peer in (0..self.nodes_count).filter(|peer| *peer != me) {
//!             context.send(peer, Bytes::copy_from_slice(&self.known.to_le_bytes()));
//!         }
//!         context.set_timer(Some(context.now_ns() + 10 * MS));
//!     }
//!     fn on_disk_synced(&mut self, _: &mut Context<'_, Raised>, _: u64) {}
//!     fn on_link_up(&mut self, _: &mut Context<'_, Raised>, _: u32, _: bool) {}
//!     fn on_link_down(&mut self, _: &mut Context<'_, Raised>, _: u32) {}
//!     fn on_command(&mut self, context: &mut Context<'_, Raised>, command: Learn) {
//!         self.learn(context, command.0);
//!     }
//! }
//!
//! let run = |seed: u64| {
//!     let mut config = SimConfig::new(seed, (0..5).map(|index| format!("n{index}")).collect());
//!     config.link = LinkParams { loss: 0.3, ..LinkParams::default() };
//!     let mut simulation: Simulation<MaxGossip> = Simulation::new(config, 5, Trace::default());
//!     simulation.schedule_command(5 * MS, 2, Learn(42));
//!     simulation.schedule_command(7 * MS, 4, Learn(17));
//!     let mut raised = 0;
//!     simulation.run_until(2_000 * MS, |simulation| {
//!         raised += simulation.events_last().len();
//!         Control::Continue
//!     });
//!     // The check: every node knows the largest number.
//!     for node in 0..5 {
//!         assert_eq!(simulation.process(node).map(|process| process.known), Some(42));
//!     }
//!     (simulation.trace().hash_hex(), raised)
//! };
//! let (hash, raised) = run(1);
//! assert!(raised >= 5, "every node raised its number at least once");
//! assert_eq!(run(1).0, hash, "one seed replays everything");
//! assert_ne!(run(2).0, hash, "another seed loses other messages");
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod clock;
pub mod determinism;
pub mod disk;
pub mod fault;
#[cfg(feature = "protocol")]
pub mod ferry;
pub mod network;
#[cfg(getrandom_backend = "custom")]
mod os_random_trap;
pub mod ping;
pub mod process;
mod queue;
pub mod random;
pub mod sim;
pub mod trace;

pub use fault::{DiskFaultKind, Fault};
pub use network::{DropReason, LinkOverride, LinkParams, Topology, Transport};
pub use process::{Context, Process};
pub use sim::{Control, NodeTraffic, RunEnd, SimConfig, Simulation, Stats};
pub use trace::{LineFields, Trace, TraceFormat, TraceHasher, TraceRecord, TraceTap};
