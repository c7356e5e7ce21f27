//! `diagnose --victim` on real services and at the edges: an idle redis-server (its main
//! thread in epoll, its background threads parked on futexes from before the run) is idle by
//! choice, not slowed, and its parts add up to the run's wall time times its threads; two
//! redis-servers named by their command name are summed and listed each; a victim that exits
//! during the run is accounted for its life and said to have exited.

use std::thread;
use std::time::{Duration, Instant};

use profiler_tests::{
    ProfilerRun, REPORT_GRACE, Workload, array, count, free_port, number, profiler_command,
    read_json, redis_server, require_root, serial, tempdir,
};
use serde_json::Value;

const WAKER: &str = env!("CARGO_BIN_EXE_waker");
/// The bound on the budget against wall time times threads.
const BUDGET_TOLERANCE: f64 = 0.02;
/// What the verdict calls slowing at the least (analyze/victim.rs): culprits of less than this
/// are not named.
const SLOWED_MIN_NS: u64 = 50_000_000;

/// `diagnose --victim VICTIM --duration DURATION --format json`: its report.json, and when
/// sampling started (the line saying it attached).
fn diagnose_victim(victim: &str, duration: &str) -> (Value, Instant) {
    let dir = tempdir();
    let out = dir.path().join("out");
    let mut command = profiler_command();
    command
        .args(["diagnose", "--duration", duration, "--format", "json"])
        .args(["--victim", victim, "--out"])
        .arg(&out)
        .current_dir(dir.path());
    let mut run = ProfilerRun::start(command);
    let attached = run.wait_attached();
    run.finish(REPORT_GRACE).assert_success();
    (read_json(&out.join("report.json")), attached)
}

/// Threads of `pid` now.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| tasks.count())
        .unwrap_or(0)
}

/// On a CPU, waiting for one and asleep, summed.
fn parts(of: &Value) -> f64 {
    ["on_cpu_ns", "runq_wait_ns", "blocked_ns"]
        .map(|field| count(of, field))
        .iter()
        .sum::<u64>() as f64
}

/// The time the programs took to stop after the run, during which a sleep that ends is
/// counted whole (see diagnose_victim.rs).
fn stopping_ns(report: &Value) -> f64 {
    let phases = &report["own_cost"]["phases_ms"];
    (number(phases, "collect") + number(phases, "detach")) * 1e6
}

#[test]
fn an_idle_redis_server_is_idle_by_choice_and_its_threads_add_up() {
    if !require_root("an_idle_redis_server_is_idle_by_choice_and_its_threads_add_up") {
        return;
    }
    let _serial = serial();
    let redis = redis_server(free_port());
    // Its background threads start after it accepts: give them a moment, and count them
    // after the run.
    thread::sleep(Duration::from_millis(300));
    let (report, _) = diagnose_victim(&redis.pid().to_string(), "3s");
    let threads = threads(redis.pid());
    let victim = &report["victim"];
    eprintln!("{threads} threads: {victim:#}");
    let verdict = victim["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.starts_with(&format!(
            "redis-server (pid {}) was not slowed: it was idle, waiting by choice",
            redis.pid()
        )),
        "{verdict}"
    );
    assert!(!verdict.contains("behind"), "{verdict}");
    let blamed: u64 = array(victim, "culprits")
        .iter()
        .map(|c| count(c, "delay_ns"))
        .sum();
    assert!(
        blamed < SLOWED_MIN_NS,
        "culprits of an idle server:\n{victim:#}"
    );
    // Its background threads sleep from before the run: read at the edges, not missed.
    assert!(
        count(victim, "slept_through") >= 1,
        "no thread slept through:\n{victim:#}"
    );
    let wall = report["duration_s"].as_f64().unwrap_or(0.0) * 1e9 * threads as f64;
    let parts = parts(victim);
    assert!(
        parts >= wall * (1.0 - BUDGET_TOLERANCE)
            && parts <= wall * (1.0 + BUDGET_TOLERANCE) + stopping_ns(&report) * threads as f64,
        "its parts add up to {parts} ns against {wall} ns of {threads} threads:\n{victim:#}"
    );
}

#[test]
fn two_servers_of_one_name_are_summed_and_listed_each() {
    if !require_root("two_servers_of_one_name_are_summed_and_listed_each") {
        return;
    }
    let _serial = serial();
    let servers = [redis_server(free_port()), redis_server(free_port())];
    let (report, _) = diagnose_victim("redis-server", "2s");
    let victim = &report["victim"];
    let mut pids: Vec<u64> = array(victim, "pids")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    pids.sort_unstable();
    let mut ours: Vec<u64> = servers.iter().map(|s| u64::from(s.pid())).collect();
    ours.sort_unstable();
    // Another redis-server on the host would be named too; ours must be.
    assert!(ours.iter().all(|pid| pids.contains(pid)), "{victim:#}");
    let members = array(victim, "members");
    assert_eq!(members.len(), pids.len(), "{victim:#}");
    for field in ["on_cpu_ns", "runq_wait_ns", "blocked_ns"] {
        let sum: u64 = members.iter().map(|m| count(m, field)).sum();
        assert_eq!(sum, count(victim, field), "{field}:\n{victim:#}");
    }
    let verdict = victim["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.starts_with(&format!("redis-server ({} processes) was ", pids.len())),
        "{verdict}"
    );
}

#[test]
fn a_victim_that_exits_during_the_run_is_accounted_for_its_life() {
    if !require_root("a_victim_that_exits_during_the_run_is_accounted_for_its_life") {
        return;
    }
    let _serial = serial();
    let mut waker = Workload::spawn(WAKER, &["--seconds", "2"]);
    let pid = waker.pid();
    let started = Instant::now();
    let (report, attached) = diagnose_victim(&pid.to_string(), "4s");
    let status = waker.wait_exit(Instant::now() + Duration::from_secs(5));
    assert!(status.success(), "waker: {status}");
    let victim = &report["victim"];
    eprintln!("{victim:#}");
    let members = array(victim, "members");
    assert_eq!(members.len(), 1, "{victim:#}");
    assert_eq!(members[0]["exited"], true, "{victim:#}");
    // It lived 2 s from its start; the run saw it from the attach.
    let seen_ns = (Duration::from_secs(2).saturating_sub(attached - started)).as_nanos() as f64;
    let parts = parts(victim);
    assert!(
        parts >= seen_ns * 0.9 && parts <= seen_ns * 1.1 + 5e7,
        "its parts add up to {parts} ns over the {seen_ns} ns the run saw it live:\n{victim:#}"
    );
    let verdict = victim["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.starts_with(&format!("waker (pid {pid}, exited during the run) was ")),
        "{verdict}"
    );
}
