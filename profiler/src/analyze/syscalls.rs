//! Syscall analysis: per-process totals and top syscalls, and the processes storming them.

use profiler_common::SyscallStats;

use super::{
    RunFacts, Scored, round3,
    thresholds::{
        SYSCALLS_MIN_COST_CORES, SYSCALLS_MIN_PER_SECOND, SYSCALLS_SAMPLED_MIN_CORES,
        SYSCALLS_SAMPLED_MIN_SAMPLES,
    },
};
use crate::{
    model::syscall_name,
    report::{
        self, Resource, SampledSyscall, SampledSyscalls, Suspect, SyscallTop, Syscalls, Unit,
    },
};

const TOP: usize = 5;

/// `timed`: the exit hook ran, so errors and time mean something; otherwise they are zero
/// (an entry stamp without its exit must not pass for time in the syscall).
pub fn summary(list: &[(u32, SyscallStats)], secs: f64, timed: bool) -> Syscalls {
    let list: Vec<(u32, SyscallStats)> = list
        .iter()
        .map(|&(nr, s)| {
            let s = if timed {
                s
            } else {
                SyscallStats {
                    count: s.count,
                    ..SyscallStats::default()
                }
            };
            (nr, s)
        })
        .collect();
    let count: u64 = list.iter().map(|(_, s)| s.count).sum();
    let mut top: Vec<SyscallTop> = list
        .iter()
        .map(|&(nr, s)| SyscallTop {
            name: syscall_name(nr),
            count: s.count,
            errors: s.errors,
            time_ns: s.time_ns,
        })
        .collect();
    top.sort_by(|a, b| (b.count, &a.name).cmp(&(a.count, &b.name)));
    top.truncate(TOP);
    Syscalls {
        count,
        per_second: round3(count as f64 / secs),
        errors: list.iter().map(|(_, s)| s.errors).sum(),
        time_ns: list.iter().map(|(_, s)| s.time_ns).sum(),
        top,
    }
}

/// Where a process's samples inside syscalls fell; `samples` is all of its samples and
/// `period_ns` the CPU time one sample stands for.
pub fn sampled(list: &[(u32, u64)], samples: u64, period_ns: u64) -> SampledSyscalls {
    let in_syscalls: u64 = list.iter().map(|(_, n)| n).sum();
    let mut top: Vec<SampledSyscall> = list
        .iter()
        .map(|&(nr, n)| SampledSyscall {
            name: syscall_name(nr),
            samples: n,
            est_time_ns: n * period_ns,
        })
        .collect();
    top.sort_by(|a, b| (b.samples, &a.name).cmp(&(a.samples, &b.name)));
    top.truncate(TOP);
    SampledSyscalls {
        samples: in_syscalls,
        // A tick's report takes no stack counts, so its sample total can be zero.
        percent: round3(in_syscalls as f64 * 100.0 / samples.max(in_syscalls).max(1) as f64),
        est_time_ns: in_syscalls * period_ns,
        top,
    }
}

/// The syscall suspects: from exact counts when the hook ran, at a cost on CPU (where samples
/// fell inside syscalls), else from the samples alone.
pub fn suspects(processes: &[report::Process], facts: &RunFacts) -> Vec<Scored> {
    if !facts.signal_on(crate::signals::Signal::Syscalls) {
        return sampled_suspects(processes, facts);
    }
    let timed = facts.signal_on(crate::signals::Signal::SyscallTime);
    processes
        .iter()
        .filter(|p| p.pid != facts.own_pid)
        .filter_map(|p| Some((p, p.syscalls.as_ref()?)))
        .filter_map(|(p, s)| {
            let by_rate = s.per_second / SYSCALLS_MIN_PER_SECOND;
            let margin = at_a_cost(
                by_rate,
                cost_cores(p, facts.seconds()),
                SYSCALLS_MIN_COST_CORES,
            );
            (margin >= 1.0).then_some((p, s, margin))
        })
        .map(|(p, s, margin)| {
            let mut reason = format!(
                "made {} syscalls ({:.0} per second), {}",
                s.count,
                s.per_second,
                inside(p, s, timed)
            );
            if let Some(first) = s.top.first() {
                reason.push_str(&format!(
                    "; mostly {} ({:.0}%)",
                    first.name,
                    first.count as f64 * 100.0 / s.count as f64
                ));
            }
            let suspect = Suspect::new(p.pid, &p.comm, Resource::Syscalls, s.per_second, reason);
            // Scored by the CPU capacity spent inside its syscalls, like the other resources:
            // timed by the exit hook, or else estimated from the samples taken inside them.
            let inside_ns = if timed { s.time_ns } else { sampled_ns(p) };
            let score = inside_ns as f64 / 1e9 / facts.seconds() / facts.cpus();
            (score, suspect.over(margin))
        })
        .collect()
}

/// Time on CPU inside a process's syscalls and their failures, in words: timed by the exit
/// hook, or estimated from the CPU samples (failures unknown then).
pub fn inside(p: &report::Process, s: &Syscalls, timed: bool) -> String {
    if timed {
        return format!(
            "{} failed, {:.2} s on CPU inside them",
            s.errors,
            s.time_ns as f64 / 1e9
        );
    }
    format!(
        "about {:.2} s on CPU inside them (sampled)",
        sampled_ns(p) as f64 / 1e9
    )
}

/// The cores a process spent inside syscalls over `secs`, from its samples; `None` without CPU
/// samples to tell.
pub fn cost_cores(p: &report::Process, secs: f64) -> Option<f64> {
    p.cpu
        .in_syscalls
        .as_ref()
        .map(|s| s.est_time_ns as f64 / 1e9 / secs.max(1e-9))
}

/// How far over its lines a rate is that must also cost `min_cores` (`by_rate`: the rate's
/// margin, `cores`: its cost from [`cost_cores`]): the smaller margin. Without CPU samples the
/// cost cannot be told, and the rate must do.
pub fn at_a_cost(by_rate: f64, cores: Option<f64>, min_cores: f64) -> f64 {
    by_rate.min(cores.map_or(f64::INFINITY, |c| c / min_cores))
}

/// On-CPU time inside a process's syscalls as its samples estimate it; 0 without them.
fn sampled_ns(p: &report::Process) -> u64 {
    p.cpu.in_syscalls.as_ref().map_or(0, |s| s.est_time_ns)
}

/// Processes that spend a large share of a core inside syscalls, judged from samples alone.
fn sampled_suspects(processes: &[report::Process], facts: &RunFacts) -> Vec<Scored> {
    processes
        .iter()
        .filter(|p| p.pid != facts.own_pid)
        .filter_map(|p| Some((p, p.cpu.in_syscalls.as_ref()?)))
        .filter_map(|(p, s)| {
            let cores = s.est_time_ns as f64 / 1e9 / facts.seconds();
            if cores < SYSCALLS_SAMPLED_MIN_CORES || s.samples < SYSCALLS_SAMPLED_MIN_SAMPLES {
                return None;
            }
            let mut reason = format!(
                "spent {cores:.2} cores inside syscalls (sampled: {} of its {} CPU samples)",
                s.samples, p.cpu.samples
            );
            if let Some(first) = s.top.first() {
                reason.push_str(&format!(
                    ", mostly in {} ({:.0}%)",
                    first.name,
                    first.samples as f64 * 100.0 / s.samples as f64
                ));
            }
            let mut suspect =
                Suspect::new(p.pid, &p.comm, Resource::Syscalls, round3(cores), reason);
            suspect.unit = Unit::Cores;
            let margin = cores / SYSCALLS_SAMPLED_MIN_CORES;
            Some((cores / facts.cpus(), suspect.over(margin)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(count: u64, errors: u64) -> SyscallStats {
        SyscallStats {
            count,
            errors,
            time_ns: count * 100,
        }
    }

    #[test]
    fn summary_sums_and_names_the_top_syscalls() {
        let list: Vec<(u32, SyscallStats)> =
            (0..8).map(|nr| (nr, stats(u64::from(nr) + 1, 1))).collect();
        let s = summary(&list, 2.0, true);
        assert_eq!(summary(&list, 2.0, false).time_ns, 0);
        assert_eq!(s.count, 36);
        assert_eq!(s.per_second, 18.0);
        assert_eq!(s.errors, 8);
        assert_eq!(s.time_ns, 3_600);
        assert_eq!(s.top.len(), TOP);
        assert_eq!(s.top[0].count, 8);
        assert_eq!(s.top[0].name, syscall_name(7));
    }

    #[test]
    fn sampled_attribution_estimates_time_per_syscall() {
        // 1000 samples at 10 ms: 600 inside getppid (110), 100 in write (1), 300 in user code.
        let s = sampled(&[(1, 100), (110, 600)], 1000, 10_000_000);
        assert_eq!(s.samples, 700);
        assert_eq!(s.percent, 70.0);
        assert_eq!(s.est_time_ns, 7_000_000_000);
        assert_eq!(s.top[0].name, "getppid");
        assert_eq!(s.top[0].est_time_ns, 6_000_000_000);
        assert_eq!(s.top[1].name, "write");
        assert_eq!(sampled(&[], 0, 10).percent, 0.0);
    }
}
