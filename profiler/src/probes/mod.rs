//! Loads the eBPF object and attaches each signal's programs; checks privileges first.

mod privileges;

use anyhow::Context as _;
use aya::{
    Ebpf,
    programs::{
        PerfEvent, RawTracePoint,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};
pub use privileges::check_privileges;
use profiler_common::{PROG_CPU_SAMPLE, PROG_SCHED_SWITCH};

/// The compiled eBPF programs, embedded by build.rs.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profiler"));

/// What the loader attached; maps stay readable through `ebpf` until it is dropped.
pub struct Probes {
    pub ebpf: Ebpf,
    pub cpus: usize,
}

pub fn attach_cpu(frequency_hz: u64) -> anyhow::Result<Probes> {
    raise_memlock_limit();
    let mut ebpf = Ebpf::load(EBPF_OBJECT).context("loading the eBPF programs into the kernel")?;

    let cpus =
        aya::util::online_cpus().map_err(|(what, err)| anyhow::anyhow!("reading {what}: {err}"))?;
    let sampler: &mut PerfEvent = program(&mut ebpf, PROG_CPU_SAMPLE)?.try_into()?;
    sampler
        .load()
        .context("verifier rejected the CPU sampler")?;
    for &cpu in &cpus {
        sampler
            .attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::AllProcessesOneCpu { cpu },
                SamplePolicy::Frequency(frequency_hz),
                false,
            )
            .with_context(|| format!("opening the cpu-clock perf event on CPU {cpu}"))?;
    }

    let switch: &mut RawTracePoint = program(&mut ebpf, PROG_SCHED_SWITCH)?.try_into()?;
    switch
        .load()
        .context("verifier rejected the sched_switch program")?;
    switch
        .attach("sched_switch")
        .context("attaching raw tracepoint sched_switch")?;

    Ok(Probes {
        ebpf,
        cpus: cpus.len(),
    })
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

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut aya::programs::Program> {
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
