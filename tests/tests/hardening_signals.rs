//! Stopping at any moment: SIGINT or SIGTERM sent to `diagnose` or `record` at every phase
//! (loading, attached, sampling, symbolizing and writing) ends with complete outputs and exit 0,
//! or, only before anything was measured, with one `Error:` line, exit 128 + signal and no
//! output directory; never a partial one. SIGKILL leaves no BPF program loaded.

use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use profiler_tests::{
    DIAGNOSE_FILES, Finished, ProfilerRun, REPORT_GRACE, WINDOW_FILES, assert_complete_outputs,
    assert_programs_unloaded, entries, file_mode, loaded_programs, profiler_command,
    programs_held_by, require_root, serial, tempdir, utf8,
};

/// When the signal goes, counted from the spawn, from the `profiler: attached` line, or from
/// the end of the first `--duration` / `--window` (symbolizing and writing).
#[derive(Debug, Clone, Copy)]
enum When {
    Spawned(u64),
    Attached(u64),
    Ended(u64),
}

/// How a stopped run ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Exit 0, every output complete.
    Complete,
    /// Exit 128 + signal, one line, nothing written.
    Stopped,
    /// Killed by the signal itself before its handlers were installed: nothing written either.
    Killed,
}

/// Length of each run's sampling: `--duration` of diagnose, `--window` of record.
const RUN: Duration = Duration::from_secs(1);

/// The profiler, with SIGINT and SIGTERM at their defaults as in an interactive shell: a test
/// harness started in the background may have inherited SIGINT ignored.
fn command() -> Command {
    let mut command = profiler_command();
    // SAFETY: signal() is async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    command
}

fn name(signal: libc::c_int) -> &'static str {
    if signal == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}

/// Starts `command`, sends `signal` at `when` and classifies the outcome: a run that stopped
/// early must have left `out` absent, a complete one is checked by `complete`.
fn stop_at(
    command: Command,
    signal: libc::c_int,
    when: When,
    out: &Path,
    complete: impl FnOnce(&Finished),
) -> Outcome {
    let spawned = Instant::now();
    let mut run = ProfilerRun::start(command);
    let at = match when {
        When::Spawned(ms) => spawned + Duration::from_millis(ms),
        When::Attached(ms) => run.wait_attached() + Duration::from_millis(ms),
        When::Ended(ms) => run.wait_attached() + RUN + Duration::from_millis(ms),
    };
    thread::sleep(at.saturating_duration_since(Instant::now()));
    run.signal(signal);
    let done = run.finish(REPORT_GRACE);
    let label = format!("{} at {when:?}", name(signal));
    if done.status.code() == Some(0) {
        complete(&done);
        return Outcome::Complete;
    }
    assert!(
        !out.exists(),
        "{label}: {} left {:?} behind (status {})\nstderr:\n{}",
        out.display(),
        entries(out),
        done.status,
        done.stderr
    );
    if done.status.signal() == Some(signal) {
        assert!(
            matches!(when, When::Spawned(_)) && done.stderr.is_empty(),
            "{label}: killed by the signal after it started running:\n{}",
            done.stderr
        );
        return Outcome::Killed;
    }
    assert_eq!(
        done.status.code(),
        Some(128 + signal),
        "{label}: unexpected exit\nstderr:\n{}",
        done.stderr
    );
    assert_eq!(
        done.stderr.trim_end(),
        format!(
            "Error: stopped by {} before anything was measured; nothing written",
            name(signal)
        ),
        "{label}: not the one line of a stop before measuring"
    );
    assert!(done.stdout.is_empty(), "{label}: stdout {}", done.stdout);
    Outcome::Stopped
}

/// Every phase, alternating the two signals. Before the attach line only a stop or a complete
/// run will do; after it, only a complete one (measuring has begun).
const POINTS: &[When] = &[
    When::Spawned(0),
    When::Spawned(20),
    When::Spawned(100),
    When::Spawned(300),
    When::Attached(0),
    When::Attached(20),
    When::Attached(300),
    When::Ended(0),
    When::Ended(100),
    When::Ended(400),
];

#[test]
fn diagnose_stopped_at_any_point_is_complete_or_leaves_nothing() {
    if !require_root("diagnose_stopped_at_any_point_is_complete_or_leaves_nothing") {
        return;
    }
    let _serial = serial();
    let mut early = Vec::new();
    for (index, &when) in POINTS.iter().enumerate() {
        let signal = if index % 2 == 0 {
            libc::SIGINT
        } else {
            libc::SIGTERM
        };
        let dir = tempdir();
        let out = dir.path().join("out");
        let mut run = command();
        run.args(["diagnose", "--duration", "1s", "--format", "json", "--out"])
            .arg(&out)
            .current_dir(dir.path());
        let outcome = stop_at(run, signal, when, &out, |done| {
            let report = assert_complete_outputs(&out, DIAGNOSE_FILES);
            assert_eq!(
                done.stdout_json(),
                report,
                "stdout differs from report.json"
            );
        });
        // Nothing else in the cwd: no default ./profiler-<time>/ either.
        assert_eq!(
            entries(dir.path()),
            if out.exists() {
                vec!["out".to_owned()]
            } else {
                vec![]
            }
        );
        match when {
            When::Spawned(_) => early.push(outcome),
            _ => assert_eq!(outcome, Outcome::Complete, "{} at {when:?}", name(signal)),
        }
    }
    // Loading the programs takes far longer than 100 ms: some early signal must have found the
    // handlers installed and the run not yet measuring.
    assert!(
        early.contains(&Outcome::Stopped),
        "no early signal stopped a run cleanly: {early:?}"
    );
}

#[test]
fn record_stopped_at_any_point_leaves_whole_windows_or_nothing() {
    if !require_root("record_stopped_at_any_point_leaves_whole_windows_or_nothing") {
        return;
    }
    let _serial = serial();
    let points = [
        When::Spawned(20),
        When::Spawned(150),
        When::Attached(0),
        When::Attached(300),
        When::Ended(0),
        When::Ended(200),
    ];
    let mut outcomes = Vec::new();
    for (index, &when) in points.iter().enumerate() {
        let signal = if index % 2 == 0 {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        let dir = tempdir();
        let root = dir.path().join("rec");
        let mut run = command();
        run.args([
            "record",
            "--window",
            "1s",
            "--no-metrics",
            "--html",
            "--out",
            utf8(&root),
        ]);
        outcomes.push(stop_at(run, signal, when, &root, |_| {
            let names = entries(&root);
            let windows: Vec<&String> = names.iter().filter(|n| *n != "alerts.jsonl").collect();
            assert!(!windows.is_empty(), "no window in {names:?}");
            let mut files = WINDOW_FILES.to_vec();
            files.push("report.html");
            files.sort_unstable();
            for window in windows {
                assert!(
                    !window.starts_with('.'),
                    "staging entry {window} left in {names:?}"
                );
                assert_complete_outputs(&root.join(window), &files);
            }
            // Opened at startup, so there whether or not an alert fired.
            assert_eq!(file_mode(&root.join("alerts.jsonl")), 0o600);
        }));
        if !matches!(when, When::Spawned(_)) {
            assert_eq!(
                outcomes[index],
                Outcome::Complete,
                "{} at {when:?}",
                name(signal)
            );
        }
    }
    assert!(
        outcomes.contains(&Outcome::Stopped),
        "no early signal stopped a run cleanly: {outcomes:?}"
    );
}

/// SIGKILL cannot be caught: the programs must go with the process's file descriptors, and
/// nothing may be left in the working directory (`--out`, when given, must be inside it).
fn sigkill_leaves_no_program(test: &str, args: &[&str], dir: &Path) {
    let _serial = serial();
    if loaded_programs(test).is_none() {
        return;
    }
    let mut command = profiler_command();
    command.args(args).current_dir(dir);
    let mut run = ProfilerRun::start(command);
    run.wait_attached();
    let ours = programs_held_by(run.pid());
    assert!(ours.len() >= 3, "the profiler holds only programs {ours:?}");
    let loaded = loaded_programs(test).expect("bpftool ran a moment ago");
    assert!(
        ours.iter().all(|id| loaded.contains(id)),
        "bpftool does not list the profiler's programs {ours:?}: {loaded:?}"
    );
    run.signal(libc::SIGKILL);
    let done = run.finish(REPORT_GRACE);
    assert_eq!(done.status.signal(), Some(libc::SIGKILL), "{}", done.stderr);
    assert_programs_unloaded(test, &ours);
    assert_eq!(
        entries(dir),
        Vec::<String>::new(),
        "left in the working directory"
    );
}

#[test]
fn sigkilled_diagnose_leaves_no_bpf_program() {
    const TEST: &str = "sigkilled_diagnose_leaves_no_bpf_program";
    if require_root(TEST) {
        // Killed while sampling: the output directory is only created to write the report.
        let dir = tempdir();
        let args = ["diagnose", "--duration", "60s", "--out", "x"];
        sigkill_leaves_no_program(TEST, &args, dir.path());
    }
}

#[test]
fn sigkilled_top_leaves_no_bpf_program() {
    const TEST: &str = "sigkilled_top_leaves_no_bpf_program";
    if require_root(TEST) {
        let dir = tempdir();
        sigkill_leaves_no_program(TEST, &["top", "--once", "--interval", "60s"], dir.path());
    }
}
