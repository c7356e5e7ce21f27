//! Command-line definitions (clap) and their validation into plain configs.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};

pub use crate::signals::Signal;
use profiler_common::UNWIND_ROWS_DEFAULT;

use crate::{analyze::triggers::PressureThresholds, probes::Unwinding, signals};

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
    /// Run continuously: a report per window on disk, Prometheus metrics, alerts on rogues.
    Record(RecordArgs),
    /// Live full-screen view of who uses the host now, refreshed every interval.
    Top(TopArgs),
    /// Render a flamegraph offline from folded stacks, report directories or record windows.
    Flamegraph(FlamegraphArgs),
    /// Print a man page or a shell completion script (for packagers).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: Generated,
    },
}

/// What `profiler generate` prints on stdout.
#[derive(Debug, Subcommand)]
pub enum Generated {
    /// The man page of `profiler`, or of one of its subcommands (`profiler-diagnose(1)`).
    Man {
        /// The subcommand; none for `profiler(1)`.
        subcommand: Option<String>,
    },
    /// The completion script of a shell.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// Directory holding one sub-directory per window, and alerts.jsonl.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Length of each window (report.json, stacks.folded, profile.pb.gz).
    #[arg(long, default_value = "60s", value_parser = parse_window)]
    pub window: Duration,
    /// Windows older than this are deleted.
    #[arg(long, default_value = "24h", value_parser = parse_retention)]
    pub retention: Duration,
    /// Oldest windows are deleted while the windows take more than this (e.g. 500MiB, 2GiB).
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    pub max_disk: u64,
    /// Stack samples per second on each CPU.
    #[arg(long, default_value_t = 19, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub frequency: u64,
    #[command(flatten)]
    pub unwind: UnwindArgs,
    /// Signals measured all the time, comma-separated. The default leaves out every hook that
    /// runs per syscall or per packet (syscalls, syscall-time, net), off-CPU stacks and a perf
    /// sample per page fault: they cost a busy service too much to run all the time. Syscalls
    /// and net attach for an incident when a trigger fires (see --escalate-*).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Signal::defaults(signals::Command::Record))]
    pub signals: Vec<Signal>,
    /// Never attach the exact probes for an incident: measure only --signals (list syscalls
    /// and net there to have them all the time).
    #[arg(long)]
    pub no_escalate: bool,
    /// Leave the recording thread at normal priority. By default its ticks, alerts and metrics
    /// server run at the lowest real-time priority (SCHED_FIFO 1, at most 500 ms of CPU without
    /// a pause), so a rogue at nice -20 on every CPU cannot delay them; windows are written at
    /// normal priority.
    #[arg(long)]
    pub no_realtime: bool,
    /// How long an incident's exact probes stay attached.
    #[arg(long, default_value = "10s", value_parser = parse_window, conflicts_with = "no_escalate")]
    pub escalate_for: Duration,
    /// Quiet time after an incident before the next may start.
    #[arg(long, default_value = "5m", value_parser = parse_duration, conflicts_with = "no_escalate")]
    pub escalate_cooldown: Duration,
    /// CPU inside syscalls (sampled, in cores) that makes a process an incident's trigger once
    /// it held for two ticks; a firing alert is one too.
    #[arg(long, default_value_t = 0.5, value_parser = parse_cores, conflicts_with = "no_escalate")]
    pub escalate_syscall_cores: f64,
    /// Host pressure (PSI: percent of a tick some task waited for a CPU, IO or memory) that
    /// sets off an incident once it held for two ticks, e.g. cpu=80,io=50,memory=20; a
    /// resource left out is not watched; `off` watches none. CPU pressure attaches syscalls
    /// and net, IO pressure off-CPU stacks, memory pressure page faults.
    #[arg(long, default_value = "cpu=80,io=50,memory=20", value_parser = parse_pressure, conflicts_with = "no_escalate")]
    pub escalate_pressure: PressureThresholds,
    /// Address of the Prometheus /metrics endpoint; loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub metrics: std::net::SocketAddr,
    /// Do not serve metrics.
    #[arg(long, conflicts_with = "metrics")]
    pub no_metrics: bool,
    /// Processes exported per resource in the metrics (bounds their cardinality).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub top: u64,
    /// Alert rule, repeatable: `<figure> <op> <number>[unit] [for <duration>]`, e.g.
    /// `cpu.cores > 0.8 for 3s`. Without any, the default rules apply (see README).
    #[arg(long = "alert", value_name = "RULE")]
    pub alerts: Vec<String>,
    /// Command run for each alert firing and resolving, the alert's JSON on its stdin. Split
    /// into words like a shell would, but run without one.
    #[arg(long, value_name = "CMD")]
    pub on_alert: Option<String>,
    /// Exit when a window cannot be written (a full disk), instead of losing that window,
    /// counting it and recording on.
    #[arg(long)]
    pub exit_on_write_error: bool,
    /// Also write a self-contained report.html into every window (with its flamegraphs).
    #[arg(long)]
    pub html: bool,
    /// How long `--on-alert` may run before it is killed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub on_alert_timeout: Duration,
    /// Replace command-line arguments (all but the program) with a SHA-256 hash in every
    /// output, so secrets passed on command lines stay out of the reports.
    #[arg(long)]
    pub redact: bool,
    /// Watch a victim, repeatable: this process (a pid), or every process of a command name,
    /// a cgroup path, or a container (name or short id), unit or session. Its time per window (report.json `victims`), its metrics
    /// (`profiler_victim_*`) and `victim.` alert rules, e.g. `victim.runq_wait_ratio > 0.2`.
    #[arg(long = "victim", value_name = "PID|NAME|CGROUP")]
    pub victims: Vec<String>,
}

/// How user stacks are walked: `--unwind` and `--unwind-rows`, shared by the sampling commands.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct UnwindArgs {
    /// How user stacks are walked: `tables`, compiled from each binary's call frame
    /// information (.eh_frame), walks whole stacks of code built without frame pointers, as
    /// most distributions' is; `frame-pointers` follows the frame-pointer chain alone
    /// (cheaper per sample, one frame deep in such code). Default: `tables` for `diagnose`
    /// and `top`, `frame-pointers` for `record` (whose memory with tables over hours of
    /// process churn is not yet shown to stay flat).
    #[arg(long, value_enum)]
    pub unwind: Option<UnwindChoice>,
    /// Rows of unwind tables the kernel holds (16 bytes each: the default is 16 MiB, a few
    /// hundred distinct binaries; libc takes about 28 000). Objects that do not fit are walked
    /// by frame pointers, and counted in report.json's `unwinding`.
    #[arg(long, default_value_t = UNWIND_ROWS_DEFAULT, value_parser = clap::value_parser!(u32).range(4096..=(1 << 24)))]
    pub unwind_rows: u32,
}

impl UnwindArgs {
    /// The walk asked for, or the command's `default`.
    pub fn unwinding(self, default: UnwindChoice) -> Unwinding {
        match self.unwind.unwrap_or(default) {
            UnwindChoice::Tables => Unwinding::Tables {
                rows: self.unwind_rows,
            },
            UnwindChoice::FramePointers => Unwinding::FramePointers,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnwindChoice {
    Tables,
    FramePointers,
}

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// Time between refreshes (at least 200ms).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Stack samples per second on each CPU (for the hottest stacks of a process).
    #[arg(long, default_value_t = 49, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub frequency: u64,
    /// Signals to measure, comma-separated: by default `record`'s, and resident memory for the
    /// RSS column.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Signal::defaults(signals::Command::Top))]
    pub signals: Vec<Signal>,
    /// Print one plain table after one interval and exit (for scripts and pipes).
    #[arg(long, conflicts_with = "json")]
    pub once: bool,
    /// Print each interval's report as one JSON line until SIGINT or SIGTERM.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub unwind: UnwindArgs,
    /// Replace command-line arguments (all but the program) with a SHA-256 hash in every
    /// output, so secrets passed on command lines stay out of the reports.
    #[arg(long)]
    pub redact: bool,
}

#[derive(Debug, clap::Args)]
pub struct FlamegraphArgs {
    /// A folded stacks file, or a report directory (its stacks.folded); omit with --from.
    #[arg(value_name = "INPUT", required_unless_present = "from")]
    pub input: Option<PathBuf>,
    /// A `profiler record` directory: merge its windows between --since and --until.
    #[arg(long, value_name = "DIR", conflicts_with = "input")]
    pub from: Option<PathBuf>,
    /// With --from: windows that started at most this long ago (e.g. 10m).
    #[arg(long, requires = "from", value_parser = parse_age)]
    pub since: Option<Duration>,
    /// With --from: windows that ended at least this long ago (e.g. 2m).
    #[arg(long, requires = "from", value_parser = parse_age)]
    pub until: Option<Duration>,
    /// Baseline to compare against (a folded file or a report directory): draws a differential
    /// flamegraph of the input, red where the input has more than the baseline, blue where less.
    /// The baseline is first scaled to the input's total, so a longer or busier baseline
    /// compares by share, not by raw count.
    #[arg(long, value_name = "BASE")]
    pub diff: Option<PathBuf>,
    /// Use the off-CPU stacks (offcpu.folded) of report and record directories.
    #[arg(long)]
    pub offcpu: bool,
    /// Where to write the SVG (written atomically); stdout when omitted.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Title of the picture.
    #[arg(long)]
    pub title: Option<String>,
    /// Largest input file read (e.g. 1GiB); a real profile's folded stacks take a few MB.
    #[arg(long, default_value = "256MiB", value_parser = parse_bytes, value_name = "SIZE")]
    pub max_input: u64,
    /// Longest stack line read (e.g. 4MiB).
    #[arg(long, default_value = "1MiB", value_parser = parse_bytes, value_name = "SIZE")]
    pub max_line: u64,
    /// Most distinct stacks drawn.
    #[arg(long, default_value_t = 1_000_000, value_name = "N",
          value_parser = clap::value_parser!(usize))]
    pub max_stacks: usize,
    /// Most frames in the distinct stacks, all together (a real profile of 50 000 stacks has
    /// about a million); memory grows with them.
    #[arg(long, default_value_t = 4_000_000, value_name = "N",
          value_parser = clap::value_parser!(usize))]
    pub max_frames: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Top-consumer table and verdict.
    Text,
    /// report.json on stdout.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DiagnoseArgs {
    /// How long to sample (e.g. 10s, 500ms, 1m); Ctrl-C ends earlier and still reports.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stack samples per second on each CPU.
    #[arg(long, default_value_t = 99, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub frequency: u64,
    #[command(flatten)]
    pub unwind: UnwindArgs,
    /// Only report these processes (repeatable). The host total is still measured.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Where to write report.json, the folded stacks and flamegraphs [default: ./profiler-<time>-<random>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Signals to measure, comma-separated. All but syscall-time by default: time inside
    /// syscalls comes from the CPU samples unless it is named.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Signal::defaults(signals::Command::Diagnose))]
    pub signals: Vec<Signal>,
    /// Replace command-line arguments (all but the program) with a SHA-256 hash in every
    /// output, so secrets passed on command lines stay out of the reports.
    #[arg(long)]
    pub redact: bool,
    /// Start from the victim: account for the time of this process (a pid), or of every
    /// process of a command name, a cgroup path, or a container (name or short id), unit or
    /// session, and name who cost it that time.
    #[arg(long, value_name = "PID|NAME|CGROUP")]
    pub victim: Option<String>,
    /// With --victim: turn the kernel's delay accounting on for the run (a host-wide switch,
    /// `kernel.task_delayacct`, turned back off after if it was off) for the victim's exact
    /// block IO delay.
    #[arg(long, requires = "victim")]
    pub delayacct: bool,
}

/// A record window: long enough to amortize writing it, short enough to see a rogue appear.
pub fn parse_window(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < Duration::from_secs(1) {
        return Err("must be at least 1s".to_owned());
    }
    Ok(duration)
}

/// A share of CPU in cores: positive and finite (an escalation threshold).
pub fn parse_cores(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(cores) if cores.is_finite() && cores > 0.0 => Ok(cores),
        _ => Err(format!(
            "{text:?} is not a number of cores above 0, e.g. 0.5"
        )),
    }
}

/// `--escalate-pressure`: `off`, or `resource=percent` pairs.
pub fn parse_pressure(text: &str) -> Result<PressureThresholds, String> {
    let mut thresholds = PressureThresholds {
        cpu: None,
        io: None,
        memory: None,
    };
    if text == "off" {
        return Ok(thresholds);
    }
    for pair in text.split(',') {
        let (resource, percent) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not resource=percent, e.g. cpu=80"))?;
        let percent = match percent.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) && p > 0.0 => p,
            _ => {
                return Err(format!(
                    "{percent:?} is not a percent above 0 and at most 100"
                ));
            }
        };
        let slot = match resource {
            "cpu" => &mut thresholds.cpu,
            "io" => &mut thresholds.io,
            "memory" => &mut thresholds.memory,
            _ => return Err(format!("{resource:?} is not cpu, io or memory")),
        };
        *slot = Some(percent);
    }
    Ok(thresholds)
}

/// A `top` refresh: shorter ones measure too little to be readable and cost more than they show.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < Duration::from_millis(200) {
        return Err("must be at least 200ms".to_owned());
    }
    Ok(duration)
}

/// How long windows are kept: up to a year.
pub fn parse_retention(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|err| format!("{err}; write it like 24h, 7days or 90m"))?;
    if duration < Duration::from_secs(1) || duration > Duration::from_secs(366 * 24 * 3600) {
        return Err("must be between 1s and 366days".to_owned());
    }
    Ok(duration)
}

/// A byte size with an optional unit: B, KB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB
/// (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write it like 500MiB or 2GiB"))?;
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown unit {other:?}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ));
        }
    };
    let bytes = number * scale;
    if !(1.0..=u64::MAX as f64).contains(&bytes) {
        return Err("must be at least 1 byte".to_owned());
    }
    Ok(bytes as u64)
}

/// How long ago, for picking record windows: any humantime duration, zero included.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| format!("{err}; write it like 10m, 2h or 1day"))
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
    fn pressure_thresholds_per_resource_or_off() {
        let parsed = parse_pressure("cpu=90,memory=5.5").unwrap();
        assert_eq!(
            (parsed.cpu, parsed.io, parsed.memory),
            (Some(90.0), None, Some(5.5))
        );
        let off = parse_pressure("off").unwrap();
        assert_eq!((off.cpu, off.io, off.memory), (None, None, None));
        assert!(
            parse_pressure("disk=50")
                .unwrap_err()
                .contains("cpu, io or memory")
        );
        assert!(
            parse_pressure("cpu=150")
                .unwrap_err()
                .contains("at most 100")
        );
        assert!(
            parse_pressure("cpu")
                .unwrap_err()
                .contains("resource=percent")
        );
    }

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("500MB"), Ok(500_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("1.5KiB"), Ok(1536));
        assert!(
            parse_bytes("12 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("0").is_err());
    }

    #[test]
    fn record_defaults_are_the_cheap_signals() {
        let cli = Cli::try_parse_from(["profiler", "record", "--out", "/tmp/x"]).unwrap();
        let Command::Record(args) = cli.command else {
            panic!("not record")
        };
        assert_eq!(args.window, Duration::from_secs(60));
        assert_eq!(args.frequency, 19);
        assert_eq!(args.max_disk, 1 << 30);
        assert!(!args.signals.contains(&Signal::Offcpu));
        assert!(args.signals.contains(&Signal::Io));
        assert!(parse_window("500ms").is_err());
    }

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
    fn top_defaults_and_interval_bounds() {
        let cli = Cli::try_parse_from(["profiler", "top"]).unwrap();
        let Command::Top(args) = cli.command else {
            panic!("not top")
        };
        assert_eq!(args.interval, Duration::from_secs(1));
        assert!(args.signals.contains(&Signal::Mem));
        assert!(!args.signals.contains(&Signal::Offcpu));
        assert!(parse_interval("100ms").unwrap_err().contains("200ms"));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert!(Cli::try_parse_from(["profiler", "top", "--once", "--json"]).is_err());
    }

    #[test]
    fn zero_frequency_is_rejected() {
        assert!(Cli::try_parse_from(["profiler", "diagnose", "--frequency", "0"]).is_err());
    }
}
