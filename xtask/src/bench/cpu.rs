//! `cargo xtask bench cpu`: wall time of a fixed CPU-bound workload (`burner`), untraced, under
//! the profiler, and under `perf record`.

use std::{fs, path::Path, process::Command};

use anyhow::Result;

use super::{prepare, print_profiler_line, run_rounds, time_workload, tracer, under_profiler};
use crate::util;

#[derive(Debug, Clone, Copy)]
enum Condition {
    Untraced,
    Profiler,
    Perf,
}

const CONDITIONS: [(Condition, &str); 3] = [
    (Condition::Untraced, "untraced"),
    (Condition::Profiler, "profiler"),
    (Condition::Perf, "perf"),
];

pub fn run(target: &Path, runs: u32, work: u64) -> Result<()> {
    let release = target.join("release");
    let burner = release.join("burner");
    let profiler = release.join("profiler");
    let scratch = prepare("cpu", &[&burner, &profiler])?;
    let workload = || {
        let mut cmd = Command::new(&burner);
        cmd.arg("--work").arg(work.to_string());
        cmd
    };
    let perf_data = scratch.path().join("perf.data");

    println!("bench cpu: {runs} rounds; each runs every condition once, in rotating order");
    println!("  workload: {}", util::display(&workload()));
    print_profiler_line(9, "profiler", &profiler, scratch.path(), &[]);
    println!(
        "  perf:     {}  (started 1 s before the workload; then SIGINT)",
        util::display(&tracer::perf_command(&perf_data))
    );

    run_rounds(
        "cpu",
        runs,
        &CONDITIONS,
        |condition, round| match condition {
            Condition::Untraced => Ok((time_workload(&mut workload())?, None)),
            Condition::Profiler => under_profiler(&profiler, scratch.path(), round, &[], || {
                time_workload(&mut workload())
            }),
            Condition::Perf => {
                let wall = tracer::under_perf(&perf_data, || time_workload(&mut workload()))?;
                fs::remove_file(&perf_data)?;
                Ok((wall, None))
            }
        },
    )
}
