//! Attaching a session's signals, and the one line that says which are on.

use super::Stops;
use crate::{
    cli::Signal,
    probes::{self, Probes, Unwinding},
};

/// Attaches the chosen signals; a stop that arrived meanwhile ends the run instead, before
/// anything was measured.
pub async fn attach(
    frequency: u64,
    signals: &[Signal],
    unwinding: Unwinding,
    stops: &mut Stops,
) -> anyhow::Result<Probes> {
    let probes = probes::attach(frequency, probes::Selection::of(signals), unwinding)?;
    stops.none_yet().await?;
    Ok(probes)
}

/// Says on stderr which signals are on and what comes next: from this line on, the session
/// measures.
pub fn announce(probes: &Probes, frequency: u64, what_next: &str) {
    let states: Vec<String> = probes
        .signals
        .iter()
        .map(|(signal, state)| format!("{signal} {}", state.label()))
        .collect();
    eprintln!(
        "profiler: attached ({}): {} CPUs at {frequency} Hz {what_next}",
        states.join(", "),
        probes.cpus,
    );
}
