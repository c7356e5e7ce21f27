//! End-to-end off-CPU diagnosis: a process blocked in `read(2)` for most of the profiling window
//! must have that time counted as off-CPU, and show in `offcpu.folded` and `offcpu.svg` with the
//! user frame it blocked in and the kernel's read path beneath it; both when its sleep ends
//! inside the window and when it is still blocked as the window closes, like a hung process.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use profiler_tests::{
    EXIT_MARGIN, KERNEL_SUFFIX, Workload, assert_folded_well_formed, count, diagnose_window,
    file_mode, folded_frames, folded_lines_of, number, process_entry, release, require_root,
    serial,
};
use serde_json::{Value, json};

const SLEEPER: &str = "sleeper";
const SLEEPER_EXE: &str = env!("CARGO_BIN_EXE_sleeper");

/// The sleeper's frame that makes the blocking `read` syscall itself.
const BLOCKING_FRAME: &str = "block_in_read";

/// Short: the sleepers do nothing but wait, so a longer window would only measure more of the
/// same.
const DURATION: Duration = Duration::from_secs(3);

/// How long before its exit deadline the test closes the woken sleeper's stdin: end of file
/// wakes it and it exits within microseconds; a quarter second covers a busy host.
const WAKE_LEAD: Duration = Duration::from_millis(250);

/// Share of the window each sleeper must be found off-CPU for. Both block from their release just
/// after attach, the woken one until `EXIT_MARGIN + WAKE_LEAD` before the window ends (some 75 %
/// of 3 s), the other past its end (nearly all of it); half leaves room for a slow release
/// without letting a profiler that misses most of the sleep pass.
const MIN_SHARE: f64 = 0.5;

/// Allowed excess of off-CPU time over the window. A sleeper has one thread, which cannot be
/// off-CPU for longer than the window; this covers `duration_s` being rounded to the millisecond
/// and the profiler's clock starting a little apart from its probes, while a sleep counted twice
/// (at its wake-up and again as still going on at the end, say) would far exceed it.
const OVER_WINDOW_TOLERANCE: f64 = 0.02;

#[test]
fn processes_blocked_in_read_show_their_off_cpu_time_and_stack() {
    if !require_root("processes_blocked_in_read_show_their_off_cpu_time_and_stack") {
        return;
    }
    let _serial = serial();
    let args = ["--wait-stdin", "--read-stdin"];
    let (mut woken, woken_stdin) = Workload::spawn_piped(SLEEPER_EXE, &args);
    // Its stdin stays open until the test ends, past the window.
    let (still_blocked, mut still_blocked_stdin) = Workload::spawn_piped(SLEEPER_EXE, &args);
    let pids = [woken.pid(), still_blocked.pid()];
    let mut woken_stdin = Some(woken_stdin);
    let mut woken_blocked = Duration::ZERO;
    let run = diagnose_window(DURATION, &[], |attached| {
        let stdin = woken_stdin.as_mut().expect("taken only below");
        release(stdin);
        release(&mut still_blocked_stdin);
        let released = Instant::now();
        let deadline = attached + DURATION - EXIT_MARGIN;
        thread::sleep((deadline - WAKE_LEAD).saturating_duration_since(Instant::now()));
        // End of file: its sleep ends, and it exits, inside the window.
        drop(woken_stdin.take());
        let status = woken.wait_exit(deadline);
        woken_blocked = released.elapsed();
        assert!(status.success(), "sleeper {} failed: {status}", pids[0]);
    });
    let report = &run.report;
    let context = || relevant(report, &pids);
    assert_eq!(report["signals"]["offcpu"], "on", "{}", context());
    let window_s = number(report, "duration_s");

    let folded_path = run.out.join("offcpu.folded");
    let folded = fs::read_to_string(&folded_path)
        .unwrap_or_else(|err| panic!("{}: {err}\n{}", folded_path.display(), context()));
    assert_folded_well_formed(&folded, "offcpu.folded");
    let svg_path = run.out.join("offcpu.svg");
    let svg = fs::read_to_string(&svg_path)
        .unwrap_or_else(|err| panic!("{}: {err}\n{}", svg_path.display(), context()));
    assert!(
        svg.contains(BLOCKING_FRAME),
        "offcpu.svg lacks {BLOCKING_FRAME}"
    );
    // Like every file of the run: a stack can reveal what a process was doing.
    for path in [&folded_path, &svg_path] {
        let mode = file_mode(path);
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
    }

    for (pid, which, exited) in [
        (pids[0], "woken inside the window", true),
        (pids[1], "still blocked at its end", false),
    ] {
        let entry = process_entry(report, pid)
            .unwrap_or_else(|| panic!("sleeper {pid} not in processes:\n{}", context()));
        assert_eq!(entry["comm"], SLEEPER, "{entry:#}");
        assert_eq!(entry["exited"], exited, "{entry:#}");
        let sched = &entry["sched"];
        assert!(
            sched.is_object(),
            "sleeper {pid} has no sched object:\n{}",
            context()
        );
        let offcpu_ns = count(sched, "offcpu_ns");
        let root = format!("{SLEEPER} ({pid})");
        let lines = folded_lines_of(&folded, &root);
        let folded_us: u64 = lines
            .iter()
            .map(|line| folded_frames(line).map_or(0, |(_, us)| us))
            .sum();
        // Captured by libtest: shown on failure or with --nocapture, to watch the margins.
        eprintln!(
            "sleeper {pid} ({which}): offcpu_ns {:.3} s, offcpu.folded {:.3} s in {} stacks, \
             over a {window_s} s window; the woken one blocked {:.3} s as the test saw it",
            offcpu_ns as f64 / 1e9,
            folded_us as f64 / 1e6,
            lines.len(),
            woken_blocked.as_secs_f64(),
        );

        let min_ns = MIN_SHARE * window_s * 1e9;
        assert!(
            offcpu_ns as f64 >= min_ns,
            "sleeper {pid} ({which}) offcpu_ns {offcpu_ns} under {MIN_SHARE} of the {window_s} \
             s window:\n{}",
            context()
        );
        assert!(
            offcpu_ns as f64 <= (1.0 + OVER_WINDOW_TOLERANCE) * window_s * 1e9,
            "sleeper {pid} ({which}) offcpu_ns {offcpu_ns} exceeds the {window_s} s window its \
             one thread was measured in:\n{}",
            context()
        );

        let blocked_in_read = |line: &&str| {
            folded_frames(line).is_some_and(|(frames, _)| {
                frames.iter().any(|frame| frame.contains(BLOCKING_FRAME))
                    && frames
                        .iter()
                        .any(|frame| frame.contains("read") && frame.ends_with(KERNEL_SUFFIX))
            })
        };
        assert!(
            lines.iter().any(blocked_in_read),
            "no `{root};...` stack in offcpu.folded with {BLOCKING_FRAME} above a kernel read \
             frame ({which}); its lines:\n{}\n{}",
            lines.join("\n"),
            context()
        );
        assert!(
            folded_us as f64 >= min_ns / 1e3,
            "sleeper {pid} ({which}): its offcpu.folded counts add up to {folded_us} µs, under \
             {MIN_SHARE} of the {window_s} s window; its lines:\n{}\n{}",
            lines.join("\n"),
            context()
        );
        assert!(svg.contains(&root), "offcpu.svg lacks {root}");
    }
}

/// The parts of the report these checks read, for failure messages: the whole report lists
/// every process on the host and would bury them.
fn relevant(report: &Value, pids: &[u32]) -> String {
    let sleepers: Vec<Option<&Value>> =
        pids.iter().map(|&pid| process_entry(report, pid)).collect();
    let part = json!({
        "sleeper pids (woken, still blocked)": pids,
        "duration_s": report["duration_s"],
        "signals": report["signals"],
        "drops": report["drops"],
        "sleepers": sleepers,
    });
    format!("{part:#}")
}
