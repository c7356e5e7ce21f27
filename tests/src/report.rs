//! Reading and checking `report.json`: the schema, field access with clear panics, and
//! tolerance checks against what a workload did.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Temporary paths as arguments; they come from `tempdir()`, which yields UTF-8 paths.
pub fn utf8(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("not UTF-8: {}", path.display()))
}

pub fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: not JSON: {err}", path.display()))
}

pub fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/report.schema.json")
}

/// Validates `report` against the JSON Schema in docs/, read at run time so the tests follow
/// the schema as it is now rather than as it was when they were compiled.
pub fn assert_matches_schema(report: &Value) {
    let path = schema_path();
    let schema = read_json(&path);
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|err| panic!("{}: not a valid JSON Schema: {err}", path.display()));
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|err| format!("  at {}: {err}", err.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match {}:\n{}\nreport:\n{report:#}",
        path.display(),
        errors.join("\n")
    );
}

/// Permission bits (no file type) of `path`.
pub fn file_mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The `processes[]` entry for `pid`, if the report has one.
pub fn process_entry(report: &Value, pid: u32) -> Option<&Value> {
    report["processes"]
        .as_array()?
        .iter()
        .find(|process| process["pid"].as_u64() == Some(u64::from(pid)))
}

/// Whether `pid` is a kernel thread by the report's own rule (kthreadd, or a child of it
/// without an executable): its waits are nobody's harm in the verdict.
pub fn is_kernel_thread(report: &Value, pid: u64) -> bool {
    pid == 2
        || process_entry(report, pid as u32)
            .is_some_and(|p| p["ppid"].as_u64() == Some(2) && p["exe"].is_null())
}

/// Entries of an array field, panicking with the report if it is not an array.
pub fn array<'a>(report: &'a Value, field: &str) -> &'a [Value] {
    report[field]
        .as_array()
        .unwrap_or_else(|| panic!("report.{field} is not an array:\n{report:#}"))
}

/// A numeric field, panicking with context if it is missing or not a number.
pub fn number(value: &Value, field: &str) -> f64 {
    value[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in:\n{value:#}"))
}

/// A non-negative integer field, panicking with context if it is missing or not one.
pub fn count(value: &Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("`{field}` is not a non-negative integer in:\n{value:#}"))
}

/// Checks a counted figure against what the workload did, within a relative `tolerance`;
/// `context` renders the part of the report worth showing on failure.
#[track_caller]
pub fn assert_near(
    ours: u64,
    expected: u64,
    tolerance: f64,
    what: &str,
    context: &dyn Fn() -> String,
) {
    let (ours, expected) = (ours as f64, expected as f64);
    assert!(
        (ours - expected).abs() <= tolerance * expected,
        "{what}: profiler {ours}, workload did {expected} (allowed ±{} %):\n{}",
        tolerance * 100.0,
        context()
    );
}

/// Finished window directories of a `profiler record` directory, oldest first (hidden staging
/// directories left out).
pub fn record_windows(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root)
        .unwrap_or_else(|err| panic!("listing {}: {err}", root.display()))
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// How many windows a stopped recorder says it wrote, from its `profiler: stopped after N
/// windows` line on stderr.
pub fn windows_written(stderr: &str) -> usize {
    stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("profiler: stopped after ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `profiler: stopped after` line:\n{stderr}"))
}
