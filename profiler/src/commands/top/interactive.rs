//! `top`'s full-screen view: the table of the last interval, redrawn every tick and on every
//! key, with a process's hottest stacks, its time and whom it delayed when one is opened.

use std::time::Duration;

use anyhow::Context as _;
use crossterm::event::{Event, KeyEvent, KeyEventKind};

use super::{
    terminal::{Input, Screen},
    tick,
};
use crate::{
    analyze::victim::{self, VictimSpec},
    cli::TopArgs,
    output::tui::{
        self,
        detail::{BlameTotals, Detail},
        state::{Action, UiState, color_allowed},
    },
    report::Report,
    session::{Session, Stops},
};

/// Everything the interactive loop keeps between events.
struct View {
    state: UiState,
    report: Option<Report>,
    detail: Option<Detail>,
    blame: BlameTotals,
}

impl View {
    /// Measures a tick (even while paused, so resuming shows one interval, not the pause).
    fn on_tick(&mut self, session: &mut Session) -> anyhow::Result<Flow> {
        let report = tick(session)?;
        self.blame.add(&report);
        if self.state.paused {
            return Ok(Flow::Skip);
        }
        self.report = Some(report);
        if let Some(pid) = self.state.detail {
            self.gather_detail(session, pid)?;
        }
        Ok(Flow::Redraw)
    }

    fn on_key(
        &mut self,
        key: KeyEvent,
        session: &mut Session,
        screen: &mut Screen,
        interval: Duration,
    ) -> anyhow::Result<Flow> {
        let rows = self.rows();
        match self.state.handle_key(key, rows.len()) {
            Action::Quit => return Ok(Flow::Quit),
            Action::None => return Ok(Flow::Skip),
            Action::Redraw if self.state.detail.is_none() => self.detail = None,
            Action::Redraw => {}
            Action::OpenDetail => {
                let pid = rows[self.state.selected.min(rows.len() - 1)].pid;
                self.state.detail = Some(pid);
                self.detail = None;
                // Symbolizing can take a moment: say so before doing it.
                self.draw(screen, interval)?;
                self.gather_detail(session, pid)?;
            }
        }
        Ok(Flow::Redraw)
    }

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
        let time = self.report.as_ref().and_then(|report| {
            victim::all(report, &[VictimSpec::Pid(pid)])
                .into_iter()
                .next()
        });
        self.detail = Some(Detail {
            pid,
            comm,
            stacks: session.top_stacks(pid)?,
            delayed_by,
            delays,
            time,
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

/// What the screen does after an event.
enum Flow {
    Quit,
    /// Nothing changed on screen.
    Skip,
    Redraw,
}

pub async fn run(args: &TopArgs, session: &mut Session, stops: &mut Stops) -> anyhow::Result<()> {
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
        let flow = tokio::select! {
            () = stops.recv() => Flow::Quit,
            _ = ticks.tick() => view.on_tick(session)?,
            event = input.events.recv() => match event {
                None => Flow::Quit,
                Some(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                    view.on_key(key, session, &mut screen, args.interval)?
                }
                Some(Event::Resize(..)) => Flow::Redraw,
                Some(_) => Flow::Skip,
            },
        };
        match flow {
            Flow::Quit => return Ok(()),
            Flow::Skip => continue,
            Flow::Redraw => {}
        }
        view.draw(&mut screen, args.interval)?;
    }
}
