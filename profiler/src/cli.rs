//! Command-line definitions (clap) and their validation into plain configs.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "profiler",
    version,
    about = "eBPF per-process resource profiler"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sample the whole host for a while, then name the processes eating it.
    Diagnose(DiagnoseArgs),
    /// Check every prerequisite of each signal on this host and say how to fix what is missing.
    Doctor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Top-consumer table and verdict.
    Text,
    /// report.json on stdout.
    Json,
}

/// What can be measured; each is one set of kernel programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Signal {
    /// Stack samples and on-CPU time.
    Cpu,
    /// Run-queue wait, context switches and who delayed whom.
    Sched,
    /// Time blocked (asleep) per process, with the stack it blocked in (offcpu.svg).
    Offcpu,
    /// Syscall counts per process and per syscall (entry hook only: the cheap part).
    Syscalls,
    /// Adds syscall errors and on-CPU time inside syscalls (exit hook: doubles the cost).
    SyscallTime,
    /// Forks: parents, spawn rates, processes that lived only milliseconds.
    Processes,
    /// Bytes sent and received through TCP/UDP (inet) sockets, loopback included.
    Net,
    /// Page faults (minor and major) per process, and resident memory.
    Mem,
    /// Block IO bytes, ops and latency, charged to the submitting process (writeback included).
    Io,
}

#[derive(Debug, clap::Args)]
pub struct DiagnoseArgs {
    /// How long to sample (e.g. 10s, 500ms, 1m); Ctrl-C ends earlier and still reports.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stack samples per second on each CPU.
    #[arg(long, default_value_t = 99, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub frequency: u64,
    /// Only report these processes (repeatable). The host total is still measured.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Where to write report.json, the folded stacks and flamegraphs [default: ./profiler-<time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Signals to measure, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "cpu,sched,offcpu,syscalls,syscall-time,processes,net,mem,io"
    )]
    pub signals: Vec<Signal>,
}

/// Humantime durations, bounded to what a diagnosis run can mean.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|err| format!("{err}; write it like 10s, 500ms or 2m"))?;
    if duration < Duration::from_millis(100) {
        return Err("must be at least 100ms".to_owned());
    }
    if duration > Duration::from_secs(24 * 3600) {
        return Err("must be at most 24h".to_owned());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_are_bounded() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("banana").unwrap_err().contains("10s"));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("2d").is_err());
    }

    #[test]
    fn diagnose_defaults_and_repeatable_pid() {
        let cli =
            Cli::try_parse_from(["profiler", "diagnose", "--pid", "1", "--pid", "2"]).unwrap();
        let Command::Diagnose(args) = cli.command else {
            panic!("not diagnose")
        };
        assert_eq!(args.duration, Duration::from_secs(10));
        assert_eq!(args.frequency, 99);
        assert_eq!(args.pids, [1, 2]);
        assert_eq!(args.format, Format::Text);
        assert_eq!(
            args.signals,
            [
                Signal::Cpu,
                Signal::Sched,
                Signal::Offcpu,
                Signal::Syscalls,
                Signal::SyscallTime,
                Signal::Processes,
                Signal::Net,
                Signal::Mem,
                Signal::Io,
            ]
        );
    }

    #[test]
    fn signals_are_a_comma_list_of_known_names() {
        let cli = Cli::try_parse_from(["profiler", "diagnose", "--signals", "sched"]).unwrap();
        let Command::Diagnose(args) = cli.command else {
            panic!("not diagnose")
        };
        assert_eq!(args.signals, [Signal::Sched]);
        let err =
            Cli::try_parse_from(["profiler", "diagnose", "--signals", "cpu,disk"]).unwrap_err();
        assert!(err.to_string().contains("disk"), "{err}");
    }

    #[test]
    fn zero_frequency_is_rejected() {
        assert!(Cli::try_parse_from(["profiler", "diagnose", "--frequency", "0"]).is_err());
    }
}
