//! Tracers that run beside a benchmark's workload (the profiler, `perf record`, bpftrace,
//! syscount): started in the background, awaited until they observe, stopped with SIGINT the way
//! a user stops them.

use std::{
    io::{BufRead as _, BufReader, Read},
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::util;

/// The profiler prints this on stderr once its probes are live.
const ATTACHED: &str = "profiler: attached";
const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);
/// `perf record` has no readiness signal; a second covers its mmap and event setup here.
const PERF_HEAD_START: Duration = Duration::from_secs(1);
/// Generous: the profiler symbolizes and writes its report before exiting.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// `profiler diagnose` with a duration far longer than any benchmark, so only SIGINT ends it;
/// `extra_args` (such as `--signals`) pick what it measures.
pub fn profiler_command(profiler: &Path, out_dir: &Path, extra_args: &[&str]) -> Command {
    let mut cmd = Command::new(profiler);
    cmd.args([
        "diagnose",
        "--duration",
        "600s",
        "--frequency",
        "99",
        "--out",
    ])
    .arg(out_dir)
    .args(extra_args);
    cmd
}

/// `profiler record` at its defaults, writing to `out_dir`, and its metrics on a free loopback
/// port rather than the default 9464, which another recorder on the host may hold.
pub fn record_command(profiler: &Path, out_dir: &Path) -> Result<Command> {
    let mut cmd = Command::new(profiler);
    cmd.arg("record")
        .arg("--out")
        .arg(out_dir)
        .arg("--metrics")
        .arg(format!("127.0.0.1:{}", super::free_port()?));
    Ok(cmd)
}

/// Runs `workload`, given the recorder's pid, while `profiler record` (at its defaults but for
/// `extra_args`) observes, once it is attached; also returns how long it took to exit after
/// SIGINT (finishing its window).
pub fn under_record<T>(
    profiler: &Path,
    out_dir: &Path,
    extra_args: &[&str],
    workload: impl FnOnce(u32) -> Result<T>,
) -> Result<(T, Duration)> {
    under_pid(
        "profiler record",
        record_command(profiler, out_dir)?.args(extra_args),
        Ready::Line(ATTACHED, Duration::ZERO),
        workload,
    )
}

pub fn perf_command(data: &Path, call_graph: CallGraph) -> Command {
    let mut cmd = Command::new("perf");
    cmd.args(["record", "-F", "99", "-a"]);
    match call_graph {
        CallGraph::FramePointers => cmd.arg("-g"),
        CallGraph::Dwarf => cmd.args(["--call-graph", "dwarf"]),
    };
    cmd.arg("-o").arg(data);
    cmd
}

/// How `perf record` takes stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallGraph {
    /// `-g`: the frame-pointer chain, in the kernel.
    FramePointers,
    /// `--call-graph dwarf`: 8 KiB of each sample's stack copied out and unwound in userspace.
    Dwarf,
}

/// How to tell that a tracer started in the background observes.
#[derive(Debug, Clone, Copy)]
pub enum Ready {
    /// It prints a line starting with this on stdout or stderr, and observes this long after.
    Line(&'static str, Duration),
    /// It prints nothing dependable; this long after its start it observes.
    After(Duration),
}

/// Runs `workload` while the profiler observes; also returns how long the profiler took to exit
/// after SIGINT.
pub fn under_profiler<T>(
    profiler: &Path,
    out_dir: &Path,
    extra_args: &[&str],
    workload: impl FnOnce() -> Result<T>,
) -> Result<(T, Duration)> {
    under(
        "profiler",
        &mut profiler_command(profiler, out_dir, extra_args),
        Ready::Line(ATTACHED, Duration::ZERO),
        workload,
    )
}

pub fn under_perf<T>(
    data: &Path,
    call_graph: CallGraph,
    workload: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let (result, _) = under(
        "perf record",
        &mut perf_command(data, call_graph),
        Ready::After(PERF_HEAD_START),
        workload,
    )?;
    Ok(result)
}

/// Runs `workload` while the tracer `cmd` observes; also returns how long the tracer took to exit
/// after SIGINT.
pub fn under<T>(
    name: &'static str,
    cmd: &mut Command,
    ready: Ready,
    workload: impl FnOnce() -> Result<T>,
) -> Result<(T, Duration)> {
    under_pid(name, cmd, ready, |_| workload())
}

/// Like [`under`], the workload given the tracer's pid.
pub fn under_pid<T>(
    name: &'static str,
    cmd: &mut Command,
    ready: Ready,
    workload: impl FnOnce(u32) -> Result<T>,
) -> Result<(T, Duration)> {
    let (result, stopped) = observe(name, cmd, ready, workload)?;
    Ok((result, stopped?))
}

/// Like [`under`], but a tracer that fails on its way out, after the workload ran under it,
/// keeps the measurement: its error comes back beside it. For peers whose crash at exit is
/// theirs to fix, not a reason to lose the row.
pub fn under_tolerant<T>(
    name: &'static str,
    cmd: &mut Command,
    ready: Ready,
    workload: impl FnOnce() -> Result<T>,
) -> Result<(T, Result<Duration>)> {
    observe(name, cmd, ready, |_| workload())
}

/// Starts the tracer, runs `workload` once it observes, then stops it: the workload's result, and
/// how the tracer's exit went.
fn observe<T>(
    name: &'static str,
    cmd: &mut Command,
    ready: Ready,
    workload: impl FnOnce(u32) -> Result<T>,
) -> Result<(T, Result<Duration>)> {
    let mut tracer = Tracer::start(name, cmd)?;
    match ready {
        Ready::Line(prefix, settle) => {
            tracer.wait_for_line(prefix)?;
            thread::sleep(settle);
        }
        Ready::After(head_start) => thread::sleep(head_start),
    }
    // A tracer that died while we waited would otherwise turn into a fast "traced" sample.
    tracer.ensure_running()?;
    let result = workload(tracer.child.id())?;
    Ok((result, tracer.stop()))
}

/// User plus system CPU time of the last tracer stopped, in nanoseconds.
static LAST_TRACER_CPU_NS: AtomicU64 = AtomicU64::new(0);

/// The CPU time the last tracer [`Tracer::stop`] reaped spent over its life: its own cost, beside
/// what it charged to the workload.
pub fn last_tracer_cpu() -> Duration {
    Duration::from_nanos(LAST_TRACER_CPU_NS.load(Ordering::Relaxed))
}

/// User plus system time of this process's reaped children.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes the struct it is given; RUSAGE_CHILDREN always exists.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A background tracer whose stdout and stderr are collected (shown when it fails) and scanned
/// line by line.
struct Tracer {
    name: &'static str,
    command_line: String,
    child: Child,
    output: Arc<Mutex<String>>,
    lines: Receiver<String>,
    readers: Vec<JoinHandle<()>>,
}

impl Tracer {
    fn start(name: &'static str, cmd: &mut Command) -> Result<Self> {
        let command_line = util::display(cmd);
        // Both streams are scanned: the profiler says "attached" on stderr, bpftrace says
        // "Attaching" on stdout.
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{command_line}`"))?;
        let stdout = child.stdout.take().context("stdout was not piped")?;
        let stderr = child.stderr.take().context("stderr was not piped")?;
        let output = Arc::new(Mutex::new(String::new()));
        let (sender, lines) = mpsc::channel();
        let readers = vec![
            drain(stdout, Arc::clone(&output), sender.clone()),
            drain(stderr, Arc::clone(&output), sender),
        ];
        Ok(Self {
            name,
            command_line,
            child,
            output,
            lines,
            readers,
        })
    }

    fn wait_for_line(&mut self, prefix: &str) -> Result<()> {
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.starts_with(prefix) => return Ok(()),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => bail!(
                    "`{}` printed no line starting with {prefix:?} within {ATTACH_TIMEOUT:?}; \
                     its output so far:\n{}",
                    self.command_line,
                    self.output_log()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    return Err(self.failed_after_exit(&format!(
                        "exited ({status}) before printing {prefix:?}"
                    )));
                }
            }
        }
    }

    fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            return Err(
                self.failed_after_exit(&format!("exited ({status}) before the workload started"))
            );
        }
        Ok(())
    }

    /// SIGINTs the tracer and waits for it; returns the time it took to exit.
    fn stop(mut self) -> Result<Duration> {
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: kill touches no memory of ours; the child is not yet reaped, so the pid cannot
        // have been reused by another process.
        if unsafe { libc::kill(pid, libc::SIGINT) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("could not SIGINT {}", self.name));
        }
        let sent = Instant::now();
        let before = children_cpu();
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                // Reaped just now: the children's CPU grew by the tracer's alone.
                let spent = children_cpu().saturating_sub(before);
                LAST_TRACER_CPU_NS.store(
                    u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                break status;
            }
            if sent.elapsed() > STOP_TIMEOUT {
                // Killed and reaped: a hung tracer must not outlive the round it spoils.
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "`{}` still running {STOP_TIMEOUT:?} after SIGINT; its output:\n{}",
                    self.command_line,
                    self.output_log()
                );
            }
            thread::sleep(Duration::from_millis(2));
        };
        let took = sent.elapsed();
        // perf re-raises SIGINT after writing its data, so dying by it is a clean exit.
        if !status.success() && status.signal() != Some(libc::SIGINT) {
            return Err(self.failed_after_exit(&format!("failed after SIGINT ({status})")));
        }
        Ok(took)
    }

    fn output_log(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// An error quoting the complete output: once the tracer exited, the readers end at EOF.
    fn failed_after_exit(&mut self, what: &str) -> anyhow::Error {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        anyhow::anyhow!(
            "`{}` {what}; its output:\n{}",
            self.command_line,
            self.output_log()
        )
    }
}

/// Appends `pipe`'s lines to `log` and sends them to `sender`, for the tracer's whole life: a
/// full pipe would stall the tracer mid-benchmark.
fn drain(
    pipe: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    sender: mpsc::Sender<String>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        let mut raw = Vec::new();
        while pipe.read_until(b'\n', &mut raw).is_ok_and(|read| read > 0) {
            let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
            raw.clear();
            let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
            log.push_str(&line);
            log.push('\n');
            drop(log);
            // Nobody listens once the tracer attached; later lines only go to the log.
            let _ = sender.send(line);
        }
    })
}

impl Drop for Tracer {
    /// A benchmark that fails midway must not leave a 600 s profiler or a system-wide tracer
    /// behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}
