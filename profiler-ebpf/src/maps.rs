//! Maps shared by the programs, and the small helpers every signal uses to update them.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_comm},
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, StackTrace},
};
use profiler_common::{
    BLAME_ENTRIES, BlameKey, Counter, DIRTIER_ENTRIES, EXEC_FILES_ENTRIES, ExecFile, ExecInfo,
    FaultStats, Fork, History, IO_PENDING_ENTRIES, IoKey, IoPending, IoStats, NetStats,
    OFFCPU_ENTRIES, OOM_KILLS_ENTRIES, OomKill, PROCESS_ENTRIES, PendingSyscalls, ProcName,
    RUNNABLE_ENTRIES, Runnable, STACK_COUNTS_ENTRIES, STACKS_ENTRIES, SYSCALL_ENTRIES, SchedStats,
    StackKey, SyscallKey, SyscallStats,
};

#[map]
pub static STACK_COUNTS: HashMap<StackKey, u64> =
    HashMap::with_max_entries(STACK_COUNTS_ENTRIES, 0);

#[map]
pub static STACKS: StackTrace = StackTrace::with_max_entries(STACKS_ENTRIES, 0);

#[map]
pub static ONCPU: PerCpuHashMap<u32, u64> = PerCpuHashMap::with_max_entries(PROCESS_ENTRIES, 0);

#[map]
pub static COMMS: HashMap<u32, ProcName> = HashMap::with_max_entries(PROCESS_ENTRIES, 0);

#[map]
pub static FORKS: HashMap<u32, Fork> = HashMap::with_max_entries(RUNNABLE_ENTRIES, 0);

#[map]
pub static EXITS: HashMap<u32, u64> = HashMap::with_max_entries(PROCESS_ENTRIES, 0);

#[map]
pub static OOM_KILLS: HashMap<u32, OomKill> = HashMap::with_max_entries(OOM_KILLS_ENTRIES, 0);

#[map]
pub static EXECS: HashMap<u32, ExecInfo> = HashMap::with_max_entries(PROCESS_ENTRIES, 0);

/// LRU: `diagnose` and `top` never sweep it, and an entry is only needed until the reader's
/// next look; preallocated, as maps written from tracepoints must be on older kernels.
#[map]
pub static EXEC_FILES: LruHashMap<u32, ExecFile> =
    LruHashMap::with_max_entries(EXEC_FILES_ENTRIES, 0);

/// Where an exec's file name is built: too large for the program's stack next to the rest.
#[map]
pub static EXEC_SCRATCH: PerCpuArray<ExecFile> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Counter::COUNT, 0);

#[map]
pub static LAST_SWITCH: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// LRU: entries of threads that exited are evicted instead of filling the map.
#[map]
pub static RUNNABLE_SINCE: LruHashMap<u32, Runnable> =
    LruHashMap::with_max_entries(RUNNABLE_ENTRIES, 0);

#[map]
pub static HISTORY: PerCpuArray<History> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static SCHED: HashMap<u32, SchedStats> = HashMap::with_max_entries(PROCESS_ENTRIES, 0);

#[map]
pub static BLAME: HashMap<BlameKey, u64> = HashMap::with_max_entries(BLAME_ENTRIES, 0);

#[map]
pub static OFFCPU: HashMap<StackKey, u64> = HashMap::with_max_entries(OFFCPU_ENTRIES, 0);

#[map]
pub static IO: HashMap<u32, IoStats> = HashMap::with_max_entries(PROCESS_ENTRIES, 0);

/// LRU: a bio merged into another's request never completes under its own sector; its entry
/// is evicted rather than filling the map.
#[map]
pub static IO_PENDING: LruHashMap<IoKey, IoPending> =
    LruHashMap::with_max_entries(IO_PENDING_ENTRIES, 0);

#[map]
pub static WRITEBACK_INODE: HashMap<u32, u64> = HashMap::with_max_entries(RUNNABLE_ENTRIES, 0);

#[map]
pub static DIRTIER: LruHashMap<u64, u32> = LruHashMap::with_max_entries(DIRTIER_ENTRIES, 0);

#[map]
pub static FAULTS: PerCpuHashMap<u32, FaultStats> =
    PerCpuHashMap::with_max_entries(PROCESS_ENTRIES, 0);

#[map]
pub static NET: PerCpuHashMap<u32, NetStats> = PerCpuHashMap::with_max_entries(PROCESS_ENTRIES, 0);

#[map]
pub static SYSCALLS: PerCpuHashMap<SyscallKey, SyscallStats> =
    PerCpuHashMap::with_max_entries(SYSCALL_ENTRIES, 0);

/// CPU samples taken inside a syscall, per (process, syscall): the sampled syscall attribution.
#[map]
pub static SAMPLED_SYSCALLS: HashMap<SyscallKey, u64> =
    HashMap::with_max_entries(SYSCALL_ENTRIES, 0);

#[map]
pub static SYSCALL_PENDING: PerCpuArray<PendingSyscalls> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
pub fn bump(counter: Counter) {
    bump_by(counter, 1);
}

#[inline(always)]
pub fn bump_by(counter: Counter, by: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot; programs on one CPU do not preempt each other here.
        unsafe { *slot += by };
    }
}

/// The BPF target has no compare-and-swap, so `AtomicU64::fetch_add` is not offered; the intrinsic
/// lowers to the BPF atomic add instruction.
#[inline(always)]
pub fn atomic_add(value: *mut u64, delta: u64) {
    // SAFETY: `value` points to a live, aligned u64 map value that several CPUs add to.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(value, delta) };
}

/// Adds `delta` to a shared hash value, inserting it if absent. Returns false when the map is full.
#[inline(always)]
pub fn add_shared<K>(map: &HashMap<K, u64>, key: &K, delta: u64) -> bool {
    if let Some(value) = map.get_ptr_mut(key) {
        atomic_add(value, delta);
        return true;
    }
    if map.insert(key, delta, u64::from(BPF_NOEXIST)).is_ok() {
        return true;
    }
    // Another CPU may have inserted the key between lookup and insert.
    match map.get_ptr_mut(key) {
        Some(value) => {
            atomic_add(value, delta);
            true
        }
        None => false,
    }
}

/// Adds `delta` to this CPU's slot of a per-CPU hash value. Returns `Some(true)` when the key was
/// new, `None` when the map is full.
#[inline(always)]
pub fn add_per_cpu(map: &PerCpuHashMap<u32, u64>, key: &u32, delta: u64) -> Option<bool> {
    add_per_cpu_with(map, key, delta, |value, delta| *value += delta)
}

/// Adds `delta` into this CPU's slot with `add`, inserting it if absent; an insert that loses
/// the race with another CPU's insert adds into the entry that won. `None` when the map is full.
#[inline(always)]
pub fn add_per_cpu_with<K, V: Copy>(
    map: &PerCpuHashMap<K, V>,
    key: &K,
    delta: V,
    add: impl Fn(&mut V, V),
) -> Option<bool> {
    if let Some(value) = map.get_ptr_mut(key) {
        // SAFETY: this CPU's slot; no other CPU writes it.
        add(unsafe { &mut *value }, delta);
        return Some(false);
    }
    if map.insert(key, delta, u64::from(BPF_NOEXIST)).is_ok() {
        return Some(true);
    }
    let value = map.get_ptr_mut(key)?;
    // SAFETY: as above.
    add(unsafe { &mut *value }, delta);
    Some(false)
}

/// The current task's name and cgroup.
#[inline(always)]
fn current_name() -> Option<ProcName> {
    let comm = bpf_get_current_comm().ok()?;
    // SAFETY: helper without preconditions.
    let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    Some(ProcName { cgroup_id, comm })
}

/// Remembers the name of `tgid` the first time the process is seen, so it has one even when
/// it exits before userspace looks at /proc.
#[inline(always)]
pub fn remember_comm(tgid: u32) {
    if let Some(name) = current_name() {
        // EEXIST is expected (another CPU named it first); only a full map is a loss.
        if COMMS.insert(tgid, name, u64::from(BPF_NOEXIST)).is_err()
            && COMMS.get_ptr(tgid).is_none()
        {
            bump(Counter::NamesFull);
        }
    }
}

/// At exec: the process's new name, and when it changed.
#[inline(always)]
pub fn remember_exec(tgid: u32, at: u64) {
    if let Some(name) = current_name()
        && (EXECS.insert(tgid, ExecInfo { at, name }, 0).is_err()
            || COMMS.insert(tgid, name, 0).is_err())
    {
        bump(Counter::NamesFull);
    }
}
