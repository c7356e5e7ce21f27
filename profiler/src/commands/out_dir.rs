//! The run's output directory: checked writable, and out of other users' reach, before
//! sampling starts; created private (0700); removed again if the run fails after creating it,
//! so a failed run leaves nothing behind.

use std::{
    fs,
    os::unix::fs::DirBuilderExt as _,
    path::{Path, PathBuf},
};

use super::trust;
use crate::{error::usage, output::dir::Dir};

pub struct OutDir {
    path: PathBuf,
    /// The outermost directory this run created (`a` of `--out a/b` when neither existed),
    /// removed with everything in it unless the run succeeds.
    created: Option<PathBuf>,
    keep: bool,
}

impl OutDir {
    /// `path`, created (with the directories above it that are missing) unless it exists.
    pub fn prepare(path: &Path) -> anyhow::Result<Self> {
        let unwritable = |err: &dyn std::fmt::Display| {
            usage(format!(
                "cannot write to output directory {}: {err}; pick a writable --out DIR",
                path.display()
            ))
        };
        check_trusted(path)?;
        let created = if path.exists() {
            if !path.is_dir() {
                return Err(unwritable(&"it exists and is not a directory"));
            }
            None
        } else {
            let outermost = path
                .ancestors()
                .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
                .last()
                .map(Path::to_owned);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|err| unwritable(&err))?;
            outermost
        };
        let dir = Self {
            path: path.to_owned(),
            created,
            keep: false,
        };
        // Again once it exists: a user who could create it in the meantime owns it.
        check_trusted(path)?;
        tempfile::NamedTempFile::new_in(path).map_err(|err| unwritable(&err))?;
        Ok(dir)
    }

    /// `given` (`--out`), or a new `./profiler-<time>-<random>`.
    pub fn given_or_fresh(given: Option<&Path>) -> anyhow::Result<Self> {
        match given {
            Some(path) => Self::prepare(path),
            None => {
                let time = jiff::Zoned::now().strftime("%Y%m%d-%H%M%S");
                Self::fresh(Path::new("."), &format!("profiler-{time}-"))
            }
        }
    }

    /// A new directory in `parent` named `prefix` and random characters, which nobody can
    /// create before the profiler does: the default output of `diagnose`.
    pub fn fresh(parent: &Path, prefix: &str) -> anyhow::Result<Self> {
        trust::check_parent(parent).map_err(|reason| refusal(parent, &reason))?;
        let (_, dir) = Dir::open(parent)
            .and_then(|parent| parent.make_unique_dir(prefix))
            .map_err(|err| {
                usage(format!(
                    "cannot create an output directory in {}: {err}; pick a writable --out DIR",
                    parent.display()
                ))
            })?;
        let path = dir.path().to_owned();
        Ok(Self {
            path: path.clone(),
            created: Some(path),
            keep: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory, held open for writing into.
    pub fn open(&self) -> anyhow::Result<Dir> {
        Dir::open(&self.path).map_err(|err| crate::error::output_write(err.into(), &self.path))
    }

    /// The run succeeded: the directory stays.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

/// Refuses an output directory another user could plant names in, naming the directory at
/// fault and the fix.
fn check_trusted(path: &Path) -> anyhow::Result<()> {
    trust::check(path).map_err(|reason| refusal(path, &reason))
}

fn refusal(path: &Path, reason: &trust::Untrusted) -> anyhow::Error {
    usage(format!(
        "refusing output directory {}: {reason}; write into a directory only root (or you) \
         can write to, e.g. /var/lib/profiler",
        path.display()
    ))
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if let Some(created) = self.created.as_ref().filter(|_| !self.keep) {
            let _ = fs::remove_dir_all(created);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_dir_is_removed_unless_kept() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("a/b");
        drop(OutDir::prepare(&target).unwrap());
        // Every directory it created goes, `a` included.
        assert!(!base.path().join("a").exists());
        OutDir::prepare(&target).unwrap().keep();
        assert!(target.is_dir());
        // An existing directory is never removed.
        drop(OutDir::prepare(&target).unwrap());
        assert!(target.is_dir());
    }

    #[test]
    fn file_in_the_way_is_a_usage_error() {
        let base = tempfile::tempdir().unwrap();
        let file = base.path().join("f");
        fs::write(&file, "x").unwrap();
        let err = OutDir::prepare(&file).err().unwrap();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().contains("not a directory"));
    }
}
