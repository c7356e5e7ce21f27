//! The `cpu` signal's probe: a cpu-clock sampler on every CPU, taking stacks when asked.

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::ProgramArray,
    programs::{
        PerfEvent,
        perf_event::{SamplePolicy, SoftwareEvent},
    },
};
use profiler_common::{MAP_UNWIND_PROGRAMS, PROG_CPU_SAMPLE, PROGRAM_UNWIND};

use super::program;
use crate::unwind::Unwinder;

/// Samples every CPU at `frequency_hz`. It runs even with `cpu` off (without stacks): its
/// tick charges the on-CPU time of a process that never switches out.
pub fn attach(ebpf: &mut Ebpf, cpus: &[u32], frequency_hz: u64) -> Result<(), String> {
    program::perf_event(
        ebpf,
        PROG_CPU_SAMPLE,
        cpus,
        SoftwareEvent::CpuClock,
        SamplePolicy::Frequency(frequency_hz),
    )
    .map_err(|err| program::first_line(&err))
}

/// Loads the stack walker the sampler tail-calls and starts building its tables; `None`, with a
/// warning, when either fails (stacks then come from frame pointers).
pub fn start_unwinder(ebpf: &mut Ebpf) -> Option<Unwinder> {
    let started = load_walker(ebpf).and_then(|()| Unwinder::start(ebpf));
    match started {
        Ok(unwinder) => Some(unwinder),
        Err(err) => {
            eprintln!(
                "profiler: warning: stacks without frame pointers stay one frame deep: {err:#}"
            );
            None
        }
    }
}

fn load_walker(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    let program: &mut PerfEvent = ebpf
        .program_mut(PROGRAM_UNWIND)
        .with_context(|| format!("eBPF object has no program {PROGRAM_UNWIND}"))?
        .try_into()?;
    program
        .load()
        .with_context(|| format!("loading {PROGRAM_UNWIND}"))?;
    let fd = program.fd()?.try_clone()?;
    let map = ebpf
        .map_mut(MAP_UNWIND_PROGRAMS)
        .with_context(|| format!("eBPF object has no map {MAP_UNWIND_PROGRAMS}"))?;
    ProgramArray::try_from(map)?.set(0, &fd, 0)?;
    Ok(())
}
