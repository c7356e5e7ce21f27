//! `profiler record`'s escalation end to end. At its defaults no hook per syscall or per packet
//! is loaded; a planted syscall storm and a loopback flood each set off an incident window whose
//! exact counts name them suspect #1, counted in `profiler_escalations_total`; incidents never
//! overlap and keep the cooldown; a host starved of CPUs sets off a pressure incident; a quiet
//! host sets off none in two minutes; `--no-escalate` never escalates.

use std::{
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use profiler_tests::{
    ProfilerRun, REPORT_GRACE, Workload, array, count, free_port, http_get, number, process_entry,
    program_names_held_by, read_json, record_into, record_windows, require_root, serial, tempdir,
};
use serde_json::Value;

const STORM_EXE: &str = env!("CARGO_BIN_EXE_storm");
const NETBLAST_EXE: &str = env!("CARGO_BIN_EXE_netblast");
const BURNER_EXE: &str = env!("CARGO_BIN_EXE_burner");

/// Regular windows longer than any test here: the only windows written mid-run are incidents.
const WINDOW: &str = "5m";
/// From the workload's start to its incident window on disk: two ticks to trigger, the
/// incident's 10 s, symbolizing and writing, on a slow host. A deadline, not a measurement:
/// `cargo xtask bench escalation` measures the time.
const INCIDENT_DEADLINE: Duration = Duration::from_secs(45);
/// Programs of the exact hooks, as the kernel names them (15 bytes): the socket hooks as raw
/// tracepoints, or classic ones without kernel BTF.
const EXACT_PROGRAMS: [&str; 5] = [
    "sys_enter",
    "sock_send_raw",
    "sock_recv_raw",
    "sock_send_lengt",
    "sock_recv_lengt",
];
const INCIDENT_LINE: &str = "profiler: incident:";

fn record(root: &Path, extra: &[&str]) -> ProfilerRun {
    record_into(root, &[&["--window", WINDOW], extra].concat())
}

/// For the tests of the syscall trigger: a storm or a flood may also starve a small host's
/// CPUs, and the pressure trigger would then race the one under test.
const NO_PRESSURE: [&str; 2] = ["--escalate-pressure", "off"];

fn incidents(root: &Path) -> Vec<PathBuf> {
    record_windows(root)
        .into_iter()
        .filter(|dir| dir.to_string_lossy().ends_with("-incident"))
        .filter(|dir| dir.join("report.json").is_file())
        .collect()
}

/// The first incident window's report, waiting for it up to [`INCIDENT_DEADLINE`].
fn first_incident(root: &Path, since: Instant) -> Value {
    loop {
        if let Some(dir) = incidents(root).first() {
            eprintln!(
                "incident window {} on disk {:.1} s after the workload started",
                dir.display(),
                since.elapsed().as_secs_f64()
            );
            return read_json(&dir.join("report.json"));
        }
        assert!(
            since.elapsed() < INCIDENT_DEADLINE,
            "no incident window in {INCIDENT_DEADLINE:?}: {:?}",
            record_windows(root)
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// The exact-hook programs `pid` holds.
fn exact_programs(pid: u32) -> Vec<String> {
    program_names_held_by(pid)
        .into_iter()
        .filter(|name| EXACT_PROGRAMS.contains(&name.as_str()))
        .collect()
}

/// Checks an incident report names `pid` suspect #1 with the trigger it says.
fn assert_incident_names(report: &Value, pid: u32, comm: &str) {
    let incident = &report["incident"];
    assert_eq!(incident["trigger"], "syscalls", "{incident:#}");
    assert_eq!(incident["pid"], pid, "{incident:#}");
    assert_eq!(
        report["signals"]["syscalls"], "on",
        "{:#}",
        report["signals"]
    );
    assert_eq!(report["signals"]["net"], "on", "{:#}", report["signals"]);
    let first = &array(report, "suspects")[0];
    assert_eq!(
        first["pid"], pid,
        "suspect #1 is not the {comm}: {:#}",
        report["suspects"]
    );
    assert_eq!(first["comm"], comm, "{first:#}");
}

#[test]
fn storm_sets_off_an_incident_window_with_exact_counts() {
    if !require_root("storm_sets_off_an_incident_window_with_exact_counts") {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let root = dir.path().join("rec");
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let mut run = record(
        &root,
        &[&["--metrics", metrics.as_str()][..], &NO_PRESSURE].concat(),
    );
    let always_on = exact_programs(run.pid());
    assert!(
        always_on.is_empty(),
        "exact hooks at record's defaults: {always_on:?}"
    );

    let started = Instant::now();
    let storm = Workload::spawn(STORM_EXE, &["--getppid", "100000", "--loop-seconds", "30"]);
    let line = run.wait_line(INCIDENT_LINE, INCIDENT_DEADLINE);
    let line = line.unwrap_or_else(|| panic!("no `{INCIDENT_LINE}` line"));
    assert!(line.contains(&format!("pid {}", storm.pid())), "{line}");
    let escalated = exact_programs(run.pid());
    assert!(
        escalated.contains(&"sys_enter".to_owned()),
        "during the incident: {escalated:?}"
    );

    let report = first_incident(&root, started);
    assert_incident_names(&report, storm.pid(), "storm");
    let storm_entry = process_entry(&report, storm.pid()).expect("the storm in its incident");
    let syscalls = &storm_entry["syscalls"];
    assert_eq!(syscalls["top"][0]["name"], "getppid", "{syscalls:#}");
    // Exact counts: a getppid loop makes hundreds of thousands a second even traced.
    assert!(number(syscalls, "per_second") > 100_000.0, "{syscalls:#}");
    let scraped = http_get(port, "/metrics").expect("scraping the metrics");
    assert!(
        scraped.contains("profiler_escalations_total{trigger=\"syscalls\"} 1"),
        "{}",
        scraped
            .lines()
            .filter(|l| l.contains("escalation"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let after = exact_programs(run.pid());
    assert!(
        after.is_empty(),
        "exact hooks left after the incident: {after:?}"
    );

    let storm_pid = storm.pid();
    drop(storm);
    run.signal(libc::SIGINT);
    let done = run.finish(REPORT_GRACE);
    done.assert_success();
    assert_alert_sink_heard(&root, storm_pid);
    let regular: Vec<PathBuf> = record_windows(&root)
        .into_iter()
        .filter(|dir| !dir.to_string_lossy().ends_with("-incident"))
        .collect();
    for window in &regular {
        let report = read_json(&window.join("report.json"));
        assert_eq!(report["signals"]["syscalls"], "off", "{}", window.display());
        assert!(report["incident"].is_null(), "{}", window.display());
    }
    assert_eq!(regular.len(), 1, "{regular:?}");
}

/// alerts.jsonl has the incident firing with its process, then resolved with its window.
fn assert_alert_sink_heard(root: &Path, pid: u32) {
    let text = std::fs::read_to_string(root.join("alerts.jsonl")).expect("reading alerts.jsonl");
    let events: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("alerts.jsonl lines are JSON"))
        .filter(|event: &Value| event["rule"] == "incident: syscalls")
        .collect();
    let states: Vec<&Value> = events.iter().map(|e| &e["state"]).collect();
    assert_eq!(states, ["firing", "resolved"], "{text}");
    assert_eq!(events[0]["pid"], pid, "{text}");
    let window = events[1]["incident"]["window"].as_str().expect("a window");
    assert!(
        incidents(root).iter().any(|dir| dir.ends_with(window)),
        "{window} is not an incident window: {:?}",
        incidents(root)
    );
}

#[test]
fn loopback_flood_sets_off_an_incident_naming_it() {
    if !require_root("loopback_flood_sets_off_an_incident_naming_it") {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let root = dir.path().join("rec");
    let run = record(&root, &[&["--no-metrics"][..], &NO_PRESSURE].concat());
    let started = Instant::now();
    let flood = Workload::spawn(
        NETBLAST_EXE,
        &["--bytes", "100000000", "--loop-seconds", "30"],
    );
    let report = first_incident(&root, started);
    assert_incident_names(&report, flood.pid(), "netblast");
    let net = &process_entry(&report, flood.pid()).expect("the flood in its incident")["net"];
    assert!(
        count(net, "tx_bytes") > 0 && count(net, "rx_bytes") > 0,
        "{net:#}"
    );
    assert_eq!(
        array(&report, "suspects")[0]["resource"],
        "net",
        "{:#}",
        report["suspects"]
    );
    drop(flood);
    run.signal(libc::SIGINT);
    run.finish(REPORT_GRACE).assert_success();
}

#[test]
fn incidents_never_overlap_and_keep_the_cooldown() {
    if !require_root("incidents_never_overlap_and_keep_the_cooldown") {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let root = dir.path().join("rec");
    let cooldown = 4.0;
    let run = record(
        &root,
        &[
            "--no-metrics",
            "--escalate-for",
            "2s",
            "--escalate-cooldown",
            "4s",
            "--escalate-pressure",
            "off",
        ],
    );
    let storm = Workload::spawn(STORM_EXE, &["--getppid", "100000", "--loop-seconds", "30"]);
    thread::sleep(Duration::from_secs(20));
    drop(storm);
    run.signal(libc::SIGINT);
    let done = run.finish(REPORT_GRACE);
    done.assert_success();

    let mut spans: Vec<(f64, f64)> = incidents(&root)
        .iter()
        .map(|dir| {
            let report = read_json(&dir.join("report.json"));
            let start: jiff::Timestamp = report["started_at"].as_str().unwrap().parse().unwrap();
            let start = start.as_millisecond() as f64 / 1000.0;
            (start, start + number(&report, "duration_s"))
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    eprintln!("incident spans (s): {spans:?}");
    // Trigger (2 ticks) + 2 s + 4 s quiet + 2 ticks: one every ~8 s, so 2 or 3 in 20 s.
    assert!((2..=3).contains(&spans.len()), "{spans:?}\n{}", done.stderr);
    let said = done
        .stderr
        .lines()
        .filter(|l| l.starts_with(INCIDENT_LINE))
        .count();
    assert_eq!(said, spans.len(), "{}", done.stderr);
    for pair in spans.windows(2) {
        let gap = pair[1].0 - pair[0].1;
        assert!(gap >= 0.0, "incidents overlap: {pair:?}");
        // The quiet time starts once the incident's report is read, a moment after it ends.
        assert!(
            gap >= cooldown - 0.5,
            "gap {gap:.2} s under the {cooldown} s cooldown: {pair:?}"
        );
    }
}

#[test]
fn a_cpu_starved_host_sets_off_a_pressure_incident() {
    if !require_root("a_cpu_starved_host_sets_off_a_pressure_incident") {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let root = dir.path().join("rec");
    let run = record(&root, &["--no-metrics"]);
    // Two burners per CPU: some task always waits for a CPU.
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let burners: Vec<Workload> = (0..2 * cpus)
        .map(|_| Workload::spawn(BURNER_EXE, &["--seconds", "40"]))
        .collect();
    let report = first_incident(&root, started);
    let incident = &report["incident"];
    assert_eq!(incident["trigger"], "cpu_pressure", "{incident:#}");
    assert!(incident["pid"].is_null(), "{incident:#}");
    assert_eq!(
        incident["escalated"],
        serde_json::json!(["syscalls", "net"]),
        "{incident:#}"
    );
    let stalled = number(&report["host"]["pressure"], "cpu_some_percent");
    assert!(stalled > 50.0, "{:#}", report["host"]);
    let first = &array(&report, "suspects")[0];
    let pids: Vec<u32> = burners.iter().map(Workload::pid).collect();
    assert!(
        pids.iter().any(|&pid| first["pid"] == pid),
        "suspect #1 is not a burner {pids:?}: {:#}",
        report["suspects"]
    );
    drop(burners);
    run.signal(libc::SIGINT);
    run.finish(REPORT_GRACE).assert_success();
}

#[test]
fn a_quiet_host_and_no_escalate_set_off_nothing() {
    if !require_root("a_quiet_host_and_no_escalate_set_off_nothing") {
        return;
    }
    let _serial = serial();
    let dir = tempdir();

    let root = dir.path().join("never");
    let run = record(&root, &["--no-metrics", "--no-escalate"]);
    let storm = Workload::spawn(STORM_EXE, &["--getppid", "100000", "--loop-seconds", "30"]);
    thread::sleep(Duration::from_secs(6));
    let held = exact_programs(run.pid());
    drop(storm);
    run.signal(libc::SIGINT);
    let done = run.finish(REPORT_GRACE);
    done.assert_success();
    assert!(held.is_empty(), "--no-escalate attached {held:?}");
    assert!(incidents(&root).is_empty(), "{}", done.stderr);
    assert!(!done.stderr.contains(INCIDENT_LINE), "{}", done.stderr);

    // The test host with nothing planted: its daemons and kernel threads only.
    let root = dir.path().join("quiet");
    let run = record(&root, &["--no-metrics"]);
    thread::sleep(Duration::from_secs(120));
    run.signal(libc::SIGINT);
    let done = run.finish(REPORT_GRACE);
    done.assert_success();
    assert!(incidents(&root).is_empty(), "{}", done.stderr);
    assert!(!done.stderr.contains(INCIDENT_LINE), "{}", done.stderr);
}
