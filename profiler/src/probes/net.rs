//! The `net` signal's probes: the socket send and receive tracepoints, whose records are read
//! at offsets tracefs gives.

use aya::{Ebpf, EbpfLoader};
use profiler_common::{
    GLOBAL_SOCK_FAMILY, GLOBAL_SOCK_FLAGS, GLOBAL_SOCK_RET, PROG_SOCK_RECV, PROG_SOCK_SEND,
};

use super::{program, tracefs};

/// Offsets of `family`, `ret` and `flags`, the same in both records.
pub struct Offsets {
    family: u32,
    ret: u32,
    flags: u32,
}

pub fn offsets() -> Result<Offsets, String> {
    let root = tracefs::ensure_mounted()?;
    let fields = |event| -> Result<[u32; 3], String> {
        let offset = |field| tracefs::event_field_offset(&root, "sock", event, field);
        Ok([offset("family")?, offset("ret")?, offset("flags")?])
    };
    let [family, ret, flags] = fields("sock_send_length")?;
    if fields("sock_recv_length")? != [family, ret, flags] {
        return Err("sock_send_length and sock_recv_length records differ".to_owned());
    }
    Ok(Offsets { family, ret, flags })
}

pub fn configure<'a>(loader: &mut EbpfLoader<'a>, offsets: &'a Offsets) {
    loader
        .override_global(GLOBAL_SOCK_FAMILY, &offsets.family, true)
        .override_global(GLOBAL_SOCK_RET, &offsets.ret, true)
        .override_global(GLOBAL_SOCK_FLAGS, &offsets.flags, true);
}

pub fn attach(ebpf: &mut Ebpf) -> Result<(), String> {
    program::tracepoint(ebpf, PROG_SOCK_SEND, "sock", "sock_send_length")
        .and_then(|()| program::tracepoint(ebpf, PROG_SOCK_RECV, "sock", "sock_recv_length"))
        .map_err(|err| program::first_line(&err))
}
