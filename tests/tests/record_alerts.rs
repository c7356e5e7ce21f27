//! End-to-end alerts of `profiler record`: a CPU burner fires a `cpu.cores` rule into
//! alerts.jsonl, with the evidence, and resolves it once killed; a malformed rule is a usage
//! error before anything runs.

use std::time::Duration;

use profiler_tests::{
    ProfilerRun, Workload, profiler_command, read_alerts, require_root, serial, tempdir, utf8,
    wait_for_alert,
};
use serde_json::Value;

const BURNER: &str = env!("CARGO_BIN_EXE_burner");

const RULE: &str = "cpu.cores > 0.8 for 2s";

/// Generous: loading the BPF programs, then two ticks over the threshold, on a host that may be
/// busy with other builds (which can also hold the burner under 0.8 cores for a while).
const FIRING_TIMEOUT: Duration = Duration::from_secs(90);

/// The burner gone, its process leaves the next tick's report.
const RESOLVED_TIMEOUT: Duration = Duration::from_secs(30);

/// Stopping needs only detaching and writing the current window.
const EXIT_AFTER_SIGNAL: Duration = Duration::from_secs(30);

/// Usage errors come before anything is loaded.
const ERROR_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn burner_fires_a_cpu_alert_and_resolves_it_when_killed() {
    if !require_root("burner_fires_a_cpu_alert_and_resolves_it_when_killed") {
        return;
    }
    let _serial = serial();
    let burner = Workload::spawn(BURNER, &[]);
    let pid = burner.pid();
    let dir = tempdir();
    let out = dir.path().join("record");
    let alerts = out.join("alerts.jsonl");
    let mut command = profiler_command();
    command
        .args(["record", "--out"])
        .arg(&out)
        .args(["--window", "2s", "--alert", RULE, "--no-metrics"])
        .current_dir(dir.path());
    // Killed on drop, so a failed assertion does not leave it running.
    let run = ProfilerRun::start(command);

    // The rule's own events: the incident the alert sets off is told to the sink too, with
    // the same pid and its own rule (`incident: alert`).
    let (run, firing) = wait_for_alert(run, &alerts, FIRING_TIMEOUT, |event| {
        event["state"] == "firing" && event["pid"] == pid && event["rule"] == RULE
    });
    assert_eq!(
        firing["rule"], RULE,
        "rule text is the canonical one:\n{firing:#}"
    );
    assert_eq!(firing["figure"], "cpu.cores", "{firing:#}");
    assert_eq!(firing["comm"], "burner", "{firing:#}");
    assert!(
        firing["app"].as_str().is_some_and(|app| !app.is_empty()),
        "app is the cgroup or the comm:\n{firing:#}"
    );
    let value = firing["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("firing without a value:\n{firing:#}"));
    assert!(value > 0.8, "fired at {value} cores:\n{firing:#}");
    assert_eq!(firing["threshold"].as_f64(), Some(0.8), "{firing:#}");
    let since = timestamp(&firing, "since");
    let at = timestamp(&firing, "at");
    assert!(since <= at, "since {since} after at {at}");
    let hottest = firing["evidence"]["hottest"].as_str();
    assert!(
        hottest.is_some_and(|function| !function.is_empty()),
        "no hottest function in the evidence:\n{firing:#}"
    );
    assert!(firing["evidence"]["top_stacks"].is_array(), "{firing:#}");
    assert!(firing["evidence"]["victims"].is_array(), "{firing:#}");

    drop(burner);
    let (run, resolved) = wait_for_alert(run, &alerts, RESOLVED_TIMEOUT, |event| {
        event["state"] == "resolved" && event["pid"] == pid && event["rule"] == RULE
    });
    assert_eq!(resolved["rule"], RULE, "{resolved:#}");
    assert_eq!(resolved["comm"], "burner", "{resolved:#}");
    assert_eq!(
        resolved["since"], firing["since"],
        "a resolution carries the since of its firing:\n{resolved:#}"
    );
    assert!(timestamp(&resolved, "at") > at, "{resolved:#}");

    run.signal(libc::SIGTERM);
    let done = run.finish(EXIT_AFTER_SIGNAL);
    done.assert_success();
    // Exactly one firing for the burner: firing is said once, not every tick.
    let firings = read_alerts(&alerts)
        .into_iter()
        .filter(|event| event["state"] == "firing" && event["pid"] == pid)
        .filter(|event| event["rule"] == RULE)
        .count();
    assert_eq!(firings, 1, "stderr:\n{}", done.stderr);
    // And the incident it set off: firing, then resolved once its window was written.
    let incident: Vec<String> = read_alerts(&alerts)
        .into_iter()
        .filter(|event| event["rule"] == "incident: alert")
        .map(|event| event["state"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(incident, ["firing", "resolved"], "stderr:\n{}", done.stderr);
}

#[test]
fn malformed_alert_rule_is_a_usage_error() {
    if !require_root("malformed_alert_rule_is_a_usage_error") {
        return;
    }
    let cwd = tempdir();
    let out = cwd.path().join("record");
    let mut command = profiler_command();
    command
        .args(["record", "--out", utf8(&out)])
        .args(["--alert", "cpu.cores >> 3", "--no-metrics"])
        .current_dir(cwd.path());
    let done = ProfilerRun::start(command).finish(ERROR_TIMEOUT);
    let line = done.error_line();
    assert!(
        line.contains("cpu.cores >> 3") && line.contains("unknown operator \">>\""),
        "error does not name the rule and its problem: {line}"
    );
    assert!(
        line.contains(">="),
        "error does not name the operators to use: {line}"
    );
    assert!(!out.exists(), "{} was created", out.display());
}

/// An event's RFC 3339 timestamp field. They are UTC with milliseconds, all the same length, so
/// their text sorts as they do in time.
fn timestamp(event: &Value, field: &str) -> String {
    let text = event[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string:\n{event:#}"));
    let well_formed = text.len() == "2026-01-01T10:00:00.000Z".len()
        && text.ends_with('Z')
        && text.as_bytes()[10] == b'T'
        && text.as_bytes()[19] == b'.';
    assert!(
        well_formed,
        "{field} {text:?} is not RFC 3339 UTC with milliseconds"
    );
    text.to_owned()
}
