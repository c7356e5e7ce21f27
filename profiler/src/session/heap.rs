//! The allocator's footprint in a long recording: few arenas, and freed memory handed back to
//! the kernel after each window, so the resident set of a recorder is the same after an hour as
//! after a minute.

/// Arenas the allocator may keep. Windows are named and analyzed on helper threads that come
/// and go (tokio's blocking pool lets an idle one exit after 10 s, shorter than a window): with
/// glibc's default of eight arenas a core, each new helper may start a fresh arena and the
/// recorder's peak then climbs by a window's working set (~25 MiB) each time one is added.
const ARENAS: libc::c_int = 2;

/// Caps the allocator's arenas; call before any thread starts.
pub fn limit_arenas() {
    // SAFETY: mallopt takes plain integers and only changes the allocator's tuning; called
    // before other threads exist, it races with no allocation.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Hands the freed pages of every arena back to the kernel: after a window is written its
/// report, stacks and symbols are garbage, and glibc keeps freed memory of non-main arenas
/// resident until a later allocation happens to shrink the heap's top.
pub fn trim() {
    // SAFETY: malloc_trim only releases memory the allocator holds free; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}
