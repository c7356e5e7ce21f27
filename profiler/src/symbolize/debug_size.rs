//! How much DWARF debug information an ELF file carries, from its section headers alone: what
//! parsing it for inlined functions would cost, known before paying it.

use std::{fs::File, path::Path};

use object::{
    Endianness, FileKind, ReadCache, ReadRef,
    elf::{FileHeader32, FileHeader64, SHF_ALLOC},
    read::elf::{FileHeader, SectionHeader as _},
};

/// Bytes in the file's unloaded `.debug_*` and `.zdebug_*` sections; `None` when it cannot be read or
/// is not an ELF file. Only the ELF header, the section headers and their names are read.
pub fn of_file(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let data = ReadCache::new(file);
    match FileKind::parse(&data).ok()? {
        FileKind::Elf32 => sum::<FileHeader32<Endianness>, _>(&data),
        FileKind::Elf64 => sum::<FileHeader64<Endianness>, _>(&data),
        _ => None,
    }
}

fn sum<'data, Elf, R>(data: R) -> Option<u64>
where
    Elf: FileHeader<Endian = Endianness>,
    R: ReadRef<'data>,
{
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let sections = header.sections(endian, data).ok()?;
    let mut total = 0u64;
    for section in sections.iter() {
        let Ok(name) = sections.section_name(endian, section) else {
            continue;
        };
        // Loaded sections are not DWARF, whatever their name (Rust's `.debug_gdb_scripts`).
        let flags: u64 = section.sh_flags(endian).into();
        let loaded = flags & u64::from(SHF_ALLOC) != 0;
        if !loaded && (name.starts_with(b".debug_") || name.starts_with(b".zdebug_")) {
            total = total.saturating_add(section.sh_size(endian).into());
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_debug_sections_of_a_binary_built_with_them() {
        // The test binary is built with debug information (the workspace's profiles keep it).
        let own = of_file(&std::env::current_exe().unwrap()).unwrap();
        assert!(own > 1 << 20, "{own}");
    }

    #[test]
    fn a_stripped_binary_has_none_and_a_non_elf_file_no_answer() {
        let dir = tempfile::tempdir().unwrap();
        let stripped = dir.path().join("stripped");
        let status = std::process::Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&stripped)
            .arg(std::env::current_exe().unwrap())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(of_file(&stripped), Some(0));
        let text = dir.path().join("text");
        std::fs::write(&text, "not an ELF file").unwrap();
        assert_eq!(of_file(&text), None);
        assert_eq!(of_file(&dir.path().join("missing")), None);
    }
}
