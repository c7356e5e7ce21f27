//! Syscall counts, errors and on-CPU time per (process, syscall).
//!
//! The hot path does no hash operation: while one process runs on a CPU, its syscalls are
//! counted in a small per-CPU array (inlined lookup, a scan of at most eight slots). The array
//! goes to the per-CPU hash at each context switch, when a ninth distinct syscall comes, or when
//! another process's syscall shows up; userspace adds what is still pending at the end.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, programs::RawTracePointContext};
use profiler_common::{Counter, PENDING_SYSCALLS, PendingSyscalls, SyscallKey, SyscallStats};

use crate::{
    maps::{SYSCALL_PENDING, SYSCALLS, add_per_cpu_with, bump},
    read::now,
};

/// 1 when the exit hook is attached (errors and time wanted); set at load time. The entry
/// stamp it needs costs a clock read per syscall, so plain counting skips it.
#[unsafe(no_mangle)]
static SYSCALL_EXITS: u32 = 0;

/// Largest errno a syscall returns as `-errno`.
const MAX_ERRNO: i64 = 4095;

#[inline(always)]
fn pending() -> Option<&'static mut PendingSyscalls> {
    // SAFETY: this CPU's slot; the programs using it do not preempt each other on one CPU.
    SYSCALL_PENDING.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

/// `raw_syscalls:sys_enter` (args: regs, id).
#[inline(always)]
pub fn enter(ctx: &RawTracePointContext) {
    let nr: i64 = ctx.arg(1);
    let Some(p) = pending() else { return };
    // The process on a CPU only changes at a context switch, which flushes and clears `tgid`:
    // asking the kernel who is current once per switch instead of once per syscall.
    if p.tgid == 0 {
        p.tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    }
    let slot = slot_of(p, nr as u32);
    if let Some(stats) = p.stats.get_mut(slot) {
        stats.count += 1;
    }
    // SAFETY: plain read of a load-time constant; volatile keeps the default from being folded.
    if unsafe { core::ptr::read_volatile(&SYSCALL_EXITS) } != 0 {
        p.entered_tid = bpf_get_current_pid_tgid() as u32;
        p.entered_slot = slot as u32;
        p.entered_at = now();
    }
}

/// `raw_syscalls:sys_exit` (args: regs, ret).
#[inline(always)]
pub fn exit(ctx: &RawTracePointContext) {
    let ret: i64 = ctx.arg(1);
    let tid = bpf_get_current_pid_tgid() as u32;
    let Some(p) = pending() else { return };
    if p.entered_tid != tid {
        bump(Counter::SyscallExitsUnmatched);
        return;
    }
    p.entered_tid = 0;
    let spent = now().saturating_sub(p.entered_at);
    if let Some(stats) = p.stats.get_mut(p.entered_slot as usize) {
        stats.time_ns += spent;
        if (-MAX_ERRNO..0).contains(&ret) {
            stats.errors += 1;
        }
    }
}

/// At a context switch: charge the leaving thread's syscall time so far and flush.
#[inline(always)]
pub fn on_switch(prev_tid: u32, now: u64) {
    let Some(p) = pending() else { return };
    if p.entered_tid == prev_tid && prev_tid != 0 {
        let spent = now.saturating_sub(p.entered_at);
        if let Some(stats) = p.stats.get_mut(p.entered_slot as usize) {
            stats.time_ns += spent;
        }
        p.entered_tid = 0;
    }
    flush(p);
    p.tgid = 0;
}

/// The slot counting `nr`, taking a free one (flushing first when all are taken).
#[inline(always)]
fn slot_of(p: &mut PendingSyscalls, nr: u32) -> usize {
    let used = p.used as usize;
    for i in 0..PENDING_SYSCALLS {
        if i >= used {
            break;
        }
        if p.nrs[i] == nr {
            return i;
        }
    }
    let slot = if used < PENDING_SYSCALLS {
        used
    } else {
        flush(p);
        0
    };
    if let (Some(n), Some(stats)) = (p.nrs.get_mut(slot), p.stats.get_mut(slot)) {
        *n = nr;
        *stats = SyscallStats::default();
    }
    p.used = slot as u32 + 1;
    slot
}

#[inline(always)]
fn flush(p: &mut PendingSyscalls) {
    let used = p.used as usize;
    for i in 0..PENDING_SYSCALLS {
        if i >= used {
            break;
        }
        let key = SyscallKey {
            tgid: p.tgid,
            nr: p.nrs[i],
        };
        let add = p.stats[i];
        let added = add_per_cpu_with(&SYSCALLS, &key, add, |total, add| {
            total.count += add.count;
            total.errors += add.errors;
            total.time_ns += add.time_ns;
        });
        if added.is_none() {
            bump(Counter::SyscallsFull);
        }
    }
    p.used = 0;
}
