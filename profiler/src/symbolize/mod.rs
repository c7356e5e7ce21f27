//! Turns stack ids into frames: kernel frames via kallsyms, user frames via blazesym on the file
//! mappings captured while each process lived, so exited processes still get names. Each frame
//! is resolved once, into structured stacks (addresses, mappings, inlined functions) from which
//! the folded names are derived.

pub mod build_id;
mod debug_size;
mod frames;
mod kernel;
mod user;
mod worker;

use std::collections::HashMap;

use blazesym::symbolize::{Symbolized, Symbolizer};

#[cfg(test)]
pub use self::frames::MappedFile;
use self::frames::{Folder, Interner};
pub use self::frames::{Frame, Origin, Stack, Stacks};
pub use self::worker::{Files, Worker};
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
/// Sync. Each file gets a symbolizer of its own, dropped once its batch is resolved, which keeps
/// the peak memory of a record window low ([`user::UserSymbolizer::one_file_at_a_time`]);
/// diagnose's [`Worker`] instead keeps files parsed while sampling.
pub fn symbolize(processes: &[ProcessUsage], stacks: &HashMap<i32, Vec<u64>>) -> Folded {
    let symbolizer = new_symbolizer();
    symbolize_with(
        &symbolizer,
        &mut user::UserSymbolizer::one_file_at_a_time(&symbolizer),
        processes,
        stacks,
    )
}

/// The one configuration of blazesym: inlined functions named, no source lines.
fn new_symbolizer() -> Symbolizer {
    Symbolizer::builder()
        .enable_inlined_fns(true)
        .enable_code_info(false)
        .build()
}

/// [`symbolize`] with a symbolizer and user-frame caches that may already hold parsed files.
fn symbolize_with(
    symbolizer: &Symbolizer,
    user: &mut user::UserSymbolizer<'_>,
    processes: &[ProcessUsage],
    stacks: &HashMap<i32, Vec<u64>>,
) -> Folded {
    let kernel = kernel::KernelNames::new(symbolizer, processes, stacks);
    user.resolve_all(processes, stacks);
    let mut interner = Interner::new(&kernel, user);
    let mut resolve = |pick: fn(&ProcessUsage) -> &[(StackPair, u64)]| -> Vec<Vec<Stack>> {
        processes
            .iter()
            .map(|process| resolve_process(process, pick(process), stacks, &mut interner))
            .collect()
    };
    let cpu = resolve(|p| &p.stacks);
    let offcpu = resolve(|p| &p.offcpu);
    let stacks = interner.finish(cpu, offcpu);
    let folder = Folder::new(&stacks);
    Folded {
        cpu: stacks.cpu.iter().map(|s| folder.fold(s)).collect(),
        offcpu: stacks.offcpu.iter().map(|s| folder.fold(s)).collect(),
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
    let maps = &process.identity.maps;
    let jit = process
        .identity
        .perf_map
        .as_deref()
        .map(|map| (process.identity.pid, map));
    let mut mapping_ids = vec![None; maps.len()];
    let mut merged: HashMap<Vec<usize>, u64> = HashMap::new();
    for &((user_id, kernel_id), count) in pairs {
        let mut frames = Vec::new();
        match stacks.get(&user_id) {
            Some(ips) => {
                frames.extend(
                    root_first(ips).map(|addr| interner.user(maps, jit, &mut mapping_ids, addr)),
                );
            }
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
