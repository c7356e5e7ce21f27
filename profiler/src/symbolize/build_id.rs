//! GNU build ids: the `NT_GNU_BUILD_ID` note of an ELF file, found through its `PT_NOTE` program
//! headers. blazesym 0.2.7's `read_elf_build_id` is not used: it takes any note of type 3 whatever
//! its owner, so a SystemTap probe note (`stapsdt`, also type 3) passes for a build id.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    path::Path,
};

const PT_NOTE: u32 = 4;
const NT_GNU_BUILD_ID: u32 = 3;
const GNU: &[u8] = b"GNU\0";
/// Note segments are small (a few hundred bytes); a larger one is not read past this.
const MAX_NOTES: u64 = 64 * 1024;
/// Program headers past this many are not looked at (real files have a dozen).
const MAX_PHDRS: u64 = 256;

#[derive(Debug, thiserror::Error)]
pub enum BuildIdError {
    #[error("reading: {0}")]
    Io(#[from] io::Error),
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF header")]
    Malformed,
}

/// The build id of the ELF file at `path`, `None` when it has none.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, BuildIdError> {
    read_from(&mut File::open(path)?)
}

/// The build id of the ELF file `file` holds, `None` when it has none.
pub fn read_from(file: &mut (impl Read + Seek)) -> Result<Option<Vec<u8>>, BuildIdError> {
    let mut ident = [0_u8; 64];
    let len = read_up_to(file, &mut ident)?;
    let header = &ident[..len];
    if !header.starts_with(b"\x7fELF") || header.len() < 52 {
        return Err(BuildIdError::NotElf);
    }
    let elf = Layout {
        wide: match header[4] {
            1 => false,
            2 => true,
            _ => return Err(BuildIdError::Malformed),
        },
        big_endian: match header[5] {
            1 => false,
            2 => true,
            _ => return Err(BuildIdError::Malformed),
        },
    };
    // e_phoff, e_phentsize, e_phnum: ELF64 and ELF32 place them differently.
    let (phoff, phentsize, phnum) = if elf.wide {
        if header.len() < 64 {
            return Err(BuildIdError::Malformed);
        }
        (
            elf.u64(&header[32..]),
            elf.u16(&header[54..]),
            elf.u16(&header[56..]),
        )
    } else {
        (
            u64::from(elf.u32(&header[28..])),
            elf.u16(&header[42..]),
            elf.u16(&header[44..]),
        )
    };
    let entry = u64::from(phentsize);
    if entry < if elf.wide { 56 } else { 32 } {
        return Err(BuildIdError::Malformed);
    }
    let mut phdrs =
        vec![0_u8; usize::try_from(entry * u64::from(phnum).min(MAX_PHDRS)).unwrap_or(0)];
    file.seek(SeekFrom::Start(phoff))?;
    let len = read_up_to(file, &mut phdrs)?;
    for phdr in phdrs[..len].chunks_exact(usize::from(phentsize)) {
        if elf.u32(phdr) != PT_NOTE {
            continue;
        }
        // p_offset, p_filesz, p_align.
        let (offset, size, align) = if elf.wide {
            (
                elf.u64(&phdr[8..]),
                elf.u64(&phdr[32..]),
                elf.u64(&phdr[48..]),
            )
        } else {
            (
                u64::from(elf.u32(&phdr[4..])),
                u64::from(elf.u32(&phdr[16..])),
                u64::from(elf.u32(&phdr[28..])),
            )
        };
        let mut notes = vec![0_u8; usize::try_from(size.min(MAX_NOTES)).unwrap_or(0)];
        file.seek(SeekFrom::Start(offset))?;
        let len = read_up_to(file, &mut notes)?;
        if let Some(id) = find_build_id(&elf, &notes[..len], if align == 8 { 8 } else { 4 }) {
            return Ok(Some(id.to_vec()));
        }
    }
    Ok(None)
}

/// The descriptor of the GNU build-id note among `notes`, entries padded to `align` bytes.
fn find_build_id<'n>(elf: &Layout, mut notes: &'n [u8], align: usize) -> Option<&'n [u8]> {
    let pad = |n: usize| n.checked_next_multiple_of(align);
    while notes.len() >= 12 {
        let name_size = usize::try_from(elf.u32(notes)).ok()?;
        let desc_size = usize::try_from(elf.u32(&notes[4..])).ok()?;
        let kind = elf.u32(&notes[8..]);
        let name_end = 12_usize.checked_add(name_size)?;
        let desc_start = 12_usize.checked_add(pad(name_size)?)?;
        let desc_end = desc_start.checked_add(desc_size)?;
        if name_end > notes.len() || desc_end > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && &notes[12..name_end] == GNU && desc_size > 0 {
            return Some(&notes[desc_start..desc_end]);
        }
        let next = desc_start.checked_add(pad(desc_size)?)?;
        notes = notes.get(next..)?;
    }
    None
}

/// Fills `buf` as far as the file goes; returns how much was read.
fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Word size and byte order of an ELF file. Callers pass slices long enough for the read.
struct Layout {
    wide: bool,
    big_endian: bool,
}

impl Layout {
    fn u16(&self, bytes: &[u8]) -> u16 {
        let b = [bytes[0], bytes[1]];
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32(&self, bytes: &[u8]) -> u32 {
        let b = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn u64(&self, bytes: &[u8]) -> u64 {
        let mut b = [0_u8; 8];
        b.copy_from_slice(&bytes[..8]);
        if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LE64: Layout = Layout {
        wide: true,
        big_endian: false,
    };

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(u32::try_from(name.len()).unwrap().to_le_bytes());
        out.extend(u32::try_from(desc.len()).unwrap().to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(name);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend(desc);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    #[test]
    fn skips_type_3_notes_of_other_owners() {
        let mut notes = note(b"stapsdt\0", 3, &[9; 54]);
        notes.extend(note(GNU, NT_GNU_BUILD_ID, &[0xab; 20]));
        assert_eq!(find_build_id(&LE64, &notes, 4), Some(&[0xab; 20][..]));
        assert_eq!(find_build_id(&LE64, &notes[..notes.len() - 4], 4), None);
        assert_eq!(
            find_build_id(&LE64, &note(b"stapsdt\0", 3, &[9; 8]), 4),
            None
        );
    }

    #[test]
    fn reads_the_build_id_of_system_and_own_binaries() {
        // Debian builds packaged binaries with a build id, and its gcc, the linker driver rustc
        // calls, asks for one by default.
        let id = read(Path::new("/bin/sh"))
            .unwrap()
            .expect("/bin/sh has a build id");
        assert!(id.len() >= 16, "{id:?}");
        let own = read(&std::env::current_exe().unwrap()).unwrap();
        assert!(own.is_some_and(|id| id.len() >= 16));
    }

    #[test]
    fn refuses_what_is_not_elf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("text");
        std::fs::write(
            &path,
            "#!/bin/sh\necho hello world, this is not an ELF file at all\n",
        )
        .unwrap();
        assert!(matches!(read(&path), Err(BuildIdError::NotElf)));
        assert!(matches!(
            read(&dir.path().join("missing")),
            Err(BuildIdError::Io(_))
        ));
    }
}
