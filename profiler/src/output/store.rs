//! Where `record` keeps its windows, and how it goes on when it cannot: when a window cannot be
//! written (a rogue filled the disk), retention prunes what it would prune anyway and the write
//! is tried once more; failing that the window is lost and counted, measuring goes on, and
//! writing resumes when space returns. History is not deleted to feed the rogue.

use std::{io, path::Path, path::PathBuf, time::Duration};

use super::{
    HtmlReport,
    windows::{self, Pruned, Retention, WindowKind},
};
use crate::{model::ProcessUsage, report::Report, symbolize::Folded};

/// Why a window was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostBecause {
    /// No space (or quota) left on the output's file system.
    NoSpace,
    /// Any other write error.
    Other,
}

impl LostBecause {
    fn of(err: &anyhow::Error) -> Self {
        match crate::error::io_kind(err) {
            Some(io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded) => Self::NoSpace,
            _ => Self::Other,
        }
    }

    /// As the `reason` label of `profiler_windows_failed_total` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSpace => "no_space",
            Self::Other => "other",
        }
    }
}

/// What became of one window.
#[derive(Debug)]
pub enum Stored {
    Written {
        path: PathBuf,
        /// What retention did after it, and what made room for it.
        pruned: Vec<Pruned>,
        /// Windows lost before this one, when it ends a stretch of failures.
        resumed_after: Option<u64>,
    },
    Lost {
        because: LostBecause,
        error: anyhow::Error,
        /// The first of a stretch of failures: the one to say.
        first: bool,
        /// What retention pruned to make room, in vain.
        pruned: Vec<Pruned>,
    },
}

/// A stretch of lost windows starting or ending with a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    Began(LostBecause),
    Ended,
}

impl Stored {
    /// Whether this window starts or ends a stretch of lost windows.
    pub fn outage(&self) -> Option<Outage> {
        match self {
            Self::Written {
                resumed_after: Some(_),
                ..
            } => Some(Outage::Ended),
            Self::Lost {
                because,
                first: true,
                ..
            } => Some(Outage::Began(*because)),
            _ => None,
        }
    }

    /// Says on stderr what an operator should know of it: what was pruned, and a stretch of
    /// failures starting (with the error, naming `out` and the fix) or ending. Returns why the
    /// window was lost, if it was.
    pub fn say(self, out: &Path) -> Result<(), LostBecause> {
        match self {
            Self::Written {
                path,
                pruned,
                resumed_after,
            } => {
                log::debug!("wrote {}", path.display());
                if let Some(lost) = resumed_after {
                    eprintln!("profiler: writing windows again, after {lost} lost");
                }
                pruned.iter().for_each(|p| eprintln!("profiler: {p}"));
                Ok(())
            }
            Self::Lost {
                because,
                error,
                first,
                pruned,
            } => {
                pruned.iter().for_each(|p| eprintln!("profiler: {p}"));
                if first {
                    let error = crate::error::output_write(error, out);
                    eprintln!(
                        "profiler: warning: a window was lost: {error:#}; measuring, metrics \
                         and alerts go on, and windows are written again once they can be"
                    );
                }
                Err(because)
            }
        }
    }
}

/// The record directory's windows, their retention, and whether writing is failing.
pub struct Store {
    retention: Retention,
    html: HtmlReport,
    /// `--exit-on-write-error`: a window that cannot be written ends the recording.
    exit_on_error: bool,
    /// Windows lost since writing last failed.
    failing: Option<u64>,
    written: u64,
    lost: u64,
}

impl Store {
    pub fn new(
        root: &Path,
        (age, max_bytes): (Duration, u64),
        html: HtmlReport,
        exit_on_error: bool,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            retention: Retention::new(root, age, max_bytes)?,
            html,
            exit_on_error,
            failing: None,
            written: 0,
            lost: 0,
        })
    }

    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    /// The windows written into `out` over the run and those lost, for the closing line.
    pub fn summary(&self, out: &Path) -> String {
        let lost = match self.lost {
            0 => String::new(),
            lost => format!(" ({lost} lost: they could not be written)"),
        };
        format!("{} windows in {}{lost}", self.written, out.display())
    }

    /// Writes a window and prunes; when the write fails, what retention prunes makes room for
    /// one more try. Errors only with `--exit-on-write-error` (or when pruning fails).
    pub fn put(
        &mut self,
        start: (jiff::Timestamp, WindowKind),
        (report, usage, folded): (&Report, &[ProcessUsage], &Folded),
    ) -> anyhow::Result<Stored> {
        let write = |store: &Self| {
            let root = store.retention.root();
            windows::write_report(root, start, report, usage, folded, store.html)
        };
        let mut made_room = Vec::new();
        let mut written = write(self);
        if written.is_err() && !self.exit_on_error {
            made_room = self.retention.prune(jiff::Timestamp::now())?;
            if made_room.iter().any(Pruned::deleted) {
                written = write(self);
            }
        }
        match written {
            Ok(path) => {
                self.written += 1;
                let mut pruned = made_room;
                pruned.extend(self.retention.prune(jiff::Timestamp::now())?);
                Ok(Stored::Written {
                    path,
                    pruned,
                    resumed_after: self.failing.take(),
                })
            }
            Err(error) if self.exit_on_error => Err(error),
            Err(error) => {
                self.lost += 1;
                let lost = self.failing.get_or_insert(0);
                *lost += 1;
                Ok(Stored::Lost {
                    because: LostBecause::of(&error),
                    error,
                    first: *lost == 1,
                    pruned: made_room,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_or_quota_is_no_space_and_the_rest_other() {
        let no_space = anyhow::Error::from(io::Error::from(io::ErrorKind::StorageFull))
            .context("writing report.json");
        assert_eq!(LostBecause::of(&no_space), LostBecause::NoSpace);
        let quota = anyhow::Error::from(io::Error::from(io::ErrorKind::QuotaExceeded));
        assert_eq!(LostBecause::of(&quota), LostBecause::NoSpace);
        let denied = anyhow::Error::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(LostBecause::of(&denied), LostBecause::Other);
        assert_eq!(LostBecause::NoSpace.as_str(), "no_space");
    }
}
