//! What `--pid` and `--victim` name, checked before sampling starts: a typo would otherwise
//! sample for nothing.

use crate::{analyze::victim::VictimSpec, error::usage};

/// A `--pid` (or a `--victim` pid) must name a running process, not a thread: the kernel keys
/// every figure by the process (thread group) id, so a thread's id would match nothing.
pub fn check_pid(pid: u32, flag: &str) -> anyhow::Result<()> {
    let status = i32::try_from(pid)
        .ok()
        .and_then(|pid| procfs::process::Process::new(pid).ok())
        .and_then(|process| process.status().ok());
    match status {
        None => Err(usage(format!(
            "no process with pid {pid} ({flag}); list running processes with `ps -e`"
        ))),
        Some(status) if status.tgid != i32::try_from(pid).unwrap_or(-1) => Err(usage(format!(
            "{pid} ({flag}) is a thread of process {}; use {flag} {}",
            status.tgid, status.tgid
        ))),
        Some(_) => Ok(()),
    }
}

/// A `--victim` must name a running process, command name, cgroup, container or unit: a typo
/// would otherwise sample for nothing and report no victim.
pub fn check_victim(text: &str) -> anyhow::Result<VictimSpec> {
    let spec = VictimSpec::parse(text);
    match &spec {
        VictimSpec::Pid(pid) => check_pid(*pid, "--victim")?,
        VictimSpec::Name(name) if victim_pids(&spec).is_empty() => {
            return Err(usage(format!(
                "no running process has the command name, cgroup, container or unit {name:?} \
                 (--victim); name one from `ps -e -o pid,comm,cgroup`, or give a pid"
            )));
        }
        VictimSpec::Name(_) => {}
    }
    Ok(spec)
}

/// The running processes `spec` names: its pid, or those with its command name, cgroup v2
/// path, or container, unit or session name (or container short id).
pub fn victim_pids(spec: &VictimSpec) -> Vec<u32> {
    let name = match spec {
        VictimSpec::Pid(pid) => return vec![*pid],
        VictimSpec::Name(name) => name,
    };
    let Ok(processes) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let named = |process: &procfs::process::Process| {
        let comm = process.stat().is_ok_and(|stat| stat.comm == *name);
        comm || process.cgroups().is_ok_and(|groups| {
            groups
                .0
                .iter()
                .any(|g| g.hierarchy == 0 && g.pathname == *name)
                || crate::model::workload_of(&groups.0).is_some_and(|w| w.is_named(name))
        })
    };
    processes
        .filter_map(Result::ok)
        .filter(named)
        .filter_map(|process| u32::try_from(process.pid).ok())
        .collect()
}
