//! End-to-end process diagnosis: a parent starting a known number of `/bin/true` children one
//! after the other, all inside the profiling window, must have its forks counted and be named a
//! `spawn` suspect, and every child, though it lives only a few milliseconds, must still appear
//! with its command name, its parent and its exit, and be grouped with the others into one
//! application.

use std::time::Duration;

use profiler_tests::{
    Workload, array, assert_near, count, diagnose_released, number, process_entry, require_root,
    serial,
};
use serde_json::{Value, json};

const SPAWNER: &str = "spawner";
const SPAWNER_EXE: &str = env!("CARGO_BIN_EXE_spawner");
/// The comm of the spawner's children: the basename of `/bin/true`, set at exec.
const CHILD: &str = "true";

/// A storm worth naming: well over the 5 per second from which a parent may be a spawn suspect
/// even if they took the whole window, and enough exec'd processes that the spawner and its
/// children use over the 0.1 cores a spawn suspect must cost (2 400 took 1.9 s of CPU here:
/// these take about 0.3 cores over the window), yet done in under two seconds.
const CHILDREN: u64 = 1600;

/// Long enough for every child to run inside the window on a slow host, short enough to keep the
/// suite quick.
const DURATION: Duration = Duration::from_secs(4);

/// Allowed relative gap between a counted figure and the children started. Every fork and exec is
/// seen, so the figures should be exact (the test prints them to show it); the margin keeps a
/// lost event from failing the suite before a look at the log.
const COUNT_TOLERANCE: f64 = 0.1;

/// Allowed relative gap between the suspect's value and `spawned / duration_s`: both come from
/// the same count and window, only rounding separates them.
const RATE_TOLERANCE: f64 = 0.01;

#[test]
fn short_lived_children_keep_comm_parent_and_exit_and_the_parent_is_a_spawn_suspect() {
    if !require_root(
        "short_lived_children_keep_comm_parent_and_exit_and_the_parent_is_a_spawn_suspect",
    ) {
        return;
    }
    let _serial = serial();
    let children = CHILDREN.to_string();
    let (mut spawner, start) =
        Workload::spawn_piped(SPAWNER_EXE, &["--wait-stdin", "--children", &children]);
    let pid = spawner.pid();
    let run = diagnose_released(&mut spawner, start, DURATION, &[]);
    let report = &run.report;
    let context = || relevant(report, pid);
    assert_eq!(report["signals"]["processes"], "on", "{}", context());

    let entry = process_entry(report, pid)
        .unwrap_or_else(|| panic!("spawner {pid} not in processes:\n{}", context()));
    assert_eq!(entry["comm"], SPAWNER, "{entry:#}");
    // Reaped before the window closed, so /proc no longer had it at the end.
    assert_eq!(entry["exited"], true, "{entry:#}");
    let spawned = count(entry, "spawned");

    let app = array(report, "apps")
        .iter()
        .find(|app| app["kind"] == "comm" && app["name"] == CHILD)
        .unwrap_or_else(|| panic!("no comm app named `{CHILD}`:\n{}", context()));
    let (app_processes, app_exited) = (count(app, "processes"), count(app, "exited"));
    let children: Vec<&Value> = array(report, "processes")
        .iter()
        .filter(|p| p["comm"] == CHILD)
        .collect();
    // Captured by libtest: shown on failure or with --nocapture, to watch the margins.
    eprintln!(
        "spawner {pid} ran {:.3} s: spawned {spawned} of {CHILDREN} ({:+}); app `{CHILD}` has \
         {app_processes} processes, {app_exited} exited; {} `{CHILD}` entries in processes[]; \
         over {} s",
        run.took.as_secs_f64(),
        spawned.cast_signed() - CHILDREN.cast_signed(),
        children.len(),
        report["duration_s"],
    );
    assert_near(
        spawned,
        CHILDREN,
        COUNT_TOLERANCE,
        "spawner spawned",
        &context,
    );
    assert_near(
        app_processes,
        CHILDREN,
        COUNT_TOLERANCE,
        "app `true` processes",
        &context,
    );
    assert_eq!(
        app_exited,
        app_processes,
        "every child ended inside the window, but not every one counts as exited:\n{app:#}\n{}",
        context()
    );

    // The point of the processes signal: a child gone within milliseconds, before /proc could be
    // read at the end, still has its name, its parent and its exit, from the kernel's events.
    // All of them, not a sample: one missed fork or exec is what this is here to catch.
    let wrong: Vec<Value> = children
        .iter()
        .filter(|child| child["ppid"] != pid || child["exited"] != true)
        .map(|child| {
            json!({ "pid": child["pid"], "ppid": child["ppid"], "exited": child["exited"] })
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} `{CHILD}` processes lack the spawner {pid} as parent or an exit:\n{:#}\n{}",
        wrong.len(),
        children.len(),
        Value::from(wrong.clone()),
        context()
    );

    let suspect = array(report, "suspects")
        .iter()
        .find(|s| s["resource"] == "spawn" && s["pid"] == pid)
        .unwrap_or_else(|| panic!("no spawn suspect for the spawner:\n{}", context()));
    assert_eq!(suspect["comm"], SPAWNER, "{suspect:#}");
    assert_eq!(suspect["unit"], "processes/s", "{suspect:#}");
    let value = number(suspect, "value");
    let expected = spawned as f64 / number(report, "duration_s");
    assert!(
        (value - expected).abs() <= RATE_TOLERANCE * expected,
        "spawn suspect value {value}, but spawned over duration_s is {expected:.3}:\n{}",
        context()
    );
}

/// The parts of the report these checks read, for failure messages: the whole report lists
/// every process on the host, hundreds of them children here, and would bury them.
fn relevant(report: &Value, pid: u32) -> String {
    let children: Vec<&Value> = array(report, "processes")
        .iter()
        .filter(|p| p["comm"] == CHILD)
        .collect();
    let sample: Vec<Value> = children
        .iter()
        .take(3)
        .map(|p| {
            json!({
                "pid": p["pid"], "comm": p["comm"], "ppid": p["ppid"], "exited": p["exited"],
                "cgroup": p["cgroup"], "cpu": p["cpu"],
            })
        })
        .collect();
    let apps: Vec<&Value> = array(report, "apps")
        .iter()
        .filter(|app| app["kind"] == "comm" && (app["name"] == CHILD || app["name"] == SPAWNER))
        .collect();
    let part = json!({
        "spawner pid": pid,
        "duration_s": report["duration_s"],
        "signals": report["signals"],
        "drops": report["drops"],
        "spawner": process_entry(report, pid),
        "`true` entries": children.len(),
        "first `true` entries": sample,
        "apps": apps,
        "suspects": report["suspects"],
    });
    format!("{part:#}")
}
