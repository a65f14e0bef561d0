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
//!
//! # Driving a node
//!
//! Two nodes over an in-memory datagram link: the caller moves frames, completes disk
//! syncs and passes time; a write is acknowledged once its sync completes and reaches the
//! other node without a socket, a thread or a clock.
//!
//! ```
//! use bytes::Bytes;
//! use ferry_protocol::session::{Identity, Role, SessionConfig};
//! use ferry_protocol::{DiskRequest, Event, LinkKind, Node, NodeConfig, Output};
//! use rand_chacha::ChaCha20Rng;
//! use rand_chacha::rand_core::SeedableRng;
//!
//! let node = |name: &str, seed: u64| {
//!     let mut rng = ChaCha20Rng::seed_from_u64(seed);
//!     let session = SessionConfig::new(name, Identity::generate(&mut rng));
//!     // An empty WAL: a node that never ran.
//!     Node::recover(NodeConfig::new(session), &[], Box::new(rng)).expect("valid settings")
//! };
//! let mut nodes = [node("a", 1), node("b", 2)];
//! nodes[0].link_up(0, 1, LinkKind::Datagram, Role::Initiator);
//! nodes[1].link_up(0, 0, LinkKind::Datagram, Role::Responder);
//! nodes[0].put(0, Bytes::from_static(b"greeting"), Bytes::from_static(b"hello")).expect("a valid write");
//!
//! let mut acknowledged = false;
//! for step in 0..100u64 {
//!     let now_ns = step * 1_000_000;
//!     for index in 0..2 {
//!         nodes[index].handle_timeout(now_ns);
//!         while let Some(output) = nodes[index].poll() {
//!             match output {
//!                 // Link `n` leads to node `n`: deliver the frame at once.
//!                 Output::Send { link, frame, .. } => nodes[link as usize].handle_datagram(now_ns, index as u64, frame),
//!                 // A real node fsyncs here; memory is durable enough for an example.
//!                 Output::Disk(DiskRequest::Sync { sync_id }) => nodes[index].handle_synced(now_ns, sync_id),
//!                 Output::Event(Event::Acked { .. }) => acknowledged = true,
//!                 _ => {}
//!             }
//!         }
//!     }
//! }
//! assert!(acknowledged, "the write was acknowledged once durable");
//! assert_eq!(nodes[1].get(b"greeting").map(|value| &value[..]), Some(&b"hello"[..]));
//! assert_eq!(nodes[0].digest(), nodes[1].digest());
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod clock;
pub mod entry;
pub mod envelope;
pub mod frame;
pub mod merkle;
pub mod message;
pub mod node;
pub mod router;
pub mod seal;
pub mod session;
pub mod steady;
pub mod storage;
pub mod store;
pub mod text;
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
