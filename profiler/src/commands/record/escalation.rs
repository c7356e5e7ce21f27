//! Escalation: when a tick's always-on figures set off a trigger, the exact probes the
//! always-on tier leaves off (a hook per syscall, per packet) attach for a bounded time, one
//! incident at a time with a quiet time after each, and their report becomes an incident
//! window beside the regular ones.

use std::time::{Duration, Instant};

use crate::{
    analyze::triggers::{Thresholds, Trigger, Watch},
    model::cmdline::Cmdlines,
    report::{Incident, Report, TriggerKind},
    session::{Config, Session, Symbolization, WindowReport},
    signals::Signal,
};

/// The exact signals an incident attaches when the always-on ones lack them.
const EXACT: [Signal; 2] = [Signal::Syscalls, Signal::Net];

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
pub enum Step {
    /// An incident began: its exact probes are attached.
    Started(TriggerKind),
    /// An incident ended: its window, to be written.
    Ended(Box<WindowReport>),
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
    /// The exact signals the always-on tier leaves off: what an incident attaches.
    adds: Vec<Signal>,
    running: Option<Box<Running>>,
    quiet_until: Option<Instant>,
}

impl Escalator {
    /// `None` when the always-on signals `on` already include every exact one: there is
    /// nothing to escalate to.
    pub fn new(policy: Policy, on: &[Signal], base: Base) -> Option<Self> {
        let adds: Vec<Signal> = EXACT.into_iter().filter(|s| !on.contains(s)).collect();
        if adds.is_empty() {
            return None;
        }
        Some(Self {
            watch: Watch::new(policy.thresholds, std::process::id()),
            policy,
            base,
            adds,
            running: None,
            quiet_until: None,
        })
    }

    /// Feeds one tick: starts an incident when `alert` or the tick sets off a trigger and none
    /// runs or just ran, or ends one whose time is up.
    pub async fn tick(
        &mut self,
        tick: &Report,
        alert: Option<Trigger>,
        at: jiff::Timestamp,
    ) -> anyhow::Result<Option<Step>> {
        if let Some(running) = &mut self.running {
            if Instant::now() < running.until {
                // Learns the processes that come and go meanwhile, while /proc still has them.
                running.session.tick()?;
                return Ok(None);
            }
            let window = self.finish().await?;
            return Ok(window.map(|w| Step::Ended(Box::new(w))));
        }
        let judged = self.watch.judge(tick);
        if self.quiet_until.is_some_and(|until| Instant::now() < until) {
            return Ok(None);
        }
        let Some(trigger) = alert.or(judged) else {
            return Ok(None);
        };
        let kind = trigger.kind;
        self.start(trigger, at)?;
        Ok(Some(Step::Started(kind)))
    }

    /// Attaches the exact probes for `trigger`.
    fn start(&mut self, trigger: Trigger, at: jiff::Timestamp) -> anyhow::Result<()> {
        let length = humantime::format_duration(self.policy.length);
        let who = match (&trigger.comm, trigger.pid) {
            (Some(comm), Some(pid)) => format!("{comm} (pid {pid}) "),
            _ => String::new(),
        };
        let mut signals = vec![Signal::Cpu];
        signals.extend(&self.adds);
        let config = Config {
            frequency_hz: self.base.frequency_hz,
            signals,
            cmdlines: self.base.cmdlines,
            only_pids: Vec::new(),
            tick: self.policy.length,
            window: None,
            symbolization: Symbolization::PerWindow,
            what_next: String::new(),
        };
        let session = Session::escalate(config)?;
        let adds: Vec<&str> = self.adds.iter().map(|s| s.name()).collect();
        eprintln!(
            "profiler: incident: {who}{}; attached {} for {length}",
            trigger.reason,
            adds.join(", ")
        );
        let incident = Incident {
            trigger: trigger.kind,
            pid: trigger.pid,
            comm: trigger.comm,
            reason: trigger.reason,
            fired_at: crate::alerts::event::rfc3339(at),
            escalated: self.adds.clone(),
        };
        self.running = Some(Box::new(Running {
            session,
            incident,
            until: Instant::now() + self.policy.length,
        }));
        Ok(())
    }

    /// Ends the running incident, if any (its time is up, or record is stopping), and reports
    /// it; the quiet time starts now.
    pub async fn finish(&mut self) -> anyhow::Result<Option<WindowReport>> {
        let Some(running) = self.running.take() else {
            return Ok(None);
        };
        let (mut window, _, released) = running.session.finish().await?;
        released.wait();
        window.report.incident = Some(running.incident);
        self.quiet_until = Some(Instant::now() + self.policy.cooldown);
        self.watch.reset();
        Ok(Some(window))
    }
}
