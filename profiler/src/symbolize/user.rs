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

use super::{debug_size, lookup_addr, names_of};
use crate::model::{Mapping, ProcessUsage};

/// DWARF, in bytes of `.debug_*` sections, that a memory-bounded symbolizer parses for inlined
/// functions. Above it the file's symbol table names the frames: the functions inlined into them
/// go unnamed, but parsing a large file's DWARF every window cost `record` as much as all its
/// ticks (18 MB in a Rust binary: ~30 ms a window), and a compiler's shared library (100+ MiB
/// of it) lifted the recorder's peak to 176 MiB.
pub const DEBUG_BUDGET: u64 = 8 << 20;

pub struct UserSymbolizer<'a> {
    symbolizer: &'a Symbolizer,
    /// Each file is resolved with a symbolizer of its own, dropped right after, instead of
    /// `symbolizer`: see [`Self::one_file_at_a_time`].
    per_file: bool,
    /// Files with more DWARF than this many bytes are symbolized from their ELF symbol tables
    /// alone: see [`DEBUG_BUDGET`].
    debug_budget: Option<u64>,
    /// Names per file, then per file offset.
    cache: HashMap<PathBuf, HashMap<u64, Vec<String>>>,
    /// Files whose debug information blazesym fails to read (seen with Debian's libc and its
    /// `.gnu_debuglink`); they are symbolized from their ELF symbol tables alone.
    no_debug_syms: HashSet<PathBuf>,
    build_ids: HashMap<PathBuf, Option<String>>,
}

impl<'a> UserSymbolizer<'a> {
    pub fn new(symbolizer: &'a Symbolizer) -> Self {
        Self {
            symbolizer,
            per_file: false,
            debug_budget: None,
            cache: HashMap::new(),
            no_debug_syms: HashSet::new(),
            build_ids: HashMap::new(),
        }
    }

    /// For symbolizing a whole record window at once, where memory counts more than reuse:
    /// blazesym keeps every file it parsed (its symbol tables, and the file's pages it mapped,
    /// which count as the profiler's resident memory) until its symbolizer is dropped. With a
    /// symbolizer per file, dropped once that file's batch is resolved, a window's peak is its
    /// largest file's rather than the sum of all of them (a compiler's shared library alone
    /// maps over 100 MiB of symbols): a 10 s record window's peak RSS went from 141-150 MiB to
    /// 55-58 MiB on a host running builds. Files over [`DEBUG_BUDGET`] are read without
    /// their DWARF.
    pub fn one_file_at_a_time(symbolizer: &'a Symbolizer) -> Self {
        Self {
            per_file: true,
            debug_budget: Some(DEBUG_BUDGET),
            ..Self::new(symbolizer)
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
        if self.build_ids.contains_key(map.source()) {
            return;
        }
        self.build_id(map.source());
        self.names(map, map.file_offset + (map.end - map.start) / 2);
    }

    /// Resolves every user address of `processes`' stacks (`stacks`: instruction pointers by
    /// stack id, leaf first) into the cache, with one blazesym call per file: resolving them
    /// one call per address cost a fifth of the run on fifty thousand stacks.
    pub fn resolve_all(&mut self, processes: &[ProcessUsage], stacks: &HashMap<i32, Vec<u64>>) {
        let mut files: HashMap<&Path, (&Mapping, Vec<u64>)> = HashMap::new();
        for process in processes {
            let maps = &process.identity.maps;
            let mut offsets = vec![Vec::new(); maps.len()];
            let mut seen = HashSet::new();
            for &((user_id, _), _) in process.stacks.iter().chain(&process.offcpu) {
                let Some(ips) = stacks.get(&user_id).filter(|_| seen.insert(user_id)) else {
                    continue;
                };
                for (index, &ip) in ips.iter().enumerate() {
                    let addr = lookup_addr(ip, index);
                    if let Some(i) = maps.iter().position(|m| m.start <= addr && addr < m.end) {
                        offsets[i].push(addr - maps[i].start + maps[i].file_offset);
                    }
                }
            }
            for (map, offsets) in maps.iter().zip(offsets) {
                if !offsets.is_empty() {
                    files
                        .entry(map.source())
                        .or_insert_with(|| (map, Vec::new()))
                        .1
                        .extend(offsets);
                }
            }
        }
        for (map, mut offsets) in files.into_values() {
            offsets.sort_unstable();
            offsets.dedup();
            self.resolve(map, &offsets);
        }
    }

    /// Function names at `offset` in `map`'s file, outermost first; a file name in brackets
    /// when the file has no symbol there.
    pub fn names(&mut self, map: &Mapping, offset: u64) -> Vec<String> {
        if let Some(names) = self
            .cache
            .get(map.source())
            .and_then(|file| file.get(&offset))
        {
            return names.clone();
        }
        self.resolve(map, &[offset]);
        self.cache[map.source()][&offset].clone()
    }

    /// Puts the names at each of `offsets` (sorted) in `map`'s file into the cache.
    fn resolve(&mut self, map: &Mapping, offsets: &[u64]) {
        let cached = self.cache.entry(map.source().to_owned()).or_default();
        let missing: Vec<u64> = offsets
            .iter()
            .copied()
            .filter(|offset| !cached.contains_key(offset))
            .collect();
        if missing.is_empty() {
            return;
        }
        let resolved = self.lookup(map.source(), &missing);
        let unknown = || {
            let file = map.path.file_name().map_or_else(
                || map.path.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            );
            vec![format!("[{file}]")]
        };
        let cached = self.cache.entry(map.source().to_owned()).or_default();
        for (offset, names) in missing.into_iter().zip(resolved) {
            cached.insert(offset, names.unwrap_or_else(unknown));
        }
    }

    /// Names at each of `offsets` in the file at `path`, `None` where it has no symbol.
    fn lookup(&mut self, path: &Path, offsets: &[u64]) -> Vec<Option<Vec<String>>> {
        let own;
        let symbolizer = if self.per_file {
            own = super::new_symbolizer();
            &own
        } else {
            self.symbolizer
        };
        let mut elf = Elf::new(path);
        if let Some(budget) = self.debug_budget
            && debug_size::of_file(path).is_some_and(|size| size > budget)
        {
            log::debug!(
                "{}: over the DWARF budget; symbol table only",
                path.display()
            );
            self.no_debug_syms.insert(path.to_owned());
        }
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
        assert_eq!(user.cache[&map.path].len(), 1);
        assert_eq!(user.names(map, offset), first);
        assert_eq!(user.cache[&map.path].len(), 1);
    }

    #[test]
    fn a_bounded_symbolizer_names_a_file_over_the_dwarf_budget_from_its_symbol_table() {
        let symbolizer = crate::symbolize::new_symbolizer();
        let maps = read_identity(std::process::id()).unwrap().maps;
        let ip = cached_symbol_for_test as *const () as u64;
        let map = maps.iter().find(|m| m.start <= ip && ip < m.end).unwrap();
        assert!(debug_size::of_file(&map.path).unwrap() > DEBUG_BUDGET);
        let offset = ip - map.start + map.file_offset;
        let mut bounded = UserSymbolizer::one_file_at_a_time(&symbolizer);
        let names = bounded.names(map, offset);
        assert!(names[0].contains("cached_symbol_for_test"), "{names:?}");
        assert!(bounded.no_debug_syms.contains(&map.path));
        // The unbounded one reads the DWARF, which names the function too (without its path:
        // the test binary's DWARF has line tables only).
        let mut full = UserSymbolizer::new(&symbolizer);
        let names = full.names(map, offset);
        assert!(names[0].contains("cached_symbol_for_test"), "{names:?}");
        assert!(!full.no_debug_syms.contains(&map.path));
    }

    #[test]
    fn resolve_all_fills_the_cache_once_per_distinct_offset() {
        let symbolizer = Symbolizer::new();
        let mut user = UserSymbolizer::new(&symbolizer);
        let me = read_identity(std::process::id()).unwrap();
        let ip = cached_symbol_for_test as *const () as u64;
        let map = me
            .maps
            .iter()
            .find(|m| m.start <= ip && ip < m.end)
            .unwrap()
            .clone();
        let process = ProcessUsage {
            stacks: vec![((1, -1), 1), ((2, -1), 1)],
            ..ProcessUsage::new(me)
        };
        // The leaf of stack 1 and the caller of stack 2 (looked up one byte back) are the same
        // offset; stack 2's leaf is another.
        let stacks = HashMap::from([(1, vec![ip]), (2, vec![ip + 2, ip + 1])]);
        user.resolve_all(&[process], &stacks);
        assert_eq!(user.cache[&map.path].len(), 2);
        let offset = ip - map.start + map.file_offset;
        assert!(user.names(&map, offset)[0].contains("cached_symbol_for_test"));
        assert_eq!(user.cache[&map.path].len(), 2);
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
