//! The alert engine: evaluates every rule against each tick's report and turns conditions that
//! hold long enough into `firing` events, and conditions that stop holding into `resolved` ones.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::{
    report::{App, AppKind, Process, Report},
    signals::{Signal, SignalState},
};

use super::event::{AlertEvent, AlertState, Evidence, rfc3339};
use super::figure::Tick;
use super::rule::{Rule, Scope};

/// Share of a tick by which the ticks a condition held in may fall short of the rule's `for`.
/// Ticks come from a timer and their lengths jitter by milliseconds: two ticks of 0.999 s have
/// held for `2s` as far as a once-a-second measurement can tell.
const TICK_SLACK: f64 = 0.1;

/// What a rule is evaluated for: a process (its identity survives pid reuse) or an application.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    Process { pid: u32, start_time: u64 },
    App { kind: AppKind, name: String },
}

/// A subject whose condition holds: pending until it has held for the rule's `for`, then firing.
#[derive(Debug)]
struct State {
    since: Timestamp,
    firing: bool,
    /// The tick it was last seen holding in; states not seen in a tick are dropped.
    seen: u64,
    /// Who it is, for the resolution of a subject that is gone.
    pid: Option<u32>,
    comm: String,
    app: String,
}

/// Where a subject's identity and an event's evidence come from; read only for subjects whose
/// condition holds or resolves, a few per tick.
#[derive(Clone, Copy)]
enum Source<'a> {
    Process(&'a Process),
    App(&'a App),
}

impl Source<'_> {
    fn subject(self) -> Subject {
        match self {
            Self::Process(p) => Subject::Process {
                pid: p.pid,
                start_time: p.start_time,
            },
            Self::App(app) => Subject::App {
                kind: app.kind,
                name: app.name.clone(),
            },
        }
    }

    fn value(self, tick: &Tick<'_>, rule: &Rule) -> Option<f64> {
        match self {
            Self::Process(p) => tick.process_value(rule.figure(), p),
            Self::App(app) => tick.app_value(rule.figure(), app),
        }
    }

    /// An exited process is nobody's problem any more: it never starts or keeps a condition.
    fn exited(self) -> bool {
        matches!(self, Self::Process(p) if p.exited)
    }

    /// Pid, comm and app of events about it.
    fn who(self, tick: &Tick<'_>) -> (Option<u32>, String, String) {
        match self {
            Self::Process(p) => (
                Some(p.pid),
                p.comm.clone(),
                p.cgroup.clone().unwrap_or_else(|| p.comm.clone()),
            ),
            Self::App(app) => (
                None,
                tick.app_busiest(app)
                    .map_or_else(|| app.name.clone(), |p| p.comm.clone()),
                app.name.clone(),
            ),
        }
    }

    fn evidence(self, tick: &Tick<'_>) -> Evidence {
        let (hottest_of, victims) = match self {
            Self::Process(p) => (Some(p), tick.process_victims(p.pid)),
            Self::App(app) => (tick.app_busiest(app), tick.app_victims(app)),
        };
        Evidence {
            hottest: hottest_of.and_then(|p| p.cpu.hottest.as_ref().map(|h| h.function.clone())),
            top_stacks: Vec::new(),
            victims,
        }
    }
}

pub struct Engine {
    rules: Vec<Rule>,
    own_pid: u32,
    /// Keyed by rule index and subject. Only subjects holding in the latest tick are kept, so
    /// this is bounded by the rules times the subjects of one report.
    states: BTreeMap<(usize, Subject), State>,
    tick: u64,
}

impl Engine {
    /// `own_pid`: the profiler's own process, never a subject.
    pub fn new(rules: Vec<Rule>, own_pid: u32) -> Self {
        Self {
            rules,
            own_pid,
            states: BTreeMap::new(),
            tick: 0,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules that can never fire because their signal is not on, each with that signal's
    /// state. cpu figures come from on-CPU time, measured whatever the selection.
    pub fn blind_rules<'a>(
        &'a self,
        signals: &'a BTreeMap<Signal, SignalState>,
    ) -> impl Iterator<Item = (&'a Rule, &'a SignalState)> {
        self.rules.iter().filter_map(move |rule| {
            let signal = rule.signal();
            let state = signals.get(&signal).unwrap_or(&SignalState::On);
            (signal != Signal::Cpu && !state.is_on()).then_some((rule, state))
        })
    }

    /// Evaluates one tick: `report` covers the `duration_s` ending at `at`. Returns the alerts
    /// that start firing and those that resolve, in rule order. A report without a positive
    /// length is skipped and changes nothing.
    pub fn evaluate(&mut self, report: &Report, at: Timestamp) -> Vec<AlertEvent> {
        let Some(tick) = Tick::new(report) else {
            return Vec::new();
        };
        self.tick += 1;
        let tick_start = SignedDuration::try_from_secs_f64(tick.secs())
            .ok()
            .and_then(|length| at.checked_sub(length).ok())
            .unwrap_or(at);
        let mut events = Vec::new();
        let Self {
            rules,
            own_pid,
            states,
            tick: tick_number,
        } = self;
        for (index, rule) in rules.iter().enumerate() {
            let sources: Vec<Source<'_>> = match rule.scope() {
                Scope::Process => report
                    .processes
                    .iter()
                    .filter(|p| p.pid != *own_pid)
                    .map(Source::Process)
                    .collect(),
                Scope::App => report.apps.iter().map(Source::App).collect(),
            };
            for source in sources {
                let value = source.value(&tick, rule);
                let holds =
                    !source.exited() && value.is_some_and(|v| rule.op().holds(v, rule.threshold()));
                let key = (index, source.subject());
                if !holds {
                    if let Some(state) = states.remove(&key)
                        && state.firing
                    {
                        let evidence = source.evidence(&tick);
                        events.push(event(
                            rule,
                            AlertState::Resolved,
                            &state,
                            value,
                            at,
                            evidence,
                        ));
                    }
                    continue;
                }
                let (pid, comm, app) = source.who(&tick);
                let state = states.entry(key).or_insert_with(|| State {
                    since: tick_start,
                    firing: false,
                    seen: 0,
                    pid,
                    comm: String::new(),
                    app: String::new(),
                });
                state.seen = *tick_number;
                // Kept current: exec renames a process, an application's busiest process changes.
                state.comm = comm;
                state.app = app;
                if !state.firing && held_long_enough(state.since, at, rule, tick.secs()) {
                    state.firing = true;
                    let evidence = source.evidence(&tick);
                    events.push(event(rule, AlertState::Firing, state, value, at, evidence));
                }
            }
        }

        // Subjects gone from this tick's report (exited and reaped, idle, or out of the
        // application ranking): their pending state goes, firing ones resolve.
        let gone: Vec<(usize, Subject)> = states
            .iter()
            .filter(|(_, state)| state.seen != *tick_number)
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            if let Some(state) = states.remove(&key)
                && state.firing
            {
                let rule = &rules[key.0];
                events.push(event(
                    rule,
                    AlertState::Resolved,
                    &state,
                    None,
                    at,
                    Evidence::default(),
                ));
            }
        }
        events
    }
}

fn held_long_enough(since: Timestamp, at: Timestamp, rule: &Rule, tick_secs: f64) -> bool {
    let held = at.duration_since(since).as_secs_f64();
    held + TICK_SLACK * tick_secs >= rule.hold().as_secs_f64()
}

fn event(
    rule: &Rule,
    state: AlertState,
    subject: &State,
    value: Option<f64>,
    at: Timestamp,
    evidence: Evidence,
) -> AlertEvent {
    AlertEvent {
        state,
        rule: rule.to_string(),
        figure: rule.figure_name(),
        pid: subject.pid,
        comm: subject.comm.clone(),
        app: subject.app.clone(),
        value,
        threshold: rule.threshold(),
        since: rfc3339(subject.since),
        at: rfc3339(at),
        evidence,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
