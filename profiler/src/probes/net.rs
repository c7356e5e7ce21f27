//! The `net` signal's probes: the socket send and receive tracepoints. Raw tracepoints when
//! kernel BTF gives the socket family's offset in `struct sock`; else the classic ones, whose
//! records are read at offsets tracefs gives.

use aya::{Ebpf, EbpfLoader};
use profiler_common::{
    GLOBAL_SKC_FAMILY, GLOBAL_SOCK_FAMILY, GLOBAL_SOCK_FLAGS, GLOBAL_SOCK_RET, PROG_SOCK_RECV,
    PROG_SOCK_RECV_RAW, PROG_SOCK_SEND, PROG_SOCK_SEND_RAW,
};

use super::{btf, member_offset, program, tracefs};

/// Where the programs find a send's or receive's socket family, length and flags.
pub enum Offsets {
    /// Raw tracepoints: the family at this offset in `struct sock`; the rest are arguments.
    Raw { family_in_sock: u32 },
    /// Classic tracepoints: `family`, `ret` and `flags` in the record, the same in both.
    Classic { family: u32, ret: u32, flags: u32 },
}

pub fn offsets() -> Result<Offsets, String> {
    match family_in_sock() {
        Ok(family_in_sock) => Ok(Offsets::Raw { family_in_sock }),
        Err(why) => {
            log::debug!("socket tracepoints as classic ones: {why}");
            classic_offsets()
        }
    }
}

/// `sock.__sk_common.skc_family`, from the kernel BTF the loader uses.
fn family_in_sock() -> Result<u32, String> {
    let chain = [("sock", "__sk_common"), ("sock_common", "skc_family")];
    member_offset::in_file(&btf::path(), &chain)
}

fn classic_offsets() -> Result<Offsets, String> {
    let root = tracefs::ensure_mounted()?;
    let fields = |event| -> Result<[u32; 3], String> {
        let offset = |field| tracefs::event_field_offset(&root, "sock", event, field);
        Ok([offset("family")?, offset("ret")?, offset("flags")?])
    };
    let [family, ret, flags] = fields("sock_send_length")?;
    if fields("sock_recv_length")? != [family, ret, flags] {
        return Err("sock_send_length and sock_recv_length records differ".to_owned());
    }
    Ok(Offsets::Classic { family, ret, flags })
}

pub fn configure<'a>(loader: &mut EbpfLoader<'a>, offsets: &'a Offsets) {
    match offsets {
        Offsets::Raw { family_in_sock } => {
            loader.override_global(GLOBAL_SKC_FAMILY, family_in_sock, true);
        }
        Offsets::Classic { family, ret, flags } => {
            loader
                .override_global(GLOBAL_SOCK_FAMILY, family, true)
                .override_global(GLOBAL_SOCK_RET, ret, true)
                .override_global(GLOBAL_SOCK_FLAGS, flags, true);
        }
    }
}

pub fn attach(ebpf: &mut Ebpf, offsets: &Offsets) -> Result<(), String> {
    let attached = match offsets {
        Offsets::Raw { .. } => program::raw(ebpf, PROG_SOCK_SEND_RAW, "sock_send_length")
            .and_then(|()| program::raw(ebpf, PROG_SOCK_RECV_RAW, "sock_recv_length")),
        Offsets::Classic { .. } => {
            program::tracepoint(ebpf, PROG_SOCK_SEND, "sock", "sock_send_length").and_then(|()| {
                program::tracepoint(ebpf, PROG_SOCK_RECV, "sock", "sock_recv_length")
            })
        }
    };
    attached.map_err(|err| program::first_line(&err))
}
