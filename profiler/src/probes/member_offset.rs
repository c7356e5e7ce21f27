//! A kernel struct member's byte offset, from kernel BTF in one pass over its type section: how
//! the raw socket tracepoints find `skc_family` in `struct sock`. A full BTF parser (btf-rs)
//! took 280 ms and a 53 MiB peak to answer the same question, at every attach of `net`.

use std::path::Path;

/// BTF kinds whose records are followed by `vlen` entries of some size, or by a fixed tail
/// (include/uapi/linux/btf.h).
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;
const MAGIC: u16 = 0xeb9f;
/// `struct btf_type`: name_off, info, size or type.
const TYPE_LEN: usize = 12;

/// The highest kind this scanner knows the size of (`BTF_KIND_ENUM64`): past a kind it does
/// not know, it cannot find the next record, so it stops rather than misread.
const KIND_MAX: u32 = KIND_ENUM64;

/// The offset of a member path (`[(struct, member), (member's struct, its member), ...]`) in
/// the BTF file at `path`, the file read once.
pub fn in_file(path: &Path, chain: &[(&str, &str)]) -> Result<u32, String> {
    let btf = std::fs::read(path).map_err(|err| format!("reading {}: {err}", path.display()))?;
    chain.iter().try_fold(0, |sum, &(name, member)| {
        let offset = find(&btf, name, member)
            .ok_or_else(|| format!("{}: no {name}.{member}", path.display()))?;
        Ok(sum + offset)
    })
}

/// The byte offset of `member` (a direct member, not a bitfield) in the struct `name`.
pub fn find(btf: &[u8], name: &str, member: &str) -> Option<u32> {
    let word = |at: usize| Some(u32::from_le_bytes(btf.get(at..at + 4)?.try_into().ok()?));
    if u16::from_le_bytes(btf.get(0..2)?.try_into().ok()?) != MAGIC {
        return None;
    }
    let hdr_len = word(4)? as usize;
    let types = hdr_len.checked_add(word(8)? as usize)?;
    let types_end = types.checked_add(word(12)? as usize)?.min(btf.len());
    let strings = hdr_len.checked_add(word(16)? as usize)?;
    let string = |offset: u32| {
        let from = strings.checked_add(offset as usize)?;
        let tail = btf.get(from..)?;
        Some(&tail[..tail.iter().position(|&b| b == 0)?])
    };
    let mut at = types;
    while at + TYPE_LEN <= types_end {
        let info = word(at + 4)?;
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        if kind == 0 || kind > KIND_MAX {
            return None;
        }
        let tail = match kind {
            KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
            KIND_ARRAY => 12,
            KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => vlen * 12,
            KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
            _ => 0,
        };
        if kind == KIND_STRUCT && string(word(at)?) == Some(name.as_bytes()) {
            let bitfields = info >> 31 == 1;
            for i in 0..vlen {
                let entry = at + TYPE_LEN + i * 12;
                if string(word(entry)?) == Some(member.as_bytes()) {
                    let offset = word(entry + 8)?;
                    let (bits, bitfield_size) = match bitfields {
                        true => (offset & 0xff_ffff, offset >> 24),
                        false => (offset, 0),
                    };
                    return (bits % 8 == 0 && bitfield_size == 0).then_some(bits / 8);
                }
            }
        }
        at += TYPE_LEN + tail;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob: an int, then a struct `pair` { `a` at byte 0, `b` at byte 4 }, with the
    /// struct's kind flag (bitfield offsets) when `bitfields`.
    fn blob(bitfields: bool) -> Vec<u8> {
        let strings = b"\0int\0pair\0a\0b\0";
        let mut types = Vec::new();
        let mut push = |words: &[u32]| words.iter().for_each(|w| types.extend(w.to_le_bytes()));
        push(&[1, KIND_INT << 24, 4, 32]);
        let flag = if bitfields { 1 << 31 } else { 0 };
        push(&[5, flag | KIND_STRUCT << 24 | 2, 8]);
        push(&[10, 1, 0]);
        // With the kind flag, a bitfield size of 0 says `b` is a plain member.
        push(&[12, 1, 32]);
        let mut btf = MAGIC.to_le_bytes().to_vec();
        btf.extend([1, 0]);
        let types_len = types.len() as u32;
        for word in [24, 0, types_len, types_len, strings.len() as u32] {
            btf.extend(word.to_le_bytes());
        }
        btf.extend(types);
        btf.extend(strings);
        btf
    }

    #[test]
    fn finds_a_members_byte_offset() {
        for bitfields in [false, true] {
            let btf = blob(bitfields);
            assert_eq!(find(&btf, "pair", "b"), Some(4));
            assert_eq!(find(&btf, "pair", "a"), Some(0));
            assert_eq!(find(&btf, "pair", "c"), None);
            assert_eq!(find(&btf, "int", "a"), None);
        }
        assert_eq!(find(b"not btf at all", "pair", "a"), None);
    }

    #[test]
    fn this_kernels_socket_family() {
        let vmlinux = Path::new("/sys/kernel/btf/vmlinux");
        if vmlinux.exists() {
            // sock_common's layout has kept skc_family at byte 16 since Linux 2.6, and it
            // opens struct sock.
            let chain = [("sock", "__sk_common"), ("sock_common", "skc_family")];
            assert_eq!(in_file(vmlinux, &chain), Ok(16));
            assert_eq!(in_file(vmlinux, &chain[1..]), Ok(16));
        }
    }
}
