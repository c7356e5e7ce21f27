//! End-to-end error contract: bad input and missing privileges end with exit code 2, a single
//! `Error: ` line on stderr naming the problem, and no output directory left behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use profiler_tests::{
    ProfilerRun, diagnose, profiler_bin, require_root, skip_or_fail, tempdir, utf8,
};

/// Errors are reported before profiling starts; each case also passes a short `--duration`
/// where it can, so a wrongly accepted run ends quickly and fails on its exit code.
const ERROR_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn unknown_pid_is_rejected() {
    if !require_root("unknown_pid_is_rejected") {
        return;
    }
    let pid = (4_000_000_u32..)
        .find(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        .expect("a free pid")
        .to_string();
    let cwd = tempdir();
    // No --out: the default ./profiler-<timestamp>/ must not appear in the cwd either.
    let done = diagnose(
        &["--duration", "1s", "--pid", &pid],
        cwd.path(),
        ERROR_TIMEOUT,
    );
    let line = done.error_line();
    assert!(
        line.contains(&pid),
        "error does not mention pid {pid}: {line}"
    );
    assert_empty(cwd.path());
}

#[test]
fn a_thread_id_is_rejected_naming_its_process() {
    if !require_root("a_thread_id_is_rejected_naming_its_process") {
        return;
    }
    // A thread of this test process, alive while diagnose looks it up.
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        tid_tx.send(tid).expect("sending the tid");
        let _ = done_rx.recv();
    });
    let tid = tid_rx.recv().expect("the thread's id").to_string();
    let cwd = tempdir();
    let done = diagnose(
        &["--duration", "1s", "--pid", &tid],
        cwd.path(),
        ERROR_TIMEOUT,
    );
    drop(done_tx);
    thread.join().expect("the thread ends");
    let line = done.error_line();
    let process = std::process::id().to_string();
    assert!(
        line.contains(&tid) && line.contains(&format!("--pid {process}")),
        "error does not name thread {tid} and its process {process}: {line}"
    );
    assert_empty(cwd.path());
}

#[test]
fn bad_duration_is_rejected() {
    if !require_root("bad_duration_is_rejected") {
        return;
    }
    let cwd = tempdir();
    let out = cwd.path().join("out");
    let done = diagnose(
        &["--duration", "banana", "--out", utf8(&out)],
        cwd.path(),
        ERROR_TIMEOUT,
    );
    let line = done.error_line();
    assert!(
        line.contains("--duration"),
        "error does not mention --duration: {line}"
    );
    assert_empty(cwd.path());
}

#[test]
fn zero_frequency_is_rejected() {
    if require_root("zero_frequency_is_rejected") {
        assert_frequency_rejected("0");
    }
}

#[test]
fn negative_frequency_is_rejected() {
    if require_root("negative_frequency_is_rejected") {
        assert_frequency_rejected("-5");
    }
}

fn assert_frequency_rejected(hz: &str) {
    let cwd = tempdir();
    // `=` keeps clap from reading "-5" as a flag, so this exercises value validation.
    let frequency = format!("--frequency={hz}");
    let done = diagnose(&["--duration", "1s", &frequency], cwd.path(), ERROR_TIMEOUT);
    let line = done.error_line();
    assert!(
        line.to_lowercase().contains("frequency"),
        "error for --frequency {hz} does not mention the frequency: {line}"
    );
    assert_empty(cwd.path());
}

#[test]
fn unwritable_out_dir_is_rejected() {
    if !require_root("unwritable_out_dir_is_rejected") {
        return;
    }
    let cwd = tempdir();
    let done = diagnose(
        &["--duration", "1s", "--out", "/proc/nope"],
        cwd.path(),
        ERROR_TIMEOUT,
    );
    let line = done.error_line();
    assert!(
        line.contains("/proc/nope"),
        "error does not mention the directory: {line}"
    );
    assert!(!Path::new("/proc/nope").exists());
    assert_empty(cwd.path());
}

#[test]
fn unprivileged_run_asks_for_cap_bpf_and_sudo() {
    const TEST: &str = "unprivileged_run_asks_for_cap_bpf_and_sudo";
    if !require_root(TEST) {
        return;
    }
    let setpriv_works = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !setpriv_works {
        skip_or_fail(TEST, "needs setpriv (util-linux) to drop privileges");
        return;
    }
    // Under /tmp explicitly: TMPDIR may point somewhere user nobody cannot traverse, and it
    // must reach both the binary and the cwd.
    let bin_dir = tempfile::Builder::new()
        .prefix("profiler-tests-bin-")
        .tempdir_in("/tmp")
        .expect("creating a temporary directory");
    chmod(bin_dir.path(), 0o755);
    let bin = bin_dir.path().join("profiler");
    fs::copy(profiler_bin(), &bin).expect("copying the profiler binary");
    chmod(&bin, 0o755);
    let cwd = tempfile::Builder::new()
        .prefix("profiler-tests-cwd-")
        .tempdir_in("/tmp")
        .expect("creating a temporary directory");
    // World-writable, so a missing out dir proves the profiler did not create one, not that it
    // could not.
    chmod(cwd.path(), 0o777);
    let out = cwd.path().join("x");

    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&bin)
        .args(["diagnose", "--duration", "1s", "--out"])
        .arg(&out)
        .current_dir(cwd.path());
    let done = ProfilerRun::start(command).finish(ERROR_TIMEOUT);
    let line = done.error_line();
    assert!(
        line.contains("CAP_BPF") && line.contains("sudo"),
        "error does not mention CAP_BPF and sudo: {line}"
    );
    assert!(!out.exists(), "{} was created", out.display());
    assert_empty(cwd.path());
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|err| panic!("chmod {mode:o} {}: {err}", path.display()));
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    assert!(
        left.is_empty(),
        "error run left {left:?} in {}",
        dir.display()
    );
}
