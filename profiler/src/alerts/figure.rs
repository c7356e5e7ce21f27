//! The figures alert rules compare: their names, units and signals, and their values for one
//! process or application over one tick's report.

use std::collections::{BTreeMap, HashMap};

use crate::{
    report::{App, AppKind, Process, Report},
    signals::{Signal, SignalState},
};

use super::event::Victim;

/// Victims listed in an alert's evidence.
const MAX_VICTIMS: usize = 5;

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
    pub const ALL: [Self; 15] = [
        Self::CpuCores,
        Self::CpuHostPercent,
        Self::SchedRunqWaitRatio,
        Self::SchedDelayCausedRatio,
        Self::SyscallsRate,
        Self::SyscallsErrorRate,
        Self::IoReadBytesRate,
        Self::IoWriteBytesRate,
        Self::IoBytesRate,
        Self::NetTxBytesRate,
        Self::NetRxBytesRate,
        Self::NetBytesRate,
        Self::MemRssBytes,
        Self::MemMajorFaultsRate,
        Self::SpawnRate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CpuCores => "cpu.cores",
            Self::CpuHostPercent => "cpu.host_percent",
            Self::SchedRunqWaitRatio => "sched.runq_wait_ratio",
            Self::SchedDelayCausedRatio => "sched.delay_caused_ratio",
            Self::SyscallsRate => "syscalls.rate",
            Self::SyscallsErrorRate => "syscalls.error_rate",
            Self::IoReadBytesRate => "io.read_bytes_rate",
            Self::IoWriteBytesRate => "io.write_bytes_rate",
            Self::IoBytesRate => "io.bytes_rate",
            Self::NetTxBytesRate => "net.tx_bytes_rate",
            Self::NetRxBytesRate => "net.rx_bytes_rate",
            Self::NetBytesRate => "net.bytes_rate",
            Self::MemRssBytes => "mem.rss_bytes",
            Self::MemMajorFaultsRate => "mem.major_faults_rate",
            Self::SpawnRate => "spawn.rate",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|figure| figure.name() == name)
    }

    pub fn kind(self) -> Kind {
        match self {
            Self::CpuCores => Kind::Cores,
            Self::CpuHostPercent => Kind::Percent,
            Self::SchedRunqWaitRatio | Self::SchedDelayCausedRatio => Kind::Ratio,
            Self::SyscallsRate | Self::SyscallsErrorRate => Kind::EventRate,
            Self::MemMajorFaultsRate | Self::SpawnRate => Kind::EventRate,
            Self::IoReadBytesRate | Self::IoWriteBytesRate | Self::IoBytesRate => Kind::ByteRate,
            Self::NetTxBytesRate | Self::NetRxBytesRate | Self::NetBytesRate => Kind::ByteRate,
            Self::MemRssBytes => Kind::Bytes,
        }
    }

    /// The signal (as `--signals` and report.json's `signals` name it) that measures the figure.
    /// Errors need the exit hook, so `syscalls.error_rate` names `syscall-time`. The `cpu`
    /// figures keep a value with the cpu signal off: on-CPU time comes from the scheduler hook,
    /// which always runs; only the stacks (and so `evidence.hottest`) go.
    pub fn signal(self) -> Signal {
        match self {
            Self::CpuCores | Self::CpuHostPercent => Signal::Cpu,
            Self::SchedRunqWaitRatio | Self::SchedDelayCausedRatio => Signal::Sched,
            Self::SyscallsRate => Signal::Syscalls,
            Self::SyscallsErrorRate => Signal::SyscallTime,
            Self::IoReadBytesRate | Self::IoWriteBytesRate | Self::IoBytesRate => Signal::Io,
            Self::NetTxBytesRate | Self::NetRxBytesRate | Self::NetBytesRate => Signal::Net,
            Self::MemRssBytes | Self::MemMajorFaultsRate => Signal::Mem,
            Self::SpawnRate => Signal::Processes,
        }
    }

    /// Whether applications have the figure: report.json's apps carry no memory or spawn totals
    /// (a sum of resident sets double-counts shared pages).
    pub fn on_apps(self) -> bool {
        !matches!(
            self,
            Self::MemRssBytes | Self::MemMajorFaultsRate | Self::SpawnRate
        )
    }
}

/// One tick's report, indexed for evaluating figures. `None` from `new` for a report without a
/// positive length, where no rate means anything.
pub struct Tick<'a> {
    report: &'a Report,
    secs: f64,
    /// Newest entry per pid: blame names processes by pid alone.
    by_pid: HashMap<u32, &'a Process>,
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
        Some(Self {
            report,
            secs,
            by_pid,
        })
    }

    pub fn secs(&self) -> f64 {
        self.secs
    }

    fn ns(&self) -> f64 {
        self.secs * 1e9
    }

    /// Measured this tick. The cpu figures are always measured (see `Figure::signal`).
    fn measured(&self, figure: Figure) -> bool {
        figure.signal() == Signal::Cpu
            || self
                .report
                .signals
                .get(&figure.signal())
                .is_some_and(SignalState::is_on)
    }

    /// The figure for one process; `None` when its signal did not measure it this tick. A
    /// measured section that is null means nothing happened (a process that never left a CPU
    /// has no sched section, yet never waited), so it counts as zero.
    pub fn process_value(&self, figure: Figure, p: &Process) -> Option<f64> {
        if !self.measured(figure) {
            return None;
        }
        let rate = |count: u64| count as f64 / self.secs;
        let value = match figure {
            Figure::CpuCores => p.cpu.cores,
            Figure::CpuHostPercent => p.cpu.host_percent,
            Figure::SchedRunqWaitRatio => {
                p.sched.as_ref().map_or(0, |s| s.runq_wait_ns) as f64 / self.ns()
            }
            Figure::SchedDelayCausedRatio => self.delay_caused_ns(p.pid) as f64 / self.ns(),
            Figure::SyscallsRate => rate(p.syscalls.as_ref().map_or(0, |s| s.count)),
            Figure::SyscallsErrorRate => rate(p.syscalls.as_ref().map_or(0, |s| s.errors)),
            Figure::IoReadBytesRate => rate(p.io.map_or(0, |io| io.read_bytes)),
            Figure::IoWriteBytesRate => rate(p.io.map_or(0, |io| io.write_bytes)),
            Figure::IoBytesRate => rate(p.io.map_or(0, |io| io.read_bytes + io.write_bytes)),
            Figure::NetTxBytesRate => rate(p.net.map_or(0, |net| net.tx_bytes)),
            Figure::NetRxBytesRate => rate(p.net.map_or(0, |net| net.rx_bytes)),
            Figure::NetBytesRate => rate(p.net.map_or(0, |net| net.tx_bytes + net.rx_bytes)),
            // Never read alive from /proc: unknown, not zero.
            Figure::MemRssBytes => p.mem?.rss_bytes? as f64,
            Figure::MemMajorFaultsRate => rate(p.mem.map_or(0, |mem| mem.major_faults)),
            Figure::SpawnRate => rate(p.spawned),
        };
        Some(value)
    }

    /// The figure for one application; `None` when its signal did not measure it this tick or
    /// applications have no such total.
    pub fn app_value(&self, figure: Figure, app: &App) -> Option<f64> {
        if !self.measured(figure) {
            return None;
        }
        let rate = |count: u64| count as f64 / self.secs;
        let value = match figure {
            Figure::CpuCores => app.cpu.cores,
            Figure::CpuHostPercent => app.cpu.cores / f64::from(self.report.cpus.max(1)) * 100.0,
            Figure::SchedRunqWaitRatio => {
                app.sched.as_ref().map_or(0, |s| s.runq_wait_ns) as f64 / self.ns()
            }
            Figure::SchedDelayCausedRatio => {
                let caused: u64 = self.app_victims_all(app).values().map(|v| v.delay_ns).sum();
                caused as f64 / self.ns()
            }
            Figure::SyscallsRate => rate(app.syscalls.as_ref().map_or(0, |s| s.count)),
            Figure::SyscallsErrorRate => rate(app.syscalls.as_ref().map_or(0, |s| s.errors)),
            Figure::IoReadBytesRate => rate(app.io.as_ref().map_or(0, |io| io.read_bytes)),
            Figure::IoWriteBytesRate => rate(app.io.as_ref().map_or(0, |io| io.write_bytes)),
            Figure::IoBytesRate => rate(
                app.io
                    .as_ref()
                    .map_or(0, |io| io.read_bytes + io.write_bytes),
            ),
            Figure::NetTxBytesRate => rate(app.net.map_or(0, |net| net.tx_bytes)),
            Figure::NetRxBytesRate => rate(app.net.map_or(0, |net| net.rx_bytes)),
            Figure::NetBytesRate => rate(app.net.map_or(0, |net| net.tx_bytes + net.rx_bytes)),
            Figure::MemRssBytes | Figure::MemMajorFaultsRate | Figure::SpawnRate => return None,
        };
        Some(value)
    }

    /// Run-queue wait of other processes spent behind `pid` this tick. The report keeps the
    /// largest blame pairs only, so on a host with very many pairs this is a lower bound.
    fn delay_caused_ns(&self, pid: u32) -> u64 {
        self.report
            .blame
            .iter()
            .filter(|b| b.culprit_pid == pid && b.victim_pid != pid)
            .map(|b| b.delay_ns)
            .sum()
    }

    /// Whom `pid` kept waiting, largest delay first, at most `MAX_VICTIMS`.
    pub fn process_victims(&self, pid: u32) -> Vec<Victim> {
        // Blame is sorted largest first already, but sorting again keeps this independent of
        // how the report was built.
        let mut victims: Vec<Victim> = self
            .report
            .blame
            .iter()
            .filter(|b| b.culprit_pid == pid && b.victim_pid != pid)
            .map(|b| Victim {
                pid: b.victim_pid,
                comm: b.victim_comm.clone(),
                delay_ns: b.delay_ns,
            })
            .collect();
        largest_first(&mut victims);
        victims
    }

    /// Whom the application's processes kept waiting, outside the application, largest delay
    /// first, at most `MAX_VICTIMS`.
    pub fn app_victims(&self, app: &App) -> Vec<Victim> {
        let mut victims: Vec<Victim> = self.app_victims_all(app).into_values().collect();
        largest_first(&mut victims);
        victims
    }

    /// Delay the application's processes caused to each process outside it. Waits within the
    /// application are its own business, not others' waiting.
    fn app_victims_all(&self, app: &App) -> BTreeMap<u32, Victim> {
        let mut victims: BTreeMap<u32, Victim> = BTreeMap::new();
        for b in &self.report.blame {
            if !self.in_app(app, b.culprit_pid, &b.culprit_comm)
                || self.in_app(app, b.victim_pid, &b.victim_comm)
            {
                continue;
            }
            victims
                .entry(b.victim_pid)
                .or_insert_with(|| Victim {
                    pid: b.victim_pid,
                    comm: b.victim_comm.clone(),
                    delay_ns: 0,
                })
                .delay_ns += b.delay_ns;
        }
        victims
    }

    /// Whether `pid` (named `comm` in blame) belongs to the application, by the same grouping
    /// report.json's apps use.
    fn in_app(&self, app: &App, pid: u32, comm: &str) -> bool {
        match self.by_pid.get(&pid) {
            Some(process) => member(app, process),
            // Not in this tick's processes: only its name is known.
            None => app.kind == AppKind::Comm && app.name == comm,
        }
    }

    /// The application's busiest process this tick: processes are sorted by CPU, busiest first.
    pub fn app_busiest(&self, app: &App) -> Option<&'a Process> {
        self.report.processes.iter().find(|p| member(app, p))
    }
}

fn member(app: &App, p: &Process) -> bool {
    match app.kind {
        AppKind::Comm => p.comm == app.name,
        AppKind::Cgroup => p.cgroup.as_deref() == Some(app.name.as_str()),
    }
}

fn largest_first(victims: &mut Vec<Victim>) {
    victims.sort_by(|a, b| (b.delay_ns, a.pid).cmp(&(a.delay_ns, b.pid)));
    victims.truncate(MAX_VICTIMS);
}
