//! Walking user stacks with unwind tables (x86_64): for code built without frame pointers,
//! where `bpf_get_stackid` stops after the leaf.
//!
//! The sampler hands the interrupted task's user registers to `unwind_user`, which walks
//! [`FRAMES_PER_CALL`] frames per run and tail-calls itself for the next ones, then stores the
//! stack under an id of its own and counts the sample as the sampler would have.

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_NOEXIST, pt_regs},
    helpers::{
        bpf_get_current_task_btf, bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_user,
        bpf_task_pt_regs,
    },
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray},
    programs::PerfEventContext,
};
use profiler_common::{
    CfaRule, Counter, FRAMES_PER_CALL, ProcessUnwind, RbpRule, UNWIND_MAPPINGS, UNWIND_MAX_FRAMES,
    UNWIND_PROCESS_ENTRIES, UNWIND_ROWS_DEFAULT, UNWIND_WANTED_ENTRIES, UNWOUND_STACK_ID_BASE,
    UNWOUND_STACK_PROBES, UNWOUND_STACKS_ENTRIES, UnwindMapping, UnwindRow, UnwindState,
    UnwoundStack,
};

use crate::{cpu, maps::bump, stacks};

/// 1 when processes with tables are walked with them; set at load time.
#[unsafe(no_mangle)]
static UNWIND_TABLES: u32 = 0;

/// Memory-mapped: userspace writes rows straight into it.
#[map]
static UNWIND_ROWS: Array<UnwindRow> = Array::with_max_entries(UNWIND_ROWS_DEFAULT, BPF_F_MMAPABLE);

#[map]
static UNWIND_PROCESSES: HashMap<u32, ProcessUnwind> =
    HashMap::with_max_entries(UNWIND_PROCESS_ENTRIES, 0);

#[map]
static UNWIND_WANTED: LruHashMap<u32, u64> = LruHashMap::with_max_entries(UNWIND_WANTED_ENTRIES, 0);

#[map]
static UNWOUND_STACKS: HashMap<u32, UnwoundStack> =
    HashMap::with_max_entries(UNWOUND_STACKS_ENTRIES, 0);

#[map]
static UNWIND_PROGRAMS: ProgramArray = ProgramArray::with_max_entries(1, 0);

#[map]
static UNWIND_STATE: PerCpuArray<UnwindState> = PerCpuArray::with_max_entries(1, 0);

/// Binary search steps over a process's mappings: 2^7 > [`UNWIND_MAPPINGS`].
const MAPPING_STEPS: u32 = 7;
/// Binary search steps over an object's rows: objects of up to 2^24 rows.
const ROW_STEPS: u32 = 24;
/// Calls left after the first: enough for [`UNWIND_MAX_FRAMES`].
const MAX_CALLS: u32 = (UNWIND_MAX_FRAMES as u32).div_ceil(FRAMES_PER_CALL);
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// How a walk ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// At the outermost frame.
    Complete,
    /// Stack memory could not be read, or the walk ran out of tail calls.
    Failed,
    /// At [`UNWIND_MAX_FRAMES`].
    Truncated,
}

#[inline(always)]
fn enabled() -> bool {
    // SAFETY: plain read of a load-time constant; volatile keeps the default from being folded.
    unsafe { core::ptr::read_volatile(&UNWIND_TABLES) != 0 }
}

/// Whether the process's stacks are walked with its table.
#[inline(always)]
pub fn has_table(tgid: u32) -> bool {
    enabled() && UNWIND_PROCESSES.get_ptr(tgid).is_some()
}

/// A user process sampled without a table: asks userspace for one.
#[inline(always)]
pub fn want_table(tgid: u32) {
    if enabled() {
        want(tgid);
        bump(Counter::UnwindNoTable);
    }
}

/// Starts a walk for the current task, whose process has a table; the walker then counts the
/// sample. Returns only when it did not start: the caller takes the frame-pointer stack.
#[inline(always)]
pub fn start(ctx: &PerfEventContext, tgid: u32, kernel_stack_id: i32) {
    let Some(state) = UNWIND_STATE.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: a per-CPU slot only this CPU's programs use, and they do not nest.
    let state = unsafe { &mut *state };
    // SAFETY: the helpers take the current task, which lives while its program runs.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const pt_regs;
    // SAFETY: checked kernel reads of the task's saved user registers.
    let (Ok(pc), Ok(sp), Ok(bp)) = (unsafe {
        (
            bpf_probe_read_kernel(core::ptr::addr_of!((*regs).rip)),
            bpf_probe_read_kernel(core::ptr::addr_of!((*regs).rsp)),
            bpf_probe_read_kernel(core::ptr::addr_of!((*regs).rbp)),
        )
    }) else {
        return;
    };
    state.pc = pc;
    state.sp = sp;
    state.bp = bp;
    state.tgid = tgid;
    state.kernel_stack_id = kernel_stack_id;
    state.stack.len = 0;
    state.calls = 0;
    state.fell_back = 0;
    // SAFETY: the context is the perf event's own; on success this does not return.
    unsafe { UNWIND_PROGRAMS.tail_call(ctx, 0) };
}

/// One run of the walker: [`FRAMES_PER_CALL`] frames, then the next run or the end.
#[inline(always)]
pub fn walk(ctx: &PerfEventContext) {
    let Some(state) = UNWIND_STATE.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: as in `start`.
    let state = unsafe { &mut *state };
    // SAFETY: read-only use of a map value; userspace replaces whole entries.
    let Some(process) = (unsafe { UNWIND_PROCESSES.get(state.tgid) }) else {
        return finish(ctx, state, End::Failed);
    };
    for _ in 0..FRAMES_PER_CALL {
        if let Some(end) = frame(state, process) {
            return finish(ctx, state, end);
        }
    }
    state.calls += 1;
    if state.calls <= MAX_CALLS {
        // SAFETY: as in `start`.
        unsafe { UNWIND_PROGRAMS.tail_call(ctx, 0) };
    }
    finish(ctx, state, End::Failed);
}

/// Records the current pc and steps to the caller's frame; `Some` when the walk ends.
#[inline(always)]
fn frame(state: &mut UnwindState, process: &ProcessUnwind) -> Option<End> {
    let len = state.stack.len as usize;
    if len >= UNWIND_MAX_FRAMES {
        return Some(End::Truncated);
    }
    state.stack.frames[len] = state.pc;
    state.stack.len += 1;
    // A return address points after its call, which may be another function's first byte.
    let lookup = if len == 0 { state.pc } else { state.pc - 1 };
    let row = match find_mapping(process, lookup) {
        Some(mapping) if mapping.rows > 0 => find_row(mapping, lookup - mapping.bias),
        Some(_) => None,
        None => {
            // A library loaded after the table was built, or JIT code: ask for a fresh look.
            want(state.tgid);
            None
        }
    };
    let step = match row {
        Some(row) => step_row(state, &row, lookup),
        None => {
            state.fell_back = 1;
            step_frame_pointer(state)
        }
    };
    if let Err(end) = step {
        return Some(end);
    }
    if state.pc == 0 {
        return Some(End::Complete);
    }
    None
}

/// The caller's registers from a table row.
#[inline(always)]
fn step_row(state: &mut UnwindState, row: &UnwindRow, pc: u64) -> Result<(), End> {
    let offset = i64::from(row.cfa_offset) as u64;
    let cfa = match row.cfa {
        x if x == CfaRule::Rsp as u8 => state.sp.wrapping_add(offset),
        x if x == CfaRule::Rbp as u8 => state.bp.wrapping_add(offset),
        x if x == CfaRule::Plt as u8 => state.sp + 8 + if (pc & 15) >= offset { 8 } else { 0 },
        x if x == CfaRule::End as u8 => return Err(End::Complete),
        // No row here, or one it cannot evaluate: frame pointers may still lead on.
        _ => {
            state.fell_back = 1;
            return step_frame_pointer(state);
        }
    };
    let ra = read_user(cfa.wrapping_sub(8))?;
    if row.rbp == RbpRule::AtCfa as u8 {
        state.bp = read_user(cfa.wrapping_add(i64::from(row.rbp_offset) as u64))?;
    }
    state.sp = cfa;
    state.pc = ra;
    Ok(())
}

/// The caller's registers from the frame-pointer chain: code without a table (JIT, vDSO).
#[inline(always)]
fn step_frame_pointer(state: &mut UnwindState) -> Result<(), End> {
    if state.bp == 0 {
        return Err(End::Complete);
    }
    let ra = read_user(state.bp + 8)?;
    let bp = read_user(state.bp)?;
    state.sp = state.bp + 16;
    state.bp = bp;
    state.pc = ra;
    Ok(())
}

#[inline(always)]
fn read_user(address: u64) -> Result<u64, End> {
    // SAFETY: a checked user read; a bad address is an error, not a fault.
    unsafe { bpf_probe_read_user(address as *const u64) }.map_err(|_| End::Failed)
}

/// The mapping holding `pc`: binary search over the sorted mappings.
#[inline(always)]
fn find_mapping(process: &ProcessUnwind, pc: u64) -> Option<&UnwindMapping> {
    let mut lo = 0usize;
    let mut hi = process.len as usize;
    for _ in 0..MAPPING_STEPS {
        if lo >= hi {
            return None;
        }
        let mid = (lo + hi) / 2;
        let mapping = process.mappings.get(mid % UNWIND_MAPPINGS)?;
        if pc < mapping.start {
            hi = mid;
        } else if pc >= mapping.end {
            lo = mid + 1;
        } else {
            return Some(mapping);
        }
    }
    None
}

/// The last row of the mapping's object at or before `address`.
#[inline(always)]
fn find_row(mapping: &UnwindMapping, address: u64) -> Option<UnwindRow> {
    let mut lo = mapping.first_row;
    let mut hi = mapping.first_row.checked_add(mapping.rows)?;
    for _ in 0..ROW_STEPS {
        if hi - lo <= 1 {
            break;
        }
        let mid = lo + (hi - lo) / 2;
        if UNWIND_ROWS.get(mid)?.pc <= address {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let row = *UNWIND_ROWS.get(lo)?;
    (row.pc <= address).then_some(row)
}

/// Asks userspace for (another look at) the process's table; the first request stands.
#[inline(always)]
fn want(tgid: u32) {
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let _ = UNWIND_WANTED.insert(tgid, now, u64::from(BPF_NOEXIST));
}

/// Stores the walked stack and counts the sample; a walk that found nothing past the leaf, or
/// a stack that cannot be stored, gives way to the frame-pointer stack.
#[inline(always)]
fn finish(ctx: &PerfEventContext, state: &mut UnwindState, end: End) {
    match end {
        End::Complete => {}
        End::Failed => bump(Counter::UnwindFailed),
        End::Truncated => bump(Counter::UnwindTruncated),
    }
    if state.fell_back != 0 {
        bump(Counter::UnwindFellBack);
    }
    let walked = if end == End::Failed && state.stack.len <= 1 {
        None
    } else {
        let stored = store(state);
        if stored.is_none() {
            bump(Counter::UnwoundStacksFull);
        }
        stored
    };
    let user_stack_id = match walked {
        Some(id) => {
            bump(Counter::Unwound);
            id
        }
        None => stacks::user(ctx).id,
    };
    cpu::count(state.tgid, user_stack_id, state.kernel_stack_id);
}

#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "by value, the 1 KiB stack would be copied to the program's 512-byte stack"
)]
/// The id of the walked stack in [`UNWOUND_STACKS`], stored there if new: the slot its hash
/// names, or one of the next few when another stack holds that one.
#[inline(always)]
fn store(state: &mut UnwindState) -> Option<i32> {
    let stack = &mut state.stack;
    let hash = hash(stack);
    stack.hash = hash;
    let id_of =
        |slot: u32| UNWOUND_STACK_ID_BASE | ((hash as u32).wrapping_add(slot) & 0x3fff_ffff) as i32;
    // Every slot looked at first: a stack stored in a later slot (its first one was taken, then
    // freed) keeps its id rather than getting a second one.
    for slot in 0..UNWOUND_STACK_PROBES {
        let id = id_of(slot);
        // SAFETY: read-only look at a stored stack's hash.
        if unsafe { UNWOUND_STACKS.get(id as u32) }.is_some_and(|stored| stored.hash == hash) {
            return Some(id);
        }
    }
    for slot in 0..UNWOUND_STACK_PROBES {
        let id = id_of(slot);
        let key = id as u32;
        if UNWOUND_STACKS
            .insert(key, &*stack, u64::from(BPF_NOEXIST))
            .is_ok()
        {
            return Some(id);
        }
        // Another CPU filled the slot meanwhile, maybe with this very stack.
        // SAFETY: as above.
        if unsafe { UNWOUND_STACKS.get(key) }.is_some_and(|stored| stored.hash == hash) {
            return Some(id);
        }
    }
    None
}

/// FNV-1a over the frames.
#[inline(always)]
fn hash(stack: &UnwoundStack) -> u64 {
    let mut hash = FNV_OFFSET ^ u64::from(stack.len);
    for (i, frame) in stack.frames.iter().enumerate() {
        if i >= stack.len as usize {
            break;
        }
        hash = (hash ^ frame).wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Forgets a process's table: it exec'd another program, or exited.
#[inline(always)]
pub fn forget(tgid: u32) {
    let _ = UNWIND_PROCESSES.remove(tgid);
}
