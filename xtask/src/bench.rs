//! `cargo xtask bench`: how much the profiler slows workloads down, next to untraced runs and
//! other tracers (`perf record`, bpftrace, syscount); shared argument parsing, privilege
//! handling, timing and the result table.

mod cpu;
mod goal;
mod record;
mod render;
mod sched;
mod suspect;
mod syscalls;
mod tracer;

use std::{
    env, fs,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use tempfile::TempDir;

use crate::{setup, util};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    kind: Kind,
    /// Set by the re-exec under sudo: setup and builds already ran as the calling user, whose
    /// target directory this is.
    #[arg(long, global = true, hide = true, value_name = "TARGET_DIR")]
    prepared: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Kind {
    /// Wall time of a fixed CPU-bound workload: untraced, under the profiler, under perf record.
    Cpu {
        /// Rounds; each round runs every condition once.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// Work units for `burner --work`.
        #[arg(long, default_value_t = 400)]
        work: u64,
    },
    /// Cost of context-switch accounting (`perf bench sched pipe`), and of scanning
    /// /proc/PID/schedstat instead.
    Sched {
        /// Rounds; each round runs every condition once.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// Round trips for `perf bench sched pipe -l`.
        #[arg(long, default_value_t = 200_000)]
        loops: u64,
    },
    /// What `profiler record` costs at its defaults: a churn workload untraced and recorded,
    /// then one long recording of a busy, churning host (own CPU with BPF time, memory).
    Record {
        /// Rounds of the churn workload; each round runs both conditions once.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// Children the churn workload starts, one after another.
        #[arg(long, default_value_t = 2000)]
        children: u64,
        /// Length of the long recording (record's default window is 60 s).
        #[arg(long, default_value_t = 150)]
        seconds: u64,
        /// Processes started per second during the long recording (28/s is 100 000 an hour).
        #[arg(long, default_value_t = 28.0)]
        churn: f64,
    },
    /// Time to suspect: launch of `profiler diagnose` to a report naming a planted CPU hog
    /// suspect #1, with the report's own phase timings.
    Suspect {
        /// Rounds; each launches the profiler once.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// `diagnose --duration`.
        #[arg(long, default_value = "1s")]
        duration: String,
    },
    /// A million samples over fifty thousand stacks of real addresses symbolized and rendered
    /// (folded, flamegraph, pprof, html, report.json) as diagnose does after sampling.
    Render {
        /// Rounds; each runs the render example once, in a fresh process.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
    },
    /// Wall time of a getppid storm: untraced, under the profiler's syscall signals, under
    /// bpftrace and under libbpf-tools' syscount.
    Syscalls {
        /// Rounds; each round runs every condition once.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// getppid syscalls the storm makes.
        #[arg(long, default_value_t = 3_000_000)]
        count: u64,
    },
}

pub fn run(args: &Args) -> Result<()> {
    let target = match &args.prepared {
        Some(target) => target.clone(),
        None => {
            setup::run(true)?;
            let target = util::target_dir()?;
            build(matches!(
                args.kind,
                Kind::Cpu { .. } | Kind::Record { .. } | Kind::Suspect { .. }
            ))?;
            if matches!(args.kind, Kind::Render { .. }) {
                build_render_example()?;
            }
            target
        }
    };
    if !util::is_root() {
        return reexec_as_root(&target);
    }
    match args.kind {
        Kind::Suspect { runs, ref duration } => {
            goal::print(&suspect::run(&target, runs, duration)?);
            Ok(())
        }
        Kind::Render { runs } => {
            goal::print(&render::run(&target, runs)?);
            Ok(())
        }
        Kind::Cpu { runs, work } => cpu::run(&target, runs, work),
        Kind::Sched { runs, loops } => sched::run(&target, runs, loops),
        Kind::Syscalls { runs, count } => syscalls::run(&target, runs, count),
        Kind::Record {
            runs,
            children,
            seconds,
            churn,
        } => record::run(&target, runs, children, seconds, churn),
    }
}

/// Separate cargo invocations, not one with two `-p`: features unify across the packages of one
/// build, which would give a profiler binary different from the one `test` and `run` build.
fn build(with_workloads: bool) -> Result<()> {
    let workspace = util::workspace_root();
    util::run_step_quiet_stdout(
        "build profiler",
        util::cargo()
            .args(["build", "--release", "-p", "profiler"])
            .current_dir(&workspace),
    )?;
    if with_workloads {
        util::run_step_quiet_stdout(
            "build workloads",
            util::cargo()
                .args(["build", "--release", "-p", "profiler-tests", "--bins"])
                .current_dir(&workspace),
        )?;
    }
    Ok(())
}

/// The `render` example of the profiler crate, which `bench render` runs.
fn build_render_example() -> Result<()> {
    util::run_step_quiet_stdout(
        "build the render example",
        util::cargo()
            .args([
                "build",
                "--release",
                "-p",
                "profiler",
                "--example",
                "render",
            ])
            .current_dir(util::workspace_root()),
    )
}

/// Builds ran as the calling user so target/ stays theirs; only the measurement needs root.
fn reexec_as_root(target: &Path) -> Result<()> {
    let exe = env::current_exe().context("could not locate the xtask binary")?;
    let mut cmd = util::privileged(&exe)?;
    cmd.args(env::args_os().skip(1))
        .arg("--prepared")
        .arg(target);
    let err = cmd.exec();
    Err(err).with_context(|| format!("could not start `{}`", util::display(&cmd)))
}

/// Checks that `binaries` are built, then creates the scratch directory of `cargo xtask bench
/// {bench}`.
fn prepare(bench: &str, binaries: &[&Path]) -> Result<TempDir> {
    for binary in binaries {
        if !binary.is_file() {
            bail!(
                "{} is missing: `cargo xtask bench {bench}` builds it unless --prepared is passed",
                binary.display()
            );
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("xtask-bench-{bench}-"))
        .tempdir()
        .context("could not create a scratch directory")
}

/// Wall seconds of `cmd`, which must succeed; its stdout is dropped so it cannot garble the table.
fn time_workload(cmd: &mut Command) -> Result<f64> {
    cmd.stdout(Stdio::null());
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", util::display(cmd)))?;
    let wall = start.elapsed().as_secs_f64();
    util::check("workload", cmd, status)?;
    Ok(wall)
}

/// What one run of a condition measured: the workload's seconds, and how long the profiler took
/// to exit after SIGINT (writing its report) when the condition ran it.
type Measured = (f64, Option<Duration>);

/// Runs every condition once per round, printing a progress line per run, then prints the table.
/// `conditions` name each condition; the first is the untraced baseline the ratios compare with.
/// `run` measures one condition in one round (counted from 0).
fn run_rounds<C: Copy>(
    bench: &str,
    runs: u32,
    conditions: &[(C, &str)],
    mut run: impl FnMut(C, usize) -> Result<Measured>,
) -> Result<()> {
    let width = name_width(conditions.iter().map(|(_, name)| *name));
    let mut samples = vec![Vec::new(); conditions.len()];
    let mut report_seconds = vec![Vec::new(); conditions.len()];
    for round in 0..runs as usize {
        // Rotating the order keeps any drift (thermal, page cache) from always hitting the same
        // condition.
        for offset in 0..conditions.len() {
            let index = (round + offset) % conditions.len();
            let (condition, name) = conditions[index];
            let (seconds, report) = run(condition, round)?;
            eprintln!(
                "bench {bench}: round {}/{runs}: {name:<width$} {seconds:.3} s",
                round + 1
            );
            samples[index].push(seconds);
            if let Some(report) = report {
                report_seconds[index].push(report.as_secs_f64());
            }
        }
    }

    println!();
    let rows = conditions
        .iter()
        .zip(samples.iter().zip(&report_seconds))
        .map(|((_, name), (samples, report_seconds))| Row {
            condition: name,
            samples,
            report_seconds,
        })
        .collect::<Vec<_>>();
    print_table("s", &rows);
    Ok(())
}

/// Runs `workload` under the profiler, given `extra_args`, which writes to a fresh directory for
/// `round` in `scratch` (the `profiler-N` of [`print_profiler_line`]).
fn under_profiler(
    profiler: &Path,
    scratch: &Path,
    round: usize,
    extra_args: &[&str],
    workload: impl FnOnce() -> Result<f64>,
) -> Result<Measured> {
    let out_dir = scratch.join(format!("profiler-{round}"));
    fs::create_dir(&out_dir).with_context(|| format!("could not create {}", out_dir.display()))?;
    let (seconds, report) = tracer::under_profiler(profiler, &out_dir, extra_args, workload)?;
    // Reports are not kept; a round's output only has to prove the run completed.
    fs::remove_dir_all(&out_dir)?;
    Ok((seconds, Some(report)))
}

/// One `  label: text` line of a bench's header; labels are padded to `width` characters (colon
/// included) so the texts line up.
fn print_header_line(width: usize, label: &str, text: &str) {
    println!("  {:<width$} {text}", format!("{label}:"));
}

/// The header line saying how the profiler condition `label` runs.
fn print_profiler_line(
    width: usize,
    label: &str,
    profiler: &Path,
    scratch: &Path,
    extra_args: &[&str],
) {
    let cmd = tracer::profiler_command(profiler, &scratch.join("profiler-N"), extra_args);
    print_header_line(
        width,
        label,
        &format!(
            "{}  (started first; workload once it prints \"profiler: attached\"; then SIGINT)",
            util::display(&cmd)
        ),
    );
}

/// Characters of the longest condition name, and at least of the table's "condition" header.
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names
        .map(str::len)
        .chain(["condition".len()])
        .max()
        .unwrap_or_default()
}

/// Median, min and max of one condition's samples.
#[derive(Debug, Clone, Copy)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
}

impl Summary {
    /// `None` for no samples.
    fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (first, last) = (*sorted.first()?, *sorted.last()?);
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            f64::midpoint(sorted[mid - 1], sorted[mid])
        } else {
            sorted[mid]
        };
        Some(Self {
            median,
            min: first,
            max: last,
        })
    }
}

/// One line of the result table.
#[derive(Debug)]
struct Row<'a> {
    condition: &'a str,
    samples: &'a [f64],
    /// Seconds the profiler took to exit after SIGINT (writing its report), when it ran.
    report_seconds: &'a [f64],
}

/// Prints the table; ratios are against the first row, the untraced baseline.
fn print_table(unit: &str, rows: &[Row<'_>]) {
    let width = name_width(rows.iter().map(|row| row.condition));
    let baseline = rows
        .first()
        .and_then(|row| Summary::of(row.samples))
        .map(|summary| summary.median);
    println!(
        "{:<width$} {:>10} {:>10} {:>10} {:>12} {:>16}",
        "condition",
        format!("median {unit}"),
        format!("min {unit}"),
        format!("max {unit}"),
        "vs untraced",
        "report s (med)"
    );
    for row in rows {
        let Some(summary) = Summary::of(row.samples) else {
            continue;
        };
        let ratio = baseline.filter(|base| *base > 0.0).map_or_else(
            || "-".to_owned(),
            |base| format!("{:.2}x", summary.median / base),
        );
        let report = Summary::of(row.report_seconds)
            .map_or_else(|| "-".to_owned(), |report| format!("{:.3}", report.median));
        println!(
            "{:<width$} {:>10.3} {:>10.3} {:>10.3} {:>12} {:>16}",
            row.condition, summary.median, summary.min, summary.max, ratio, report
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_middle_values() {
        let odd = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((even.median, even.min, even.max), (2.5, 1.0, 4.0));
        assert!(Summary::of(&[]).is_none());
    }
}
