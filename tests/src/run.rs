//! Profiler runs: the command, a running profiler with its output drained, and runs whose window
//! the test fills with workloads released once the profiler has attached.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::{
    ATTACH_TIMEOUT, ATTACHED_PREFIX, REPORT_GRACE, Workload, assert_matches_schema, profiler_bin,
    read_json, tempdir,
};

/// `profiler` with stdin closed, ready for arguments.
pub fn profiler_command() -> Command {
    let mut command = Command::new(profiler_bin());
    command.stdin(Stdio::null());
    command
}

/// A running profiler whose stdout and stderr are drained by threads (a full pipe would stall
/// it) and whose stderr lines are also streamed, to catch `profiler: attached` as it appears.
/// Killed on drop if still running.
pub struct ProfilerRun {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<String>>>,
    stderr_lines: Receiver<String>,
}

/// A profiler run that has exited.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ProfilerRun {
    pub fn start(mut command: Command) -> Self {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("spawning {command:?}: {err}"));
        let mut out = child.stdout.take().expect("stdout is piped");
        let err = child.stderr.take().expect("stderr is piped");
        let stdout = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        });
        let (sender, stderr_lines) = mpsc::channel();
        let stderr = thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(err).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).into_owned();
                // Fails only once the run is dropped; the full copy below is kept regardless.
                let _ = sender.send(line.clone());
                lines.push(line);
            }
            lines
        });
        Self {
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
            stderr_lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Blocks until the profiler reports its BPF programs attached; returns when that was seen.
    pub fn wait_attached(&mut self) -> Instant {
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.starts_with(ATTACHED_PREFIX) => return Instant::now(),
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no `{ATTACHED_PREFIX}` on stderr within {ATTACH_TIMEOUT:?}; stderr so far:\n{}",
                    seen.join("\n")
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "profiler closed stderr (exit status {status:?}) before `{ATTACHED_PREFIX}`; stderr:\n{}",
                        seen.join("\n")
                    )
                }
            }
        }
    }

    /// Blocks until a stderr line starting with `prefix` appears, at most `timeout`; returns it,
    /// or `None` on timeout or once stderr closes. Lines passed over are not seen again here
    /// (the full stderr is still in [`Finished`]).
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill has no memory-safety preconditions; the child is unreaped, so the pid
        // cannot have been recycled for another process.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits up to `timeout` for the profiler to exit; on timeout kills it and panics.
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the profiler") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "profiler still running after {timeout:?}, killed it; stderr:\n{}",
                    self.join_stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stdout = self
            .stdout
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default();
        Finished {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: self.join_stderr(),
        }
    }

    fn join_stderr(&mut self) -> String {
        let lines = self
            .stderr
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default();
        lines.join("\n")
    }
}

impl Drop for ProfilerRun {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Finished {
    pub fn assert_success(&self) {
        assert!(
            self.status.success(),
            "profiler failed: {}\nstderr:\n{}\nstdout:\n{}",
            self.status,
            self.stderr,
            self.stdout
        );
    }

    /// Asserts the error contract (exit code 2, exactly one stderr line, starting `Error: `)
    /// and returns that line.
    pub fn error_line(&self) -> &str {
        assert_eq!(
            self.status.code(),
            Some(2),
            "expected exit code 2, got {}\nstderr:\n{}",
            self.status,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.trim_end().lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("Error: "),
            "expected exactly one stderr line starting `Error: `, got:\n{}",
            self.stderr
        );
        lines[0]
    }

    pub fn stdout_json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON: {err}\nstdout:\n{}", self.stdout))
    }
}

/// Runs `profiler diagnose <args>` to completion, killing it after `timeout`; for runs that
/// need nothing from the test while they last.
/// Starts `profiler record --out root` with `args` and waits until it has attached.
pub fn record_into(root: &Path, args: &[&str]) -> ProfilerRun {
    let mut command = profiler_command();
    command.arg("record").arg("--out").arg(root).args(args);
    let mut run = ProfilerRun::start(command);
    run.wait_attached();
    run
}

pub fn diagnose(args: &[&str], cwd: &Path, timeout: Duration) -> Finished {
    let mut command = profiler_command();
    command.arg("diagnose").args(args).current_dir(cwd);
    ProfilerRun::start(command).finish(timeout)
}

/// Runs `profiler diagnose --duration <duration>` into `<dir>/out`, which must succeed, and
/// returns that output directory and the run.
pub fn diagnose_into(dir: &Path, duration: &str) -> (PathBuf, Finished) {
    let out = dir.join("out");
    let done = diagnose(
        &["--duration", duration, "--out", crate::utf8(&out)],
        dir,
        REPORT_GRACE,
    );
    done.assert_success();
    (out, done)
}

/// A `--wait-stdin` workload must have exited this long before the profiling window closes:
/// work it did after the window would be missing from the report through no fault of the
/// profiler.
pub const EXIT_MARGIN: Duration = Duration::from_millis(500);

/// A profiler run whose window the test filled itself, with the run's output directory kept.
pub struct WindowRun {
    /// `report.json`, already checked against the schema and against the JSON on stdout.
    pub report: Value,
    /// The run's `--out` directory, for the files written next to `report.json`.
    pub out: PathBuf,
    /// Owns `out`: removed when the run is dropped.
    _dir: TempDir,
}

/// Runs `profiler diagnose --duration <window> --format json --out <temporary> <extra_args>`
/// and, once it has attached, calls `during` with that instant: there the test releases its
/// workloads and waits for whatever it needs to see inside the window. Then waits for the
/// profiler to finish by itself and checks its report.
pub fn diagnose_window(
    window: Duration,
    extra_args: &[&str],
    during: impl FnOnce(Instant),
) -> WindowRun {
    let dir = tempdir();
    let out = dir.path().join("out");
    let mut command = profiler_command();
    command
        .args(["diagnose", "--duration"])
        .arg(format!("{}ms", window.as_millis()))
        .args(["--format", "json", "--out"])
        .arg(&out)
        .args(extra_args)
        .current_dir(dir.path());
    // Killed on drop, so a panic in `during` does not leave it running.
    let mut run = ProfilerRun::start(command);
    let attached = run.wait_attached();
    during(attached);

    let done = run.finish(REPORT_GRACE);
    done.assert_success();
    let report = read_json(&out.join("report.json"));
    assert_eq!(
        report,
        done.stdout_json(),
        "stdout JSON differs from report.json"
    );
    assert_matches_schema(&report);
    WindowRun {
        report,
        out,
        _dir: dir,
    }
}

/// A profiler run over a `--wait-stdin` workload that ran whole inside the profiling window.
pub struct ReleasedRun {
    /// `report.json`, already checked against the schema and against the JSON on stdout.
    pub report: Value,
    /// From the release to the workload's exit, as the test saw it.
    pub took: Duration,
}

/// Runs `profiler diagnose --duration <window> --format json <extra_args>` and releases `workload` (started
/// with `--wait-stdin`, `start` its stdin) once the profiler has attached, so everything the
/// workload does is inside the profiling window; waits for it to exit successfully, reaping it,
/// at least `EXIT_MARGIN` before the window ends.
pub fn diagnose_released(
    workload: &mut Workload,
    mut start: ChildStdin,
    window: Duration,
    extra_args: &[&str],
) -> ReleasedRun {
    let mut took = Duration::ZERO;
    let run = diagnose_window(window, extra_args, |attached| {
        release(&mut start);
        let released = Instant::now();
        let status = workload.wait_exit(attached + window - EXIT_MARGIN);
        took = released.elapsed();
        assert!(
            status.success(),
            "workload {} failed: {status}",
            workload.pid()
        );
    });
    ReleasedRun {
        report: run.report,
        took,
    }
}

/// Releases a workload started with `--wait-stdin`; `start` is its stdin. Closing it instead
/// would not do: the workloads take end of file for a test gone away, not a release.
pub fn release(start: &mut ChildStdin) {
    start
        .write_all(b"\n")
        .expect("releasing the workload through its stdin");
}

/// A recorder given SIGTERM needs only to detach and write its current window.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Polls alerts.jsonl until a line matches `wanted`; returns the run with it. When none comes
/// in time, stops the run and panics with its stderr and the lines written so far.
pub fn wait_for_alert(
    run: ProfilerRun,
    alerts: &Path,
    timeout: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> (ProfilerRun, Value) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(event) = read_alerts(alerts).into_iter().find(|event| wanted(event)) {
            return (run, event);
        }
        if Instant::now() >= deadline {
            let written = fs::read_to_string(alerts).unwrap_or_default();
            run.signal(libc::SIGTERM);
            let done = run.finish(STOP_TIMEOUT);
            panic!(
                "no matching alert in {} within {timeout:?}; alerts.jsonl:\n{written}\nrecord \
                 exited {}; stderr:\n{}",
                alerts.display(),
                done.status,
                done.stderr
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Every complete line of alerts.jsonl, each a JSON object; none before the file exists.
pub fn read_alerts(alerts: &Path) -> Vec<Value> {
    let Ok(text) = fs::read_to_string(alerts) else {
        return Vec::new();
    };
    // Lines are written whole, but a read may still catch the file between two writes.
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("alerts.jsonl line is not JSON: {err}: {line}"))
        })
        .collect()
}
