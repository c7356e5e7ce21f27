//! `cargo xtask bench record`: what `profiler record` costs at its defaults. First the slowdown
//! of a process-churn workload under it, next to untraced runs; then one long recording on a
//! busy, churning host, with the recorder's own CPU (BPF run time included, from its reports)
//! and resident memory over time, which must stay flat.

use std::{
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use super::{Summary, prepare, print_header_line, run_rounds, time_workload, tracer};
use crate::util;

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

pub fn run(target: &Path, runs: u32, children: u64, seconds: u64, churn: f64) -> Result<()> {
    let release = target.join("release");
    let profiler = release.join("profiler");
    let spawner = release.join("spawner");
    let burner = release.join("burner");
    let scratch = prepare("record", &[&profiler, &spawner, &burner])?;
    let record = |out: &Path| {
        let mut cmd = Command::new(&profiler);
        cmd.arg("record").arg("--out").arg(out);
        cmd
    };
    let churn_workload = || {
        let mut cmd = Command::new(&spawner);
        cmd.args(["--children", &children.to_string()]);
        cmd
    };

    println!("bench record: {runs} rounds of a churn workload, then one {seconds} s recording");
    print_header_line(9, "workload", &util::display(&churn_workload()));
    print_header_line(
        9,
        "record",
        &format!(
            "{}  (defaults; started first, SIGINT after)",
            util::display(&record(&scratch.path().join("record-N")))
        ),
    );
    run_rounds(
        "record",
        runs,
        &CONDITIONS,
        |condition, round| match condition {
            Condition::Untraced => Ok((time_workload(&mut churn_workload())?, None)),
            Condition::Record => {
                let out = scratch.path().join(format!("record-{round}"));
                let (seconds, stop) = tracer::under(
                    "profiler record",
                    &mut record(&out),
                    tracer::Ready::Line("profiler: attached", Duration::ZERO),
                    || time_workload(&mut churn_workload()),
                )?;
                fs::remove_dir_all(&out)?;
                Ok((seconds, Some(stop)))
            }
        },
    )?;

    println!();
    long_run(&profiler, &spawner, &burner, scratch.path(), seconds, churn)
}

/// One recording at defaults while every CPU is half busy and processes come and go at `churn`
/// per second; prints the recorder's cost per window and its memory over time.
fn long_run(
    profiler: &Path,
    spawner: &Path,
    burner: &Path,
    scratch: &Path,
    seconds: u64,
    churn: f64,
) -> Result<()> {
    let out = scratch.join("long");
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "long run: {seconds} s of `profiler record` at defaults, {churn} processes/s of churn, \
         {cpus} burners"
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
    let result = tracer::under(
        "profiler record",
        Command::new(profiler).arg("record").arg("--out").arg(&out),
        tracer::Ready::Line("profiler: attached", Duration::ZERO),
        || {
            let start = Instant::now();
            let pid = newest_pid("profiler")?;
            while start.elapsed() < Duration::from_secs(seconds) {
                thread::sleep(RSS_EVERY);
                rss.push((start.elapsed().as_secs(), vm_rss_kib(pid)?));
            }
            Ok(())
        },
    );
    for mut child in load {
        let _ = child.kill();
        let _ = child.wait();
    }
    result?;

    println!(
        "\n{:<26} {:>8} {:>12} {:>12} {:>10}",
        "window", "length s", "own cpu %", "bpf ms", "peak MiB"
    );
    let mut percents = Vec::new();
    let mut windows: Vec<_> = fs::read_dir(&out)?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    windows.sort_by_key(|e| e.file_name());
    for entry in windows {
        let report: serde_json::Value =
            serde_json::from_slice(&fs::read(entry.path().join("report.json"))?)?;
        let cost = &report["own_cost"];
        let percent = cost["cpu_percent_of_one_core"].as_f64().unwrap_or(0.0);
        println!(
            "{:<26} {:>8.1} {:>12.3} {:>12.1} {:>10.1}",
            entry.file_name().to_string_lossy(),
            report["duration_s"].as_f64().unwrap_or(0.0),
            percent,
            cost["bpf_run_time_ns"].as_f64().unwrap_or(0.0) / 1e6,
            cost["peak_rss_bytes"].as_f64().unwrap_or(0.0) / f64::from(1 << 20)
        );
        percents.push(percent);
    }
    if let Some(summary) = Summary::of(&percents) {
        println!(
            "own CPU incl. BPF, % of one core per window: median {:.3} (min {:.3}, max {:.3}); goal <= 0.3",
            summary.median, summary.min, summary.max
        );
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    if let (Some(first), Some(last), Some(max)) =
        (rss.first(), rss.last(), rss.iter().map(|r| r.1).max())
    {
        println!(
            "resident memory: {:.1} MiB at {} s, {:.1} MiB at {} s, max {:.1} MiB; goal <= 64 MiB and flat",
            mib(first.1),
            first.0,
            mib(last.1),
            last.0,
            mib(max)
        );
    }
    fs::remove_dir_all(&out)?;
    Ok(())
}

/// The newest process named `name`: the recorder the tracer just started.
fn newest_pid(name: &str) -> Result<u32> {
    let output = Command::new("pgrep")
        .args(["-n", "-x", name])
        .output()
        .context("running pgrep")?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .with_context(|| format!("no running {name}"))
}

fn vm_rss_kib(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}
