//! Kernel frames: every kernel address of the run resolved through kallsyms in one batch.

use std::collections::HashMap;

use blazesym::MaybeDefault;
use blazesym::symbolize::{
    Input, Symbolized,
    source::{Kernel, Source},
};

use super::lookup_addr;
use crate::model::ProcessUsage;

/// Name given to a kernel address kallsyms does not cover.
const UNKNOWN: &str = "[unknown]";

/// Kernel addresses are the same for every process: each is resolved once.
pub struct KernelNames {
    names: HashMap<u64, String>,
}

impl KernelNames {
    /// Resolves with a symbolizer of its own, dropped on return with the kallsyms it parsed.
    pub fn new(processes: &[ProcessUsage], stacks: &HashMap<i32, Vec<u64>>) -> Self {
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
        let symbolizer = super::user::new_symbolizer();
        let resolved = symbolizer
            .symbolize(&source, Input::AbsAddr(&addrs))
            .unwrap_or_default();
        let names = addrs
            .iter()
            .zip(resolved.iter().map(Some).chain(std::iter::repeat(None)))
            .filter_map(|(&addr, sym)| match sym {
                Some(Symbolized::Sym(sym)) => Some((addr, sym.name.to_string())),
                _ => None,
            })
            .collect();
        Self { names }
    }

    /// The function at `addr` (a lookup address, as [`lookup_addr`] makes them).
    pub fn name(&self, addr: u64) -> String {
        self.names
            .get(&addr)
            .map_or_else(|| UNKNOWN.to_owned(), Clone::clone)
    }
}
