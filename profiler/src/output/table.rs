//! The terminal top-consumer table and the verdict paragraph.

use std::fmt::Write as _;

use crate::report::Report;

const ROWS: usize = 15;
const BLAME_ROWS: usize = 5;

/// Which end of a too-wide text a column keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Names: their start tells them apart.
    Head,
    /// Paths: their file name is at the end.
    Tail,
}

/// `text` in exactly `width` terminal columns: cut with `…` on the side `keep` does not keep
/// when wider, padded with spaces after it when narrower. Counted in columns, not characters,
/// so a name in CJK characters (two columns each) or with combining marks (none) keeps the
/// columns after it aligned.
pub fn fit(text: &str, width: usize, keep: Keep) -> String {
    use unicode_width::{UnicodeWidthChar as _, UnicodeWidthStr as _};
    let columns = text.width();
    let mut out = if columns <= width {
        text.to_owned()
    } else {
        let mut kept = Vec::new();
        let mut used = 1; // the ellipsis
        let chars: Box<dyn Iterator<Item = char>> = match keep {
            Keep::Head => Box::new(text.chars()),
            Keep::Tail => Box::new(text.chars().rev()),
        };
        for c in chars {
            let w = c.width().unwrap_or(0);
            if used + w > width {
                break;
            }
            used += w;
            kept.push(c);
        }
        match keep {
            Keep::Head => format!("{}…", kept.into_iter().collect::<String>()),
            Keep::Tail => format!("…{}", kept.into_iter().rev().collect::<String>()),
        }
    };
    let pad = width.saturating_sub(out.width());
    out.extend(std::iter::repeat_n(' ', pad));
    out
}

fn millis(ns: u64) -> String {
    format!("{:.1}ms", ns as f64 / 1e6)
}

/// Text for a terminal, where process names (anyone's to choose) could otherwise carry escape
/// sequences that move the cursor, retitle the window or worse: every control character but the
/// line breaks this module writes becomes U+FFFD, and so does every bidirectional formatting
/// character, which would let a name reorder how the rest of its line reads.
pub fn terminal_safe(text: &str) -> String {
    replace_unsafe(text, |c| c == '\n')
}

/// `terminal_safe` for one line or one cell: a line break in a name becomes U+FFFD too, so it
/// cannot start a row of its own (or a log line that looks like the profiler's).
pub fn one_line(text: &str) -> String {
    replace_unsafe(text, |_| false)
}

fn replace_unsafe(text: &str, allowed: impl Fn(char) -> bool) -> String {
    text.chars()
        .map(|c| {
            if (c.is_control() && !allowed(c)) || is_bidi_control(c) {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

/// Unicode's explicit directional marks, embeddings, overrides and isolates (UAX #9).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    // The question asked first is answered first.
    if let Some(victim) = &report.victim {
        let _ = writeln!(out, "Victim: {}", one_line(&victim.verdict));
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "Top CPU consumers over {:.1} s on {} CPUs (host {:.0}% busy, {} samples, {} idle)",
        report.duration_s,
        report.cpus,
        report.host.busy_percent,
        report.samples.total,
        report.samples.idle
    );
    let _ = writeln!(
        out,
        "{:>4} {:>8}  {:<16} {:<28} {:>6} {:>6} {:>8} {:>10} {:>9} {:>10} {:>8} {:>8}",
        "RANK",
        "PID",
        "COMM",
        "EXE",
        "CORES",
        "%HOST",
        "SAMPLES",
        "RUNQ-WAIT",
        "RUNQ-P99",
        "SYSCALLS/S",
        "IO-MB/S",
        "NET-MB/S"
    );
    for (p, rank) in report.processes.iter().take(ROWS).zip(1..) {
        out.push_str(&row(rank, p));
    }
    if report.processes.len() > ROWS {
        let _ = writeln!(
            out,
            "     ... {} more in report.json",
            report.processes.len() - ROWS
        );
    }
    blame(&mut out, report);
    let _ = writeln!(out);
    let _ = writeln!(out, "Verdict: {}", one_line(&report.verdict));
    terminal_safe(&out)
}

/// One process's line of the table.
fn row(rank: usize, p: &crate::report::Process) -> String {
    let exe = p
        .exe
        .as_deref()
        .unwrap_or(if p.exited { "(exited)" } else { "-" });
    let (wait, p99) = p.sched.as_ref().map_or_else(
        || ("-".to_owned(), "-".to_owned()),
        |s| (millis(s.runq_wait_ns), millis(s.runq_p99_ns)),
    );
    let syscalls = p
        .syscalls
        .as_ref()
        .map_or_else(|| "-".to_owned(), |s| format!("{:.0}", s.per_second));
    let rate = |bytes_per_second: Option<f64>| {
        bytes_per_second.map_or_else(|| "-".to_owned(), |b| format!("{:.1}", b / 1e6))
    };
    let io = rate(p.io.map(|io| io.bytes_per_second));
    let net = rate(p.net.map(|net| net.bytes_per_second));
    format!(
        "{rank:>4} {:>8}  {} {} {:>6.2} {:>5.1}% {:>8} {wait:>10} {p99:>9} {syscalls:>10} {io:>8} {net:>8}\n",
        p.pid,
        fit(&one_line(&p.comm), 16, Keep::Head),
        fit(&one_line(exe), 28, Keep::Tail),
        p.cpu.cores,
        p.cpu.host_percent,
        p.cpu.samples
    )
}

/// The largest "who kept whom waiting" pairs, if any.
fn blame(out: &mut String, report: &Report) {
    if report.blame.is_empty() {
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Who kept whom waiting for a CPU:");
    for b in report.blame.iter().take(BLAME_ROWS) {
        let _ = writeln!(
            out,
            "  {} ({}) delayed {} ({}) by {}",
            one_line(&b.culprit_comm),
            b.culprit_pid,
            one_line(&b.victim_comm),
            b.victim_pid,
            millis(b.delay_ns)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_in_names_cannot_reach_the_terminal() {
        let safe = terminal_safe("evil\u{1b}]0;owned\u{7}\u{1b}[2J\nnext\tline");
        assert!(
            !safe.chars().any(|c| c.is_control() && c != '\n'),
            "{safe:?}"
        );
        assert!(safe.contains("evil"));
        assert_eq!(safe.lines().count(), 2);
        assert_eq!(terminal_safe("a\u{202e}gpj.exe"), "a\u{fffd}gpj.exe");
        assert_eq!(one_line("a\nb\r"), "a\u{fffd}b\u{fffd}");
    }

    #[test]
    fn long_paths_keep_their_tail_long_names_their_head() {
        assert_eq!(
            fit("/usr/local/bin/some-very-long-name", 10, Keep::Tail),
            "…long-name"
        );
        assert_eq!(fit("short", 10, Keep::Tail), "short     ");
        assert_eq!(fit("kworker/u8:1-ext4-rsv", 10, Keep::Head), "kworker/u…");
    }

    #[test]
    fn columns_are_counted_as_the_terminal_draws_them() {
        // Two columns per CJK character; a combining accent takes none.
        assert_eq!(fit("日本語", 8, Keep::Head), "日本語  ");
        assert_eq!(fit("日本語テスト", 8, Keep::Head), "日本語… ");
        assert_eq!(fit("e\u{301}x", 4, Keep::Head), "e\u{301}x  ");
        assert_eq!(fit("\u{fffd}\u{fffd}", 3, Keep::Head), "\u{fffd}\u{fffd} ");
    }
}
