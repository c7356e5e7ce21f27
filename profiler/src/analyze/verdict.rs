//! The verdict paragraph: the suspects and their evidence in plain words.

use super::thresholds::{CPU_SATURATED_PERCENT, IDLE_BUSY_PERCENT, STALL_PERCENT};
use crate::{
    report::{AppKind, Process, Report, Resource, Suspect, SuspectApp},
    signals::{Signal, SignalState},
};

/// Suspects described in full sentences; the rest are listed.
const DESCRIBED: usize = 3;

/// `redis-server (pid 812, /usr/bin/redis-server, container cache)`: its executable and the
/// container, pod, unit or session it runs as, where known.
fn describe(p: &Process) -> String {
    let mut about = vec![format!("pid {}", p.pid)];
    about.extend(p.exe.clone());
    about.extend(
        p.workload
            .as_ref()
            .map(|w| format!("{} {}", AppKind::of(w.kind), w.name)),
    );
    format!("{} ({})", p.comm, about.join(", "))
}

/// `3 processes named burner (pids 10, 11, 12)`, or `container web (3 processes: pids 10, 11,
/// 12)`, the pids cut after five.
fn describe_app(app: &SuspectApp) -> String {
    let mut pids: Vec<String> = app.pids.iter().take(5).map(u32::to_string).collect();
    if app.processes > 5 {
        pids.push("…".to_owned());
    }
    let pids = pids.join(", ");
    match app.kind {
        AppKind::Comm => format!(
            "{} processes named {} (pids {pids})",
            app.processes, app.name
        ),
        kind => format!(
            "{kind} {} ({} processes: pids {pids})",
            app.name, app.processes
        ),
    }
}

fn sentence(report: &Report, suspect: &Suspect) -> String {
    if let Some(app) = &suspect.app {
        return format!("{} {}", describe_app(app), suspect.reason);
    }
    let process = report.processes.iter().find(|p| p.pid == suspect.pid);
    let who = process.map_or_else(
        || format!("{} (pid {})", suspect.comm, suspect.pid),
        describe,
    );
    match (suspect.resource, process) {
        (Resource::Cpu, _) => format!("{who} is eating the CPU: it {}", suspect.reason),
        (Resource::Sched, _) => {
            let mut text = format!("{who} {}", suspect.reason);
            let worst = report
                .blame
                .iter()
                .find(|b| b.culprit_pid == suspect.pid)
                .and_then(|b| report.processes.iter().find(|p| p.pid == b.victim_pid))
                .and_then(|p| p.sched.as_ref());
            if let Some(sched) = worst {
                text.push_str(&format!(
                    " (its run-queue wait p99 {:.1} ms)",
                    sched.runq_p99_ns as f64 / 1e6
                ));
            }
            text
        }
        (Resource::Syscalls, Some(p)) => match &p.syscalls {
            Some(s) => {
                let mut text = format!(
                    "{who} storms syscalls: {:.0} per second ({} in {:.1} s",
                    s.per_second, s.count, report.duration_s
                );
                if let Some(first) = s.top.first() {
                    text.push_str(&format!(", mostly {}", first.name));
                }
                let timed = report.signals.get(&Signal::SyscallTime) == Some(&SignalState::On);
                text.push_str(&format!("), {}", super::syscalls::inside(p, s, timed)));
                text
            }
            None => format!("{who} {}", suspect.reason),
        },
        (Resource::Mem, _) => format!("{who} weighs on memory: it {}", suspect.reason),
        (Resource::Net, _) => format!("{who} floods the network: it {}", suspect.reason),
        (Resource::Spawn, _) => format!("{who} spawns processes: it {}", suspect.reason),
        (Resource::Io, _) => format!("{who} saturates the disk: it {}", suspect.reason),
        _ => format!("{who} {}", suspect.reason),
    }
}

/// Why a busy process is no suspect: `, busy but harmless: ...` when it used enough CPU to be
/// one had it harmed anybody.
fn harmless(report: &Report, busiest: &Process) -> &'static str {
    if super::cpu::use_margin(busiest.cpu.cores, busiest.cpu.host_percent).is_none() {
        return "";
    }
    let blamed = report.signals.get(&Signal::Sched) == Some(&SignalState::On);
    let spare = report.host.busy_percent < CPU_SATURATED_PERCENT;
    match (blamed, spare) {
        (true, true) => {
            ", busy but harmless: no other application waited for a CPU it held, and the host had CPUs to spare"
        }
        (true, false) => ", busy but harmless: no other application waited for a CPU it held",
        (false, true) => ", busy but harmless: the host had CPUs to spare",
        (false, false) => "",
    }
}

/// Whether the host had CPUs to spare and no task stalled for a CPU, IO or memory.
fn idle(report: &Report) -> bool {
    let calm = report.host.pressure.is_none_or(|p| {
        [p.cpu_some_percent, p.io_some_percent, p.memory_some_percent]
            .iter()
            .all(|&share| share < STALL_PERCENT)
    });
    report.host.busy_percent < IDLE_BUSY_PERCENT && calm
}

/// How busy and how stalled the host was: `CPU 5 % busy, no pressure`, or `CPU 98 % busy; tasks
/// stalled for a CPU 45 % of the time, for IO 12 %`; `top` shows it too.
pub fn host_load(report: &Report) -> String {
    let busy = report.host.busy_percent;
    let Some(pressure) = report.host.pressure else {
        return format!("CPU {busy:.0} % busy, pressure not measured");
    };
    let stalls: Vec<String> = [
        ("a CPU", pressure.cpu_some_percent),
        ("IO", pressure.io_some_percent),
        ("memory", pressure.memory_some_percent),
    ]
    .into_iter()
    .filter(|&(_, share)| share >= STALL_PERCENT)
    .map(|(what, share)| format!("for {what} {share:.0} % of the time"))
    .collect();
    if stalls.is_empty() {
        format!("CPU {busy:.0} % busy, no pressure")
    } else {
        format!("CPU {busy:.0} % busy; tasks stalled {}", stalls.join(", "))
    }
}

/// The verdict paragraph; `own_pid`, the profiler's, is never called the busiest process.
pub fn verdict(report: &Report, own_pid: u32) -> String {
    let secs = report.duration_s;
    let mut text = if report.suspects.is_empty() {
        match report.processes.iter().find(|p| p.pid != own_pid) {
            Some(top) if idle(report) => format!(
                "Nothing stands out: the host is idle ({}); the busiest process, {}, used {:.2} cores over {secs:.1} s.",
                host_load(report),
                describe(top),
                top.cpu.cores
            ),
            Some(top) => format!(
                "Nothing stands out: the host was {} over {secs:.1} s, and the busiest process, {}, used {:.2} cores{}.",
                host_load(report),
                describe(top),
                top.cpu.cores,
                harmless(report, top)
            ),
            None => format!("No process ran on a CPU during the {secs:.1} s sampled."),
        }
    } else {
        let mut parts: Vec<String> = report
            .suspects
            .iter()
            .take(DESCRIBED)
            .map(|s| {
                let sure = s.confidence.as_str();
                format!("Suspect #{} ({sure}): {}.", s.rank, sentence(report, s))
            })
            .collect();
        let rest: Vec<String> = report
            .suspects
            .iter()
            .skip(DESCRIBED)
            .map(|s| {
                format!(
                    "#{} {} (pid {}, {}: {:.2} {})",
                    s.rank, s.comm, s.pid, s.resource, s.value, s.unit
                )
            })
            .collect();
        if !rest.is_empty() {
            parts.push(format!("Also: {}.", rest.join(", ")));
        }
        parts.push(format!("Host: {} over {secs:.1} s.", host_load(report)));
        parts.join(" ")
    };
    let drops = &report.drops;
    let lost = drops.user_stack_lost + drops.kernel_stack_lost + drops.stack_counts_full;
    let other_lost = drops.on_cpu_map_full
        + drops.runnable_map_full
        + drops.sched_map_full
        + drops.blame_map_full
        + drops.syscalls_map_full
        + drops.names_map_full
        + drops.net_map_full
        + drops.faults_map_full
        + drops.offcpu_map_full
        + drops.io_map_full
        + drops.forks_map_full;
    if lost > 0 || other_lost > 0 {
        text.push_str(&format!(
            " Caution: {lost} stack samples and {other_lost} scheduler, off-CPU, syscall, name, fork, network, fault or IO updates were dropped in the kernel (see drops)."
        ));
    }
    text
}
