//! Alerts for `profiler record`: rules over each tick's report (`rule`, `figure`), the engine
//! that fires and resolves them (`engine`, `event`), and the sink writing alerts.jsonl and
//! running `--on-alert` (`sink`).

pub mod engine;
pub mod event;
pub mod figure;
/// Report fixtures, shared with the other modules' tests.
#[cfg(test)]
pub mod fixtures;
pub mod rule;
pub mod sink;
