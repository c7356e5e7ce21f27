//! The table builder's thread: builds the tables the kernel asks for (processes sampled without
//! one, or with code outside every mapping it knew), and lets go of processes that are gone.

use std::{
    collections::HashMap,
    os::fd::AsFd as _,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{HashMap as BpfHashMap, Map, MapData},
};
use profiler_common::{
    MAP_UNWIND_PROCESSES, MAP_UNWIND_ROWS, MAP_UNWIND_WANTED, ProcessUnwind,
    UNWIND_PROCESS_ENTRIES, UNWOUND_STACKS_ENTRIES, UnwindRow, UnwoundStack,
};

use crate::model::report::UnwindTables;

use super::{
    process::{self, ExecMapping},
    store::{ObjectKey, RowStore},
};

/// How often the kernel's requests are read: the longest a new process's samples wait for a
/// table (plus the time to build it).
const POLL: Duration = Duration::from_millis(50);
/// A process's mappings are looked at again at most this often, however often it asks.
const LOOK_AGAIN: Duration = Duration::from_secs(1);
/// How often tables of processes gone are let go.
const SWEEP: Duration = Duration::from_secs(2);
/// A process whose table could not be built or stored is not tried again before this.
const RETRY: Duration = Duration::from_secs(10);
/// How long stopping waits for a build in progress before leaving the thread to end alone.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// What the builder holds and has done, for `own_cost` and `doctor`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnwindStats {
    pub processes: usize,
    pub objects: usize,
    pub rows_used: u32,
    pub rows_capacity: u32,
    /// Tables built (processes' first looks and changed mappings) and the time they took.
    pub builds: u64,
    pub build_time: Duration,
    /// The longest a process waited, from its first sample without a table to its table.
    pub slowest_first_table: Duration,
    /// Objects left without rows for want of room, and processes for want of an entry.
    pub objects_full: u64,
    pub processes_full: u64,
    /// Rows compiled whose rule the walker cannot evaluate (a DWARF expression other than the
    /// PLT's, a register other than rsp or rbp): frame pointers there.
    pub unsupported_rows: u64,
}

/// The running builder; dropping it stops the thread.
pub struct Unwinder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Closed by the thread as it ends.
    ended: mpsc::Receiver<()>,
    stats: Arc<SharedStats>,
}

impl Unwinder {
    /// Takes the table maps out of `ebpf` and starts building.
    pub fn start(ebpf: &mut Ebpf) -> anyhow::Result<Self> {
        let mut take = |name: &str| {
            ebpf.take_map(name)
                .with_context(|| format!("eBPF object has no map {name}"))
        };
        let rows = match take(MAP_UNWIND_ROWS)? {
            Map::Array(data) => data,
            _ => anyhow::bail!("{MAP_UNWIND_ROWS} is not an array"),
        };
        let processes = BpfHashMap::try_from(take(MAP_UNWIND_PROCESSES)?)?;
        let wanted = BpfHashMap::try_from(take(MAP_UNWIND_WANTED)?)?;
        let capacity = rows.info()?.max_entries();
        let array = rows
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating the unwind row array's descriptor")?;
        let store = RowStore::new(array, capacity);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SharedStats::default());
        let mut builder = Builder {
            _rows: rows,
            store,
            processes,
            wanted,
            published: HashMap::new(),
            retry_after: HashMap::new(),
            stats: UnwindStats::default(),
        };
        let (stop_flag, shared) = (stop.clone(), stats.clone());
        let (ending, ended) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("unwind-tables".into())
            .spawn(move || {
                let _ending = ending;
                builder.run(&stop_flag, &shared);
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
            ended,
            stats,
        })
    }

    /// The builder's figures, readable after the probes are gone.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.stats.clone())
    }
}

/// The builder's figures as they stand.
#[derive(Clone)]
pub struct StatsHandle(Arc<SharedStats>);

impl StatsHandle {
    pub fn get(&self) -> UnwindStats {
        self.0.load()
    }
}

/// The figures, readable without a lock: the recording thread runs at real-time priority, and
/// waiting for a lock held by this thread, starved by a rogue at nice -20, would stall it.
#[derive(Default)]
struct SharedStats([AtomicU64; 10]);

impl SharedStats {
    fn store(&self, stats: &UnwindStats) {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let values = [
            stats.processes as u64,
            stats.objects as u64,
            u64::from(stats.rows_used),
            u64::from(stats.rows_capacity),
            stats.builds,
            nanos(stats.build_time),
            nanos(stats.slowest_first_table),
            stats.objects_full,
            stats.processes_full,
            stats.unsupported_rows,
        ];
        for (slot, value) in self.0.iter().zip(values) {
            slot.store(value, Ordering::Relaxed);
        }
    }

    fn load(&self) -> UnwindStats {
        let [
            processes,
            objects,
            rows_used,
            rows_capacity,
            builds,
            build_ns,
            slowest_ns,
            objects_full,
            processes_full,
            unsupported_rows,
        ] = self.0.each_ref().map(|slot| slot.load(Ordering::Relaxed));
        UnwindStats {
            processes: processes as usize,
            objects: objects as usize,
            rows_used: rows_used as u32,
            rows_capacity: rows_capacity as u32,
            builds,
            build_time: Duration::from_nanos(build_ns),
            slowest_first_table: Duration::from_nanos(slowest_ns),
            objects_full,
            processes_full,
            unsupported_rows,
        }
    }
}

impl From<&UnwindStats> for UnwindTables {
    fn from(stats: &UnwindStats) -> Self {
        let millis = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        Self {
            processes: stats.processes,
            objects: stats.objects,
            rows_used: stats.rows_used,
            rows_capacity: stats.rows_capacity,
            memory_bytes: u64::from(stats.rows_capacity) * size_of::<UnwindRow>() as u64
                + u64::from(UNWIND_PROCESS_ENTRIES) * size_of::<ProcessUnwind>() as u64
                + u64::from(UNWOUND_STACKS_ENTRIES) * size_of::<UnwoundStack>() as u64,
            builds: stats.builds,
            build_ms: millis(stats.build_time),
            slowest_first_table_ms: millis(stats.slowest_first_table),
            objects_without_room: stats.objects_full,
            processes_without_room: stats.processes_full,
            unsupported_rows: stats.unsupported_rows,
        }
    }
}

impl Drop for Unwinder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // A build reading a file on a hung mount could hold the thread; exiting does not wait
        // for it then.
        if let Err(mpsc::RecvTimeoutError::Disconnected) = self.ended.recv_timeout(STOP_WAIT)
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

/// A process whose entry is in the kernel.
struct Published {
    start_time: u64,
    mappings: Vec<ExecMapping>,
    objects: Vec<ObjectKey>,
    looked: Instant,
}

struct Builder {
    /// The row array, which the store writes through a descriptor of its own.
    _rows: MapData,
    store: RowStore,
    processes: BpfHashMap<MapData, u32, ProcessUnwind>,
    wanted: BpfHashMap<MapData, u32, u64>,
    published: HashMap<u32, Published>,
    /// Processes not to look at again before then (their table could not be built or stored).
    retry_after: HashMap<u32, Instant>,
    stats: UnwindStats,
}

impl Builder {
    fn run(&mut self, stop: &AtomicBool, shared: &SharedStats) {
        // Level with the greediest normal task when the recorder runs at real-time priority.
        crate::session::priority::helper_thread();
        let mut swept = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
            self.answer_requests(stop);
            if swept.elapsed() >= SWEEP {
                self.forget_gone();
                swept = Instant::now();
            }
            self.stats.processes = self.published.len();
            self.stats.objects = self.store.objects();
            self.stats.rows_used = self.store.used();
            self.stats.rows_capacity = self.store.capacity();
            self.stats.objects_full = self.store.full;
            shared.store(&self.stats);
        }
    }

    fn answer_requests(&mut self, stop: &AtomicBool) {
        let requests: Vec<(u32, u64)> = self.wanted.iter().filter_map(Result::ok).collect();
        for (tgid, asked_at) in requests {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let _ = self.wanted.remove(&tgid);
            if self
                .retry_after
                .get(&tgid)
                .is_some_and(|at| Instant::now() < *at)
            {
                continue;
            }
            if !self.refresh(tgid, asked_at) {
                self.retry_after.insert(tgid, Instant::now() + RETRY);
            }
        }
    }

    /// Builds the process's table, or builds it again if its mappings changed; false when it
    /// has none and should not be asked about for a while.
    fn refresh(&mut self, tgid: u32, asked_at: u64) -> bool {
        let in_kernel = self.processes.get(&tgid, 0).is_ok();
        if let Some(known) = self.published.get(&tgid)
            && in_kernel
            && known.looked.elapsed() < LOOK_AGAIN
        {
            return true;
        }
        let program = process::program(tgid);
        let Some((start_time, mappings)) = process::exec_mappings(tgid) else {
            return false;
        };
        if let Some(known) = self.published.get_mut(&tgid)
            && in_kernel
            && known.start_time == start_time
            && known.mappings == mappings
        {
            known.looked = Instant::now();
            return true;
        }
        if !mappings.iter().any(|m| m.file) {
            return false;
        }
        let began = Instant::now();
        let built = process::build(&mut self.store, tgid, &mappings);
        let Some(entry) = built.entry else {
            return false;
        };
        if self.processes.insert(tgid, *entry, 0).is_err() {
            self.stats.processes_full += 1;
            self.release(&built.objects);
            return false;
        }
        // It exec'd (or exited, and its pid was taken) while the table was built from its old
        // mappings: the kernel dropped the entry at the exec, before this one was stored.
        if program.is_none() || process::program(tgid) != program {
            let _ = self.processes.remove(&tgid);
            self.release(&built.objects);
            return true;
        }
        self.stats.builds += 1;
        self.stats.unsupported_rows += built.unsupported as u64;
        self.stats.build_time += began.elapsed();
        if !self.published.contains_key(&tgid) {
            let waited =
                Duration::from_nanos(crate::collect::kernel_now_ns().saturating_sub(asked_at));
            self.stats.slowest_first_table = self.stats.slowest_first_table.max(waited);
        }
        let published = Published {
            start_time,
            mappings,
            objects: built.objects,
            looked: Instant::now(),
        };
        if let Some(old) = self.published.insert(tgid, published) {
            self.release(&old.objects);
        }
        true
    }

    /// Lets go of processes whose entry the kernel dropped (they exited or exec'd), or that are
    /// gone from /proc.
    fn forget_gone(&mut self) {
        let gone: Vec<u32> = self
            .published
            .keys()
            .copied()
            .filter(|tgid| {
                self.processes.get(tgid, 0).is_err()
                    || !std::path::Path::new(&format!("/proc/{tgid}")).exists()
            })
            .collect();
        for tgid in gone {
            let _ = self.processes.remove(&tgid);
            if let Some(old) = self.published.remove(&tgid) {
                self.release(&old.objects);
            }
        }
        let now = Instant::now();
        self.retry_after.retain(|_, at| now < *at);
    }

    fn release(&mut self, objects: &[ObjectKey]) {
        for key in objects {
            self.store.release(key);
        }
    }
}
