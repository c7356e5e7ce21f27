//! The `sched` and `offcpu` signals' probes: the scheduler tracepoints, whose records are read
//! at offsets tracefs gives.

use aya::{Ebpf, EbpfLoader};
use profiler_common::{
    GLOBAL_SWITCH_NEXT_PID, GLOBAL_SWITCH_PREV_STATE, GLOBAL_WAKEUP_PID, PROG_SCHED_SWITCH_TP,
    PROG_SCHED_WAKEUP, PROG_SCHED_WAKEUP_NEW,
};

use super::{program, tracefs};

/// Field offsets of the scheduler tracepoints, read from tracefs.
pub struct Offsets {
    prev_state: u32,
    next_pid: u32,
    wakeup_pid: u32,
}

pub fn offsets() -> Result<Offsets, String> {
    let root = tracefs::ensure_mounted()?;
    let offset = |event, field| tracefs::event_field_offset(&root, "sched", event, field);
    let wakeup_pid = offset("sched_wakeup", "pid")?;
    if offset("sched_wakeup_new", "pid")? != wakeup_pid {
        return Err("sched_wakeup and sched_wakeup_new records differ".to_owned());
    }
    Ok(Offsets {
        prev_state: offset("sched_switch", "prev_state")?,
        next_pid: offset("sched_switch", "next_pid")?,
        wakeup_pid,
    })
}

pub fn configure<'a>(loader: &mut EbpfLoader<'a>, offsets: &'a Offsets) {
    loader
        .override_global(GLOBAL_SWITCH_PREV_STATE, &offsets.prev_state, true)
        .override_global(GLOBAL_SWITCH_NEXT_PID, &offsets.next_pid, true)
        .override_global(GLOBAL_WAKEUP_PID, &offsets.wakeup_pid, true);
}

/// Wakeups first: a switch seen before its wakeup program is attached only misses one wait.
pub fn attach(ebpf: &mut Ebpf) -> Result<(), String> {
    [
        (PROG_SCHED_WAKEUP, "sched_wakeup"),
        (PROG_SCHED_WAKEUP_NEW, "sched_wakeup_new"),
        (PROG_SCHED_SWITCH_TP, "sched_switch"),
    ]
    .into_iter()
    .try_for_each(|(name, event)| program::tracepoint(ebpf, name, "sched", event))
    .map_err(|err| program::first_line(&err))
}
