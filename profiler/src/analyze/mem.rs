//! Memory suspects, named for harm: the OOM killer's choice, a process that grew by a gibibyte
//! or more in the run, one reading its pages back from disk, or one holding a large share of
//! the memory while tasks stalled for memory. Holding memory alone harms nobody.

use super::{
    RunFacts, Scored, round3,
    thresholds::{
        MEM_GROWTH_MIN_BYTES, MEM_GROWTH_MIN_SHARE, MEM_HELD_MIN_SHARE, MEM_MAJOR_MIN_PER_SECOND,
        STALL_PERCENT,
    },
};
use crate::report::{Mem, Process, Resource, Suspect};

/// Above every other suspect's score (shares and cores): an OOM kill comes first.
const OOM_KILLED_SCORE: f64 = 1e6;

const GIB: f64 = (1u64 << 30) as f64;

pub fn suspects(processes: &[Process], facts: &RunFacts) -> Vec<Scored> {
    let candidates = processes.iter().filter(|p| p.pid != facts.own_pid);
    let mut scored: Vec<Scored> = candidates.clone().filter_map(oom_killed).collect();
    scored.extend(candidates.filter_map(|p| harmful(p, p.mem?, facts)));
    scored
}

/// The OOM killer's victim: the kernel's own verdict on who exhausted memory.
fn oom_killed(p: &Process) -> Option<Scored> {
    let gib = p.oom_killed?.rss_bytes as f64 / GIB;
    let suspect = Suspect::new(
        p.pid,
        &p.comm,
        Resource::Mem,
        round3(gib),
        format!("was killed by the OOM killer holding {gib:.2} GiB resident"),
    );
    Some((OOM_KILLED_SCORE + gib, suspect.over(f64::INFINITY)))
}

/// A suspect when its memory did harm, each harm seen said in its reason; ranked by the share
/// of memory it held, grew by or peaked at.
fn harmful(p: &Process, m: Mem, facts: &RunFacts) -> Option<Scored> {
    let total = facts.mem_total_bytes.filter(|&t| t > 0).map(|t| t as f64);
    let share = |bytes: f64| total.map_or(0.0, |t| bytes / t);
    let rss = m.rss_bytes.unwrap_or(0) as f64;
    let peak = m.peak_rss_bytes.map_or(rss, |peak| (peak as f64).max(rss));
    let grown = m.rss_growth_bytes.unwrap_or(0).max(0) as f64;
    let stalled = facts.pressure.map(|p| p.memory_some_percent);
    let major_per_second = m.major_faults as f64 / facts.seconds();

    let growth_line = total.map_or(MEM_GROWTH_MIN_BYTES, |t| {
        MEM_GROWTH_MIN_BYTES.min(t * MEM_GROWTH_MIN_SHARE)
    });
    let grew = grown >= growth_line;
    let contended = stalled.is_none_or(|percent| percent >= STALL_PERCENT);
    let holds = share(peak) >= MEM_HELD_MIN_SHARE && contended;
    let faults = major_per_second >= MEM_MAJOR_MIN_PER_SECOND;
    if !(grew || holds || faults) {
        return None;
    }
    let mut reason = if grew {
        format!(
            "grew by {:.2} GiB in {:.1} s to {:.2} GiB resident ({:.0}% of the host's memory)",
            grown / GIB,
            facts.seconds(),
            rss / GIB,
            share(rss) * 100.0
        )
    } else {
        format!(
            "holds {:.2} GiB resident ({:.0}% of the host's memory)",
            rss / GIB,
            share(rss) * 100.0
        )
    };
    if peak > rss * 1.1 {
        reason.push_str(&format!(", {:.2} GiB at its peak", peak / GIB));
    }
    match stalled {
        Some(percent) if percent >= STALL_PERCENT => reason.push_str(&format!(
            " while tasks stalled for memory {percent:.0}% of the time"
        )),
        Some(_) => {}
        None if holds => reason.push_str(
            "; the kernel keeps no memory pressure (PSI) to tell whether that stalls others",
        ),
        None => {}
    }
    if m.major_faults > 0 {
        reason.push_str(&format!(
            "; it took {} major page faults ({major_per_second:.0} a second), reading pages back from disk",
            m.major_faults
        ));
    }
    let margin = [
        grown / growth_line,
        if contended {
            share(peak) / MEM_HELD_MIN_SHARE
        } else {
            0.0
        },
        major_per_second / MEM_MAJOR_MIN_PER_SECOND,
    ]
    .into_iter()
    .fold(0.0, f64::max);
    let suspect = Suspect::new(p.pid, &p.comm, Resource::Mem, round3(rss / GIB), reason);
    Some((share(peak.max(grown)), suspect.over(margin)))
}
