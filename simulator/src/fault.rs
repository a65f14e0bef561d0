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
    /// Damage messages on one link (both directions): each may get bit flips, a cut-short
    /// tail or appended garbage, drawn from the network stream.
    Corrupt {
        /// One end.
        first: u32,
        /// The other end.
        second: u32,
        /// Probability that one message is damaged.
        probability: f64,
    },
    /// Deliver again up to `count` messages per direction drawn from the link's recent
    /// history (see [`REPLAY_HISTORY_MESSAGES_MAX`](crate::sim::REPLAY_HISTORY_MESSAGES_MAX)),
    /// to whatever session is current: across restarts too.
    Replay {
        /// One end.
        first: u32,
        /// The other end.
        second: u32,
        /// Messages per direction.
        count: u32,
    },
    /// Hold every message from `from` to `to` (and back, with `both`), then release them in
    /// order, in one burst, when the fault ends.
    Clog {
        /// Sender side.
        from: u32,
        /// Receiver side.
        to: u32,
        /// Also hold `to`'s messages to `from`.
        both: bool,
    },
    /// The node stops handling events (a GC pause); its clock runs on, and its messages,
    /// timers, disk completions and commands wait for the end of the pause, in order.
    Pause {
        /// The node.
        node: u32,
    },
    /// The node's disk misbehaves: for the next operation, or for the whole window when
    /// the fault is time-bounded.
    Disk {
        /// The node.
        node: u32,
        /// What goes wrong.
        kind: DiskFaultKind,
    },
    /// Remove every partition, cut, isolation and link override.
    HealAll,
    /// Restore every link touching these nodes.
    HealNodes {
        /// The nodes.
        nodes: Vec<u32>,
    },
}

/// What a disk fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiskFaultKind {
    /// An fsync reports failure. The bytes it covered are not durable, and the host is
    /// told ([`Process::on_disk_sync_failed`](crate::process::Process::on_disk_sync_failed)).
    FsyncFail,
    /// The disk is full: appends are refused (ENOSPC), and the next sync reports the
    /// failure; reads keep working.
    Full,
    /// An append lands at the wrong offset: its intended place keeps stale bytes (zeros),
    /// the disk reports success, and only a checksum on recovery can tell.
    Misdirected,
}

impl DiskFaultKind {
    /// The stable name used in traces and fault coverage.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::FsyncFail => "fsync-fail",
            Self::Full => "disk-full",
            Self::Misdirected => "misdirected-write",
        }
    }
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
            Self::Corrupt { .. } => "corrupt",
            Self::Replay { .. } => "replay",
            Self::Clog { .. } => "clog",
            Self::Pause { .. } => "pause",
            Self::Disk { kind, .. } => kind.name(),
            Self::HealAll | Self::HealNodes { .. } => "heal",
        }
    }

    /// True for the kinds that can be in force for a while and then be undone exactly:
    /// partition, cut, link, isolate, corrupt, clog (released), pause (resumed), disk
    /// faults (the disk behaves again), crash (undone by a restart) and clock jump (undone
    /// by the opposite jump).
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
                | Self::Corrupt { .. }
                | Self::Clog { .. }
                | Self::Pause { .. }
                | Self::Disk { .. }
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
        matches!(
            self,
            Self::Partition { .. }
                | Self::Cut { .. }
                | Self::Link { .. }
                | Self::Isolate { .. }
                | Self::Corrupt { .. }
                | Self::Clog { .. }
        )
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
                if let Some(bytes_per_second) = change.bandwidth_bytes_per_second {
                    write!(formatter, " bandwidth={}bps", bytes_per_second.saturating_mul(8))?;
                }
                if let Some(queue) = change.queue_messages_max {
                    write!(formatter, " queue={queue}")?;
                }
                Ok(())
            }
            Fault::Corrupt { first, second, probability } => {
                write!(formatter, "corrupt {} <-> {} probability={probability}", name(first), name(second))
            }
            Fault::Replay { first, second, count } => {
                write!(formatter, "replay {} <-> {} count={count}", name(first), name(second))
            }
            Fault::Clog { from, to, both } => {
                let arrow = if *both { "<->" } else { "->" };
                write!(formatter, "clog {} {arrow} {}", name(from), name(to))
            }
            Fault::Pause { node } => write!(formatter, "pause {}", name(node)),
            Fault::Disk { node, kind } => write!(formatter, "disk-fault {} kind={}", name(node), kind.name()),
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
                bandwidth_bytes_per_second: Some(8_000),
                queue_messages_max: Some(4),
            },
        };
        assert_eq!(
            Named(&fault, &names).to_string(),
            "link a <-> b latency=1ms..20ms loss=0.5 duplicate=0.25 reorder=1 bandwidth=64000bps queue=4"
        );
    }

    #[test]
    fn adversarial_faults_print_every_setting() {
        let names = ["a".to_owned(), "b".to_owned()];
        let cases = [
            (Fault::Corrupt { first: 0, second: 1, probability: 0.25 }, "corrupt a <-> b probability=0.25"),
            (Fault::Replay { first: 1, second: 0, count: 3 }, "replay b <-> a count=3"),
            (Fault::Clog { from: 0, to: 1, both: false }, "clog a -> b"),
            (Fault::Clog { from: 0, to: 1, both: true }, "clog a <-> b"),
            (Fault::Pause { node: 1 }, "pause b"),
            (Fault::Disk { node: 0, kind: DiskFaultKind::FsyncFail }, "disk-fault a kind=fsync-fail"),
        ];
        for (fault, text) in cases {
            assert_eq!(Named(&fault, &names).to_string(), text);
        }
    }
}
