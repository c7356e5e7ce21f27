//! The render benchmark's workload (`cargo xtask bench render`): a million samples over fifty
//! thousand distinct stacks of real addresses, run through diagnose's stages after sampling
//! (symbolize, analyze, folded, flamegraph, pprof, html, report.json). User frames lie in the
//! text of this program's own executable mappings (its binary and the shared libraries it
//! loaded), so blazesym reads real ELF files; kernel frames are text symbols from
//! /proc/kallsyms (root sees their addresses). Prints one JSON line: the wall time of each part,
//! the total, and the CPU time of the whole.

use std::{collections::HashMap, path::PathBuf, time::Duration, time::Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use profiler::bench::Process;

#[derive(Debug, Parser)]
struct Args {
    /// Directory the files are written into (must exist).
    #[arg(long)]
    out: PathBuf,
    /// Samples in all.
    #[arg(long, default_value_t = 1_000_000)]
    samples: u64,
    /// Distinct stacks the samples fall on.
    #[arg(long, default_value_t = 50_000)]
    stacks: u32,
    /// Processes the stacks belong to.
    #[arg(long, default_value_t = 100)]
    processes: u32,
    /// Distinct user addresses the frames are drawn from.
    #[arg(long, default_value_t = 30_000)]
    user_addrs: usize,
    /// Distinct kernel addresses the frames are drawn from.
    #[arg(long, default_value_t = 5_000)]
    kernel_addrs: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if u64::from(args.stacks) > args.samples || args.stacks == 0 || args.processes == 0 {
        bail!("--stacks must be between 1 and --samples, --processes at least 1");
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let maps = profiler::bench::own_text_mappings()
        .filter(|maps| !maps.is_empty())
        .context("no executable file mappings in /proc/self/maps")?;
    let user_pool: Vec<u64> = (0..args.user_addrs)
        .map(|_| {
            let map = &maps[rng.below(maps.len())];
            map.start + rng.next() % (map.end - map.start)
        })
        .collect();
    let kernel_pool = kernel_addresses(&mut rng, args.kernel_addrs)?;
    if kernel_pool.is_empty() {
        eprintln!("render: /proc/kallsyms shows no addresses (not root?); no kernel frames");
    }

    let mut stacks: HashMap<i32, Vec<u64>> = HashMap::new();
    let mut per_process: Vec<Vec<((i32, i32), u64)>> = vec![Vec::new(); args.processes as usize];
    let counts = counts(&mut rng, args.samples, args.stacks as usize);
    for (index, &count) in counts.iter().enumerate() {
        let user_id = i32::try_from(2 * index).context("too many stacks")?;
        // Callers near the root come from a small set, as real stacks share their outer frames.
        let depth = 4 + rng.below(28);
        let user: Vec<u64> = (0..depth)
            .map(|level| {
                let from_root = depth - 1 - level;
                let pool = if from_root < 3 { 16 } else { user_pool.len() };
                user_pool[rng.below(pool.min(user_pool.len()))]
            })
            .collect();
        stacks.insert(user_id, user);
        let kernel_id = if kernel_pool.is_empty() || rng.below(2) == 0 {
            -1
        } else {
            let depth = 3 + rng.below(10);
            stacks.insert(
                user_id + 1,
                (0..depth)
                    .map(|_| kernel_pool[rng.below(kernel_pool.len())])
                    .collect(),
            );
            user_id + 1
        };
        per_process[index % args.processes as usize].push(((user_id, kernel_id), count));
    }
    let processes = per_process
        .into_iter()
        .enumerate()
        .map(|(index, stacks)| Process {
            pid: 20_000 + index as u32,
            comm: format!("app-{}", index % 10),
            maps: maps.clone(),
            stacks,
        })
        .collect();

    let start = Instant::now();
    let (parts, cpu) =
        profiler::bench::render_run(processes, stacks, Duration::from_secs(10), &args.out)?;
    let total = start.elapsed();
    let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    let line = serde_json::json!({
        "samples": args.samples,
        "stacks": args.stacks,
        "user_addrs": user_pool.len(),
        "kernel_addrs": kernel_pool.len(),
        "parts_ms": parts
            .iter()
            .map(|&(part, took)| serde_json::json!([part, ms(took)]))
            .collect::<Vec<_>>(),
        "total_ms": ms(total),
        "cpu_ms": ms(cpu),
    });
    println!("{line}");
    Ok(())
}

/// Sample counts of `stacks` stacks adding up to `samples`: every stack at least once, the rest
/// skewed toward the first stacks as real profiles are.
fn counts(rng: &mut XorShift, samples: u64, stacks: usize) -> Vec<u64> {
    let mut counts = vec![1_u64; stacks];
    for _ in stacks as u64..samples {
        let skewed = rng.below(stacks) * rng.below(stacks) / stacks;
        counts[skewed] += 1;
    }
    counts
}

/// `count` addresses inside kernel text symbols, empty when kallsyms hides the addresses.
fn kernel_addresses(rng: &mut XorShift, count: usize) -> anyhow::Result<Vec<u64>> {
    let text = std::fs::read_to_string("/proc/kallsyms").context("reading /proc/kallsyms")?;
    let symbols: Vec<u64> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let addr = u64::from_str_radix(fields.next()?, 16).ok()?;
            let kind = fields.next()?;
            // Module symbols (a fourth field) live outside the kernel image; keep to vmlinux.
            let _name = fields.next()?;
            (addr != 0 && matches!(kind, "t" | "T") && fields.next().is_none()).then_some(addr)
        })
        .collect();
    if symbols.is_empty() {
        return Ok(Vec::new());
    }
    Ok((0..count)
        .map(|_| symbols[rng.below(symbols.len())] + rng.next() % 16)
        .collect())
}

/// A small deterministic generator: the same stacks every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
