//! Block IO per process from the `block` and `writeback` tracepoints.
//!
//! A bio is charged when it is queued (`block_bio_queue`), which runs in the task submitting it:
//! the process itself for direct IO, reads and fsync. Buffered writes usually reach the disk
//! later from a writeback kworker; the kworker announces each inode it writes back
//! (`writeback_single_inode_start`), and the bios it queues meanwhile are charged to the process
//! that last dirtied a page of that inode (`writeback_dirty_folio`, which runs in the dirtier).
//! Latency runs from the request's issue to the driver until its completion, matched by device
//! and first sector.

use aya_ebpf::{
    bindings::BPF_NOEXIST, helpers::bpf_get_current_pid_tgid, programs::TracePointContext,
};
use profiler_common::{Counter, IO_LATENCY_BUCKETS, IoKey, IoPending, IoStats};

use crate::{
    maps::{DIRTIER, IO, IO_PENDING, WRITEBACK_INODE, atomic_add, bump, bump_by},
    read::{field, now},
};

// Record offsets, overwritten at load time from the events' format files.
#[unsafe(no_mangle)]
static BLOCK_DEV_OFFSET: u32 = 8;
#[unsafe(no_mangle)]
static BLOCK_SECTOR_OFFSET: u32 = 16;
#[unsafe(no_mangle)]
static BLOCK_NR_SECTOR_OFFSET: u32 = 24;
#[unsafe(no_mangle)]
static BIO_RWBS_OFFSET: u32 = 28;
#[unsafe(no_mangle)]
static WRITEBACK_INO_OFFSET: u32 = 40;

const SECTOR_BYTES: u64 = 512;

#[inline(always)]
fn key(ctx: &TracePointContext) -> Option<IoKey> {
    Some(IoKey {
        dev: field::<u32>(ctx, &BLOCK_DEV_OFFSET)?,
        _pad: 0,
        sector: field::<u64>(ctx, &BLOCK_SECTOR_OFFSET)?,
    })
}

#[inline(always)]
fn current() -> (u32, u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    (pid_tgid as u32, (pid_tgid >> 32) as u32)
}

#[inline(always)]
fn stats_of(tgid: u32) -> Option<*mut IoStats> {
    if let Some(stats) = IO.get_ptr_mut(tgid) {
        return Some(stats);
    }
    let _ = IO.insert(tgid, IoStats::ZERO, u64::from(BPF_NOEXIST));
    let stats = IO.get_ptr_mut(tgid);
    if stats.is_none() {
        bump(Counter::IoFull);
    }
    stats
}

/// `rwbs` starts with `F` for a preflush, then `R`, `W`, `D` (discard), `E` (secure erase) or
/// `N` (no data): only reads and writes move data.
#[inline(always)]
fn direction(ctx: &TracePointContext) -> Option<bool> {
    let rwbs = field::<[u8; 2]>(ctx, &BIO_RWBS_OFFSET)?;
    let op = if rwbs[0] == b'F' { rwbs[1] } else { rwbs[0] };
    match op {
        b'R' => Some(false),
        b'W' => Some(true),
        _ => None,
    }
}

/// `block:block_bio_queue`: runs in the submitting task.
#[inline(always)]
pub fn bio_queue(ctx: &TracePointContext) {
    let (Some(write), Some(key), Some(sectors)) = (
        direction(ctx),
        key(ctx),
        field::<u32>(ctx, &BLOCK_NR_SECTOR_OFFSET),
    ) else {
        return;
    };
    let bytes = u64::from(sectors) * SECTOR_BYTES;
    let (tid, mut tgid) = current();
    let mut writeback = false;
    if write && let Some(ino) = WRITEBACK_INODE.get_ptr(tid) {
        // SAFETY: live map value, read once.
        let ino = unsafe { *ino };
        match DIRTIER.get_ptr(ino) {
            Some(dirtier) => {
                // SAFETY: as above.
                tgid = unsafe { *dirtier };
                writeback = true;
            }
            None => bump_by(Counter::WritebackUnattributedBytes, bytes),
        }
    }
    let Some(stats) = stats_of(tgid) else { return };
    // SAFETY: live map value; fields are only ever added to atomically.
    unsafe {
        if write {
            atomic_add(&raw mut (*stats).write_bytes, bytes);
        } else {
            atomic_add(&raw mut (*stats).read_bytes, bytes);
        }
        if writeback {
            atomic_add(&raw mut (*stats).writeback_bytes, bytes);
        }
        atomic_add(&raw mut (*stats).ops, 1);
    }
    let pending = IoPending {
        at: now(),
        tgid,
        _pad: 0,
    };
    // An LRU insert only fails on allocation trouble; the bytes are counted already, only
    // this IO's latency is lost.
    let _ = IO_PENDING.insert(key, pending, 0);
}

/// `block:block_rq_issue`: the request goes to the driver; latency starts here.
#[inline(always)]
pub fn rq_issue(ctx: &TracePointContext) {
    let Some(key) = key(ctx) else { return };
    if let Some(pending) = IO_PENDING.get_ptr_mut(key) {
        // SAFETY: live map value.
        unsafe { (*pending).at = now() };
    }
}

/// `block:block_rq_complete`: often in interrupt context, so the process comes from the entry.
#[inline(always)]
pub fn rq_complete(ctx: &TracePointContext) {
    let Some(key) = key(ctx) else { return };
    let Some(pending) = IO_PENDING.get_ptr(key) else {
        return;
    };
    // SAFETY: live map value, copied before the delete.
    let pending = unsafe { *pending };
    let _ = IO_PENDING.remove(key);
    let now = now();
    if now <= pending.at {
        return;
    }
    let latency = now - pending.at;
    let Some(stats) = stats_of(pending.tgid) else {
        return;
    };
    let bucket = (63 - latency.leading_zeros() as usize).min(IO_LATENCY_BUCKETS - 1);
    // SAFETY: as in `bio_queue`.
    unsafe {
        atomic_add(&raw mut (*stats).completions, 1);
        atomic_add(&raw mut (*stats).latency_ns, latency);
        atomic_add(&raw mut (*stats).latency_hist[bucket], 1);
    }
}

#[inline(always)]
fn inode(ctx: &TracePointContext) -> Option<u64> {
    field::<u64>(ctx, &WRITEBACK_INO_OFFSET)
}

/// `writeback:writeback_dirty_folio`: runs in the task dirtying the page.
#[inline(always)]
pub fn dirty(ctx: &TracePointContext) {
    let Some(ino) = inode(ctx) else { return };
    let (_, tgid) = current();
    if let Some(known) = DIRTIER.get_ptr(ino)
        // SAFETY: live map value.
        && unsafe { *known } == tgid
    {
        return;
    }
    let _ = DIRTIER.insert(ino, tgid, 0);
}

/// `writeback:writeback_single_inode_start` / `writeback_single_inode`: a writeback thread
/// starts or ends writing back one inode.
#[inline(always)]
pub fn writeback(ctx: &TracePointContext, start: bool) {
    let (tid, _) = current();
    if !start {
        let _ = WRITEBACK_INODE.remove(tid);
        return;
    }
    if let Some(ino) = inode(ctx) {
        let _ = WRITEBACK_INODE.insert(tid, ino, 0);
    }
}
