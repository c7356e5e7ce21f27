//! Drains the kernel maps into plain values (`Snapshot`, stack frames); no analysis here.

mod batch;
pub mod cleanup;
pub mod cumulative;
pub mod delayacct;
pub mod disks;
pub mod own_cost;
pub mod pressure;
pub mod space;
pub mod threads;

use std::{collections::HashMap, hash::Hash};

use cumulative::Increase;

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuHashMap, StackTraceMap},
};
use profiler_common::{
    BlameKey, Counter, ExecFile, ExecInfo, FaultStats, Fork, IoStats, MAP_BLAME, MAP_COMMS,
    MAP_COUNTERS, MAP_EXEC_FILES, MAP_EXECS, MAP_EXITS, MAP_FAULTS, MAP_FORKS, MAP_IO, MAP_NET,
    MAP_OFFCPU, MAP_ONCPU, MAP_OOM_KILLS, MAP_RUNNABLE_SINCE, MAP_SAMPLED_SYSCALLS, MAP_SCHED,
    MAP_STACK_COUNTS, MAP_STACKS, MAP_SYSCALL_PENDING, MAP_SYSCALLS, MAP_UNWOUND_STACKS, NetStats,
    OomKill, PendingSyscalls, ProcName, Runnable, SchedStats, StackKey, SyscallKey, SyscallStats,
    TaskComm, UnwoundStack, is_unwound_stack,
};

/// Per-CPU counters summed over CPUs, indexed by [`Counter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters(pub [u64; Counter::COUNT as usize]);

impl Counters {
    pub fn get(&self, counter: Counter) -> u64 {
        self.0[counter as usize]
    }
}

/// Cheap per-process view, read several times a second to discover processes while they live.
#[derive(Debug, Clone, Default)]
pub struct ProcessSnapshot {
    /// Cumulative on-CPU nanoseconds per tgid since attach.
    pub on_cpu_ns: HashMap<u32, u64>,
    /// Kernel-side comm per tgid (first thread seen), for processes gone before /proc was read.
    pub comms: HashMap<u32, String>,
    /// Last exec per tgid: kernel time and new comm.
    pub execs: HashMap<u32, (u64, String)>,
    /// Last executed file per tgid, as passed to exec: kernel time and path (lossy UTF-8). Empty
    /// without kernel BTF.
    pub exec_files: HashMap<u32, (u64, String)>,
    /// cgroup v2 id per tgid, as the kernel saw it at first sight or exec.
    pub cgroups: HashMap<u32, u64>,
}

/// Lifecycle events of the run (processes signal).
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    /// Child tid -> (parent tgid, kernel time of the fork). Threads included.
    pub forks: HashMap<u32, (u32, u64)>,
    /// The OOM killer's victims by pid.
    pub oom_kills: HashMap<u32, OomKill>,
}

/// Reads the maps of attached probes.
pub struct Collector<'a> {
    ebpf: &'a Ebpf,
}

impl<'a> Collector<'a> {
    pub fn new(ebpf: &'a Ebpf) -> Self {
        Self { ebpf }
    }

    fn map(&self, name: &str) -> anyhow::Result<&'a aya::maps::Map> {
        self.ebpf
            .map(name)
            .with_context(|| format!("eBPF object has no map {name}"))
    }

    /// Every entry of a hash map `name`, in batches where the kernel can.
    fn hash<K: aya::Pod, V: aya::Pod>(&self, name: &str) -> anyhow::Result<Vec<(K, V)>> {
        let map = self.map(name)?;
        if let aya::maps::Map::HashMap(data) | aya::maps::Map::LruHashMap(data) = map
            && let Ok(entries) = batch::entries::<K, V>(data, None)
        {
            return Ok(entries
                .into_iter()
                .filter_map(|(k, v)| Some((k, *v.first()?)))
                .collect());
        }
        let map: BpfHashMap<&MapData, K, V> = map.try_into()?;
        // An entry deleted between key and value lookups is skipped, not fatal.
        Ok(map.iter().filter_map(Result::ok).collect())
    }

    /// Every entry of a per-CPU hash map `name`, each with one value per possible CPU.
    fn per_cpu_hash<K: aya::Pod, V: aya::Pod>(
        &self,
        name: &str,
    ) -> anyhow::Result<Vec<(K, Vec<V>)>> {
        let map = self.map(name)?;
        if let aya::maps::Map::PerCpuHashMap(data) = map
            && let Ok(cpus) = aya::util::nr_cpus()
            && let Ok(entries) = batch::entries::<K, V>(data, Some(cpus))
        {
            return Ok(entries);
        }
        let map: PerCpuHashMap<&MapData, K, V> = map.try_into()?;
        Ok(map
            .iter()
            .filter_map(Result::ok)
            .map(|(k, values)| (k, values.iter().copied().collect()))
            .collect())
    }

    /// Every entry of a per-CPU hash map `name`, its values summed over CPUs.
    fn per_cpu_sum<K: aya::Pod + Eq + Hash, V: aya::Pod + Increase>(
        &self,
        name: &str,
    ) -> anyhow::Result<HashMap<K, V>> {
        let mut totals: HashMap<K, V> = HashMap::new();
        for (key, values) in self.per_cpu_hash::<K, V>(name)? {
            let total = totals.entry(key).or_insert(V::NONE);
            *total = values.iter().fold(*total, |sum, value| sum.plus(value));
        }
        Ok(totals)
    }

    pub fn processes(&self) -> anyhow::Result<ProcessSnapshot> {
        let on_cpu_ns = self.per_cpu_sum::<u32, u64>(MAP_ONCPU)?;
        let mut comms = HashMap::new();
        let mut cgroups = HashMap::new();
        for (tgid, name) in self.hash::<u32, ProcName>(MAP_COMMS)? {
            comms.insert(tgid, comm_to_string(&name.comm));
            cgroups.insert(tgid, name.cgroup_id);
        }
        let execs = self
            .hash::<u32, ExecInfo>(MAP_EXECS)?
            .into_iter()
            .map(|(tgid, exec)| (tgid, (exec.at, comm_to_string(&exec.name.comm))))
            .collect();
        let exec_files = self
            .hash::<u32, ExecFile>(MAP_EXEC_FILES)?
            .into_iter()
            .map(|(tgid, file)| (tgid, (file.at, path_to_string(&file.path))))
            .collect();
        Ok(ProcessSnapshot {
            on_cpu_ns,
            comms,
            execs,
            exec_files,
            cgroups,
        })
    }

    /// Page faults per tgid, summed over CPUs.
    pub fn faults(&self) -> anyhow::Result<HashMap<u32, FaultStats>> {
        self.per_cpu_sum(MAP_FAULTS)
    }

    /// Network bytes per tgid, summed over CPUs.
    pub fn net(&self) -> anyhow::Result<HashMap<u32, NetStats>> {
        self.per_cpu_sum(MAP_NET)
    }

    pub fn lifecycle(&self) -> anyhow::Result<Lifecycle> {
        Ok(Lifecycle {
            forks: self
                .hash::<u32, Fork>(MAP_FORKS)?
                .into_iter()
                .map(|(child, fork)| (child, (fork.parent_tgid, fork.at)))
                .collect(),
            oom_kills: self
                .hash::<u32, OomKill>(MAP_OOM_KILLS)?
                .into_iter()
                .collect(),
        })
    }

    /// Cumulative sample counts per (process, user stack, kernel stack).
    pub fn stack_counts(&self) -> anyhow::Result<Vec<(StackKey, u64)>> {
        self.hash(MAP_STACK_COUNTS)
    }

    /// Nanoseconds blocked per (process, user stack, kernel stack), of sleeps that ended.
    pub fn offcpu_ended(&self) -> anyhow::Result<HashMap<StackKey, u64>> {
        Ok(self.hash(MAP_OFFCPU)?.into_iter().collect())
    }

    /// Nanoseconds blocked per (process, user stack, kernel stack): the sleeps that ended, plus
    /// those still going on, counted until `end_ns` (kernel monotonic time). Read it after the
    /// programs are detached, so no sleep ends between the two reads and counts twice.
    pub fn offcpu(&self, end_ns: u64) -> anyhow::Result<Vec<(StackKey, u64)>> {
        let mut totals = self.offcpu_ended()?;
        for (_, thread) in self.hash::<u32, Runnable>(MAP_RUNNABLE_SINCE)? {
            if thread.blocked_since == 0 || thread.tgid == 0 || end_ns <= thread.blocked_since {
                continue;
            }
            let key = StackKey {
                tgid: thread.tgid,
                user_stack_id: thread.user_stack_id,
                kernel_stack_id: thread.kernel_stack_id,
            };
            *totals.entry(key).or_default() += end_ns - thread.blocked_since;
        }
        Ok(totals.into_iter().collect())
    }

    /// Processes whose main thread exited since their entries were last deleted.
    pub fn exits(&self) -> anyhow::Result<Vec<u32>> {
        Ok(self
            .hash::<u32, u64>(MAP_EXITS)?
            .into_iter()
            .map(|(tgid, _)| tgid)
            .collect())
    }

    /// Block IO per tgid; empty when the io signal is off.
    pub fn io(&self) -> anyhow::Result<HashMap<u32, IoStats>> {
        Ok(self.hash(MAP_IO)?.into_iter().collect())
    }

    /// Instruction pointers of each stack id, leaf first: the kernel's stack trace map's, or
    /// user stacks walked with unwind tables. Ids that cannot be read are left out and show up
    /// as lost stacks downstream.
    pub fn stacks(
        &self,
        ids: impl IntoIterator<Item = i32>,
    ) -> anyhow::Result<HashMap<i32, Vec<u64>>> {
        let traces: StackTraceMap<&MapData> = self.map(MAP_STACKS)?.try_into()?;
        let walked: BpfHashMap<&MapData, u32, UnwoundStack> =
            self.map(MAP_UNWOUND_STACKS)?.try_into()?;
        let mut stacks = HashMap::new();
        for id in ids {
            let Ok(key) = u32::try_from(id) else { continue };
            if stacks.contains_key(&id) {
                continue;
            }
            let frames = if is_unwound_stack(id) {
                walked.get(&key, 0).ok().map(|stack| {
                    let len = (stack.len as usize).min(stack.frames.len());
                    stack.frames[..len].to_vec()
                })
            } else {
                let trace = traces.get(&key, 0).ok();
                trace.map(|trace| trace.frames().iter().map(|frame| frame.ip).collect())
            };
            if let Some(frames) = frames {
                stacks.insert(id, frames);
            }
        }
        Ok(stacks)
    }

    /// Scheduler figures per tgid; empty when the sched signal is off.
    pub fn sched(&self) -> anyhow::Result<HashMap<u32, SchedStats>> {
        Ok(self
            .hash::<u32, SchedStats>(MAP_SCHED)?
            .into_iter()
            .collect())
    }

    /// Nanoseconds each victim process waited for a CPU held by each culprit process.
    pub fn blame(&self) -> anyhow::Result<Vec<(BlameKey, u64)>> {
        self.hash(MAP_BLAME)
    }

    /// Syscall figures per (tgid, syscall): the flushed per-CPU totals plus what each CPU
    /// still holds for the process running there.
    pub fn syscalls(&self) -> anyhow::Result<HashMap<SyscallKey, SyscallStats>> {
        let mut totals = self.per_cpu_sum::<SyscallKey, SyscallStats>(MAP_SYSCALLS)?;
        let mut add = |key: SyscallKey, stats: &SyscallStats| {
            let total = totals.entry(key).or_default();
            *total = total.plus(stats);
        };
        let pending: PerCpuArray<&MapData, PendingSyscalls> =
            self.map(MAP_SYSCALL_PENDING)?.try_into()?;
        for p in pending
            .get(&0, 0)
            .context("reading pending syscalls")?
            .iter()
        {
            for (nr, stats) in p.nrs.iter().zip(&p.stats).take(p.used as usize) {
                add(
                    SyscallKey {
                        tgid: p.tgid,
                        nr: *nr,
                    },
                    stats,
                );
            }
        }
        totals.retain(|_, stats| stats.count > 0);
        Ok(totals)
    }

    /// CPU samples taken inside each syscall of each process (sampled attribution; empty when
    /// the cpu signal is off).
    pub fn sampled_syscalls(&self) -> anyhow::Result<HashMap<SyscallKey, u64>> {
        Ok(self.hash(MAP_SAMPLED_SYSCALLS)?.into_iter().collect())
    }

    pub fn counters(&self) -> anyhow::Result<Counters> {
        let array: PerCpuArray<&MapData, u64> = self.map(MAP_COUNTERS)?.try_into()?;
        let mut counters = Counters::default();
        for counter in Counter::ALL {
            let values = array
                .get(&(counter as u32), 0)
                .with_context(|| format!("reading counter {counter:?}"))?;
            counters.0[counter as usize] = values.iter().sum();
        }
        Ok(counters)
    }
}

/// The kernel's monotonic clock, which `bpf_ktime_get_ns` reads.
pub fn kernel_now_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a stack value; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

fn comm_to_string(comm: &TaskComm) -> String {
    path_to_string(comm)
}

/// Bytes up to the first NUL, as text (lossy: names are any bytes).
fn path_to_string(bytes: &[u8]) -> String {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_stops_at_nul() {
        let mut comm = [0u8; 16];
        comm[..6].copy_from_slice(b"burner");
        assert_eq!(comm_to_string(&comm), "burner");
        assert_eq!(comm_to_string(&[b'x'; 16]), "x".repeat(16));
    }
}
