//! CPU suspects by harm: a process, or an application, that used a large share of the CPUs
//! while others waited for one or while the host had none to spare. Using a lot is no harm on
//! its own: a single-threaded job on an idle host of many CPUs slows nobody down.

use std::collections::{HashMap, HashSet};

use super::{
    RunFacts, Scored, app_suspects,
    sched::{Party, Side, parties},
    thresholds::{
        CPU_MIN_CAUSED_WAIT_SHARE, CPU_MIN_CORES, CPU_MIN_HOST_PERCENT, CPU_SATURATED_PERCENT,
        CPU_SATURATING_HOST_PERCENT, STALL_PERCENT,
    },
};
use crate::{
    report::{Blame, Process, Resource, Suspect},
    signals::Signal,
};

/// The run-queue waits processes caused processes of other applications: the harm the sched
/// and CPU suspects rest on. Waits within one application (threads of one process included)
/// are its own business, and the profiler's own waiting is its cost, not anyone's harm. Nor is
/// a kernel thread's: it works for others (ksoftirqd waiting behind a loopback flood runs that
/// flood's own packets), and charging its wait names whoever fed it.
pub fn waits_on_others(processes: &[Process], blame: &[Blame], own_pid: u32) -> Vec<Blame> {
    let by_pid: HashMap<u32, &Process> = processes.iter().map(|p| (p.pid, p)).collect();
    let same_app = |b: &Blame| {
        b.culprit_pid == b.victim_pid
            || by_pid
                .get(&b.culprit_pid)
                .zip(by_pid.get(&b.victim_pid))
                .is_some_and(|(c, v)| app_suspects::same_app(c, v))
    };
    let kernel = |pid: u32| by_pid.get(&pid).is_some_and(|p| p.is_kernel_thread());
    blame
        .iter()
        .filter(|b| !same_app(b) && b.victim_pid != own_pid && !kernel(b.victim_pid))
        .cloned()
        .collect()
}

/// What the host's CPUs were like over the run, to tell harm from mere use.
pub struct Contention<'a> {
    /// Waits caused to other applications ([`waits_on_others`]).
    others: &'a [Blame],
    /// Whether `others` was measured (the sched signal was on).
    blamed: bool,
    busy_percent: f64,
    /// PSI's `some` share for CPU, when the kernel keeps it.
    stall_percent: Option<f64>,
    secs: f64,
}

impl<'a> Contention<'a> {
    pub fn new(facts: &RunFacts, others: &'a [Blame], busy_cores: f64) -> Self {
        Self {
            others,
            blamed: facts.signal_on(Signal::Sched),
            busy_percent: busy_cores / facts.cpus() * 100.0,
            stall_percent: facts.pressure.map(|p| p.cpu_some_percent),
            secs: facts.seconds(),
        }
    }

    /// The harm the CPU use of `pids`, `host_percent` of the host's CPUs, did; `None` when it
    /// did none worth naming. The strongest evidence when there are several.
    pub fn harm(&self, pids: &HashSet<u32>, host_percent: f64) -> Option<Harm> {
        let caused: Vec<&Blame> = self
            .others
            .iter()
            .filter(|b| pids.contains(&b.culprit_pid))
            .collect();
        let victims = parties(caused.iter().copied(), Side::Victim, usize::MAX);
        let waits = Harm::Waits {
            victims: victims.len(),
            delay_ns: caused.iter().map(|b| b.delay_ns).sum(),
            worst: victims.into_iter().next(),
        };
        let holds_much = host_percent >= CPU_SATURATING_HOST_PERCENT;
        let saturated = Harm::Saturated {
            busy_percent: self.busy_percent,
            held_percent: host_percent,
        };
        // PSI says tasks stalled but not behind whom: evidence only when blame cannot say.
        let stalled = self
            .stall_percent
            .filter(|_| !self.blamed)
            .map(|percent| Harm::Stalled { percent });
        [
            Some(waits),
            holds_much.then_some(saturated),
            stalled.filter(|_| holds_much),
        ]
        .into_iter()
        .flatten()
        .map(|harm| (harm.margin(self.secs), harm))
        .filter(|(margin, _)| *margin >= 1.0)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, harm)| harm)
    }

    /// How many times over its line `harm` is.
    pub fn margin(&self, harm: &Harm) -> f64 {
        harm.margin(self.secs)
    }
}

/// The evidence a CPU suspect rests on.
#[derive(Debug, Clone, PartialEq)]
pub enum Harm {
    /// Processes of other applications waited `delay_ns` in total for a CPU it held, `worst`
    /// the longest.
    Waits {
        victims: usize,
        delay_ns: u64,
        worst: Option<Party>,
    },
    /// The host's CPUs were `busy_percent` busy, `held_percent` of them held by the suspect:
    /// anything else that wanted one would have waited.
    Saturated {
        busy_percent: f64,
        held_percent: f64,
    },
    /// Tasks stalled for a CPU this share of the run (PSI), with no blame to say behind whom.
    Stalled { percent: f64 },
}

impl Harm {
    /// How many times over its line the harm is.
    fn margin(&self, secs: f64) -> f64 {
        match *self {
            Self::Waits { delay_ns, .. } => {
                delay_ns as f64 / 1e9 / secs.max(1e-9) / CPU_MIN_CAUSED_WAIT_SHARE
            }
            Self::Saturated {
                busy_percent,
                held_percent,
            } => {
                if busy_percent >= CPU_SATURATED_PERCENT {
                    held_percent / CPU_SATURATING_HOST_PERCENT
                } else {
                    0.0
                }
            }
            Self::Stalled { percent } => percent / STALL_PERCENT,
        }
    }

    /// `while 2 other processes waited 1.20 s for a CPU it held, the most delayed waker (pid
    /// 9) 1.10 s`, `held_by` saying who held it (`it`, `one of them`).
    pub fn words(&self, held_by: &str) -> String {
        match self {
            Self::Waits {
                victims,
                delay_ns,
                worst,
            } => {
                let who = match (victims, worst) {
                    (1, Some(only)) => format!("{} (pid {})", only.comm, only.pid),
                    (n, _) => format!("{n} other processes"),
                };
                let mut text = format!(
                    "while {who} waited {:.2} s for a CPU {held_by} held",
                    *delay_ns as f64 / 1e9
                );
                if let Some(worst) = worst.as_ref().filter(|_| *victims > 1) {
                    text.push_str(&format!(
                        ", the most delayed {} (pid {}) {:.2} s",
                        worst.comm,
                        worst.pid,
                        worst.delay_ns as f64 / 1e9
                    ));
                }
                text
            }
            Self::Saturated { busy_percent, .. } => {
                format!("while the host's CPUs were {busy_percent:.0} % busy, none to spare")
            }
            Self::Stalled { percent } => {
                format!("while tasks stalled for a CPU {percent:.0} % of the time")
            }
        }
    }
}

/// Whether `cores`, `host_percent` of the host, is enough CPU to accuse anyone of, and how many
/// times over that line.
pub fn use_margin(cores: f64, host_percent: f64) -> Option<f64> {
    let margin = (cores / CPU_MIN_CORES).max(host_percent / CPU_MIN_HOST_PERCENT);
    (margin >= 1.0).then_some(margin)
}

/// The processes whose CPU use harmed others.
pub fn suspects(
    processes: &[Process],
    facts: &RunFacts,
    busy_cores: f64,
    contention: &Contention<'_>,
) -> Vec<Scored> {
    let cpus = facts.cpus.max(1);
    processes
        .iter()
        .filter(|p| p.pid != facts.own_pid)
        .filter_map(|p| {
            let used = use_margin(p.cpu.cores, p.cpu.host_percent)?;
            let harm = contention.harm(&HashSet::from([p.pid]), p.cpu.host_percent)?;
            let share = if busy_cores > 0.0 {
                p.cpu.cores / busy_cores * 100.0
            } else {
                0.0
            };
            let mut reason = format!(
                "used {:.2} cores ({:.1}% of {cpus} CPUs) on average over {:.1} s, {:.0}% of all busy CPU time, {}",
                p.cpu.cores,
                p.cpu.host_percent,
                facts.seconds(),
                share,
                harm.words("it")
            );
            if let Some(hot) = &p.cpu.hottest {
                reason.push_str(&format!(
                    "; hottest function {} ({:.0}% of its samples)",
                    hot.function, hot.percent
                ));
            }
            let margin = used.min(contention.margin(&harm));
            let suspect = Suspect::new(p.pid, &p.comm, Resource::Cpu, p.cpu.cores, reason);
            Some((p.cpu.cores / facts.cpus(), suspect.over(margin)))
        })
        .collect()
}
