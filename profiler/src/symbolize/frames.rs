//! Structured stacks: each distinct frame (address, where it lies, function names) and each file
//! mapping stored once, stacks as lists of frame indexes. The folded names are derived from them.

use std::collections::HashMap;

use super::{KERNEL_SUFFIX, LOST_STACK, kernel::KernelNames, user::UserSymbolizer};
use crate::model::Mapping;

/// Where a frame's address lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// In the file mapping `Stacks::mappings[index]`.
    File(usize),
    /// A user address outside every captured file mapping (anonymous or JIT code).
    Unmapped,
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

impl Stacks {
    /// The stacks by name, merging those that differ only in addresses, sorted.
    pub fn fold(&self, stacks: &[Stack]) -> Vec<super::FoldedStack> {
        let mut folded: HashMap<Vec<String>, u64> = HashMap::new();
        for (ids, count) in stacks {
            let names = ids
                .iter()
                .flat_map(|&id| self.frames[id].folded_names())
                .collect();
            *folded.entry(names).or_default() += count;
        }
        let mut folded: Vec<_> = folded.into_iter().collect();
        folded.sort();
        folded
    }
}

/// The file mapping of `maps` that user address `addr` lies in, and its offset in that file.
pub fn file_offset(maps: &[Mapping], addr: u64) -> Option<(&Mapping, u64)> {
    let map = maps.iter().find(|m| m.start <= addr && addr < m.end)?;
    Some((map, addr - map.start + map.file_offset))
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

    /// A user frame at lookup address `addr` of a process with file mappings `maps`.
    pub fn user(&mut self, maps: &[Mapping], addr: u64) -> usize {
        let Some((map, offset)) = file_offset(maps, addr) else {
            return self.intern(Origin::Unmapped, addr, |_| vec!["[unknown]".to_owned()]);
        };
        let mapping = match self.mapping_ids.get(map) {
            Some(&id) => id,
            None => {
                let id = self.mappings.len();
                self.mappings.push(MappedFile {
                    mapping: map.clone(),
                    build_id: self.user.build_id(&map.path),
                });
                self.mapping_ids.insert(map.clone(), id);
                id
            }
        };
        self.intern(Origin::File(mapping), addr, |this| {
            this.user.names(map, offset)
        })
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
