//! The `syscalls` and `syscall-time` signals' probes: raw tracepoints on syscall entry and exit.

use aya::Ebpf;
use profiler_common::{PROG_SYS_ENTER, PROG_SYS_EXIT};

use super::program;

/// Counting needs only the entry hook.
pub fn attach_entry(ebpf: &mut Ebpf) -> Result<(), String> {
    program::raw(ebpf, PROG_SYS_ENTER, "sys_enter").map_err(|err| program::first_line(&err))
}

/// Errors and time need the exit hook too; exits without their entries would all be
/// unmatched.
pub fn attach_exit(ebpf: &mut Ebpf, entry: Option<&Result<(), String>>) -> Result<(), String> {
    match entry {
        Some(Ok(())) => {
            program::raw(ebpf, PROG_SYS_EXIT, "sys_exit").map_err(|err| program::first_line(&err))
        }
        _ => Err("needs the syscalls signal".to_owned()),
    }
}
