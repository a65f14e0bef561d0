//! Scenario files: the YAML a user writes, read into a typed, validated [`Scenario`].
//!
//! This module owns the file format (the schema fixed in CONTRACT.md plus the extra keys
//! below), its limits and its error messages. It must not run anything: the simulator
//! consumes the [`Scenario`] it returns. Entry points: [`load`] (a path) and [`parse()`] (a
//! text with a label for messages). Code map: `yaml` (bounded tree with positions) →
//! `parse` and `events` (typed sections) → `validate` (crash/restart order); `duration` and
//! `quantity` read single values; `model` holds the public types; `error` the messages;
//! `write` turns a model back into a file (`--export-faults`, `ferry shrink`).
//!
//! # Why `saphyr-parser`
//! We read YAML with `saphyr-parser`'s event stream and build a small positioned tree by
//! hand. `serde_yaml` is archived; `serde_norway` (its fork, over `unsafe-libyaml`) and
//! `serde-saphyr` (far more dependencies) go through serde, which reports the position of
//! the error but not of the value a *semantic* check rejects (an undeclared node in a
//! workload item, `5s..1s`, a fault after `duration`). The event stream gives every value
//! its line and column, lets us stop at each budget before building more (depth, scalar
//! length, value count), and refuses aliases outright, so "billion laughs" cannot expand.
//! It adds two small crates (`saphyr-parser`, `arraydeque`) and no `unsafe` of ours.
//!
//! # Writing a scenario
//! A scenario is one YAML mapping. Keys are snake_case; an unknown key is an error (with a
//! "did you mean" hint for typos). Only `name`, `duration` and `nodes` are required; every
//! other section and key has the default given below, and an optional section left empty
//! (`faults:` with nothing under it) is the same as leaving it out.
//!
//! **Values.** A *duration* is a number and a unit: `250ms`, `3s`, `2m`, `1h`, `1d`,
//! `500us` (or `µs`), `10ns`, also with decimals (`1.5s`); the unit is required, even for
//! `0s`, and digits finer than a nanosecond are an error. Only offsets (`by`) may be
//! negative (`-2s`). A *range* `A..B` is drawn uniformly from A to B, both included, and
//! needs A < B; a single duration `A` means always A. A *probability* is a number in
//! [0, 1]. Node names match `[A-Za-z0-9_-]{1,64}`; `all` is reserved.
//!
//! ```yaml
//! name: partition-heal      # required, non-empty
//! seed: 7                   # default seed when the command line gives none; default 0
//! duration: 120s            # required: virtual time at which the run stops (> 0)
//! nodes: [a, b, c, d, e]    # required: unique names, or a count: `nodes: 5` is n0..n4
//! topology: full-mesh       # full-mesh (default) | ring | line | star (first node is the
//!                           # hub) | {edges: [[a, b], [b, c]]} (undirected links)
//! routing: false            # build routing tables so `ping` items cross several hops;
//!                           # default false
//! network:                  # every link, unless a `link` fault overrides it
//!   transport: datagram     # datagram (default): lossy, may duplicate and reorder
//!                           # | stream: ordered and reliable until a fault breaks it
//!                           # | quic: each node's real QUIC stack over datagram links
//!   links:                  # single links carried otherwise than `transport`, each pair
//!     - {between: [a, b], transport: quic}  # at most once; default none
//!   latency: 1ms..20ms      # one-way delay per message; default 1ms..10ms
//!   loss: 0.05              # probability a message is dropped; default 0
//!   duplicate: 0.01         # probability a message arrives twice; default 0
//!   reorder: 0.1            # probability of an extra delay draw; default 0
//!   bandwidth: 10mbps       # bits per second per direction (bps, kbps, mbps, gbps);
//!                           # default unlimited. Each direction is a FIFO queue: a
//!                           # message waits for the earlier ones to be transmitted
//!   queue: 64               # most messages queued per direction of a bandwidth-limited
//!                           # link (1 to 65536, the default); more are dropped as
//!                           # `queue-full`
//!   cluster_secret: true    # every node holds one cluster secret: handshakes run
//!                           # Noise_XXpsk3 (PROTOCOL.md 6.10); default false
//! clock:
//!   skew: 200ms             # each clock starts off by up to ±skew; default 0s
//!   drift_ppm: 100          # each clock runs fast/slow by up to ±drift_ppm; default 0
//!                           # (at most 100000)
//! disk:
//!   fsync_latency: 1ms..5ms # default 1ms..5ms
//!   lose_unsynced: true     # a crash loses writes not yet fsynced; default true
//!   torn_writes: true       # a crash may tear the last unsynced record; default false
//!   corrupt_read: 0.001     # probability a read returns a flipped bit; default 0
//!   compaction_log_bytes: 65536 # compact a node's log from this many bytes of entries
//!                           # (and at least its state's size); default 4194304
//!   compaction_horizon: 10s # an absent neighbour pins compaction this long, then
//!                           # catches up by snapshot; default 1h
//! workload:                 # default: none
//!   - {at: 1s, node: a, put: {key: x, value: "1"}}
//!   - {at: 2s, node: b, delete: x}
//!   - {from: 0s, until: 60s, rate: 50/s, keys: 100, nodes: all, value_bytes: 8}
//!   - {rate: 20/s, keys: 40, deletes: 0.2, value_bytes: 0..65536,
//!      hot_keys: {keys: 2, share: 0.3, writers: 3}, burst: {every: 2s, count: 50}}
//!   - {at: 5s, node: a, ping: e}  # a routed ping, retried until answered (needs routing)
//! faults:                   # default: none; applied in time order, ties in file order
//!   - {at: 10s, partition: [[a, b], [c, d]]}   # unlisted nodes (e) form one more group
//!   - {at: 12s, cut: {from: a, to: b}}          # one way: a's messages to b are dropped
//!   - {at: 13s, link: {between: [a, c], loss: 0.5, latency: 100ms}}
//!   - {at: 15s, crash: c}
//!   - {at: 20s, restart: c}
//!   - {at: 21s, isolate: d}
//!   - {at: 22s, clock_jump: {node: b, by: -2s}}
//!   - {at: 23s, break: {between: [a, b]}}      # needs a stream link
//!   - {at: 30s, for: 2s, corrupt: {between: [a, b], probability: 0.1}}
//!   - {at: 31s, replay: {between: [a, b], count: 5}}  # count: 1 to 1000, default 1
//!   - {at: 32s, for: 2s, clog: {from: a, to: b}}   # or {between: [a, b]}: both ways
//!   - {at: 33s, for: 500ms, pause: c}
//!   - {at: 34s, for: 1s, disk_fault: {node: a, kind: fsync_fail}}  # | full | misdirected
//!   - {at: 35s, link: {between: [a, b], bandwidth: 64kbps, queue: 16}}
//!   - {at: 40s, heal: all}                      # or heal: [a, d]
//! chaos:                    # random faults from the seed; default: none
//!   until: 60s              # required in `chaos`
//!   crash: {every: 10s, downtime: 100ms..5s}
//!   partition: {every: 15s, duration: 1s..10s}
//!   cut: {every: 20s, duration: 1s..3s}
//!   clock_jump: {every: 30s, by: -1s..1s}
//!   corrupt: {every: 20s, duration: 1s..3s}
//!   replay: {every: 10s, count: 10}
//!   clog: {every: 20s, duration: 100ms..2s}
//!   pause: {every: 20s, duration: 100ms..1s}
//!   disk_fault: {every: 30s, duration: 100ms..1s}
//!   swarm: false            # per seed, leave out a random subset of the kinds above
//! expect:
//!   converged: true         # all nodes end with identical state; default true
//!   within: 30s             # ...this long after the faults end; default 30s
//!   no_data_loss: true      # every acknowledged write survives; default true
//! ```
//!
//! **Workload.** `put`, `delete` and `ping` items need `at` (before `duration`) and `node`;
//! a `ping` is retried every second, up to 10 times, and adds a `routing` check. A
//! random item needs `rate` (`N/s`, `N/ms` or `N/m`, at most 100,000 per second, for all its
//! nodes together) and `keys` (1 to 1,000,000); `from` defaults to 0s, `until` to
//! `duration` (`from` < `until` ≤ `duration`), `nodes` to `all`, `value_bytes` to 8 (at
//! most 65,536).
//!
//! Four optional keys make a random item bite. `deletes` (a probability, default 0) is the
//! share of operations that delete their key instead of putting it. `value_bytes` may be a
//! range `MIN..MAX`, both included: one value in four is `MIN` long, one in four `MAX` long,
//! the rest anywhere between, so values at and beyond the protocol's 32,768-byte limit are
//! written (the node refuses the longer ones, and the trace says so). `hot_keys: {keys, share,
//! writers}` sends a `share` of operations (required, a probability) to one of `keys` hot keys
//! (required, 1 to 1,000, named `hot0`, `hot1`, ...), each written by `writers` distinct
//! nodes of the item (1 to 64, default 2, at most the item's nodes) at the same instant, so
//! timestamps tie and last-writer-wins breaks ties by origin. `burst: {every, count}` (both
//! required) adds `count` operations (1 to 10,000) at one instant every `every` (at least
//! 1ms), the first at `from` + `every`, before `until`. Without these keys an item draws
//! exactly what it always drew, so existing seeds keep their traces.
//!
//! **Faults.** Each has `at` (before `duration`) and exactly one kind. A `partition` lists
//! groups; links between groups are blocked both ways, and nodes not listed form one more
//! group together. `link` overrides `latency`, `loss`, `duplicate` and `reorder` (all
//! optional) on one link, both ways. `isolate` blocks every link of a node. Network faults
//! add up until `heal`: `heal: all` restores every link to the `network` defaults, and
//! `heal: [a, d]` every link to or from a listed node; neither restarts crashed nodes nor
//! undoes clock jumps. A `crash` needs a running node and a `restart` a crashed one, in
//! time order. After the last fault and after `chaos.until`, the simulator heals every
//! link and restarts every crashed node, then checks `expect`.
//!
//! A fault may last: `{from: 5s, until: 8s, KIND: ...}` or `{at: 5s, for: 3s, KIND: ...}`
//! undoes exactly that fault at its end (partition, cut, link, isolate, crash, clock_jump,
//! corrupt, clog, pause, disk_fault; `clog` and `pause` must last).
//!
//! `drawn: true` on a fault (default false) marks one that chaos drew, as `ferry run
//! --export-faults` writes them: it is scheduled the way the chaos schedule is (announced
//! by a `chaos schedule:` line at the top of the trace, applied after the other faults of
//! the same instant, a partition as its first group against the rest) and, while the file
//! keeps a `chaos` section, it leaves the start of the liveness phase to `chaos.until`. So
//! an exported schedule replays to the same trace hash as the seed that drew it.
//!
//! **Adversarial faults.** `corrupt` damages each message on a link, both ways, with
//! `probability` (required): flipped bits, a cut tail or appended garbage, drawn from the
//! seed and traced. Streams are damaged too: this is the corruption that survives TCP's
//! checksum (or happens after it), delivered as the segment. `replay` delivers again up to
//! `count` messages per direction from the last 32 the link delivered, to the sessions in
//! force now (across restarts too). `clog` holds a link's messages (one way with
//! `from`/`to`, both with `between`) and releases them in order at its end. `pause` stops
//! a node without crashing it: its clock runs, and its messages, timers, disk completions
//! and commands wait for the end, in order. `link` also takes `bandwidth` and `queue`.
//! `disk_fault` (`node` and `kind`, both required) hits the node's next disk operation of
//! that kind, or every one while it lasts: `fsync_fail` (the sync reports failure; the node
//! never acknowledges what it covered and restarts from its disk, since nothing after the
//! last good sync may be assumed durable), `full` (appends fail with ENOSPC, so the next
//! sync fails the same way; reads keep working) and `misdirected` (an append lands at the
//! wrong offset and the disk reports success; only the WAL's checksums catch it, at the
//! next recovery; a node restarted after one may lose a write it acknowledged, so this is
//! outside what the no-data-loss check promises, see `scenarios/adversarial.yaml`).
//!
//! **Chaos.** Each kind present fires on average once `every` (at least 1ms) until
//! `until` (≤ `duration`): `crash` restarts the node after `downtime`; `partition` splits
//! the nodes into two random groups for `duration`; `cut` blocks one direction of a random
//! link for `duration`; `clock_jump` jumps a random clock by a value drawn from `by`;
//! `corrupt` damages a random link's messages (probability 0.2) for `duration`; `replay`
//! replays 1 to `count` messages each way on a random link; `clog` clogs a random link
//! (one way or both) for `duration`; `pause` pauses a random node for `duration`;
//! `disk_fault` makes a random node's fsyncs fail, or its disk full, for `duration`
//! (never `misdirected`).
//!
//! **Limits.** A file is at most 4 MiB, nests at most 64 levels, holds at most 250,000
//! YAML values and no scalar over 64 KiB; a flow collection (`[...]`, `{...}`) at the top
//! level or right after `- ` is at most 128 Ki characters (write longer lists in block
//! style); aliases (`*a`), tags (`!t`) and more than one document are refused. Errors read `FILE:LINE:COLUMN: message`, pointing at the
//! offending value (for an unknown key, the key; for a missing key, its mapping).

mod bless;
mod duration;
mod error;
mod events;
mod model;
mod parse;
mod quantity;
mod validate;
mod warnings;
mod write;
mod yaml;

use std::io::Read;
use std::path::Path;

pub use bless::bless;
pub use duration::DURATION_NS_MAX;
pub(crate) use error::suggest;
pub use error::{ErrorKind, QUOTED_CHARS_MAX, ScenarioError, Span};
pub use model::{
    Burst, Chaos, ChaosClockJump, ChaosCrash, ChaosReplay, ChaosWindow, Clock, Disk, DiskFaultKind, Expect,
    Fault, FaultKind, HotKeys, LinkOverride, LinkTransport, LivenessCause, Network, NodeIndex, NodeSelection,
    RandomPuts, RangeNs, Rate, Scenario, SignedRangeNs, Topology, Transport, ValueBytes, WorkloadItem,
};
pub use warnings::{Warning, warnings};
pub use write::{duration as format_duration_exact, to_yaml};

/// Parses a duration in the scenario notation (`250ms`, `5m`), for command-line flags.
///
/// # Errors
/// The problem, worded as in scenario files.
pub fn parse_duration(text: &str) -> Result<u64, ErrorKind> {
    duration::parse_duration_ns(text)
}

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
/// Most hot keys of a random workload item.
pub const HOT_KEYS_COUNT_MAX: u64 = 1_000;
/// Most nodes writing one hot operation.
pub const HOT_WRITERS_MAX: u64 = 64;
/// Most operations in one burst of a random workload item.
pub const BURST_OPERATIONS_MAX: u64 = 10_000;
/// Largest `key_bytes` of a random workload item: four times a node's limit, so a scenario
/// can make nodes refuse keys.
pub const KEY_BYTES_MAX: u32 = 4 << 10;
/// Largest `value_bytes` of a random workload item.
pub const VALUE_BYTES_MAX: u32 = 64 << 10;
/// Highest rate of a random workload item, in operations per second.
pub const RATE_PER_SECOND_MAX: u64 = 100_000;
/// Largest `clock.drift_ppm` (10%).
pub const DRIFT_PPM_MAX: u64 = 100_000;
/// Shortest `every` of a chaos kind (1ms), so chaos cannot flood the event queue.
pub const CHAOS_EVERY_NS_MIN: u64 = 1_000_000;
/// Largest `count` of a `replay` fault (the simulator remembers
/// [`REPLAY_HISTORY_MESSAGES_MAX`](ferry_simulator::sim::REPLAY_HISTORY_MESSAGES_MAX) messages
/// per direction and may pick one more than once).
pub const REPLAY_COUNT_MAX: u64 = 1_000;
/// Largest `queue` of a link, in messages.
pub const QUEUE_MESSAGES_MAX: u64 = ferry_simulator::network::QUEUE_MESSAGES_MAX_DEFAULT;

const _: () = assert!(SCALAR_BYTES_MAX as u64 <= FILE_BYTES_MAX);
// A scalar over the byte limit but within the lookahead gets the more precise message.
const _: () = assert!(SCALAR_BYTES_MAX < LOOKAHEAD_CHARS_MAX);
const _: () = assert!(NODE_COUNT_MAX <= YAML_VALUES_MAX);
const _: () = assert!(VALUE_BYTES_MAX as usize <= SCALAR_BYTES_MAX);

/// Reads, parses and validates the scenario file at `path`; messages name the file as
/// `path` displays.
///
/// At most [`FILE_BYTES_MAX`] + 1 bytes are read, whatever the file claims to be.
///
/// # Errors
/// [`ErrorKind::Read`] (without a position) when the file cannot be read,
/// [`ErrorKind::FileTooLarge`], [`ErrorKind::NotUtf8`], and everything [`parse()`] reports.
pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
    let path = path.as_ref();
    let file_label = path.display().to_string();
    let read_error = |error: std::io::Error| ScenarioError {
        file: file_label.clone(),
        span: None,
        kind: ErrorKind::Read { message: lowercase_first(&error.to_string()) },
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(FILE_BYTES_MAX + 1).read_to_end(&mut bytes).map_err(read_error)?;
    let length_bytes = bytes.len() as u64;
    if length_bytes > FILE_BYTES_MAX {
        let length_bytes =
            std::fs::metadata(path).map_or(length_bytes, |metadata| metadata.len().max(length_bytes));
        let kind = ErrorKind::FileTooLarge { length_bytes, maximum_bytes: FILE_BYTES_MAX };
        return Err(ScenarioError { file: file_label, span: Some(Span::START), kind });
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
            // The prefix is valid UTF-8 by construction.
            let valid = std::str::from_utf8(valid).unwrap_or_default();
            let span = Span::at_byte(valid, valid.len());
            return Err(ScenarioError { file: file_label, span: Some(span), kind: ErrorKind::NotUtf8 });
        }
    };
    parse(&file_label, &text)
}

/// Parses and validates scenario `text`; `file_label` is the `FILE` part of messages.
///
/// # Errors
/// The first problem in document order (sections are checked independently, and the
/// earliest position wins; the crash/restart walk comes last), as a [`ScenarioError`]
/// whose span points at the offending value. Never panics, whatever `text` holds.
pub fn parse(file_label: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let length_bytes = text.len() as u64;
    if length_bytes > FILE_BYTES_MAX {
        let kind = ErrorKind::FileTooLarge { length_bytes, maximum_bytes: FILE_BYTES_MAX };
        return Err(ScenarioError { file: file_label.to_owned(), span: Some(Span::START), kind });
    }
    let located = |error: error::Located| error.into_error(file_label);
    let tree = yaml::parse_tree(text).map_err(located)?;
    let (mut scenario, fault_sources) = parse::scenario(&tree).map_err(located)?;
    validate::faults(&mut scenario, &fault_sources).map_err(located)?;
    Ok(scenario)
}

/// OS messages start with a capital ("No such file"); ours are lowercase.
fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
