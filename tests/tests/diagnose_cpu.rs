//! End-to-end CPU diagnosis: the profiler must single out a CPU burner holding every CPU next to
//! an idle process, measure its CPU like the kernel's own accounting does, and show its stacks;
//! also covers text output and `--pid` filtering.

use std::thread;
use std::time::{Duration, Instant};

use profiler_tests::{
    ProfilerRun, REPORT_GRACE, Workload, allowed_cpus, array, assert_folded_well_formed,
    assert_matches_schema, cpu_seconds, diagnose, diagnose_into, file_mode, folded_lines_of,
    frames_in_order, number, process_entry, profiler_command, read_json, require_root, serial,
    tempdir, utf8,
};
use serde_json::Value;

const BURNER: &str = env!("CARGO_BIN_EXE_burner");
const SLEEPER: &str = env!("CARGO_BIN_EXE_sleeper");

const INNER: &str = "burner_inner_gamma";
const MIDDLE: &str = "burner_middle_beta";
const OUTER: &str = "burner_outer_alpha";

/// Allowed gap between the profiler's cores and /proc's utime+stime over the same window.
const CORES_TOLERANCE: f64 = 0.1;

#[test]
fn burner_is_the_cpu_suspect_and_sleeper_is_not() {
    if !require_root("burner_is_the_cpu_suspect_and_sleeper_is_not") {
        return;
    }
    let _serial = serial();
    // A thread per CPU: the host has none to spare, the harm that makes a CPU suspect (one
    // thread on an idle host of several CPUs harms nobody).
    let threads = allowed_cpus().len().to_string();
    let burner = Workload::spawn(BURNER, &["--threads", &threads]);
    let sleeper = Workload::spawn(SLEEPER, &[]);
    let dir = tempdir();
    let out = dir.path().join("out");
    let requested = Duration::from_secs(5);

    let run_cpu_before = cpu_seconds(burner.pid());
    let run_started = Instant::now();
    let mut command = profiler_command();
    command
        .args(["diagnose", "--duration", "5s", "--format", "json", "--out"])
        .arg(&out)
        .current_dir(dir.path());
    let mut run = ProfilerRun::start(command);
    // The reference window is the profiler's own, attach to attach + duration: startup (BPF
    // load) and teardown (symbolization) take seconds in which the burner keeps burning, so a
    // window around the whole run would overstate the burner's rate by that much.
    let attached = run.wait_attached();
    let window_cpu_before = cpu_seconds(burner.pid());
    thread::sleep((attached + requested).saturating_duration_since(Instant::now()));
    let window_cpu_after = cpu_seconds(burner.pid());
    let done = run.finish(REPORT_GRACE);
    let run_cpu = cpu_seconds(burner.pid()) - run_cpu_before;
    let run_wall = run_started.elapsed().as_secs_f64();
    done.assert_success();

    let report = done.stdout_json();
    let file_report = read_json(&out.join("report.json"));
    assert_eq!(report, file_report, "stdout JSON differs from report.json");
    assert_matches_schema(&report);
    assert_eq!(report["schema"], "profiler.report/v1");
    assert_eq!(report["frequency_hz"], 99, "default frequency");
    let duration_s = number(&report, "duration_s");
    assert!(
        (4.5..=7.0).contains(&duration_s),
        "duration_s {duration_s} for --duration 5s"
    );

    let suspects = array(&report, "suspects");
    let top = suspects
        .first()
        .unwrap_or_else(|| panic!("no suspects:\n{report:#}"));
    assert_eq!(
        top["pid"],
        burner.pid(),
        "top suspect is {} (pid {}, {} cores), not the burner; if it is a real process, the \
         host was too busy for this test:\n{report:#}",
        top["comm"],
        top["pid"],
        top["value"]
    );
    assert_eq!(top["resource"], "cpu");
    assert_eq!(top["rank"], 1);
    assert_eq!(top["unit"], "cores");
    assert!(
        suspects.iter().all(|s| s["pid"] != sleeper.pid()),
        "sleeper {} is a suspect:\n{report:#}",
        sleeper.pid()
    );
    assert!(
        report["verdict"]
            .as_str()
            .is_some_and(|v| v.contains("burner")),
        "verdict does not name the burner:\n{report:#}"
    );

    let entry = process_entry(&report, burner.pid())
        .unwrap_or_else(|| panic!("burner {} not in processes:\n{report:#}", burner.pid()));
    assert_eq!(entry["comm"], "burner");
    let cpu = &entry["cpu"];
    let cores = number(cpu, "cores");
    let expected = (window_cpu_after - window_cpu_before) / duration_s;
    // Captured by libtest: shown on failure or with --nocapture, to watch the margin.
    eprintln!(
        "burner cores: profiler {cores:.3}, /proc {expected:.3} over the profiler's window, \
         {:.3} over the whole run",
        run_cpu / run_wall
    );
    assert!(
        expected > 0.5,
        "burner only got {expected:.2} cores from the kernel: host too busy to measure"
    );
    assert!(
        (cores - expected).abs() <= CORES_TOLERANCE,
        "burner cores: profiler {cores:.3}, /proc {expected:.3} over the profiler's window \
         (whole run: {:.3} cores over {run_wall:.2} s)",
        run_cpu / run_wall
    );
    assert!(
        (number(top, "value") - cores).abs() <= 0.01,
        "suspect value and processes[] cores disagree:\n{report:#}"
    );
    let cpus = number(&report, "cpus");
    let host_percent = number(cpu, "host_percent");
    assert!(
        (host_percent - cores / cpus * 100.0).abs() <= 1.0,
        "host_percent {host_percent} is not cores {cores} over {cpus} cpus"
    );
    assert!(cpu["samples"].as_u64().is_some_and(|n| n > 0), "{cpu:#}");
    assert_sorted_by_cpu(&report);

    let folded_path = out.join("stacks.folded");
    let folded = std::fs::read_to_string(&folded_path).expect("reading stacks.folded");
    assert_folded_well_formed(&folded, "stacks.folded");
    let root = format!("burner ({})", burner.pid());
    let burner_lines = folded_lines_of(&folded, &root);
    assert!(
        burner_lines
            .iter()
            .any(|line| frames_in_order(line, &[OUTER, MIDDLE, INNER])),
        "no `{root};...` stack with {OUTER} -> {MIDDLE} -> {INNER} in stacks.folded; burner \
         lines:\n{}",
        burner_lines.join("\n")
    );

    let svg = std::fs::read_to_string(out.join("flamegraph.svg")).expect("reading flamegraph.svg");
    assert!(svg.contains(INNER), "flamegraph.svg lacks {INNER}");
    assert!(svg.contains(&root), "flamegraph.svg lacks {root}");

    for name in ["report.json", "stacks.folded", "flamegraph.svg"] {
        let mode = file_mode(&out.join(name));
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }
}

#[test]
fn text_format_shows_table_and_verdict_naming_the_burner() {
    if !require_root("text_format_shows_table_and_verdict_naming_the_burner") {
        return;
    }
    let _serial = serial();
    let burner = Workload::spawn(BURNER, &[]);
    let dir = tempdir();
    let (out, done) = diagnose_into(dir.path(), "2s");

    let pid = burner.pid().to_string();
    let stdout = &done.stdout;
    let has_pid = |line: &str| {
        line.split(|c: char| !c.is_ascii_digit())
            .any(|token| token == pid)
    };
    assert!(
        stdout
            .lines()
            .any(|line| has_pid(line) && line.contains("burner")),
        "no table row with pid {pid} and `burner`:\n{stdout}"
    );
    // Table rows lead with their rank; the verdict is prose, so it leads with a word.
    let is_row = |line: &str| {
        line.split_whitespace().next().is_some_and(|first| {
            let rank = first.trim_start_matches('#').trim_end_matches('.');
            !rank.is_empty() && rank.bytes().all(|b| b.is_ascii_digit())
        })
    };
    assert!(
        stdout
            .lines()
            .any(|line| line.contains("burner") && !is_row(line)),
        "no verdict line naming the burner:\n{stdout}"
    );
    assert!(
        out.join("report.json").is_file(),
        "text format still writes report.json"
    );
}

#[test]
fn pid_filter_restricts_processes_to_that_pid() {
    if !require_root("pid_filter_restricts_processes_to_that_pid") {
        return;
    }
    let _serial = serial();
    let burner = Workload::spawn(BURNER, &[]);
    // Would top the report if the filter leaked.
    let other = Workload::spawn(BURNER, &[]);
    let dir = tempdir();
    let out = dir.path().join("out");
    let pid = burner.pid().to_string();
    let done = diagnose(
        &[
            "--duration",
            "2s",
            "--pid",
            &pid,
            "--format",
            "json",
            "--out",
            utf8(&out),
        ],
        dir.path(),
        REPORT_GRACE,
    );
    done.assert_success();
    let report = done.stdout_json();
    assert_matches_schema(&report);

    let processes = array(&report, "processes");
    assert!(
        !processes.is_empty(),
        "filtered report has no processes:\n{report:#}"
    );
    assert!(
        processes.iter().all(|p| p["pid"] == burner.pid()),
        "processes other than {pid} (other burner: {}):\n{report:#}",
        other.pid()
    );
    let suspects = array(&report, "suspects");
    assert!(
        suspects.first().is_some_and(|s| s["pid"] == burner.pid())
            && suspects.iter().all(|s| s["pid"] == burner.pid()),
        "suspects must be just {pid}:\n{report:#}"
    );
}

fn assert_sorted_by_cpu(report: &Value) {
    let cores: Vec<f64> = array(report, "processes")
        .iter()
        .map(|p| number(&p["cpu"], "cores"))
        .collect();
    assert!(
        cores.windows(2).all(|pair| pair[0] >= pair[1]),
        "processes not sorted by cpu desc: {cores:?}"
    );
}
