//! Atomic, private file writes: temp file in the target directory, mode 0600, then rename.

use std::{
    ffi::{OsStr, OsString},
    fs,
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::Path,
};

use anyhow::Context as _;
use tempfile::NamedTempFile;

/// Writes every `(name, bytes)` into `dir`. All temp files are complete before the first rename.
pub fn write_all(dir: &Path, files: &[(&str, &[u8])]) -> anyhow::Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    for &(name, bytes) in files {
        staged.push((name, stage(dir, name.as_ref(), bytes)?));
    }
    for (name, tmp) in staged {
        let target = dir.join(name);
        tmp.persist(&target)
            .with_context(|| format!("moving {name} into {}", target.display()))?;
    }
    Ok(())
}

/// Writes one file at `path` the same way, its temp file in the same directory.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    stage(dir, name, bytes)?
        .persist(path)
        .with_context(|| format!("moving the temp file to {}", path.display()))?;
    Ok(())
}

/// A complete, synced, mode 0600 temp file `.<name>.XXXXXX` in `dir`, removed if dropped.
fn stage(dir: &Path, name: &OsStr, bytes: &[u8]) -> anyhow::Result<NamedTempFile> {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut tmp = NamedTempFile::with_prefix_in(prefix, dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))
        .context("setting mode 0600")?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", name.display()))?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_land_complete_with_mode_0600_and_no_temp_left() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), &[("a.json", b"{}"), ("b.txt", b"hello")]).unwrap();
        assert_eq!(fs::read(dir.path().join("b.txt")).unwrap(), b"hello");
        let mode = fs::metadata(dir.path().join("a.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn single_file_replaces_the_old_one_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.svg");
        fs::write(&path, "old").unwrap();
        write_file(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_file(Path::new("/"), b"x").is_err());
    }
}
