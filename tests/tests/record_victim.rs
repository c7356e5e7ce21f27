//! `record --victim`: a latency-sensitive waker pinned with two burners on its CPU, watched as
//! the victim. Its time is in every window's report.json (`victims`) with the burners as its
//! culprits, in the metrics (`profiler_victim_seconds_total`, by state, and
//! `profiler_victim_delay_seconds_total`, by culprit), and a `victim.runq_wait_ratio` rule
//! fires naming it, the burners in its evidence. A victim rule without a victim is a usage
//! error.

use std::time::{Duration, Instant};

use profiler_tests::{
    ProfilerRun, Workload, allowed_cpus, array, count, free_port, http_get, profiler_command,
    read_json, record_windows, require_root, serial, tempdir, utf8, wait_for_alert, wait_pinned,
};
use serde_json::Value;

const BURNER: &str = env!("CARGO_BIN_EXE_burner");
const WAKER: &str = env!("CARGO_BIN_EXE_waker");
/// Behind two burners, a waker waking every 2 ms waits some 4 % of the time (see
/// diagnose_victim.rs); alone, well under 1 %.
const RULE: &str = "victim.runq_wait_ratio > 0.01 for 2s";
/// Loading the programs, then two ticks over the threshold, on a host that may be busy.
const FIRING_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// One series' value in an exposition, `None` when absent.
fn series(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .and_then(|value| value.trim().parse().ok())
}

#[test]
fn a_watched_victim_has_its_time_in_windows_metrics_and_alerts() {
    if !require_root("a_watched_victim_has_its_time_in_windows_metrics_and_alerts") {
        return;
    }
    let _serial = serial();
    let cpu = *allowed_cpus().last().expect("a CPU");
    let cpu_arg = cpu.to_string();
    let burners = [
        Workload::spawn(BURNER, &["--cpu", &cpu_arg]),
        Workload::spawn(BURNER, &["--cpu", &cpu_arg]),
    ];
    let waker = Workload::spawn(WAKER, &["--cpu", &cpu_arg, "--interval-us", "2000"]);
    let burner_pids: Vec<u32> = burners.iter().map(Workload::pid).collect();
    for pid in burner_pids.iter().copied().chain([waker.pid()]) {
        wait_pinned(pid, cpu);
    }
    let dir = tempdir();
    let root = dir.path().join("record");
    let alerts = root.join("alerts.jsonl");
    let port = free_port();
    let mut command = profiler_command();
    command
        .args(["record", "--out", utf8(&root), "--window", "2s"])
        .args(["--metrics", &format!("127.0.0.1:{port}")])
        .args(["--victim", "waker", "--alert", RULE])
        .current_dir(dir.path());
    let run = ProfilerRun::start(command);
    let (run, firing) = wait_for_alert(run, &alerts, FIRING_TIMEOUT, |event| {
        event["state"] == "firing" && event["figure"] == "victim.sched.runq_wait_ratio"
    });
    eprintln!("firing: {firing:#}");
    assert_eq!(firing["pid"], waker.pid(), "{firing:#}");
    assert_eq!(firing["app"], "waker", "{firing:#}");
    let culprits = array(&firing["evidence"], "culprits");
    assert!(
        culprits
            .first()
            .is_some_and(|c| burner_pids.iter().any(|&p| c["pid"] == p)),
        "the evidence does not name a burner first:\n{firing:#}"
    );

    let text = http_get(port, "/metrics").unwrap_or_else(|err| panic!("scrape: {err}"));
    let state = r#"profiler_victim_seconds_total{victim="waker",state="#;
    let waited = series(&text, &format!(r#"{state}"runq_wait"}}"#));
    let ran = series(&text, &format!(r#"{state}"on_cpu"}}"#));
    let behind = r#"profiler_victim_delay_seconds_total{victim="waker",culprit="burner"}"#;
    let behind = series(&text, behind);
    let victim_lines: Vec<&str> = text.lines().filter(|l| l.contains("victim")).collect();
    assert!(
        waited.is_some_and(|s| s > 0.0) && ran.is_some_and(|s| s > 0.0),
        "no victim time in the metrics:\n{victim_lines:#?}"
    );
    assert!(
        behind.is_some_and(|s| s > 0.0 && s <= waited.unwrap_or(0.0) + 1e-6),
        "the burners' delay is not a part of the victim's wait:\n{victim_lines:#?}"
    );

    run.signal(libc::SIGTERM);
    let done = run.finish(STOP_TIMEOUT);
    done.assert_success();
    let started = Instant::now();
    let windows = record_windows(&root);
    let accounted: Vec<Value> = windows
        .iter()
        .map(|window| read_json(&window.join("report.json")))
        .filter_map(|report| report["victims"].as_array()?.first().cloned())
        .collect();
    assert!(
        !accounted.is_empty(),
        "no window accounts for the victim ({} windows, {:?}):\n{}",
        windows.len(),
        started.elapsed(),
        done.stderr
    );
    let slowed = accounted.iter().find(|v| {
        let by_burners: u64 = array(v, "culprits")
            .iter()
            .filter(|c| burner_pids.iter().any(|&p| c["pid"] == p) && c["cause"] == "cpu")
            .map(|c| count(c, "delay_ns"))
            .sum();
        count(v, "runq_wait_ns") > 0 && by_burners > 0
    });
    let slowed = slowed.unwrap_or_else(|| panic!("no window names the burners:\n{accounted:#?}"));
    assert_eq!(slowed["name"], "waker", "{slowed:#}");
    assert_eq!(
        slowed["pids"],
        serde_json::json!([waker.pid()]),
        "{slowed:#}"
    );
    let verdict = slowed["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.starts_with(&format!("waker (pid {})", waker.pid())),
        "{verdict}"
    );
}

#[test]
fn a_victim_rule_without_a_victim_is_a_usage_error() {
    if !require_root("a_victim_rule_without_a_victim_is_a_usage_error") {
        return;
    }
    let dir = tempdir();
    let root = dir.path().join("record");
    let mut command = profiler_command();
    command
        .args(["record", "--out", utf8(&root), "--no-metrics"])
        .args(["--alert", "victim.runq_wait_ratio > 0.2"])
        .current_dir(dir.path());
    let done = ProfilerRun::start(command).finish(STOP_TIMEOUT);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    let line = done.error_line();
    assert!(line.contains("--victim"), "{line}");
    assert!(!root.exists(), "{} was created", root.display());
}
