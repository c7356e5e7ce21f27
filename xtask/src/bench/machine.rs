//! Where and with what a bench ran: date, machine, kernel and the versions of the profiler and
//! its peers, for the header of `bench/results.md`.

use std::{
    env, fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::SystemTime,
};

/// Label and text of each header line, in order.
pub fn facts(workspace: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "date (UTC)",
            humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        ),
        ("machine", machine()),
        (
            "kernel",
            read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(unknown),
        ),
        ("profiler", profiler_commit(workspace)),
        ("rustc", first_line(&mut rustc(), "-V")),
        ("perf", first_line(&mut Command::new("perf"), "--version")),
        (
            "bpftrace",
            first_line(&mut Command::new("bpftrace"), "--version"),
        ),
        ("syscount", debian_package("libbpf-tools")),
        (
            "redis",
            first_line(&mut Command::new("redis-server"), "--version"),
        ),
        (
            "profile-bee",
            first_line(&mut Command::new("probee"), "--version"),
        ),
    ]
}

fn unknown() -> String {
    "unknown".to_owned()
}

fn read_trimmed(path: &str) -> Option<String> {
    Some(fs::read_to_string(path).ok()?.trim().to_owned())
}

/// CPU model, CPUs and memory, e.g. "AMD EPYC 7B13, 2 CPUs, 23.5 GiB".
fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = field(&cpuinfo, "model name").unwrap_or("unknown CPU");
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = field(&meminfo, "MemTotal")
        .and_then(|total| total.trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or_else(unknown, |kib| {
            format!("{:.1} GiB", kib / f64::from(1 << 20))
        });
    format!("{model}, {cpus} CPUs, {memory}")
}

/// The value of the first `name: value` line of a procfs file.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim())
    })
}

/// The checked-out commit, and whether tracked files differ from it.
fn profiler_commit(workspace: &Path) -> String {
    // Benchmarks run as root in a tree its user owns, which git refuses without this.
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.args(["-c", "safe.directory=*", "-C"])
            .arg(workspace)
            .args(args);
        output(&mut cmd)
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return unknown();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if changes.trim().is_empty() => commit.trim().to_owned(),
        Some(_) => format!("{} with uncommitted changes", commit.trim()),
        None => commit.trim().to_owned(),
    }
}

/// The rustc next to the cargo that runs the xtask: the toolchain that built the profiler.
fn rustc() -> Command {
    let rustc = env::var_os("CARGO")
        .map(|cargo| Path::new(&cargo).with_file_name("rustc"))
        .filter(|rustc| rustc.is_file());
    Command::new(rustc.as_deref().unwrap_or_else(|| Path::new("rustc")))
}

fn debian_package(package: &str) -> String {
    output(Command::new("dpkg-query").args(["-W", "-f", "${Version}", package])).map_or_else(
        || "not installed".to_owned(),
        |version| format!("{package} {}", version.trim()),
    )
}

/// The first line `cmd arg` prints, or "not installed".
fn first_line(cmd: &mut Command, arg: &str) -> String {
    output(cmd.arg(arg))
        .and_then(|text| text.lines().next().map(|line| line.trim().to_owned()))
        .unwrap_or_else(|| "not installed".to_owned())
}

/// Stdout of `cmd` when it succeeds.
fn output(cmd: &mut Command) -> Option<String> {
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_procfs_fields() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n";
        assert_eq!(field(cpuinfo, "model name"), Some("AMD EPYC 7B13"));
        assert_eq!(
            field("MemTotal:       24554600 kB\n", "MemTotal"),
            Some("24554600 kB")
        );
        assert_eq!(field(cpuinfo, "missing"), None);
    }

    #[test]
    fn this_machine_has_a_kernel_and_cpus() {
        let facts = facts(Path::new(env!("CARGO_MANIFEST_DIR")));
        let get = |label| &facts.iter().find(|(l, _)| *l == label).unwrap().1;
        assert!(!get("kernel").is_empty());
        assert!(get("machine").contains(" CPUs, "));
    }
}
