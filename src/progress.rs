//! Progress of long work on standard error (`send`, `simulate`, `backfill`, `import`): done of
//! total, the rate, and the time left, drawn only when standard error is a terminal and `--quiet`
//! was not given. Nothing of it reaches a pipe or a file, and the final totals are printed as
//! before, after the bar is cleared.

use std::cell::Cell;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `total` units (bytes read, or seconds of simulated time), with the count of things
/// done (events) and their rate in its message.
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    /// What the message counts, e.g. "events".
    what: &'static str,
    count: Cell<u64>,
}

impl Progress {
    /// A bar when standard error is a terminal and not `quiet`; otherwise nothing is drawn.
    pub fn new(total: u64, what: &'static str, quiet: bool) -> Progress {
        let target = ProgressDrawTarget::stderr_with_hz(4);
        let bar = (!quiet && !target.is_hidden()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total.max(1)), target);
            // The template is a literal whose keys indicatif knows: it cannot fail.
            let style = ProgressStyle::with_template("{bar:20} {percent:>3}% {msg}, {eta} left")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            what,
            count: Cell::new(0),
        }
    }

    /// Prints a line on standard output, above the bar when one is drawn.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    /// `done` units of the total reached, `count` more things done.
    pub fn advance(&self, done: u64, count: u64) {
        let total = self.count.get() + count;
        self.count.set(total);
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{total} {}, {:.0}/s",
                self.what,
                total as f64 / seconds
            ));
        }
    }

    /// Clears the bar, so that the totals printed next stand alone (dropping it does too).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The total size of `files`, the "total" of a progress over bytes read (a file that cannot be
/// read counts 0; reading it reports the error).
pub fn bytes_of<P: AsRef<std::path::Path>>(files: impl IntoIterator<Item = P>) -> u64 {
    files
        .into_iter()
        .map(|file| std::fs::metadata(file).map_or(0, |m| m.len()))
        .sum()
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
