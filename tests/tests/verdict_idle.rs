//! The verdict on a quiet host: a shell loop starting `sleep` ten times a second, the background
//! job every host has, uses a few hundredths of a core with its children and harms nobody. It
//! must not be a suspect (it was one, for its spawn rate alone), and the verdict must call the
//! host idle rather than name anything.

use std::time::Duration;

use profiler_tests::{
    Workload, assert_exact_suspects, count, diagnose_window, process_entry, require_root, serial,
};

const DURATION: Duration = Duration::from_secs(4);
/// Ten `sleep`s a second for four seconds; fewer than half of them would mean the loop did not
/// run through the window and the scenario proves nothing.
const MIN_SPAWNED: u64 = 20;

#[test]
fn a_quiet_host_with_a_shell_loop_has_no_suspect_and_is_called_idle() {
    const TEST: &str = "a_quiet_host_with_a_shell_loop_has_no_suspect_and_is_called_idle";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let shell = Workload::spawn("/bin/bash", &["-c", "while :; do sleep 0.1; done"]);
    let run = diagnose_window(DURATION, &[], |_| {});
    let report = &run.report;
    let verdict = report["verdict"].as_str().unwrap_or_default();
    let entry = process_entry(report, shell.pid())
        .unwrap_or_else(|| panic!("the shell loop {} is not in the report", shell.pid()));
    let spawned = count(entry, "spawned");
    assert!(
        spawned >= MIN_SPAWNED,
        "the shell loop started {spawned} processes, fewer than {MIN_SPAWNED}:\n{entry:#}"
    );
    assert_exact_suspects("idle host with a slow shell loop", report, &[]);
    assert!(
        verdict.starts_with("Nothing stands out: the host is idle ("),
        "{verdict}"
    );
}
