//! Deleting what a long-running profiler no longer needs from the kernel maps: entries of
//! processes that exited (already reported), forks already reported, and stacks nothing
//! references any more. Keeps `record`'s maps, and so its memory, bounded by the live processes.

use std::collections::HashSet;

use super::cumulative::Cumulative;
use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{HashMap as BpfHashMap, MapData, PerCpuHashMap, StackTraceMap},
};
use profiler_common::{
    BlameKey, ExecFile, ExecInfo, FaultStats, Fork, IoStats, MAP_BLAME, MAP_COMMS, MAP_EXEC_FILES,
    MAP_EXECS, MAP_EXITS, MAP_FAULTS, MAP_FORKS, MAP_IO, MAP_NET, MAP_OFFCPU, MAP_ONCPU,
    MAP_OOM_KILLS, MAP_SAMPLED_SYSCALLS, MAP_SCHED, MAP_STACK_COUNTS, MAP_STACKS, MAP_SYSCALLS,
    MAP_UNWOUND_STACKS, NetStats, OomKill, ProcName, SchedStats, StackKey, SyscallKey,
    SyscallStats, UnwoundStack,
};

/// How many entries a cleanup deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub entries: usize,
    pub stacks: usize,
}

fn hash<'a, K: aya::Pod, V: aya::Pod>(
    ebpf: &'a mut Ebpf,
    name: &str,
) -> anyhow::Result<BpfHashMap<&'a mut MapData, K, V>> {
    let map = ebpf
        .map_mut(name)
        .with_context(|| format!("eBPF object has no map {name}"))?;
    Ok(BpfHashMap::try_from(map)?)
}

fn per_cpu<'a, K: aya::Pod, V: aya::Pod>(
    ebpf: &'a mut Ebpf,
    name: &str,
) -> anyhow::Result<PerCpuHashMap<&'a mut MapData, K, V>> {
    let map = ebpf
        .map_mut(name)
        .with_context(|| format!("eBPF object has no map {name}"))?;
    Ok(PerCpuHashMap::try_from(map)?)
}

/// The maps keyed by tgid alone, each named once: how it is opened, its value type, its name,
/// and the field of a [`Cumulative`] its reading goes to. Both sweeps below delete a process's
/// entries from each.
macro_rules! tgid_maps {
    ($each:ident) => {
        $each!(per_cpu, u64, MAP_ONCPU, processes.on_cpu_ns);
        $each!(hash, ProcName, MAP_COMMS, processes.comms);
        $each!(hash, ExecInfo, MAP_EXECS, processes.execs);
        $each!(hash, ExecFile, MAP_EXEC_FILES, processes.exec_files);
        $each!(hash, SchedStats, MAP_SCHED, sched);
        $each!(hash, IoStats, MAP_IO, io);
        $each!(per_cpu, NetStats, MAP_NET, net);
        $each!(per_cpu, FaultStats, MAP_FAULTS, faults);
    };
}

/// Deletes the keys `doomed` picks out. A key deleted concurrently by nobody else cannot fail
/// but for being gone already, which is what was wanted.
macro_rules! delete_where {
    ($map:expr, $doomed:expr) => {{
        let mut map = $map;
        let keys: Vec<_> = map.keys().filter_map(Result::ok).filter($doomed).collect();
        for key in &keys {
            let _ = map.remove(key);
        }
        keys.len()
    }};
}

/// Deletes the entries of processes `gone` says exited, forks older than `forks_before`
/// (kernel time), and the sample counts in `stale` (stacks of live processes that were not
/// sampled in the last window: a long-lived process would otherwise fill the map with every
/// stack it ever had). Then deletes stacks no remaining sample or sleep refers to.
pub fn forget(
    ebpf: &mut Ebpf,
    gone: &impl Fn(u32) -> bool,
    forks_before: u64,
    stale: &HashSet<StackKey>,
) -> anyhow::Result<Deleted> {
    let mut entries = 0;
    macro_rules! sweep {
        ($open:ident, $value:ty, $name:ident, $($field:ident).+) => {
            entries += delete_where!($open::<u32, $value>(ebpf, $name)?, |t| gone(*t));
        };
    }
    tgid_maps!(sweep);
    entries += delete_where!(
        per_cpu::<SyscallKey, SyscallStats>(ebpf, MAP_SYSCALLS)?,
        |k: &SyscallKey| gone(k.tgid)
    );
    entries += delete_where!(
        hash::<SyscallKey, u64>(ebpf, MAP_SAMPLED_SYSCALLS)?,
        |k: &SyscallKey| gone(k.tgid)
    );
    entries += delete_where!(
        hash::<BlameKey, u64>(ebpf, MAP_BLAME)?,
        |k: &BlameKey| gone(k.culprit_tgid) || gone(k.victim_tgid)
    );
    entries += delete_where!(
        hash::<StackKey, u64>(ebpf, MAP_STACK_COUNTS)?,
        |k: &StackKey| gone(k.tgid) || stale.contains(k)
    );
    entries += delete_where!(hash::<StackKey, u64>(ebpf, MAP_OFFCPU)?, |k: &StackKey| {
        gone(k.tgid)
    });
    // Events up to the reading that ended the window were its; later ones are the next's.
    entries += delete_older::<Fork>(ebpf, MAP_FORKS, forks_before, |fork| fork.at)?;
    entries += delete_older::<OomKill>(ebpf, MAP_OOM_KILLS, forks_before, |kill| kill.at)?;

    Ok(Deleted {
        entries,
        stacks: forget_unreferenced_stacks(ebpf)?,
    })
}

/// Deletes the events of `name` (keyed by pid) that happened before kernel time `before`.
fn delete_older<V: aya::Pod>(
    ebpf: &mut Ebpf,
    name: &str,
    before: u64,
    at: impl Fn(&V) -> u64,
) -> anyhow::Result<usize> {
    let mut events = hash::<u32, V>(ebpf, name)?;
    let old: Vec<u32> = events
        .iter()
        .filter_map(Result::ok)
        .filter(|(_, event)| at(event) < before)
        .map(|(pid, _)| pid)
        .collect();
    for pid in &old {
        let _ = events.remove(pid);
    }
    Ok(old.len())
}

/// Deletes the stacks no sample count or sleep refers to any more; returns how many.
fn forget_unreferenced_stacks(ebpf: &mut Ebpf) -> anyhow::Result<usize> {
    // Stack ids listed before the references are read: a sample taken in between refers to
    // an id either listed and referenced, or not listed; neither is deleted.
    let listed: Vec<u32> = {
        let map = ebpf
            .map(MAP_STACKS)
            .with_context(|| format!("eBPF object has no map {MAP_STACKS}"))?;
        let stacks = StackTraceMap::try_from(map)?;
        stacks.stack_ids().filter_map(Result::ok).collect()
    };
    let walked: Vec<u32> = hash::<u32, UnwoundStack>(ebpf, MAP_UNWOUND_STACKS)?
        .keys()
        .filter_map(Result::ok)
        .collect();
    let mut referenced: HashSet<u32> = HashSet::new();
    for name in [MAP_STACK_COUNTS, MAP_OFFCPU] {
        let map = hash::<StackKey, u64>(ebpf, name)?;
        for key in map.keys().filter_map(Result::ok) {
            for id in [key.user_stack_id, key.kernel_stack_id] {
                if let Ok(id) = u32::try_from(id) {
                    referenced.insert(id);
                }
            }
        }
    }
    let unreferenced = |ids: Vec<u32>| -> Vec<u32> {
        ids.into_iter()
            .filter(|id| !referenced.contains(id))
            .collect()
    };
    let (traces, walked) = (unreferenced(listed), unreferenced(walked));
    let map = ebpf
        .map_mut(MAP_STACKS)
        .with_context(|| format!("eBPF object has no map {MAP_STACKS}"))?;
    let mut stacks = StackTraceMap::try_from(map)?;
    for id in &traces {
        let _ = stacks.remove(id);
    }
    let mut stacks = hash::<u32, UnwoundStack>(ebpf, MAP_UNWOUND_STACKS)?;
    for id in &walked {
        let _ = stacks.remove(id);
    }
    Ok(traces.len() + walked.len())
}

/// Stack counts that did not grow between `base` and `now`: stacks not sampled in that window.
pub fn stale_stacks(now: &Cumulative, base: &Cumulative) -> HashSet<StackKey> {
    now.stack_counts
        .iter()
        .filter(|&(key, count)| base.stack_counts.get(key) == Some(count))
        .map(|(key, _)| *key)
        .collect()
}

/// Closes a window in the kernel maps: forgets processes that exited, forks older than
/// `forks_before` and `stale` stacks, and takes the same entries out of `now`, which becomes
/// the next window's base.
pub fn after_window(
    ebpf: &mut Ebpf,
    now: &mut Cumulative,
    stale: &HashSet<StackKey>,
    forks_before: u64,
) -> anyhow::Result<Deleted> {
    // Only processes this reading saw: one that started after it, and exited before now, has
    // entries no window has counted yet; deleted here, it would be missing from the next
    // window too (under churn, every process that ended while this window was being written).
    let read = now.tgids();
    // Nor processes with an exit mark: they exited after the reading, maybe after doing more,
    // and the next tick takes their final figures before deleting their entries.
    let exiting: HashSet<u32> = super::Collector::new(ebpf).exits()?.into_iter().collect();
    // One /proc lookup per process, however many maps and keys name it.
    let checked: std::cell::RefCell<std::collections::HashMap<u32, bool>> = Default::default();
    let gone = |tgid: u32| {
        read.contains(&tgid)
            && !exiting.contains(&tgid)
            && *checked
                .borrow_mut()
                .entry(tgid)
                .or_insert_with(|| !std::path::Path::new(&format!("/proc/{tgid}")).exists())
    };
    let deleted = forget(ebpf, &gone, forks_before, stale)?;
    now.forget(&gone);
    now.stack_counts.retain(|key, _| !stale.contains(key));
    Ok(deleted)
}

/// Deletes, key by key, the entries of processes that exited during a window (`gone`, whose
/// final figures `dead` the caller keeps), and their exit marks. Cheaper than a sweep of
/// every map, so it can run every tick and keep the maps from filling under process churn.
/// Only the keys `dead` was read with are deleted: a delete is a syscall, and most processes
/// have entries in few maps (one of the recorder's largest costs under churn was deleting
/// keys that were not there). An entry made after the reading (a last switch-out) is left to
/// the window's sweep. Stack counts stay until the window's end: they are only read then.
pub fn forget_exited(
    ebpf: &mut Ebpf,
    gone: &HashSet<u32>,
    dead: &Cumulative,
) -> anyhow::Result<usize> {
    let mut deleted = 0;
    macro_rules! remove {
        ($open:ident, $key:ty, $value:ty, $name:ident, $keys:expr) => {{
            let mut map = $open::<$key, $value>(ebpf, $name)?;
            $keys.filter(|key| map.remove(key).is_ok()).count()
        }};
        ($open:ident, $value:ty, $name:ident, $($field:ident).+) => {
            let held = gone.iter().filter(|tgid| dead.$($field).+.contains_key(tgid));
            deleted += remove!($open, u32, $value, $name, held);
        };
    }
    tgid_maps!(remove);
    let syscalls = dead.syscalls.keys();
    deleted += remove!(per_cpu, SyscallKey, SyscallStats, MAP_SYSCALLS, syscalls);
    let sampled = dead.sampled_syscalls.keys();
    deleted += remove!(hash, SyscallKey, u64, MAP_SAMPLED_SYSCALLS, sampled);
    deleted += remove!(hash, BlameKey, u64, MAP_BLAME, dead.blame.keys());
    remove!(hash, u32, u64, MAP_EXITS, gone.iter());
    Ok(deleted)
}
