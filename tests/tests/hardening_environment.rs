//! A host missing what the profiler leans on, made for real in a private mount namespace so
//! the rest of the host keeps it: tracefs unmounted (the profiler mounts it and says so, and
//! the report is complete), kernel BTF missing (nothing needs it: doctor says so, the run is
//! complete), and an output directory that fills up while the report or an SVG is written (one
//! line naming "no space left on device", exit 2, no file or directory left), or is read-only;
//! a recording whose disk a rogue fills goes on, loses and counts the windows it cannot write,
//! and writes again once the space is back.

use std::time::Duration;

use profiler_tests::{
    DIAGNOSE_FILES, ProfilerRun, REPORT_GRACE, assert_complete_outputs, free_port, http_get,
    in_private_mounts, profiler_bin, profiler_command, require_root, serial, tempdir, utf8,
};
use serde_json::Value;

/// Every signal of a default diagnose run, each of which must be on (all but syscall-time).
const SIGNALS: &[&str] = &[
    "cpu",
    "sched",
    "offcpu",
    "syscalls",
    "processes",
    "net",
    "mem",
    "io",
];

fn assert_every_signal_on(report: &Value) {
    for signal in SIGNALS {
        assert_eq!(
            report["signals"][signal], "on",
            "signal {signal}: {report:#}"
        );
    }
}

#[test]
fn unmounted_tracefs_is_mounted_announced_and_the_report_complete() {
    const TEST: &str = "unmounted_tracefs_is_mounted_announced_and_the_report_complete";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let out = dir.path().join("out");
    // Whatever the host has mounted goes, in this namespace only; exit 97 if any tracefs stays.
    let script = "for m in /sys/kernel/tracing /sys/kernel/debug/tracing; do \
                  umount \"$m\" 2>/dev/null; done; \
                  grep -q ' tracefs ' /proc/self/mounts && exit 97; exec \"$@\"";
    let Some(mut command) = in_private_mounts(
        TEST,
        script,
        &profiler_bin(),
        &[
            "diagnose",
            "--duration",
            "1s",
            "--format",
            "json",
            "--out",
            utf8(&out),
        ],
    ) else {
        return;
    };
    command.current_dir(dir.path());
    let done = ProfilerRun::start(command).finish(REPORT_GRACE);
    done.assert_success();
    let mounted: Vec<&str> = done
        .stderr
        .lines()
        .filter(|line| line.contains("tracefs"))
        .collect();
    assert_eq!(
        mounted,
        ["profiler: tracefs was not mounted; mounted it at /sys/kernel/tracing"],
        "stderr:\n{}",
        done.stderr
    );
    let report = assert_complete_outputs(&out, DIAGNOSE_FILES);
    assert_eq!(done.stdout_json(), report);
    assert_every_signal_on(&report);
    // The host's own mount was never touched.
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("reading mounts");
    assert!(
        mounts.contains(" tracefs "),
        "the host lost its tracefs:\n{mounts}"
    );
}

#[test]
fn missing_btf_degrades_nothing_and_doctor_says_not_needed() {
    const TEST: &str = "missing_btf_degrades_nothing_and_doctor_says_not_needed";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let missing = dir.path().join("no-vmlinux");

    let output = profiler_command()
        .arg("doctor")
        .env("PROFILER_BTF", &missing)
        .output()
        .expect("running profiler doctor");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "doctor failed:\n{stdout}");
    let btf = stdout
        .lines()
        .find(|line| line.starts_with("BTF"))
        .unwrap_or_else(|| panic!("no BTF row:\n{stdout}"));
    assert!(
        btf.contains("missing") && btf.contains(utf8(&missing)) && btf.contains("not needed"),
        "{btf}"
    );
    for signal in SIGNALS {
        let row = stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(signal))
            .unwrap_or_else(|| panic!("no row for {signal}:\n{stdout}"));
        assert_eq!(row.split_whitespace().nth(1), Some("ready"), "{row}");
    }

    let out = dir.path().join("out");
    let mut command = profiler_command();
    command
        .args([
            "diagnose",
            "--duration",
            "1s",
            "--format",
            "json",
            "--out",
            utf8(&out),
        ])
        .env("PROFILER_BTF", &missing)
        .current_dir(dir.path());
    let done = ProfilerRun::start(command).finish(REPORT_GRACE);
    done.assert_success();
    let said: Vec<&str> = done.stderr.lines().filter(|l| l.contains("BTF")).collect();
    assert!(
        said.len() == 1 && said[0].contains("nothing degraded"),
        "expected one line saying nothing was degraded:\n{}",
        done.stderr
    );
    assert!(!done.stderr.contains("warning"), "{}", done.stderr);
    let report = assert_complete_outputs(&out, DIAGNOSE_FILES);
    assert_every_signal_on(&report);
}

/// A tmpfs of 8 KiB at `DIR` in a private namespace: room for the empty output directory and
/// a file or two, not a report. After the run, the script lists what is left there.
const TINY_TMPFS: &str = "mount -t tmpfs -o size=8k none \"$TINY\" || exit 97; \"$@\"; rc=$?; \
                          echo; echo listed:; cd \"$TINY\" && find . -mindepth 1 | \
                          sed 's/^/entry: /'; exit $rc";

#[test]
fn full_output_disk_is_one_line_exit_2_and_nothing_left() {
    const TEST: &str = "full_output_disk_is_one_line_exit_2_and_nothing_left";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let tiny = dir.path().join("tiny");
    std::fs::create_dir(&tiny).expect("creating the mount point");
    let runs: [(&str, Vec<&str>); 2] = [
        (
            "diagnose",
            vec!["--duration", "1s", "--signals", "cpu,sched", "--out"],
        ),
        (
            "record",
            vec![
                "--window",
                "1s",
                "--no-metrics",
                "--exit-on-write-error",
                "--out",
            ],
        ),
    ];
    for (subcommand, options) in runs {
        // diagnose creates two levels, both of which must go again.
        let target = if subcommand == "diagnose" {
            tiny.join("a/x")
        } else {
            tiny.join("x")
        };
        let args: Vec<&str> = [subcommand]
            .into_iter()
            .chain(options)
            .chain([utf8(&target)])
            .collect();
        let Some(mut command) = in_private_mounts(TEST, TINY_TMPFS, &profiler_bin(), &args) else {
            return;
        };
        command.env("TINY", &tiny).current_dir(dir.path());
        // record writes its first window after a second and must stop there.
        let done = ProfilerRun::start(command).finish(REPORT_GRACE + Duration::from_secs(10));
        assert_eq!(done.status.code(), Some(2), "{subcommand}: {}", done.stderr);
        let lines: Vec<&str> = done
            .stderr
            .lines()
            .filter(|l| l.starts_with("Error: "))
            .collect();
        assert_eq!(lines.len(), 1, "{subcommand}: stderr:\n{}", done.stderr);
        assert!(
            lines[0].contains("no space left on device")
                && lines[0].contains(utf8(&target))
                && lines[0].contains("pick another --out DIR"),
            "{subcommand}: {}",
            lines[0]
        );
        assert!(
            done.stdout.contains("listed:"),
            "{subcommand}: {}",
            done.stdout
        );
        let left: Vec<&str> = done
            .stdout
            .lines()
            .filter_map(|line| line.strip_prefix("entry: "))
            .collect();
        // No half-written file, no staging directory; diagnose leaves no directory at all,
        // record only its root (and its alert log) without any window.
        let allowed: &[&str] = if subcommand == "record" {
            &["./x", "./x/alerts.jsonl"]
        } else {
            &[]
        };
        assert!(
            left.iter().all(|entry| allowed.contains(entry)),
            "{subcommand} left {left:?}"
        );
    }
    // An SVG too big for the disk: `flamegraph --out` is written whole or not at all.
    let folded = dir.path().join("big.folded");
    let lines: String = (0..20_000)
        .map(|i| format!("main;frame_{i};leaf_{} {}\n", i % 97, i + 1))
        .collect();
    std::fs::write(&folded, lines).expect("writing the folded input");
    let svg = tiny.join("g.svg");
    let Some(mut command) = in_private_mounts(
        TEST,
        TINY_TMPFS,
        &profiler_bin(),
        &["flamegraph", utf8(&folded), "--out", utf8(&svg)],
    ) else {
        return;
    };
    command.env("TINY", &tiny).current_dir(dir.path());
    let done = ProfilerRun::start(command).finish(REPORT_GRACE);
    assert_eq!(done.status.code(), Some(2), "flamegraph: {}", done.stderr);
    let line = done.stderr.trim_end();
    assert!(
        !line.contains('\n')
            && line.starts_with("Error: ")
            && line.contains(utf8(&svg))
            && line.to_lowercase().contains("no space left on device"),
        "flamegraph: {line}"
    );
    assert!(
        done.stdout.contains("listed:") && !done.stdout.contains("entry: "),
        "flamegraph left files:\n{}",
        done.stdout
    );
    // Unchanged outside the namespace.
    assert!(
        std::fs::read_dir(&tiny)
            .expect("mount point")
            .next()
            .is_none()
    );
}

#[test]
fn read_only_output_file_system_is_one_line_exit_2() {
    const TEST: &str = "read_only_output_file_system_is_one_line_exit_2";
    if !require_root(TEST) {
        return;
    }
    let dir = tempdir();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).expect("creating the mount point");
    let target = ro.join("x");
    let script = "mount -t tmpfs -o ro none \"$RO\" || exit 97; exec \"$@\"";
    for args in [
        vec!["diagnose", "--duration", "1s", "--out", utf8(&target)],
        vec!["record", "--no-metrics", "--out", utf8(&target)],
    ] {
        let Some(mut command) = in_private_mounts(TEST, script, &profiler_bin(), &args) else {
            return;
        };
        command.env("RO", &ro).current_dir(dir.path());
        let done = ProfilerRun::start(command).finish(REPORT_GRACE);
        let line = done.error_line();
        assert!(
            line.contains(utf8(&target)) && line.contains("Read-only file system"),
            "{args:?}: {line}"
        );
        assert!(done.stdout.is_empty(), "{args:?}: {}", done.stdout);
    }
}

/// A 3 MiB tmpfs at `$TINY` holding the recording `"$@"` writes into `$TINY/rec`; from 4 s on a
/// runaway log (`$LOGFLOOD`) fills it and keeps trying for 4 s, then removes its file and says
/// when (in the windows' own name format); the recorder is stopped at 12 s. Then the script
/// lists what is left.
const FILLED_TMPFS: &str = "mount -t tmpfs -o size=3m none \"$TINY\" || exit 97; \
    mkdir -m 700 \"$TINY/rec\" || exit 98; \
    ( sleep 4; \"$LOGFLOOD\" --path \"$TINY/log\" --seconds 4 >&2; \
      echo \"rogue: gone at $(date -u +%Y%m%dT%H%M%S.%3NZ)\" >&2 ) & \
    \"$@\" & pid=$!; sleep 12; kill -TERM $pid; wait $pid; rc=$?; \
    echo; echo listed:; cd \"$TINY\" && find . -mindepth 1 | sed 's/^/entry: /'; \
    sed 's/^/alert: /' rec/alerts.jsonl; exit $rc";

/// A window directory's start, or the rogue's end, both written as `20260101T100000.000Z`.
fn stamp(name: &str) -> jiff::Timestamp {
    jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S%.fZ", name)
        .unwrap_or_else(|err| panic!("{name}: {err}"))
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("a UTC time")
        .timestamp()
}

#[test]
fn a_full_disk_loses_windows_but_not_the_recorder() {
    const TEST: &str = "a_full_disk_loses_windows_but_not_the_recorder";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let tiny = dir.path().join("tiny");
    std::fs::create_dir(&tiny).expect("creating the mount point");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let root = tiny.join("rec");
    let args = [
        "record",
        "--window",
        "1s",
        "--metrics",
        &address,
        "--out",
        utf8(&root),
    ];
    let Some(mut command) = in_private_mounts(TEST, FILLED_TMPFS, &profiler_bin(), &args) else {
        return;
    };
    command
        .env("TINY", &tiny)
        .env("LOGFLOOD", env!("CARGO_BIN_EXE_logflood"))
        .current_dir(dir.path());
    let run = ProfilerRun::start(command);
    // In the middle of the outage.
    std::thread::sleep(Duration::from_millis(7_000));
    let during = http_get(port, "/metrics").unwrap_or_else(|err| panic!("scraping: {err}"));
    let done = run.finish(REPORT_GRACE + Duration::from_secs(20));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    let failed: f64 = during
        .lines()
        .find_map(|l| l.strip_prefix("profiler_windows_failed_total{reason=\"no_space\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(
        failed >= 1.0,
        "no lost window counted during the outage:\n{during}"
    );
    let gone = outage_said(&done.stderr);
    let left: Vec<&str> = done
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("entry: "))
        .collect();
    // Windows before and after the outage, whole; no staging directory, none of the rogue's.
    let windows: Vec<&&str> = left
        .iter()
        .filter(|e| e.starts_with("./rec/2") && e.matches('/').count() == 2)
        .filter(|e| !e.ends_with("-incident"))
        .collect();
    assert!(windows.len() >= 4, "{left:?}");
    // Every line alerts.jsonl kept is whole: a line the full disk cut short was cut off.
    for line in done
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("alert: "))
    {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("a broken alerts.jsonl line ({err}): {line:?}"));
        assert!(event["state"].is_string(), "{line}");
    }
    assert!(
        left.iter()
            .all(|e| !e.starts_with("./rec/.") && !e.starts_with("./log")),
        "{left:?}"
    );
    for window in &windows {
        assert!(
            left.contains(&format!("{window}/report.json").as_str()),
            "{left:?}"
        );
    }
    // Writing resumes within two window lengths of the space coming back: the window the
    // rogue's end fell in (it started under a second before), or the next one, is there.
    let window = jiff::SignedDuration::from_secs(1);
    let resumed = windows.iter().any(|w| {
        let start = stamp(w.trim_start_matches("./rec/"));
        start > gone - window * 3 / 2 && start <= gone + window
    });
    assert!(
        resumed,
        "no window written within 2 s after {gone}: {left:?}"
    );
}

/// Checks what the recorder said of the outage on stderr (lost windows, writing again, the
/// alert naming the runaway log) and that the rogue really found the disk full; when the
/// rogue's file went.
fn outage_said(stderr: &str) -> jiff::Timestamp {
    let said = |needle: &str| stderr.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(said("warning: a window was lost"), 1, "{stderr}");
    assert!(said("no space left on device") >= 1, "{stderr}");
    assert_eq!(said("writing windows again"), 1, "{stderr}");
    // The alert names the process holding the space, though alerts.jsonl is on the full disk.
    for state in ["firing", "resolved"] {
        let needle = format!("alert {state}: no space for windows");
        assert_eq!(said(&needle), 1, "{stderr}");
    }
    let line = |needle: &str| {
        let found = stderr.lines().find(|l| l.contains(needle));
        found.unwrap_or_else(|| panic!("no line with {needle:?}:\n{stderr}"))
    };
    let firing = line("alert firing: no space for windows");
    assert!(firing.contains("logflood (pid "), "{firing}");
    let (_, refused) = line(", refused ").split_once(", refused ").unwrap();
    assert!(
        refused.trim().parse::<u64>().is_ok_and(|n| n > 0),
        "the rogue never found the disk full:\n{stderr}"
    );
    stamp(line("rogue: gone at ").trim_start_matches("rogue: gone at "))
}
