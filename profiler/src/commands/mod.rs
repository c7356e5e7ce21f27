//! One file per subcommand; each composes probes, collect, model, analyze and output.

mod diagnose;
mod doctor;
pub mod flamegraph;
mod out_dir;
mod record;
mod stops;
mod top;

pub(crate) use self::stops::Stops;
use crate::{
    cli::{Cli, Command, Signal},
    probes::{self, Probes},
};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Diagnose(args) => diagnose::run(args).await,
        Command::Doctor => doctor::run(),
        Command::Record(args) => record::run(args).await,
        Command::Top(args) => top::run(args).await,
        Command::Flamegraph(args) => flamegraph::run(args),
    }
}

/// Attaches the chosen signals and says so on stderr, with each signal's state and `what_next`;
/// a stop that arrived meanwhile ends the run instead, before anything was measured.
async fn attach(
    frequency: u64,
    signals: &[Signal],
    what_next: &str,
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
    Ok(probes)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

/// Symbolizes on a blocking thread (blazesym's symbolizer is neither Send nor Sync, and takes a
/// while), handing the processes back with their stacks by name.
async fn symbolize_off_thread(
    usage: Vec<crate::model::ProcessUsage>,
    stacks: std::collections::HashMap<i32, Vec<u64>>,
) -> anyhow::Result<(Vec<crate::model::ProcessUsage>, crate::symbolize::Folded)> {
    use anyhow::Context as _;
    tokio::task::spawn_blocking(move || {
        let folded = crate::symbolize::symbolize(&usage, &stacks);
        (usage, folded)
    })
    .await
    .context("symbolizer thread")
}
