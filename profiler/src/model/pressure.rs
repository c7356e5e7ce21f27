//! Host pressure over a stretch: the share of its time some or all non-idle tasks were stalled
//! for a CPU, for IO or for memory, from the stall totals at its two ends, so a stretch of any
//! length gets its own exact share.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::collect::pressure::StallTotals;

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

impl HostPressure {
    /// The shares of `elapsed` stalled between `earlier` and `now`.
    pub fn since(now: &StallTotals, earlier: &StallTotals, elapsed: Duration) -> Self {
        let us = elapsed.as_secs_f64() * 1e6;
        let percent = |now: u64, then: u64| {
            let share = now.saturating_sub(then) as f64 / us.max(1.0);
            (share.min(1.0) * 100_000.0).round() / 1000.0
        };
        Self {
            cpu_some_percent: percent(now.cpu_some_us, earlier.cpu_some_us),
            io_some_percent: percent(now.io_some_us, earlier.io_some_us),
            io_full_percent: percent(now.io_full_us, earlier.io_full_us),
            memory_some_percent: percent(now.memory_some_us, earlier.memory_some_us),
            memory_full_percent: percent(now.memory_full_us, earlier.memory_full_us),
        }
    }
}

/// A cgroup's own pressure over a stretch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CgroupPressure {
    /// Its cgroup v2 path.
    pub cgroup: String,
    #[serde(flatten)]
    pub pressure: HostPressure,
}

/// Pressure over a stretch: `None` when either end could not be read (a kernel without PSI).
pub fn between(
    earlier: Option<&StallTotals>,
    now: Option<&StallTotals>,
    elapsed: Duration,
) -> Option<HostPressure> {
    Some(HostPressure::since(now?, earlier?, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(cpu: u64, io: (u64, u64), memory: (u64, u64)) -> StallTotals {
        StallTotals {
            cpu_some_us: cpu,
            io_some_us: io.0,
            io_full_us: io.1,
            memory_some_us: memory.0,
            memory_full_us: memory.1,
        }
    }

    #[test]
    fn shares_of_the_stretch_from_the_totals() {
        let before = totals(1_000_000, (50, 10), (7, 0));
        let after = totals(1_600_000, (250_050, 10), (2_000_007, 0));
        let pressure = HostPressure::since(&after, &before, Duration::from_secs(2));
        assert_eq!(pressure.cpu_some_percent, 30.0);
        assert_eq!(pressure.io_some_percent, 12.5);
        assert_eq!(pressure.io_full_percent, 0.0);
        // More stall than wall time (the read came late): at most all of it.
        assert_eq!(pressure.memory_some_percent, 100.0);
        assert_eq!(between(None, Some(&after), Duration::from_secs(1)), None);
    }
}
