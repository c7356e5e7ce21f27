//! The progress line `diagnose` draws on a terminal while it samples: elapsed time, a bar, and
//! the top suspect so far.

use std::{io::IsTerminal as _, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};

use crate::model::Leader;

/// A bar on stderr over `duration`, or nothing when stderr is not a terminal.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    pub fn start(duration: Duration) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::new(duration.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>3} [{bar:30}] {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        Self(Some(bar))
    }

    pub fn update(&self, elapsed: Duration, leader: Option<&Leader>) {
        if let Some(bar) = &self.0 {
            bar.set_position(elapsed.as_millis() as u64);
            bar.set_message(top_so_far(leader));
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

fn top_so_far(leader: Option<&Leader>) -> String {
    match leader {
        Some(leader) => format!(
            "top suspect so far: {} (pid {}) {:.2} cores",
            // The bar is drawn on a terminal, and a name can hold escape sequences.
            super::table::one_line(&leader.comm),
            leader.pid,
            leader.cores
        ),
        None => "waiting for samples".to_owned(),
    }
}
