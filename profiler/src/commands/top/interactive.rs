//! `top`'s full-screen view: the table of the last interval, redrawn every tick and on every
//! key, with a process's hottest stacks and whom it delayed when one is opened.

use std::time::Duration;

use anyhow::Context as _;
use crossterm::event::{Event, KeyEventKind};

use super::{
    terminal::{Input, Screen},
    tick,
};
use crate::{
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
