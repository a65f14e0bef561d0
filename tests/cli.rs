//! End-to-end tests of the `ferry` command line against CONTRACT.md: `run`, `sweep` and
//! `check`, their exit codes and their exact output.
//!
//! Goal: what users and CI scripts depend on (exit codes 0/1/2, the three closing lines of
//! `run`, the `--json` keys, the sweep summary, `FILE:LINE:COLUMN: message` errors, replay
//! lines, determinism across processes and `--jobs`) holds for the real binary. Method: run
//! the binary cargo built for this test (`CARGO_BIN_EXE_ferry`) as a child process, in the
//! package root for the library scenarios or in a per-test directory under
//! `CARGO_TARGET_TMPDIR` for files the test writes, and compare exit code, stdout and
//! stderr. Nothing here measures time.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use support::{ferry, ferry_in, fresh_directory, write_file};

fn path_text(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

/// The last three lines of a `run` report, which the contract fixes.
fn closing_lines(stdout: &str) -> [&str; 3] {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 3, "a run report has at least three lines:\n{stdout}");
    [lines[lines.len() - 3], lines[lines.len() - 2], lines[lines.len() - 1]]
}

/// The hash of a `trace-hash: <32 lowercase hex digits>` line.
fn trace_hash(line: &str) -> &str {
    let hash = line.strip_prefix("trace-hash: ").unwrap_or_else(|| panic!("not a trace-hash line: {line:?}"));
    assert_eq!(hash.len(), 32, "the trace hash has 32 hex digits: {line:?}");
    assert!(hash.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')), "lowercase hex: {line:?}");
    hash
}

/// A scenario that fails for every seed: `a` writes while cut off from `b`, and after the
/// heal `b` has 1ms to catch up over links with at least 5ms of latency.
const IMPATIENT: &str = "\
name: impatient
seed: 4
duration: 10s
nodes: [a, b]
network:
  latency: 5ms..10ms
workload:
  - {at: 200ms, node: a, put: {key: k, value: v}}
faults:
  - {at: 100ms, partition: [[a], [b]]}
  - {at: 1s, heal: all}
expect:
  within: 1ms
";

/// A scenario that passes for some seeds and fails for others: after the heal, `b` catches
/// up at a time that depends on its seeded timers and latencies (about 1.06s to 1.28s for
/// seeds 0..16), and `within` cuts through that spread. If a protocol change moves those
/// times, retune `within` (`ferry sweep FILE --seeds 0..16 --json` shows `converged_ms`).
const COIN_FLIP: &str = "\
name: coin-flip
duration: 10s
nodes: [a, b]
network:
  latency: 1ms..30ms
workload:
  - {at: 200ms, node: a, put: {key: k, value: v}}
faults:
  - {at: 100ms, partition: [[a], [b]]}
  - {at: 1s, heal: all}
expect:
  within: 150ms
";

/// Asserts that `value` is one `--json` report with every key the contract names, of the
/// right type, for `seed`.
fn assert_contract_keys(value: &Value, seed: u64) {
    let object = value.as_object().expect("the report is a JSON object");
    assert!(object["scenario"].is_string(), "scenario is a string: {value}");
    assert_eq!(object["seed"], Value::from(seed));
    let outcome = object["outcome"].as_str().expect("outcome is a string");
    assert!(outcome == "converged" || outcome == "failed", "outcome is converged or failed: {value}");
    let hash = object["trace_hash"].as_str().expect("trace_hash is a string");
    trace_hash(&format!("trace-hash: {hash}"));
    let checks = object["checks"].as_array().expect("checks is a list");
    assert!(!checks.is_empty(), "there is at least one check: {value}");
    for check in checks {
        let check = check.as_object().expect("a check is an object");
        assert!(check["name"].is_string(), "a check has a string name: {value}");
        assert!(check["ok"].is_boolean(), "a check has a boolean ok: {value}");
        assert!(check["detail"].is_string(), "a check has a string detail: {value}");
    }
    let all_ok = checks.iter().all(|check| check["ok"] == Value::Bool(true));
    assert_eq!(outcome == "converged", all_ok, "the outcome agrees with the checks: {value}");
    let stats = object["stats"].as_object().expect("stats is an object");
    for key in ["virtual_ms", "events", "sent", "delivered", "dropped", "duplicated"] {
        assert!(stats.get(key).is_some_and(Value::is_u64), "stats.{key} is a whole number: {value}");
    }
}

/// Parses JSON lines (one object per line, as `sweep --json` prints them).
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect()
}

fn seed_of(value: &Value) -> u64 {
    value["seed"].as_u64().expect("seed is a whole number")
}

fn hash_of(value: &Value) -> &str {
    value["trace_hash"].as_str().expect("trace_hash is a string")
}

// ---- run ----------------------------------------------------------------------------------

/// Goal: `ferry run` on the quickstart passes and ends with the three contract lines, with
/// the file's own seed. Method: run it and read its last three lines.
#[test]
fn run_ends_with_outcome_seed_and_trace_hash() {
    let outcome = ferry(&["run", "scenarios/quickstart.yaml"]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(outcome.stderr, "");
    let [outcome_line, seed_line, hash_line] = closing_lines(&outcome.stdout);
    assert_eq!(outcome_line, "outcome: converged");
    assert_eq!(seed_line, "seed: 1");
    trace_hash(hash_line);
    assert!(!outcome.stdout.contains("FAILED"), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("replay:"), "{}", outcome.stdout);
}

/// Goal: the same seed gives the same trace hash in two processes, another seed another
/// hash. Method: three runs of the quickstart with `--seed 5`, `5` and `6`.
#[test]
fn same_seed_same_hash_other_seed_other_hash() {
    let hash = |seed: &str| {
        let outcome = ferry(&["run", "scenarios/quickstart.yaml", "--seed", seed]);
        assert_eq!(outcome.code, 0, "{outcome:?}");
        let [_, seed_line, hash_line] = closing_lines(&outcome.stdout);
        assert_eq!(seed_line, format!("seed: {seed}"));
        trace_hash(hash_line).to_owned()
    };
    let first = hash("5");
    assert_eq!(hash("5"), first);
    assert_ne!(hash("6"), first);
}

/// Goal: `--json` prints exactly one JSON object with the contract keys, and the same trace
/// hash as the text report. Method: parse the whole of stdout as one value (serde_json
/// refuses trailing data), check keys and types, and compare with a text run.
#[test]
fn run_json_is_one_object_with_the_contract_keys() {
    let outcome = ferry(&["run", "scenarios/quickstart.yaml", "--seed", "3", "--json"]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(outcome.stderr, "");
    let value: Value = serde_json::from_str(&outcome.stdout).expect("stdout is exactly one JSON value");
    assert_contract_keys(&value, 3);
    assert_eq!(value["scenario"], "quickstart");
    assert_eq!(value["outcome"], "converged");
    let names: Vec<&str> =
        value["checks"].as_array().into_iter().flatten().filter_map(|check| check["name"].as_str()).collect();
    assert_eq!(names, ["converged", "no_data_loss", "invariants", "causality", "sessions"]);

    let text = ferry(&["run", "scenarios/quickstart.yaml", "--seed", "3"]);
    let [_, _, hash_line] = closing_lines(&text.stdout);
    assert_eq!(trace_hash(hash_line), hash_of(&value));
}

/// Goal: a failing run exits 1 and prints each failed check, the replay command, then the
/// closing lines; the replay command reproduces the run. Method: a scenario that cannot
/// converge in time, run with its own seed and with `--seed 9`, then the printed replay.
#[test]
fn failing_run_prints_failures_and_a_replay_line() {
    let directory = fresh_directory("failing_run");
    let file = write_file(&directory, "impatient.yaml", IMPATIENT);
    let file = path_text(&file);
    for (arguments, seed) in [(vec!["run", file], 4), (vec!["run", file, "--seed", "9"], 9)] {
        let outcome = ferry(&arguments);
        assert_eq!(outcome.code, 1, "{outcome:?}");
        assert_eq!(outcome.stderr, "");
        let lines: Vec<&str> = outcome.stdout.lines().collect();
        let tail = &lines[lines.len() - 6..];
        assert!(tail[0].starts_with("FAILED converged: not converged by 1.001s: "), "{}", outcome.stdout);
        assert!(tail[1].starts_with("FAILED no_data_loss: node b lacks acknowledged write "), "{tail:?}");
        assert_eq!(tail[2], format!("replay: ferry run {file} --seed {seed}"));
        assert_eq!(tail[3], "outcome: failed");
        assert_eq!(tail[4], format!("seed: {seed}"));
        let hash = trace_hash(tail[5]);
        assert_eq!(lines.iter().filter(|line| line.starts_with("FAILED ")).count(), 2, "{lines:?}");
        assert!(lines.contains(
            &"ok     invariants: no acknowledged write vanished from its origin; every node started"
        ));

        let replay: Vec<&str> =
            tail[2].strip_prefix("replay: ferry ").into_iter().flat_map(str::split_whitespace).collect();
        let replayed = ferry(&replay);
        assert_eq!(replayed.code, 1, "{replayed:?}");
        assert_eq!(replayed.stdout, outcome.stdout, "the replay line reproduces the whole report");
        assert_eq!(trace_hash(closing_lines(&replayed.stdout)[2]), hash);
    }
}

/// Goal: `--trace PATH` writes the full trace, one event per line, each starting with its
/// virtual time `[SECONDS.NANOSECONDS]`, in time order; writing it does not change the hash.
/// Method: run the quickstart with and without `--trace` and read the file.
#[test]
fn trace_file_lines_start_with_virtual_time() {
    let directory = fresh_directory("trace_file");
    let trace_path = directory.join("quickstart.trace");
    let traced = ferry(&["run", "scenarios/quickstart.yaml", "--trace", path_text(&trace_path)]);
    assert_eq!(traced.code, 0, "{traced:?}");
    let plain = ferry(&["run", "scenarios/quickstart.yaml"]);
    assert_eq!(traced.stdout, plain.stdout, "a text sink does not change the run");

    let trace = std::fs::read_to_string(&trace_path).expect("ferry wrote the trace");
    assert!(trace.lines().count() > 50, "the trace has every event:\n{trace}");
    assert!(trace.ends_with('\n'));
    let mut previous_ns = 0u64;
    for line in trace.lines() {
        let (stamp, event) = line
            .strip_prefix('[')
            .and_then(|rest| rest.split_once("] "))
            .unwrap_or_else(|| panic!("no [time] prefix: {line:?}"));
        let (seconds, nanoseconds) = stamp.trim_start().split_once('.').expect("time is SECONDS.NANOSECONDS");
        assert_eq!(nanoseconds.len(), 9, "nine digits of nanoseconds: {line:?}");
        let seconds: u64 = seconds.parse().expect("whole seconds");
        let nanoseconds: u64 = nanoseconds.parse().expect("whole nanoseconds");
        let at_ns = seconds * 1_000_000_000 + nanoseconds;
        assert!(at_ns >= previous_ns, "time never goes back: {line:?}");
        assert!(!event.is_empty(), "{line:?}");
        previous_ns = at_ns;
    }
    assert!(trace.contains("] fault partition"), "the trace shows the scripted partition");
    assert!(trace.contains("] a command put \"greeting\"=\"hello\""), "the trace shows the workload");
}

/// Goal: the per-node table lists every node of a small cluster, marks the one that settled
/// last, and carries no terminal escape when stdout is a pipe. Method: run the quickstart
/// through a pipe and read the rows between the `per node` header and the first check.
#[test]
fn run_prints_a_per_node_table_without_escapes_in_a_pipe() {
    let outcome = ferry(&["run", "scenarios/quickstart.yaml"]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(!outcome.stdout.contains('\x1b'), "no escape sequence in a pipe:\n{}", outcome.stdout);
    let table: Vec<&str> = outcome
        .stdout
        .lines()
        .skip_while(|line| !line.starts_with("per node"))
        .take_while(|line| !line.starts_with("ok "))
        .collect();
    assert_eq!(
        table[0],
        "per node     node       sent   received     lost  log peak    wal peak  settled at"
    );
    let names: Vec<&str> = table[1..].iter().filter_map(|row| row.split_whitespace().next()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let marked: Vec<&&str> = table[1..].iter().filter(|row| row.ends_with(" <")).collect();
    assert_eq!(marked.len(), 1, "one node settled last: {table:?}");
    assert!(marked[0].ends_with("2.013s <"), "it settled when the cluster converged: {table:?}");
}

/// Goal: `--trace -` writes the trace to standard output, before the report, and creates no
/// file named `-`. Method: run the quickstart so in a fresh directory and compare with the
/// report and the trace file of the same run.
#[test]
fn trace_dash_is_standard_output() {
    let directory = fresh_directory("trace_dash");
    let scenario = std::fs::read_to_string("scenarios/quickstart.yaml").expect("the library file");
    write_file(&directory, "quickstart.yaml", &scenario);
    let outcome = ferry_in(&directory, &["run", "quickstart.yaml", "--trace", "-"]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let filed = ferry_in(&directory, &["run", "quickstart.yaml", "--trace", "quickstart.trace"]);
    let trace = std::fs::read_to_string(directory.join("quickstart.trace")).expect("ferry wrote the trace");
    assert_eq!(outcome.stdout, format!("{trace}{}", filed.stdout));
    assert!(!directory.join("-").exists(), "no file named -");
}

/// Goal: a trace that cannot be written is an error (exit 2, the path and the reason), not
/// a silently empty file. Method: `--trace /dev/full`, where every write fails, and a
/// `--trace-dir` whose `1.trace` is a link to `/dev/full`.
#[cfg(target_os = "linux")]
#[test]
fn unwritable_trace_is_an_error() {
    let outcome = ferry(&["run", "scenarios/quickstart.yaml", "--trace", "/dev/full"]);
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert_eq!(outcome.stdout, "");
    assert_eq!(outcome.stderr, "error: /dev/full: No space left on device (os error 28)\n");

    let directory = fresh_directory("unwritable_trace");
    write_file(&directory, "impatient.yaml", IMPATIENT);
    std::fs::create_dir(directory.join("traces")).expect("the scratch directory is writable");
    std::os::unix::fs::symlink("/dev/full", directory.join("traces/1.trace")).expect("symlinks work here");
    let outcome =
        ferry_in(&directory, &["sweep", "impatient.yaml", "--seeds", "1..2", "--trace-dir", "traces"]);
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert_eq!(outcome.stderr, "error: traces/1.trace: No space left on device (os error 28)\n");
}

/// Goal: text from a scenario file never reaches the terminal raw: a key holding ESC and a
/// newline is escaped in the error, and a name with control characters is refused (it would
/// be printed in every report and JUnit file). Method: `ferry check` on two such files.
#[test]
fn terminal_control_characters_in_a_file_are_escaped_or_refused() {
    let directory = fresh_directory("escaped_text");
    write_file(&directory, "key.yaml", "name: x\nnodes: [a]\nduration: 1s\n\"bad\\ekey\\nforged\": 1\n");
    write_file(&directory, "name.yaml", "name: \"x\\e]0;pwned\\a\"\nnodes: [a]\nduration: 1s\n");
    let outcome = ferry_in(&directory, &["check", "key.yaml"]);
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert!(
        outcome.stderr.starts_with("key.yaml:4:1: unknown key `bad\\u{1b}key\\u{a}forged`, expected one of"),
        "{}",
        outcome.stderr
    );
    assert_eq!(outcome.stderr.lines().count(), 1);
    let outcome = ferry_in(&directory, &["check", "name.yaml"]);
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert_eq!(
        outcome.stderr,
        "name.yaml:1:7: expected a scenario name without control characters, found \"x\\u{1b}]0;pwned\\u{7}\"\n"
    );
}

/// Goal: `--check-determinism` runs the seed twice on two threads, says so and passes.
/// Method: run the quickstart with it and compare with a plain run.
#[test]
fn check_determinism_prints_its_line() {
    let outcome = ferry(&["run", "scenarios/quickstart.yaml", "--seed", "2", "--check-determinism"]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(outcome.stderr, "");
    assert!(
        outcome.stdout.lines().any(|line| line == "determinism  two runs, two threads, identical traces"),
        "{}",
        outcome.stdout
    );
    let plain = ferry(&["run", "scenarios/quickstart.yaml", "--seed", "2"]);
    assert_eq!(closing_lines(&outcome.stdout), closing_lines(&plain.stdout));
}

// ---- check --------------------------------------------------------------------------------

/// The files in `scenarios/`, relative to the package root, sorted.
fn library_scenarios() -> Vec<String> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&directory)
        .expect("scenarios/ exists")
        .map(|entry| entry.expect("scenarios/ is readable").file_name().into_string().expect("UTF-8 names"))
        .filter(|name| name.ends_with(".yaml"))
        .map(|name| format!("scenarios/{name}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the library has scenarios");
    files
}

/// Goal: `ferry check` accepts every library scenario. Method: one call with all of them;
/// one `FILE: ok (NAME, N nodes)` line each, in order.
#[test]
fn check_accepts_every_library_scenario() {
    let files = library_scenarios();
    let arguments: Vec<&str> = std::iter::once("check").chain(files.iter().map(String::as_str)).collect();
    let outcome = ferry(&arguments);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(outcome.stderr, "");
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines.len(), files.len(), "{}", outcome.stdout);
    for (line, file) in lines.iter().zip(&files) {
        assert!(line.starts_with(&format!("{file}: ok (")), "{line}");
        assert!(line.ends_with(" nodes)"), "{line}");
    }
}

/// The head of most malformed files below.
const HEAD: &str = "name: x\nduration: 10s\nnodes: [a, b]\n";

/// Malformed scenarios: file name, contents, and the exact message. The first five are the
/// files of contract-check section 3.
fn malformed() -> Vec<(&'static str, String, &'static str)> {
    let with_head = |tail: &str| format!("{HEAD}{tail}");
    vec![
        (
            "typo.yaml",
            with_head("expect: {convergd: true}\n"),
            "typo.yaml:4:10: unknown key `convergd`, did you mean `converged`?",
        ),
        (
            "duration.yaml",
            "name: x\nduration: ten\nnodes: [a, b]\n".to_owned(),
            "duration.yaml:2:11: expected a duration like 250ms, found \"ten\"",
        ),
        (
            "node.yaml",
            with_head("workload:\n  - {at: 1s, node: c, put: {key: k, value: v}}\n"),
            "node.yaml:5:20: node `c` is not declared in `nodes`",
        ),
        (
            "prob.yaml",
            with_head("network: {duplicate: -0.1}\n"),
            "prob.yaml:4:22: `duplicate` must be a probability in [0, 1], found -0.1",
        ),
        (
            "syntax.yaml",
            with_head("clock: {skew: 1s\n"),
            "syntax.yaml:5:1: invalid yaml: while parsing a flow mapping, did not find expected ',' or '}'",
        ),
        (
            "indentation.yaml",
            "name: x\n  duration: 10s\n".to_owned(),
            "indentation.yaml:2:11: invalid yaml: mapping values are not allowed in this context",
        ),
        (
            "section-typo.yaml",
            with_head("netwrok: {loss: 0.1}\n"),
            "section-typo.yaml:4:1: unknown key `netwrok`, did you mean `network`?",
        ),
        (
            "unknown-key.yaml",
            with_head("expect: {speed: 1}\n"),
            "unknown-key.yaml:4:10: unknown key `speed`, expected one of `converged`, `within`, `no_data_loss` or `trace_hash`",
        ),
        (
            "seed-type.yaml",
            with_head("seed: many\n"),
            "seed-type.yaml:4:7: expected a whole number like 7, found \"many\"",
        ),
        (
            "nodes-type.yaml",
            "name: x\nduration: 10s\nnodes: {a: 1}\n".to_owned(),
            "nodes-type.yaml:3:8: expected a list of node names or a count like 5, found a mapping",
        ),
        (
            "loss-type.yaml",
            with_head("network:\n  loss: high\n"),
            "loss-type.yaml:5:9: expected a probability like 0.05, found \"high\"",
        ),
        (
            "fault-node.yaml",
            with_head("faults:\n  - {at: 1s, crash: z}\n"),
            "fault-node.yaml:5:21: node `z` is not declared in `nodes`",
        ),
        (
            "inverted-range.yaml",
            with_head("network:\n  latency: 5s..1s\n"),
            "inverted-range.yaml:5:12: range 5s..1s is inverted: its start is after its end",
        ),
        (
            "empty-range.yaml",
            with_head("network:\n  latency: 1s..1s\n"),
            "empty-range.yaml:5:12: range 1s..1s is empty: write a single duration for a fixed value",
        ),
        (
            "loss.yaml",
            with_head("network:\n  loss: 1.5\n"),
            "loss.yaml:5:9: `loss` must be a probability in [0, 1], found 1.5",
        ),
        (
            "restart.yaml",
            with_head("faults:\n  - {at: 1s, restart: a}\n"),
            "restart.yaml:5:23: restart of `a`, which is not crashed at 1s",
        ),
        (
            "restart-order.yaml",
            with_head("faults:\n  - {at: 3s, crash: a}\n  - {at: 2s, restart: a}\n"),
            "restart-order.yaml:6:23: restart of `a`, which is not crashed at 2s",
        ),
        (
            "crash-twice.yaml",
            with_head("faults:\n  - {at: 1s, crash: a}\n  - {at: 2s, crash: a}\n"),
            "crash-twice.yaml:6:21: crash of `a`, which is already crashed since 1s",
        ),
        (
            "late-fault.yaml",
            with_head("faults:\n  - {at: 12s, crash: a}\n"),
            "late-fault.yaml:5:10: `at` 12s is not before `duration` 10s",
        ),
        (
            "fault-at-end.yaml",
            with_head("faults:\n  - {at: 10s, crash: a}\n"),
            "fault-at-end.yaml:5:10: `at` 10s is not before `duration` 10s",
        ),
        (
            "topology.yaml",
            with_head("topology: fullmesh\n"),
            "topology.yaml:4:11: unknown topology `fullmesh`, did you mean `full-mesh`?",
        ),
        ("duplicate-key.yaml", with_head("nodes: [c]\n"), "duplicate-key.yaml:4:1: duplicate key `nodes`"),
        (
            "break.yaml",
            with_head("faults:\n  - {at: 1s, break: {between: [a, b]}}\n"),
            "break.yaml:5:14: `break` needs a stream link: `network.transport: stream`, or `transport: stream` \
             for this pair in `network.links`",
        ),
        (
            "empty.yaml",
            String::new(),
            "empty.yaml:1:1: empty file: expected a mapping with `name`, `duration` and `nodes`",
        ),
    ]
}

/// Goal: each malformed file makes `ferry check` exit 2 with exactly one stderr line
/// `FILE:LINE:COLUMN: message` that points at the offending value. Method: write each file
/// into a scratch directory and check it from there, so `FILE` is the bare name.
#[test]
fn check_rejects_each_malformed_file_with_its_position() {
    let directory = fresh_directory("malformed");
    for (name, text, message) in malformed() {
        write_file(&directory, name, &text);
        let outcome = ferry_in(&directory, &["check", name]);
        assert_eq!(outcome.code, 2, "{name}: {outcome:?}");
        assert_eq!(outcome.stdout, "", "{name}");
        assert_eq!(outcome.stderr, format!("{message}\n"), "{name}");
    }
}

/// Goal: `check` reports every bad file among several, and still lists the good ones; one
/// bad file makes the exit code 2. Method: a good, a bad and another bad file in one call.
#[test]
fn check_reports_every_bad_file_among_several() {
    let directory = fresh_directory("several");
    write_file(&directory, "good.yaml", HEAD);
    write_file(&directory, "typo.yaml", &format!("{HEAD}expect: {{convergd: true}}\n"));
    write_file(&directory, "loss.yaml", &format!("{HEAD}network:\n  loss: 1.5\n"));
    let outcome = ferry_in(&directory, &["check", "typo.yaml", "good.yaml", "loss.yaml"]);
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert_eq!(outcome.stdout, "good.yaml: ok (x, 2 nodes)\n");
    assert_eq!(
        outcome.stderr,
        "typo.yaml:4:10: unknown key `convergd`, did you mean `converged`?\n\
         loss.yaml:5:9: `loss` must be a probability in [0, 1], found 1.5\n"
    );
}

/// Goal: `run` and `sweep` refuse a malformed file with exit 2 and the same
/// `FILE:LINE:COLUMN: message` line as `check`, before running anything. Method: the
/// contract's typo file through all three commands.
#[test]
fn run_and_sweep_report_scenario_errors_like_check() {
    let directory = fresh_directory("run_malformed");
    write_file(&directory, "typo.yaml", &format!("{HEAD}expect: {{convergd: true}}\n"));
    let expected = "typo.yaml:4:10: unknown key `convergd`, did you mean `converged`?\n";
    for arguments in [
        &["check", "typo.yaml"][..],
        &["run", "typo.yaml"],
        &["run", "typo.yaml", "--json"],
        &["sweep", "typo.yaml", "--seeds", "0..4"],
    ] {
        assert_input_error(&directory, arguments, expected);
    }
}

/// Asserts that `ferry ARGUMENTS` exits 2 with nothing on stdout and exactly `expected` on
/// stderr.
fn assert_input_error(directory: &Path, arguments: &[&str], expected: &str) {
    let outcome = ferry_in(directory, arguments);
    assert_eq!(outcome.code, 2, "{arguments:?}: {outcome:?}");
    assert_eq!(outcome.stdout, "", "{arguments:?}");
    assert_eq!(outcome.stderr, expected, "{arguments:?}");
}

/// Goal: a missing file is a one-line error with exit 2, never a panic. Method: `check`,
/// `run` and `sweep` on a path that does not exist.
#[test]
fn missing_file_is_an_error_not_a_panic() {
    let directory = fresh_directory("missing");
    let expected = "missing.yaml: cannot read: no such file or directory (os error 2)\n";
    for arguments in [
        &["check", "missing.yaml"][..],
        &["run", "missing.yaml"],
        &["sweep", "missing.yaml", "--seeds", "0..2"],
    ] {
        assert_input_error(&directory, arguments, expected);
    }
}

// ---- usage --------------------------------------------------------------------------------

/// Goal: bad command lines exit 2 with a message on stderr and nothing on stdout. Method:
/// each case with its exact stderr (clap's wording for what clap checks, ours for the
/// values ferry parses itself).
#[test]
fn usage_errors_exit_2() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["run"],
            "error: the following required arguments were not provided:\n  <FILE>\n\n\
             Usage: ferry run <FILE>\n\nFor more information, try '--help'.\n",
        ),
        (
            &["frobnicate"],
            "error: unrecognized subcommand 'frobnicate'\n\n\
             Usage: ferry <COMMAND>\n\nFor more information, try '--help'.\n",
        ),
        (
            &["sweep", "scenarios/quickstart.yaml"],
            "error: the following required arguments were not provided:\n  --seeds <A..B>\n\n\
             Usage: ferry sweep --seeds <A..B> <FILES>...\n\nFor more information, try '--help'.\n",
        ),
        (
            &["sweep", "scenarios/quickstart.yaml", "--seeds", "5..1"],
            "error: --seeds \"5..1\": expected A..B with A < B, e.g. 0..100\n",
        ),
        (
            &["sweep", "scenarios/quickstart.yaml", "--seeds", "3..3"],
            "error: --seeds \"3..3\": expected A..B with A < B, e.g. 0..100\n",
        ),
        (
            &["sweep", "scenarios/quickstart.yaml", "--seeds", "0..4", "--shard", "3/2"],
            "error: --shard \"3/2\": expected I/N with 0 <= I < N, e.g. 0/4\n",
        ),
        (
            &["sweep", "scenarios/quickstart.yaml", "--seeds", "0..4", "--jobs", "0"],
            "error: --jobs 0: at least one job is needed\n",
        ),
    ];
    for (arguments, stderr) in cases {
        let outcome = ferry(arguments);
        assert_eq!(outcome.code, 2, "{arguments:?}: {outcome:?}");
        assert_eq!(outcome.stdout, "", "{arguments:?}");
        assert_eq!(outcome.stderr, stderr, "{arguments:?}");
    }
    let bare = ferry(&[]);
    assert_eq!(bare.code, 2, "{bare:?}");
    assert_eq!(bare.stdout, "");
    assert!(bare.stderr.contains("Usage: ferry <COMMAND>"), "{}", bare.stderr);
}

/// Goal: `--help` and `--version` succeed on stdout. Method: run both and look for the
/// usage line, the exit codes note and the package version.
#[test]
fn help_and_version_exit_0() {
    let help = ferry(&["--help"]);
    assert_eq!(help.code, 0, "{help:?}");
    assert_eq!(help.stderr, "");
    assert!(help.stdout.contains("\nUsage: ferry <COMMAND>\n"), "{}", help.stdout);
    for command in ["run", "sweep", "check", "node"] {
        assert!(help.stdout.contains(&format!("\n  {command} ")), "{command} is listed:\n{}", help.stdout);
    }
    assert!(
        help.stdout.ends_with(
            "Exit codes: 0 every expectation held, 1 an expectation failed, 2 bad input or usage.\n"
        ),
        "{}",
        help.stdout
    );
    let run_help = ferry(&["run", "--help"]);
    assert_eq!(run_help.code, 0, "{run_help:?}");
    assert!(run_help.stdout.contains("Usage: ferry run [OPTIONS] <FILE>"), "{}", run_help.stdout);

    let version = ferry(&["--version"]);
    assert_eq!(version.code, 0, "{version:?}");
    assert_eq!(version.stderr, "");
    assert_eq!(version.stdout, format!("ferry {}\n", env!("CARGO_PKG_VERSION")));
}

// ---- sweep --------------------------------------------------------------------------------

/// Goal: a sweep where every seed passes prints only the summary. Method: the quickstart
/// over six seeds on two jobs.
#[test]
fn sweep_of_quickstart_passes_every_seed() {
    let outcome = ferry(&["sweep", "scenarios/quickstart.yaml", "--seeds", "0..6", "--jobs", "2"]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(outcome.stdout, "scenarios/quickstart.yaml: 6 passed, 0 failed\n6 passed, 0 failed\n");
    assert_eq!(outcome.stderr, "");
}

/// Goal: `--json` sweeps print one report per seed, in seed order, whatever `--jobs`, and
/// the hashes match single runs in other processes. Method: the quickstart over 0..6 with
/// one and two jobs; compare the outputs byte for byte, then each hash with `ferry run`.
#[test]
fn sweep_results_do_not_depend_on_jobs() {
    let sweep = |jobs: &str| {
        let outcome =
            ferry(&["sweep", "scenarios/quickstart.yaml", "--seeds", "0..6", "--jobs", jobs, "--json"]);
        assert_eq!(outcome.code, 0, "{outcome:?}");
        assert_eq!(
            outcome.stderr, "scenarios/quickstart.yaml: 6 passed, 0 failed\n6 passed, 0 failed\n",
            "the summary goes to stderr with --json"
        );
        outcome.stdout
    };
    let one_job = sweep("1");
    assert_eq!(sweep("2"), one_job);
    let reports = json_lines(&one_job);
    assert_eq!(reports.iter().map(seed_of).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
    for report in &reports {
        assert_contract_keys(report, seed_of(report));
        assert_eq!(report["file"], "scenarios/quickstart.yaml");
        assert_eq!(
            report["replay"],
            format!("ferry run scenarios/quickstart.yaml --seed {}", seed_of(report))
        );
    }
    let hashes: BTreeSet<&str> = reports.iter().map(hash_of).collect();
    assert_eq!(hashes.len(), reports.len(), "every seed has its own trace");
    for seed in [0, 5] {
        let single = ferry(&["run", "scenarios/quickstart.yaml", "--seed", &seed.to_string()]);
        let [_, _, hash_line] = closing_lines(&single.stdout);
        assert_eq!(trace_hash(hash_line), hash_of(&reports[seed]), "seed {seed}");
    }
}

/// Goal: `--shard 0/2` and `--shard 1/2` split a range with no overlap and no gap, and give
/// each seed the same result as the whole sweep. Method: JSON lines of both shards and of
/// the unsharded sweep over 0..7 (odd, so the shards differ in size).
#[test]
fn shards_split_the_range_without_overlap() {
    let sweep = |extra: &[&str]| {
        let mut arguments =
            vec!["sweep", "scenarios/quickstart.yaml", "--seeds", "0..7", "--jobs", "2", "--json"];
        arguments.extend_from_slice(extra);
        let outcome = ferry(&arguments);
        assert_eq!(outcome.code, 0, "{outcome:?}");
        json_lines(&outcome.stdout)
    };
    let whole = sweep(&[]);
    let first = sweep(&["--shard", "0/2"]);
    let second = sweep(&["--shard", "1/2"]);
    assert_eq!(first.iter().map(seed_of).collect::<Vec<_>>(), [0, 2, 4, 6]);
    assert_eq!(second.iter().map(seed_of).collect::<Vec<_>>(), [1, 3, 5]);
    let mut merged: Vec<&Value> = first.iter().chain(&second).collect();
    merged.sort_by_key(|report| seed_of(report));
    assert_eq!(merged, whole.iter().collect::<Vec<_>>(), "the shards together are the whole sweep");
}

/// Goal: a sweep of a failing scenario prints one line per failing seed with its replay
/// command, then the summary, and exits 1. Method: the always-failing scenario over 0..3.
#[test]
fn failing_sweep_prints_a_replay_line_per_seed() {
    let directory = fresh_directory("failing_sweep");
    write_file(&directory, "impatient.yaml", IMPATIENT);
    let outcome = ferry_in(&directory, &["sweep", "impatient.yaml", "--seeds", "0..3", "--jobs", "2"]);
    assert_eq!(outcome.code, 1, "{outcome:?}");
    assert_eq!(outcome.stderr, "");
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", outcome.stdout);
    for (seed, line) in lines[..3].iter().enumerate() {
        assert!(
            line.starts_with(&format!("seed {seed} failed (converged: not converged by 1.001s: ")),
            "{line}"
        );
        assert!(line.ends_with(&format!("); replay: ferry run impatient.yaml --seed {seed}")), "{line}");
    }
    assert_eq!(lines[3], "impatient.yaml: 0 passed, 3 failed");
    assert_eq!(lines[4], "0 passed, 3 failed");
}

/// Goal: only failing seeds get a line, and exactly those that fail on their own. Method:
/// a scenario whose outcome depends on the seed, swept over 0..8, compared with one
/// `ferry run --json` per seed.
#[test]
fn sweep_lists_exactly_the_failing_seeds() {
    let directory = fresh_directory("mixed_sweep");
    write_file(&directory, "coin-flip.yaml", COIN_FLIP);
    let outcome = ferry_in(&directory, &["sweep", "coin-flip.yaml", "--seeds", "0..8", "--jobs", "2"]);
    let mut failing_alone = Vec::new();
    for seed in 0..8u64 {
        let single = ferry_in(&directory, &["run", "coin-flip.yaml", "--seed", &seed.to_string(), "--json"]);
        let report: Value = serde_json::from_str(&single.stdout).expect("one JSON object");
        if report["outcome"] == "failed" {
            assert_eq!(single.code, 1, "{single:?}");
            failing_alone.push(seed);
        } else {
            assert_eq!(single.code, 0, "{single:?}");
        }
    }
    assert!(!failing_alone.is_empty() && failing_alone.len() < 8, "retune COIN_FLIP: {failing_alone:?}");
    assert_eq!(outcome.code, 1, "{outcome:?}");
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    let (summary, failures) = lines.split_last().expect("a summary line");
    let (file_summary, failures) = failures.split_last().expect("a per-file summary line");
    let counts = format!("{} passed, {} failed", 8 - failing_alone.len(), failing_alone.len());
    assert_eq!(*summary, counts);
    assert_eq!(*file_summary, format!("coin-flip.yaml: {counts}"));
    let failing_in_sweep: Vec<u64> = failures
        .iter()
        .map(|line| {
            let seed =
                line.strip_prefix("seed ").and_then(|rest| rest.split_once(' ')).expect("seed N ...").0;
            assert!(line.ends_with(&format!("; replay: ferry run coin-flip.yaml --seed {seed}")), "{line}");
            seed.parse().expect("a seed number")
        })
        .collect();
    assert_eq!(failing_in_sweep, failing_alone);
}

/// Goal: `--trace-dir` writes `SEED.trace` for each failing seed and nothing else, and each
/// is the trace `ferry run --trace` writes for that seed. Method: the always-failing
/// scenario over 1..3, then a passing sweep into another directory.
#[test]
fn trace_dir_holds_one_trace_per_failing_seed() {
    let directory = fresh_directory("trace_dir");
    write_file(&directory, "impatient.yaml", IMPATIENT);
    let outcome =
        ferry_in(&directory, &["sweep", "impatient.yaml", "--seeds", "1..3", "--trace-dir", "traces"]);
    assert_eq!(outcome.code, 1, "{outcome:?}");
    let mut names: Vec<String> = std::fs::read_dir(directory.join("traces"))
        .expect("the sweep created the trace directory")
        .map(|entry| entry.expect("readable").file_name().into_string().expect("UTF-8"))
        .collect();
    names.sort();
    assert_eq!(names, ["1.trace", "2.trace"]);
    for seed in ["1", "2"] {
        let single_path = directory.join(format!("single-{seed}.trace"));
        let single = ferry_in(
            &directory,
            &["run", "impatient.yaml", "--seed", seed, "--trace", path_text(&single_path)],
        );
        assert_eq!(single.code, 1, "{single:?}");
        let from_sweep = std::fs::read_to_string(directory.join(format!("traces/{seed}.trace")))
            .expect("the sweep wrote this trace");
        let from_run = std::fs::read_to_string(&single_path).expect("the run wrote this trace");
        assert!(from_sweep.starts_with("[   0.000000000] "), "{from_sweep}");
        assert_eq!(from_sweep, from_run, "seed {seed}");
    }

    let passing = ferry(&[
        "sweep",
        "scenarios/quickstart.yaml",
        "--seeds",
        "0..2",
        "--trace-dir",
        path_text(&directory.join("none")),
    ]);
    assert_eq!(passing.code, 0, "{passing:?}");
    let written = std::fs::read_dir(directory.join("none")).map_or(0, Iterator::count);
    assert_eq!(written, 0, "passing seeds leave no trace file");
}
