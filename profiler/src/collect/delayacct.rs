//! Delay accounting (`kernel.task_delayacct`): a host-wide switch, off by default since Linux
//! 5.14, turned on for one run only when asked and restored after; and the block IO delay the
//! kernel then keeps for each thread.

use std::{collections::HashMap, fs, io, path::Path};

const SYSCTL: &str = "/proc/sys/kernel/task_delayacct";

#[derive(Debug, thiserror::Error)]
pub enum DelayAcctError {
    #[error(
        "--delayacct: this kernel keeps no delay accounting ({SYSCTL} is missing: built without \
         CONFIG_TASK_DELAY_ACCT); run without --delayacct"
    )]
    Missing,
    #[error("--delayacct: cannot turn delay accounting on ({SYSCTL}: {0}); run as root")]
    Write(io::Error),
}

/// Delay accounting is on while this lives; it is turned back off when dropped if it was off
/// before, so the host is left as it was found. The kernel keeps delays only for tasks started
/// while it is on: a thread already running when it is turned on is not covered.
#[derive(Debug)]
pub struct DelayAcct {
    turned_on: bool,
}

impl DelayAcct {
    pub fn turn_on() -> Result<Self, DelayAcctError> {
        let now = fs::read_to_string(SYSCTL).map_err(|_| DelayAcctError::Missing)?;
        if now.trim() != "0" {
            return Ok(Self { turned_on: false });
        }
        fs::write(SYSCTL, "1").map_err(DelayAcctError::Write)?;
        Ok(Self { turned_on: true })
    }

    /// Whether this run turned it on (it was off), rather than finding it on.
    pub fn turned_on(&self) -> bool {
        self.turned_on
    }
}

impl Drop for DelayAcct {
    fn drop(&mut self) {
        if self.turned_on
            && let Err(err) = fs::write(SYSCTL, "0")
        {
            eprintln!(
                "profiler: warning: could not turn delay accounting back off ({SYSCTL}: {err}); \
                 `sysctl kernel.task_delayacct=0` does"
            );
        }
    }
}

/// Each process's block IO delay so far, summed over its live threads, in nanoseconds, and
/// how many threads were read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioDelays(HashMap<u32, Threads>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Threads {
    count: u64,
    blkio_ns: u64,
}

impl BlkioDelays {
    /// Read now for `pids`; a process already gone is left out.
    pub fn read(pids: impl IntoIterator<Item = u32>) -> Self {
        let read = |pid: u32| Some((pid, threads(pid)?));
        Self(pids.into_iter().filter_map(read).collect())
    }

    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.keys().copied()
    }

    /// Threads read.
    pub fn threads(&self) -> u64 {
        self.0.values().map(|t| t.count).sum()
    }

    /// The delay added since `before`, summed: a process not read before was born during the
    /// run, so all its delay is new.
    pub fn since(&self, before: &Self) -> u64 {
        let earlier = |pid: &u32| before.0.get(pid).map_or(0, |t| t.blkio_ns);
        self.0
            .iter()
            .map(|(pid, now)| now.blkio_ns.saturating_sub(earlier(pid)))
            .sum()
    }
}

/// `delayacct_blkio_ticks` (the 42nd field of each thread's `stat`) summed over the threads of
/// `pid`: the process's own `stat` holds only its main thread's.
fn threads(pid: u32) -> Option<Threads> {
    let ns_per_tick = 1_000_000_000 / procfs::ticks_per_second().max(1);
    let tasks = fs::read_dir(Path::new("/proc").join(pid.to_string()).join("task")).ok()?;
    let thread = |entry: io::Result<fs::DirEntry>| {
        let stat = fs::read_to_string(entry.ok()?.path().join("stat")).ok()?;
        blkio_ticks(&stat)
    };
    let ticks: Vec<u64> = tasks.filter_map(thread).collect();
    Some(Threads {
        count: ticks.len() as u64,
        blkio_ns: ticks.iter().sum::<u64>() * ns_per_tick,
    })
}

/// The 42nd field of a `stat` line; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its closing parenthesis.
fn blkio_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(42 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blkio_field_is_counted_after_the_name() {
        let mut fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        fields[42 - 3] = "1234".to_owned();
        let stat = format!("812 (a (b) c) {}", fields.join(" "));
        assert_eq!(blkio_ticks(&stat), Some(1234));
        assert_eq!(blkio_ticks("812 (short) S 1"), None);
    }

    #[test]
    fn delay_since_counts_new_processes_whole_and_never_goes_negative() {
        let of = |pairs: [(u32, u64); 3]| {
            let threads = |(pid, blkio_ns)| (pid, Threads { count: 1, blkio_ns });
            BlkioDelays(pairs.into_iter().map(threads).collect())
        };
        let before = of([(1, 100), (2, 500), (4, 0)]);
        let after = of([(1, 300), (2, 400), (3, 50)]);
        assert_eq!(after.since(&before), 200 + 50);
    }
}
