//! `cargo xtask bench syscalls`: wall time of a getppid storm, untraced, under an empty
//! sys_enter program (the floor), under the profiler's syscall signals (entry hook alone, with
//! the exit hook, all signals), under bpftrace per-pid counting and under libbpf-tools'
//! `syscount -P`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, Result};

use super::{
    Context, SubBench, floor, missing_tool, prepare, print_header_line, print_profiler_line,
    results::{Goal, Row, set_goal},
    run_rounds, time_workload, tracer, under_profiler, under_record,
};
use crate::util;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Rounds; each round runs every condition once.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// getppid syscalls the storm makes.
    #[arg(long, default_value_t = 3_000_000)]
    count: u64,
}

impl SubBench for Options {
    const NAME: &'static str = "syscalls";
    const WORKLOADS: bool = false;

    fn quick() -> Self {
        Self {
            runs: 1,
            count: 200_000,
        }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        run(ctx, self.runs, self.count)
    }
}

/// The issue's goal for a syscall storm under the profiler, syscall counting or every signal.
const GOAL: Goal = Goal::MaxSlowdown(1.55);
const FLOOR: &str = "empty-hook (floor)";

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
    /// An empty raw_tracepoint program on sys_enter: what any syscall hook costs at least.
    Floor,
    /// The profiler, given these extra arguments.
    Profiler(&'static [&'static str]),
    Bpftrace,
    Syscount,
    /// `profiler record` with these arguments besides its defaults.
    Record(&'static [&'static str]),
}

/// record's always-on tier: what a storm pays between incidents.
const RECORD: (Condition, &str) = (Condition::Record(&["--no-escalate"]), "record-always-on");
/// A storm under record's always-on tier, which hooks nothing per syscall.
const RECORD_GOAL: Goal = Goal::MaxSlowdown(1.05);

const PROFILER_CONDITIONS: [(Condition, &str); 3] = [
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
];

fn run(ctx: &Context, runs: u32, count: u64) -> Result<Vec<Row>> {
    let profiler = ctx.release("profiler");
    let scratch = prepare(Options::NAME, &[&profiler])?;
    let bpftrace = util::find_command("bpftrace");
    let syscount = util::find_command("syscount");
    let (storm, compile) = compile_storm(scratch.path())?;
    let workload = || {
        let mut cmd = Command::new(&storm);
        cmd.arg(count.to_string());
        cmd
    };
    let bpftrace_command = |bpftrace: &Path| {
        let mut cmd = Command::new(bpftrace);
        cmd.args(["-e", BPFTRACE_PROGRAM]);
        cmd
    };
    let syscount_command = |syscount: &Path| {
        let mut cmd = Command::new(syscount);
        cmd.arg("-P");
        cmd
    };
    let mut conditions = vec![(Condition::Untraced, "untraced"), (Condition::Floor, FLOOR)];
    conditions.extend(PROFILER_CONDITIONS);
    conditions.push(RECORD);
    let mut skipped = Vec::new();
    match &bpftrace {
        Some(_) => conditions.push((Condition::Bpftrace, "bpftrace")),
        None => skipped.push(missing_tool(
            Options::NAME,
            "bpftrace",
            "bpftrace",
            "`cargo xtask setup --bench` installs it",
        )),
    }
    match &syscount {
        Some(_) => conditions.push((Condition::Syscount, "syscount")),
        None => skipped.push(missing_tool(
            Options::NAME,
            "syscount",
            "syscount",
            "libbpf-tools: `cargo xtask setup --bench` installs it",
        )),
    }

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
            "{}  ({count} getppid syscalls; its CPU time, user + system)",
            util::display(&workload())
        ),
    );
    print_header_line(
        LABEL_WIDTH,
        FLOOR,
        "raw_tracepoint sys_enter running `r0 = 0; exit`, loaded and attached by the xtask",
    );
    for (condition, name) in PROFILER_CONDITIONS {
        if let Condition::Profiler(extra_args) = condition {
            print_profiler_line(LABEL_WIDTH, name, &profiler, scratch.path(), extra_args);
        }
    }
    if let Some(bpftrace) = &bpftrace {
        print_header_line(
            LABEL_WIDTH,
            "bpftrace",
            &format!(
                "{}  (started first; workload {BPFTRACE_SETTLE:?} after it prints \
                 \"{BPFTRACE_ATTACHING}\"; then SIGINT)",
                util::display(&bpftrace_command(bpftrace))
            ),
        );
    }
    print_header_line(
        LABEL_WIDTH,
        RECORD.1,
        &format!(
            "{}  (started first; workload once it prints \"profiler: attached\"; then SIGINT)",
            util::display(
                tracer::record_command(&profiler, &scratch.path().join("record-N"))?
                    .args(["--no-escalate"])
            )
        ),
    );
    if let Some(syscount) = &syscount {
        print_header_line(
            LABEL_WIDTH,
            "syscount",
            &format!(
                "{}  (started {SYSCOUNT_HEAD_START:?} before the workload; then SIGINT)",
                util::display(&syscount_command(syscount))
            ),
        );
    }
    println!(
        "  `--signals syscalls` is the entry hook only (counting); `syscall-time` adds the exit \
         hook (errors and time in syscalls), so profiler-syscalls and profiler-syscall-time show \
         the cost of each part"
    );

    let mut rows = run_rounds(
        Options::NAME,
        "s CPU",
        runs,
        &conditions,
        |condition, round| match condition {
            Condition::Untraced => Ok(time_workload(&mut workload())?.into()),
            Condition::Floor => {
                let hook = floor::EmptySysEnter::attach()?;
                let timed = time_workload(&mut workload())?;
                drop(hook);
                Ok(timed.into())
            }
            Condition::Profiler(extra_args) => {
                under_profiler(&profiler, scratch.path(), round, extra_args, || {
                    time_workload(&mut workload())
                })
            }
            Condition::Record(extra_args) => {
                let out = scratch.path().join(format!("record-{round}"));
                under_record(&profiler, &out, extra_args, || {
                    time_workload(&mut workload())
                })
            }
            // Like perf in `bench cpu`, no report column: their exit prints a map, not a report.
            // A peer that hangs or fails on its way out keeps its measurement, with a warning:
            // bpftrace 0.17 sometimes ignores SIGINT here.
            Condition::Bpftrace => peer(tracer::under_tolerant(
                "bpftrace",
                &mut bpftrace_command(bpftrace.as_deref().expect("run when installed")),
                tracer::Ready::Line(BPFTRACE_ATTACHING, BPFTRACE_SETTLE),
                || time_workload(&mut workload()),
            )?),
            Condition::Syscount => peer(tracer::under_tolerant(
                "syscount",
                &mut syscount_command(syscount.as_deref().expect("run when installed")),
                tracer::Ready::After(SYSCOUNT_HEAD_START),
                || time_workload(&mut workload()),
            )?),
        },
    )?;
    let floor = rows
        .iter()
        .find(|row| row.condition == FLOOR)
        .and_then(|row| row.ratio);
    for (_, name) in [PROFILER_CONDITIONS[0], PROFILER_CONDITIONS[2]] {
        set_goal(&mut rows, name, GOAL);
    }
    set_goal(&mut rows, RECORD.1, RECORD_GOAL);
    // record's always-on tier hooks no syscall: the floor says nothing of it.
    for row in rows.iter_mut().filter(|row| row.condition != RECORD.1) {
        if row.met() == Some(false)
            && let Some(floor) = floor
        {
            let floor_note = format!(
                "an empty sys_enter program alone is {floor:.2}x here (the floor of any syscall \
                 hook); the profiler adds {:.2}x on top",
                row.ratio.unwrap_or_default() / floor
            );
            row.note = Some(match row.note.take() {
                Some(wall) => format!("{floor_note}; {wall}"),
                None => floor_note,
            });
        }
    }
    rows.extend(skipped);
    Ok(rows)
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

/// A peer's measurement, its failure on the way out said and not held against the row.
fn peer((timed, exit): (super::timing::Timed, Result<Duration>)) -> Result<super::Measured> {
    if let Err(err) = exit {
        eprintln!("bench syscalls: warning: the measurement is kept, but {err:#}");
    }
    Ok(timed.into())
}
