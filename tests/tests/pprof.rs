//! End-to-end pprof export: the `profile.pb.gz` of a diagnose run over a burner must open in Go's
//! own `go tool pprof`, rank the burner's hot function and label its samples with pid and comm.

use std::path::{Path, PathBuf};
use std::process::Command;

use profiler_tests::{
    Workload, diagnose_into, file_mode, require_root, serial, skip_or_fail, tempdir, utf8,
};

const BURNER: &str = env!("CARGO_BIN_EXE_burner");

const INNER: &str = "burner_inner_gamma";

#[test]
fn go_tool_pprof_ranks_the_burner_and_labels_its_samples() {
    const TEST: &str = "go_tool_pprof_ranks_the_burner_and_labels_its_samples";
    if !require_root(TEST) {
        return;
    }
    let Some(go) = find_go() else {
        skip_or_fail(
            TEST,
            "`go` not found (Debian package golang-go; `cargo xtask setup`)",
        );
        return;
    };
    let _serial = serial();
    let burner = Workload::spawn(BURNER, &[]);
    let dir = tempdir();
    let (out, _) = diagnose_into(dir.path(), "3s");

    let profile = out.join("profile.pb.gz");
    let bytes = std::fs::read(&profile).expect("reading profile.pb.gz");
    assert!(
        bytes.starts_with(&[0x1f, 0x8b]),
        "profile.pb.gz is not gzip"
    );
    assert_eq!(file_mode(&profile), 0o600, "profile.pb.gz mode");

    let go_home = dir.path().join("go-home");
    std::fs::create_dir(&go_home).expect("creating a home for go");
    let top = go_pprof(&go, &go_home, "-top", &profile);
    assert!(
        top.lines().any(|line| line.trim() == "Type: cpu"),
        "the default sample type is not cpu:\n{top}"
    );
    assert!(
        top.lines().any(|line| line.contains(INNER)),
        "`go tool pprof -top` does not list {INNER}:\n{top}"
    );

    let raw = go_pprof(&go, &go_home, "-raw", &profile);
    // pprof marks the default sample type `[dflt]`; "Type: cpu" above already checked which.
    assert!(
        raw.lines().any(|line| line
            .split_whitespace()
            .map(|word| word.trim_end_matches("[dflt]"))
            .eq(["samples/count", "cpu/nanoseconds", "offcpu/nanoseconds"])),
        "no samples/count, cpu/nanoseconds, offcpu/nanoseconds columns:\n{raw}"
    );
    let pid_label = format!("pid:[{}]", burner.pid());
    let burner_labels: Vec<&str> = raw
        .lines()
        .filter(|line| line.split_whitespace().any(|word| word == pid_label))
        .collect();
    assert!(
        !burner_labels.is_empty(),
        "no sample labelled {pid_label} in `go tool pprof -raw`:\n{raw}"
    );
    // Text labels print on the line above the numeric ones, sorted by key: app, comm.
    let text_labels: Vec<&str> = raw
        .lines()
        .zip(raw.lines().skip(1))
        .filter(|(_, next)| next.split_whitespace().any(|word| word == pid_label))
        .map(|(line, _)| line)
        .collect();
    assert!(
        !text_labels.is_empty()
            && text_labels
                .iter()
                .all(|line| line.contains("app:[") && line.contains("comm:[burner]")),
        "samples of {pid_label} lack app or comm:[burner]:\n{}",
        text_labels.join("\n")
    );
    let exe = std::fs::canonicalize(BURNER).expect("canonical burner path");
    assert!(
        raw.lines()
            .any(|line| line.contains(utf8(&exe)) && line.contains("[FN]")),
        "no mapping of {} with functions in `go tool pprof -raw`:\n{raw}",
        exe.display()
    );
}

/// `go` on PATH, else where Debian's golang-go puts it.
fn find_go() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/lib/go/bin")])
        .map(|dir| dir.join("go"))
        .find(|go| go.is_file())
}

/// Runs `go tool pprof <report> <profile>` and returns its stdout. Everything go or pprof could
/// write or fetch is kept local: no toolchain download, no module proxy, caches and home in
/// `home`, no user go.env.
fn go_pprof(go: &Path, home: &Path, report: &str, profile: &Path) -> String {
    let output = Command::new(go)
        .args(["tool", "pprof", report])
        .arg(profile)
        .current_dir(home)
        .env("HOME", home)
        .env("GOPATH", home.join("gopath"))
        .env("GOCACHE", home.join("gocache"))
        .env("GOENV", "off")
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOWORK", "off")
        .env("PPROF_TMPDIR", home)
        .env("PPROF_BINARY_PATH", home)
        .output()
        .unwrap_or_else(|err| panic!("running {} tool pprof: {err}", go.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`go tool pprof {report}` failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
