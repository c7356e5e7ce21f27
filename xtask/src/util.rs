//! Shared command plumbing: workspace paths, privilege checks, and running child processes.

use std::{
    env,
    ffi::{OsStr, OsString},
    os::fd::AsFd as _,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
};

use anyhow::{Context as _, Result, bail};

/// The workspace root; the xtask crate sits one level below it.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// Where cargo puts build outputs; asked of cargo because `CARGO_TARGET_DIR` or a config file may
/// move it away from `<workspace>/target`.
pub fn target_dir() -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(workspace_root());
    let metadata: serde_json::Value = serde_json::from_str(&stdout_of(&mut cmd)?)
        .context("`cargo metadata` printed something that is not JSON")?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` did not name a target directory")
}

/// The cargo that launched the xtask, so child builds use the same toolchain.
pub fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program` as root: itself when already root, else through `sudo -E` so variables such as
/// `PROFILER_BIN` survive.
pub fn privileged(program: impl AsRef<OsStr>) -> Result<Command> {
    if is_root() {
        return Ok(Command::new(program));
    }
    if find_in_path("sudo").is_none() {
        bail!(
            "`{}` needs root, and sudo is not installed: rerun this command as root",
            program.as_ref().to_string_lossy()
        );
    }
    let mut cmd = Command::new("sudo");
    cmd.arg("-E").arg(program);
    Ok(cmd)
}

/// The first executable called `name` on `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Like [`find_in_path`], then the sbin directories: Debian installs admin tools such as
/// libbpf-tools' `syscount` there, and a normal user's PATH leaves them out.
pub fn find_command(name: &str) -> Option<PathBuf> {
    find_in_path(name).or_else(|| {
        ["/usr/local/sbin", "/usr/sbin", "/sbin"]
            .into_iter()
            .map(|dir| Path::new(dir).join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Runs `cmd` with its output streamed through; fails naming `step` unless it exits 0.
pub fn run_step(step: &str, cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("step `{step}`: could not start `{}`", display(cmd)))?;
    check(step, cmd, status)
}

/// Like [`run_step`], but the child's stdout goes to our stderr, for commands whose chatter must
/// not mix with what the xtask itself prints on stdout.
pub fn run_step_quiet_stdout(step: &str, cmd: &mut Command) -> Result<()> {
    cmd.stdout(stderr_as_stdio()?);
    run_step(step, cmd)
}

pub fn check(step: &str, cmd: &Command, status: ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        bail!(
            "step `{step}` failed: `{}` exited with {status}",
            display(cmd)
        )
    }
}

/// Runs `cmd` to completion and returns its stdout; its stderr is kept for the error message.
pub fn stdout_of(cmd: &mut Command) -> Result<String> {
    let output = cmd
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("could not start `{}`", display(cmd)))?;
    if !output.status.success() {
        bail!(
            "`{}` exited with {}: {}",
            display(cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout)
        .with_context(|| format!("`{}` printed non-UTF-8 output", display(cmd)))
}

pub fn stderr_as_stdio() -> Result<Stdio> {
    let fd = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .context("could not duplicate stderr")?;
    Ok(Stdio::from(fd))
}

/// A shell-pasteable rendering of `cmd`, environment overrides included.
pub fn display(cmd: &Command) -> String {
    let envs = cmd.get_envs().filter_map(|(key, value)| {
        Some(format!(
            "{}={}",
            key.to_string_lossy(),
            value?.to_string_lossy()
        ))
    });
    let program = std::iter::once(cmd.get_program().to_string_lossy().into_owned());
    let args = cmd.get_args().map(|arg| arg.to_string_lossy().into_owned());
    envs.chain(program)
        .chain(args)
        .map(|word| shell_quote(&word))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-+=/.,:@%".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
