//! Signal readiness and degradation: `profiler doctor` on this host, a run whose sched probes
//! are made unavailable (it still ranks CPU and says why sched is missing), and `--signals`.

use std::time::Duration;

use profiler_tests::{
    REPORT_GRACE, Workload, allowed_cpus, array, assert_matches_schema, diagnose, process_entry,
    profiler_command, require_root, serial, tempdir, utf8,
};

const BURNER: &str = env!("CARGO_BIN_EXE_burner");

#[test]
fn doctor_reports_every_signal_ready_on_this_host() {
    if !require_root("doctor_reports_every_signal_ready_on_this_host") {
        return;
    }
    let _serial = serial();
    let output = profiler_command()
        .arg("doctor")
        .output()
        .expect("running profiler doctor");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "doctor failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for check in [
        "privileges",
        "perf_event_paranoid",
        "sample rate",
        "BTF",
        "tracefs",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(check)),
            "no `{check}` check:\n{stdout}"
        );
    }
    for signal in ["cpu", "sched", "offcpu", "io"] {
        let row = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(signal))
            .unwrap_or_else(|| panic!("no row for signal {signal}:\n{stdout}"));
        assert_eq!(
            row.split_whitespace().nth(1),
            Some("ready"),
            "{row}\n{stdout}"
        );
    }
}

#[test]
fn doctor_names_the_missing_tracefs_and_its_fix() {
    if !require_root("doctor_names_the_missing_tracefs_and_its_fix") {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let output = profiler_command()
        .arg("doctor")
        .env("PROFILER_TRACEFS", dir.path())
        .output()
        .expect("running profiler doctor");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // cpu still runs, so the doctor succeeds.
    assert!(output.status.success(), "{stdout}");
    let sched = stdout
        .lines()
        .find(|l| l.starts_with("sched "))
        .unwrap_or_else(|| panic!("no sched row:\n{stdout}"));
    assert!(
        sched.contains("unavailable") && sched.contains("mount -t tracefs"),
        "{sched}"
    );
}

#[test]
fn run_without_tracefs_degrades_sched_and_still_ranks_cpu() {
    if !require_root("run_without_tracefs_degrades_sched_and_still_ranks_cpu") {
        return;
    }
    let _serial = serial();
    // A thread per CPU: with no blame to say who waited behind whom, a host with no CPU to
    // spare is what makes the burner a suspect.
    let threads = allowed_cpus().len().to_string();
    let burner = Workload::spawn(BURNER, &["--threads", &threads]);
    let dir = tempdir();
    let empty = tempdir();
    let out = dir.path().join("out");
    let mut command = profiler_command();
    command
        .args([
            "diagnose",
            "--duration",
            "2s",
            "--format",
            "json",
            "--out",
            utf8(&out),
        ])
        .env("PROFILER_TRACEFS", empty.path())
        .current_dir(dir.path());
    let done = profiler_tests::ProfilerRun::start(command).finish(REPORT_GRACE);
    done.assert_success();
    // Every tracefs user degrades, each with one line naming itself; net's raw tracepoints
    // need kernel BTF instead, and stay on.
    let warnings: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(
        warnings.len(),
        4,
        "one warning line per degraded signal expected:\n{}",
        done.stderr
    );
    for signal in ["sched", "offcpu", "processes", "io"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&format!("{signal} signal unavailable"))),
            "no warning for {signal}:\n{}",
            done.stderr
        );
    }

    let report = done.stdout_json();
    assert_matches_schema(&report);
    let sched = report["signals"]["sched"].as_str().unwrap_or_default();
    assert!(
        sched.starts_with("unavailable: "),
        "signals.sched = {sched:?}"
    );
    assert_eq!(report["signals"]["cpu"], "on");
    assert_eq!(report["signals"]["net"], "on");
    let processes = report["signals"]["processes"].as_str().unwrap_or_default();
    assert!(
        processes.starts_with("unavailable: "),
        "signals.processes = {processes:?}"
    );
    let top = &array(&report, "suspects")[0];
    assert_eq!(top["pid"], burner.pid(), "{report:#}");
    let entry = process_entry(&report, burner.pid()).expect("burner in processes");
    assert!(
        entry["sched"].is_null(),
        "sched figures without the sched signal: {entry:#}"
    );
    // On-CPU time still comes from the raw tracepoint fallback.
    assert!(
        entry["cpu"]["cores"].as_f64().unwrap_or(0.0) > 0.8,
        "{entry:#}"
    );
}

#[test]
fn signals_flag_turns_signals_off() {
    if !require_root("signals_flag_turns_signals_off") {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let done = diagnose(
        &[
            "--duration",
            "1s",
            "--signals",
            "cpu",
            "--format",
            "json",
            "--out",
            utf8(&dir.path().join("a")),
        ],
        dir.path(),
        REPORT_GRACE,
    );
    done.assert_success();
    let report = done.stdout_json();
    assert_eq!(report["signals"]["sched"], "off");
    assert!(array(&report, "blame").is_empty());
    assert!(
        array(&report, "processes")
            .iter()
            .all(|p| p["sched"].is_null())
    );

    let done = diagnose(
        &[
            "--duration",
            "1s",
            "--signals",
            "sched",
            "--format",
            "json",
            "--out",
            utf8(&dir.path().join("b")),
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    done.assert_success();
    let report = done.stdout_json();
    assert_eq!(report["signals"]["cpu"], "off");
    assert_eq!(report["signals"]["sched"], "on");
    // The sampler still ticks the on-CPU accounting, but takes no stacks.
    assert!(
        array(&report, "processes")
            .iter()
            .all(|p| p["cpu"]["samples"] == 0),
        "stacks sampled with cpu off:\n{report:#}"
    );
}
