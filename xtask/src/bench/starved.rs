//! `cargo xtask bench starved`: `profiler record` while a rogue holds every CPU at nice -20,
//! with its recording thread at real-time priority (the default) and at normal priority
//! (`--no-realtime`): what the priority scheme buys (window lengths, `/metrics` answer times
//! from a client at nice -20) and what it costs (how much longer the hogs take to do a fixed
//! amount of work, next to untraced).

use std::{
    fs,
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use super::{
    Context, Measured, SubBench, free_port, prepare, print_header_line,
    results::{Goal, Row},
    run_rounds, time_workload,
    tracer::{self, Ready},
};

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Rounds; each runs every condition once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// CPU hogs started at nice -20.
    #[arg(long, default_value_t = 16)]
    hogs: u32,
    /// Work units each hog does (`burner --work`; ~9 ms each here: 270 keep sixteen hogs on
    /// two CPUs busy for about 20 s).
    #[arg(long, default_value_t = 270)]
    work: u64,
}

impl SubBench for Options {
    const NAME: &'static str = "starved";
    const WORKLOADS: bool = true;

    fn quick() -> Self {
        Self {
            runs: 1,
            hogs: 4,
            work: 100,
        }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        run(ctx, self)
    }
}

/// The issue's bounds under the rogue: a 2 s window, and a scrape.
const WINDOW_GOAL: Goal = Goal::Max(2.5);
const SCRAPE_GOAL: Goal = Goal::Max(1.0);
const WINDOW: &str = "2s";
const SCRAPE_EVERY: Duration = Duration::from_secs(2);
/// A scrape that takes longer is cut off and counted as this long.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Untraced,
    Realtime,
    Normal,
}

const CONDITIONS: [(Condition, &str); 3] = [
    (Condition::Untraced, "untraced"),
    (Condition::Realtime, "record"),
    (Condition::Normal, "record --no-realtime"),
];

/// What one recorded round saw besides the hogs' CPU.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    longest_window_s: f64,
    slowest_scrape_s: f64,
}

fn run(ctx: &Context, options: &Options) -> Result<Vec<Row>> {
    let profiler = ctx.release("profiler");
    let burner = ctx.release("burner");
    let scratch = prepare(Options::NAME, &[&profiler, &burner])?;
    let hogs = || hogs_command(&burner, options);
    print_header_line(
        21,
        "workload",
        &format!(
            "{}  (wall time until the last hog is done)",
            crate::util::display(&hogs())
        ),
    );
    print_header_line(
        21,
        "record",
        &format!(
            "profiler record --window {WINDOW} [--no-realtime]; GET /metrics every 2 s at nice -20"
        ),
    );
    let mut seen: Vec<(Condition, Seen)> = Vec::new();
    let mut rows = run_rounds(
        Options::NAME,
        "s",
        options.runs,
        &CONDITIONS,
        |condition, round| {
            if condition == Condition::Untraced {
                return Ok(time_workload(&mut hogs())?.wall.into());
            }
            let out = scratch.path().join(format!("record-{round}-{condition:?}"));
            let (measured, round_seen) = recorded(&profiler, &out, condition, &mut hogs())?;
            seen.push((condition, round_seen));
            fs::remove_dir_all(&out).ok();
            Ok(measured)
        },
    )?;
    for (condition, name) in &CONDITIONS[1..] {
        let of = |pick: fn(&Seen) -> f64| -> Vec<f64> {
            seen.iter()
                .filter(|(c, _)| c == condition)
                .map(|(_, s)| pick(s))
                .collect()
        };
        let goals = *condition == Condition::Realtime;
        let window = Row::measured(
            Options::NAME,
            format!("{name}: longest {WINDOW} window"),
            "s",
            &of(|s| s.longest_window_s),
        );
        let scrape = Row::measured(
            Options::NAME,
            format!("{name}: slowest /metrics"),
            "s",
            &of(|s| s.slowest_scrape_s),
        );
        rows.push(if goals {
            window.with_goal(WINDOW_GOAL)
        } else {
            window
        });
        rows.push(if goals {
            scrape.with_goal(SCRAPE_GOAL)
        } else {
            scrape
        });
    }
    Ok(rows)
}

/// `--hogs` burners at nice -20, `--work` units each, started and awaited by one shell.
fn hogs_command(burner: &Path, options: &Options) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"i=0; while [ "$i" -lt "$1" ]; do nice -n -20 "$2" --work "$3" & i=$((i+1)); done; wait"#)
        .arg("hogs")
        .arg(options.hogs.to_string())
        .arg(burner)
        .arg(options.work.to_string());
    cmd
}

/// The hogs under `profiler record` in `condition`, scraped throughout.
fn recorded(
    profiler: &Path,
    out: &Path,
    condition: Condition,
    hogs: &mut Command,
) -> Result<(Measured, Seen)> {
    let port = free_port()?;
    let mut cmd = Command::new(profiler);
    cmd.arg("record")
        .arg("--out")
        .arg(out)
        .args(["--window", WINDOW, "--metrics"])
        .arg(format!("127.0.0.1:{port}"));
    if condition == Condition::Normal {
        cmd.arg("--no-realtime");
    }
    let ((timed, slowest), stopped) = tracer::under_pid(
        "profiler record",
        &mut cmd,
        Ready::Line("profiler: attached", Duration::ZERO),
        |_| {
            let done = Arc::new(AtomicBool::new(false));
            let scraper = {
                let done = Arc::clone(&done);
                thread::spawn(move || scrape_until(port, &done))
            };
            let timed = time_workload(hogs);
            done.store(true, Ordering::Relaxed);
            let slowest = scraper
                .join()
                .map_err(|_| anyhow::anyhow!("scraper panicked"))?;
            Ok((timed?, slowest))
        },
    )?;
    let seen = Seen {
        longest_window_s: longest_window(out)?,
        slowest_scrape_s: slowest.as_secs_f64(),
    };
    Ok((
        Measured {
            value: timed.wall,
            wall: None,
            report: Some(stopped),
            tracer_cpu: None,
        },
        seen,
    ))
}

/// Scrapes `/metrics` every [`SCRAPE_EVERY`] from a thread at nice -20 until `done`; the
/// slowest answer (a failed one counts as [`SCRAPE_TIMEOUT`]).
fn scrape_until(port: u16, done: &AtomicBool) -> Duration {
    // SAFETY: setpriority on this thread only; root may go below zero.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, -20) };
    let mut slowest = Duration::ZERO;
    while !done.load(Ordering::Relaxed) {
        let asked = Instant::now();
        let took = match scrape(port) {
            Ok(()) => asked.elapsed(),
            Err(_) => SCRAPE_TIMEOUT,
        };
        slowest = slowest.max(took);
        thread::sleep(SCRAPE_EVERY);
    }
    slowest
}

fn scrape(port: u16) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = Vec::new();
    stream.read_to_end(&mut body)?;
    Ok(())
}

/// The longest regular window in `out` but the last, which ends at the stop.
fn longest_window(out: &Path) -> Result<f64> {
    let mut windows: Vec<_> = fs::read_dir(out)
        .with_context(|| format!("listing {}", out.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir() && !path.to_string_lossy().ends_with("-incident"))
        .collect();
    windows.sort();
    windows.pop();
    let mut longest = 0.0_f64;
    for window in windows {
        let path = window.join("report.json");
        let report: serde_json::Value = serde_json::from_slice(
            &fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        )?;
        longest = longest.max(report["duration_s"].as_f64().unwrap_or(0.0));
    }
    Ok(longest)
}
