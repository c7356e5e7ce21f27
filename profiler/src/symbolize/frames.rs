//! Structured stacks: each distinct frame (address, where it lies, function names) and each file
//! mapping stored once, stacks as lists of frame indexes. The folded names are derived from them.

use std::collections::HashMap;

use super::{KERNEL_SUFFIX, LOST_STACK, kernel::KernelNames, user::UserSymbolizer};
use crate::model::{Mapping, perf_map::PerfMap};

/// Where a frame's address lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// In the file mapping `Stacks::mappings[index]`.
    File(usize),
    /// A user address outside every captured file mapping (anonymous or JIT code).
    Unmapped,
    /// JIT code of process `pid`, named from its runtime's perf map: the same address is
    /// another function in another process.
    Jit {
        pid: u32,
    },
    Kernel,
    /// Stands for a stack the kernel could not store (counted in drops): its user or kernel half.
    Lost {
        kernel: bool,
    },
}

/// One distinct frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The address named: the sampled instruction for a leaf, one byte before the return address
    /// for a caller (so the call, not the next line, is named); 0 for a lost stack.
    pub addr: u64,
    pub origin: Origin,
    /// Function names, outermost first: the symbol, then the functions inlined into it, the
    /// innermost last. Never empty.
    pub names: Vec<String>,
}

impl Frame {
    pub fn is_kernel(&self) -> bool {
        matches!(self.origin, Origin::Kernel | Origin::Lost { kernel: true })
    }

    /// Its names as `stacks.folded` writes them: kernel frames carry [`KERNEL_SUFFIX`].
    pub fn folded_names(&self) -> impl Iterator<Item = String> + '_ {
        let suffix = if self.is_kernel() { KERNEL_SUFFIX } else { "" };
        self.names.iter().map(move |name| format!("{name}{suffix}"))
    }
}

/// A captured file mapping that frames lie in, with the file's identity for offline tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedFile {
    pub mapping: Mapping,
    /// GNU build id, lowercase hex.
    pub build_id: Option<String>,
}

/// One distinct stack of a process: indexes into [`Stacks::frames`], root first, and its weight
/// (samples, or nanoseconds blocked).
pub type Stack = (Vec<usize>, u64);

/// Every process's stacks frame by frame, in the order of the processes given.
#[derive(Debug, Clone, Default)]
pub struct Stacks {
    pub cpu: Vec<Vec<Stack>>,
    pub offcpu: Vec<Vec<Stack>>,
    pub frames: Vec<Frame>,
    pub mappings: Vec<MappedFile>,
}

/// Folds stacks by name. Each distinct folded name is made once and stacks are merged as lists
/// of name numbers: with fifty thousand stacks of twenty frames, making and hashing a string
/// per frame of every stack took a third of a second.
pub struct Folder {
    /// Distinct folded names.
    names: Vec<String>,
    /// Per frame, its folded names as indexes into `names`.
    frame_names: Vec<Vec<u32>>,
}

impl Folder {
    pub fn new(stacks: &Stacks) -> Self {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut names = Vec::new();
        let frame_names = stacks
            .frames
            .iter()
            .map(|frame| {
                frame
                    .folded_names()
                    .map(|name| {
                        *ids.entry(name).or_insert_with_key(|name| {
                            names.push(name.clone());
                            u32::try_from(names.len() - 1).expect("fewer than 2^32 names")
                        })
                    })
                    .collect()
            })
            .collect();
        Self { names, frame_names }
    }

    /// `stacks` by name, merging those that differ only in addresses, sorted by name.
    pub fn fold(&self, stacks: &[Stack]) -> Vec<super::FoldedStack> {
        let mut merged: HashMap<Vec<u32>, u64> = HashMap::with_capacity(stacks.len());
        for (frames, count) in stacks {
            let key = frames
                .iter()
                .flat_map(|&frame| self.frame_names[frame].iter().copied())
                .collect();
            *merged.entry(key).or_default() += count;
        }
        let mut merged: Vec<(Vec<u32>, u64)> = merged.into_iter().collect();
        let text = |key: &[u32]| {
            key.iter()
                .map(|&id| self.names[id as usize].clone())
                .collect()
        };
        // Keys are distinct after merging: the order is that of the names alone.
        merged.sort_unstable_by(|(a, _), (b, _)| {
            a.iter()
                .map(|&id| self.names[id as usize].as_str())
                .cmp(b.iter().map(|&id| self.names[id as usize].as_str()))
        });
        merged
            .into_iter()
            .map(|(key, count)| (text(&key), count))
            .collect()
    }
}

/// Builds [`Stacks`]: resolves each frame and reads each mapping's build id the first time they
/// are met, through the symbolizers' own caches.
pub struct Interner<'s, 'a> {
    kernel: &'s KernelNames,
    user: &'s mut UserSymbolizer<'a>,
    frames: Vec<Frame>,
    frame_ids: HashMap<(Origin, u64), usize>,
    mappings: Vec<MappedFile>,
    mapping_ids: HashMap<Mapping, usize>,
}

impl<'s, 'a> Interner<'s, 'a> {
    pub fn new(kernel: &'s KernelNames, user: &'s mut UserSymbolizer<'a>) -> Self {
        Self {
            kernel,
            user,
            frames: Vec::new(),
            frame_ids: HashMap::new(),
            mappings: Vec::new(),
            mapping_ids: HashMap::new(),
        }
    }

    pub fn finish(self, cpu: Vec<Vec<Stack>>, offcpu: Vec<Vec<Stack>>) -> Stacks {
        Stacks {
            cpu,
            offcpu,
            frames: self.frames,
            mappings: self.mappings,
        }
    }

    /// A user frame at lookup address `addr` of a process with file mappings `maps` and JIT
    /// code `jit` (its pid and perf map). `ids`, parallel to `maps` and `None` at first,
    /// remembers their indexes in [`Stacks::mappings`] so that a frame's mapping is not looked
    /// up by value.
    pub fn user(
        &mut self,
        maps: &[Mapping],
        jit: Option<(u32, &PerfMap)>,
        ids: &mut [Option<usize>],
        addr: u64,
    ) -> usize {
        let Some(index) = maps.iter().position(|m| m.start <= addr && addr < m.end) else {
            if let Some((pid, name)) = jit.and_then(|(pid, map)| Some((pid, map.name(addr)?))) {
                return self.intern(Origin::Jit { pid }, addr, |_| vec![name.to_owned()]);
            }
            return self.intern(Origin::Unmapped, addr, |_| vec!["[unknown]".to_owned()]);
        };
        let map = &maps[index];
        let mapping = *ids[index].get_or_insert_with(|| self.mapping(map));
        let offset = addr - map.start + map.file_offset;
        self.intern(Origin::File(mapping), addr, |this| {
            this.user.names(map, offset)
        })
    }

    fn mapping(&mut self, map: &Mapping) -> usize {
        if let Some(&id) = self.mapping_ids.get(map) {
            return id;
        }
        let id = self.mappings.len();
        self.mappings.push(MappedFile {
            mapping: map.clone(),
            build_id: self.user.build_id(map.source()),
        });
        self.mapping_ids.insert(map.clone(), id);
        id
    }

    /// A kernel frame at lookup address `addr`.
    pub fn kernel(&mut self, addr: u64) -> usize {
        self.intern(Origin::Kernel, addr, |this| vec![this.kernel.name(addr)])
    }

    /// The frame standing for the lost user or kernel half of a stack.
    pub fn lost(&mut self, kernel: bool) -> usize {
        self.intern(Origin::Lost { kernel }, 0, |_| vec![LOST_STACK.to_owned()])
    }

    fn intern(
        &mut self,
        origin: Origin,
        addr: u64,
        names: impl FnOnce(&mut Self) -> Vec<String>,
    ) -> usize {
        if let Some(&id) = self.frame_ids.get(&(origin, addr)) {
            return id;
        }
        let names = names(self);
        let id = self.frames.len();
        self.frames.push(Frame {
            addr,
            origin,
            names,
        });
        self.frame_ids.insert((origin, addr), id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(addr: u64, origin: Origin, names: &[&str]) -> Frame {
        Frame {
            addr,
            origin,
            names: names.iter().map(|&n| n.to_owned()).collect(),
        }
    }

    #[test]
    fn stacks_that_differ_in_addresses_only_merge_and_sort_by_name() {
        let stacks = Stacks {
            frames: vec![
                frame(0x10, Origin::Unmapped, &["main"]),
                frame(0x20, Origin::Unmapped, &["main"]),
                frame(0x30, Origin::Unmapped, &["outer", "inlined"]),
                frame(0x40, Origin::Kernel, &["schedule"]),
                frame(0x50, Origin::Unmapped, &["b"]),
            ],
            ..Stacks::default()
        };
        let folded = Folder::new(&stacks).fold(&[
            (vec![0, 4], 1),
            (vec![0, 2, 3], 2),
            (vec![1, 2, 3], 3),
            (vec![0], 4),
        ]);
        let names = |list: &[&str]| list.iter().map(|&n| n.to_owned()).collect::<Vec<_>>();
        assert_eq!(
            folded,
            [
                (names(&["main"]), 4),
                (names(&["main", "b"]), 1),
                (names(&["main", "outer", "inlined", "schedule_[k]"]), 5),
            ]
        );
    }
}
