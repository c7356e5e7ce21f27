//! User frames: address -> captured file mapping -> file offset -> blazesym ELF symbol, cached
//! per (file, offset) so shared libraries are resolved once for all processes.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use blazesym::symbolize::{
    Input, Symbolizer,
    source::{Elf, Source},
};

use super::{lookup_addr, names_of};
use crate::model::Mapping;

pub struct UserSymbolizer<'a> {
    symbolizer: &'a Symbolizer,
    cache: HashMap<(PathBuf, u64), Vec<String>>,
    /// Files whose debug information blazesym fails to read (seen with Debian's libc and its
    /// `.gnu_debuglink`); they are symbolized from their ELF symbol tables alone.
    no_debug_syms: HashSet<PathBuf>,
}

impl<'a> UserSymbolizer<'a> {
    pub fn new(symbolizer: &'a Symbolizer) -> Self {
        Self {
            symbolizer,
            cache: HashMap::new(),
            no_debug_syms: HashSet::new(),
        }
    }

    /// Frames of a user stack (leaf first in `ips`), returned root first.
    pub fn frames(&mut self, maps: &[Mapping], ips: &[u64]) -> Vec<String> {
        let mut frames = Vec::new();
        for (index, &ip) in ips.iter().enumerate().rev() {
            let addr = lookup_addr(ip, index);
            let Some(map) = maps.iter().find(|m| m.start <= addr && addr < m.end) else {
                frames.push("[unknown]".to_owned());
                continue;
            };
            let offset = addr - map.start + map.file_offset;
            frames.extend(self.resolve(map, offset));
        }
        frames
    }

    fn resolve(&mut self, map: &Mapping, offset: u64) -> Vec<String> {
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
    fn one_lookup_per_file_offset_and_unmapped_addresses_are_unknown() {
        let symbolizer = Symbolizer::new();
        let mut user = UserSymbolizer::new(&symbolizer);
        let maps = read_identity(std::process::id()).unwrap().maps;
        let ip = cached_symbol_for_test as *const () as u64;
        let first = user.frames(&maps, &[ip]);
        assert!(first[0].contains("cached_symbol_for_test"), "{first:?}");
        assert_eq!(user.cache.len(), 1);
        assert_eq!(user.frames(&maps, &[ip, ip + 1]).len(), 2);
        // The caller frame (ip + 1 - 1) is the same offset: still one entry.
        assert_eq!(user.cache.len(), 1);
        assert_eq!(user.frames(&maps, &[8]), ["[unknown]"]);
    }
}
