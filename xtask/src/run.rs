//! `cargo xtask run`: builds the profiler and runs it as root with the given arguments.

use std::os::unix::process::CommandExt as _;

use anyhow::{Context as _, Result};

use crate::{setup, util};

/// Only returns on failure: on success the profiler replaces this process, so its exit code, its
/// stdout and Ctrl-C all behave as if it had been started directly.
pub fn run(args: &[String]) -> Result<()> {
    setup::run(setup::Needs::Build)?;
    let profiler = util::target_dir()?.join("release").join("profiler");
    util::run_step_quiet_stdout(
        "build profiler",
        util::cargo()
            .args(["build", "--release", "-p", "profiler"])
            .current_dir(util::workspace_root()),
    )?;
    let mut cmd = util::privileged(&profiler)?;
    cmd.args(args);
    let err = cmd.exec();
    Err(err).with_context(|| format!("could not start `{}`", util::display(&cmd)))
}
