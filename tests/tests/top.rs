//! `profiler top` end to end: the full-screen view in a real terminal (tmux) showing a burner
//! first, re-sorting on a key and restoring the terminal on `q`; `--once` printing one table;
//! `--json` streaming one report per interval until SIGINT, each with the resident sets of its
//! tick; no terminal and no flag refused.

use std::{
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use profiler_tests::{
    ProfilerRun, REPORT_GRACE, Workload, profiler_bin, profiler_command, require_built,
    require_root, serial, skip_or_fail, stress_ng,
};
use serde_json::Value;

const BURNER: &str = env!("CARGO_BIN_EXE_burner");

/// Covers attaching the probes on a busy host plus a few refreshes.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);

/// A tmux server of its own (its own socket), so the test neither sees nor disturbs anyone
/// else's sessions; killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn command(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap_or_else(|err| panic!("running tmux {args:?}: {err}"))
    }

    fn run(&self, args: &[&str]) -> String {
        let output = self.command(args);
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn pane(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "top"])
    }

    /// Polls the pane until `done` holds; panics with the last capture on timeout.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let pane = self.pane();
            if done(&pane) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {SCREEN_TIMEOUT:?}; pane:\n{pane}"
            );
            thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command(&["kill-server"]);
    }
}

/// The first row under the table's header line, if the table is showing.
fn first_row(pane: &str) -> Option<&str> {
    let mut lines = pane.lines();
    lines.find(|l| l.contains("PID") && l.contains("NAME"))?;
    lines.next()
}

fn first_row_pid(pane: &str) -> Option<u32> {
    first_row_pid_of_line(first_row(pane)?)
}

/// The pid a table line starts with, after the suspect marker.
fn first_row_pid_of_line(line: &str) -> Option<u32> {
    line.trim_start_matches('!')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn screen_shows_the_burner_resorts_on_a_key_and_q_restores_the_terminal() {
    const TEST: &str = "screen_shows_the_burner_resorts_on_a_key_and_q_restores_the_terminal";
    if !require_root(TEST) {
        return;
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        skip_or_fail(TEST, "tmux not found; run cargo xtask setup");
        return;
    }
    let _serial = serial();
    let burner = Workload::spawn(BURNER, &[]);
    let tmux = Tmux {
        socket: format!("profiler-tests-{}", std::process::id()),
    };
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "160",
        "-y",
        "40",
        "sh",
    ]);
    let command = format!(
        "'{}' top; echo TOP-EXITED $?",
        profiler_bin().to_str().expect("UTF-8 path")
    );
    tmux.run(&["send-keys", "-t", "top", "-l", &command]);
    tmux.run(&["send-keys", "-t", "top", "Enter"]);

    let pane = tmux.wait_for("burner as the first row", |pane| {
        first_row_pid(pane) == Some(burner.pid())
    });
    assert!(
        first_row(&pane).unwrap().contains("burner"),
        "first row names the burner:\n{pane}"
    );
    assert_eq!(
        tmux.run(&["display", "-p", "-t", "top", "#{alternate_on}"])
            .trim(),
        "1"
    );

    // Enter opens the first row's detail: its time over the last tick in its own words, as
    // `diagnose --victim` tells it, live.
    tmux.run(&["send-keys", "-t", "top", "Enter"]);
    let words = format!("burner (pid {}) was ", burner.pid());
    let pane = tmux.wait_for("the burner's detail", |pane| {
        pane.contains("last tick: on a CPU") && pane.contains(&words)
    });
    assert!(pane.contains("hottest stacks"), "{pane}");
    tmux.run(&["send-keys", "-t", "top", "Escape"]);
    tmux.wait_for("the table again", |pane| first_row(pane).is_some());

    // CPU -> NAME -> PID, ascending: kernel threads with small pids run every second and come
    // before the burner.
    tmux.run(&["send-keys", "-t", "top", "Left", "Left"]);
    let pane = tmux.wait_for("a re-sorted table", |pane| {
        first_row_pid(pane).is_some_and(|pid| pid < burner.pid())
    });
    let pids: Vec<u32> = pane
        .lines()
        .skip_while(|l| !(l.contains("PID") && l.contains("NAME")))
        .skip(1)
        .filter_map(first_row_pid_of_line)
        .collect();
    assert!(
        pids.windows(2).all(|w| w[0] <= w[1]),
        "rows by ascending pid:\n{pane}"
    );

    tmux.run(&["send-keys", "-t", "top", "q"]);
    // The echoed command line holds the marker too: only a line of its own is the exit status.
    let exit_line = |pane: &str| {
        pane.lines()
            .find(|l| l.starts_with("TOP-EXITED "))
            .map(str::to_owned)
    };
    let pane = tmux.wait_for("TOP-EXITED", |pane| exit_line(pane).is_some());
    assert_eq!(
        exit_line(&pane).as_deref(),
        Some("TOP-EXITED 0"),
        "top exited non-zero:\n{pane}"
    );
    assert_eq!(
        tmux.run(&["display", "-p", "-t", "top", "#{alternate_on}"])
            .trim(),
        "0",
        "the alternate screen was left:\n{pane}"
    );
    assert!(
        !pane.contains("NAME"),
        "the table is gone with the alternate screen:\n{pane}"
    );
}

#[test]
fn once_prints_one_table_with_the_burner_first() {
    if !require_root("once_prints_one_table_with_the_burner_first") {
        return;
    }
    let _serial = serial();
    let burner = Workload::spawn(BURNER, &[]);
    // A shared host's own busiest process (a parallel compiler) can outrun one burning thread
    // for a second: a few tries, each a whole run.
    for attempt in 1..=3 {
        let mut command = profiler_command();
        command.args(["top", "--once"]);
        let done = ProfilerRun::start(command).finish(REPORT_GRACE);
        done.assert_success();
        let first = done
            .stdout
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("PID"))
            .nth(1)
            .unwrap_or_else(|| panic!("no table on stdout:\n{}", done.stdout));
        if first_row_pid_of_line(first) == Some(burner.pid()) {
            assert!(first.contains("burner"), "{first}");
            return;
        }
        assert!(attempt < 3, "first row is not the burner:\n{}", done.stdout);
    }
}

#[test]
fn json_prints_a_report_per_interval_until_sigint() {
    if !require_root("json_prints_a_report_per_interval_until_sigint") {
        return;
    }
    let _serial = serial();
    let burner = Workload::spawn(BURNER, &[]);
    let (reports, ()) = json_ticks(3.5, || {});
    assert!(
        (2..=5).contains(&reports.len()),
        "{} reports in ~3.5 intervals:\n{reports:#?}",
        reports.len()
    );
    for report in &reports {
        let processes = report["processes"]
            .as_array()
            .unwrap_or_else(|| panic!("no processes[]: {report}"));
        assert!(
            processes
                .iter()
                .any(|p| p["pid"].as_u64() == Some(u64::from(burner.pid()))),
            "burner missing from a tick: {report}"
        );
        let secs = report["duration_s"].as_f64().unwrap();
        assert!((0.5..2.0).contains(&secs), "a tick of {secs} s");
    }
}

/// Runs `top --json` at one-second ticks, calls `start` once it has attached, and returns its
/// reports of the next `seconds`.
fn json_ticks<T>(seconds: f64, start: impl FnOnce() -> T) -> (Vec<Value>, T) {
    let mut command = profiler_command();
    command.args(["top", "--json", "--interval", "1s"]);
    let mut run = ProfilerRun::start(command);
    run.wait_attached();
    let started = start();
    thread::sleep(Duration::from_secs_f64(seconds));
    run.signal(libc::SIGINT);
    let done = run.finish(REPORT_GRACE);
    done.assert_success();
    let reports = done
        .stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: not JSON: {line}"))
        })
        .collect();
    (reports, started)
}

#[test]
fn json_ticks_show_the_resident_set_of_their_tick() {
    if !require_root("json_ticks_show_the_resident_set_of_their_tick") {
        return;
    }
    let _serial = serial();
    // Writes 3 GiB a page after another (no --vm-populate), then holds it: active and growing
    // through the ticks after its start.
    let args = "--vm 1 --vm-bytes 3072M --vm-method write64 --vm-hang 0 --timeout 60";
    let args: Vec<&str> = args.split(' ').collect();
    let stress_ng = stress_ng();
    let (reports, hog) = json_ticks(4.5, || Workload::spawn(&stress_ng, &args));
    // The worker, below stress-ng's stressor instance: the largest resident set named
    // stress-ng-vm, tick by tick, in the ticks it was active in.
    let rss: Vec<u64> = reports
        .iter()
        .filter_map(|report| {
            report["processes"]
                .as_array()?
                .iter()
                .filter(|p| p["comm"] == "stress-ng-vm")
                .filter_map(|p| p["mem"]["rss_bytes"].as_u64())
                .max()
        })
        .collect();
    drop(hog);
    let (Some(first), Some(last)) = (rss.first(), rss.last()) else {
        panic!("no tick shows the stress-ng worker's resident set: {rss:?}");
    };
    // A resident set read once, at first sight, would stay put.
    assert!(
        rss.len() >= 2 && *last >= first + (100 << 20),
        "resident sets tick by tick (bytes), not growing by 100 MiB: {rss:?}"
    );
}

#[test]
fn without_a_terminal_or_a_flag_it_says_what_to_use() {
    if !require_built("without_a_terminal_or_a_flag_it_says_what_to_use") {
        return;
    }
    let output = profiler_command()
        .arg("top")
        .output()
        .expect("running the profiler");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--once") && stderr.contains("--json"),
        "{stderr}"
    );
}
