//! Page faults per process, from the minor and major page-fault software perf events (one
//! event per CPU, a sample per fault), which run in the faulting task.

use aya_ebpf::helpers::bpf_get_current_pid_tgid;
use profiler_common::{Counter, FaultStats};

use crate::maps::{FAULTS, add_per_cpu_with, bump};

#[inline(always)]
pub fn fault(major: bool) {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid == 0 {
        return;
    }
    let delta = FaultStats {
        minor: u64::from(!major),
        major: u64::from(major),
    };
    let added = add_per_cpu_with(&FAULTS, &tgid, delta, |total, add| {
        total.minor += add.minor;
        total.major += add.major;
    });
    if added.is_none() {
        bump(Counter::FaultsFull);
    }
}
