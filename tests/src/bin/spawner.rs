//! Spawn-storm workload: starts an exact number of short-lived children, one after the other, and
//! then exits, so the end-to-end tests can check the profiler's fork counts, its spawn suspects
//! and that processes living only a few milliseconds still show up with their name, parent and
//! exit. `--children N` runs `/bin/true` N times, waiting for each; `--wait-stdin` first blocks
//! until one byte arrives on stdin, so a test can start it before the profiler attaches and
//! release it after, putting every spawn inside the profiling window.

use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: spawner --children N [--per-second R] [--wait-stdin]";

/// The child: an absolute path so no PATH lookup can pick another program, and one that exits at
/// once, so each child lives only for its exec and exit.
const CHILD: &str = "/bin/true";

struct Args {
    wait_stdin: bool,
    children: u64,
    /// Paces the children (process churn for `cargo xtask bench record`); as fast as possible
    /// when absent.
    per_second: Option<f64>,
}

fn main() -> ExitCode {
    let Args {
        wait_stdin,
        children,
        per_second,
    } = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("spawner: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if wait_stdin && let Err(message) = profiler_tests::wait_for_start_byte() {
        eprintln!("spawner: {message}");
        return ExitCode::FAILURE;
    }
    match spawn_all(children, per_second) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("spawner: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut wait_stdin = false;
    let mut children = None;
    let mut per_second = None;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            // A repeated flag is more likely a mistake than a deliberate override.
            "--wait-stdin" if wait_stdin => return Err(format!("{flag} given twice")),
            "--wait-stdin" => wait_stdin = true,
            "--children" if children.is_some() => return Err(format!("{flag} given twice")),
            "--children" => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                children = Some(
                    value
                        .parse()
                        .map_err(|_| format!("{flag}: not a non-negative integer: {value}"))?,
                );
            }
            "--per-second" if per_second.is_some() => return Err(format!("{flag} given twice")),
            "--per-second" => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                per_second = Some(
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|r| r.is_finite() && *r > 0.0)
                        .ok_or_else(|| format!("{flag}: not a positive number: {value}"))?,
                );
            }
            _ => return Err(format!("unknown argument: {flag}")),
        }
    }
    // No default: a test that forgot it would check its figures against a guess.
    let children = children.ok_or("--children is required")?;
    Ok(Args {
        wait_stdin,
        children,
        per_second,
    })
}

/// Runs the children one at a time. Waiting for each reaps it, so by the time the spawner exits
/// every child has ended and is gone from /proc, as the tests expect of an exited process. A
/// child that fails to start or exits non-zero fails the run: the tests count on N children that
/// each exec'd.
fn spawn_all(children: u64, per_second: Option<f64>) -> Result<(), String> {
    let start = Instant::now();
    for index in 0..children {
        if let Some(rate) = per_second {
            // Paced against the start, so a slow spawn does not lower the average rate.
            let due = start + Duration::from_secs_f64(index as f64 / rate);
            thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        // stdin closed: the spawner's stdin is the test's release pipe, not the children's.
        let status = Command::new(CHILD)
            .stdin(Stdio::null())
            .status()
            .map_err(|err| format!("child {index}: starting {CHILD}: {err}"))?;
        if !status.success() {
            return Err(format!("child {index}: {CHILD} failed: {status}"));
        }
    }
    Ok(())
}
