//! User frames: file offset in a captured file mapping -> blazesym ELF symbol, cached per (file,
//! offset) so shared libraries are resolved once for all processes; and each file's build id.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use blazesym::symbolize::{
    Input, Symbolizer,
    source::{Elf, Source},
};

use super::names_of;
use crate::model::Mapping;

pub struct UserSymbolizer<'a> {
    symbolizer: &'a Symbolizer,
    cache: HashMap<(PathBuf, u64), Vec<String>>,
    /// Files whose debug information blazesym fails to read (seen with Debian's libc and its
    /// `.gnu_debuglink`); they are symbolized from their ELF symbol tables alone.
    no_debug_syms: HashSet<PathBuf>,
    build_ids: HashMap<PathBuf, Option<String>>,
}

impl<'a> UserSymbolizer<'a> {
    pub fn new(symbolizer: &'a Symbolizer) -> Self {
        Self {
            symbolizer,
            cache: HashMap::new(),
            no_debug_syms: HashSet::new(),
            build_ids: HashMap::new(),
        }
    }

    /// The file's GNU build id in lowercase hex, read once per file; `None` when the file has
    /// none or cannot be read (deleted since, or not an ELF file).
    pub fn build_id(&mut self, path: &Path) -> Option<String> {
        if let Some(id) = self.build_ids.get(path) {
            return id.clone();
        }
        let id = match super::build_id::read(path) {
            Ok(id) => id.map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect()),
            Err(err) => {
                log::debug!("{}: no build id: {err}", path.display());
                None
            }
        };
        self.build_ids.insert(path.to_owned(), id.clone());
        id
    }

    /// Parses `map`'s file (symbol tables, debug information) and reads its build id ahead of
    /// the real lookups, by naming an address in the middle of the mapping; once per file.
    pub fn warm(&mut self, map: &Mapping) {
        if self.build_ids.contains_key(&map.path) {
            return;
        }
        self.build_id(&map.path);
        self.names(map, map.file_offset + (map.end - map.start) / 2);
    }

    /// Function names at `offset` in `map`'s file, outermost first; a file name in brackets
    /// when the file has no symbol there.
    pub fn names(&mut self, map: &Mapping, offset: u64) -> Vec<String> {
        let key = (map.path.clone(), offset);
        if let Some(names) = self.cache.get(&key) {
            return names.clone();
        }
        let names = self.lookup(&map.path, offset).unwrap_or_else(|| {
            let file = map.path.file_name().map_or_else(
                || map.path.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            );
            vec![format!("[{file}]")]
        });
        self.cache.insert(key, names.clone());
        names
    }

    fn lookup(&mut self, path: &Path, offset: u64) -> Option<Vec<String>> {
        let mut elf = Elf::new(path);
        if !self.no_debug_syms.contains(path) {
            match self
                .symbolizer
                .symbolize_single(&Source::Elf(elf.clone()), Input::FileOffset(offset))
            {
                Ok(sym) => return names_of(&sym),
                Err(err) => {
                    log::debug!("{}: {err}; retrying without debug info", path.display());
                    self.no_debug_syms.insert(path.to_owned());
                }
            }
        }
        elf.debug_syms = false;
        let sym = self
            .symbolizer
            .symbolize_single(&Source::Elf(elf), Input::FileOffset(offset))
            .ok()?;
        names_of(&sym)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::read_identity;

    #[inline(never)]
    fn cached_symbol_for_test() -> u64 {
        std::hint::black_box(11)
    }

    #[test]
    fn one_lookup_per_file_offset() {
        let symbolizer = Symbolizer::new();
        let mut user = UserSymbolizer::new(&symbolizer);
        let maps = read_identity(std::process::id()).unwrap().maps;
        let ip = cached_symbol_for_test as *const () as u64;
        let map = maps.iter().find(|m| m.start <= ip && ip < m.end).unwrap();
        let offset = ip - map.start + map.file_offset;
        let first = user.names(map, offset);
        assert!(first[0].contains("cached_symbol_for_test"), "{first:?}");
        assert_eq!(user.cache.len(), 1);
        assert_eq!(user.names(map, offset), first);
        assert_eq!(user.cache.len(), 1);
    }

    #[test]
    fn build_id_is_lowercase_hex_of_the_gnu_note() {
        let symbolizer = Symbolizer::new();
        let mut user = UserSymbolizer::new(&symbolizer);
        let exe = std::env::current_exe().unwrap();
        // Debian's gcc, the linker driver rustc calls, asks for a build id by default.
        let id = user.build_id(&exe).expect("test binary has a build id");
        assert!(
            id.len() >= 16
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{id}"
        );
        assert_eq!(user.build_id(Path::new("/nonexistent/file")), None);
    }
}
