//! Loads the eBPF object and attaches each signal's programs (one module per signal's probes);
//! checks privileges first.

pub mod btf;
mod cpu;
mod io;
mod mem;
mod member_offset;
mod net;
pub mod privileges;
mod processes;
mod program;
mod sched;
mod syscalls;
pub mod tracefs;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use aya::{Ebpf, EbpfLoader, programs::Program};
pub use privileges::check_privileges;
use profiler_common::{
    GLOBAL_BPRM_INTERP, GLOBAL_OFFCPU_STACKS, GLOBAL_SAMPLE_STACKS, GLOBAL_SYSCALL_EXITS,
    GLOBAL_UNWIND_TABLES, MAP_UNWIND_PROCESSES, MAP_UNWIND_ROWS, MAP_UNWIND_WANTED,
    MAP_UNWOUND_STACKS, PROG_SCHED_PROCESS_EXEC, PROG_SCHED_PROCESS_EXIT, PROG_SCHED_SWITCH,
    PROG_SCHED_SWITCH_TP, PROG_SCHED_WAKEUP, PROG_SCHED_WAKEUP_NEW,
};

use crate::{
    signals::{SIGNALS, Signal, SignalState},
    unwind::Unwinder,
};

/// The compiled eBPF programs, embedded by build.rs.
#[cfg(not(fuzzing))]
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profiler"));
/// Fuzz builds (cargo-fuzz sets `--cfg fuzzing`) exercise parsers only and embed no programs;
/// loading this fails like any object the kernel refuses.
#[cfg(fuzzing)]
pub static EBPF_OBJECT: &[u8] = &[];

/// What the loader attached; maps stay readable through `ebpf` until it is dropped.
pub struct Probes {
    pub ebpf: Ebpf,
    /// Builds the unwind tables the CPU sampler walks stacks with; `None` with `cpu` off or
    /// when it could not start (stacks then come from frame pointers alone).
    pub unwinder: Option<Unwinder>,
    pub cpus: usize,
    /// What became of each signal.
    pub signals: BTreeMap<Signal, SignalState>,
}

/// How the CPU sampler walks user stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwinding {
    /// With unwind tables of this many rows, frame pointers where a table is missing.
    Tables { rows: u32 },
    /// By frame pointers alone.
    FramePointers,
}

/// Which signals to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection(u32);

impl Selection {
    /// The probes `signals` need.
    pub fn of(signals: &[Signal]) -> Self {
        Self(signals.iter().fold(0, |set, &signal| set | bit(signal)))
    }

    /// Asked for.
    fn has(self, signal: Signal) -> bool {
        self.0 & bit(signal) != 0
    }

    /// Whether `signal`'s programs attach: asked for, or ridden on by one that is. Off-CPU time
    /// rides on the scheduler tracepoints, which then measure the run queue too.
    fn attaches(self, signal: Signal) -> bool {
        self.has(signal) || (signal == Signal::Sched && self.has(Signal::Offcpu))
    }

    /// The maps only the programs this selection leaves out write, each once.
    fn unused_maps(self) -> BTreeSet<&'static str> {
        let written = |map: &&str| {
            SIGNALS
                .iter()
                .any(|d| self.attaches(d.signal) && d.maps.contains(map))
        };
        SIGNALS
            .iter()
            .flat_map(|d| d.maps.iter().copied())
            .filter(|map| !written(map))
            .collect()
    }
}

fn bit(signal: Signal) -> u32 {
    1 << signal as u32
}

/// The maps only walking with unwind tables uses.
const UNWIND_MAPS: [&str; 4] = [
    MAP_UNWIND_ROWS,
    MAP_UNWIND_PROCESSES,
    MAP_UNWIND_WANTED,
    MAP_UNWOUND_STACKS,
];

/// Entries of a map that no attached program writes. Every tick walks every bucket of every
/// hash map the collector reads (a map of 32 768 entries costs a walk of as many buckets
/// however empty it is), and a preallocated map holds all its memory in the kernel.
const UNUSED_ENTRIES: u32 = 1;

/// Loads the programs and attaches the CPU sampler on every online CPU plus the scheduler
/// probes. Scheduler wait needs classic tracepoints (tracefs); without them on-CPU time still
/// comes from the `sched_switch` raw tracepoint and the `sched` signal is reported unavailable.
pub fn attach(
    frequency_hz: u64,
    selection: Selection,
    unwinding: Unwinding,
) -> anyhow::Result<Probes> {
    with_stops_held(|| attach_now(frequency_hz, selection, unwinding))
}

/// Runs `f` with SIGINT and SIGTERM blocked on this thread. A signal arriving while the kernel
/// verifies a program fails that bpf(2) call, and aya takes a failed probe of a kernel feature
/// (its first loads) for a missing feature: a Ctrl-C 20 ms after start surfaced as "error
/// relocating ... section not found" (global data maps skipped) instead of a clean stop. Held
/// here, the signal is taken by another thread or right after `f`, and the caller's stop check
/// sees it then.
fn with_stops_held<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigemptyset/sigaddset fill a local set; pthread_sigmask only changes this thread's
    // mask, and the old mask is put back below whatever `f` returns.
    unsafe {
        let mut held: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut held);
        libc::sigaddset(&raw mut held, libc::SIGINT);
        libc::sigaddset(&raw mut held, libc::SIGTERM);
        let blocked = libc::pthread_sigmask(libc::SIG_BLOCK, &raw const held, &raw mut old) == 0;
        let result = f();
        if blocked {
            libc::pthread_sigmask(libc::SIG_SETMASK, &raw const old, std::ptr::null_mut());
        }
        result
    }
}

fn attach_now(
    frequency_hz: u64,
    selection: Selection,
    unwinding: Unwinding,
) -> anyhow::Result<Probes> {
    raise_memlock_limit();
    let offsets = TracefsOffsets::read(selection);
    let flags = Flags::of(selection, unwinding);
    let mut ebpf = load(&offsets, &flags, selection)?;
    let cpus =
        aya::util::online_cpus().map_err(|(what, err)| anyhow::anyhow!("reading {what}: {err}"))?;
    let unwinder = (flags.unwind_tables == 1).then(|| cpu::start_unwinder(&mut ebpf));
    let signals = attach_signals(&mut ebpf, offsets, selection, &flags, (&cpus, frequency_hz))?;
    attach_lifecycle(&mut ebpf);
    Ok(Probes {
        unwinder: unwinder.flatten(),
        ebpf,
        cpus: cpus.len(),
        signals,
    })
}

/// What the programs of each selected signal read from tracefs: their records' offsets, or why
/// they could not be read; `None` for a signal not selected.
struct TracefsOffsets {
    sched: Option<Result<sched::Offsets, String>>,
    io: Option<Result<io::Offsets, String>>,
    forks: Option<Result<processes::Offsets, String>>,
    net: Option<Result<net::Offsets, String>>,
    /// Where an exec's file name is, whatever the selection (exec tracking always attaches).
    exec_file: Result<u32, String>,
}

impl TracefsOffsets {
    fn read(selection: Selection) -> Self {
        Self {
            sched: selection.attaches(Signal::Sched).then(sched::offsets),
            io: selection.has(Signal::Io).then(io::offsets),
            forks: selection.has(Signal::Processes).then(processes::offsets),
            net: selection.has(Signal::Net).then(net::offsets),
            exec_file: processes::exec_file_offset(),
        }
    }

    fn configure<'a>(&'a self, loader: &mut EbpfLoader<'a>) {
        if let Some(Ok(offsets)) = &self.sched {
            sched::configure(loader, offsets);
        }
        if let Some(Ok(offsets)) = &self.io {
            io::configure(loader, offsets);
        }
        if let Some(Ok(offsets)) = &self.forks {
            processes::configure(loader, offsets);
        }
        if let Some(Ok(offsets)) = &self.net {
            net::configure(loader, offsets);
        }
        match &self.exec_file {
            Ok(offset) => {
                loader.override_global(GLOBAL_BPRM_INTERP, offset, true);
            }
            Err(why) => {
                log::info!("executables of processes gone before /proc is read stay unknown: {why}")
            }
        }
    }
}

/// Loads the object with the kernel's BTF (or the one `PROFILER_BTF` names), the records'
/// offsets and the flags set, and the maps of signals left out shrunk.
fn load(offsets: &TracefsOffsets, flags: &Flags, selection: Selection) -> anyhow::Result<Ebpf> {
    let chosen_btf = btf::KernelBtf::overridden();
    check_btf(chosen_btf.as_ref())?;
    let mut loader = EbpfLoader::new();
    if let Some(kernel) = &chosen_btf {
        loader.btf(kernel.btf.as_ref().ok());
    }
    offsets.configure(&mut loader);
    flags.configure(&mut loader);
    if flags.unwind_rows > 0 {
        loader.map_max_entries(MAP_UNWIND_ROWS, flags.unwind_rows);
    } else {
        // Walking by frame pointers: no table memory.
        for map in UNWIND_MAPS {
            loader.map_max_entries(map, UNUSED_ENTRIES);
        }
    }
    for map in selection.unused_maps() {
        loader.map_max_entries(map, UNUSED_ENTRIES);
    }
    loader
        .load(EBPF_OBJECT)
        .context("loading the eBPF programs into the kernel")
}

/// Attaches each selected signal's programs (`sampling`: the CPUs and the frequency of the
/// sampler) and says what became of each.
fn attach_signals(
    ebpf: &mut Ebpf,
    offsets: TracefsOffsets,
    selection: Selection,
    flags: &Flags,
    (cpus, frequency_hz): (&[u32], u64),
) -> anyhow::Result<BTreeMap<Signal, SignalState>> {
    let mut signals = BTreeMap::new();
    let sampler = cpu::attach(ebpf, cpus, frequency_hz);
    signals.insert(Signal::Cpu, selection.has(Signal::Cpu).then_some(sampler));
    let sched = offsets.sched.map(|o| o.and_then(|_| sched::attach(ebpf)));
    if !matches!(sched, Some(Ok(()))) {
        // On-CPU time is measured whatever the selection: every ranking needs it.
        program::raw(ebpf, PROG_SCHED_SWITCH, "sched_switch")?;
    }
    let wanted = |on: bool| if on { sched.clone() } else { None };
    signals.insert(Signal::Sched, wanted(selection.attaches(Signal::Sched)));
    signals.insert(Signal::Offcpu, wanted(selection.has(Signal::Offcpu)));
    let syscalls = selection
        .has(Signal::Syscalls)
        .then(|| syscalls::attach_entry(ebpf));
    let syscall_time =
        (flags.syscall_exits == 1).then(|| syscalls::attach_exit(ebpf, syscalls.as_ref()));
    signals.insert(Signal::Syscalls, syscalls);
    signals.insert(Signal::SyscallTime, syscall_time);
    let forks = offsets
        .forks
        .map(|o| o.and_then(|o| processes::attach(ebpf, &o)));
    signals.insert(Signal::Processes, forks);
    let net = offsets.net.map(|o| o.and_then(|o| net::attach(ebpf, &o)));
    signals.insert(Signal::Net, net);
    let mem = selection.has(Signal::Mem).then(|| mem::attach(ebpf, cpus));
    signals.insert(Signal::Mem, mem);
    let io = offsets.io.map(|o| o.and_then(|o| io::attach(ebpf, &o)));
    signals.insert(Signal::Io, io);
    Ok(signals
        .into_iter()
        .map(|(signal, outcome)| (signal, state_of(signal, outcome)))
        .collect())
}

/// Switches the programs read at load time: what each selected signal asks of the programs
/// it shares with others.
struct Flags {
    /// The exit hook measures errors and time: needs `syscalls` too.
    syscall_exits: u32,
    /// The sampler takes stacks (`cpu`), or only charges on-CPU time.
    sample_stacks: u32,
    /// The switch hook takes stacks of sleeps (`offcpu`).
    offcpu_stacks: u32,
    /// The sampler walks user stacks with unwind tables (`cpu`) ...
    unwind_tables: u32,
    /// ... of this many rows (0: none).
    unwind_rows: u32,
}

impl Flags {
    fn of(selection: Selection, unwinding: Unwinding) -> Self {
        let unwind_rows = match unwinding {
            Unwinding::Tables { rows } if selection.has(Signal::Cpu) => rows,
            _ => 0,
        };
        Self {
            syscall_exits: u32::from(
                selection.has(Signal::Syscalls) && selection.has(Signal::SyscallTime),
            ),
            sample_stacks: u32::from(selection.has(Signal::Cpu)),
            offcpu_stacks: u32::from(selection.has(Signal::Offcpu)),
            unwind_tables: u32::from(unwind_rows > 0),
            unwind_rows,
        }
    }

    fn configure<'a>(&'a self, loader: &mut EbpfLoader<'a>) {
        loader
            .override_global(GLOBAL_SYSCALL_EXITS, &self.syscall_exits, true)
            .override_global(GLOBAL_SAMPLE_STACKS, &self.sample_stacks, true)
            .override_global(GLOBAL_OFFCPU_STACKS, &self.offcpu_stacks, true)
            .override_global(GLOBAL_UNWIND_TABLES, &self.unwind_tables, true);
    }
}

/// Fails when the programs need BTF the kernel does not have; says so when they do not.
fn check_btf(chosen: Option<&btf::KernelBtf>) -> anyhow::Result<()> {
    let missing = match chosen {
        Some(kernel) => kernel.btf.as_ref().err().cloned(),
        None => btf::system_btf_missing(),
    };
    let Some(reason) = missing else {
        return Ok(());
    };
    let relocations = btf::core_relocations(EBPF_OBJECT).map_err(anyhow::Error::msg)?;
    if relocations > 0 {
        return Err(crate::error::usage(format!(
            "the eBPF programs need kernel BTF for {relocations} CO-RE relocations, and there \
             is none ({reason}); point {} at the kernel's BTF file",
            btf::BTF_ENV
        )));
    }
    eprintln!(
        "profiler: no kernel BTF ({reason}); nothing degraded: the eBPF programs have no \
         CO-RE relocations (net uses the classic socket tracepoints)"
    );
    Ok(())
}

/// Exits and execs, whatever the selection; the run goes on without either, with a warning.
fn attach_lifecycle(ebpf: &mut Ebpf) {
    // Without it long runs cannot drop exited processes' state as they go; they wait for the
    // window's end.
    if let Err(err) = program::raw(ebpf, PROG_SCHED_PROCESS_EXIT, "sched_process_exit") {
        eprintln!("profiler: warning: exit tracking unavailable: {err:#}");
    }
    // Without it a process that execs after discovery keeps its old name.
    if let Err(err) = program::raw(ebpf, PROG_SCHED_PROCESS_EXEC, "sched_process_exec") {
        eprintln!("profiler: warning: exec tracking unavailable: {err:#}");
    }
}

impl Probes {
    /// Stops the programs whose runs move counts from one map to another (context switches,
    /// wakeups, syscalls) and the samplers, so the final figures can be read; the block, classic
    /// socket and fork tracepoints, whose maps were read already, stay attached until
    /// [`Probes::release`] (raw ones, the socket hooks where BTF allowed them, go now too). Closing a classic tracepoint's perf event waits for RCU grace periods
    /// under a kernel-wide mutex (about 60 ms each on a busy VM): a dozen took most of a second.
    pub fn quiesce(&mut self) {
        const SCHED: [&str; 3] = [
            PROG_SCHED_SWITCH_TP,
            PROG_SCHED_WAKEUP,
            PROG_SCHED_WAKEUP_NEW,
        ];
        for (name, program) in self.ebpf.programs_mut() {
            let _ = match program {
                Program::PerfEvent(p) => p.unload(),
                Program::RawTracePoint(p) => p.unload(),
                Program::TracePoint(p) if SCHED.contains(&name) => p.unload(),
                _ => Ok(()),
            };
        }
    }

    /// Detaches and unloads everything on a thread of its own, so the slow tracepoint closes
    /// overlap with the caller's work; join the handle before exiting.
    pub fn release(self) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || drop(self))
    }
}

/// A selected signal's state for the report, warning once when it could not attach.
fn state_of(signal: Signal, outcome: Option<Result<(), String>>) -> SignalState {
    match outcome {
        None => SignalState::Off,
        Some(Ok(())) => SignalState::On,
        Some(Err(reason)) => {
            eprintln!("profiler: warning: {signal} signal unavailable: {reason}");
            SignalState::Unavailable(reason)
        }
    }
}

/// The kernel refuses sampling frequencies above `kernel.perf_event_max_sample_rate` (and lowers
/// that limit itself when sampling interrupts take too long); say so before attaching.
pub fn check_frequency(frequency_hz: u64) -> anyhow::Result<()> {
    const LIMIT: &str = "/proc/sys/kernel/perf_event_max_sample_rate";
    let Some(max) = std::fs::read_to_string(LIMIT)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
    else {
        return Ok(());
    };
    if frequency_hz > max {
        return Err(crate::error::usage(format!(
            "--frequency {frequency_hz} is above the kernel's limit of {max} Hz ({LIMIT}); \
             use --frequency {max} or less"
        )));
    }
    Ok(())
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; newer ones use memcg and ignore it.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer to a stack value.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        log::debug!("could not raise RLIMIT_MEMLOCK; fine on kernels with memcg accounting");
    }
}

#[cfg(test)]
mod tests {
    use profiler_common::{MAP_OFFCPU, MAP_SCHED, MAP_STACKS, MAP_SYSCALLS};

    use super::*;

    #[test]
    fn maps_shrink_only_when_no_attached_program_writes_them() {
        let unused = |signals: &[Signal]| Selection::of(signals).unused_maps();
        let cpu = unused(&[Signal::Cpu]);
        assert!(cpu.contains(&MAP_OFFCPU) && cpu.contains(&MAP_SCHED));
        assert!(!cpu.contains(&MAP_STACKS));
        // Off-CPU stacks ride on the scheduler hook: its maps and the stacks stay full size.
        let offcpu = unused(&[Signal::Offcpu]);
        assert!(!offcpu.contains(&MAP_SCHED) && !offcpu.contains(&MAP_STACKS));
        assert!(offcpu.contains(&MAP_SYSCALLS));
        assert!(unused(&Signal::all().collect::<Vec<_>>()).is_empty());
        // The stacks are written by two signals and named in both: shrunk once.
        let none = Selection::of(&[]).unused_maps();
        let named = SIGNALS
            .iter()
            .flat_map(|d| d.maps.iter())
            .filter(|m| **m == MAP_STACKS);
        assert!(named.count() > 1 && none.contains(&MAP_STACKS));
    }
}
