//! Network bytes per process from `sock:sock_send_length` / `sock_recv_length`, which fire in
//! the sending or receiving task for every socket send and receive, loopback included. As raw
//! tracepoints where the socket's family can be read at an offset from kernel BTF (no record
//! is built, and its three fields are not copied out one by one), else as classic ones.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    programs::{RawTracePointContext, TracePointContext},
};
use profiler_common::{Counter, NetStats};

use crate::{
    maps::{NET, add_per_cpu_with, bump},
    read::field,
};

// Record offsets, overwritten at load time from the events' format files.
#[unsafe(no_mangle)]
static SOCK_FAMILY_OFFSET: u32 = 16;
#[unsafe(no_mangle)]
static SOCK_RET_OFFSET: u32 = 20;
#[unsafe(no_mangle)]
static SOCK_FLAGS_OFFSET: u32 = 24;
/// Offset of `__sk_common.skc_family` in `struct sock`, from kernel BTF at load time.
#[unsafe(no_mangle)]
static SKC_FAMILY_OFFSET: u32 = 16;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
/// A peek copies data without consuming it; the later real read counts it.
const MSG_PEEK: i32 = 2;

/// The classic tracepoint: the record's fields.
#[inline(always)]
pub fn transfer(ctx: &TracePointContext, send: bool) {
    let (Some(family), Some(ret), Some(flags)) = (
        field::<u16>(ctx, &SOCK_FAMILY_OFFSET),
        field::<i32>(ctx, &SOCK_RET_OFFSET),
        field::<i32>(ctx, &SOCK_FLAGS_OFFSET),
    ) else {
        return;
    };
    count(send, family, ret, flags);
}

/// The raw tracepoint: `TP_PROTO(struct sock *sk, int ret, int flags)`.
#[inline(always)]
pub fn transfer_raw(ctx: &RawTracePointContext, send: bool) {
    let sk: u64 = ctx.arg(0);
    let ret = ctx.arg::<u64>(1) as i32;
    let flags = ctx.arg::<u64>(2) as i32;
    if ret <= 0 {
        return;
    }
    // SAFETY: plain read of a load-time constant; volatile keeps the default from being folded.
    let offset = unsafe { core::ptr::read_volatile(&SKC_FAMILY_OFFSET) } as u64;
    // SAFETY: a checked kernel read; a bad address is an error, not a fault.
    let Ok(family) = (unsafe { bpf_probe_read_kernel((sk + offset) as *const u16) }) else {
        return;
    };
    count(send, family, ret, flags);
}

#[inline(always)]
fn count(send: bool, family: u16, ret: i32, flags: i32) {
    if ret <= 0 || (family != AF_INET && family != AF_INET6) || (!send && flags & MSG_PEEK != 0) {
        return;
    }
    let bytes = ret as u64;
    let delta = if send {
        NetStats {
            tx_bytes: bytes,
            tx_calls: 1,
            ..NetStats::default()
        }
    } else {
        NetStats {
            rx_bytes: bytes,
            rx_calls: 1,
            ..NetStats::default()
        }
    };
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let added = add_per_cpu_with(&NET, &tgid, delta, |total, add| {
        total.tx_bytes += add.tx_bytes;
        total.rx_bytes += add.rx_bytes;
        total.tx_calls += add.tx_calls;
        total.rx_calls += add.rx_calls;
    });
    if added.is_none() {
        bump(Counter::NetFull);
    }
}
