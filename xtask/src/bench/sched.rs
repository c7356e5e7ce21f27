//! `cargo xtask bench sched`: cost of the profiler's context-switch accounting, measured with
//! `perf bench sched pipe`, next to the cost of scanning /proc/PID/schedstat instead.

use std::{
    ffi::OsStr,
    fs,
    hint::black_box,
    io::Read as _,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use super::{
    Context, SubBench, prepare, print_profiler_line, results::Row, run_rounds, time_workload,
    under_profiler,
};
use crate::util;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Rounds; each round runs every condition once.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Round trips for `perf bench sched pipe -l`.
    #[arg(long, default_value_t = 200_000)]
    loops: u64,
}

impl SubBench for Options {
    const NAME: &'static str = "sched";
    const WORKLOADS: bool = false;

    fn quick() -> Self {
        Self {
            runs: 1,
            loops: 10_000,
        }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        run(ctx, self.runs, self.loops)
    }
}

const SCANS: usize = 20;

#[derive(Debug, Clone, Copy)]
enum Condition {
    Untraced,
    /// The profiler with these extra arguments.
    Profiler(&'static [&'static str]),
}

/// On-CPU accounting alone, then the sched signal, then off-CPU stacks (two stack walks per
/// switch here: every switch is a thread going to sleep on the pipe), then everything: the pipe
/// workload is also a syscall storm (four syscalls per round trip), so the last condition pays
/// the syscall hooks.
const CONDITIONS: [(Condition, &str); 5] = [
    (Condition::Untraced, "untraced"),
    (Condition::Profiler(&["--signals", "cpu"]), "profiler-cpu"),
    (
        Condition::Profiler(&["--signals", "cpu,sched"]),
        "profiler-sched",
    ),
    (
        Condition::Profiler(&["--signals", "cpu,sched,offcpu"]),
        "profiler-offcpu",
    ),
    (Condition::Profiler(&[]), "profiler-all"),
];

fn run(ctx: &Context, runs: u32, loops: u64) -> Result<Vec<Row>> {
    let profiler = ctx.release("profiler");
    let scratch = prepare(Options::NAME, &[&profiler])?;
    // Both ends pinned to one CPU: every round trip is two context switches on that CPU and
    // no cross-CPU wakeup, whose cost in a VM depends on idle states more than on the probe.
    let pipe_bench = || {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0", "perf", "bench", "sched", "pipe", "-l"])
            .arg(loops.to_string());
        cmd
    };

    println!("bench sched: {runs} rounds; each runs every condition once, in rotating order");
    println!(
        "  workload: {}  (its CPU time and its children's, user + system; wall time in the note)",
        util::display(&pipe_bench())
    );
    for (condition, name) in CONDITIONS {
        if let Condition::Profiler(args) = condition {
            print_profiler_line(14, name, &profiler, scratch.path(), args);
        }
    }

    let mut rows = run_rounds(
        Options::NAME,
        "s CPU",
        runs,
        &CONDITIONS,
        |condition, round| match condition {
            Condition::Untraced => Ok(time_workload(&mut pipe_bench())?.into()),
            Condition::Profiler(args) => {
                under_profiler(&profiler, scratch.path(), round, args, || {
                    time_workload(&mut pipe_bench())
                })
            }
        },
    )?;

    let (per_scan, processes) = scan_cost()?;
    eprintln!(
        "bench sched: {SCANS} scans reading /proc/<pid>/schedstat of every process \
         ({processes} processes)"
    );
    rows.push(Row {
        note: Some(format!(
            "the procfs alternative: one read of /proc/<pid>/schedstat for each of the \
             {processes} processes"
        )),
        ..Row::measured(Options::NAME, "procfs-scan", "ms", &per_scan)
    });
    Ok(rows)
}

/// Milliseconds per full scan, and the processes the last scan read.
fn scan_cost() -> Result<(Vec<f64>, usize)> {
    let mut per_scan = Vec::with_capacity(SCANS);
    let mut processes = 0;
    for _ in 0..SCANS {
        let start = Instant::now();
        processes = scan_schedstat()?;
        per_scan.push(duration_ms(start.elapsed()));
    }
    Ok((per_scan, processes))
}

fn duration_ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Reads and parses every process's schedstat, as a procfs-based collector would each interval.
fn scan_schedstat() -> Result<usize> {
    let mut read = 0;
    let mut text = String::new();
    for entry in fs::read_dir("/proc").context("could not list /proc")? {
        let name = entry.context("could not list /proc")?.file_name();
        if !is_pid(&name) {
            continue;
        }
        text.clear();
        let path = Path::new("/proc").join(&name).join("schedstat");
        // Processes exit mid-scan; a collector would skip them too.
        if fs::File::open(&path)
            .and_then(|mut file| file.read_to_string(&mut text))
            .is_err()
        {
            continue;
        }
        let fields = text
            .split_whitespace()
            .filter_map(|field| field.parse::<u64>().ok())
            .fold(0_u64, u64::wrapping_add);
        black_box(fields);
        read += 1;
    }
    Ok(read)
}

fn is_pid(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_at_least_this_process() {
        assert!(scan_schedstat().unwrap() >= 1);
    }
}
