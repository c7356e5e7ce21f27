//! Shared harness for the end-to-end tests: locating the profiler binary, the root-or-skip rule
//! and serialized runs; workloads, profiler runs, report checks and folded stacks live in their
//! own modules.

mod bpf;
mod folded;
mod namespace;
mod outputs;
mod report;
mod run;
mod sysctl;
mod tools;
mod verdict;
mod workload;

use std::ffi::CString;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use bpf::*;
pub use folded::*;
pub use namespace::*;
pub use outputs::*;
pub use report::*;
pub use run::*;
pub use sysctl::*;
pub use tools::*;
pub use verdict::*;
pub use workload::*;

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

/// Gate for every end-to-end test that loads BPF: returns whether `test` can run (root, profiler
/// built). Otherwise it panics when `PROFILER_REQUIRE_BPF=1`, else prints one `skipped:` line and the
/// caller returns early.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return skip_or_fail(test, "needs root to load BPF");
    }
    require_built(test)
}

/// Gate for end-to-end tests that run the profiler without BPF (offline commands such as
/// `flamegraph`): returns whether the profiler binary exists, else skips or fails like
/// `require_root`.
pub fn require_built(test: &str) -> bool {
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

/// `statfs` `f_type` of tmpfs and ramfs (linux/magic.h): memory-backed, so writes there never
/// reach a block device for the profiler to count.
const TMPFS_MAGIC: u32 = 0x0102_1994;
const RAMFS_MAGIC: u32 = 0x8584_58f6;

/// A fresh temporary directory (`tempdir()`, so `TMPDIR` picks where) on a file system backed by
/// a block device, for workloads whose disk writes a test counts. `None`, after `skip_or_fail`,
/// when it would be memory-backed.
pub fn disk_backed_tempdir(test: &str) -> Option<tempfile::TempDir> {
    let dir = tempdir();
    let path = dir.path();
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("temporary paths have no NUL");
    // SAFETY: statfs is plain old data, for which all zeroes is a valid value.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `stat` a live statfs, both outliving the call.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &raw mut stat) };
    assert_eq!(
        rc,
        0,
        "statfs {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    // Magic numbers fit 32 bits, while the field is 32 or 64 bits wide depending on the
    // architecture (and ramfs's magic negative where it is 32): compare the low 32 bits.
    let magic = stat.f_type as u32;
    if magic == TMPFS_MAGIC || magic == RAMFS_MAGIC {
        let reason = format!(
            "{} is memory-backed (tmpfs or ramfs), so no block device sees its writes; set \
             TMPDIR to a directory on a disk",
            path.display()
        );
        skip_or_fail(test, &reason);
        return None;
    }
    Some(dir)
}

/// Body of `GET path` on 127.0.0.1:`port` (HTTP/1.1, connection closed after), or why not.
pub fn http_get(port: u16, path: &str) -> Result<String, String> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))
        .map_err(|err| format!("connecting to port {port}: {err}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|err| err.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|err| format!("sending the request: {err}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|err| format!("reading the response: {err}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header in {response:?}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "answered {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_owned())
}

/// Joins the chunks of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
