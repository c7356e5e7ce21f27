//! Whom a process or an application kept waiting over a tick, and who kept a `--victim`
//! waiting: what an alert's evidence lists, from the report's blame pairs.

use super::event::Victim;
use crate::{
    analyze::{
        figures::Tick,
        sched::{self, Side},
    },
    report::{App, Blame},
};

/// Victims listed in an alert's evidence.
const MAX_VICTIMS: usize = 5;

/// Whom `pid` kept waiting, largest delay first, at most `MAX_VICTIMS`.
pub fn of_process(tick: &Tick, pid: u32) -> Vec<Victim> {
    let pairs = tick.report().blame.iter();
    listed(
        pairs.filter(|b| b.culprit_pid == pid && b.victim_pid != pid),
        Side::Victim,
    )
}

/// Whom the application's processes kept waiting, outside the application, largest delay
/// first, at most `MAX_VICTIMS`. Waits within the application are its own business, not
/// others' waiting.
pub fn of_app(tick: &Tick, app: &App) -> Vec<Victim> {
    let pairs = tick.report().blame.iter().filter(|b| {
        tick.in_app(app, b.culprit_pid, &b.culprit_comm)
            && !tick.in_app(app, b.victim_pid, &b.victim_comm)
    });
    listed(pairs, Side::Victim)
}

// Blame is sorted largest first already, but ranking again keeps this independent of how the
// report was built.
fn listed<'a>(pairs: impl Iterator<Item = &'a Blame>, side: Side) -> Vec<Victim> {
    sched::parties(pairs, side, MAX_VICTIMS)
        .into_iter()
        .map(|p| Victim {
            pid: p.pid,
            comm: p.comm,
            delay_ns: p.delay_ns,
        })
        .collect()
}

/// Who held the CPUs the processes `pids` (a `--victim`) waited for, outside them, largest
/// delay first, at most `MAX_VICTIMS`.
pub fn culprits_of(tick: &Tick, pids: &[u32]) -> Vec<Victim> {
    let pairs = tick.report().blame.iter();
    let pairs = pairs.filter(|b| pids.contains(&b.victim_pid) && !pids.contains(&b.culprit_pid));
    listed(pairs, Side::Culprit)
}
