//! `ferry shrink`, `ferry run --export-faults` and the scenario writer they share.
//!
//! The failures shrunk here are real runs of the real protocol whose expectations cannot
//! hold (tests/scenarios/shrink/): a `within` shorter than one message's latency, a
//! `converged: false` that nothing keeps apart, and a misdirected disk write (outside what a
//! lone WAL survives) followed by a restart. Nothing in production code is bent for them.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use ferry::run;
use ferry::scenario::{self, Scenario, Span};
use ferry::shrink::{self, Options, Outcome, Signature};
use ferry_simulator::Trace;
use support::{ferry, fresh_directory};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn load(relative: &str) -> Scenario {
    scenario::load(root().join(relative)).expect("the repository's scenarios are valid")
}

/// The model without positions, which differ between two texts of one scenario.
fn without_spans(mut scenario: Scenario) -> Scenario {
    scenario.faults.iter_mut().for_each(|fault| fault.span = Span::START);
    scenario
}

fn yaml_files(directory: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(directory)
        .expect("the directory exists")
        .map(|entry| entry.expect("a readable entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "yaml") {
            found.push(path);
        }
    }
}

/// Goal: the writer loses nothing. Method: every scenario in the repository, and the export
/// of each for seed 1, written out and parsed back by our own parser, gives the same model.
#[test]
fn every_library_scenario_round_trips_through_the_writer() {
    let mut files = Vec::new();
    yaml_files(&root().join("scenarios"), &mut files);
    yaml_files(&root().join("tests/scenarios"), &mut files);
    assert!(files.len() >= 20, "found only {files:?}");
    for file in files {
        let original = scenario::load(&file).expect("the repository's scenarios are valid");
        for model in [original.clone(), ferry::chaos::export(&original, 1)] {
            let text = scenario::to_yaml(&model, &["a header line".to_owned()]);
            let parsed = scenario::parse("written", &text).unwrap_or_else(|error| {
                panic!("{}: the written file does not parse: {error}\n{text}", file.display())
            });
            assert_eq!(without_spans(parsed), without_spans(model), "{}:\n{text}", file.display());
        }
    }
}

/// Goal: free text is escaped by the writer, never able to end a scalar or a line. Method:
/// a name, a key and a value full of YAML syntax, quotes, newlines and control characters.
#[test]
fn hostile_text_round_trips() {
    let mut model = load("tests/scenarios/shrink/stubborn.yaml");
    // Names may not hold control characters (they reach terminals); the rest is fair game.
    model.name = "x\": [1] #: {a: b} '\\ \u{2028}é".to_owned();
    model.workload.push(scenario::WorkloadItem::Put {
        at_ns: 1_000_000,
        node: 1,
        key: "- {at: 0s}\r\n'\\".to_owned(),
        value: "\"\u{0}\u{7f}: ]".to_owned(),
    });
    let text = scenario::to_yaml(&model, &["from a path\nwith a newline".to_owned()]);
    let parsed = scenario::parse("written", &text).expect("the writer escapes what it writes");
    assert_eq!(without_spans(parsed), without_spans(model));
}

/// Goal: a long list of node names is written so that it reads back. Method: 4,000 names
/// of 40 characters (168,000 characters, past the bound on a flow list).
#[test]
fn long_node_lists_round_trip() {
    let mut model = load("tests/scenarios/shrink/stubborn.yaml");
    model.faults.clear();
    model.workload.clear();
    model.topology = scenario::Topology::FullMesh;
    model.nodes = (0..4000).map(|index| format!("node-with-a-rather-long-name-{index:011}")).collect();
    let text = scenario::to_yaml(&model, &[]);
    let parsed = scenario::parse("written", &text).expect("a long node list parses");
    assert_eq!(without_spans(parsed), without_spans(model));
}

/// Goal: an exported chaos schedule is the same run. Method: chaos-swarm (every chaos kind,
/// swarm selection) and pair-crash for several seeds, and adversarial (scripted faults
/// only): the written export, parsed back, has the same trace hash as the original.
#[test]
fn exported_chaos_replays_to_the_same_trace_hash() {
    let cases = [
        ("scenarios/chaos-swarm.yaml", vec![0, 1, 2]),
        ("tests/scenarios/pair-crash.yaml", vec![1, 2, 3]),
        ("scenarios/adversarial.yaml", vec![12]),
        ("tests/scenarios/shrink/impatient-swarm.yaml", vec![3, 4]),
    ];
    for (file, seeds) in cases {
        let original = load(file);
        for seed in seeds {
            let exported = ferry::chaos::export(&original, seed);
            assert!(
                original.chaos.is_none() || exported.faults.iter().any(|fault| fault.drawn),
                "{file} seed {seed} drew no fault"
            );
            let text = scenario::to_yaml(&exported, &[]);
            let parsed = scenario::parse("exported", &text).expect("the export parses");
            let expected = run::run(&original, seed, Trace::default()).trace_hash;
            let replayed = run::run(&parsed, seed, Trace::default()).trace_hash;
            assert_eq!(replayed, expected, "{file} seed {seed}:\n{text}");
        }
    }
}

fn shrink_with(file: &str, seed: u64, jobs: usize) -> Outcome {
    let cancel = AtomicBool::new(false);
    let header = |signature: &Signature| vec![format!("from {file} with seed {seed}: {signature}")];
    shrink::shrink(
        &load(file),
        seed,
        &header,
        Options { jobs, cancel: &cancel, interrupt: &cancel, planted_bug: None },
        &|_| {},
    )
    .unwrap_or_else(|_| panic!("{file} fails with seed {seed}"))
}

/// Checks one shrink: small, the same failure, deterministic, and the same bytes again and
/// with another number of jobs.
fn assert_shrinks(file: &str, seed: u64, check: &str, kind: Option<&str>, max_faults: usize) -> Outcome {
    let outcome = shrink_with(file, seed, 1);
    assert!(outcome.complete, "{file}: the search reached its fixpoint");
    assert_eq!(outcome.signature.check, check, "{file}");
    assert_eq!(outcome.signature.kind, kind, "{file}");
    let shrunk = scenario::parse("shrunk", &outcome.text).expect("the shrunk file parses");
    let original = load(file);
    assert!(shrunk.nodes.len() <= 3, "{file}: {} nodes\n{}", shrunk.nodes.len(), outcome.text);
    assert!(shrunk.faults.len() <= max_faults, "{file}: {} faults\n{}", shrunk.faults.len(), outcome.text);
    assert!(shrunk.chaos.is_none(), "{file}: no chaos left\n{}", outcome.text);
    assert!(shrunk.nodes.len() < original.nodes.len(), "{file}");
    assert!(outcome.text.lines().count() < 25, "{file}: a file read at a glance\n{}", outcome.text);
    assert_eq!(shrunk.seed, Some(seed), "{file}: the file carries its seed");
    // The nodes get at least the time to converge they had (a shrink cannot fake a
    // `not-converged` by cutting the run short), and `expect` is as it was.
    let window = |scenario: &Scenario| {
        let (heal_ns, _) = scenario.liveness_start();
        scenario.expect.within_ns.min(scenario.duration_ns.saturating_sub(heal_ns))
    };
    assert!(window(&shrunk) >= window(&original), "{file}:\n{}", outcome.text);
    assert_eq!(shrunk.expect.within_ns, original.expect.within_ns, "{file}");
    assert_eq!(shrunk.expect.converged, original.expect.converged, "{file}");
    assert_eq!(shrunk.expect.no_data_loss, original.expect.no_data_loss, "{file}");
    // It fails the same way, and deterministically.
    let first = run::run(&shrunk, seed, Trace::default());
    let second = run::run(&shrunk, seed, Trace::default());
    assert!(outcome.signature.matches(&first), "{file}: {:?}", first.checks);
    assert_eq!(first.trace_hash, second.trace_hash, "{file}");
    // The same bytes again, and with two jobs.
    assert_eq!(shrink_with(file, seed, 1).text, outcome.text, "{file}: shrinking twice");
    assert_eq!(shrink_with(file, seed, 2).text, outcome.text, "{file}: --jobs 2");
    outcome
}

/// Goal: a convergence failure under chaos shrinks to a handful of writes. Method:
/// impatient-swarm (8 nodes, chaos, `within: 2ms`; it also fails `no_data_loss`, a symptom):
/// no fault is needed, so none is left, and the nodes keep their 2ms to converge.
#[test]
fn impatient_swarm_shrinks_without_faults() {
    let outcome = assert_shrinks(
        "tests/scenarios/shrink/impatient-swarm.yaml",
        3,
        "converged",
        Some("not-converged"),
        0,
    );
    let shrunk = scenario::parse("shrunk", &outcome.text).expect("parses");
    assert!(shrunk.workload.len() <= 5, "{}", outcome.text);
    assert_eq!(shrunk.expect.within_ns, 2_000_000, "expect is kept");
}

/// Goal: the faults a failure needs are kept, the rest go. Method: misdirected (5 nodes, 8
/// faults): the node that cannot start needs its misdirected write, its crash and restart.
#[test]
fn misdirected_write_keeps_its_crash() {
    let outcome = assert_shrinks("tests/scenarios/shrink/misdirected.yaml", 5, "invariants", None, 3);
    let shrunk = scenario::parse("shrunk", &outcome.text).expect("parses");
    let kinds: Vec<_> = shrunk.faults.iter().map(|fault| std::mem::discriminant(&fault.kind)).collect();
    let misdirected = scenario::FaultKind::DiskFault { node: 0, kind: scenario::DiskFaultKind::Misdirected };
    assert!(kinds.contains(&std::mem::discriminant(&misdirected)), "{}", outcome.text);
}

/// Goal: a negative expectation shrinks too. Method: stubborn (`converged: false`, 6 nodes
/// in a ring, 4 faults) fails with `converged-unexpectedly`.
#[test]
fn unexpected_convergence_shrinks() {
    assert_shrinks("tests/scenarios/shrink/stubborn.yaml", 9, "converged", Some("converged-unexpectedly"), 0);
}

/// Goal: a scenario that passes is refused, not shrunk. Method: crash-pair with its seed.
#[test]
fn a_passing_seed_is_refused() {
    let cancel = AtomicBool::new(false);
    let refused = shrink::shrink(
        &load("tests/scenarios/crash-pair.yaml"),
        1,
        &|_| Vec::new(),
        Options { jobs: 1, cancel: &cancel, interrupt: &cancel, planted_bug: None },
        &|_| {},
    );
    assert!(matches!(refused, Err(shrink::Refusal::Passes(_))));
}

/// Goal: the CLI's exit codes and output. Method: the real binary: a failing seed (0, the
/// file written and valid, the table and replay line), a passing one (1), bad input (2).
#[test]
fn shrink_command_exit_codes() {
    let directory = fresh_directory("shrink_command_exit_codes");
    let out = directory.join("stubborn.shrunk.yaml");
    let out_text = out.display().to_string();
    let outcome = ferry(&[
        "shrink",
        "tests/scenarios/shrink/stubborn.yaml",
        "--seed",
        "9",
        "--out",
        &out_text,
        "--jobs",
        "2",
    ]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "shrunk tests/scenarios/shrink/stubborn.yaml with seed 9: fails converged (converged-unexpectedly)"
    );
    assert!(
        lines.iter().any(|line| line.trim_start().starts_with("nodes") && line.ends_with("6 -> 1")),
        "{lines:?}"
    );
    for row in ["faults", "writes acked", "virtual time", "events", "trace lines"] {
        assert!(lines.iter().any(|line| line.trim_start().starts_with(row)), "{row}: {lines:?}");
    }
    assert_eq!(lines.last().copied(), Some(format!("replay: ferry run {out_text} --seed 9").as_str()));
    let text = std::fs::read_to_string(&out).expect("the shrunk file is written");
    assert!(text.starts_with("# Shrunk by ferry shrink (ferry "), "{text}");
    assert!(text.contains("from tests/scenarios/shrink/stubborn.yaml with seed 9"), "{text}");
    assert_eq!(ferry(&["check", &out_text]).code, 0);
    let replay = ferry(&["run", &out_text, "--seed", "9"]);
    assert_eq!(replay.code, 1, "{replay:?}");
    assert!(replay.stdout.contains("FAILED converged"), "{}", replay.stdout);

    let passing = ferry(&["shrink", "tests/scenarios/crash-pair.yaml", "--seed", "1", "--out", &out_text]);
    assert_eq!(passing.code, 1, "{passing:?}");
    assert!(passing.stdout.contains("passes every check; nothing to shrink"), "{}", passing.stdout);

    let missing = ferry(&["shrink", "no/such/file.yaml", "--seed", "1"]);
    assert_eq!(missing.code, 2, "{missing:?}");
    let budget =
        ferry(&["shrink", "tests/scenarios/shrink/stubborn.yaml", "--seed", "9", "--budget", "soon"]);
    assert_eq!(budget.code, 2, "{budget:?}");
    assert!(budget.stderr.contains("--budget soon"), "{}", budget.stderr);
    let jobs = ferry(&["shrink", "tests/scenarios/shrink/stubborn.yaml", "--seed", "9", "--jobs", "0"]);
    assert_eq!(jobs.code, 2, "{jobs:?}");
    let no_seed = ferry(&["shrink", "tests/scenarios/shrink/stubborn.yaml"]);
    assert_eq!(no_seed.code, 2, "{no_seed:?}");
}

/// Goal: a failure that cannot get smaller is still written, next to the input by
/// default, and the output says that nothing could be removed. Method: one node with a
/// 1ms link latency that expects `converged: false`, and nothing else, shrunk without
/// `--out` in a scratch directory: exit 0, `lonely.shrunk.yaml` written and still failing.
#[test]
fn shrink_command_nothing_to_remove() {
    let directory = fresh_directory("shrink_command_nothing_to_remove");
    let input = support::write_file(
        &directory,
        "lonely.yaml",
        "name: lonely\nduration: 1s\nnodes: 1\nnetwork: {latency: 1ms}\nexpect:\n  converged: false\n  within: 1s\n",
    );
    let input_text = input.display().to_string();
    let outcome = ferry(&["shrink", &input_text, "--seed", "0", "--jobs", "1"]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let out = directory.join("lonely.shrunk.yaml");
    let out_text = out.display().to_string();
    assert!(outcome.stdout.contains("0 accepted"), "{}", outcome.stdout);
    assert!(
        outcome.stdout.lines().any(|line| line.starts_with("nothing could be removed: ")),
        "{}",
        outcome.stdout
    );
    assert!(outcome.stdout.contains(&format!("wrote {out_text}\n")), "{}", outcome.stdout);
    let replay = ferry(&["run", &out_text, "--seed", "0"]);
    assert_eq!(replay.code, 1, "{replay:?}");
    assert!(replay.stdout.contains("FAILED converged"), "{}", replay.stdout);

    // A search that removed something does not say so.
    let stubborn =
        ferry(&["shrink", "tests/scenarios/shrink/stubborn.yaml", "--seed", "9", "--out", &out_text]);
    assert_eq!(stubborn.code, 0, "{stubborn:?}");
    assert!(!stubborn.stdout.contains("nothing could be removed"), "{}", stubborn.stdout);
}

/// Goal: `--export-faults` writes a file that replays to the same trace hash, through the
/// binary. Method: chaos-swarm's seed 2, then the exported file without `--seed`.
#[test]
fn export_faults_through_the_binary() {
    let directory = fresh_directory("export_faults_through_the_binary");
    let exported = directory.join("exported.yaml").display().to_string();
    let original =
        ferry(&["run", "tests/scenarios/pair-crash.yaml", "--seed", "2", "--export-faults", &exported]);
    let replayed = ferry(&["run", &exported]);
    let hash = |stdout: &str| stdout.lines().last().map(str::to_owned);
    assert!(hash(&original.stdout).is_some_and(|line| line.starts_with("trace-hash: ")));
    assert_eq!(hash(&replayed.stdout), hash(&original.stdout), "{}", replayed.stdout);
    assert_eq!(replayed.code, original.code);
    let text = std::fs::read_to_string(&exported).expect("written");
    assert!(text.contains("drawn: true"), "{text}");
    assert!(text.contains("seed: 2"), "{text}");
}

/// Goal: `sweep --until-fail` stops at the first failing seed and keeps `N passed, M failed`
/// last; it refuses an open range without `--until-fail`. Method: stubborn fails at every
/// seed; crash-pair passes its first seeds.
#[test]
fn sweep_until_fail() {
    let failing = ferry(&[
        "sweep",
        "tests/scenarios/shrink/stubborn.yaml",
        "--seeds",
        "4..",
        "--until-fail",
        "--jobs",
        "2",
    ]);
    assert_eq!(failing.code, 1, "{failing:?}");
    let lines: Vec<&str> = failing.stdout.lines().collect();
    assert!(lines[0].starts_with("seed 4 failed (converged: "), "{lines:?}");
    assert_eq!(lines.last().copied(), Some("0 passed, 1 failed"));

    let passing = ferry(&["sweep", "tests/scenarios/crash-pair.yaml", "--seeds", "0..3", "--until-fail"]);
    assert_eq!(passing.code, 0, "{passing:?}");
    assert_eq!(passing.stdout.lines().last(), Some("3 passed, 0 failed"));
    assert!(passing.stdout.contains("no failure in seeds 0..3"), "{}", passing.stdout);

    let open = ferry(&["sweep", "tests/scenarios/crash-pair.yaml", "--seeds", "0.."]);
    assert_eq!(open.code, 2, "{open:?}");
    assert!(open.stderr.contains("needs --until-fail"), "{}", open.stderr);
}

/// Goal: `--shrink` hands the first failing seed to shrink, and the sweep's summary stays
/// last. Method: stubborn from seed 9, shrunk next to a copy in a scratch directory.
#[test]
fn sweep_until_fail_then_shrink() {
    let directory = fresh_directory("sweep_until_fail_then_shrink");
    let copy = directory.join("stubborn.yaml");
    std::fs::copy(root().join("tests/scenarios/shrink/stubborn.yaml"), &copy).expect("copied");
    let copy_text = copy.display().to_string();
    let outcome = ferry(&["sweep", &copy_text, "--seeds", "9..", "--until-fail", "--shrink", "--jobs", "1"]);
    assert_eq!(outcome.code, 1, "{outcome:?}");
    assert!(outcome.stdout.contains("fails converged (converged-unexpectedly)"), "{}", outcome.stdout);
    assert_eq!(outcome.stdout.lines().last(), Some("0 passed, 1 failed"));
    let shrunk = directory.join("stubborn.shrunk.yaml");
    assert!(shrunk.exists(), "{}", outcome.stdout);
}
