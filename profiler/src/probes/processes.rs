//! The `processes` signal's probes: the fork tracepoint, whose child pid is read at the offset
//! tracefs gives, and the OOM killer's `oom:mark_victim`, whose victim and its memory are; and
//! where the exec tracepoint finds the executed file.

use aya::{Ebpf, EbpfLoader};
use profiler_common::{
    GLOBAL_FORK_CHILD_PID, GLOBAL_OOM_ANON_RSS, GLOBAL_OOM_FILE_RSS, GLOBAL_OOM_PID,
    GLOBAL_OOM_SHMEM_RSS, PROG_OOM_MARK_VICTIM, PROG_SCHED_PROCESS_FORK,
};

use super::{btf, member_offset, program, tracefs};

/// Offsets in the fork record, and in the OOM victim's where the kernel has the event.
pub struct Offsets {
    child_pid: u32,
    oom: Option<[u32; 4]>,
}

/// `oom:mark_victim`'s fields the program reads, in the order of [`OOM_GLOBALS`].
const OOM_FIELDS: [&str; 4] = ["pid", "anon_rss", "file_rss", "shmem_rss"];
const OOM_GLOBALS: [&str; 4] = [
    GLOBAL_OOM_PID,
    GLOBAL_OOM_ANON_RSS,
    GLOBAL_OOM_FILE_RSS,
    GLOBAL_OOM_SHMEM_RSS,
];

pub fn offsets() -> Result<Offsets, String> {
    let root = tracefs::ensure_mounted()?;
    let oom_field = |field| tracefs::event_field_offset(&root, "oom", "mark_victim", field);
    let oom = OOM_FIELDS.map(oom_field);
    Ok(Offsets {
        child_pid: tracefs::event_field_offset(&root, "sched", "sched_process_fork", "child_pid")?,
        oom: oom
            .iter()
            .all(Result::is_ok)
            .then(|| oom.map(|o| o.unwrap_or(0))),
    })
}

/// `linux_binprm.interp`, from the kernel BTF the loader uses: the exec raw tracepoint's third
/// argument is the `linux_binprm`, whose `interp` is the file executed in the end (a script's
/// interpreter, as /proc/PID/exe shows it; the file itself otherwise).
pub fn exec_file_offset() -> Result<u32, String> {
    member_offset::in_file(&btf::path(), &[("linux_binprm", "interp")])
}

pub fn configure<'a>(loader: &mut EbpfLoader<'a>, offsets: &'a Offsets) {
    loader.override_global(GLOBAL_FORK_CHILD_PID, &offsets.child_pid, true);
    if let Some(oom) = &offsets.oom {
        for (global, offset) in OOM_GLOBALS.iter().zip(oom) {
            loader.override_global(global, offset, true);
        }
    }
}

/// Forks, and OOM kills where the kernel has the event (a kernel without it only loses the
/// naming of OOM victims, which is said once).
pub fn attach(ebpf: &mut Ebpf, offsets: &Offsets) -> Result<(), String> {
    program::tracepoint(ebpf, PROG_SCHED_PROCESS_FORK, "sched", "sched_process_fork")
        .map_err(|err| program::first_line(&err))?;
    let oom = match offsets.oom {
        Some(_) => program::tracepoint(ebpf, PROG_OOM_MARK_VICTIM, "oom", "mark_victim")
            .map_err(|err| program::first_line(&err)),
        None => Err("no oom:mark_victim event in tracefs".to_owned()),
    };
    if let Err(why) = oom {
        eprintln!("profiler: warning: OOM kills will not be named ({why})");
    }
    Ok(())
}
