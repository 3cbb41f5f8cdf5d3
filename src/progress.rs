//! Progress of long commands (imports, recompute, export, evaluate,
//! simulate) on stderr, drawn by `indicatif` when stderr is a terminal and
//! not at all when it is piped or redirected, so scripts and logs see only
//! the command's own output.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar (known total) or a counter (unknown total) on stderr.
#[derive(Debug)]
pub struct Progress(ProgressBar);

impl Progress {
    /// A bar of `total` items named `what` ("employees", "punches", …).
    pub fn bar(total: u64, what: &str) -> Progress {
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{{bar:30}} {{pos}}/{{len}} {what} ({{elapsed}}, {{eta}} left)"
        )) {
            pb.set_style(style);
        }
        pb.enable_steady_tick(Duration::from_millis(200));
        Progress(pb)
    }

    /// A counter of items named `what` when the total is not known.
    pub fn counter(what: &str) -> Progress {
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template(&format!("{{spinner}} {{pos}} {what} ({{elapsed}})"))
        {
            pb.set_style(style);
        }
        pb.enable_steady_tick(Duration::from_millis(200));
        Progress(pb)
    }

    /// A spinner saying what is being done, for work with no count.
    pub fn spinner(doing: &str) -> Progress {
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            pb.set_style(style);
        }
        pb.set_message(doing.to_string());
        pb.enable_steady_tick(Duration::from_millis(200));
        Progress(pb)
    }

    /// `n` more items done.
    pub fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    /// `done` items done in all.
    pub fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    /// Whether anything is drawn (stderr is a terminal).
    pub fn visible(&self) -> bool {
        !self.0.is_hidden()
    }

    /// Clears the bar and, on a terminal, prints `message` in its place.
    pub fn finish(self, message: &str) {
        let visible = self.visible();
        self.0.finish_and_clear();
        if visible {
            eprintln!("{message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under `cargo test` stderr is captured, not a terminal: nothing is
    /// drawn and counting still works.
    #[test]
    fn hidden_when_not_a_terminal() {
        let p = Progress::bar(10, "employees");
        p.inc(3);
        p.set(7);
        assert_eq!(p.0.position(), 7);
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            assert!(!p.visible());
        }
        p.finish("done");
        let c = Progress::counter("punches");
        c.inc(5);
        assert_eq!(c.0.position(), 5);
        c.finish("done");
    }
}
