//! Escalation triggers: which of a tick's always-on figures say the exact probes are worth
//! attaching now. Judged on tick reports only, so it costs nothing the ticks do not already pay.

use std::collections::HashMap;

use crate::report::{Process, Report, TriggerKind};

/// When a trigger fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// CPU inside syscalls (sampled), in cores, that sets off an escalation.
    pub syscall_cores: f64,
    /// Consecutive ticks the figure must hold: one tick at a low sampling rate is a handful of
    /// samples, and a blip is not an incident.
    pub hold_ticks: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            syscall_cores: 0.5,
            hold_ticks: 2,
        }
    }
}

/// What set off an escalation.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub reason: String,
}

/// Watches tick reports for processes over the thresholds, remembering for how many ticks in a
/// row each has been over.
#[derive(Debug, Default)]
pub struct Watch {
    thresholds: Thresholds,
    /// Pid -> consecutive ticks over.
    held: HashMap<u32, u32>,
    own_pid: u32,
}

impl Watch {
    pub fn new(thresholds: Thresholds, own_pid: u32) -> Self {
        Self {
            thresholds,
            held: HashMap::new(),
            own_pid,
        }
    }

    /// The trigger this tick sets off, if any: the process longest over the threshold, the
    /// busiest inside syscalls among equals.
    pub fn judge(&mut self, tick: &Report) -> Option<Trigger> {
        let secs = tick.duration_s.max(1e-3);
        let over: Vec<(&Process, f64)> = tick
            .processes
            .iter()
            .filter(|p| p.pid != self.own_pid)
            .filter_map(|p| {
                let ns = p.cpu.in_syscalls.as_ref()?.est_time_ns;
                let cores = ns as f64 / 1e9 / secs;
                (cores >= self.thresholds.syscall_cores).then_some((p, cores))
            })
            .collect();
        let mut held = HashMap::with_capacity(over.len());
        for (p, _) in &over {
            held.insert(p.pid, self.held.get(&p.pid).copied().unwrap_or(0) + 1);
        }
        self.held = held;
        let (p, cores) = over
            .into_iter()
            .filter(|(p, _)| self.held[&p.pid] >= self.thresholds.hold_ticks)
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        Some(syscalls_trigger(p, cores, self.held[&p.pid]))
    }

    /// Starts over: what held before an escalation says nothing about after it.
    pub fn reset(&mut self) {
        self.held.clear();
    }
}

fn syscalls_trigger(p: &Process, cores: f64, ticks: u32) -> Trigger {
    let mut reason = format!("spent {cores:.2} cores inside syscalls (sampled) for {ticks} ticks");
    if let Some(first) = p.cpu.in_syscalls.as_ref().and_then(|s| s.top.first()) {
        reason.push_str(&format!(", mostly in {}", first.name));
    }
    Trigger {
        kind: TriggerKind::Syscalls,
        pid: Some(p.pid),
        comm: Some(p.comm.clone()),
        reason,
    }
}

/// An alert rule that fired: its subject is worth a closer look.
pub fn alert_trigger(rule: &str, pid: Option<u32>, comm: &str) -> Trigger {
    Trigger {
        kind: TriggerKind::Alert,
        pid,
        comm: Some(comm.to_owned()),
        reason: format!("alert `{rule}` fired"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{SampledSyscall, SampledSyscalls};

    fn tick(figures: &[(u32, &str, f64)]) -> Report {
        let mut report = crate::alerts::fixtures::report(1.0);
        report.processes = figures
            .iter()
            .map(|&(pid, comm, cores)| {
                let mut p = crate::alerts::fixtures::process(pid, comm, cores.max(0.01));
                let ns = (cores * 1e9) as u64;
                p.cpu.in_syscalls = Some(SampledSyscalls {
                    samples: ns / 10_000_000,
                    percent: 90.0,
                    est_time_ns: ns,
                    top: vec![SampledSyscall {
                        name: "getppid".to_owned(),
                        samples: ns / 10_000_000,
                        est_time_ns: ns,
                    }],
                });
                p
            })
            .collect();
        report
    }

    #[test]
    fn fires_once_a_process_held_over_the_threshold() {
        let mut watch = Watch::new(Thresholds::default(), 1);
        assert_eq!(watch.judge(&tick(&[(42, "storm", 0.9)])), None);
        let trigger = watch.judge(&tick(&[(42, "storm", 0.9), (7, "redis", 0.6)]));
        let trigger = trigger.expect("held two ticks");
        assert_eq!(trigger.kind, TriggerKind::Syscalls);
        assert_eq!(
            (trigger.pid, trigger.comm.as_deref()),
            (Some(42), Some("storm"))
        );
        assert!(trigger.reason.contains("0.90 cores"), "{}", trigger.reason);
        assert!(trigger.reason.contains("getppid"), "{}", trigger.reason);
    }

    #[test]
    fn a_blip_a_quiet_process_or_the_profiler_itself_fire_nothing() {
        let mut watch = Watch::new(Thresholds::default(), 1);
        // Over, under, over: never two in a row.
        for cores in [0.9, 0.1, 0.9] {
            assert_eq!(watch.judge(&tick(&[(42, "storm", cores)])), None);
        }
        let mut watch = Watch::new(Thresholds::default(), 1);
        for _ in 0..5 {
            assert_eq!(
                watch.judge(&tick(&[(42, "idle", 0.2), (1, "profiler", 0.9)])),
                None
            );
        }
        watch.judge(&tick(&[(42, "storm", 0.9)]));
        watch.reset();
        assert_eq!(
            watch.judge(&tick(&[(42, "storm", 0.9)])),
            None,
            "reset forgets"
        );
    }
}
