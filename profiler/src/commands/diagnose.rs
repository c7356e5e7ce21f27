//! `profiler diagnose`: sample the host for a while, then report who ate the CPU and where.

use std::time::{Duration, Instant};

mod watch;

use self::watch::{Edges, Watch};
use super::{out_dir::OutDir, targets};
use crate::{
    analyze::victim::{self, VictimSpec},
    cli::{DiagnoseArgs, UnwindChoice},
    collect::delayacct::DelayAcct,
    model::cmdline::Cmdlines,
    output::{self, progress::Progress},
    probes,
    report::{OwnCost, Victim},
    session::{Config, PhaseClock, Session, StatsCadence, Stops, Symbolization, WindowReport},
};

/// How often new processes are looked up in /proc while they still live.
const DISCOVERY_INTERVAL: Duration = Duration::from_millis(250);
/// A tick a second: the report's timeline has one bucket per tick.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(args: DiagnoseArgs) -> anyhow::Result<()> {
    let clock = PhaseClock::start();
    for &pid in &args.pids {
        targets::check_pid(pid, "--pid")?;
    }
    let victim = args
        .victim
        .as_deref()
        .map(targets::check_victim)
        .transpose()?;
    probes::check_privileges()?;
    probes::check_frequency(args.frequency)?;
    // Caught from here on: a stop before sampling starts ends the run with one line and exit
    // 130 or 143 (in `Session::start`), a later one ends the sampling and the report is
    // written.
    let mut stops = Stops::install()?;
    // Checked writable now, but created only once there is something to write: a run killed
    // while sampling (SIGKILL, OOM) leaves no empty directory behind.
    drop(OutDir::given_or_fresh(args.out.as_deref())?);
    let delayacct = args.delayacct.then(DelayAcct::turn_on).transpose()?;
    let mut session = Session::start(config(&args), clock, &mut stops).await?;
    // Read over the sampling only, as every other figure of the run.
    let watch = victim.as_ref().map(|spec| Watch::start(spec, delayacct));
    sample(&mut session, args.duration, &mut stops).await?;
    let edges = watch.map(Watch::finish);
    let (mut window, clock, released) = session.finish().await?;
    if let (Some(spec), Some(edges)) = (&victim, edges) {
        window.report.victim = account(&window, spec, &args, edges);
    }
    write(&mut window, clock, &args)?;
    released.wait();
    Ok(())
}

fn config(args: &DiagnoseArgs) -> Config {
    Config {
        frequency_hz: args.frequency,
        unwinding: args.unwind.unwinding(UnwindChoice::Tables),
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
    }
}

/// The victim's time and culprits; said when none of its processes ran.
fn account(
    window: &WindowReport,
    spec: &VictimSpec,
    args: &DiagnoseArgs,
    edges: Edges,
) -> Option<Victim> {
    let (report, usage, offcpu) = (&window.report, &window.usage, &window.folded.offcpu);
    let seen = victim::Seen {
        usage,
        offcpu,
        slept_through: &edges.slept_through,
        cpu_split: Some(&edges.cpu_split),
        cgroup_pressure: &edges.cgroup_pressure,
    };
    let found = victim::account(report, seen, spec, std::process::id(), edges.delays);
    if found.is_none() {
        eprintln!(
            "profiler: warning: --victim {}: none of its processes ran during the run",
            args.victim.as_deref().unwrap_or_default()
        );
    }
    found
}

/// Renders the files, writes them to the output directory and prints the report.
fn write(
    window: &mut WindowReport,
    mut clock: PhaseClock,
    args: &DiagnoseArgs,
) -> anyhow::Result<()> {
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
    let out_dir = OutDir::given_or_fresh(args.out.as_deref())?;
    files
        .write(&out_dir.open()?, report)
        .map_err(|err| crate::error::output_write(err, out_dir.path()))?;
    output::print(report, args.format)?;
    eprintln!("profiler: wrote {}", out_dir.path().display());
    out_dir.keep();
    Ok(())
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
