//! Checks across the whole timeline, once every item is valid on its own.
//!
//! This module orders the scripted faults by time (ties keep document order) and walks them
//! to make sure every `crash` hits a running node and every `restart` a crashed one. Random
//! `chaos` faults are drawn at run time and are the simulator's to reconcile. It must not
//! read YAML.

use super::error::{ErrorKind, Located};
use super::events::FaultSource;
use super::model::{FaultKind, Scenario};

/// Sorts `scenario.faults` by time and checks crash and restart order.
///
/// `sources` is parallel to `scenario.faults`, in document order.
///
/// # Errors
/// [`ErrorKind::AlreadyCrashed`] and [`ErrorKind::NotCrashed`] at the offending node name,
/// for the earliest offending fault in time.
pub(crate) fn faults(scenario: &mut Scenario, sources: &[FaultSource]) -> Result<(), Located> {
    debug_assert_eq!(scenario.faults.len(), sources.len());
    let mut order: Vec<usize> = (0..scenario.faults.len()).collect();
    // A stable sort keeps document order for faults at the same time.
    order.sort_by_key(|&index| scenario.faults[index].at_ns);

    // For each node, `at` (as written) of the crash that took it down, and when a
    // time-bounded crash brings it back, while it is down.
    let mut crashed_since: Vec<Option<(&str, Option<u64>)>> = vec![None; scenario.nodes.len()];
    for &index in &order {
        let source = &sources[index];
        let fault = &scenario.faults[index];
        // A time-bounded crash restarts its node at its end.
        for since in crashed_since.iter_mut() {
            if since.is_some_and(|(_, until_ns)| until_ns.is_some_and(|until_ns| until_ns <= fault.at_ns)) {
                *since = None;
            }
        }
        match fault.kind {
            FaultKind::Crash { node } => {
                if let Some((since, _)) = crashed_since[node] {
                    let name = scenario.nodes[node].clone();
                    let kind = ErrorKind::AlreadyCrashed { name, since: since.to_owned() };
                    return Err(Located::new(source.subject_span, kind));
                }
                crashed_since[node] = Some((&source.at_text, fault.until_ns));
            }
            // A node that a time-bounded crash took down comes back by itself.
            FaultKind::Restart { node } if !matches!(crashed_since[node].take(), Some((_, None))) => {
                let name = scenario.nodes[node].clone();
                let kind = ErrorKind::NotCrashed { name, at: source.at_text.clone() };
                return Err(Located::new(source.subject_span, kind));
            }
            _ => {}
        }
    }

    let mut slots: Vec<_> = std::mem::take(&mut scenario.faults).into_iter().map(Some).collect();
    // Each index appears once in `order`, so each slot is taken exactly once.
    scenario.faults = order.iter().filter_map(|&index| slots[index].take()).collect();
    Ok(())
}
