//! A process's identity (pid + start time) and what is needed to name and symbolize it later.

use std::{
    ffi::OsString,
    os::unix::ffi::{OsStrExt as _, OsStringExt as _},
    path::PathBuf,
    sync::Arc,
};

use procfs::process::{MMPermissions, MMapPath, Process};

use super::{
    cmdline::{self, Cmdlines},
    container_names, held_files,
    perf_map::{self, PerfMap},
    workload::{self, Workload},
};

/// One executable file mapping of a process, kept so its frames can be symbolized after exit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
    /// As the process's maps show it: what outputs name the file by.
    pub path: PathBuf,
    /// Where the profiler reads the file when `path` does not lead to it on the host (deleted,
    /// replaced, in another mount namespace): see [`held_files`].
    pub held: Option<PathBuf>,
}

impl Mapping {
    /// The path to read the file by.
    pub fn source(&self) -> &std::path::Path {
        self.held.as_deref().unwrap_or(&self.path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    pub pid: u32,
    /// Clock ticks after boot (/proc/PID/stat field 22); 0 when never seen in /proc. Together
    /// with the pid it names one process even when the pid is reused.
    pub start_time: u64,
    pub comm: String,
    /// Parent process, from /proc or from the fork seen during the run.
    pub ppid: Option<u32>,
    pub exe: Option<String>,
    /// As `cmdline::parse` leaves it: text, capped, redacted when asked.
    pub cmdline: Vec<String>,
    /// cgroup v2 path, e.g. `/system.slice/nginx.service`.
    pub cgroup: Option<String>,
    /// The container, pod, unit or session its cgroups name.
    pub workload: Option<Workload>,
    pub maps: Vec<Mapping>,
    /// Names of its JIT-compiled code, when it has executable anonymous memory and its runtime
    /// writes a perf map.
    pub perf_map: Option<Arc<PerfMap>>,
    /// Resident set size when last read alive.
    pub rss_bytes: Option<u64>,
    /// Resident set size when this run first read it, 0 for a process forked in the run: what
    /// it grew from.
    pub first_rss_bytes: Option<u64>,
    /// The largest resident set of its life so far (`VmHWM`), when last read alive.
    pub peak_rss_bytes: Option<u64>,
    /// Gone before the run ended.
    pub exited: bool,
    /// Kernel time of the last exec known when this identity was read (0: none seen), so a
    /// later exec is noticed.
    pub exec_at: u64,
}

impl ProcessIdentity {
    /// A process known only from the kernel's comm: it exited before /proc could be read.
    pub fn exited_unknown(pid: u32, comm: Option<&str>) -> Self {
        Self {
            pid,
            start_time: 0,
            comm: comm.unwrap_or("[unknown]").to_owned(),
            ppid: None,
            exe: None,
            cmdline: Vec::new(),
            cgroup: None,
            workload: None,
            maps: Vec::new(),
            perf_map: None,
            rss_bytes: None,
            first_rss_bytes: None,
            peak_rss_bytes: None,
            exited: true,
            exec_at: 0,
        }
    }
}

/// Reads a live process's identity from /proc, its whole command line; `None` when it is gone.
#[cfg(test)]
pub fn read_identity(pid: u32) -> Option<ProcessIdentity> {
    read_identity_with(pid, Cmdlines::Full)
}

/// Reads a live process's identity from /proc, its command line as `cmdlines` allows; `None`
/// when it is gone.
/// A zombie (exited, its parent has not reaped it yet) or a task being torn down: only its pid
/// is left, no executable, maps or command line to read, and it never runs again.
pub fn is_dead(stat: &procfs::process::Stat) -> bool {
    matches!(stat.state, 'Z' | 'X' | 'x')
}

pub fn read_identity_with(pid: u32, cmdlines: Cmdlines) -> Option<ProcessIdentity> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    let stat = process.stat().ok().filter(|stat| !is_dead(stat))?;
    let exe = process
        .exe()
        .ok()
        .map(|path| path.to_string_lossy().into_owned());
    // As bytes: procfs's `cmdline()` reads text and fails on invalid UTF-8.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| cmdline::parse(&raw, cmdlines))
        .unwrap_or_default();
    let groups = process.cgroups().map(|groups| groups.0).unwrap_or_default();
    let cgroup = groups
        .iter()
        .find(|group| group.hierarchy == 0)
        .map(|group| group.pathname.clone());
    let workload = workload_of(&groups);
    let all_maps = process.maps().map(|maps| maps.0).unwrap_or_default();
    let jit = all_maps.iter().any(|map| {
        map.perms.contains(MMPermissions::EXECUTE) && matches!(map.pathname, MMapPath::Anonymous)
    });
    let maps = all_maps
        .into_iter()
        .filter(|map| map.perms.contains(MMPermissions::EXECUTE))
        .filter_map(|map| match map.pathname {
            MMapPath::Path(path) => {
                let path = mapped_path(path);
                let mapped = held_files::Mapped {
                    pid,
                    start: map.address.0,
                    end: map.address.1,
                    dev: (map.dev.0 as u32, map.dev.1 as u32),
                    inode: map.inode,
                };
                Some(Mapping {
                    start: map.address.0,
                    end: map.address.1,
                    file_offset: map.offset,
                    held: held_files::readable_path(&path, mapped),
                    path,
                })
            }
            _ => None,
        })
        .collect();
    // Only a process with code outside its files can have a JIT to name.
    let perf_map = jit
        .then(|| perf_map::read(pid, started_at(stat.starttime)?))
        .flatten()
        .map(Arc::new);
    let status = process.status().ok();
    let rss_bytes = status.as_ref().and_then(|s| s.vmrss).map(|kib| kib * 1024);
    Some(ProcessIdentity {
        pid,
        start_time: stat.starttime,
        comm: stat.comm,
        // 0 is the parent of init and kthreadd only; for any other pid it means the process was
        // being reaped as its stat was read (no parent left to name).
        ppid: u32::try_from(stat.ppid)
            .ok()
            .filter(|&ppid| ppid != 0 || pid <= 2),
        exe,
        cmdline,
        cgroup,
        workload,
        maps,
        perf_map,
        rss_bytes,
        first_rss_bytes: rss_bytes,
        peak_rss_bytes: status.as_ref().and_then(|s| s.vmhwm).map(|kib| kib * 1024),
        exited: false,
        exec_at: 0,
    })
}

/// Wall time of a process's start, from its start in clock ticks after boot.
fn started_at(ticks: u64) -> Option<std::time::SystemTime> {
    let boot = procfs::boot_time_secs().ok()?;
    let since_boot = ticks as f64 / procfs::ticks_per_second().max(1) as f64;
    Some(
        std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(boot)
            + std::time::Duration::from_secs_f64(since_boot),
    )
}

/// The workload a process's cgroups name: its v2 path first, then v1's `name=systemd` and
/// `cpu` hierarchies (where a hybrid host's units and containers are).
pub fn workload_of(groups: &[procfs::ProcessCGroup]) -> Option<Workload> {
    let path = |wanted: &str| {
        groups
            .iter()
            .find(|group| group.controllers.iter().any(|c| c == wanted))
            .map(|group| group.pathname.as_str())
    };
    let v2 = groups.iter().find(|group| group.hierarchy == 0);
    let paths = [
        v2.map(|group| group.pathname.as_str()),
        path("name=systemd"),
        path("cpu"),
    ];
    named(workload::classify_any(paths.into_iter().flatten())?)
}

/// The workload one cgroup path names.
pub fn workload_of_path(path: &str) -> Option<Workload> {
    named(workload::classify(path)?)
}

/// A container named as its runtime's state on the host names it.
fn named(parsed: workload::Parsed) -> Option<Workload> {
    let mut found = parsed.workload;
    if let (Some(runtime), Some(full_id)) = (found.runtime, parsed.full_id.as_deref())
        && let Some(name) = container_names::lookup(runtime, full_id)
    {
        found.name = name;
    }
    Some(found)
}

/// The resident set of the live process `pid` started at `start_time` (one small /proc file
/// and its stat); `None` when it is gone or the pid names another process now.
pub fn current_rss_bytes(pid: u32, start_time: u64) -> Option<u64> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    if process.stat().ok()?.starttime != start_time {
        return None;
    }
    let pages = process.statm().ok()?.resident;
    Some(pages * procfs::page_size())
}

/// The file a maps line names. The kernel writes a newline in a path as `\012` there, and
/// escapes nothing else, so the path is ambiguous: a literal `\012` in a name is shown the
/// same. A name that does not exist as shown is read back with its newlines.
fn mapped_path(shown: PathBuf) -> PathBuf {
    const NEWLINE: &[u8] = b"\\012";
    let bytes = shown.as_os_str().as_bytes();
    if !bytes.windows(NEWLINE.len()).any(|w| w == NEWLINE) || shown.exists() {
        return shown;
    }
    let mut unescaped = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(NEWLINE) {
            unescaped.push(b'\n');
            rest = &rest[NEWLINE.len()..];
        } else {
            unescaped.push(rest[0]);
            rest = &rest[1..];
        }
    }
    PathBuf::from(OsString::from_vec(unescaped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newline_shown_as_012_is_read_back_unless_the_literal_name_exists() {
        let shown = PathBuf::from("/nonexistent/a\\012b/exe");
        assert_eq!(mapped_path(shown), PathBuf::from("/nonexistent/a\nb/exe"));
        let plain = PathBuf::from("/usr/bin/true");
        assert_eq!(mapped_path(plain.clone()), plain);
        let dir = tempfile::tempdir().unwrap();
        let literal = dir.path().join("x\\012y");
        std::fs::write(&literal, "").unwrap();
        assert_eq!(mapped_path(literal.clone()), literal);
    }

    #[test]
    fn reads_own_identity_with_executable_maps() {
        let me = read_identity(std::process::id()).unwrap();
        assert!(me.start_time > 0);
        assert!(me.exe.is_some());
        assert!(!me.cmdline.is_empty());
        let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
        assert!(
            me.maps
                .iter()
                .any(|map| map.path == exe && map.start < map.end)
        );
    }

    #[test]
    fn redacted_identity_keeps_only_the_program_of_the_command_line() {
        let mut child = std::process::Command::new("sleep")
            // sleep adds up its arguments.
            .args(["30", "1.5"])
            .spawn()
            .unwrap();
        // Until it has exec'd, the child's command line is still this test's; and the kernel
        // names the process before it sets up the new command line.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let identity = loop {
            let identity = read_identity_with(child.id(), Cmdlines::Redacted).unwrap();
            if identity
                .cmdline
                .first()
                .is_some_and(|program| program == "sleep")
                || std::time::Instant::now() > deadline
            {
                break identity;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            identity.cmdline,
            [
                "sleep".to_owned(),
                cmdline::redact(b"30"),
                cmdline::redact(b"1.5")
            ]
        );
    }

    #[test]
    fn missing_pid_is_none() {
        assert!(read_identity(u32::MAX - 1).is_none());
    }
}
