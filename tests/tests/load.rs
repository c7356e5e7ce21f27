//! The load row: `profiler record` with every always-on hook it can run (the exact `syscalls`
//! and `net` signals too, which its defaults leave to incidents, and no escalation: the
//! heaviest steady configuration, the defaults of earlier releases) for `PROFILER_LOAD_SECONDS`
//! (600, ten minutes, unless set) through process churn (170 short-lived processes a second: 100 k in ten
//! minutes), a syscall storm paced at 1 M calls a second, and more live processes than its
//! per-(process, syscall) map can hold. The recorder must live through it and stop cleanly, write
//! every window whole, count and show what the full map refused, and keep its memory flat.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use profiler_common::SYSCALL_ENTRIES;
use profiler_tests::{
    ProfilerRun, REPORT_GRACE, Workload, array, assert_matches_schema, count, disk_backed_tempdir,
    free_port, http_get, number, process_entry, profiler_command, read_json, record_windows,
    require_root, serial, skip_or_fail, utf8, windows_written,
};
use serde_json::Value;

const SPAWNER: &str = env!("CARGO_BIN_EXE_spawner");
const STORM: &str = env!("CARGO_BIN_EXE_storm");
const SLEEPER: &str = env!("CARGO_BIN_EXE_sleeper");

/// Ten minutes, as the load row asks; `PROFILER_LOAD_SECONDS` shortens it while developing.
const DEFAULT_SECONDS: u64 = 600;
const WINDOW: &str = "30s";
const WINDOW_S: f64 = 30.0;
/// Small, so windows are pruned all through the run, as in a long recording.
const RETENTION: &str = "2m";
/// 102 000 processes in ten minutes.
const CHURN_PER_SECOND: u64 = 170;
/// 10 000 `getppid` calls every 10 ms: 1 M syscalls a second while the host keeps up.
const STORM_ROUND_CALLS: &str = "10000";
const STORM_ROUND_MS: &str = "10";
/// Live processes the run adds. A sleeper makes 22 distinct syscalls between its fork and its
/// first sleep (`strace -c`: exec, the loader, std's start-up), and the kernel keeps one
/// (process, syscall) entry for each while it lives: this many want about 1.4 times the
/// entries the map has, so it stays full for as long as they live. The per-process maps
/// themselves hold as many processes as the default `pid_max` allows.
const SLEEPERS: usize = (SYSCALL_ENTRIES / 16) as usize;
/// The room in the host's pid and thread tables the run needs, beyond its sleepers: the churn's
/// processes and whatever other users start meanwhile.
const PID_MARGIN: u64 = 4096;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// The second half's highest resident memory may exceed the first half's highest by this much
/// at most. The allocator's resident set is a sawtooth (a window's symbolization and report
/// grow it by ~25 MiB, and the heap is trimmed back at irregular times), so a slope fitted to
/// all samples swings with where the dips fall; the peaks do not. A leak of a few bytes per
/// process that came and went (the churn starts ~10 000 a minute) lifts every later peak:
/// 80 bytes each is 4 MiB between the two halves' peaks, about five minutes apart.
const MAX_PEAK_GROWTH_MIB: f64 = 4.0;

#[test]
fn record_survives_churn_storm_and_full_maps_with_flat_memory() {
    const TEST: &str = "record_survives_churn_storm_and_full_maps_with_flat_memory";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let seconds = load_seconds();
    if !host_has_room(TEST) {
        return;
    }
    // On a disk, as a recording would be: window writes then count as the disk IO they are.
    let Some(dir) = disk_backed_tempdir(TEST) else {
        return;
    };
    let root = dir.path().join("rec");
    let metrics_port = free_port();
    let mut command = profiler_command();
    command.args(["record", "--out", utf8(&root), "--window", WINDOW]);
    command.args([
        "--signals",
        "cpu,sched,syscalls,processes,net,io",
        "--no-escalate",
    ]);
    command.args(["--retention", RETENTION]);
    command.args(["--metrics", &format!("127.0.0.1:{metrics_port}")]);
    let mut run = ProfilerRun::start(command);
    let attached = run.wait_attached();
    let recorder = run.pid();

    // The storm first, so its own (process, syscall) entry is in the map before the sleepers
    // fill it: its calls are then counted all through.
    let loop_seconds = seconds.to_string();
    let mut storm = Workload::spawn(
        STORM,
        &[
            "--getppid",
            STORM_ROUND_CALLS,
            "--loop-seconds",
            &loop_seconds,
            "--round-ms",
            STORM_ROUND_MS,
        ],
    );
    let children = CHURN_PER_SECOND * seconds;
    let mut spawner = Workload::spawn(
        SPAWNER,
        &[
            "--children",
            &children.to_string(),
            "--per-second",
            &CHURN_PER_SECOND.to_string(),
        ],
    );
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);

    // Sleepers end by themselves a while after the run, should the test die without killing
    // them: thousands of processes must not outlive it.
    let sleeper_seconds = (seconds + 300).to_string();
    let (sleepers, rss, mut seen) = thread::scope(|scope| {
        let sleepers = scope.spawn(|| {
            (0..SLEEPERS)
                .map(|_| Workload::spawn(SLEEPER, &["--seconds", &sleeper_seconds]))
                .collect::<Vec<_>>()
        });
        let mut rss = Vec::new();
        let mut seen = BTreeMap::new();
        let mut next = attached;
        loop {
            rss.push((attached.elapsed().as_secs_f64(), vm_rss_mib(recorder)));
            check_new_windows(&root, &mut seen, storm.pid(), spawner.pid());
            if Instant::now() >= end {
                break;
            }
            next += SAMPLE_EVERY;
            thread::sleep(next.min(end).saturating_duration_since(Instant::now()));
        }
        let sleepers = sleepers.join().expect("spawning the sleepers");
        (sleepers, rss, seen)
    });
    assert_eq!(sleepers.len(), SLEEPERS);

    // The churn may lag on a busy host; a tenth of the run, and half a minute, is its grace.
    let grace = Duration::from_secs(30 + seconds / 10);
    let status = spawner.wait_exit(end + grace);
    assert!(status.success(), "spawner failed: {status}");
    let status = storm.wait_exit(end + grace);
    assert!(status.success(), "storm failed: {status}");
    let metrics = http_get(metrics_port, "/metrics").expect("scraping the recorder's /metrics");
    let lifetime = attached.elapsed().as_secs_f64();
    run.signal(libc::SIGTERM);
    let done = run.finish(REPORT_GRACE);
    drop(sleepers);
    done.assert_success();
    check_new_windows(&root, &mut seen, storm.pid(), spawner.pid());

    let half = lifetime / 2.0;
    print_windows(&seen);
    print_rss(&rss, half);

    // Every window written was seen whole, and they cover the recording without a gap.
    let written = windows_written(&done.stderr);
    assert_eq!(
        seen.len(),
        written,
        "the recorder wrote {written} windows, the test saw {}:\n{}",
        seen.len(),
        done.stderr
    );
    assert!(
        fs::read_dir(&root)
            .expect("listing the record directory")
            .filter_map(Result::ok)
            .all(|e| !e.file_name().to_string_lossy().starts_with('.')),
        "a staging directory was left behind"
    );
    let facts: Vec<&WindowFacts> = seen.values().collect();
    let (last, full) = facts.split_last().expect("at least one window");
    for window in full {
        assert!(
            (WINDOW_S - 5.0..=WINDOW_S + 15.0).contains(&window.duration_s),
            "window {} lasted {} s, not about {WINDOW}",
            window.name,
            window.duration_s
        );
    }
    let covered: f64 = facts.iter().map(|w| w.duration_s).sum();
    assert!(
        (covered - lifetime).abs() <= 5.0 && last.duration_s <= WINDOW_S + 15.0,
        "windows cover {covered:.1} s of a {lifetime:.1} s recording"
    );

    // The map overflowed: the refused updates are counted, said in the verdict, and exported.
    let refused: u64 = facts.iter().map(|w| w.syscalls_map_full).sum();
    assert!(
        refused > 0,
        "{SLEEPERS} sleepers want more (process, syscall) entries than the map's \
         {SYSCALL_ENTRIES}, yet no window counts syscalls_map_full"
    );
    for window in &facts {
        assert!(
            window.map_full == 0 || window.verdict_says_dropped,
            "window {} dropped {} updates without saying so in its verdict",
            window.name,
            window.map_full
        );
    }
    let exported = metric(&metrics, "profiler_drops_total{kind=\"syscalls_map_full\"}");
    assert!(
        exported > 0.0,
        "/metrics does not show the refused syscall updates:\n{metrics}"
    );

    // The storm and the churn were measured through all of it.
    let storm_calls: u64 = facts.iter().map(|w| w.storm_syscalls).sum();
    let storm_rate = storm_calls as f64 / seconds as f64;
    assert!(
        storm_rate > 100_000.0,
        "the storm's syscalls counted at {storm_rate:.0}/s over the run"
    );
    // Each child counts once, in the window it started in, whether it ended during a tick or
    // while a window was being written; 1 % is left for forks the kernel map could not hold
    // while other users' threads crowded it.
    let spawned: u64 = facts.iter().map(|w| w.spawned).sum();
    assert!(
        spawned as f64 >= 0.99 * children as f64 && spawned <= children,
        "the spawner started {children} processes; the windows count {spawned}"
    );

    // Memory: the second half's peak is the first half's, give or take the allocator.
    let (first, second) = half_peaks(&rss, half);
    assert!(
        second <= first + MAX_PEAK_GROWTH_MIB,
        "the recorder's resident memory peaked at {second:.1} MiB in the second half, above \
         the first half's {first:.1} MiB by more than {MAX_PEAK_GROWTH_MIB} MiB"
    );
}

fn load_seconds() -> u64 {
    match std::env::var("PROFILER_LOAD_SECONDS") {
        Ok(value) => value.parse().ok().filter(|&s| s >= 60).unwrap_or_else(|| {
            panic!("PROFILER_LOAD_SECONDS: not a number of seconds ≥ 60: {value}")
        }),
        Err(_) => DEFAULT_SECONDS,
    }
}

/// Whether the host's pid and thread tables have room for the sleepers with a wide margin:
/// the run must not starve the host's other users of pids.
fn host_has_room(test: &str) -> bool {
    let read = |path: &str| -> u64 {
        let text = fs::read_to_string(path).unwrap_or_else(|err| panic!("{path}: {err}"));
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{path}: not a number: {text}"))
    };
    let limit = read("/proc/sys/kernel/pid_max").min(read("/proc/sys/kernel/threads-max"));
    // The fourth field of loadavg is `running/total` scheduling entities: every thread.
    let loadavg = fs::read_to_string("/proc/loadavg").expect("/proc/loadavg");
    let tasks: u64 = loadavg
        .split_whitespace()
        .nth(3)
        .and_then(|field| field.split_once('/')?.1.parse().ok())
        .unwrap_or_else(|| panic!("/proc/loadavg: no running/total field: {loadavg}"));
    let needed = SLEEPERS as u64 + PID_MARGIN;
    if tasks + 2 * needed > limit {
        return skip_or_fail(
            test,
            &format!(
                "the host runs {tasks} tasks of at most {limit} (pid_max, threads-max); \
                 {needed} more with as much to spare do not fit"
            ),
        );
    }
    true
}

/// Resident memory of a live process, in MiB; panics when it has exited (a zombie has none).
fn vm_rss_mib(pid: u32) -> f64 {
    let path = format!("/proc/{pid}/status");
    let status =
        fs::read_to_string(&path).unwrap_or_else(|err| panic!("the recorder is gone: {err}"));
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("the recorder is not alive (no VmRSS):\n{status}"));
    kib / 1024.0
}

/// Seconds since the recorder attached, and its resident memory then in MiB.
type Sample = (f64, f64);

/// What the test keeps of one window's report.
struct WindowFacts {
    name: String,
    duration_s: f64,
    processes: usize,
    syscalls_map_full: u64,
    /// Every update a full map refused, of any kind.
    map_full: u64,
    verdict_says_dropped: bool,
    storm_syscalls: u64,
    spawned: u64,
    own_cpu_percent: f64,
    peak_rss_mib: f64,
}

/// Checks the windows written since the last call: every file there, the report valid.
fn check_new_windows(
    root: &Path,
    seen: &mut BTreeMap<PathBuf, WindowFacts>,
    storm: u32,
    spawner: u32,
) {
    if !root.is_dir() {
        return;
    }
    for window in record_windows(root) {
        if seen.contains_key(&window) {
            continue;
        }
        for file in [
            "report.json",
            "stacks.folded",
            "flamegraph.svg",
            "profile.pb.gz",
        ] {
            let path = window.join(file);
            let size = fs::metadata(&path).map_or(0, |m| m.len());
            assert!(size > 0, "{} is missing or empty", path.display());
        }
        let report = read_json(&window.join("report.json"));
        assert_matches_schema(&report);
        let facts = window_facts(&window, &report, storm, spawner);
        seen.insert(window, facts);
    }
}

fn window_facts(window: &Path, report: &Value, storm: u32, spawner: u32) -> WindowFacts {
    let drops = &report["drops"];
    let map_full = drops
        .as_object()
        .expect("drops is an object")
        .iter()
        .filter(|(kind, _)| kind.ends_with("_full") || kind.ends_with("_lost"))
        .map(|(kind, value)| {
            value
                .as_u64()
                .unwrap_or_else(|| panic!("drops.{kind} is not a count"))
        })
        .sum();
    let syscalls = |pid| {
        process_entry(report, pid)
            .filter(|entry| entry["syscalls"].is_object())
            .map_or(0, |entry| count(&entry["syscalls"], "count"))
    };
    WindowFacts {
        name: window
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        duration_s: number(report, "duration_s"),
        processes: array(report, "processes").len(),
        syscalls_map_full: count(drops, "syscalls_map_full"),
        map_full,
        verdict_says_dropped: report["verdict"]
            .as_str()
            .is_some_and(|verdict| verdict.contains("dropped")),
        storm_syscalls: syscalls(storm),
        spawned: process_entry(report, spawner).map_or(0, |entry| count(entry, "spawned")),
        own_cpu_percent: number(&report["own_cost"], "cpu_percent_of_one_core"),
        peak_rss_mib: number(&report["own_cost"], "peak_rss_bytes") / (1024.0 * 1024.0),
    }
}

fn print_windows(seen: &BTreeMap<PathBuf, WindowFacts>) {
    println!(
        "{:<22} {:>6} {:>6} {:>10} {:>9} {:>12} {:>8} {:>7} {:>8}",
        "window",
        "secs",
        "procs",
        "sysc_full",
        "all_full",
        "storm/s",
        "spawned",
        "own_cpu%",
        "peak_MiB"
    );
    for w in seen.values() {
        println!(
            "{:<22} {:>6.1} {:>6} {:>10} {:>9} {:>12.0} {:>8} {:>7.3} {:>8.1}",
            w.name,
            w.duration_s,
            w.processes,
            w.syscalls_map_full,
            w.map_full,
            w.storm_syscalls as f64 / w.duration_s.max(1.0),
            w.spawned,
            w.own_cpu_percent,
            w.peak_rss_mib
        );
    }
}

/// The samples, and each half's peak.
fn print_rss(rss: &[Sample], half: f64) {
    println!("recorder VmRSS every {} s:", SAMPLE_EVERY.as_secs());
    for (t, mib) in rss {
        println!("  {t:>7.1} s {mib:>8.1} MiB");
    }
    let (first, second) = half_peaks(rss, half);
    println!("peak before {half:.0} s: {first:.1} MiB; after: {second:.1} MiB");
}

/// The highest sample before `half` seconds and the highest from then on.
fn half_peaks(rss: &[Sample], half: f64) -> (f64, f64) {
    let peak = |keep: &dyn Fn(f64) -> bool| {
        rss.iter()
            .filter(|&&(t, _)| keep(t))
            .map(|&(_, mib)| mib)
            .fold(0.0, f64::max)
    };
    (peak(&|t| t < half), peak(&|t| t >= half))
}

/// The value of the sample `series` (name and labels as exposed) in an OpenMetrics text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
}
