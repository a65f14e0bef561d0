//! "gossip-ping": a tiny process used by benchmarks and tests. It shows that the simulator
//! core hosts anything implementing [`Process`], not only ferry nodes.
//!
//! Every `period` each node sends a 64-byte PING to a uniformly random other node; a node
//! receiving a PING answers with a 64-byte PONG. Nothing touches the disk.

use std::fmt;

use bytes::Bytes;

use crate::network::LinkParams;
use crate::process::{Context, Process};
use crate::random;
use crate::sim::{SimConfig, Simulation};
use crate::trace::Trace;
use crate::trace::{TraceHasher, TraceRecord};

/// Size of every ping and pong.
pub const MESSAGE_BYTES: usize = 64;

static PING: [u8; MESSAGE_BYTES] = {
    let mut bytes = [0u8; MESSAGE_BYTES];
    bytes[0] = b'P';
    bytes
};
static PONG: [u8; MESSAGE_BYTES] = {
    let mut bytes = [0u8; MESSAGE_BYTES];
    bytes[0] = b'O';
    bytes
};

/// A type with no values: the ping process emits no events and takes no commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Never {}

impl fmt::Display for Never {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl TraceRecord for Never {
    fn hash_into(&self, _: &mut TraceHasher) {
        match *self {}
    }
}

/// Configuration shared by every ping node.
#[derive(Debug, Clone, Copy)]
pub struct PingConfig {
    /// Nodes in the run.
    pub nodes_count: u32,
    /// Time between pings, in nanoseconds of the node's clock.
    pub period_ns: u64,
}

/// One ping node's counters.
#[derive(Debug, Clone, Default)]
pub struct PingNode {
    period_ns: u64,
    nodes_count: u32,
    next_ping_ns: u64,
    /// PINGs sent.
    pub pings_sent: u64,
    /// PINGs received.
    pub pings_received: u64,
    /// PONGs received.
    pub pongs_received: u64,
}

impl Process for PingNode {
    type Config = PingConfig;
    type Command = Never;
    type Event = Never;

    fn boot(config: &PingConfig, context: &mut Context<'_, Never>, _disk: &[u8]) -> Self {
        // A random whole-millisecond phase, as in the anchor benchmark.
        let phase_ns = random::uniform(context.rng(), 0, 9) * 1_000_000;
        let next_ping_ns = context.now_ns() + phase_ns;
        context.set_timer(Some(next_ping_ns));
        Self { period_ns: config.period_ns, nodes_count: config.nodes_count, next_ping_ns, ..Self::default() }
    }

    fn on_message(&mut self, context: &mut Context<'_, Never>, from: u32, bytes: Bytes) {
        if bytes.first() == Some(&b'P') {
            self.pings_received += 1;
            context.send(from, Bytes::from_static(&PONG));
        } else {
            self.pongs_received += 1;
        }
    }

    fn on_timer(&mut self, context: &mut Context<'_, Never>) {
        if self.nodes_count > 1 {
            let mut peer = random::uniform(context.rng(), 0, u64::from(self.nodes_count) - 2) as u32;
            if peer >= context.node() {
                peer += 1;
            }
            context.send(peer, Bytes::from_static(&PING));
            self.pings_sent += 1;
        }
        self.next_ping_ns += self.period_ns;
        context.set_timer(Some(self.next_ping_ns));
    }

    fn on_disk_synced(&mut self, _: &mut Context<'_, Never>, _: u64) {}

    fn on_link_up(&mut self, _: &mut Context<'_, Never>, _: u32, _: bool) {}

    fn on_link_down(&mut self, _: &mut Context<'_, Never>, _: u32) {}

    fn on_command(&mut self, _: &mut Context<'_, Never>, command: Never) {
        match command {}
    }

    fn describe_message(bytes: &[u8]) -> String {
        if bytes.first() == Some(&b'P') { "PING".to_owned() } else { "PONG".to_owned() }
    }
}

/// The gossip-ping benchmark setup: `nodes_count` nodes named `n0..`, a full mesh with latency
/// uniform in 1–20 ms and 5% loss, pinging every 10 ms.
#[must_use]
pub fn gossip_ping(nodes_count: u32, seed: u64, trace: Trace) -> Simulation<PingNode> {
    let mut config = SimConfig::new(seed, (0..nodes_count).map(|index| format!("n{index}")).collect());
    config.link = LinkParams {
        latency_ns_min: 1_000_000,
        latency_ns_max: 20_000_000,
        loss: 0.05,
        ..LinkParams::default()
    };
    Simulation::new(config, PingConfig { nodes_count, period_ns: 10_000_000 }, trace)
}
