//! Process table keyed so pid reuse never merges two processes, and per-process usage at the end.
//!
//! The kernel aggregates by tgid. While the run lasts, the table is shown each cumulative
//! snapshot; when an active pid's start time changes, the pid was reused: the old process is
//! closed and the new one starts from the counts seen at that moment.

use std::collections::{BTreeMap, HashMap};

use profiler_common::{
    FaultStats, IoStats, NetStats, OomKill, SchedStats, SyscallKey, SyscallStats,
};

use super::{
    cmdline::Cmdlines,
    identity::{ProcessIdentity, is_dead, read_identity_with},
};
use crate::collect::{Lifecycle, ProcessSnapshot, cumulative::Cumulative};

/// (user stack id, kernel stack id).
pub type StackPair = (i32, i32);

/// Where process facts come from; /proc in production, fixtures in tests.
pub trait ProcSource {
    fn start_time(&self, pid: u32) -> Option<u64>;
    fn identity(&self, pid: u32) -> Option<ProcessIdentity>;
    /// cgroup ids to paths, for processes gone before /proc could name their cgroup.
    fn cgroup_paths(&self) -> HashMap<u64, String>;
}

/// The live /proc filesystem, command lines as `cmdlines` allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Procfs {
    pub cmdlines: Cmdlines,
}

impl ProcSource for Procfs {
    fn start_time(&self, pid: u32) -> Option<u64> {
        let process = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
        let stat = process.stat().ok().filter(|stat| !is_dead(stat))?;
        Some(stat.starttime)
    }

    fn identity(&self, pid: u32) -> Option<ProcessIdentity> {
        read_identity_with(pid, self.cmdlines)
    }

    fn cgroup_paths(&self) -> HashMap<u64, String> {
        super::cgroups::index()
    }
}

#[derive(Debug)]
struct Incarnation {
    identity: ProcessIdentity,
    base_on_cpu_ns: u64,
    base_stacks: HashMap<StackPair, u64>,
}

#[derive(Debug, Default)]
pub struct ProcessTable {
    by_pid: BTreeMap<u32, Vec<Incarnation>>,
    last_on_cpu_ns: HashMap<u32, u64>,
}

/// What one process (one incarnation of a pid) used during the run.
#[derive(Debug, Clone)]
pub struct ProcessUsage {
    pub identity: ProcessIdentity,
    pub on_cpu_ns: u64,
    pub samples: u64,
    /// Sample counts per stack pair.
    pub stacks: Vec<(StackPair, u64)>,
    /// Scheduler figures; the kernel keys them by tgid only, so after pid reuse they go to the
    /// newest process of that pid.
    pub sched: Option<SchedStats>,
    /// Per syscall number; like `sched`, keyed by tgid in the kernel.
    pub syscalls: Vec<(u32, SyscallStats)>,
    /// CPU samples taken inside each syscall number; like `sched`, keyed by tgid in the kernel.
    pub sampled_syscalls: Vec<(u32, u64)>,
    /// Child processes it started during the run (threads not included).
    pub spawned: u64,
    /// Like `sched`, keyed by tgid in the kernel.
    pub net: Option<NetStats>,
    /// Like `sched`, keyed by tgid in the kernel.
    pub faults: Option<FaultStats>,
    /// Nanoseconds blocked per stack pair; like `sched`, keyed by tgid in the kernel.
    pub offcpu: Vec<(StackPair, u64)>,
    /// Like `sched`, keyed by tgid in the kernel.
    pub io: Option<IoStats>,
    /// The OOM killer chose it during the run (processes signal).
    pub oom_kill: Option<OomKill>,
}

/// The process on a CPU the most since the window began.
pub struct Leader {
    pub pid: u32,
    pub comm: String,
    pub cores: f64,
}

impl ProcessUsage {
    /// A process that used nothing yet.
    pub fn new(identity: ProcessIdentity) -> Self {
        Self {
            identity,
            on_cpu_ns: 0,
            samples: 0,
            stacks: Vec::new(),
            sched: None,
            syscalls: Vec::new(),
            sampled_syscalls: Vec::new(),
            spawned: 0,
            net: None,
            faults: None,
            offcpu: Vec::new(),
            io: None,
            oom_kill: None,
        }
    }
}

/// The kernel's figures of one stretch (a tick or a window) as the table takes them: what
/// grew in it, and the forks and OOM kills in it.
#[derive(Debug, Clone, Copy)]
pub struct Stretch<'a> {
    pub figures: &'a Cumulative,
    pub lifecycle: &'a Lifecycle,
}

impl ProcessTable {
    pub fn identity(&self, pid: u32) -> Option<&ProcessIdentity> {
        self.by_pid.get(&pid)?.last().map(|inc| &inc.identity)
    }

    /// Registers processes first seen in `snapshot` and detects pid reuse among active ones.
    /// `stacks_of` gives a pid's cumulative sample counts; it is only called on reuse.
    pub fn observe<E>(
        &mut self,
        snapshot: &ProcessSnapshot,
        source: &impl ProcSource,
        mut stacks_of: impl FnMut(u32) -> Result<HashMap<StackPair, u64>, E>,
    ) -> Result<(), E> {
        for (&pid, &on_cpu_ns) in &snapshot.on_cpu_ns {
            let previous = self.last_on_cpu_ns.insert(pid, on_cpu_ns);
            let exec_at = snapshot.execs.get(&pid).map_or(0, |&(at, _)| at);
            let Some(incarnations) = self.by_pid.get_mut(&pid) else {
                let first = Incarnation::first(pid, exec_at, snapshot, source);
                self.by_pid.insert(pid, vec![first]);
                continue;
            };
            let current = incarnations.last_mut().expect("never empty");
            if let Some((at, comm)) = snapshot.execs.get(&pid)
                && *at != current.identity.exec_at
                && !current.identity.exited
            {
                let file = snapshot
                    .exec_files
                    .get(&pid)
                    .filter(|(file_at, _)| file_at == at)
                    .map(|(_, file)| file.as_str());
                after_exec(&mut current.identity, *at, comm, file, source);
            }
            // Unless the pid ran since the last look, it is still the process we know.
            if previous == Some(on_cpu_ns) || !reused(&mut current.identity, source) {
                continue;
            }
            current.identity.exited = true;
            if let Some(mut identity) = source.identity(pid) {
                identity.exec_at = exec_at;
                // Both baselines are taken now, so the counts since the last look go to the
                // old process, consistently for time and samples.
                incarnations.push(Incarnation {
                    identity,
                    base_on_cpu_ns: on_cpu_ns,
                    base_stacks: stacks_of(pid)?,
                });
            }
        }
        Ok(())
    }

    /// A quick view of one short stretch (a tick of `record`): `counts` hold only that stretch's
    /// figures and each pid goes to its newest known identity, without re-reading /proc or
    /// splitting between incarnations. Stacks are left out. Pids not known yet are left out too;
    /// `observe` learns them.
    pub fn tick_usage(&self, stretch: &Stretch<'_>) -> Vec<ProcessUsage> {
        let on_cpu_ns = &stretch.figures.processes.on_cpu_ns;
        let mut per_pid = PerPid::of(stretch.figures);
        let spawned = self.spawned(stretch.lifecycle);
        let mut pids: Vec<u32> = stretch.figures.owners().into_iter().collect();
        pids.extend(spawned.keys());
        pids.sort_unstable();
        pids.dedup();
        pids.into_iter()
            .filter_map(|pid| {
                let mut usage = ProcessUsage::new(self.identity(pid)?.clone());
                usage.on_cpu_ns = on_cpu_ns.get(&pid).copied().unwrap_or(0);
                per_pid.give(&mut usage, stretch, spawned.get(&pid).copied().unwrap_or(0));
                Some(usage)
            })
            .collect()
    }

    /// Closes the run: refreshes live processes (exec may have renamed them), marks the gone
    /// ones exited, and splits the cumulative counts between incarnations.
    pub fn finish(mut self, stretch: &Stretch<'_>, source: &impl ProcSource) -> Vec<ProcessUsage> {
        let mut per_pid = PerPid::of(stretch.figures);
        let seen = self.observe_final(stretch.figures, &per_pid, source);
        let spawned = self.spawned(stretch.lifecycle);
        let cgroup_paths = if seen.cgroups.is_empty() {
            HashMap::new()
        } else {
            source.cgroup_paths()
        };
        let mut usage = Vec::new();
        for (pid, incarnations) in self.by_pid {
            let end = End {
                on_cpu_ns: seen.on_cpu_ns.get(&pid).copied().unwrap_or(0),
                stacks: per_pid.stacks.remove(&pid).unwrap_or_default(),
            };
            let mut incarnations = incarnations.into_iter().peekable();
            while let Some(mut inc) = incarnations.next() {
                let Some(next) = incarnations.peek() else {
                    // The newest incarnation: the kernel's per-tgid figures are all its own.
                    let lifecycle = stretch.lifecycle;
                    close_identity(
                        &mut inc.identity,
                        pid,
                        lifecycle,
                        &seen,
                        &cgroup_paths,
                        source,
                    );
                    let mut last = usage_between(inc, end.on_cpu_ns, &end.stacks);
                    per_pid.give(&mut last, stretch, spawned.get(&pid).copied().unwrap_or(0));
                    usage.push(last);
                    break;
                };
                let (on_cpu_ns, stacks) = (next.base_on_cpu_ns, next.base_stacks.clone());
                usage.push(usage_between(inc, on_cpu_ns, &stacks));
            }
        }
        usage
    }

    /// Observes the final snapshot, in which every process with a figure counts as seen;
    /// returns it.
    fn observe_final(
        &mut self,
        figures: &Cumulative,
        per_pid: &PerPid,
        source: &impl ProcSource,
    ) -> ProcessSnapshot {
        let mut seen = figures.processes.clone();
        // A process that only slept, or only sent, in the run is still one of its processes.
        for pid in figures.owners() {
            seen.on_cpu_ns.entry(pid).or_insert(0);
        }
        let no_error: Result<(), std::convert::Infallible> = self.observe(&seen, source, |pid| {
            Ok(per_pid.stacks.get(&pid).cloned().unwrap_or_default())
        });
        let Ok(()) = no_error;
        seen
    }

    /// Processes each parent started: a fork whose child tid became a process's pid started a
    /// process; other forks made threads.
    fn spawned(&self, lifecycle: &Lifecycle) -> HashMap<u32, u64> {
        let mut spawned: HashMap<u32, u64> = HashMap::new();
        for (child, &(parent, _)) in &lifecycle.forks {
            if self.by_pid.contains_key(child) {
                *spawned.entry(parent).or_default() += 1;
            }
        }
        spawned
    }
}

/// A pid's cumulative figures at the end of the run.
struct End {
    on_cpu_ns: u64,
    stacks: HashMap<StackPair, u64>,
}

/// The final figures the kernel keys by more than the tgid, grouped by pid.
struct PerPid {
    stacks: HashMap<u32, HashMap<StackPair, u64>>,
    syscalls: HashMap<u32, Vec<(u32, SyscallStats)>>,
    sampled_syscalls: HashMap<u32, Vec<(u32, u64)>>,
    offcpu: HashMap<u32, Vec<(StackPair, u64)>>,
}

impl PerPid {
    fn of(figures: &Cumulative) -> Self {
        let mut per_pid = Self {
            stacks: HashMap::new(),
            syscalls: by_tgid(&figures.syscalls),
            sampled_syscalls: by_tgid(&figures.sampled_syscalls),
            offcpu: HashMap::new(),
        };
        for (key, count) in &figures.stack_counts {
            *per_pid
                .stacks
                .entry(key.tgid)
                .or_default()
                .entry((key.user_stack_id, key.kernel_stack_id))
                .or_default() += count;
        }
        for (key, ns) in &figures.offcpu {
            let blocked = per_pid.offcpu.entry(key.tgid).or_default();
            blocked.push(((key.user_stack_id, key.kernel_stack_id), *ns));
        }
        per_pid
    }

    /// Gives a pid's newest incarnation the figures the kernel keeps per tgid only: after pid
    /// reuse they cannot be split, and go to the newest process. The one place each signal's
    /// figures join a process's usage.
    fn give(&mut self, usage: &mut ProcessUsage, stretch: &Stretch<'_>, spawned: u64) {
        let (pid, figures) = (usage.identity.pid, stretch.figures);
        usage.sched = figures.sched.get(&pid).copied();
        usage.syscalls = self.syscalls.remove(&pid).unwrap_or_default();
        usage.sampled_syscalls = self.sampled_syscalls.remove(&pid).unwrap_or_default();
        usage.net = figures.net.get(&pid).copied();
        usage.faults = figures.faults.get(&pid).copied();
        usage.io = figures.io.get(&pid).copied();
        usage.offcpu = self.offcpu.remove(&pid).unwrap_or_default();
        usage.spawned = spawned;
        usage.oom_kill = stretch.lifecycle.oom_kills.get(&pid).copied();
    }
}

/// What an incarnation used: CPU time and samples from its baselines to the next ones.
fn usage_between(
    inc: Incarnation,
    end_on_cpu_ns: u64,
    end_stacks: &HashMap<StackPair, u64>,
) -> ProcessUsage {
    let stacks: Vec<(StackPair, u64)> = end_stacks
        .iter()
        .map(|(&pair, &end)| {
            let base = inc.base_stacks.get(&pair).copied().unwrap_or(0);
            (pair, end.saturating_sub(base))
        })
        .filter(|&(_, n)| n > 0)
        .collect();
    ProcessUsage {
        samples: stacks.iter().map(|(_, n)| n).sum(),
        on_cpu_ns: end_on_cpu_ns.saturating_sub(inc.base_on_cpu_ns),
        stacks,
        ..ProcessUsage::new(inc.identity)
    }
}

/// The newest identity of `pid` at the end: refreshed from /proc while it lives, and its
/// parent and cgroup from the kernel's records when /proc could not give them.
fn close_identity(
    identity: &mut ProcessIdentity,
    pid: u32,
    lifecycle: &Lifecycle,
    seen: &ProcessSnapshot,
    cgroup_paths: &HashMap<u64, String>,
    source: &impl ProcSource,
) {
    if !identity.exited {
        refresh(identity, source);
    }
    // The kernel's record of the fork is the parent: /proc may have been read while the
    // process was being reaped, when its stat says 0.
    if let Some(&(parent, _)) = lifecycle.forks.get(&pid) {
        identity.ppid = Some(parent);
        // Forked in this stretch: all it holds it grew, however late /proc first saw it.
        identity.first_rss_bytes = Some(0);
    }
    if identity.cgroup.is_none() {
        identity.cgroup = seen
            .cgroups
            .get(&pid)
            .and_then(|id| cgroup_paths.get(id))
            .cloned();
        // Gone before /proc was read: its v2 path, as the kernel gave it, is all there is.
        if identity.workload.is_none() {
            identity.workload = identity.cgroup.as_deref().and_then(super::workload_of_path);
        }
    }
}

impl Incarnation {
    /// A pid's first incarnation: from /proc while it lives, else from the kernel's name.
    fn first(pid: u32, exec_at: u64, snapshot: &ProcessSnapshot, source: &impl ProcSource) -> Self {
        let mut identity = source.identity(pid).unwrap_or_else(|| {
            ProcessIdentity::exited_unknown(pid, snapshot.comms.get(&pid).map(String::as_str))
        });
        // Gone before /proc was read, or between reading its stat and its exe: its last exec's
        // file, as the kernel saw it, is all that is left of its executable. Only that exec's:
        // an entry of another time is an earlier process of this pid (one that only forked has
        // no exec of its own).
        if identity.exe.is_none() {
            identity.exe = snapshot
                .exec_files
                .get(&pid)
                .filter(|&&(at, _)| exec_at != 0 && at == exec_at)
                .map(|(_, file)| file.clone());
        }
        identity.exec_at = exec_at;
        Self {
            identity,
            base_on_cpu_ns: 0,
            base_stacks: HashMap::new(),
        }
    }
}

/// Whether the pid now belongs to another process than `identity` (its start time changed);
/// a pid that is gone marks the identity exited.
fn reused(identity: &mut ProcessIdentity, source: &impl ProcSource) -> bool {
    match source.start_time(identity.pid) {
        Some(start) => start != identity.start_time,
        None => {
            identity.exited = true;
            false
        }
    }
}

/// Takes the current name and maps of a live process, keeping old mappings that the new ones do
/// not cover so samples from before an exec still symbolize. False when the process is gone.
fn refresh(identity: &mut ProcessIdentity, source: &impl ProcSource) -> bool {
    match source.identity(identity.pid) {
        Some(mut fresh) if fresh.start_time == identity.start_time => {
            let old = std::mem::take(&mut identity.maps);
            for map in old {
                let overlaps = fresh
                    .maps
                    .iter()
                    .any(|m| m.start < map.end && map.start < m.end);
                if !overlaps {
                    fresh.maps.push(map);
                }
            }
            fresh.exec_at = identity.exec_at;
            fresh.first_rss_bytes = identity.first_rss_bytes.or(fresh.first_rss_bytes);
            *identity = fresh;
            true
        }
        _ => {
            identity.exited = true;
            false
        }
    }
}

/// The process exec'd since its identity was read: read it again, or, when it is already gone,
/// at least take the new name and executed file from the kernel rather than keep the old
/// program's.
fn after_exec(
    identity: &mut ProcessIdentity,
    at: u64,
    comm: &str,
    file: Option<&str>,
    source: &impl ProcSource,
) {
    identity.exec_at = at;
    if identity.start_time != 0 && refresh(identity, source) {
        return;
    }
    comm.clone_into(&mut identity.comm);
    identity.exe = file.map(str::to_owned);
    identity.cmdline.clear();
}

#[cfg(test)]
mod tests;

/// Per-(process, syscall) figures grouped by process, as (syscall number, figure) lists.
fn by_tgid<V: Copy>(figures: &HashMap<SyscallKey, V>) -> HashMap<u32, Vec<(u32, V)>> {
    let mut grouped: HashMap<u32, Vec<(u32, V)>> = HashMap::new();
    for (key, figure) in figures {
        grouped.entry(key.tgid).or_default().push((key.nr, *figure));
    }
    grouped
}
