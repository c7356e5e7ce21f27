//! The `mem` signal's probes: the page-fault software perf events on every CPU.

use aya::{
    Ebpf,
    programs::perf_event::{SamplePolicy, SoftwareEvent},
};
use profiler_common::{PROG_FAULT_MAJOR, PROG_FAULT_MINOR};

use super::program;

/// A sample per fault: the program counts, nothing is sent to userspace.
pub fn attach(ebpf: &mut Ebpf, cpus: &[u32]) -> Result<(), String> {
    [
        (PROG_FAULT_MINOR, SoftwareEvent::PageFaultsMin),
        (PROG_FAULT_MAJOR, SoftwareEvent::PageFaultsMaj),
    ]
    .into_iter()
    .try_for_each(|(name, event)| {
        program::perf_event(ebpf, name, cpus, event, SamplePolicy::Period(1))
    })
    .map_err(|err| program::first_line(&err))
}
