//! `cargo xtask bench escalation`: time to incident. `profiler record` runs at its defaults
//! (no hook per syscall or per packet); a syscall storm or a loopback flood is planted, and the
//! figure is the wall time from its start until an incident window naming it suspect #1 is on
//! disk (checked each round); and the recorder's peak memory through the incident, whose second
//! session and symbolization come on top of the always-on one.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{
    Context, SubBench, prepare,
    results::{Goal, Row},
    tracer,
};
use crate::util;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Rounds per workload; each starts a fresh recorder.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

impl SubBench for Options {
    const NAME: &'static str = "escalation";
    const WORKLOADS: bool = true;

    fn quick() -> Self {
        Self { runs: 1 }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        run(&ctx.target, self.runs)
    }
}

/// The goal: an incident window naming the planted workload within 15 s of its start.
const GOAL_S: f64 = 15.0;
/// Host pressure left unwatched: on a small host a storm or a flood may also starve the CPUs,
/// and the pressure trigger would race the syscall trigger whose time is measured.
const NO_PRESSURE: [&str; 2] = ["--escalate-pressure", "off"];
/// The recorder's peak resident memory, incidents included: the same goal as without.
const MEMORY_GOAL_MIB: f64 = 64.0;
/// Give up on a round after this long.
const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// The planted workloads: name, binary, arguments (both run well past their incident).
const WORKLOADS: [(&str, &str, &[&str]); 2] = [
    (
        "syscall storm",
        "storm",
        &["--getppid", "100000", "--loop-seconds", "40"],
    ),
    (
        "loopback flood",
        "netblast",
        &["--bytes", "100000000", "--loop-seconds", "40"],
    ),
];

fn run(target: &Path, runs: u32) -> Result<Vec<Row>> {
    let release = target.join("release");
    let profiler = release.join("profiler");
    let scratch = prepare(Options::NAME, &[&profiler])?;
    println!("bench escalation: {runs} rounds per workload");
    println!(
        "  record:   {} {}  (defaults, host pressure unwatched; workload once it prints \
         \"profiler: attached\")",
        util::display(&tracer::record_command(
            &profiler,
            &scratch.path().join("rec-N")
        )?),
        NO_PRESSURE.join(" ")
    );
    let mut rows = Vec::new();
    for (name, binary, args) in WORKLOADS {
        let mut workload = Command::new(release.join(binary));
        workload.args(args);
        println!("  {name}: {}", util::display(&workload));
        let mut times = Vec::new();
        let mut peaks = Vec::new();
        for round in 1..=runs {
            let out = scratch.path().join(format!("rec-{binary}-{round}"));
            let (seconds, peak) = time_to_incident(&profiler, &out, &mut workload)
                .with_context(|| format!("{name}, round {round}"))?;
            eprintln!(
                "bench escalation: {name} round {round}/{runs}: {seconds:.1} s, recorder peak \
                 {peak:.1} MiB"
            );
            times.push(seconds);
            peaks.push(peak);
            fs::remove_dir_all(&out)?;
        }
        rows.push(
            Row::measured(
                Options::NAME,
                format!("{name} to its incident window"),
                "s",
                &times,
            )
            .with_goal(Goal::Max(GOAL_S)),
        );
        rows.push(
            Row::measured(
                Options::NAME,
                format!("{name}: recorder peak RSS"),
                "MiB",
                &peaks,
            )
            .with_goal(Goal::Max(MEMORY_GOAL_MIB)),
        );
    }
    Ok(rows)
}

/// Seconds from the workload's start to its incident window on disk, under a fresh recorder,
/// and the recorder's peak resident memory (VmHWM, MiB) once the window is written.
fn time_to_incident(profiler: &Path, out: &Path, workload: &mut Command) -> Result<(f64, f64)> {
    let (measured, _) = tracer::under_record(profiler, out, &NO_PRESSURE, |recorder| {
        let started = Instant::now();
        let child = Planted(workload.stdout(Stdio::null()).spawn()?);
        let report = wait_incident(out, started)?;
        let seconds = started.elapsed().as_secs_f64();
        check_named(&report, child.0.id())?;
        Ok((seconds, peak_rss_mib(recorder)?))
    })?;
    Ok(measured)
}

fn peak_rss_mib(pid: u32) -> Result<f64> {
    Ok(tracer::status_kib(pid, "VmHWM")? as f64 / 1024.0)
}

/// The first incident window's report.json under `out`, once it is in place.
fn wait_incident(out: &Path, started: Instant) -> Result<PathBuf> {
    loop {
        let found = fs::read_dir(out).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .find(|path| path.to_string_lossy().ends_with("-incident"))
        });
        if let Some(dir) = found {
            return Ok(dir.join("report.json"));
        }
        if started.elapsed() > DEADLINE {
            bail!(
                "no incident window in {} within {DEADLINE:?}",
                out.display()
            );
        }
        thread::sleep(POLL);
    }
}

fn check_named(report: &Path, pid: u32) -> Result<()> {
    let text = fs::read(report).with_context(|| format!("reading {}", report.display()))?;
    let report: serde_json::Value = serde_json::from_slice(&text)?;
    let first = &report["suspects"][0];
    if first["pid"] != pid {
        bail!("suspect #1 is {first}, not the planted pid {pid}");
    }
    Ok(())
}

/// The planted workload: killed when dropped.
struct Planted(Child);

impl Drop for Planted {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
