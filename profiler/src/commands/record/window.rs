//! One record window: the kernel figures at its start, the processes seen during it, and the
//! reports built from the differences: a light one every tick, the full one at its end.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    analyze::{self, RunFacts},
    collect::{
        Collector, Lifecycle, cumulative::Cumulative, disks::DiskTicks, own_cost::OwnCostMeter,
    },
    model::{
        ProcessTable, table::FinalCounts, table::Procfs, table::StackPair,
        timeline::TimelineBuilder,
    },
    output::{self, windows},
    probes::Probes,
    report::Report,
    symbolize,
};

pub struct Window {
    /// Cumulative kernel figures when the window started.
    pub base: Cumulative,
    table: ProcessTable,
    started: Instant,
    started_at: jiff::Timestamp,
    disks: DiskTicks,
    cost: OwnCostMeter,
    signals: BTreeMap<String, String>,
    cpus: u32,
    frequency_hz: u64,
    /// Per-second CPU and run-queue wait of the window's processes, from the ticks.
    timeline: TimelineBuilder,
    /// Whether the window gets a report.html.
    pub html: bool,
    /// /proc, with command lines redacted or not.
    pub procfs: Procfs,
    /// Final figures of processes that exited during the window and left the maps before its
    /// end.
    graveyard: Cumulative,
}

/// The timeline's bucket: one tick.
const TIMELINE_INTERVAL_S: f64 = 1.0;

impl Window {
    /// A window starting at `started` (when `base` was read, on both clocks).
    pub fn start_from(
        base: Cumulative,
        started: (Instant, jiff::Timestamp),
        probes: &Probes,
        frequency_hz: u64,
    ) -> Self {
        Self {
            base,
            table: ProcessTable::default(),
            started: started.0,
            started_at: started.1,
            disks: DiskTicks::now(),
            cost: OwnCostMeter::start(&probes.ebpf),
            signals: probes.signals.clone(),
            cpus: u32::try_from(probes.cpus).unwrap_or(u32::MAX),
            frequency_hz,
            timeline: TimelineBuilder::new(TIMELINE_INTERVAL_S),
            html: false,
            procfs: Procfs::default(),
            graveyard: Cumulative::default(),
        }
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

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Learns the processes that ran since the window started while they still live, from
    /// `snapshot` (cumulative, as read at the last tick).
    pub fn observe(
        &mut self,
        collector: &Collector<'_>,
        mut snapshot: crate::collect::ProcessSnapshot,
    ) -> anyhow::Result<()> {
        snapshot.on_cpu_ns = snapshot
            .on_cpu_ns
            .into_iter()
            .filter_map(|(tgid, ns)| {
                let grown = ns.saturating_sub(
                    self.base
                        .processes
                        .on_cpu_ns
                        .get(&tgid)
                        .copied()
                        .unwrap_or(0),
                );
                (grown > 0).then_some((tgid, grown))
            })
            .collect();
        let base = &self.base;
        self.table.observe(&snapshot, &self.procfs, |pid| {
            stacks_since(collector, base, pid)
        })
    }

    fn facts(&self, duration: Duration, delta: &Cumulative) -> RunFacts {
        RunFacts {
            started_at: self.started_at.to_string(),
            hostname: super::super::hostname(),
            duration,
            cpus: self.cpus,
            frequency_hz: self.frequency_hz,
            counters: delta.counters,
            signals: self.signals.clone(),
            blame: delta.blame.iter().map(|(k, v)| (*k, *v)).collect(),
            only_pids: Vec::new(),
            own_pid: std::process::id(),
            mem_total_bytes: {
                use procfs::Current as _;
                procfs::Meminfo::current().ok().map(|m| m.mem_total)
            },
            busiest_disk: None,
        }
    }

    /// A report of the last tick (`delta`, since kernel time `since_ns`): no stacks, no /proc
    /// reads beyond what discovery does, cheap enough to build every second.
    pub fn tick_report(
        &self,
        collector: &Collector<'_>,
        delta: &Cumulative,
        since_ns: u64,
        elapsed: Duration,
    ) -> anyhow::Result<Report> {
        let mut lifecycle = collector.lifecycle()?;
        lifecycle.forks.retain(|_, &mut (_, at)| at >= since_ns);
        let usage = self.table.tick_usage(
            &delta.processes.on_cpu_ns,
            &FinalCounts {
                stacks: &[],
                sched: &delta.sched,
                syscalls: &delta.syscalls,
                lifecycle: &lifecycle,
                net: &delta.net,
                faults: &delta.faults,
                offcpu: &[],
                io: &delta.io,
            },
        );
        let facts = self.facts(elapsed, delta);
        Ok(analyze::build_report(
            &facts,
            &usage,
            &vec![Vec::new(); usage.len()],
        ))
    }

    /// Builds the window's report from the figures at its end (`now`) and writes it under
    /// `root`; returns the window's directory.
    pub async fn finish(
        mut self,
        now: &Cumulative,
        probes: &Probes,
        root: &Path,
    ) -> anyhow::Result<PathBuf> {
        let elapsed = self.started.elapsed();
        let collector = Collector::new(&probes.ebpf);
        self.observe(&collector, now.processes.clone())?;
        let mut now = now.clone();
        now.absorb(&self.graveyard);
        let delta = now.since(&self.base);
        let mut lifecycle: Lifecycle = collector.lifecycle()?;
        // Forks since the reading belong to the next window, which counts them: the map keeps
        // them until this window is closed (`cleanup::after_window`).
        lifecycle
            .forks
            .retain(|_, &mut (_, at)| at < now.read_at_ns);
        let stack_counts: Vec<_> = delta.stack_counts.iter().map(|(k, v)| (*k, *v)).collect();
        let offcpu: Vec<_> = delta.offcpu.iter().map(|(k, v)| (*k, *v)).collect();
        let stacks = collector.stacks(
            stack_counts
                .iter()
                .chain(&offcpu)
                .flat_map(|(key, _)| [key.user_stack_id, key.kernel_stack_id]),
        )?;
        let mut facts = self.facts(elapsed, &delta);
        facts.busiest_disk = DiskTicks::now().busiest_since(&self.disks, elapsed);
        let table = std::mem::take(&mut self.table);
        let usage = table.finish(
            &delta.processes,
            &FinalCounts {
                stacks: &stack_counts,
                sched: &delta.sched,
                syscalls: &delta.syscalls,
                lifecycle: &lifecycle,
                net: &delta.net,
                faults: &delta.faults,
                offcpu: &offcpu,
                io: &delta.io,
            },
            &self.procfs,
        );
        let (usage, folded) = super::super::symbolize_off_thread(usage, stacks).await?;
        let mut report = analyze::build_report(&facts, &usage, &folded.cpu);
        report.own_cost = Some(self.cost.measure(&probes.ebpf, elapsed));
        report.timeline = self.timeline.finish(&report.processes);

        let html = if self.html {
            output::HtmlReport::Write
        } else {
            output::HtmlReport::Skip
        };
        windows::write_window(root, &windows::window_name(self.started_at), |dir| {
            output::write_usage(dir, &report, &usage, &folded, &[], html)
        })
    }
}

/// Stacks an alert shows as evidence.
const EVIDENCE_STACKS: usize = 5;

impl Window {
    /// The most sampled stacks of `pid` in this window so far, symbolized: an alert's evidence.
    pub fn top_stacks(
        &self,
        collector: &Collector<'_>,
        pid: u32,
    ) -> anyhow::Result<Vec<symbolize::FoldedStack>> {
        let Some(identity) = self.table.identity(pid) else {
            return Ok(Vec::new());
        };
        let mut counts: Vec<(StackPair, u64)> = stacks_since(collector, &self.base, pid)?
            .into_iter()
            .collect();
        counts.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        counts.truncate(EVIDENCE_STACKS);
        let stacks = collector.stacks(counts.iter().flat_map(|&((u, k), _)| [u, k]))?;
        let process = crate::model::ProcessUsage {
            samples: counts.iter().map(|(_, n)| n).sum(),
            stacks: counts,
            ..crate::model::ProcessUsage::new(identity.clone())
        };
        let mut folded = symbolize::symbolize(std::slice::from_ref(&process), &stacks).cpu;
        let mut stacks = folded.pop().unwrap_or_default();
        stacks.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        Ok(stacks)
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
