//! What the programs read the same way: a tracepoint record's fields at the offsets the loader
//! set at load time (from the event's format file), and the clock.

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::TracePointContext};

/// The field of `ctx`'s record at the load-time offset held in `global`.
#[inline(always)]
pub fn field<T>(ctx: &TracePointContext, global: &'static u32) -> Option<T> {
    // SAFETY: a plain read of a load-time constant; volatile keeps the compiler from folding
    // in the default.
    let offset = unsafe { core::ptr::read_volatile(global) } as usize;
    // SAFETY: reads the record through bpf_probe_read_kernel at the format's offset.
    unsafe { ctx.read_at::<T>(offset) }.ok()
}

#[inline(always)]
pub fn now() -> u64 {
    // SAFETY: helper without preconditions.
    unsafe { bpf_ktime_get_ns() }
}
