//! Scenario files: the YAML a user writes, read into a typed, validated [`Scenario`].
//!
//! This module owns the file format (the schema fixed in CONTRACT.md plus extra keys), its
//! limits and its error messages. It must not run anything: the simulator consumes the
//! [`Scenario`]. So far it holds the typed model and the limits; the parser follows.

mod model;

pub use model::{
    Chaos, ChaosClockJump, ChaosCrash, ChaosWindow, Clock, Disk, Expect, Fault, FaultKind, LinkOverride,
    Network, NodeIndex, NodeSelection, RandomPuts, RangeNs, Rate, Scenario, SignedRangeNs, Topology,
    Transport, WorkloadItem,
};

/// Largest scenario file, in bytes (4 MiB); a longer file is refused before parsing.
pub const FILE_BYTES_MAX: u64 = 4 << 20;
/// Deepest nesting of sequences and mappings; the schema itself needs 5.
pub const DEPTH_MAX: usize = 64;
/// Longest single scalar, in bytes (64 KiB).
pub const SCALAR_BYTES_MAX: usize = 64 << 10;
/// Furthest the YAML scanner may read ahead of the last complete value, in characters
/// (128 Ki). A longer scalar, or a longer flow collection where a key could start (the top
/// level, after `- `), is refused; this keeps the scanner's token buffer to a few MiB.
pub const LOOKAHEAD_CHARS_MAX: usize = 128 << 10;
/// Most YAML values (scalars, sequences, mappings) in one file; bounds the tree's memory
/// to a few tens of MiB.
pub const YAML_VALUES_MAX: usize = 250_000;
/// Most nodes in a scenario.
pub const NODE_COUNT_MAX: usize = 10_000;
/// Longest node name, in bytes (names are ASCII).
pub const NODE_NAME_BYTES_MAX: usize = 64;
/// Largest key space of a random workload item (`keys`).
pub const KEYS_COUNT_MAX: u64 = 1_000_000;
/// Largest `value_bytes` of a random workload item.
pub const VALUE_BYTES_MAX: u32 = 64 << 10;
/// Highest rate of a random workload item, in operations per second.
pub const RATE_PER_SECOND_MAX: u64 = 100_000;
/// Largest `clock.drift_ppm` (10%).
pub const DRIFT_PPM_MAX: u64 = 100_000;
/// Shortest `every` of a chaos kind (1ms), so chaos cannot flood the event queue.
pub const CHAOS_EVERY_NS_MIN: u64 = 1_000_000;
