//! GNU build ids: the `NT_GNU_BUILD_ID` note of an ELF file, found through its `PT_NOTE` program
//! headers, parsed with `object` over a lazy reader so only the header, the program headers and
//! the note segments are read. blazesym 0.2.7's `read_elf_build_id` is not used: it takes any
//! note of type 3 whatever its owner, so a SystemTap probe note (`stapsdt`, also type 3) passes
//! for a build id.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    path::Path,
};

use object::{
    Endianness, FileKind, ReadCache, ReadRef,
    elf::{ELF_NOTE_GNU, ELFMAG, FileHeader32, FileHeader64, NT_GNU_BUILD_ID, PT_NOTE},
    read::elf::{FileHeader, NoteIterator, ProgramHeader as _},
};

/// Note segments are small (a few hundred bytes); a larger one is not read past this.
const MAX_NOTES: u64 = 64 * 1024;
/// Program headers past this many are not looked at (real files have a dozen).
const MAX_PHDRS: usize = 256;

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
    let data = ReadCache::new(KeepError {
        inner: file,
        error: None,
    });
    let found = match FileKind::parse(&data) {
        Ok(FileKind::Elf32) => find::<FileHeader32<Endianness>, _>(&data),
        Ok(FileKind::Elf64) => find::<FileHeader64<Endianness>, _>(&data),
        _ if data.read_bytes_at(0, 4).is_ok_and(|magic| magic == ELFMAG) => {
            Err(BuildIdError::Malformed)
        }
        _ => Err(BuildIdError::NotElf),
    };
    let found = found.map(|id| id.map(<[u8]>::to_vec));
    // object turns read failures into "malformed": the reader's own error says what happened.
    match data.into_inner().error {
        Some(err) if !matches!(found, Ok(Some(_))) => Err(err.into()),
        _ => found,
    }
}

/// The descriptor of the first GNU build-id note in the file's note segments.
fn find<'data, Elf, R>(data: R) -> Result<Option<&'data [u8]>, BuildIdError>
where
    Elf: FileHeader<Endian = Endianness>,
    R: ReadRef<'data>,
{
    let header = Elf::parse(data).map_err(|_| BuildIdError::Malformed)?;
    let endian = header.endian().map_err(|_| BuildIdError::Malformed)?;
    let phoff: u64 = header.e_phoff(endian).into();
    let phnum = header
        .phnum(endian, data)
        .map_err(|_| BuildIdError::Malformed)?;
    if phoff == 0 || phnum == 0 {
        return Ok(None);
    }
    // Checked as object's `program_headers` does; it is not called because it would read every
    // header a hostile e_phnum announces.
    if usize::from(header.e_phentsize(endian)) != size_of::<Elf::ProgramHeader>() {
        return Err(BuildIdError::Malformed);
    }
    let phdrs: &[Elf::ProgramHeader] = data
        .read_slice_at(phoff, phnum.min(MAX_PHDRS))
        .map_err(|()| BuildIdError::Malformed)?;
    for phdr in phdrs {
        if phdr.p_type(endian) != PT_NOTE {
            continue;
        }
        let (offset, size) = phdr.file_range(endian);
        // What a truncated file still holds of the segment may hold the build id.
        let available = data.len().unwrap_or(0).saturating_sub(offset);
        let Ok(notes) = data.read_bytes_at(offset, size.min(MAX_NOTES).min(available)) else {
            continue;
        };
        // An alignment other than 4 or 8 is corrupt (binutils says so too).
        let Ok(notes) = NoteIterator::<Elf>::new(endian, phdr.p_align(endian), notes) else {
            continue;
        };
        // A malformed note ends its segment: what follows cannot be located.
        for note in notes.map_while(Result::ok) {
            if note.n_type(endian) == NT_GNU_BUILD_ID
                && note.name() == ELF_NOTE_GNU
                && !note.desc().is_empty()
            {
                return Ok(Some(note.desc()));
            }
        }
    }
    Ok(None)
}

/// A reader that keeps the first I/O error, which `ReadCache` reduces to `()`.
struct KeepError<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R> KeepError<R> {
    fn keep<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        match result {
            // Not a failure: `read_exact` retries.
            Err(err) if err.kind() != io::ErrorKind::Interrupted => {
                let kind = err.kind();
                self.error.get_or_insert(err);
                Err(kind.into())
            }
            other => other,
        }
    }
}

impl<R: Read> Read for KeepError<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        self.keep(result)
    }
}

impl<R: Seek> Seek for KeepError<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let result = self.inner.seek(pos);
        self.keep(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Cursor;

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

    /// A little-endian ELF64 file whose one `PT_NOTE` segment is the first `size` bytes of
    /// `notes`.
    fn elf_with_notes(notes: &[u8], size: usize) -> Vec<u8> {
        const EHDR: usize = 64;
        const PHDR: usize = 56;
        let mut out = vec![0_u8; EHDR];
        out[..4].copy_from_slice(&ELFMAG);
        out[4..7].copy_from_slice(&[2, 1, 1]); // ELFCLASS64, ELFDATA2LSB, EV_CURRENT
        out[32..40].copy_from_slice(&(EHDR as u64).to_le_bytes()); // e_phoff
        out[52..54].copy_from_slice(&(EHDR as u16).to_le_bytes()); // e_ehsize
        out[54..56].copy_from_slice(&(PHDR as u16).to_le_bytes()); // e_phentsize
        out[56..58].copy_from_slice(&1_u16.to_le_bytes()); // e_phnum
        let mut phdr = [0_u8; PHDR];
        phdr[..4].copy_from_slice(&PT_NOTE.to_le_bytes());
        phdr[8..16].copy_from_slice(&((EHDR + PHDR) as u64).to_le_bytes()); // p_offset
        phdr[32..40].copy_from_slice(&(size as u64).to_le_bytes()); // p_filesz
        phdr[48..56].copy_from_slice(&4_u64.to_le_bytes()); // p_align
        out.extend(phdr);
        out.extend(notes);
        out
    }

    fn build_id_of(elf: Vec<u8>) -> Option<Vec<u8>> {
        read_from(&mut Cursor::new(elf)).unwrap()
    }

    #[test]
    fn skips_type_3_notes_of_other_owners() {
        let mut notes = note(b"stapsdt\0", 3, &[9; 54]);
        notes.extend(note(b"GNU\0", NT_GNU_BUILD_ID, &[0xab; 20]));
        assert_eq!(
            build_id_of(elf_with_notes(&notes, notes.len())),
            Some(vec![0xab; 20])
        );
        assert_eq!(build_id_of(elf_with_notes(&notes, notes.len() - 4)), None);
        let stapsdt = note(b"stapsdt\0", 3, &[9; 8]);
        assert_eq!(build_id_of(elf_with_notes(&stapsdt, stapsdt.len())), None);
    }

    #[test]
    fn a_note_segment_cut_short_by_the_end_of_the_file_is_read_as_far_as_it_goes() {
        let notes = note(b"GNU\0", NT_GNU_BUILD_ID, &[0xab; 20]);
        let mut truncated = elf_with_notes(&notes, notes.len() + 100);
        assert_eq!(build_id_of(truncated.clone()), Some(vec![0xab; 20]));
        truncated.truncate(truncated.len() - 4);
        assert_eq!(build_id_of(truncated), None);
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
