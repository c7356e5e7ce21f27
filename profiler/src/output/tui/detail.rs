//! The detail of one process: its hottest stacks with their share of its samples, its time
//! over the last tick as `--victim` accounts for it, and the run-queue blame it is part of
//! (who delays it, whom it delays).

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    text::Line,
    widgets::{Block, Borders, Paragraph, Widget as _, Wrap},
};

use std::collections::BTreeMap;

use super::{format, style::Palette};
use crate::{
    report::{Report, Victim},
    symbolize::FoldedStack,
};

/// Frames shown per stack, leaf first: enough to say where, short enough for one line.
const FRAMES: usize = 4;

/// One side of a blame relation, summed over the ticks seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlameLine {
    pub pid: u32,
    pub comm: String,
    pub delay_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detail {
    pub pid: u32,
    pub comm: String,
    /// Hottest stacks, root first in each, most sampled first.
    pub stacks: Vec<FoldedStack>,
    /// Processes that held the CPU while this one waited for it.
    pub delayed_by: Vec<BlameLine>,
    /// Processes that waited while this one held their CPU.
    pub delays: Vec<BlameLine>,
    /// Its time over the last tick, as `diagnose --victim` accounts for it; `None` when it
    /// did not run in it.
    pub time: Option<Victim>,
}

/// Run-queue delays between two processes, summed over every tick since `top` started.
#[derive(Debug, Default)]
pub struct BlameTotals(BTreeMap<(u32, u32), (String, String, u64)>);

impl BlameTotals {
    pub fn add(&mut self, report: &Report) {
        for b in &report.blame {
            let entry = self
                .0
                .entry((b.culprit_pid, b.victim_pid))
                .or_insert_with(|| (b.culprit_comm.clone(), b.victim_comm.clone(), 0));
            entry.2 += b.delay_ns;
        }
    }

    /// (who delays `pid`, whom `pid` delays), largest delay first.
    pub fn of(&self, pid: u32) -> (Vec<BlameLine>, Vec<BlameLine>) {
        let mut delayed_by = Vec::new();
        let mut delays = Vec::new();
        for (&(culprit, victim), (culprit_comm, victim_comm, ns)) in &self.0 {
            if victim == pid && culprit != pid {
                delayed_by.push(BlameLine {
                    pid: culprit,
                    comm: culprit_comm.clone(),
                    delay_ns: *ns,
                });
            }
            if culprit == pid && victim != pid {
                delays.push(BlameLine {
                    pid: victim,
                    comm: victim_comm.clone(),
                    delay_ns: *ns,
                });
            }
        }
        for list in [&mut delayed_by, &mut delays] {
            list.sort_by_key(|b| std::cmp::Reverse(b.delay_ns));
            list.truncate(DETAIL_BLAME);
        }
        (delayed_by, delays)
    }
}

/// Blame lines per side in the detail view.
const DETAIL_BLAME: usize = 8;

fn stack_lines(detail: &Detail) -> Vec<Line<'static>> {
    let total: u64 = detail.stacks.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return vec![Line::from(
            " no stack samples yet (needs the cpu signal and time on a CPU)",
        )];
    }
    detail
        .stacks
        .iter()
        .map(|(frames, count)| {
            let leaf_first: Vec<&str> = frames
                .iter()
                .rev()
                .take(FRAMES)
                .map(String::as_str)
                .collect();
            Line::from(format!(
                " {:>5.1}%  {}",
                *count as f64 * 100.0 / total as f64,
                leaf_first.join(" ← ")
            ))
        })
        .collect()
}

/// Its time over the last tick, then the verdict in its words.
fn time_lines(time: Option<&Victim>) -> Vec<Line<'static>> {
    let Some(time) = time else {
        return vec![Line::from(" last tick: it did not run")];
    };
    let asleep = time.blocked_ns.map_or_else(String::new, |ns| {
        format!(", asleep {}", format::duration_ns(ns))
    });
    vec![
        Line::from(format!(
            " last tick: on a CPU {}, waiting for a CPU {}{asleep}",
            format::duration_ns(time.on_cpu_ns),
            format::duration_ns(time.runq_wait_ns),
        )),
        Line::from(format!(" {}", time.verdict)),
        Line::from(""),
    ]
}

fn blame_lines(title: &str, lines: &[BlameLine]) -> Vec<Line<'static>> {
    let mut out = vec![Line::from(format!(" {title}:"))];
    if lines.is_empty() {
        out.push(Line::from("   nobody measured"));
    }
    out.extend(lines.iter().map(|b| {
        Line::from(format!(
            "   {:>9}  {} (pid {})",
            format::duration_ns(b.delay_ns),
            b.comm,
            b.pid
        ))
    }));
    out
}

pub fn render(detail: &Detail, color: bool, area: Rect, buf: &mut Buffer) {
    let palette = Palette::new(color);
    let stacks = stack_lines(detail);
    let height = u16::try_from(stacks.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2);
    let [top, bottom] = Layout::vertical([Constraint::Max(height), Constraint::Min(0)]).areas(area);
    Paragraph::new(stacks)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(
                    " {} (pid {}): hottest stacks, leaf first ",
                    detail.comm, detail.pid
                ))
                .title_style(palette.verdict),
        )
        .render(top, buf);
    let mut lines = time_lines(detail.time.as_ref());
    lines.extend(blame_lines(
        "delayed by (held the CPU it waited for)",
        &detail.delayed_by,
    ));
    lines.extend(blame_lines("delays (waited while it ran)", &detail.delays));
    lines.push(Line::from(""));
    lines.push(Line::from(" Esc: back to the table").style(palette.hint));
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" its time last tick; run-queue blame since top started "),
        )
        .render(bottom, buf);
}
