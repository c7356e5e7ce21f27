//! Process lifecycle: exec (new name), fork (who started whom), exit, and the OOM killer's
//! victims.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, programs::TracePointContext};
use profiler_common::{Counter, Fork, OomKill};

use crate::{
    maps::{EXITS, FORKS, OOM_KILLS, bump, remember_exec},
    read::{field, now},
};

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

/// `sched_process_exec` (raw): runs in the exec'ing task, its comm already the new one.
#[inline(always)]
pub fn exec() {
    remember_exec((bpf_get_current_pid_tgid() >> 32) as u32, now());
}

/// `sched_process_exit` (raw): runs in the exiting thread. The main thread's exit marks the
/// process; a map full of unread exits only delays the reader's cleanup, so it is not counted.
#[inline(always)]
pub fn exit() {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if pid_tgid as u32 == tgid {
        let _ = EXITS.insert(tgid, now(), 0);
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
