//! `top --once`: the same rows as the screen, as a plain text table for scripts and pipes.

use std::fmt::Write as _;

use super::{
    format,
    rows::{self, Column, Grouping},
};
use crate::report::Report;

/// The verdict, then every process of the tick, busiest first.
pub fn render(report: &Report) -> String {
    let mut rows = rows::rows(report, Grouping::Process);
    rows::sort(&mut rows, Column::Cpu, true);
    let mut out = String::new();
    let _ = writeln!(out, "{}", crate::output::table::one_line(&report.verdict));
    let _ = writeln!(
        out,
        "host: {} ({} CPUs) over {:.1} s",
        crate::analyze::host_load(report),
        report.cpus,
        report.duration_s
    );
    let _ = writeln!(
        out,
        "{:>7}  {:<16} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} SUSPECT",
        "PID", "NAME", "CPU", "WAITms/s", "SYSC/s", "READ/s", "WRITE/s", "TX/s", "RX/s", "RSS"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:>7}  {} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {}",
            row.pid,
            crate::output::table::fit(&row.name, 16, crate::output::table::Keep::Head),
            format::cores(row.cores),
            format::optional(row.wait_ms_per_s, format::wait),
            format::optional(row.syscalls_per_s, format::rate),
            format::optional(row.read_per_s, format::bytes),
            format::optional(row.write_per_s, format::bytes),
            format::optional(row.tx_per_s, format::bytes),
            format::optional(row.rx_per_s, format::bytes),
            format::optional(row.rss_bytes, format::bytes),
            if row.suspect { "yes" } else { "" },
        );
    }
    crate::output::table::terminal_safe(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tui::fixtures::report;

    #[test]
    fn busiest_first_after_the_header() {
        let text = render(&report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], report().verdict);
        assert!(lines[2].trim_start().starts_with("PID"));
        assert!(
            lines[3].contains("burner") && lines[3].ends_with("yes"),
            "{text}"
        );
        assert!(lines.last().unwrap().contains("sleeper"));
    }
}
