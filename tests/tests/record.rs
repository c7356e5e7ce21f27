//! `profiler record` end to end: windows written whole and pruned by retention, SIGTERM
//! finishing the current window, SIGKILL leaving no BPF program loaded, and the metrics endpoint
//! scraped by a real Prometheus server.

use std::{
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use profiler_tests::{
    ProfilerRun, REPORT_GRACE, Workload, assert_matches_schema, assert_programs_unloaded,
    cpu_seconds, free_port, http_get, loaded_programs, number, process_entry, profiler_command,
    programs_held_by, read_json, record_into, record_windows, require_root, serial, skip_or_fail,
    tempdir, utf8, windows_written,
};
use serde_json::Value;

const BURNER: &str = env!("CARGO_BIN_EXE_burner");

/// Short windows, so a test sees several within seconds.
const WINDOW: &str = "2s";
/// Short enough that the first windows of a 10 s run expire before it ends.
const RETENTION: &str = "5s";
/// Long enough for five windows at 2 s, plus the last partial one: the stop lands in the middle
/// of a window, not on a boundary where the last window would last a few milliseconds and hold
/// too few samples to say anything of the burner.
const RUN: Duration = Duration::from_secs(11);

fn record(root: &Path, extra: &[&str]) -> ProfilerRun {
    record_into(root, &[&["--window", WINDOW], extra].concat())
}

#[test]
fn windows_are_whole_pruned_by_retention_and_sigterm_finishes_the_last() {
    if !require_root("windows_are_whole_pruned_by_retention_and_sigterm_finishes_the_last") {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let root = dir.path().join("rec");
    let burner = Workload::spawn(BURNER, &[]);
    let run = record(&root, &["--retention", RETENTION, "--no-metrics", "--html"]);
    thread::sleep(RUN);
    let stopped_at = std::time::SystemTime::now();
    run.signal(libc::SIGTERM);
    let done = run.finish(REPORT_GRACE);
    done.assert_success();

    let written = windows_written(&done.stderr);
    assert!(
        written >= 5,
        "{written} windows in {RUN:?}:\n{}",
        done.stderr
    );
    let pruned = done
        .stderr
        .lines()
        .filter(|l| l.contains("pruned window") && l.contains("--retention"))
        .count();
    let left = record_windows(&root);
    assert!(pruned >= 1, "nothing pruned:\n{}", done.stderr);
    assert_eq!(
        left.len() + pruned,
        written,
        "every window is either on disk or pruned:\n{}",
        done.stderr
    );
    // At 2 s windows and 5 s retention, at most three (plus the partial last) can be young
    // enough to stay.
    assert!((1..=4).contains(&left.len()), "{left:?}");
    assert!(
        fs::read_dir(&root).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')),
        "a staging directory was left behind"
    );

    for window in &left {
        for file in [
            "report.json",
            "stacks.folded",
            "flamegraph.svg",
            "profile.pb.gz",
            "report.html",
        ] {
            assert!(
                window.join(file).is_file(),
                "{} lacks {file}",
                window.display()
            );
        }
        let report = read_json(&window.join("report.json"));
        assert_matches_schema(&report);
        let cost = &report["own_cost"];
        assert!(cost.is_object(), "no own_cost in {}", window.display());
        assert!(number(cost, "peak_rss_bytes") > 0.0, "{cost}");
        // BPF statistics are sampled (a tick in ten); every window still has its programs'
        // time, scaled from the latest measured rate, and says how much of it was measured.
        assert!(number(cost, "bpf_run_time_ns") > 0.0, "{cost}");
        let share = number(cost, "bpf_measured_share");
        assert!((0.0..=1.0).contains(&share), "{cost}");
        let entry = process_entry(&report, burner.pid())
            .unwrap_or_else(|| panic!("burner missing from {}", window.display()));
        let cores = number(&entry["cpu"], "cores");
        assert!(
            cores > 0.7,
            "burner used {cores} cores in {} ({} s long)",
            window.display(),
            report["duration_s"]
        );
        // The window's ticks make its timeline: the burner's series is there, near one core.
        let series = report["timeline"]["series"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["pid"] == burner.pid()))
            .unwrap_or_else(|| panic!("no timeline series for the burner in {}", window.display()));
        let peak = series["cpu_cores"].as_array().map_or(0.0, |v| {
            v.iter().filter_map(Value::as_f64).fold(0.0, f64::max)
        });
        assert!(
            peak > 0.5,
            "burner's timeline peaks at {peak} in {}",
            window.display()
        );
    }
    // The window SIGTERM interrupted was written after it, not dropped.
    let newest = left.last().expect("windows left").join("report.json");
    let written_at = fs::metadata(&newest).and_then(|m| m.modified()).unwrap();
    assert!(
        written_at >= stopped_at,
        "the newest window {} predates SIGTERM",
        newest.display()
    );
}

#[test]
fn sigkill_leaves_no_bpf_program_behind() {
    const TEST: &str = "sigkill_leaves_no_bpf_program_behind";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    if loaded_programs(TEST).is_none() {
        return;
    }
    let dir = tempdir();
    let run = record(&dir.path().join("rec"), &["--no-metrics"]);
    // The recorder's own, by the file descriptors it holds: programs others load meanwhile
    // do not count.
    let ours = programs_held_by(run.pid());
    assert!(ours.len() >= 3, "the recorder holds only programs {ours:?}");
    let loaded = loaded_programs(TEST).expect("bpftool ran a moment ago");
    assert!(
        ours.iter().all(|id| loaded.contains(id)),
        "bpftool does not list the recorder's programs {ours:?}: {loaded:?}"
    );
    run.signal(libc::SIGKILL);
    let done = run.finish(REPORT_GRACE);
    assert!(!done.status.success());
    assert_programs_unloaded(TEST, &ours);
}

/// A Prometheus server scraping `target` every second, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(test: &str, dir: &Path, target: u16) -> Option<Prometheus> {
    let config = dir.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n  - job_name: profiler\n    static_configs:\n      \
             - targets: ['127.0.0.1:{target}']\n"
        ),
    )
    .expect("writing prometheus.yml");
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(child) => Some(Prometheus { child, port }),
        Err(err) => {
            skip_or_fail(
                test,
                &format!("prometheus not runnable ({err}); run cargo xtask setup"),
            );
            None
        }
    }
}

#[test]
fn prometheus_scrapes_the_hogs_cpu() {
    const TEST: &str = "prometheus_scrapes_the_hogs_cpu";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let burner = Workload::spawn(BURNER, &[]);
    let metrics_port = free_port();
    let address = format!("127.0.0.1:{metrics_port}");
    let run = record(&dir.path().join("rec"), &["--metrics", &address]);
    let Some(prometheus) = start_prometheus(TEST, dir.path(), metrics_port) else {
        return;
    };

    let query = format!("profiler_process_cpu_cores{{pid=\"{}\"}}", burner.pid());
    // Let a few scrapes land so the truth below covers the same stretch as the last ones.
    thread::sleep(Duration::from_secs(3));
    let path = format!("/api/v1/query?query={}", percent_encode(&query));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (value, truth) = loop {
        let cpu_before = cpu_seconds(burner.pid());
        let measured = Instant::now();
        thread::sleep(Duration::from_secs(2));
        let truth = (cpu_seconds(burner.pid()) - cpu_before) / measured.elapsed().as_secs_f64();
        if let Ok(body) = http_get(prometheus.port, &path) {
            let answer: Value = serde_json::from_str(&body).unwrap_or_default();
            if let Some(sample) = answer["data"]["result"].as_array().and_then(|r| r.first()) {
                let value = sample["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("odd sample: {sample}"));
                break (value, truth);
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never got {query}; /metrics says:\n{}",
            http_get(metrics_port, "/metrics").unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(500));
    };
    let series = http_get(metrics_port, "/metrics").expect("scraping /metrics directly");
    run.signal(libc::SIGTERM);
    run.finish(REPORT_GRACE).assert_success();
    drop(prometheus);
    // The gauge covers the last 1 s tick, the truth the last 2 s from /proc: on a steady
    // burner they agree to a few hundredths; the margin covers a busy host's jitter.
    assert!(
        (value - truth).abs() <= 0.25 && value > 0.0,
        "Prometheus has the burner at {value} cores, /proc says {truth:.3}"
    );
    for name in [
        "profiler_host_busy_cores",
        "profiler_own_cpu_seconds_total",
        "profiler_drops_total",
        "profiler_app_cpu_cores",
    ] {
        assert!(series.contains(name), "no {name} in:\n{series}");
    }
    assert!(series.contains("comm=\"burner\""), "{series}");
}

/// Enough of RFC 3986 for PromQL: everything but unreserved characters is escaped.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Bad input to `record` ends before anything is written: exit 2, one `Error:` line naming the
/// flag, and no record directory.
#[test]
fn bad_record_input_is_one_line_and_leaves_nothing() {
    if !require_root("bad_record_input_is_one_line_and_leaves_nothing") {
        return;
    }
    let _serial = serial();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let taken = taken.local_addr().expect("its address").to_string();
    for (args, names) in [
        (vec!["--window", "500ms"], "--window"),
        (vec!["--max-disk", "12 parsecs"], "--max-disk"),
        (vec!["--retention", "soon"], "--retention"),
        (vec!["--metrics", taken.as_str()], "--metrics"),
        (vec!["--on-alert", "/nonexistent/hook"], "hook"),
    ] {
        let dir = tempdir();
        let root = dir.path().join("rec");
        let mut command = profiler_command();
        command.args(["record", "--out", utf8(&root)]).args(&args);
        let done = ProfilerRun::start(command).finish(REPORT_GRACE);
        let line = done.error_line();
        assert!(
            line.contains(names),
            "{args:?}: error does not name {names}: {line}"
        );
        assert!(!root.exists(), "{args:?} left {} behind", root.display());
    }
}

#[test]
fn retention_touches_only_its_own_windows() {
    if !require_root("retention_touches_only_its_own_windows") {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let root = dir.path().join("rec");
    fs::create_dir(&root).unwrap();
    // Another program's directory under a window's name, long expired.
    let foreign = root.join("20200101T000000.000Z");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("report.json"), "{}").unwrap();
    // A window dated in the future holding a sparse 10 TiB file: counted by length, it would
    // put the recording over any budget and prune every real window.
    let future = root.join("29990101T000000.000Z");
    fs::create_dir(&future).unwrap();
    fs::write(future.join(".profiler-window"), "").unwrap();
    fs::File::create(future.join("big"))
        .and_then(|file| file.set_len(10 << 40))
        .unwrap();
    // A staging directory a killed recorder left an hour ago.
    let stale = root.join(".20200101T000000.000Z.AbCdEf");
    fs::create_dir(&stale).unwrap();
    fs::write(stale.join(".profiler-window"), "").unwrap();
    let touched = Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(&stale)
        .status()
        .is_ok_and(|s| s.success());
    assert!(touched, "could not age {}", stale.display());

    let run = record(
        &root,
        &["--retention", "1h", "--max-disk", "100MiB", "--no-metrics"],
    );
    thread::sleep(Duration::from_secs(5));
    run.signal(libc::SIGTERM);
    let done = run.finish(REPORT_GRACE);
    done.assert_success();

    let written = windows_written(&done.stderr);
    let ours: Vec<_> = record_windows(&root)
        .into_iter()
        .filter(|w| w != &foreign && w != &future)
        .collect();
    assert_eq!(ours.len(), written, "windows were pruned:\n{}", done.stderr);
    assert!(
        foreign.join("report.json").is_file(),
        "the foreign directory was deleted"
    );
    assert!(
        future.join("big").is_file(),
        "the future window was deleted"
    );
    let said = |needle: &str| done.stderr.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        said("left window 29990101T000000.000Z alone"),
        1,
        "the future window is not reported once:\n{}",
        done.stderr
    );
    assert!(!stale.exists(), "the stale staging directory stayed");
    assert_eq!(
        said("removed .20200101T000000.000Z.AbCdEf"),
        1,
        "{}",
        done.stderr
    );
}
