//! `profiler top`: a live full-screen view of the last interval's tick report (processes or
//! applications, suspects, verdict), or with `--once` / `--json` the same reports for scripts.

mod interactive;
mod terminal;

use std::{
    io::{IsTerminal as _, Write as _},
    time::Duration,
};

use crate::{
    cli::{TopArgs, UnwindChoice},
    error::usage,
    model::cmdline::Cmdlines,
    output::tui::plain,
    probes,
    report::Report,
    session::{Config, PhaseClock, Session, StatsCadence, Stops, Symbolization},
};

/// How much history the hottest stacks cover at most, and how long the process table keeps
/// processes that stopped running: a live view should show what happens now.
const RENEW: Duration = Duration::from_secs(60);

pub async fn run(args: TopArgs) -> anyhow::Result<()> {
    if !args.once && !args.json && !std::io::stdout().is_terminal() {
        return Err(usage(
            "stdout is not a terminal: use `profiler top --once` for one table or \
             `profiler top --json` for a report per interval",
        ));
    }
    probes::check_privileges()?;
    probes::check_frequency(args.frequency)?;
    let every = humantime::format_duration(args.interval);
    let what_next = if args.once {
        format!("printing one table after {every}")
    } else if args.json {
        format!("printing a JSON report every {every} (SIGINT or SIGTERM stops)")
    } else {
        format!("refreshing every {every} (q quits)")
    };
    let mut stops = Stops::install()?;
    let config = Config {
        frequency_hz: args.frequency,
        unwinding: args.unwind.unwinding(UnwindChoice::Tables),
        signals: args.signals.clone(),
        cmdlines: Cmdlines::redacted(args.redact),
        only_pids: Vec::new(),
        tick: args.interval,
        window: Some(RENEW),
        symbolization: Symbolization::PerWindow,
        stats: StatsCadence::Short,
        what_next,
    };
    let mut session = Session::start(config, PhaseClock::start(), &mut stops).await?;
    if args.once {
        once(&args, &mut session, &mut stops).await
    } else if args.json {
        json(&args, &mut session, &mut stops).await
    } else {
        interactive::run(&args, &mut session, &mut stops).await
    }
}

/// The report of the interval since the previous tick; a due window renews the session's,
/// so the stacks stay recent and a long session cannot fill the kernel maps.
pub(super) fn tick(session: &mut Session) -> anyhow::Result<Report> {
    let tick = session.tick()?;
    if tick.window_due {
        session.renew()?;
    }
    Ok(tick.report)
}

async fn once(args: &TopArgs, session: &mut Session, stops: &mut Stops) -> anyhow::Result<()> {
    tokio::select! {
        () = tokio::time::sleep(args.interval) => {}
        () = stops.recv() => return Ok(()),
    }
    let report = tick(session)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(plain::render(&report).as_bytes())?;
    stdout.flush()?;
    Ok(())
}

async fn json(args: &TopArgs, session: &mut Session, stops: &mut Stops) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(args.interval);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = stops.recv() => return Ok(()),
            _ = ticks.tick() => {
                let report = tick(session)?;
                let mut stdout = std::io::stdout().lock();
                serde_json::to_writer(&mut stdout, &report)?;
                stdout.write_all(b"\n")?;
                stdout.flush()?;
            }
        }
    }
}
