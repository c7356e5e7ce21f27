//! Every line a process must cross to be named a suspect, and those that call a host idle or
//! stalled: one place to read or move them. docs/verdict.md says why each is where it is.

// CPU.
/// A process is a CPU suspect from a fifth of a core on, or a tenth of the host, whichever is
/// smaller: below that it is noise on any host worth diagnosing.
pub const CPU_MIN_CORES: f64 = 0.2;
pub const CPU_MIN_HOST_PERCENT: f64 = 10.0;
/// Using that much is no harm on its own. It is when processes of other applications waited
/// for a CPU it held a hundredth of the run or more (a lone busy process on a host with CPUs to
/// spare makes kernel threads wait a few hundredths of that: they find another CPU),
pub const CPU_MIN_CAUSED_WAIT_SHARE: f64 = 0.01;
/// or when the host's CPUs were this busy, none to spare for anything that woke up, and it
/// held a quarter of them or more (a small share of a saturated host is not its doing);
pub const CPU_SATURATED_PERCENT: f64 = 90.0;
pub const CPU_SATURATING_HOST_PERCENT: f64 = 25.0;
// Or, without the sched signal to say who waited behind whom, when tasks stalled for a CPU
// `STALL_PERCENT` of the run while it held that quarter.

// Scheduler.
/// A process is a sched suspect when processes of other applications waited behind it for a
/// tenth of the run or more,
pub const SCHED_MIN_DELAY_SHARE: f64 = 0.1;
/// or for a twentieth of the run or more while that waiting was as long as they ran or longer:
/// they went at half speed or slower. A latency-sensitive service is mostly asleep, so the
/// time it waits is small next to the run but large next to its own work. Below a twentieth,
/// kernel threads that run microseconds make any busy process look like a slower-down.
pub const SCHED_MIN_SLOWED_DELAY_SHARE: f64 = 0.05;
pub const SCHED_MIN_SLOWDOWN: f64 = 1.0;

// Syscalls.
/// A process is a syscalls suspect from this rate on: far above what idle daemons make, well
/// below a storm (a tight loop makes millions per second).
pub const SYSCALLS_MIN_PER_SECOND: f64 = 10_000.0;
/// And only when they cost this much CPU inside them (from the samples that fell there): a
/// rate is no harm by itself. 100 000 `getppid` a second cost 0.012 cores here, a tight loop of
/// them a whole core; a tenth of a core is a cost anyone can measure and feel.
pub const SYSCALLS_MIN_COST_CORES: f64 = 0.1;
/// Without the exact hook, a process is a syscalls suspect from this much CPU inside syscalls
/// on (in cores, from samples): a storm takes most of a core, a busy server a fraction.
pub const SYSCALLS_SAMPLED_MIN_CORES: f64 = 0.25;
/// Fewer samples than this inside syscalls say too little (±30 %) to accuse anyone.
pub const SYSCALLS_SAMPLED_MIN_SAMPLES: u64 = 10;

// Spawn.
/// From this many new processes per second a parent is a suspect: far above a shell or a
/// service manager at rest, and what a fork storm or a crash-looping supervisor does.
pub const SPAWN_MIN_PER_SECOND: f64 = 5.0;
/// And only when the parent and its children used this much CPU together: a shell loop
/// starting `sleep` ten times a second costs 0.02 cores with its children and harms nobody; a
/// storm worth naming costs five times that or more.
pub const SPAWN_MIN_FAMILY_CORES: f64 = 0.1;

// Network.
/// From 10 MB/s a process's socket traffic is a suspect,
pub const NET_MIN_BYTES_PER_SECOND: f64 = 10e6;
/// when it costs a tenth of a core on CPU inside its syscalls (sends and receives run there):
/// 80 MB/s each way over loopback, paced, cost 0.05 cores here and harm nobody.
pub const NET_MIN_COST_CORES: f64 = 0.1;

// Block IO.
/// A process is an io suspect for a share of the IO of a disk that was busy, or while tasks
/// stalled for IO: never for a rate alone (a disk that writes 1.4 GB/s is 1 % busy at 16 MB/s).
/// Below this rate it moved too little to have kept any disk busy, whatever its share.
pub const IO_MIN_BYTES_PER_SECOND: f64 = 1e6;
/// Below this share of all block IO a process is no suspect even on a saturated disk: the disk
/// is somebody else's doing.
pub const IO_MIN_SHARE: f64 = 0.2;
/// The harm: the busiest disk had IO in flight this share of the run or more (iostat's %util),
/// or tasks stalled for IO [`STALL_PERCENT`] of it (PSI).
pub const IO_BUSY_DISK_SHARE: f64 = 0.5;

// Memory.
/// Growth in the run from which a process is a suspect: a gibibyte, or a tenth of the memory
/// on hosts under 10 GiB. A service warming its cache grows by megabytes; a hog or a leak in a
/// run of seconds by gibibytes.
pub const MEM_GROWTH_MIN_BYTES: f64 = (1u64 << 30) as f64;
pub const MEM_GROWTH_MIN_SHARE: f64 = 0.1;
/// A process holding, or having peaked at, a fifth of the memory is a suspect when memory is
/// contended ([`STALL_PERCENT`] for memory), or when the kernel keeps no PSI to tell.
pub const MEM_HELD_MIN_SHARE: f64 = 0.2;
/// A process still growing at the end of the run, by this much or more, whose rate would fill
/// the memory still available within [`MEM_LEAK_HORIZON_S`], is a suspect before it grows by
/// the line above: a leak of 64 MiB a second grows by half a gibibyte in a run of eight
/// seconds, and fills 21 GiB in under six minutes. Below the floor a run of seconds cannot
/// tell a leak from a cache warming up.
pub const MEM_LEAK_MIN_BYTES: f64 = (256u64 << 20) as f64;
/// A quarter of an hour: less than it takes most operators to notice, page someone and act.
pub const MEM_LEAK_HORIZON_S: f64 = 900.0;
/// Major faults read pages from disk or swap: from 100 a second they cost the disk and the
/// process's latency.
pub const MEM_MAJOR_MIN_PER_SECOND: f64 = 100.0;

// Applications.
/// Several processes of one application that cross a line together are named as the
/// application, unless one of them did this share of it or more: then that process is the
/// rogue, and naming it is the more precise answer.
pub const APP_MAX_MEMBER_SHARE: f64 = 0.8;

// The host.
/// A stall share (PSI `some`, percent of the run) worth naming: below it, no task waited long
/// enough for anyone to notice.
pub const STALL_PERCENT: f64 = 5.0;
/// Below this share of its CPUs busy, with no stall over [`STALL_PERCENT`], a host is idle.
pub const IDLE_BUSY_PERCENT: f64 = 25.0;
