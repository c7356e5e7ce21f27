//! Block IO analysis: per-process figures and the processes that keep the disks busy.

use profiler_common::IoStats;

use super::{
    RunFacts, Scored, round3,
    sched::percentile,
    thresholds::{IO_BUSY_DISK_SHARE, IO_MIN_BYTES_PER_SECOND, IO_MIN_SHARE, STALL_PERCENT},
};
use crate::report::{self, Resource, Suspect};

pub fn io(stats: &IoStats, secs: f64) -> report::Io {
    report::Io {
        read_bytes: stats.read_bytes,
        write_bytes: stats.write_bytes,
        writeback_bytes: stats.writeback_bytes,
        ops: stats.ops,
        p99_latency_ns: percentile(&stats.latency_hist, 0.99),
        bytes_per_second: round3((stats.read_bytes + stats.write_bytes) as f64 / secs),
    }
}

/// How hard the disks were pressed: the busiest disk's utilisation, and the share of the run
/// tasks stalled for IO, each over its line (the larger margin), with the words for it.
fn pressed(facts: &RunFacts) -> Option<(f64, String)> {
    let disk = facts.busiest_disk.as_ref().map(|d| {
        let margin = d.busy_percent / 100.0 / IO_BUSY_DISK_SHARE;
        let words = format!("{} was busy {:.0}% of the run", d.device, d.busy_percent);
        (margin, words)
    });
    let stall = facts.pressure.map(|p| {
        let margin = p.io_some_percent / STALL_PERCENT;
        let words = format!("tasks stalled for IO {:.0} % of the run", p.io_some_percent);
        (margin, words)
    });
    [disk, stall]
        .into_iter()
        .flatten()
        .filter(|(margin, _)| *margin >= 1.0)
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// Ranked by the process's share of all IO bytes times how busy the busiest disk was, so a
/// process doing most of the IO on a saturated disk scores like a process holding a whole CPU.
pub fn suspects(processes: &[report::Process], facts: &RunFacts) -> Vec<Scored> {
    let bytes = |io: &report::Io| io.read_bytes + io.write_bytes;
    let total: u64 = processes
        .iter()
        .filter_map(|p| p.io.as_ref())
        .map(bytes)
        .sum();
    let Some((pressed, harm)) = pressed(facts).filter(|_| total > 0) else {
        return Vec::new();
    };
    let busy = facts
        .busiest_disk
        .as_ref()
        .map_or(0.0, |d| d.busy_percent / 100.0);
    processes
        .iter()
        .filter(|p| p.pid != facts.own_pid && !writes_back(p))
        .filter_map(|p| Some((p, p.io?)))
        .filter_map(|(p, io)| {
            let share = bytes(&io) as f64 / total as f64;
            if io.bytes_per_second < IO_MIN_BYTES_PER_SECOND || share < IO_MIN_SHARE {
                return None;
            }
            let mut reason = format!(
                "moved {:.1} MB/s of block IO ({:.0}% of all): read {:.1} MB, wrote {:.1} MB in {} IOs, p99 latency {:.2} ms",
                io.bytes_per_second / 1e6,
                share * 100.0,
                io.read_bytes as f64 / 1e6,
                io.write_bytes as f64 / 1e6,
                io.ops,
                io.p99_latency_ns as f64 / 1e6,
            );
            if io.writeback_bytes > 0 {
                reason.push_str(&format!(
                    "; {:.1} MB of it written back later for pages it dirtied",
                    io.writeback_bytes as f64 / 1e6
                ));
            }
            reason.push_str(&format!("; {harm}"));
            let suspect = Suspect::new(
                p.pid,
                &p.comm,
                Resource::Io,
                round3(io.bytes_per_second / 1e6),
                reason,
            );
            let margin = (share / IO_MIN_SHARE).min(pressed);
            Some((share * busy.max(0.1), suspect.over(margin)))
        })
        .collect()
}

/// A kernel worker (`kworker/u8:5-flush-254:0`) writes pages others dirtied, or a journal or
/// a swap-out for them: the run charges writeback to the dirtier where it saw the dirtying,
/// and counts the rest in `drops.writeback_unattributed_bytes` (pages dirtied before the run,
/// say). A worker is never a suspect itself: blaming it names nobody an operator can act on.
/// Its name's suffix is the last work it ran (`-flush-…`, `-kvfree_rcu_reclaim`), so only the
/// `kworker/` prefix tells. Named kernel threads (`md0_resync`) stay suspects.
fn writes_back(p: &report::Process) -> bool {
    p.is_kernel_thread() && p.comm.starts_with("kworker/")
}
