//! Pull progress the way `docker pull` shows it: one bar per layer on a
//! terminal; one plain line per event when stderr is not a terminal (CI logs,
//! pipes); nothing with `-q`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub enum Progress {
    Bars(MultiProgress),
    Lines,
    Quiet,
}

/// The display of one layer's progress.
pub enum LayerProgress {
    Bar(ProgressBar),
    Line(String),
    Quiet,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Progress::Lines
        }
    }

    /// A status line ("latest: Pulling from library/alpine").
    pub fn say(&self, line: &str) {
        match self {
            Progress::Bars(m) => {
                let _ = m.println(line);
            }
            Progress::Lines => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            Progress::Quiet => {}
        }
    }

    /// Start showing layer `id` (a short digest) of `size` bytes.
    pub fn layer(&self, id: &str, size: u64) -> LayerProgress {
        match self {
            Progress::Bars(m) => {
                let bar = m.add(ProgressBar::new(size));
                bar.set_style(
                    ProgressStyle::with_template("{prefix}: {msg:<18} [{bar:30}] {bytes}/{total_bytes}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(id.to_string());
                bar.set_message("Waiting");
                bar.enable_steady_tick(Duration::from_millis(200));
                LayerProgress::Bar(bar)
            }
            Progress::Lines => LayerProgress::Line(id.to_string()),
            Progress::Quiet => LayerProgress::Quiet,
        }
    }
}

impl LayerProgress {
    pub fn advance(&self, n: u64) {
        if let LayerProgress::Bar(b) = self {
            b.inc(n);
        }
    }

    /// `n` bytes done in all (an upload that starts over goes back to 0).
    pub fn set_position(&self, n: u64) {
        if let LayerProgress::Bar(b) = self {
            b.set_position(n);
        }
    }

    /// A state change: "Pulling fs layer", "Download complete", "Retrying".
    pub fn event(&self, what: &str) {
        match self {
            LayerProgress::Bar(b) => b.set_message(what.to_string()),
            LayerProgress::Line(id) => {
                let _ = writeln!(std::io::stderr(), "{id}: {what}");
            }
            LayerProgress::Quiet => {}
        }
    }

    /// The layer is finished: the bar stays with its final word.
    pub fn finish(&self, what: &str) {
        match self {
            LayerProgress::Bar(b) => b.finish_with_message(what.to_string()),
            _ => self.event(what),
        }
    }
}
