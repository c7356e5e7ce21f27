//! Process lifecycle: exec (new name), fork (who started whom), exit, and the OOM killer's
//! victims.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes},
    programs::{RawTracePointContext, TracePointContext},
};
use profiler_common::{Counter, Fork, OomKill};

use crate::{
    maps::{EXEC_FILES, EXEC_SCRATCH, EXITS, FORKS, OOM_KILLS, bump, remember_exec},
    read::{field, now},
    unwind,
};

/// Offset of `interp` in `struct linux_binprm`, from kernel BTF; 0 (no BTF) records no file.
#[unsafe(no_mangle)]
static BPRM_INTERP_OFFSET: u32 = 0;

/// Offset of `child_pid` in the `sched_process_fork` record; set from its format file.
#[unsafe(no_mangle)]
static FORK_CHILD_PID_OFFSET: u32 = 20;

/// Offsets in the `oom:mark_victim` record; set from its format file.
#[unsafe(no_mangle)]
static OOM_PID_OFFSET: u32 = 8;
#[unsafe(no_mangle)]
static OOM_ANON_RSS_OFFSET: u32 = 24;
#[unsafe(no_mangle)]
static OOM_FILE_RSS_OFFSET: u32 = 32;
#[unsafe(no_mangle)]
static OOM_SHMEM_RSS_OFFSET: u32 = 40;

/// `sched_process_exec` (raw): runs in the exec'ing task, its comm already the new one. Its
/// arguments are the task, its old pid and the `linux_binprm`, whose `interp` is the file run
/// (a script's interpreter).
#[inline(always)]
pub fn exec(ctx: &RawTracePointContext) {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let at = now();
    remember_exec(tgid, at);
    remember_exec_file(ctx, tgid, at);
    unwind::forget(tgid);
}

/// The executed file's path, for a process gone before /proc shows its executable.
#[inline(always)]
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "by value, the 264-byte record would be copied to the program's 512-byte stack"
)]
fn remember_exec_file(ctx: &RawTracePointContext, tgid: u32, at: u64) {
    // SAFETY: a plain read of a global the loader sets.
    let offset = u64::from(unsafe { core::ptr::read_volatile(&BPRM_INTERP_OFFSET) });
    if offset == 0 {
        return;
    }
    let bprm: u64 = ctx.arg(2);
    // SAFETY: the helper checks the address; a failed read leaves nothing recorded.
    let Ok(interp) = (unsafe { bpf_probe_read_kernel((bprm + offset) as *const u64) }) else {
        return;
    };
    let Some(file) = EXEC_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot of a per-CPU array, used by this program alone, which runs to
    // completion without being preempted by itself.
    let file = unsafe { &mut *file };
    file.at = at;
    // SAFETY: the helper checks the source address and bounds the copy by the buffer.
    if unsafe { bpf_probe_read_kernel_str_bytes(interp as *const u8, &mut file.path) }.is_err() {
        return;
    }
    // An LRU map evicts the oldest entry rather than fail; an error is some other failure.
    if EXEC_FILES.insert(tgid, &*file, 0).is_err() {
        bump(Counter::NamesFull);
    }
}

/// `sched_process_exit` (raw): runs in the exiting thread. The main thread's exit marks the
/// process; a map full of unread exits only delays the reader's cleanup, so it is not counted.
#[inline(always)]
pub fn exit() {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if pid_tgid as u32 == tgid {
        let _ = EXITS.insert(tgid, now(), 0);
        unwind::forget(tgid);
    }
}

/// `sched:sched_process_fork`: runs in the parent.
#[inline(always)]
pub fn fork(ctx: &TracePointContext) {
    let Some(child) = field::<u32>(ctx, &FORK_CHILD_PID_OFFSET) else {
        return;
    };
    let fork = Fork {
        at: now(),
        parent_tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
        _pad: 0,
    };
    if FORKS.insert(child, fork, 0).is_err() {
        bump(Counter::ForksFull);
    }
}

/// `oom:mark_victim`: the OOM killer chose this process; runs in whichever task ran the killer.
/// The record gives the victim's pid and its resident memory in KiB.
#[inline(always)]
pub fn oom_victim(ctx: &TracePointContext) {
    let Some(pid) = field::<i32>(ctx, &OOM_PID_OFFSET) else {
        return;
    };
    let kib = |global| field::<u64>(ctx, global).unwrap_or(0);
    let kill = OomKill {
        at: now(),
        rss_kib: kib(&OOM_ANON_RSS_OFFSET) + kib(&OOM_FILE_RSS_OFFSET) + kib(&OOM_SHMEM_RSS_OFFSET),
    };
    if OOM_KILLS.insert(pid as u32, kill, 0).is_err() {
        bump(Counter::OomKillsFull);
    }
}
