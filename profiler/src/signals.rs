//! The signal table: what can be measured, each signal declared once (its name, the probes it
//! attaches, which commands run it by default, what it costs, what it adds to each process,
//! how to fix it when it cannot attach), and the state each ends up in.

use std::{fmt, str::FromStr};

use clap::ValueEnum;
use profiler_common::{
    MAP_BLAME, MAP_DIRTIER, MAP_FAULTS, MAP_FORKS, MAP_IO, MAP_IO_PENDING, MAP_NET, MAP_OFFCPU,
    MAP_OOM_KILLS, MAP_RUNNABLE_SINCE, MAP_SAMPLED_SYSCALLS, MAP_SCHED, MAP_STACK_COUNTS,
    MAP_STACKS, MAP_SYSCALLS, MAP_UNWIND_PROCESSES, MAP_UNWIND_ROWS, MAP_UNWIND_WANTED,
    MAP_UNWOUND_STACKS, MAP_WRITEBACK_INODE,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What can be measured; each is one set of kernel programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
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

/// The commands that choose signals, for their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Diagnose,
    Record,
    Top,
}

/// What a signal's probes cost the host, from cheapest to dearest: what decides whether a
/// continuous recorder can leave it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cost {
    /// A fixed number of samples per second and CPU, whatever the load.
    Sampled,
    /// A program run per event of a kind that is rare next to the work it stands for (forks,
    /// block requests).
    PerRareEvent,
    /// A program run per context switch or wakeup.
    PerSwitch,
    /// A program run per page fault.
    PerFault,
    /// A program run per socket send or receive.
    PerPacket,
    /// A program run per syscall, on the hottest path of a busy service.
    PerSyscall,
}

/// One signal, declared once.
#[derive(Debug, Clone, Copy)]
pub struct Declaration {
    pub signal: Signal,
    /// As `--signals` and the report spell it.
    pub name: &'static str,
    /// The kernel events its programs attach to.
    pub probes: &'static [&'static str],
    /// The commands that run it when `--signals` is not given.
    pub default_in: &'static [Command],
    pub cost: Cost,
    /// The fields of each report.json process it fills (the rest of a process is there
    /// whatever the signals).
    pub fills: &'static [&'static str],
    /// A signal whose probes it needs attached too.
    pub needs: Option<Signal>,
    /// The maps its programs write: shrunk to one entry when none of their writers attaches.
    pub maps: &'static [&'static str],
    /// What an operator can do when its probes cannot attach.
    pub fix: &'static str,
}

const TRACEFS_FIX: &str =
    "mount tracefs (mount -t tracefs nodev /sys/kernel/tracing) or unset PROFILER_TRACEFS";
const ALL: &[Command] = &[Command::Diagnose, Command::Record, Command::Top];

/// Every signal, in the order `--signals` lists them.
pub const SIGNALS: [Declaration; 9] = [
    Declaration {
        signal: Signal::Cpu,
        name: "cpu",
        probes: &[
            "perf_event cpu-clock (every CPU)",
            "raw_tracepoint sched_switch",
        ],
        default_in: ALL,
        cost: Cost::Sampled,
        fills: &["cpu.samples", "cpu.hottest"],
        needs: None,
        maps: &[
            MAP_STACK_COUNTS,
            MAP_SAMPLED_SYSCALLS,
            MAP_STACKS,
            MAP_UNWIND_ROWS,
            MAP_UNWIND_PROCESSES,
            MAP_UNWIND_WANTED,
            MAP_UNWOUND_STACKS,
        ],
        fix: "needs perf_event programs and the cpu-clock software event (CONFIG_PERF_EVENTS)",
    },
    Declaration {
        signal: Signal::Sched,
        name: "sched",
        probes: &[
            "tracepoint sched:sched_switch",
            "tracepoint sched:sched_wakeup",
            "tracepoint sched:sched_wakeup_new",
        ],
        default_in: ALL,
        cost: Cost::PerSwitch,
        fills: &["sched"],
        needs: None,
        maps: &[MAP_SCHED, MAP_BLAME, MAP_RUNNABLE_SINCE],
        fix: TRACEFS_FIX,
    },
    Declaration {
        signal: Signal::Offcpu,
        name: "offcpu",
        probes: &["tracepoint sched:sched_switch (two stack walks per sleep)"],
        default_in: &[Command::Diagnose],
        cost: Cost::PerSwitch,
        fills: &["sched.offcpu_ns"],
        needs: Some(Signal::Sched),
        maps: &[MAP_OFFCPU, MAP_STACKS],
        fix: TRACEFS_FIX,
    },
    Declaration {
        signal: Signal::Syscalls,
        name: "syscalls",
        probes: &["raw_tracepoint sys_enter"],
        // record attaches it for incidents only: a hook per syscall costs a busy service most.
        default_in: &[Command::Diagnose, Command::Top],
        cost: Cost::PerSyscall,
        fills: &["syscalls"],
        needs: None,
        maps: &[MAP_SYSCALLS],
        fix: "needs raw tracepoints on raw_syscalls:sys_enter and sys_exit",
    },
    Declaration {
        signal: Signal::SyscallTime,
        name: "syscall-time",
        probes: &["raw_tracepoint sys_exit"],
        // Opt-in everywhere: a second hook on every syscall costs a storm as much again as the
        // first, while the CPU samples already say where time inside syscalls goes.
        default_in: &[],
        cost: Cost::PerSyscall,
        fills: &["syscalls.errors", "syscalls.time_ns"],
        needs: Some(Signal::Syscalls),
        maps: &[],
        fix: "needs raw tracepoints on raw_syscalls:sys_enter and sys_exit",
    },
    Declaration {
        signal: Signal::Processes,
        name: "processes",
        probes: &[
            "tracepoint sched:sched_process_fork",
            "tracepoint oom:mark_victim",
        ],
        default_in: ALL,
        cost: Cost::PerRareEvent,
        fills: &["spawned", "ppid", "oom_killed"],
        needs: None,
        maps: &[MAP_FORKS, MAP_OOM_KILLS],
        fix: TRACEFS_FIX,
    },
    Declaration {
        signal: Signal::Net,
        name: "net",
        probes: &[
            "raw_tracepoint sock_send_length (with kernel BTF, else tracepoint sock:sock_send_length)",
            "raw_tracepoint sock_recv_length (with kernel BTF, else tracepoint sock:sock_recv_length)",
        ],
        // record attaches it for incidents only, like syscalls.
        default_in: &[Command::Diagnose, Command::Top],
        cost: Cost::PerPacket,
        fills: &["net"],
        needs: None,
        maps: &[MAP_NET],
        fix: "needs kernel BTF (/sys/kernel/btf/vmlinux, or PROFILER_BTF) for its raw tracepoints; \
              without it, mount tracefs (mount -t tracefs nodev /sys/kernel/tracing)",
    },
    Declaration {
        signal: Signal::Mem,
        name: "mem",
        probes: &["perf_event page-faults-min", "perf_event page-faults-maj"],
        default_in: &[Command::Diagnose, Command::Top],
        cost: Cost::PerFault,
        fills: &["mem"],
        needs: None,
        maps: &[MAP_FAULTS],
        fix: "needs the page-fault software perf events (CONFIG_PERF_EVENTS)",
    },
    Declaration {
        signal: Signal::Io,
        name: "io",
        probes: &[
            "tracepoint block:block_bio_queue",
            "tracepoint block:block_rq_issue",
            "tracepoint block:block_rq_complete",
            "tracepoint writeback:writeback_dirty_folio",
            "tracepoint writeback:writeback_single_inode_start",
            "tracepoint writeback:writeback_single_inode",
        ],
        default_in: ALL,
        cost: Cost::PerRareEvent,
        fills: &["io"],
        needs: None,
        maps: &[MAP_IO, MAP_IO_PENDING, MAP_WRITEBACK_INODE, MAP_DIRTIER],
        fix: TRACEFS_FIX,
    },
];

impl Signal {
    /// Every signal, in declaration order.
    pub fn all() -> impl Iterator<Item = Self> {
        SIGNALS.iter().map(|d| d.signal)
    }

    pub fn declaration(self) -> &'static Declaration {
        SIGNALS
            .iter()
            .find(|d| d.signal == self)
            .expect("every signal is declared")
    }

    pub fn name(self) -> &'static str {
        self.declaration().name
    }

    /// The signals `command` runs when `--signals` is not given.
    pub fn defaults(command: Command) -> Vec<Self> {
        SIGNALS
            .iter()
            .filter(|d| d.default_in.contains(&command))
            .map(|d| d.signal)
            .collect()
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A name that is no signal's.
#[derive(Debug, thiserror::Error)]
#[error("unknown signal `{0}`")]
pub struct UnknownSignal(String);

impl FromStr for Signal {
    type Err = UnknownSignal;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        SIGNALS
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.signal)
            .ok_or_else(|| UnknownSignal(name.to_owned()))
    }
}

/// Reports list signals by name, in name order, as they always have.
impl Ord for Signal {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl PartialOrd for Signal {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Signal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Signal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// What became of a signal in a run: `"on"`, `"off"` or `"unavailable: <reason>"` in the
/// report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalState {
    On,
    Off,
    Unavailable(String),
}

impl SignalState {
    pub fn is_on(&self) -> bool {
        *self == Self::On
    }

    /// The state without its reason: `on`, `off` or `unavailable`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

const UNAVAILABLE: &str = "unavailable: ";

impl fmt::Display for SignalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(reason) => write!(f, "{UNAVAILABLE}{reason}"),
            _ => f.write_str(self.label()),
        }
    }
}

/// A state the report cannot hold.
#[derive(Debug, thiserror::Error)]
#[error("unknown signal state `{0}`: expected on, off or unavailable: <reason>")]
pub struct UnknownState(String);

impl FromStr for SignalState {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "on" => Ok(Self::On),
            "off" => Ok(Self::Off),
            _ => text
                .strip_prefix(UNAVAILABLE)
                .map(|reason| Self::Unavailable(reason.to_owned()))
                .ok_or_else(|| UnknownState(text.to_owned())),
        }
    }
}

impl Serialize for SignalState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SignalState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_is_declared_once_under_its_clap_name() {
        for signal in Signal::value_variants() {
            let declared = SIGNALS.iter().filter(|d| d.signal == *signal).count();
            assert_eq!(declared, 1, "{signal:?}");
            let clap_name = signal.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(signal.name(), clap_name);
            assert_eq!(clap_name.parse::<Signal>().unwrap(), *signal);
        }
        assert_eq!(Signal::all().count(), Signal::value_variants().len());
    }

    /// Whether `node` (a schema, maybe behind a `$ref` or one of a `oneOf`) has `field`.
    fn has_field(schema: &serde_json::Value, node: &serde_json::Value, field: &str) -> bool {
        if node["properties"][field].is_object() {
            return true;
        }
        if let Some(name) = node["$ref"].as_str() {
            let name = name.trim_start_matches("#/$defs/");
            return has_field(schema, &schema["$defs"][name], field);
        }
        node["oneOf"]
            .as_array()
            .is_some_and(|choices| choices.iter().any(|c| has_field(schema, c, field)))
    }

    #[test]
    fn each_signal_fills_fields_the_report_schema_has() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/report.schema.json")).unwrap();
        let process = &schema["$defs"]["process"];
        for d in &SIGNALS {
            for field in d.fills {
                let (top, inner) = field.split_once('.').unwrap_or((field, ""));
                assert!(has_field(&schema, process, top), "{}: {field}", d.name);
                let top = &process["properties"][top];
                assert!(
                    inner.is_empty() || has_field(&schema, top, inner),
                    "{}: {field}",
                    d.name
                );
            }
        }
    }

    #[test]
    fn defaults_follow_cost() {
        let record = Signal::defaults(Command::Record);
        assert_eq!(
            record,
            [Signal::Cpu, Signal::Sched, Signal::Processes, Signal::Io]
        );
        // What runs all the time never runs per syscall or per packet: incidents attach those.
        for d in SIGNALS
            .iter()
            .filter(|d| d.default_in.contains(&Command::Record))
        {
            assert!(
                d.cost < Cost::PerPacket,
                "{} is too dear for record",
                d.name
            );
        }
        let diagnose = Signal::defaults(Command::Diagnose);
        assert_eq!(diagnose.len(), SIGNALS.len() - 1);
        assert!(!diagnose.contains(&Signal::SyscallTime));
        let top = Signal::defaults(Command::Top);
        assert!(top.contains(&Signal::Mem) && !top.contains(&Signal::Offcpu));
        // A needed signal is a default wherever its dependant is.
        for d in &SIGNALS {
            if let Some(needed) = d.needs {
                for command in d.default_in {
                    assert!(
                        needed.declaration().default_in.contains(command),
                        "{}",
                        d.name
                    );
                }
            }
        }
    }

    #[test]
    fn states_read_back_as_the_report_writes_them() {
        for (state, text) in [
            (SignalState::On, "\"on\""),
            (SignalState::Off, "\"off\""),
            (
                SignalState::Unavailable("no tracefs: denied".to_owned()),
                "\"unavailable: no tracefs: denied\"",
            ),
        ] {
            assert_eq!(serde_json::to_string(&state).unwrap(), text);
            assert_eq!(serde_json::from_str::<SignalState>(text).unwrap(), state);
        }
        assert!(serde_json::from_str::<SignalState>("\"maybe\"").is_err());
        let map: std::collections::BTreeMap<Signal, SignalState> =
            Signal::all().map(|s| (s, SignalState::On)).collect();
        let names: Vec<&str> = map.keys().map(|s| s.name()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "reports list signals in name order");
    }
}
