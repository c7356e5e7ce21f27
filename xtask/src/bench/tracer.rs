//! Tracers that run beside a benchmark's workload (the profiler, `perf record`): started in the
//! background, awaited until they observe, stopped with SIGINT the way a user stops them.

use std::{
    io::{BufRead as _, BufReader},
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex, PoisonError,
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

/// `profiler diagnose` with a duration far longer than any benchmark, so only SIGINT ends it.
pub fn profiler_command(profiler: &Path, out_dir: &Path) -> Command {
    let mut cmd = Command::new(profiler);
    cmd.args([
        "diagnose",
        "--duration",
        "600s",
        "--frequency",
        "99",
        "--out",
    ])
    .arg(out_dir);
    cmd
}

pub fn perf_command(data: &Path) -> Command {
    let mut cmd = Command::new("perf");
    cmd.args(["record", "-F", "99", "-a", "-g", "-o"]).arg(data);
    cmd
}

/// Runs `workload` while the profiler observes; also returns how long the profiler took to exit
/// after SIGINT.
pub fn under_profiler<T>(
    profiler: &Path,
    out_dir: &Path,
    workload: impl FnOnce() -> Result<T>,
) -> Result<(T, Duration)> {
    let mut tracer = Tracer::start("profiler", &mut profiler_command(profiler, out_dir))?;
    tracer.wait_for_line(ATTACHED)?;
    let result = workload()?;
    Ok((result, tracer.stop()?))
}

pub fn under_perf<T>(data: &Path, workload: impl FnOnce() -> Result<T>) -> Result<T> {
    let mut tracer = Tracer::start("perf record", &mut perf_command(data))?;
    thread::sleep(PERF_HEAD_START);
    tracer.ensure_running()?;
    let result = workload()?;
    tracer.stop()?;
    Ok(result)
}

/// A background tracer whose stderr is collected (shown when it fails) and scanned line by line.
struct Tracer {
    name: &'static str,
    command_line: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
}

impl Tracer {
    fn start(name: &'static str, cmd: &mut Command) -> Result<Self> {
        let command_line = util::display(cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{command_line}`"))?;
        let pipe = child.stderr.take().context("stderr was not piped")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let (sender, lines) = mpsc::channel();
        let log = Arc::clone(&stderr);
        // Drains the pipe for the tracer's whole life: a full pipe would stall it mid-benchmark.
        let reader = thread::spawn(move || {
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
        });
        Ok(Self {
            name,
            command_line,
            child,
            stderr,
            lines,
            reader: Some(reader),
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
                     its stderr so far:\n{}",
                    self.command_line,
                    self.stderr_log()
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
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if sent.elapsed() > STOP_TIMEOUT {
                bail!(
                    "`{}` still running {STOP_TIMEOUT:?} after SIGINT; its stderr:\n{}",
                    self.command_line,
                    self.stderr_log()
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

    fn stderr_log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// An error quoting the complete stderr: once the tracer exited, the reader ends at EOF.
    fn failed_after_exit(&mut self, what: &str) -> anyhow::Error {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        anyhow::anyhow!(
            "`{}` {what}; its stderr:\n{}",
            self.command_line,
            self.stderr_log()
        )
    }
}

impl Drop for Tracer {
    /// A benchmark that fails midway must not leave a 600 s profiler or a system-wide perf behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
