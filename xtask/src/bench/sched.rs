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

use anyhow::{Context as _, Result, bail};

use super::{Row, Summary, print_table, tracer};
use crate::util;

const SCANS: usize = 20;

#[derive(Debug, Clone, Copy)]
enum Condition {
    Untraced,
    Profiler,
}

const CONDITIONS: [Condition; 2] = [Condition::Untraced, Condition::Profiler];

impl Condition {
    fn name(self) -> &'static str {
        match self {
            Self::Untraced => "untraced",
            Self::Profiler => "profiler",
        }
    }
}

pub fn run(target: &Path, runs: u32, loops: u64) -> Result<()> {
    let profiler = target.join("release").join("profiler");
    if !profiler.is_file() {
        bail!(
            "{} is missing: `cargo xtask bench sched` builds it unless --prepared is passed",
            profiler.display()
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("xtask-bench-sched-")
        .tempdir()
        .context("could not create a scratch directory")?;
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
        "  workload: {}  (its \"Total time\")",
        util::display(&pipe_bench())
    );
    println!(
        "  profiler: {}  (started first; workload once it prints \"profiler: attached\"; then SIGINT)",
        util::display(&tracer::profiler_command(
            &profiler,
            &scratch.path().join("profiler-N")
        ))
    );

    let mut totals: [Vec<f64>; 2] = Default::default();
    let mut report_seconds = Vec::new();
    for round in 0..runs as usize {
        for offset in 0..CONDITIONS.len() {
            let index = (round + offset) % CONDITIONS.len();
            let condition = CONDITIONS[index];
            let total = match condition {
                Condition::Untraced => total_time(&mut pipe_bench())?,
                Condition::Profiler => {
                    let out_dir = scratch.path().join(format!("profiler-{round}"));
                    fs::create_dir(&out_dir)
                        .with_context(|| format!("could not create {}", out_dir.display()))?;
                    let (total, report) = tracer::under_profiler(&profiler, &out_dir, || {
                        total_time(&mut pipe_bench())
                    })?;
                    report_seconds.push(report.as_secs_f64());
                    fs::remove_dir_all(&out_dir)?;
                    total
                }
            };
            eprintln!(
                "bench sched: round {}/{runs}: {:<9} {total:.3} s",
                round + 1,
                condition.name()
            );
            totals[index].push(total);
        }
    }

    println!();
    let rows = CONDITIONS
        .iter()
        .zip(&totals)
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

    println!();
    let (per_scan, processes) = scan_cost()?;
    let summary = Summary::of(&per_scan).context("no scans ran")?;
    println!(
        "procfs alternative: {SCANS} scans reading /proc/<pid>/schedstat of every process \
         ({processes} processes): median {:.3} ms per scan (min {:.3}, max {:.3})",
        summary.median, summary.min, summary.max
    );
    Ok(())
}

/// The `Total time: X [sec]` that `perf bench sched pipe` prints.
fn total_time(cmd: &mut Command) -> Result<f64> {
    let output = util::stdout_of(cmd)?;
    parse_total_time(&output).with_context(|| {
        format!(
            "`{}` printed no \"Total time: X [sec]\":\n{output}",
            util::display(cmd)
        )
    })
}

fn parse_total_time(output: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Total time:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
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
    fn parses_perf_bench_total_time() {
        let output = "# Running 'sched/pipe' benchmark:\n\
                      # Executed 200000 pipe operations between two processes\n\n     \
                      Total time: 2.071 [sec]\n\n      10.356 usecs/op\n";
        assert_eq!(parse_total_time(output), Some(2.071));
        assert_eq!(parse_total_time("no numbers"), None);
    }

    #[test]
    fn scans_at_least_this_process() {
        assert!(scan_schedstat().unwrap() >= 1);
    }
}
