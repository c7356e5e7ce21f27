//! The per-process figures of a tick, declared once: each figure's name, unit and signal and
//! how it is read off a report's process and application. Alert rules, the metrics' gauges
//! and `top`'s columns all read them here, so a figure is added in one row.

use std::collections::HashMap;

use crate::{
    report::{App, AppKind, Process, Report},
    signals::{Signal, SignalState},
};

/// A per-tick figure of a process (or, where applications have the total, of an application).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Figure {
    CpuCores,
    CpuHostPercent,
    SchedRunqWaitRatio,
    SchedDelayCausedRatio,
    SyscallsRate,
    SyscallsErrorRate,
    IoReadBytesRate,
    IoWriteBytesRate,
    IoBytesRate,
    NetTxBytesRate,
    NetRxBytesRate,
    NetBytesRate,
    MemRssBytes,
    MemMajorFaultsRate,
    SpawnRate,
}

/// What a figure counts, which decides the units its threshold may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// CPUs' worth: 1.0 is one full core.
    Cores,
    /// Already a percentage (0-100).
    Percent,
    /// A share, where 1.0 is all of the tick (or a CPU's worth of it).
    Ratio,
    /// Events per second.
    EventRate,
    /// Bytes per second.
    ByteRate,
    /// Bytes.
    Bytes,
}

/// What a process the report has no section for is worth, when the figure's signal was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Nothing happened: a process that never left a CPU has no sched section, yet never
    /// waited.
    Zero,
    /// Never read (a process gone before /proc was read has no resident set): unknown.
    Unknown,
}

type ProcessRead = fn(&Tick, &Process) -> Option<f64>;
type AppRead = fn(&Tick, &App) -> Option<f64>;

/// One figure, declared once.
pub struct Declaration {
    pub figure: Figure,
    /// As alert rules and their events spell it.
    pub name: &'static str,
    pub kind: Kind,
    /// The signal that measures it. The `cpu` figures keep a value with the cpu signal off:
    /// on-CPU time comes from the scheduler hook, which always runs; only the stacks go.
    pub signal: Signal,
    pub missing: Missing,
    /// Whether alert rules may name it on applications: a sum of resident sets double-counts
    /// shared pages, and applications carry no fault or spawn totals.
    pub on_apps: bool,
    /// The process's value; `None` when the report has no section for it.
    process: ProcessRead,
    /// The application's value; `None` when the report has no total for it.
    app: AppRead,
}

const fn declare(
    figure: Figure,
    name: &'static str,
    kind: Kind,
    signal: Signal,
    process: ProcessRead,
    app: Option<AppRead>,
) -> Declaration {
    let (on_apps, app) = match app {
        Some(app) => (true, app),
        None => (false, no_total as AppRead),
    };
    Declaration {
        figure,
        name,
        kind,
        signal,
        missing: Missing::Zero,
        on_apps,
        process,
        app,
    }
}

fn no_total(_: &Tick, _: &App) -> Option<f64> {
    None
}

/// Every figure, in the order of [`Figure`]'s variants.
pub const FIGURES: [Declaration; 15] = [
    declare(
        Figure::CpuCores,
        "cpu.cores",
        Kind::Cores,
        Signal::Cpu,
        |_, p| Some(p.cpu.cores),
        Some(|_, app| Some(app.cpu.cores)),
    ),
    declare(
        Figure::CpuHostPercent,
        "cpu.host_percent",
        Kind::Percent,
        Signal::Cpu,
        |_, p| Some(p.cpu.host_percent),
        Some(|t, app| Some(app.cpu.cores / f64::from(t.report.cpus.max(1)) * 100.0)),
    ),
    declare(
        Figure::SchedRunqWaitRatio,
        "sched.runq_wait_ratio",
        Kind::Ratio,
        Signal::Sched,
        |t, p| p.sched.as_ref().map(|s| t.ratio(s.runq_wait_ns)),
        Some(|t, app| app.sched.as_ref().map(|s| t.ratio(s.runq_wait_ns))),
    ),
    declare(
        Figure::SchedDelayCausedRatio,
        "sched.delay_caused_ratio",
        Kind::Ratio,
        Signal::Sched,
        |t, p| t.delay_caused.get(&p.pid).map(|&ns| t.ratio(ns)),
        Some(|t, app| Some(t.ratio(t.app_delay_caused_ns(app)))),
    ),
    declare(
        Figure::SyscallsRate,
        "syscalls.rate",
        Kind::EventRate,
        Signal::Syscalls,
        |t, p| p.syscalls.as_ref().map(|s| t.rate(s.count)),
        Some(|t, app| app.syscalls.as_ref().map(|s| t.rate(s.count))),
    ),
    declare(
        Figure::SyscallsErrorRate,
        "syscalls.error_rate",
        Kind::EventRate,
        // Errors need the exit hook.
        Signal::SyscallTime,
        |t, p| p.syscalls.as_ref().map(|s| t.rate(s.errors)),
        Some(|t, app| app.syscalls.as_ref().map(|s| t.rate(s.errors))),
    ),
    declare(
        Figure::IoReadBytesRate,
        "io.read_bytes_rate",
        Kind::ByteRate,
        Signal::Io,
        |t, p| p.io.map(|io| t.rate(io.read_bytes)),
        Some(|t, app| app.io.as_ref().map(|io| t.rate(io.read_bytes))),
    ),
    declare(
        Figure::IoWriteBytesRate,
        "io.write_bytes_rate",
        Kind::ByteRate,
        Signal::Io,
        |t, p| p.io.map(|io| t.rate(io.write_bytes)),
        Some(|t, app| app.io.as_ref().map(|io| t.rate(io.write_bytes))),
    ),
    declare(
        Figure::IoBytesRate,
        "io.bytes_rate",
        Kind::ByteRate,
        Signal::Io,
        |t, p| p.io.map(|io| t.rate(io.read_bytes + io.write_bytes)),
        Some(|t, app| {
            app.io
                .as_ref()
                .map(|io| t.rate(io.read_bytes + io.write_bytes))
        }),
    ),
    declare(
        Figure::NetTxBytesRate,
        "net.tx_bytes_rate",
        Kind::ByteRate,
        Signal::Net,
        |t, p| p.net.map(|net| t.rate(net.tx_bytes)),
        Some(|t, app| app.net.map(|net| t.rate(net.tx_bytes))),
    ),
    declare(
        Figure::NetRxBytesRate,
        "net.rx_bytes_rate",
        Kind::ByteRate,
        Signal::Net,
        |t, p| p.net.map(|net| t.rate(net.rx_bytes)),
        Some(|t, app| app.net.map(|net| t.rate(net.rx_bytes))),
    ),
    declare(
        Figure::NetBytesRate,
        "net.bytes_rate",
        Kind::ByteRate,
        Signal::Net,
        |t, p| p.net.map(|net| t.rate(net.tx_bytes + net.rx_bytes)),
        Some(|t, app| app.net.map(|net| t.rate(net.tx_bytes + net.rx_bytes))),
    ),
    Declaration {
        missing: Missing::Unknown,
        // What `top` shows for a group: its members' sum, shared pages counted in each.
        app: |t, app| t.members_rss(app),
        ..declare(
            Figure::MemRssBytes,
            "mem.rss_bytes",
            Kind::Bytes,
            Signal::Mem,
            |_, p| Some(p.mem?.rss_bytes? as f64),
            None,
        )
    },
    declare(
        Figure::MemMajorFaultsRate,
        "mem.major_faults_rate",
        Kind::EventRate,
        Signal::Mem,
        |t, p| p.mem.map(|mem| t.rate(mem.major_faults)),
        None,
    ),
    declare(
        Figure::SpawnRate,
        "spawn.rate",
        Kind::EventRate,
        Signal::Processes,
        |t, p| Some(t.rate(p.spawned)),
        None,
    ),
];

impl Kind {
    /// For error messages: what the figure's numbers mean.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Cores => "CPUs' worth, 1 = one full core",
            Self::Percent => "a percentage of the host",
            Self::Ratio => "a ratio, 1 = the whole tick",
            Self::EventRate => "a count per second",
            Self::ByteRate => "bytes per second",
            Self::Bytes => "bytes",
        }
    }

    /// For error messages: the units a threshold of this kind may carry.
    pub fn units(self) -> &'static str {
        match self {
            Self::Cores | Self::Ratio => "no unit, or % (50% = 0.5)",
            Self::Percent => "no unit or %",
            Self::EventRate => "no unit, K, M, G or T",
            Self::ByteRate | Self::Bytes => {
                "no unit, B, K/M/G/T or KB/MB/GB/TB (powers of 1000), KiB/MiB/GiB/TiB (of 1024)"
            }
        }
    }
}

impl Figure {
    pub fn all() -> impl Iterator<Item = Self> {
        FIGURES.iter().map(|declared| declared.figure)
    }

    pub fn declared(self) -> &'static Declaration {
        &FIGURES[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.declared().name
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::all().find(|figure| figure.name() == name)
    }

    pub fn kind(self) -> Kind {
        self.declared().kind
    }

    pub fn signal(self) -> Signal {
        self.declared().signal
    }

    /// Whether alert rules may name it on a `--victim`: summed over the victim's processes.
    /// What a victim causes others is not what the victim suffers, so not that one.
    pub fn on_victims(self) -> bool {
        self.on_apps() && self != Self::SchedDelayCausedRatio
    }

    pub fn on_apps(self) -> bool {
        self.declared().on_apps
    }
}

/// One tick's report, indexed for reading figures. `None` from `new` for a report without a
/// positive length, where no rate means anything.
pub struct Tick<'a> {
    report: &'a Report,
    secs: f64,
    /// Newest entry per pid: blame names processes by pid alone.
    by_pid: HashMap<u32, &'a Process>,
    /// Run-queue wait of other processes spent behind each pid, in nanoseconds.
    delay_caused: HashMap<u32, u64>,
}

impl<'a> Tick<'a> {
    pub fn new(report: &'a Report) -> Option<Self> {
        let secs = report.duration_s;
        if !(secs.is_finite() && secs > 0.0) {
            return None;
        }
        let mut by_pid = HashMap::with_capacity(report.processes.len());
        for process in &report.processes {
            by_pid
                .entry(process.pid)
                .and_modify(|known: &mut &Process| {
                    if process.start_time > known.start_time {
                        *known = process;
                    }
                })
                .or_insert(process);
        }
        // The report keeps the largest blame pairs only, so on a host with very many pairs
        // this is a lower bound.
        let mut delay_caused = HashMap::new();
        for b in report
            .blame
            .iter()
            .filter(|b| b.culprit_pid != b.victim_pid)
        {
            *delay_caused.entry(b.culprit_pid).or_default() += b.delay_ns;
        }
        Some(Self {
            report,
            secs,
            by_pid,
            delay_caused,
        })
    }

    pub fn report(&self) -> &'a Report {
        self.report
    }

    pub fn secs(&self) -> f64 {
        self.secs
    }

    fn rate(&self, count: u64) -> f64 {
        count as f64 / self.secs
    }

    /// Nanoseconds as a share of the tick.
    fn ratio(&self, ns: u64) -> f64 {
        ns as f64 / (self.secs * 1e9)
    }

    /// Whether the figure's signal measured this tick. The cpu figures always are.
    pub fn measured(&self, figure: Figure) -> bool {
        figure.signal() == Signal::Cpu
            || self
                .report
                .signals
                .get(&figure.signal())
                .is_some_and(SignalState::is_on)
    }

    /// The figure as the report has it for one process: `None` where it has no section.
    pub fn process_section(&self, figure: Figure, p: &Process) -> Option<f64> {
        (figure.declared().process)(self, p)
    }

    /// The figure as the report has it for one application: `None` where it has no total.
    pub fn app_section(&self, figure: Figure, app: &App) -> Option<f64> {
        (figure.declared().app)(self, app)
    }

    /// The figure for one process as a rule compares it; `None` when its signal did not
    /// measure it this tick, or it was never read.
    pub fn process_value(&self, figure: Figure, p: &Process) -> Option<f64> {
        if !self.measured(figure) {
            return None;
        }
        match (self.process_section(figure, p), figure.declared().missing) {
            (Some(value), _) => Some(value),
            (None, Missing::Zero) => Some(0.0),
            (None, Missing::Unknown) => None,
        }
    }

    /// The figure for one application as a rule compares it; `None` when its signal did not
    /// measure it this tick or rules cannot name it on applications.
    pub fn app_value(&self, figure: Figure, app: &App) -> Option<f64> {
        if !self.measured(figure) || !figure.on_apps() {
            return None;
        }
        Some(self.app_section(figure, app).unwrap_or(0.0))
    }

    /// Run-queue wait the application's processes caused processes outside it.
    fn app_delay_caused_ns(&self, app: &App) -> u64 {
        self.report
            .blame
            .iter()
            .filter(|b| {
                self.in_app(app, b.culprit_pid, &b.culprit_comm)
                    && !self.in_app(app, b.victim_pid, &b.victim_comm)
            })
            .map(|b| b.delay_ns)
            .sum()
    }

    /// The resident sets of the application's processes, summed; `None` when none was read.
    fn members_rss(&self, app: &App) -> Option<f64> {
        self.members(app)
            .filter_map(|p| p.mem.and_then(|mem| mem.rss_bytes))
            .map(|bytes| bytes as f64)
            .reduce(|sum, bytes| sum + bytes)
    }

    /// Whether `pid` (named `comm` in blame) belongs to the application, by the same grouping
    /// report.json's apps use.
    pub fn in_app(&self, app: &App, pid: u32, comm: &str) -> bool {
        match self.by_pid.get(&pid) {
            Some(process) => member(app, process),
            // Not in this tick's processes: only its name is known.
            None => app.kind == AppKind::Comm && app.name == comm,
        }
    }

    /// The application's processes, busiest first (as the report sorts them).
    pub fn members<'b>(&'b self, app: &'b App) -> impl Iterator<Item = &'a Process> + 'b {
        self.report.processes.iter().filter(|p| member(app, p))
    }

    /// The application's busiest process this tick.
    pub fn app_busiest(&self, app: &App) -> Option<&'a Process> {
        self.members(app).next()
    }
}

/// Whether `p` is one of the application's processes.
pub fn member(app: &App, p: &Process) -> bool {
    super::apps::key(app.kind, p).is_some_and(|(name, id)| match (&app.id, id) {
        (Some(wanted), Some(id)) => wanted == id,
        _ => name == app.name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_in_the_order_of_the_variants() {
        for (index, declared) in FIGURES.iter().enumerate() {
            assert_eq!(declared.figure as usize, index, "{}", declared.name);
        }
    }

    #[test]
    fn names_are_unique_and_found_again() {
        for figure in Figure::all() {
            assert_eq!(Figure::from_name(figure.name()), Some(figure));
        }
    }
}
