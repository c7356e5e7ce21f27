//! One window of a session: the kernel figures at its start, the processes seen during it, the
//! final figures of those that exited, and what it adds up to: a light usage every tick, the
//! full one (stacks, lifecycle, split between pid incarnations) at its end.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use aya::Ebpf;

use super::{Facts, Reading, WindowReport};
use crate::{
    analyze::{self, RunFacts},
    collect::{
        Collector, ProcessSnapshot,
        cumulative::Cumulative,
        disks::DiskTicks,
        own_cost::{BpfStats, OwnCostMeter},
        pressure::StallTotals,
    },
    model::{
        ProcessIdentity, ProcessTable, ProcessUsage, table::Procfs, table::StackPair,
        table::Stretch, timeline::TimelineBuilder,
    },
    report::{DiskBusy, OwnCost},
    symbolize::Folded,
};

/// The timeline's bucket: one tick.
pub const TIMELINE_INTERVAL: Duration = Duration::from_secs(1);

pub struct Window {
    /// Cumulative kernel figures when the window started.
    pub base: Cumulative,
    table: ProcessTable,
    started: Instant,
    pub started_at: jiff::Timestamp,
    disks: DiskTicks,
    pressure: Option<StallTotals>,
    cost: OwnCostMeter,
    /// Per-second CPU and run-queue wait of the window's processes, from the ticks.
    timeline: TimelineBuilder,
    /// Final figures of processes that exited during the window and left the maps before its
    /// end.
    graveyard: Cumulative,
}

/// What a closed window measured, before symbolization.
pub struct Closed {
    pub usage: Vec<ProcessUsage>,
    /// Instruction pointers of every stack id the usage refers to, leaf first.
    pub stacks: HashMap<i32, Vec<u64>>,
    pub summary: Summary,
}

impl Closed {
    /// A closed window of figures gathered elsewhere, without a timeline: what the render
    /// benchmark feeds the session's last stages.
    pub fn from_figures(
        usage: Vec<ProcessUsage>,
        stacks: HashMap<i32, Vec<u64>>,
        facts: RunFacts,
        started_at: jiff::Timestamp,
    ) -> Self {
        Self {
            usage,
            stacks,
            summary: Summary {
                facts,
                timeline: TimelineBuilder::new(TIMELINE_INTERVAL.as_secs_f64()),
                started_at,
            },
        }
    }
}

/// The rest of a closed window's report: what is not per process.
pub struct Summary {
    facts: RunFacts,
    timeline: TimelineBuilder,
    started_at: jiff::Timestamp,
}

impl Summary {
    /// The window's report, from its processes and their stacks by name.
    pub fn report(self, usage: Vec<ProcessUsage>, folded: Folded, cost: OwnCost) -> WindowReport {
        let mut report = analyze::build_report(&self.facts, &usage, &folded.cpu);
        report.own_cost = Some(cost);
        report.timeline = self.timeline.finish(&report.processes);
        WindowReport {
            report,
            usage,
            folded,
            started_at: self.started_at,
        }
    }
}

impl Window {
    /// A window starting at the reading `started`; its `base` is set once the closing
    /// window's entries are forgotten.
    pub fn start_from(started: &Reading, ebpf: &Ebpf, stats: &BpfStats) -> Self {
        Self {
            base: Cumulative::default(),
            table: ProcessTable::default(),
            started: started.at,
            started_at: started.at_wall,
            disks: DiskTicks::now(),
            pressure: started.pressure,
            cost: OwnCostMeter::start(ebpf, stats),
            timeline: TimelineBuilder::new(TIMELINE_INTERVAL.as_secs_f64()),
            graveyard: Cumulative::default(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What the profiler cost from the window's start until `ended`.
    pub fn cost(&mut self, ebpf: &Ebpf, stats: &mut BpfStats, ended: Instant) -> OwnCost {
        self.cost
            .measure(ebpf, stats, ended.saturating_duration_since(self.started))
            .into()
    }

    pub fn identity(&self, pid: u32) -> Option<&ProcessIdentity> {
        self.table.identity(pid)
    }

    /// Keeps the final figures of processes that exit now, for the window's report.
    pub fn bury(&mut self, dead: &Cumulative) {
        self.graveyard.absorb(dead);
    }

    /// Adds a tick to the window's timeline: `delta` happened from `since` for `len`.
    pub fn add_tick(&mut self, delta: &Cumulative, since: Instant, len: Duration) {
        let start = since.saturating_duration_since(self.started);
        self.timeline.push(
            u64::try_from(start.as_nanos()).unwrap_or(u64::MAX),
            u64::try_from(len.as_nanos()).unwrap_or(u64::MAX),
            delta,
        );
    }

    /// Learns the processes that ran since the window started while they still live, from
    /// `snapshot` (cumulative, as read at the last tick).
    pub fn observe(
        &mut self,
        collector: &Collector<'_>,
        mut snapshot: ProcessSnapshot,
        procfs: &Procfs,
    ) -> anyhow::Result<()> {
        snapshot.on_cpu_ns = snapshot
            .on_cpu_ns
            .into_iter()
            .filter_map(|(tgid, ns)| {
                let before = self.base.processes.on_cpu_ns.get(&tgid).copied();
                let grown = ns.saturating_sub(before.unwrap_or(0));
                (grown > 0).then_some((tgid, grown))
            })
            .collect();
        let base = &self.base;
        self.table
            .observe(&snapshot, procfs, |pid| stacks_since(collector, base, pid))
    }

    /// The last tick's usage (`delta`, forks since kernel time `since_ns`): no stacks, no /proc
    /// reads beyond what discovery does, cheap enough to build every second.
    pub fn tick_usage(
        &self,
        collector: &Collector<'_>,
        delta: &Cumulative,
        since_ns: u64,
    ) -> anyhow::Result<Vec<ProcessUsage>> {
        let mut lifecycle = collector.lifecycle()?;
        lifecycle.forks.retain(|_, &mut (_, at)| at >= since_ns);
        lifecycle.oom_kills.retain(|_, kill| kill.at >= since_ns);
        Ok(self.table.tick_usage(&Stretch {
            figures: delta,
            lifecycle: &lifecycle,
        }))
    }

    /// Closes the window at the reading `closing` (its figures stand for the end `ended`):
    /// every process's usage since its start, split between pid incarnations, with the
    /// instruction pointers of its stacks.
    pub fn close(
        mut self,
        collector: &Collector<'_>,
        closing: &Reading,
        ended: Instant,
        facts: &Facts,
    ) -> anyhow::Result<Closed> {
        let (now, closing_pressure) = (&closing.figures, closing.pressure.as_ref());
        let elapsed = ended.saturating_duration_since(self.started);
        self.observe(collector, now.processes.clone(), &facts.procfs)?;
        let mut now = now.clone();
        now.absorb(&self.graveyard);
        let delta = now.since(&self.base);
        let mut lifecycle = collector.lifecycle()?;
        // Forks since the reading belong to the next window, which counts them: the map keeps
        // them until this window is closed (`cleanup::after_window`).
        lifecycle
            .forks
            .retain(|_, &mut (_, at)| at < now.read_at_ns);
        lifecycle
            .oom_kills
            .retain(|_, kill| kill.at < now.read_at_ns);
        let stacks = collector.stacks(
            delta
                .stack_counts
                .keys()
                .chain(delta.offcpu.keys())
                .flat_map(|key| [key.user_stack_id, key.kernel_stack_id]),
        )?;
        let mut run_facts = facts.run(self.started_at, elapsed, &delta);
        run_facts.busiest_disk = self.busiest_disk(elapsed);
        run_facts.pressure =
            crate::model::pressure::between(self.pressure.as_ref(), closing_pressure, elapsed);
        let stretch = Stretch {
            figures: &delta,
            lifecycle: &lifecycle,
        };
        let usage = self.table.finish(&stretch, &facts.procfs);
        Ok(Closed {
            usage,
            stacks,
            summary: Summary {
                facts: run_facts,
                timeline: self.timeline,
                started_at: self.started_at,
            },
        })
    }

    fn busiest_disk(&self, elapsed: Duration) -> Option<DiskBusy> {
        DiskTicks::now()
            .busiest_since(&self.disks, elapsed)
            .map(|(device, share)| DiskBusy::new(device, share))
    }

    /// The most sampled stack pairs of `pid` in this window so far, at most `limit`, with the
    /// identity they belong to.
    pub fn top_stack_pairs(
        &self,
        collector: &Collector<'_>,
        pid: u32,
        limit: usize,
    ) -> anyhow::Result<Option<ProcessUsage>> {
        let Some(identity) = self.table.identity(pid) else {
            return Ok(None);
        };
        let mut counts: Vec<(StackPair, u64)> = stacks_since(collector, &self.base, pid)?
            .into_iter()
            .collect();
        counts.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        counts.truncate(limit);
        Ok(Some(ProcessUsage {
            samples: counts.iter().map(|(_, n)| n).sum(),
            stacks: counts,
            ..ProcessUsage::new(identity.clone())
        }))
    }
}

/// A pid's sample counts since the window started, for the process table's pid-reuse split.
fn stacks_since(
    collector: &Collector<'_>,
    base: &Cumulative,
    pid: u32,
) -> anyhow::Result<HashMap<StackPair, u64>> {
    let mut stacks = HashMap::new();
    for (key, count) in collector.stack_counts()? {
        if key.tgid != pid {
            continue;
        }
        let grown = count.saturating_sub(base.stack_counts.get(&key).copied().unwrap_or(0));
        if grown > 0 {
            *stacks
                .entry((key.user_stack_id, key.kernel_stack_id))
                .or_default() += grown;
        }
    }
    Ok(stacks)
}
