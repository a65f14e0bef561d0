//! Argument parsing, command dispatch and output formatting. `main` only calls
//! [`main_with_args`] and exits with the code it returns.

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use ferry_protocol::MessageType;
use ferry_simulator::ferry::format_ns;
use ferry_simulator::{Trace, TraceFormat};
use thiserror::Error;

use crate::run::{self, Cost, Report};
use crate::scenario::{self, Scenario, ScenarioError};

/// Exit code: every expectation held.
pub const EXIT_OK: i32 = 0;
/// Exit code: an expectation failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: bad input or usage.
pub const EXIT_USAGE: i32 = 2;

/// Most seeds one sweep may run (a typo like `0..1000000000000` fails fast instead).
pub const SWEEP_SEEDS_MAX: u64 = 10_000_000;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Peer-to-peer sync for offline-first apps, and the deterministic simulator that proves it",
    after_help = "Exit codes: 0 every expectation held, 1 an expectation failed, 2 bad input or usage."
)]
struct Arguments {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one scenario with one seed.
    Run {
        /// Scenario file (YAML).
        file: PathBuf,
        /// Seed (default: the file's `seed`, else 0).
        #[arg(long)]
        seed: Option<u64>,
        /// Write the full text trace to this file (`-`: standard output, before the report).
        #[arg(long, value_name = "PATH")]
        trace: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Run the seed twice (the second time on another thread) and fail if the traces differ.
        #[arg(long)]
        check_determinism: bool,
        /// The trace file's format: `text` (one line per event) or `jsonl` (one JSON object
        /// per event). The trace hash does not depend on it.
        #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "jsonl"])]
        trace_format: String,
        /// Show keys and values of pushed entries in the trace (escaped, cut to 32 bytes).
        #[arg(long)]
        trace_values: bool,
        /// Write each node's final state (keys, values, versions, tombstones, vectors) as JSON.
        #[arg(long, value_name = "PATH")]
        dump_state: Option<PathBuf>,
        /// Write `expect.trace_hash` into FILE with this run's hash (the file's own seed only),
        /// accepting a change of behaviour.
        #[arg(long)]
        bless: bool,
        /// Write the scenario with the chaos schedule this seed draws as explicit faults
        /// (marked `drawn: true`); it replays to the same trace hash.
        #[arg(long, value_name = "PATH")]
        export_faults: Option<PathBuf>,
        /// Write the run as one self-contained HTML page: a lane per node, an arrow per
        /// message, faults, crashes, writes and convergence; zoom, pan, filter, hover.
        #[arg(long, value_name = "PATH.html")]
        timeline: Option<PathBuf>,
        /// Write every message sent as a pcapng packet (virtual timestamps, node i at
        /// 10.0.0.i+1, UDP); `contrib/ferry.lua` dissects it in Wireshark.
        #[arg(long, value_name = "PATH")]
        pcap: Option<PathBuf>,
    },
    /// Run a range of seeds of one or more scenarios, in parallel.
    Sweep {
        /// Scenario files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Seeds `A..B` (B exclusive); with `--until-fail` also `A..` (no end).
        #[arg(long, value_name = "A..B")]
        seeds: String,
        /// Simulations in parallel (default: all cores). Each simulation is single-threaded.
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only the seeds of shard `I` of `N` (`I/N`, 0-based): seeds whose offset from A
        /// is I modulo N, so N machines split a range with no overlap.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Print one JSON object per seed (JSON lines) instead of text.
        #[arg(long)]
        json: bool,
        /// Write the trace of every failing seed to DIR/SEED.trace (DIR/NAME-SEED.trace with
        /// several files).
        #[arg(long, value_name = "DIR")]
        trace_dir: Option<PathBuf>,
        /// Write the timeline page of every failing seed to DIR/SEED.html (DIR/NAME-SEED.html
        /// with several files).
        #[arg(long, value_name = "DIR")]
        timeline_dir: Option<PathBuf>,
        /// Stop at the first failing seed (seeds already running are abandoned).
        #[arg(long)]
        fail_fast: bool,
        /// Write a JUnit XML report: one test case per file and seed range.
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Keep drawing seeds, in order, until the first one fails (or the seeds or the
        /// budget run out); seeds may be open-ended, `A..`.
        #[arg(long)]
        until_fail: bool,
        /// Stop the sweep after this much wall time (`30s`, `10m`); what ran is reported.
        #[arg(long, value_name = "DURATION")]
        budget: Option<String>,
        /// Hand the first failing seed to `ferry shrink` (its output comes before the
        /// summary lines).
        #[arg(long)]
        shrink: bool,
    },
    /// Shrink a failing seed to the smallest scenario file that still fails the same check.
    Shrink {
        /// Scenario file (YAML).
        file: PathBuf,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// Where to write the shrunk scenario (default: next to FILE, `NAME.shrunk.yaml`).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Wall time to search for (`30s`, `5m`; default 5m); then the best so far is written.
        #[arg(long, value_name = "DURATION")]
        budget: Option<String>,
        /// Candidates run in parallel (default: all cores); the result does not depend on it.
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Validate scenario files without running them.
    Check {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a real node on TCP; commands on stdin.
    Node(crate::node::NodeArguments),
    /// Run a peer registry (HTTP) that nodes bootstrap from.
    Registry(crate::node::RegistryArguments),
}

/// What can go wrong before or around a run.
#[derive(Debug, Error)]
pub enum Error {
    /// The scenario file is invalid.
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),
    /// Writing output or a trace failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: io::Error,
    },
    /// The two runs of `--check-determinism` differed.
    #[error("{0}")]
    Nondeterministic(String),
    /// The real node or registry failed.
    #[error("{0}")]
    Node(#[from] crate::node::NodeError),
}

impl Error {
    /// The process exit code for this error.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Nondeterministic(_) => EXIT_FAILED,
            Self::Node(error) => error.exit_code(),
            _ => EXIT_USAGE,
        }
    }
}

/// Runs the CLI on `args` and returns the process exit code.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    let arguments = match Arguments::try_parse_from(&args) {
        Ok(arguments) => arguments,
        Err(error) => {
            if let Some(hint) = usage_hint(&args, &error) {
                eprintln!("error: {hint}");
                return EXIT_USAGE;
            }
            let code = if error.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = error.print();
            return code;
        }
    };
    let result = match arguments.command {
        Command::Run {
            file,
            seed,
            trace,
            json,
            check_determinism,
            bless,
            trace_format,
            trace_values,
            dump_state,
            export_faults,
            timeline,
            pcap,
        } => {
            let flags = RunFlags {
                export_faults: export_faults.as_deref(),
                timeline: timeline.as_deref(),
                pcap: pcap.as_deref(),
                json,
                check_determinism,
                bless,
                trace_format: TraceFormat::from_name(&trace_format).unwrap_or_default(),
                trace_values,
                dump_state: dump_state.as_deref(),
            };
            run_command(&file, seed, trace.as_deref(), &flags)
        }
        Command::Sweep {
            files,
            seeds,
            jobs,
            shard,
            json,
            trace_dir,
            timeline_dir,
            fail_fast,
            junit,
            until_fail,
            budget,
            shrink,
        } => {
            let options = crate::sweep::Options {
                jobs,
                shard: shard.as_deref(),
                json,
                trace_dir: trace_dir.as_deref(),
                timeline_dir: timeline_dir.as_deref(),
                fail_fast,
                junit: junit.as_deref(),
                until_fail,
                budget: budget.as_deref(),
                shrink,
            };
            crate::sweep::sweep(&files, &seeds, &options)
        }
        Command::Shrink { file, seed, out, budget, jobs } => {
            let flags =
                crate::shrink::command::Flags { seed, out: out.as_deref(), budget: budget.as_deref(), jobs };
            crate::shrink::command::shrink_command(&file, &flags)
        }
        Command::Check { files } => check_command(&files),
        Command::Node(arguments) => crate::node::run_node(arguments).map_err(Error::from),
        Command::Registry(arguments) => crate::node::run_registry(arguments).map_err(Error::from),
    };
    match result {
        Ok(code) => code,
        // A reader that went away (`ferry run ... | head -1`) is not an error: what it
        // read was printed, and nothing else is owed.
        Err(Error::Io { error, .. }) if error.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        // A scenario error already reads `FILE:LINE:COLUMN: message`, the form CONTRACT.md
        // fixes and editors jump to; `check` prints it the same way.
        Err(error @ Error::Scenario(_)) => {
            // The message quotes the file's own text (an unknown key, a value): one line.
            eprintln!("{}", crate::text::one_line(&error.to_string()));
            error.exit_code()
        }
        Err(error) => {
            eprintln!("error: {}", crate::text::one_line(&error.to_string()));
            error.exit_code()
        }
    }
}

pub(crate) fn load(file: &Path) -> Result<Scenario, Error> {
    Ok(scenario::load(file)?)
}

/// The trace's destination: the file at `path`, or standard output for `-` (before the
/// report, which follows the last trace line).
pub(crate) fn trace_sink(path: &Path, format: TraceFormat) -> Result<Trace, Error> {
    if path == Path::new("-") {
        return Ok(Trace::with_format(Some(Box::new(io::BufWriter::new(io::stdout()))), format));
    }
    let file =
        std::fs::File::create(path).map_err(|error| Error::Io { path: path.display().to_string(), error })?;
    Ok(Trace::with_format(Some(Box::new(io::BufWriter::new(file))), format))
}

/// A timeline or capture that could not be written.
pub(crate) fn view_error(error: crate::timeline::ViewError) -> Error {
    Error::Io { path: error.path.display().to_string(), error: error.error }
}

/// A trace file that could not be written in full; the run itself was fine.
pub(crate) fn trace_error(path: &Path, message: &str) -> Error {
    Error::Io { path: path.display().to_string(), error: io::Error::other(message.to_owned()) }
}

/// The switches of `ferry run`.
#[derive(Debug, Clone, Copy)]
struct RunFlags<'a> {
    json: bool,
    check_determinism: bool,
    bless: bool,
    trace_format: TraceFormat,
    trace_values: bool,
    dump_state: Option<&'a Path>,
    export_faults: Option<&'a Path>,
    timeline: Option<&'a Path>,
    pcap: Option<&'a Path>,
}

/// Subcommand names, for "did you mean" when clap's own guess finds nothing (`rn`).
const SUBCOMMANDS: &[&str] = &["run", "sweep", "shrink", "check", "node", "registry"];

/// A clap error that deserves a pointed hint: `ferry run FILE --seeds 0..3` means
/// `ferry sweep`, and `ferry rn` means `ferry run`.
fn usage_hint(args: &[OsString], error: &clap::Error) -> Option<String> {
    let words: Vec<&str> = args.iter().skip(1).filter_map(|arg| arg.to_str()).collect();
    if error.kind() == clap::error::ErrorKind::InvalidSubcommand {
        let typed = words.iter().find(|word| !word.starts_with('-'))?;
        let known = scenario::suggest(typed, SUBCOMMANDS)?;
        let has_tip = error.get(clap::error::ContextKind::SuggestedSubcommand).is_some();
        return (!has_tip).then(|| {
            format!("unrecognized subcommand `{}`; did you mean `ferry {known}`?", crate::text::escape(typed))
        });
    }
    if error.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let command = words.iter().find(|word| !word.starts_with('-'))?;
    let seeds = words.iter().position(|word| *word == "--seeds" || word.starts_with("--seeds="))?;
    if *command != "run" {
        return None;
    }
    let value =
        words[seeds].strip_prefix("--seeds=").or_else(|| words.get(seeds + 1).copied()).unwrap_or("A..B");
    let file = words.iter().skip_while(|word| **word != "run").nth(1).filter(|word| !word.starts_with('-'));
    Some(format!(
        "`ferry run` runs one seed (`--seed N`); to run a range of seeds use `ferry sweep {} --seeds {}`",
        file.map_or_else(|| "FILE".to_owned(), |file| crate::text::shell_word(file)),
        crate::text::shell_word(value)
    ))
}

/// The `warning: ...` lines for the scenario's own problems and those the run found.
fn warning_lines(file: &Path, scenario: &Scenario, report: &Report) -> Vec<String> {
    let label = file.display().to_string();
    let mut lines: Vec<String> =
        scenario::warnings(scenario).iter().map(|warning| warning.render(&label)).collect();
    lines.extend(report.warnings.iter().map(|warning| format!("{label}: warning: {warning}")));
    lines
}

fn run_command(
    file: &Path,
    seed: Option<u64>,
    trace_path: Option<&Path>,
    flags: &RunFlags<'_>,
) -> Result<i32, Error> {
    let scenario = load(file)?;
    let own_seed = scenario.seed.unwrap_or(0);
    let seed = seed.unwrap_or(own_seed);
    if flags.bless && seed != own_seed {
        return Err(Error::Usage(format!(
            "--bless writes expect.trace_hash for the file's own seed ({own_seed}), not seed {seed}; drop --seed"
        )));
    }
    if flags.check_determinism {
        let outcome = ferry_simulator::determinism::check(|trace| {
            let _ = run::run(&scenario, seed, trace);
        })
        .map_err(|error| Error::Nondeterministic(error.to_string()))?;
        if let Err(divergence) = outcome {
            return Err(Error::Nondeterministic(format!(
                "seed {seed} is not deterministic: traces differ at line {}\n  first:  {}\n  second: {}",
                divergence.line_number, divergence.first, divergence.second
            )));
        }
    }
    if let Some(path) = flags.export_faults {
        export_faults(file, &scenario, seed, path)?;
    }
    let trace = match trace_path {
        Some(path) => trace_sink(path, flags.trace_format)?,
        None => Trace::default(),
    };
    let (trace, views) =
        crate::timeline::Views::attach(&scenario, trace, flags.timeline, flags.pcap).map_err(view_error)?;
    let options = run::Options {
        trace_values: flags.trace_values,
        dump_state: flags.dump_state.is_some(),
        ..run::Options::default()
    };
    let mut report = run::run_with(&scenario, seed, trace, options);
    views.finish(&report).map_err(view_error)?;
    if let (Some(path), Some(state)) = (flags.dump_state, &report.state) {
        let io_error = |error| Error::Io { path: path.display().to_string(), error };
        let mut text =
            serde_json::to_string_pretty(state).map_err(|error| io_error(io::Error::other(error)))?;
        text.push('\n');
        std::fs::write(path, text).map_err(io_error)?;
    }
    if let (Some(path), Some(message)) = (trace_path, &report.trace_error) {
        return Err(trace_error(path, message));
    }
    let mut blessed = None;
    if flags.bless {
        blessed = Some(bless_file(file, &report.trace_hash)?);
        // The file now expects this hash: the check holds.
        report.checks.retain(|check| check.name != "trace_hash");
        report.checks.push(run::Check {
            name: "trace_hash",
            ok: true,
            detail: format!("the trace hash is {}, written to expect.trace_hash", report.trace_hash),
        });
    }
    let warnings = warning_lines(file, &scenario, &report);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = if flags.json {
        writeln!(out, "{}", json_report(&report, Some(file), &warnings, true))
    } else {
        // Bold only for a person at a terminal: never in a pipe, a file or a CI log, nor
        // when NO_COLOR asks for none (https://no-color.org).
        let bold = io::IsTerminal::is_terminal(&stdout) && std::env::var_os("NO_COLOR").is_none();
        let text = TextOptions { determinism: flags.check_determinism, blessed: blessed.as_deref(), bold };
        write_text_report(&mut out, &report, file, &warnings, &text)
    };
    written.and_then(|()| out.flush()).map_err(|error| Error::Io { path: "stdout".to_owned(), error })?;
    Ok(if report.passed() { EXIT_OK } else { EXIT_FAILED })
}

/// Writes the scenario with the chaos schedule of `seed` as explicit faults to `path`.
fn export_faults(file: &Path, scenario: &Scenario, seed: u64, path: &Path) -> Result<(), Error> {
    let mut exported = crate::chaos::export(scenario, seed);
    // The file's hash was for its own seed; the export runs `seed` by default.
    if seed != scenario.seed.unwrap_or(0) {
        exported.expect.trace_hash = None;
    }
    exported.seed = Some(seed);
    let header = [
        format!(
            "Exported by ferry run --export-faults (ferry {}) from {} with seed {seed}:",
            env!("CARGO_PKG_VERSION"),
            crate::text::escape(&file.display().to_string())
        ),
        "the chaos schedule that seed draws, as explicit faults; it replays to the same trace hash."
            .to_owned(),
    ];
    let text = scenario::to_yaml(&exported, &header);
    std::fs::write(path, text).map_err(|error| Error::Io { path: path.display().to_string(), error })
}

/// Writes `hash` into `file`'s `expect.trace_hash`; returns what changed, for the report.
fn bless_file(file: &Path, hash: &str) -> Result<String, Error> {
    let io_error = |error| Error::Io { path: file.display().to_string(), error };
    let text = std::fs::read_to_string(file).map_err(io_error)?;
    let label = file.display().to_string();
    let edited = scenario::bless(&label, &text, hash).map_err(Error::Usage)?;
    if edited == text {
        return Ok(format!("{label} already expects trace hash {hash}"));
    }
    std::fs::write(file, edited).map_err(io_error)?;
    Ok(format!("{label}: expect.trace_hash is now {hash}"))
}

pub(crate) fn outcome(report: &Report) -> &'static str {
    if report.passed() { "converged" } else { "failed" }
}

/// The `--json` object; with `file`, also `file` and `replay` (for sweeps).
pub(crate) fn json_report(report: &Report, file: Option<&Path>, warnings: &[String], pretty: bool) -> String {
    let stats = &report.stats;
    let mut value = serde_json::json!({
        "scenario": report.scenario,
        "seed": report.seed,
        "outcome": outcome(report),
        "trace_hash": report.trace_hash,
        "checks": report.checks,
        "warnings": warnings,
        "stats": {
            "virtual_ms": report.virtual_ns / 1_000_000,
            "events": stats.events,
            "sent": stats.sent,
            "delivered": stats.delivered,
            "dropped": stats.dropped,
            "duplicated": stats.duplicated,
            "reordered": stats.reordered,
            "drops_by_reason": stats.drops_by_reason,
            "faults": stats.faults_by_kind,
            "fault_ends": stats.fault_ends_by_kind,
            "fault_active_ms": report.fault_active_ns.iter().map(|(kind, ns)| (*kind, ns / 1_000_000)).collect::<std::collections::BTreeMap<_, _>>(),
            "liveness_actions": stats.liveness_by_kind,
            "coverage": stats.coverage(),
            "writes_acked": report.writes_acked,
            "writes_refused": report.writes_refused,
            "messages_per_write": Cost::per_write(stats.sent, report.writes_acked),
            "entry_transmissions_per_write": Cost::per_write(report.cost.entries_pushed, report.writes_acked),
            "replication_messages_per_write": Cost::per_write(report.cost.replication_messages(), report.writes_acked),
            "background_messages_per_link_per_second": report.cost.background_per_link_per_second(report.virtual_ns),
            "messages_by_type": report.cost.sent_by_type.iter().map(|(message_type, count)| (format!("{message_type:?}"), *count)).collect::<std::collections::BTreeMap<_, _>>(),
            "bytes_by_type": report.cost.sent_bytes_by_type.iter().map(|(message_type, bytes)| (format!("{message_type:?}"), *bytes)).collect::<std::collections::BTreeMap<_, _>>(),
            "pushes": report.cost.pushes,
            "grafts": report.cost.grafts,
            "entries_pushed": report.cost.entries_pushed,
            "peak_log_entries": report.cost.peak_log_entries,
            "peak_wal_bytes": report.cost.peak_wal_bytes,
            "compactions": report.cost.compactions,
            "snapshots_applied": report.cost.snapshots_applied,
            "snapshots_refused": report.cost.snapshots_refused,
            "lww_conflicts": report.lww_conflicts,
            "per_node": (0..report.node_names.len().min(stats.per_node.len()).min(report.settled_ns.len())).map(|index| serde_json::json!({
                "name": report.node_names[index],
                "sent": stats.per_node[index].sent,
                "received": stats.per_node[index].received,
                "lost": stats.per_node[index].lost,
                "peak_log_entries": report.cost.peaks.get(index).map_or(0, |peak| peak.0),
                "peak_wal_bytes": report.cost.peaks.get(index).map_or(0, |peak| peak.1),
                "wal_bytes_at_end": report.cost.wal_at_end.get(index).map_or(0, |wal| wal.wal_bytes),
                "state_bytes_at_end": report.cost.wal_at_end.get(index).map_or(0, |wal| wal.state_bytes),
                "log_bytes_at_end": report.cost.wal_at_end.get(index).map_or(0, |wal| wal.log_bytes),
                "settled_ms": report.settled_ns[index].map(|at| at / 1_000_000),
            })).collect::<Vec<_>>(),
            "converged_ms": report.converged_ns.map(|at| at / 1_000_000),
            "heal_ms": report.heal_ns / 1_000_000,
            "heal_reason": report.heal_reason,
        },
    });
    if let (Some(file), Some(object)) = (file, value.as_object_mut()) {
        object.insert("file".to_owned(), file.display().to_string().into());
        object.insert("replay".to_owned(), replay_command(file, report.seed).into());
    }
    if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
}

/// `ferry run FILE --seed N`, with the path quoted for a shell when it needs it.
pub(crate) fn replay_command(file: &Path, seed: u64) -> String {
    format!("ferry run {} --seed {seed}", crate::text::shell_word(&file.display().to_string()))
}

fn counts(map: &std::collections::BTreeMap<&'static str, u64>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter().map(|(name, count)| format!("{name} {count}")).collect::<Vec<_>>().join(", ")
}

fn durations(map: &std::collections::BTreeMap<&'static str, u64>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter().map(|(name, ns)| format!("{name} {}", format_ns(*ns))).collect::<Vec<_>>().join(", ")
}

/// How `ferry run` prints its text report.
struct TextOptions<'a> {
    /// The run was checked for determinism (`--check-determinism`).
    determinism: bool,
    /// What `--bless` wrote, if it did.
    blessed: Option<&'a str>,
    /// Stdout is a terminal that takes ANSI bold.
    bold: bool,
}

/// Rows of the per-node table at most; a larger cluster shows the nodes that settled last.
const NODE_ROWS_MAX: usize = 12;
/// Characters of a node name shown in the per-node table.
const NODE_NAME_CHARS_MAX: usize = 20;

/// The per-node table: what each node sent and received, what was lost on its way, and when
/// it settled (its state last changed), the last to settle marked (bold on a terminal, `<`
/// everywhere).
fn write_node_table(out: &mut impl io::Write, report: &Report, bold: bool) -> io::Result<()> {
    let traffic = &report.stats.per_node;
    let count = report.node_names.len().min(traffic.len()).min(report.settled_ns.len());
    if count == 0 {
        return Ok(());
    }
    let last_ns = report.settled_ns.iter().flatten().max().copied();
    let mut rows: Vec<usize> = (0..count).collect();
    if count > NODE_ROWS_MAX {
        // The latest first: the stragglers are what a reader looks for.
        rows.sort_by_key(|&index| (std::cmp::Reverse(report.settled_ns[index]), index));
        rows.truncate(NODE_ROWS_MAX);
    }
    let name = |index: usize| report.node_names[index].chars().take(NODE_NAME_CHARS_MAX).collect::<String>();
    let width = rows.iter().map(|&index| name(index).chars().count()).max().unwrap_or(0).max(4);
    writeln!(
        out,
        "per node     {:<width$}  {:>9}  {:>9}  {:>7}  {:>8}  {:>10}  settled at",
        "node", "sent", "received", "lost", "log peak", "wal peak"
    )?;
    for index in rows {
        let settled = report.settled_ns[index];
        let at = settled.map_or_else(|| "never ran".to_owned(), format_ns);
        let last = settled.is_some() && settled == last_ns;
        let (log_peak, wal_peak) = report.cost.peaks.get(index).copied().unwrap_or_default();
        let row = format!(
            "{:<width$}  {:>9}  {:>9}  {:>7}  {:>8}  {:>10}  {at}{}",
            name(index),
            traffic[index].sent,
            traffic[index].received,
            traffic[index].lost,
            log_peak,
            format!("{wal_peak}B"),
            if last { " <" } else { "" }
        );
        if last && bold {
            writeln!(out, "             \x1b[1m{row}\x1b[0m")?;
        } else {
            writeln!(out, "             {row}")?;
        }
    }
    if count > NODE_ROWS_MAX {
        writeln!(
            out,
            "             ... and {} more that settled earlier (--json lists every node)",
            count - NODE_ROWS_MAX
        )?;
    }
    Ok(())
}

fn write_text_report(
    out: &mut impl io::Write,
    report: &Report,
    file: &Path,
    warnings: &[String],
    options: &TextOptions<'_>,
) -> io::Result<()> {
    let (determinism, blessed) = (options.determinism, options.blessed);
    let stats = &report.stats;
    for warning in warnings {
        writeln!(out, "{warning}")?;
    }
    writeln!(out, "scenario     {} ({} nodes)", report.scenario, report.nodes_count)?;
    writeln!(out, "virtual time {} in {} events", format_ns(report.virtual_ns), stats.events)?;
    writeln!(
        out,
        "messages     sent {}, delivered {}, dropped {}, duplicated {}, reordered {}",
        stats.sent, stats.delivered, stats.dropped, stats.duplicated, stats.reordered
    )?;
    writeln!(out, "drops        {}", counts(&stats.drops_by_reason))?;
    writeln!(out, "faults       {} (chaos drew {})", counts(&stats.faults_by_kind), report.chaos_faults)?;
    writeln!(out, "in force     {}", durations(&report.fault_active_ns))?;
    writeln!(
        out,
        "disk         {} crashes lost unsynced writes, {} left a torn tail",
        stats.crashes_losing_writes, stats.crashes_torn
    )?;
    let refused = match report.writes_refused {
        0 => String::new(),
        count => format!(", {count} refused by their node"),
    };
    writeln!(
        out,
        "writes       {} acknowledged, {} last-writer-wins conflicts resolved{refused}",
        report.writes_acked, report.lww_conflicts
    )?;
    if let (Some(messages), Some(entries)) = (
        Cost::per_write(stats.sent, report.writes_acked),
        Cost::per_write(report.cost.entries_pushed, report.writes_acked),
    ) {
        let replication =
            Cost::per_write(report.cost.replication_messages(), report.writes_acked).unwrap_or(0.0);
        writeln!(
            out,
            "cost         {messages} messages ({replication} pushes, acks and prunes) and {entries} entry transmissions per acknowledged write; largest log {} entries, largest wal {} bytes",
            report.cost.peak_log_entries, report.cost.peak_wal_bytes
        )?;
    }
    if let Some(rate) = report.cost.background_per_link_per_second(report.virtual_ns) {
        writeln!(
            out,
            "background   {rate} messages per link per second (pulls, pings, route announcements)"
        )?;
    }
    if report.cost.compactions > 0 || report.cost.snapshots_applied > 0 || report.cost.snapshots_refused > 0 {
        writeln!(
            out,
            "history      {} compactions, {} snapshots applied, {} refused; at the end the largest wal is {}× its node's state plus {} bytes of log",
            report.cost.compactions,
            report.cost.snapshots_applied,
            report.cost.snapshots_refused,
            report.cost.wal_ratio_at_end(),
            report.cost.wal_at_end.iter().map(|wal| wal.log_bytes).max().unwrap_or(0),
        )?;
    }
    let prunes = report.cost.sent_of(&[MessageType::Prune]);
    if prunes > 0 || report.cost.grafts > 0 {
        writeln!(
            out,
            "tree         {prunes} prunes made links lazy, {} grafts made lazy links eager again",
            report.cost.grafts
        )?;
    }
    writeln!(
        out,
        "liveness     began at {} ({}): {}",
        format_ns(report.heal_ns),
        report.heal_reason,
        counts(&stats.liveness_by_kind).replace("none", "nothing to heal or restart")
    )?;
    match report.converged_ns {
        Some(at_ns) => writeln!(out, "convergence  at {}", format_ns(at_ns))?,
        None => writeln!(out, "convergence  not reached")?,
    }
    write_node_table(out, report, options.bold)?;
    if determinism {
        writeln!(out, "determinism  two runs, two threads, identical traces")?;
    }
    if let Some(blessed) = blessed {
        writeln!(out, "blessed      {blessed}")?;
    }
    for check in &report.checks {
        if check.ok {
            writeln!(out, "ok     {}: {}", check.name, check.detail)?;
        }
    }
    if !report.passed() {
        for check in report.failed_checks() {
            writeln!(out, "FAILED {}: {}", check.name, check.detail)?;
        }
        writeln!(out, "replay: {}", replay_command(file, report.seed))?;
    }
    writeln!(out, "outcome: {}", outcome(report))?;
    writeln!(out, "seed: {}", report.seed)?;
    writeln!(out, "trace-hash: {}", report.trace_hash)
}

/// Parses `A..B` (B exclusive), or `A..` (to the last seed) when `open` allows it.
pub(crate) fn parse_seeds_open(text: &str, open: bool) -> Result<(u64, u64), Error> {
    if let Some(start) = text.strip_suffix("..")
        && !start.contains("..")
    {
        if !open {
            return Err(Error::Usage(format!(
                "--seeds {}: an open range needs --until-fail; write A..B",
                crate::text::shell_word(text)
            )));
        }
        let start: u64 = start.trim().parse().map_err(|_| {
            Error::Usage(format!("--seeds {}: expected A.. or A..B, e.g. 0..", crate::text::shell_word(text)))
        })?;
        return Ok((start, u64::MAX));
    }
    if open {
        // A bounded range may be as long as one likes: the sweep stops at the first failure.
        let usage = || Error::Usage(format!("--seeds {text:?}: expected A..B with A < B, or A.."));
        let (start, end) = text.split_once("..").ok_or_else(usage)?;
        let start: u64 = start.trim().parse().map_err(|_| usage())?;
        let end: u64 = end.trim().parse().map_err(|_| usage())?;
        return if start < end { Ok((start, end)) } else { Err(usage()) };
    }
    parse_seeds(text)
}

/// Parses `A..B` (B exclusive).
pub(crate) fn parse_seeds(text: &str) -> Result<(u64, u64), Error> {
    let usage = || Error::Usage(format!("--seeds {text:?}: expected A..B with A < B, e.g. 0..100"));
    let (start, end) = text.split_once("..").ok_or_else(usage)?;
    let start: u64 = start.trim().parse().map_err(|_| usage())?;
    let end: u64 = end.trim().parse().map_err(|_| usage())?;
    if start >= end {
        return Err(usage());
    }
    if end - start > SWEEP_SEEDS_MAX {
        return Err(Error::Usage(format!("--seeds {text}: at most {SWEEP_SEEDS_MAX} seeds per sweep")));
    }
    Ok((start, end))
}

/// Parses `I/N` with I < N.
pub(crate) fn parse_shard(text: &str) -> Result<(u64, u64), Error> {
    let usage = || Error::Usage(format!("--shard {text:?}: expected I/N with 0 <= I < N, e.g. 0/4"));
    let (index, count) = text.split_once('/').ok_or_else(usage)?;
    let index: u64 = index.trim().parse().map_err(|_| usage())?;
    let count: u64 = count.trim().parse().map_err(|_| usage())?;
    if count == 0 || index >= count {
        return Err(usage());
    }
    Ok((index, count))
}

fn check_command(files: &[PathBuf]) -> Result<i32, Error> {
    let mut code = EXIT_OK;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let io_error = |error| Error::Io { path: "stdout".to_owned(), error };
    for file in files {
        match scenario::load(file) {
            Ok(scenario) => {
                writeln!(out, "{}: ok ({}, {} nodes)", file.display(), scenario.name, scenario.nodes.len())
                    .map_err(io_error)?;
                for warning in scenario::warnings(&scenario) {
                    eprintln!("{}", warning.render(&file.display().to_string()));
                }
            }
            Err(error) => {
                eprintln!("{}", crate::text::one_line(&error.to_string()));
                code = EXIT_USAGE;
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_shards_parse_strictly() {
        assert_eq!(parse_seeds("3..10").map_err(|error| error.to_string()), Ok((3, 10)));
        assert!(parse_seeds("10..3").is_err());
        assert!(parse_seeds("5..5").is_err());
        assert!(parse_seeds("x..3").is_err());
        assert!(parse_seeds("0..99999999999").is_err());
        assert_eq!(parse_shard("1/4").map_err(|error| error.to_string()), Ok((1, 4)));
        assert!(parse_shard("4/4").is_err());
        assert!(parse_shard("0/0").is_err());
    }
}
