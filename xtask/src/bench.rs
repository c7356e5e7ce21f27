//! `cargo xtask bench`: how much the profiler slows workloads down, next to untraced runs and
//! other tracers (`perf record`, bpftrace, syscount), and what it costs itself. The umbrella runs
//! every sub-bench (or one), gathers their result rows and writes `bench/results.md`; shared here:
//! privilege handling, timing and alternating rounds.

mod cpu;
mod escalation;
mod fidelity;
mod floor;
mod machine;
mod record;
mod redis;
mod render;
mod results;
mod sched;
mod starved;
mod suspect;
mod syscalls;
mod timing;
mod tracer;
mod verdict;

use std::{
    env, fs,
    net::{Ipv4Addr, TcpListener},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use clap::Args as _;
use results::{Row, Summary};
use tempfile::TempDir;
use timing::{Timed, time_workload};

use crate::{setup, util};

/// One sub-bench: its options are its subcommand's arguments (clap's defaults are the full run's
/// sizes), and it hands back one row per condition.
trait SubBench: clap::Args + clap::FromArgMatches + Clone {
    /// Its name in the table and on the command line.
    const NAME: &'static str;
    /// Whether it runs the workload programs of `profiler-tests` (built before it runs).
    const WORKLOADS: bool;
    /// Options for `--quick`: tiny sizes and one round.
    fn quick() -> Self;
    fn run(&self, ctx: &Context) -> Result<Vec<Row>>;
}

/// What every sub-bench gets.
#[derive(Debug)]
pub struct Context {
    /// Cargo's target directory; binaries are in `release/`.
    target: PathBuf,
}

impl Context {
    fn release(&self, binary: &str) -> PathBuf {
        self.target.join("release").join(binary)
    }
}

/// The sub-benches, in the order `cargo xtask bench` runs them: a new one is a module plus one
/// line here. The doc comment is its `--help` text and its line in `bench/results.md`.
macro_rules! sub_benches {
    ($($(#[doc = $doc:literal])* $variant:ident($options:ty),)*) => {
        #[derive(Debug, Clone, clap::Subcommand)]
        enum Kind {
            $($(#[doc = $doc])* #[command(name = <$options as SubBench>::NAME)] $variant($options),)*
        }

        impl Kind {
            fn all(quick: bool) -> Vec<Self> {
                vec![$(Self::$variant(options::<$options>(quick)),)*]
            }

            fn name(&self) -> &'static str {
                match self { $(Self::$variant(_) => <$options as SubBench>::NAME,)* }
            }

            fn workloads(&self) -> bool {
                match self { $(Self::$variant(_) => <$options as SubBench>::WORKLOADS,)* }
            }

            fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
                match self { $(Self::$variant(options) => options.run(ctx),)* }
            }
        }
    };
}

sub_benches! {
    /// Wall time of a getppid storm: untraced, under an empty sys_enter program (the floor of
    /// any syscall hook), under diagnose's syscall signals and defaults, under record's
    /// always-on tier, under bpftrace and under libbpf-tools' syscount.
    Syscalls(syscalls::Options),
    /// CPU time of a fixed CPU-bound workload: untraced, under `profiler diagnose` (stacks
    /// walked with unwind tables, and by frame pointers), under `perf record -a -g` and `-a
    /// --call-graph dwarf`, and under profile-bee.
    Cpu(cpu::Options),
    /// Cost of context-switch accounting (`perf bench sched pipe`), and of scanning
    /// /proc/PID/schedstat instead.
    Sched(sched::Options),
    /// Throughput of `redis-benchmark` against a private `redis-server`, untraced and under
    /// `profiler record`: its always-on tier, an incident, its defaults, the old exact signals.
    Redis(redis::Options),
    /// What `profiler record` costs at its defaults: a churn workload untraced and recorded,
    /// then one long recording of a busy, churning host (own CPU with BPF time, memory).
    Record(record::Options),
    /// Time to incident: a syscall storm or a loopback flood planted under `profiler record` at
    /// its defaults, until an incident window naming it suspect #1 is on disk.
    Escalation(escalation::Options),
    /// `profiler record` while sixteen CPU hogs at nice -20 hold every CPU, at real-time
    /// priority and with `--no-realtime`: window lengths, `/metrics` answer times, and how much
    /// longer the hogs take to do their work than untraced (what the priority costs).
    Starved(starved::Options),
    /// Time to suspect: launch of `profiler diagnose` to a report naming a planted CPU hog
    /// suspect #1, with the report's own phase timings.
    Suspect(suspect::Options),
    /// A million samples over fifty thousand stacks of real addresses symbolized and rendered
    /// (folded, flamegraph, pprof, html, report.json) as diagnose does after sampling.
    Render(render::Options),
    /// Fidelity: a 60/30/10 workload's CPU share against /proc and its frame shares against
    /// `perf record -g` on the same run (the `fidelity` end-to-end test, its figures read back).
    Fidelity(fidelity::Options),
    /// Precision and recall of the verdict: the scenario tests (idle host, busy but harmless,
    /// hogs, noisy neighbour, applications, storms, floods, writers, memory, writeback), each
    /// asserting its exact suspect set, run several times and tallied.
    Verdict(verdict::Options),
}

/// The options clap gives `T` when the command line names none: the full run's sizes.
fn options<T: SubBench>(quick: bool) -> T {
    if quick {
        return T::quick();
    }
    let cmd = T::augment_args(clap::Command::new(T::NAME));
    T::from_arg_matches(&cmd.get_matches_from([T::NAME]))
        .expect("every option of a sub-bench has a default")
}

#[derive(Debug, clap::Args)]
// `--quick` is for the whole set; a single sub-bench takes its own small sizes.
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// One sub-bench; without one, every sub-bench runs, one after another.
    #[command(subcommand)]
    kind: Option<Kind>,
    /// Every sub-bench with tiny sizes and one round, to check that they work (CI); fails when
    /// one cannot run, not when a goal is unmet. Writes target/bench-quick.md unless --results.
    #[arg(long)]
    quick: bool,
    /// Where the markdown results go: default bench/results.md for a full run; a single sub-bench
    /// writes none unless given this.
    #[arg(long, global = true, value_name = "PATH")]
    results: Option<PathBuf>,
    /// Set by the re-exec under sudo: setup and builds already ran as the calling user, whose
    /// target directory this is.
    #[arg(long, global = true, hide = true, value_name = "TARGET_DIR")]
    prepared: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<()> {
    let benches = match &args.kind {
        Some(kind) => vec![kind.clone()],
        None => Kind::all(args.quick),
    };
    let target = match &args.prepared {
        Some(target) => target.clone(),
        None => {
            setup::run(setup::Needs::Bench)?;
            let target = util::target_dir()?;
            build(benches.iter().any(Kind::workloads))?;
            target
        }
    };
    if !util::is_root() {
        return reexec_as_root(&target);
    }
    let workspace = util::workspace_root();
    let results = args
        .results
        .clone()
        .or_else(|| match (&args.kind, args.quick) {
            (Some(_), _) => None,
            (None, true) => Some(target.join("bench-quick.md")),
            (None, false) => Some(workspace.join("bench").join("results.md")),
        });
    let ctx = Context { target };
    // Gathered before the run, so the commit is the one that was measured.
    let facts = machine::facts(&workspace);

    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for bench in &benches {
        let started = Instant::now();
        eprintln!("\n== bench {} ==", bench.name());
        match bench.run(&ctx) {
            Ok(bench_rows) => rows.extend(bench_rows),
            // The other sub-benches still run: one broken peer must not cost the whole table.
            Err(err) => {
                eprintln!("bench {}: failed: {err:#}", bench.name());
                rows.push(Row::skipped(
                    bench.name(),
                    "(all)",
                    format!("failed: {}", first_line(&format!("{err:#}"))),
                ));
                failed.push(bench.name());
            }
        }
        eprintln!(
            "bench {}: done in {:.0} s",
            bench.name(),
            started.elapsed().as_secs_f64()
        );
    }

    println!("\n{}", results::table(&rows));
    if let Some(path) = results {
        let command = match (&args.kind, args.quick) {
            (Some(kind), _) => format!("cargo xtask bench {}", kind.name()),
            (None, true) => "cargo xtask bench --quick".to_owned(),
            (None, false) => "cargo xtask bench".to_owned(),
        };
        let command_line = Args::augment_args(clap::Command::new("bench"));
        let about = |name: &str| {
            command_line
                .find_subcommand(name)
                .and_then(clap::Command::get_about)
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        let benches: Vec<_> = benches
            .iter()
            .map(|bench| (bench.name(), about(bench.name())))
            .collect();
        results::write_markdown(&path, &command, &facts, &benches, &rows)?;
        println!("results written to {}", path.display());
    }
    if !failed.is_empty() {
        bail!("sub-bench(es) failed to run: {}", failed.join(", "));
    }
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// A TCP port on loopback that nothing listens on now, for a server the bench starts (redis, the
/// recorder's metrics), so benches never collide with another user of a fixed port.
fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("could not bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Separate cargo invocations, not one with two `-p`: features unify across the packages of one
/// build, which would give a profiler binary different from the one `test` and `run` build.
fn build(with_workloads: bool) -> Result<()> {
    let workspace = util::workspace_root();
    util::run_step_quiet_stdout(
        "build profiler",
        util::cargo()
            // The render example is the render sub-bench's workload.
            .args([
                "build",
                "--release",
                "-p",
                "profiler",
                "--bins",
                "--examples",
            ])
            .current_dir(&workspace),
    )?;
    if with_workloads {
        util::run_step_quiet_stdout(
            "build workloads",
            util::cargo()
                .args(["build", "--release", "-p", "profiler-tests", "--bins"])
                .current_dir(&workspace),
        )?;
        let mut tests = util::cargo();
        tests.args(["test", "--release", "-p", "profiler-tests", "--no-run"]);
        for test in std::iter::once("fidelity").chain(verdict::TESTS) {
            tests.args(["--test", test]);
        }
        util::run_step_quiet_stdout(
            "build the fidelity and verdict tests",
            tests.current_dir(&workspace),
        )?;
    }
    Ok(())
}

/// The newest `<name>-<hash>` test executable cargo built (see `build`).
fn release_test(target: &Path, name: &str) -> Result<PathBuf> {
    let deps = target.join("release").join("deps");
    let prefix = format!("{name}-");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(&deps)
        .with_context(|| format!("could not list {}", deps.display()))?
        .filter_map(Result::ok)
        .filter(|entry| {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            file.strip_prefix(&prefix)
                .is_some_and(|hash| hash.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, path)| path)
        .with_context(|| format!("the {name} test is not built: `cargo xtask bench` builds it"))
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

/// What one run of a condition measured: its figure, the workload's wall seconds where the
/// figure is its CPU time, and how long the profiler took to exit after SIGINT (writing its
/// report) when the condition ran it.
#[derive(Debug, Clone, Copy)]
struct Measured {
    value: f64,
    wall: Option<f64>,
    report: Option<Duration>,
    /// The tracer's own CPU seconds over its life, beside what it charged to the workload.
    tracer_cpu: Option<f64>,
}

/// A figure the workload reports itself (a total time, requests per second).
impl From<f64> for Measured {
    fn from(value: f64) -> Self {
        Self {
            value,
            wall: None,
            report: None,
            tracer_cpu: None,
        }
    }
}

/// CPU time is the figure: on a host shared with other work, a workload's wall time mostly
/// measures how long it waited for a CPU, while a tracer's cost in its context (probes in its
/// syscalls, sampling interrupts) is charged to its CPU time.
impl From<Timed> for Measured {
    fn from(timed: Timed) -> Self {
        Self {
            value: timed.cpu,
            wall: Some(timed.wall),
            report: None,
            tracer_cpu: None,
        }
    }
}

/// Measures `workload` under `profiler record` (its defaults but for `extra_args`) writing into
/// `out`, which is removed afterwards; the figure is the workload's, with the recorder's exit
/// time after SIGINT.
fn under_record<T: Into<Measured>>(
    profiler: &Path,
    out: &Path,
    extra_args: &[&str],
    workload: impl FnOnce() -> Result<T>,
) -> Result<Measured> {
    let (figure, stop) = tracer::under_record(profiler, out, extra_args, |_| workload())?;
    fs::remove_dir_all(out)?;
    Ok(Measured {
        report: Some(stop),
        ..figure.into()
    })
}

/// Runs every condition once per round, printing a progress line per run, and returns a row per
/// condition with figures in `unit`. `conditions` name each condition; the first is the baseline
/// the ratios compare with. `run` measures one condition in one round (counted from 0).
fn run_rounds<C: Copy>(
    bench: &'static str,
    unit: &'static str,
    runs: u32,
    conditions: &[(C, &str)],
    mut run: impl FnMut(C, usize) -> Result<Measured>,
) -> Result<Vec<Row>> {
    let width = name_width(conditions.iter().map(|(_, name)| *name));
    let mut samples = vec![Vec::new(); conditions.len()];
    let mut walls = vec![Vec::new(); conditions.len()];
    let mut tracer_cpus = vec![Vec::new(); conditions.len()];
    for round in 0..runs as usize {
        // Rotating the order keeps any drift (thermal, page cache, the neighbours' load) from
        // always hitting the same condition.
        for offset in 0..conditions.len() {
            let index = (round + offset) % conditions.len();
            let (condition, name) = conditions[index];
            let measured = run(condition, round)?;
            let wall = measured
                .wall
                .map_or_else(String::new, |wall| format!("  (wall {wall:.3} s)"));
            let report = measured.report.map_or_else(String::new, |report| {
                format!("  (report written in {:.3} s)", report.as_secs_f64())
            });
            eprintln!(
                "bench {bench}: round {}/{runs}: {name:<width$} {:.3} {unit}{wall}{report}",
                round + 1,
                measured.value
            );
            samples[index].push(measured.value);
            walls[index].extend(measured.wall);
            tracer_cpus[index].extend(measured.tracer_cpu);
        }
    }
    let mut rows: Vec<Row> = conditions
        .iter()
        .zip(&samples)
        .map(|((_, name), samples)| Row::measured(bench, *name, unit, samples))
        .collect();
    let baseline = |values: &[f64]| Summary::of(values).map(|s| s.median).filter(|m| *m > 0.0);
    let base_wall = walls.first().and_then(|first| baseline(first));
    let base = samples.first().cloned().unwrap_or_default();
    for (index, ((row, samples), walls)) in rows.iter_mut().zip(&samples).zip(&walls).enumerate() {
        let paired = paired_ratios(samples, &base);
        row.ratio = Summary::of(&paired).map(|s| s.median);
        let mut notes = Vec::new();
        if let Some(tracer) = Summary::of(&tracer_cpus[index]) {
            notes.push(format!(
                "the tracer's own CPU over its life {:.3} s (median; the profiler's includes \
                 naming the stacks and writing its report)",
                tracer.median
            ));
        }
        if let (Some(base_wall), Some(wall)) = (base_wall, Summary::of(walls)) {
            notes.push(format!(
                "wall time {:.3} s, {:.2}x",
                wall.median,
                wall.median / base_wall
            ));
        }
        if let Some((low, high)) = middle_half(&paired).filter(|_| index > 0) {
            notes.push(format!("round ratios' middle half {low:.3}x – {high:.3}x"));
        }
        row.note = (!notes.is_empty()).then(|| notes.join("; "));
    }
    Ok(rows)
}

/// Each round's figure over the baseline's in the same round: the ratio's median over these,
/// not a ratio of medians, so drift between rounds (the neighbours' load, clock speed) cancels
/// out in each pair instead of adding to the spread.
fn paired_ratios(samples: &[f64], base: &[f64]) -> Vec<f64> {
    samples
        .iter()
        .zip(base)
        .filter(|&(_, &base)| base > 0.0)
        .map(|(value, base)| value / base)
        .collect()
}

/// The first and third quartiles of `values` (nearest rank), from four values up: how far
/// apart the rounds' ratios fall, which says what difference a median of them can resolve.
fn middle_half(values: &[f64]) -> Option<(f64, f64)> {
    if values.len() < 4 {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    Some((at(0.25), at(0.75)))
}

/// Runs `workload` under the profiler, given `extra_args`, which writes to a fresh directory for
/// `round` in `scratch` (the `profiler-N` of [`print_profiler_line`]).
fn under_profiler<T: Into<Measured>>(
    profiler: &Path,
    scratch: &Path,
    round: usize,
    extra_args: &[&str],
    workload: impl FnOnce() -> Result<T>,
) -> Result<Measured> {
    let out_dir = scratch.join(format!("profiler-{round}"));
    fs::create_dir(&out_dir).with_context(|| format!("could not create {}", out_dir.display()))?;
    let (measured, report) = tracer::under_profiler(profiler, &out_dir, extra_args, workload)?;
    // Reports are not kept; a round's output only has to prove the run completed.
    fs::remove_dir_all(&out_dir)?;
    Ok(Measured {
        report: Some(report),
        tracer_cpu: Some(tracer::last_tracer_cpu().as_secs_f64()),
        ..measured.into()
    })
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

/// Characters of the longest condition name, and at least of the word "condition".
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names
        .map(str::len)
        .chain(["condition".len()])
        .max()
        .unwrap_or_default()
}

/// The row of a condition whose peer tool is missing: skipped, saying what installs it.
fn missing_tool(bench: &'static str, condition: &str, command: &str, install: &str) -> Row {
    Row::skipped(
        bench,
        condition,
        format!("skipped: `{command}` is not installed ({install})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_run_options_are_the_clap_defaults() {
        let Kind::Cpu(cpu) = Kind::all(false).remove(1) else {
            panic!("the second sub-bench is cpu");
        };
        let parsed = Args::augment_args(clap::Command::new("bench"))
            .try_get_matches_from(["bench", "cpu"])
            .unwrap();
        let Some(Kind::Cpu(from_line)) = <Args as clap::FromArgMatches>::from_arg_matches(&parsed)
            .unwrap()
            .kind
        else {
            panic!("`bench cpu` is the cpu sub-bench");
        };
        assert_eq!(format!("{cpu:?}"), format!("{from_line:?}"));
    }

    #[test]
    fn every_sub_bench_has_a_distinct_name_and_help() {
        let command = Args::augment_args(clap::Command::new("bench"));
        let mut names: Vec<_> = Kind::all(true).iter().map(Kind::name).collect();
        for name in &names {
            let sub = command.find_subcommand(name).unwrap();
            assert!(sub.get_about().is_some(), "{name} has no help text");
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Kind::all(true).len());
    }

    #[test]
    fn rounds_alternate_and_compare_with_the_first_condition() {
        let mut order = Vec::new();
        let rows = run_rounds(
            "t",
            "s",
            3,
            &[(1.0, "base"), (2.0, "double")],
            |value, round| {
                order.push((round, value));
                let value = value * (1.0 + round as f64 / 10.0);
                Ok(Measured {
                    wall: Some(value * 3.0),
                    ..Measured::from(value)
                })
            },
        )
        .unwrap();
        // Round 1 starts with the second condition.
        assert_eq!(order[..4], [(0, 1.0), (0, 2.0), (1, 2.0), (1, 1.0)]);
        assert_eq!(rows.len(), 2);
        assert!((rows[0].ratio.unwrap() - 1.0).abs() < 1e-9);
        assert!((rows[1].ratio.unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(rows[1].runs, 3);
        // Medians 1.1 and 2.2, wall times three times that; three rounds give no quartiles.
        assert_eq!(rows[1].note.as_deref(), Some("wall time 6.600 s, 2.00x"));
    }

    #[test]
    fn ratios_pair_each_round_with_its_own_baseline() {
        // The host got twice as fast in the last rounds: each round's ratio is 0.9, while the
        // medians alone would say 0.9 * 2 / 1 = 1.8.
        let base = [10.0, 10.0, 20.0, 20.0, 20.0];
        let traced = [9.0, 9.0, 18.0, 18.0, 18.0];
        let paired = paired_ratios(&traced, &base);
        assert!(paired.iter().all(|r| (r - 0.9).abs() < 1e-9), "{paired:?}");
        assert_eq!(middle_half(&[1.0, 2.0, 3.0]), None);
        assert_eq!(middle_half(&[4.0, 1.0, 3.0, 2.0, 5.0]), Some((2.0, 4.0)));
    }
}
