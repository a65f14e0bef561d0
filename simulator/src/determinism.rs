//! The determinism self-check: run the same seed twice, the second time on another thread,
//! and compare the traces line by line.

use std::io;

use crate::trace::{SharedBuffer, Trace};

/// Where two runs of the same seed first differed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// 1-based line number of the first difference.
    pub line_number: usize,
    /// That line in the first run (empty if the first run ended earlier).
    pub first: String,
    /// That line in the second run (empty if the second run ended earlier).
    pub second: String,
}

/// Runs `run` twice, each time with a trace that records text, the second time on a new
/// thread, and compares the two traces. `run` must build and drive a whole simulation.
///
/// # Errors
/// The first differing line, or an I/O error if the second thread panicked.
pub fn check<F>(run: F) -> io::Result<Result<(), Divergence>>
where
    F: Fn(Trace) + Sync,
{
    let first = SharedBuffer::default();
    run(Trace::new(Some(Box::new(first.clone()))));
    let second = SharedBuffer::default();
    std::thread::scope(|scope| {
        scope
            .spawn(|| run(Trace::new(Some(Box::new(second.clone())))))
            .join()
            .map_err(|_| io::Error::other("the second run panicked"))
    })?;
    Ok(compare(&first.text(), &second.text()))
}

/// Compares two trace texts line by line.
///
/// # Errors
/// The first differing line.
pub fn compare(first: &str, second: &str) -> Result<(), Divergence> {
    let mut first_lines = first.lines();
    let mut second_lines = second.lines();
    let mut line_number = 0;
    loop {
        line_number += 1;
        match (first_lines.next(), second_lines.next()) {
            (None, None) => return Ok(()),
            (left, right) if left == right => {}
            (left, right) => {
                return Err(Divergence {
                    line_number,
                    first: left.unwrap_or_default().to_owned(),
                    second: right.unwrap_or_default().to_owned(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_first_differing_line() {
        assert_eq!(compare("a\nb\n", "a\nb\n"), Ok(()));
        assert_eq!(
            compare("a\nb\nc\n", "a\nx\nc\n"),
            Err(Divergence { line_number: 2, first: "b".into(), second: "x".into() })
        );
        assert_eq!(
            compare("a\n", "a\nb\n"),
            Err(Divergence { line_number: 2, first: String::new(), second: "b".into() })
        );
    }
}
