//! Loads the eBPF object and attaches each signal's programs; checks privileges first.

pub mod btf;
pub mod privileges;
pub mod tracefs;

use std::collections::BTreeMap;

use anyhow::Context as _;
use aya::{
    Ebpf, EbpfLoader,
    programs::{
        PerfEvent, Program, RawTracePoint, TracePoint,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};
pub use privileges::check_privileges;
use profiler_common::{
    GLOBAL_BIO_RWBS, GLOBAL_BLOCK_DEV, GLOBAL_BLOCK_NR_SECTOR, GLOBAL_BLOCK_SECTOR,
    GLOBAL_FORK_CHILD_PID, GLOBAL_OFFCPU_STACKS, GLOBAL_SAMPLE_STACKS, GLOBAL_SOCK_FAMILY,
    GLOBAL_SOCK_FLAGS, GLOBAL_SOCK_RET, GLOBAL_SWITCH_NEXT_PID, GLOBAL_SWITCH_PREV_STATE,
    GLOBAL_SYSCALL_EXITS, GLOBAL_WAKEUP_PID, GLOBAL_WRITEBACK_INO, PROG_BIO_QUEUE, PROG_CPU_SAMPLE,
    PROG_DIRTY_FOLIO, PROG_FAULT_MAJOR, PROG_FAULT_MINOR, PROG_RQ_COMPLETE, PROG_RQ_ISSUE,
    PROG_SCHED_PROCESS_EXEC, PROG_SCHED_PROCESS_EXIT, PROG_SCHED_PROCESS_FORK, PROG_SCHED_SWITCH,
    PROG_SCHED_SWITCH_TP, PROG_SCHED_WAKEUP, PROG_SCHED_WAKEUP_NEW, PROG_SOCK_RECV, PROG_SOCK_SEND,
    PROG_SYS_ENTER, PROG_SYS_EXIT, PROG_WRITEBACK_END, PROG_WRITEBACK_START,
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
    pub cpus: usize,
    /// Signal name -> "on" or "unavailable: <reason>", as the report shows it.
    pub signals: BTreeMap<String, String>,
}

/// Which signals to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    pub cpu: bool,
    pub sched: bool,
    /// Blocked time with stacks: rides on the scheduler tracepoints.
    pub offcpu: bool,
    pub syscalls: bool,
    /// Errors and time: needs `syscalls` too.
    pub syscall_time: bool,
    /// Forks: who started whom.
    pub processes: bool,
    /// Bytes through inet sockets.
    pub net: bool,
    /// Page faults (a perf event sample per fault).
    pub mem: bool,
    /// Block IO and writeback.
    pub io: bool,
}

impl Selection {
    pub const ALL: Self = Self {
        cpu: true,
        sched: true,
        offcpu: true,
        syscalls: true,
        syscall_time: true,
        processes: true,
        net: true,
        mem: true,
        io: true,
    };
}

/// Field offsets of the block and writeback tracepoints, read from tracefs.
struct IoOffsets {
    dev: u32,
    sector: u32,
    nr_sector: u32,
    rwbs: u32,
    ino: u32,
    /// `writeback_dirty_folio`, or `writeback_dirty_page` before Linux 5.18.
    dirty_event: &'static str,
}

fn io_offsets() -> Result<IoOffsets, String> {
    let root = tracefs::ensure_mounted()?;
    let offset =
        |category, event, field| tracefs::event_field_offset(&root, category, event, field);
    let dev = offset("block", "block_bio_queue", "dev")?;
    let sector = offset("block", "block_bio_queue", "sector")?;
    for event in ["block_rq_issue", "block_rq_complete"] {
        if offset("block", event, "dev")? != dev || offset("block", event, "sector")? != sector {
            return Err(format!("block_bio_queue and {event} records differ"));
        }
    }
    let dirty_event = if root.join("events/writeback/writeback_dirty_folio").is_dir() {
        "writeback_dirty_folio"
    } else {
        "writeback_dirty_page"
    };
    let ino = offset("writeback", dirty_event, "ino")?;
    for event in ["writeback_single_inode_start", "writeback_single_inode"] {
        if offset("writeback", event, "ino")? != ino {
            return Err(format!("{dirty_event} and {event} records differ"));
        }
    }
    Ok(IoOffsets {
        dev,
        sector,
        nr_sector: offset("block", "block_bio_queue", "nr_sector")?,
        rwbs: offset("block", "block_bio_queue", "rwbs")?,
        ino,
        dirty_event,
    })
}

/// Field offsets of the scheduler tracepoints, read from tracefs.
struct SchedOffsets {
    prev_state: u32,
    next_pid: u32,
    wakeup_pid: u32,
}

fn sched_offsets() -> Result<SchedOffsets, String> {
    let root = tracefs::ensure_mounted()?;
    let offset = |event, field| tracefs::event_field_offset(&root, "sched", event, field);
    let wakeup_pid = offset("sched_wakeup", "pid")?;
    if offset("sched_wakeup_new", "pid")? != wakeup_pid {
        return Err("sched_wakeup and sched_wakeup_new records differ".to_owned());
    }
    Ok(SchedOffsets {
        prev_state: offset("sched_switch", "prev_state")?,
        next_pid: offset("sched_switch", "next_pid")?,
        wakeup_pid,
    })
}

/// Loads the programs and attaches the CPU sampler on every online CPU plus the scheduler
/// probes. Scheduler wait needs classic tracepoints (tracefs); without them on-CPU time still
/// comes from the `sched_switch` raw tracepoint and the `sched` signal is reported unavailable.
pub fn attach(frequency_hz: u64, selection: Selection) -> anyhow::Result<Probes> {
    with_stops_held(|| attach_now(frequency_hz, selection))
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

fn attach_now(frequency_hz: u64, selection: Selection) -> anyhow::Result<Probes> {
    raise_memlock_limit();
    let offsets = (selection.sched || selection.offcpu).then(sched_offsets);
    let io_offsets = selection.io.then(io_offsets);
    let fork_offset = selection.processes.then(|| {
        let root = tracefs::ensure_mounted()?;
        tracefs::event_field_offset(&root, "sched", "sched_process_fork", "child_pid")
    });
    let net_offsets = selection.net.then(|| {
        let root = tracefs::ensure_mounted()?;
        let offset = |field| tracefs::event_field_offset(&root, "sock", "sock_send_length", field);
        let offsets = [offset("family")?, offset("ret")?, offset("flags")?];
        let recv = |field| tracefs::event_field_offset(&root, "sock", "sock_recv_length", field);
        if [recv("family")?, recv("ret")?, recv("flags")?] != offsets {
            return Err("sock_send_length and sock_recv_length records differ".to_owned());
        }
        Ok(offsets)
    });
    // Read before the loader, which borrows it.
    let chosen_btf = btf::KernelBtf::overridden();
    let missing_btf = match &chosen_btf {
        Some(kernel) => kernel.btf.as_ref().err().cloned(),
        None => btf::system_btf_missing(),
    };
    if let Some(reason) = missing_btf {
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
             CO-RE relocations"
        );
    }
    let mut loader = EbpfLoader::new();
    if let Some(kernel) = &chosen_btf {
        loader.btf(kernel.btf.as_ref().ok());
    }
    if let Some(Ok([family, ret, flags])) = &net_offsets {
        loader
            .override_global(GLOBAL_SOCK_FAMILY, family, true)
            .override_global(GLOBAL_SOCK_RET, ret, true)
            .override_global(GLOBAL_SOCK_FLAGS, flags, true);
    }
    if let Some(Ok(offset)) = &fork_offset {
        loader.override_global(GLOBAL_FORK_CHILD_PID, offset, true);
    }
    let syscall_exits = u32::from(selection.syscalls && selection.syscall_time);
    let sample_stacks = u32::from(selection.cpu);
    let offcpu_stacks = u32::from(selection.offcpu);
    loader.override_global(GLOBAL_OFFCPU_STACKS, &offcpu_stacks, true);
    if let Some(Ok(io)) = &io_offsets {
        loader
            .override_global(GLOBAL_BLOCK_DEV, &io.dev, true)
            .override_global(GLOBAL_BLOCK_SECTOR, &io.sector, true)
            .override_global(GLOBAL_BLOCK_NR_SECTOR, &io.nr_sector, true)
            .override_global(GLOBAL_BIO_RWBS, &io.rwbs, true)
            .override_global(GLOBAL_WRITEBACK_INO, &io.ino, true);
    }
    loader
        .override_global(GLOBAL_SYSCALL_EXITS, &syscall_exits, true)
        .override_global(GLOBAL_SAMPLE_STACKS, &sample_stacks, true);
    if let Some(Ok(offsets)) = &offsets {
        loader
            .override_global(GLOBAL_SWITCH_PREV_STATE, &offsets.prev_state, true)
            .override_global(GLOBAL_SWITCH_NEXT_PID, &offsets.next_pid, true)
            .override_global(GLOBAL_WAKEUP_PID, &offsets.wakeup_pid, true);
    }
    let mut ebpf = loader
        .load(EBPF_OBJECT)
        .context("loading the eBPF programs into the kernel")?;

    let cpus =
        aya::util::online_cpus().map_err(|(what, err)| anyhow::anyhow!("reading {what}: {err}"))?;
    let mut signals = BTreeMap::new();
    // The sampler runs even with `cpu` off (without stacks): its tick charges the on-CPU time
    // of a process that never switches out.
    let sampler = attach_sampler(&mut ebpf, &cpus, frequency_hz).map_err(|err| first_line(&err));
    signals.insert(
        "cpu".to_owned(),
        state_of("cpu", selection.cpu.then_some(sampler)),
    );

    let sched = offsets.map(|offsets| {
        offsets.and_then(|_| attach_sched(&mut ebpf).map_err(|err| first_line(&err)))
    });
    if !matches!(sched, Some(Ok(()))) {
        // On-CPU time is measured whatever the selection: every ranking needs it.
        attach_raw(&mut ebpf, PROG_SCHED_SWITCH, "sched_switch")?;
    }
    let wanted = |on: bool| if on { sched.clone() } else { None };
    signals.insert(
        "sched".to_owned(),
        state_of("sched", wanted(selection.sched)),
    );
    signals.insert(
        "offcpu".to_owned(),
        state_of("offcpu", wanted(selection.offcpu)),
    );

    let syscalls = selection.syscalls.then(|| {
        attach_raw(&mut ebpf, PROG_SYS_ENTER, "sys_enter").map_err(|err| first_line(&err))
    });
    // Exits without their entries would all be unmatched: the exit hook needs the entry one.
    let syscall_time = (syscall_exits == 1).then(|| match &syscalls {
        Some(Ok(())) => {
            attach_raw(&mut ebpf, PROG_SYS_EXIT, "sys_exit").map_err(|err| first_line(&err))
        }
        _ => Err("needs the syscalls signal".to_owned()),
    });
    signals.insert("syscalls".to_owned(), state_of("syscalls", syscalls));
    signals.insert(
        "syscall-time".to_owned(),
        state_of("syscall-time", syscall_time),
    );

    let processes = fork_offset.map(|offset| {
        offset.and_then(|_| {
            attach_tracepoint(
                &mut ebpf,
                PROG_SCHED_PROCESS_FORK,
                "sched",
                "sched_process_fork",
            )
            .map_err(|err| first_line(&err))
        })
    });
    signals.insert("processes".to_owned(), state_of("processes", processes));

    let net = net_offsets.map(|offsets| {
        offsets.and_then(|_| {
            attach_tracepoint(&mut ebpf, PROG_SOCK_SEND, "sock", "sock_send_length")
                .and_then(|()| {
                    attach_tracepoint(&mut ebpf, PROG_SOCK_RECV, "sock", "sock_recv_length")
                })
                .map_err(|err| first_line(&err))
        })
    });
    signals.insert("net".to_owned(), state_of("net", net));

    let mem = selection.mem.then(|| {
        // A sample per fault: the program counts, nothing is sent to userspace.
        [
            (PROG_FAULT_MINOR, SoftwareEvent::PageFaultsMin),
            (PROG_FAULT_MAJOR, SoftwareEvent::PageFaultsMaj),
        ]
        .into_iter()
        .try_for_each(|(name, event)| {
            attach_perf_event(&mut ebpf, name, &cpus, event, SamplePolicy::Period(1))
        })
        .map_err(|err| first_line(&err))
    });
    signals.insert("mem".to_owned(), state_of("mem", mem));

    let io = io_offsets.map(|offsets| {
        offsets.and_then(|offsets| attach_io(&mut ebpf, &offsets).map_err(|err| first_line(&err)))
    });
    signals.insert("io".to_owned(), state_of("io", io));

    // Without it a process that execs after discovery keeps its old name; the run goes on.
    // Lets long runs drop exited processes' state as they go; without it they wait for the
    // window's end.
    if let Err(err) = attach_raw(&mut ebpf, PROG_SCHED_PROCESS_EXIT, "sched_process_exit") {
        eprintln!("profiler: warning: exit tracking unavailable: {err:#}");
    }
    if let Err(err) = attach_raw(&mut ebpf, PROG_SCHED_PROCESS_EXEC, "sched_process_exec") {
        eprintln!("profiler: warning: exec tracking unavailable: {err:#}");
    }

    Ok(Probes {
        ebpf,
        cpus: cpus.len(),
        signals,
    })
}

fn attach_sampler(ebpf: &mut Ebpf, cpus: &[u32], frequency_hz: u64) -> anyhow::Result<()> {
    attach_perf_event(
        ebpf,
        PROG_CPU_SAMPLE,
        cpus,
        SoftwareEvent::CpuClock,
        SamplePolicy::Frequency(frequency_hz),
    )
}

/// A program on one software perf event per CPU, all processes.
fn attach_perf_event(
    ebpf: &mut Ebpf,
    name: &str,
    cpus: &[u32],
    event: SoftwareEvent,
    policy: SamplePolicy,
) -> anyhow::Result<()> {
    let prog: &mut PerfEvent = program(ebpf, name)?.try_into()?;
    prog.load()
        .with_context(|| format!("verifier rejected {name}"))?;
    for &cpu in cpus {
        prog.attach(
            PerfEventConfig::Software(event),
            PerfEventScope::AllProcessesOneCpu { cpu },
            policy,
            false,
        )
        .with_context(|| format!("opening the {event:?} perf event on CPU {cpu}"))?;
    }
    Ok(())
}

/// Verifier logs run to many lines; the report and the warning keep the first.
fn first_line(err: &anyhow::Error) -> String {
    format!("{err:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

impl Probes {
    /// Stops the programs whose runs move counts from one map to another (context switches,
    /// wakeups, syscalls) and the samplers, so the final figures can be read; the block, socket
    /// and fork tracepoints, whose maps were read already, stay attached until
    /// [`Probes::release`]. Closing a classic tracepoint's perf event waits for RCU grace periods
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

fn attach_raw(ebpf: &mut Ebpf, name: &str, event: &str) -> anyhow::Result<()> {
    let prog: &mut RawTracePoint = program(ebpf, name)?.try_into()?;
    prog.load()
        .with_context(|| format!("verifier rejected {name}"))?;
    prog.attach(event)
        .with_context(|| format!("attaching raw tracepoint {event}"))?;
    Ok(())
}

/// Wakeups first: a switch seen before its wakeup program is attached only misses one wait.
fn attach_sched(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    for (name, event) in [
        (PROG_SCHED_WAKEUP, "sched_wakeup"),
        (PROG_SCHED_WAKEUP_NEW, "sched_wakeup_new"),
        (PROG_SCHED_SWITCH_TP, "sched_switch"),
    ] {
        attach_tracepoint(ebpf, name, "sched", event)?;
    }
    Ok(())
}

/// Writeback attribution first, so bios queued by a writeback thread find their dirtier.
fn attach_io(ebpf: &mut Ebpf, offsets: &IoOffsets) -> anyhow::Result<()> {
    for (name, category, event) in [
        (PROG_DIRTY_FOLIO, "writeback", offsets.dirty_event),
        (
            PROG_WRITEBACK_START,
            "writeback",
            "writeback_single_inode_start",
        ),
        (PROG_WRITEBACK_END, "writeback", "writeback_single_inode"),
        (PROG_RQ_COMPLETE, "block", "block_rq_complete"),
        (PROG_RQ_ISSUE, "block", "block_rq_issue"),
        (PROG_BIO_QUEUE, "block", "block_bio_queue"),
    ] {
        attach_tracepoint(ebpf, name, category, event)?;
    }
    Ok(())
}

fn attach_tracepoint(
    ebpf: &mut Ebpf,
    name: &str,
    category: &str,
    event: &str,
) -> anyhow::Result<()> {
    let prog: &mut TracePoint = program(ebpf, name)?.try_into()?;
    prog.load()
        .with_context(|| format!("verifier rejected {name}"))?;
    prog.attach(category, event)
        .with_context(|| format!("attaching tracepoint {category}:{event}"))?;
    Ok(())
}

/// A selected signal's state for the report, warning once when it could not attach.
fn state_of(name: &str, outcome: Option<Result<(), String>>) -> String {
    match outcome {
        None => "off".to_owned(),
        Some(Ok(())) => "on".to_owned(),
        Some(Err(reason)) => {
            eprintln!("profiler: warning: {name} signal unavailable: {reason}");
            format!("unavailable: {reason}")
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

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut Program> {
    ebpf.program_mut(name)
        .with_context(|| format!("eBPF object has no program {name}"))
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
