//! Types, map names and limits shared by the eBPF programs and the userspace loader.
#![no_std]

/// Hash map `StackKey -> u64` sample count, aggregated in the kernel.
pub const MAP_STACK_COUNTS: &str = "STACK_COUNTS";
/// Stack trace map `stack id -> [ip; 127]`, shared by user and kernel stacks.
pub const MAP_STACKS: &str = "STACKS";
/// Per-CPU hash `tgid -> on-CPU nanoseconds`.
pub const MAP_ONCPU: &str = "ONCPU";
/// Hash `tgid -> TaskComm`, filled the first time a tgid is seen on a CPU.
pub const MAP_COMMS: &str = "COMMS";
/// Per-CPU array of `u64` counters, indexed by [`Counter`].
pub const MAP_COUNTERS: &str = "COUNTERS";
/// Per-CPU array with one `u64`: when the CPU last switched tasks (or was last sampled).
pub const MAP_LAST_SWITCH: &str = "LAST_SWITCH";

/// Program names, as the eBPF functions are called.
pub const PROG_CPU_SAMPLE: &str = "cpu_sample";
pub const PROG_SCHED_SWITCH: &str = "sched_switch";

/// Distinct (process, user stack, kernel stack) triples kept per run.
pub const STACK_COUNTS_ENTRIES: u32 = 32_768;
/// Distinct stacks kept; a full stack map makes `bpf_get_stackid` fail, which is counted.
pub const STACKS_ENTRIES: u32 = 32_768;
/// Distinct processes tracked for on-CPU time and comm.
pub const PROCESS_ENTRIES: u32 = 32_768;

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
}

impl Counter {
    pub const COUNT: u32 = 8;
    pub const ALL: [Counter; Self::COUNT as usize] = [
        Counter::Samples,
        Counter::IdleSamples,
        Counter::NoUserStack,
        Counter::UserStackLost,
        Counter::KernelStackLost,
        Counter::StackCountsFull,
        Counter::OnCpuFull,
        Counter::Switches,
    ];
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: repr(C), three u32-sized fields, no padding, every bit pattern valid.
    unsafe impl aya::Pod for super::StackKey {}
}
