//! Where alert events go: a line each in `alerts.jsonl`, a line on stderr, and the user's
//! `--on-alert` command, run without a shell with the event's JSON on its stdin.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::fd::AsFd as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::task::JoinSet;

use super::event::AlertEvent;
use crate::output::dir::Dir;

/// The file in the record directory holding every event, one JSON object per line.
pub const ALERTS_FILE: &str = "alerts.jsonl";

/// Hooks running at once at most. An alert storm on a struggling host must not become a fork
/// storm of hooks: past this, an event's hook is skipped with a warning (its line is written).
const MAX_RUNNING_HOOKS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("--on-alert is empty; give the command to run, e.g. --on-alert 'logger -t profiler'")]
    EmptyCommand,
    #[error(
        "--on-alert {0:?} cannot be split into words (unbalanced quotes?); quote it as for a shell"
    )]
    BadQuoting(String),
    #[error("--on-alert program {0:?} not found; give its full path or put it on PATH")]
    NotFound(String),
    #[error("opening {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// How the `--on-alert` runs went, so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookStats {
    pub started: u64,
    pub succeeded: u64,
    /// Could not start, could not be given the event, or exited unsuccessfully.
    pub failed: u64,
    /// Ran past the timeout and were killed.
    pub timed_out: u64,
    /// Not run: too many hooks were still running.
    pub skipped: u64,
}

impl std::fmt::Display for HookStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} times: {} succeeded, {} failed, {} timed out, {} skipped",
            self.started, self.succeeded, self.failed, self.timed_out, self.skipped
        )
    }
}

pub struct Sink {
    path: PathBuf,
    file: Mutex<File>,
    hook: Option<Hook>,
}

struct Hook {
    argv: Arc<[String]>,
    timeout: Duration,
    running: Mutex<JoinSet<()>>,
    stats: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    started: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    skipped: AtomicU64,
}

impl Sink {
    /// Opens (creating) `dir/alerts.jsonl` for appending, mode 0600, and splits `on_alert` into
    /// words now, so a bad command is a startup error rather than a warning at the first alert.
    pub fn new(dir: &Path, on_alert: Option<&str>, timeout: Duration) -> Result<Self, SinkError> {
        let hook = on_alert
            .map(|command| {
                Ok::<_, SinkError>(Hook {
                    argv: split_command(command)?.into(),
                    timeout,
                    running: Mutex::new(JoinSet::new()),
                    stats: Arc::default(),
                })
            })
            .transpose()?;
        let path = dir.join(ALERTS_FILE);
        let open_error = |source| SinkError::Open {
            path: path.clone(),
            source,
        };
        // A link planted under the name is refused (ELOOP), never followed.
        let file = Dir::open(dir)
            .and_then(|dir| dir.append(ALERTS_FILE))
            .map_err(open_error)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
            hook,
        })
    }

    /// Checks that `on_alert` is a command the sink can run, creating nothing: a bad one is a
    /// startup error before any file exists.
    pub fn check_hook(on_alert: &str) -> Result<(), SinkError> {
        split_command(on_alert).map(drop)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the event to alerts.jsonl, logs its summary on stderr and starts the hook, if
    /// any, in a task of its own: it returns at once. With a hook it must be called within the
    /// tokio runtime. A failed write (a full disk) is returned once the summary is logged and
    /// the hook started: the alert still reaches both; a failed hook is only logged.
    pub fn emit(&self, event: &AlertEvent) -> Result<(), SinkError> {
        let mut line = serde_json::to_vec(event).expect("alert events serialize");
        line.push(b'\n');
        let appended = self.append(&line);
        eprintln!(
            "profiler: alert {}",
            crate::output::table::one_line(&event.summary())
        );
        if let Some(hook) = &self.hook {
            hook.start(line, event);
        }
        appended
    }

    /// [`Self::emit`], saying a failed write on stderr.
    pub fn tell(&self, event: &AlertEvent) {
        if let Err(err) = self.emit(event) {
            eprintln!("profiler: warning: could not record an alert: {err}");
        }
    }

    /// One write of the whole line to an O_APPEND file: readers tailing it never see half a
    /// line, nor two events interleaved. A write cut short (no space) is cut off again, so the
    /// next line does not start in the middle of this one.
    fn append(&self, line: &[u8]) -> Result<(), SinkError> {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let before = file.metadata().map(|m| m.len());
        let written = file.write_all(line).and_then(|()| file.flush());
        if written.is_err()
            && let Ok(before) = before
        {
            let _ = file.set_len(before);
        }
        written.map_err(|source| SinkError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Waits for the hooks still running (each ends by its timeout at the latest): for the
    /// caller's shutdown, so no hook is cut short by the profiler exiting.
    pub async fn drain(&self) {
        let Some(hook) = &self.hook else { return };
        // Taken out of the lock: it is not held across an await.
        let mut running =
            std::mem::take(&mut *hook.running.lock().unwrap_or_else(PoisonError::into_inner));
        while running.join_next().await.is_some() {}
    }

    pub fn hook_stats(&self) -> HookStats {
        self.hook.as_ref().map_or_else(HookStats::default, |hook| {
            let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
            let stats = &hook.stats;
            HookStats {
                started: read(&stats.started),
                succeeded: read(&stats.succeeded),
                failed: read(&stats.failed),
                timed_out: read(&stats.timed_out),
                skipped: read(&stats.skipped),
            }
        })
    }
}

impl Hook {
    fn start(&self, json: Vec<u8>, event: &AlertEvent) {
        let label = format!(
            "--on-alert {:?} for alert {} {}",
            self.argv[0],
            event.state.as_str(),
            event.rule
        );
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        // Reap finished hooks, so the set holds only running ones.
        while running.try_join_next().is_some() {}
        if running.len() >= MAX_RUNNING_HOOKS {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "profiler: warning: {label} skipped: {MAX_RUNNING_HOOKS} hooks still running"
            );
            return;
        }
        self.stats.started.fetch_add(1, Ordering::Relaxed);
        let (argv, timeout, stats) = (
            Arc::clone(&self.argv),
            self.timeout,
            Arc::clone(&self.stats),
        );
        running.spawn(async move {
            let counter = match run_hook(&argv, &json, timeout).await {
                Ok(()) => &stats.succeeded,
                Err(HookFailure::TimedOut) => {
                    eprintln!(
                        "profiler: warning: {label} still running after {}, killed it",
                        humantime::format_duration(timeout)
                    );
                    &stats.timed_out
                }
                Err(HookFailure::Failed(why)) => {
                    eprintln!("profiler: warning: {label} failed: {why}");
                    &stats.failed
                }
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
    }
}

enum HookFailure {
    TimedOut,
    Failed(String),
}

/// In the hook's process before exec: back to the default OOM score, which `record` lowered
/// for itself (raising it needs no privilege). Async-signal-safe calls only.
fn unshield_from_oom() -> io::Result<()> {
    // SAFETY: a NUL-terminated path, a one-byte buffer, a descriptor this function opened.
    unsafe {
        let fd = libc::open(
            c"/proc/self/oom_score_adj".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
        }
    }
    Ok(())
}

async fn run_hook(argv: &[String], json: &[u8], timeout: Duration) -> Result<(), HookFailure> {
    let failed = |what: &str, err: io::Error| HookFailure::Failed(format!("{what}: {err}"));
    // Its output goes to our stderr, where the log is: stdout may be somebody's pipe.
    let stdout = io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|err| failed("duplicating stderr", err))?;
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::inherit())
        // A group of its own, killed whole on timeout (a script's children too), and out of
        // reach of the terminal's Ctrl-C: shutdown waits for it instead.
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: between fork and exec the closure only opens, writes and closes a file.
    unsafe { command.pre_exec(unshield_from_oom) };
    let mut child = command.spawn().map_err(|err| failed("cannot start", err))?;
    let mut stdin = child.stdin.take();
    let ran = tokio::time::timeout(timeout, async {
        if let Some(mut stdin) = stdin.take() {
            match stdin.write_all(json).await {
                // A command that does not read the event is free not to.
                Err(err) if err.kind() != io::ErrorKind::BrokenPipe => {
                    return Err(failed("writing the event to its stdin", err));
                }
                _ => {}
            }
            // Dropped here: end of file tells it the event is complete.
        }
        child
            .wait()
            .await
            .map_err(|err| failed("waiting for it", err))
    })
    .await;
    match ran {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(HookFailure::Failed(describe(status))),
        Ok(Err(failure)) => Err(failure),
        Err(_elapsed) => {
            kill_group(&mut child).await;
            Err(HookFailure::TimedOut)
        }
    }
}

async fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
        // SAFETY: kill has no memory-safety preconditions. The child is not reaped yet, so its
        // pid, which is also its process group's id, cannot have been reused.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    // Kills the child itself should the group be gone already, and reaps it.
    let _ = child.kill().await;
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// The command's words, split as a shell would but never given to one: process names and
/// alert text reach the command only as JSON on its stdin.
fn split_command(command: &str) -> Result<Vec<String>, SinkError> {
    let argv = shlex::split(command).ok_or_else(|| SinkError::BadQuoting(command.to_owned()))?;
    let Some(program) = argv.first() else {
        return Err(SinkError::EmptyCommand);
    };
    if !is_runnable(program) {
        return Err(SinkError::NotFound(program.clone()));
    }
    Ok(argv)
}

/// Whether `program` names an executable file, directly or on PATH, as exec would find it.
fn is_runnable(program: &str) -> bool {
    let executable = |path: &Path| {
        fs::metadata(path)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .any(|dir| !program.is_empty() && executable(&dir.join(program)))
    })
}

#[cfg(test)]
#[path = "sink_tests.rs"]
mod tests;
