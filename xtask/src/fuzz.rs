//! `cargo xtask fuzz`: builds the cargo-fuzz targets in `fuzz/` with nightly and runs each for a
//! while, failing with the reproducer's path when one crashes.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

use crate::util;

/// The fuzz crate, its own workspace so that sanitizer flags never reach the main one.
const FUZZ_DIR: &str = "fuzz";
/// Longest a single input may take before libFuzzer calls it a hang, in seconds.
const INPUT_TIMEOUT_S: u32 = 10;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to fuzz each target.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    seconds: u32,
    /// Targets to run (default: every target in fuzz/).
    targets: Vec<String>,
}

pub fn run(args: &Args) -> Result<()> {
    ensure_cargo_fuzz()?;
    let workspace = util::workspace_root();
    let fuzz_dir = workspace.join(FUZZ_DIR);
    let known = list_targets(&workspace)?;
    let targets = if args.targets.is_empty() {
        known
    } else {
        if let Some(unknown) = args.targets.iter().find(|t| !known.contains(t)) {
            bail!(
                "no fuzz target {unknown:?}; the targets are {}",
                known.join(", ")
            );
        }
        args.targets.clone()
    };

    // `cargo fmt --all` stops at the workspace, which leaves fuzz/ out.
    util::run_step(
        "fuzz: rustfmt --check",
        util::cargo()
            .args(["fmt", "--manifest-path"])
            .arg(fuzz_dir.join("Cargo.toml"))
            .args(["--", "--check"]),
    )?;
    let started = Instant::now();
    util::run_step(
        "fuzz: build",
        cargo_fuzz().arg("build").current_dir(&workspace),
    )?;
    eprintln!("fuzz: built in {:.0}s", started.elapsed().as_secs_f64());

    // Every target runs even after one crashes, so one run reports every broken parser.
    let mut failures = Vec::new();
    for target in &targets {
        if let Err(err) = run_target(&workspace, &fuzz_dir, target, args.seconds) {
            eprintln!("fuzz: {target}: {err:#}");
            failures.push(target.as_str());
        }
    }
    eprintln!(
        "fuzz: {} target(s), {}s each, {:.0}s in all",
        targets.len(),
        args.seconds,
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("fuzz target(s) failed: {}", failures.join(", "))
    }
}

/// cargo-fuzz is a cargo subcommand installed once per machine; `cargo install` is skipped
/// when it is on PATH, so the common case costs nothing.
fn ensure_cargo_fuzz() -> Result<()> {
    if util::find_in_path("cargo-fuzz").is_some() {
        return Ok(());
    }
    eprintln!("fuzz: installing cargo-fuzz…");
    util::run_step_quiet_stdout(
        "fuzz: install cargo-fuzz",
        util::cargo().args(["install", "cargo-fuzz", "--locked"]),
    )
}

/// `cargo fuzz` on the nightly toolchain (sanitizers and `-Z` flags need it), whatever
/// toolchain runs the xtask.
fn cargo_fuzz() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo", "fuzz"]);
    cmd
}

fn list_targets(workspace: &Path) -> Result<Vec<String>> {
    let listed = util::stdout_of(cargo_fuzz().arg("list").current_dir(workspace)).context(
        "listing the fuzz targets (is the nightly toolchain installed? `cargo xtask setup`)",
    )?;
    let targets: Vec<String> = listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        bail!("`cargo fuzz list` names no targets in {FUZZ_DIR}/");
    }
    Ok(targets)
}

/// Fuzzes `target` for `seconds`, starting from its committed seeds. New inputs go to the
/// ignored `fuzz/work/<target>`, so the committed corpus only changes on purpose; libFuzzer's
/// output goes to `fuzz/work/<target>.log` and is shown only when the target fails.
fn run_target(workspace: &Path, fuzz_dir: &Path, target: &str, seconds: u32) -> Result<()> {
    let work = fuzz_dir.join("work");
    let found = work.join(target);
    fs::create_dir_all(&found).with_context(|| format!("creating {}", found.display()))?;
    let seeds = fuzz_dir.join("corpus").join(target);
    let log_path = work.join(format!("{target}.log"));
    let log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut cmd = cargo_fuzz();
    cmd.args(["run", target])
        .arg(&found)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_S}"))
        .current_dir(workspace)
        .stdout(log.try_clone()?)
        .stderr(log);
    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", util::display(&cmd)))?;
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    if status.success() {
        // libFuzzer's last status line: runs, coverage, corpus size, speed.
        let done = output
            .lines()
            .rev()
            .find(|line| line.contains("DONE"))
            .unwrap_or("(no summary line)");
        eprintln!(
            "fuzz: {target}: ok in {:.0}s: {done}",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    for line in failure_excerpt(&output) {
        eprintln!("  {line}");
    }
    match reproducer(&output, workspace) {
        Some(input) => bail!(
            "crashed on {}; reproduce with `cargo +nightly fuzz run {target} {}`",
            input.display(),
            input.display()
        ),
        None => bail!(
            "`{}` exited with {status}; its output is in {}",
            util::display(&cmd),
            log_path.display()
        ),
    }
}

/// What went wrong, from the target's own report (a panic, or a sanitizer's or libFuzzer's
/// error) rather than cargo-fuzz's closing advice: at most 30 lines.
fn failure_excerpt(output: &str) -> Vec<&str> {
    let lines: Vec<&str> = output.lines().collect();
    let start = lines
        .iter()
        .position(|line| line.contains("panicked at") || line.contains("ERROR: "))
        .unwrap_or_else(|| lines.len().saturating_sub(30));
    lines.into_iter().skip(start).take(30).collect()
}

/// The input libFuzzer saved for a crash, from its "Test unit written to PATH" line.
fn reproducer(output: &str, workspace: &Path) -> Option<PathBuf> {
    let path = output.lines().rev().find_map(|line| {
        line.split_once("Test unit written to ")
            .map(|(_, path)| path.trim())
    })?;
    Some(workspace.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crashing_input_is_found_in_libfuzzers_output() {
        let output = "==1== ERROR: libFuzzer: deadly signal\n\
                      artifact_prefix='fuzz/artifacts/folded/'; Test unit written to \
                      fuzz/artifacts/folded/crash-0123abcd\nBase64: Iy\n";
        assert_eq!(
            reproducer(output, Path::new("/w")),
            Some(PathBuf::from("/w/fuzz/artifacts/folded/crash-0123abcd"))
        );
        assert_eq!(reproducer("#1 DONE cov: 3\n", Path::new("/w")), None);
        let excerpt =
            failure_excerpt("#2 NEW cov: 5\nthread '<unnamed>' panicked at x.rs:1:1:\nboom\n");
        assert_eq!(
            excerpt,
            ["thread '<unnamed>' panicked at x.rs:1:1:", "boom"]
        );
    }
}
