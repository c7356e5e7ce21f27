//! Types, map names and limits shared by the eBPF programs and the userspace loader.
#![no_std]

mod unwind;
pub use unwind::*;

/// Hash map `StackKey -> u64` sample count, aggregated in the kernel.
pub const MAP_STACK_COUNTS: &str = "STACK_COUNTS";
/// Stack trace map `stack id -> [ip; 127]`, shared by user and kernel stacks.
pub const MAP_STACKS: &str = "STACKS";
/// Per-CPU hash `tgid -> on-CPU nanoseconds`.
pub const MAP_ONCPU: &str = "ONCPU";
/// Hash `tgid -> ProcName`, filled the first time a tgid is seen on a CPU.
pub const MAP_COMMS: &str = "COMMS";
/// Hash `child tid -> Fork`: who started each task during the run (threads included; userspace
/// keeps the children that turned out to be processes).
pub const MAP_FORKS: &str = "FORKS";
pub const MAP_OOM_KILLS: &str = "OOM_KILLS";
/// Hash `tgid -> ExecInfo`, written at every exec, so a process discovered before its exec is
/// renamed, even when it exits before /proc shows the new program.
pub const MAP_EXECS: &str = "EXECS";
/// LRU hash `tgid -> ExecFile`, written at every exec where kernel BTF gives the offset of
/// `linux_binprm.interp`: the file a process executed, kept for processes gone before
/// /proc showed their executable.
pub const MAP_EXEC_FILES: &str = "EXEC_FILES";
/// Hash `tgid -> kernel time` of processes whose main thread exited, so a long-running reader
/// can drop their state without polling /proc; the reader deletes what it has handled.
pub const MAP_EXITS: &str = "EXITS";
/// Per-CPU array of `u64` counters, indexed by [`Counter`].
pub const MAP_COUNTERS: &str = "COUNTERS";
/// Per-CPU array with one `u64`: when the CPU last switched tasks (or was last sampled).
pub const MAP_LAST_SWITCH: &str = "LAST_SWITCH";

/// LRU hash `tid -> Runnable`: the thread's tgid and since when it has been runnable.
pub const MAP_RUNNABLE_SINCE: &str = "RUNNABLE_SINCE";
/// Per-CPU array with one [`History`]: who held this CPU lately, to blame waits on.
pub const MAP_HISTORY: &str = "HISTORY";
/// Hash `tgid -> SchedStats`.
pub const MAP_SCHED: &str = "SCHED";
/// Hash `BlameKey -> nanoseconds` the victim waited while the culprit held its CPU.
pub const MAP_BLAME: &str = "BLAME";

/// Per-CPU hash `SyscallKey -> SyscallStats`, flushed from [`MAP_SYSCALL_PENDING`].
pub const MAP_SYSCALLS: &str = "SYSCALLS";
/// Hash `SyscallKey -> u64`: CPU samples taken inside each syscall of each process.
pub const MAP_SAMPLED_SYSCALLS: &str = "SAMPLED_SYSCALLS";
/// Syscall numbers are below this (x86_64 has ~470); a larger `orig_ax` is not a syscall.
pub const MAX_SYSCALL_NR: u32 = 1024;
/// Per-CPU array with one [`PendingSyscalls`]: the current process's syscalls on this CPU,
/// counted without a hash operation and flushed at context switches.
pub const MAP_SYSCALL_PENDING: &str = "SYSCALL_PENDING";

/// Hash `StackKey -> nanoseconds` threads spent blocked (asleep, not runnable) after leaving
/// a CPU with that stack.
pub const MAP_OFFCPU: &str = "OFFCPU";

/// Hash `tgid -> IoStats`: block IO charged to the process that submitted it.
pub const MAP_IO: &str = "IO";
/// LRU hash `IoKey -> IoPending`: block IO queued and not yet completed.
pub const MAP_IO_PENDING: &str = "IO_PENDING";
/// Hash `tid -> inode number` of the inode a writeback thread is writing back right now.
pub const MAP_WRITEBACK_INODE: &str = "WRITEBACK_INODE";
/// LRU hash `inode number -> tgid` of the process that last dirtied a page of the inode.
pub const MAP_DIRTIER: &str = "DIRTIER";

/// Per-CPU hash `tgid -> FaultStats`: page faults from the software perf events.
pub const MAP_FAULTS: &str = "FAULTS";
/// Per-CPU hash `tgid -> NetStats`: bytes through inet sockets.
pub const MAP_NET: &str = "NET";

/// Program names, as the eBPF functions are called.
pub const PROG_CPU_SAMPLE: &str = "cpu_sample";
/// Raw tracepoint fallback: on-CPU time only, needs no tracefs.
pub const PROG_SCHED_SWITCH: &str = "sched_switch";
/// Classic tracepoint: on-CPU time plus run-queue wait, switches and blame.
pub const PROG_SCHED_SWITCH_TP: &str = "sched_switch_tp";
pub const PROG_SCHED_WAKEUP: &str = "sched_wakeup";
pub const PROG_SCHED_WAKEUP_NEW: &str = "sched_wakeup_new";
pub const PROG_SCHED_PROCESS_EXEC: &str = "sched_process_exec";
pub const PROG_SCHED_PROCESS_FORK: &str = "sched_process_fork";
pub const PROG_OOM_MARK_VICTIM: &str = "oom_mark_victim";
pub const PROG_SCHED_PROCESS_EXIT: &str = "sched_process_exit";
pub const PROG_FAULT_MINOR: &str = "page_fault_minor";
pub const PROG_FAULT_MAJOR: &str = "page_fault_major";
pub const PROG_SOCK_SEND: &str = "sock_send_length";
pub const PROG_SOCK_RECV: &str = "sock_recv_length";
/// The same events as raw tracepoints, where kernel BTF gives the socket family's offset.
pub const PROG_SOCK_SEND_RAW: &str = "sock_send_raw";
pub const PROG_SOCK_RECV_RAW: &str = "sock_recv_raw";
pub const PROG_SYS_ENTER: &str = "sys_enter";
pub const PROG_SYS_EXIT: &str = "sys_exit";
pub const PROG_BIO_QUEUE: &str = "block_bio_queue";
pub const PROG_RQ_ISSUE: &str = "block_rq_issue";
pub const PROG_RQ_COMPLETE: &str = "block_rq_complete";
pub const PROG_DIRTY_FOLIO: &str = "writeback_dirty_folio";
pub const PROG_WRITEBACK_START: &str = "writeback_single_inode_start";
pub const PROG_WRITEBACK_END: &str = "writeback_single_inode";

/// Globals patched at load time with field offsets read from the tracepoints' `format` files.
pub const GLOBAL_SWITCH_PREV_STATE: &str = "SWITCH_PREV_STATE_OFFSET";
pub const GLOBAL_SWITCH_NEXT_PID: &str = "SWITCH_NEXT_PID_OFFSET";
pub const GLOBAL_WAKEUP_PID: &str = "WAKEUP_PID_OFFSET";
pub const GLOBAL_FORK_CHILD_PID: &str = "FORK_CHILD_PID_OFFSET";
pub const GLOBAL_OOM_PID: &str = "OOM_PID_OFFSET";
pub const GLOBAL_OOM_ANON_RSS: &str = "OOM_ANON_RSS_OFFSET";
pub const GLOBAL_OOM_FILE_RSS: &str = "OOM_FILE_RSS_OFFSET";
pub const GLOBAL_OOM_SHMEM_RSS: &str = "OOM_SHMEM_RSS_OFFSET";
/// Offsets in the `sock:sock_{send,recv}_length` records (both share one layout).
pub const GLOBAL_SOCK_FAMILY: &str = "SOCK_FAMILY_OFFSET";
pub const GLOBAL_SOCK_RET: &str = "SOCK_RET_OFFSET";
pub const GLOBAL_SOCK_FLAGS: &str = "SOCK_FLAGS_OFFSET";
/// Offset of `interp` in `struct linux_binprm`, from kernel BTF, for the exec raw
/// tracepoint; 0 leaves executed files unrecorded.
pub const GLOBAL_BPRM_INTERP: &str = "BPRM_INTERP_OFFSET";
/// Offset of the family in `struct sock`, from kernel BTF, for the raw socket tracepoints.
pub const GLOBAL_SKC_FAMILY: &str = "SKC_FAMILY_OFFSET";
/// `u32`: 1 when the sampler takes stacks (`cpu` signal); 0 keeps it as an on-CPU tick only.
pub const GLOBAL_SAMPLE_STACKS: &str = "SAMPLE_STACKS";
/// `u32`: 1 when threads going to sleep get their stacks taken (`offcpu` signal).
pub const GLOBAL_OFFCPU_STACKS: &str = "OFFCPU_STACKS";
/// Offsets shared by the `block:block_bio_queue`, `block_rq_issue` and `block_rq_complete`
/// records, and of `rwbs` in `block_bio_queue`.
pub const GLOBAL_BLOCK_DEV: &str = "BLOCK_DEV_OFFSET";
pub const GLOBAL_BLOCK_SECTOR: &str = "BLOCK_SECTOR_OFFSET";
pub const GLOBAL_BLOCK_NR_SECTOR: &str = "BLOCK_NR_SECTOR_OFFSET";
pub const GLOBAL_BIO_RWBS: &str = "BIO_RWBS_OFFSET";
/// Offset of `ino` in the writeback records (`writeback_dirty_folio`, `_single_inode*`).
pub const GLOBAL_WRITEBACK_INO: &str = "WRITEBACK_INO_OFFSET";
/// `u32`: 1 when `sys_exit` is attached and entries must be time-stamped.
pub const GLOBAL_SYSCALL_EXITS: &str = "SYSCALL_EXITS";

/// Threads that can be runnable-but-waiting at once.
pub const RUNNABLE_ENTRIES: u32 = 65_536;
/// (process, syscall) pairs kept.
pub const SYSCALL_ENTRIES: u32 = 32_768;
/// Distinct syscalls one process may make between two flushes before an early flush.
pub const PENDING_SYSCALLS: usize = 8;

/// (process, stack) pairs of off-CPU time kept.
pub const OFFCPU_ENTRIES: u32 = 32_768;
/// Block IOs in flight that can be matched to their completion.
pub const IO_PENDING_ENTRIES: u32 = 16_384;
/// Inodes whose last dirtier is remembered, to charge their writeback to it.
pub const DIRTIER_ENTRIES: u32 = 65_536;
/// log2 buckets of block IO latency, as [`WAIT_BUCKETS`].
pub const IO_LATENCY_BUCKETS: usize = 32;

/// (culprit, victim) pairs kept.
pub const BLAME_ENTRIES: u32 = 65_536;
/// log2 buckets of run-queue wait: bucket i counts waits in [2^i, 2^(i+1)) ns; the last one
/// also holds everything longer.
pub const WAIT_BUCKETS: usize = 32;

/// Distinct (process, user stack, kernel stack) triples kept per run.
pub const STACK_COUNTS_ENTRIES: u32 = 32_768;
/// Distinct stacks kept; a full stack map makes `bpf_get_stackid` fail, which is counted.
pub const STACKS_ENTRIES: u32 = 32_768;
/// Distinct processes tracked for on-CPU time and comm.
pub const PROCESS_ENTRIES: u32 = 32_768;
/// Executed files kept at once (LRU): the execs between two reads of the map (250 ms in
/// `diagnose`) must fit; 4096 of 264 bytes is about 1 MiB of kernel memory.
pub const EXEC_FILES_ENTRIES: u32 = 4096;
/// Bytes of an executed file's path kept, its terminating NUL included: longer ones are cut.
pub const EXEC_FILE_LEN: usize = 256;

/// Stack id recorded when a stack could not be captured; the sample itself is still counted.
pub const NO_STACK: i32 = -1;

/// Key of the in-kernel sample aggregation.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackKey {
    pub tgid: u32,
    /// Id in [`MAP_STACKS`], or [`NO_STACK`].
    pub user_stack_id: i32,
    /// Id in [`MAP_STACKS`], or [`NO_STACK`].
    pub kernel_stack_id: i32,
}

/// `task_struct.comm`, NUL padded.
pub type TaskComm = [u8; 16];

/// Indices of the per-CPU counter array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Every sample the perf event delivered, idle included.
    Samples = 0,
    /// Samples that hit the idle task (pid 0); kept out of process rankings.
    IdleSamples = 1,
    /// Samples of tasks without a user address space (kernel threads): no user stack to take.
    NoUserStack = 2,
    /// Drop: the user stack could not be stored (stack map full or hash collision).
    UserStackLost = 3,
    /// Drop: the kernel stack could not be stored.
    KernelStackLost = 4,
    /// Drop: a sample could not be inserted because [`MAP_STACK_COUNTS`] was full.
    StackCountsFull = 5,
    /// Drop: on-CPU time could not be recorded because [`MAP_ONCPU`] was full.
    OnCpuFull = 6,
    /// Context switches seen.
    Switches = 7,
    /// Drop: a thread's runnable timestamp could not be stored ([`MAP_RUNNABLE_SINCE`] full).
    RunnableFull = 8,
    /// Drop: a process's scheduler stats could not be stored ([`MAP_SCHED`] full).
    SchedFull = 9,
    /// Drop: a blame pair could not be stored ([`MAP_BLAME`] full).
    BlameFull = 10,
    /// Drop: syscall counts could not be flushed ([`MAP_SYSCALLS`] full).
    SyscallsFull = 11,
    /// Syscall exits whose entry was not the last one on their CPU (the syscall blocked and
    /// another thread ran): their error and time are not counted, their count is.
    SyscallExitsUnmatched = 12,
    /// Drop: a process's name or executed file could not be stored ([`MAP_COMMS`],
    /// [`MAP_EXECS`] or [`MAP_EXEC_FILES`] full).
    NamesFull = 13,
    /// Nanoseconds of run-queue wait older than the CPU's holder ring: waited, not blamed.
    BlameUncoveredNs = 14,
    /// Drop: a fork could not be recorded ([`MAP_FORKS`] full).
    ForksFull = 15,
    /// Drop: a process's network bytes could not be stored ([`MAP_NET`] full).
    NetFull = 16,
    /// Drop: a process's page faults could not be stored ([`MAP_FAULTS`] full).
    FaultsFull = 17,
    /// Drop: blocked time could not be stored ([`MAP_OFFCPU`] full).
    OffCpuFull = 18,
    /// Drop: a process's block IO could not be stored ([`MAP_IO`] full).
    IoFull = 19,
    /// Bytes of write IO from writeback threads whose inode's dirtier is unknown (dirtied before
    /// the run): charged to the writeback thread.
    WritebackUnattributedBytes = 20,
    /// Drop: a sample inside a syscall could not be counted ([`MAP_SAMPLED_SYSCALLS`] full).
    SampledSyscallsFull = 21,
    /// Drop: an OOM kill could not be recorded ([`MAP_OOM_KILLS`] full).
    OomKillsFull = 22,
    /// Samples whose user stack was walked with unwind tables.
    Unwound = 23,
    /// Samples of a process without its table yet: walked with frame pointers.
    UnwindNoTable = 24,
    /// Drop: a walk stopped before the outermost frame (no row for an address, a rule it cannot
    /// evaluate, unreadable stack memory); the frames found are kept.
    UnwindFailed = 25,
    /// Drop: a walk reached [`UNWIND_MAX_FRAMES`]; the outermost frames are cut.
    UnwindTruncated = 26,
    /// Drop: a walked stack could not be stored ([`MAP_UNWOUND_STACKS`] full, or its slots
    /// taken): walked with frame pointers instead.
    UnwoundStacksFull = 27,
    /// Walks that found some frame by frame pointers: code without a row (JIT code, the vDSO,
    /// a binary without call frame information, or a rule the walker cannot evaluate).
    UnwindFellBack = 28,
}

impl Counter {
    pub const COUNT: u32 = 29;
    pub const ALL: [Counter; Self::COUNT as usize] = [
        Counter::Samples,
        Counter::IdleSamples,
        Counter::NoUserStack,
        Counter::UserStackLost,
        Counter::KernelStackLost,
        Counter::StackCountsFull,
        Counter::OnCpuFull,
        Counter::Switches,
        Counter::RunnableFull,
        Counter::SchedFull,
        Counter::BlameFull,
        Counter::SyscallsFull,
        Counter::SyscallExitsUnmatched,
        Counter::NamesFull,
        Counter::BlameUncoveredNs,
        Counter::ForksFull,
        Counter::NetFull,
        Counter::FaultsFull,
        Counter::OffCpuFull,
        Counter::IoFull,
        Counter::WritebackUnattributedBytes,
        Counter::SampledSyscallsFull,
        Counter::OomKillsFull,
        Counter::Unwound,
        Counter::UnwindNoTable,
        Counter::UnwindFailed,
        Counter::UnwindTruncated,
        Counter::UnwoundStacksFull,
        Counter::UnwindFellBack,
    ];
}

/// A thread's process, since when it has been runnable (0: running or asleep), and since when
/// it has been asleep with which stack (`offcpu` signal).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runnable {
    pub since: u64,
    /// 0 while running or runnable, or when off-CPU stacks are not taken.
    pub blocked_since: u64,
    /// 0 until the thread has left a CPU once while probes were attached.
    pub tgid: u32,
    /// Stacks at the moment it went to sleep, ids in [`MAP_STACKS`] or [`NO_STACK`].
    pub user_stack_id: i32,
    pub kernel_stack_id: i32,
    pub _pad: u32,
}

impl Runnable {
    /// Neither runnable nor known asleep, process not known yet.
    pub const NEW: Self = Self {
        since: 0,
        blocked_since: 0,
        tgid: 0,
        user_stack_id: NO_STACK,
        kernel_stack_id: NO_STACK,
        _pad: 0,
    };
}

/// One stretch of a CPU held by one process (tgid 0: idle).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub start: u64,
    pub end: u64,
    pub tgid: u32,
    pub _pad: u32,
}

/// Segments kept per CPU. A wait longer than these stretches is blamed only for the part they
/// cover; 16 covers a run queue of several CPU hogs at the default 3 ms slices.
pub const HISTORY_SEGMENTS: usize = 16;

/// Recent holders of one CPU, a ring written at each context switch.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct History {
    /// When the current holder got the CPU (0 before the first switch seen).
    pub switched_at: u64,
    /// Next slot to write.
    pub next: u64,
    pub segments: [Segment; HISTORY_SEGMENTS],
}

/// Scheduler figures of one process, summed over its threads.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedStats {
    /// Time runnable but not running: wakeup or preemption until switch-in.
    pub runq_wait_ns: u64,
    pub runq_waits: u64,
    /// Switched out to sleep (it blocked).
    pub voluntary_switches: u64,
    /// Switched out while still runnable (preempted).
    pub involuntary_switches: u64,
    pub wait_hist: [u64; WAIT_BUCKETS],
}

impl SchedStats {
    pub const ZERO: Self = Self {
        runq_wait_ns: 0,
        runq_waits: 0,
        voluntary_switches: 0,
        involuntary_switches: 0,
        wait_hist: [0; WAIT_BUCKETS],
    };
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlameKey {
    pub culprit_tgid: u32,
    pub victim_tgid: u32,
}

/// Block IO charged to one process.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoStats {
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Bios submitted: reads plus writes.
    pub ops: u64,
    /// Part of `write_bytes` a writeback thread submitted for pages this process dirtied.
    pub writeback_bytes: u64,
    /// Completed requests matched to their issue, and their latency.
    pub completions: u64,
    pub latency_ns: u64,
    pub latency_hist: [u64; IO_LATENCY_BUCKETS],
}

impl IoStats {
    pub const ZERO: Self = Self {
        read_bytes: 0,
        write_bytes: 0,
        ops: 0,
        writeback_bytes: 0,
        completions: 0,
        latency_ns: 0,
        latency_hist: [0; IO_LATENCY_BUCKETS],
    };
}

/// A block IO in flight: device and first sector, as the block tracepoints report them.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoKey {
    pub dev: u32,
    pub _pad: u32,
    pub sector: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoPending {
    /// Queued, then issued to the device driver: latency is counted from the later.
    pub at: u64,
    pub tgid: u32,
    pub _pad: u32,
}

/// Page faults of one process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Served without IO (e.g. first touch of anonymous memory).
    pub minor: u64,
    /// Needed IO (e.g. reading a mapped file, swap-in).
    pub major: u64,
}

/// Bytes a process moved through inet (IPv4 and IPv6) sockets, loopback included.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_calls: u64,
    pub rx_calls: u64,
}

/// A process's name and cgroup as the kernel saw them, for processes gone before /proc is read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcName {
    /// cgroup v2 id (the inode number of its directory under /sys/fs/cgroup).
    pub cgroup_id: u64,
    pub comm: TaskComm,
}

/// The last exec of a process: when, and the name it took.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecInfo {
    pub at: u64,
    pub name: ProcName,
}

/// The file a process executed, as passed to exec (absolute or relative to its directory then),
/// NUL-terminated, cut at [`EXEC_FILE_LEN`] - 1 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecFile {
    /// Kernel time of the exec, as in [`ExecInfo`].
    pub at: u64,
    pub path: [u8; EXEC_FILE_LEN],
}

/// A process the OOM killer chose: when, and the memory it held then.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomKill {
    pub at: u64,
    /// Anonymous, file and shared memory resident when it was chosen, in KiB.
    pub rss_kib: u64,
}

/// OOM kills a window can hold before they are read: each is a process killed.
pub const OOM_KILLS_ENTRIES: u32 = 1024;

/// One task started during the run.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fork {
    pub at: u64,
    pub parent_tgid: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SyscallKey {
    pub tgid: u32,
    pub nr: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallStats {
    pub count: u64,
    /// Returned a negative errno.
    pub errors: u64,
    /// On-CPU time between entry and exit; time blocked inside the syscall is not included.
    pub time_ns: u64,
}

/// Syscalls of the process now running on one CPU, not yet in [`MAP_SYSCALLS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingSyscalls {
    pub tgid: u32,
    /// Slots in use.
    pub used: u32,
    pub nrs: [u32; PENDING_SYSCALLS],
    pub stats: [SyscallStats; PENDING_SYSCALLS],
    /// Thread inside a syscall on this CPU (0: none), its slot and entry time.
    pub entered_tid: u32,
    pub entered_slot: u32,
    pub entered_at: u64,
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: repr(C), three u32-sized fields, no padding, every bit pattern valid.
    unsafe impl aya::Pod for super::StackKey {}
    // SAFETY: repr(C), two u64 then four 32-bit fields (the last an explicit pad).
    unsafe impl aya::Pod for super::Runnable {}
    // SAFETY: repr(C), only u64 fields.
    unsafe impl aya::Pod for super::IoStats {}
    // SAFETY: repr(C), u32 + explicit u32 pad + u64.
    unsafe impl aya::Pod for super::IoKey {}
    // SAFETY: repr(C), u64 + u32 + explicit u32 pad.
    unsafe impl aya::Pod for super::IoPending {}
    // SAFETY: repr(C), only u64 fields.
    unsafe impl aya::Pod for super::SchedStats {}
    // SAFETY: repr(C), two u32, no padding.
    unsafe impl aya::Pod for super::BlameKey {}
    // SAFETY: repr(C), two u32, no padding.
    unsafe impl aya::Pod for super::SyscallKey {}
    // SAFETY: repr(C), u64 then 16 bytes, no padding.
    unsafe impl aya::Pod for super::ProcName {}
    // SAFETY: repr(C), only u64 fields.
    unsafe impl aya::Pod for super::NetStats {}
    // SAFETY: repr(C), only u64 fields.
    unsafe impl aya::Pod for super::FaultStats {}
    // SAFETY: repr(C), u64 then a padding-free ProcName.
    unsafe impl aya::Pod for super::ExecInfo {}
    // SAFETY: repr(C), u64 then bytes (a multiple of 8 long), no padding.
    unsafe impl aya::Pod for super::ExecFile {}
    // SAFETY: repr(C), u64, u32 and an explicit u32 pad.
    unsafe impl aya::Pod for super::Fork {}
    // SAFETY: repr(C), only u64 fields.
    unsafe impl aya::Pod for super::OomKill {}
    // SAFETY: repr(C), only u64 fields.
    unsafe impl aya::Pod for super::SyscallStats {}
    // SAFETY: repr(C); u32 fields come in pairs before the u64 ones, so there is no padding.
    unsafe impl aya::Pod for super::PendingSyscalls {}
}
