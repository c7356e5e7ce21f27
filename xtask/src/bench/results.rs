//! What a sub-bench hands back: one row per condition (median, spread, ratio against its
//! baseline, goal and whether it was met, a note), and the two renderings of all rows, the table
//! printed at the end and the markdown of `bench/results.md`, written atomically.

use std::{fmt::Write as _, fs, io::Write as _, path::Path};

use anyhow::{Context as _, Result};

/// Median, min and max of one condition's samples.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for no samples.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (first, last) = (*sorted.first()?, *sorted.last()?);
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            f64::midpoint(sorted[mid - 1], sorted[mid])
        } else {
            sorted[mid]
        };
        Some(Self {
            median,
            min: first,
            max: last,
        })
    }
}

/// What a row must achieve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// Its median over the baseline's (a slowdown) is at most this.
    MaxSlowdown(f64),
    /// The throughput it loses against the baseline is at most this fraction.
    MaxLoss(f64),
    /// Its median, in the row's unit, is at most this.
    Max(f64),
    /// Its median, in the row's unit, is at least this.
    Min(f64),
}

/// One condition of one sub-bench.
#[derive(Debug, Clone)]
pub struct Row {
    pub bench: &'static str,
    pub condition: String,
    /// Of the median, min and max: "s", "req/s", "MiB", ...
    pub unit: &'static str,
    /// `None` when the condition did not run (a peer tool is missing, the bench failed).
    pub summary: Option<Summary>,
    pub runs: usize,
    /// Median over the median of the sub-bench's baseline (its first condition), where it has one.
    pub ratio: Option<f64>,
    pub goal: Option<Goal>,
    /// Why a goal is not met, why the row did not run, or what else the bench knows about it.
    pub note: Option<String>,
}

impl Row {
    /// A row measured from `samples`; no ratio, goal or note yet.
    pub fn measured(
        bench: &'static str,
        condition: impl Into<String>,
        unit: &'static str,
        samples: &[f64],
    ) -> Self {
        Self {
            bench,
            condition: condition.into(),
            unit,
            summary: Summary::of(samples),
            runs: samples.len(),
            ratio: None,
            goal: None,
            note: None,
        }
    }

    /// A row that did not run, saying why.
    pub fn skipped(bench: &'static str, condition: impl Into<String>, note: String) -> Self {
        Self {
            note: Some(note),
            ..Self::measured(bench, condition, "", &[])
        }
    }

    pub fn with_goal(mut self, goal: Goal) -> Self {
        self.goal = Some(goal);
        self
    }

    /// Whether the goal is met; `None` without a goal or without the figure it needs.
    pub fn met(&self) -> Option<bool> {
        match self.goal? {
            Goal::MaxSlowdown(most) => Some(self.ratio? <= most),
            Goal::MaxLoss(most) => Some(self.ratio? >= 1.0 - most),
            Goal::Max(most) => Some(self.summary?.median <= most),
            Goal::Min(least) => Some(self.summary?.median >= least),
        }
    }

    fn goal_text(&self) -> String {
        match self.goal {
            None => String::new(),
            Some(Goal::MaxSlowdown(most)) => format!("≤ {most:.2}x"),
            Some(Goal::MaxLoss(most)) => format!("≤ {} % loss", most * 100.0),
            Some(Goal::Max(most)) => format!("≤ {most} {}", self.unit),
            Some(Goal::Min(least)) => format!("≥ {least} {}", self.unit),
        }
    }

    fn met_text(&self) -> &'static str {
        match self.met() {
            None => "",
            Some(true) => "yes",
            Some(false) => "NO",
        }
    }

    fn median_text(&self) -> String {
        self.summary.map_or_else(
            || "-".to_owned(),
            |summary| format!("{} {}", number(summary.median), self.unit),
        )
    }

    fn spread_text(&self) -> String {
        self.summary.map_or_else(
            || "-".to_owned(),
            |summary| format!("{} – {}", number(summary.min), number(summary.max)),
        )
    }

    fn ratio_text(&self) -> String {
        self.ratio
            .map_or_else(String::new, |ratio| format!("{ratio:.3}x"))
    }
}

/// Sets `goal` on the row of `condition`.
pub fn set_goal(rows: &mut [Row], condition: &str, goal: Goal) {
    for row in rows.iter_mut().filter(|row| row.condition == condition) {
        row.goal = Some(goal);
    }
}

/// Three significant digits at most for small figures, none after the point for large ones.
fn number(value: f64) -> String {
    if value.abs() >= 1000.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

const HEADERS: [&str; 9] = [
    "bench",
    "condition",
    "median",
    "min – max",
    "runs",
    "ratio",
    "goal",
    "met?",
    "note",
];

fn cells(row: &Row) -> [String; 9] {
    [
        row.bench.to_owned(),
        row.condition.clone(),
        row.median_text(),
        row.spread_text(),
        row.runs.to_string(),
        row.ratio_text(),
        row.goal_text(),
        row.met_text().to_owned(),
        row.note.clone().unwrap_or_default(),
    ]
}

/// The plain-text table of every row, columns padded; notes last, unpadded.
pub fn table(rows: &[Row]) -> String {
    let all: Vec<[String; 9]> = rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(|header| header.chars().count());
    for row in &all {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADERS.map(str::to_owned);
    for line in std::iter::once(&header).chain(&all) {
        let mut text = String::new();
        for (index, (cell, width)) in line.iter().zip(widths).enumerate() {
            match index {
                // Figures right-aligned, names left-aligned.
                2..=5 => write!(text, "{cell:>width$}  "),
                8 => write!(text, "{cell}"),
                _ => write!(text, "{cell:<width$}  "),
            }
            .expect("writing to a String cannot fail");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// The markdown table of every row.
pub fn markdown_table(rows: &[Row]) -> String {
    let line = |cells: &[String]| {
        let escaped: Vec<String> = cells.iter().map(|cell| cell.replace('|', "\\|")).collect();
        format!("| {} |\n", escaped.join(" | "))
    };
    let mut out = line(&HEADERS.map(str::to_owned));
    out.push_str(&line(&HEADERS.map(|_| "---".to_owned())));
    for row in rows {
        out.push_str(&line(&cells(row)));
    }
    out
}

/// Writes the markdown results atomically: the header facts, what each sub-bench measures, the
/// table.
pub fn write_markdown(
    path: &Path,
    command: &str,
    facts: &[(&str, String)],
    benches: &[(&str, String)],
    rows: &[Row],
) -> Result<()> {
    let mut text = format!(
        "# Benchmark results\n\n\
         Written by `{command}`. Each sub-bench runs its conditions alternately, \
         in rotating order, and reports medians of its rounds; the ratio is the median, over \
         the rounds, of a condition's figure over the sub-bench's first condition (untraced) \
         in the same round, and is the headline: absolute figures depend on the machine and \
         on what else runs on it.\n\n| | |\n|---|---|\n"
    );
    for (label, value) in facts {
        text.push_str(&format!("| {label} | {} |\n", value.replace('|', "\\|")));
    }
    text.push_str("\n## Sub-benches\n\n");
    for (name, about) in benches {
        text.push_str(&format!(
            "- `{name}`: {about} (`cargo xtask bench {name} --help`)\n"
        ));
    }
    text.push_str("\n## Results\n\n");
    text.push_str(&markdown_table(rows));
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("could not create a file in {}", dir.display()))?;
    file.write_all(text.as_bytes())?;
    file.persist(path)
        .with_context(|| format!("could not write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_middle_values() {
        let odd = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((even.median, even.min, even.max), (2.5, 1.0, 4.0));
        assert!(Summary::of(&[]).is_none());
    }

    fn row(samples: &[f64], ratio: Option<f64>, goal: Goal) -> Row {
        Row {
            ratio,
            ..Row::measured("b", "c", "s", samples).with_goal(goal)
        }
    }

    #[test]
    fn goals_compare_the_right_figure() {
        assert_eq!(
            row(&[1.0], Some(1.5), Goal::MaxSlowdown(1.55)).met(),
            Some(true)
        );
        assert_eq!(
            row(&[1.0], Some(1.6), Goal::MaxSlowdown(1.55)).met(),
            Some(false)
        );
        assert_eq!(
            row(&[1.0], Some(0.99), Goal::MaxLoss(0.02)).met(),
            Some(true)
        );
        assert_eq!(
            row(&[1.0], Some(0.97), Goal::MaxLoss(0.02)).met(),
            Some(false)
        );
        assert_eq!(
            row(&[0.1, 0.2, 0.4], None, Goal::Max(0.3)).met(),
            Some(true)
        );
        assert_eq!(row(&[0.4], None, Goal::Max(0.3)).met(), Some(false));
        // No figure to compare: neither met nor unmet.
        assert_eq!(row(&[], None, Goal::Max(0.3)).met(), None);
        assert_eq!(row(&[1.0], None, Goal::MaxSlowdown(1.5)).met(), None);
    }

    #[test]
    fn tables_show_goal_and_note() {
        let mut rows = vec![
            Row {
                ratio: Some(1.0),
                ..Row::measured("syscalls", "untraced", "s", &[1.0, 1.2, 1.1])
            },
            Row {
                ratio: Some(1.8),
                note: Some("floor 1.4x".to_owned()),
                ..Row::measured("syscalls", "profiler", "s", &[1.8, 2.0, 1.9])
            },
            Row::skipped(
                "syscalls",
                "bpftrace",
                "bpftrace is not installed".to_owned(),
            ),
        ];
        set_goal(&mut rows, "profiler", Goal::MaxSlowdown(1.55));
        let markdown = markdown_table(&rows);
        assert!(
            markdown.contains(
                "| syscalls | profiler | 1.900 s | 1.800 – 2.000 | 3 | 1.800x | ≤ 1.55x | NO | floor 1.4x |"
            ),
            "{markdown}"
        );
        assert!(markdown.contains("| syscalls | bpftrace | - | - | 0 |"));
        let text = table(&rows);
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.lines().nth(2).unwrap().ends_with("NO    floor 1.4x"));
    }
}
