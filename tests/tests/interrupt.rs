//! End-to-end early termination: SIGINT (Ctrl-C) or SIGTERM during a long run must end it within
//! seconds with a complete report covering only the time actually profiled.

use std::thread;
use std::time::{Duration, Instant};

use profiler_tests::{
    ProfilerRun, assert_matches_schema, number, profiler_command, read_json, require_root, serial,
    tempdir,
};

/// "Within a few seconds": stopping needs only detaching and writing the report.
const EXIT_AFTER_SIGNAL: Duration = Duration::from_secs(10);

#[test]
fn sigint_ends_run_early_and_still_reports() {
    if require_root("sigint_ends_run_early_and_still_reports") {
        signal_ends_run_early(libc::SIGINT);
    }
}

#[test]
fn sigterm_ends_run_early_and_still_reports() {
    if require_root("sigterm_ends_run_early_and_still_reports") {
        signal_ends_run_early(libc::SIGTERM);
    }
}

fn signal_ends_run_early(signal: libc::c_int) {
    let _serial = serial();
    let dir = tempdir();
    let out = dir.path().join("out");
    let mut command = profiler_command();
    command
        .args(["diagnose", "--duration", "60s", "--format", "json", "--out"])
        .arg(&out)
        .current_dir(dir.path());
    let mut run = ProfilerRun::start(command);
    run.wait_attached();
    thread::sleep(Duration::from_secs(2));
    let signalled = Instant::now();
    run.signal(signal);
    let done = run.finish(EXIT_AFTER_SIGNAL);
    let took = signalled.elapsed();
    done.assert_success();

    let report = done.stdout_json();
    assert_eq!(
        report,
        read_json(&out.join("report.json")),
        "stdout JSON differs from report.json"
    );
    assert_matches_schema(&report);
    let duration_s = number(&report, "duration_s");
    assert!(
        (1.5..10.0).contains(&duration_s),
        "signal {signal} after ~2 s of a 60 s run (exited {took:?} after it), but duration_s is \
         {duration_s}"
    );
    for name in ["stacks.folded", "flamegraph.svg"] {
        assert!(
            out.join(name).is_file(),
            "{name} missing after signal {signal}"
        );
    }
}
