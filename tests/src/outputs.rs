//! What a run leaves on disk: the complete file set of a `diagnose` directory or a `record`
//! window, each file whole and mode 0600, nothing half-written or hidden beside them.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::{assert_folded_well_formed, assert_matches_schema, file_mode, read_json};

/// What `diagnose` writes with every signal on.
pub const DIAGNOSE_FILES: &[&str] = &[
    "flamegraph.svg",
    "offcpu.folded",
    "offcpu.svg",
    "profile.pb.gz",
    "report.html",
    "report.json",
    "stacks.folded",
];

/// What each `record` window holds at the default signals, without `--html`: the files, and
/// the marker retention knows its own windows by.
pub const WINDOW_FILES: &[&str] = &[
    ".profiler-window",
    "flamegraph.svg",
    "profile.pb.gz",
    "report.json",
    "stacks.folded",
];

/// Names in `dir`, sorted, hidden ones included; empty when it does not exist.
pub fn entries(dir: &Path) -> Vec<String> {
    let Ok(listing) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = listing
        .map(|entry| {
            entry
                .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Asserts `dir` holds exactly `files` (no temp file, nothing hidden), each mode 0600 and
/// whole: report.json schema-valid, folded files well formed, SVG and HTML closed, the pprof
/// file a gzip stream. Returns the report.
pub fn assert_complete_outputs(dir: &Path, files: &[&str]) -> Value {
    assert_eq!(
        entries(dir),
        files,
        "{} does not hold exactly the run's files",
        dir.display()
    );
    for name in files {
        let path = dir.join(name);
        let mode = file_mode(&path);
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
        let bytes = fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match Path::new(name).extension().and_then(|e| e.to_str()) {
            Some("folded") => {
                let folded = text();
                // A run stopped within milliseconds may hold no stack; what is there is whole.
                if !folded.is_empty() {
                    assert!(folded.ends_with('\n'), "{name} ends mid-line");
                    assert_folded_well_formed(&folded, name);
                }
            }
            Some("svg") => assert!(text().trim_end().ends_with("</svg>"), "{name} is cut short"),
            Some("html") => {
                assert!(
                    text().trim_end().ends_with("</html>"),
                    "{name} is cut short"
                );
            }
            Some("gz") => assert!(
                bytes.len() > 18 && bytes.starts_with(&[0x1f, 0x8b]),
                "{name} is not a gzip stream"
            ),
            _ => {}
        }
    }
    let report = read_json(&dir.join("report.json"));
    assert_matches_schema(&report);
    report
}
