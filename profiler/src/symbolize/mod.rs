//! Turns stack ids into frame names: kernel frames via kallsyms, user frames via blazesym on the
//! file mappings captured while each process lived, so exited processes still get names.

mod user;

use std::collections::HashMap;

use blazesym::MaybeDefault;
use blazesym::symbolize::{
    Input, Symbolized, Symbolizer,
    source::{Kernel, Source},
};

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
}

/// Symbolizes every process's sampled and blocked stacks. `stacks` maps stack id to instruction
/// pointers, leaf first. Runs on the calling thread: blazesym's symbolizer is neither Send nor
/// Sync.
pub fn symbolize(processes: &[ProcessUsage], stacks: &HashMap<i32, Vec<u64>>) -> Folded {
    let symbolizer = Symbolizer::builder()
        .enable_inlined_fns(true)
        .enable_code_info(false)
        .build();
    let kernel = KernelNames::new(&symbolizer, processes, stacks);
    let mut user = user::UserSymbolizer::new(&symbolizer);
    let mut fold = |pick: fn(&ProcessUsage) -> &[(StackPair, u64)]| -> Vec<Vec<FoldedStack>> {
        processes
            .iter()
            .map(|process| fold_process(process, pick(process), stacks, &kernel, &mut user))
            .collect()
    };
    Folded {
        cpu: fold(|p| &p.stacks),
        offcpu: fold(|p| &p.offcpu),
    }
}

fn fold_process(
    process: &ProcessUsage,
    pairs: &[(StackPair, u64)],
    stacks: &HashMap<i32, Vec<u64>>,
    kernel: &KernelNames,
    user: &mut user::UserSymbolizer<'_>,
) -> Vec<FoldedStack> {
    let mut folded: HashMap<Vec<String>, u64> = HashMap::new();
    for &((user_id, kernel_id), count) in pairs {
        let mut frames = Vec::new();
        match stacks.get(&user_id) {
            Some(ips) => frames.extend(user.frames(&process.identity.maps, ips)),
            None if kernel_id < 0 || user_id >= 0 => frames.push(LOST_STACK.to_owned()),
            None => {}
        }
        if let Some(ips) = stacks.get(&kernel_id) {
            frames.extend(kernel.frames(ips));
        } else if kernel_id >= 0 {
            frames.push(format!("{LOST_STACK}{KERNEL_SUFFIX}"));
        }
        *folded.entry(frames).or_default() += count;
    }
    let mut folded: Vec<FoldedStack> = folded.into_iter().collect();
    folded.sort();
    folded
}

/// Return addresses point after the call; step back one byte so the caller's line is named.
fn lookup_addr(ip: u64, index: usize) -> u64 {
    if index == 0 { ip } else { ip.saturating_sub(1) }
}

/// Kernel addresses are the same for every process: resolve each once.
struct KernelNames {
    names: HashMap<u64, Vec<String>>,
}

impl KernelNames {
    fn new(
        symbolizer: &Symbolizer,
        processes: &[ProcessUsage],
        stacks: &HashMap<i32, Vec<u64>>,
    ) -> Self {
        let mut addrs: Vec<u64> = processes
            .iter()
            .flat_map(|p| p.stacks.iter().chain(&p.offcpu))
            .map(|&((_, kernel), _)| kernel)
            .filter_map(|id| stacks.get(&id))
            .flat_map(|ips| ips.iter().enumerate().map(|(i, &ip)| lookup_addr(ip, i)))
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        let source = Source::Kernel(Kernel {
            kallsyms: MaybeDefault::Default,
            vmlinux: MaybeDefault::None,
            debug_syms: false,
            ..Kernel::default()
        });
        let resolved = symbolizer
            .symbolize(&source, Input::AbsAddr(&addrs))
            .unwrap_or_default();
        let names = addrs
            .iter()
            .zip(resolved.iter().map(Some).chain(std::iter::repeat(None)))
            .map(|(&addr, sym)| {
                let names = match sym {
                    Some(Symbolized::Sym(sym)) => vec![format!("{}{KERNEL_SUFFIX}", sym.name)],
                    _ => vec![format!("[unknown]{KERNEL_SUFFIX}")],
                };
                (addr, names)
            })
            .collect();
        Self { names }
    }

    fn frames<'a>(&'a self, ips: &'a [u64]) -> impl Iterator<Item = String> + 'a {
        ips.iter().enumerate().rev().flat_map(|(i, &ip)| {
            self.names
                .get(&lookup_addr(ip, i))
                .cloned()
                .unwrap_or_default()
        })
    }
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
