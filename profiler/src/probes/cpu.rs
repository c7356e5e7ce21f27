//! The `cpu` signal's probe: a cpu-clock sampler on every CPU, taking stacks when asked.

use aya::{
    Ebpf,
    programs::perf_event::{SamplePolicy, SoftwareEvent},
};
use profiler_common::PROG_CPU_SAMPLE;

use super::program;

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
