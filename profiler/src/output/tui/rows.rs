//! The table's rows: one per process or per application, with per-second figures taken from a
//! tick report, and how they are grouped, sorted and filtered.

use std::{cmp::Ordering, collections::HashSet};

use crate::{
    analyze::figures::{Figure, Tick, member},
    report::{AppKind, Report},
};

/// What one row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grouping {
    #[default]
    Process,
    /// Applications by command name.
    Comm,
    /// Applications by executable.
    Exe,
    /// Applications by what their cgroups name: container, pod, systemd unit, session.
    Workload,
    /// Applications by cgroup path.
    Cgroup,
}

impl Grouping {
    pub fn next(self) -> Self {
        match self {
            Self::Process => Self::Comm,
            Self::Comm => Self::Exe,
            Self::Exe => Self::Workload,
            Self::Workload => Self::Cgroup,
            Self::Cgroup => Self::Process,
        }
    }

    /// What `count` rows are, e.g. "3 processes", "1 app by comm".
    pub fn describe(self, count: usize) -> String {
        let noun = match (self, count) {
            (Self::Process, 1) => "process",
            (Self::Process, _) => "processes",
            (_, 1) => "app",
            _ => "apps",
        };
        match self {
            Self::Process => format!("{count} {noun}"),
            Self::Comm => format!("{count} {noun} by comm"),
            Self::Exe => format!("{count} {noun} by executable"),
            Self::Workload => format!("{count} {noun} by container, unit or session"),
            Self::Cgroup => format!("{count} {noun} by cgroup"),
        }
    }
}

/// A table column, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Pid,
    Name,
    Cpu,
    Wait,
    Syscalls,
    Read,
    Write,
    Tx,
    Rx,
    Rss,
}

impl Column {
    pub const ALL: [Self; 10] = [
        Self::Pid,
        Self::Name,
        Self::Cpu,
        Self::Wait,
        Self::Syscalls,
        Self::Read,
        Self::Write,
        Self::Tx,
        Self::Rx,
        Self::Rss,
    ];

    pub fn header(self, grouping: Grouping) -> &'static str {
        match self {
            Self::Pid if grouping == Grouping::Process => "PID",
            Self::Pid => "PROCS",
            Self::Name => "NAME",
            Self::Cpu => "CPU",
            Self::Wait => "WAIT ms/s",
            Self::Syscalls => "SYSC/s",
            Self::Read => "READ/s",
            Self::Write => "WRITE/s",
            Self::Tx => "TX/s",
            Self::Rx => "RX/s",
            Self::Rss => "RSS",
        }
    }

    /// Names and pids read naturally upwards; every resource is most useful busiest first.
    pub fn descending_by_default(self) -> bool {
        !matches!(self, Self::Pid | Self::Name)
    }

    fn position(self) -> usize {
        Self::ALL.iter().position(|&c| c == self).unwrap_or(0)
    }

    pub fn left(self) -> Self {
        Self::ALL[(self.position() + Self::ALL.len() - 1) % Self::ALL.len()]
    }

    pub fn right(self) -> Self {
        Self::ALL[(self.position() + 1) % Self::ALL.len()]
    }
}

/// One line of the table. Per-second figures are `None` when their signal did not measure them.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The process, or for a group its busiest member: what Enter opens.
    pub pid: u32,
    /// Processes behind the row (1 for a process).
    pub processes: u64,
    pub name: String,
    pub cores: f64,
    pub wait_ms_per_s: Option<f64>,
    pub syscalls_per_s: Option<f64>,
    pub read_per_s: Option<f64>,
    pub write_per_s: Option<f64>,
    pub tx_per_s: Option<f64>,
    pub rx_per_s: Option<f64>,
    pub rss_bytes: Option<f64>,
    /// Named among the report's suspects (for a group: any of its processes is).
    pub suspect: bool,
}

impl Row {
    fn key(&self, column: Column) -> Option<f64> {
        match column {
            Column::Pid => Some(f64::from(self.pid)),
            Column::Name => None,
            Column::Cpu => Some(self.cores),
            Column::Wait => self.wait_ms_per_s,
            Column::Syscalls => self.syscalls_per_s,
            Column::Read => self.read_per_s,
            Column::Write => self.write_per_s,
            Column::Tx => self.tx_per_s,
            Column::Rx => self.rx_per_s,
            Column::Rss => self.rss_bytes,
        }
    }
}

/// The rows of `report` (one tick) grouped as asked, in the report's order (busiest first).
pub fn rows(report: &Report, grouping: Grouping) -> Vec<Row> {
    // An application suspect marks each of its processes.
    let suspects: HashSet<u32> = report
        .suspects
        .iter()
        .flat_map(|s| std::iter::once(s.pid).chain(s.app.iter().flat_map(|a| a.pids.clone())))
        .collect();
    // A tick without a length has no rates: its rows show no figures but CPU.
    let tick = Tick::new(report);
    let tick = tick.as_ref();
    match grouping {
        Grouping::Process => report
            .processes
            .iter()
            .map(|p| Row {
                pid: p.pid,
                processes: 1,
                name: crate::output::table::one_line(&p.comm),
                cores: p.cpu.cores,
                suspect: suspects.contains(&p.pid),
                ..with_figures(|figure| tick?.process_section(figure, p))
            })
            .collect(),
        Grouping::Comm | Grouping::Exe | Grouping::Workload | Grouping::Cgroup => {
            let shown = |kind: AppKind| match grouping {
                Grouping::Comm => kind == AppKind::Comm,
                Grouping::Exe => kind == AppKind::Exe,
                Grouping::Cgroup => kind == AppKind::Cgroup,
                _ => matches!(
                    kind,
                    AppKind::Unit | AppKind::Container | AppKind::Pod | AppKind::Session
                ),
            };
            report
                .apps
                .iter()
                .filter(|app| shown(app.kind))
                .map(|app| {
                    let members: Vec<_> =
                        report.processes.iter().filter(|p| member(app, p)).collect();
                    Row {
                        // Processes come busiest first, so the first member is the busiest.
                        pid: members.first().map_or(0, |p| p.pid),
                        processes: app.processes,
                        name: crate::output::table::one_line(&match grouping {
                            Grouping::Workload => format!("{} {}", app.kind, app.name),
                            _ => app.name.clone(),
                        }),
                        cores: app.cpu.cores,
                        suspect: members.iter().any(|p| suspects.contains(&p.pid)),
                        ..with_figures(|figure| tick?.app_section(figure, app))
                    }
                })
                .collect()
        }
    }
}

/// A row with its figures read from the table of figures (`read`); the caller fills in the
/// rest.
fn with_figures(read: impl Fn(Figure) -> Option<f64>) -> Row {
    Row {
        pid: 0,
        processes: 0,
        name: String::new(),
        cores: 0.0,
        wait_ms_per_s: read(Figure::SchedRunqWaitRatio).map(|ratio| ratio * 1e3),
        syscalls_per_s: read(Figure::SyscallsRate),
        read_per_s: read(Figure::IoReadBytesRate),
        write_per_s: read(Figure::IoWriteBytesRate),
        tx_per_s: read(Figure::NetTxBytesRate),
        rx_per_s: read(Figure::NetRxBytesRate),
        rss_bytes: read(Figure::MemRssBytes),
        suspect: false,
    }
}

/// Sorts by `column`; rows without the figure go last either way, ties by name then pid so the
/// order does not flicker between ticks.
pub fn sort(rows: &mut [Row], column: Column, descending: bool) {
    rows.sort_by(|a, b| {
        let primary = if column == Column::Name {
            a.name.to_lowercase().cmp(&b.name.to_lowercase())
        } else {
            match (a.key(column), b.key(column)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => return Ordering::Less,
                (None, Some(_)) => return Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        };
        let primary = if descending {
            primary.reverse()
        } else {
            primary
        };
        primary
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.pid.cmp(&b.pid))
    });
}

/// Keeps the rows whose name (or pid) contains `filter`, ignoring case.
pub fn filter(rows: &mut Vec<Row>, filter: &str) {
    if filter.is_empty() {
        return;
    }
    let needle = filter.to_lowercase();
    rows.retain(|row| {
        row.name.to_lowercase().contains(&needle) || row.pid.to_string().contains(&needle)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tui::fixtures::report;

    #[test]
    fn per_second_figures_come_from_the_tick_length() {
        let rows = rows(&report(), Grouping::Process);
        let burner = rows.iter().find(|r| r.name == "burner").unwrap();
        assert!(burner.suspect);
        assert_eq!(burner.cores, 0.98);
        // 392 ms of wait over a 2 s tick.
        assert_eq!(burner.wait_ms_per_s, Some(196.0));
        assert_eq!(burner.read_per_s, Some(1024.0));
        let sleeper = rows.iter().find(|r| r.name == "sleeper").unwrap();
        assert_eq!(sleeper.rss_bytes, None);
    }

    #[test]
    fn missing_figures_sort_last_both_ways() {
        let mut rows = rows(&report(), Grouping::Process);
        sort(&mut rows, Column::Rss, true);
        assert_eq!(rows.last().unwrap().name, "sleeper");
        sort(&mut rows, Column::Rss, false);
        assert_eq!(rows.last().unwrap().name, "sleeper");
        sort(&mut rows, Column::Pid, false);
        assert!(rows.windows(2).all(|w| w[0].pid < w[1].pid));
    }

    #[test]
    fn apps_sum_their_members() {
        let rows = rows(&report(), Grouping::Comm);
        let worker = rows.iter().find(|r| r.name == "worker").unwrap();
        assert_eq!(worker.processes, 2);
        assert_eq!(worker.rss_bytes, Some(3.0 * 1024.0 * 1024.0));
        assert_eq!(worker.pid, 300);
    }

    #[test]
    fn filter_matches_name_or_pid_ignoring_case() {
        let mut all = rows(&report(), Grouping::Process);
        filter(&mut all, "BURN");
        assert_eq!(all.len(), 1);
        let mut all = rows(&report(), Grouping::Process);
        filter(&mut all, "301");
        assert_eq!(all[0].pid, 301);
    }
}
