//! `profiler top`'s screen: pure functions from a tick report and the viewer's choices to
//! ratatui widgets, one concept per module, so every screen is testable on a `TestBackend`.

pub mod detail;
mod format;
pub mod help;
pub mod plain;
pub mod rows;
pub mod state;
mod style;
pub mod table;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use std::time::Duration;

use ratatui::{
    Frame,
    layout::{Constraint, Layout},
    text::{Line, Span},
    widgets::{Paragraph, TableState},
};

use self::{detail::Detail, rows::Row, state::UiState, style::Palette};
use crate::report::Report;

/// Everything one frame shows.
#[derive(Debug, Clone, Copy)]
pub struct Screen<'a> {
    /// The last tick's report; `None` until the first interval has passed.
    pub report: Option<&'a Report>,
    pub state: &'a UiState,
    /// The open detail's data, when `state.detail` is set and it has been gathered.
    pub detail: Option<&'a Detail>,
    pub interval: Duration,
}

/// The rows of `report` as the viewer arranged them: grouped, filtered, sorted.
pub fn displayed_rows(report: &Report, state: &UiState) -> Vec<Row> {
    let mut rows = rows::rows(report, state.grouping);
    rows::filter(&mut rows, &state.filter);
    rows::sort(&mut rows, state.sort, state.descending);
    rows
}

fn status_line(screen: &Screen<'_>, shown: usize) -> Line<'static> {
    let state = screen.state;
    let mut parts = Vec::new();
    if let Some(report) = screen.report {
        parts.push(format!(
            "host: {} ({} CPUs)",
            crate::analyze::host_load(report),
            report.cpus
        ));
    }
    parts.push(format!(
        "every {}",
        humantime::format_duration(screen.interval)
    ));
    parts.push(state.grouping.describe(shown));
    if !state.filter.is_empty() || state.editing_filter {
        parts.push(format!("filter \"{}\"", state.filter));
    }
    let mut line = Line::from(parts.join(" · "));
    if state.paused {
        line.push_span(Span::styled("  PAUSED", Palette::new(state.color).verdict));
    }
    line
}

fn bottom_line(state: &UiState) -> Line<'static> {
    if state.editing_filter {
        Line::from(format!("/{}_  (Enter keeps, Esc clears)", state.filter))
    } else if state.detail.is_some() {
        Line::from("Esc back  p pause  q quit").style(Palette::new(state.color).hint)
    } else {
        Line::from("q quit  ? help  c/w/s/i/n/m sort  / filter  g group  p pause  Enter stacks")
            .style(Palette::new(state.color).hint)
    }
}

/// Draws the whole screen into `frame`.
pub fn draw(frame: &mut Frame<'_>, screen: &Screen<'_>) {
    let state = screen.state;
    let palette = Palette::new(state.color);
    let [verdict, status, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let rows = screen
        .report
        .map(|report| displayed_rows(report, state))
        .unwrap_or_default();
    let verdict_text = screen.report.map_or_else(
        || "measuring the first interval…".to_owned(),
        |report| report.verdict.clone(),
    );
    frame.render_widget(
        Paragraph::new(Line::from(verdict_text).style(palette.verdict)),
        verdict,
    );
    frame.render_widget(Paragraph::new(status_line(screen, rows.len())), status);
    frame.render_widget(Paragraph::new(bottom_line(state)), bottom);
    match (state.detail, screen.detail) {
        (Some(_), Some(detail)) => detail::render(detail, state.color, body, frame.buffer_mut()),
        (Some(pid), None) => frame.render_widget(
            Paragraph::new(format!("gathering the stacks of pid {pid}…")),
            body,
        ),
        (None, _) => {
            let table = table::widget(&rows, state, body.width);
            let mut selection = TableState::default()
                .with_selected((!rows.is_empty()).then(|| state.selected.min(rows.len() - 1)));
            frame.render_stateful_widget(table, body, &mut selection);
        }
    }
    if state.help {
        help::render(frame.area(), frame.buffer_mut());
    }
}
