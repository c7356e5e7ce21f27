//! Escalation triggers: which of a tick's always-on figures say the exact probes are worth
//! attaching now. Judged on tick reports only, so it costs nothing the ticks do not already pay.

use std::collections::HashMap;

use crate::report::{HostPressure, Process, Report, TriggerKind};

/// When a trigger fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// CPU inside syscalls (sampled), in cores, that sets off an escalation.
    pub syscall_cores: f64,
    /// Host stall shares that set one off.
    pub pressure: PressureThresholds,
    /// Consecutive ticks the figure must hold: one tick at a low sampling rate is a handful of
    /// samples, and a blip is not an incident.
    pub hold_ticks: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            syscall_cores: 0.5,
            pressure: PressureThresholds::default(),
            hold_ticks: 2,
        }
    }
}

/// Percent of a tick that some task stalled for each resource (PSI `some`); `None`: not
/// watched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PressureThresholds {
    pub cpu: Option<f64>,
    pub io: Option<f64>,
    pub memory: Option<f64>,
}

impl Default for PressureThresholds {
    /// High enough that a busy but served host sets nothing off: a CPU wanted by someone else
    /// four fifths of the time is an overloaded host; half the time waiting for IO, or a fifth
    /// waiting for memory (reclaim, refaults), is a stall an operator wants explained.
    fn default() -> Self {
        Self {
            cpu: Some(80.0),
            io: Some(50.0),
            memory: Some(20.0),
        }
    }
}

impl PressureThresholds {
    /// Each watched resource with its threshold and its share in `pressure`.
    fn over(&self, pressure: &HostPressure) -> impl Iterator<Item = (TriggerKind, f64, f64)> {
        [
            (
                TriggerKind::CpuPressure,
                self.cpu,
                pressure.cpu_some_percent,
            ),
            (TriggerKind::IoPressure, self.io, pressure.io_some_percent),
            (
                TriggerKind::MemoryPressure,
                self.memory,
                pressure.memory_some_percent,
            ),
        ]
        .into_iter()
        .filter_map(|(kind, threshold, share)| Some((kind, threshold?, share)))
        .filter(|&(_, threshold, share)| share >= threshold)
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
    /// Pressure kind -> consecutive ticks over.
    stalled: HashMap<TriggerKind, u32>,
    own_pid: u32,
}

impl Watch {
    pub fn new(thresholds: Thresholds, own_pid: u32) -> Self {
        Self {
            thresholds,
            held: HashMap::new(),
            stalled: HashMap::new(),
            own_pid,
        }
    }

    /// The trigger this tick sets off, if any: a process inside syscalls (it names its
    /// culprit) before host pressure (which names none).
    pub fn judge(&mut self, tick: &Report) -> Option<Trigger> {
        let syscalls = self.judge_syscalls(tick);
        let pressure = self.judge_pressure(tick);
        syscalls.or(pressure)
    }

    /// The host stall held longest over its threshold, the largest share among equals.
    fn judge_pressure(&mut self, tick: &Report) -> Option<Trigger> {
        let over: Vec<(TriggerKind, f64, f64)> = tick
            .host
            .pressure
            .as_ref()
            .map(|p| self.thresholds.pressure.over(p).collect())
            .unwrap_or_default();
        self.stalled = over
            .iter()
            .map(|&(kind, _, _)| (kind, self.stalled.get(&kind).copied().unwrap_or(0) + 1))
            .collect();
        let (kind, _, share) = over
            .into_iter()
            .filter(|(kind, _, _)| self.stalled[kind] >= self.thresholds.hold_ticks)
            .max_by(|a, b| (a.2 / a.1).total_cmp(&(b.2 / b.1)))?;
        Some(pressure_trigger(kind, share, self.stalled[&kind]))
    }

    /// The process longest over the syscall threshold, the busiest inside syscalls among
    /// equals.
    fn judge_syscalls(&mut self, tick: &Report) -> Option<Trigger> {
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
        self.stalled.clear();
    }
}

fn pressure_trigger(kind: TriggerKind, share: f64, ticks: u32) -> Trigger {
    let waited_for = match kind {
        TriggerKind::CpuPressure => "a CPU",
        TriggerKind::IoPressure => "IO",
        _ => "memory",
    };
    Trigger {
        kind,
        pid: None,
        comm: None,
        reason: format!(
            "some task waited for {waited_for} {share:.0} % of the time for {ticks} ticks (host pressure)"
        ),
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

    fn stalled(cpu: f64, io: f64) -> Report {
        let mut report = tick(&[]);
        report.host.pressure = Some(HostPressure {
            cpu_some_percent: cpu,
            io_some_percent: io,
            ..HostPressure::default()
        });
        report
    }

    #[test]
    fn host_pressure_held_two_ticks_fires_without_a_culprit() {
        let mut watch = Watch::new(Thresholds::default(), 1);
        assert_eq!(watch.judge(&stalled(95.0, 60.0)), None);
        let trigger = watch.judge(&stalled(90.0, 70.0)).expect("held two ticks");
        // Both held; IO is further over its threshold (70 % of 50, against 90 % of 80).
        assert_eq!(trigger.kind, TriggerKind::IoPressure);
        assert_eq!((trigger.pid, trigger.comm), (None, None));
        assert!(trigger.reason.contains("IO 70 %"), "{}", trigger.reason);
        // A blip, then a stretch of a kernel without PSI: nothing.
        let mut watch = Watch::new(Thresholds::default(), 1);
        for report in [stalled(95.0, 0.0), stalled(10.0, 0.0), stalled(95.0, 0.0)] {
            assert_eq!(watch.judge(&report), None);
        }
        assert_eq!(watch.judge(&tick(&[])), None);
        // Not watched: never.
        let thresholds = Thresholds {
            pressure: PressureThresholds {
                cpu: None,
                io: None,
                memory: None,
            },
            ..Thresholds::default()
        };
        let mut watch = Watch::new(thresholds, 1);
        for _ in 0..3 {
            assert_eq!(watch.judge(&stalled(100.0, 100.0)), None);
        }
    }

    #[test]
    fn a_process_inside_syscalls_comes_before_host_pressure() {
        let mut watch = Watch::new(Thresholds::default(), 1);
        let mut both = tick(&[(42, "storm", 0.9)]);
        both.host.pressure = stalled(99.0, 0.0).host.pressure;
        assert_eq!(watch.judge(&both), None);
        let trigger = watch.judge(&both).expect("held two ticks");
        assert_eq!(trigger.kind, TriggerKind::Syscalls);
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
