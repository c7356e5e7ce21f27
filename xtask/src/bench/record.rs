//! `cargo xtask bench record`: what `profiler record` costs at its defaults. First the slowdown
//! of a process-churn workload under it, next to untraced runs; then one long recording on a
//! busy, churning host, with the recorder's own CPU (BPF run time included, from its reports)
//! and its memory, which must stay flat.

use std::{
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use super::{
    Context, SubBench, prepare, print_header_line,
    results::{Goal, Row},
    run_rounds, time_workload, tracer, under_record,
};
use crate::util;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Rounds of the churn workload; each round runs both conditions once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Children the churn workload starts, one after another.
    #[arg(long, default_value_t = 2000)]
    children: u64,
    /// Length of the long recording (record's default window is 60 s) [default: 150, or 3600
    /// with --long].
    #[arg(long)]
    seconds: Option<u64>,
    /// Processes started per second during the long recording (28/s is 100 000 an hour).
    #[arg(long, default_value_t = 28.0)]
    churn: f64,
    /// The soak: one recording of an hour (`--seconds` 3600 unless given), no churn-workload
    /// rounds; its own table, e.g. `--results bench/record-long.md`.
    #[arg(long)]
    long: bool,
    /// Length of each recording of the `--victim` comparison (rounds: `--runs`).
    #[arg(long, default_value_t = 20)]
    victim_seconds: u64,
}

impl SubBench for Options {
    const NAME: &'static str = "record";
    const WORKLOADS: bool = true;

    fn quick() -> Self {
        Self {
            runs: 1,
            children: 50,
            seconds: Some(3),
            churn: 28.0,
            long: false,
            victim_seconds: 3,
        }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        run(ctx, self)
    }
}

/// Windows shorter than this (the last, cut by the stop) are left out of the CPU row.
const MIN_WINDOW_S: f64 = 1.0;
/// The goals for the recorder's own cost at its defaults.
const CPU_GOAL: Goal = Goal::Max(0.3);
const MEMORY_GOAL: Goal = Goal::Max(64.0);
/// How much higher the second half's resident peak may be than the first half's: flat, give
/// or take one window's symbolization landing at a different moment.
const GROWTH_GOAL: Goal = Goal::Max(4.0);
/// Below this, halves of the run are too short to tell growth from a window's sawtooth.
const GROWTH_MIN_SECONDS: u64 = 600;
/// The long recording's length unless `--seconds` says otherwise.
const SECONDS: u64 = 150;
/// The soak's length unless `--seconds` says otherwise.
const LONG_SECONDS: u64 = 3600;

#[derive(Debug, Clone, Copy)]
enum Condition {
    Untraced,
    Record,
}

const CONDITIONS: [(Condition, &str); 2] = [
    (Condition::Untraced, "untraced"),
    (Condition::Record, "record"),
];

/// How often the recorder's resident memory is sampled during the long run.
const RSS_EVERY: Duration = Duration::from_secs(5);

fn run(ctx: &Context, options: &Options) -> Result<Vec<Row>> {
    let profiler = ctx.release("profiler");
    let spawner = ctx.release("spawner");
    let burner = ctx.release("burner");
    let waker = ctx.release("waker");
    let scratch = prepare(Options::NAME, &[&profiler, &spawner, &burner, &waker])?;
    let churn_workload = || {
        let mut cmd = Command::new(&spawner);
        cmd.args(["--children", &options.children.to_string()]);
        cmd
    };

    if options.long {
        let seconds = options.seconds.unwrap_or(LONG_SECONDS);
        return long_run(
            &profiler,
            &spawner,
            &burner,
            scratch.path(),
            seconds,
            options.churn,
        );
    }
    println!(
        "bench record: {} rounds of a churn workload, then one {} s recording",
        options.runs,
        options.seconds.unwrap_or(SECONDS)
    );
    print_header_line(
        9,
        "workload",
        &format!(
            "{}  (its CPU time and its children's, user + system; wall time in the note)",
            util::display(&churn_workload())
        ),
    );
    print_header_line(
        9,
        "record",
        &format!(
            "{}  (defaults; started first, SIGINT after)",
            util::display(&tracer::record_command(
                &profiler,
                &scratch.path().join("record-N")
            )?)
        ),
    );
    let mut rows = run_rounds(
        Options::NAME,
        "s CPU",
        options.runs,
        &CONDITIONS,
        |condition, round| match condition {
            Condition::Untraced => Ok(time_workload(&mut churn_workload())?.into()),
            Condition::Record => {
                let out = scratch.path().join(format!("record-{round}"));
                under_record(
                    &profiler,
                    &out,
                    &[],
                    || time_workload(&mut churn_workload()),
                )
            }
        },
    )?;

    rows.extend(long_run(
        &profiler,
        &spawner,
        &burner,
        scratch.path(),
        options.seconds.unwrap_or(SECONDS),
        options.churn,
    )?);
    rows.extend(victim_cost(ctx, &profiler, scratch.path(), options)?);
    Ok(rows)
}

#[derive(Debug, Clone, Copy)]
enum Watching {
    Nothing,
    Victim,
}

/// What `--victim` adds to the recorder's own CPU: the same recording with and without it,
/// alternately, on a host where two wakers (the victim, two processes of one name) wait behind
/// a burner on every CPU, so each tick has their time and culprits to account for.
fn victim_cost(
    ctx: &Context,
    profiler: &Path,
    scratch: &Path,
    options: &Options,
) -> Result<Vec<Row>> {
    let seconds = options.victim_seconds;
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "bench record: --victim: {} rounds of {seconds} s recordings with and without `--victim \
         waker` and a victim rule, {cpus} burners and 2 wakers running",
        options.runs
    );
    let lasting = (seconds * 2 * u64::from(options.runs) + 60).to_string();
    let mut load: Vec<Child> = (0..cpus + 2)
        .map(|index| {
            let exe = if index < cpus { "burner" } else { "waker" };
            Command::new(ctx.release(exe))
                .args(["--seconds", lasting.as_str()])
                .stdout(Stdio::null())
                .spawn()
                .context("starting the load")
        })
        .collect::<Result<_>>()?;
    let window = format!("{}s", (seconds / 4).max(1));
    let conditions = [
        (Watching::Nothing, "own-cpu, no --victim"),
        (Watching::Victim, "own-cpu, --victim"),
    ];
    let rows = run_rounds(
        Options::NAME,
        "% of a core",
        options.runs,
        &conditions,
        |watching, round| {
            let out = scratch.join(format!("victim-{round}"));
            let mut args = vec!["--window", window.as_str()];
            if let Watching::Victim = watching {
                args.extend(["--victim", "waker"]);
                args.extend(["--alert", "victim.runq_wait_ratio > 0.5 for 10s"]);
            }
            tracer::under_record(profiler, &out, &args, |_| {
                thread::sleep(Duration::from_secs(seconds));
                Ok(())
            })?;
            let percents: Vec<f64> = windows(&out)?
                .iter()
                .filter(|report| report["duration_s"].as_f64().unwrap_or(0.0) >= MIN_WINDOW_S)
                .filter_map(|report| report["own_cost"]["cpu_percent_of_one_core"].as_f64())
                .collect();
            fs::remove_dir_all(&out)?;
            let median = super::results::Summary::of(&percents).map_or(0.0, |s| s.median);
            Ok(median.into())
        },
    );
    for mut child in load.drain(..) {
        let _ = child.kill();
        let _ = child.wait();
    }
    rows
}

/// The report.json of every window under `out`, oldest first.
fn windows(out: &Path) -> Result<Vec<serde_json::Value>> {
    let mut dirs: Vec<_> = fs::read_dir(out)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|dir| {
            let path = dir.join("report.json");
            let bytes =
                fs::read(&path).with_context(|| format!("could not read {}", path.display()))?;
            Ok(serde_json::from_slice(&bytes)?)
        })
        .collect()
}

/// One recording at defaults while every CPU is half busy and processes come and go at `churn`
/// per second; rows of the recorder's CPU per window and its peak memory.
fn long_run(
    profiler: &Path,
    spawner: &Path,
    burner: &Path,
    scratch: &Path,
    seconds: u64,
    churn: f64,
) -> Result<Vec<Row>> {
    let out = scratch.join("long");
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "bench record: long run: {seconds} s of `profiler record` at defaults, {churn} \
         processes/s of churn, {cpus} burners"
    );
    let mut load: Vec<Child> = (0..cpus)
        .map(|_| {
            Command::new(burner)
                .args(["--seconds", &(seconds + 30).to_string()])
                .stdout(Stdio::null())
                .spawn()
                .context("starting a burner")
        })
        .collect::<Result<_>>()?;
    let children = (churn * (seconds + 30) as f64) as u64;
    load.push(
        Command::new(spawner)
            .args(["--children", &children.to_string()])
            .args(["--per-second", &churn.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .context("starting the spawner")?,
    );
    let mut rss = Vec::new();
    let result = tracer::under_record(profiler, &out, &[], |pid| {
        let start = Instant::now();
        let end = Duration::from_secs(seconds);
        while start.elapsed() < end {
            thread::sleep(RSS_EVERY.min(end.saturating_sub(start.elapsed())));
            rss.push((start.elapsed().as_secs(), vm_rss_kib(pid)?));
        }
        Ok(())
    });
    for mut child in load {
        let _ = child.kill();
        let _ = child.wait();
    }
    result?;

    let mut percents = Vec::new();
    let mut peaks = Vec::new();
    for report in windows(&out)? {
        let cost = &report["own_cost"];
        let percent = cost["cpu_percent_of_one_core"]
            .as_f64()
            .with_context(|| format!("a window of {} has no own_cost", out.display()))?;
        let peak = cost["peak_rss_bytes"].as_f64().unwrap_or(0.0) / f64::from(1 << 20);
        eprintln!(
            "bench record: window at {}: {:.1} s, own CPU {percent:.3} % of a core (BPF {:.1} \
             ms), peak RSS {peak:.1} MiB",
            report["started_at"].as_str().unwrap_or("?"),
            report["duration_s"].as_f64().unwrap_or(0.0),
            cost["bpf_run_time_ns"].as_f64().unwrap_or(0.0) / 1e6,
        );
        // A window the stop cut to a moment holds the cost of stopping, not of recording.
        if report["duration_s"].as_f64().unwrap_or(0.0) >= MIN_WINDOW_S {
            percents.push(percent);
        }
        peaks.push(peak);
    }
    fs::remove_dir_all(&out)?;

    let listed = |values: &[f64]| {
        values
            .iter()
            .map(|value| format!("{value:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    let rss_note = match (rss.first(), rss.last(), rss.iter().map(|r| r.1).max()) {
        (Some(first), Some(last), Some(max)) => format!(
            "; resident {:.1} MiB at {} s, {:.1} MiB at {} s, max {:.1} MiB",
            mib(first.1),
            first.0,
            mib(last.1),
            last.0,
            mib(max)
        ),
        _ => String::new(),
    };
    let cpu = Row {
        note: Some(format!(
            "per window of {MIN_WINDOW_S} s or more: {} (the first includes start-up); BPF run \
             time included",
            listed(&percents)
        )),
        ..Row::measured(Options::NAME, "own-cpu", "% of a core", &percents).with_goal(CPU_GOAL)
    };
    // The high-water mark only grows, so the run's peak is the largest; one figure per run.
    let peak = peaks.iter().copied().reduce(f64::max);
    let memory = Row {
        note: Some(format!("VmHWM per window: {}{rss_note}", listed(&peaks))),
        ..Row::measured(Options::NAME, "peak-rss", "MiB", peak.as_slice()).with_goal(MEMORY_GOAL)
    };
    let mut rows = vec![cpu, memory];
    if seconds >= GROWTH_MIN_SECONDS {
        rows.push(growth(&rss));
    }
    Ok(rows)
}

/// The second half's resident peak over the first half's, from the samples taken every
/// [`RSS_EVERY`]: a leak lifts the later peak, a window's passing sawtooth does not.
fn growth(rss: &[(u64, u64)]) -> Row {
    let (first, second) = rss.split_at(rss.len() / 2);
    let peak = |half: &[(u64, u64)]| half.iter().map(|r| r.1).max().unwrap_or(0) as f64 / 1024.0;
    let (early, late) = (peak(first), peak(second));
    Row {
        note: Some(format!(
            "resident peak {early:.1} MiB in the first half, {late:.1} MiB in the second ({} samples)",
            rss.len()
        )),
        ..Row::measured(Options::NAME, "rss-growth", "MiB", &[late - early]).with_goal(GROWTH_GOAL)
    }
}

fn vm_rss_kib(pid: u32) -> Result<u64> {
    tracer::status_kib(pid, "VmRSS")
}
