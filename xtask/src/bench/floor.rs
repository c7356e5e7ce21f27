//! The cheapest syscall hook there is: a raw_tracepoint program on `sys_enter` that returns at
//! once. The syscall bench times the storm under it, so the table shows how much of any syscall
//! hook's cost is the kernel's, the floor no profiler can go below.

use std::{
    ffi::CStr,
    io,
    mem::size_of,
    os::fd::{FromRawFd as _, OwnedFd},
};

use anyhow::{Context as _, Result};

/// `bpf(2)` commands and the program type, from `include/uapi/linux/bpf.h`.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;

/// `r0 = 0; exit`: `BPF_ALU64 | BPF_MOV | BPF_K` into r0, then `BPF_JMP | BPF_EXIT`.
const EMPTY_PROGRAM: [u64; 2] = [0xb7, 0x95];

/// The leading fields of `union bpf_attr` for `BPF_PROG_LOAD`; the kernel zero-fills the rest.
#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// `union bpf_attr` for `BPF_RAW_TRACEPOINT_OPEN`.
#[repr(C)]
struct RawTracepointOpen {
    name: u64,
    prog_fd: u32,
    _pad: u32,
}

/// The empty program attached to `sys_enter`; dropping it detaches and unloads it.
#[derive(Debug)]
pub struct EmptySysEnter {
    _link: OwnedFd,
    _program: OwnedFd,
}

impl EmptySysEnter {
    pub fn attach() -> Result<Self> {
        let license: &CStr = c"GPL";
        let load = ProgLoad {
            prog_type: BPF_PROG_TYPE_RAW_TRACEPOINT,
            insn_cnt: EMPTY_PROGRAM.len() as u32,
            insns: EMPTY_PROGRAM.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 0,
            log_size: 0,
            log_buf: 0,
            kern_version: 0,
            prog_flags: 0,
        };
        // SAFETY: `load` is a valid bpf_attr prefix of the size passed; the pointers in it (the
        // instructions, the license) outlive the call.
        let program = unsafe { bpf(BPF_PROG_LOAD, &load) }
            .context("could not load an empty raw_tracepoint program")?;
        let tracepoint: &CStr = c"sys_enter";
        let open = RawTracepointOpen {
            name: tracepoint.as_ptr() as u64,
            prog_fd: u32::try_from(std::os::fd::AsRawFd::as_raw_fd(&program))
                .context("fd out of range")?,
            _pad: 0,
        };
        // SAFETY: as above; the name outlives the call and the program fd is open.
        let link = unsafe { bpf(BPF_RAW_TRACEPOINT_OPEN, &open) }
            .context("could not attach the empty program to sys_enter")?;
        Ok(Self {
            _link: link,
            _program: program,
        })
    }
}

/// Runs `bpf(cmd, attr)`, which returns a new file descriptor on success.
///
/// # Safety
///
/// `attr` must be the `bpf_attr` layout `cmd` expects, and every pointer in it valid for the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &T) -> io::Result<OwnedFd> {
    // SAFETY: the caller vouches for `attr`; the size passed is its own.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_ref(attr), size_of::<T>()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
