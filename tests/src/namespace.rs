//! Commands run in a mount namespace of their own (`unshare -m`), so a test can unmount tracefs
//! or mount a tiny full file system without anyone else on the host seeing it.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::skip_or_fail;

/// `sh -c SCRIPT` in a private mount namespace, with `$@` = `program args...`: SCRIPT prepares
/// the namespace, then runs `"$@"` (or `exec "$@"`). `None`, after `skip_or_fail`, when
/// `unshare` is missing.
pub fn in_private_mounts(
    test: &str,
    script: &str,
    program: &Path,
    args: &[&str],
) -> Option<Command> {
    let works = Command::new("unshare")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !works {
        skip_or_fail(
            test,
            "needs unshare (util-linux) for a private mount namespace",
        );
        return None;
    }
    let mut command = Command::new("unshare");
    command
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(program)
        .args(args)
        .stdin(Stdio::null());
    Some(command)
}
