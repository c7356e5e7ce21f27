//! What the profiler itself costs: its CPU time and peak memory, and the run time of its BPF
//! programs as the kernel accounts it (`BPF_ENABLE_STATS`).

use std::{os::fd::OwnedFd, time::Duration};

use aya::Ebpf;

/// What the profiler spent over a stretch of wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    /// User plus system CPU time of the profiler process.
    pub cpu_ns: u64,
    /// Time its BPF programs ran, as the kernel accounts it; 0 without the statistics.
    pub bpf_run_time_ns: u64,
    pub bpf_runs: u64,
    /// The stretch of wall time.
    pub wall: Duration,
    /// Largest resident set of the profiler process so far (VmHWM).
    pub peak_rss_bytes: u64,
}

/// Measures the profiler's cost between successive calls to [`OwnCostMeter::measure`].
pub struct OwnCostMeter {
    /// Keeps the kernel's run-time statistics on while open; None when the kernel refused.
    _stats: Option<OwnedFd>,
    last_cpu: Duration,
    last_bpf_ns: u64,
    last_bpf_runs: u64,
}

impl OwnCostMeter {
    /// Turns BPF run-time statistics on (Linux 5.8+; they cost a clock read per program run).
    pub fn start(ebpf: &Ebpf) -> Self {
        let stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
            .inspect_err(|err| log::debug!("BPF run-time statistics unavailable: {err}"))
            .ok();
        let (bpf_ns, bpf_runs) = bpf_totals(ebpf);
        Self {
            _stats: stats,
            last_cpu: own_cpu(),
            last_bpf_ns: bpf_ns,
            last_bpf_runs: bpf_runs,
        }
    }

    /// Cost since the previous call (or the start) over `elapsed` of wall time.
    pub fn measure(&mut self, ebpf: &Ebpf, elapsed: Duration) -> Spent {
        let cpu = own_cpu();
        let (bpf_ns_total, bpf_runs_total) = bpf_totals(ebpf);
        let cpu_ns = cpu.saturating_sub(self.last_cpu).as_nanos() as u64;
        let bpf_run_time_ns = bpf_ns_total.saturating_sub(self.last_bpf_ns);
        let bpf_runs = bpf_runs_total.saturating_sub(self.last_bpf_runs);
        self.last_cpu = cpu;
        self.last_bpf_ns = bpf_ns_total;
        self.last_bpf_runs = bpf_runs_total;
        Spent {
            cpu_ns,
            bpf_run_time_ns,
            bpf_runs,
            wall: elapsed,
            peak_rss_bytes: peak_rss_bytes(),
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
