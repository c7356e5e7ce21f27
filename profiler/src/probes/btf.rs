//! Kernel BTF: where it is read from (`PROFILER_BTF` overrides /sys/kernel/btf/vmlinux), and
//! whether our eBPF programs need it at all (CO-RE relocations in the object's `.BTF.ext`).

use std::path::PathBuf;

use aya::{Btf, Endianness};
use object::{Object as _, ObjectSection as _};

/// Overrides where kernel BTF is read from; a missing file is how to check a host without it.
pub const BTF_ENV: &str = "PROFILER_BTF";

const SYS_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The kernel's type information, or why it could not be read.
pub struct KernelBtf {
    pub path: PathBuf,
    pub btf: Result<Btf, String>,
    /// Whether `PROFILER_BTF` chose the path.
    pub overridden: bool,
}

impl KernelBtf {
    /// Reads and parses the kernel BTF `PROFILER_BTF` names, else the system's.
    pub fn read() -> Self {
        Self::overridden().unwrap_or_else(|| Self::parse(PathBuf::from(SYS_BTF), false))
    }

    /// The file `PROFILER_BTF` names, parsed; `None` without the variable, when aya's loader
    /// reads /sys/kernel/btf/vmlinux by itself (5 MiB: not worth parsing twice).
    pub fn overridden() -> Option<Self> {
        let path = std::env::var_os(BTF_ENV)?;
        Some(Self::parse(PathBuf::from(path), true))
    }

    fn parse(path: PathBuf, overridden: bool) -> Self {
        let btf = Btf::parse_file(&path, Endianness::default())
            // `{:#}` adds the cause, e.g. "No such file or directory".
            .map_err(|err| format!("{:#}", anyhow::Error::from(err)));
        Self {
            path,
            btf,
            overridden,
        }
    }
}

/// The kernel BTF the loader reads: `PROFILER_BTF`'s, else the system's.
pub fn path() -> PathBuf {
    std::env::var_os(BTF_ENV).map_or_else(|| PathBuf::from(SYS_BTF), PathBuf::from)
}

/// Why the system has no kernel BTF for the loader, if it has none.
pub fn system_btf_missing() -> Option<String> {
    let path = std::path::Path::new(SYS_BTF);
    (!path.is_file()).then(|| format!("{SYS_BTF} does not exist"))
}

/// How many CO-RE relocations the eBPF object holds: each is a field offset or type check the
/// loader patches from kernel BTF. None means the programs load the same without BTF.
pub fn core_relocations(object: &[u8]) -> Result<u32, String> {
    let file =
        object::File::parse(object).map_err(|err| format!("parsing the eBPF object: {err}"))?;
    let Some(section) = file.section_by_name(".BTF.ext") else {
        return Ok(0);
    };
    let data = section
        .data()
        .map_err(|err| format!("reading .BTF.ext: {err}"))?;
    Ok(core_relo_count(data))
}

/// `btf_ext_header` (linux/btf.h): magic, version, flags, hdr_len, then func_info, line_info
/// and, in headers of 32 bytes or more, core_relo offset and length. Each relocation section
/// starts with a 4-byte record size, then per ELF section a name offset, a count and records.
fn core_relo_count(ext: &[u8]) -> u32 {
    let word = |at: usize| {
        ext.get(at..at + 4)
            .map(|bytes| u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    };
    let (Some(hdr_len), Some(off), Some(len)) = (word(4), word(24), word(28)) else {
        return 0;
    };
    if hdr_len < 32 || len == 0 {
        return 0;
    }
    let start = hdr_len as usize + off as usize;
    let end = start.saturating_add(len as usize).min(ext.len());
    let Some(record_size) = word(start).filter(|&size| size > 0) else {
        return 0;
    };
    let mut at = start + 4;
    let mut count = 0u32;
    while at + 8 <= end {
        let records = word(at + 4).unwrap_or(0);
        count = count.saturating_add(records);
        at += 8 + records as usize * record_size as usize;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(core_relo: &[u8]) -> Vec<u8> {
        let mut ext = vec![0x9f, 0xeb, 1, 0];
        for word in [32u32, 0, 0, 0, 0, 0, core_relo.len() as u32] {
            ext.extend(word.to_le_bytes());
        }
        ext.extend(core_relo);
        ext
    }

    #[test]
    fn counts_core_relocations_per_section() {
        assert_eq!(core_relo_count(&header(&[])), 0);
        // Record size 16; one section with two records, another with one.
        let mut relos = 16u32.to_le_bytes().to_vec();
        for (name, records) in [(1u32, 2u32), (5, 1)] {
            relos.extend(name.to_le_bytes());
            relos.extend(records.to_le_bytes());
            relos.extend(vec![0; 16 * records as usize]);
        }
        assert_eq!(core_relo_count(&header(&relos)), 3);
        assert_eq!(core_relo_count(&[1, 2]), 0);
    }

    #[test]
    fn our_programs_need_no_btf() {
        assert_eq!(core_relocations(crate::probes::EBPF_OBJECT), Ok(0));
    }
}
