//! The alert engine: evaluates every rule against each tick's report and turns conditions that
//! hold long enough into `firing` events, and conditions that stop holding into `resolved` ones.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::{
    analyze::victim::VictimSpec,
    report::{App, AppKind, Process, Report},
    signals::{Signal, SignalState},
};

use super::event::{AlertEvent, AlertState, Evidence, rfc3339};
use super::rule::{Rule, Scope};
use super::victims;
use crate::analyze::figures::Tick;

/// Share of a tick by which the ticks a condition held in may fall short of the rule's `for`.
/// Ticks come from a timer and their lengths jitter by milliseconds: two ticks of 0.999 s have
/// held for `2s` as far as a once-a-second measurement can tell.
const TICK_SLACK: f64 = 0.1;

/// What a rule is evaluated for: a process (its identity survives pid reuse) or an application.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    Process { pid: u32, start_time: u64 },
    App { kind: AppKind, name: String },
    Victim { name: String },
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
    /// A `--victim` and its processes in the tick.
    Victim(&'a VictimSpec, &'a [&'a Process]),
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
            Self::Victim(spec, _) => Subject::Victim { name: spec.name() },
        }
    }

    fn value(self, tick: &Tick<'_>, rule: &Rule) -> Option<f64> {
        match self {
            Self::Process(p) => tick.process_value(rule.figure(), p),
            Self::App(app) => tick.app_value(rule.figure(), app),
            Self::Victim(_, members) => members
                .iter()
                .map(|p| tick.process_value(rule.figure(), p))
                .sum(),
        }
    }

    /// An exited process is nobody's problem any more: it never starts or keeps a condition.
    fn exited(self) -> bool {
        match self {
            Self::Process(p) => p.exited,
            Self::App(_) => false,
            Self::Victim(_, members) => members.iter().all(|p| p.exited),
        }
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
            Self::Victim(spec, members) => match members {
                [one] => (Some(one.pid), one.comm.clone(), spec.name()),
                _ => (None, spec.name(), spec.name()),
            },
        }
    }

    fn evidence(self, tick: &Tick<'_>) -> Evidence {
        let hottest = |p: Option<&Process>| {
            p.and_then(|p| p.cpu.hottest.as_ref().map(|h| h.function.clone()))
        };
        match self {
            Self::Process(p) => Evidence {
                hottest: hottest(Some(p)),
                victims: victims::of_process(tick, p.pid),
                ..Evidence::default()
            },
            Self::App(app) => Evidence {
                hottest: hottest(tick.app_busiest(app)),
                victims: victims::of_app(tick, app),
                ..Evidence::default()
            },
            Self::Victim(_, members) => {
                let pids: Vec<u32> = members.iter().map(|p| p.pid).collect();
                Evidence {
                    culprits: victims::culprits_of(tick, &pids),
                    ..Evidence::default()
                }
            }
        }
    }
}

type States = BTreeMap<(usize, Subject), State>;

pub struct Engine {
    rules: Vec<Rule>,
    own_pid: u32,
    /// What `victim.` rules are evaluated for.
    victims: Vec<VictimSpec>,
    /// Keyed by rule index and subject. Only subjects holding in the latest tick are kept, so
    /// this is bounded by the rules times the subjects of one report.
    states: States,
    tick: u64,
}

impl Engine {
    /// `own_pid`: the profiler's own process, never a subject.
    pub fn new(rules: Vec<Rule>, own_pid: u32) -> Self {
        Self {
            rules,
            own_pid,
            victims: Vec::new(),
            states: BTreeMap::new(),
            tick: 0,
        }
    }

    /// With `victims` for the `victim.` rules to watch.
    pub fn with_victims(self, victims: Vec<VictimSpec>) -> Self {
        Self { victims, ..self }
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

    /// Evaluates one tick: `tick` indexes a report covering the `duration_s` ending at `at`.
    /// Returns the alerts that start firing and those that resolve, in rule order.
    pub fn evaluate_tick(&mut self, tick: &Tick<'_>, at: Timestamp) -> Vec<AlertEvent> {
        let report = tick.report();
        self.tick += 1;
        let start = SignedDuration::try_from_secs_f64(tick.secs())
            .ok()
            .and_then(|length| at.checked_sub(length).ok())
            .unwrap_or(at);
        let members: Vec<(&VictimSpec, Vec<&Process>)> = self
            .victims
            .iter()
            .map(|spec| {
                (
                    spec,
                    report
                        .processes
                        .iter()
                        .filter(|p| spec.matches(p))
                        .collect(),
                )
            })
            .collect();
        let victims: Vec<Source<'_>> = members
            .iter()
            .filter(|(_, processes)| !processes.is_empty())
            .map(|(spec, processes)| Source::Victim(spec, processes))
            .collect();
        let mut events = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let judge = Judge {
                index,
                rule,
                tick,
                number: self.tick,
                start,
                at,
            };
            let sources = match rule.scope() {
                Scope::Victim => victims.clone(),
                scope => sources(scope, report, self.own_pid),
            };
            for source in sources {
                events.extend(judge.judge(&mut self.states, source));
            }
        }
        events.extend(self.resolve_gone(at));
        events
    }

    /// [`Self::evaluate_tick`] on a bare report; one without a positive length is skipped and
    /// changes nothing.
    #[cfg(test)]
    pub fn evaluate(&mut self, report: &Report, at: Timestamp) -> Vec<AlertEvent> {
        Tick::new(report).map_or_else(Vec::new, |tick| self.evaluate_tick(&tick, at))
    }

    /// Subjects gone from this tick's report (exited and reaped, idle, or out of the
    /// application ranking): their pending state goes, firing ones resolve.
    fn resolve_gone(&mut self, at: Timestamp) -> Vec<AlertEvent> {
        let gone: Vec<(usize, Subject)> = self
            .states
            .iter()
            .filter(|(_, state)| state.seen != self.tick)
            .map(|(key, _)| key.clone())
            .collect();
        let mut events = Vec::new();
        for key in gone {
            if let Some(state) = self.states.remove(&key)
                && state.firing
            {
                let rule = &self.rules[key.0];
                let evidence = Evidence::default();
                events.push(event(
                    rule,
                    AlertState::Resolved,
                    &state,
                    None,
                    at,
                    evidence,
                ));
            }
        }
        events
    }
}

/// What a rule is evaluated on: the report's processes (but the profiler's own) or its apps of
/// several processes (a lone process is its own application, which the process rules watch)
/// but the root cgroup (every process of a host whose cgroup v2 hierarchy is unused: the whole
/// host, not an application) and the apps by executable (the same processes as by command name
/// nearly always: one alert, not two).
fn sources(scope: Scope, report: &Report, own_pid: u32) -> Vec<Source<'_>> {
    match scope {
        Scope::Process => report
            .processes
            .iter()
            .filter(|p| p.pid != own_pid)
            .map(Source::Process)
            .collect(),
        Scope::App => report
            .apps
            .iter()
            .filter(|app| app.processes >= 2 && app.kind != AppKind::Exe)
            .filter(|app| !(app.kind == AppKind::Cgroup && app.name == "/"))
            .map(Source::App)
            .collect(),
        Scope::Victim => Vec::new(),
    }
}

/// One rule (the `index`th) over one tick: `number`, from `start` to `at`.
struct Judge<'a> {
    index: usize,
    rule: &'a Rule,
    tick: &'a Tick<'a>,
    number: u64,
    start: Timestamp,
    at: Timestamp,
}

impl Judge<'_> {
    /// Updates the state of `source` under the rule: an event when it starts firing, or stops.
    fn judge(&self, states: &mut States, source: Source<'_>) -> Option<AlertEvent> {
        let (rule, tick) = (self.rule, self.tick);
        let value = source.value(tick, rule);
        let holds = !source.exited() && value.is_some_and(|v| rule.op().holds(v, rule.threshold()));
        let key = (self.index, source.subject());
        if !holds {
            let state = states.remove(&key).filter(|state| state.firing)?;
            let evidence = source.evidence(tick);
            return Some(event(
                rule,
                AlertState::Resolved,
                &state,
                value,
                self.at,
                evidence,
            ));
        }
        let (pid, comm, app) = source.who(tick);
        let state = states.entry(key).or_insert_with(|| State {
            since: self.start,
            firing: false,
            seen: 0,
            pid,
            comm: String::new(),
            app: String::new(),
        });
        state.seen = self.number;
        // Kept current: exec renames a process, an application's busiest process changes.
        state.comm = comm;
        state.app = app;
        if state.firing || !held_long_enough(state.since, self.at, rule, tick.secs()) {
            return None;
        }
        state.firing = true;
        let evidence = source.evidence(tick);
        Some(event(
            rule,
            AlertState::Firing,
            state,
            value,
            self.at,
            evidence,
        ))
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
        incident: None,
        no_space: None,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
