//! Snapshot tests of whole runs: the full text trace, the text report and the `--json`
//! report of small dedicated scenarios at fixed seeds.
//!
//! Goal: any change to what a run does or prints (an event, a message size, a timer, a
//! random draw, a line's wording, the trace hash) shows up as a reviewable diff, and the
//! output is the same in every process. Method: run the real binary on the fixtures in
//! `tests/scenarios/` (kept apart from `scenarios/` so the library can evolve) with
//! `--trace` and `--json`, and compare with insta snapshots in `tests/snapshots/`. Nothing
//! is redacted: a run is deterministic, so the trace hash and every count are part of the
//! snapshot. Paths are relative to the package root so the replay line is stable.
//!
//! After an intended change, review and accept with `INSTA_UPDATE=always cargo test --test
//! trace_snapshots` (or `cargo insta review`), and say in the commit why the trace moved.

use std::path::Path;
use std::process::Command;

/// Runs `ferry ARGS` in the package root; returns exit code and stdout, with stderr empty.
fn ferry(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo builds the ferry binary before its integration tests");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr, "", "ferry {args:?} wrote to stderr");
    let code = output.status.code().expect("ferry exits with a code, not by a signal");
    (code, String::from_utf8(output.stdout).expect("ferry writes UTF-8"))
}

/// Snapshots the trace, the text report and the JSON report of `ferry run FILE --seed SEED`
/// as `NAME_trace`, `NAME_report` and `NAME_json`, after checking the exit code.
fn snapshot_run(name: &str, seed: u64, code_expected: i32) {
    let file = format!("tests/scenarios/{}.yaml", name.replace('_', "-"));
    let seed = seed.to_string();
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace_snapshots");
    std::fs::create_dir_all(&directory).expect("the scratch directory can be created");
    let trace_path = directory.join(format!("{name}.trace"));
    let trace_path = trace_path.to_str().expect("scratch paths are UTF-8");

    let (code, report) = ferry(&["run", &file, "--seed", &seed, "--trace", trace_path]);
    assert_eq!(code, code_expected, "{report}");
    let trace = std::fs::read_to_string(trace_path).expect("ferry wrote the trace");
    let (code, json) = ferry(&["run", &file, "--seed", &seed, "--json"]);
    assert_eq!(code, code_expected, "{json}");
    let value: serde_json::Value = serde_json::from_str(&json).expect("--json prints one JSON object");
    assert!(report.ends_with(&format!("trace-hash: {}\n", value["trace_hash"].as_str().unwrap_or("?"))));

    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(format!("ferry run {file} --seed {seed} --trace PATH"));
    settings.bind(|| insta::assert_snapshot!(format!("{name}_trace"), trace));
    settings.set_description(format!("ferry run {file} --seed {seed}"));
    settings.bind(|| insta::assert_snapshot!(format!("{name}_report"), report));
    settings.set_description(format!("ferry run {file} --seed {seed} --json"));
    settings.bind(|| insta::assert_snapshot!(format!("{name}_json"), json));
}

/// Goal: pin a crash of the replica while a write is in flight, its recovery and the
/// catch-up. Method: `tests/scenarios/crash-pair.yaml` (2 nodes, 1 write) at seed 1.
#[test]
fn crash_pair() {
    snapshot_run("crash_pair", 1, 0);
}

/// Goal: pin a partition of a line's end node and relaying through the middle after the
/// heal, with 10% loss. Method: `tests/scenarios/line-partition.yaml` (3 nodes) at seed 2.
#[test]
fn line_partition() {
    snapshot_run("line_partition", 2, 0);
}

/// Goal: pin a broken stream connection, the redial, the second handshake and the
/// catch-up. Method: `tests/scenarios/stream-break.yaml` (2 nodes, stream) at seed 3.
#[test]
fn stream_break() {
    snapshot_run("stream_break", 3, 0);
}

/// Goal: pin the failure report: the failed checks with their reasons, the replay line, and
/// `failed` in the JSON. Method: `tests/scenarios/impatient.yaml`, which cannot converge in
/// time, at seed 4 (exit code 1).
#[test]
fn impatient() {
    snapshot_run("impatient", 4, 1);
}

/// Goal: the README's recipe for snapshotting a scenario from Rust (the library API, not the
/// binary) gives exactly the trace `ferry run --trace` writes. Method: the recipe's three
/// calls on `crash-pair.yaml` at seed 1, compared with the binary's trace file.
#[test]
fn library_recipe_matches_the_binary() {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace_snapshots");
    std::fs::create_dir_all(&directory).expect("the scratch directory can be created");
    let scenario =
        ferry::scenario::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/crash-pair.yaml"))
            .expect("a valid file");
    let path = directory.join("library_recipe.trace");
    let file = std::fs::File::create(&path).expect("a writable scratch dir");
    let report = ferry::run::run(&scenario, 1, ferry_simulator::Trace::new(Some(Box::new(file))));
    assert!(report.passed(), "{:?}", report.checks);
    let from_library = std::fs::read_to_string(&path).expect("the trace");
    let binary_path = directory.join("library_recipe_binary.trace");
    let binary_path = binary_path.to_str().expect("scratch paths are UTF-8");
    let (code, _) = ferry(&["run", "tests/scenarios/crash-pair.yaml", "--seed", "1", "--trace", binary_path]);
    assert_eq!(code, 0);
    assert_eq!(from_library, std::fs::read_to_string(binary_path).expect("the binary's trace"));
}
