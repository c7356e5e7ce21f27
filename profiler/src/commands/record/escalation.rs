//! Escalation: when a tick's always-on figures set off a trigger, the exact probes the
//! always-on tier leaves off (a hook per syscall, per packet) attach for a bounded time, one
//! incident at a time with a quiet time after each, and their report becomes an incident
//! window beside the regular ones.

use std::time::{Duration, Instant};

use crate::{
    alerts::{
        event::{AlertEvent, AlertState},
        sink::Sink,
    },
    analyze::triggers::{self, Thresholds, Trigger, Watch},
    metrics::Metrics,
    model::cmdline::Cmdlines,
    probes::Unwinding,
    report::{Incident, Report, TriggerKind},
    session::{Config, Cut, Release, Session, StatsCadence, Symbolization, Tick},
    signals::Signal,
};

/// The exact signals an incident attaches for a trigger, when the always-on ones lack them:
/// what explains it. Syscall time, a firing alert or a CPU-starved host: who calls what, and
/// who sends and receives what. IO stalls: where tasks block (off-CPU stacks). Memory
/// stalls: who faults (a sample per page fault, bearable for an incident's few seconds).
fn scope(kind: TriggerKind) -> &'static [Signal] {
    match kind {
        TriggerKind::Syscalls | TriggerKind::Alert | TriggerKind::CpuPressure => {
            &[Signal::Syscalls, Signal::Net]
        }
        TriggerKind::IoPressure => &[Signal::Offcpu],
        TriggerKind::MemoryPressure => &[Signal::Mem],
    }
}

/// What `kind`'s incident attaches besides the always-on signals `on`.
fn adds(on: &[Signal], kind: TriggerKind) -> Vec<Signal> {
    scope(kind)
        .iter()
        .copied()
        .filter(|signal| !on.contains(signal))
        .collect()
}

/// Every kind of trigger, to tell whether any has something to attach.
const KINDS: [TriggerKind; 5] = [
    TriggerKind::Syscalls,
    TriggerKind::Alert,
    TriggerKind::CpuPressure,
    TriggerKind::IoPressure,
    TriggerKind::MemoryPressure,
];

/// When and for how long to escalate.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub thresholds: Thresholds,
    /// How long the exact probes stay attached.
    pub length: Duration,
    /// Quiet time after an incident before the next may start.
    pub cooldown: Duration,
}

/// What the session of an incident needs from the recorder's.
pub struct Base {
    pub frequency_hz: u64,
    pub cmdlines: Cmdlines,
}

/// What a tick did to the escalation.
enum Step {
    /// An incident began: its exact probes are attached.
    Started(Box<Incident>),
    /// An incident ended: its window, to be named and written.
    Ended(Box<Ended>),
}

/// An incident whose time is up: its closed window, and what set it off.
pub struct Ended {
    pub cut: Cut,
    pub incident: Incident,
}

/// An incident under way.
struct Running {
    session: Session,
    incident: Incident,
    until: Instant,
}

pub struct Escalator {
    policy: Policy,
    watch: Watch,
    base: Base,
    /// The always-on signals: an incident attaches what its trigger needs besides these.
    on: Vec<Signal>,
    running: Option<Box<Running>>,
    quiet_until: Option<Instant>,
    /// The last incident's probes, detaching on a thread of their own: the ticks do not wait
    /// for the RCU grace periods that takes (seconds while a rogue holds the CPUs).
    detaching: Option<Release>,
}

impl Escalator {
    /// `None` when the always-on signals `on` already include every exact one: there is
    /// nothing to escalate to.
    pub fn new(policy: Policy, on: &[Signal], base: Base) -> Option<Self> {
        // A trigger whose probes are on all the time is not watched: it would add nothing, and
        // firing it would hide one that does.
        let useless = |kind| adds(on, kind).is_empty();
        let mut thresholds = policy.thresholds;
        if useless(TriggerKind::Syscalls) {
            thresholds.syscall_cores = f64::INFINITY;
        }
        let pressure = &mut thresholds.pressure;
        for (kind, threshold) in [
            (TriggerKind::CpuPressure, &mut pressure.cpu),
            (TriggerKind::IoPressure, &mut pressure.io),
            (TriggerKind::MemoryPressure, &mut pressure.memory),
        ] {
            if useless(kind) {
                *threshold = None;
            }
        }
        if KINDS.into_iter().all(useless) {
            return None;
        }
        Some(Self {
            watch: Watch::new(thresholds, std::process::id()),
            policy,
            base,
            on: on.to_vec(),
            running: None,
            quiet_until: None,
            detaching: None,
        })
    }

    /// What an incident set off by `kind` attaches.
    fn adds(&self, kind: TriggerKind) -> Vec<Signal> {
        adds(&self.on, kind)
    }

    /// Feeds one of the recorder's ticks and the alert events it raised (a firing one is a
    /// trigger, unless it is an incident's own): an incident that starts is counted in
    /// `metrics` and told to the alert `sink`; one that ended is handed back, for the caller
    /// to name, write and then tell with [`ended`].
    pub fn feed(
        &mut self,
        tick: &Tick,
        events: &[AlertEvent],
        (metrics, sink): (Option<&Metrics>, &Sink),
    ) -> Option<Ended> {
        let fired = events
            .iter()
            .find(|e| e.state == AlertState::Firing && e.incident.is_none());
        let alert = fired.map(|e| triggers::alert_trigger(&e.rule, e.pid, &e.comm));
        match self.tick(&tick.report, alert, tick.at, sink)? {
            Step::Started(incident) => {
                if let Some(metrics) = metrics {
                    metrics.escalation(incident.trigger);
                }
                tell(sink, &incident, AlertState::Firing, None);
                None
            }
            Step::Ended(ended) => Some(*ended),
        }
    }

    /// Feeds one tick: starts an incident when `alert` or the tick sets off a trigger and none
    /// runs or just ran, or ends one whose time is up. An incident that fails is said and
    /// given up: the always-on recording it rides on goes on regardless.
    fn tick(
        &mut self,
        tick: &Report,
        alert: Option<Trigger>,
        at: jiff::Timestamp,
        sink: &Sink,
    ) -> Option<Step> {
        if let Some(running) = &mut self.running {
            if Instant::now() >= running.until {
                return self.finish(sink).map(|ended| Step::Ended(Box::new(ended)));
            }
            // Learns the processes that come and go meanwhile, while /proc still has them.
            if let Err(err) = running.session.tick() {
                if let Some(running) = self.running.take() {
                    tell(sink, &running.incident, AlertState::Resolved, None);
                }
                self.give_up("reading the incident's probes", &err);
            }
            return None;
        }
        let judged = self.watch.judge(tick);
        if self.quiet_until.is_some_and(|until| Instant::now() < until) {
            return None;
        }
        // An alert on a signal that is on all the time adds nothing: it does not hide `judged`.
        let alert = alert.filter(|trigger| !self.adds(trigger.kind).is_empty());
        let trigger = alert.or(judged)?;
        match self.start(trigger, at) {
            Ok(incident) => Some(Step::Started(Box::new(incident))),
            Err(err) => {
                self.give_up("attaching the incident's probes", &err);
                None
            }
        }
    }

    /// Says why an incident failed and keeps quiet for a cooldown: a host that refuses the
    /// probes once is not asked again every second.
    fn give_up(&mut self, doing: &str, err: &anyhow::Error) {
        eprintln!("profiler: warning: incident given up: {doing}: {err:#}");
        self.quiet();
    }

    /// Starts the quiet time after an incident; what held before it says nothing of after.
    fn quiet(&mut self) {
        self.quiet_until = Some(Instant::now() + self.policy.cooldown);
        self.watch.reset();
    }

    /// Attaches the exact probes for `trigger`; the incident they serve.
    fn start(&mut self, trigger: Trigger, at: jiff::Timestamp) -> anyhow::Result<Incident> {
        let length = humantime::format_duration(self.policy.length);
        let who = match (&trigger.comm, trigger.pid) {
            (Some(comm), Some(pid)) => format!("{comm} (pid {pid}) "),
            _ => String::new(),
        };
        let adds = self.adds(trigger.kind);
        let mut signals = vec![Signal::Cpu];
        signals.extend(&adds);
        let config = Config {
            frequency_hz: self.base.frequency_hz,
            // The recorder's own session walks the CPU stacks of the incident with tables; the
            // incident's probes are attached on the real-time thread under a rogue, and loading
            // the walker there would lengthen that.
            unwinding: Unwinding::FramePointers,
            signals,
            cmdlines: self.base.cmdlines,
            only_pids: Vec::new(),
            tick: self.policy.length,
            window: None,
            symbolization: Symbolization::PerWindow,
            stats: StatsCadence::Short,
            what_next: String::new(),
        };
        let session = Session::escalate(config)?;
        let names: Vec<&str> = adds.iter().map(|s| s.name()).collect();
        eprintln!(
            "profiler: incident: {who}{}; attached {} for {length}",
            trigger.reason,
            names.join(", ")
        );
        let incident = Incident {
            trigger: trigger.kind,
            pid: trigger.pid,
            comm: trigger.comm,
            reason: trigger.reason,
            fired_at: crate::alerts::event::rfc3339(at),
            escalated: adds,
        };
        self.running = Some(Box::new(Running {
            session,
            incident: incident.clone(),
            until: Instant::now() + self.policy.length,
        }));
        Ok(incident)
    }

    /// Ends the running incident, if any (its time is up, or record is stopping), and closes
    /// its window, whose stacks are still to be named; the quiet time starts now. One that
    /// cannot be read is told resolved to `sink` now, without a window.
    pub fn finish(&mut self, sink: &Sink) -> Option<Ended> {
        let running = self.running.take()?;
        let (cut, _, released) = match running.session.close() {
            Ok(finished) => finished,
            Err(err) => {
                tell(sink, &running.incident, AlertState::Resolved, None);
                self.give_up("reading the incident's report", &err);
                return None;
            }
        };
        self.wait_detached();
        self.detaching = Some(released);
        self.quiet();
        Some(Ended {
            cut,
            incident: running.incident,
        })
    }
}

impl Escalator {
    /// Waits until the last incident's probes are detached: before the process exits.
    pub fn wait_detached(&mut self) {
        if let Some(release) = self.detaching.take() {
            release.wait();
        }
    }
}

/// Tells the alert sink an incident ended, naming its `window`'s directory if it was written.
pub fn ended(sink: &Sink, incident: &Incident, window: Option<String>) {
    tell(sink, incident, AlertState::Resolved, window);
}

fn tell(sink: &Sink, incident: &Incident, state: AlertState, window: Option<String>) {
    sink.tell(&AlertEvent::incident(
        incident,
        state,
        jiff::Timestamp::now(),
        window,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn over(on: &[Signal]) -> Option<Escalator> {
        let policy = Policy {
            thresholds: Thresholds::default(),
            length: Duration::from_secs(10),
            cooldown: Duration::from_secs(300),
        };
        let base = Base {
            frequency_hz: 19,
            cmdlines: Cmdlines::redacted(false),
        };
        Escalator::new(policy, on, base)
    }

    #[test]
    fn each_trigger_adds_what_the_always_on_signals_lack() {
        let defaults = [Signal::Cpu, Signal::Sched, Signal::Processes, Signal::Io];
        let escalator = over(&defaults).expect("something to escalate to");
        assert_eq!(
            escalator.adds(TriggerKind::Syscalls),
            [Signal::Syscalls, Signal::Net]
        );
        assert_eq!(escalator.adds(TriggerKind::IoPressure), [Signal::Offcpu]);
        assert_eq!(escalator.adds(TriggerKind::MemoryPressure), [Signal::Mem]);
        // Syscalls and net always on: only the pressure kinds that need more are left.
        let exact = [&defaults[..], &[Signal::Syscalls, Signal::Net]].concat();
        let escalator = over(&exact).expect("offcpu and mem are still off");
        assert!(escalator.adds(TriggerKind::CpuPressure).is_empty());
        let all = [&exact[..], &[Signal::Offcpu, Signal::Mem]].concat();
        assert!(over(&all).is_none(), "nothing left to attach");
    }
}
