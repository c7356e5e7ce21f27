//! Root with its capabilities dropped (`setpriv` clearing them from the bounding set, as a
//! container or a locked-down unit would): every BPF command says which capability is missing
//! in one line, exits 2 and writes nothing; doctor names it too.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use profiler_tests::{
    Finished, ProfilerRun, entries, profiler_bin, require_root, skip_or_fail, tempdir, utf8,
};

/// Refused before anything is loaded: quick.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `profiler args...` as root without the capabilities in `drop` (setpriv names, e.g. `bpf`),
/// in `cwd`; `None` after `skip_or_fail` when setpriv is missing.
fn without_caps(test: &str, drop: &str, args: &[&str], cwd: &Path) -> Option<Finished> {
    let works = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !works {
        skip_or_fail(test, "needs setpriv (util-linux) to drop capabilities");
        return None;
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--inh-caps=-all", &format!("--bounding-set={drop}")])
        .arg(profiler_bin())
        .args(args)
        .current_dir(cwd);
    Some(ProfilerRun::start(command).finish(TIMEOUT))
}

#[test]
fn root_without_bpf_capabilities_is_told_which_are_missing() {
    const TEST: &str = "root_without_bpf_capabilities_is_told_which_are_missing";
    if !require_root(TEST) {
        return;
    }
    let cwd = tempdir();
    let out = cwd.path().join("x");
    let out = utf8(&out);
    let commands: [&[&str]; 4] = [
        &["diagnose", "--duration", "1s", "--out", out],
        &["diagnose", "--duration", "1s"],
        &["record", "--window", "1s", "--no-metrics", "--out", out],
        &["top", "--once", "--interval", "1s"],
    ];
    for args in commands {
        let Some(done) = without_caps(TEST, "-bpf,-perfmon,-sys_admin", args, cwd.path()) else {
            return;
        };
        let line = done.error_line();
        for needed in ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"] {
            assert!(
                line.contains(needed),
                "{args:?}: {line} does not name {needed}"
            );
        }
        // sudo cannot give root back what its bounding set lost.
        assert!(line.contains("running as root"), "{args:?}: {line}");
        assert!(done.stdout.is_empty(), "{args:?}: stdout {}", done.stdout);
        assert!(
            entries(cwd.path()).is_empty(),
            "{args:?} left {:?}",
            entries(cwd.path())
        );
    }

    // With CAP_BPF kept, only the one still missing is named.
    let Some(done) = without_caps(TEST, "-perfmon,-sys_admin", commands[0], cwd.path()) else {
        return;
    };
    let line = done.error_line();
    assert!(
        line.contains("without CAP_PERFMON (or CAP_SYS_ADMIN)"),
        "{line}"
    );
    assert!(
        !line.contains("CAP_BPF"),
        "names CAP_BPF, which it has: {line}"
    );
    assert!(entries(cwd.path()).is_empty());
}

#[test]
fn doctor_without_capabilities_names_them_and_fails() {
    const TEST: &str = "doctor_without_capabilities_names_them_and_fails";
    if !require_root(TEST) {
        return;
    }
    let cwd = tempdir();
    let Some(done) = without_caps(TEST, "-bpf,-perfmon,-sys_admin", &["doctor"], cwd.path()) else {
        return;
    };
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let privileges = done
        .stdout
        .lines()
        .find(|line| line.starts_with("privileges"))
        .unwrap_or_else(|| panic!("no privileges row:\n{}", done.stdout));
    assert!(
        privileges.contains("FAIL") && privileges.contains("CAP_BPF"),
        "{privileges}"
    );
    let cpu = done
        .stdout
        .lines()
        .find(|line| line.starts_with("cpu "))
        .unwrap_or_else(|| panic!("no cpu row:\n{}", done.stdout));
    assert!(cpu.contains("unavailable"), "{cpu}");
}
