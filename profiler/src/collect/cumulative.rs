//! Every kernel figure at one instant, as the kernel keeps them (cumulative since attach), and
//! the differences between two instants: the figures of a window or a tick.

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
};

use profiler_common::{
    BlameKey, Counter, FaultStats, IoStats, NetStats, SchedStats, StackKey, SyscallKey,
    SyscallStats,
};

use super::{Collector, Counters, ProcessSnapshot};

/// Cumulative kernel figures read at one instant.
#[derive(Debug, Clone, Default)]
pub struct Cumulative {
    pub processes: ProcessSnapshot,
    pub stack_counts: HashMap<StackKey, u64>,
    /// Sleeps that ended (their wakeup was seen), nanoseconds per stack.
    pub offcpu: HashMap<StackKey, u64>,
    pub sched: HashMap<u32, SchedStats>,
    pub blame: HashMap<BlameKey, u64>,
    pub syscalls: HashMap<SyscallKey, SyscallStats>,
    /// CPU samples taken inside each syscall.
    pub sampled_syscalls: HashMap<SyscallKey, u64>,
    pub net: HashMap<u32, NetStats>,
    pub faults: HashMap<u32, FaultStats>,
    pub io: HashMap<u32, IoStats>,
    pub counters: Counters,
    /// Kernel monotonic time just before the maps were read: events stamped earlier (forks)
    /// belong to the stretch this reading ends, later ones to the next.
    pub read_at_ns: u64,
}

impl Cumulative {
    /// Reads every map while the programs run. Counts moving between two maps during the read
    /// (pending syscalls being flushed) may be missed now; they are seen at the next read, since
    /// every figure is cumulative.
    pub fn read(collector: &Collector<'_>) -> anyhow::Result<Self> {
        let mut figures = Self::read_without_stacks(collector)?;
        figures.stack_counts = collector.stack_counts()?.into_iter().collect();
        figures.offcpu = collector.offcpu_ended()?;
        Ok(figures)
    }

    /// Everything but the stack maps, the largest to walk: what a tick needs.
    pub fn read_without_stacks(collector: &Collector<'_>) -> anyhow::Result<Self> {
        let read_at_ns = super::kernel_now_ns();
        Ok(Self {
            processes: collector.processes()?,
            stack_counts: HashMap::new(),
            offcpu: HashMap::new(),
            sched: collector.sched()?,
            blame: collector.blame()?.into_iter().collect(),
            syscalls: collector.syscalls()?,
            sampled_syscalls: collector.sampled_syscalls()?,
            net: collector.net()?,
            faults: collector.faults()?,
            io: collector.io()?,
            counters: collector.counters()?,
            read_at_ns,
        })
    }

    /// What happened between `base` and `self`: only keys that changed, with their increase.
    /// Names (comms, execs, cgroups) are the newest.
    pub fn since(&self, base: &Self) -> Self {
        let mut counters = Counters::default();
        for counter in Counter::ALL {
            let i = counter as usize;
            counters.0[i] = self.counters.0[i].saturating_sub(base.counters.0[i]);
        }
        let mut delta = Self {
            processes: ProcessSnapshot {
                on_cpu_ns: increase(&self.processes.on_cpu_ns, &base.processes.on_cpu_ns),
                ..self.processes.clone()
            },
            counters,
            read_at_ns: self.read_at_ns,
            ..Self::default()
        };
        let now = self;
        macro_rules! each {
            ($map:ident) => {
                delta.$map = increase(&now.$map, &base.$map)
            };
        }
        per_process_maps!(each);
        delta
    }

    /// Moves the entries of the processes in `gone` out into a reading of their own.
    pub fn split_off(&mut self, gone: &HashSet<u32>) -> Self {
        let dead = |key: &dyn Keyed| key.involves(&|tgid| gone.contains(&tgid));
        let mut split = Self {
            processes: ProcessSnapshot {
                on_cpu_ns: take(&mut self.processes.on_cpu_ns, dead),
                comms: self.processes.comms.clone(),
                execs: self.processes.execs.clone(),
                exec_files: self.processes.exec_files.clone(),
                cgroups: self.processes.cgroups.clone(),
            },
            read_at_ns: self.read_at_ns,
            ..Self::default()
        };
        let from = self;
        macro_rules! each {
            ($map:ident) => {
                split.$map = take(&mut from.$map, dead)
            };
        }
        per_process_maps!(each);
        split
    }

    /// Adds `other`'s figures into these, key by key: the final figures of processes whose
    /// entries left the maps during a window join the window's reading.
    pub fn absorb(&mut self, other: &Self) {
        add(&mut self.processes.on_cpu_ns, &other.processes.on_cpu_ns);
        for (tgid, comm) in &other.processes.comms {
            self.processes
                .comms
                .entry(*tgid)
                .or_insert_with(|| comm.clone());
        }
        for (tgid, cgroup) in &other.processes.cgroups {
            self.processes.cgroups.entry(*tgid).or_insert(*cgroup);
        }
        let into = self;
        macro_rules! each {
            ($map:ident) => {
                add(&mut into.$map, &other.$map)
            };
        }
        per_process_maps!(each);
    }

    /// Every process this reading has a figure or a name of.
    pub fn tgids(&self) -> HashSet<u32> {
        let p = &self.processes;
        let mut tgids: HashSet<u32> = p
            .on_cpu_ns
            .keys()
            .chain(p.comms.keys())
            .chain(p.execs.keys())
            .copied()
            .collect();
        let reading = self;
        macro_rules! each {
            ($map:ident) => {
                for key in reading.$map.keys() {
                    key.each_tgid(&mut |tgid| {
                        tgids.insert(tgid);
                    });
                }
            };
        }
        per_process_maps!(each);
        tgids
    }

    /// Every process a per-process figure of this reading belongs to (blame, between two
    /// processes, belongs to neither's usage).
    pub fn owners(&self) -> HashSet<u32> {
        let mut owners: HashSet<u32> = self.processes.on_cpu_ns.keys().copied().collect();
        let reading = self;
        macro_rules! each {
            ($map:ident) => {
                owners.extend(reading.$map.keys().filter_map(Keyed::owner))
            };
        }
        per_process_maps!(each);
        owners
    }

    /// Forgets processes whose map entries were deleted, so the next difference does not go
    /// negative.
    pub fn forget(&mut self, gone: &impl Fn(u32) -> bool) {
        self.processes.on_cpu_ns.retain(|&tgid, _| !gone(tgid));
        let reading = self;
        macro_rules! each {
            ($map:ident) => {
                reading.$map.retain(|key, _| !key.involves(gone))
            };
        }
        per_process_maps!(each);
    }
}

/// Applies the macro `$each` to each per-process map of a [`Cumulative`]: the one list of
/// them that every operation above goes through. A new signal's map is added here and in the
/// struct, and nowhere else in this file.
macro_rules! per_process_maps {
    ($each:ident) => {
        $each!(stack_counts);
        $each!(offcpu);
        $each!(sched);
        $each!(blame);
        $each!(syscalls);
        $each!(sampled_syscalls);
        $each!(net);
        $each!(faults);
        $each!(io);
    };
}
use per_process_maps;

/// A map key: which processes it is about.
pub trait Keyed {
    fn each_tgid(&self, visit: &mut dyn FnMut(u32));

    /// The process whose usage the entry counts, if one alone.
    fn owner(&self) -> Option<u32>;

    /// Whether `pick` holds for any process the key names.
    fn involves(&self, pick: &dyn Fn(u32) -> bool) -> bool {
        let mut any = false;
        self.each_tgid(&mut |tgid| any |= pick(tgid));
        any
    }
}

impl Keyed for u32 {
    fn each_tgid(&self, visit: &mut dyn FnMut(u32)) {
        visit(*self);
    }

    fn owner(&self) -> Option<u32> {
        Some(*self)
    }
}

impl Keyed for StackKey {
    fn each_tgid(&self, visit: &mut dyn FnMut(u32)) {
        visit(self.tgid);
    }

    fn owner(&self) -> Option<u32> {
        Some(self.tgid)
    }
}

impl Keyed for SyscallKey {
    fn each_tgid(&self, visit: &mut dyn FnMut(u32)) {
        visit(self.tgid);
    }

    fn owner(&self) -> Option<u32> {
        Some(self.tgid)
    }
}

impl Keyed for BlameKey {
    fn each_tgid(&self, visit: &mut dyn FnMut(u32)) {
        visit(self.culprit_tgid);
        visit(self.victim_tgid);
    }

    fn owner(&self) -> Option<u32> {
        None
    }
}

/// Moves the entries whose keys `doomed` picks out of `map`.
fn take<K: Keyed + Copy + Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    doomed: impl Fn(&dyn Keyed) -> bool,
) -> HashMap<K, V> {
    let keys: Vec<K> = map.keys().filter(|k| doomed(*k)).copied().collect();
    keys.into_iter()
        .filter_map(|k| Some((k, map.remove(&k)?)))
        .collect()
}

/// Adds `from`'s figures into `into`, key by key.
fn add<K: Copy + Eq + Hash, V: Increase>(into: &mut HashMap<K, V>, from: &HashMap<K, V>) {
    for (key, value) in from {
        let total = into.entry(*key).or_insert(V::NONE);
        *total = total.plus(value);
    }
}

/// A cumulative figure: what it grew by since an earlier reading.
pub trait Increase: Copy + PartialEq {
    /// Nothing happened.
    const NONE: Self;
    fn minus(&self, base: &Self) -> Self;
    fn plus(&self, other: &Self) -> Self;
}

impl Increase for u64 {
    const NONE: Self = 0;
    fn minus(&self, base: &Self) -> Self {
        self.saturating_sub(*base)
    }
    fn plus(&self, other: &Self) -> Self {
        self.saturating_add(*other)
    }
}

/// Field-wise increase of a struct of u64 counters (and arrays of them).
macro_rules! increase_fields {
    ($ty:ty = $none:expr; $($field:ident),* $(; $($array:ident),*)?) => {
        impl Increase for $ty {
            const NONE: Self = $none;
            fn minus(&self, base: &Self) -> Self {
                let mut d = *self;
                $(d.$field = self.$field.saturating_sub(base.$field);)*
                $($(
                    for (slot, before) in d.$array.iter_mut().zip(&base.$array) {
                        *slot = slot.saturating_sub(*before);
                    }
                )*)?
                d
            }
            fn plus(&self, other: &Self) -> Self {
                let mut sum = *self;
                $(sum.$field = self.$field.saturating_add(other.$field);)*
                $($(
                    for (slot, more) in sum.$array.iter_mut().zip(&other.$array) {
                        *slot = slot.saturating_add(*more);
                    }
                )*)?
                sum
            }
        }
    };
}

increase_fields!(SchedStats = SchedStats::ZERO;
    runq_wait_ns, runq_waits, voluntary_switches, involuntary_switches; wait_hist);
increase_fields!(IoStats = IoStats::ZERO;
    read_bytes, write_bytes, ops, writeback_bytes, completions, latency_ns; latency_hist);
increase_fields!(SyscallStats = SyscallStats { count: 0, errors: 0, time_ns: 0 };
    count, errors, time_ns);
increase_fields!(NetStats = NetStats { tx_bytes: 0, rx_bytes: 0, tx_calls: 0, rx_calls: 0 };
    tx_bytes, rx_bytes, tx_calls, rx_calls);
increase_fields!(FaultStats = FaultStats { minor: 0, major: 0 }; minor, major);

/// The keys whose figures grew between `base` and `now`, with their growth.
fn increase<K: Copy + Eq + Hash, V: Increase>(
    now: &HashMap<K, V>,
    base: &HashMap<K, V>,
) -> HashMap<K, V> {
    now.iter()
        .filter_map(|(key, value)| {
            let grown = base.get(key).map_or(*value, |before| value.minus(before));
            (grown != V::NONE).then_some((*key, grown))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_keep_only_what_grew() {
        let mut base = Cumulative::default();
        base.processes.on_cpu_ns = HashMap::from([(1, 100), (2, 50)]);
        base.net.insert(
            1,
            NetStats {
                tx_bytes: 10,
                ..NetStats::default()
            },
        );
        let mut now = base.clone();
        now.processes.on_cpu_ns = HashMap::from([(1, 150), (2, 50), (3, 7)]);
        now.net.insert(
            1,
            NetStats {
                tx_bytes: 25,
                tx_calls: 1,
                ..NetStats::default()
            },
        );
        now.counters.0[Counter::Samples as usize] = 9;
        let d = now.since(&base);
        assert_eq!(d.processes.on_cpu_ns, HashMap::from([(1, 50), (3, 7)]));
        assert_eq!(d.net[&1].tx_bytes, 15);
        assert_eq!(d.net[&1].tx_calls, 1);
        assert_eq!(d.counters.get(Counter::Samples), 9);

        let mut sched = SchedStats::ZERO;
        sched.wait_hist[3] = 4;
        let mut later = sched;
        later.wait_hist[3] = 6;
        assert_eq!(later.minus(&sched).wait_hist[3], 2);
        // An exited process's final figures move out, then rejoin the window's reading.
        let mut reading = now.clone();
        let dead = reading.split_off(&HashSet::from([1]));
        assert_eq!(dead.processes.on_cpu_ns, HashMap::from([(1, 150)]));
        assert!(!reading.net.contains_key(&1));
        reading.absorb(&dead);
        assert_eq!(reading.since(&base).net[&1].tx_bytes, 15);
        assert_eq!(reading.processes.on_cpu_ns[&1], 150);
        assert_eq!(now.tgids(), HashSet::from([1, 2, 3]));
        now.forget(&|tgid| tgid == 1);
        assert!(!now.net.contains_key(&1));
        assert!(now.processes.on_cpu_ns.contains_key(&2));
    }
}
