//! What "fails the same way" means: the same check, and for `converged` and
//! `no_data_loss` the same kind of failure ([`Report::failure_kinds`]).

use crate::run::Report;

/// Which failed check a shrink keeps when several fail: the first in this list (a check
/// not listed comes after them).
///
/// Safety checks come first: they fail on their own. `converged` comes before `no_data_loss`
/// because nodes that have not converged usually also lack writes they have not received
/// yet: the lost writes are then a symptom. A lost write in a cluster that converged fails
/// `no_data_loss` alone.
pub const PRIORITY: &[&str] =
    &["invariants", "causality", "sessions", "routing", "converged", "no_data_loss"];

/// The failure a shrink keeps: a check name and, for the checks that have kinds, a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The check's name (`converged`, `no_data_loss`, `invariants`, ...).
    pub check: &'static str,
    /// Its kind (`not-converged`, `key-absent`, ...), when the check has kinds.
    pub kind: Option<&'static str>,
}

impl Signature {
    /// The failure of `report` to keep, with that check's first kind: the first failed
    /// check in [`PRIORITY`] order. `trace_hash` (which any change fails)
    /// is never kept. `None` when nothing else failed.
    #[must_use]
    pub fn of(report: &Report) -> Option<Signature> {
        let rank = |name: &str| PRIORITY.iter().position(|known| *known == name).unwrap_or(PRIORITY.len());
        let check = report
            .failed_checks()
            .filter(|check| check.name != "trace_hash")
            .min_by_key(|check| rank(check.name))?;
        let kind = report.failure_kinds.iter().find(|(name, _)| *name == check.name).map(|(_, kind)| *kind);
        Some(Signature { check: check.name, kind })
    }

    /// True when `report` fails this check, with this kind among the kinds it found.
    #[must_use]
    pub fn matches(&self, report: &Report) -> bool {
        if report.interrupted || !report.failed_checks().any(|check| check.name == self.check) {
            return false;
        }
        match self.kind {
            None => true,
            Some(kind) => {
                report.failure_kinds.iter().any(|(name, found)| *name == self.check && *found == kind)
            }
        }
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Some(kind) => write!(formatter, "{} ({kind})", self.check),
            None => formatter.write_str(self.check),
        }
    }
}
