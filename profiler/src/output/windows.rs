//! `profiler record`'s history on disk: one directory per window, named by its start time so
//! names sort by time, written whole under a hidden name and renamed into place, and pruned by
//! age and by disk budget.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;

use super::HtmlReport;
use crate::{model::ProcessUsage, report::Report, symbolize::Folded};

/// Basic ISO 8601 in UTC with milliseconds: sortable, and free of `:` for any filesystem.
const NAME_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";

pub fn window_name(start: jiff::Timestamp) -> String {
    start.strftime(NAME_FORMAT).to_string()
}

/// The start of the window `name` names: only names [`window_name`] writes, so retention never
/// takes a foreign directory (a negative year, another fraction length) for a window.
pub fn parse_name(name: &str) -> Option<jiff::Timestamp> {
    let stamp = name.strip_suffix('Z')?;
    let civil = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S%.f", stamp).ok()?;
    let start = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    (window_name(start) == name).then_some(start)
}

/// Writes one window: `fill` writes the files into a hidden directory, which then takes the
/// window's name, so a reader listing `root` never sees a partial window.
pub fn write_window(
    root: &Path,
    name: &str,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<PathBuf> {
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        // Reports name every process and its command line: for root's eyes only.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(root)
        .with_context(|| format!("creating a window directory in {}", root.display()))?;
    fill(staging.path())?;
    let target = root.join(name);
    let staged = staging.keep();
    fs::rename(&staged, &target).with_context(|| {
        let _ = fs::remove_dir_all(&staged);
        format!("moving window into {}", target.display())
    })?;
    Ok(target)
}

/// Writes one window's report and files into its directory under `root`, named for when it
/// started.
pub fn write_report(
    root: &Path,
    started_at: jiff::Timestamp,
    report: &Report,
    usage: &[ProcessUsage],
    folded: &Folded,
    html: HtmlReport,
) -> anyhow::Result<PathBuf> {
    write_window(root, &window_name(started_at), |dir| {
        super::write_usage(dir, report, usage, folded, &[], html)
    })
}

/// A window directory on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub name: String,
    pub start: jiff::Timestamp,
    pub bytes: u64,
}

/// Finished windows under `root`, oldest first; hidden (staging) and foreign entries skipped.
pub fn list(root: &Path) -> anyhow::Result<Vec<Window>> {
    let mut windows = Vec::new();
    for entry in fs::read_dir(root).with_context(|| format!("listing {}", root.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(start) = parse_name(&name) else {
            continue;
        };
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let bytes = fs::read_dir(entry.path())?
            .filter_map(Result::ok)
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum();
        windows.push(Window { name, start, bytes });
    }
    windows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(windows)
}

/// Why a window was deleted.
#[derive(Debug, Clone, PartialEq)]
pub enum Pruned {
    /// Started longer than the retention ago.
    Expired(String),
    /// The windows together took more than the disk budget; the oldest went first.
    OverBudget(String),
}

impl std::fmt::Display for Pruned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Expired(name) => write!(f, "pruned window {name}: older than --retention"),
            Self::OverBudget(name) => write!(f, "pruned window {name}: windows exceed --max-disk"),
        }
    }
}

/// Deletes windows older than `retention`, then the oldest while the rest exceed `max_bytes`.
/// The newest window is always kept, whatever its size.
pub fn prune(
    root: &Path,
    now: jiff::Timestamp,
    retention: Duration,
    max_bytes: u64,
) -> anyhow::Result<Vec<Pruned>> {
    let windows = list(root)?;
    let cutoff = now
        .checked_sub(jiff::SignedDuration::try_from(retention)?)
        .unwrap_or(jiff::Timestamp::MIN);
    let mut total: u64 = windows.iter().map(|w| w.bytes).sum();
    let mut pruned = Vec::new();
    let newest = windows.len().saturating_sub(1);
    for (index, window) in windows.iter().enumerate() {
        if index == newest {
            break;
        }
        let reason = if window.start < cutoff {
            Pruned::Expired(window.name.clone())
        } else if total > max_bytes {
            Pruned::OverBudget(window.name.clone())
        } else {
            break;
        };
        fs::remove_dir_all(root.join(&window.name))
            .with_context(|| format!("deleting window {}", window.name))?;
        total -= window.bytes;
        pruned.push(reason);
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn names_sort_by_time_and_parse_back() {
        let a = window_name(at("2026-11-24T09:05:00.120Z"));
        let b = window_name(at("2026-11-24T10:00:00Z"));
        assert_eq!(a, "20261124T090500.120Z");
        assert!(a < b);
        assert_eq!(parse_name(&a), Some(at("2026-11-24T09:05:00.120Z")));
        assert_eq!(parse_name(".20261124T090500.120Z.x"), None);
    }

    #[test]
    fn only_names_the_writer_writes_are_windows() {
        // Found by fuzzing: these parsed, as year -26 and with a finer fraction, and
        // retention would have deleted such directories as expired windows.
        assert_eq!(parse_name("-0261129T090500.5000Z"), None);
        assert_eq!(parse_name("20261124T090500.1204Z"), None);
        assert_eq!(parse_name("20261124T090500.12Z"), None);
        assert_eq!(parse_name("20261124T090500Z"), None);
        let name = window_name(at("2026-11-24T09:05:00Z"));
        assert_eq!(parse_name(&name), Some(at("2026-11-24T09:05:00Z")));
    }

    #[test]
    fn windows_appear_whole_and_prune_by_age_then_budget() {
        let root = tempfile::tempdir().unwrap();
        for (start, size) in [
            ("2026-11-24T08:00:00Z", 100),
            ("2026-11-24T09:00:00Z", 300),
            ("2026-11-24T09:30:00Z", 300),
            ("2026-11-24T09:59:00Z", 300),
        ] {
            write_window(root.path(), &window_name(at(start)), |dir| {
                fs::write(dir.join("report.json"), vec![b'x'; size])?;
                Ok(())
            })
            .unwrap();
        }
        fs::create_dir(root.path().join(".20261124T100000.000Z.tmp")).unwrap();
        assert_eq!(list(root.path()).unwrap().len(), 4);

        let pruned = prune(
            root.path(),
            at("2026-11-24T10:00:00Z"),
            Duration::from_secs(3600 + 60),
            650,
        )
        .unwrap();
        assert_eq!(
            pruned,
            [
                Pruned::Expired("20261124T080000.000Z".to_owned()),
                Pruned::OverBudget("20261124T090000.000Z".to_owned()),
            ]
        );
        let left: Vec<String> = list(root.path())
            .unwrap()
            .into_iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(left, ["20261124T093000.000Z", "20261124T095900.000Z"]);
        // The newest stays even alone over budget.
        prune(
            root.path(),
            at("2026-11-24T10:00:00Z"),
            Duration::from_secs(1),
            1,
        )
        .unwrap();
        assert_eq!(list(root.path()).unwrap().len(), 1);
    }
}
