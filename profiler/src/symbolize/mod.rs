//! Turns stack ids into frames: kernel frames via kallsyms, user frames via blazesym on the file
//! mappings captured while each process lived, so exited processes still get names. Each frame
//! is resolved once, into structured stacks (addresses, mappings, inlined functions) from which
//! the folded names are derived.

mod build_id;
mod frames;
mod kernel;
mod user;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::Path,
};

use blazesym::symbolize::Symbolized;

use self::frames::Interner;
#[cfg(test)]
pub use self::frames::MappedFile;
pub use self::frames::{Frame, Origin, Stack, Stacks};
use crate::model::{ProcessUsage, table::StackPair};

/// Frames of one sample stack, root first, and how many samples had it.
pub type FoldedStack = (Vec<String>, u64);

/// Suffix inferno and perf use to color kernel frames.
pub const KERNEL_SUFFIX: &str = "_[k]";
/// Frame standing for a stack the kernel could not store (counted in drops).
pub const LOST_STACK: &str = "[lost stack]";

/// Each process's stacks by name, in the order of the processes given.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    /// CPU samples.
    pub cpu: Vec<Vec<FoldedStack>>,
    /// Nanoseconds blocked.
    pub offcpu: Vec<Vec<FoldedStack>>,
    /// The same stacks frame by frame, for formats that keep addresses and mappings (pprof).
    pub stacks: Stacks,
}

/// Symbolizes every process's sampled and blocked stacks. `stacks` maps stack id to instruction
/// pointers, leaf first. Runs on the calling thread: blazesym's symbolizer is neither Send nor
/// Sync.
pub fn symbolize(processes: &[ProcessUsage], stacks: &HashMap<i32, Vec<u64>>) -> Folded {
    let kernel = kernel::KernelNames::new(processes, stacks);
    let symbolizer = user::new_symbolizer();
    let mut user = user::UserSymbolizer::new(&symbolizer);
    // Every user frame's file and offset first, then one file at a time: see `prefetch`.
    let mut by_file: BTreeMap<&Path, BTreeSet<u64>> = BTreeMap::new();
    for process in processes {
        for &((user_id, _), _) in process.stacks.iter().chain(&process.offcpu) {
            for addr in stacks
                .get(&user_id)
                .into_iter()
                .flat_map(|ips| root_first(ips))
            {
                if let Some((map, offset)) = frames::file_offset(&process.identity.maps, addr) {
                    by_file.entry(&map.path).or_default().insert(offset);
                }
            }
        }
    }
    for (path, offsets) in by_file {
        user.prefetch(path, &offsets.into_iter().collect::<Vec<_>>());
    }
    let mut interner = Interner::new(&kernel, &mut user);
    let mut resolve = |pick: fn(&ProcessUsage) -> &[(StackPair, u64)]| -> Vec<Vec<Stack>> {
        processes
            .iter()
            .map(|process| resolve_process(process, pick(process), stacks, &mut interner))
            .collect()
    };
    let cpu = resolve(|p| &p.stacks);
    let offcpu = resolve(|p| &p.offcpu);
    let stacks = interner.finish(cpu, offcpu);
    Folded {
        cpu: stacks.cpu.iter().map(|s| stacks.fold(s)).collect(),
        offcpu: stacks.offcpu.iter().map(|s| stacks.fold(s)).collect(),
        stacks,
    }
}

/// A process's stacks, user frames then kernel frames, root first, merged by frame.
fn resolve_process(
    process: &ProcessUsage,
    pairs: &[(StackPair, u64)],
    stacks: &HashMap<i32, Vec<u64>>,
    interner: &mut Interner<'_, '_>,
) -> Vec<Stack> {
    let mut merged: HashMap<Vec<usize>, u64> = HashMap::new();
    for &((user_id, kernel_id), count) in pairs {
        let mut frames = Vec::new();
        match stacks.get(&user_id) {
            Some(ips) => frames
                .extend(root_first(ips).map(|addr| interner.user(&process.identity.maps, addr))),
            None if kernel_id < 0 || user_id >= 0 => frames.push(interner.lost(false)),
            None => {}
        }
        if let Some(ips) = stacks.get(&kernel_id) {
            frames.extend(root_first(ips).map(|addr| interner.kernel(addr)));
        } else if kernel_id >= 0 {
            frames.push(interner.lost(true));
        }
        *merged.entry(frames).or_default() += count;
    }
    let mut merged: Vec<Stack> = merged.into_iter().collect();
    merged.sort();
    merged
}

/// Lookup addresses of a stack given leaf first, root first.
fn root_first(ips: &[u64]) -> impl Iterator<Item = u64> + '_ {
    ips.iter()
        .enumerate()
        .rev()
        .map(|(index, &ip)| lookup_addr(ip, index))
}

/// Return addresses point after the call; step back one byte so the caller's line is named.
fn lookup_addr(ip: u64, index: usize) -> u64 {
    if index == 0 { ip } else { ip.saturating_sub(1) }
}

/// Function names of one symbol, outermost first (the symbol, then what was inlined into it).
fn names_of(symbolized: &Symbolized<'_>) -> Option<Vec<String>> {
    match symbolized {
        Symbolized::Sym(sym) => Some(
            std::iter::once(sym.name.to_string())
                .chain(sym.inlined.iter().map(|f| f.name.to_string()))
                .collect(),
        ),
        Symbolized::Unknown(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProcessIdentity, read_identity};

    #[inline(never)]
    fn distinctive_symbol_for_test() -> u64 {
        std::hint::black_box(7)
    }

    #[test]
    fn own_function_resolves_through_captured_maps() {
        let me = read_identity(std::process::id()).unwrap();
        let ip = distinctive_symbol_for_test as *const () as u64;
        let process = ProcessUsage {
            samples: 3,
            stacks: vec![((5, -1), 3)],
            ..ProcessUsage::new(ProcessIdentity { exited: true, ..me })
        };
        let stacks = HashMap::from([(5, vec![ip])]);
        let folded = symbolize(&[process], &stacks).cpu;
        assert_eq!(folded[0].len(), 1);
        let (frames, count) = &folded[0][0];
        assert_eq!(*count, 3);
        assert!(
            frames
                .iter()
                .any(|f| f.contains("distinctive_symbol_for_test")),
            "{frames:?}"
        );
    }

    #[test]
    fn missing_stacks_are_named_lost_not_dropped() {
        let process = ProcessUsage {
            samples: 4,
            stacks: vec![((3, 4), 4)],
            ..ProcessUsage::new(ProcessIdentity::exited_unknown(9, Some("x")))
        };
        let folded = symbolize(&[process], &HashMap::new()).cpu;
        assert_eq!(
            folded[0],
            vec![(
                vec![
                    LOST_STACK.to_owned(),
                    format!("{LOST_STACK}{KERNEL_SUFFIX}")
                ],
                4
            )]
        );
    }

    #[test]
    fn structured_frames_carry_address_mapping_and_build_id() {
        let me = read_identity(std::process::id()).unwrap();
        let ip = distinctive_symbol_for_test as *const () as u64;
        let process = ProcessUsage {
            samples: 2,
            stacks: vec![((5, 6), 2)],
            ..ProcessUsage::new(ProcessIdentity { exited: true, ..me })
        };
        // The caller's return address one byte past `ip` is looked up at `ip`: the same frame.
        let folded = symbolize(&[process], &HashMap::from([(5, vec![ip, ip + 1])]));
        let stacks = &folded.stacks;
        let (ids, count) = &stacks.cpu[0][0];
        assert_eq!(*count, 2);
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert_eq!(ids[0], ids[1]);
        let frame = &stacks.frames[ids[0]];
        assert_eq!(frame.addr, ip);
        let Origin::File(mapping) = frame.origin else {
            panic!("{frame:?}")
        };
        let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(stacks.mappings[mapping].mapping.path, exe);
        assert!(stacks.mappings[mapping].build_id.is_some());
        assert!(
            frame
                .names
                .iter()
                .any(|n| n.contains("distinctive_symbol_for_test")),
            "{frame:?}"
        );
        assert_eq!(stacks.frames[ids[2]].origin, Origin::Lost { kernel: true });
        let names = &folded.cpu[0][0].0;
        assert_eq!(
            names.last().map(String::as_str),
            Some("[lost stack]_[k]"),
            "{names:?}"
        );
        assert_eq!(names.len(), 2 * frame.names.len() + 1);
    }

    #[test]
    fn stripped_system_library_resolves_from_its_dynamic_symbols() {
        let me = read_identity(std::process::id()).unwrap();
        // Inside libc's `write`, past its first instruction.
        let ip = libc::write as *const () as u64 + 4;
        let process = ProcessUsage {
            samples: 1,
            stacks: vec![((5, -1), 1)],
            ..ProcessUsage::new(ProcessIdentity { exited: true, ..me })
        };
        let folded = symbolize(&[process], &HashMap::from([(5, vec![ip])])).cpu;
        let frames = &folded[0][0].0;
        assert!(frames.iter().any(|f| f.contains("write")), "{frames:?}");
    }
}
