//! Unwind tables the kernel's stack walker reads: rows compiled from `.eh_frame` in userspace,
//! and the executable mappings of each process that has them (x86_64).

/// Array `row index -> UnwindRow`, memory-mapped by userspace, which writes each object's rows
/// into a free range before any process refers to them.
pub const MAP_UNWIND_ROWS: &str = "UNWIND_ROWS";
/// Hash `tgid -> ProcessUnwind`: the mappings of the processes that have tables.
pub const MAP_UNWIND_PROCESSES: &str = "UNWIND_PROCESSES";
/// LRU hash `tgid -> kernel time`: processes sampled without a table, or with a return address
/// outside every mapping of theirs (a library loaded later); userspace builds or refreshes theirs.
pub const MAP_UNWIND_WANTED: &str = "UNWIND_WANTED";
/// Hash `stack id -> UnwoundStack`: user stacks walked with the tables.
pub const MAP_UNWOUND_STACKS: &str = "UNWOUND_STACKS";
/// Program array holding the walker, which tail-calls itself every [`FRAMES_PER_CALL`] frames.
pub const MAP_UNWIND_PROGRAMS: &str = "UNWIND_PROGRAMS";
/// Per-CPU scratch of the walk in progress.
pub const MAP_UNWIND_STATE: &str = "UNWIND_STATE";
/// The walker program's name in the object.
pub const PROGRAM_UNWIND: &str = "unwind_user";
/// 1 when the sampler walks stacks of processes with tables; set at load time.
pub const GLOBAL_UNWIND_TABLES: &str = "UNWIND_TABLES";

/// Rows the row array holds by default: 16 bytes each, 16 MiB of kernel memory.
pub const UNWIND_ROWS_DEFAULT: u32 = 1 << 20;
/// Executable mappings of one process that can have a table; further ones are walked with
/// frame pointers.
pub const UNWIND_MAPPINGS: usize = 64;
/// Processes with tables at once.
pub const UNWIND_PROCESS_ENTRIES: u32 = 2048;
/// Processes waiting for a table (LRU: the oldest requests give way).
pub const UNWIND_WANTED_ENTRIES: u32 = 1024;
/// Frames of a walked stack, as many as a stack trace map keeps.
pub const UNWIND_MAX_FRAMES: usize = 127;
/// Frames walked per program run; the walker tail-calls itself for the next ones.
pub const FRAMES_PER_CALL: u32 = 16;
/// Distinct walked stacks kept (1 KiB each): half as many as the kernel's stack trace map, which
/// keeps the kernel stacks and those of processes without a table.
pub const UNWOUND_STACKS_ENTRIES: u32 = 16_384;
/// Ids of walked stacks start here, above every id of the kernel's stack trace map, so one
/// `i32` names a stack of either kind.
pub const UNWOUND_STACK_ID_BASE: i32 = 1 << 30;
/// Slots tried after a walked stack's hash slot is taken by another stack.
pub const UNWOUND_STACK_PROBES: u32 = 4;

/// Whether a stack id names a walked stack ([`MAP_UNWOUND_STACKS`]) rather than one of the
/// kernel's stack trace map.
pub const fn is_unwound_stack(id: i32) -> bool {
    id >= UNWOUND_STACK_ID_BASE
}

/// How a row finds the canonical frame address (the caller's stack pointer).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CfaRule {
    /// No unwind information covers the address (between two functions).
    None = 0,
    /// `rsp + offset`.
    Rsp = 1,
    /// `rbp + offset`.
    Rbp = 2,
    /// A PLT stub: `rsp + 8`, plus 8 once `rip & 15` reaches `offset` (the stub pushed).
    Plt = 3,
    /// The outermost frame: the return address is undefined (`_start`, a thread's start).
    End = 4,
    /// A rule the walker cannot evaluate (a DWARF expression, a register other than rsp/rbp).
    Unsupported = 5,
}

/// Where the caller's `rbp` is.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RbpRule {
    /// The function has not changed it.
    Same = 0,
    /// Saved at `cfa + offset`.
    AtCfa = 1,
    /// A rule the walker cannot evaluate: the walk goes on without the caller's `rbp`.
    Unsupported = 2,
}

/// One row: from `pc` up to the next row's, how to find the caller's frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnwindRow {
    /// Object address (ELF virtual address) where the row starts. 64 bits: array elements are
    /// 8-byte aligned anyway, and userspace writes them through a memory map of that layout.
    pub pc: u64,
    pub cfa_offset: i32,
    pub rbp_offset: i16,
    /// A [`CfaRule`].
    pub cfa: u8,
    /// An [`RbpRule`].
    pub rbp: u8,
}

/// One executable mapping of a process, and the row range of its object.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnwindMapping {
    pub start: u64,
    pub end: u64,
    /// Subtracted from an address in the mapping to give the object address rows are keyed by.
    pub bias: u64,
    pub first_row: u32,
    /// 0: the object has no table (walked with frame pointers).
    pub rows: u32,
}

/// The executable mappings of a process, sorted by start address.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessUnwind {
    pub len: u32,
    pub _pad: u32,
    pub mappings: [UnwindMapping; UNWIND_MAPPINGS],
}

/// A walk in progress on one CPU, handed from one tail call to the next.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UnwindState {
    pub pc: u64,
    pub sp: u64,
    pub bp: u64,
    pub tgid: u32,
    pub kernel_stack_id: i32,
    pub calls: u32,
    /// 1 once a frame was found by frame pointers (no row for its address).
    pub fell_back: u32,
    /// The frames so far, stored from here as they are once the walk ends.
    pub stack: UnwoundStack,
}

/// A walked stack, leaf first; `hash` tells it from another stack hashed to the same id. Frames
/// past `len` are left over from earlier walks.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UnwoundStack {
    pub hash: u64,
    pub len: u32,
    pub _pad: u32,
    pub frames: [u64; UNWIND_MAX_FRAMES],
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: repr(C), u64 + i32 + i16 + two u8: 16 bytes, no padding.
    unsafe impl aya::Pod for super::UnwindRow {}
    // SAFETY: repr(C), three u64 then two u32, no padding.
    unsafe impl aya::Pod for super::UnwindMapping {}
    // SAFETY: repr(C), two u32 then padding-free mappings.
    unsafe impl aya::Pod for super::ProcessUnwind {}
    // SAFETY: repr(C), u64 + two u32 then u64s, no padding.
    unsafe impl aya::Pod for super::UnwoundStack {}
}
