//! ferry's protocol as a sans-IO state machine.
//!
//! This crate owns the bytes on the wire and the replication logic behind them. It never
//! opens a socket or a file, spawns a thread, reads a clock or asks the OS for randomness:
//! time, randomness and I/O completions are inputs, and everything it wants done is an
//! output the caller drains.
//!
//! Layers, bottom up: [`varint`] → [`frame`] → [`envelope`] → [`message`] → [`session`] →
//! [`node`]. Storage side: [`clock`] stamps writes ([`steady`] keeps the
//! timers' time from going back), [`wal`] turns entries into log records
//! and back, [`storage`] names the disk requests that carry them, and [`store`] merges
//! entries into the replicated map. [`node`] ties everything into one state machine.
#![warn(missing_docs, unreachable_pub)]

pub mod clock;
pub mod entry;
pub mod envelope;
pub mod frame;
pub mod message;
pub mod node;
pub mod router;
pub mod session;
pub mod steady;
pub mod storage;
pub mod store;
pub mod varint;
pub mod wal;

pub use clock::{ClockError, HybridClock};
pub use entry::{NodeId, Operation, Timestamp, VersionVector, WalEntry};
pub use envelope::{Envelope, EnvelopeError, Flags, Header, MessageType};
pub use frame::{Decoded, FRAME_BYTES_MAX_DEFAULT, FrameDecoder, FrameError};
pub use message::{CloseCode, DecodeError, Message, decode_payload};
pub use node::{Escaped, Event, LinkId, LinkKind, Node, NodeConfig, NodeError, Output};
pub use session::{
    Connection, ConnectionEvent, HandshakeError, Identity, PeerInfo, Role, SessionConfig, SessionError,
    VersionRange,
};
pub use steady::SteadyClock;
pub use storage::{DiskCompletion, DiskRequest, MemoryDisk};
pub use store::{Applied, Conflict, ConflictReason, Digest, Register, Store, WriteId};
pub use varint::VarintError;
pub use wal::{DamageKind, Recovery, TailDamage, WAL_RECORD_BYTES_MAX, WalError};
