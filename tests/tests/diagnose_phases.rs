//! End-to-end phase timings: a real diagnose run accounts for its wall time phase by phase in
//! report.json, and the phases add up to no more than the run took as seen from outside.

use std::time::Instant;

use profiler_tests::{
    assert_matches_schema, diagnose_into, number, read_json, require_root, serial, tempdir,
};

const PHASES: [&str; 8] = [
    "startup",
    "attach",
    "sampling",
    "collect",
    "detach",
    "symbolize",
    "analyze",
    "render",
];

#[test]
fn phases_add_up_within_the_runs_own_wall_time() {
    if !require_root("phases_add_up_within_the_runs_own_wall_time") {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let launched = Instant::now();
    let (out, _) = diagnose_into(dir.path(), "1s");
    let outside_ms = launched.elapsed().as_secs_f64() * 1e3;
    let report = read_json(&out.join("report.json"));
    assert_matches_schema(&report);
    // The kernel's BPF statistics are on for 100 ms of every second: a one-second run has its
    // programs' time scaled from about a tenth of it, and says so.
    let cost = &report["own_cost"];
    let share = number(cost, "bpf_measured_share");
    assert!((0.05..=0.3).contains(&share), "{cost:#}");
    assert!(number(cost, "bpf_run_time_ns") > 0.0, "{cost:#}");
    let phases = &report["own_cost"]["phases_ms"];
    let sum: f64 = PHASES.iter().map(|phase| number(phases, phase)).sum();
    let total = number(phases, "total");
    assert!(
        (sum - total).abs() < 1.0,
        "total {total} is not the sum {sum}:\n{phases:#}"
    );
    // Sampling ends at the deadline, never before it (the timer does not fire early).
    let sampling = number(phases, "sampling");
    assert!(
        sampling >= 999.0,
        "sampled {sampling} ms of a 1 s run:\n{phases:#}"
    );
    // Startup is known to 10 ms (clock ticks); everything else happened inside this window.
    assert!(
        total <= outside_ms + 10.0,
        "phases add up to {total} ms, the run took {outside_ms:.1} ms:\n{phases:#}"
    );
}
