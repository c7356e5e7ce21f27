//! Memory suspects, named for harm: the OOM killer's choice, a process that grew by a gibibyte
//! or more in the run, or at a rate that fills the available memory within minutes, one reading
//! its pages back from disk, or one holding a large share of the memory while tasks stalled for
//! memory. Holding memory alone harms nobody.

use super::{
    RunFacts, Scored, round3,
    thresholds::{
        MEM_GROWTH_MIN_BYTES, MEM_GROWTH_MIN_SHARE, MEM_HELD_MIN_SHARE, MEM_LEAK_HORIZON_S,
        MEM_LEAK_MIN_BYTES, MEM_MAJOR_MIN_PER_SECOND, STALL_PERCENT,
    },
};
use crate::report::{Mem, Process, Resource, Suspect};

/// Above every other suspect's score (shares and cores): an OOM kill comes first.
const OOM_KILLED_SCORE: f64 = 1e6;

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

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
    let seen = Seen::of(m, facts);
    let margin = [
        seen.grown / seen.growth_line,
        if seen.contended() {
            seen.share(seen.peak) / MEM_HELD_MIN_SHARE
        } else {
            0.0
        },
        seen.major_per_second / MEM_MAJOR_MIN_PER_SECOND,
        seen.exhausts_in().map_or(0.0, |s| MEM_LEAK_HORIZON_S / s),
    ]
    .into_iter()
    .fold(0.0, f64::max);
    if margin < 1.0 {
        return None;
    }
    let rss_gib = round3(seen.rss / GIB);
    let suspect = Suspect::new(p.pid, &p.comm, Resource::Mem, rss_gib, seen.reason(m));
    Some((seen.share(seen.peak.max(seen.grown)), suspect.over(margin)))
}

/// What a process's memory figures show against the host's.
struct Seen {
    total: Option<f64>,
    rss: f64,
    peak: f64,
    grown: f64,
    growth_line: f64,
    /// PSI `some` for memory over the run, when the kernel keeps it.
    stalled: Option<f64>,
    major_per_second: f64,
    available: Option<f64>,
    secs: f64,
}

impl Seen {
    fn of(m: Mem, facts: &RunFacts) -> Self {
        let total = facts.mem_total_bytes.filter(|&t| t > 0).map(|t| t as f64);
        let rss = m.rss_bytes.unwrap_or(0) as f64;
        Self {
            total,
            rss,
            peak: m.peak_rss_bytes.map_or(rss, |peak| (peak as f64).max(rss)),
            grown: m.rss_growth_bytes.unwrap_or(0).max(0) as f64,
            growth_line: total.map_or(MEM_GROWTH_MIN_BYTES, |t| {
                MEM_GROWTH_MIN_BYTES.min(t * MEM_GROWTH_MIN_SHARE)
            }),
            stalled: facts.pressure.map(|p| p.memory_some_percent),
            major_per_second: m.major_faults as f64 / facts.seconds(),
            available: facts.mem_available_bytes.map(|a| a as f64),
            secs: facts.seconds(),
        }
    }

    /// The growth a second over the run.
    fn rate(&self) -> f64 {
        self.grown / self.secs
    }

    /// In how many seconds its growth would fill the memory still available, for a process
    /// that grew by the leak floor and was still at its peak at the end (a burst it freed
    /// again is no leak).
    fn exhausts_in(&self) -> Option<f64> {
        let growing = self.grown >= MEM_LEAK_MIN_BYTES && self.rss >= self.peak * 0.95;
        let seconds = self.available? / self.rate().max(1.0);
        (growing && seconds <= MEM_LEAK_HORIZON_S).then_some(seconds)
    }

    fn share(&self, bytes: f64) -> f64 {
        self.total.map_or(0.0, |t| bytes / t)
    }

    /// Memory is contended: tasks stalled for it, or no PSI can tell they did not.
    fn contended(&self) -> bool {
        self.stalled.is_none_or(|percent| percent >= STALL_PERCENT)
    }

    fn grew(&self) -> bool {
        self.grown >= self.growth_line
    }

    fn holds(&self) -> bool {
        self.share(self.peak) >= MEM_HELD_MIN_SHARE && self.contended()
    }

    /// Each harm seen, in words.
    fn reason(&self, m: Mem) -> String {
        let percent = self.share(self.rss) * 100.0;
        let leaks = self.exhausts_in();
        let mut reason = if self.grew() || leaks.is_some() {
            format!(
                "grew by {:.2} GiB in {:.1} s ({:.0} MiB a second) to {:.2} GiB resident ({percent:.0}% of the host's memory)",
                self.grown / GIB,
                self.secs,
                self.rate() / MIB,
                self.rss / GIB,
            )
        } else {
            let rss = self.rss / GIB;
            format!("holds {rss:.2} GiB resident ({percent:.0}% of the host's memory)")
        };
        if let (Some(seconds), Some(available)) = (leaks, self.available) {
            reason.push_str(&format!(
                "; at that rate it fills the {:.1} GiB still available in {:.0} min",
                available / GIB,
                (seconds / 60.0).max(1.0)
            ));
        }
        if self.peak > self.rss * 1.1 {
            reason.push_str(&format!(", {:.2} GiB at its peak", self.peak / GIB));
        }
        match self.stalled {
            Some(percent) if percent >= STALL_PERCENT => reason.push_str(&format!(
                " while tasks stalled for memory {percent:.0}% of the time"
            )),
            None if self.holds() => reason.push_str(
                "; the kernel keeps no memory pressure (PSI) to tell whether that stalls others",
            ),
            _ => {}
        }
        if m.major_faults > 0 {
            reason.push_str(&format!(
                "; it took {} major page faults ({:.0} a second), reading pages back from disk",
                m.major_faults, self.major_per_second
            ));
        }
        reason
    }
}
