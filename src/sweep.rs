//! `ferry sweep`: many seeds of one or more scenario files, in parallel, for people and CI.
//!
//! Seeds run on `--jobs` threads, each simulation single-threaded and deterministic, so the
//! results do not depend on the thread count. What is printed is ordered by file, then
//! seed, whatever order the runs finished in. On a terminal a live progress line (on
//! stderr) shows seeds done, seeds per second, the time left and failures so far.
//! `--fail-fast` and Ctrl-C stop the sweep: runs in flight are abandoned, and the summary
//! covers what finished. `--junit` writes one test case per file and seed range.

use std::io::{self, IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_simulator::Trace;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{self, EXIT_FAILED, EXIT_OK, Error};
use crate::run::{self, Report};
use crate::scenario::Scenario;

/// Exit code after Ctrl-C (128 + SIGINT), as shells expect.
pub const EXIT_INTERRUPTED: i32 = 130;

/// The flags of `ferry sweep`, besides the files and seeds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// Simulations in parallel; `None` for every core.
    pub jobs: Option<usize>,
    /// `I/N`: only this shard of the seeds.
    pub shard: Option<&'a str>,
    /// JSON lines instead of text.
    pub json: bool,
    /// Where to write the traces of failing seeds.
    pub trace_dir: Option<&'a Path>,
    /// Where to write the timeline pages of failing seeds.
    pub timeline_dir: Option<&'a Path>,
    /// Stop at the first failure.
    pub fail_fast: bool,
    /// Where to write JUnit XML.
    pub junit: Option<&'a Path>,
    /// Run seeds in order until the first failure (`--until-fail`).
    pub until_fail: bool,
    /// Wall-time bound (`--budget`), a duration like `10m`.
    pub budget: Option<&'a str>,
    /// Shrink the first failing seed (`--shrink`).
    pub shrink: bool,
}

/// Set by the SIGINT handler; read by the sweep.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_interrupt(_signal: libc::c_int) {
    // A second Ctrl-C ends the process at once (only async-signal-safe calls here).
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: `_exit` is async-signal-safe and takes no pointers.
        unsafe { libc::_exit(EXIT_INTERRUPTED) };
    }
}

/// True once Ctrl-C was pressed since [`catch_interrupt`].
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Routes Ctrl-C to [`INTERRUPTED`] for the rest of the process (`ferry sweep`, `ferry
/// shrink`).
pub(crate) fn catch_interrupt() {
    INTERRUPTED.store(false, Ordering::SeqCst);
    #[cfg(unix)]
    {
        let handler: extern "C" fn(libc::c_int) = on_interrupt;
        // SAFETY: installs a handler that only touches an atomic (and `_exit`s on a second
        // signal); `signal` has no other preconditions.
        unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) };
    }
}

/// One file of the sweep, loaded.
struct File<'a> {
    path: &'a Path,
    scenario: Scenario,
}

/// Runs the sweep and prints it; returns the exit code.
///
/// # Errors
/// Bad files or flags (exit 2), or output that cannot be written.
pub fn sweep(paths: &[std::path::PathBuf], seeds: &str, options: &Options<'_>) -> Result<i32, Error> {
    let files = paths
        .iter()
        .map(|path| Ok(File { path, scenario: cli::load(path)? }))
        .collect::<Result<Vec<_>, Error>>()?;
    for file in &files {
        for warning in crate::scenario::warnings(&file.scenario) {
            eprintln!("{}", warning.render(&file.path.display().to_string()));
        }
    }
    let (start, end) = cli::parse_seeds_open(seeds, options.until_fail)?;
    let budget = options.budget.map(crate::shrink::command::parse_budget).transpose()?;
    let (shard_index, shard_count) = options.shard.map(cli::parse_shard).transpose()?.unwrap_or((0, 1));
    if options.until_fail {
        if options.shard.is_some() || options.junit.is_some() {
            return Err(Error::Usage("--until-fail goes without --shard and --junit".to_owned()));
        }
        return until_fail(&files, start, end, budget, options);
    }
    let jobs = match options.jobs {
        Some(0) => return Err(Error::Usage("--jobs 0: at least one job is needed".to_owned())),
        Some(jobs) => jobs,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    for directory in options.trace_dir.iter().chain(options.timeline_dir.iter()) {
        std::fs::create_dir_all(directory)
            .map_err(|error| Error::Io { path: directory.display().to_string(), error })?;
    }
    let seeds: Vec<u64> = (start..end).filter(|seed| (seed - start) % shard_count == shard_index).collect();
    let work: Vec<(usize, u64)> =
        (0..files.len()).flat_map(|file| seeds.iter().map(move |seed| (file, *seed))).collect();

    catch_interrupt();
    let started = Instant::now();
    let out_of_time = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let progress = progress_bar(work.len() as u64, options.json);
    let failures = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Report>>> = Mutex::new(vec![None; work.len()]);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.min(work.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(file, seed)) = work.get(index) else { break };
                        let run_options = run::Options { cancel: Some(&stop), ..run::Options::default() };
                        let report =
                            run::run_with(&files[file].scenario, seed, Trace::default(), run_options);
                        if report.interrupted {
                            break;
                        }
                        if !report.passed() {
                            let failed = failures.fetch_add(1, Ordering::Relaxed) + 1;
                            progress.set_message(format!("{failed} failed"));
                            if options.fail_fast {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                        progress.inc(1);
                        results.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[index] =
                            Some(report);
                    }
                })
            })
            .collect();
        // The watcher turns Ctrl-C into `stop`, so runs in flight end at their next event.
        scope.spawn(|| watch(&done, &stop, &out_of_time, budget.map(|budget| (started, budget)), || true));
        for worker in workers {
            // A panicking run leaves its seed unreported; the panic message is already out.
            let _ = worker.join();
        }
        done.store(true, Ordering::Relaxed);
    });
    progress.finish_and_clear();
    let interrupted = INTERRUPTED.load(Ordering::Relaxed);
    let results = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let stopped = Stopped { interrupted, out_of_time: out_of_time.load(Ordering::Relaxed) };
    let summaries = print(&files, &work, &results, options, stopped)?;
    if let Some(path) = options.junit {
        let xml = junit(&summaries, seeds_label(start, end, options.shard))
            .map_err(|error| Error::Io { path: path.display().to_string(), error })?;
        std::fs::write(path, xml).map_err(|error| Error::Io { path: path.display().to_string(), error })?;
    }
    let failed: u64 = summaries.iter().map(|summary| summary.failed.len() as u64).sum();
    Ok(if interrupted {
        EXIT_INTERRUPTED
    } else if failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// Until `done`: turns Ctrl-C into `stop`, and the end of `budget` (counted from its start)
/// into `out_of_time` and `stop` while `budget_counts()` says it still applies.
fn watch(
    done: &AtomicBool,
    stop: &AtomicBool,
    out_of_time: &AtomicBool,
    budget: Option<(Instant, Duration)>,
    budget_counts: impl Fn() -> bool,
) {
    while !done.load(Ordering::Relaxed) {
        if INTERRUPTED.load(Ordering::Relaxed) {
            stop.store(true, Ordering::Relaxed);
        }
        if budget.is_some_and(|(started, budget)| started.elapsed() >= budget) && budget_counts() {
            out_of_time.store(true, Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Prints a sweep's closing lines: on stdout, or on stderr with `--json`, where stdout holds
/// only JSON lines.
fn write_summary(out: &mut impl io::Write, lines: &[String], json: bool) -> Result<(), Error> {
    let io_error = |error| Error::Io { path: "stdout".to_owned(), error };
    for line in lines {
        if json {
            eprintln!("{line}");
        } else {
            writeln!(out, "{line}").map_err(io_error)?;
        }
    }
    out.flush().map_err(io_error)
}

fn seeds_label(start: u64, end: u64, shard: Option<&str>) -> String {
    match shard {
        Some(shard) => format!("seeds {start}..{end} shard {shard}"),
        None => format!("seeds {start}..{end}"),
    }
}

/// A live progress line on stderr, only when both stdout and stderr are terminals and the
/// output is text.
fn progress_bar(total: u64, json: bool) -> ProgressBar {
    let visible = !json && io::stdout().is_terminal() && io::stderr().is_terminal();
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} seeds, {rate} seeds/s, {eta} left, {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
            let _ = write!(out, "{:.1}", state.per_sec());
        });
    bar.set_style(style);
    bar.set_message("0 failed");
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// What one file's seeds came to.
struct Summary {
    path: String,
    scenario: String,
    passed: u64,
    /// `(seed, one-line reason, replay command)` for each failing seed.
    failed: Vec<(u64, String, String)>,
    not_run: u64,
}

fn failure_reason(report: &Report) -> String {
    report
        .failed_checks()
        .map(|check| format!("{}: {}", check.name, check.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a sweep stopped before running every seed, if it did.
#[derive(Debug, Clone, Copy)]
struct Stopped {
    interrupted: bool,
    out_of_time: bool,
}

fn print(
    files: &[File<'_>],
    work: &[(usize, u64)],
    results: &[Option<Report>],
    options: &Options<'_>,
    stopped: Stopped,
) -> Result<Vec<Summary>, Error> {
    let interrupted = stopped.interrupted;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let io_error = |error| Error::Io { path: "stdout".to_owned(), error };
    let several = files.len() > 1;
    let mut summaries: Vec<Summary> = files
        .iter()
        .map(|file| Summary {
            path: file.path.display().to_string(),
            scenario: file.scenario.name.clone(),
            passed: 0,
            failed: Vec::new(),
            not_run: 0,
        })
        .collect();
    for (&(file_index, seed), report) in work.iter().zip(results) {
        let file = &files[file_index];
        let summary = &mut summaries[file_index];
        let Some(report) = report else {
            summary.not_run += 1;
            continue;
        };
        if options.json {
            let warnings: Vec<String> = Vec::new();
            writeln!(out, "{}", cli::json_report(report, Some(file.path), &warnings, false))
                .map_err(io_error)?;
        }
        if report.passed() {
            summary.passed += 1;
            continue;
        }
        let reason = failure_reason(report);
        let replay = cli::replay_command(file.path, seed);
        if !options.json {
            let name = if several { format!("{} ", summary.path) } else { String::new() };
            writeln!(out, "{name}seed {seed} failed ({reason}); replay: {replay}").map_err(io_error)?;
        }
        if let Some(directory) = options.trace_dir {
            let trace_name = if several {
                format!("{}-{seed}.trace", file.scenario.name)
            } else {
                format!("{seed}.trace")
            };
            let path = directory.join(trace_name);
            let traced =
                run::run(&file.scenario, seed, cli::trace_sink(&path, ferry_simulator::TraceFormat::Text)?);
            if let Some(message) = &traced.trace_error {
                return Err(cli::trace_error(&path, message));
            }
        }
        if let Some(directory) = options.timeline_dir {
            let page_name =
                if several { format!("{}-{seed}.html", file.scenario.name) } else { format!("{seed}.html") };
            let path = directory.join(page_name);
            let (trace, views) = crate::timeline::Views::attach(
                &file.scenario,
                ferry_simulator::Trace::default(),
                Some(&path),
                None,
            )
            .map_err(cli::view_error)?;
            let report = run::run(&file.scenario, seed, trace);
            views.finish(&report).map_err(cli::view_error)?;
        }
        summary.failed.push((seed, reason, replay));
    }
    let mut lines = Vec::new();
    let not_run: u64 = summaries.iter().map(|summary| summary.not_run).sum();
    if interrupted {
        lines.push(format!("interrupted (Ctrl-C): {not_run} seeds not run"));
    } else if stopped.out_of_time && not_run > 0 {
        lines.push(format!("the budget ran out: {not_run} seeds not run"));
    } else if options.fail_fast && not_run > 0 {
        lines.push(format!("stopped at the first failure (--fail-fast): {not_run} seeds not run"));
    }
    if options.shrink && !interrupted {
        let first = files.iter().zip(&summaries).find_map(|(file, summary)| {
            summary.failed.iter().map(|(seed, _, _)| *seed).min().map(|seed| (file.path, seed))
        });
        if let Some((path, seed)) = first {
            out.flush().map_err(io_error)?;
            hand_to_shrink(path, seed, options)?;
        }
    }
    for summary in &summaries {
        let skipped =
            if summary.not_run > 0 { format!(", {} not run", summary.not_run) } else { String::new() };
        lines.push(format!(
            "{}: {} passed, {} failed{skipped}",
            summary.path,
            summary.passed,
            summary.failed.len()
        ));
    }
    let passed: u64 = summaries.iter().map(|summary| summary.passed).sum();
    let failed: usize = summaries.iter().map(|summary| summary.failed.len()).sum();
    lines.push(format!("{passed} passed, {failed} failed"));
    write_summary(&mut out, &lines, options.json)?;
    Ok(summaries)
}

/// The JUnit XML report: a `testsuite` per file holding one `testcase` for its seed range,
/// failed when any seed failed, with each failing seed's reason and replay command.
fn junit(summaries: &[Summary], seeds: String) -> io::Result<Vec<u8>> {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let failures = summaries.iter().filter(|summary| !summary.failed.is_empty()).count();
    let mut root = BytesStart::new("testsuites");
    root.push_attribute(("name", "ferry sweep"));
    root.push_attribute(("tests", summaries.len().to_string().as_str()));
    root.push_attribute(("failures", failures.to_string().as_str()));
    writer.write_event(Event::Start(root))?;
    for summary in summaries {
        let mut suite = BytesStart::new("testsuite");
        suite.push_attribute(("name", summary.path.as_str()));
        suite.push_attribute(("tests", "1"));
        suite.push_attribute(("failures", usize::from(!summary.failed.is_empty()).to_string().as_str()));
        let skipped = summary.passed == 0 && summary.failed.is_empty();
        suite.push_attribute(("skipped", usize::from(skipped).to_string().as_str()));
        writer.write_event(Event::Start(suite))?;
        let mut case = BytesStart::new("testcase");
        case.push_attribute(("classname", format!("ferry.{}", summary.scenario).as_str()));
        case.push_attribute(("name", format!("{} {seeds}", summary.path).as_str()));
        case.push_attribute(("file", summary.path.as_str()));
        writer.write_event(Event::Start(case))?;
        if !summary.failed.is_empty() {
            let run = summary.passed + summary.failed.len() as u64;
            let message = format!("{} of {run} seeds failed", summary.failed.len());
            let mut failure = BytesStart::new("failure");
            failure.push_attribute(("message", message.as_str()));
            failure.push_attribute(("type", "ferry.check"));
            writer.write_event(Event::Start(failure))?;
            let body: Vec<String> = summary
                .failed
                .iter()
                .map(|(seed, reason, replay)| format!("seed {seed}: {reason}\nreplay: {replay}"))
                .collect();
            writer.write_event(Event::Text(BytesText::new(&body.join("\n"))))?;
            writer.write_event(Event::End(BytesEnd::new("failure")))?;
        }
        if skipped {
            let mut element = BytesStart::new("skipped");
            element.push_attribute(("message", "no seed ran (interrupted or stopped at the first failure)"));
            writer.write_event(Event::Empty(element))?;
        }
        if summary.not_run > 0 {
            let text = format!("{} passed, {} seeds not run", summary.passed, summary.not_run);
            writer.write_event(Event::Start(BytesStart::new("system-out")))?;
            writer.write_event(Event::Text(BytesText::new(&text)))?;
            writer.write_event(Event::End(BytesEnd::new("system-out")))?;
        }
        writer.write_event(Event::End(BytesEnd::new("testcase")))?;
        writer.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }
    writer.write_event(Event::End(BytesEnd::new("testsuites")))?;
    let mut xml = writer.into_inner();
    xml.push(b'\n');
    Ok(xml)
}

/// Runs `ferry shrink` on a failing seed found by a sweep (`--shrink`); its output goes to
/// stdout before the sweep's summary lines.
fn hand_to_shrink(path: &Path, seed: u64, options: &Options<'_>) -> Result<(), Error> {
    println!("shrinking seed {seed} of {}", crate::text::shell_word(&path.display().to_string()));
    let flags = crate::shrink::command::Flags { seed, out: None, budget: None, jobs: options.jobs };
    match crate::shrink::command::shrink_command(path, &flags) {
        Ok(_) => Ok(()),
        Err(error @ Error::Io { .. }) => Err(error),
        Err(error) => {
            println!("shrink: {error}");
            Ok(())
        }
    }
}

/// `--until-fail`: seeds in order, `jobs` at a time, until the first that fails (the
/// lowest failing seed, whatever order the runs finish in), the end of the seeds, the budget
/// or Ctrl-C. Prints the failing seed's line, then `N passed, M failed` last, where the
/// passed seeds are those before the failing one, so the output does not depend on `jobs`.
fn until_fail(
    files: &[File<'_>],
    start: u64,
    end: u64,
    budget: Option<Duration>,
    options: &Options<'_>,
) -> Result<i32, Error> {
    let jobs = match options.jobs {
        Some(0) => return Err(Error::Usage("--jobs 0: at least one job is needed".to_owned())),
        Some(jobs) => jobs,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let per_seed = files.len() as u64;
    // Work item i is file i % per_seed of seed start + i / per_seed.
    let total = (end - start).saturating_mul(per_seed);
    catch_interrupt();
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let out_of_time = AtomicBool::new(false);
    let next = std::sync::atomic::AtomicU64::new(0);
    let runs = std::sync::atomic::AtomicU64::new(0);
    let first_failure = std::sync::atomic::AtomicU64::new(u64::MAX);
    let failure: Mutex<Option<(u64, Report)>> = Mutex::new(None);
    let done = AtomicBool::new(false);
    let progress = if !options.json && io::stdout().is_terminal() && io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos} runs, {per_sec}, {elapsed}: looking for a failure")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };
    let watched_budget = budget.map(|budget| (started, budget));
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= total || index > first_failure.load(Ordering::Relaxed) {
                            break;
                        }
                        let file = &files[(index % per_seed) as usize];
                        let seed = start + index / per_seed;
                        let run_options = run::Options { cancel: Some(&stop), ..run::Options::default() };
                        let report = run::run_with(&file.scenario, seed, Trace::default(), run_options);
                        if report.interrupted {
                            break;
                        }
                        progress.inc(1);
                        runs.fetch_add(1, Ordering::Relaxed);
                        if !report.passed() {
                            let mut slot = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            if slot.as_ref().is_none_or(|(known, _)| index < *known) {
                                *slot = Some((index, report));
                                first_failure.fetch_min(index, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        // Once a seed failed, the budget no longer stops the runs that may fail lower.
        scope.spawn(|| {
            watch(&done, &stop, &out_of_time, watched_budget, || {
                first_failure.load(Ordering::Relaxed) == u64::MAX
            })
        });
        for worker in workers {
            let _ = worker.join();
        }
        done.store(true, Ordering::Relaxed);
    });
    progress.finish_and_clear();
    let interrupted = INTERRUPTED.load(Ordering::Relaxed);
    let failure = failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let io_error = |error| Error::Io { path: "stdout".to_owned(), error };
    let several = files.len() > 1;
    // Seeds below the failure all ran and passed; without a failure, count what passed.
    let (passed, failed) = match &failure {
        Some((index, report)) => {
            let file = &files[(index % per_seed) as usize];
            let seed = start + index / per_seed;
            if options.json {
                let warnings: Vec<String> = Vec::new();
                writeln!(out, "{}", cli::json_report(report, Some(file.path), &warnings, false))
                    .map_err(io_error)?;
            } else {
                let name = if several { format!("{} ", file.path.display()) } else { String::new() };
                let reason = failure_reason(report);
                let replay = cli::replay_command(file.path, seed);
                writeln!(out, "{name}seed {seed} failed ({reason}); replay: {replay}").map_err(io_error)?;
            }
            if options.shrink && !interrupted {
                out.flush().map_err(io_error)?;
                hand_to_shrink(file.path, seed, options)?;
            }
            (*index, 1)
        }
        None => (runs.load(Ordering::Relaxed), 0),
    };
    let mut lines = Vec::new();
    if interrupted {
        lines.push(format!("interrupted (Ctrl-C) before a failure, after {passed} runs"));
    } else if failure.is_none() && out_of_time.load(Ordering::Relaxed) {
        lines.push(format!("the budget ran out before a failure, after {passed} runs"));
    } else if failure.is_none() {
        lines.push(format!("no failure in seeds {start}..{end}"));
    } else if let Some((index, _)) = &failure {
        lines.push(format!("first failure after {} passing runs", index));
    }
    lines.push(format!("{passed} passed, {failed} failed"));
    write_summary(&mut out, &lines, options.json)?;
    Ok(if interrupted {
        EXIT_INTERRUPTED
    } else if failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}
