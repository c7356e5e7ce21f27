//! Host switches a test sets for its run and puts back after, whatever the test's outcome:
//! a sysctl, a cgroup of its own.

use std::fs;

/// `kernel.task_delayacct` set for a test, restored to what it was when dropped.
pub struct DelayAcctSwitch {
    was: String,
}

impl DelayAcctSwitch {
    pub const PATH: &str = "/proc/sys/kernel/task_delayacct";

    pub fn on() -> Self {
        Self::set("1")
    }

    pub fn off() -> Self {
        Self::set("0")
    }

    fn set(value: &str) -> Self {
        let was = fs::read_to_string(Self::PATH).unwrap_or_else(|err| {
            panic!("{}: {err} (a kernel without delay accounting)", Self::PATH)
        });
        fs::write(Self::PATH, value).unwrap_or_else(|err| panic!("{}: {err}", Self::PATH));
        Self { was }
    }
}

impl Drop for DelayAcctSwitch {
    fn drop(&mut self) {
        let _ = fs::write(Self::PATH, self.was.trim());
    }
}

/// A cgroup v2 of the test's own under the host's cgroup2 mount, holding the processes moved
/// into it; they go back to the root cgroup and it is removed when dropped.
pub struct Cgroup2 {
    dir: std::path::PathBuf,
    /// As report.json names it: `/` and its name.
    pub path: String,
}

impl Cgroup2 {
    pub fn new(name: &str) -> Self {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let root = mountinfo
            .lines()
            .find_map(|line| {
                let (left, right) = line.split_once(" - ")?;
                right
                    .starts_with("cgroup2 ")
                    .then(|| left.split(' ').nth(4))?
            })
            .expect("a cgroup2 mount (a v1-only host has none)");
        let dir = std::path::Path::new(root).join(name);
        fs::create_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        Self {
            dir,
            path: format!("/{name}"),
        }
    }

    pub fn adopt(&self, pid: u32) {
        let procs = self.dir.join("cgroup.procs");
        fs::write(&procs, pid.to_string())
            .unwrap_or_else(|err| panic!("{}: {err}", procs.display()));
    }
}

impl Drop for Cgroup2 {
    fn drop(&mut self) {
        let root_procs = self.dir.parent().map(|root| root.join("cgroup.procs"));
        let procs = fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            if let Some(root_procs) = &root_procs {
                let _ = fs::write(root_procs, pid);
            }
        }
        let _ = fs::remove_dir(&self.dir);
    }
}
