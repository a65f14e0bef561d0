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
//! for benchmarks and tests.
#![warn(missing_docs, unreachable_pub)]

pub mod clock;
pub mod determinism;
pub mod disk;
pub mod fault;
pub mod ferry;
pub mod network;
pub mod ping;
pub mod process;
pub mod random;
pub mod sim;
pub mod trace;

pub use fault::{DiskFaultKind, Fault};
pub use network::{DropReason, LinkOverride, LinkParams, Topology, Transport};
pub use process::{Context, Process};
pub use sim::{Control, RunEnd, SimConfig, Simulation, Stats};
pub use trace::{LineFields, Trace, TraceFormat, TraceHasher, TraceRecord, TraceTap};
