//! Fidelity of the profiler's figures against the kernel's own accounting and against perf: a
//! workload with a known 60/30/10 split of its work, running at about 60 % of a core, is
//! measured by `profiler diagnose` and `perf record -g` at the same time. Its CPU share must match
//! /proc's utime+stime within 3 points, and each of its top frames' share of samples must match
//! perf's within 5 points.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use profiler_tests::{
    Workload, cpu_seconds, diagnose_window, folded_frames, folded_lines_of, number, process_entry,
    require_root, serial, skip_or_fail, tempdir,
};

const MIXER: &str = env!("CARGO_BIN_EXE_mixer");

/// Both tools sample at this rate: at 99 Hz a 6 s window gives ~350 samples of a 60 % process and
/// two independent share estimates differ by ~4 points (1 sigma) from sampling alone; at 997 Hz
/// that is ~1.2 points, so the 5-point bound tests the attribution, not luck.
const FREQUENCY: &str = "997";
const WINDOW: Duration = Duration::from_secs(6);
/// CPU share, in points of one core, by which the profiler may differ from /proc.
const SHARE_TOLERANCE_POINTS: f64 = 3.0;
/// A frame's share of the process's samples, in points, by which the profiler may differ from
/// perf.
const FRAME_TOLERANCE_POINTS: f64 = 5.0;
/// The frames compared: the workload's three callers (60/30/10 by design) and its common leaf.
const FRAMES: [&str; 4] = [
    "mixer_heavy_six",
    "mixer_medium_three",
    "mixer_light_one",
    "mixer_unit",
];

#[test]
fn cpu_share_and_frame_shares_match_proc_and_perf() {
    const TEST: &str = "cpu_share_and_frame_shares_match_proc_and_perf";
    if !require_root(TEST) {
        return;
    }
    if Command::new("perf")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_or(true, |status| !status.success())
    {
        skip_or_fail(
            TEST,
            "perf is not installed (cargo xtask setup installs linux-perf)",
        );
        return;
    }
    let _serial = serial();
    let mixer = Workload::spawn(MIXER, &["--busy-ms", "30", "--idle-ms", "20"]);
    let pid = mixer.pid();
    let dir = tempdir();
    let data = dir.path().join("perf.data");
    let perf = Command::new("perf")
        .args([
            "record",
            "-F",
            FREQUENCY,
            "-g",
            "-p",
            &pid.to_string(),
            "-o",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting perf record");
    // perf prints nothing once it samples; it only has to cover the profiler's window, which
    // starts after the profiler's own startup anyway.
    thread::sleep(Duration::from_millis(500));

    let (mut before, mut after) = (0.0, 0.0);
    let run = diagnose_window(
        WINDOW,
        &[
            "--frequency",
            FREQUENCY,
            "--signals",
            "cpu",
            "--pid",
            &pid.to_string(),
        ],
        |attached| {
            before = cpu_seconds(pid);
            thread::sleep((attached + WINDOW).saturating_duration_since(Instant::now()));
            after = cpu_seconds(pid);
        },
    );
    // SAFETY: kill(2) on perf's pid, a child not yet reaped, so the pid is still its own.
    unsafe { libc::kill(perf.id() as libc::pid_t, libc::SIGINT) };
    let perf_done = perf.wait_with_output().expect("waiting for perf record");
    // perf record exits non-zero when SIGINT ends it; what counts is that it wrote its data.
    let perf_log = String::from_utf8_lossy(&perf_done.stderr);
    assert!(
        perf_log.contains("Captured and wrote"),
        "perf record failed ({}): {perf_log}",
        perf_done.status
    );

    let report = &run.report;
    let duration = number(report, "duration_s");
    let proc_share = (after - before) / duration * 100.0;
    let entry = process_entry(report, pid)
        .unwrap_or_else(|| panic!("mixer {pid} not in processes:\n{report:#}"));
    let share = number(&entry["cpu"], "cores") * 100.0;
    eprintln!("mixer CPU share: profiler {share:.2} points of a core, /proc {proc_share:.2}");

    let folded = std::fs::read_to_string(run.out.join("stacks.folded")).expect("stacks.folded");
    let ours = frame_shares(folded_stacks(&folded, &format!("mixer ({pid})")));
    let theirs = frame_shares(perf_stacks(&data));
    for (frame, (our, their)) in FRAMES.iter().zip(ours.iter().zip(&theirs)) {
        eprintln!("{frame}: profiler {our:.2} %, perf {their:.2} %");
    }
    // One machine-readable line for `cargo xtask bench fidelity`, which runs this test; before
    // the assertions, so a failing run still hands the bench its figures.
    eprintln!(
        "fidelity: {}",
        serde_json::json!({
            "cpu_share": {"profiler": share, "proc": proc_share},
            "frames": FRAMES.iter().zip(ours.iter().zip(&theirs)).map(|(frame, (our, their))| {
                serde_json::json!({"frame": frame, "profiler": our, "perf": their})
            }).collect::<Vec<_>>(),
        })
    );
    assert!(
        proc_share > 20.0,
        "mixer got only {proc_share:.1} % of a core: host too busy to measure"
    );
    assert!(
        (share - proc_share).abs() <= SHARE_TOLERANCE_POINTS,
        "mixer CPU share: profiler {share:.2} %, /proc {proc_share:.2} % over the profiler's window"
    );
    for (frame, (our, their)) in FRAMES.iter().zip(ours.iter().zip(&theirs)) {
        assert!(
            (our - their).abs() <= FRAME_TOLERANCE_POINTS,
            "{frame}: profiler {our:.2} % of the mixer's samples, perf {their:.2} %"
        );
    }
    // The split is the workload's by construction; both tools must see it, or the comparison
    // above compared two wrong pictures.
    assert!(
        (ours[0] - 60.0).abs() <= 8.0 && (ours[1] - 30.0).abs() <= 8.0,
        "profiler's split is not the workload's 60/30/10: {ours:?}"
    );
}

/// Each stack of `root` in a folded file, as (frames, samples).
fn folded_stacks<'a>(folded: &'a str, root: &str) -> Vec<(Vec<&'a str>, u64)> {
    let stacks: Vec<_> = folded_lines_of(folded, root)
        .into_iter()
        .map(|line| folded_frames(line).unwrap_or_else(|| panic!("bad folded line: {line}")))
        .collect();
    assert!(!stacks.is_empty(), "no stacks for {root} in:\n{folded}");
    stacks
}

/// Each sample of `perf script`, as (frames, 1).
fn perf_stacks(data: &Path) -> Vec<(Vec<String>, u64)> {
    let output = Command::new("perf")
        .args(["script", "-F", "ip,sym", "-i"])
        .arg(data)
        .output()
        .expect("running perf script");
    assert!(
        output.status.success(),
        "perf script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    // Samples are blocks of "<ip> <symbol>" lines separated by blank lines.
    let stacks: Vec<_> = text
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let frames = block
                .lines()
                .filter_map(|line| line.trim().split_once(' ').map(|(_, sym)| sym.to_owned()))
                .collect();
            (frames, 1)
        })
        .collect();
    assert!(!stacks.is_empty(), "perf recorded no samples");
    stacks
}

/// The share (in %) of samples whose stack holds each of [`FRAMES`].
fn frame_shares<S: AsRef<str>>(stacks: Vec<(Vec<S>, u64)>) -> Vec<f64> {
    let total: u64 = stacks.iter().map(|(_, n)| n).sum();
    FRAMES
        .iter()
        .map(|frame| {
            let hits: u64 = stacks
                .iter()
                .filter(|(frames, _)| frames.iter().any(|f| f.as_ref().contains(frame)))
                .map(|(_, n)| n)
                .sum();
            hits as f64 * 100.0 / total as f64
        })
        .collect()
}
