//! The `?` overlay listing every key.

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Flex, Layout, Rect},
    text::Line,
    widgets::{Block, Borders, Clear, Paragraph, Widget as _},
};

pub const KEYS: [(&str, &str); 14] = [
    ("c w s m", "sort by CPU, run-queue wait, syscalls, RSS"),
    (
        "i / n",
        "sort by IO read/write, net tx/rx (press again for the other)",
    ),
    ("← →", "move the sort column"),
    ("r", "reverse the order (same key twice too)"),
    ("/", "filter by name or pid (Enter keeps, Esc clears)"),
    (
        "g",
        "group: process, app by comm, executable, container/unit, cgroup",
    ),
    ("p, space", "pause / resume"),
    ("↑ ↓ j k", "select a row"),
    ("Enter", "hottest stacks and blame of the selected process"),
    ("Esc", "back / clear the filter"),
    ("!", "marks a suspect (highlighted)"),
    (
        "WAIT ms/s",
        "ms per second spent runnable, waiting for a CPU",
    ),
    ("?", "this help (any key closes)"),
    ("q, Ctrl-C", "quit"),
];

/// Draws the help box centred over `area`.
pub fn render(area: Rect, buf: &mut Buffer) {
    let height = u16::try_from(KEYS.len()).unwrap_or(u16::MAX) + 2;
    let [area] = Layout::horizontal([Constraint::Length(76)])
        .flex(Flex::Center)
        .areas(area);
    let [area] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let lines: Vec<Line<'_>> = KEYS
        .iter()
        .map(|(key, what)| Line::from(format!(" {key:<10} {what}")))
        .collect();
    Clear.render(area, buf);
    Paragraph::new(lines)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" profiler top: keys "),
        )
        .render(area, buf);
}
