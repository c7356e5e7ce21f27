//! The `processes` signal's probe: the fork tracepoint, whose child pid is read at the offset
//! tracefs gives.

use aya::{Ebpf, EbpfLoader};
use profiler_common::{GLOBAL_FORK_CHILD_PID, PROG_SCHED_PROCESS_FORK};

use super::{program, tracefs};

/// Offset of `child_pid` in the fork record.
pub struct Offsets {
    child_pid: u32,
}

pub fn offsets() -> Result<Offsets, String> {
    let root = tracefs::ensure_mounted()?;
    Ok(Offsets {
        child_pid: tracefs::event_field_offset(&root, "sched", "sched_process_fork", "child_pid")?,
    })
}

pub fn configure<'a>(loader: &mut EbpfLoader<'a>, offsets: &'a Offsets) {
    loader.override_global(GLOBAL_FORK_CHILD_PID, &offsets.child_pid, true);
}

pub fn attach(ebpf: &mut Ebpf) -> Result<(), String> {
    program::tracepoint(ebpf, PROG_SCHED_PROCESS_FORK, "sched", "sched_process_fork")
        .map_err(|err| program::first_line(&err))
}
