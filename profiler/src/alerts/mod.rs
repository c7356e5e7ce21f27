//! Alerts for `profiler record`: rules over each tick's report (`rule`, `figure`), the engine
//! that fires and resolves them (`engine`, `event`), and the sink writing alerts.jsonl and
//! running `--on-alert` (`sink`).

pub mod engine;
pub mod event;
/// Report fixtures, shared with the other modules' tests.
#[cfg(test)]
pub mod fixtures;
pub mod rule;
pub mod sink;
pub mod victims;

use std::collections::BTreeMap;

use self::{
    engine::Engine,
    event::{AlertEvent, AlertState},
    sink::Sink,
};
use crate::{
    analyze::figures::Tick,
    signals::{Signal, SignalState},
    symbolize::FoldedStack,
};

/// The rules and where their events go, as `record` runs them every tick.
pub struct Alerter {
    pub engine: Engine,
    pub sink: Sink,
}

impl Alerter {
    /// Says where alerts go, and warns about each rule that can never fire because its signal
    /// is not on.
    pub fn announce(&self, signals: &BTreeMap<Signal, SignalState>) {
        for (rule, state) in self.engine.blind_rules(signals) {
            eprintln!(
                "profiler: warning: alert rule `{rule}` needs the {} signal, which is {state}",
                rule.signal()
            );
        }
        eprintln!(
            "profiler: {} alert rules; alerts go to {}",
            self.engine.rules().len(),
            self.sink.path().display()
        );
    }

    /// Evaluates the rules on a tick's figures (ending `at`) and writes what changed to the
    /// sink; an alert that starts firing on a process carries that process's hottest stacks,
    /// from `stacks_of`, as evidence. Returns the events raised.
    pub fn evaluate(
        &mut self,
        tick: &Tick<'_>,
        at: jiff::Timestamp,
        stacks_of: impl Fn(u32) -> anyhow::Result<Vec<FoldedStack>>,
    ) -> anyhow::Result<Vec<AlertEvent>> {
        let mut events = self.engine.evaluate_tick(tick, at);
        for event in &mut events {
            if event.state == AlertState::Firing
                && let Some(pid) = event.pid
            {
                event.evidence.add_stacks(&stacks_of(pid)?);
            }
            self.sink.tell(event);
        }
        Ok(events)
    }
}
