//! End-to-end tests of what makes a verdict trustworthy: faults that act and last as
//! written, summaries that count them honestly, warnings for faults that cannot act,
//! sweeps that report to people and CI, inspectable runs, trace-hash snapshots and clear
//! errors. Each test runs the real binary and compares exact output.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{ferry, ferry_in, fresh_directory, write_file};

/// A lossy, duplicating link for 3 s and a 2 s crash, with writes past both.
const WINDOWS: &str = "\
name: windows
duration: 10s
nodes: [a, b]
workload:
  - {from: 0s, until: 4s, rate: 50/s, keys: 5}
faults:
  - {from: 0s, until: 3s, link: {between: [a, b], loss: 0.5, duplicate: 0.5}}
  - {at: 1s, for: 2s, crash: b}
";

/// The example of a scenario that tested nothing: the link fault now lasts until
/// the liveness phase, and the trailing crash is warned about.
const INSTANT: &str = "\
name: instant
duration: 10s
nodes: [a, b, c]
workload:
  - {at: 1s, node: a, put: {key: k, value: v}}
faults:
  - {at: 0s, link: {between: [a, b], loss: 0.5, duplicate: 0.5}}
  - {at: 2s, crash: c}
";

const INSTANT_WARNING: &str = "instant.yaml:8:5: warning: this fault is undone at once: the liveness phase starts \
                               at 2s and heals every link and restarts every node; give it a length (`for: 5s`) \
                               or let work continue after it";

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

fn line_starting<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line:\n{stdout}"))
}

// ---- faults mean what they say ------------------------------------------------------------

/// Goal: a time-bounded fault acts for exactly its window, and the liveness phase waits for
/// the workload. Method: the link drops and duplicates, the crash lasts 2 s, both end on
/// time, and the liveness phase starts at the workload's end with nothing left to heal.
#[test]
fn time_bounded_faults_act_and_last() {
    let directory = fresh_directory("trust_windows");
    write_file(&directory, "windows.yaml", WINDOWS);
    let outcome = ferry_in(&directory, &["run", "windows.yaml", "--json", "--trace", "windows.trace"]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let report = json(&outcome.stdout);
    let stats = &report["stats"];
    assert!(stats["drops_by_reason"]["loss"].as_u64() > Some(0), "{stats}");
    assert!(stats["duplicated"].as_u64() > Some(0), "{stats}");
    assert_eq!(stats["fault_active_ms"], serde_json::json!({"crash": 2000, "link": 3000}));
    assert_eq!(stats["fault_ends"], serde_json::json!({"crash": 1, "link": 1}));
    assert_eq!(stats["faults"], serde_json::json!({"crash": 1, "link": 1}));
    assert_eq!(stats["liveness_actions"], serde_json::json!({}));
    assert_eq!(stats["heal_ms"], 4000);
    assert_eq!(stats["heal_reason"], "after the workload's last random write window");
    let trace = std::fs::read_to_string(directory.join("windows.trace")).expect("the trace was written");
    for line in [
        "[   0.000000000] fault link a <-> b loss=0.5 duplicate=0.5 until 3.000s",
        "[   1.000000000] fault crash b until 3.000s",
        "[   3.000000000] fault end crash b (from 1.000s)",
        "[   3.000000000] fault end link a <-> b loss=0.5 duplicate=0.5 (from 0.000s)",
    ] {
        assert!(trace.lines().any(|traced| traced == line), "missing {line:?}");
    }
}

/// Goal: `reorder` on a link fault reorders, and the fault's trace line shows every
/// setting. Method: the same file with `reorder: 0` and `reorder: 1`.
#[test]
fn link_reorder_takes_effect() {
    let directory = fresh_directory("trust_reorder");
    let file = |reorder: &str| {
        format!(
            "name: reorder\nduration: 5s\nnodes: [a, b]\nworkload:\n  - {{from: 0s, until: 2s, rate: 200/s, keys: 3}}\n\
             faults:\n  - {{from: 0s, until: 2s, link: {{between: [a, b], latency: 1ms..20ms, reorder: {reorder}}}}}\n"
        )
    };
    write_file(&directory, "none.yaml", &file("0"));
    write_file(&directory, "all.yaml", &file("1"));
    let none = json(&ferry_in(&directory, &["run", "none.yaml", "--json"]).stdout);
    let all = json(&ferry_in(&directory, &["run", "all.yaml", "--json", "--trace", "all.trace"]).stdout);
    assert_ne!(none["trace_hash"], all["trace_hash"]);
    assert!(all["stats"]["reordered"].as_u64() > none["stats"]["reordered"].as_u64(), "{all} {none}");
    let trace = std::fs::read_to_string(directory.join("all.trace")).expect("the trace was written");
    assert!(trace.contains("] fault link a <-> b latency=1ms..20ms reorder=1 until 2.000s\n"), "{trace}");
}

/// Goal: a fault the liveness phase would undo at once is warned about by `check` and by
/// `run`, and the summary counts scripted faults apart from the liveness phase's actions.
/// Method: the issue's own example.
#[test]
fn faults_that_cannot_act_are_warned_and_counted_apart() {
    let directory = fresh_directory("trust_instant");
    write_file(&directory, "instant.yaml", INSTANT);
    let check = ferry_in(&directory, &["check", "instant.yaml"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert_eq!(check.stdout, "instant.yaml: ok (instant, 3 nodes)\n");
    assert_eq!(check.stderr, format!("{INSTANT_WARNING}\n"));
    let run = ferry_in(&directory, &["run", "instant.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().next(), Some(INSTANT_WARNING));
    assert_eq!(line_starting(&run.stdout, "faults "), "faults       crash 1, link 1 (chaos drew 0)");
    assert_eq!(
        line_starting(&run.stdout, "liveness "),
        "liveness     began at 2.000s (after the fault at line 8): heal 1, restart 1"
    );
    assert!(line_starting(&run.stdout, "drops ").contains("loss "), "the link fault acted");
}

/// Goal: the static warnings name each fault that has no effect. Method: a link fault off
/// the topology, loss on a stream link, a one-group partition, and a run that ends as the
/// liveness phase begins.
#[test]
fn check_warns_about_faults_without_effect() {
    let directory = fresh_directory("trust_no_effect");
    write_file(
        &directory,
        "idle.yaml",
        "name: idle\nduration: 4s\nnodes: [a, b, c]\ntopology: line\nnetwork: {transport: stream}\nfaults:\n  \
         - {from: 1s, until: 4s, link: {between: [a, c], loss: 0.5}}\n  - {from: 1s, for: 1s, partition: [[a, b, c]]}\n",
    );
    let check = ferry_in(&directory, &["check", "idle.yaml"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert_eq!(
        check.stderr,
        "idle.yaml: warning: the liveness phase starts at the end of the run (4s), so nothing has time to converge; \
         end the workload and the faults before `duration`\n\
         idle.yaml:7:5: warning: the topology has no link between `a` and `c`: this `link` fault has no effect\n\
         idle.yaml:7:5: warning: `loss`, `duplicate` and `reorder` do not apply to stream links (only `latency` does); \
         use `network.transport: datagram`, or `break` and `partition` faults\n\
         idle.yaml:8:5: warning: this partition has one group: it separates nothing\n"
    );
}

/// Goal: a link fault that no message crossed is reported by the run. Method: a
/// millisecond of loss between two of the nodes' once-a-second pulls, before any write.
#[test]
fn run_warns_about_a_link_fault_no_message_crossed() {
    let directory = fresh_directory("trust_quiet_link");
    write_file(
        &directory,
        "quiet.yaml",
        "name: quiet\nduration: 10s\nnodes: [a, b, c]\nworkload:\n  - {at: 5s, node: a, put: {key: k, value: v}}\n\
         faults:\n  - {at: 1.5s, for: 1ms, link: {between: [b, c], loss: 1}}\n",
    );
    let run = ferry_in(&directory, &["run", "quiet.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout.lines().next(),
        Some(
            "quiet.yaml: warning: the `link` fault at line 7 changed nothing: no message between `b` and `c` was \
             sent while it was in force"
        )
    );
}

/// Goal: `converged: false` expects divergence and fails when the nodes agree. Method: a
/// node the topology leaves alone, then a healthy pair.
#[test]
fn converged_false_expects_divergence() {
    let directory = fresh_directory("trust_diverge");
    write_file(
        &directory,
        "apart.yaml",
        "name: apart\nduration: 5s\nnodes: [a, b, c]\ntopology: {edges: [[a, b]]}\nworkload:\n  \
         - {at: 1s, node: a, put: {key: k, value: v}}\nexpect: {converged: false, no_data_loss: false, within: 2s}\n",
    );
    write_file(
        &directory,
        "together.yaml",
        "name: together\nduration: 5s\nnodes: [a, b]\nworkload:\n  - {at: 1s, node: a, put: {key: k, value: v}}\n\
         expect: {converged: false}\n",
    );
    let apart = ferry_in(&directory, &["run", "apart.yaml"]);
    assert_eq!(apart.code, 0, "{apart:?}");
    assert_eq!(
        line_starting(&apart.stdout, "ok     converged"),
        "ok     converged: expected to differ, and at 3.000s they do: c differs from a (key \"k\" on one side only)"
    );
    let together = ferry_in(&directory, &["run", "together.yaml"]);
    assert_eq!(together.code, 1, "{together:?}");
    assert_eq!(
        line_starting(&together.stdout, "FAILED"),
        "FAILED converged: 2 nodes, 1 key, equal digests at 5.000s, but expect.converged is false"
    );
}

// ---- sweeps for people and CI -------------------------------------------------------------

/// Goal: several files in one sweep, each named in its own summary line, totals last.
#[test]
fn sweep_of_several_files_names_each() {
    let outcome = ferry(&[
        "sweep",
        "scenarios/quickstart.yaml",
        "tests/scenarios/crash-pair.yaml",
        "--seeds",
        "0..3",
        "--jobs",
        "2",
    ]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(
        outcome.stdout,
        "scenarios/quickstart.yaml: 3 passed, 0 failed\ntests/scenarios/crash-pair.yaml: 3 passed, 0 failed\n\
         6 passed, 0 failed\n"
    );
    assert_eq!(outcome.stderr, "");
}

/// Goal: `--fail-fast` stops at the first failure and says what was not run, and
/// `--junit` writes one test case per file with the failing seed's reason and replay line.
/// Method: the always-failing scenario with one job, beside a passing one.
#[test]
fn fail_fast_and_junit() {
    let directory = fresh_directory("trust_fail_fast");
    let impatient = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/impatient.yaml");
    std::fs::copy(impatient, directory.join("impatient.yaml")).expect("copy the fixture");
    let outcome = ferry_in(
        &directory,
        &[
            "sweep",
            "impatient.yaml",
            "--seeds",
            "0..5",
            "--jobs",
            "1",
            "--fail-fast",
            "--junit",
            "report.xml",
        ],
    );
    assert_eq!(outcome.code, 1, "{outcome:?}");
    let reason = "converged: not converged by 1.001s: b differs from a (key \"k\" on one side only); no_data_loss: \
                  node b lacks acknowledged write af63dc4c8601ec8c#1 (key absent) to key \"k\", acknowledged by a at \
                  0.204s";
    assert_eq!(
        outcome.stdout,
        format!(
            "seed 0 failed ({reason}); replay: ferry run impatient.yaml --seed 0\n\
             stopped at the first failure (--fail-fast): 4 seeds not run\n\
             impatient.yaml: 0 passed, 1 failed, 4 not run\n0 passed, 1 failed\n"
        )
    );
    let xml = std::fs::read_to_string(directory.join("report.xml")).expect("the JUnit file was written");
    let escaped = reason.replace('"', "&quot;");
    assert_eq!(
        xml,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <testsuites name=\"ferry sweep\" tests=\"1\" failures=\"1\">\n  \
             <testsuite name=\"impatient.yaml\" tests=\"1\" failures=\"1\" skipped=\"0\">\n    \
             <testcase classname=\"ferry.impatient\" name=\"impatient.yaml seeds 0..5\" file=\"impatient.yaml\">\n      \
             <failure message=\"1 of 1 seeds failed\" type=\"ferry.check\">seed 0: {escaped}\n\
             replay: ferry run impatient.yaml --seed 0</failure>\n      \
             <system-out>0 passed, 4 seeds not run</system-out>\n    \
             </testcase>\n  </testsuite>\n</testsuites>\n"
        )
    );
}

/// Goal: Ctrl-C ends a sweep with exit 130 and the partial summary of what finished.
/// Method: a slow sweep; once the process has installed its SIGINT handler (visible in
/// /proc), send SIGINT and read what it printed. Nothing is timed.
#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_prints_the_partial_summary() {
    use std::process::{Command, Stdio};

    let directory = fresh_directory("trust_ctrl_c");
    write_file(
        &directory,
        "slow.yaml",
        "name: slow\nduration: 600s\nnodes: 30\nworkload:\n  - {from: 0s, until: 590s, rate: 500/s, keys: 1000}\n",
    );
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["sweep", "slow.yaml", "--seeds", "0..1000", "--jobs", "1"])
        .current_dir(&directory)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry");
    let status_path = format!("/proc/{}/status", child.id());
    loop {
        let status = std::fs::read_to_string(&status_path).expect("the sweep is still running");
        let caught = status
            .lines()
            .find_map(|line| line.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or(0);
        if caught & (1 << 1) != 0 {
            break; // bit 1 is SIGINT (signal 2)
        }
        std::thread::yield_now();
    }
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    // SAFETY: sends a signal to our own child, which is still running (we hold its handle).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0, "SIGINT delivered");
    let output = child.wait_with_output().expect("the sweep ends");
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let lines: Vec<&str> = stdout.lines().collect();
    let [interrupted, file_line, totals] = lines[..] else { panic!("three lines expected:\n{stdout}") };
    let done: u64 = totals.split(' ').next().and_then(|count| count.parse().ok()).expect("N passed");
    assert_eq!(interrupted, format!("interrupted (Ctrl-C): {} seeds not run", 1000 - done));
    assert_eq!(file_line, format!("slow.yaml: {done} passed, 0 failed, {} not run", 1000 - done));
    assert_eq!(totals, format!("{done} passed, 0 failed"));
}

/// Goal: a reader that closes the pipe early ends `ferry` quietly with exit 0. Method: a
/// JSON sweep far larger than a pipe's buffer, read for one line.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["sweep", "scenarios/quickstart.yaml", "--seeds", "0..300", "--json", "--jobs", "2"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut first).expect("one line");
    assert!(first.starts_with('{'), "{first}");
    // The reader is dropped here: the rest of the output has nowhere to go.
    let output = child.wait_with_output().expect("ferry ends");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

// ---- inspecting a run ---------------------------------------------------------------------

/// Goal: `--trace-format jsonl` gives one JSON object per event with the same hash as
/// text, values appear only with `--trace-values`, and `--dump-state` holds each node's
/// final keys. Method: the quickstart three ways.
#[test]
fn traces_and_state_can_be_inspected() {
    let directory = fresh_directory("trust_inspect");
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.yaml");
    std::fs::copy(quickstart, directory.join("quickstart.yaml")).expect("copy the quickstart");
    let text = ferry_in(&directory, &["run", "quickstart.yaml", "--trace", "plain.trace", "--json"]);
    let jsonl = ferry_in(
        &directory,
        &["run", "quickstart.yaml", "--trace", "events.jsonl", "--trace-format", "jsonl", "--json"],
    );
    let values = ferry_in(
        &directory,
        &[
            "run",
            "quickstart.yaml",
            "--trace",
            "values.trace",
            "--trace-values",
            "--dump-state",
            "state.json",
        ],
    );
    assert_eq!(values.code, 0, "{values:?}");
    assert_eq!(json(&text.stdout)["trace_hash"], json(&jsonl.stdout)["trace_hash"]);
    let read = |name: &str| std::fs::read_to_string(directory.join(name)).expect("written");
    let events: Vec<Value> = read("events.jsonl").lines().map(json).collect();
    assert_eq!(events.len(), read("plain.trace").lines().count());
    assert!(
        events
            .iter()
            .any(|event| event["kind"] == "send" && event["from"] == "a" && event["message_id"] == 12)
    );
    let plain = read("plain.trace");
    let push = plain.lines().find(|line| line.contains(" #12 send WalPush")).expect("a push");
    assert!(push.ends_with("send WalPush msg_id=2 a:1 67B"), "{push}");
    // The workload's own command line names what the scenario wrote; messages do not.
    assert!(!plain.contains("{a#1 put"), "values stay out of messages without --trace-values");
    assert!(read("values.trace").contains("send WalPush msg_id=2 a:1 {a#1 put \"greeting\"=\"hello\"} 67B"));
    let state = json(&read("state.json"));
    assert_eq!(state["digests_agree"], true);
    for node in state["nodes"].as_array().expect("nodes") {
        assert_eq!(node["keys"][0]["key"], "color");
        assert_eq!(node["keys"][0]["value"], "green");
        assert_eq!(node["tombstones"][0]["key"], "greeting");
    }
    assert!(plain.contains(" lww \"color\": "), "last-writer-wins conflicts are traced");
}

// ---- snapshot testing ---------------------------------------------------------------------

/// Goal: `expect.trace_hash` fails a run whose behaviour changed, `--bless` writes the new
/// hash into the file keeping its comments, and refuses another seed. Method: a file with a
/// stale hash, blessed, then run again.
#[test]
fn trace_hash_expectations_and_bless() {
    let directory = fresh_directory("trust_bless");
    let stale = "ffffffffffffffffffffffffffffffff";
    let original = format!(
        "name: pinned  # a comment that stays\nduration: 5s\nnodes: [a, b]\nworkload:\n  \
         - {{at: 1s, node: a, put: {{key: k, value: v}}}}\nexpect:\n  trace_hash: {stale}  # pinned\n"
    );
    write_file(&directory, "pinned.yaml", &original);
    let failed = ferry_in(&directory, &["run", "pinned.yaml"]);
    assert_eq!(failed.code, 1, "{failed:?}");
    let hash =
        failed.stdout.lines().last().and_then(|line| line.strip_prefix("trace-hash: ")).expect("a hash");
    assert_eq!(
        line_starting(&failed.stdout, "FAILED"),
        format!(
            "FAILED trace_hash: the trace hash is {hash}, but expect.trace_hash is {stale}: the run's behaviour \
             changed; compare traces with --trace, then accept the new behaviour with --bless"
        )
    );
    let other_seed = ferry_in(&directory, &["run", "pinned.yaml", "--bless", "--seed", "3"]);
    assert_eq!(other_seed.code, 2, "{other_seed:?}");
    assert_eq!(
        other_seed.stderr,
        "error: --bless writes expect.trace_hash for the file's own seed (0), not seed 3; drop --seed\n"
    );
    let blessed = ferry_in(&directory, &["run", "pinned.yaml", "--bless"]);
    assert_eq!(blessed.code, 0, "{blessed:?}");
    assert_eq!(
        line_starting(&blessed.stdout, "blessed "),
        format!("blessed      pinned.yaml: expect.trace_hash is now {hash}")
    );
    let text = std::fs::read_to_string(directory.join("pinned.yaml")).expect("the file");
    assert_eq!(text, original.replace(stale, hash));
    let again = ferry_in(&directory, &["run", "pinned.yaml"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        line_starting(&again.stdout, "ok     trace_hash"),
        format!("ok     trace_hash: the trace hash is {hash}, as expected")
    );
}

// ---- errors -------------------------------------------------------------------------------

/// Goal: typos get a pointed hint. Method: a misspelt required key, a misspelt subcommand,
/// and a range of seeds given to `run`.
#[test]
fn typos_get_pointed_hints() {
    let directory = fresh_directory("trust_typos");
    write_file(&directory, "typo.yaml", "name: x\nduraton: 30s\nnodes: 2\n");
    let check = ferry_in(&directory, &["check", "typo.yaml"]);
    assert_eq!(check.code, 2, "{check:?}");
    assert_eq!(check.stderr, "typo.yaml:2:1: unknown key `duraton`, did you mean `duration`?\n");
    let subcommand = ferry(&["rn", "scenarios/quickstart.yaml"]);
    assert_eq!(subcommand.code, 2, "{subcommand:?}");
    assert_eq!(subcommand.stderr, "error: unrecognized subcommand `rn`; did you mean `ferry run`?\n");
    let seeds = ferry(&["run", "scenarios/quickstart.yaml", "--seeds", "0..3"]);
    assert_eq!(seeds.code, 2, "{seeds:?}");
    assert_eq!(
        seeds.stderr,
        "error: `ferry run` runs one seed (`--seed N`); to run a range of seeds use `ferry sweep \
         scenarios/quickstart.yaml --seeds 0..3`\n"
    );
}

// ---- time-bounded fault syntax ------------------------------------------------------------

/// Goal: the time-bounded forms are checked like every other value. Method: one bad file
/// per rule, with its exact message.
#[test]
fn time_bounded_fault_errors() {
    let directory = fresh_directory("trust_window_errors");
    let cases = [
        ("{from: 1s, until: 1s, crash: a}", "5:23: `until` 1s is not after `from` 1s"),
        ("{at: 1s, for: 5s, crash: a}", "5:19: the fault ends at 6s (`for` 5s), after `duration` 5s"),
        (
            "{at: 1s, until: 2s, heal: all}",
            "5:14: a `heal` fault cannot last: `until` applies to partition, cut, link, isolate, crash, clock_jump, \
             corrupt, clog, pause and disk_fault",
        ),
        ("{at: 1s, from: 2s, crash: a}", "5:14: fault has both `at` and `from`"),
        ("{from: 1s, crash: a}", "5:5: missing required key `until`"),
        ("{at: 1s, until: 3s, for: 1s, crash: a}", "5:25: fault has both `until` and `for`"),
    ];
    for (index, (fault, message)) in cases.iter().enumerate() {
        let name = format!("bad{index}.yaml");
        write_file(
            &directory,
            &name,
            &format!("name: w\nduration: 5s\nnodes: [a, b]\nfaults:\n  - {fault}\n"),
        );
        let outcome = ferry_in(&directory, &["check", &name]);
        assert_eq!(outcome.code, 2, "{outcome:?}");
        let expected = format!("{name}:{message}\n");
        assert_eq!(outcome.stderr, expected, "{fault}");
    }
}
