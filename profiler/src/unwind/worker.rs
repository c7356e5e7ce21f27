//! The table builder's thread: builds the tables the kernel asks for (processes sampled without
//! one, or with code outside every mapping it knew), and lets go of processes that are gone.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
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
}

/// The running builder; dropping it stops the thread.
pub struct Unwinder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<UnwindStats>>,
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
        let store = RowStore::map(rows.fd(), capacity).context("mapping the unwind row array")?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(UnwindStats::default()));
        let mut builder = Builder {
            _rows: rows,
            store,
            processes,
            wanted,
            published: HashMap::new(),
            stats: UnwindStats::default(),
        };
        let (stop_flag, shared) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("unwind-tables".into())
            .spawn(move || builder.run(&stop_flag, &shared))?;
        Ok(Self {
            stop,
            thread: Some(thread),
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
pub struct StatsHandle(Arc<Mutex<UnwindStats>>);

impl StatsHandle {
    pub fn get(&self) -> UnwindStats {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
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
        }
    }
}

impl Drop for Unwinder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
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
    /// Keeps the array alive while the store maps it.
    _rows: MapData,
    store: RowStore,
    processes: BpfHashMap<MapData, u32, ProcessUnwind>,
    wanted: BpfHashMap<MapData, u32, u64>,
    published: HashMap<u32, Published>,
    stats: UnwindStats,
}

impl Builder {
    fn run(&mut self, stop: &AtomicBool, shared: &Mutex<UnwindStats>) {
        let mut swept = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
            self.answer_requests();
            if swept.elapsed() >= SWEEP {
                self.forget_gone();
                swept = Instant::now();
            }
            self.stats.processes = self.published.len();
            self.stats.objects = self.store.objects();
            self.stats.rows_used = self.store.used();
            self.stats.rows_capacity = self.store.capacity();
            self.stats.objects_full = self.store.full;
            if let Ok(mut shared) = shared.lock() {
                *shared = self.stats.clone();
            }
        }
    }

    fn answer_requests(&mut self) {
        let requests: Vec<(u32, u64)> = self.wanted.iter().filter_map(Result::ok).collect();
        for (tgid, asked_at) in requests {
            let _ = self.wanted.remove(&tgid);
            self.refresh(tgid, asked_at);
        }
    }

    /// Builds the process's table, or builds it again if its mappings changed.
    fn refresh(&mut self, tgid: u32, asked_at: u64) {
        let in_kernel = self.processes.get(&tgid, 0).is_ok();
        if let Some(known) = self.published.get(&tgid)
            && in_kernel
            && known.looked.elapsed() < LOOK_AGAIN
        {
            return;
        }
        let Some((start_time, mappings)) = process::exec_mappings(tgid) else {
            return;
        };
        if let Some(known) = self.published.get_mut(&tgid)
            && in_kernel
            && known.start_time == start_time
            && known.mappings == mappings
        {
            known.looked = Instant::now();
            return;
        }
        if !mappings.iter().any(|m| m.file) {
            return;
        }
        let began = Instant::now();
        let built = process::build(&mut self.store, tgid, &mappings);
        let Some(entry) = built.entry else {
            return;
        };
        if self.processes.insert(tgid, *entry, 0).is_err() {
            self.stats.processes_full += 1;
            self.release(&built.objects);
            return;
        }
        self.stats.builds += 1;
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
    }

    fn release(&mut self, objects: &[ObjectKey]) {
        for key in objects {
            self.store.release(key);
        }
    }
}
