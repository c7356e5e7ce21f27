//! End-to-end cgroup grouping: a CPU burner moved into a fresh cgroup v2 directory must be
//! reported with that cgroup path and make up an application of kind `cgroup` of that name, as a
//! systemd unit or a container would.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use profiler_tests::{
    REPORT_GRACE, Workload, array, assert_matches_schema, diagnose, number, process_entry,
    require_root, serial, skip_or_fail, tempdir, utf8,
};
use serde_json::{Value, json};

const BURNER_EXE: &str = env!("CARGO_BIN_EXE_burner");

/// A burner never sleeps, so over the run it uses close to a whole core; half a core leaves room
/// for a busy host while still telling a burning group from an idle one.
const MIN_CORES: f64 = 0.5;

/// How long cleanup waits for the killed burner to leave the cgroup before giving up on removing
/// it.
const RMDIR_TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn burner_in_a_fresh_cgroup_is_grouped_as_a_cgroup_app() {
    const TEST: &str = "burner_in_a_fresh_cgroup_is_grouped_as_a_cgroup_app";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let Some(mut cgroup) = TestCgroup::create(TEST) else {
        return;
    };
    let pid = cgroup.adopt(Workload::spawn(BURNER_EXE, &[]));
    // Checked before profiling, so a failure here is the test's setup, not the profiler.
    let proc_cgroup = cgroup_of(pid);
    assert_eq!(
        proc_cgroup.as_deref(),
        Some(cgroup.name.as_str()),
        "burner {pid} is not in {} after writing it to cgroup.procs",
        cgroup.path.display()
    );

    let dir = tempdir();
    let out = dir.path().join("out");
    let done = diagnose(
        &["--duration", "2s", "--format", "json", "--out", utf8(&out)],
        dir.path(),
        REPORT_GRACE,
    );
    done.assert_success();
    let report = done.stdout_json();
    assert_matches_schema(&report);
    let context = || relevant(&report, pid, &cgroup.name);

    let entry = process_entry(&report, pid)
        .unwrap_or_else(|| panic!("burner {pid} not in processes:\n{}", context()));
    assert_eq!(
        entry["cgroup"],
        cgroup.name.as_str(),
        "burner's cgroup is not the one it was moved into:\n{}",
        context()
    );
    let app = array(&report, "apps")
        .iter()
        .find(|app| app["kind"] == "cgroup" && app["name"] == cgroup.name.as_str())
        .unwrap_or_else(|| panic!("no cgroup app named {}:\n{}", cgroup.name, context()));
    let processes = app["processes"]
        .as_u64()
        .unwrap_or_else(|| panic!("`processes` is not a count in:\n{app:#}"));
    let cores = number(&app["cpu"], "cores");
    // Captured by libtest: shown on failure or with --nocapture, to watch the margins.
    eprintln!(
        "cgroup {}: {processes} processes, {cores} cores over {} s; burner {pid} {} cores",
        cgroup.name, report["duration_s"], entry["cpu"]["cores"],
    );
    assert!(
        processes >= 1,
        "cgroup app {} counts no processes:\n{}",
        cgroup.name,
        context()
    );
    assert!(
        cores > MIN_CORES,
        "cgroup app {} used {cores} cores, expected the burner's > {MIN_CORES}:\n{}",
        cgroup.name,
        context()
    );
}

/// A cgroup v2 directory made for one test, with the workloads moved into it. On drop the
/// workloads are killed first, since a cgroup with processes in it cannot be removed, and then
/// the directory is removed.
struct TestCgroup {
    /// The directory under the cgroup2 mount.
    path: PathBuf,
    /// Its path within the hierarchy, as /proc/<pid>/cgroup and the report give it.
    name: String,
    members: Vec<Workload>,
}

impl TestCgroup {
    /// Makes `<cgroup2 root>/profiler-test-<our pid>`; `None` (after the skip-or-fail rule) when
    /// this host has no cgroup2 mount or will not let us create a cgroup in it, as in an
    /// unprivileged container.
    fn create(test: &str) -> Option<Self> {
        let Some(root) = cgroup2_root() else {
            skip_or_fail(test, "no cgroup2 mount in /proc/self/mounts");
            return None;
        };
        // Our pid keeps concurrent test runs apart.
        let leaf = format!("profiler-test-{}", std::process::id());
        let path = root.join(&leaf);
        match fs::create_dir(&path) {
            Ok(()) => Some(Self {
                path,
                name: format!("/{leaf}"),
                members: Vec::new(),
            }),
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::EROFS | libc::EPERM | libc::EACCES)
                ) =>
            {
                skip_or_fail(
                    test,
                    &format!("cannot create a cgroup at {}: {err}", path.display()),
                );
                None
            }
            Err(err) => panic!("creating cgroup {}: {err}", path.display()),
        }
    }

    /// Moves `workload` into the cgroup and keeps it, so it is killed before the cgroup is
    /// removed; returns its pid.
    fn adopt(&mut self, workload: Workload) -> u32 {
        let pid = workload.pid();
        // Kept before the move, so a failed move still kills it on drop.
        self.members.push(workload);
        let procs = self.path.join("cgroup.procs");
        fs::write(&procs, pid.to_string())
            .unwrap_or_else(|err| panic!("moving {pid} into {}: {err}", procs.display()));
        pid
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Killed and reaped by Workload's drop.
        self.members.clear();
        let deadline = Instant::now() + RMDIR_TIMEOUT;
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(err) if err.kind() == ErrorKind::NotFound => return,
                // A reaped process can linger in cgroup.procs for a moment while the kernel
                // finishes tearing it down; rmdir fails with EBUSY until it is gone.
                Err(err)
                    if err.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                {
                    thread::sleep(Duration::from_millis(10));
                }
                // Not a panic: this may run while a failed assertion unwinds, and a second panic
                // would abort the test binary and hide the first one.
                Err(err) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "warning: could not remove cgroup {}: {err}",
                        self.path.display()
                    );
                    return;
                }
            }
        }
    }
}

/// Where cgroup2 is mounted: /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid
/// ones.
fn cgroup2_root() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").expect("reading /proc/self/mounts");
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let dir = fields.nth(1)?;
        (fields.next()? == "cgroup2").then(|| PathBuf::from(dir))
    })
}

/// The cgroup v2 path of a live process, from the `0::` line of /proc/<pid>/cgroup.
fn cgroup_of(pid: u32) -> Option<String> {
    let path = format!("/proc/{pid}/cgroup");
    let text = fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// The parts of the report these checks read, for failure messages: the whole report lists
/// every process on the host and would bury them.
fn relevant(report: &Value, pid: u32, cgroup: &str) -> String {
    let apps: Vec<&Value> = array(report, "apps")
        .iter()
        .filter(|app| app["kind"] == "cgroup")
        .collect();
    let part = json!({
        "burner pid": pid,
        "cgroup": cgroup,
        "duration_s": report["duration_s"],
        "signals": report["signals"],
        "burner": process_entry(report, pid),
        "cgroup apps": apps,
    });
    format!("{part:#}")
}
