//! Attaching a session's signals, and the one line that says which are on.

use super::Stops;
use crate::{
    cli::Signal,
    probes::{self, Probes},
};

/// Attaches the chosen signals; a stop that arrived meanwhile ends the run instead, before
/// anything was measured.
pub async fn attach(
    frequency: u64,
    signals: &[Signal],
    stops: &mut Stops,
) -> anyhow::Result<Probes> {
    let offcpu = signals.contains(&Signal::Offcpu);
    let probes = probes::attach(
        frequency,
        probes::Selection {
            cpu: signals.contains(&Signal::Cpu),
            // Off-CPU time rides on the scheduler tracepoints, which measure the run queue too.
            sched: signals.contains(&Signal::Sched) || offcpu,
            offcpu,
            io: signals.contains(&Signal::Io),
            syscalls: signals.contains(&Signal::Syscalls),
            syscall_time: signals.contains(&Signal::SyscallTime),
            processes: signals.contains(&Signal::Processes),
            net: signals.contains(&Signal::Net),
            mem: signals.contains(&Signal::Mem),
        },
    )?;
    stops.none_yet().await?;
    Ok(probes)
}

/// Says on stderr which signals are on and what comes next: from this line on, the session
/// measures.
pub fn announce(probes: &Probes, frequency: u64, what_next: &str) {
    let states: Vec<String> = probes
        .signals
        .iter()
        .map(|(name, state)| format!("{name} {}", state.split(':').next().unwrap_or(state)))
        .collect();
    eprintln!(
        "profiler: attached ({}): {} CPUs at {frequency} Hz {what_next}",
        states.join(", "),
        probes.cpus,
    );
}
