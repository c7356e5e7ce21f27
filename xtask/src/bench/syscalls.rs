//! `cargo xtask bench syscalls`: wall time of a getppid storm, untraced, under the profiler's
//! syscall signals (entry hook alone, with the exit hook, all signals), under bpftrace per-pid
//! counting and under libbpf-tools' `syscount -P`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, Result};

use super::{
    prepare, print_header_line, print_profiler_line, run_rounds, time_workload, tracer,
    under_profiler,
};
use crate::util;

/// The storm: exactly the requested number of getppid syscalls and nothing else in the loop.
/// `syscall(SYS_getppid)` rather than `getppid()` so no libc can answer from a cache; getppid
/// because it does no work of its own, so the time is the syscall path and its probes.
const STORM_C: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s COUNT\n", argv[0]);
        return 2;
    }
    long count = strtol(argv[1], NULL, 10);
    for (long i = 0; i < count; i++) {
        syscall(SYS_getppid);
    }
    return 0;
}
"#;

const BPFTRACE_PROGRAM: &str = "tracepoint:raw_syscalls:sys_enter { @[pid] = count(); }";
/// bpftrace prints this before it attaches its probes.
const BPFTRACE_ATTACHING: &str = "Attaching";
/// "Attaching" comes before the attach itself; half a second covers one tracepoint here.
const BPFTRACE_SETTLE: Duration = Duration::from_millis(500);
/// syscount's "Tracing syscalls" line sits in its stdout buffer until exit when stdout is a pipe,
/// so it is not a readiness signal; 1.5 s covers its BPF load and attach here.
const SYSCOUNT_HEAD_START: Duration = Duration::from_millis(1500);

/// Label width of the header lines: the longest label, `profiler-syscall-time:`.
const LABEL_WIDTH: usize = 22;

#[derive(Debug, Clone, Copy)]
enum Condition {
    Untraced,
    /// The profiler, given these extra arguments.
    Profiler(&'static [&'static str]),
    Bpftrace,
    Syscount,
}

const CONDITIONS: [(Condition, &str); 6] = [
    (Condition::Untraced, "untraced"),
    (
        Condition::Profiler(&["--signals", "syscalls"]),
        "profiler-syscalls",
    ),
    (
        Condition::Profiler(&["--signals", "syscalls,syscall-time"]),
        "profiler-syscall-time",
    ),
    // No --signals: the default, every signal.
    (Condition::Profiler(&[]), "profiler-all"),
    (Condition::Bpftrace, "bpftrace"),
    (Condition::Syscount, "syscount"),
];

pub fn run(target: &Path, runs: u32, count: u64) -> Result<()> {
    let profiler = target.join("release").join("profiler");
    let scratch = prepare("syscalls", &[&profiler])?;
    let bpftrace = tool("bpftrace", "bpftrace")?;
    let syscount = tool("syscount", "libbpf-tools")?;
    let (storm, compile) = compile_storm(scratch.path())?;
    let workload = || {
        let mut cmd = Command::new(&storm);
        cmd.arg(count.to_string());
        cmd
    };
    let bpftrace_command = || {
        let mut cmd = Command::new(&bpftrace);
        cmd.args(["-e", BPFTRACE_PROGRAM]);
        cmd
    };
    let syscount_command = || {
        let mut cmd = Command::new(&syscount);
        cmd.arg("-P");
        cmd
    };

    println!("bench syscalls: {runs} rounds; each runs every condition once, in rotating order");
    print_header_line(
        LABEL_WIDTH,
        "storm",
        &format!("{}  (C source in xtask)", util::display(&compile)),
    );
    print_header_line(
        LABEL_WIDTH,
        "workload",
        &format!(
            "{}  ({count} getppid syscalls; wall time of the process)",
            util::display(&workload())
        ),
    );
    for (condition, name) in CONDITIONS {
        if let Condition::Profiler(extra_args) = condition {
            print_profiler_line(LABEL_WIDTH, name, &profiler, scratch.path(), extra_args);
        }
    }
    print_header_line(
        LABEL_WIDTH,
        "bpftrace",
        &format!(
            "{}  (started first; workload {BPFTRACE_SETTLE:?} after it prints \
             \"{BPFTRACE_ATTACHING}\"; then SIGINT)",
            util::display(&bpftrace_command())
        ),
    );
    print_header_line(
        LABEL_WIDTH,
        "syscount",
        &format!(
            "{}  (started {SYSCOUNT_HEAD_START:?} before the workload; then SIGINT)",
            util::display(&syscount_command())
        ),
    );
    println!(
        "  `--signals syscalls` is the entry hook only (counting); `syscall-time` adds the exit \
         hook (errors and time in syscalls), so profiler-syscalls and profiler-syscall-time show \
         the cost of each part"
    );

    run_rounds(
        "syscalls",
        runs,
        &CONDITIONS,
        |condition, round| match condition {
            Condition::Untraced => Ok((time_workload(&mut workload())?, None)),
            Condition::Profiler(extra_args) => {
                under_profiler(&profiler, scratch.path(), round, extra_args, || {
                    time_workload(&mut workload())
                })
            }
            // Like perf in `bench cpu`, no report column: their exit prints a map, not a report.
            Condition::Bpftrace => {
                let (wall, _) = tracer::under(
                    "bpftrace",
                    &mut bpftrace_command(),
                    tracer::Ready::Line(BPFTRACE_ATTACHING, BPFTRACE_SETTLE),
                    || time_workload(&mut workload()),
                )?;
                Ok((wall, None))
            }
            Condition::Syscount => {
                let (wall, _) = tracer::under(
                    "syscount",
                    &mut syscount_command(),
                    tracer::Ready::After(SYSCOUNT_HEAD_START),
                    || time_workload(&mut workload()),
                )?;
                Ok((wall, None))
            }
        },
    )
}

/// Where `command` is installed; `setup --bench` installs `package` when it is missing.
fn tool(command: &str, package: &str) -> Result<PathBuf> {
    util::find_command(command).with_context(|| {
        format!(
            "`{command}` (Debian package {package}) is not installed: `cargo xtask setup --bench` \
             installs it"
        )
    })
}

/// Writes [`STORM_C`] into `scratch` and compiles it there; returns the binary and the compile
/// command, which the header prints.
fn compile_storm(scratch: &Path) -> Result<(PathBuf, Command)> {
    let source = scratch.join("storm.c");
    let binary = scratch.join("storm");
    fs::write(&source, STORM_C).with_context(|| format!("could not write {}", source.display()))?;
    let mut cc = Command::new("cc");
    cc.arg("-O2").arg("-o").arg(&binary).arg(&source);
    util::run_step_quiet_stdout("compile the syscall storm", &mut cc)?;
    Ok((binary, cc))
}
