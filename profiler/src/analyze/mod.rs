//! Ranking and verdict: pure functions from measured usage to the report's suspects and prose.

mod app_suspects;
mod apps;
mod cpu;
pub mod figures;
mod io;
mod mem;
pub mod sched;
mod spawn;
mod syscalls;
pub mod thresholds;
pub mod triggers;
mod verdict;
pub use verdict::host_load;
pub mod victim;

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use profiler_common::{BlameKey, Counter, IoStats};

use crate::{
    collect::Counters,
    model::ProcessUsage,
    report::{
        self, Cpu, DiskBusy, Drops, Host, HostPressure, Hottest, Report, Resource, Samples,
        Suspect, Timeline, UnwindMethod, UnwindTables, Unwinding,
    },
    signals::{Signal, SignalState},
    symbolize::{FoldedStack, KERNEL_SUFFIX},
};

const MAX_SUSPECTS: usize = 10;

/// Facts of the run that are not per process.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub started_at: String,
    pub hostname: String,
    pub duration: Duration,
    pub cpus: u32,
    pub frequency_hz: u64,
    pub counters: Counters,
    pub signals: BTreeMap<Signal, SignalState>,
    /// Run-queue delay per (culprit, victim) process pair.
    pub blame: Vec<(BlameKey, u64)>,
    /// When non-empty, only these pids are reported.
    pub only_pids: Vec<u32>,
    /// The profiler's own pid, never a suspect.
    pub own_pid: u32,
    /// The host's memory, to weigh resident sets.
    pub mem_total_bytes: Option<u64>,
    /// The memory still available at the end of the stretch (`MemAvailable`), to tell how soon
    /// a growing process would exhaust it.
    pub mem_available_bytes: Option<u64>,
    /// The block device busy the largest share of the run.
    pub busiest_disk: Option<DiskBusy>,
    /// How much of the run tasks stalled for a CPU, IO or memory (PSI), when the kernel says.
    pub pressure: Option<HostPressure>,
    /// What the unwind tables held at the end of the stretch; `None`: stacks were walked by
    /// frame pointers alone.
    pub unwind_tables: Option<UnwindTables>,
}

impl RunFacts {
    fn seconds(&self) -> f64 {
        self.duration.as_secs_f64().max(1e-9)
    }

    /// The on-CPU time one sample stands for.
    fn sample_period_ns(&self) -> u64 {
        1_000_000_000 / self.frequency_hz.max(1)
    }

    fn cpus(&self) -> f64 {
        f64::from(self.cpus.max(1))
    }

    fn signal_on(&self, signal: Signal) -> bool {
        self.signals.get(&signal).is_some_and(SignalState::is_on)
    }

    fn reported(&self, pid: u32) -> bool {
        self.only_pids.is_empty() || self.only_pids.contains(&pid)
    }
}

pub fn build_report(
    facts: &RunFacts,
    usage: &[ProcessUsage],
    folded: &[Vec<FoldedStack>],
) -> Report {
    let secs = facts.seconds();
    let busy_ns: u64 = usage.iter().map(|p| p.on_cpu_ns).sum();
    let busy_cores = busy_ns as f64 / 1e9 / secs;
    let processes = ranked_processes(facts, usage, folded);
    let blame = reported_blame(facts, usage);
    let suspects = suspects(&processes, &blame, facts, busy_cores);
    let counter = |c| facts.counters.get(c);
    let mut report = Report {
        schema: report::SCHEMA.to_owned(),
        profiler_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: facts.started_at.clone(),
        hostname: facts.hostname.clone(),
        duration_s: round3(secs),
        cpus: facts.cpus,
        frequency_hz: facts.frequency_hz,
        samples: Samples {
            total: counter(Counter::Samples),
            idle: counter(Counter::IdleSamples),
            kernel_only: counter(Counter::NoUserStack),
        },
        drops: drops(&facts.counters),
        unwinding: unwinding(facts),
        signals: facts.signals.clone(),
        host: host(facts, usage.len(), busy_cores),
        apps: apps::apps(&processes, secs),
        processes,
        blame: sched::truncate(blame),
        suspects,
        verdict: String::new(),
        own_cost: None,
        timeline: Timeline::default(),
        incident: None,
        victim: None,
        victims: Vec::new(),
    };
    report.verdict = verdict::verdict(&report, facts.own_pid);
    report
}

/// The processes with anything to show, busiest first.
fn ranked_processes(
    facts: &RunFacts,
    usage: &[ProcessUsage],
    folded: &[Vec<FoldedStack>],
) -> Vec<report::Process> {
    let mut processes: Vec<report::Process> = usage
        .iter()
        .zip(folded)
        .filter(|(p, _)| used_something(p) && facts.reported(p.identity.pid))
        .map(|(p, stacks)| process(p, stacks, facts))
        .collect();
    processes.sort_by(|a, b| {
        (b.cpu.on_cpu_ns, b.cpu.samples, a.pid).cmp(&(a.cpu.on_cpu_ns, a.cpu.samples, b.pid))
    });
    processes
}

/// Who waited behind whom, where either side is reported. Blame names processes by their
/// newest identity; the kernel keys it by tgid.
fn reported_blame(facts: &RunFacts, usage: &[ProcessUsage]) -> Vec<report::Blame> {
    let comms: HashMap<u32, String> = usage
        .iter()
        .map(|p| (p.identity.pid, p.identity.comm.clone()))
        .collect();
    sched::blame(&facts.blame, &comms)
        .into_iter()
        .filter(|b| facts.reported(b.culprit_pid) || facts.reported(b.victim_pid))
        .collect()
}

fn host(facts: &RunFacts, processes_seen: usize, busy_cores: f64) -> Host {
    Host {
        busy_cores: round3(busy_cores),
        busy_percent: round3(busy_cores / facts.cpus() * 100.0),
        processes_seen,
        context_switches: facts.counters.get(Counter::Switches),
        busiest_disk: facts.busiest_disk.clone(),
        pressure: facts.pressure,
    }
}

/// Whether a process has anything to show for the run.
fn used_something(p: &ProcessUsage) -> bool {
    p.on_cpu_ns > 0
        || p.samples > 0
        || p.sched.is_some()
        || !p.syscalls.is_empty()
        || !p.sampled_syscalls.is_empty()
        || p.net.is_some()
        || p.faults.is_some()
        || p.io.is_some()
        || !p.offcpu.is_empty()
        || p.oom_kill.is_some()
}

/// One process of the report: each signal's section when that signal was on.
fn process(p: &ProcessUsage, stacks: &[FoldedStack], facts: &RunFacts) -> report::Process {
    let secs = facts.seconds();
    let cores = p.on_cpu_ns as f64 / 1e9 / secs;
    let on = |signal| facts.signal_on(signal);
    report::Process {
        pid: p.identity.pid,
        start_time: p.identity.start_time,
        comm: p.identity.comm.clone(),
        ppid: p.identity.ppid,
        exe: p.identity.exe.clone(),
        cmdline: p.identity.cmdline.clone(),
        cgroup: p.identity.cgroup.clone(),
        workload: p.identity.workload.clone(),
        exited: p.identity.exited,
        oom_killed: p.oom_kill.map(|kill| report::OomKilled {
            rss_bytes: kill.rss_kib.saturating_mul(1024),
        }),
        spawned: p.spawned,
        cpu: Cpu {
            samples: p.samples,
            on_cpu_ns: p.on_cpu_ns,
            cores: round3(cores),
            host_percent: round3(cores / facts.cpus() * 100.0),
            hottest: hottest(stacks),
            in_syscalls: on(Signal::Cpu).then(|| {
                syscalls::sampled(&p.sampled_syscalls, p.samples, facts.sample_period_ns())
            }),
        },
        sched: p.sched.as_ref().map(|stats| report::Sched {
            offcpu_ns: on(Signal::Offcpu).then(|| p.offcpu.iter().map(|(_, ns)| ns).sum()),
            ..sched::sched(stats)
        }),
        io: on(Signal::Io).then(|| io::io(&p.io.unwrap_or(IoStats::ZERO), secs)),
        syscalls: on(Signal::Syscalls)
            .then(|| syscalls::summary(&p.syscalls, secs, on(Signal::SyscallTime))),
        mem: on(Signal::Mem).then(|| {
            let f = p.faults.unwrap_or_default();
            let id = &p.identity;
            let growth = id.rss_bytes.zip(id.first_rss_bytes).map(|(last, first)| {
                i64::try_from(last).unwrap_or(i64::MAX) - i64::try_from(first).unwrap_or(i64::MAX)
            });
            report::Mem {
                rss_bytes: id.rss_bytes,
                minor_faults: f.minor,
                major_faults: f.major,
                peak_rss_bytes: id.peak_rss_bytes,
                rss_growth_bytes: growth,
            }
        }),
        net: on(Signal::Net).then(|| {
            let n = p.net.unwrap_or_default();
            report::Net {
                tx_bytes: n.tx_bytes,
                rx_bytes: n.rx_bytes,
                bytes_per_second: round3((n.tx_bytes + n.rx_bytes) as f64 / secs),
            }
        }),
    }
}

/// Every resource's suspects, ranked by score, at most `MAX_SUSPECTS`.
fn suspects(
    processes: &[report::Process],
    blame: &[report::Blame],
    facts: &RunFacts,
    busy_cores: f64,
) -> Vec<Suspect> {
    let others = cpu::waits_on_others(processes, blame, facts.own_pid);
    let contention = cpu::Contention::new(facts, &others, busy_cores);
    let mut scored = cpu::suspects(processes, facts, busy_cores, &contention);
    scored.extend(sched_suspects(processes, &others, facts));
    scored.extend(syscalls::suspects(processes, facts));
    scored.extend(spawn::suspects(processes, facts));
    scored.extend(net_suspects(processes, facts));
    scored.extend(mem::suspects(processes, facts));
    scored.extend(io::suspects(processes, facts));
    let scored = app_suspects::fold(scored, processes, &others, &contention, facts);
    let mut scored = app_suspects::into_parents(absorb_sched(scored), processes);
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .take(MAX_SUSPECTS)
        .zip(1..)
        .map(|((_, suspect), rank)| Suspect { rank, ..suspect })
        .collect()
}

/// A process or application that is a CPU suspect for the waits it caused is not charged for
/// them twice: its sched suspect is folded into the CPU one, whose reason names who waited; the
/// surer confidence and the higher score of the two stay.
fn absorb_sched(scored: Vec<Scored>) -> Vec<Scored> {
    let key = |s: &Suspect| (s.pid, s.app.is_some());
    let (sched, mut kept): (Vec<Scored>, Vec<Scored>) = scored
        .into_iter()
        .partition(|(_, s)| s.resource == Resource::Sched);
    for (score, suspect) in sched {
        let cpu = kept
            .iter_mut()
            .find(|(_, s)| s.resource == Resource::Cpu && key(s) == key(&suspect));
        match cpu {
            Some(cpu) => app_suspects::absorb(cpu, score, &suspect),
            None => kept.push((score, suspect)),
        }
    }
    kept
}

/// How the CPU samples' user stacks were walked; `None` without them.
fn unwinding(facts: &RunFacts) -> Option<Unwinding> {
    if facts.signals.get(&Signal::Cpu) != Some(&SignalState::On) {
        return None;
    }
    let method = match facts.unwind_tables {
        Some(_) => UnwindMethod::Tables,
        None => UnwindMethod::FramePointers,
    };
    Some(Unwinding {
        cpu: method,
        offcpu: UnwindMethod::FramePointers,
        walked_samples: facts.counters.get(Counter::Unwound),
        before_table_samples: facts.counters.get(Counter::UnwindNoTable),
        fell_back_samples: facts.counters.get(Counter::UnwindFellBack),
        tables: facts.unwind_tables.clone(),
    })
}

/// Every loss the kernel counted. The match has no catch-all: a new counter does not compile
/// until it is shown here or said to be no loss.
fn drops(counters: &Counters) -> Drops {
    let mut drops = Drops::default();
    for counter in Counter::ALL {
        let value = counters.get(counter);
        let field = match counter {
            Counter::Samples
            | Counter::IdleSamples
            | Counter::NoUserStack
            | Counter::Switches
            | Counter::Unwound
            | Counter::UnwindNoTable
            | Counter::UnwindFellBack => continue,
            Counter::UserStackLost => &mut drops.user_stack_lost,
            Counter::KernelStackLost => &mut drops.kernel_stack_lost,
            Counter::StackCountsFull => &mut drops.stack_counts_full,
            Counter::OnCpuFull => &mut drops.on_cpu_map_full,
            Counter::RunnableFull => &mut drops.runnable_map_full,
            Counter::SchedFull => &mut drops.sched_map_full,
            Counter::BlameFull => &mut drops.blame_map_full,
            Counter::SyscallsFull => &mut drops.syscalls_map_full,
            Counter::SyscallExitsUnmatched => &mut drops.syscall_exits_unmatched,
            Counter::NamesFull => &mut drops.names_map_full,
            Counter::BlameUncoveredNs => &mut drops.blame_uncovered_ns,
            Counter::ForksFull => &mut drops.forks_map_full,
            Counter::NetFull => &mut drops.net_map_full,
            Counter::FaultsFull => &mut drops.faults_map_full,
            Counter::OffCpuFull => &mut drops.offcpu_map_full,
            Counter::IoFull => &mut drops.io_map_full,
            Counter::WritebackUnattributedBytes => &mut drops.writeback_unattributed_bytes,
            Counter::SampledSyscallsFull => &mut drops.sampled_syscalls_map_full,
            Counter::OomKillsFull => &mut drops.oom_kills_map_full,
            Counter::UnwindFailed => &mut drops.unwind_failed,
            Counter::UnwindTruncated => &mut drops.unwind_truncated,
            Counter::UnwoundStacksFull => &mut drops.unwound_stacks_full,
        };
        *field = value;
    }
    drops
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The function most samples were in: the innermost user frame, since that is code the owner
/// can change; the kernel leaf only for stacks without user frames (kernel threads).
pub fn hottest(stacks: &[FoldedStack]) -> Option<Hottest> {
    let total: u64 = stacks.iter().map(|(_, n)| n).sum();
    let mut by_leaf: HashMap<&str, u64> = HashMap::new();
    for (frames, count) in stacks {
        let user_leaf = frames.iter().rev().find(|f| !f.ends_with(KERNEL_SUFFIX));
        if let Some(leaf) = user_leaf.or(frames.last()) {
            *by_leaf.entry(leaf).or_default() += count;
        }
    }
    let (function, count) = by_leaf
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))?;
    Some(Hottest {
        function: function.to_owned(),
        percent: round3(count as f64 * 100.0 / total as f64),
    })
}

/// Suspects with a score: the share of the host's CPU capacity the resource use amounts to,
/// so CPU use and the waiting a process causes rank on one scale.
type Scored = (f64, Suspect);

/// Net suspects rank as a share of a 1 Gbit/s link per CPU, a rough scale that keeps them
/// comparable with the CPU-based scores.
const NET_BYTES_PER_SECOND_PER_CPU: f64 = 125e6;

fn net_suspects(processes: &[report::Process], facts: &RunFacts) -> Vec<Scored> {
    processes
        .iter()
        .filter(|p| p.pid != facts.own_pid)
        .filter_map(|p| Some((p, p.net?)))
        .filter_map(|(p, n)| {
            let by_rate = n.bytes_per_second / thresholds::NET_MIN_BYTES_PER_SECOND;
            let cost = syscalls::cost_cores(p, facts.seconds());
            let margin = syscalls::at_a_cost(by_rate, cost, thresholds::NET_MIN_COST_CORES);
            (margin >= 1.0).then_some((p, n, cost, margin))
        })
        .map(|(p, n, cost, margin)| {
            let cost = cost.map_or_else(String::new, |cores| {
                format!(", {cores:.2} cores on CPU inside its syscalls")
            });
            let suspect = Suspect::new(
                p.pid,
                &p.comm,
                Resource::Net,
                round3(n.bytes_per_second / 1e6),
                format!(
                    "moved {:.1} MB/s through TCP/UDP sockets: sent {:.1} MB, received {:.1} MB in {:.1} s{cost}",
                    n.bytes_per_second / 1e6,
                    n.tx_bytes as f64 / 1e6,
                    n.rx_bytes as f64 / 1e6,
                    facts.seconds()
                ),
            );
            let score = n.bytes_per_second / NET_BYTES_PER_SECOND_PER_CPU / facts.cpus();
            (score, suspect.over(margin))
        })
        .collect()
}

/// `others`: the waits processes caused processes of other applications
/// ([`cpu::waits_on_others`]).
fn sched_suspects(
    processes: &[report::Process],
    others: &[report::Blame],
    facts: &RunFacts,
) -> Vec<Scored> {
    let secs = facts.seconds();
    let by_pid: HashMap<u32, &report::Process> = processes.iter().map(|p| (p.pid, p)).collect();
    sched::culprits(others)
        .into_iter()
        .filter(|c| c.pid != facts.own_pid && facts.reported(c.pid))
        .filter_map(|c| {
            let pairs = others.iter().filter(|b| b.culprit_pid == c.pid);
            let ran = victims_ran_ns(pairs, &by_pid);
            let margin = sched::harm_margin(c.total_delay_ns, ran, secs)?;
            let delay_s = c.total_delay_ns as f64 / 1e9;
            let reason = format!(
                "delayed {} processes by {delay_s:.1} s in total while they waited for a CPU it held; most delayed: {} (pid {}), {:.1} s",
                c.victims,
                c.worst.victim_comm,
                c.worst.victim_pid,
                c.worst.delay_ns as f64 / 1e9
            );
            let suspect = Suspect::new(
                c.pid,
                &c.worst.culprit_comm,
                Resource::Sched,
                round3(delay_s),
                reason,
            );
            Some((delay_s / secs / facts.cpus(), suspect.over(margin)))
        })
        .collect()
}

/// The CPU time the victims of `pairs` used in the run, each counted once; as good as
/// unbounded when one of them is not among `processes` (no slowdown can be told).
fn victims_ran_ns<'a>(
    pairs: impl Iterator<Item = &'a report::Blame>,
    processes: &HashMap<u32, &report::Process>,
) -> u64 {
    let victims: std::collections::HashSet<u32> = pairs.map(|b| b.victim_pid).collect();
    victims
        .iter()
        .map(|pid| processes.get(pid).map_or(u64::MAX, |p| p.cpu.on_cpu_ns))
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests;
