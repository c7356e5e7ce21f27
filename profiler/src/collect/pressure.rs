//! Pressure (PSI) from /proc/pressure/{cpu,io,memory}, and a cgroup v2's own from its
//! `{cpu,io,memory}.pressure`: the kernel's cumulative stall totals of tasks waiting for a CPU,
//! for IO, or for memory, read as they are (the model turns two readings into a stretch's
//! shares, `model/pressure.rs`), not the kernel's 10-second moving averages.

use std::path::Path;

/// Cumulative stall microseconds since boot: `some` and `full` per resource. The kernel keeps
/// `full` for CPU too (system-wide since 5.13) but it is always 0 there outside cgroups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StallTotals {
    pub cpu_some_us: u64,
    pub io_some_us: u64,
    pub io_full_us: u64,
    pub memory_some_us: u64,
    pub memory_full_us: u64,
}

impl StallTotals {
    /// `None` when the kernel keeps no pressure figures (built without PSI, or booted
    /// `psi=0`): the run goes on without them.
    pub fn now() -> Option<Self> {
        Self::read(Path::new("/proc/pressure"))
    }

    /// The stalls of a cgroup v2 directory's own tasks, whatever the rest of the host does;
    /// `None` where it is gone or keeps none (a v1-only host).
    pub fn of_cgroup(dir: &Path) -> Option<Self> {
        Self::read_named(dir, ".pressure")
    }

    fn read(dir: &Path) -> Option<Self> {
        Self::read_named(dir, "")
    }

    /// From `dir`'s `cpu`, `io` and `memory` files, each name followed by `suffix`.
    fn read_named(dir: &Path, suffix: &str) -> Option<Self> {
        let file = |name: &str| std::fs::read_to_string(dir.join(format!("{name}{suffix}"))).ok();
        let (cpu, io, memory) = (file("cpu")?, file("io")?, file("memory")?);
        Some(Self {
            cpu_some_us: total(&cpu, "some")?,
            io_some_us: total(&io, "some")?,
            io_full_us: total(&io, "full")?,
            memory_some_us: total(&memory, "some")?,
            memory_full_us: total(&memory, "full")?,
        })
    }
}

/// The `total=` of the `kind` line ("some avg10=0.00 avg60=0.00 avg300=0.00 total=123").
fn total(text: &str, kind: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|line| line.split_whitespace().next() == Some(kind))?;
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, cpu: u64, io: (u64, u64), memory: (u64, u64)) {
        let line =
            |kind, total| format!("{kind} avg10=1.00 avg60=0.50 avg300=0.10 total={total}\n");
        std::fs::write(dir.join("cpu"), line("some", cpu) + &line("full", 0)).unwrap();
        std::fs::write(dir.join("io"), line("some", io.0) + &line("full", io.1)).unwrap();
        let memory_text = line("some", memory.0) + &line("full", memory.1);
        std::fs::write(dir.join("memory"), memory_text).unwrap();
    }

    #[test]
    fn a_cgroups_totals_are_read_from_its_pressure_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 3, (2, 1), (0, 0));
        for name in ["cpu", "io", "memory"] {
            let path = dir.path().join(name);
            std::fs::rename(&path, dir.path().join(format!("{name}.pressure"))).unwrap();
        }
        let totals = StallTotals::of_cgroup(dir.path()).unwrap();
        assert_eq!((totals.cpu_some_us, totals.io_full_us), (3, 1));
        assert!(StallTotals::read(dir.path()).is_none());
    }

    #[test]
    fn totals_are_read_from_each_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1_000_000, (50, 10), (7, 0));
        let totals = StallTotals::read(dir.path()).unwrap();
        assert_eq!(totals.cpu_some_us, 1_000_000);
        assert_eq!((totals.io_some_us, totals.io_full_us), (50, 10));
        assert_eq!((totals.memory_some_us, totals.memory_full_us), (7, 0));
    }

    #[test]
    fn a_kernel_without_pressure_files_has_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(StallTotals::read(dir.path()), None);
        std::fs::write(dir.path().join("cpu"), "some avg10=0.00\n").unwrap();
        std::fs::write(dir.path().join("io"), "").unwrap();
        std::fs::write(dir.path().join("memory"), "").unwrap();
        assert_eq!(StallTotals::read(dir.path()), None);
    }
}
