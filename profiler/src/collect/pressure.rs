//! Host pressure (PSI) from /proc/pressure/{cpu,io,memory}: the share of time some or all
//! non-idle tasks were stalled waiting for a CPU, for IO, or for memory. Read as the kernel's
//! cumulative stall totals, so a stretch of any length gets its own exact share, not the
//! kernel's 10-second moving average.

use std::{path::Path, time::Duration};

use serde::{Deserialize, Serialize};

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

/// Percent of a stretch that tasks were stalled, per resource and kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HostPressure {
    /// Some runnable task waited for a CPU.
    pub cpu_some_percent: f64,
    /// Some task waited for IO.
    pub io_some_percent: f64,
    /// Every non-idle task waited for IO at once.
    pub io_full_percent: f64,
    /// Some task waited for memory (reclaim, refaults, swap-in).
    pub memory_some_percent: f64,
    /// Every non-idle task waited for memory at once: the host thrashes.
    pub memory_full_percent: f64,
}

impl StallTotals {
    /// `None` when the kernel keeps no pressure figures (built without PSI, or booted
    /// `psi=0`): the run goes on without them.
    pub fn now() -> Option<Self> {
        Self::read(Path::new("/proc/pressure"))
    }

    fn read(dir: &Path) -> Option<Self> {
        let file = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        let (cpu, io, memory) = (file("cpu")?, file("io")?, file("memory")?);
        Some(Self {
            cpu_some_us: total(&cpu, "some")?,
            io_some_us: total(&io, "some")?,
            io_full_us: total(&io, "full")?,
            memory_some_us: total(&memory, "some")?,
            memory_full_us: total(&memory, "full")?,
        })
    }

    /// The shares of `elapsed` stalled since `earlier`.
    pub fn since(&self, earlier: &Self, elapsed: Duration) -> HostPressure {
        let us = elapsed.as_secs_f64() * 1e6;
        let percent = |now: u64, then: u64| {
            let share = now.saturating_sub(then) as f64 / us.max(1.0);
            (share.min(1.0) * 100_000.0).round() / 1000.0
        };
        HostPressure {
            cpu_some_percent: percent(self.cpu_some_us, earlier.cpu_some_us),
            io_some_percent: percent(self.io_some_us, earlier.io_some_us),
            io_full_percent: percent(self.io_full_us, earlier.io_full_us),
            memory_some_percent: percent(self.memory_some_us, earlier.memory_some_us),
            memory_full_percent: percent(self.memory_full_us, earlier.memory_full_us),
        }
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

/// Pressure over a stretch: the totals at its start, and its shares from them.
pub fn between(
    earlier: Option<&StallTotals>,
    now: Option<&StallTotals>,
    elapsed: Duration,
) -> Option<HostPressure> {
    Some(now?.since(earlier?, elapsed))
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
    fn shares_of_the_stretch_from_the_totals() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1_000_000, (50, 10), (7, 0));
        let before = StallTotals::read(dir.path()).unwrap();
        assert_eq!(before.io_full_us, 10);
        write(dir.path(), 1_600_000, (250_050, 10), (2_000_007, 0));
        let after = StallTotals::read(dir.path()).unwrap();
        let pressure = after.since(&before, Duration::from_secs(2));
        assert_eq!(pressure.cpu_some_percent, 30.0);
        assert_eq!(pressure.io_some_percent, 12.5);
        assert_eq!(pressure.io_full_percent, 0.0);
        // More stall than wall time (the read came late): at most all of it.
        assert_eq!(pressure.memory_some_percent, 100.0);
    }

    #[test]
    fn a_kernel_without_pressure_files_has_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(StallTotals::read(dir.path()), None);
        std::fs::write(dir.path().join("cpu"), "some avg10=0.00\n").unwrap();
        std::fs::write(dir.path().join("io"), "").unwrap();
        std::fs::write(dir.path().join("memory"), "").unwrap();
        assert_eq!(StallTotals::read(dir.path()), None);
        assert_eq!(between(None, None, Duration::from_secs(1)), None);
    }
}
