//! `profiler doctor`: every prerequisite of each signal, checked on this host, with the fix.

use std::io::Write as _;

use anyhow::Context as _;

mod checks;

use self::checks::{Check, Status, host_checks};
use profiler_common::UNWIND_ROWS_DEFAULT;

use crate::{
    probes::{self, Probes, Selection, Unwinding},
    signals::{Signal, SignalState},
};

/// Every signal's reason when the privileges check failed; that check says what to do.
const NOT_PRIVILEGED: &str = "not privileged (see the privileges check above)";

pub fn run() -> anyhow::Result<()> {
    let mut checks = host_checks();
    let privileged = checks
        .iter()
        .all(|c| c.name != "privileges" || c.status == Status::Ok);
    let everything: Vec<Signal> = Signal::all().collect();
    let unavailable = |reason: String| {
        Signal::all()
            .map(|s| (s, SignalState::Unavailable(reason.clone())))
            .collect()
    };
    let signals: Vec<(Signal, SignalState)> = if privileged {
        let tables = Unwinding::Tables {
            rows: UNWIND_ROWS_DEFAULT,
        };
        match probes::attach(99, Selection::of(&everything), tables) {
            Ok(probes) => {
                checks.push(unwinding_check(&probes));
                probes.signals.into_iter().collect()
            }
            Err(err) => unavailable(format!("{err:#}")),
        }
    } else {
        unavailable(NOT_PRIVILEGED.to_owned())
    };

    let ready = print(&checks, &signals)?;
    if ready == 0 {
        anyhow::bail!("no signal can run on this host; see the fixes above");
    }
    Ok(())
}

/// Which unwinding each stack-taking signal gets.
fn unwinding_check(probes: &Probes) -> Check {
    let (status, cpu) = match probes.unwinder {
        Some(_) => (
            Status::Ok,
            "cpu: unwind tables from each binary's .eh_frame (x86_64), frame pointers where a \
             binary has none",
        ),
        None => (
            Status::Warn,
            "cpu: frame pointers only (the table walker did not load: see the warning above)",
        ),
    };
    Check {
        name: "stack unwinding",
        status,
        detail: format!("{cpu}; offcpu: frame pointers"),
    }
}

/// The checks and the signals' states as two tables; how many signals are ready.
fn print(checks: &[Check], signals: &[(Signal, SignalState)]) -> anyhow::Result<usize> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<20} {:<5} DETAIL", "CHECK", "")?;
    for check in checks {
        writeln!(
            out,
            "{:<20} {:<5} {}",
            check.name,
            check.status.label(),
            check.detail
        )?;
    }
    writeln!(out)?;
    writeln!(out, "{:<8} {:<12} REASON / FIX", "SIGNAL", "STATE")?;
    let mut ready = 0;
    for (signal, state) in signals {
        let (label, reason) = match state {
            SignalState::On => ("ready", String::new()),
            SignalState::Unavailable(reason) if reason == NOT_PRIVILEGED => {
                ("unavailable", reason.clone())
            }
            SignalState::Unavailable(reason) => (
                "unavailable",
                format!("{reason}; fix: {}", signal.declaration().fix),
            ),
            SignalState::Off => (
                "unavailable",
                format!("off; fix: {}", signal.declaration().fix),
            ),
        };
        ready += usize::from(state.is_on());
        writeln!(out, "{signal:<8} {label:<12} {reason}")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(ready)
}
