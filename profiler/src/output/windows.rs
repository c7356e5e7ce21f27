//! `profiler record`'s history on disk: one directory per window, named by its start time so
//! names sort by time, written whole under a hidden name and renamed into place, marked as the
//! recorder's own, and pruned by age and by disk budget.

use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use rustix::fs::FileType;

use super::{HtmlReport, dir::Dir};
use crate::{model::ProcessUsage, report::Report, symbolize::Folded};

/// The file every window and staging directory holds from its creation on: retention and
/// sweeping delete only directories that carry it, never one another program (or a hand) put
/// there under a window's name.
pub const MARKER: &str = ".profiler-window";
const MARKER_TEXT: &str = "written by profiler record; retention deletes this directory\n";
/// A staging directory untouched this long was left by a recorder that was killed.
const STALE_STAGING: Duration = Duration::from_secs(600);

/// Basic ISO 8601 in UTC with milliseconds: sortable, and free of `:` for any filesystem.
const NAME_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";

/// What an incident window's name ends in, after its start.
const INCIDENT_SUFFIX: &str = "-incident";

/// What a window directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// One of the regular windows that follow each other.
    Regular,
    /// The exact probes an escalation attached, overlapping the regular windows of its time.
    Incident,
}

impl WindowKind {
    /// The directory name of a window of this kind starting at `start`.
    pub fn name(self, start: jiff::Timestamp) -> String {
        match self {
            Self::Regular => window_name(start),
            Self::Incident => format!("{}{INCIDENT_SUFFIX}", window_name(start)),
        }
    }
}

pub fn window_name(start: jiff::Timestamp) -> String {
    start.strftime(NAME_FORMAT).to_string()
}

/// The start of the window `name` names: only names [`WindowKind::name`] writes, so retention
/// never takes a foreign directory (a negative year, another fraction length) for a window.
pub fn parse_name(name: &str) -> Option<jiff::Timestamp> {
    let regular = name.strip_suffix(INCIDENT_SUFFIX).unwrap_or(name);
    let stamp = regular.strip_suffix('Z')?;
    let civil = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S%.f", stamp).ok()?;
    let start = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    (window_name(start) == regular).then_some(start)
}

/// Writes one window: `fill` writes the files into a hidden directory marked as the
/// recorder's, which then takes the window's name, so a reader listing `root` never sees a
/// partial window. A failure leaves nothing.
pub fn write_window(
    root: &Dir,
    name: &str,
    fill: impl FnOnce(&Dir) -> anyhow::Result<()>,
) -> anyhow::Result<PathBuf> {
    // The caller says where: `record` names the directory and the fix.
    let (staging, dir) = root
        .make_unique_dir(&format!(".{name}."))
        .context("creating a window directory")?;
    let written = dir
        .create_new(MARKER, MARKER_TEXT.as_bytes())
        .context("marking a window directory")
        .and_then(|()| fill(&dir))
        .and_then(|()| {
            root.rename(&staging, name.as_ref())
                .with_context(|| format!("moving window {name} into place"))
        });
    if let Err(err) = written {
        let _ = root.remove_tree(&staging);
        return Err(err);
    }
    Ok(root.path().join(name))
}

/// Writes one window's report and files into its directory under `root`, named for when it
/// started.
pub fn write_report(
    root: &Dir,
    (started_at, kind): (jiff::Timestamp, WindowKind),
    report: &Report,
    usage: &[ProcessUsage],
    folded: &Folded,
    html: HtmlReport,
) -> anyhow::Result<PathBuf> {
    write_window(root, &kind.name(started_at), |dir| {
        super::write_usage(dir, report, usage, folded, &[], html)
    })
}

/// A window directory on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub name: String,
    pub start: jiff::Timestamp,
    /// Allocated on disk: a sparse file counts the blocks it uses, not its length.
    pub bytes: u64,
}

/// Whether `dir` carries the marker `record` writes into each of its windows.
pub fn has_marker(dir: &Path) -> bool {
    fs::symlink_metadata(dir.join(MARKER)).is_ok_and(|meta| meta.file_type().is_file())
}

/// Finished windows under `root`, oldest first: directories (not links to one) with a
/// window's name and the marker. Hidden (staging) and foreign entries are skipped.
pub fn list(root: &Dir) -> anyhow::Result<Vec<Window>> {
    let entries = root
        .entries()
        .with_context(|| format!("listing {}", root.path().display()))?;
    let mut windows = Vec::new();
    for entry in entries {
        let name = entry.name.to_string_lossy().into_owned();
        let Some(start) = parse_name(&name) else {
            continue;
        };
        if entry.kind != FileType::Directory {
            continue;
        }
        // Gone meanwhile, or not ours: not a window.
        let Ok(dir) = root.subdir(&entry.name) else {
            continue;
        };
        if !dir.has_file(MARKER) {
            continue;
        }
        let bytes = dir.entries()?.iter().map(|file| file.allocated).sum();
        windows.push(Window { name, start, bytes });
    }
    windows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(windows)
}

/// What retention did to a window.
#[derive(Debug, Clone, PartialEq)]
pub enum Pruned {
    /// Deleted: started longer than the retention ago.
    Expired(String),
    /// Deleted: the windows together took more than the disk budget; the oldest went first.
    OverBudget(String),
    /// Left alone, and out of the budget: it starts in the future, so it is no window this
    /// clock wrote (a clock set back, or a directory put there). Said once.
    Future(String),
    /// Deleted: a staging directory a killed recorder left behind.
    Stale(String),
}

impl Pruned {
    /// Whether it deleted anything.
    pub fn deleted(&self) -> bool {
        !matches!(self, Self::Future(_))
    }
}

impl std::fmt::Display for Pruned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Expired(name) => write!(f, "pruned window {name}: older than --retention"),
            Self::OverBudget(name) => write!(f, "pruned window {name}: windows exceed --max-disk"),
            Self::Future(name) => write!(
                f,
                "left window {name} alone: it starts in the future, so retention does not \
                 count or delete it; remove it by hand if it is stale"
            ),
            Self::Stale(name) => write!(
                f,
                "removed {name}: a window a stopped recorder left half-written"
            ),
        }
    }
}

/// A record directory, held open, and its retention: windows older than `age` go, then the
/// oldest while the rest exceed `max_bytes`.
pub struct Retention {
    root: Dir,
    age: Duration,
    max_bytes: u64,
    /// Future-dated windows already reported.
    reported: HashSet<String>,
}

impl Retention {
    pub fn new(root: &Path, age: Duration, max_bytes: u64) -> anyhow::Result<Self> {
        let root = Dir::open(root).with_context(|| format!("opening {}", root.display()))?;
        Ok(Self {
            root,
            age,
            max_bytes,
            reported: HashSet::new(),
        })
    }

    /// The record directory, where windows are written.
    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// Prunes as of `now`. The newest window is always kept, whatever its size; windows dated
    /// after `now` are left alone and reported the first time they are seen.
    pub fn prune(&mut self, now: jiff::Timestamp) -> anyhow::Result<Vec<Pruned>> {
        let (windows, future): (Vec<Window>, Vec<Window>) =
            list(&self.root)?.into_iter().partition(|w| w.start <= now);
        let mut pruned: Vec<Pruned> = future
            .into_iter()
            .filter(|w| self.reported.insert(w.name.clone()))
            .map(|w| Pruned::Future(w.name))
            .collect();
        let cutoff = now
            .checked_sub(jiff::SignedDuration::try_from(self.age)?)
            .unwrap_or(jiff::Timestamp::MIN);
        let mut total: u64 = windows.iter().map(|w| w.bytes).sum();
        let newest = windows.len().saturating_sub(1);
        for window in windows.iter().take(newest) {
            let reason = if window.start < cutoff {
                Pruned::Expired(window.name.clone())
            } else if total > self.max_bytes {
                Pruned::OverBudget(window.name.clone())
            } else {
                break;
            };
            self.root
                .remove_tree(window.name.as_ref())
                .with_context(|| format!("deleting window {}", window.name))?;
            total -= window.bytes;
            pruned.push(reason);
        }
        Ok(pruned)
    }

    /// Deletes the staging directories a killed recorder left: hidden, marked, and untouched
    /// for ten minutes as of `now` (a window is written in seconds).
    pub fn sweep(&self, now: SystemTime) -> anyhow::Result<Vec<Pruned>> {
        let mut swept = Vec::new();
        let entries = self
            .root
            .entries()
            .with_context(|| format!("listing {}", self.root.path().display()))?;
        for entry in entries {
            let name = entry.name.to_string_lossy().into_owned();
            let staged = name
                .strip_prefix('.')
                .and_then(|rest| rest.rsplit_once('.'))
                .and_then(|(window, _)| parse_name(window));
            let idle = now
                .duration_since(entry.modified)
                .is_ok_and(|idle| idle >= STALE_STAGING);
            let marked = || {
                self.root
                    .subdir(&entry.name)
                    .is_ok_and(|d| d.has_file(MARKER))
            };
            if staged.is_some() && entry.kind == FileType::Directory && idle && marked() {
                self.root
                    .remove_tree(&entry.name)
                    .with_context(|| format!("deleting {name}"))?;
                swept.push(Pruned::Stale(name));
            }
        }
        Ok(swept)
    }
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
        let incident = WindowKind::Incident.name(at("2026-11-24T09:05:00.120Z"));
        assert_eq!(incident, "20261124T090500.120Z-incident");
        assert_eq!(parse_name(&incident), Some(at("2026-11-24T09:05:00.120Z")));
        assert_eq!(parse_name("20261124T090500.120Z-incident-incident"), None);
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

    /// A window written as the recorder writes one, holding `size` bytes of report.
    fn window(root: &Path, start: &str, size: usize) {
        let root = Dir::open(root).unwrap();
        write_window(&root, &window_name(at(start)), |dir| {
            let files: [(&std::ffi::OsStr, &[u8]); 1] =
                [("report.json".as_ref(), &vec![b'x'; size])];
            Ok(dir.write_atomic(&files)?)
        })
        .unwrap();
    }

    fn listed(root: &Path) -> Vec<Window> {
        list(&Dir::open(root).unwrap()).unwrap()
    }

    fn names(root: &Path) -> Vec<String> {
        listed(root).into_iter().map(|w| w.name).collect()
    }

    #[test]
    fn windows_appear_whole_and_prune_by_age_then_budget() {
        let root = tempfile::tempdir().unwrap();
        let starts = [
            "2026-11-24T08:00:00Z",
            "2026-11-24T09:00:00Z",
            "2026-11-24T09:30:00Z",
            "2026-11-24T09:59:00Z",
        ];
        for start in starts {
            window(root.path(), start, 30_000);
        }
        fs::create_dir(root.path().join(".20261124T100000.000Z.tmp")).unwrap();
        let windows = listed(root.path());
        assert_eq!(windows.len(), 4);
        // Room for the newest two.
        let budget = windows[2].bytes + windows[3].bytes;

        let mut retention =
            Retention::new(root.path(), Duration::from_secs(3600 + 60), budget).unwrap();
        let pruned = retention.prune(at("2026-11-24T10:00:00Z")).unwrap();
        assert_eq!(
            pruned,
            [
                Pruned::Expired("20261124T080000.000Z".to_owned()),
                Pruned::OverBudget("20261124T090000.000Z".to_owned()),
            ]
        );
        assert_eq!(
            names(root.path()),
            ["20261124T093000.000Z", "20261124T095900.000Z"]
        );
        // The newest stays even alone over budget.
        let mut tight = Retention::new(root.path(), Duration::from_secs(1), 1).unwrap();
        tight.prune(at("2026-11-24T10:00:00Z")).unwrap();
        assert_eq!(listed(root.path()).len(), 1);
    }

    #[test]
    fn retention_leaves_foreign_linked_and_future_directories_alone() {
        let root = tempfile::tempdir().unwrap();
        window(root.path(), "2026-11-24T09:00:00Z", 100);
        window(root.path(), "2026-11-24T09:59:00Z", 100);
        // A window's name without the marker, and a link to a window.
        let foreign = root.path().join("20261124T080000.000Z");
        fs::create_dir(&foreign).unwrap();
        fs::write(foreign.join("report.json"), "{}").unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        window(elsewhere.path(), "2026-11-24T07:00:00Z", 100);
        std::os::unix::fs::symlink(
            elsewhere.path().join("20261124T070000.000Z"),
            root.path().join("20261124T070000.000Z"),
        )
        .unwrap();
        // A future window holding a sparse 10 TiB file: nothing on disk, and not counted.
        window(root.path(), "2099-01-01T00:00:00Z", 0);
        let sparse = fs::File::create(root.path().join("20990101T000000.000Z/big")).unwrap();
        sparse.set_len(10 << 40).unwrap();
        assert_eq!(
            names(root.path()),
            [
                "20261124T090000.000Z",
                "20261124T095900.000Z",
                "20990101T000000.000Z"
            ]
        );
        assert!(listed(root.path())[2].bytes < 1 << 20);

        let mut retention = Retention::new(root.path(), Duration::from_secs(1), 1 << 30).unwrap();
        let now = at("2026-11-24T10:00:00Z");
        assert_eq!(
            retention.prune(now).unwrap(),
            [
                Pruned::Future("20990101T000000.000Z".to_owned()),
                Pruned::Expired("20261124T090000.000Z".to_owned()),
            ]
        );
        // Said once.
        assert_eq!(retention.prune(now).unwrap(), []);
        assert!(foreign.join("report.json").is_file());
        assert!(elsewhere.path().join("20261124T070000.000Z").is_dir());
        assert_eq!(
            names(root.path()),
            ["20261124T095900.000Z", "20990101T000000.000Z"]
        );
    }

    #[test]
    fn sweeping_takes_only_marked_staging_left_untouched() {
        let root = tempfile::tempdir().unwrap();
        let staged = |name: &str, marked: bool| {
            let dir = root.path().join(name);
            fs::create_dir(&dir).unwrap();
            if marked {
                fs::write(dir.join(MARKER), MARKER_TEXT).unwrap();
            }
        };
        staged(".20261124T090000.000Z.aaaaaa", true);
        staged(".20261124T090100.000Z.bbbbbb", false);
        staged(".not-a-window.cccccc", true);
        let retention = Retention::new(root.path(), Duration::from_secs(60), 1 << 30).unwrap();
        // Just written: a recorder may still be filling it.
        assert_eq!(retention.sweep(SystemTime::now()).unwrap(), []);
        let later = SystemTime::now() + STALE_STAGING;
        assert_eq!(
            retention.sweep(later).unwrap(),
            [Pruned::Stale(".20261124T090000.000Z.aaaaaa".to_owned())]
        );
        assert!(root.path().join(".20261124T090100.000Z.bbbbbb").is_dir());
        assert!(root.path().join(".not-a-window.cccccc").is_dir());
    }
}
