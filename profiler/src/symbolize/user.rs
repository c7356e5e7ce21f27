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

    /// Function names at `offset` in `map`'s file, outermost first; a file name in brackets
    /// when the file has no symbol there.
    pub fn names(&mut self, map: &Mapping, offset: u64) -> Vec<String> {
        let key = (map.path.clone(), offset);
        if let Some(names) = self.cache.get(&key) {
            return names.clone();
        }
        let names = self
            .lookup(self.symbolizer, &map.path, &[offset])
            .pop()
            .flatten()
            .unwrap_or_else(|| unnamed(&map.path));
        self.cache.insert(key, names.clone());
        names
    }

    /// Resolves `offsets` of the file at `path` in one batch, with a symbolizer of its own that
    /// is dropped right after: blazesym keeps every file it parsed (its symbol tables, and the
    /// pages of the file it mapped, which count as the profiler's resident memory) until its
    /// symbolizer goes. One file at a time, a window's peak is its largest file's, not the sum
    /// of all of them (a compiler's shared library alone maps over 100 MiB of symbols).
    pub fn prefetch(&mut self, path: &Path, offsets: &[u64]) {
        let missing: Vec<u64> = offsets
            .iter()
            .copied()
            .filter(|&offset| !self.cache.contains_key(&(path.to_owned(), offset)))
            .collect();
        if missing.is_empty() {
            return;
        }
        let symbolizer = new_symbolizer();
        let resolved = self.lookup(&symbolizer, path, &missing);
        for (offset, names) in missing.into_iter().zip(resolved) {
            let names = names.unwrap_or_else(|| unnamed(path));
            self.cache.insert((path.to_owned(), offset), names);
        }
    }

    /// Names at each of `offsets` in the file, `None` where it has no symbol.
    fn lookup(
        &mut self,
        symbolizer: &Symbolizer,
        path: &Path,
        offsets: &[u64],
    ) -> Vec<Option<Vec<String>>> {
        let mut elf = Elf::new(path);
        if !self.no_debug_syms.contains(path) {
            match symbolizer.symbolize(&Source::Elf(elf.clone()), Input::FileOffset(offsets)) {
                Ok(syms) => return syms.iter().map(names_of).collect(),
                Err(err) => {
                    log::debug!("{}: {err}; retrying without debug info", path.display());
                    self.no_debug_syms.insert(path.to_owned());
                }
            }
        }
        elf.debug_syms = false;
        match symbolizer.symbolize(&Source::Elf(elf), Input::FileOffset(offsets)) {
            Ok(syms) => syms.iter().map(names_of).collect(),
            Err(err) => {
                log::debug!("{}: {err}", path.display());
                vec![None; offsets.len()]
            }
        }
    }
}

/// The symbolizer every lookup uses: inlined functions named, no source lines.
pub fn new_symbolizer() -> Symbolizer {
    Symbolizer::builder()
        .enable_inlined_fns(true)
        .enable_code_info(false)
        .build()
}

/// The frame name of an address in `path` that no symbol covers: the file name in brackets.
fn unnamed(path: &Path) -> Vec<String> {
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    vec![format!("[{file}]")]
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
    fn prefetched_offsets_are_served_from_the_cache() {
        let symbolizer = Symbolizer::new();
        let mut user = UserSymbolizer::new(&symbolizer);
        let maps = read_identity(std::process::id()).unwrap().maps;
        let ip = cached_symbol_for_test as *const () as u64;
        let map = maps.iter().find(|m| m.start <= ip && ip < m.end).unwrap();
        let offset = ip - map.start + map.file_offset;
        // An offset before the first symbol is named after the file, and cached as well.
        user.prefetch(&map.path, &[offset, 0]);
        assert_eq!(user.cache.len(), 2);
        let names = user.cache[&(map.path.clone(), offset)].clone();
        assert!(names[0].contains("cached_symbol_for_test"), "{names:?}");
        assert_eq!(user.names(map, offset), names);
        user.prefetch(&map.path, &[offset]);
        assert_eq!(user.cache.len(), 2);
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
