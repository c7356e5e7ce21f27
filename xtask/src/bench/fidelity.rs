//! `cargo xtask bench fidelity`: how closely the profiler's figures match the kernel's accounting
//! and perf's, by running the `fidelity` end-to-end test (a 60/30/10 workload measured by
//! `profiler diagnose` and `perf record -g` at once) and reading the figures it prints.

use std::process::Command;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use super::{
    Context, SubBench, release_test,
    results::{Goal, Row},
};
use crate::util;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Rounds; each runs the fidelity test once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

impl SubBench for Options {
    const NAME: &'static str = "fidelity";
    const WORKLOADS: bool = true;

    fn quick() -> Self {
        Self { runs: 1 }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        run(ctx, self.runs)
    }
}

/// The bounds: CPU share within 3 points of /proc, each top frame within 5 of perf.
const SHARE_POINTS: f64 = 3.0;
const FRAME_POINTS: f64 = 5.0;
const LINE_PREFIX: &str = "fidelity: ";

fn run(ctx: &Context, runs: u32) -> Result<Vec<Row>> {
    let test = release_test(&ctx.target, Options::NAME)?;
    if util::find_command("perf").is_none() {
        bail!("perf is missing: `cargo xtask setup` installs linux-perf");
    }
    let (mut share_gaps, mut frame_gaps, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=runs {
        let output = Command::new(&test)
            .args(["--nocapture", "--test-threads", "1"])
            .env("PROFILER_BIN", ctx.release("profiler"))
            .env("PROFILER_REQUIRE_BPF", "1")
            .output()
            .with_context(|| format!("could not run {}", test.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let figures: Value = stderr
            .lines()
            .find_map(|line| line.strip_prefix(LINE_PREFIX))
            .map(serde_json::from_str)
            .transpose()?
            .with_context(|| format!("the fidelity test printed no figures:\n{stderr}"))?;
        let share = |key: &str| figures["cpu_share"][key].as_f64().unwrap_or(f64::NAN);
        let share_gap = (share("profiler") - share("proc")).abs();
        let frames = figures["frames"].as_array().cloned().unwrap_or_default();
        let frame_gap = frames
            .iter()
            .map(|f| {
                (f["profiler"].as_f64().unwrap_or(f64::NAN)
                    - f["perf"].as_f64().unwrap_or(f64::NAN))
                .abs()
            })
            .fold(0.0, f64::max);
        eprintln!(
            "bench fidelity: round {round}/{runs}: CPU share gap {share_gap:.2} points, largest frame gap {frame_gap:.2} points{}",
            if output.status.success() {
                ""
            } else {
                " (the test failed)"
            }
        );
        share_gaps.push(share_gap);
        frame_gaps.push(frame_gap);
        if round == runs {
            notes.push(format!(
                "last round: profiler {:.1} %, /proc {:.1} % of a core",
                share("profiler"),
                share("proc")
            ));
            notes.push(
                frames
                    .iter()
                    .map(|f| {
                        format!(
                            "{} {:.1} vs {:.1}",
                            f["frame"].as_str().unwrap_or("?"),
                            f["profiler"].as_f64().unwrap_or(f64::NAN),
                            f["perf"].as_f64().unwrap_or(f64::NAN)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
    }
    let mut share_row = Row::measured(
        Options::NAME,
        "CPU share vs /proc utime+stime",
        "points",
        &share_gaps,
    )
    .with_goal(Goal::Max(SHARE_POINTS));
    share_row.note = notes.first().cloned();
    let mut frame_row = Row::measured(
        Options::NAME,
        "largest top-frame share gap vs perf record -g",
        "points",
        &frame_gaps,
    )
    .with_goal(Goal::Max(FRAME_POINTS));
    frame_row.note = notes
        .get(1)
        .map(|frames| format!("last round, profiler vs perf %: {frames}"));
    Ok(vec![share_row, frame_row])
}
