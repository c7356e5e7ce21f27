//! The one pipeline every command drives: it owns the loaded programs, the symbolizer and the
//! clock, and turns the kernel's cumulative figures into reports. `tick()` reports the last
//! interval, `cut()` closes the window (its `report()` names its stacks off the session),
//! `finish()` the last window once the programs have stopped. `diagnose` is one window, `record` is ticks plus windows, `top` is
//! ticks; the bench measures the same code.

mod attach;
pub mod heap;
mod phases;
pub mod priority;
mod stops;
mod window;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::PathBuf,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use profiler_common::StackKey;

use self::window::{Summary, TIMELINE_INTERVAL, Window};
pub use self::{phases::PhaseClock, stops::Stops, window::Closed};
use crate::{
    analyze::{self, RunFacts},
    collect::{
        Collector, ProcessSnapshot, cleanup,
        cumulative::Cumulative,
        kernel_now_ns,
        own_cost::{BpfStats, OwnCostMeter},
        pressure::StallTotals,
    },
    model::{Leader, Mapping, ProcessUsage, cmdline::Cmdlines, current_rss_bytes, table::Procfs},
    probes::{self, Probes},
    report::{OwnCost, Report},
    signals::{Signal, SignalState},
    symbolize::{self, Folded, FoldedStack},
    unwind::{StatsHandle, Unwinder},
};

/// How a session turns addresses into names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symbolization {
    /// One symbolizer for the whole session, parsing the files of running processes while
    /// sampling: the final window is named at once (`diagnose`).
    Warm,
    /// The kernel's symbols kept for the session on a thread of their own, user files parsed
    /// one at a time per window: memory stays bounded by the largest file however long the
    /// session runs, and kallsyms is not read again for every window (`record`).
    KernelKept,
    /// A fresh symbolizer per window, one file at a time (`top`, an incident).
    PerWindow,
}

/// What a command chooses: signals, cadence, and what the reports may show.
#[derive(Debug, Clone)]
pub struct Config {
    pub frequency_hz: u64,
    /// How the CPU samples' user stacks are walked.
    pub unwinding: probes::Unwinding,
    pub signals: Vec<Signal>,
    pub cmdlines: Cmdlines,
    /// When non-empty, only these pids are reported.
    pub only_pids: Vec<u32>,
    /// The interval between ticks.
    pub tick: Duration,
    /// Window length; a tick that ends one reads the stack maps too.
    pub window: Option<Duration>,
    pub symbolization: Symbolization,
    /// When the kernel's BPF statistics are on.
    pub stats: StatsCadence,
    /// What the line announcing the attached signals says comes next.
    pub what_next: String,
}

/// When the kernel's BPF run-time statistics are on: a tenth of the time either way (they add
/// two clock reads to every BPF program run on the host, and a syscall hook's cost nearly
/// doubles while they are on), the profiler's own BPF time estimated from those slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsCadence {
    /// 100 ms of every second: a run of a few seconds has the cost spread over it, not all in
    /// its first second (a one-second storm under `diagnose` went from 1.56x to 1.98x of its
    /// untraced time with the statistics on for the whole of it).
    Short,
    /// One second of every ten: each switch is a static-key flip that interrupts every CPU,
    /// so a recorder running for days switches ten times less often.
    Long,
}

impl StatsCadence {
    fn slice_and_period(self) -> (Duration, Duration) {
        match self {
            Self::Short => (Duration::from_millis(100), Duration::from_secs(1)),
            Self::Long => (Duration::from_secs(1), Duration::from_secs(10)),
        }
    }
}

/// What the last tick measured.
pub struct Tick {
    /// The light report of the interval: no stacks, no /proc reads beyond discovery.
    pub report: Report,
    /// What the profiler cost over the interval.
    pub cost: OwnCost,
    /// When the interval ended.
    pub at: jiff::Timestamp,
    /// The window is due: call [`Session::window`] (or [`Session::renew`]) now.
    pub window_due: bool,
}

/// A closed window, symbolized and analyzed.
pub struct WindowReport {
    pub report: Report,
    pub usage: Vec<ProcessUsage>,
    pub folded: Folded,
    pub started_at: jiff::Timestamp,
}

/// The programs being detached on a thread of their own: wait for it before exiting.
pub struct Release(JoinHandle<()>);

impl Release {
    pub fn wait(self) {
        if self.0.join().is_err() {
            eprintln!("profiler: warning: detaching the probes failed");
        }
    }
}

/// What does not change between windows of a session.
struct Facts {
    signals: BTreeMap<Signal, SignalState>,
    hostname: String,
    mem_total_bytes: Option<u64>,
    cpus: u32,
    frequency_hz: u64,
    only_pids: Vec<u32>,
    procfs: Procfs,
    /// The unwind tables' figures as they stand; `None` when stacks come from frame pointers.
    unwind: Option<StatsHandle>,
}

impl Facts {
    /// The facts of a stretch that started at `started_at`, lasted `duration` and saw `delta`.
    fn run(&self, started_at: jiff::Timestamp, duration: Duration, delta: &Cumulative) -> RunFacts {
        RunFacts {
            started_at: started_at.to_string(),
            hostname: self.hostname.clone(),
            duration,
            cpus: self.cpus,
            frequency_hz: self.frequency_hz,
            counters: delta.counters,
            signals: self.signals.clone(),
            blame: delta.blame.iter().map(|(k, v)| (*k, *v)).collect(),
            only_pids: self.only_pids.clone(),
            own_pid: std::process::id(),
            mem_total_bytes: self.mem_total_bytes,
            mem_available_bytes: {
                use procfs::Current as _;
                procfs::Meminfo::current()
                    .ok()
                    .and_then(|m| m.mem_available)
            },
            busiest_disk: None,
            pressure: None,
            unwind_tables: self.unwind.as_ref().map(|stats| (&stats.get()).into()),
        }
    }
}

/// A reading of the maps and when it was taken: by the monotonic clock, the wall clock, and
/// the kernel's clock after the read.
#[derive(Clone)]
struct Reading {
    figures: Cumulative,
    at: Instant,
    at_wall: jiff::Timestamp,
    at_ns: u64,
    /// The host's stall totals, when the kernel keeps them.
    pressure: Option<StallTotals>,
}

impl Reading {
    fn take(collector: &Collector<'_>, stacks: bool) -> anyhow::Result<Self> {
        let figures = if stacks {
            Cumulative::read(collector)?
        } else {
            Cumulative::read_without_stacks(collector)?
        };
        Ok(Self {
            figures,
            at: Instant::now(),
            at_wall: jiff::Timestamp::now(),
            at_ns: kernel_now_ns(),
            pressure: StallTotals::now(),
        })
    }
}

pub struct Session {
    probes: Probes,
    facts: Facts,
    window: Window,
    /// The previous tick's reading: the next tick reports the difference.
    last: Reading,
    /// The last tick's reading when it read the stack maps for a due window.
    closing: Option<Reading>,
    tick_cost: OwnCostMeter,
    /// On for a slice of every period: the profiler's BPF time is estimated from those.
    bpf_stats: BpfStats,
    tick: Duration,
    window_len: Option<Duration>,
    symbolizer: Option<symbolize::Worker>,
    /// Files the warm symbolizer was asked to parse.
    warmed: HashSet<PathBuf>,
    clock: PhaseClock,
}

/// Stacks an alert or the live detail view shows.
const TOP_STACKS: usize = 5;

impl Session {
    /// Loads and attaches the chosen signals and takes the first reading; a stop that arrives
    /// meanwhile ends the run instead, before anything was measured. `clock` has run since
    /// the command started; attaching is its next lap.
    pub async fn start(
        config: Config,
        clock: PhaseClock,
        stops: &mut Stops,
    ) -> anyhow::Result<Self> {
        // Reads kallsyms while the probes load, then the files of what runs while sampling.
        let symbolizer = match config.symbolization {
            Symbolization::Warm => Some(symbolize::Worker::start(
                symbolize::Files::Kept,
                priority::helper_thread,
            )?),
            Symbolization::KernelKept => Some(symbolize::Worker::start(
                symbolize::Files::OneAtATime,
                priority::helper_thread,
            )?),
            Symbolization::PerWindow => None,
        };
        let probes = attach::attach(
            config.frequency_hz,
            &config.signals,
            config.unwinding,
            stops,
        )
        .await?;
        let what_next = config.what_next.clone();
        // Announced once the first reading is taken: what a caller starts on seeing the line
        // (the tests' workloads) is measured, not folded into the base.
        let mut session = Self::measure(config, clock, probes, symbolizer)?;
        attach::announce(&session.probes, session.facts.frequency_hz, &what_next);
        session.clock.lap(|p| &mut p.attach);
        Ok(session)
    }

    /// A second, short session beside a running one: the exact probes an escalation attaches.
    /// Not announced and not stopped by a signal: the running session's owner does both.
    pub fn escalate(config: Config) -> anyhow::Result<Self> {
        let selection = probes::Selection::of(&config.signals);
        let probes = probes::attach(config.frequency_hz, selection, config.unwinding)?;
        Self::measure(config, PhaseClock::start(), probes, None)
    }

    /// Takes the first reading of attached probes: from here on the session measures.
    fn measure(
        config: Config,
        clock: PhaseClock,
        probes: Probes,
        symbolizer: Option<symbolize::Worker>,
    ) -> anyhow::Result<Self> {
        // Without the stack maps, the largest to walk: what they hold is the few samples taken
        // since the programs attached, which belong to the first window anyway.
        let first = Reading::take(&Collector::new(&probes.ebpf), false)?;
        let (slice, period) = config.stats.slice_and_period();
        let bpf_stats = BpfStats::sample(slice, period);
        let mut window = Window::start_from(&first, &probes.ebpf, &bpf_stats);
        window.base = first.figures.clone();
        Ok(Self {
            facts: Facts {
                signals: probes.signals.clone(),
                hostname: hostname(),
                mem_total_bytes: {
                    use procfs::Current as _;
                    procfs::Meminfo::current().ok().map(|m| m.mem_total)
                },
                cpus: u32::try_from(probes.cpus).unwrap_or(u32::MAX),
                frequency_hz: config.frequency_hz,
                only_pids: config.only_pids,
                procfs: Procfs {
                    cmdlines: config.cmdlines,
                },
                unwind: probes.unwinder.as_ref().map(Unwinder::stats_handle),
            },
            tick_cost: OwnCostMeter::start(&probes.ebpf, &bpf_stats),
            bpf_stats,
            probes,
            window,
            last: first,
            closing: None,
            tick: config.tick,
            window_len: config.window,
            symbolizer,
            warmed: HashSet::new(),
            clock,
        })
    }

    /// What became of each signal.
    pub fn signals(&self) -> &BTreeMap<Signal, SignalState> {
        &self.facts.signals
    }

    /// Learns the processes running now while they still live (their names, command lines and
    /// files), between ticks; returns the busiest one so far.
    pub fn discover(&mut self) -> anyhow::Result<Option<Leader>> {
        let collector = Collector::new(&self.probes.ebpf);
        let snapshot = collector.processes()?;
        self.window
            .observe(&collector, snapshot.clone(), &self.facts.procfs)?;
        self.warm(&snapshot);
        Ok(self.leader(&snapshot))
    }

    fn leader(&self, snapshot: &ProcessSnapshot) -> Option<Leader> {
        let own = std::process::id();
        let base = &self.window.base.processes.on_cpu_ns;
        let (pid, ns) = snapshot
            .on_cpu_ns
            .iter()
            .filter(|&(&pid, _)| pid != own)
            .map(|(&pid, &ns)| (pid, ns.saturating_sub(base.get(&pid).copied().unwrap_or(0))))
            .max_by_key(|&(_, ns)| ns)?;
        let comm = self
            .window
            .identity(pid)
            .map_or_else(|| "?".to_owned(), |id| id.comm.clone());
        let seconds = self.window.elapsed().as_secs_f64().max(1e-3);
        Some(Leader {
            pid,
            comm,
            cores: ns as f64 / 1e9 / seconds,
        })
    }

    /// Has the warm symbolizer parse the files of processes that ran, busiest first, each file
    /// once.
    fn warm(&mut self, snapshot: &ProcessSnapshot) {
        let Some(symbolizer) = self.symbolizer.as_ref().filter(|s| s.keeps_files()) else {
            return;
        };
        let mut running: Vec<(u32, u64)> = snapshot
            .on_cpu_ns
            .iter()
            .filter(|&(_, &ns)| ns > 0)
            .map(|(&pid, &ns)| (pid, ns))
            .collect();
        running.sort_unstable_by_key(|&(_, ns)| std::cmp::Reverse(ns));
        let files: Vec<Mapping> = running
            .iter()
            .filter_map(|&(pid, _)| self.window.identity(pid))
            .flat_map(|identity| &identity.maps)
            .filter(|map| self.warmed.insert(map.path.clone()))
            .cloned()
            .collect();
        symbolizer.warm(files);
    }

    fn window_due(&self) -> bool {
        self.window_len
            .is_some_and(|len| self.window.elapsed() + self.tick / 2 >= len)
    }

    /// Reads the maps and reports the interval since the previous tick. Processes that exited
    /// leave the maps, their final figures kept for the window.
    pub fn tick(&mut self) -> anyhow::Result<Tick> {
        let collector = Collector::new(&self.probes.ebpf);
        // Exits are read before the figures: a process whose exit is handled below has its
        // final figures in `now`. Read after, a process exiting in between would have its
        // entries deleted without them ever being read, and vanish from the window.
        let exits = collector.exits()?;
        // The stack maps are only walked when the window closes.
        let due = self.window_due();
        let mut now = Reading::take(&collector, due)?;
        let elapsed = self.last.at.elapsed();
        // New processes are looked up in /proc once a tick: a process that lives less than a
        // tick keeps the name and cgroup the kernel saw, without its exe.
        self.window.observe(
            &collector,
            now.figures.processes.clone(),
            &self.facts.procfs,
        )?;
        let delta = now.figures.since(&self.last.figures);
        self.window.add_tick(&delta, self.last.at, elapsed);
        let mut usage = self
            .window
            .tick_usage(&collector, &delta, self.last.at_ns)?;
        if self
            .signals()
            .get(&Signal::Mem)
            .is_some_and(SignalState::is_on)
        {
            // The table keeps the resident set it read at first sight; a tick shows today's,
            // for the processes active in it.
            for p in &mut usage {
                let id = &mut p.identity;
                id.rss_bytes = current_rss_bytes(id.pid, id.start_time).or(id.rss_bytes);
            }
        }
        let mut facts = self.facts.run(self.window.started_at, elapsed, &delta);
        facts.pressure = crate::model::pressure::between(
            self.last.pressure.as_ref(),
            now.pressure.as_ref(),
            elapsed,
        );
        let report = analyze::build_report(&facts, &usage, &vec![Vec::new(); usage.len()]);
        let cost = self
            .tick_cost
            .measure(&self.probes.ebpf, &mut self.bpf_stats, elapsed)
            .into();
        self.warm(&now.figures.processes);
        self.bury_exited(&exits, &mut now.figures)?;
        let at = now.at_wall;
        self.closing = due.then(|| now.clone());
        self.last = now;
        Ok(Tick {
            report,
            cost,
            at,
            window_due: due,
        })
    }

    /// Processes that exited leave the maps now, their final figures kept for the window:
    /// under heavy churn the maps would otherwise fill before it ends. An exit mark stays
    /// until /proc shows the process gone (a zombie, or threads still running): the process
    /// may still add to its figures.
    fn bury_exited(&mut self, exits: &[u32], now: &mut Cumulative) -> anyhow::Result<()> {
        if exits.is_empty() {
            return Ok(());
        }
        let gone: HashSet<u32> = exits
            .iter()
            .copied()
            .filter(|tgid| !std::path::Path::new(&format!("/proc/{tgid}")).exists())
            .collect();
        let dead = now.split_off(&gone);
        self.window.bury(&dead);
        cleanup::forget_exited(&mut self.probes.ebpf, &gone, &dead)?;
        Ok(())
    }

    /// `pid`'s most sampled stacks since the window started, symbolized, most sampled first:
    /// an alert's evidence, the live view's detail.
    pub fn top_stacks(&self, pid: u32) -> anyhow::Result<Vec<FoldedStack>> {
        let collector = Collector::new(&self.probes.ebpf);
        let Some(process) = self.window.top_stack_pairs(&collector, pid, TOP_STACKS)? else {
            return Ok(Vec::new());
        };
        let ids = process.stacks.iter().flat_map(|&((u, k), _)| [u, k]);
        let stacks = collector.stacks(ids)?;
        let mut folded = symbolize::symbolize(std::slice::from_ref(&process), &stacks).cpu;
        let mut stacks = folded.pop().unwrap_or_default();
        stacks.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        Ok(stacks)
    }

    /// The last tick's reading if it read the stack maps for a due window, or a new one.
    fn closing_reading(&mut self) -> anyhow::Result<Reading> {
        match self.closing.take() {
            Some(reading) => Ok(reading),
            None => Reading::take(&Collector::new(&self.probes.ebpf), true),
        }
    }

    /// Closes the window at the last tick's reading (or a new one) and starts the next; the
    /// closed one still has its stacks to name, which [`Cut::report`] does without the
    /// session, so the ticks can go on meanwhile.
    pub fn cut(&mut self) -> anyhow::Result<Cut> {
        let now = self.closing_reading()?;
        let cost = self
            .window
            .cost(&self.probes.ebpf, &mut self.bpf_stats, now.at);
        let (closed, stale) = {
            let next = Window::start_from(&now, &self.probes.ebpf, &self.bpf_stats);
            let window = std::mem::replace(&mut self.window, next);
            let stale = cleanup::stale_stacks(&now.figures, &window.base);
            let collector = Collector::new(&self.probes.ebpf);
            (window.close(&collector, &now, now.at, &self.facts)?, stale)
        };
        self.begin_next(now, &stale)?;
        Ok(Cut {
            closed,
            cost,
            symbolizer: self.symbolizer.clone(),
        })
    }

    /// Starts a new window at a new reading without reporting the current one: `top` keeps
    /// its stacks recent and its maps bounded this way.
    pub fn renew(&mut self) -> anyhow::Result<()> {
        let now = self.closing_reading()?;
        let stale = cleanup::stale_stacks(&now.figures, &self.window.base);
        self.window = Window::start_from(&now, &self.probes.ebpf, &self.bpf_stats);
        self.begin_next(now, &stale)
    }

    /// Forgets, in the kernel maps and in `now`, what the closed window reported and no live
    /// process needs (exited processes, `stale` stacks), and makes `now` the new window's
    /// base and the next tick's.
    fn begin_next(&mut self, mut now: Reading, stale: &HashSet<StackKey>) -> anyhow::Result<()> {
        // Forks up to the reading that ends the window are the window's; later ones stay in
        // the map for the next. A cut taken later would delete forks whose children the
        // window never saw (they had not run yet at the reading) and the next one would not
        // count.
        let forks_before = now.figures.read_at_ns;
        let deleted =
            cleanup::after_window(&mut self.probes.ebpf, &mut now.figures, stale, forks_before)?;
        log::debug!(
            "forgot {} map entries and {} stacks of exited processes",
            deleted.entries,
            deleted.stacks
        );
        self.window.base = now.figures.clone();
        self.last = now;
        Ok(())
    }

    /// Ends the session: stops the programs that move counts between maps, reads the final
    /// figures, reports the last window and detaches the rest on a thread of its own. The
    /// clock's laps cover each step; the caller adds rendering.
    pub async fn finish(self) -> anyhow::Result<(WindowReport, PhaseClock, Release)> {
        let (cut, mut clock, release) = self.close()?;
        let (summary, usage, folded, cost) = cut.name().await?;
        clock.lap(|p| &mut p.symbolize);
        let window = summary.report(usage, folded, cost);
        clock.lap(|p| &mut p.analyze);
        Ok((window, clock, release))
    }

    /// Ends the session up to its last window's naming, which [`Cut::report`] does without
    /// it: stops the programs that move counts between maps, reads the final figures and
    /// detaches the rest on a thread of its own.
    pub fn close(mut self) -> anyhow::Result<(Cut, PhaseClock, Release)> {
        let end = Instant::now();
        let end_ns = kernel_now_ns();
        self.clock.lap(|p| &mut p.sampling);
        // The stack maps are walked once the programs have stopped, below.
        let mut now = Reading::take(&Collector::new(&self.probes.ebpf), false)?;
        // The last, partial bucket: a run stopped early still shows its final moments.
        let since_tick = end.saturating_duration_since(self.last.at);
        if since_tick > TIMELINE_INTERVAL / 10 {
            let delta = now.figures.since(&self.last.figures);
            self.window.add_tick(&delta, self.last.at, since_tick);
        }
        let cost = self
            .window
            .cost(&self.probes.ebpf, &mut self.bpf_stats, end);
        self.clock.lap(|p| &mut p.collect);
        // Syscall counts move from the per-CPU pending buffers to the totals at every context
        // switch, and a sleep moves from the thread table to the off-CPU totals at its wakeup;
        // both are read once the programs have stopped, so nothing is seen twice or missed.
        // The sample counts hold still from then on too.
        self.probes.quiesce();
        let Self {
            probes,
            symbolizer,
            mut clock,
            facts,
            window,
            ..
        } = self;
        let collector = Collector::new(&probes.ebpf);
        now.figures.syscalls = collector.syscalls()?;
        now.figures.offcpu = collector.offcpu(end_ns)?.into_iter().collect();
        now.figures.stack_counts = collector.stack_counts()?.into_iter().collect();
        let closed = window.close(&collector, &now, end, &facts)?;
        // The rest detaches while the stacks are symbolized and the files rendered.
        let release = Release(probes.release());
        clock.lap(|p| &mut p.detach);
        let cut = Cut {
            closed,
            cost,
            symbolizer,
        };
        Ok((cut, clock, release))
    }
}

/// Names the stacks of a closed window: on the warm symbolizer when the session has one, or
/// on a blocking thread with a fresh one (blazesym's symbolizer is neither Send nor Sync, and
/// takes a while).
pub async fn name_stacks(
    symbolizer: Option<&symbolize::Worker>,
    usage: Vec<ProcessUsage>,
    stacks: HashMap<i32, Vec<u64>>,
) -> anyhow::Result<(Vec<ProcessUsage>, Folded)> {
    if let Some(worker) = symbolizer {
        return worker.symbolize(usage, stacks).await;
    }
    tokio::task::spawn_blocking(move || {
        priority::helper_thread();
        let folded = symbolize::symbolize(&usage, &stacks);
        (usage, folded)
    })
    .await
    .context("symbolizer thread")
}

/// A closed window whose stacks are still addresses.
pub struct Cut {
    closed: Closed,
    cost: OwnCost,
    symbolizer: Option<symbolize::Worker>,
}

impl Cut {
    /// Names the stacks (on the symbolizer thread): what the window's report is built from.
    async fn name(self) -> anyhow::Result<(Summary, Vec<ProcessUsage>, Folded, OwnCost)> {
        let Self {
            closed,
            cost,
            symbolizer,
        } = self;
        let (usage, folded) = name_stacks(symbolizer.as_ref(), closed.usage, closed.stacks).await?;
        Ok((closed.summary, usage, folded, cost))
    }

    /// Names the stacks (on the symbolizer thread) and builds the window's report on a
    /// helper thread: the caller's thread (record's, at real-time priority) does neither.
    pub async fn report(self) -> anyhow::Result<WindowReport> {
        let (summary, usage, folded, cost) = self.name().await?;
        tokio::task::spawn_blocking(move || {
            priority::helper_thread();
            summary.report(usage, folded, cost)
        })
        .await
        .context("the analysis thread")
    }
}

/// The host's name, as the reports show it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}
