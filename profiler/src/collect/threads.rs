//! What a victim's threads did over a run, read from /proc at its edges. Threads that slept
//! through it: the programs see a sleep from the switch that begins it, so one begun before
//! they attached (a parked worker, an idle pool thread) is never seen; a thread not switched in
//! between the two readings slept the whole run, in what its kernel stack says at the end. And
//! its CPU time split into user and system, which the scheduler's tracepoints do not tell.

use std::{collections::HashMap, fs, path::PathBuf};

use crate::symbolize::KERNEL_SUFFIX;

/// A thread asleep from before the run to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SleptThrough {
    pub pid: u32,
    pub tid: u32,
    /// Its kernel stack at the end, root first, each function with [`KERNEL_SUFFIX`] as in
    /// the folded stacks.
    pub frames: Vec<String>,
}

/// How many times each thread of some processes had been switched in, when it was taken.
#[derive(Debug, Clone, Default)]
pub struct Census(HashMap<(u32, u32), u64>);

impl Census {
    pub fn take(pids: impl IntoIterator<Item = u32>) -> Self {
        let mut switched_in = HashMap::new();
        for pid in pids {
            let Ok(tasks) = fs::read_dir(task_dir(pid)) else {
                continue;
            };
            for tid in tasks.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
                if let Some(count) = timeslices(pid, tid) {
                    switched_in.insert((pid, tid), count);
                }
            }
        }
        Self(switched_in)
    }

    /// The threads of the census that have not been switched in since and sleep now.
    pub fn slept_through(&self) -> Vec<SleptThrough> {
        let mut slept: Vec<SleptThrough> = self
            .0
            .iter()
            .filter(|&(&(pid, tid), &before)| timeslices(pid, tid) == Some(before))
            .filter(|&(&(pid, tid), _)| asleep(pid, tid))
            .filter_map(|(&(pid, tid), _)| {
                let stack = fs::read_to_string(task_dir(pid).join(tid.to_string()).join("stack"));
                Some(SleptThrough {
                    pid,
                    tid,
                    frames: kernel_frames(&stack.ok()?),
                })
            })
            .collect();
        slept.sort_by_key(|s| (s.pid, s.tid));
        slept
    }
}

/// User and system CPU time of some processes so far (`stat` fields 14 and 15), in
/// nanoseconds at clock-tick resolution.
#[derive(Debug, Clone, Default)]
pub struct CpuTimes(HashMap<u32, (u64, u64)>);

impl CpuTimes {
    pub fn read(pids: impl IntoIterator<Item = u32>) -> Self {
        let ns_per_tick = 1_000_000_000 / procfs::ticks_per_second().max(1);
        let read = |pid: u32| {
            let process = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
            let stat = process.stat().ok()?;
            Some((pid, (stat.utime * ns_per_tick, stat.stime * ns_per_tick)))
        };
        Self(pids.into_iter().filter_map(read).collect())
    }

    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.keys().copied()
    }

    /// (user, system) added since `before`, per process; a process not read before was born
    /// in the run, all its time new.
    pub fn since(&self, before: &Self) -> HashMap<u32, (u64, u64)> {
        let added = |(&pid, &(user, system)): (&u32, &(u64, u64))| {
            let (user0, system0) = before.0.get(&pid).copied().unwrap_or_default();
            (
                pid,
                (user.saturating_sub(user0), system.saturating_sub(system0)),
            )
        };
        self.0.iter().map(added).collect()
    }
}

fn task_dir(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/task"))
}

/// The third field of `schedstat`: timeslices run on a CPU.
fn timeslices(pid: u32, tid: u32) -> Option<u64> {
    let text = fs::read_to_string(task_dir(pid).join(tid.to_string()).join("schedstat")).ok()?;
    text.split_whitespace().nth(2)?.parse().ok()
}

/// Whether the thread sleeps (`S`, `D`, `I`), not runnable and not gone.
fn asleep(pid: u32, tid: u32) -> bool {
    let stat = fs::read_to_string(task_dir(pid).join(tid.to_string()).join("stat"));
    let state = stat.ok().and_then(|s| {
        let (_, rest) = s.rsplit_once(')')?;
        rest.split_whitespace().next().map(str::to_owned)
    });
    matches!(state.as_deref(), Some("S" | "D" | "I"))
}

/// `/proc/PID/task/TID/stack` (`[<0>] futex_wait+0x9a/0x150`, leaf first) as folded-stack
/// frames, root first.
fn kernel_frames(stack: &str) -> Vec<String> {
    let mut frames: Vec<String> = stack
        .lines()
        .filter_map(|line| {
            let symbol = line.split_whitespace().nth(1)?;
            let function = symbol.split('+').next()?;
            Some(format!("{function}{KERNEL_SUFFIX}"))
        })
        .collect();
    frames.reverse();
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proc_stack_becomes_folded_frames_root_first() {
        let stack = "[<0>] futex_do_wait+0x46/0x90\n[<0>] __futex_wait+0x8a/0x100\n\
                     [<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e\n";
        let k = |f: &str| format!("{f}{KERNEL_SUFFIX}");
        assert_eq!(
            kernel_frames(stack),
            [
                k("entry_SYSCALL_64_after_hwframe"),
                k("__futex_wait"),
                k("futex_do_wait")
            ]
        );
    }

    #[test]
    fn a_parked_thread_slept_through_and_a_running_one_did_not() {
        let (wake, parked) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("parked-x7".to_owned())
            .spawn(move || parked.recv())
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let runner = std::thread::Builder::new()
            .name("running-x7".to_owned())
            .spawn(move || {
                while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
            .unwrap();
        let pid = std::process::id();
        let tid_named = |name: &str| {
            let tasks = fs::read_dir(task_dir(pid)).unwrap();
            tasks
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .find(|tid| {
                    let comm = fs::read_to_string(task_dir(pid).join(tid.to_string()).join("comm"));
                    comm.is_ok_and(|c| c.trim() == name)
                })
        };
        // Parked once it has blocked in recv: its state says so.
        let parked_tid = loop {
            if let Some(tid) = tid_named("parked-x7").filter(|&tid| asleep(pid, tid)) {
                break tid;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        let census = Census::take([pid]);
        // This thread runs meanwhile: switched in again after its sleep.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let slept = census.slept_through();
        let parked = slept.iter().find(|s| s.tid == parked_tid);
        let parked = parked.unwrap_or_else(|| panic!("{slept:?}"));
        assert!(
            parked.frames.iter().any(|f| f.contains("futex")),
            "{parked:?}"
        );
        let running_tid = tid_named("running-x7");
        assert!(running_tid.is_some());
        assert!(
            slept.iter().all(|s| Some(s.tid) != running_tid),
            "{slept:?}"
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        runner.join().unwrap();
        wake.send(()).unwrap();
        thread.join().unwrap().unwrap();
        assert!(Census::take([u32::MAX]).slept_through().is_empty());
    }
}
