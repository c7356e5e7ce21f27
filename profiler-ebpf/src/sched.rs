//! Scheduler accounting from context switches and wakeups.
//!
//! On-CPU time: each CPU remembers when it last switched; at the next switch (or sampler tick)
//! the elapsed time is charged to the task leaving, which is `current`. Reading `current`
//! instead of task pointers avoids depending on `task_struct` offsets.
//!
//! Run-queue wait: a thread is runnable from its wakeup (or from being preempted) until it is
//! switched in. Its tgid is remembered whenever it leaves a CPU, so the wait can be charged to
//! its process at switch-in. Blame: each CPU keeps a ring of who held it lately; the wait is
//! split over the holders by overlap, so a waiting thread blames the processes that actually
//! ran while it waited, not just the last one.
//!
//! Off-CPU time: a thread that leaves a CPU asleep has its stacks taken then (`sched_switch`
//! runs in the task leaving); at its wakeup the time asleep is charged to that stack.

use aya_ebpf::{
    bindings::BPF_NOEXIST, helpers::bpf_get_current_pid_tgid, programs::TracePointContext,
};
use profiler_common::{
    BlameKey, Counter, HISTORY_SEGMENTS, History, Runnable, SchedStats, Segment, StackKey,
    WAIT_BUCKETS,
};

use crate::{
    maps::{
        BLAME, HISTORY, LAST_SWITCH, OFFCPU, ONCPU, RUNNABLE_SINCE, SCHED, add_per_cpu, add_shared,
        atomic_add, bump, bump_by, remember_comm,
    },
    read::{field, now},
    stacks, syscalls,
};

// Field offsets in the classic tracepoints' records; userspace overwrites them with the values
// in each event's `format` file. The defaults are those of Linux 4.x to 6.x.
#[unsafe(no_mangle)]
static SWITCH_PREV_STATE_OFFSET: u32 = 32;
#[unsafe(no_mangle)]
static SWITCH_NEXT_PID_OFFSET: u32 = 56;
#[unsafe(no_mangle)]
static WAKEUP_PID_OFFSET: u32 = 24;
/// 1 when threads going to sleep get their stacks taken (`offcpu` signal): two stack walks per
/// voluntary switch, so it is a signal of its own.
#[unsafe(no_mangle)]
static OFFCPU_STACKS: u32 = 0;

/// `prev_state` bits that mean the task went to sleep; none set means it is still runnable
/// (preempted tasks report TASK_REPORT_MAX, above these bits).
const SLEEP_STATE_MASK: i64 = 0xff;
/// `prev_state` of a thread's last switch: EXIT_DEAD or EXIT_ZOMBIE. It never wakes again.
const DEAD_STATE_MASK: i64 = 0x30;

/// `sched:sched_wakeup` and `sched:sched_wakeup_new`: the thread becomes runnable. A new task
/// may reuse the tid of an exited thread of another process, so its entry is started afresh:
/// its process is learnt when it first leaves a CPU.
#[inline(always)]
pub fn wakeup(ctx: &TracePointContext, new_task: bool) {
    let Some(tid) = field::<u32>(ctx, &WAKEUP_PID_OFFSET) else {
        return;
    };
    let now = now();
    if !new_task && let Some(entry) = RUNNABLE_SINCE.get_ptr_mut(tid) {
        // SAFETY: live map value; a thread is woken on one CPU at a time, and it is asleep, so
        // no switch writes its entry meanwhile.
        let entry = unsafe { &mut *entry };
        entry.since = now;
        let blocked_since = core::mem::replace(&mut entry.blocked_since, 0);
        if blocked_since != 0 && entry.tgid != 0 && now > blocked_since {
            let key = StackKey {
                tgid: entry.tgid,
                user_stack_id: entry.user_stack_id,
                kernel_stack_id: entry.kernel_stack_id,
            };
            if !add_shared(&OFFCPU, &key, now - blocked_since) {
                bump(Counter::OffCpuFull);
            }
        }
        return;
    }
    let entry = Runnable {
        since: now,
        ..Runnable::NEW
    };
    if RUNNABLE_SINCE.insert(tid, entry, 0).is_err() {
        bump(Counter::RunnableFull);
    }
}

/// `sched:sched_switch` as a classic tracepoint: on-CPU time plus run-queue accounting.
#[inline(always)]
pub fn switch_tracepoint(ctx: &TracePointContext) {
    bump(Counter::Switches);
    let now = now();
    let pid_tgid = bpf_get_current_pid_tgid();
    charge_current(pid_tgid, now);
    syscalls::on_switch(pid_tgid as u32, now);
    let prev_tid = pid_tgid as u32;
    let prev_tgid = (pid_tgid >> 32) as u32;
    let Some(history) = HISTORY.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot; sched_switch runs with interrupts off.
    let history = unsafe { &mut *history };
    record_holder(history, prev_tgid, now);

    if prev_tid != 0 {
        let state = field::<i64>(ctx, &SWITCH_PREV_STATE_OFFSET).unwrap_or(1);
        let still_runnable = state & SLEEP_STATE_MASK == 0;
        count_switch(prev_tgid, still_runnable);
        if state & DEAD_STATE_MASK != 0 {
            // Its tid may be reused by another process; a stale entry would also count the
            // dead thread as blocked until the end of the run.
            let _ = RUNNABLE_SINCE.remove(prev_tid);
        } else {
            left_cpu(ctx, prev_tid, prev_tgid, still_runnable, now);
        }
    }
    switch_in(ctx, history, now);
}

/// Remembers the thread leaving: runnable since now (preempted), or asleep since now with its
/// stacks (`offcpu` signal).
#[inline(always)]
fn left_cpu(ctx: &TracePointContext, tid: u32, tgid: u32, still_runnable: bool, now: u64) {
    let mut left = Runnable {
        since: if still_runnable { now } else { 0 },
        tgid,
        ..Runnable::NEW
    };
    // SAFETY: plain read of a load-time constant; volatile keeps the default from being
    // folded.
    if !still_runnable && unsafe { core::ptr::read_volatile(&OFFCPU_STACKS) } != 0 {
        let taken = stacks::take(ctx);
        left.blocked_since = now;
        left.user_stack_id = taken.user;
        left.kernel_stack_id = taken.kernel;
    }
    // Updating in place is much cheaper than an LRU insert, and after its first switch
    // every thread has an entry.
    if let Some(entry) = RUNNABLE_SINCE.get_ptr_mut(tid) {
        // SAFETY: live map value; the thread is leaving this CPU, nobody else writes its
        // entry.
        unsafe { *entry = left };
    } else if RUNNABLE_SINCE.insert(tid, left, 0).is_err() {
        bump(Counter::RunnableFull);
    }
}

/// The thread switched in stops waiting: its wait is charged, and blamed on this CPU's holders.
#[inline(always)]
fn switch_in(ctx: &TracePointContext, history: &History, now: u64) {
    let next_tid = field::<u32>(ctx, &SWITCH_NEXT_PID_OFFSET).unwrap_or(0);
    if next_tid == 0 {
        return;
    }
    let Some(entry) = RUNNABLE_SINCE.get_ptr_mut(next_tid) else {
        return;
    };
    // SAFETY: live map value; the thread is being switched in on this CPU only.
    let (since, tgid) = unsafe { ((*entry).since, (*entry).tgid) };
    // SAFETY: as above.
    unsafe { (*entry).since = 0 };
    if since == 0 || tgid == 0 || now <= since {
        return;
    }
    let waited = now - since;
    charge_wait(tgid, waited);
    blame(history, tgid, since, now);
}

/// Closes the current holder's stretch of this CPU in the ring.
#[inline(always)]
fn record_holder(history: &mut History, tgid: u32, now: u64) {
    let start = core::mem::replace(&mut history.switched_at, now);
    if start == 0 {
        return;
    }
    let slot = (history.next as usize) % HISTORY_SEGMENTS;
    history.next = history.next.wrapping_add(1);
    if let Some(segment) = history.segments.get_mut(slot) {
        *segment = Segment {
            start,
            end: now,
            tgid,
            _pad: 0,
        };
    }
}

/// Charges `[since, now)` of `victim`'s wait to the processes that held this CPU meanwhile.
/// What the ring no longer covers is counted, not blamed.
#[inline(always)]
fn blame(history: &History, victim: u32, since: u64, now: u64) {
    let mut covered = 0;
    for segment in &history.segments {
        let start = if segment.start > since {
            segment.start
        } else {
            since
        };
        let end = if segment.end < now { segment.end } else { now };
        if end <= start {
            continue;
        }
        covered += end - start;
        if segment.tgid == 0 || segment.tgid == victim {
            continue;
        }
        let key = BlameKey {
            culprit_tgid: segment.tgid,
            victim_tgid: victim,
        };
        if !add_shared(&BLAME, &key, end - start) {
            bump(Counter::BlameFull);
        }
    }
    let waited = now - since;
    if covered < waited {
        bump_by(Counter::BlameUncoveredNs, waited - covered);
    }
}

#[inline(always)]
fn stats_of(tgid: u32) -> Option<*mut SchedStats> {
    if let Some(stats) = SCHED.get_ptr_mut(tgid) {
        return Some(stats);
    }
    let _ = SCHED.insert(tgid, SchedStats::ZERO, u64::from(BPF_NOEXIST));
    let stats = SCHED.get_ptr_mut(tgid);
    if stats.is_none() {
        bump(Counter::SchedFull);
    }
    stats
}

#[inline(always)]
fn count_switch(tgid: u32, still_runnable: bool) {
    let Some(stats) = stats_of(tgid) else { return };
    // SAFETY: live map value; fields are only ever added to atomically.
    unsafe {
        if still_runnable {
            atomic_add(&raw mut (*stats).involuntary_switches, 1);
        } else {
            atomic_add(&raw mut (*stats).voluntary_switches, 1);
        }
    }
}

#[inline(always)]
fn charge_wait(tgid: u32, waited: u64) {
    let Some(stats) = stats_of(tgid) else { return };
    let bucket = (63 - waited.leading_zeros() as usize).min(WAIT_BUCKETS - 1);
    // SAFETY: as in `count_switch`.
    unsafe {
        atomic_add(&raw mut (*stats).runq_wait_ns, waited);
        atomic_add(&raw mut (*stats).runq_waits, 1);
        atomic_add(&raw mut (*stats).wait_hist[bucket], 1);
    }
}

/// Raw tracepoint fallback when tracefs is missing: on-CPU time only.
#[inline(always)]
pub fn switch() {
    bump(Counter::Switches);
    let now = now();
    let pid_tgid = bpf_get_current_pid_tgid();
    charge_current(pid_tgid, now);
    syscalls::on_switch(pid_tgid as u32, now);
}

/// Charges the time since this CPU's last checkpoint to the current task's process.
///
/// Also called from the sampler: a lone CPU hog on a tickless CPU may not switch for seconds, and
/// the sampler's tick bounds the time left uncharged at the end of a run to one sample period.
#[inline(always)]
pub fn charge_current(pid_tgid: u64, now: u64) {
    let Some(last) = LAST_SWITCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot; sched_switch runs with interrupts off, so the sampler on this CPU
    // cannot interleave with it.
    let since = unsafe { core::mem::replace(&mut *last, now) };
    let tgid = (pid_tgid >> 32) as u32;
    if since == 0 || tgid == 0 || now <= since {
        return;
    }
    match add_per_cpu(&ONCPU, &tgid, now - since) {
        Some(true) => remember_comm(tgid),
        Some(false) => {}
        None => bump(Counter::OnCpuFull),
    }
}
