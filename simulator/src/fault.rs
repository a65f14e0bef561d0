//! Scripted faults: what a scenario's `faults` entries (and chaos) turn into.

use std::fmt;

use crate::network::LinkOverride;

/// One fault, applied at a scheduled virtual time.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Split the nodes into groups that cannot talk to each other; unlisted nodes form
    /// one more group together.
    Partition {
        /// The groups, as node indices.
        groups: Vec<Vec<u32>>,
    },
    /// Block messages from `from` to `to` (one way).
    Cut {
        /// Sender side.
        from: u32,
        /// Receiver side.
        to: u32,
    },
    /// Change one link's behaviour (both directions).
    Link {
        /// One end.
        first: u32,
        /// The other end.
        second: u32,
        /// What changes.
        change: LinkOverride,
    },
    /// Stop a node, losing its memory and unsynced disk writes.
    Crash {
        /// The node.
        node: u32,
    },
    /// Start a crashed node again from its disk.
    Restart {
        /// The node.
        node: u32,
    },
    /// Cut a node off from everyone.
    Isolate {
        /// The node.
        node: u32,
    },
    /// Move a node's clock.
    ClockJump {
        /// The node.
        node: u32,
        /// Signed amount.
        by_ns: i64,
    },
    /// Break the stream connection between two nodes.
    Break {
        /// One end.
        first: u32,
        /// The other end.
        second: u32,
    },
    /// Remove every partition, cut, isolation and link override.
    HealAll,
    /// Restore every link touching these nodes.
    HealNodes {
        /// The nodes.
        nodes: Vec<u32>,
    },
}

impl Fault {
    /// The stable name used in traces and fault coverage.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Partition { .. } => "partition",
            Self::Cut { .. } => "cut",
            Self::Link { .. } => "link",
            Self::Crash { .. } => "crash",
            Self::Restart { .. } => "restart",
            Self::Isolate { .. } => "isolate",
            Self::ClockJump { .. } => "clock-jump",
            Self::Break { .. } => "break",
            Self::HealAll | Self::HealNodes { .. } => "heal",
        }
    }
}

/// Formats a fault with node names.
pub(crate) struct Named<'a>(pub(crate) &'a Fault, pub(crate) &'a [String]);

impl fmt::Display for Named<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |node: &u32| self.1.get(*node as usize).map_or("?", String::as_str);
        match self.0 {
            Fault::Partition { groups } => {
                formatter.write_str("partition")?;
                for group in groups {
                    let names: Vec<&str> = group.iter().map(name).collect();
                    write!(formatter, " [{}]", names.join(" "))?;
                }
                Ok(())
            }
            Fault::Cut { from, to } => write!(formatter, "cut {} -> {}", name(from), name(to)),
            Fault::Link { first, second, change } => {
                write!(formatter, "link {} <-> {}", name(first), name(second))?;
                if let Some((minimum, maximum)) = change.latency_ns {
                    write!(formatter, " latency={minimum}ns..{maximum}ns")?;
                }
                if let Some(loss) = change.loss {
                    write!(formatter, " loss={loss}")?;
                }
                if let Some(duplicate) = change.duplicate {
                    write!(formatter, " duplicate={duplicate}")?;
                }
                Ok(())
            }
            Fault::Crash { node } => write!(formatter, "crash {}", name(node)),
            Fault::Restart { node } => write!(formatter, "restart {}", name(node)),
            Fault::Isolate { node } => write!(formatter, "isolate {}", name(node)),
            Fault::ClockJump { node, by_ns } => write!(formatter, "clock-jump {} by {by_ns}ns", name(node)),
            Fault::Break { first, second } => write!(formatter, "break {} <-> {}", name(first), name(second)),
            Fault::HealAll => formatter.write_str("heal all"),
            Fault::HealNodes { nodes } => {
                let names: Vec<&str> = nodes.iter().map(name).collect();
                write!(formatter, "heal [{}]", names.join(" "))
            }
        }
    }
}
