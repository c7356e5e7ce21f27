//! `cargo xtask bench render`: a million samples over fifty thousand distinct stacks of real
//! addresses, symbolized and rendered (folded, flamegraph, pprof, html, report.json) the way
//! `diagnose` does after sampling, by the `render` example of the profiler crate; each round is
//! a fresh process, so nothing is cached between rounds.

use std::{collections::BTreeMap, fs, path::Path, process::Command};

use anyhow::{Context as _, Result, bail};

use super::{
    Context, SubBench, Summary, prepare,
    results::{Goal, Row},
};
use crate::util;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Rounds; each runs the render example once, in a fresh process.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

impl SubBench for Options {
    const NAME: &'static str = "render";
    const WORKLOADS: bool = false;

    fn quick() -> Self {
        Self { runs: 1 }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        run(&ctx.target, self.runs)
    }
}

/// The goal of the issue: everything in 2 s.
const GOAL_S: f64 = 2.0;

fn run(target: &Path, runs: u32) -> Result<Vec<Row>> {
    let example = target.join("release/examples/render");
    let scratch = prepare("render", &[&example])?;
    let command = |out: &Path| {
        let mut cmd = Command::new(&example);
        cmd.arg("--out").arg(out);
        cmd
    };
    println!("bench render: {runs} rounds");
    println!(
        "  workload: {}",
        util::display(&command(&scratch.path().join("round-N")))
    );

    let mut order: Vec<String> = Vec::new();
    let mut parts: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut totals = Vec::new();
    let mut cpus = Vec::new();
    for round in 1..=runs {
        let out = scratch.path().join(format!("round-{round}"));
        fs::create_dir(&out).with_context(|| format!("creating {}", out.display()))?;
        let line = util::stdout_of(&mut command(&out))?;
        let result: serde_json::Value = serde_json::from_str(line.trim())
            .with_context(|| format!("the render example printed {line:?}"))?;
        let (Some(total), Some(cpu), Some(list)) = (
            result["total_ms"].as_f64(),
            result["cpu_ms"].as_f64(),
            result["parts_ms"].as_array(),
        ) else {
            bail!("the render example printed {line:?}");
        };
        for part in list {
            let (Some(name), Some(ms)) = (part[0].as_str(), part[1].as_f64()) else {
                bail!("the render example printed {line:?}");
            };
            if !order.iter().any(|known| known == name) {
                order.push(name.to_owned());
            }
            parts.entry(name.to_owned()).or_default().push(ms);
        }
        if round == 1 {
            println!(
                "  input:    {} samples, {} stacks, {} user and {} kernel addresses",
                result["samples"], result["stacks"], result["user_addrs"], result["kernel_addrs"]
            );
        }
        eprintln!(
            "bench render: round {round}/{runs}: {:.3} s wall, {:.3} s CPU",
            total / 1e3,
            cpu / 1e3
        );
        totals.push(total / 1e3);
        cpus.push(cpu / 1e3);
        fs::remove_dir_all(&out)?;
    }

    println!();
    println!("  part (median wall ms; pprof runs beside folded and the flamegraph)");
    for name in &order {
        if let Some(s) = parts.get(name).and_then(|ms| Summary::of(ms)) {
            println!("    {name:<12} {:>8.1}", s.median);
        }
    }
    if let Some(s) = Summary::of(&cpus) {
        println!("  CPU time (user + system, median): {:.3} s", s.median);
    }
    let summary = Summary::of(&totals).context("no rounds ran")?;
    println!(
        "  wall: median {:.3} s  min {:.3} s  max {:.3} s",
        summary.median, summary.min, summary.max
    );
    let mut row = Row::measured(
        Options::NAME,
        "1 M samples / 50 k stacks: symbolize, folded, SVG, pprof, HTML, JSON",
        "s",
        &totals,
    )
    .with_goal(Goal::Max(GOAL_S));
    row.note = Summary::of(&cpus).map(|cpu| format!("CPU time {:.3} s (median)", cpu.median));
    Ok(vec![row])
}
