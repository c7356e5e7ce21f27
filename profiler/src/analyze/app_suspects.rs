//! Applications as suspects: when the processes of one application (one container or pod; else
//! one command name in one cgroup) together cross a resource's line, and no one
//! of them did most of it, the application is the suspect with their summed figures, in place
//! of its processes' own suspects for that resource.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{
    RunFacts, Scored,
    cpu::{self, Contention},
    round3,
    sched::{Side, harm_margin, parties},
    thresholds::APP_MAX_MEMBER_SHARE,
};
use crate::report::{
    AppKind, Blame, Confidence, Process, Resource, Suspect, SuspectApp, WorkloadKind,
};

/// Pids an application suspect lists.
const MAX_PIDS: usize = 20;

/// `scored` with each application that crossed a line as one suspect for that resource, its
/// processes' suspects for it folded in. `others`: the waits processes caused processes of
/// other applications ([`cpu::waits_on_others`]).
pub fn fold(
    mut scored: Vec<Scored>,
    processes: &[Process],
    others: &[Blame],
    contention: &Contention<'_>,
    facts: &RunFacts,
) -> Vec<Scored> {
    let by_pid: HashMap<u32, &Process> = processes.iter().map(|p| (p.pid, p)).collect();
    for members in by_app(processes, facts.own_pid) {
        let pids: HashSet<u32> = members.iter().map(|p| p.pid).collect();
        let found = [
            cpu(&members, &pids, contention, facts),
            sched(&members, &pids, others, &by_pid, facts),
        ];
        for (score, suspect) in found.into_iter().flatten() {
            scored.retain(|(_, s)| !(s.resource == suspect.resource && pids.contains(&s.pid)));
            scored.push((score, suspect));
        }
    }
    scored
}

/// An application whose processes are all children of a spawn suspect is that parent's doing:
/// its CPU or sched suspect is folded into the parent's, whose reason then says what the
/// children did together (the parent is the one to act on); the surer confidence and the
/// higher score stay.
pub fn into_parents(scored: Vec<Scored>, processes: &[Process]) -> Vec<Scored> {
    let ppid: HashMap<u32, Option<u32>> = processes.iter().map(|p| (p.pid, p.ppid)).collect();
    let parent_of = |app: &SuspectApp| -> Option<u32> {
        let mut parents = app.pids.iter().map(|pid| ppid.get(pid).copied().flatten());
        let first = parents.next()??;
        parents.all(|p| p == Some(first)).then_some(first)
    };
    let (children, mut kept): (Vec<Scored>, Vec<Scored>) =
        scored.into_iter().partition(|(_, s)| {
            matches!(s.resource, Resource::Cpu | Resource::Sched) && s.app.is_some()
        });
    for (score, suspect) in children {
        let parent = suspect.app.as_ref().and_then(parent_of);
        let spawn = kept
            .iter_mut()
            .find(|(_, s)| s.resource == Resource::Spawn && Some(s.pid) == parent);
        match spawn {
            Some(spawn) => {
                absorb(spawn, score, &suspect);
                spawn.1.reason = format!("{}; its children {}", spawn.1.reason, suspect.reason);
            }
            None => kept.push((score, suspect)),
        }
    }
    kept
}

/// Folds `absorbed` (scored `score`) into `into`, which answers for the same harm: the higher
/// score and the surer confidence of the two stay.
pub fn absorb(into: &mut Scored, score: f64, absorbed: &Suspect) {
    into.0 = into.0.max(score);
    if absorbed.confidence == Confidence::Clear {
        into.1.confidence = Confidence::Clear;
    }
}

/// Which application a process belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum AppKey<'a> {
    /// Its container or pod (by kind, and a container's id or the pod's uid): what an operator
    /// runs and stops as one, whatever its processes are called.
    Workload(AppKind, &'a str),
    /// Else the same command name in the same cgroup (two services that both run `python3` are
    /// two applications). Units and sessions are not applications here: a login session or a
    /// CI runner's unit holds a hog and the processes it starves alike, whose waits would then
    /// be no harm to anyone outside.
    Comm(&'a str, Option<&'a str>),
}

fn app_key(p: &Process) -> AppKey<'_> {
    match &p.workload {
        Some(w) if matches!(w.kind, WorkloadKind::Container | WorkloadKind::Pod) => {
            AppKey::Workload(AppKind::of(w.kind), w.id.as_deref().unwrap_or(&w.name))
        }
        _ => AppKey::Comm(&p.comm, p.cgroup.as_deref()),
    }
}

/// Whether two processes belong to one application.
pub fn same_app(a: &Process, b: &Process) -> bool {
    app_key(a) == app_key(b)
}

/// The processes of each application that has two or more, busiest first (as the report
/// ranks them).
fn by_app(processes: &[Process], own_pid: u32) -> Vec<Vec<&Process>> {
    let mut groups: BTreeMap<AppKey<'_>, Vec<&Process>> = BTreeMap::new();
    for p in processes.iter().filter(|p| p.pid != own_pid) {
        groups.entry(app_key(p)).or_default().push(p);
    }
    groups.into_values().filter(|g| g.len() >= 2).collect()
}

/// The CPU the application used, when it crosses the CPU line together and did harm.
fn cpu(
    members: &[&Process],
    pids: &HashSet<u32>,
    contention: &Contention<'_>,
    facts: &RunFacts,
) -> Option<Scored> {
    let busiest = members.first()?;
    let total: f64 = members.iter().map(|p| p.cpu.cores).sum();
    let host_percent = total / facts.cpus() * 100.0;
    let used = cpu::use_margin(total, host_percent)?;
    if busiest.cpu.cores >= APP_MAX_MEMBER_SHARE * total {
        return None;
    }
    let harm = contention.harm(pids, host_percent)?;
    let reason = format!(
        "used {total:.2} cores together ({host_percent:.1}% of {} CPUs) over {:.1} s, {}; the busiest, pid {}, {:.2}",
        facts.cpus,
        facts.seconds(),
        harm.words("one of them"),
        busiest.pid,
        busiest.cpu.cores
    );
    let margin = used.min(contention.margin(&harm));
    let suspect = suspect(members, Resource::Cpu, round3(total), reason);
    Some((total / facts.cpus(), suspect.over(margin)))
}

/// The waiting the application's processes caused processes outside it, when it crosses the
/// sched line together.
fn sched(
    members: &[&Process],
    pids: &HashSet<u32>,
    others: &[Blame],
    by_pid: &HashMap<u32, &Process>,
    facts: &RunFacts,
) -> Option<Scored> {
    let caused: Vec<&Blame> = others
        .iter()
        .filter(|b| pids.contains(&b.culprit_pid))
        .collect();
    let total_ns: u64 = caused.iter().map(|b| b.delay_ns).sum();
    let secs = facts.seconds();
    let delay_s = total_ns as f64 / 1e9;
    let worst_culprit = parties(caused.iter().copied(), Side::Culprit, 1);
    let top_share = worst_culprit.first()?.delay_ns as f64 / total_ns.max(1) as f64;
    let ran = super::victims_ran_ns(caused.iter().copied(), by_pid);
    let margin = harm_margin(total_ns, ran, secs)?;
    if top_share >= APP_MAX_MEMBER_SHARE {
        return None;
    }
    let victims = parties(caused.iter().copied(), Side::Victim, usize::MAX);
    let worst = victims.first()?;
    let others = match victims.len() {
        1 => "1 other process".to_owned(),
        n => format!("{n} other processes"),
    };
    let reason = format!(
        "delayed {others} by {delay_s:.1} s in total while they waited for a CPU one of them held; most delayed: {} (pid {}), {:.1} s",
        worst.comm,
        worst.pid,
        worst.delay_ns as f64 / 1e9
    );
    let suspect = suspect(members, Resource::Sched, round3(delay_s), reason);
    Some((delay_s / secs / facts.cpus(), suspect.over(margin)))
}

fn suspect(members: &[&Process], resource: Resource, value: f64, reason: String) -> Suspect {
    let busiest = members[0];
    let (name, kind) = match (app_key(busiest), &busiest.workload) {
        (AppKey::Workload(kind, _), Some(w)) => (w.name.clone(), kind),
        _ => (busiest.comm.clone(), AppKind::Comm),
    };
    Suspect {
        app: Some(SuspectApp {
            name,
            kind,
            processes: members.len() as u64,
            pids: members.iter().take(MAX_PIDS).map(|p| p.pid).collect(),
        }),
        ..Suspect::new(busiest.pid, &busiest.comm, resource, value, reason)
    }
}
