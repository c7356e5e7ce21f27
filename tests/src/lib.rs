//! Shared harness for the end-to-end tests: locating the profiler binary, the root-or-skip rule,
//! workload processes and CPU pinning, profiler runs with streamed stderr, /proc CPU and scheduler
//! accounting, and report checks.

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The stderr line the profiler prints once its BPF programs are attached.
pub const ATTACHED_PREFIX: &str = "profiler: attached";

/// Generous: covers loading and verifying the BPF programs on a slow or busy host.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

/// Time allowed after `--duration` ends: symbolizing every sampled process can take a while.
pub const REPORT_GRACE: Duration = Duration::from_secs(60);

/// The profiler under test: `PROFILER_BIN` if set, else the workspace's release build.
pub fn profiler_bin() -> PathBuf {
    match std::env::var_os("PROFILER_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/profiler"),
    }
}

/// Whether a missing prerequisite must fail the test instead of skipping it: set by
/// `cargo xtask test`, so CI cannot pass by silently skipping everything.
pub fn bpf_required() -> bool {
    std::env::var_os("PROFILER_REQUIRE_BPF").is_some_and(|value| value == "1")
}

/// Gate for every end-to-end test: returns whether `test` can run (root, profiler built).
/// Otherwise it panics when `PROFILER_REQUIRE_BPF=1`, else prints one `skipped:` line and the
/// caller returns early.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return skip_or_fail(test, "needs root to load BPF");
    }
    let bin = profiler_bin();
    if !bin.is_file() {
        let reason = format!(
            "profiler binary not found at {} (PROFILER_BIN overrides)",
            bin.display()
        );
        return skip_or_fail(test, &reason);
    }
    true
}

/// Applies the skip-or-fail rule for an unmet prerequisite; always returns false when it returns.
pub fn skip_or_fail(test: &str, reason: &str) -> bool {
    assert!(
        !bpf_required(),
        "{test}: {reason}; PROFILER_REQUIRE_BPF=1 forbids skipping"
    );
    // Straight to fd 2 rather than eprintln!, which libtest captures and hides for passing
    // tests: a skip must be visible or a green run would hide that nothing was tested.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: {reason} (run cargo xtask test)"
    );
    false
}

static LOCK: Mutex<()> = Mutex::new(());

/// Serializes profiler runs within a test binary: each run samples the whole host, so a
/// concurrent run's CPU use would leak into another test's measurements.
pub fn serial() -> MutexGuard<'static, ()> {
    // A test that panicked while holding the lock leaves nothing behind to protect.
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh temporary directory, removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("profiler-tests-")
        .tempdir()
        .expect("creating a temporary directory")
}

/// A workload child process (burner, sleeper, waker, storm, netblast, spawner), killed and
/// reaped on drop so a failing test never leaves a CPU burner behind.
pub struct Workload {
    child: Child,
}

impl Workload {
    /// Starts `exe` (pass `env!("CARGO_BIN_EXE_burner")` or `..._sleeper`) and waits until it
    /// has exec'd, so its pid already shows the workload's comm and exe to the profiler.
    pub fn spawn(exe: &str, args: &[&str]) -> Self {
        Self::spawn_with_stdin(exe, args, Stdio::null())
    }

    /// Like `spawn`, with stdin a pipe the test writes to: for a workload started with
    /// `--wait-stdin`, which the test releases once the profiler has attached.
    pub fn spawn_piped(exe: &str, args: &[&str]) -> (Self, ChildStdin) {
        let mut workload = Self::spawn_with_stdin(exe, args, Stdio::piped());
        let stdin = workload.child.stdin.take().expect("stdin is piped");
        (workload, stdin)
    }

    fn spawn_with_stdin(exe: &str, args: &[&str], stdin: Stdio) -> Self {
        let child = Command::new(exe)
            .args(args)
            .stdin(stdin)
            .spawn()
            .unwrap_or_else(|err| panic!("spawning {exe}: {err}"));
        let mut workload = Self { child };
        workload.wait_for_exec(Path::new(exe));
        workload
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `deadline` for a workload that ends by itself, and reaps it: once reaped its
    /// /proc entry is gone, as the profiler expects of an exited process. Panics if it is still
    /// running by then (drop then kills it).
    pub fn wait_exit(&mut self, deadline: Instant) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for a workload") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "workload {} still running at its deadline",
                self.pid()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_for_exec(&mut self, exe: &Path) {
        let want = fs::canonicalize(exe).unwrap_or_else(|err| panic!("{}: {err}", exe.display()));
        let link = format!("/proc/{}/exe", self.pid());
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::read_link(&link).ok().as_deref() != Some(want.as_path()) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited at startup: {status}", exe.display());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exec within 5 s",
                exe.display()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// For a workload's `--wait-stdin`: blocks until the test writes the start byte, so a workload
/// started before the profiler attaches does its work only once released, inside the profiling
/// window. End of file is an error rather than a start: it means the test went away (or never
/// meant to release us), and the work would then land outside any profiling window.
pub fn wait_for_start_byte() -> Result<(), String> {
    let mut byte = [0_u8; 1];
    loop {
        match std::io::stdin().read(&mut byte) {
            Ok(0) => return Err("stdin closed before the start byte".to_owned()),
            Ok(_) => return Ok(()),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(format!("reading the start byte from stdin: {err}")),
        }
    }
}

/// CPU time (utime + stime, all threads) a live process has used, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    // comm (field 2) may contain spaces and parentheses; only the last ')' ends it reliably.
    let (_, rest) = stat
        .rsplit_once(')')
        .unwrap_or_else(|| panic!("{path}: no comm: {stat}"));
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15 (proc(5)).
    let ticks = |index: usize| -> u64 {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .unwrap_or_else(|| panic!("{path}: bad field {}: {stat}", index + 3))
    };
    (ticks(11) + ticks(12)) as f64 / clock_ticks_per_second()
}

/// A task's scheduler accounting from `/proc/<pid>/schedstat` (the kernel's `sched_info`), for
/// the thread the pid names: the whole process for the single-threaded workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedstat {
    /// Time spent running on a CPU.
    pub on_cpu_ns: u64,
    /// Time spent runnable on a run queue, waiting for a CPU.
    pub runq_wait_ns: u64,
    /// Times it was switched in to run.
    pub timeslices: u64,
}

impl Schedstat {
    pub fn read(pid: u32) -> Self {
        let path = format!("/proc/{pid}/schedstat");
        let text = fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
        let fields: Vec<u64> = text
            .split_whitespace()
            .map(|field| {
                field
                    .parse()
                    .unwrap_or_else(|_| panic!("{path}: bad field {field:?}: {text}"))
            })
            .collect();
        let [on_cpu_ns, runq_wait_ns, timeslices] = fields[..] else {
            panic!("{path}: expected 3 fields: {text}");
        };
        Self {
            on_cpu_ns,
            runq_wait_ns,
            timeslices,
        }
    }

    /// What accrued between `earlier` and `self`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            on_cpu_ns: self.on_cpu_ns - earlier.on_cpu_ns,
            runq_wait_ns: self.runq_wait_ns - earlier.runq_wait_ns,
            timeslices: self.timeslices - earlier.timeslices,
        }
    }
}

/// CPUs the calling thread may run on, from its affinity mask: a cpuset or `taskset` can leave
/// online CPUs out of reach, and pinning a workload there would fail.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is a plain bit array, for which all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live cpu_set_t of the size passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut set) };
    assert_eq!(
        rc,
        0,
        "sched_getaffinity: {}",
        std::io::Error::last_os_error()
    );
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the set's capacity.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Pins the calling process (pid 0: the calling thread, which for the single-threaded workloads
/// is the whole process) to `cpu`; for the workloads' `--cpu`.
pub fn pin_to_cpu(cpu: usize) -> Result<(), String> {
    let capacity = libc::CPU_SETSIZE as usize;
    if cpu >= capacity {
        return Err(format!(
            "CPU {cpu} is beyond the affinity mask's {capacity}"
        ));
    }
    // SAFETY: cpu_set_t is a plain bit array, for which all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` was checked against the set's capacity above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a live cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "pinning to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(ticks > 0, "sysconf(_SC_CLK_TCK) failed: {ticks}");
    ticks as f64
}

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
pub fn diagnose(args: &[&str], cwd: &Path, timeout: Duration) -> Finished {
    let mut command = profiler_command();
    command.arg("diagnose").args(args).current_dir(cwd);
    ProfilerRun::start(command).finish(timeout)
}

/// A `--wait-stdin` workload must have exited this long before the profiling window closes:
/// work it did after the window would be missing from the report through no fault of the
/// profiler.
pub const EXIT_MARGIN: Duration = Duration::from_millis(500);

/// A profiler run over a `--wait-stdin` workload that ran whole inside the profiling window.
pub struct ReleasedRun {
    /// `report.json`, already checked against the schema and against the JSON on stdout.
    pub report: Value,
    /// From the release to the workload's exit, as the test saw it.
    pub took: Duration,
}

/// Runs `profiler diagnose --duration <window> --format json` and releases `workload` (started
/// with `--wait-stdin`, `start` its stdin) once the profiler has attached, so everything the
/// workload does is inside the profiling window; waits for it to exit successfully, reaping it,
/// at least `EXIT_MARGIN` before the window ends.
pub fn diagnose_released(
    workload: &mut Workload,
    mut start: ChildStdin,
    window: Duration,
) -> ReleasedRun {
    let dir = tempdir();
    let out = dir.path().join("out");
    let mut command = profiler_command();
    command
        .args(["diagnose", "--duration"])
        .arg(format!("{}ms", window.as_millis()))
        .args(["--format", "json", "--out"])
        .arg(&out)
        .current_dir(dir.path());
    let mut run = ProfilerRun::start(command);
    let attached = run.wait_attached();

    start
        .write_all(b"\n")
        .expect("releasing the workload through its stdin");
    let released = Instant::now();
    let status = workload.wait_exit(attached + window - EXIT_MARGIN);
    let took = released.elapsed();
    assert!(
        status.success(),
        "workload {} failed: {status}",
        workload.pid()
    );

    let done = run.finish(REPORT_GRACE);
    done.assert_success();
    let report = read_json(&out.join("report.json"));
    assert_eq!(
        report,
        done.stdout_json(),
        "stdout JSON differs from report.json"
    );
    assert_matches_schema(&report);
    ReleasedRun { report, took }
}

/// Temporary paths as arguments; they come from `tempdir()`, which yields UTF-8 paths.
pub fn utf8(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("not UTF-8: {}", path.display()))
}

pub fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: not JSON: {err}", path.display()))
}

pub fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/report.schema.json")
}

/// Validates `report` against the JSON Schema in docs/, read at run time so the tests follow
/// the schema as it is now rather than as it was when they were compiled.
pub fn assert_matches_schema(report: &Value) {
    let path = schema_path();
    let schema = read_json(&path);
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|err| panic!("{}: not a valid JSON Schema: {err}", path.display()));
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|err| format!("  at {}: {err}", err.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match {}:\n{}\nreport:\n{report:#}",
        path.display(),
        errors.join("\n")
    );
}

/// Permission bits (no file type) of `path`.
pub fn file_mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The `processes[]` entry for `pid`, if the report has one.
pub fn process_entry(report: &Value, pid: u32) -> Option<&Value> {
    report["processes"]
        .as_array()?
        .iter()
        .find(|process| process["pid"].as_u64() == Some(u64::from(pid)))
}

/// Entries of an array field, panicking with the report if it is not an array.
pub fn array<'a>(report: &'a Value, field: &str) -> &'a [Value] {
    report[field]
        .as_array()
        .unwrap_or_else(|| panic!("report.{field} is not an array:\n{report:#}"))
}

/// A numeric field, panicking with context if it is missing or not a number.
pub fn number(value: &Value, field: &str) -> f64 {
    value[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in:\n{value:#}"))
}
