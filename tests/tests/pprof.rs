//! End-to-end pprof export: the `profile.pb.gz` of a diagnose run over a burner must open in Go's
//! own `go tool pprof`, rank the burner's hot function and label its samples with pid and comm.

use profiler_tests::{
    Workload, diagnose_into, file_mode, find_go, go_pprof, require_root, serial, skip_or_fail,
    tempdir, utf8,
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
