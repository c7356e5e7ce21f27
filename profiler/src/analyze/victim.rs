//! Starting from the victim: where the time of the processes `--victim` names went (on a CPU,
//! waiting for one, asleep and in what), who held the CPUs it waited for, and a verdict in its
//! words.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{sched::Side, thresholds::STALL_PERCENT};
use crate::{
    collect::threads::SleptThrough,
    model::{ProcessUsage, pressure::CgroupPressure},
    report::{
        BlockedPart, BlockedWhy, Cause, Culprit, Member, Process, Report, Victim, VictimDelays,
    },
    signals::{Signal, SignalState},
    symbolize::{FoldedStack, KERNEL_SUFFIX},
};

/// A share of the victim's busy time (all but its idle sleeps) spent waiting for a CPU, or
/// asleep on IO, memory, a lock or the network, that slowed it: a request that takes a tenth
/// longer is what a latency-bound service notices.
const SLOWED_SHARE: f64 = 0.10;
/// Below this, a wait is not worth a sentence whatever its share (a nearly idle victim).
const SLOWED_MIN_NS: u64 = 50_000_000;
const CULPRITS: usize = 5;
/// On-CPU time below which the verdict does not give its kernel share.
const MIN_SPLIT_NS: u64 = 100_000_000;

/// What `--victim` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VictimSpec {
    Pid(u32),
    /// A command name, a cgroup path (it starts with `/`), or a container's name or short id, a
    /// unit's or a session's name.
    Name(String),
}

impl VictimSpec {
    pub fn parse(text: &str) -> Self {
        match text.parse() {
            Ok(pid) => Self::Pid(pid),
            Err(_) => Self::Name(text.to_owned()),
        }
    }

    pub fn matches(&self, p: &Process) -> bool {
        match self {
            Self::Pid(pid) => p.pid == *pid,
            Self::Name(name) => {
                p.comm == *name
                    || p.cgroup.as_deref() == Some(name.as_str())
                    || p.workload.as_ref().is_some_and(|w| w.is_named(name))
            }
        }
    }

    /// As given on the command line.
    pub fn name(&self) -> String {
        match self {
            Self::Pid(pid) => pid.to_string(),
            Self::Name(name) => name.clone(),
        }
    }
}

/// What the run saw of sleeps besides the report's figures.
#[derive(Clone, Copy, Default)]
pub struct Seen<'a> {
    pub usage: &'a [ProcessUsage],
    /// Each process's sleeps by stack, in the order of `usage`.
    pub offcpu: &'a [Vec<FoldedStack>],
    /// Threads asleep from before the run to its end, which the programs never saw.
    pub slept_through: &'a [SleptThrough],
    /// User and system CPU time per process over the run, where it was read.
    pub cpu_split: Option<&'a HashMap<u32, (u64, u64)>>,
    /// Its cgroups' own pressure over the run, where it was read.
    pub cgroup_pressure: &'a [CgroupPressure],
}

/// The victim's budget and culprits in `report`; `own_pid`, the profiler, is never a culprit
/// (its cost is in the report's `own_cost`, not a neighbour's doing); `delayacct`, the
/// kernel's delay accounting of the victim over the run when it was asked for. `None` when no
/// process of the report is the victim.
pub fn account(
    report: &Report,
    seen: Seen<'_>,
    spec: &VictimSpec,
    own_pid: u32,
    delayacct: Option<VictimDelays>,
) -> Option<Victim> {
    let members: Vec<&Process> = report
        .processes
        .iter()
        .filter(|p| spec.matches(p))
        .collect();
    if members.is_empty() {
        return None;
    }
    let pids: HashSet<u32> = members.iter().map(|p| p.pid).collect();
    let offcpu_on = report
        .signals
        .get(&Signal::Offcpu)
        .is_some_and(SignalState::is_on);
    // A sleep through the whole run is the run's length, in what its stack says at the end; a
    // futex there is a parked worker waiting for work, not a lock held against it.
    let run_ns = (report.duration_s * 1e9) as u64;
    let slept: Vec<FoldedStack> = (seen.slept_through.iter())
        .filter(|t| pids.contains(&t.pid))
        .map(|t| (t.frames.clone(), run_ns))
        .collect();
    let slept_by = |pid: u32| {
        let threads = seen.slept_through.iter().filter(|t| t.pid == pid).count();
        run_ns * threads as u64
    };
    // The exact on-CPU time split by the kernel's shares: those are sampled at its tick, so a
    // process running briefly but often is charged whole ticks and their sum drifts.
    let modes = |p: &Process| {
        let (user, system) = seen.cpu_split?.get(&p.pid).copied()?;
        let ticks = (user + system).max(1) as f64;
        let user_ns = (p.cpu.on_cpu_ns as f64 * user as f64 / ticks).round() as u64;
        Some((user_ns, p.cpu.on_cpu_ns - user_ns.min(p.cpu.on_cpu_ns)))
    };
    let member = |p: &&Process| Member {
        pid: p.pid,
        comm: p.comm.clone(),
        on_cpu_ns: p.cpu.on_cpu_ns,
        user_ns: modes(p).map(|(user, _)| user),
        system_ns: modes(p).map(|(_, system)| system),
        runq_wait_ns: p.sched.as_ref().map_or(0, |s| s.runq_wait_ns),
        blocked_ns: offcpu_on
            .then(|| p.sched.as_ref().and_then(|s| s.offcpu_ns).unwrap_or(0) + slept_by(p.pid)),
        exited: p.exited,
    };
    let each: Vec<Member> = members.iter().map(member).collect();
    let blocked_ns = offcpu_on.then(|| each.iter().filter_map(|m| m.blocked_ns).sum());
    let stacks = (seen.usage.iter())
        .zip(seen.offcpu)
        .filter(|(p, _)| pids.contains(&p.identity.pid))
        .flat_map(|(_, stacks)| stacks);
    let mut victim = Victim {
        name: spec.name(),
        pids: members.iter().map(|p| p.pid).collect(),
        on_cpu_ns: each.iter().map(|m| m.on_cpu_ns).sum(),
        user_ns: each.iter().filter_map(|m| m.user_ns).reduce(|a, b| a + b),
        system_ns: each.iter().filter_map(|m| m.system_ns).reduce(|a, b| a + b),
        runq_wait_ns: each.iter().map(|m| m.runq_wait_ns).sum(),
        blocked: blocked_ns.map_or_else(Vec::new, |total| split(stacks, &slept, total)),
        blocked_ns,
        slept_through: slept.len() as u64,
        culprits: culprits(report, &pids, own_pid),
        members: each,
        cgroup_pressure: seen.cgroup_pressure.to_vec(),
        delayacct,
        verdict: String::new(),
    };
    for cause in [Cause::Io, Cause::Memory] {
        let shared = Shared {
            processes: &report.processes,
            victim: &pids,
            own_pid,
        };
        let culprits = shared.culprits(cause, victim.blocked_on(cause.why()));
        victim.culprits.extend(culprits);
    }
    let who = match members.as_slice() {
        [one] if one.exited => format!("{} (pid {}, exited during the run)", one.comm, one.pid),
        [one] => format!("{} (pid {})", one.comm, one.pid),
        many => format!("{} ({} processes)", victim.name, many.len()),
    };
    victim.verdict = verdict(&victim, &who, report.duration_s);
    Some(victim)
}

/// Each of `specs` whose processes ran in `report`, from its figures alone (a tick's, or a
/// window's without its stacks): what a sleep waited in is then `other`.
pub fn all(report: &Report, specs: &[VictimSpec]) -> Vec<Victim> {
    let own_pid = std::process::id();
    specs
        .iter()
        .filter_map(|spec| account(report, Seen::default(), spec, own_pid, None))
        .collect()
}

/// `total` nanoseconds asleep split by what the sleeps waited in, largest first; what the
/// stacks do not cover (lost stacks, sleeps still going on) is `Other`.
fn split<'a>(
    stacks: impl Iterator<Item = &'a FoldedStack>,
    slept_through: &[FoldedStack],
    total: u64,
) -> Vec<BlockedPart> {
    let mut parts: BTreeMap<BlockedWhy, u64> = BTreeMap::new();
    for (frames, ns) in stacks {
        *parts.entry(why(frames)).or_default() += ns;
    }
    for (frames, ns) in slept_through {
        let parked = match why(frames) {
            BlockedWhy::Lock => BlockedWhy::Idle,
            why => why,
        };
        *parts.entry(parked).or_default() += ns;
    }
    let covered: u64 = parts.values().sum();
    *parts.entry(BlockedWhy::Other).or_default() += total.saturating_sub(covered);
    let mut parts: Vec<BlockedPart> = parts
        .into_iter()
        .filter(|&(_, ns)| ns > 0)
        .map(|(why, ns)| BlockedPart { why, ns })
        .collect();
    parts.sort_by(|a, b| b.ns.cmp(&a.ns).then(a.why.cmp(&b.why)));
    parts
}

/// Kernel functions a sleep waits in, nearest the sleep first wins: an IO wait inside a page
/// fault is IO, a fault that waits on no IO is memory.
const WAITS: [(BlockedWhy, &[&str]); 5] = [
    (
        BlockedWhy::Io,
        &[
            "io_schedule",
            "blk_mq_get_tag",
            "bit_wait_io",
            "__wait_on_buffer",
            "jbd2_log_wait_commit",
            "submit_bio_wait",
            "balance_dirty_pages",
        ],
    ),
    (
        BlockedWhy::Memory,
        &[
            "try_to_free_pages",
            "__alloc_pages_slowpath",
            "throttle_direct_reclaim",
            "mem_cgroup_handle_over_high",
            "do_swap_page",
            "handle_mm_fault",
        ],
    ),
    (
        BlockedWhy::Network,
        &[
            "sk_wait_data",
            "sk_stream_wait_memory",
            "__skb_wait_for_more_packets",
            "tcp_recvmsg",
            "unix_stream_read_generic",
        ],
    ),
    (
        BlockedWhy::Lock,
        &[
            "futex_wait",
            "rwsem_down",
            "__mutex_lock",
            "rt_mutex_slowlock",
            "locks_lock_inode_wait",
        ],
    ),
    (
        BlockedWhy::Idle,
        &[
            "ep_poll",
            "do_epoll_wait",
            "do_select",
            "do_sys_poll",
            "do_nanosleep",
            "schedule_hrtimeout",
            "inet_csk_accept",
            "do_sigtimedwait",
            "sigsuspend",
            "do_wait",
        ],
    ),
];

/// What one sleep's stack (root first) waited in.
fn why(frames: &[String]) -> BlockedWhy {
    let kernel = frames
        .iter()
        .rev()
        .filter_map(|frame| frame.strip_suffix(KERNEL_SUFFIX));
    for function in kernel {
        let found = WAITS
            .iter()
            .find(|(_, names)| names.iter().any(|name| function.starts_with(name)));
        if let Some(&(why, _)) = found {
            return why;
        }
    }
    BlockedWhy::Other
}

/// Who held the CPUs the victim's threads waited for, outside the victim and the profiler,
/// largest first.
fn culprits(report: &Report, victim: &HashSet<u32>, own_pid: u32) -> Vec<Culprit> {
    let pairs = report.blame.iter().filter(|b| {
        victim.contains(&b.victim_pid)
            && !victim.contains(&b.culprit_pid)
            && b.culprit_pid != own_pid
    });
    super::sched::parties(pairs, Side::Culprit, CULPRITS)
        .into_iter()
        .map(|p| Culprit {
            pid: p.pid,
            comm: p.comm,
            cause: Cause::Cpu,
            delay_ns: p.delay_ns,
        })
        .collect()
}

/// The processes a victim's IO or memory wait is shared among.
struct Shared<'a> {
    processes: &'a [Process],
    victim: &'a HashSet<u32>,
    own_pid: u32,
}

impl Shared<'_> {
    /// Who pressed the resource while the victim was blocked on it for `ns`: that time shared
    /// by each process's part of the pressure over the run (IO: its block IO bytes; memory:
    /// how much its resident set grew), the victim's own part included (its own writes queue
    /// behind each other too), largest first. Inferred: the kernel does not say whose requests
    /// a wait queued behind, nor whose pages reclaim had to find, and devices are not told
    /// apart. Kernel threads work for others (writeback is charged to the process that
    /// dirtied the pages) and the profiler's use is its own cost, so neither is a culprit nor
    /// in the shares.
    fn culprits(&self, cause: Cause, ns: u64) -> Vec<Culprit> {
        let weight = |p: &Process| match cause {
            Cause::Io => p.io.as_ref().map_or(0, |io| io.read_bytes + io.write_bytes),
            Cause::Memory => p
                .mem
                .and_then(|mem| mem.rss_growth_bytes)
                .map_or(0, |grown| u64::try_from(grown).unwrap_or(0)),
            Cause::Cpu => 0,
        };
        let pressing = |p: &&Process| !p.is_kernel_thread() && p.pid != self.own_pid;
        let total: u64 = self.processes.iter().filter(pressing).map(weight).sum();
        if ns == 0 || total == 0 {
            return Vec::new();
        }
        let mut culprits: Vec<Culprit> = (self.processes.iter())
            .filter(pressing)
            .filter(|p| !self.victim.contains(&p.pid) && weight(p) > 0)
            .map(|p| Culprit {
                pid: p.pid,
                comm: p.comm.clone(),
                cause,
                delay_ns: (ns as f64 * weight(p) as f64 / total as f64) as u64,
            })
            .filter(|c| c.delay_ns > 0)
            .collect();
        culprits.sort_by(|a, b| (b.delay_ns, a.pid).cmp(&(a.delay_ns, b.pid)));
        culprits.truncate(CULPRITS);
        culprits
    }
}

/// The victim's story in one line: what slowed it and who, or that nothing did and where its
/// time went; then its own CPU use.
fn verdict(victim: &Victim, who: &str, secs: f64) -> String {
    let total = victim.on_cpu_ns + victim.runq_wait_ns + victim.blocked_ns.unwrap_or(0);
    let share = |ns: u64| ns as f64 / total.max(1) as f64;
    // A service idle between requests is not slow for being idle: what slows it is measured
    // against the time it wanted to make progress.
    let idle = victim
        .blocked
        .iter()
        .filter(|p| p.why == BlockedWhy::Idle)
        .map(|p| p.ns)
        .sum::<u64>();
    let busy = total.saturating_sub(idle).max(1);
    let of_busy = |ns: u64| ns as f64 / busy as f64;
    let slowing = |ns: u64| ns >= SLOWED_MIN_NS && of_busy(ns) >= SLOWED_SHARE;
    let mut slowed = Vec::new();
    // A wait nobody caused (a CPU waking from idle, the scheduler's own latency) slows it
    // but names no rogue: only the wait others are blamed for counts here.
    let of_cause = |cause: Cause| -> Vec<&Culprit> {
        let culprits = victim.culprits.iter();
        culprits.filter(|c| c.cause == cause).collect()
    };
    let cpu = of_cause(Cause::Cpu);
    let blamed: u64 = cpu.iter().map(|c| c.delay_ns).sum();
    if slowing(blamed) {
        slowed.push(format!(
            "it waited {} for a CPU ({:.0} % of its busy time){}",
            seconds(victim.runq_wait_ns),
            of_busy(victim.runq_wait_ns) * 100.0,
            behind(&cpu)
        ));
    }
    for part in &victim.blocked {
        if let Some(what) = slowed_by(part.why)
            && slowing(part.ns)
        {
            let whom = match part.why {
                BlockedWhy::Io => behind(&of_cause(Cause::Io)),
                BlockedWhy::Memory => behind(&of_cause(Cause::Memory)),
                _ => String::new(),
            };
            slowed.push(format!(
                "{} blocked on {what} ({:.0} %){whom}",
                seconds(part.ns),
                of_busy(part.ns) * 100.0
            ));
        }
    }
    let cores = victim.on_cpu_ns as f64 / 1e9 / secs.max(1e-3);
    // The split comes from the kernel's tick samples: under ten of them (100 ms at 100 Hz)
    // it says nothing.
    let kernel = match (victim.user_ns, victim.system_ns) {
        (Some(user), Some(system)) if user + system >= MIN_SPLIT_NS => format!(
            " ({:.0} % of it in the kernel)",
            system as f64 * 100.0 / (user + system) as f64
        ),
        _ => String::new(),
    };
    let own = format!("Its own CPU use: {cores:.2} cores{kernel}.");
    let own = own + &stalled(&victim.cgroup_pressure);
    if slowed.is_empty() {
        return format!("{who} was not slowed: {}. {own}", went(victim, share));
    }
    format!("{who} was slowed: {}. {own}", slowed.join("; "))
}

/// ` Its cgroup /x stalled for a CPU 31 % of the run.`: the stalls of its cgroups over the
/// pressure line, the root cgroup (the whole host, said on the host line) left out.
fn stalled(cgroups: &[CgroupPressure]) -> String {
    let mut said = Vec::new();
    for c in cgroups.iter().filter(|c| c.cgroup != "/") {
        let p = &c.pressure;
        let stalls = [
            ("for a CPU", p.cpu_some_percent),
            ("for IO", p.io_some_percent),
            ("for memory", p.memory_some_percent),
        ];
        let over: Vec<String> = (stalls.iter())
            .filter(|(_, percent)| *percent >= STALL_PERCENT)
            .map(|(what, percent)| format!("{what} {percent:.0} %"))
            .collect();
        if !over.is_empty() {
            said.push(format!(
                " Its cgroup {} stalled {} of the run.",
                c.cgroup,
                over.join(", ")
            ));
        }
    }
    said.concat()
}

/// A blocked state that slows a victim, in words; idle and unexplained sleeps do not.
fn slowed_by(why: BlockedWhy) -> Option<&'static str> {
    match why {
        BlockedWhy::Io => Some("disk IO"),
        BlockedWhy::Memory => Some("memory (faults, reclaim)"),
        BlockedWhy::Network => Some("the network"),
        BlockedWhy::Lock => Some("locks"),
        BlockedWhy::Idle | BlockedWhy::Other => None,
    }
}

/// ` — 2.10 s of it behind burner (2 processes)`: the culprits' largest name.
fn behind(culprits: &[&Culprit]) -> String {
    let mut by_name: BTreeMap<&str, (u64, Vec<u32>)> = BTreeMap::new();
    for c in culprits {
        let entry = by_name.entry(c.comm.as_str()).or_default();
        entry.0 += c.delay_ns;
        entry.1.push(c.pid);
    }
    let Some((name, (ns, pids))) = by_name.into_iter().max_by_key(|(_, (ns, _))| *ns) else {
        return String::new();
    };
    let whom = match pids.as_slice() {
        [pid] => format!("{name} (pid {pid})"),
        many => format!("{name} ({} processes)", many.len()),
    };
    format!(" — {} of it behind {whom}", seconds(ns))
}

/// Where an unslowed victim's time went: its largest state.
fn went(victim: &Victim, share: impl Fn(u64) -> f64) -> String {
    let idle = victim
        .blocked
        .iter()
        .find(|p| p.why == BlockedWhy::Idle)
        .map_or(0, |p| p.ns);
    let asleep = victim.blocked_ns.unwrap_or(0);
    if victim.on_cpu_ns >= asleep {
        return format!(
            "it was busy on its own CPU ({:.0} % of its time)",
            share(victim.on_cpu_ns) * 100.0
        );
    }
    if idle * 2 >= asleep {
        return format!(
            "it was idle, waiting by choice ({:.0} % of its time in poll, sleep or accept)",
            share(idle) * 100.0
        );
    }
    format!(
        "it was mostly asleep ({:.0} % of its time)",
        share(asleep) * 100.0
    )
}

fn seconds(ns: u64) -> String {
    format!("{:.2} s", ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(frames: &[&str], ns: u64) -> FoldedStack {
        (frames.iter().map(|f| (*f).to_owned()).collect(), ns)
    }

    #[test]
    fn a_sleep_is_what_it_waits_in_nearest_the_sleep() {
        let k = |name: &str| format!("{name}{KERNEL_SUFFIX}");
        let io_in_fault = [
            "main".to_owned(),
            k("exc_page_fault"),
            k("handle_mm_fault"),
            k("folio_wait_bit_common"),
            k("io_schedule"),
            k("schedule"),
        ];
        assert_eq!(why(&io_in_fault), BlockedWhy::Io);
        let server = [
            "main".to_owned(),
            k("do_epoll_wait"),
            k("ep_poll"),
            k("schedule"),
        ];
        assert_eq!(why(&server), BlockedWhy::Idle);
        let lock = ["worker".to_owned(), k("futex_wait_queue"), k("schedule")];
        assert_eq!(why(&lock), BlockedWhy::Lock);
        assert_eq!(why(&["[lost stack]".to_owned()]), BlockedWhy::Other);
    }

    #[test]
    fn the_split_covers_the_whole_sleep_largest_first() {
        let k = |name: &str| format!("{name}{KERNEL_SUFFIX}");
        let stacks = [
            stack(&["a", k("ep_poll").as_str()], 700),
            stack(&["a", k("io_schedule").as_str()], 200),
        ];
        let parked = [stack(&["pool", k("futex_wait").as_str()], 50)];
        let parts = split(stacks.iter(), &parked, 1_050);
        let got: Vec<(BlockedWhy, u64)> = parts.iter().map(|p| (p.why, p.ns)).collect();
        assert_eq!(
            got,
            [
                (BlockedWhy::Idle, 750),
                (BlockedWhy::Io, 200),
                (BlockedWhy::Other, 100)
            ]
        );
    }

    fn victim(on: u64, runq: u64, blocked: Vec<BlockedPart>) -> Victim {
        Victim {
            name: "waker".to_owned(),
            pids: vec![7],
            on_cpu_ns: on,
            user_ns: None,
            system_ns: None,
            runq_wait_ns: runq,
            blocked_ns: Some(blocked.iter().map(|p| p.ns).sum()),
            blocked,
            slept_through: 0,
            members: Vec::new(),
            cgroup_pressure: Vec::new(),
            culprits: vec![
                Culprit {
                    pid: 8,
                    comm: "burner".to_owned(),
                    cause: Cause::Cpu,
                    delay_ns: 600_000_000,
                },
                Culprit {
                    pid: 9,
                    comm: "burner".to_owned(),
                    cause: Cause::Cpu,
                    delay_ns: 500_000_000,
                },
            ],
            delayacct: None,
            verdict: String::new(),
        }
    }

    #[test]
    fn a_victim_waiting_for_cpus_names_who_held_them() {
        let idle = BlockedPart {
            why: BlockedWhy::Idle,
            ns: 2_000_000_000,
        };
        let v = victim(500_000_000, 1_500_000_000, vec![idle]);
        let words = verdict(&v, "waker (pid 7)", 4.0);
        assert_eq!(
            words,
            "waker (pid 7) was slowed: it waited 1.50 s for a CPU (75 % of its busy time) — \
             1.10 s of it behind burner (2 processes). Its own CPU use: 0.12 cores."
        );
    }

    #[test]
    fn io_wait_is_shared_by_bytes_and_kernel_threads_and_the_profiler_are_no_culprits() {
        let with_io = |pid: u32, comm: &str, ppid: u32, bytes: u64| {
            let mut p = crate::alerts::fixtures::process(pid, comm, 0.1);
            p.ppid = Some(ppid);
            p.io = p.io.map(|io| crate::report::Io {
                read_bytes: 0,
                write_bytes: bytes,
                ..io
            });
            p
        };
        let processes = [
            with_io(7, "victim", 1, 100),
            with_io(8, "dd", 1, 700),
            with_io(9, "tar", 1, 200),
            with_io(10, "jbd2/vda1-8", 2, 5_000),
            with_io(11, "profiler", 1, 5_000),
        ];
        let victim_pids = HashSet::from([7]);
        let shared = Shared {
            processes: &processes,
            victim: &victim_pids,
            own_pid: 11,
        };
        let culprits = shared.culprits(Cause::Io, 1_000);
        let got: Vec<(u32, Cause, u64)> = culprits
            .iter()
            .map(|c| (c.pid, c.cause, c.delay_ns))
            .collect();
        assert_eq!(got, [(8, Cause::Io, 700), (9, Cause::Io, 200)]);
        let io = BlockedPart {
            why: BlockedWhy::Io,
            ns: 1_000_000_000,
        };
        let mut v = victim(100_000_000, 0, vec![io]);
        v.culprits = shared.culprits(Cause::Io, 1_000_000_000);
        assert_eq!(
            verdict(&v, "victim (pid 7)", 4.0),
            "victim (pid 7) was slowed: 1.00 s blocked on disk IO (91 %) — 0.70 s of it behind \
             dd (pid 8). Its own CPU use: 0.03 cores."
        );
    }

    #[test]
    fn a_memory_wait_is_shared_by_growth_and_shrinking_is_no_pressure() {
        let grown = |pid: u32, comm: &str, growth: i64| {
            let mut p = crate::alerts::fixtures::process(pid, comm, 0.1);
            p.mem = p.mem.map(|mem| crate::report::Mem {
                rss_growth_bytes: Some(growth),
                ..mem
            });
            p
        };
        let processes = [
            grown(7, "victim", 0),
            grown(8, "hog", 3 << 30),
            grown(9, "shrinking", -(1 << 30)),
            grown(10, "leak", 1 << 30),
        ];
        let victim_pids = HashSet::from([7]);
        let shared = Shared {
            processes: &processes,
            victim: &victim_pids,
            own_pid: 11,
        };
        let got: Vec<(u32, u64)> = (shared.culprits(Cause::Memory, 4_000).iter())
            .map(|c| (c.pid, c.delay_ns))
            .collect();
        assert_eq!(got, [(8, 3_000), (10, 1_000)]);
        let memory = BlockedPart {
            why: BlockedWhy::Memory,
            ns: 2_000_000_000,
        };
        let mut v = victim(100_000_000, 0, vec![memory]);
        v.culprits = shared.culprits(Cause::Memory, 2_000_000_000);
        let words = verdict(&v, "victim (pid 7)", 4.0);
        assert!(
            words.contains("2.00 s blocked on memory (faults, reclaim) (95 %) — 1.50 s of it behind hog (pid 8)"),
            "{words}"
        );
    }

    #[test]
    fn an_idle_victim_was_not_slowed() {
        let idle = BlockedPart {
            why: BlockedWhy::Idle,
            ns: 3_900_000_000,
        };
        let mut v = victim(10_000_000, 1_000_000, vec![idle]);
        v.culprits.clear();
        let words = verdict(&v, "waker (pid 7)", 4.0);
        assert!(
            words.contains("was not slowed: it was idle, waiting by choice"),
            "{words}"
        );
    }
}
