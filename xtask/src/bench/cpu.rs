//! `cargo xtask bench cpu`: wall time of a fixed CPU-bound workload (`burner`), untraced, under
//! the profiler, and under `perf record`.

use std::{fs, path::Path, process::Command};

use anyhow::{Context as _, Result, bail};

use super::{Row, print_table, time_workload, tracer};
use crate::util;

#[derive(Debug, Clone, Copy)]
enum Condition {
    Untraced,
    Profiler,
    Perf,
}

const CONDITIONS: [Condition; 3] = [Condition::Untraced, Condition::Profiler, Condition::Perf];

impl Condition {
    fn name(self) -> &'static str {
        match self {
            Self::Untraced => "untraced",
            Self::Profiler => "profiler",
            Self::Perf => "perf",
        }
    }
}

pub fn run(target: &Path, runs: u32, work: u64) -> Result<()> {
    let release = target.join("release");
    let burner = release.join("burner");
    let profiler = release.join("profiler");
    for binary in [&burner, &profiler] {
        if !binary.is_file() {
            bail!(
                "{} is missing: `cargo xtask bench cpu` builds it unless --prepared is passed",
                binary.display()
            );
        }
    }
    let scratch = tempfile::Builder::new()
        .prefix("xtask-bench-cpu-")
        .tempdir()
        .context("could not create a scratch directory")?;
    let workload = || {
        let mut cmd = Command::new(&burner);
        cmd.arg("--work").arg(work.to_string());
        cmd
    };
    let perf_data = scratch.path().join("perf.data");

    println!("bench cpu: {runs} rounds; each runs every condition once, in rotating order");
    println!("  workload: {}", util::display(&workload()));
    println!(
        "  profiler: {}  (started first; workload once it prints \"profiler: attached\"; then SIGINT)",
        util::display(&tracer::profiler_command(
            &profiler,
            &scratch.path().join("profiler-N")
        ))
    );
    println!(
        "  perf:     {}  (started 1 s before the workload; then SIGINT)",
        util::display(&tracer::perf_command(&perf_data))
    );

    let mut walls: [Vec<f64>; 3] = Default::default();
    let mut report_seconds = Vec::new();
    for round in 0..runs as usize {
        // Rotating the order keeps any drift (thermal, page cache) from always hitting the same
        // condition.
        for offset in 0..CONDITIONS.len() {
            let index = (round + offset) % CONDITIONS.len();
            let condition = CONDITIONS[index];
            let wall = match condition {
                Condition::Untraced => time_workload(&mut workload())?,
                Condition::Profiler => {
                    let out_dir = scratch.path().join(format!("profiler-{round}"));
                    fs::create_dir(&out_dir)
                        .with_context(|| format!("could not create {}", out_dir.display()))?;
                    let (wall, report) = tracer::under_profiler(&profiler, &out_dir, || {
                        time_workload(&mut workload())
                    })?;
                    report_seconds.push(report.as_secs_f64());
                    // Reports are not kept; a round's output only has to prove the run completed.
                    fs::remove_dir_all(&out_dir)?;
                    wall
                }
                Condition::Perf => {
                    let wall = tracer::under_perf(&perf_data, || time_workload(&mut workload()))?;
                    fs::remove_file(&perf_data)?;
                    wall
                }
            };
            eprintln!(
                "bench cpu: round {}/{runs}: {:<9} {wall:.3} s",
                round + 1,
                condition.name()
            );
            walls[index].push(wall);
        }
    }

    println!();
    let rows = CONDITIONS
        .iter()
        .zip(&walls)
        .map(|(condition, samples)| Row {
            condition: condition.name(),
            samples,
            report_seconds: if matches!(condition, Condition::Profiler) {
                &report_seconds
            } else {
                &[]
            },
        })
        .collect::<Vec<_>>();
    print_table("s", &rows);
    Ok(())
}
