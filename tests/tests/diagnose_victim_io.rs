//! `diagnose --victim` on a victim blocked on disk IO: a small writer that fsyncs each 4 KiB
//! on the same disk as a direct-IO writer. Its largest state is blocked on IO, the direct
//! writer is its IO culprit, and the IO time the profiler infers from the kernel frames of its
//! sleeps matches the kernel's own delay accounting (`--delayacct`) within 15 %. And
//! `--delayacct` on a host where it is off: turned on for the run, off after, and the threads
//! it could not cover are said.

use std::{fs, thread, time::Duration};

use profiler_tests::{
    DelayAcctSwitch, ProfilerRun, REPORT_GRACE, Workload, array, assert_matches_schema, count,
    disk_backed_tempdir, number, profiler_command, read_json, require_root, serial, tempdir, utf8,
};
use serde_json::Value;

const DISKWRITER: &str = env!("CARGO_BIN_EXE_diskwriter");
const WAKER: &str = env!("CARGO_BIN_EXE_waker");
/// The bound between the inferred IO wait and delay accounting's.
const DELAYACCT_TOLERANCE: f64 = 0.15;
/// Share of the victim's IO wait the direct writer must be named for: it does nearly all the
/// disk's bytes, the victim's own 4 KiB writes and their journal commits the rest.
const WRITER_SHARE: f64 = 0.5;

/// `diagnose --victim PID --delayacct` for `duration`: the finished run and its report.json.
fn diagnose_delayacct(pid: u32, duration: &str) -> (profiler_tests::Finished, Value) {
    let dir = tempdir();
    let out = dir.path().join("out");
    let mut command = profiler_command();
    command
        .args(["diagnose", "--duration", duration, "--format", "json"])
        .args(["--victim", &pid.to_string(), "--delayacct", "--out"])
        .arg(&out)
        .current_dir(dir.path());
    let done = ProfilerRun::start(command).finish(REPORT_GRACE);
    done.assert_success();
    let report = read_json(&out.join("report.json"));
    assert_matches_schema(&report);
    (done, report)
}

#[test]
fn a_victim_fsyncing_behind_a_direct_writer_is_blocked_on_io_and_names_it() {
    const TEST: &str = "a_victim_fsyncing_behind_a_direct_writer_is_blocked_on_io_and_names_it";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let Some(dir) = disk_backed_tempdir(TEST) else {
        return;
    };
    // As on a host booted with `delayacct`: the kernel keeps delays only for tasks started
    // while it is on, so it is on before the victim starts.
    let switch = DelayAcctSwitch::on();
    let (small, big) = (dir.path().join("small"), dir.path().join("big"));
    let victim = Workload::spawn(
        DISKWRITER,
        &[
            "--buffered-fsync",
            "--path",
            utf8(&small),
            "--bytes",
            "4096",
        ]
        .into_iter()
        .chain(["--chunk", "4096", "--loop-seconds", "9"])
        .collect::<Vec<_>>(),
    );
    let writer = Workload::spawn(
        DISKWRITER,
        &["--direct", "--path", utf8(&big), "--bytes", "67108864"]
            .into_iter()
            .chain(["--loop-seconds", "9"])
            .collect::<Vec<_>>(),
    );
    thread::sleep(Duration::from_millis(500));
    let (_, report) = diagnose_delayacct(victim.pid(), "4s");
    drop(switch);
    let v = &report["victim"];
    eprintln!("victim: {v:#}");

    let blocked = array(v, "blocked");
    let io_ns = blocked
        .iter()
        .find(|part| part["why"] == "io")
        .map_or(0, |part| count(part, "ns"));
    let other_states = [count(v, "on_cpu_ns"), count(v, "runq_wait_ns")]
        .into_iter()
        .chain(
            blocked
                .iter()
                .filter(|p| p["why"] != "io")
                .map(|p| count(p, "ns")),
        );
    for ns in other_states {
        assert!(io_ns > ns, "blocked on IO is not its largest state:\n{v:#}");
    }

    // Its on-CPU time split by the kernel's user and system shares: a writer that fsyncs each
    // 4 KiB spends it in the kernel.
    let (user, system) = (count(v, "user_ns"), count(v, "system_ns"));
    assert_eq!(user + system, count(v, "on_cpu_ns"), "{v:#}");
    assert!(
        system > user,
        "a fsyncing writer mostly in user mode:\n{v:#}"
    );
    let verdict = v["verdict"].as_str().unwrap_or_default();
    assert!(verdict.contains("% of it in the kernel)."), "{verdict}");

    let delays = &v["delayacct"];
    assert_eq!(delays["turned_on"], false, "{delays}");
    assert_eq!(delays["uncovered_threads"], 0, "{delays}");
    let exact = count(delays, "blkio_ns") as f64;
    eprintln!(
        "IO wait: inferred {:.1} ms, delay accounting {:.1} ms",
        io_ns as f64 / 1e6,
        exact / 1e6
    );
    // One thread cannot wait longer than the run. Delay accounting on this kernel sometimes
    // does: a wait that sets `in_iowait` without starting its clock is charged from the last
    // start (a task's first one from boot), seen in 2 of 5 runs here at 4.7 s and 5.9 s in a
    // 4 s run. Such a figure is no measure of anything, and the profiler's own is bounded.
    let run_ns = number(&report, "duration_s") * 1e9;
    assert!(
        io_ns as f64 <= run_ns * 1.05,
        "{io_ns} ns blocked in a {run_ns} ns run"
    );
    if exact <= run_ns {
        assert!(
            (io_ns as f64 - exact).abs() <= DELAYACCT_TOLERANCE * exact,
            "blocked on IO {io_ns} ns against delay accounting's {exact} ns:\n{v:#}"
        );
    } else {
        eprintln!("delay accounting over-counted: {exact} ns in a {run_ns} ns run, not compared");
    }

    let io_culprits: Vec<&Value> = array(v, "culprits")
        .iter()
        .filter(|c| c["cause"] == "io")
        .collect();
    let top = io_culprits
        .first()
        .unwrap_or_else(|| panic!("no IO culprit:\n{v:#}"));
    assert_eq!(top["pid"], writer.pid(), "{v:#}");
    assert!(
        count(top, "delay_ns") as f64 >= WRITER_SHARE * io_ns as f64,
        "the direct writer is named for too little of the IO wait:\n{v:#}"
    );
    let verdict = v["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.contains("blocked on disk IO")
            && verdict.contains(&format!("behind diskwriter (pid {})", writer.pid())),
        "{verdict}"
    );
}

#[test]
fn delay_accounting_turned_on_for_a_run_is_off_after_and_says_what_it_missed() {
    const TEST: &str = "delay_accounting_turned_on_for_a_run_is_off_after_and_says_what_it_missed";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let switch = DelayAcctSwitch::off();
    // It wakes every millisecond, so it runs during the run and is in the report.
    let waker = Workload::spawn(WAKER, &["--seconds", "30"]);
    let (done, report) = diagnose_delayacct(waker.pid(), "1s");
    let after = fs::read_to_string(DelayAcctSwitch::PATH).expect("task_delayacct");
    drop(switch);
    assert_eq!(after.trim(), "0", "delay accounting left on after the run");
    let delays = &report["victim"]["delayacct"];
    assert_eq!(delays["turned_on"], true, "{delays}");
    assert!(count(delays, "uncovered_threads") >= 1, "{delays}");
    assert!(
        done.stderr.contains("kernel.task_delayacct=1"),
        "no word on the threads it could not cover:\n{}",
        done.stderr
    );
}
