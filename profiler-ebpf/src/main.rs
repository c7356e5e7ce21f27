//! Kernel programs of the profiler; one module per signal, shared maps in `maps`.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![expect(
    internal_features,
    reason = "atomic_xadd: the BPF target has no fetch_add"
)]

mod cpu;
mod io;
mod maps;
mod mem;
mod net;
mod process;
mod read;
mod sched;
mod stacks;
mod syscalls;
mod unwind;

use aya_ebpf::{
    macros::{perf_event, raw_tracepoint, tracepoint},
    programs::{PerfEventContext, RawTracePointContext, TracePointContext},
};

/// Sampler on the software cpu-clock event, one perf event per online CPU.
#[perf_event]
pub fn cpu_sample(ctx: PerfEventContext) -> u32 {
    cpu::sample(&ctx);
    0
}

/// The user stack walker, tail-called by `cpu_sample` and by itself; never attached.
#[perf_event]
pub fn unwind_user(ctx: PerfEventContext) -> u32 {
    unwind::walk(&ctx);
    0
}

#[perf_event]
pub fn page_fault_minor(_ctx: PerfEventContext) -> u32 {
    mem::fault(false);
    0
}

#[perf_event]
pub fn page_fault_major(_ctx: PerfEventContext) -> u32 {
    mem::fault(true);
    0
}

/// `sched_switch` raw tracepoint: runs in the context of the task leaving the CPU.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sched_switch(_ctx: RawTracePointContext) -> i32 {
    sched::switch();
    0
}

/// `sched:sched_switch` classic tracepoint: on-CPU time, run-queue wait, switches and blame.
#[tracepoint(category = "sched", name = "sched_switch")]
pub fn sched_switch_tp(ctx: TracePointContext) -> u32 {
    sched::switch_tracepoint(&ctx);
    0
}

#[tracepoint(category = "sched", name = "sched_wakeup")]
pub fn sched_wakeup(ctx: TracePointContext) -> u32 {
    sched::wakeup(&ctx, false);
    0
}

#[tracepoint(category = "sched", name = "sched_wakeup_new")]
pub fn sched_wakeup_new(ctx: TracePointContext) -> u32 {
    sched::wakeup(&ctx, true);
    0
}

/// `sched_process_exec` raw tracepoint: runs in the exec'ing task, its comm already the new one.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> i32 {
    process::exec(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    process::exit();
    0
}

/// `oom:mark_victim`: the OOM killer's choice, with its resident memory.
#[tracepoint(category = "oom", name = "mark_victim")]
pub fn oom_mark_victim(ctx: TracePointContext) -> u32 {
    process::oom_victim(&ctx);
    0
}

#[tracepoint(category = "sched", name = "sched_process_fork")]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    process::fork(&ctx);
    0
}

#[tracepoint(category = "sock", name = "sock_send_length")]
pub fn sock_send_length(ctx: TracePointContext) -> u32 {
    net::transfer(&ctx, true);
    0
}

#[tracepoint(category = "sock", name = "sock_recv_length")]
pub fn sock_recv_length(ctx: TracePointContext) -> u32 {
    net::transfer(&ctx, false);
    0
}

#[raw_tracepoint(tracepoint = "sock_send_length")]
pub fn sock_send_raw(ctx: RawTracePointContext) -> i32 {
    net::transfer_raw(&ctx, true);
    0
}

#[raw_tracepoint(tracepoint = "sock_recv_length")]
pub fn sock_recv_raw(ctx: RawTracePointContext) -> i32 {
    net::transfer_raw(&ctx, false);
    0
}

#[tracepoint(category = "block", name = "block_bio_queue")]
pub fn block_bio_queue(ctx: TracePointContext) -> u32 {
    io::bio_queue(&ctx);
    0
}

#[tracepoint(category = "block", name = "block_rq_issue")]
pub fn block_rq_issue(ctx: TracePointContext) -> u32 {
    io::rq_issue(&ctx);
    0
}

#[tracepoint(category = "block", name = "block_rq_complete")]
pub fn block_rq_complete(ctx: TracePointContext) -> u32 {
    io::rq_complete(&ctx);
    0
}

/// Attached to `writeback_dirty_folio`, or `writeback_dirty_page` before Linux 5.18.
#[tracepoint(category = "writeback", name = "writeback_dirty_folio")]
pub fn writeback_dirty_folio(ctx: TracePointContext) -> u32 {
    io::dirty(&ctx);
    0
}

#[tracepoint(category = "writeback", name = "writeback_single_inode_start")]
pub fn writeback_single_inode_start(ctx: TracePointContext) -> u32 {
    io::writeback(&ctx, true);
    0
}

#[tracepoint(category = "writeback", name = "writeback_single_inode")]
pub fn writeback_single_inode(ctx: TracePointContext) -> u32 {
    io::writeback(&ctx, false);
    0
}

/// `raw_syscalls:sys_enter` as a raw tracepoint: no tracefs, no record copy.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    syscalls::enter(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    syscalls::exit(&ctx);
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
