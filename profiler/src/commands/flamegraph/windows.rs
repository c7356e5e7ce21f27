//! `--from DIR`: the finished windows of a `profiler record` directory, picked by time with
//! `--since`/`--until`, their folded stacks merged into one input.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::Duration,
};

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::input::{Limits, Loaded, merge, read_folded};
use crate::{
    error::usage,
    output::{
        OFFCPU_FOLDED, REPORT_JSON,
        windows::{MARKER, has_marker},
    },
};

/// A finished window: a subdirectory holding report.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub dir: PathBuf,
    pub started: Timestamp,
    pub ended: Timestamp,
}

/// The only fields of report.json that selection needs, so any report version will do.
#[derive(Debug, Deserialize)]
struct WindowReport {
    started_at: String,
    duration_s: f64,
    /// Present in incident windows, whose samples the regular windows of their time hold too.
    incident: Option<serde::de::IgnoredAny>,
}

/// Whether `dir` holds at least one window, i.e. was written by `profiler record`.
pub fn looks_like_record_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            !entry.file_name().as_encoded_bytes().starts_with(b".")
                && has_marker(&entry.path())
                && entry.path().join(REPORT_JSON).is_file()
        })
    })
}

/// The finished windows of `dir`, oldest first. Subdirectories named `.*` or still without
/// report.json are windows being written, and those without the recorder's marker are no
/// windows of its: all are skipped.
pub fn list(dir: &Path) -> anyhow::Result<Vec<Window>> {
    let entries = fs::read_dir(dir).map_err(|err| {
        usage(format!(
            "cannot read record directory {}: {err}",
            dir.display()
        ))
    })?;
    let mut windows = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| usage(format!("listing {}: {err}", dir.display())))?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        if !has_marker(&path) {
            continue;
        }
        let report = path.join(REPORT_JSON);
        let bytes = match fs::read(&report) {
            Ok(bytes) => bytes,
            // Not a directory, not finished yet, or deleted by retention meanwhile.
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                continue;
            }
            Err(err) => {
                return Err(usage(format!("cannot read {}: {err}", report.display())));
            }
        };
        if let Some(window) = window(path, &report, &bytes)? {
            windows.push(window);
        }
    }
    windows.sort_by(|a, b| (a.started, &a.dir).cmp(&(b.started, &b.dir)));
    Ok(windows)
}

/// The window `report` describes; `None` for an incident window, whose samples the regular
/// windows of its time hold too (merged, they would count twice).
pub fn window(dir: PathBuf, report: &Path, bytes: &[u8]) -> anyhow::Result<Option<Window>> {
    let shown = report.display();
    let parsed: WindowReport = serde_json::from_slice(bytes).map_err(|err| {
        usage(format!(
            "{shown}: not a window report ({err}); it needs started_at and duration_s"
        ))
    })?;
    let started: Timestamp = parsed.started_at.parse().map_err(|err| {
        usage(format!(
            "{shown}: started_at {:?} is not an RFC 3339 time: {err}",
            parsed.started_at
        ))
    })?;
    let ended = SignedDuration::try_from_secs_f64(parsed.duration_s)
        .ok()
        .filter(|duration| !duration.is_negative())
        .and_then(|duration| started.checked_add(duration).ok())
        .ok_or_else(|| {
            usage(format!(
                "{shown}: duration_s {} is not a length of time",
                parsed.duration_s
            ))
        })?;
    Ok(parsed.incident.is_none().then_some(Window {
        dir,
        started,
        ended,
    }))
}

/// Windows that started at most `since` before `now` and ended at least `until` before it.
pub fn select(
    windows: &[Window],
    now: Timestamp,
    since: Option<Duration>,
    until: Option<Duration>,
) -> Vec<&Window> {
    // Durations reaching before the representable past bound nothing.
    let earliest = since.map(|since| now.saturating_sub(since).unwrap_or(Timestamp::MIN));
    let latest = until.map(|until| now.saturating_sub(until).unwrap_or(Timestamp::MIN));
    windows
        .iter()
        .filter(|window| earliest.is_none_or(|earliest| window.started >= earliest))
        .filter(|window| latest.is_none_or(|latest| window.ended <= latest))
        .collect()
}

/// The time range asked for, in words, for messages.
fn range(since: Option<Duration>, until: Option<Duration>) -> String {
    let since = since.map(|d| format!("started in the last {}", humantime::format_duration(d)));
    let until = until.map(|d| format!("ended over {} ago", humantime::format_duration(d)));
    match (since, until) {
        (Some(since), Some(until)) => format!("{since} and {until}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => "at all".to_owned(),
    }
}

fn when(time: Timestamp) -> String {
    time.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The `wanted` folded file of each window that has one, parsed; `what` names the windows.
fn read_windows(
    selected: &[&Window],
    wanted: &str,
    limits: &Limits,
    what: &str,
) -> anyhow::Result<Vec<Vec<(String, u64)>>> {
    let mut parts = Vec::with_capacity(selected.len());
    for window in selected {
        let file = window.dir.join(wanted);
        // A window may lack offcpu.folded (record ran without that signal), or lose its files
        // to retention while it is read: either way it adds nothing.
        match fs::symlink_metadata(&file) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            _ => parts.push(read_folded(&file, limits)?),
        }
    }
    if parts.is_empty() {
        let hint = if wanted == OFFCPU_FOLDED {
            " (record measures off-CPU stacks only with --signals ...,offcpu)"
        } else {
            ""
        };
        return Err(usage(format!(
            "none of the {} windows of {what} has {wanted}{hint}",
            selected.len()
        )));
    }
    Ok(parts)
}

/// Merges the `wanted` folded file of every window of `dir` selected at `now`, within `limits`.
pub fn load(
    dir: &Path,
    since: Option<Duration>,
    until: Option<Duration>,
    wanted: &str,
    now: Timestamp,
    limits: &Limits,
) -> anyhow::Result<Loaded> {
    let shown = dir.display();
    let windows = list(dir)?;
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        return Err(usage(format!(
            "{shown} holds no finished windows (subdirectories with {REPORT_JSON} and \
             {MARKER}); is it a `profiler record --out` directory?"
        )));
    };
    let selected = select(&windows, now, since, until);
    let range = range(since, until);
    let (Some(oldest), Some(newest)) = (selected.first(), selected.last()) else {
        return Err(usage(format!(
            "no window of {shown} {range}: its {} windows started from {} to {}",
            windows.len(),
            when(first.started),
            when(last.started)
        )));
    };
    let parts = read_windows(&selected, wanted, limits, &format!("{shown} {range}"))?;
    let stacks = merge(parts)?;
    let label = format!(
        "{shown} ({} windows, {} to {})",
        selected.len(),
        when(oldest.started),
        when(newest.ended)
    );
    limits.check_stacks(&stacks, &label)?;
    if stacks.is_empty() {
        return Err(usage(format!("no stacks in {wanted} of {label}")));
    }
    Ok(Loaded {
        label,
        stacks,
        count_name: if wanted == OFFCPU_FOLDED {
            "us"
        } else {
            "samples"
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::STACKS_FOLDED;

    const NOW: &str = "2026-03-01T12:00:00Z";

    fn at(time: &str) -> Timestamp {
        time.parse().unwrap()
    }

    /// A window directory `name` that started `ago_s` seconds before NOW and lasted 60 s.
    fn make(root: &Path, name: &str, ago_s: i64, folded: Option<&str>) {
        let dir = root.join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(MARKER), "").unwrap();
        let started = at(NOW) - SignedDuration::from_secs(ago_s);
        fs::write(
            dir.join(REPORT_JSON),
            format!(r#"{{"started_at": "{started}", "duration_s": 60.0, "extra": [1]}}"#),
        )
        .unwrap();
        if let Some(folded) = folded {
            fs::write(dir.join(STACKS_FOLDED), folded).unwrap();
        }
    }

    fn minutes(m: u64) -> Option<Duration> {
        Some(Duration::from_secs(m * 60))
    }

    #[test]
    fn windows_are_picked_by_start_and_end() {
        let root = tempfile::tempdir().unwrap();
        // Started 30, 9 and 2 minutes ago, each a minute long.
        make(root.path(), "a", 30 * 60, None);
        make(root.path(), "b", 9 * 60, None);
        make(root.path(), "c", 2 * 60, None);
        let windows = list(root.path()).unwrap();
        let names = |picked: Vec<&Window>| -> Vec<String> {
            picked
                .iter()
                .map(|w| w.dir.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        let now = at(NOW);
        assert_eq!(names(select(&windows, now, None, None)), ["a", "b", "c"]);
        assert_eq!(names(select(&windows, now, minutes(10), None)), ["b", "c"]);
        // c ended 1 minute ago: not yet 2 minutes.
        assert_eq!(names(select(&windows, now, None, minutes(2))), ["a", "b"]);
        assert_eq!(names(select(&windows, now, minutes(10), minutes(2))), ["b"]);
        assert!(select(&windows, now, minutes(1), None).is_empty());
        let forever = Some(Duration::from_secs(u64::MAX));
        assert_eq!(select(&windows, now, forever, None).len(), 3);
        assert!(select(&windows, now, None, forever).is_empty());
    }

    #[test]
    fn dot_dirs_unfinished_windows_and_stray_files_are_skipped() {
        let root = tempfile::tempdir().unwrap();
        make(root.path(), "w", 60, Some("p;x 1\n"));
        make(root.path(), ".being-written", 30, Some("p;y 1\n"));
        fs::create_dir(root.path().join("no-report")).unwrap();
        make(root.path(), "foreign", 20, Some("p;z 1\n"));
        fs::remove_file(root.path().join("foreign").join(MARKER)).unwrap();
        fs::write(root.path().join("alerts.jsonl"), "{}\n").unwrap();
        let windows = list(root.path()).unwrap();
        assert_eq!(windows.len(), 1);
        assert!(windows[0].dir.ends_with("w"));
        assert!(looks_like_record_dir(root.path()));
        assert!(!looks_like_record_dir(&root.path().join("w")));
    }

    #[test]
    fn selected_windows_are_merged() {
        let root = tempfile::tempdir().unwrap();
        make(root.path(), "old", 3600, Some("p (1);main;old 100\n"));
        make(
            root.path(),
            "w1",
            5 * 60,
            Some("p (1);main;hot 3\np (1);main 1\n"),
        );
        make(root.path(), "w2", 3 * 60, Some("p (1);main;hot 4\n"));
        // Started within range, but its stacks were never written or were already deleted.
        make(root.path(), "w3", 2 * 60, None);
        let loaded = load(
            root.path(),
            minutes(10),
            None,
            STACKS_FOLDED,
            at(NOW),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            loaded.stacks,
            [
                ("p (1);main".to_owned(), 1),
                ("p (1);main;hot".to_owned(), 7)
            ]
        );
        assert!(loaded.label.contains("3 windows"), "{}", loaded.label);
        let err = load(
            root.path(),
            minutes(10),
            None,
            OFFCPU_FOLDED,
            at(NOW),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("--signals"), "{err}");
    }

    #[test]
    fn nothing_selected_names_the_range_and_the_windows_there_are() {
        let root = tempfile::tempdir().unwrap();
        make(root.path(), "w1", 3600, Some("p 1\n"));
        make(root.path(), "w2", 1800, Some("p 1\n"));
        let err = load(
            root.path(),
            minutes(5),
            None,
            STACKS_FOLDED,
            at(NOW),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert_eq!(
            err.to_string(),
            format!(
                "no window of {} started in the last 5m: its 2 windows started from \
                 2026-03-01 11:00:00 UTC to 2026-03-01 11:30:00 UTC",
                root.path().display()
            )
        );
        let empty = tempfile::tempdir().unwrap();
        let err = load(
            empty.path(),
            None,
            None,
            STACKS_FOLDED,
            at(NOW),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no finished windows"), "{err}");
    }

    #[test]
    fn corrupt_reports_are_usage_errors() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("w");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(MARKER), "").unwrap();
        for (json, wanted) in [
            ("not json", "not a window report"),
            (
                r#"{"started_at": "yesterday", "duration_s": 1}"#,
                "RFC 3339",
            ),
            (
                r#"{"started_at": "2026-03-01T12:00:00Z", "duration_s": -1}"#,
                "duration_s",
            ),
            (
                r#"{"started_at": "2026-03-01T12:00:00Z", "duration_s": 1e300}"#,
                "duration_s",
            ),
        ] {
            fs::write(dir.join(REPORT_JSON), json).unwrap();
            let err = list(root.path()).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), 2);
            assert!(err.to_string().contains(wanted), "{json}: {err}");
        }
    }
}
