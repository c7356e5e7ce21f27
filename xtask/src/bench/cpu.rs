//! `cargo xtask bench cpu`: CPU time of a fixed CPU-bound workload (`burner`), untraced, under
//! the profiler (walking stacks with unwind tables, its default, and by frame pointers alone),
//! under `perf record -g` and `perf record --call-graph dwarf`, and under profile-bee (when
//! installed).

use std::{fs, path::Path, process::Command, time::Duration};

use anyhow::Result;

use super::results::Row;
use super::tracer::CallGraph;
use super::{
    Context, Measured, SubBench, missing_tool, prepare, print_header_line, print_profiler_line,
    run_rounds, time_workload, tracer, under_profiler,
};
use crate::util;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Rounds; each round runs every condition once.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Work units for `burner --work`.
    #[arg(long, default_value_t = 400)]
    work: u64,
}

impl SubBench for Options {
    const NAME: &'static str = "cpu";
    const WORKLOADS: bool = true;

    fn quick() -> Self {
        Self { runs: 1, work: 10 }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        run(ctx, self.runs, self.work)
    }
}

#[derive(Debug, Clone, Copy)]
enum Condition {
    Untraced,
    Profiler,
    ProfilerFramePointers,
    Perf,
    PerfDwarf,
    ProfileBee,
}

/// The profiler walking user stacks by frame pointers alone.
const FRAME_POINTERS: [&str; 2] = ["--unwind", "frame-pointers"];

/// profile-bee's command: `probee` since 0.3, `profile-bee` before.
const PROFILE_BEE: [&str; 2] = ["probee", "profile-bee"];
/// profile-bee prints no dependable readiness line; two seconds cover its BPF load here.
const PROFILE_BEE_HEAD_START: Duration = Duration::from_secs(2);

fn run(ctx: &Context, runs: u32, work: u64) -> Result<Vec<Row>> {
    let burner = ctx.release("burner");
    let profiler = ctx.release("profiler");
    let scratch = prepare(Options::NAME, &[&burner, &profiler])?;
    let workload = || {
        let mut cmd = Command::new(&burner);
        cmd.arg("--work").arg(work.to_string());
        cmd
    };
    let perf_data = scratch.path().join("perf.data");
    let profile_bee = PROFILE_BEE.into_iter().find_map(util::find_command);
    let profile_bee_svg = scratch.path().join("profile-bee.svg");
    let profile_bee_command = |binary: &Path| {
        let mut cmd = Command::new(binary);
        // System-wide at perf's and the profiler's rate, for longer than any round; SIGINT ends
        // it.
        cmd.args(["-f", "99", "-t", "3600000", "-o"])
            .arg(&profile_bee_svg);
        cmd
    };

    let mut conditions = vec![
        (Condition::Untraced, "untraced"),
        (Condition::Profiler, "profiler"),
        (Condition::ProfilerFramePointers, "profiler-fp"),
        (Condition::Perf, "perf"),
        (Condition::PerfDwarf, "perf-dwarf"),
    ];
    if profile_bee.is_some() {
        conditions.push((Condition::ProfileBee, "profile-bee"));
    }
    println!("bench cpu: {runs} rounds; each runs every condition once, in rotating order");
    print_header_line(
        12,
        "workload",
        &format!(
            "{}  (its CPU time, user + system; wall time in the note)",
            util::display(&workload())
        ),
    );
    print_profiler_line(12, "profiler", &profiler, scratch.path(), &[]);
    print_profiler_line(
        12,
        "profiler-fp",
        &profiler,
        scratch.path(),
        &FRAME_POINTERS,
    );
    for (name, call_graph) in [
        ("perf", CallGraph::FramePointers),
        ("perf-dwarf", CallGraph::Dwarf),
    ] {
        print_header_line(
            12,
            name,
            &format!(
                "{}  (started 1 s before the workload; then SIGINT)",
                util::display(&tracer::perf_command(&perf_data, call_graph))
            ),
        );
    }
    if let Some(binary) = &profile_bee {
        print_header_line(
            12,
            "profile-bee",
            &format!(
                "{}  (started {PROFILE_BEE_HEAD_START:?} before the workload; then SIGINT)",
                util::display(&profile_bee_command(binary))
            ),
        );
    }

    // Why profile-bee failed after SIGINT, per failing round: the workload ran under it all the
    // same, so the round counts and the row says so.
    let mut profile_bee_failures = Vec::new();
    let mut rows = run_rounds(
        Options::NAME,
        "s CPU",
        runs,
        &conditions,
        |condition, round| match condition {
            Condition::Untraced => Ok(time_workload(&mut workload())?.into()),
            Condition::Profiler => under_profiler(&profiler, scratch.path(), round, &[], || {
                time_workload(&mut workload())
            }),
            Condition::ProfilerFramePointers => {
                under_profiler(&profiler, scratch.path(), round, &FRAME_POINTERS, || {
                    time_workload(&mut workload())
                })
            }
            Condition::Perf | Condition::PerfDwarf => {
                let call_graph = match condition {
                    Condition::PerfDwarf => CallGraph::Dwarf,
                    _ => CallGraph::FramePointers,
                };
                let timed =
                    tracer::under_perf(&perf_data, call_graph, || time_workload(&mut workload()))?;
                fs::remove_file(&perf_data)?;
                Ok(Measured {
                    tracer_cpu: Some(tracer::last_tracer_cpu().as_secs_f64()),
                    ..timed.into()
                })
            }
            Condition::ProfileBee => {
                let binary = profile_bee.as_deref().expect("only run when installed");
                let (timed, stopped) = tracer::under_tolerant(
                    "profile-bee",
                    &mut profile_bee_command(binary),
                    tracer::Ready::After(PROFILE_BEE_HEAD_START),
                    || time_workload(&mut workload()),
                )?;
                if let Err(err) = stopped {
                    let cause = failure_cause(&format!("{err:#}"));
                    eprintln!("bench cpu: profile-bee failed on its way out: {cause}");
                    profile_bee_failures.push(cause);
                }
                let _ = fs::remove_file(&profile_bee_svg);
                Ok(Measured {
                    tracer_cpu: Some(tracer::last_tracer_cpu().as_secs_f64()),
                    ..timed.into()
                })
            }
        },
    )?;
    if let Some(cause) = profile_bee_failures.first()
        && let Some(row) = rows.iter_mut().find(|row| row.condition == "profile-bee")
    {
        let failed = format!(
            "profile-bee failed after SIGINT (its output, not the measurement) in {} of {runs} \
             rounds: {cause}",
            profile_bee_failures.len()
        );
        row.note = Some(match row.note.take() {
            Some(wall) => format!("{failed}; {wall}"),
            None => failed,
        });
    }
    if profile_bee.is_none() {
        rows.push(missing_tool(
            Options::NAME,
            "profile-bee",
            "probee",
            "`cargo install profile-bee --locked`",
        ));
    }
    Ok(rows)
}

/// The line of a tracer's failure that says what went wrong: a Rust panic's message when it
/// panicked, else the first line.
fn failure_cause(error: &str) -> String {
    let mut lines = error.lines();
    match lines.by_ref().position(|line| line.contains("panicked at")) {
        Some(_) => lines.next().unwrap_or_default().trim().to_owned(),
        None => error.lines().next().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_cause_is_the_panic_message() {
        let error = "`probee -f 99` failed after SIGINT (exit status: 101); its output:\n\
                     Waiting for Ctrl-C...\n\n\
                     thread 'main' (22241) panicked at src/types.rs:156:41:\n\
                     called `Result::unwrap()` on an `Err` value: Utf8Error\n\
                     stack backtrace:\n";
        assert_eq!(
            failure_cause(error),
            "called `Result::unwrap()` on an `Err` value: Utf8Error"
        );
        assert_eq!(failure_cause("exited (1)\nmore"), "exited (1)");
    }
}
