//! End-to-end syscall diagnosis: a storm making a known number of `getppid` calls and failing
//! `close(-1)` calls, all inside the profiling window, must be counted per syscall, have its
//! failures and time inside syscalls measured, top the processes by syscalls and be named a
//! `syscalls` suspect; without the `syscall-time` signal the counts must stay while errors and
//! time drop to zero; with neither syscall signal, the CPU samples alone must still say that
//! the storm's time goes into `getppid` and name it a `syscalls` suspect in cores.

use std::time::Duration;

use profiler_tests::{
    Workload, array, assert_near, count, diagnose_released, number, process_entry, require_root,
    serial,
};
use serde_json::{Value, json};

const STORM: &str = "storm";
const STORM_EXE: &str = env!("CARGO_BIN_EXE_storm");

/// Eight million: about 0.6 s on CPU inside them with the hooks (10 million took 0.77 s here),
/// over the tenth of a core a syscalls suspect must cost in the window, and done well inside it
/// even with the syscall-time hook.
const GETPPID_CALLS: u64 = 8_000_000;
const BAD_CLOSES: u64 = 50_000;

/// Long enough for the storm to run whole inside the window on a slow host, short enough to keep
/// the suite quick.
const DURATION: Duration = Duration::from_secs(4);

/// Allowed relative gap between a counted figure and the number of calls the storm made. Every
/// call is counted, so the figures should be exact (the tests print them to show it); the margin
/// keeps a lost per-CPU batch or a changed glibc from failing the suite before a look at the log.
const COUNT_TOLERANCE: f64 = 0.1;

/// Allowed relative gap between `per_second` and `count / duration_s`: both come from the same
/// count and window, only rounding separates them.
const RATE_TOLERANCE: f64 = 0.01;

#[test]
fn storm_is_counted_per_syscall_and_named_a_syscalls_suspect() {
    if !require_root("storm_is_counted_per_syscall_and_named_a_syscalls_suspect") {
        return;
    }
    let _serial = serial();
    // syscall-time is opt-in: its exit hook costs a storm as much again.
    let run = run_storm(&["--signals", "cpu,sched,syscalls,syscall-time"]);
    let (report, pid) = (&run.report, run.pid);
    let context = || relevant(report, pid);
    assert_eq!(report["signals"]["syscalls"], "on", "{}", context());
    assert_eq!(report["signals"]["syscall-time"], "on", "{}", context());

    let syscalls = storm_syscalls(report, pid);
    let getppid = top_entry(syscalls, "getppid", &context);
    let close = top_entry(syscalls, "close", &context);
    let total = count(syscalls, "count");
    // Captured by libtest: shown on failure or with --nocapture, to watch the margins.
    eprintln!(
        "storm {pid} ran {:.3} s: getppid {} of {GETPPID_CALLS} ({:+} calls), close {} with {} \
         errors of {BAD_CLOSES} ({:+} errors); all syscalls {}, {} errors, {:.3} s inside them, \
         {} per second over {} s",
        run.took.as_secs_f64(),
        count(getppid, "count"),
        count(getppid, "count").cast_signed() - GETPPID_CALLS.cast_signed(),
        count(close, "count"),
        count(close, "errors"),
        count(close, "errors").cast_signed() - BAD_CLOSES.cast_signed(),
        total,
        count(syscalls, "errors"),
        count(syscalls, "time_ns") as f64 / 1e9,
        syscalls["per_second"],
        report["duration_s"],
    );

    assert_near(
        count(getppid, "count"),
        GETPPID_CALLS,
        COUNT_TOLERANCE,
        "getppid count",
        &context,
    );
    assert_near(
        count(close, "errors"),
        BAD_CLOSES,
        COUNT_TOLERANCE,
        "close errors",
        &context,
    );
    assert!(
        count(close, "count") >= BAD_CLOSES,
        "close count {} under the {BAD_CLOSES} calls made:\n{}",
        count(close, "count"),
        context()
    );
    assert!(
        total >= GETPPID_CALLS + BAD_CLOSES,
        "storm syscalls.count {total} under the {} calls made:\n{}",
        GETPPID_CALLS + BAD_CLOSES,
        context()
    );
    let per_second = number(syscalls, "per_second");
    let expected_rate = total as f64 / number(report, "duration_s");
    assert!(
        (per_second - expected_rate).abs() <= RATE_TOLERANCE * expected_rate,
        "per_second {per_second} is not count {total} over duration_s ({expected_rate:.0}):\n{}",
        context()
    );
    assert!(
        count(syscalls, "time_ns") > 0,
        "no time inside syscalls with syscall-time on:\n{}",
        context()
    );

    let suspect = syscalls_suspect(report, pid, &context);
    assert_eq!(suspect["comm"], STORM, "{suspect:#}");
    assert_eq!(suspect["unit"], "syscalls/s", "{suspect:#}");
    let value = number(suspect, "value");
    assert!(
        (value - per_second).abs() <= RATE_TOLERANCE * per_second,
        "syscalls suspect value {value}, but the storm's per_second is {per_second}:\n{}",
        context()
    );

    // Anything else this busy would make the storm's figures hard to read; it should not exist
    // on a test host, let alone inside the same four seconds.
    let busiest = array(report, "processes")
        .iter()
        .filter(|p| p["syscalls"].is_object())
        .max_by_key(|p| count(&p["syscalls"], "count"))
        .unwrap_or_else(|| panic!("no process has syscalls:\n{}", context()));
    assert_eq!(
        busiest["pid"],
        pid,
        "{} (pid {}) made more syscalls than the storm:\n{busiest:#}\n{}",
        busiest["comm"],
        busiest["pid"],
        context()
    );
}

#[test]
fn without_syscall_time_counts_stay_and_errors_and_time_are_zero() {
    if !require_root("without_syscall_time_counts_stay_and_errors_and_time_are_zero") {
        return;
    }
    let _serial = serial();
    // The default signals, which leave syscall-time out.
    let run = run_storm(&[]);
    let (report, pid) = (&run.report, run.pid);
    let context = || relevant(report, pid);
    assert_eq!(report["signals"]["syscalls"], "on", "{}", context());
    assert_eq!(report["signals"]["syscall-time"], "off", "{}", context());

    let syscalls = storm_syscalls(report, pid);
    let getppid = top_entry(syscalls, "getppid", &context);
    eprintln!(
        "storm {pid} ran {:.3} s without syscall-time: getppid {} of {GETPPID_CALLS} ({:+} \
         calls); all syscalls {}",
        run.took.as_secs_f64(),
        count(getppid, "count"),
        count(getppid, "count").cast_signed() - GETPPID_CALLS.cast_signed(),
        count(syscalls, "count"),
    );
    assert_near(
        count(getppid, "count"),
        GETPPID_CALLS,
        COUNT_TOLERANCE,
        "getppid count",
        &context,
    );
    // Errors and time are both read at sys_exit, whose hook is not attached.
    let entries = array(syscalls, "top")
        .iter()
        .chain(std::iter::once(syscalls));
    for entry in entries {
        assert!(
            count(entry, "errors") == 0 && count(entry, "time_ns") == 0,
            "errors or time without the sys_exit hook in {entry:#}\n{}",
            context()
        );
    }
    // The time inside them comes from the CPU samples instead, and says so.
    let suspect = syscalls_suspect(report, pid, &context);
    let reason = suspect["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("(sampled)") && !reason.contains("failed"),
        "{suspect:#}"
    );
}

#[test]
fn cpu_samples_alone_say_which_syscall_the_time_goes_into() {
    if !require_root("cpu_samples_alone_say_which_syscall_the_time_goes_into") {
        return;
    }
    let _serial = serial();
    // Rounds of getppid for most of the window, so the storm is busy long enough to be judged
    // from ~300 samples at 99 Hz.
    let (mut storm, start) = Workload::spawn_piped(
        STORM_EXE,
        &["--wait-stdin", "--getppid", "100000", "--loop-seconds", "3"],
    );
    let run = diagnose_released(&mut storm, start, DURATION, &["--signals", "cpu"]);
    let (report, pid) = (&run.report, storm.pid());
    let context = || relevant(report, pid);
    assert_eq!(report["signals"]["syscalls"], "off", "{}", context());
    let entry = process_entry(report, pid).unwrap_or_else(|| panic!("no storm:\n{}", context()));
    assert!(
        entry["syscalls"].is_null(),
        "exact syscalls without the hook:\n{entry:#}"
    );
    let sampled = &entry["cpu"]["in_syscalls"];
    let (samples, in_syscalls) = (count(&entry["cpu"], "samples"), count(sampled, "samples"));
    let (est_ns, on_cpu_ns) = (
        count(sampled, "est_time_ns"),
        count(&entry["cpu"], "on_cpu_ns"),
    );
    eprintln!(
        "storm {pid}: {in_syscalls} of {samples} samples inside syscalls, est {:.3} s of its \
         {:.3} s on CPU; top {}",
        est_ns as f64 / 1e9,
        on_cpu_ns as f64 / 1e9,
        sampled["top"]
    );
    assert_eq!(sampled["top"][0]["name"], "getppid", "{}", context());
    // A getppid loop spends most of its time entering and leaving the kernel; what is left is
    // the user-side loop. The estimate cannot exceed the exact on-CPU time by more than the
    // sampling error (~1/sqrt(300)) allows.
    assert!(
        in_syscalls * 2 >= samples,
        "only {in_syscalls} of {samples} samples inside syscalls:\n{}",
        context()
    );
    assert!(
        (est_ns as f64) <= on_cpu_ns as f64 * 1.2,
        "sampled time inside syscalls {est_ns} ns exceeds its on-CPU time {on_cpu_ns} ns:\n{}",
        context()
    );
    let suspect = syscalls_suspect(report, pid, &context);
    assert_eq!(suspect["unit"], "cores", "{suspect:#}");
    assert!(
        suspect["reason"]
            .as_str()
            .is_some_and(|r| r.contains("getppid")),
        "{suspect:#}"
    );
}

/// One storm profiled whole: the report and the storm's pid, which has exited by then.
struct StormRun {
    report: Value,
    pid: u32,
    /// From the release to the storm's exit, as the test saw it.
    took: Duration,
}

/// Runs `profiler diagnose` for `DURATION` with `extra` arguments and releases the storm once
/// the profiler has attached, so every call the storm makes is inside the profiling window.
fn run_storm(extra: &[&str]) -> StormRun {
    let (getppid, bad_close) = (GETPPID_CALLS.to_string(), BAD_CLOSES.to_string());
    let (mut storm, start) = Workload::spawn_piped(
        STORM_EXE,
        &[
            "--wait-stdin",
            "--getppid",
            &getppid,
            "--bad-close",
            &bad_close,
        ],
    );
    let run = diagnose_released(&mut storm, start, DURATION, extra);
    let (report, took) = (run.report, run.took);
    let pid = storm.pid();
    let entry = process_entry(&report, pid)
        .unwrap_or_else(|| panic!("storm {pid} not in processes:\n{}", relevant(&report, pid)));
    assert_eq!(entry["comm"], STORM, "{entry:#}");
    // It was reaped before the window closed, so /proc no longer had it at the end.
    assert_eq!(entry["exited"], true, "{entry:#}");
    StormRun { report, pid, took }
}

/// The storm's non-null `processes[].syscalls`.
fn storm_syscalls(report: &Value, pid: u32) -> &Value {
    let syscalls = process_entry(report, pid).map_or(&Value::Null, |entry| &entry["syscalls"]);
    assert!(
        syscalls.is_object(),
        "storm {pid} has no syscalls object:\n{}",
        relevant(report, pid)
    );
    syscalls
}

/// The storm's `syscalls` suspect.
#[track_caller]
fn syscalls_suspect<'a>(report: &'a Value, pid: u32, context: &dyn Fn() -> String) -> &'a Value {
    array(report, "suspects")
        .iter()
        .find(|s| s["resource"] == "syscalls" && s["pid"] == pid)
        .unwrap_or_else(|| panic!("no syscalls suspect for the storm:\n{}", context()))
}

/// The entry named `name` in a `syscalls.top`.
#[track_caller]
fn top_entry<'a>(syscalls: &'a Value, name: &str, context: &dyn Fn() -> String) -> &'a Value {
    array(syscalls, "top")
        .iter()
        .find(|entry| entry["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` in the storm's top syscalls:\n{}", context()))
}

/// The parts of the report these checks read, for failure messages: the whole report lists
/// every process on the host and would bury them.
fn relevant(report: &Value, pid: u32) -> String {
    let mut busiest: Vec<&Value> = array(report, "processes")
        .iter()
        .filter(|p| p["syscalls"].is_object())
        .collect();
    busiest.sort_by_key(|p| std::cmp::Reverse(p["syscalls"]["count"].as_u64()));
    let busiest: Vec<Value> = busiest
        .iter()
        .take(3)
        .map(|p| json!({ "pid": p["pid"], "comm": p["comm"], "syscalls": p["syscalls"] }))
        .collect();
    let part = json!({
        "storm pid": pid,
        "duration_s": report["duration_s"],
        "signals": report["signals"],
        "drops": report["drops"],
        "storm": process_entry(report, pid),
        "busiest by syscalls": busiest,
        "suspects": report["suspects"],
    });
    format!("{part:#}")
}
