//! Syscall analysis: per-process totals and top syscalls, and the processes storming them.

use profiler_common::SyscallStats;

use super::{RunFacts, Scored, round3};
use crate::{
    model::syscall_name,
    report::{self, Resource, Suspect, SyscallTop, Syscalls},
};

const TOP: usize = 5;
/// A process is a syscalls suspect from this rate on: far above what idle daemons make, well
/// below a storm (a tight loop makes millions per second).
const SUSPECT_MIN_PER_SECOND: f64 = 10_000.0;

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

pub fn suspects(processes: &[report::Process], facts: &RunFacts) -> Vec<Scored> {
    processes
        .iter()
        .filter(|p| p.pid != facts.own_pid)
        .filter_map(|p| Some((p, p.syscalls.as_ref()?)))
        .filter(|(_, s)| s.per_second >= SUSPECT_MIN_PER_SECOND)
        .map(|(p, s)| {
            let mut reason = format!(
                "made {} syscalls ({:.0} per second), {} failed, {:.2} s on CPU inside them",
                s.count,
                s.per_second,
                s.errors,
                s.time_ns as f64 / 1e9
            );
            if let Some(first) = s.top.first() {
                reason.push_str(&format!(
                    "; mostly {} ({:.0}%)",
                    first.name,
                    first.count as f64 * 100.0 / s.count as f64
                ));
            }
            let suspect = Suspect::new(p.pid, &p.comm, Resource::Syscalls, s.per_second, reason);
            // Scored by the CPU capacity spent inside its syscalls, like the other resources.
            let score = s.time_ns as f64 / 1e9 / facts.seconds() / facts.cpus();
            (score, suspect)
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
}
