//! The run's output directory: checked writable before sampling starts, removed again if the
//! run fails after creating it, so a failed run leaves nothing behind.

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::error::usage;

pub struct OutDir {
    path: PathBuf,
    /// The outermost directory this run created (`a` of `--out a/b` when neither existed),
    /// removed with everything in it unless the run succeeds.
    created: Option<PathBuf>,
    keep: bool,
}

impl OutDir {
    pub fn prepare(path: &Path) -> anyhow::Result<Self> {
        let unwritable = |err: &dyn std::fmt::Display| {
            usage(format!(
                "cannot write to output directory {}: {err}; pick a writable --out DIR",
                path.display()
            ))
        };
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
            fs::create_dir_all(path).map_err(|err| unwritable(&err))?;
            outermost
        };
        let dir = Self {
            path: path.to_owned(),
            created,
            keep: false,
        };
        tempfile::NamedTempFile::new_in(path).map_err(|err| unwritable(&err))?;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run succeeded: the directory stays.
    pub fn keep(mut self) {
        self.keep = true;
    }
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
