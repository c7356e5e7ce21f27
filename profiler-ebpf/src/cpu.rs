//! CPU stack sampling: counts (process, user stack, kernel stack) triples in the kernel.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    programs::PerfEventContext,
};
use profiler_common::{Counter, StackKey};

use crate::{
    maps::{STACK_COUNTS, add_shared, bump},
    sched::charge_current,
    stacks,
};

/// 1 when stacks are wanted (`cpu` signal); set at load time. With 0 the sampler only ticks
/// the on-CPU accounting, which bounds the time a CPU hog that never switches leaves uncharged.
#[unsafe(no_mangle)]
static SAMPLE_STACKS: u32 = 1;

#[inline(always)]
pub fn sample(ctx: &PerfEventContext) {
    bump(Counter::Samples);
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: helper without preconditions.
    charge_current(pid_tgid, unsafe { bpf_ktime_get_ns() });
    if pid_tgid as u32 == 0 {
        bump(Counter::IdleSamples);
        return;
    }
    // SAFETY: plain read of a load-time constant; volatile keeps the default from being folded.
    if unsafe { core::ptr::read_volatile(&SAMPLE_STACKS) } == 0 {
        return;
    }
    let taken = stacks::take(ctx);
    if taken.no_user {
        bump(Counter::NoUserStack);
    }
    let key = StackKey {
        tgid: (pid_tgid >> 32) as u32,
        user_stack_id: taken.user,
        kernel_stack_id: taken.kernel,
    };
    if !add_shared(&STACK_COUNTS, &key, 1) {
        bump(Counter::StackCountsFull);
    }
}
