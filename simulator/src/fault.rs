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

    /// True for the kinds that can be in force for a while and then be undone exactly:
    /// partition, cut, link, isolate, crash (undone by a restart) and clock jump (undone by
    /// the opposite jump).
    #[must_use]
    pub const fn is_undoable(&self) -> bool {
        matches!(
            self,
            Self::Partition { .. }
                | Self::Cut { .. }
                | Self::Link { .. }
                | Self::Isolate { .. }
                | Self::Crash { .. }
                | Self::ClockJump { .. }
        )
    }

    /// The fault with node names, as the trace prints it (`partition [a b] [c]`).
    #[must_use]
    pub fn named<'a>(&'a self, names: &'a [String]) -> impl fmt::Display + 'a {
        Named(self, names)
    }

    /// True for the kinds that add a layer to the network state.
    #[must_use]
    pub(crate) const fn is_network_layer(&self) -> bool {
        matches!(self, Self::Partition { .. } | Self::Cut { .. } | Self::Link { .. } | Self::Isolate { .. })
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
                    write!(formatter, " latency={}..{}", Duration(minimum), Duration(maximum))?;
                }
                if let Some(loss) = change.loss {
                    write!(formatter, " loss={loss}")?;
                }
                if let Some(duplicate) = change.duplicate {
                    write!(formatter, " duplicate={duplicate}")?;
                }
                if let Some(reorder) = change.reorder {
                    write!(formatter, " reorder={reorder}")?;
                }
                Ok(())
            }
            Fault::Crash { node } => write!(formatter, "crash {}", name(node)),
            Fault::Restart { node } => write!(formatter, "restart {}", name(node)),
            Fault::Isolate { node } => write!(formatter, "isolate {}", name(node)),
            Fault::ClockJump { node, by_ns } => {
                let sign = if *by_ns < 0 { "-" } else { "+" };
                write!(formatter, "clock-jump {} by {sign}{}", name(node), Duration(by_ns.unsigned_abs()))
            }
            Fault::Break { first, second } => write!(formatter, "break {} <-> {}", name(first), name(second)),
            Fault::HealAll => formatter.write_str("heal all"),
            Fault::HealNodes { nodes } => {
                let names: Vec<&str> = nodes.iter().map(name).collect();
                write!(formatter, "heal [{}]", names.join(" "))
            }
        }
    }
}

/// A duration in the scenario's own notation, exact to the nanosecond: `250ms`, `1.5s`,
/// `3us`, `0ns`.
pub(crate) struct Duration(pub(crate) u64);

impl fmt::Display for Duration {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0;
        let units: [(u64, &str); 4] = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us"), (1, "ns")];
        for (scale, unit) in units {
            if nanos >= scale || scale == 1 {
                let whole = nanos / scale;
                let fraction = nanos % scale;
                if fraction == 0 {
                    return write!(formatter, "{whole}{unit}");
                }
                let digits = scale.ilog10() as usize;
                let text = format!("{fraction:0digits$}");
                return write!(formatter, "{whole}.{}{unit}", text.trim_end_matches('0'));
            }
        }
        write!(formatter, "0s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_exactly_in_scenario_notation() {
        let cases =
            [(0, "0ns"), (7, "7ns"), (1_500, "1.5us"), (250_000_000, "250ms"), (1_500_000_000, "1.5s")];
        for (nanos, text) in cases {
            assert_eq!(Duration(nanos).to_string(), text);
        }
        assert_eq!(Duration(3_000_000_001).to_string(), "3.000000001s");
    }

    #[test]
    fn link_faults_print_every_setting() {
        let names = ["a".to_owned(), "b".to_owned()];
        let fault = Fault::Link {
            first: 0,
            second: 1,
            change: LinkOverride {
                latency_ns: Some((1_000_000, 20_000_000)),
                loss: Some(0.5),
                duplicate: Some(0.25),
                reorder: Some(1.0),
            },
        };
        assert_eq!(
            Named(&fault, &names).to_string(),
            "link a <-> b latency=1ms..20ms loss=0.5 duplicate=0.25 reorder=1"
        );
    }
}
