//! `cargo xtask bench render`: a million samples over fifty thousand distinct stacks of real
//! addresses, symbolized and rendered (folded, flamegraph, pprof, html, report.json) the way
//! `diagnose` does after sampling, by the `render` example of the profiler crate; each round is
//! a fresh process, so nothing is cached between rounds.

use std::{collections::BTreeMap, fs, path::Path, process::Command};

use anyhow::{Context as _, Result, bail};
use tempfile::TempDir;

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
    /// Frames of the worst input `profiler flamegraph` takes at its defaults (just under
    /// `--max-frames`): stacks so deep and so few that every frame is drawn.
    #[arg(long, default_value_t = 3_900_000)]
    worst_frames: usize,
}

impl SubBench for Options {
    const NAME: &'static str = "render";
    const WORKLOADS: bool = false;

    fn quick() -> Self {
        Self {
            runs: 1,
            worst_frames: 10_000,
        }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        let (mut rows, scratch) = run(&ctx.target, self.runs)?;
        let folded = scratch.path().join("round-1/stacks.folded");
        let profiler = ctx.release("profiler");
        rows.extend(flamegraph_memory(
            &profiler,
            &folded,
            scratch.path(),
            self.worst_frames,
        )?);
        Ok(rows)
    }
}

/// The goal of the issue: everything in 2 s.
const GOAL_S: f64 = 2.0;

/// The rows, and the scratch directory holding the first round's files.
fn run(target: &Path, runs: u32) -> Result<(Vec<Row>, TempDir)> {
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
        if round > 1 {
            fs::remove_dir_all(&out)?;
        }
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
    Ok((vec![row], scratch))
}

/// The peak memory `profiler flamegraph` may take at its default limits: about 250 bytes a
/// drawn frame, and `--max-frames` is 4 million.
const FLAMEGRAPH_MAX_MIB: f64 = 1024.0;

/// Peak resident memory of `profiler flamegraph` on the render output (`folded`), on the
/// worst input its defaults let through (`worst_frames` frames, all drawn), and on inputs it
/// refuses (a 50 MB line, /dev/zero); one run each, the figure being deterministic.
fn flamegraph_memory(
    profiler: &Path,
    folded: &Path,
    scratch: &Path,
    worst_frames: usize,
) -> Result<Vec<Row>> {
    let worst = scratch.join("worst.folded");
    // Fifteen equal stacks: each a fifteenth of the width, so no frame is too narrow to draw.
    let depth = worst_frames / 15;
    let mut text = String::new();
    for stack in 0..15 {
        text.push_str(&format!(
            "top{stack};{}leaf 1\n",
            "f;".repeat(depth.saturating_sub(2))
        ));
    }
    fs::write(&worst, text).context("writing the worst-case input")?;
    let line = scratch.join("line.folded");
    fs::write(&line, format!("{}leaf 1\n", "f;".repeat(25_000_000)))
        .context("writing the one-line input")?;
    let inputs: [(String, &Path, bool); 4] = [
        (
            "the render output: 50 k stacks, 1.1 M frames".to_owned(),
            folded,
            true,
        ),
        (
            format!("worst at the defaults: 15 stacks, {worst_frames} frames, all drawn"),
            &worst,
            true,
        ),
        ("a 50 MB line (refused)".to_owned(), &line, false),
        (
            "/dev/zero (refused)".to_owned(),
            Path::new("/dev/zero"),
            false,
        ),
    ];
    // GNU time, not wait4 here: a child's peak starts from its parent's at fork, and this
    // process held the inputs.
    let time = util::find_command("time").context("GNU time is missing (`cargo xtask setup`)")?;
    let mut rows = Vec::new();
    for (condition, input, draws) in inputs {
        let svg = scratch.join("memory.svg");
        let mut cmd = Command::new(&time);
        cmd.args(["-f", "%M"])
            .arg(profiler)
            .arg("flamegraph")
            .arg(input)
            .arg("--out")
            .arg(&svg);
        let output = cmd
            .output()
            .with_context(|| format!("running `{}`", util::display(&cmd)))?;
        if output.status.success() != draws {
            bail!("`{}` exited with {}", util::display(&cmd), output.status);
        }
        let _ = fs::remove_file(&svg);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let kib: f64 = stderr
            .lines()
            .last()
            .and_then(|line| line.trim().parse().ok())
            .with_context(|| format!("GNU time printed no peak: {stderr}"))?;
        let mib = kib / 1024.0;
        println!("  flamegraph, {condition}: peak RSS {mib:.1} MiB");
        rows.push(
            Row::measured(
                Options::NAME,
                format!("flamegraph peak RSS: {condition}"),
                "MiB",
                &[mib],
            )
            .with_goal(Goal::Max(FLAMEGRAPH_MAX_MIB)),
        );
    }
    Ok(rows)
}
