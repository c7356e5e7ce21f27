//! How busy each block device was over the run, from /proc/diskstats (as iostat's %util).

use std::{collections::HashMap, time::Duration};

/// Milliseconds each device had IO in flight, since boot.
#[derive(Debug, Clone, Default)]
pub struct DiskTicks(HashMap<String, u64>);

impl DiskTicks {
    /// Empty when /proc/diskstats cannot be read: the run goes on without disk utilization.
    pub fn now() -> Self {
        let stats = procfs::diskstats().unwrap_or_default();
        Self(
            stats
                .into_iter()
                .map(|d| (d.name, d.time_in_progress))
                .collect(),
        )
    }

    /// The device busy the largest share of `elapsed` since `earlier`, if any was busy at all,
    /// and that share (0 to 1).
    pub fn busiest_since(&self, earlier: &Self, elapsed: Duration) -> Option<(String, f64)> {
        let ms = elapsed.as_secs_f64() * 1e3;
        self.0
            .iter()
            .filter_map(|(name, &ticks)| {
                let busy = ticks.checked_sub(*earlier.0.get(name)?)?;
                (busy > 0).then_some((name, busy))
            })
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|(name, busy)| (name.clone(), (busy as f64 / ms.max(1.0)).min(1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busiest_device_as_share_of_the_run() {
        let before = DiskTicks(HashMap::from([
            ("vda".to_owned(), 100),
            ("sdb".to_owned(), 0),
        ]));
        let after = DiskTicks(HashMap::from([
            ("vda".to_owned(), 600),
            ("sdb".to_owned(), 200),
            ("new".to_owned(), 900),
        ]));
        let busy = after
            .busiest_since(&before, Duration::from_secs(2))
            .unwrap();
        assert_eq!(busy, ("vda".to_owned(), 0.25));
        assert!(
            before
                .busiest_since(&before, Duration::from_secs(2))
                .is_none()
        );
    }
}
