//! CPU stack sampling: counts (process, user stack, kernel stack) triples in the kernel.

use aya_ebpf::{
    bindings::pt_regs,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task_btf, bpf_ktime_get_ns,
        bpf_probe_read_kernel, bpf_task_pt_regs,
    },
    programs::PerfEventContext,
};
use profiler_common::{Counter, MAX_SYSCALL_NR, NO_STACK, StackKey, SyscallKey};

use crate::{
    maps::{SAMPLED_SYSCALLS, STACK_COUNTS, add_shared, bump},
    sched::charge_current,
    stacks, unwind,
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
    let tgid = (pid_tgid >> 32) as u32;
    let kernel = stacks::kernel(ctx);
    // A kernel stack means the sample interrupted kernel code; a user stack means a user task,
    // whose saved user registers say whether that kernel code is a syscall.
    if unwind::has_table(tgid) {
        if kernel != NO_STACK {
            count_syscall(tgid);
        }
        unwind::start(ctx, tgid, kernel);
        // Not started: frame pointers, as for a process without a table.
        count(tgid, stacks::user(ctx).id, kernel);
        return;
    }
    let user = stacks::user(ctx);
    if user.no_user {
        bump(Counter::NoUserStack);
    } else {
        unwind::want_table(tgid);
        if kernel != NO_STACK {
            count_syscall(tgid);
        }
    }
    count(tgid, user.id, kernel);
}

/// Counts one sample of the process with these stacks.
#[inline(always)]
pub fn count(tgid: u32, user_stack_id: i32, kernel_stack_id: i32) {
    let key = StackKey {
        tgid,
        user_stack_id,
        kernel_stack_id,
    };
    if !add_shared(&STACK_COUNTS, &key, 1) {
        bump(Counter::StackCountsFull);
    }
}

/// Counts the sample against the syscall the current task is inside, if any. Its user registers
/// sit at the top of its kernel stack: `orig_ax` holds the syscall number for the whole syscall,
/// and -1 while an exception or interrupt from user mode is handled, so no per-syscall hook is
/// needed to know where a process's kernel time goes.
#[inline(always)]
fn count_syscall(tgid: u32) {
    // SAFETY: the helpers take the current task, which lives while its program runs.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const pt_regs;
    // SAFETY: a checked kernel read; a bad address is an error, not a fault.
    let Ok(orig_ax) = (unsafe { bpf_probe_read_kernel(core::ptr::addr_of!((*regs).orig_rax)) })
    else {
        return;
    };
    if orig_ax >= u64::from(MAX_SYSCALL_NR) {
        return;
    }
    let key = SyscallKey {
        tgid,
        nr: orig_ax as u32,
    };
    if !add_shared(&SAMPLED_SYSCALLS, &key, 1) {
        bump(Counter::SampledSyscallsFull);
    }
}
