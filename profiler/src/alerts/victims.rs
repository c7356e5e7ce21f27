//! Whom a process or an application kept waiting over a tick: the victims an alert's evidence
//! lists, from the report's blame pairs.

use std::collections::BTreeMap;

use super::event::Victim;
use crate::{analyze::figures::Tick, report::App};

/// Victims listed in an alert's evidence.
const MAX_VICTIMS: usize = 5;

/// Whom `pid` kept waiting, largest delay first, at most `MAX_VICTIMS`.
pub fn of_process(tick: &Tick, pid: u32) -> Vec<Victim> {
    let mut victims: Vec<Victim> = tick
        .report()
        .blame
        .iter()
        .filter(|b| b.culprit_pid == pid && b.victim_pid != pid)
        .map(|b| Victim {
            pid: b.victim_pid,
            comm: b.victim_comm.clone(),
            delay_ns: b.delay_ns,
        })
        .collect();
    largest_first(&mut victims);
    victims
}

/// Whom the application's processes kept waiting, outside the application, largest delay
/// first, at most `MAX_VICTIMS`. Waits within the application are its own business, not
/// others' waiting.
pub fn of_app(tick: &Tick, app: &App) -> Vec<Victim> {
    let mut victims: BTreeMap<u32, Victim> = BTreeMap::new();
    for b in &tick.report().blame {
        if !tick.in_app(app, b.culprit_pid, &b.culprit_comm)
            || tick.in_app(app, b.victim_pid, &b.victim_comm)
        {
            continue;
        }
        victims
            .entry(b.victim_pid)
            .or_insert_with(|| Victim {
                pid: b.victim_pid,
                comm: b.victim_comm.clone(),
                delay_ns: 0,
            })
            .delay_ns += b.delay_ns;
    }
    let mut victims: Vec<Victim> = victims.into_values().collect();
    largest_first(&mut victims);
    victims
}

// Blame is sorted largest first already, but sorting again keeps this independent of how the
// report was built.
fn largest_first(victims: &mut Vec<Victim>) {
    victims.sort_by(|a, b| (b.delay_ns, a.pid).cmp(&(a.delay_ns, b.pid)));
    victims.truncate(MAX_VICTIMS);
}
