//! The CI convergence test: every scenario in `scenarios/`, and every regression scenario in
//! `tests/scenarios/`, passes every expectation over a bounded range of seeds.
//!
//! Goal: the library scenarios, which the README and users run first, keep converging with
//! no data loss as the protocol and the simulator change, on more seeds than the file's own.
//! Method: load each file with `ferry::scenario::load` and call `ferry::run::run` (the
//! library, not the binary, so no process per seed) for seeds `0..N` and the file's own
//! seed, on two worker threads that take (file, seed) jobs from a shared counter, longest
//! scenarios first. A seed that fails or panics is reported with its failing checks and
//! its replay command; the test fails once all jobs are done, listing every failure. It
//! also fails when a fault a file names never fires across its seeds, or never lasts: a
//! scenario that passes while testing nothing is a defect.
//!
//! Sizing: the whole file should stay well under two minutes in a debug build (the
//! workspace's opt-level 1) on one core. Per-seed times measured with
//! `target/debug/ferry sweep FILE --seeds 0..20 --jobs 1` on a shared, loaded machine:
//! large-cluster 3.5 s, chaos-swarm 0.45 s, crash-restart 0.19 s, lossy-links 0.15 s,
//! clock-skew 0.13 s, partition-heal 0.10 s, stream-transport 0.09 s, line-relay 0.03 s,
//! quickstart 0.004 s; dense-mesh (32 nodes in a full mesh) takes seconds a seed. With the
//! counts below that is well under a minute of work on one core. A new
//! scenario gets [`SEEDS_DEFAULT`]; give a slow one an entry in [`SEEDS_BY_SCENARIO`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use std::collections::{BTreeMap, BTreeSet};

use ferry::run::Report;
use ferry::scenario::{self, DiskFaultKind, FaultKind, Scenario, Transport};
use ferry_simulator::Trace;

/// Seeds run per scenario unless [`SEEDS_BY_SCENARIO`] says otherwise.
const SEEDS_DEFAULT: u64 = 16;

/// Seeds for the scenarios too slow for [`SEEDS_DEFAULT`], by file stem.
const SEEDS_BY_SCENARIO: &[(&str, u64)] = &[
    ("large-cluster", 2),
    ("chaos-swarm", 12),
    ("large-entries", 6),
    ("dense-mesh", 2),
    ("long-history", 1),
];

/// Scenarios that exist to exercise the broadcast tree (PROTOCOL.md 8.6), by file stem:
/// across their seeds links must be pruned and grafted, and a write must cost at most
/// 3 × (N − 1) replication messages (pushes, acks and prunes), where flooding costs N².
const TREE_SCENARIOS: &[&str] = &["dense-mesh"];

/// Scenarios that exist to make a node catch up by snapshot (PROTOCOL.md 8.11), by file
/// stem: across their seeds snapshots must be applied, and none refused.
const SNAPSHOT_SCENARIOS: &[&str] = &["catch-up-by-snapshot"];

/// Scenarios whose history is long enough that compaction must keep every log short, by
/// file stem: no node may end a run with more than 8 × `compaction_log_bytes` of log.
const LONG_HISTORY_SCENARIOS: &[&str] = &["long-history"];

/// Scenarios that exist to crash nodes inside WAL rewrites, by file stem: across their seeds
/// crashes must land both before a rewrite's rename and between the rename and the
/// directory fsync (the simulated disk's `ReplaceStep`s).
const REWRITE_CRASH_SCENARIOS: &[&str] = &["crash-during-compaction"];

/// Worker threads; the CI machine has two cores.
const WORKERS_COUNT: usize = 2;

/// The trace snapshot fixtures in `tests/scenarios/` (see `tests/trace_snapshots.rs`), by
/// file stem: each pins one seed's trace, and `impatient` fails by design. Every other file
/// there is a regression scenario and is swept like the library.
const SNAPSHOT_FIXTURES: &[&str] = &["crash-pair", "impatient", "line-partition", "stream-break"];

/// The `.yaml` files in `directory` (relative to the package), sorted.
fn yaml_files(directory: &str) -> Vec<PathBuf> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join(directory);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("the scenario directory exists")
        .map(|entry| entry.expect("the scenario directory is readable").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml"))
        .collect();
    files.sort();
    files
}

/// The `.yaml` files in `scenarios/`, sorted.
fn library_files() -> Vec<PathBuf> {
    let files = yaml_files("scenarios");
    assert!(!files.is_empty(), "the library has scenarios");
    files
}

/// The library, then the regression scenarios of `tests/scenarios/`.
fn swept_files() -> Vec<PathBuf> {
    let regressions =
        yaml_files("tests/scenarios").into_iter().filter(|path| !SNAPSHOT_FIXTURES.contains(&stem(path)));
    library_files().into_iter().chain(regressions).collect()
}

/// `scenarios/NAME.yaml` or `tests/scenarios/NAME.yaml`, for messages and replay commands.
fn relative(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned()
}

fn stem(path: &Path) -> &str {
    path.file_stem().and_then(|stem| stem.to_str()).expect("scenario names are UTF-8")
}

fn seeds_count(path: &Path) -> u64 {
    SEEDS_BY_SCENARIO.iter().find(|(name, _)| *name == stem(path)).map_or(SEEDS_DEFAULT, |(_, count)| *count)
}

/// One line per failing check, or the panic message.
fn describe_failure(result: &Result<Report, String>) -> Option<String> {
    match result {
        Ok(report) if report.passed() => None,
        Ok(report) => Some(
            report
                .failed_checks()
                .map(|check| format!("    FAILED {}: {}", check.name, check.detail))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Err(panic) => Some(format!("    panicked: {panic}")),
    }
}

/// The coverage names a scenario's own faults must show: each scripted fault kind, each chaos
/// kind, lossy and duplicating links, and, where nodes crash with torn writes on, lost unsynced
/// bytes and torn tails. A file that names a fault which never fires tests nothing.
fn expected_coverage(scenario: &Scenario) -> BTreeSet<&'static str> {
    let mut expected = BTreeSet::new();
    for fault in &scenario.faults {
        expected.insert(match fault.kind {
            FaultKind::Partition { .. } => "partition",
            FaultKind::Cut { .. } => "cut",
            FaultKind::Link(_) => "link",
            FaultKind::Crash { .. } => "crash",
            FaultKind::Restart { .. } => "restart",
            FaultKind::Isolate { .. } => "isolate",
            FaultKind::ClockJump { .. } => "clock-jump",
            FaultKind::Heal { .. } => "heal",
            FaultKind::Break { .. } => "break",
            FaultKind::Corrupt { .. } => "corrupt",
            FaultKind::Replay { .. } => "replay",
            FaultKind::Clog { .. } => "clog",
            FaultKind::Pause { .. } => "pause",
            FaultKind::DiskFault { kind, .. } => match kind {
                DiskFaultKind::FsyncFail => "fsync-fail",
                DiskFaultKind::Full => "disk-full",
                DiskFaultKind::Misdirected => "misdirected-write",
            },
        });
    }
    if let Some(chaos) = &scenario.chaos {
        let kinds = [
            (chaos.crash.is_some(), "crash"),
            (chaos.partition.is_some(), "partition"),
            (chaos.cut.is_some(), "cut"),
            (chaos.clock_jump.is_some(), "clock-jump"),
            (chaos.corrupt.is_some(), "corrupt"),
            (chaos.replay.is_some(), "replay"),
            (chaos.clog.is_some(), "clog"),
            (chaos.pause.is_some(), "pause"),
        ];
        expected.extend(kinds.iter().filter(|(on, _)| *on).map(|(_, kind)| *kind));
    }
    // QUIC's packets are datagrams: loss and duplication hit them.
    if scenario.network.uses(Transport::Datagram) || scenario.network.uses(Transport::Quic) {
        let network = &scenario.network;
        let kinds = [(network.loss > 0.0, "loss"), (network.duplicate > 0.0, "duplicate")];
        expected.extend(kinds.iter().filter(|(on, _)| *on).map(|(_, kind)| *kind));
    }
    if expected.contains("crash") && scenario.disk.torn_writes {
        expected.extend(["lost-unsynced", "torn-write"]);
    }
    expected
}

/// What the swept seeds of one file did, summed.
#[derive(Default)]
struct Coverage {
    fired: BTreeMap<&'static str, u64>,
    active_ns: BTreeMap<&'static str, u64>,
    prunes: u64,
    grafts: u64,
    replication_messages: u64,
    writes_acked: u64,
    compactions: u64,
    snapshots_applied: u64,
    snapshots_refused: u64,
    /// The most log bytes (above the compaction base) any node held at the end of a run.
    log_bytes_at_end_max: u64,
}

impl Coverage {
    fn add(&mut self, report: &Report) {
        for (kind, count) in report.stats.coverage() {
            *self.fired.entry(kind).or_insert(0) += count;
        }
        for (kind, nanos) in &report.fault_active_ns {
            *self.active_ns.entry(kind).or_insert(0) += nanos;
        }
        self.prunes += report.cost.sent_of(&[ferry_protocol::MessageType::Prune]);
        self.grafts += report.cost.grafts;
        self.replication_messages += report.cost.replication_messages();
        self.writes_acked += report.writes_acked as u64;
        self.compactions += report.cost.compactions;
        self.snapshots_applied += report.cost.snapshots_applied;
        self.snapshots_refused += report.cost.snapshots_refused;
        let log_bytes = report.cost.wal_at_end.iter().map(|wal| wal.log_bytes).max().unwrap_or(0);
        self.log_bytes_at_end_max = self.log_bytes_at_end_max.max(log_bytes);
    }
}

/// Goal and method: see the module docs. Besides passing, every file's named faults must
/// fire across its seeds, and those that last must be in force for some time.
#[test]
fn every_library_scenario_passes_on_a_range_of_seeds() {
    let files = swept_files();
    let scenarios: Vec<(String, Scenario)> = files
        .iter()
        .map(|path| {
            let scenario = scenario::load(path).unwrap_or_else(|error| panic!("{error}"));
            (relative(path), scenario)
        })
        .collect();

    // Jobs are (scenario index, seed), the scenarios with the fewest seeds (the slowest)
    // first so that neither worker is left alone with a long run at the end.
    let mut jobs: Vec<(usize, u64)> = Vec::new();
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&index| seeds_count(&files[index]));
    for index in order {
        let count = seeds_count(&files[index]);
        jobs.extend((0..count).map(|seed| (index, seed)));
        if let Some(own) = scenarios[index].1.seed.filter(|own| *own >= count) {
            jobs.push((index, own));
        }
    }

    // With FERRY_LIBRARY_FAIL_FAST set, the first failure stops the workers: a mutation
    // run (README, "How many bugs the simulator finds") needs a verdict, not a list.
    let fail_fast = std::env::var_os("FERRY_LIBRARY_FAIL_FAST").is_some();
    let stop = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, u64, String)>> = Mutex::new(Vec::new());
    let coverage: Mutex<Vec<Coverage>> = Mutex::new((0..files.len()).map(|_| Coverage::default()).collect());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS_COUNT {
            scope.spawn(|| {
                while let Some(&(index, seed)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let scenario = &scenarios[index].1;
                    let result =
                        catch_unwind(AssertUnwindSafe(|| ferry::run::run(scenario, seed, Trace::default())))
                            .map_err(|panic| {
                                panic
                                    .downcast_ref::<String>()
                                    .cloned()
                                    .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                                    .unwrap_or_else(|| "a panic without a message".to_owned())
                            });
                    if let Ok(report) = &result {
                        coverage.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[index].add(report);
                    }
                    if let Some(failure) = describe_failure(&result) {
                        stop.store(fail_fast, Ordering::Relaxed);
                        failures
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((index, seed, failure));
                    }
                }
            });
        }
    });

    let mut failures = failures.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    failures.sort_by_key(|(index, seed, _)| (*index, *seed));
    let report: Vec<String> = failures
        .iter()
        .map(|(index, seed, failure)| {
            let file = &scenarios[*index].0;
            format!("{file} seed {seed}:\n{failure}\n    replay: ferry run {file} --seed {seed}")
        })
        .collect();
    assert!(report.is_empty(), "{} of {} runs failed:\n{}", report.len(), jobs.len(), report.join("\n"));

    let coverage = coverage.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let idle: Vec<String> = scenarios
        .iter()
        .zip(&coverage)
        .flat_map(|((file, scenario), covered)| idle_faults(file, scenario, covered))
        .collect();
    assert!(idle.is_empty(), "faults that test nothing:\n{}", idle.join("\n"));
}

/// The faults `scenario` names that `covered` shows never fired, or never lasted.
fn idle_faults(file: &str, scenario: &Scenario, covered: &Coverage) -> Vec<String> {
    let mut idle = Vec::new();
    if TREE_SCENARIOS.iter().any(|name| file.ends_with(&format!("/{name}.yaml"))) {
        let nodes = scenario.nodes.len() as u64;
        let per_write = covered.replication_messages as f64 / covered.writes_acked.max(1) as f64;
        if covered.prunes == 0 || covered.grafts == 0 {
            idle.push(format!(
                "{file}: the tree never changed ({} prunes, {} grafts)",
                covered.prunes, covered.grafts
            ));
        }
        if per_write > (3 * (nodes - 1)) as f64 {
            idle.push(format!(
                "{file}: {per_write:.1} replication messages per write, more than 3 × (N − 1)"
            ));
        }
    }
    // A file that lowers the compaction threshold is about compaction: it must happen.
    if scenario.disk.compaction_log_bytes < scenario::Disk::default().compaction_log_bytes
        && covered.compactions == 0
    {
        idle.push(format!("{file}: lowers compaction_log_bytes but no node ever compacted"));
    }
    // A long history must leave no node with more log at the end than a few thresholds'
    // worth: a log that is never folded into the state grows with the whole history. (Not
    // for files that restart nodes every few seconds: a node waits a grace period after
    // each start, and a recently crashed neighbour holds compaction back, so their logs
    // lag by design.)
    if LONG_HISTORY_SCENARIOS.iter().any(|name| file.ends_with(&format!("/{name}.yaml"))) {
        let bound = 8 * scenario.disk.compaction_log_bytes;
        if covered.log_bytes_at_end_max > bound {
            idle.push(format!(
                "{file}: a node ended with {} bytes of log, more than 8 × compaction_log_bytes",
                covered.log_bytes_at_end_max
            ));
        }
    }
    if REWRITE_CRASH_SCENARIOS.iter().any(|name| file.ends_with(&format!("/{name}.yaml"))) {
        for kind in ["crash-before-rename", "crash-before-directory-sync"] {
            if covered.fired.get(kind).copied().unwrap_or(0) == 0 {
                idle.push(format!("{file}: no crash ever landed at `{kind}`"));
            }
        }
    }
    if SNAPSHOT_SCENARIOS.iter().any(|name| file.ends_with(&format!("/{name}.yaml"))) {
        if covered.snapshots_applied == 0 {
            idle.push(format!("{file}: no node ever caught up by snapshot"));
        }
        if covered.snapshots_refused > 0 {
            idle.push(format!("{file}: {} snapshots refused in honest runs", covered.snapshots_refused));
        }
    }
    for kind in expected_coverage(scenario) {
        if covered.fired.get(kind).copied().unwrap_or(0) == 0 {
            idle.push(format!("{file}: `{kind}` never fired"));
            continue;
        }
        let lasting =
            ["partition", "cut", "link", "isolate", "crash", "corrupt", "clog", "pause"].contains(&kind);
        if lasting && covered.active_ns.get(kind).copied().unwrap_or(0) == 0 {
            idle.push(format!("{file}: `{kind}` fired but was never in force for any time"));
        }
    }
    idle
}

/// Goal: the coverage check rejects a file whose faults test nothing. Method: a crash the
/// liveness phase undoes at once, and chaos cuts too rare to be drawn, over a few seeds.
#[test]
fn coverage_check_rejects_idle_faults() {
    let text = "name: idle\nduration: 10s\nnodes: [a, b]\nworkload:\n  - {at: 1s, node: a, put: {key: k, value: v}}\n\
                faults:\n  - {at: 2s, crash: b}\nchaos: {until: 2s, cut: {every: 1h, duration: 1s}}\n";
    let scenario = scenario::parse("idle.yaml", text).expect("a valid file");
    let mut covered = Coverage::default();
    for seed in 0..4 {
        covered.add(&ferry::run::run(&scenario, seed, Trace::default()));
    }
    assert_eq!(
        idle_faults("idle.yaml", &scenario, &covered),
        ["idle.yaml: `crash` fired but was never in force for any time", "idle.yaml: `cut` never fired"]
    );
}

/// Goal: the seed table names only scenarios that exist, so a renamed slow scenario does
/// not silently fall back to [`SEEDS_DEFAULT`]. Method: look each name up in `scenarios/`.
#[test]
fn seed_table_names_existing_scenarios() {
    let files = library_files();
    for (name, count) in SEEDS_BY_SCENARIO {
        assert!(files.iter().any(|path| stem(path) == *name), "scenarios/{name}.yaml does not exist");
        assert!(*count >= 1, "{name} runs at least one seed");
    }
}

/// Goal: the fixture list names only files that exist, so a renamed fixture is not silently
/// swept (and `impatient` fails the sweep), and some regression scenarios are swept.
/// Method: look each name up in `tests/scenarios/`.
#[test]
fn fixture_table_names_existing_files() {
    let files = yaml_files("tests/scenarios");
    for name in SNAPSHOT_FIXTURES {
        assert!(files.iter().any(|path| stem(path) == *name), "tests/scenarios/{name}.yaml does not exist");
    }
    assert!(swept_files().len() > library_files().len(), "tests/scenarios/ holds regression scenarios");
}

/// Goal: the tree check rejects a tree scenario whose tree never changed, or whose writes
/// cost a flood. Method: hand-built coverage for a file named like one of
/// [`TREE_SCENARIOS`].
#[test]
fn tree_check_rejects_a_tree_that_never_changed_or_a_flood() {
    let text = "name: tree\nduration: 10s\nnodes: 6\n";
    let scenario = scenario::parse("dense-mesh.yaml", text).expect("a valid file");
    let file = "scenarios/dense-mesh.yaml";
    let flood = Coverage {
        prunes: 3,
        grafts: 0,
        replication_messages: 1_000,
        writes_acked: 10,
        ..Coverage::default()
    };
    assert_eq!(
        idle_faults(file, &scenario, &flood),
        [
            "scenarios/dense-mesh.yaml: the tree never changed (3 prunes, 0 grafts)",
            "scenarios/dense-mesh.yaml: 100.0 replication messages per write, more than 3 × (N − 1)",
        ]
    );
    let tree =
        Coverage { prunes: 3, grafts: 1, replication_messages: 150, writes_acked: 10, ..Coverage::default() };
    assert!(idle_faults(file, &scenario, &tree).is_empty());
}

/// Goal: `tests/scenarios/cluster-secret.yaml` exercises what it names: every handshake runs
/// under the cluster secret (the trace marks each handshake envelope `(psk)`), nodes
/// handshake again after their crashes, and the same file without the secret has no psk
/// handshake at all. Method: trace one seed with and without `network.cluster_secret`.
#[test]
fn the_cluster_secret_scenario_runs_psk_handshakes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/cluster-secret.yaml");
    let mut scenario = scenario::load(&path).unwrap_or_else(|error| panic!("{error}"));
    let trace_of = |scenario: &Scenario| {
        let buffer = ferry_simulator::trace::SharedBuffer::default();
        let report = ferry::run::run(scenario, 3, Trace::new(Some(Box::new(buffer.clone()))));
        assert!(report.passed(), "{:?}", report.checks);
        buffer.text()
    };
    let text = trace_of(&scenario);
    let count = |needle: &str| text.matches(needle).count();
    for kind in ["Hello", "HelloAck", "HelloFinish"] {
        assert_eq!(count(&format!("send {kind} ")), 0, "a {kind} without the secret");
        assert!(count(&format!("send {kind}(psk) ")) > 0, "no {kind}(psk) in the trace");
    }
    // Six links, and handshakes again after the crashes of b, a and d.
    assert!(count("send HelloFinish(psk) ") > 6, "{} HelloFinish", count("send HelloFinish(psk) "));
    scenario.network.cluster_secret = false;
    let plain = trace_of(&scenario);
    assert!(
        !plain.contains("(psk)") && plain.contains("send HelloFinish "),
        "without the secret, plain handshakes"
    );
}

/// Goal: `scenarios/quic-transport.yaml` exercises what it names: the nodes speak QUIC (every
/// simulated message is a QUIC packet, the protocol's frames ride inside), the partition
/// outlives QUIC's 10 s idle timeout so the connections across it time out and are dialed
/// again after the heal, and the restarted node's old connections end at once (its dial
/// replaces one, stateless resets end the others). Method:
/// the file's own seed (11) with a text trace; the same run twice gives the same trace.
#[test]
fn the_quic_scenario_runs_quic_through_an_idle_timeout_and_a_restart() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quic-transport.yaml");
    let scenario = scenario::load(&path).unwrap_or_else(|error| panic!("{error}"));
    let trace_of = |scenario: &Scenario| {
        let buffer = ferry_simulator::trace::SharedBuffer::default();
        let report = ferry::run::run(scenario, 11, Trace::new(Some(Box::new(buffer.clone()))));
        assert!(report.passed(), "{:?}", report.checks);
        buffer.text()
    };
    let text = trace_of(&scenario);
    assert_eq!(trace_of(&scenario), text, "one seed, one trace");
    let sends: Vec<&str> = text.lines().filter(|line| line.contains(" send ")).collect();
    assert!(sends.len() > 1_000, "{} sends", sends.len());
    assert!(sends.iter().all(|line| line.contains("quic packet ")), "a send that is not a QUIC packet");
    assert!(!text.contains("send Hello"), "no frame travels outside QUIC");
    let seconds = |line: &str| -> f64 {
        line.trim_start_matches('[').split(']').next().and_then(|at| at.trim().parse().ok()).unwrap_or(-1.0)
    };
    let timed = |needle: &str| -> Vec<f64> {
        text.lines().filter(|line| line.contains(needle)).map(seconds).collect()
    };
    // The partition starts at 4 s: the four connections across it time out 10 s after the
    // last packet each end heard (some a few milliseconds before 4 s), seen from both ends.
    let down = timed("peer disconnected");
    let timed_out = down.iter().filter(|at| (13.9..15.0).contains(*at)).count();
    assert_eq!(timed_out, 8, "links down at {down:?}");
    // Healed at 19 s: dialed again, sessions again.
    let up = timed("peer connected");
    assert!(up.iter().filter(|at| (19.0..23.0).contains(*at)).count() >= 8, "links up at {up:?}");
    // c crashes at 22 s and restarts at 24 s: its dial of d replaces d's old connection, and
    // a's and b's old connections draw stateless resets at their next packet (keep-alives
    // every 2 s; the reset key derives from c's identity, so the new endpoint's resets
    // match), long before the 10 s idle timeout: all three sessions with c are back by 28 s.
    assert!(down.iter().any(|at| (24.0..25.0).contains(at)), "no link replaced after the restart: {down:?}");
    let back_with_c = text
        .lines()
        .filter(|line| line.contains("peer connected") && line.contains("name=c"))
        .map(seconds)
        .filter(|at| (24.0..28.0).contains(at))
        .count();
    assert_eq!(back_with_c, 3, "sessions with c after its restart:\n{text}");
}

/// Goal: `scenarios/mixed-transports.yaml` carries each link the way `network.links` says,
/// and each kind meets the fault meant for it. Method: one seed's text trace. The sends of
/// a-b and d-e are QUIC packets and those of the other links bare frames; a's isolation
/// (5 s to 19 s) drops its e-a stream at once but its a-b QUIC connection only at QUIC's
/// 10 s idle timeout; the `break` at 24 s drops b-c, which is dialed again; d's restart
/// brings its QUIC link to e back.
#[test]
fn the_mixed_scenario_carries_each_link_its_own_way() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/mixed-transports.yaml");
    let scenario = scenario::load(&path).unwrap_or_else(|error| panic!("{error}"));
    let buffer = ferry_simulator::trace::SharedBuffer::default();
    let report = ferry::run::run(&scenario, 5, Trace::new(Some(Box::new(buffer.clone()))));
    assert!(report.passed(), "{:?}", report.checks);
    let text = buffer.text();
    let mut kinds: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    for line in text.lines().filter(|line| line.contains(" send ")) {
        let words: Vec<&str> = line.split(']').nth(1).unwrap_or_default().split_whitespace().collect();
        let (from, to) = (words[0].to_owned(), words[2].to_owned());
        let pair = if from < to { (from, to) } else { (to, from) };
        kinds.entry(pair).or_default().insert(if words[5] == "quic" { "quic" } else { "frame" });
    }
    let expected: BTreeMap<(String, String), BTreeSet<&str>> = [
        ("a", "b", "quic"),
        ("a", "e", "frame"),
        ("b", "c", "frame"),
        ("c", "d", "frame"),
        ("d", "e", "quic"),
    ]
    .into_iter()
    .map(|(first, second, kind)| ((first.to_owned(), second.to_owned()), BTreeSet::from([kind])))
    .collect();
    assert_eq!(kinds, expected, "what each link carried");
    let seconds = |line: &str| -> f64 {
        line.trim_start_matches('[').split(']').next().and_then(|at| at.trim().parse().ok()).unwrap_or(-1.0)
    };
    let down_at = |node: &str, peer: &str| -> Vec<f64> {
        let index = scenario.nodes.iter().position(|name| name == peer).expect("a node");
        text.lines()
            .filter(|line| line.contains(&format!("] {node} peer disconnected link={index}:")))
            .map(seconds)
            .collect()
    };
    assert_eq!(down_at("a", "e"), vec![5.0], "the stream drops when a is isolated");
    let quic_down = down_at("a", "b");
    assert!(
        quic_down.len() == 1 && (14.5..16.0).contains(&quic_down[0]),
        "QUIC waits for its idle timeout: {quic_down:?}"
    );
    assert_eq!(down_at("b", "c"), vec![24.0], "the break");
    let up_after = |node: &str, peer: &str, after: f64| {
        text.lines().any(|line| {
            line.contains(&format!("] {node} peer connected"))
                && line.contains(&format!("name={peer} "))
                && seconds(line) > after
        })
    };
    for (node, peer, after) in [("a", "b", 19.0), ("a", "e", 19.0), ("b", "c", 24.0), ("e", "d", 30.0)] {
        assert!(up_after(node, peer, after), "{node} and {peer} are linked again after {after} s");
    }
}
