//! Exact on-CPU time per process from context switches.
//!
//! Each CPU remembers when it last switched; at the next switch (or sampler tick) the elapsed
//! time is charged to the task leaving, which is `current`. Reading `current` instead of the
//! tracepoint's task pointers avoids depending on `task_struct` offsets.

use aya_ebpf::helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns};
use profiler_common::Counter;

use crate::maps::{LAST_SWITCH, ONCPU, add_per_cpu, bump, remember_comm};

#[inline(always)]
pub fn switch() {
    bump(Counter::Switches);
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    charge_current(bpf_get_current_pid_tgid(), now);
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
