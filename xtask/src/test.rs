//! `cargo xtask test`: builds the profiler, then runs the unit tests and the root-only end-to-end
//! tests.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
};

use anyhow::{Context as _, Result, bail};

use crate::{setup, util};

/// Variables the end-to-end tests read; named so the sudo path can say what it keeps.
const E2E_ENV: [&str; 2] = ["PROFILER_BIN", "PROFILER_REQUIRE_BPF"];

pub fn run(extra_args: &[String]) -> Result<()> {
    setup::run(setup::Needs::Test)?;
    let workspace = util::workspace_root();
    let profiler_bin = util::target_dir()?.join("release").join("profiler");

    util::run_step(
        "build profiler",
        util::cargo()
            .args(["build", "--release", "-p", "profiler"])
            .current_dir(&workspace),
    )?;

    // Both test steps run even when one fails, so a single run reports every broken layer.
    let mut failures = Vec::new();
    let unit = util::run_step(
        "unit tests",
        util::cargo()
            // profiler-ebpf is no_std/no_main for the BPF target only; profiler/build.rs builds it.
            .args(["test", "--workspace", "--exclude", "profiler-tests"])
            .args(["--exclude", "profiler-ebpf"])
            .current_dir(&workspace),
    );
    if let Err(err) = unit {
        failures.push(err);
    }
    failures.extend(run_e2e(&workspace, &profiler_bin, extra_args));

    if failures.is_empty() {
        return Ok(());
    }
    for failure in &failures {
        eprintln!("xtask test: {failure:#}");
    }
    bail!("{} step(s) failed", failures.len())
}

fn run_e2e(workspace: &Path, profiler_bin: &Path, extra_args: &[String]) -> Vec<anyhow::Error> {
    const STEP: &str = "e2e tests";
    if util::is_root() {
        let mut cmd = util::cargo();
        // Every test binary runs even after one fails: CI shows all failures at once.
        cmd.args([
            "test",
            "--release",
            "--no-fail-fast",
            "-p",
            "profiler-tests",
            "--tests",
        ])
        .arg("--")
        .args(extra_args)
        .env("PROFILER_BIN", profiler_bin)
        // As root the end-to-end tests can load BPF: one that cannot fails, never skips.
        .env("PROFILER_REQUIRE_BPF", "1")
        .current_dir(workspace);
        return util::run_step(STEP, &mut cmd).err().into_iter().collect();
    }

    // Not root: build as the user so target/ stays user-owned, and raise only the test processes.
    let executables = match build_e2e(workspace) {
        Ok(executables) => executables,
        Err(err) => return vec![err],
    };
    let tests_dir = workspace.join("tests");
    let mut failures = Vec::new();
    for exe in executables {
        let result = util::privileged(&exe).and_then(|mut cmd| {
            cmd.args(extra_args)
                .env("PROFILER_BIN", profiler_bin)
                .env("PROFILER_REQUIRE_BPF", "1")
                .current_dir(&tests_dir);
            eprintln!(
                "xtask test: running `{}` (keeping {})",
                util::display(&cmd),
                E2E_ENV.join(", ")
            );
            util::run_step(STEP, &mut cmd)
        });
        if let Err(err) = result {
            failures.push(err);
        }
    }
    failures
}

/// Compiles the end-to-end test executables and returns their paths, as cargo reports them.
fn build_e2e(workspace: &Path) -> Result<Vec<PathBuf>> {
    let mut cmd = util::cargo();
    cmd.args([
        "test",
        "--release",
        "-p",
        "profiler-tests",
        "--tests",
        "--no-run",
    ])
    // Diagnostics still render on stderr; only the artifact records come as JSON on stdout.
    .arg("--message-format=json-render-diagnostics")
    .current_dir(workspace)
    .stdout(Stdio::piped());
    let output = cmd
        .output()
        .with_context(|| format!("could not start `{}`", util::display(&cmd)))?;
    util::check("build e2e tests", &cmd, output.status)?;
    let executables = test_executables(&String::from_utf8_lossy(&output.stdout));
    if executables.is_empty() {
        bail!(
            "step `build e2e tests`: `{}` reported no test executables",
            util::display(&cmd)
        );
    }
    Ok(executables)
}

fn test_executables(messages: &str) -> Vec<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| {
            msg["reason"] == "compiler-artifact"
                && msg["profile"]["test"] == serde_json::json!(true)
        })
        .filter_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_only_test_executables() {
        let messages = [
            r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":"/t/e2e-1"}"#,
            r#"{"reason":"compiler-artifact","profile":{"test":false},"executable":"/t/burner"}"#,
            r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":null}"#,
            r#"{"reason":"build-finished","success":true}"#,
            "not json",
        ]
        .join("\n");
        assert_eq!(test_executables(&messages), [PathBuf::from("/t/e2e-1")]);
    }
}
