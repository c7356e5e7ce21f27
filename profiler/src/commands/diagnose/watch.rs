//! What `diagnose --victim` reads of the victim at the run's edges, beside the programs: the
//! threads that slept through it, its CPU time split into user and system, its cgroups' own
//! pressure, and, with `--delayacct`, the kernel's delay accounting.

use std::{
    collections::{BTreeSet, HashMap},
    time::Instant,
};

use super::targets;
use crate::{
    analyze::victim::VictimSpec,
    collect::{
        delayacct::{BlkioDelays, DelayAcct},
        pressure::StallTotals,
        threads::{Census, CpuTimes, SleptThrough},
    },
    model::{
        cgroups,
        pressure::{CgroupPressure, HostPressure},
    },
    report::VictimDelays,
};

/// The victim's readings taken when sampling started.
pub struct Watch {
    spec: VictimSpec,
    census: Census,
    cpu: CpuTimes,
    delays: Option<(DelayAcct, BlkioDelays)>,
    /// The victim's cgroups and their stall totals, where cgroup v2 keeps them.
    cgroups: Vec<(String, StallTotals)>,
    started: Instant,
}

/// What the victim's readings say of the run, once sampling ended.
pub struct Edges {
    pub slept_through: Vec<SleptThrough>,
    /// User and system CPU time per process over the run.
    pub cpu_split: HashMap<u32, (u64, u64)>,
    /// Each of the victim's cgroups' own pressure over the run.
    pub cgroup_pressure: Vec<CgroupPressure>,
    pub delays: Option<VictimDelays>,
}

impl Watch {
    /// Read as sampling starts; `delayacct` is on for as long as the watch lives.
    pub fn start(spec: &VictimSpec, delayacct: Option<DelayAcct>) -> Self {
        let pids = targets::victim_pids(spec);
        let delays = delayacct.map(|on| (on, BlkioDelays::read(pids.iter().copied())));
        let cgroups = cgroups_of(&pids)
            .into_iter()
            .filter_map(|path| Some((path.clone(), stalls(&path)?)))
            .collect();
        Self {
            spec: spec.clone(),
            cpu: CpuTimes::read(pids.iter().copied()),
            census: Census::take(pids),
            delays,
            cgroups,
            started: Instant::now(),
        }
    }

    /// Read as sampling ends; delay accounting goes back as it was found.
    pub fn finish(self) -> Edges {
        // One scan of /proc for both readings: a name's victim is looked up among every process.
        let now = targets::victim_pids(&self.spec);
        let delays = self
            .delays
            .map(|(on, before)| victim_delays(&now, &on, &before));
        let cpu = CpuTimes::read(now.iter().copied().chain(self.cpu.pids()));
        let elapsed = self.started.elapsed();
        let cgroup_pressure = (self.cgroups.iter())
            .filter_map(|(path, before)| {
                let pressure = HostPressure::since(&stalls(path)?, before, elapsed);
                let cgroup = path.clone();
                Some(CgroupPressure { cgroup, pressure })
            })
            .collect();
        Edges {
            slept_through: self.census.slept_through(),
            cpu_split: cpu.since(&self.cpu),
            cgroup_pressure,
            delays,
        }
    }
}

/// The distinct cgroup v2 paths of `pids`.
fn cgroups_of(pids: &[u32]) -> BTreeSet<String> {
    let path = |pid: &u32| {
        let process = procfs::process::Process::new(i32::try_from(*pid).ok()?).ok()?;
        let groups = process.cgroups().ok()?;
        groups
            .0
            .into_iter()
            .find(|g| g.hierarchy == 0)
            .map(|g| g.pathname)
    };
    pids.iter().filter_map(path).collect()
}

/// A cgroup's stall totals now.
fn stalls(path: &str) -> Option<StallTotals> {
    StallTotals::of_cgroup(&cgroups::dir_of(path)?)
}

/// The block IO delay of the victim's processes (`now`, and those read `before`) since
/// `before` by delay accounting; says when the kernel kept none for threads that predate
/// turning it on.
fn victim_delays(now: &[u32], on: &DelayAcct, before: &BlkioDelays) -> VictimDelays {
    let after = BlkioDelays::read(now.iter().copied().chain(before.pids()));
    let uncovered_threads = if on.turned_on() { before.threads() } else { 0 };
    if uncovered_threads > 0 {
        eprintln!(
            "profiler: warning: --delayacct: {uncovered_threads} thread(s) of the victim started \
             before delay accounting was on, and the kernel keeps no delays for them; turn it on \
             before the service starts (`sysctl kernel.task_delayacct=1`, or boot with \
             `delayacct`)"
        );
    }
    VictimDelays {
        blkio_ns: after.since(before),
        turned_on: on.turned_on(),
        uncovered_threads,
    }
}
