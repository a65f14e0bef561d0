//! Warnings: a valid scenario that cannot test what it says. A fault that the liveness
//! phase undoes the moment it happens, a link fault on a pair the topology does not link,
//! loss on a stream link: each passes every check while exercising nothing, which is worse
//! than an error because it looks like coverage.
//!
//! This module only reads the validated [`Scenario`]; `ferry check` prints the warnings
//! and `ferry run` prints them above its report. What can only be known by running (a
//! link fault that no message crossed) is the run's to report.

use super::Span;
use super::events::format_duration;
use super::model::{FaultKind, LivenessCause, Scenario, Transport};

/// Something in a valid scenario that has no effect, or less than it seems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where: the fault's mapping, or `None` for the file as a whole.
    pub span: Option<Span>,
    /// What, and how to fix it.
    pub message: String,
}

impl Warning {
    /// `FILE:LINE:COLUMN: warning: message` (or `FILE: warning: message`).
    #[must_use]
    pub fn render(&self, file: &str) -> String {
        match self.span {
            Some(span) => format!("{file}:{span}: warning: {}", self.message),
            None => format!("{file}: warning: {}", self.message),
        }
    }
}

/// Every warning for `scenario`, in file order (faults are checked in time order, which
/// for a validated scenario may differ from file order; the result is sorted by position).
#[must_use]
pub fn warnings(scenario: &Scenario) -> Vec<Warning> {
    let mut found = Vec::new();
    let (liveness_ns, cause) = scenario.liveness_start();
    let checks_anything = scenario.expect.converged || scenario.expect.no_data_loss;
    if liveness_ns >= scenario.duration_ns && checks_anything && cause != LivenessCause::Nothing {
        found.push(Warning {
            span: None,
            message: format!(
                "the liveness phase starts at the end of the run ({}), so nothing has time to converge; end the \
                 workload and the faults before `duration`",
                format_duration(scenario.duration_ns)
            ),
        });
    }
    for link in &scenario.network.links {
        let [first, second] = link.between;
        if link.transport == scenario.network.transport {
            found.push(Warning {
                span: None,
                message: format!(
                    "`network.links` gives `{}` and `{}` the run's own transport: their entry has no effect",
                    scenario.nodes[first], scenario.nodes[second]
                ),
            });
        }
        if !scenario.topology.connects(first, second, scenario.nodes.len()) {
            found.push(Warning {
                span: None,
                message: format!(
                    "the topology has no link between `{}` and `{}`: their entry in `network.links` has no effect",
                    scenario.nodes[first], scenario.nodes[second]
                ),
            });
        }
    }
    for fault in &scenario.faults {
        let instant_and_last = fault.until_ns.is_none() && fault.at_ns >= liveness_ns;
        let undone_at_once = matches!(
            fault.kind,
            FaultKind::Partition { .. }
                | FaultKind::Cut { .. }
                | FaultKind::Link(_)
                | FaultKind::Isolate { .. }
                | FaultKind::Crash { .. }
                | FaultKind::Corrupt { .. }
        );
        if instant_and_last && undone_at_once {
            found.push(Warning {
                span: Some(fault.span),
                message: format!(
                    "this fault is undone at once: the liveness phase starts at {} and heals every link and restarts \
                     every node; give it a length (`for: 5s`) or let work continue after it",
                    format_duration(liveness_ns)
                ),
            });
        }
        match &fault.kind {
            FaultKind::Link(change) => {
                let [first, second] = change.between;
                if !scenario.topology.connects(first, second, scenario.nodes.len()) {
                    found.push(no_link(fault.span, scenario, first, second, "link"));
                }
                let rate = change.bandwidth_bits_per_second.or(scenario.network.bandwidth_bits_per_second);
                if change.queue_messages_max.is_some() && rate.is_none() {
                    found.push(queue_without_bandwidth(Some(fault.span)));
                }
                let stream = scenario.network.transport_between(first, second) == Transport::Stream;
                if stream && (change.loss.is_some() || change.duplicate.is_some() || change.reorder.is_some())
                {
                    found.push(Warning {
                        span: Some(fault.span),
                        message:
                            "`loss`, `duplicate` and `reorder` do not apply to stream links (only `latency` \
                                  does); use `network.transport: datagram`, or `break` and `partition` faults"
                                .to_owned(),
                    });
                }
            }
            FaultKind::Cut { from, to } if !scenario.topology.connects(*from, *to, scenario.nodes.len()) => {
                found.push(no_link(fault.span, scenario, *from, *to, "cut"));
            }
            FaultKind::Corrupt { between: [first, second], .. }
            | FaultKind::Replay { between: [first, second], .. }
                if !scenario.topology.connects(*first, *second, scenario.nodes.len()) =>
            {
                let what = if matches!(fault.kind, FaultKind::Corrupt { .. }) { "corrupt" } else { "replay" };
                found.push(no_link(fault.span, scenario, *first, *second, what));
            }
            FaultKind::Clog { from, to, .. }
                if !scenario.topology.connects(*from, *to, scenario.nodes.len()) =>
            {
                found.push(no_link(fault.span, scenario, *from, *to, "clog"));
            }
            FaultKind::Corrupt { probability, .. } if *probability == 0.0 => found.push(Warning {
                span: Some(fault.span),
                message: "this `corrupt` fault has probability 0: it damages nothing".to_owned(),
            }),
            FaultKind::Partition { groups } if groups.len() < 2 => found.push(Warning {
                span: Some(fault.span),
                message: "this partition has one group: it separates nothing".to_owned(),
            }),
            _ => {}
        }
    }
    if scenario.network.queue_messages_max.is_some() && scenario.network.bandwidth_bits_per_second.is_none() {
        found.push(queue_without_bandwidth(None));
    }
    found.sort_by_key(|warning| warning.span);
    found
}

fn queue_without_bandwidth(span: Option<Span>) -> Warning {
    Warning {
        span,
        message:
            "`queue` bounds a bandwidth-limited link's queue, but this link has no `bandwidth`: it has no \
                  effect"
                .to_owned(),
    }
}

fn no_link(span: Span, scenario: &Scenario, first: usize, second: usize, what: &str) -> Warning {
    Warning {
        span: Some(span),
        message: format!(
            "the topology has no link between `{}` and `{}`: this `{what}` fault has no effect",
            scenario.nodes[first], scenario.nodes[second]
        ),
    }
}
