//! `diagnose --victim`: starting from the process that is slow. A latency-sensitive waker
//! pinned with two burners on its CPU: its run-queue wait matches the kernel's own accounting
//! (/proc/PID/schedstat), the burners are its culprits, and its verdict, printed first, says
//! it was slowed behind them. The same waker alone: not slowed, idle by choice. A victim that
//! does not exist: one line, exit 2.

use std::thread;
use std::time::{Duration, Instant};

use profiler_tests::{
    Cgroup, ProfilerRun, REPORT_GRACE, Schedstat, Workload, allowed_cpus, array,
    assert_matches_schema, count, number, profiler_command, read_json, require_root, serial,
    tempdir, wait_pinned,
};
use serde_json::Value;

const BURNER_EXE: &str = env!("CARGO_BIN_EXE_burner");
const WAKER_EXE: &str = env!("CARGO_BIN_EXE_waker");
const DURATION: Duration = Duration::from_secs(4);
/// A wake-up every 2 ms: hundreds of waits behind the burners, well over the verdict's 50 ms,
/// while the few microseconds by which the profiler's and the kernel's clocks of each wait
/// differ (about 5 µs a wake-up, see diagnose_sched.rs) stay under the 10 %.
const INTERVAL_US: &str = "2000";
const WAIT_TOLERANCE: f64 = 0.10;
/// For window misalignment: the test reads schedstat just after `attached`, not at it.
const WAIT_SLACK_NS: f64 = 5e6;
/// Share of the waker's wait the burners must be named for (others ran on the CPU too:
/// kworkers, the profiler, this test).
const CULPRIT_SHARE: f64 = 0.7;

/// The last CPU we may use: CPU 0 tends to carry the housekeeping on a small host.
fn quiet_cpu() -> usize {
    *allowed_cpus().last().expect("at least the CPU we run on")
}

/// `diagnose --victim VICTIM` over `DURATION` in `format`: the finished run, its report.json
/// (its report.html's victim panel checked), and schedstat of `watched` over the sampled window.
fn diagnose_victim(
    victim: &str,
    format: &str,
    watched: u32,
) -> (profiler_tests::Finished, Value, Schedstat) {
    let dir = tempdir();
    let out = dir.path().join("out");
    let mut command = profiler_command();
    command
        .args(["diagnose", "--duration", "4s", "--format", format])
        .args(["--victim", victim, "--out"])
        .arg(&out)
        .current_dir(dir.path());
    let mut run = ProfilerRun::start(command);
    let attached = run.wait_attached();
    let before = Schedstat::read(watched);
    thread::sleep((attached + DURATION).saturating_duration_since(Instant::now()));
    let truth = Schedstat::read(watched).since(before);
    let done = run.finish(REPORT_GRACE);
    done.assert_success();
    let report = read_json(&out.join("report.json"));
    assert_matches_schema(&report);
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(
        html.contains("<section id=\"victim\">") && html.contains("class=\"budget\""),
        "report.html has no victim panel"
    );
    (done, report, truth)
}

#[test]
fn a_waker_behind_two_burners_was_slowed_and_names_them() {
    if !require_root("a_waker_behind_two_burners_was_slowed_and_names_them") {
        return;
    }
    let _serial = serial();
    let cpu = quiet_cpu().to_string();
    let burners = [
        Workload::spawn(BURNER_EXE, &["--cpu", &cpu]),
        Workload::spawn(BURNER_EXE, &["--cpu", &cpu]),
    ];
    let waker = Workload::spawn(WAKER_EXE, &["--cpu", &cpu, "--interval-us", INTERVAL_US]);
    // In a cgroup of its own, whose pressure is the waker's stalls alone.
    let cgroup = Cgroup::v2(&format!("profiler-victim-{}", waker.pid()));
    cgroup.adopt(waker.pid());
    for pid in [waker.pid()]
        .into_iter()
        .chain(burners.iter().map(Workload::pid))
    {
        wait_pinned(pid, quiet_cpu());
    }
    let (_, report, truth) = diagnose_victim(&waker.pid().to_string(), "json", waker.pid());
    let victim = &report["victim"];
    assert_eq!(
        victim["pids"],
        serde_json::json!([waker.pid()]),
        "{victim:#}"
    );
    let ours = count(victim, "runq_wait_ns") as f64;
    let kernel = truth.runq_wait_ns as f64;
    eprintln!(
        "victim runq_wait: profiler {:.1} ms, schedstat {:.1} ms",
        ours / 1e6,
        kernel / 1e6
    );
    assert!(
        (ours - kernel).abs() <= kernel * WAIT_TOLERANCE + WAIT_SLACK_NS,
        "run-queue wait {ours} ns against schedstat's {kernel} ns:\n{victim:#}"
    );
    let burner_pids: Vec<u32> = burners.iter().map(Workload::pid).collect();
    let culprits = array(victim, "culprits");
    let named = |c: &&Value| burner_pids.iter().any(|&pid| c["pid"] == pid);
    assert!(
        culprits.first().is_some_and(|c| named(&c)),
        "the largest culprit is not a burner:\n{victim:#}"
    );
    let by_burners: u64 = culprits
        .iter()
        .filter(named)
        .map(|c| count(c, "delay_ns"))
        .sum();
    assert!(
        by_burners as f64 >= ours * CULPRIT_SHARE,
        "the burners are named for {by_burners} ns of {ours} ns:\n{victim:#}"
    );
    // Its cgroup's own CPU pressure is the share of the run its one thread was runnable but
    // not running: its run-queue wait, as PSI clocks it.
    let stalls = array(victim, "cgroup_pressure")
        .iter()
        .find(|c| c["cgroup"] == cgroup.path.as_str())
        .unwrap_or_else(|| panic!("no pressure of {}:\n{victim:#}", cgroup.path));
    let psi = number(stalls, "cpu_some_percent");
    let waited = ours / (number(&report, "duration_s") * 1e9) * 100.0;
    eprintln!("cgroup CPU pressure {psi:.2} %, run-queue wait {waited:.2} % of the run");
    assert!(
        (psi - waited).abs() <= 0.3 * waited + 1.0,
        "cgroup CPU pressure {psi} % against a run-queue wait of {waited} % of the run:\n{victim:#}"
    );
    let verdict = victim["verdict"].as_str().unwrap_or_default();
    eprintln!("verdict: {verdict}");
    assert!(
        verdict.starts_with(&format!(
            "waker (pid {}) was slowed: it waited ",
            waker.pid()
        )) && verdict.contains("behind burner (2 processes)"),
        "{verdict}"
    );
}

#[test]
fn a_waker_alone_was_not_slowed_and_says_so_first() {
    if !require_root("a_waker_alone_was_not_slowed_and_says_so_first") {
        return;
    }
    let _serial = serial();
    let waker = Workload::spawn(WAKER_EXE, &["--cpu", &quiet_cpu().to_string()]);
    wait_pinned(waker.pid(), quiet_cpu());
    let (done, report, _) = diagnose_victim("waker", "text", waker.pid());
    let first = done.stdout.lines().next().unwrap_or_default();
    let expected = format!(
        "Victim: waker (pid {}) was not slowed: it was idle, waiting by choice",
        waker.pid()
    );
    assert!(first.starts_with(&expected), "{}", done.stdout);
    let victim = &report["victim"];
    let blocked = array(victim, "blocked");
    assert_eq!(
        blocked.first().map(|b| &b["why"]),
        Some(&Value::from("idle")),
        "{victim:#}"
    );
    // Its parts are the time of its one thread over the run, give or take the edges: 2 %, and
    // after the end the time the programs took to stop (the final reading and the detach of
    // the scheduler's tracepoints, which wait for RCU grace periods), during which a sleep
    // that ends is counted whole.
    let parts = ["on_cpu_ns", "runq_wait_ns", "blocked_ns"]
        .map(|field| count(victim, field))
        .iter()
        .sum::<u64>() as f64;
    let run_ns = report["duration_s"].as_f64().unwrap_or(0.0) * 1e9;
    let phases = &report["own_cost"]["phases_ms"];
    let stopping_ns = (number(phases, "collect") + number(phases, "detach")) * 1e6;
    assert!(
        parts >= run_ns * 0.98 && parts <= run_ns * 1.02 + stopping_ns,
        "its parts add up to {parts} ns over a {run_ns} ns run, {stopping_ns} ns to stop:\n\
         {victim:#}"
    );
}

#[test]
fn an_unknown_victim_is_one_line_and_exit_2() {
    if !require_root("an_unknown_victim_is_one_line_and_exit_2") {
        return;
    }
    let dir = tempdir();
    let mut command = profiler_command();
    command
        .args([
            "diagnose",
            "--duration",
            "1s",
            "--victim",
            "no-such-proc-x7",
        ])
        .current_dir(dir.path());
    let done = ProfilerRun::start(command).finish(REPORT_GRACE);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    let line = done.error_line();
    assert!(
        line.contains("no-such-proc-x7") && line.contains("--victim"),
        "{line}"
    );
    assert!(done.stdout.is_empty(), "{}", done.stdout);
}
