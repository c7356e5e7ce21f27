//! How long a workload process took: its wall time, and its CPU time as the kernel accounts it
//! (user + system, its waited-for children included), read with wait4(2).

use std::{
    os::unix::process::ExitStatusExt as _,
    process::{Child, Command, ExitStatus, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result};

use crate::util;

/// How long a workload took: its CPU time (user + system, its waited-for children included) and
/// its wall time.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub cpu: f64,
    pub wall: f64,
}

/// Runs `cmd`, which must succeed, and times it; its stdout is dropped so it cannot garble the
/// table.
pub fn time_workload(cmd: &mut Command) -> Result<Timed> {
    cmd.stdout(Stdio::null());
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("could not start `{}`", util::display(cmd)))?;
    let (status, usage) = wait_with_usage(&child)
        .with_context(|| format!("could not wait for `{}`", util::display(cmd)))?;
    let wall = start.elapsed().as_secs_f64();
    util::check("workload", cmd, status)?;
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    Ok(Timed {
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        wall,
    })
}

/// Reaps `child` with wait4(2), which std does not offer, for its resource usage.
fn wait_with_usage(child: &Child) -> std::io::Result<(ExitStatus, libc::rusage)> {
    let pid = libc::pid_t::try_from(child.id()).map_err(std::io::Error::other)?;
    let mut status = 0;
    // SAFETY: rusage is plain integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals; the child is ours and not yet reaped.
        if unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) } == pid {
            return Ok((ExitStatus::from_raw(status), usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
