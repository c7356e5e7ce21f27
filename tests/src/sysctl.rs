//! Host switches a test sets for its run and puts back after, whatever the test's outcome:
//! a sysctl, a cgroup of its own.

use std::{
    fs,
    path::PathBuf,
    time::{SystemTime, UNIX_EPOCH},
};

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

/// A cgroup of the test's own, in the cgroup2 hierarchy or a v1 one, at a path of the test's
/// choosing (the directories on the way made as needed), holding the processes moved into it;
/// they go back to the hierarchy's root and what it made is removed when dropped.
pub struct Cgroup {
    root: PathBuf,
    /// The directories it made, outermost first.
    made: Vec<PathBuf>,
    dir: PathBuf,
    /// As /proc/PID/cgroup names it: `/` and the path under the hierarchy's root.
    pub path: String,
}

impl Cgroup {
    /// Under the cgroup2 mount.
    pub fn v2(path: &str) -> Self {
        Self::under(
            mount_point(|fs, _| fs == "cgroup2").expect("a cgroup2 mount"),
            path,
        )
    }

    /// Under the v1 hierarchy mounted with `option` (`name=systemd`, `cpu`).
    pub fn v1(option: &str, path: &str) -> Self {
        let root =
            mount_point(|fs, options| fs == "cgroup" && options.split(',').any(|o| o == option))
                .unwrap_or_else(|| panic!("no cgroup v1 hierarchy with {option} (a v2-only host)"));
        Self::under(root, path)
    }

    fn under(root: PathBuf, path: &str) -> Self {
        let mut made = Vec::new();
        let mut dir = root.clone();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
            if !dir.exists() {
                fs::create_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
                made.push(dir.clone());
            }
        }
        Self {
            root,
            made,
            dir,
            path: format!("/{}", path.trim_start_matches('/')),
        }
    }

    pub fn adopt(&self, pid: u32) {
        let procs = self.dir.join("cgroup.procs");
        fs::write(&procs, pid.to_string())
            .unwrap_or_else(|err| panic!("{}: {err}", procs.display()));
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let procs = fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let _ = fs::write(self.root.join("cgroup.procs"), pid);
        }
        for dir in self.made.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// The mount point of the first filesystem `wanted(fs type, super options)` accepts.
fn mount_point(wanted: impl Fn(&str, &str) -> bool) -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut fields = right.split(' ');
        let (fs, _source, options) = (fields.next()?, fields.next()?, fields.next()?);
        wanted(fs, options).then(|| left.split(' ').nth(4).map(PathBuf::from))?
    })
}

/// A container id no real container has: 64 hex digits from the test's pid, the time and `n`.
pub fn container_id(n: u64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64;
    let seed = u64::from(std::process::id()) << 32 ^ nanos ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..4u64)
        .map(|i| format!("{:016x}", seed.rotate_left(i as u32 * 16) ^ i))
        .collect()
}
