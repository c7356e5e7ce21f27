//! Scheduler analysis: wait percentiles from the kernel's log2 histogram, the blame list, and
//! the processes that keep others waiting for a CPU.

use std::collections::HashMap;

use profiler_common::{BlameKey, SchedStats, WAIT_BUCKETS};

use super::thresholds::{SCHED_MIN_DELAY_SHARE, SCHED_MIN_SLOWDOWN, SCHED_MIN_SLOWED_DELAY_SHARE};
use crate::report::{Blame, Sched};

/// Blame pairs kept in the report, largest first.
const MAX_BLAME: usize = 50;

/// Upper bound (ns) of the histogram bucket holding the `quantile` wait, 0 without waits.
pub fn percentile(hist: &[u64; WAIT_BUCKETS], quantile: f64) -> u64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64) * quantile).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (bucket, &count) in hist.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return (1u64 << (bucket + 1)) - 1;
        }
    }
    u64::MAX
}

pub fn sched(stats: &SchedStats) -> Sched {
    Sched {
        runq_wait_ns: stats.runq_wait_ns,
        runq_waits: stats.runq_waits,
        runq_p50_ns: percentile(&stats.wait_hist, 0.50),
        runq_p99_ns: percentile(&stats.wait_hist, 0.99),
        voluntary_switches: stats.voluntary_switches,
        involuntary_switches: stats.involuntary_switches,
        ctx_switches: stats.voluntary_switches + stats.involuntary_switches,
        offcpu_ns: None,
    }
}

/// Blame between different processes (threads of one process waiting on each other are that
/// process's own business), largest delay first.
pub fn blame(pairs: &[(BlameKey, u64)], comms: &HashMap<u32, String>) -> Vec<Blame> {
    let comm = |pid: u32| {
        comms
            .get(&pid)
            .cloned()
            .unwrap_or_else(|| "[unknown]".to_owned())
    };
    let mut blame: Vec<Blame> = pairs
        .iter()
        .filter(|(key, delay)| key.culprit_tgid != key.victim_tgid && *delay > 0)
        .map(|&(key, delay_ns)| Blame {
            culprit_pid: key.culprit_tgid,
            culprit_comm: comm(key.culprit_tgid),
            victim_pid: key.victim_tgid,
            victim_comm: comm(key.victim_tgid),
            delay_ns,
        })
        .collect();
    blame.sort_by(|a, b| {
        (b.delay_ns, a.culprit_pid, a.victim_pid).cmp(&(a.delay_ns, b.culprit_pid, b.victim_pid))
    });
    blame
}

/// What one culprit did to everybody else.
#[derive(Debug, Clone, PartialEq)]
pub struct Culprit<'a> {
    pub pid: u32,
    pub total_delay_ns: u64,
    pub victims: usize,
    pub worst: &'a Blame,
}

/// How many times over its line the waiting a culprit caused is (`None` under it): `delay_ns`
/// its victims waited for a CPU it held, `victims_ran_ns` the CPU time those victims used.
pub fn harm_margin(delay_ns: u64, victims_ran_ns: u64, secs: f64) -> Option<f64> {
    let share = delay_ns as f64 / 1e9 / secs.max(1e-9);
    let slowdown = delay_ns as f64 / victims_ran_ns.max(1) as f64;
    let by_share = share / SCHED_MIN_DELAY_SHARE;
    let by_slowdown = if share >= SCHED_MIN_SLOWED_DELAY_SHARE {
        slowdown / SCHED_MIN_SLOWDOWN
    } else {
        0.0
    };
    let margin = by_share.max(by_slowdown);
    (margin >= 1.0).then_some(margin)
}

/// Culprits by total delay inflicted, largest first. `blame` must be sorted largest first.
pub fn culprits(blame: &[Blame]) -> Vec<Culprit<'_>> {
    let mut by_pid: HashMap<u32, Culprit<'_>> = HashMap::new();
    for entry in blame {
        by_pid
            .entry(entry.culprit_pid)
            .and_modify(|c| {
                c.total_delay_ns += entry.delay_ns;
                c.victims += 1;
            })
            .or_insert(Culprit {
                pid: entry.culprit_pid,
                total_delay_ns: entry.delay_ns,
                victims: 1,
                worst: entry,
            });
    }
    let mut culprits: Vec<Culprit<'_>> = by_pid.into_values().collect();
    culprits.sort_by(|a, b| (b.total_delay_ns, a.pid).cmp(&(a.total_delay_ns, b.pid)));
    culprits
}

/// Which end of blame pairs a total is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Culprit,
    Victim,
}

/// One process at one end of some blame pairs, with their delay summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub pid: u32,
    pub comm: String,
    pub delay_ns: u64,
}

/// The processes at the `side` end of `pairs`, each with the delay of its pairs summed,
/// largest first (ties by pid), at most `limit`.
pub fn parties<'a>(
    pairs: impl IntoIterator<Item = &'a Blame>,
    side: Side,
    limit: usize,
) -> Vec<Party> {
    let mut by_pid: HashMap<u32, Party> = HashMap::new();
    for b in pairs {
        let (pid, comm) = match side {
            Side::Culprit => (b.culprit_pid, &b.culprit_comm),
            Side::Victim => (b.victim_pid, &b.victim_comm),
        };
        by_pid
            .entry(pid)
            .or_insert_with(|| Party {
                pid,
                comm: comm.clone(),
                delay_ns: 0,
            })
            .delay_ns += b.delay_ns;
    }
    let mut parties: Vec<Party> = by_pid.into_values().collect();
    parties.sort_by(|a, b| (b.delay_ns, a.pid).cmp(&(a.delay_ns, b.pid)));
    parties.truncate(limit);
    parties
}

/// The report keeps the largest pairs only; culprit totals are computed before truncating.
pub fn truncate(mut blame: Vec<Blame>) -> Vec<Blame> {
    blame.truncate(MAX_BLAME);
    blame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_bucket_upper_bounds() {
        let mut hist = [0u64; WAIT_BUCKETS];
        assert_eq!(percentile(&hist, 0.99), 0);
        hist[10] = 98; // waits in [1024, 2048) ns
        hist[20] = 2; // waits in [1 Mi, 2 Mi) ns
        assert_eq!(percentile(&hist, 0.50), 2047);
        assert_eq!(percentile(&hist, 0.98), 2047);
        assert_eq!(percentile(&hist, 0.99), (1 << 21) - 1);
    }

    #[test]
    fn blame_skips_self_and_ranks_culprits_by_total() {
        let key = |culprit_tgid, victim_tgid| BlameKey {
            culprit_tgid,
            victim_tgid,
        };
        let comms = HashMap::from([
            (1, "hog".to_owned()),
            (2, "waker".to_owned()),
            (3, "db".to_owned()),
        ]);
        let pairs = [
            (key(1, 2), 700),
            (key(1, 3), 400),
            (key(3, 2), 900),
            (key(2, 2), 5_000),
        ];
        let blame = blame(&pairs, &comms);
        assert_eq!(blame.len(), 3);
        assert_eq!(
            (
                blame[0].culprit_comm.as_str(),
                blame[0].victim_comm.as_str()
            ),
            ("db", "waker")
        );
        let culprits = culprits(&blame);
        assert_eq!(culprits[0].pid, 1);
        assert_eq!(culprits[0].total_delay_ns, 1_100);
        assert_eq!(culprits[0].victims, 2);
        assert_eq!(culprits[0].worst.victim_pid, 2);
    }
}
