//! The `profiler.report/v1` document (report.json): its types are the schema's source of truth;
//! docs/report.md and docs/report.schema.json describe the same fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::pressure::{CgroupPressure, HostPressure};
pub use super::workload::{Workload, WorkloadKind};
use crate::{
    collect::own_cost::Spent,
    signals::{Signal, SignalState},
};

pub const SCHEMA: &str = "profiler.report/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    /// Profiler version that wrote it.
    pub profiler_version: String,
    /// RFC 3339 start of the sampling window.
    pub started_at: String,
    pub hostname: String,
    pub duration_s: f64,
    pub cpus: u32,
    pub frequency_hz: u64,
    pub samples: Samples,
    pub drops: Drops,
    /// Signal name -> "on" | "off" | "unavailable: <reason>".
    pub signals: BTreeMap<Signal, SignalState>,
    /// Host-wide CPU use measured by the probes, in cores.
    pub host: Host,
    /// Sorted by CPU, busiest first.
    pub processes: Vec<Process>,
    /// Who kept whom waiting for a CPU, largest delay first (sched signal).
    pub blame: Vec<Blame>,
    /// Processes grouped into applications: by command name and by cgroup.
    pub apps: Vec<App>,
    pub suspects: Vec<Suspect>,
    pub verdict: String,
    /// What the profiler itself cost over the run; null when not measured.
    pub own_cost: Option<OwnCost>,
    /// How user stacks were walked, and what the unwind tables held and cost; absent without
    /// the `cpu` signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwinding: Option<Unwinding>,
    /// CPU and run-queue wait of the busiest processes second by second; empty in record
    /// windows, and absent from reports written before it existed.
    #[serde(default)]
    pub timeline: Timeline,
    /// Why `record` attached its exact probes for this window: only in incident windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
    /// Where the time of the process(es) `diagnose --victim` named went, and who cost it
    /// that time: only when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victim: Option<Victim>,
    /// A record window's `--victim`s whose processes ran in it, each as `victim`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub victims: Vec<Victim>,
}

/// The time budget of a victim (all its processes' threads over the run), and its culprits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Victim {
    /// As `--victim` named it: a pid, a command name or a cgroup path.
    pub name: String,
    /// Its processes in this report.
    pub pids: Vec<u32>,
    /// Each of its processes' own time, in the order of `pids`: the victim's figures are
    /// their sums. Absent in reports written before it existed.
    #[serde(default)]
    pub members: Vec<Member>,
    /// Running on a CPU (exact, from context switches).
    pub on_cpu_ns: u64,
    /// Of it, in user and in system (kernel) mode: each process's exact on-CPU time split by
    /// the kernel's own user and system shares over the run (`/proc/PID/stat` at the run's
    /// edges, sampled at the kernel's tick), summed over its processes still readable at the
    /// end. Null in record windows and where no process was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_ns: Option<u64>,
    /// Runnable, waiting for a CPU (exact, from the scheduler tracepoints).
    pub runq_wait_ns: u64,
    /// Asleep, summed over threads (exact); null without the offcpu signal.
    pub blocked_ns: Option<u64>,
    /// The blocked time by what it waited in, largest first: inferred from the kernel frames
    /// of each sleep's stack.
    pub blocked: Vec<BlockedPart>,
    /// Threads asleep from before the run to its end, which the programs never see: read from
    /// /proc at the run's edges, each counted asleep for the whole run in what its kernel
    /// stack says at the end (a futex there: idle, a parked worker). 0 in record windows,
    /// which do not read them, and in reports written before it existed.
    #[serde(default)]
    pub slept_through: u64,
    /// Who cost it time, outside the victim, largest first, at most five of each cause: who
    /// held the CPUs it waited for (from the report's blame pairs, the largest kept, so a
    /// lower bound on a busy host), who loaded the disks while it was blocked on IO, and whose
    /// resident set grew while it waited on memory.
    pub culprits: Vec<Culprit>,
    /// Each of its cgroups' own pressure over the run (cgroup v2 `*.pressure`): how long its
    /// tasks stalled, whatever the rest of the host did. `diagnose` only, where cgroup v2
    /// keeps them; absent in record windows and reports written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroup_pressure: Vec<CgroupPressure>,
    /// The kernel's own delay accounting over the run, with `diagnose --delayacct` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayacct: Option<VictimDelays>,
    /// In the victim's words: was it slowed, by what and by whom.
    pub verdict: String,
}

/// One process of a victim and its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub pid: u32,
    pub comm: String,
    pub on_cpu_ns: u64,
    /// As the victim's: null where not read (gone before the run's end, record windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_ns: Option<u64>,
    pub runq_wait_ns: u64,
    /// Null without the offcpu signal.
    pub blocked_ns: Option<u64>,
    /// It exited during the run: its time is that of its life in the run.
    pub exited: bool,
}

/// What a victim's sleeps waited in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockedWhy {
    /// Block IO (`io_schedule`, request tags, buffer waits, dirty-page throttling).
    Io,
    /// Page faults and memory reclaim.
    Memory,
    /// A socket's receive or send buffer.
    Network,
    /// A futex, mutex or rw-semaphore.
    Lock,
    /// Waiting by choice: poll, epoll, select, sleep, accept, a child's exit.
    Idle,
    /// Anything else, and sleeps whose stack was lost.
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockedPart {
    pub why: BlockedWhy,
    pub ns: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Culprit {
    pub pid: u32,
    pub comm: String,
    /// What it cost the victim; absent in reports written before there was more than one.
    #[serde(default)]
    pub cause: Cause,
    /// The victim's time it cost: exact run-queue wait for a CPU this process held, or the
    /// part of the victim's time blocked on IO that matches this process's share of the
    /// block IO over the run (inferred).
    pub delay_ns: u64,
}

/// How a culprit cost a victim time.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// It held a CPU the victim waited for.
    #[default]
    Cpu,
    /// It loaded the disks the victim waited on.
    Io,
    /// Its resident set grew while the victim waited on page faults and reclaim.
    Memory,
}

impl Cause {
    /// The blocked state a culprit of this cause costs a victim; `None` for CPU, a wait that
    /// is not a sleep.
    pub fn why(self) -> Option<BlockedWhy> {
        match self {
            Self::Cpu => None,
            Self::Io => Some(BlockedWhy::Io),
            Self::Memory => Some(BlockedWhy::Memory),
        }
    }
}

impl Victim {
    /// Its blocked time in `why`; 0 for `None`.
    pub fn blocked_on(&self, why: Option<BlockedWhy>) -> u64 {
        let part = self.blocked.iter().find(|p| Some(p.why) == why);
        part.map_or(0, |p| p.ns)
    }
}

/// A victim's delays as the kernel's delay accounting (`kernel.task_delayacct`) kept them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VictimDelays {
    /// Waiting for block IO, summed over its threads, as the kernel keeps it (at clock-tick
    /// resolution per thread; threads that exited during the run are missing). Not always
    /// right: 6.18 was seen to charge a wait whose clock it never started from the last start.
    pub blkio_ns: u64,
    /// Whether the profiler turned delay accounting on for the run and back off after (it
    /// was off), rather than finding it on.
    pub turned_on: bool,
    /// Threads of the victim already running when the profiler turned delay accounting on:
    /// the kernel keeps no delays for them, so `blkio_ns` leaves them out.
    pub uncovered_threads: u64,
}

/// What set off an incident window, and what was attached for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub trigger: TriggerKind,
    /// The process that set it off, when one did.
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// What the always-on figures showed, in words.
    pub reason: String,
    /// RFC 3339: when the trigger fired.
    pub fired_at: String,
    /// The signals attached for the incident on top of the always-on ones.
    pub escalated: Vec<Signal>,
}

/// What kind of figure set off an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A process spent a large share of a core inside syscalls (sampled).
    Syscalls,
    /// An alert rule fired.
    Alert,
    /// Tasks waited for a CPU a large share of the time (PSI).
    CpuPressure,
    /// Tasks waited for IO a large share of the time (PSI).
    IoPressure,
    /// Tasks waited for memory a large share of the time (PSI).
    MemoryPressure,
}

impl TriggerKind {
    /// As report.json and the metrics' `trigger` label spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Syscalls => "syscalls",
            Self::Alert => "alert",
            Self::CpuPressure => "cpu_pressure",
            Self::IoPressure => "io_pressure",
            Self::MemoryPressure => "memory_pressure",
        }
    }
}

fn measured_throughout() -> f64 {
    1.0
}

impl From<Spent> for OwnCost {
    fn from(spent: Spent) -> Self {
        let wall_ns = spent.wall.as_nanos().max(1) as f64;
        let percent = |ns: u64| (ns as f64 / wall_ns * 100.0 * 1000.0).round() / 1000.0;
        Self {
            cpu_ns: spent.cpu_ns,
            bpf_run_time_ns: spent.bpf_run_time_ns,
            bpf_runs: spent.bpf_runs,
            bpf_measured_share: (spent.bpf_measured_share * 1000.0).round() / 1000.0,
            cpu_percent_of_one_core: percent(spent.cpu_ns + spent.bpf_run_time_ns),
            peak_rss_bytes: spent.peak_rss_bytes,
            sampler_ns_per_sample: spent.sampler_ns_per_run.map(|ns| ns.round()),
            phases_ms: None,
        }
    }
}

impl DiskBusy {
    /// `device` was busy `share` (0 to 1) of the run.
    pub fn new(device: String, share: f64) -> Self {
        Self {
            device,
            busy_percent: (share * 1000.0).round() / 10.0,
        }
    }
}

/// The profiler's own cost over a run or window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OwnCost {
    /// User plus system CPU time of the profiler process.
    pub cpu_ns: u64,
    /// Time its BPF programs ran, as the kernel accounts it (BPF_ENABLE_STATS); 0 when the kernel
    /// does not keep the statistics.
    pub bpf_run_time_ns: u64,
    pub bpf_runs: u64,
    /// Share of the run the kernel's statistics were on (they are sampled: on a tenth of the
    /// time); `bpf_run_time_ns` and `bpf_runs` are scaled from those slices. 1 in
    /// reports written before sampling.
    #[serde(default = "measured_throughout")]
    pub bpf_measured_share: f64,
    /// `cpu_ns + bpf_run_time_ns` as a share of one core over the run, in percent.
    pub cpu_percent_of_one_core: f64,
    /// Largest resident set of the profiler process so far (VmHWM).
    pub peak_rss_bytes: u64,
    /// BPF nanoseconds per CPU sample: the sampler with the user stack walk it hands to
    /// (`unwinding`), as measured in the statistics' slices; absent when none was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler_ns_per_sample: Option<f64>,
    /// Where a `diagnose` run's wall time went; absent from record windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases_ms: Option<Phases>,
}

/// How a signal's user stacks were walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnwindMethod {
    /// With unwind tables compiled from each object's call frame information, and frame
    /// pointers where an object has none (JIT code, the vDSO) or before a process has its table.
    Tables,
    /// By the frame-pointer chain alone (`bpf_get_stackid`): one frame deep in code built
    /// without frame pointers.
    FramePointers,
}

/// How user stacks were walked, and the unwind tables' figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unwinding {
    pub cpu: UnwindMethod,
    /// The switch hook takes stacks by frame pointers.
    pub offcpu: UnwindMethod,
    /// CPU samples whose user stack was walked with a table.
    pub walked_samples: u64,
    /// CPU samples of processes that had no table yet (their first tenth of a second, or a
    /// process the tables had no room for): walked by frame pointers.
    pub before_table_samples: u64,
    /// Walked samples with some frame found by frame pointers: code without a row (JIT code,
    /// the vDSO, a binary without call frame information, a rule the walker cannot evaluate).
    pub fell_back_samples: u64,
    /// What the tables held at the end of the run; null when walking by frame pointers.
    pub tables: Option<UnwindTables>,
}

/// What the unwind tables held at the end of the run and what building them took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnwindTables {
    /// Processes with a table, and the distinct objects (executables, libraries) they map.
    pub processes: usize,
    pub objects: usize,
    /// Rows in use of the kernel's row array, its capacity (`--unwind-rows`) and its memory.
    pub rows_used: u32,
    pub rows_capacity: u32,
    pub memory_bytes: u64,
    /// Tables built (first looks and changed mappings) and the CPU milliseconds they took in
    /// all (part of `own_cost.cpu_ns`).
    pub builds: u64,
    pub build_ms: f64,
    /// The longest a process's samples waited for its table (from its first sample).
    pub slowest_first_table_ms: f64,
    /// Objects the row array had no room for (walked by frame pointers), and processes the
    /// kernel's table of processes had no room for.
    pub objects_without_room: u64,
    pub processes_without_room: u64,
    /// Rows of the objects compiled whose rule the walker cannot evaluate (a DWARF expression
    /// other than the PLT's): it steps by frame pointers there.
    #[serde(default)]
    pub unsupported_rows: u64,
}

/// Wall time of each phase of a `diagnose` run, in milliseconds, in the order they run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// From the process's start (as /proc knows it, to 10 ms) to the command's first step.
    pub startup: f64,
    /// Checks, loading the eBPF programs and attaching them.
    pub attach: f64,
    pub sampling: f64,
    /// Reading the maps once sampling ended.
    pub collect: f64,
    /// Detaching the programs that move counts between maps, reading those, and putting each
    /// process's figures together.
    pub detach: f64,
    /// Waiting for the symbolizer thread (most of its parsing happened during sampling).
    pub symbolize: f64,
    /// Ranking, verdict, timeline.
    pub analyze: f64,
    /// Rendering every output file but report.json itself.
    pub render: f64,
    /// The sum of the above: launch to rendered output.
    pub total: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    /// Every cpu-clock sample taken, idle included.
    pub total: u64,
    /// Samples that found the CPU idle.
    pub idle: u64,
    /// Samples of tasks running in the kernel without a user stack (kernel threads).
    pub kernel_only: u64,
}

/// Nothing is lost silently: every failed capture or insert in the kernel is counted here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Drops {
    pub user_stack_lost: u64,
    pub kernel_stack_lost: u64,
    pub stack_counts_full: u64,
    pub on_cpu_map_full: u64,
    pub runnable_map_full: u64,
    pub sched_map_full: u64,
    pub blame_map_full: u64,
    pub syscalls_map_full: u64,
    /// Syscall exits after the syscall blocked: counted, but their error and time are not.
    pub syscall_exits_unmatched: u64,
    /// A process's name could not be stored in the kernel (it may show as `[unknown]`).
    pub names_map_full: u64,
    /// Run-queue wait older than the per-CPU holder ring: measured, but blamed on nobody.
    pub blame_uncovered_ns: u64,
    pub net_map_full: u64,
    pub faults_map_full: u64,
    pub offcpu_map_full: u64,
    pub io_map_full: u64,
    /// A fork could not be recorded: its child may lack a parent and its parent a spawn.
    #[serde(default)]
    pub forks_map_full: u64,
    /// Written back by a writeback thread for pages dirtied before the run (their dirtier is
    /// unknown): charged to the writeback thread.
    pub writeback_unattributed_bytes: u64,
    /// A sample inside a syscall could not be attributed to its syscall (map full).
    #[serde(default)]
    pub sampled_syscalls_map_full: u64,
    /// An OOM kill could not be recorded (map full).
    #[serde(default)]
    pub oom_kills_map_full: u64,
    /// A user stack walked with unwind tables stopped before its outermost frame (no rule for
    /// an address, unreadable stack memory); the frames found are kept.
    #[serde(default)]
    pub unwind_failed: u64,
    /// A walked user stack had more frames than are kept; the outermost are cut.
    #[serde(default)]
    pub unwind_truncated: u64,
    /// A walked user stack could not be stored; the frame-pointer stack was taken instead.
    #[serde(default)]
    pub unwound_stacks_full: u64,
}

impl Drops {
    /// Every counter above zero, by its report.json name.
    pub fn nonzero(&self) -> Vec<(String, u64)> {
        let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(self) else {
            return Vec::new();
        };
        fields
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.as_u64()?)))
            .filter(|&(_, n)| n > 0)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// Average busy CPUs over the run (sum of every process's `cpu.cores`).
    pub busy_cores: f64,
    pub busy_percent: f64,
    /// Processes seen on a CPU during the run.
    pub processes_seen: usize,
    pub context_switches: u64,
    /// The block device busy the largest share of the run (/proc/diskstats), if any was.
    pub busiest_disk: Option<DiskBusy>,
    /// Share of the run tasks stalled for a CPU, IO or memory (/proc/pressure); null where the
    /// kernel keeps no such figures.
    #[serde(default)]
    pub pressure: Option<HostPressure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskBusy {
    pub device: String,
    /// Share of the run the device had IO in flight (as iostat's %util).
    pub busy_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    /// Clock ticks after boot; with `pid`, the process's identity. 0 when never seen in /proc.
    pub start_time: u64,
    pub comm: String,
    /// Parent pid, from /proc or from the fork seen during the run; null when unknown.
    pub ppid: Option<u32>,
    pub exe: Option<String>,
    pub cmdline: Vec<String>,
    pub cgroup: Option<String>,
    /// The container, pod, systemd unit or login session its cgroups name; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    pub exited: bool,
    /// Child processes it started during the run (processes signal; threads not included).
    pub spawned: u64,
    pub cpu: Cpu,
    /// Null when the sched signal is unavailable or the process never left a CPU in the run.
    pub sched: Option<Sched>,
    /// Null when the syscalls signal is unavailable or off.
    pub syscalls: Option<Syscalls>,
    /// Null when the net signal is unavailable or off.
    pub net: Option<Net>,
    /// Null when the mem signal is unavailable or off.
    pub mem: Option<Mem>,
    /// Null when the io signal is unavailable or off.
    pub io: Option<Io>,
    /// Present when the OOM killer chose it during the run (processes signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_killed: Option<OomKilled>,
}

impl Process {
    /// A kernel thread: only the kernel names a child of `kthreadd` (pid 2), and none has an
    /// executable, so no process passes for one by its name.
    pub fn is_kernel_thread(&self) -> bool {
        self.pid == 2 || (self.ppid == Some(2) && self.exe.is_none())
    }
}

/// What a process held when the OOM killer chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OomKilled {
    /// Anonymous, file and shared memory resident, as the kernel counted it then.
    pub rss_bytes: u64,
}

/// Block IO the process submitted, writeback of pages it dirtied included.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Io {
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Part of `write_bytes` a writeback thread wrote for pages this process dirtied.
    pub writeback_bytes: u64,
    /// Bios submitted.
    pub ops: u64,
    /// Upper bound of the log2 latency bucket (issue to completion) holding the 99th percentile.
    pub p99_latency_ns: u64,
    /// Reads plus writes per second, in bytes.
    pub bytes_per_second: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mem {
    /// Resident set size when last read alive from /proc; null when it never was.
    pub rss_bytes: Option<u64>,
    pub minor_faults: u64,
    pub major_faults: u64,
    /// The largest resident set of its life (`VmHWM`) when last read alive; null when never
    /// read, and in reports written before it was kept.
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
    /// How much the resident set grew (negative: shrank) from the run's first reading of it
    /// to its last; null unless both were read.
    #[serde(default)]
    pub rss_growth_bytes: Option<i64>,
}

/// Bytes through TCP/UDP (inet) sockets, loopback included.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Net {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    /// Sends plus receives per second, in bytes.
    pub bytes_per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Syscalls {
    pub count: u64,
    pub per_second: f64,
    /// Returned a negative errno (of syscalls that did not block; see drops).
    pub errors: u64,
    /// On-CPU time inside syscalls; time blocked in them is not included.
    pub time_ns: u64,
    /// Most frequent syscalls, at most five.
    pub top: Vec<SyscallTop>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyscallTop {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    pub time_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sched {
    /// Total time runnable but waiting for a CPU (wakeup or preemption until switch-in).
    pub runq_wait_ns: u64,
    pub runq_waits: u64,
    /// Upper bounds of the log2 histogram buckets holding the median and 99th percentile wait.
    pub runq_p50_ns: u64,
    pub runq_p99_ns: u64,
    /// Left the CPU to sleep (blocked).
    pub voluntary_switches: u64,
    /// Left the CPU while still runnable (preempted).
    pub involuntary_switches: u64,
    pub ctx_switches: u64,
    /// Time its threads spent asleep (blocked), summed over threads; null when the offcpu
    /// signal is off. Sleeps still going on at the end count until then.
    pub offcpu_ns: Option<u64>,
}

/// What a group of processes used together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub name: String,
    /// How its processes were grouped: see [`AppKind`].
    pub kind: AppKind,
    /// A container's short id, whose name `name` is where the runtime's state gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Processes seen in the run, exited ones included.
    pub processes: u64,
    pub exited: u64,
    pub cpu: AppCpu,
    pub sched: Option<AppSched>,
    pub syscalls: Option<AppSyscalls>,
    pub net: Option<Net>,
    pub io: Option<AppIo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppIo {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub ops: u64,
    pub bytes_per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppCpu {
    pub on_cpu_ns: u64,
    pub cores: f64,
    pub samples: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSched {
    pub runq_wait_ns: u64,
    pub ctx_switches: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSyscalls {
    pub count: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blame {
    pub culprit_pid: u32,
    pub culprit_comm: String,
    pub victim_pid: u32,
    pub victim_comm: String,
    /// Time the victim's threads waited for a CPU that the culprit held when they got it.
    pub delay_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub samples: u64,
    /// Exact on-CPU time from context-switch accounting.
    pub on_cpu_ns: u64,
    /// Average CPUs used over the run: 1.0 = one full core.
    pub cores: f64,
    /// Share of the host's total CPU capacity.
    pub host_percent: f64,
    /// Hottest leaf function and its share of this process's samples.
    pub hottest: Option<Hottest>,
    /// Which syscalls its samples fell inside: sampled, no hook per syscall. Absent without the
    /// cpu signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_syscalls: Option<SampledSyscalls>,
}

/// CPU samples that interrupted a process inside a syscall. Each stands for one sampling
/// period of on-CPU time, so times are estimates: with n samples, the relative error of a
/// figure is about 1/sqrt(n). Counts of calls cannot be had this way (a cheap call is rarely
/// caught), only where the time goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampledSyscalls {
    pub samples: u64,
    /// Share of the process's samples taken inside a syscall.
    pub percent: f64,
    /// Estimated on-CPU time inside syscalls: samples times the sampling period.
    pub est_time_ns: u64,
    /// Busiest syscalls first, at most five.
    pub top: Vec<SampledSyscall>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampledSyscall {
    pub name: String,
    pub samples: u64,
    pub est_time_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hottest {
    pub function: String,
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suspect {
    pub rank: u32,
    pub pid: u32,
    pub comm: String,
    pub resource: Resource,
    pub value: f64,
    pub unit: Unit,
    pub reason: String,
    /// How far over its line the evidence is.
    #[serde(default)]
    pub confidence: Confidence,
    /// The application it stands for, when several of its processes did this together: `pid`
    /// and `comm` are then its busiest process and its name. Null for a process; absent in
    /// reports written before applications were suspects.
    #[serde(default)]
    pub app: Option<SuspectApp>,
}

/// How sure a suspect is: `clear` from twice its line (or the OOM killer's choice), `likely`
/// between the line and twice it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Clear,
    /// Also what reports written before confidences were kept read as.
    #[default]
    Likely,
}

impl Confidence {
    /// Twice the line or more is clear.
    const CLEAR_MARGIN: f64 = 2.0;

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clear => "clear",
            Self::Likely => "likely",
        }
    }
}

/// The processes of an application that together are a suspect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuspectApp {
    pub name: String,
    pub kind: AppKind,
    /// How many processes did it.
    pub processes: u64,
    /// Their pids, busiest first, at most 20.
    pub pids: Vec<u32>,
}

impl Suspect {
    /// A suspect for `resource`, its value in that resource's unit; ranked later.
    pub fn new(pid: u32, comm: &str, resource: Resource, value: f64, reason: String) -> Self {
        Self {
            rank: 0,
            pid,
            comm: comm.to_owned(),
            resource,
            value,
            unit: resource.unit(),
            reason,
            confidence: Confidence::Likely,
            app: None,
        }
    }

    /// With its confidence: `margin` is how many times its line the evidence is (the largest
    /// where several harms were seen, the smallest where it must cross several lines).
    pub fn over(self, margin: f64) -> Self {
        let confidence = if margin >= Confidence::CLEAR_MARGIN {
            Confidence::Clear
        } else {
            Confidence::Likely
        };
        Self { confidence, ..self }
    }
}

/// How processes are grouped into applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// Same command name.
    Comm,
    /// Same cgroup v2 path.
    Cgroup,
    /// Same executable file.
    Exe,
    /// Same systemd service or scope.
    Unit,
    /// Same container (by id).
    Container,
    /// Same Kubernetes pod, for processes no container of it names.
    Pod,
    /// Same login session.
    Session,
}

impl AppKind {
    /// The kind of application a workload makes.
    pub fn of(kind: WorkloadKind) -> Self {
        match kind {
            WorkloadKind::Unit => Self::Unit,
            WorkloadKind::Container => Self::Container,
            WorkloadKind::Pod => Self::Pod,
            WorkloadKind::Session => Self::Session,
        }
    }
}

/// What a suspect takes too much of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Cpu,
    /// Others waited for a CPU it held.
    Sched,
    Syscalls,
    Net,
    Mem,
    Io,
    /// It started processes at a high rate.
    Spawn,
}

impl Resource {
    /// The unit a suspect's value is given in.
    pub fn unit(self) -> Unit {
        match self {
            Self::Cpu => Unit::Cores,
            Self::Sched => Unit::Seconds,
            Self::Syscalls => Unit::SyscallsPerSecond,
            Self::Net | Self::Io => Unit::MegabytesPerSecond,
            Self::Mem => Unit::Gibibytes,
            Self::Spawn => Unit::ProcessesPerSecond,
        }
    }
}

/// A suspect's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unit {
    #[serde(rename = "cores")]
    Cores,
    #[serde(rename = "s")]
    Seconds,
    #[serde(rename = "syscalls/s")]
    SyscallsPerSecond,
    #[serde(rename = "MB/s")]
    MegabytesPerSecond,
    #[serde(rename = "GiB")]
    Gibibytes,
    #[serde(rename = "processes/s")]
    ProcessesPerSecond,
}

/// The report's spelling of each kind, resource and unit, for text outputs.
macro_rules! spelled {
    ($ty:ty { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

spelled!(AppKind {
    Comm => "comm",
    Cgroup => "cgroup",
    Exe => "exe",
    Unit => "unit",
    Container => "container",
    Pod => "pod",
    Session => "session",
});
spelled!(Resource {
    Cpu => "cpu",
    Sched => "sched",
    Syscalls => "syscalls",
    Net => "net",
    Mem => "mem",
    Io => "io",
    Spawn => "spawn",
});
spelled!(Unit {
    Cores => "cores",
    Seconds => "s",
    SyscallsPerSecond => "syscalls/s",
    MegabytesPerSecond => "MB/s",
    Gibibytes => "GiB",
    ProcessesPerSecond => "processes/s",
});

/// What each process used in each bucket of the run (`timeline` in report.json).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Nominal bucket length in seconds; 0 when no timeline was collected (record windows).
    pub interval_s: f64,
    /// Start of each bucket, seconds after sampling began; the last bucket may be shorter.
    pub start_offsets_s: Vec<f64>,
    /// The busiest processes by CPU, then the most waiting ones; values parallel to the offsets.
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub pid: u32,
    pub comm: String,
    /// Average CPUs used in each bucket: 1.0 = one full core.
    pub cpu_cores: Vec<f64>,
    /// Time its threads waited for a CPU per second of the bucket: 1.0 = one thread waiting
    /// the whole bucket.
    pub runq_wait_ratio: Vec<f64>,
}

#[cfg(test)]
mod tests;
