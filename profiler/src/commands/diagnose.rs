//! `profiler diagnose`: sample the host for a while, then report who ate the CPU and where.

use std::{
    io::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::out_dir::OutDir;
use crate::{
    analyze::victim::{self, VictimSpec},
    cli::{DiagnoseArgs, Format},
    error::usage,
    model::cmdline::Cmdlines,
    output::{self, progress::Progress},
    probes,
    report::OwnCost,
    session::{Config, PhaseClock, Session, StatsCadence, Stops, Symbolization},
};

/// How often new processes are looked up in /proc while they still live.
const DISCOVERY_INTERVAL: Duration = Duration::from_millis(250);
/// A tick a second: the report's timeline has one bucket per tick.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(args: DiagnoseArgs) -> anyhow::Result<()> {
    let clock = PhaseClock::start();
    for &pid in &args.pids {
        check_pid(pid, "--pid")?;
    }
    let victim = args.victim.as_deref().map(check_victim).transpose()?;
    probes::check_privileges()?;
    probes::check_frequency(args.frequency)?;
    // Caught from here on: a stop before sampling starts ends the run with one line and exit
    // 130 or 143 (in `Session::start`), a later one ends the sampling and the report is
    // written.
    let mut stops = Stops::install()?;
    // Checked writable now, but created only once there is something to write: a run killed
    // while sampling (SIGKILL, OOM) leaves no empty directory behind.
    drop(out_dir(args.out.as_deref())?);
    let config = Config {
        frequency_hz: args.frequency,
        signals: args.signals.clone(),
        cmdlines: Cmdlines::redacted(args.redact),
        only_pids: args.pids.clone(),
        tick: TICK,
        window: None,
        symbolization: Symbolization::Warm,
        stats: StatsCadence::Short,
        what_next: format!(
            "for {} (Ctrl-C to stop early)",
            humantime::format_duration(args.duration)
        ),
    };
    let mut session = Session::start(config, clock, &mut stops).await?;
    sample(&mut session, args.duration, &mut stops).await?;
    let (mut window, mut clock, released) = session.finish().await?;
    if let Some(spec) = &victim {
        let found = victim::account(&window.report, &window.usage, &window.folded.offcpu, spec);
        if found.is_none() {
            eprintln!(
                "profiler: warning: --victim {}: none of its processes ran during the run",
                args.victim.as_deref().unwrap_or_default()
            );
        }
        window.report.victim = found;
    }
    let files = output::render_usage(
        &window.report,
        &window.usage,
        &window.folded,
        &args.pids,
        output::HtmlReport::Write,
    )?;
    clock.lap(|p| &mut p.render);
    let report = &mut window.report;
    report.own_cost = report.own_cost.map(|cost| OwnCost {
        phases_ms: Some(clock.phases()),
        ..cost
    });
    let out_dir = out_dir(args.out.as_deref())?;
    files
        .write(&out_dir.open()?, report)
        .map_err(|err| crate::error::output_write(err, out_dir.path()))?;
    print(report, args.format)?;
    eprintln!("profiler: wrote {}", out_dir.path().display());
    out_dir.keep();
    released.wait();
    Ok(())
}

/// `--out`, or a new `./profiler-<time>-<random>`.
fn out_dir(given: Option<&Path>) -> anyhow::Result<OutDir> {
    match given {
        Some(path) => OutDir::prepare(path),
        None => {
            let time = jiff::Zoned::now().strftime("%Y%m%d-%H%M%S");
            OutDir::fresh(Path::new("."), &format!("profiler-{time}-"))
        }
    }
}

/// Ticks and discovers until `duration` is over or a stop arrives.
async fn sample(
    session: &mut Session,
    duration: Duration,
    stops: &mut Stops,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let progress = Progress::start(duration);
    let deadline = tokio::time::sleep(duration);
    tokio::pin!(deadline);
    let mut discovery = tokio::time::interval(DISCOVERY_INTERVAL);
    let mut ticks = tokio::time::interval(TICK);
    // The first tick of an interval completes at once; the session's first reading is its base.
    ticks.tick().await;
    loop {
        tokio::select! {
            () = &mut deadline => break,
            () = stops.recv() => break,
            _ = ticks.tick() => {
                session.tick()?;
            }
            _ = discovery.tick() => {
                progress.update(start.elapsed(), session.discover()?.as_ref());
            }
        }
    }
    progress.finish();
    Ok(())
}

/// A `--pid` (or a `--victim` pid) must name a running process, not a thread: the kernel keys
/// every figure by the process (thread group) id, so a thread's id would match nothing.
fn check_pid(pid: u32, flag: &str) -> anyhow::Result<()> {
    let status = i32::try_from(pid)
        .ok()
        .and_then(|pid| procfs::process::Process::new(pid).ok())
        .and_then(|process| process.status().ok());
    match status {
        None => Err(usage(format!(
            "no process with pid {pid} ({flag}); list running processes with `ps -e`"
        ))),
        Some(status) if status.tgid != i32::try_from(pid).unwrap_or(-1) => Err(usage(format!(
            "{pid} ({flag}) is a thread of process {}; use {flag} {}",
            status.tgid, status.tgid
        ))),
        Some(_) => Ok(()),
    }
}

/// A `--victim` must name a running process, command name or cgroup: a typo would otherwise
/// sample for nothing and report no victim.
fn check_victim(text: &str) -> anyhow::Result<VictimSpec> {
    let spec = VictimSpec::parse(text);
    match &spec {
        VictimSpec::Pid(pid) => check_pid(*pid, "--victim")?,
        VictimSpec::Name(name) if !running(name) => {
            return Err(usage(format!(
                "no running process has the command name or cgroup {name:?} (--victim); name \
                 one from `ps -e -o pid,comm,cgroup`, or give a pid"
            )));
        }
        VictimSpec::Name(_) => {}
    }
    Ok(spec)
}

/// Whether a running process has `name` as its command name or cgroup v2 path.
fn running(name: &str) -> bool {
    let Ok(processes) = procfs::process::all_processes() else {
        return false;
    };
    processes.filter_map(Result::ok).any(|process| {
        let comm = process.stat().is_ok_and(|stat| stat.comm == name);
        comm || process.cgroups().is_ok_and(|groups| {
            groups
                .0
                .iter()
                .any(|g| g.hierarchy == 0 && g.pathname == name)
        })
    })
}

fn print(report: &crate::report::Report, format: Format) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Text => stdout.write_all(output::table::render(report).as_bytes()),
        Format::Json => serde_json::to_writer_pretty(&mut stdout, report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout)),
    }
    .and_then(|()| stdout.flush())
    .context("writing to stdout")
}
