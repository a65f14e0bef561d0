//! `ferry shrink`: from a scenario and a failing seed to the smallest scenario file we can
//! find that still fails the same way ([`signature`]).
//!
//! The search is greedy and deterministic. It first writes the chaos schedule the seed
//! draws as explicit faults ([`crate::chaos::export`], which replays to the same trace),
//! then runs the [`reduce::PASSES`] in a fixed order, again and again until a whole round
//! changes nothing: each pass proposes candidates, boldest first, and the first one that
//! still fails with the same signature becomes the new best. Every candidate is written
//! with [`crate::scenario::to_yaml`] and parsed back by our own parser before it runs, so
//! what was tested is exactly what the final file says, and a candidate the parser refuses
//! is never run. Candidates run `jobs` at a time; the first accepted one in candidate order
//! wins, so the result does not depend on `jobs`. The seed never changes.
//!
//! One rule keeps convergence failures honest: no candidate may shorten the time the
//! nodes get to converge (`expect.within`, capped by `duration`) below the input's, so a
//! shrink cannot manufacture a "not converged" by cutting the run short. `expect` itself is
//! never changed, except that `trace_hash` is dropped (any change fails it).
//!
//! Module map: [`signature`] (what "the same failure" is), [`reduce`] (the passes),
//! [`command`] (the CLI: budget, Ctrl-C, progress line, table).

pub mod command;
pub mod reduce;
pub mod signature;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_simulator::Trace;

use crate::run::{self, Report};
use crate::scenario::{self, Scenario};
pub use signature::Signature;

/// How the search is run.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// Candidates run in parallel (at least 1); the result does not depend on it.
    pub jobs: usize,
    /// Set from outside (budget, Ctrl-C) to stop the search; the best so far is returned.
    pub cancel: &'a AtomicBool,
    /// Set from outside (Ctrl-C) to stop even the run that confirms the failure.
    pub interrupt: &'a AtomicBool,
    /// Every run, the confirming one and each candidate, plants this bug
    /// ([`run::Options::planted_bug`]): tests shrink real failures of a broken process with
    /// it. The command always passes `None`.
    #[doc(hidden)]
    pub planted_bug: Option<ferry_simulator::ferry::PlantedBug>,
}

/// Where the search stands, for a progress line.
#[derive(Debug)]
pub struct Progress<'a> {
    /// Candidates run so far.
    pub tried: u64,
    /// Candidates accepted so far.
    pub accepted: u64,
    /// The pass running now.
    pub pass: &'static str,
    /// The best scenario so far.
    pub best: &'a Scenario,
}

/// What a shrink found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The failure kept.
    pub signature: Signature,
    /// The input's report (the confirming run).
    pub before: Report,
    /// The smallest failing scenario, as parsed back from [`Outcome::text`].
    pub scenario: Scenario,
    /// The file to write.
    pub text: String,
    /// Candidates run.
    pub tried: u64,
    /// Candidates accepted.
    pub accepted: u64,
    /// False when the budget or Ctrl-C stopped the search before a fixpoint.
    pub complete: bool,
}

/// Why there is nothing to shrink.
#[derive(Debug)]
pub enum Refusal {
    /// The input passes every check with this seed (or fails only `trace_hash`).
    Passes(Box<Report>),
    /// The confirming run was cancelled.
    Interrupted,
}

/// The label given to candidate texts when they are parsed back.
const LABEL: &str = "shrunk";

/// Shrinks `input` for `seed`. `header` opens the written file as comments (where the file
/// came from); `progress` is called after each batch of candidates.
///
/// # Errors
/// [`Refusal`] when the input does not fail with `seed`, or was cancelled first.
pub fn shrink(
    input: &Scenario,
    seed: u64,
    header: &dyn Fn(&Signature) -> Vec<String>,
    options: Options<'_>,
    progress: &dyn Fn(&Progress<'_>),
) -> Result<Outcome, Refusal> {
    // The budget does not cut the confirming run short: without it there is nothing to keep.
    let run_options = run::Options {
        cancel: Some(options.interrupt),
        planted_bug: options.planted_bug,
        ..run::Options::default()
    };
    let before = run::run_with(input, seed, Trace::default(), run_options);
    if before.interrupted {
        return Err(Refusal::Interrupted);
    }
    let Some(signature) = Signature::of(&before) else { return Err(Refusal::Passes(Box::new(before))) };
    let header = header(&signature);

    let mut base = input.clone();
    base.expect.trace_hash = None;
    base.seed = Some(seed);
    let mut search = Search {
        seed,
        signature: signature.clone(),
        header,
        options,
        tried: 0,
        accepted: 0,
        rejected: HashSet::new(),
        stopped: false,
        window_floor_ns: 0,
        best_text: String::new(),
        best: base.clone(),
    };
    // The exported schedule replays the same run; the plain input is the fallback.
    let exported = crate::chaos::export(&base, seed);
    let start = [exported, base].into_iter().find_map(|candidate| {
        let (parsed, text) = search.prepare(&candidate)?;
        search.check(&parsed).then_some((parsed, text))
    });
    let Some((start, text)) = start else {
        // Cancelled, or (never seen) the file as written does not fail: keep the input.
        let text = scenario::to_yaml(&search.best, &search.header);
        let scenario = scenario::parse(LABEL, &text).unwrap_or_else(|_| search.best.clone());
        return Ok(Outcome { signature, before, scenario, text, tried: 0, accepted: 0, complete: false });
    };
    search.window_floor_ns = window_ns(&start);
    search.best = start;
    search.best_text = text;
    search.run(progress);
    Ok(Outcome {
        signature,
        before,
        complete: !search.stopped,
        tried: search.tried,
        accepted: search.accepted,
        scenario: search.best,
        text: search.best_text,
    })
}

/// How long the nodes get to converge: `expect.within` after the liveness phase starts,
/// capped by `duration`.
fn window_ns(scenario: &Scenario) -> u64 {
    let (heal_ns, _) = scenario.liveness_start();
    scenario.expect.within_ns.min(scenario.duration_ns.saturating_sub(heal_ns))
}

struct Search<'a> {
    seed: u64,
    signature: Signature,
    header: Vec<String>,
    options: Options<'a>,
    tried: u64,
    accepted: u64,
    /// Texts already run and rejected (runs are deterministic, so they stay rejected).
    rejected: HashSet<String>,
    stopped: bool,
    window_floor_ns: u64,
    best: Scenario,
    best_text: String,
}

impl Search<'_> {
    /// Writes `candidate` out and parses it back; `None` when the parser refuses it, when it
    /// is the current best or was already rejected, or when it would cut the time to converge.
    fn prepare(&self, candidate: &Scenario) -> Option<(Scenario, String)> {
        let text = scenario::to_yaml(candidate, &self.header);
        if text == self.best_text || self.rejected.contains(&text) {
            return None;
        }
        let parsed = scenario::parse(LABEL, &text).ok()?;
        if window_ns(&parsed) < self.window_floor_ns {
            return None;
        }
        Some((parsed, text))
    }

    /// Runs one candidate: `Some(true)` when it fails the same way, `None` when cancelled.
    fn verdict(&self, candidate: &Scenario) -> Option<bool> {
        let run_options = run::Options {
            cancel: Some(self.options.cancel),
            planted_bug: self.options.planted_bug,
            ..run::Options::default()
        };
        let report = run::run_with(candidate, self.seed, Trace::default(), run_options);
        if report.interrupted {
            return None;
        }
        Some(self.signature.matches(&report))
    }

    /// One candidate run on this thread.
    fn check(&mut self, candidate: &Scenario) -> bool {
        self.tried += 1;
        match self.verdict(candidate) {
            Some(accepted) => accepted,
            None => {
                self.stopped = true;
                false
            }
        }
    }

    fn cancelled(&self) -> bool {
        self.stopped || self.options.cancel.load(Ordering::Relaxed)
    }

    fn run(&mut self, progress: &dyn Fn(&Progress<'_>)) {
        loop {
            let mut changed = false;
            for pass in reduce::PASSES {
                loop {
                    if self.cancelled() {
                        self.stopped = true;
                        return;
                    }
                    let context = reduce::Context { seed: self.seed, window_floor_ns: self.window_floor_ns };
                    let candidates = (pass.candidates)(&self.best, &context);
                    let Some((best, text)) = self.first_accepted(&candidates, pass.name, progress) else {
                        break;
                    };
                    self.best = best;
                    self.best_text = text;
                    self.accepted += 1;
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// The first candidate, in order, that fails the same way.
    fn first_accepted(
        &mut self,
        candidates: &[Scenario],
        pass: &'static str,
        progress: &dyn Fn(&Progress<'_>),
    ) -> Option<(Scenario, String)> {
        let mut prepared: Vec<(Scenario, String)> = Vec::new();
        for candidate in candidates {
            if let Some((parsed, text)) = self.prepare(candidate)
                && !prepared.iter().any(|(_, known)| *known == text)
            {
                prepared.push((parsed, text));
            }
        }
        for batch in prepared.chunks(self.options.jobs.max(1)) {
            if self.cancelled() {
                self.stopped = true;
                return None;
            }
            let verdicts: Vec<Option<bool>> = if batch.len() == 1 {
                vec![self.verdict(&batch[0].0)]
            } else {
                let this = &*self;
                std::thread::scope(|scope| {
                    let handles: Vec<_> = batch
                        .iter()
                        .map(|(candidate, _)| scope.spawn(move || this.verdict(candidate)))
                        .collect();
                    handles.into_iter().map(|handle| handle.join().unwrap_or(Some(false))).collect()
                })
            };
            self.tried += batch.len() as u64;
            progress(&Progress { tried: self.tried, accepted: self.accepted, pass, best: &self.best });
            for ((candidate, text), verdict) in batch.iter().zip(verdicts) {
                match verdict {
                    Some(true) => return Some((candidate.clone(), text.clone())),
                    Some(false) => {
                        self.rejected.insert(text.clone());
                    }
                    None => {
                        self.stopped = true;
                        return None;
                    }
                }
            }
        }
        None
    }
}
