//! `ferry shrink FILE --seed N [--out PATH] [--budget D] [--jobs J]`: the command around
//! [`super::shrink`]: the budget and Ctrl-C (both stop the search and keep the best so
//! far), the live progress line, the file, and the before → after table.

use std::io::{self, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferry_simulator::ferry::format_ns;
use ferry_simulator::{Trace, TraceFormat};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Options, Outcome, Progress, Refusal, Signature};
use crate::cli::{self, EXIT_FAILED, EXIT_OK, Error};
use crate::run::{self, Report};
use crate::scenario::Scenario;
use crate::sweep::{self, EXIT_INTERRUPTED};
use crate::text::{escape, shell_word};

/// Default `--budget`: five minutes of wall time.
pub const BUDGET_DEFAULT: &str = "5m";

/// The flags of `ferry shrink`.
#[derive(Debug, Clone, Copy)]
pub struct Flags<'a> {
    /// The seed that fails.
    pub seed: u64,
    /// Where to write; default next to the input, `NAME.shrunk.yaml`.
    pub out: Option<&'a Path>,
    /// Wall-time bound, a duration like `5m`.
    pub budget: Option<&'a str>,
    /// Candidates in parallel; default every core.
    pub jobs: Option<usize>,
}

/// `scenarios/x.yaml` → `scenarios/x.shrunk.yaml` (and `x.yml` too; a name without either
/// suffix gets `.shrunk.yaml` appended).
#[must_use]
pub fn default_out(file: &Path) -> PathBuf {
    let name = file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".yml")).unwrap_or(&name);
    file.with_file_name(format!("{stem}.shrunk.yaml"))
}

/// Parses `--budget` (`30s`, `5m`, `1h`).
///
/// # Errors
/// A usage error when it is not a duration, or is zero.
pub fn parse_budget(text: &str) -> Result<Duration, Error> {
    let nanos = crate::scenario::parse_duration(text)
        .map_err(|error| Error::Usage(format!("--budget {}: {error}", shell_word(text))))?;
    if nanos == 0 {
        return Err(Error::Usage(format!("--budget {}: must be longer than 0s", shell_word(text))));
    }
    Ok(Duration::from_nanos(nanos))
}

/// The comment lines that open a shrunk file.
fn header(file: &Path, seed: u64, signature: &Signature) -> Vec<String> {
    vec![
        format!(
            "Shrunk by ferry shrink (ferry {}) from {} with seed {seed}.",
            env!("CARGO_PKG_VERSION"),
            escape(&file.display().to_string())
        ),
        format!("It fails the same check: {signature}."),
    ]
}

/// Runs the command; returns the exit code.
///
/// # Errors
/// Bad input (exit 2) or a file that cannot be written.
pub fn shrink_command(file: &Path, flags: &Flags<'_>) -> Result<i32, Error> {
    let scenario = cli::load(file)?;
    let budget = parse_budget(flags.budget.unwrap_or(BUDGET_DEFAULT))?;
    let jobs = match flags.jobs {
        Some(0) => return Err(Error::Usage("--jobs 0: at least one job is needed".to_owned())),
        Some(jobs) => jobs,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let out = flags.out.map_or_else(|| default_out(file), Path::to_path_buf);
    let started = Instant::now();
    let cancel = AtomicBool::new(false);
    let interrupt = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let progress = progress_bar();
    sweep::catch_interrupt();
    let result = std::thread::scope(|scope| {
        // The watcher turns Ctrl-C and the end of the budget into `cancel`.
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if sweep::interrupted() {
                    interrupt.store(true, Ordering::Relaxed);
                    cancel.store(true, Ordering::Relaxed);
                }
                if started.elapsed() >= budget {
                    cancel.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let on_progress = |state: &Progress<'_>| {
            progress.set_message(format!(
                "{} tried, {} accepted; best so far: {}; {}",
                state.tried,
                state.accepted,
                size(state.best),
                state.pass
            ));
        };
        let header = |signature: &Signature| header(file, flags.seed, signature);
        let options = Options { jobs, cancel: &cancel, interrupt: &interrupt, planted_bug: None };
        let result = super::shrink(&scenario, flags.seed, &header, options, &on_progress);
        done.store(true, Ordering::Relaxed);
        result
    });
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    let interrupted = sweep::interrupted();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(Refusal::Passes(report)) => {
            let trace_hash_only = report.failed_checks().any(|check| check.name == "trace_hash");
            let why = if trace_hash_only {
                "fails only expect.trace_hash, which any change fails"
            } else {
                "passes every check"
            };
            println!(
                "{} with seed {}: {why}; nothing to shrink",
                shell_word(&file.display().to_string()),
                flags.seed
            );
            return Ok(EXIT_FAILED);
        }
        Err(Refusal::Interrupted) => {
            println!("interrupted before the failure was confirmed; nothing written");
            return Ok(EXIT_INTERRUPTED);
        }
    };
    std::fs::write(&out, &outcome.text)
        .map_err(|error| Error::Io { path: out.display().to_string(), error })?;
    report(file, &out, flags.seed, &scenario, &outcome, elapsed, jobs, budget, interrupted)?;
    Ok(if interrupted { EXIT_INTERRUPTED } else { EXIT_OK })
}

/// `3 nodes, 2 faults, 1 workload item, 12s`.
fn size(scenario: &Scenario) -> String {
    format!(
        "{} nodes, {} faults, {} workload items, {}",
        scenario.nodes.len(),
        scenario.faults.len(),
        scenario.workload.len(),
        crate::scenario::format_duration_exact(scenario.duration_ns)
    )
}

/// A live line on stderr, only when stderr is a terminal.
fn progress_bar() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} shrinking {elapsed}: {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message("confirming the failure");
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A writer that only counts lines.
struct LineCounter(Arc<AtomicU64>);

impl io::Write for LineCounter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let lines = bytes.iter().filter(|byte| **byte == b'\n').count() as u64;
        self.0.fetch_add(lines, Ordering::Relaxed);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `scenario` with a text trace that is only counted: the report and its line count.
#[must_use]
pub fn measure(scenario: &Scenario, seed: u64) -> (Report, u64) {
    let lines = Arc::new(AtomicU64::new(0));
    let trace = Trace::with_format(Some(Box::new(LineCounter(Arc::clone(&lines)))), TraceFormat::Text);
    let report = run::run(scenario, seed, trace);
    (report, lines.load(Ordering::Relaxed))
}

#[allow(clippy::too_many_arguments)]
fn report(
    file: &Path,
    out: &Path,
    seed: u64,
    input: &Scenario,
    outcome: &Outcome,
    elapsed: Duration,
    jobs: usize,
    budget: Duration,
    interrupted: bool,
) -> Result<(), Error> {
    let (before, before_lines) = measure(input, seed);
    let (after, after_lines) = measure(&outcome.scenario, seed);
    let still_fails = outcome.signature.matches(&after);
    let stdout = io::stdout();
    let mut lines = stdout.lock();
    let io_error = |error| Error::Io { path: "stdout".to_owned(), error };
    let file_word = shell_word(&file.display().to_string());
    let out_word = shell_word(&out.display().to_string());
    let mut text = String::new();
    text.push_str(&format!("shrunk {file_word} with seed {seed}: fails {}\n", outcome.signature));
    let rows = [
        ("nodes", before.nodes_count.to_string(), after.nodes_count.to_string()),
        (
            "faults",
            (input.faults.len() + before.chaos_faults).to_string(),
            (outcome.scenario.faults.len() + after.chaos_faults).to_string(),
        ),
        ("writes acked", before.writes_acked.to_string(), after.writes_acked.to_string()),
        ("virtual time", format_ns(before.virtual_ns), format_ns(after.virtual_ns)),
        ("events", before.stats.events.to_string(), after.stats.events.to_string()),
        ("trace lines", before_lines.to_string(), after_lines.to_string()),
    ];
    let width = rows.iter().map(|(_, before, _)| before.len()).max().unwrap_or(0).max(6);
    text.push_str(&format!("  {:<13} {:>width$}    {}\n", "", "before", "after"));
    for (name, before, after) in &rows {
        text.push_str(&format!("  {name:<13} {before:>width$} -> {after}\n"));
    }
    let stop = if interrupted {
        " (stopped by Ctrl-C: the best so far)".to_owned()
    } else if !outcome.complete {
        format!(" (stopped by the budget of {}: the best so far)", humantime(budget))
    } else {
        String::new()
    };
    text.push_str(&format!(
        "{} candidates tried, {} accepted, in {:.1}s with {}{stop}\n",
        outcome.tried,
        outcome.accepted,
        elapsed.as_secs_f64(),
        if jobs == 1 { "1 job".to_owned() } else { format!("{jobs} jobs") }
    ));
    if outcome.complete && outcome.accepted == 0 {
        text.push_str("nothing could be removed: no smaller or gentler candidate failed the same way\n");
    }
    if !still_fails {
        text.push_str(
            "warning: the written file did not fail the same way when run again; please report this\n",
        );
    }
    text.push_str(&format!("wrote {out_word}\n"));
    text.push_str(&format!("replay: {}\n", cli::replay_command(out, seed)));
    lines.write_all(text.as_bytes()).and_then(|()| lines.flush()).map_err(io_error)
}

fn humantime(duration: Duration) -> String {
    crate::scenario::format_duration_exact(duration.as_nanos().min(u128::from(u64::MAX)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the default `--out` is next to the input, `NAME.shrunk.yaml`. Method: names
    /// with `.yaml`, `.yml`, no suffix, and an already shrunk file.
    #[test]
    fn default_out_is_next_to_the_input() {
        let cases = [
            ("scenarios/x.yaml", "scenarios/x.shrunk.yaml"),
            ("x.yml", "x.shrunk.yaml"),
            ("dir/x", "dir/x.shrunk.yaml"),
            ("x.shrunk.yaml", "x.shrunk.shrunk.yaml"),
        ];
        for (file, expected) in cases {
            assert_eq!(default_out(Path::new(file)), PathBuf::from(expected), "{file}");
        }
    }
}
