//! CPU stack sampling: counts (process, user stack, kernel stack) triples in the kernel.

use aya_ebpf::{
    bindings::BPF_F_USER_STACK,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    programs::{PerfEventContext, tracing::StackIdContext as _},
};
use profiler_common::{Counter, NO_STACK, StackKey};

use crate::{
    maps::{STACK_COUNTS, STACKS, add_shared, bump},
    sched::charge_current,
};

/// 1 when stacks are wanted (`cpu` signal); set at load time. With 0 the sampler only ticks
/// the on-CPU accounting, which bounds the time a CPU hog that never switches leaves uncharged.
#[unsafe(no_mangle)]
static SAMPLE_STACKS: u32 = 1;

/// `bpf_get_stackid` answers -EFAULT when there is no stack of that kind to take: a kernel thread
/// has no user stack, a sample taken in user mode has no kernel stack. That is not a loss.
const EFAULT: i32 = 14;

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
    let kernel_stack_id = match ctx.get_stackid(&STACKS, 0) {
        Ok(id) => id as i32,
        Err(err) => {
            if err != -EFAULT {
                bump(Counter::KernelStackLost);
            }
            NO_STACK
        }
    };
    let user_stack_id = match ctx.get_stackid(&STACKS, u64::from(BPF_F_USER_STACK)) {
        Ok(id) => id as i32,
        Err(err) => {
            bump(if err == -EFAULT {
                Counter::NoUserStack
            } else {
                Counter::UserStackLost
            });
            NO_STACK
        }
    };
    let key = StackKey {
        tgid: (pid_tgid >> 32) as u32,
        user_stack_id,
        kernel_stack_id,
    };
    if !add_shared(&STACK_COUNTS, &key, 1) {
        bump(Counter::StackCountsFull);
    }
}
