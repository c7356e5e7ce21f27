//! The verdict on CPU, named for harm, each scenario with its exact suspect set: a busy process
//! on a host with CPUs to spare harms nobody and is no suspect (it was one, for its share
//! alone); a threaded hog holding every CPU is the one CPU suspect (its own threads waiting for
//! each other are no second charge); a burner sharing its CPU with a latency-sensitive
//! neighbour is the one suspect, for the waits it caused; and two rogues at once, a noisy
//! neighbour and a memory hog on another CPU, are both named, each for its own harm.

use std::time::Duration;

use profiler_tests::{
    Workload, allowed_cpus, array, assert_exact_suspects, diagnose_window, process_entry,
    require_root, serial, stress_ng_memory_hog, wait_pinned,
};

const BURNER: &str = env!("CARGO_BIN_EXE_burner");
const WAKER: &str = env!("CARGO_BIN_EXE_waker");
const DURATION: Duration = Duration::from_secs(4);

/// The scenarios that share or leave CPUs need two of them.
fn two_cpus() -> (usize, usize) {
    let cpus = allowed_cpus();
    assert!(
        cpus.len() >= 2,
        "these scenarios need two CPUs to run on, this test may use {cpus:?}"
    );
    (cpus[0], cpus[1])
}

#[test]
fn a_busy_process_nobody_waits_for_is_no_suspect() {
    const TEST: &str = "a_busy_process_nobody_waits_for_is_no_suspect";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    two_cpus();
    let burner = Workload::spawn(BURNER, &[]);
    let run = diagnose_window(DURATION, &[], |_| {});
    let report = &run.report;
    let verdict = report["verdict"].as_str().unwrap_or_default();
    let entry = process_entry(report, burner.pid())
        .unwrap_or_else(|| panic!("the burner is not in the report:\n{verdict}"));
    let cores = entry["cpu"]["cores"].as_f64().unwrap_or(0.0);
    assert!(cores >= 0.8, "the burner used {cores} cores:\n{verdict}");
    assert_exact_suspects("busy but harmless", report, &[]);
    assert!(
        verdict.contains(&format!("burner (pid {}", burner.pid()))
            && verdict.contains("busy but harmless: no other application waited for a CPU"),
        "{verdict}"
    );
}

#[test]
fn a_threaded_hog_holding_every_cpu_is_the_one_cpu_suspect() {
    const TEST: &str = "a_threaded_hog_holding_every_cpu_is_the_one_cpu_suspect";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let threads = (2 * allowed_cpus().len()).to_string();
    let _hog = Workload::spawn(BURNER, &["--threads", &threads]);
    let run = diagnose_window(DURATION, &[], |_| {});
    let report = &run.report;
    assert_exact_suspects("threaded hog", report, &[("burner", "cpu")]);
    let reason = array(report, "suspects")[0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("while the host's CPUs were") || reason.contains("for a CPU it held"),
        "{reason}"
    );
}

/// A burner and a waker pinned to one CPU: the waker waits for the burner's CPU.
fn noisy_neighbour(cpu: usize) -> [Workload; 2] {
    let cpu = cpu.to_string();
    let pair = [
        Workload::spawn(BURNER, &["--cpu", &cpu]),
        Workload::spawn(WAKER, &["--cpu", &cpu]),
    ];
    for workload in &pair {
        wait_pinned(workload.pid(), cpu.parse().unwrap_or(0));
    }
    pair
}

#[test]
fn a_burner_sharing_its_cpu_with_a_latency_sensitive_neighbour_is_the_one_suspect() {
    const TEST: &str =
        "a_burner_sharing_its_cpu_with_a_latency_sensitive_neighbour_is_the_one_suspect";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let (cpu, _) = two_cpus();
    let _pair = noisy_neighbour(cpu);
    let run = diagnose_window(DURATION, &[], |_| {});
    let report = &run.report;
    assert_exact_suspects("noisy neighbour and a victim", report, &[("burner", "cpu")]);
    let reason = array(report, "suspects")[0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("waited"), "{reason}");
}

#[test]
fn two_rogues_at_once_are_both_named_each_for_its_harm() {
    const TEST: &str = "two_rogues_at_once_are_both_named_each_for_its_harm";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let (cpu, other) = two_cpus();
    let _pair = noisy_neighbour(cpu);
    let mut hog = None;
    let run = diagnose_window(Duration::from_secs(8), &[], |_| {
        // 2 GiB allocated and populated in the run on the other CPU, then held.
        hog = Some(stress_ng_memory_hog(2048, Some(other)));
    });
    drop(hog);
    assert_exact_suspects(
        "two rogues: a noisy neighbour and a memory hog",
        &run.report,
        &[("burner", "cpu"), ("stress-ng-vm", "mem")],
    );
}
