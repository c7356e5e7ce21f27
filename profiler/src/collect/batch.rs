//! Reading a whole BPF hash map in a few `BPF_MAP_LOOKUP_BATCH` calls instead of two syscalls
//! per entry (`get_next_key`, then `lookup`): `record` reads every map every second, and each
//! of its own syscalls also runs the syscall probes. Kernels before 5.6 lack the command; the
//! caller then falls back to iterating.

use std::{
    io,
    mem::{MaybeUninit, size_of},
    os::fd::{AsFd as _, AsRawFd as _},
};

use aya::{Pod, maps::MapData};

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// Entries asked for per call.
const CHUNK: usize = 4096;

/// `union bpf_attr`'s `batch` member (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// One `BPF_MAP_LOOKUP_BATCH` call; whether the map has no more entries after it.
fn lookup_batch(attr: &mut BatchAttr) -> io::Result<bool> {
    // SAFETY: the buffers `attr` points to outlive the call and hold `count` keys and values
    // of the map's sizes; the kernel writes at most that many.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_BATCH,
            attr as *mut BatchAttr,
            size_of::<BatchAttr>(),
        )
    };
    if ret >= 0 {
        return Ok(false);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOENT) => Ok(true),
        _ => Err(err),
    }
}

/// The keys the kernel filled and their values, `slots` of them per key at `stride` bytes.
fn decode<'a, K: Pod, V: Pod>(
    keys: &'a [MaybeUninit<K>],
    values: &'a [u8],
    slots: usize,
    stride: usize,
) -> impl Iterator<Item = (K, Vec<V>)> + 'a {
    keys.iter().enumerate().map(move |(index, key)| {
        // SAFETY: the kernel filled the keys it counted, which are all `keys` holds.
        let key = unsafe { key.assume_init() };
        let base = index * slots * stride;
        let values = (0..slots)
            .map(|slot| {
                let at = base + slot * stride;
                // SAFETY: in bounds of the buffer; V is Pod, any bytes are a valid V.
                unsafe { std::ptr::read_unaligned(values[at..].as_ptr().cast::<V>()) }
            })
            .collect();
        (key, values)
    })
}

/// Every (key, values) of a hash map; `cpus` values per key for a per-CPU map, else one.
pub fn entries<K: Pod, V: Pod>(map: &MapData, cpus: Option<usize>) -> io::Result<Vec<(K, Vec<V>)>> {
    // Per-CPU values are laid out at 8-byte strides, one per possible CPU.
    let (slots, stride) = match cpus {
        Some(cpus) => (cpus, size_of::<V>().next_multiple_of(8)),
        None => (1, size_of::<V>()),
    };
    let value_bytes = slots * stride;
    let mut keys: Vec<MaybeUninit<K>> = Vec::with_capacity(CHUNK);
    keys.resize_with(CHUNK, MaybeUninit::uninit);
    let mut values: Vec<u8> = vec![0; CHUNK * value_bytes];
    // Hash maps use a u32 bucket index as the batch token; 8 bytes leave room either way.
    let mut token_in = [0u8; 8];
    let mut token_out = [0u8; 8];
    let mut first = true;
    let mut out = Vec::new();
    loop {
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                token_in.as_mut_ptr() as u64
            },
            out_batch: token_out.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: CHUNK as u32,
            map_fd: map.fd().as_fd().as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        let done = lookup_batch(&mut attr)?;
        let filled = (attr.count as usize).min(keys.len());
        out.extend(decode(&keys[..filled], &values, slots, stride));
        if done {
            return Ok(out);
        }
        token_in = token_out;
        first = false;
    }
}
