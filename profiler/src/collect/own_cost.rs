//! What the profiler itself costs: its CPU time and peak memory, and the run time of its BPF
//! programs as the kernel accounts it (`BPF_ENABLE_STATS`), sampled: the statistics cost two
//! clock reads on every BPF program run on the host, so they are on for a slice of every period
//! and the rest is estimated from those slices.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use aya::Ebpf;
use profiler_common::PROG_CPU_SAMPLE;

/// What the profiler spent over a stretch of wall time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spent {
    /// User plus system CPU time of the profiler process.
    pub cpu_ns: u64,
    /// Time its BPF programs ran: as the kernel accounted it while the statistics were on,
    /// scaled to the whole stretch; 0 without the statistics.
    pub bpf_run_time_ns: u64,
    /// Program runs, scaled the same way.
    pub bpf_runs: u64,
    /// Share of the stretch the statistics were on (1 = measured throughout; 0 = estimated
    /// from an earlier stretch, or not at all).
    pub bpf_measured_share: f64,
    /// The stretch of wall time.
    pub wall: Duration,
    /// Largest resident set of the profiler process so far (VmHWM).
    pub peak_rss_bytes: u64,
    /// Nanoseconds per run of the CPU sampler, the stack walks it tail-calls included, over
    /// the stretch's measured slices; `None` when it did not run while measured.
    pub sampler_ns_per_run: Option<f64>,
}

/// The kernel's BPF run-time statistics, on for a slice of every period on a thread of their
/// own; counts how long they were on, and keeps the rate the meters last measured.
pub struct BpfStats {
    shared: Arc<Shared>,
    /// Dropped to stop the thread (which turns the statistics off).
    _stop: mpsc::Sender<()>,
    /// BPF nanoseconds and runs per nanosecond of statistics, from the latest stretch that
    /// had some: what a stretch without them is estimated with.
    rates: Option<(f64, f64)>,
}

/// How long the statistics were on, shared with the thread switching them.
struct Shared {
    epoch: Instant,
    /// Nanoseconds on, over the stretches that ended.
    ended_ns: AtomicU64,
    /// Start of the current stretch (nanoseconds after `epoch`, plus one), 0 while off.
    since_ns: AtomicU64,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl BpfStats {
    /// Starts switching the statistics on for `slice` of every `period`.
    pub fn sample(slice: Duration, period: Duration) -> Self {
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            ended_ns: AtomicU64::new(0),
            since_ns: AtomicU64::new(0),
        });
        let (stop, stopped) = mpsc::channel();
        let switcher = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("bpf-stats".to_owned())
            .spawn(move || switch(&switcher, &stopped, slice, period));
        if let Err(err) = spawned {
            log::debug!("BPF run-time statistics not sampled: {err}");
        }
        Self {
            shared,
            _stop: stop,
            rates: None,
        }
    }

    /// How long the statistics have been on, in all.
    pub fn on_total(&self) -> Duration {
        let shared = &self.shared;
        let since = shared.since_ns.load(Ordering::Acquire);
        let current = match since {
            0 => 0,
            start => shared.now_ns().saturating_sub(start - 1),
        };
        Duration::from_nanos(shared.ended_ns.load(Ordering::Acquire) + current)
    }
}

/// The thread: statistics on for `slice`, off for the rest of `period`, until told to stop or
/// the kernel refuses them (Linux < 5.8, or not allowed).
fn switch(shared: &Shared, stopped: &mpsc::Receiver<()>, slice: Duration, period: Duration) {
    let go_on = |pause| {
        matches!(
            stopped.recv_timeout(pause),
            Err(mpsc::RecvTimeoutError::Timeout)
        )
    };
    loop {
        let fd = match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
            Ok(fd) => fd,
            Err(err) => {
                log::debug!("BPF run-time statistics unavailable: {err}");
                return;
            }
        };
        let start = shared.now_ns();
        shared.since_ns.store(start + 1, Ordering::Release);
        let more = go_on(slice);
        drop(fd);
        let on = shared.now_ns().saturating_sub(start);
        shared.ended_ns.fetch_add(on, Ordering::AcqRel);
        shared.since_ns.store(0, Ordering::Release);
        if !more || !go_on(period.saturating_sub(slice)) {
            return;
        }
    }
}

/// Measures the profiler's cost between successive calls to [`OwnCostMeter::measure`].
pub struct OwnCostMeter {
    last_cpu: Duration,
    last_bpf_ns: u64,
    last_bpf_runs: u64,
    last_sampler: (u64, u64),
    last_stats_on: Duration,
}

impl OwnCostMeter {
    pub fn start(ebpf: &Ebpf, stats: &BpfStats) -> Self {
        let (bpf_ns, bpf_runs) = bpf_totals(ebpf);
        Self {
            last_cpu: own_cpu(),
            last_bpf_ns: bpf_ns,
            last_bpf_runs: bpf_runs,
            last_sampler: sampler_totals(ebpf),
            last_stats_on: stats.on_total(),
        }
    }

    /// Cost since the previous call (or the start) over `elapsed` of wall time: BPF figures
    /// at the rate measured in this stretch, or the latest measured one.
    pub fn measure(&mut self, ebpf: &Ebpf, stats: &mut BpfStats, elapsed: Duration) -> Spent {
        let cpu = own_cpu();
        let (bpf_ns_total, bpf_runs_total) = bpf_totals(ebpf);
        let stats_on = stats.on_total();
        let cpu_ns = cpu.saturating_sub(self.last_cpu).as_nanos() as u64;
        let measured_ns = stats_on.saturating_sub(self.last_stats_on).as_nanos() as f64;
        if measured_ns > 0.0 {
            let bpf_ns = bpf_ns_total.saturating_sub(self.last_bpf_ns) as f64;
            let runs = bpf_runs_total.saturating_sub(self.last_bpf_runs) as f64;
            stats.rates = Some((bpf_ns / measured_ns, runs / measured_ns));
        }
        let sampler = sampler_totals(ebpf);
        let sampler_runs = sampler.1.saturating_sub(self.last_sampler.1);
        let sampler_ns_per_run = (sampler_runs > 0)
            .then(|| sampler.0.saturating_sub(self.last_sampler.0) as f64 / sampler_runs as f64);
        self.last_sampler = sampler;
        self.last_cpu = cpu;
        self.last_bpf_ns = bpf_ns_total;
        self.last_bpf_runs = bpf_runs_total;
        self.last_stats_on = stats_on;
        let wall_ns = elapsed.as_nanos() as f64;
        let (ns_rate, runs_rate) = stats.rates.unwrap_or((0.0, 0.0));
        Spent {
            cpu_ns,
            bpf_run_time_ns: (ns_rate * wall_ns).round() as u64,
            bpf_runs: (runs_rate * wall_ns).round() as u64,
            bpf_measured_share: (measured_ns / wall_ns.max(1.0)).min(1.0),
            wall: elapsed,
            peak_rss_bytes: peak_rss_bytes(),
            sampler_ns_per_run,
        }
    }
}

/// User plus system time of this process, all threads.
pub fn own_cpu() -> Duration {
    // SAFETY: getrusage writes the struct it is given; RUSAGE_SELF always exists.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The largest resident set this process has had (VmHWM).
fn peak_rss_bytes() -> u64 {
    use procfs::process::Process;
    Process::myself()
        .and_then(|p| p.status())
        .ok()
        .and_then(|s| s.vmhwm)
        .map_or(0, |kib| kib * 1024)
}

/// Run time and run count of the CPU sampler. Programs it tail-calls (the stack walker) run
/// inside its runs, and the kernel charges their time to it.
fn sampler_totals(ebpf: &Ebpf) -> (u64, u64) {
    ebpf.program(PROG_CPU_SAMPLE)
        .and_then(|program| program.info().ok())
        .map_or((0, 0), |info| {
            (info.run_time().as_nanos() as u64, info.run_count())
        })
}

/// Run time and run count summed over this object's loaded programs.
fn bpf_totals(ebpf: &Ebpf) -> (u64, u64) {
    ebpf.programs()
        .filter_map(|(_, program)| program.info().ok())
        .fold((0, 0), |(ns, runs), info| {
            (
                ns + info.run_time().as_nanos() as u64,
                runs + info.run_count(),
            )
        })
}
