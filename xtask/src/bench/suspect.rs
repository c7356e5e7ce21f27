//! `cargo xtask bench suspect`: time to suspect. A planted CPU hog (`burner`) runs on CPU 0 next
//! to a latency-sensitive victim (`waker`) pinned there too, whose waits are the harm that makes
//! a CPU suspect; the other CPUs stay free for the profiler, as on a host where one rogue holds
//! a CPU. Each round
//! launches `profiler diagnose` and measures the wall time from launch until its report.json is
//! in place, checks that the report names the hog suspect #1, and keeps the report's own phase
//! timings.

use std::{
    collections::BTreeMap,
    fs,
    io::Read as _,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{
    Context, SubBench, Summary, prepare,
    results::{Goal, Row},
};
use crate::util;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Rounds; each launches the profiler once.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// `diagnose --duration`.
    #[arg(long, default_value = "1s")]
    duration: String,
}

impl SubBench for Options {
    const NAME: &'static str = "suspect";
    const WORKLOADS: bool = true;

    fn quick() -> Self {
        Self {
            runs: 1,
            duration: "1s".to_owned(),
        }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        run(&ctx.target, self.runs, &self.duration)
    }
}

/// The goal of the issue: a report naming the hog within 3 s of launch.
const GOAL_S: f64 = 3.0;
/// How long the hog burns before the first round, so it is a hog from the start.
const HEAD_START: Duration = Duration::from_millis(500);
/// How often the report's arrival is checked.
const POLL: Duration = Duration::from_millis(2);
/// Nice level of the hog's session (autogroup). The scheduler shares CPUs between sessions
/// first; on a host where other sessions are busy, a hog at the default level gets a fraction
/// of a CPU and is no clear hog. This keeps it burning one whole CPU, as on a quiet host.
const HOG_AUTOGROUP_NICE: &str = "-10";

/// The report phases, in order, as report.json's `own_cost.phases_ms` names them.
const PHASES: [&str; 9] = [
    "startup",
    "attach",
    "sampling",
    "collect",
    "detach",
    "symbolize",
    "analyze",
    "render",
    "total",
];

fn run(target: &Path, runs: u32, duration: &str) -> Result<Vec<Row>> {
    let release = target.join("release");
    let burner = release.join("burner");
    let waker = release.join("waker");
    let profiler = release.join("profiler");
    let scratch = prepare("suspect", &[&burner, &waker, &profiler])?;
    let hog = Hog::plant(&burner, &waker)?;
    let diagnose = |out: &Path| {
        let mut cmd = Command::new(&profiler);
        cmd.args([
            "diagnose",
            "--duration",
            duration,
            "--format",
            "json",
            "--out",
        ])
        .arg(out);
        cmd
    };
    println!("bench suspect: {runs} rounds");
    println!(
        "  hog:      {} --cpu {HOG_CPU} (pid {}; own session, autogroup nice {HOG_AUTOGROUP_NICE}), next to {} --cpu {HOG_CPU}",
        util::display(&Command::new(&burner)),
        hog.pid(),
        waker.display()
    );
    println!(
        "  profiler: {}  (wall time from launch until report.json is in place)",
        util::display(&diagnose(&scratch.path().join("report-N")))
    );
    thread::sleep(HEAD_START);

    let mut to_report = Vec::new();
    let mut to_exit = Vec::new();
    let mut phases: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 1..=runs {
        let out = scratch.path().join(format!("report-{round}"));
        let run = time_to_report(&mut diagnose(&out), &out.join("report.json"))?;
        let report: serde_json::Value = serde_json::from_slice(&run.report)
            .with_context(|| format!("round {round}: report.json is not JSON"))?;
        check_suspect(&report, hog.pid())
            .with_context(|| format!("round {round}: {}", out.display()))?;
        for phase in PHASES {
            if let Some(ms) = report["own_cost"]["phases_ms"][phase].as_f64() {
                phases.entry(phase).or_default().push(ms);
            }
        }
        eprintln!(
            "bench suspect: round {round}/{runs}: report after {:.3} s, exit after {:.3} s",
            run.to_report.as_secs_f64(),
            run.to_exit.as_secs_f64()
        );
        to_report.push(run.to_report.as_secs_f64());
        to_exit.push(run.to_exit.as_secs_f64());
        fs::remove_dir_all(&out)?;
    }
    drop(hog);

    println!();
    for (what, samples) in [
        ("launch to report", &to_report),
        ("launch to exit", &to_exit),
    ] {
        if let Some(s) = Summary::of(samples) {
            println!(
                "  {what:<17} median {:.3} s  min {:.3} s  max {:.3} s",
                s.median, s.min, s.max
            );
        }
    }
    println!("  phases in report.json (median ms):");
    for phase in PHASES {
        if let Some(s) = phases.get(phase).and_then(|ms| Summary::of(ms)) {
            println!("    {phase:<10} {:>8.1}", s.median);
        }
    }
    let mut row = Row::measured(
        Options::NAME,
        format!("launch to report naming the hog #1 (diagnose --duration {duration})"),
        "s",
        &to_report,
    )
    .with_goal(Goal::Max(GOAL_S));
    let phase_medians: Vec<String> = PHASES
        .iter()
        .filter_map(|phase| {
            let median = Summary::of(phases.get(*phase)?)?.median;
            Some(format!("{phase} {median:.0}"))
        })
        .collect();
    row.note = Some(format!("phases, median ms: {}", phase_medians.join(", ")));
    Ok(vec![row])
}

/// The planted hog and its victim: killed when dropped.
struct Hog {
    hog: Child,
    victim: Child,
}

/// The CPU the hog and its victim share.
const HOG_CPU: &str = "0";

impl Hog {
    fn plant(burner: &Path, waker: &Path) -> Result<Self> {
        let mut victim = Command::new(waker);
        victim.args(["--cpu", HOG_CPU]).stdout(Stdio::null());
        let victim = victim
            .spawn()
            .with_context(|| format!("could not start `{}`", util::display(&victim)))?;
        let mut cmd = Command::new(burner);
        cmd.args(["--cpu", HOG_CPU]).stdout(Stdio::null());
        // SAFETY: setsid is async-signal-safe and touches nothing of the parent's.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let hog = match cmd.spawn() {
            Ok(hog) => Self { hog, victim },
            Err(err) => {
                let mut victim = victim;
                let _ = victim.kill();
                let _ = victim.wait();
                return Err(err)
                    .with_context(|| format!("could not start `{}`", util::display(&cmd)));
            }
        };
        let autogroup = format!("/proc/{}/autogroup", hog.pid());
        // Kernels without CONFIG_SCHED_AUTOGROUP have no such file and share CPUs by task.
        if Path::new(&autogroup).exists() {
            fs::write(&autogroup, HOG_AUTOGROUP_NICE)
                .with_context(|| format!("could not set the hog's priority in {autogroup}"))?;
        }
        Ok(hog)
    }

    fn pid(&self) -> u32 {
        self.hog.id()
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        for child in [&mut self.hog, &mut self.victim] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Run {
    to_report: Duration,
    to_exit: Duration,
    report: Vec<u8>,
}

/// Starts `cmd` and waits for `report` to appear (it is renamed into place whole), then for
/// `cmd` to exit successfully.
fn time_to_report(cmd: &mut Command, report: &Path) -> Result<Run> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{}`", util::display(cmd)))?;
    let to_report = loop {
        if report.exists() {
            break start.elapsed();
        }
        if child.try_wait()?.is_some() {
            // The report may have landed just before the exit.
            if report.exists() {
                break start.elapsed();
            }
            bail!(
                "`{}` exited without writing {}: {}",
                util::display(cmd),
                report.display(),
                stderr_of(&mut child)
            );
        }
        thread::sleep(POLL);
    };
    let status = child.wait()?;
    let to_exit = start.elapsed();
    if !status.success() {
        bail!(
            "`{}` exited with {status}: {}",
            util::display(cmd),
            stderr_of(&mut child)
        );
    }
    let report = fs::read(report).with_context(|| format!("reading {}", report.display()))?;
    Ok(Run {
        to_report,
        to_exit,
        report,
    })
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(stderr) = child.stderr.as_mut() {
        let _ = stderr.read_to_string(&mut text);
    }
    text.trim().to_owned()
}

/// Fails unless suspect #1 of `report` is the process `pid`.
fn check_suspect(report: &serde_json::Value, pid: u32) -> Result<()> {
    let first = &report["suspects"][0];
    if first["pid"].as_u64() == Some(u64::from(pid)) {
        return Ok(());
    }
    bail!(
        "suspect #1 is {} (pid {}, {} {} {}), not the planted hog (pid {pid})",
        first["comm"].as_str().unwrap_or("nobody"),
        first["pid"],
        first["resource"].as_str().unwrap_or("-"),
        first["value"],
        first["unit"].as_str().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hog_as_first_suspect_passes() {
        let report = serde_json::json!({"suspects": [
            {"pid": 42, "comm": "burner", "resource": "cpu", "value": 0.99, "unit": "cores"},
            {"pid": 7, "comm": "rustc", "resource": "cpu", "value": 0.5, "unit": "cores"},
        ]});
        check_suspect(&report, 42).unwrap();
        let err = check_suspect(&report, 7).unwrap_err().to_string();
        assert!(err.contains("suspect #1 is burner (pid 42"), "{err}");
        assert!(check_suspect(&serde_json::json!({"suspects": []}), 42).is_err());
    }
}
