//! Workload processes (spawned, released through stdin, killed on drop), what the workload
//! programs share (release, pacing, option values), CPU pinning, and the kernel's own /proc
//! accounting the tests compare the profiler with.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A workload child process (burner, sleeper, waker, storm, netblast, spawner), killed and
/// reaped on drop so a failing test never leaves a CPU burner behind.
pub struct Workload {
    child: Child,
}

impl Workload {
    /// Starts `exe` (pass `env!("CARGO_BIN_EXE_burner")` or `..._sleeper`) and waits until it
    /// has exec'd, so its pid already shows the workload's comm and exe to the profiler.
    pub fn spawn(exe: &str, args: &[&str]) -> Self {
        Self::spawn_with(exe, args, Stdio::null(), Stdio::inherit())
    }

    /// Like `spawn`, with stdin a pipe the test writes to: for a workload started with
    /// `--wait-stdin`, which the test releases once the profiler has attached.
    pub fn spawn_piped(exe: &str, args: &[&str]) -> (Self, ChildStdin) {
        let mut workload = Self::spawn_with(exe, args, Stdio::piped(), Stdio::inherit());
        let stdin = workload.child.stdin.take().expect("stdin is piped");
        (workload, stdin)
    }

    /// Like `spawn_piped`, with stdout a pipe too: for a workload that reports what it did on
    /// stdout (`diskwriter`'s `wrote N`), read with `stdout_after_exit`. Only for workloads that
    /// print a few lines: nothing drains the pipe while they run, so a full one would stall them.
    pub fn spawn_piped_stdout(exe: &str, args: &[&str]) -> (Self, ChildStdin) {
        let mut workload = Self::spawn_with(exe, args, Stdio::piped(), Stdio::piped());
        let stdin = workload.child.stdin.take().expect("stdin is piped");
        (workload, stdin)
    }

    /// Like `spawn`, with arguments that need not be UTF-8 (a command line is any bytes but
    /// NUL).
    pub fn spawn_os(exe: &str, args: &[OsString]) -> Self {
        Self::spawn_with(exe, args, Stdio::null(), Stdio::inherit())
    }

    fn spawn_with(exe: &str, args: &[impl AsRef<OsStr>], stdin: Stdio, stdout: Stdio) -> Self {
        let child = Command::new(exe)
            .args(args)
            .stdin(stdin)
            .stdout(stdout)
            .spawn()
            .unwrap_or_else(|err| panic!("spawning {exe}: {err}"));
        let mut workload = Self { child };
        workload.wait_for_exec(Path::new(exe));
        workload
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has not exited yet: a workload meant to run all through a window that ended
    /// early proves nothing.
    pub fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("checking on a workload")
            .is_none()
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

    /// Everything a workload started with `spawn_piped_stdout` printed, once it has exited
    /// (`wait_exit`): the pipe then holds all of it and reading ends at end of file.
    pub fn stdout_after_exit(&mut self) -> String {
        let mut stdout = self
            .child
            .stdout
            .take()
            .expect("stdout is piped (spawn_piped_stdout) and read only once");
        let mut text = String::new();
        stdout
            .read_to_string(&mut text)
            .unwrap_or_else(|err| panic!("reading the stdout of workload {}: {err}", self.pid()));
        text
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

/// For a workload's `--loop-seconds S` and `--round-ms T`: its round of work (the calls or bytes
/// its other options ask for) repeated until S seconds after the release, a round starting every
/// T ms at most, so a test can keep it going through a window at a set rate instead of letting
/// it take a whole CPU.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Rounds start until this long after `run` is called.
    pub total: Duration,
    /// From one round's start to the next one's; zero runs them back to back.
    pub round: Duration,
}

impl Pacing {
    /// From the parsed `--loop-seconds` and `--round-ms`; `None` when neither was given, an
    /// error for `--round-ms` alone, which would have nothing to pace.
    pub fn from_args(
        loop_for: Option<Duration>,
        round: Option<Duration>,
    ) -> Result<Option<Self>, String> {
        match (loop_for, round) {
            (Some(total), round) => Ok(Some(Self {
                total,
                round: round.unwrap_or_default(),
            })),
            (None, Some(_)) => Err("--round-ms needs --loop-seconds".to_owned()),
            (None, None) => Ok(None),
        }
    }

    /// Runs `round` again and again until `total` has passed. Each round is due `round` after
    /// the previous one started, not after it ended, so the time a round takes does not lower
    /// the rate; a round that starts late resets the schedule instead of being followed by a
    /// catch-up burst above the rate asked for.
    pub fn run(self, mut round: impl FnMut() -> Result<(), String>) -> Result<(), String> {
        let start = Instant::now();
        let end = start + self.total;
        let mut next = start;
        while Instant::now() < end {
            round()?;
            next += self.round;
            let now = Instant::now();
            if next > now {
                thread::sleep(next.min(end) - now);
            } else {
                next = now;
            }
        }
        Ok(())
    }
}

/// A workload's seconds option (`--seconds`, `--loop-seconds`): a non-negative number.
pub fn parse_seconds(flag: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{flag}: not a non-negative number: {value}"))
}

/// A workload's milliseconds option (`--round-ms`): a non-negative integer.
pub fn parse_millis(flag: &str, value: &str) -> Result<Duration, String> {
    value
        .parse()
        .map(Duration::from_millis)
        .map_err(|_| format!("{flag}: not a non-negative integer: {value}"))
}

/// The byte count in `diskwriter`'s `wrote N` line, from its whole stdout.
pub fn diskwriter_wrote(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("wrote "))
        .and_then(|bytes| bytes.parse().ok())
        .unwrap_or_else(|| panic!("diskwriter printed no `wrote N` line; stdout: {stdout:?}"))
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

/// Waits until `pid` has pinned itself to `cpu` (a workload's `--cpu`): the workloads do so just
/// after exec, which is all `Workload::spawn` waits for.
pub fn wait_pinned(pid: u32, cpu: usize) {
    let path = format!("/proc/{pid}/status");
    let want = cpu.to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
        let allowed = status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            .map(str::trim);
        if allowed == Some(want.as_str()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pid {pid} not pinned to CPU {cpu} within 5 s: Cpus_allowed_list {allowed:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
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
