//! `ferry shrink` on real failures of a broken process. The scenarios in
//! `tests/scenarios/shrink/planted-*.yaml` pass with the correct adapter; every run here
//! plants a bug in every node instead ([`PlantedBug`], set through `run::Options` and
//! `shrink::Options`, which no flag reaches). A shrink must keep what the bug needs to show
//! and nothing else, and the shrunk file must pass again without the bug: the bug, not the
//! scenario, is the cause.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use ferry::run::{self, Report};
use ferry::scenario::{self, FaultKind, Scenario, Topology};
use ferry::shrink::{self, Options, Outcome, Signature};
use ferry_simulator::Trace;
use ferry_simulator::ferry::PlantedBug;

fn load(relative: &str) -> Scenario {
    scenario::load(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative))
        .expect("the repository's scenarios are valid")
}

/// One run of `scenario` with its seed, with `bug` planted or with the correct adapter.
fn run(scenario: &Scenario, bug: Option<PlantedBug>) -> Report {
    let seed = scenario.seed.expect("the planted scenarios carry their seed");
    run::run_with(
        scenario,
        seed,
        Trace::default(),
        run::Options { planted_bug: bug, ..run::Options::default() },
    )
}

fn shrink_with(file: &str, bug: PlantedBug, jobs: usize) -> Outcome {
    let input = load(file);
    let seed = input.seed.expect("the planted scenarios carry their seed");
    let cancel = AtomicBool::new(false);
    let header = |signature: &Signature| vec![format!("from {file} with {bug:?} planted: {signature}")];
    let options = Options { jobs, cancel: &cancel, interrupt: &cancel, planted_bug: Some(bug) };
    shrink::shrink(&input, seed, &header, options, &|_| {})
        .unwrap_or_else(|_| panic!("{file} fails with {bug:?} planted"))
}

/// Shrinks `file` with `bug` planted and checks the result: the input passes without the
/// bug and fails `check` with it; the shrunk file is small, fails the same way with the
/// bug, passes without it, replays to the same trace hash, and comes out byte for byte the
/// same when shrunk again (with two jobs). Returns the shrunk scenario.
fn assert_shrinks(
    file: &str,
    bug: PlantedBug,
    check: &str,
    kind: Option<&str>,
    faults_max: usize,
) -> Scenario {
    let input = load(file);
    let correct = run(&input, None);
    assert!(correct.passed(), "{file} passes without the bug: {:?}", correct.checks);
    let broken = run(&input, Some(bug));
    let signature = Signature::of(&broken).unwrap_or_else(|| panic!("{file} fails with {bug:?}"));
    assert_eq!((signature.check, signature.kind), (check, kind), "{file}: {:?}", broken.checks);

    let outcome = shrink_with(file, bug, 1);
    assert!(outcome.complete, "{file}: the search reached its fixpoint");
    assert_eq!(outcome.signature, signature, "{file}");
    let shrunk = scenario::parse("shrunk", &outcome.text).expect("the shrunk file parses");
    assert!(shrunk.nodes.len() <= 3, "{file}: {} nodes\n{}", shrunk.nodes.len(), outcome.text);
    assert!(shrunk.faults.len() <= faults_max, "{file}: {} faults\n{}", shrunk.faults.len(), outcome.text);
    assert!(shrunk.nodes.len() < input.nodes.len(), "{file}\n{}", outcome.text);
    assert!(shrunk.faults.len() < input.faults.len(), "{file}\n{}", outcome.text);
    assert!(outcome.text.lines().count() < 25, "{file}: a file read at a glance\n{}", outcome.text);
    assert_eq!(shrunk.seed, input.seed, "{file}: the file carries its seed");

    // With the bug it fails the same way, deterministically; without it, it passes.
    let first = run(&shrunk, Some(bug));
    let second = run(&shrunk, Some(bug));
    assert_eq!(
        Signature::of(&first).as_ref(),
        Some(&signature),
        "{file}: {:?}\n{}",
        first.checks,
        outcome.text
    );
    assert_eq!(first.trace_hash, second.trace_hash, "{file}");
    let correct = run(&shrunk, None);
    assert!(
        correct.passed(),
        "{file}: the shrunk file passes without the bug: {:?}\n{}",
        correct.checks,
        outcome.text
    );

    assert_eq!(shrink_with(file, bug, 2).text, outcome.text, "{file}: shrinking again, with 2 jobs");
    shrunk
}

/// Goal: a lost acknowledged write shrinks to the crash that loses it. Method:
/// planted-ack-before-sync (5 nodes, 10 faults, random writes and deletes on a slow disk)
/// with `AckBeforeSync`: a node that restarts without a write it acknowledged fails
/// `invariants` (the checker's own test of an ack before fsync, first among the failed
/// checks). What is left is a crash within the fsync latency of a write before it, and the
/// write is lost for good: `no_data_loss` fails too (`key-absent`).
#[test]
fn ack_before_sync_shrinks_to_its_crash() {
    let shrunk = assert_shrinks(
        "tests/scenarios/shrink/planted-ack-before-sync.yaml",
        PlantedBug::AckBeforeSync,
        "invariants",
        None,
        2,
    );
    let crashes = shrunk.faults.iter().filter(|fault| matches!(fault.kind, FaultKind::Crash { .. })).count();
    assert_eq!(crashes, 1, "{shrunk:?}");
    assert!(!shrunk.workload.is_empty(), "{shrunk:?}");
    let report = run(&shrunk, Some(PlantedBug::AckBeforeSync));
    assert!(report.failure_kinds.contains(&("no_data_loss", "key-absent")), "{:?}", report.checks);
}

/// Goal: a relay bug shrinks to the shortest line that shows it. Method:
/// planted-forget-to-relay (6 nodes in a line, 4 faults, random writes) with
/// `ForgetToRelay`: `converged` fails (`not-converged`); three nodes in a line and no fault
/// are left, since a write needs two hops to miss a node and a full mesh needs none.
#[test]
fn forget_to_relay_shrinks_to_a_line_of_three() {
    let shrunk = assert_shrinks(
        "tests/scenarios/shrink/planted-forget-to-relay.yaml",
        PlantedBug::ForgetToRelay,
        "converged",
        Some("not-converged"),
        0,
    );
    assert_eq!(shrunk.nodes.len(), 3, "{shrunk:?}");
    assert_eq!(shrunk.topology, Topology::Line, "{shrunk:?}");
}
