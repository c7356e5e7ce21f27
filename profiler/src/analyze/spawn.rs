//! Spawn storms: parents starting processes at a high rate at a cost, with what their children
//! used.

use super::{
    RunFacts, Scored, round3,
    thresholds::{SPAWN_MIN_FAMILY_CORES, SPAWN_MIN_PER_SECOND},
};
use crate::report::{Process, Resource, Suspect};

pub fn suspects(processes: &[Process], facts: &RunFacts) -> Vec<Scored> {
    let secs = facts.seconds();
    processes
        .iter()
        .filter(|p| p.pid != facts.own_pid)
        .filter(|p| p.spawned as f64 / secs >= SPAWN_MIN_PER_SECOND)
        .filter_map(|p| {
            let children: Vec<&Process> =
                processes.iter().filter(|c| c.ppid == Some(p.pid)).collect();
            let children_ns: u64 = children.iter().map(|c| c.cpu.on_cpu_ns).sum();
            let children_cores = children_ns as f64 / 1e9 / secs;
            if children_cores + p.cpu.cores < SPAWN_MIN_FAMILY_CORES {
                return None;
            }
            let per_second = round3(p.spawned as f64 / secs);
            let mut reason = format!(
                "started {} processes in {secs:.1} s ({per_second:.1} per second), which used {children_cores:.2} cores together",
                p.spawned
            );
            if let Some(child) = children.first() {
                reason.push_str(&format!("; e.g. {} (pid {})", child.comm, child.pid));
            }
            let suspect = Suspect::new(
                p.pid,
                &p.comm,
                Resource::Spawn,
                per_second,
                reason,
            );
            // What the children cost the host, plus a floor so a storm of tiny children ranks.
            let score = children_cores / facts.cpus() + 0.01;
            let margin = (per_second / SPAWN_MIN_PER_SECOND)
                .min((children_cores + p.cpu.cores) / SPAWN_MIN_FAMILY_CORES);
            Some((score, suspect.over(margin)))
        })
        .collect()
}
