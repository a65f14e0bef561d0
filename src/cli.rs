//! Argument parsing, command dispatch and output formatting. `main` only calls
//! [`main_with_args`] and exits with the code it returns.

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::{Parser, Subcommand};
use ferry_simulator::Trace;
use ferry_simulator::ferry::format_ns;
use thiserror::Error;

use crate::run::{self, Report};
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
        /// Write the full text trace to this file.
        #[arg(long, value_name = "PATH")]
        trace: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Run the seed twice (the second time on another thread) and fail if the traces differ.
        #[arg(long)]
        check_determinism: bool,
    },
    /// Run a range of seeds, in parallel.
    Sweep {
        /// Scenario file (YAML).
        file: PathBuf,
        /// Seeds `A..B` (B exclusive).
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
        /// Write the trace of every failing seed to DIR/SEED.trace.
        #[arg(long, value_name = "DIR")]
        trace_dir: Option<PathBuf>,
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
    let arguments = match Arguments::try_parse_from(args) {
        Ok(arguments) => arguments,
        Err(error) => {
            let code = if error.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = error.print();
            return code;
        }
    };
    let result = match arguments.command {
        Command::Run { file, seed, trace, json, check_determinism } => {
            run_command(&file, seed, trace.as_deref(), json, check_determinism)
        }
        Command::Sweep { file, seeds, jobs, shard, json, trace_dir } => {
            sweep_command(&file, &seeds, jobs, shard.as_deref(), json, trace_dir.as_deref())
        }
        Command::Check { files } => Ok(check_command(&files)),
        Command::Node(arguments) => crate::node::run_node(arguments).map_err(Error::from),
        Command::Registry(arguments) => crate::node::run_registry(arguments).map_err(Error::from),
    };
    match result {
        Ok(code) => code,
        // A scenario error already reads `FILE:LINE:COLUMN: message`, the form CONTRACT.md
        // fixes and editors jump to; `check` prints it the same way.
        Err(error @ Error::Scenario(_)) => {
            eprintln!("{error}");
            error.exit_code()
        }
        Err(error) => {
            eprintln!("error: {error}");
            error.exit_code()
        }
    }
}

fn load(file: &Path) -> Result<Scenario, Error> {
    Ok(scenario::load(file)?)
}

fn trace_sink(path: &Path) -> Result<Trace, Error> {
    let file =
        std::fs::File::create(path).map_err(|error| Error::Io { path: path.display().to_string(), error })?;
    Ok(Trace::new(Some(Box::new(io::BufWriter::new(file)))))
}

/// A trace file that could not be written in full; the run itself was fine.
fn trace_error(path: &Path, message: &str) -> Error {
    Error::Io { path: path.display().to_string(), error: io::Error::other(message.to_owned()) }
}

fn run_command(
    file: &Path,
    seed: Option<u64>,
    trace_path: Option<&Path>,
    json: bool,
    check_determinism: bool,
) -> Result<i32, Error> {
    let scenario = load(file)?;
    let seed = seed.or(scenario.seed).unwrap_or(0);
    if check_determinism {
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
    let trace = match trace_path {
        Some(path) => trace_sink(path)?,
        None => Trace::default(),
    };
    let report = run::run(&scenario, seed, trace);
    if let (Some(path), Some(message)) = (trace_path, &report.trace_error) {
        return Err(trace_error(path, message));
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = if json {
        writeln!(out, "{}", json_report(&report, true))
    } else {
        write_text_report(&mut out, &report, file, check_determinism)
    };
    written.map_err(|error| Error::Io { path: "stdout".to_owned(), error })?;
    Ok(if report.passed() { EXIT_OK } else { EXIT_FAILED })
}

fn outcome(report: &Report) -> &'static str {
    if report.passed() { "converged" } else { "failed" }
}

/// The `--json` object.
fn json_report(report: &Report, pretty: bool) -> String {
    let stats = &report.stats;
    let value = serde_json::json!({
        "scenario": report.scenario,
        "seed": report.seed,
        "outcome": outcome(report),
        "trace_hash": report.trace_hash,
        "checks": report.checks,
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
            "coverage": stats.coverage(),
            "writes_acked": report.writes_acked,
            "converged_ms": report.converged_ns.map(|at| at / 1_000_000),
            "heal_ms": report.heal_ns / 1_000_000,
        },
    });
    if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
}

fn counts(map: &std::collections::BTreeMap<&'static str, u64>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter().map(|(name, count)| format!("{name} {count}")).collect::<Vec<_>>().join(", ")
}

fn write_text_report(
    out: &mut impl io::Write,
    report: &Report,
    file: &Path,
    determinism: bool,
) -> io::Result<()> {
    let stats = &report.stats;
    writeln!(out, "scenario     {} ({} nodes)", report.scenario, report.nodes_count)?;
    writeln!(out, "virtual time {} in {} events", format_ns(report.virtual_ns), stats.events)?;
    writeln!(
        out,
        "messages     sent {}, delivered {}, dropped {}, duplicated {}, reordered {}",
        stats.sent, stats.delivered, stats.dropped, stats.duplicated, stats.reordered
    )?;
    writeln!(out, "drops        {}", counts(&stats.drops_by_reason))?;
    writeln!(out, "faults       {} (chaos drew {})", counts(&stats.faults_by_kind), report.chaos_faults)?;
    writeln!(
        out,
        "disk         {} crashes lost unsynced writes, {} left a torn tail",
        stats.crashes_losing_writes, stats.crashes_torn
    )?;
    writeln!(out, "writes       {} acknowledged", report.writes_acked)?;
    match report.converged_ns {
        Some(at_ns) => writeln!(
            out,
            "convergence  at {} (liveness phase began at {})",
            format_ns(at_ns),
            format_ns(report.heal_ns)
        )?,
        None => {
            writeln!(out, "convergence  not reached (liveness phase began at {})", format_ns(report.heal_ns))?
        }
    }
    if determinism {
        writeln!(out, "determinism  two runs, two threads, identical traces")?;
    }
    for check in &report.checks {
        if check.ok {
            writeln!(out, "ok     {}: {}", check.name, check.detail)?;
        }
    }
    if !report.passed() {
        for check in report.checks.iter().filter(|check| !check.ok) {
            writeln!(out, "FAILED {}: {}", check.name, check.detail)?;
        }
        writeln!(out, "replay: ferry run {} --seed {}", file.display(), report.seed)?;
    }
    writeln!(out, "outcome: {}", outcome(report))?;
    writeln!(out, "seed: {}", report.seed)?;
    writeln!(out, "trace-hash: {}", report.trace_hash)
}

/// Parses `A..B` (B exclusive).
fn parse_seeds(text: &str) -> Result<(u64, u64), Error> {
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
fn parse_shard(text: &str) -> Result<(u64, u64), Error> {
    let usage = || Error::Usage(format!("--shard {text:?}: expected I/N with 0 <= I < N, e.g. 0/4"));
    let (index, count) = text.split_once('/').ok_or_else(usage)?;
    let index: u64 = index.trim().parse().map_err(|_| usage())?;
    let count: u64 = count.trim().parse().map_err(|_| usage())?;
    if count == 0 || index >= count {
        return Err(usage());
    }
    Ok((index, count))
}

fn sweep_command(
    file: &Path,
    seeds: &str,
    jobs: Option<usize>,
    shard: Option<&str>,
    json: bool,
    trace_dir: Option<&Path>,
) -> Result<i32, Error> {
    let scenario = load(file)?;
    let (start, end) = parse_seeds(seeds)?;
    let (shard_index, shard_count) = shard.map(parse_shard).transpose()?.unwrap_or((0, 1));
    let jobs = match jobs {
        Some(0) => return Err(Error::Usage("--jobs 0: at least one job is needed".to_owned())),
        Some(jobs) => jobs,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    if let Some(directory) = trace_dir {
        std::fs::create_dir_all(directory)
            .map_err(|error| Error::Io { path: directory.display().to_string(), error })?;
    }
    let seeds: Vec<u64> = (start..end).filter(|seed| (seed - start) % shard_count == shard_index).collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Report>>> = Mutex::new(vec![None; seeds.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(seeds.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(seed) = seeds.get(index) else { break };
                    let report = run::run(&scenario, *seed, Trace::default());
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[index] = Some(report);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let io_error = |error| Error::Io { path: "stdout".to_owned(), error };
    let (mut passed, mut failed) = (0u64, 0u64);
    for report in results.into_iter().flatten() {
        if json {
            writeln!(out, "{}", json_report(&report, false)).map_err(io_error)?;
        }
        if report.passed() {
            passed += 1;
            continue;
        }
        failed += 1;
        if !json {
            let reasons: Vec<String> = report
                .checks
                .iter()
                .filter(|check| !check.ok)
                .map(|check| format!("{}: {}", check.name, check.detail))
                .collect();
            writeln!(
                out,
                "seed {} failed ({}); replay: ferry run {} --seed {}",
                report.seed,
                reasons.join("; "),
                file.display(),
                report.seed
            )
            .map_err(io_error)?;
        }
        if let Some(directory) = trace_dir {
            let path = directory.join(format!("{}.trace", report.seed));
            let traced = run::run(&scenario, report.seed, trace_sink(&path)?);
            if let Some(message) = &traced.trace_error {
                return Err(trace_error(&path, message));
            }
        }
    }
    let summary = format!("{passed} passed, {failed} failed");
    if json {
        eprintln!("{summary}");
    } else {
        writeln!(out, "{summary}").map_err(io_error)?;
    }
    Ok(if failed == 0 { EXIT_OK } else { EXIT_FAILED })
}

fn check_command(files: &[PathBuf]) -> i32 {
    let mut code = EXIT_OK;
    for file in files {
        match scenario::load(file) {
            Ok(scenario) => {
                println!("{}: ok ({}, {} nodes)", file.display(), scenario.name, scenario.nodes.len());
            }
            Err(error) => {
                eprintln!("{error}");
                code = EXIT_USAGE;
            }
        }
    }
    code
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
