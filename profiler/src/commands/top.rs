//! `profiler top`: a live full-screen view of the last interval's tick report (processes or
//! applications, suspects, verdict), or with `--once` / `--json` the same reports for scripts.

mod terminal;

use std::{
    io::{IsTerminal as _, Write as _},
    time::Duration,
};

use anyhow::Context as _;
use crossterm::event::{Event, KeyEventKind};

use self::terminal::{Input, Screen};
use crate::{
    cli::TopArgs,
    error::usage,
    model::cmdline::Cmdlines,
    output::tui::{
        self,
        detail::{BlameTotals, Detail},
        plain,
        state::{Action, UiState, color_allowed},
    },
    probes,
    report::Report,
    session::{Config, PhaseClock, Session, Stops, Symbolization},
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
        signals: args.signals.clone(),
        cmdlines: Cmdlines::redacted(args.redact),
        only_pids: Vec::new(),
        tick: args.interval,
        window: Some(RENEW),
        symbolization: Symbolization::PerWindow,
        what_next,
    };
    let mut session = Session::start(config, PhaseClock::start(), &mut stops).await?;
    if args.once {
        once(&args, &mut session, &mut stops).await
    } else if args.json {
        json(&args, &mut session, &mut stops).await
    } else {
        interactive(&args, &mut session, &mut stops).await
    }
}

/// The report of the interval since the previous tick; a due window renews the session's,
/// so the stacks stay recent and a long session cannot fill the kernel maps.
fn tick(session: &mut Session) -> anyhow::Result<Report> {
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

/// Everything the interactive loop keeps between events.
struct View {
    state: UiState,
    report: Option<Report>,
    detail: Option<Detail>,
    blame: BlameTotals,
}

impl View {
    fn draw(&self, screen: &mut Screen, interval: Duration) -> anyhow::Result<()> {
        screen
            .terminal
            .draw(|frame| {
                tui::draw(
                    frame,
                    &tui::Screen {
                        report: self.report.as_ref(),
                        state: &self.state,
                        detail: self.detail.as_ref(),
                        interval,
                    },
                );
            })
            .context("drawing the screen")?;
        Ok(())
    }

    fn gather_detail(&mut self, session: &Session, pid: u32) -> anyhow::Result<()> {
        let comm = self
            .report
            .as_ref()
            .and_then(|r| r.processes.iter().find(|p| p.pid == pid))
            .map(|p| p.comm.clone())
            .unwrap_or_default();
        let (delayed_by, delays) = self.blame.of(pid);
        self.detail = Some(Detail {
            pid,
            comm,
            stacks: session.top_stacks(pid)?,
            delayed_by,
            delays,
        });
        Ok(())
    }

    fn rows(&self) -> Vec<tui::rows::Row> {
        self.report
            .as_ref()
            .map(|report| tui::displayed_rows(report, &self.state))
            .unwrap_or_default()
    }
}

async fn interactive(
    args: &TopArgs,
    session: &mut Session,
    stops: &mut Stops,
) -> anyhow::Result<()> {
    let mut screen = Screen::enter().context("setting up the terminal")?;
    let mut input = Input::start();
    let mut view = View {
        state: UiState {
            color: color_allowed(std::env::var_os("NO_COLOR").as_deref()),
            ..UiState::default()
        },
        report: None,
        detail: None,
        blame: BlameTotals::default(),
    };
    let mut ticks = tokio::time::interval(args.interval);
    ticks.tick().await;
    view.draw(&mut screen, args.interval)?;
    loop {
        tokio::select! {
            () = stops.recv() => return Ok(()),
            _ = ticks.tick() => {
                // Measured even while paused, so resuming shows one interval, not the pause.
                let report = tick(session)?;
                view.blame.add(&report);
                if view.state.paused {
                    continue;
                }
                view.report = Some(report);
                if let Some(pid) = view.state.detail {
                    view.gather_detail(session, pid)?;
                }
            }
            event = input.events.recv() => match event {
                None => return Ok(()),
                Some(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                    let rows = view.rows();
                    match view.state.handle_key(key, rows.len()) {
                        Action::Quit => return Ok(()),
                        Action::None => continue,
                        Action::Redraw => {
                            if view.state.detail.is_none() {
                                view.detail = None;
                            }
                        }
                        Action::OpenDetail => {
                            let pid = rows[view.state.selected.min(rows.len() - 1)].pid;
                            view.state.detail = Some(pid);
                            view.detail = None;
                            // Symbolizing can take a moment: say so before doing it.
                            view.draw(&mut screen, args.interval)?;
                            view.gather_detail(session, pid)?;
                        }
                    }
                }
                Some(Event::Resize(..)) => {}
                Some(_) => continue,
            },
        }
        view.draw(&mut screen, args.interval)?;
    }
}
