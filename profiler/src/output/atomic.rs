//! Atomic, private file writes: temp file in the target directory, mode 0600, then rename.

use std::{fs, io::Write as _, os::unix::fs::PermissionsExt as _, path::Path};

use anyhow::Context as _;
use tempfile::NamedTempFile;

/// Writes every `(name, bytes)` into `dir`. All temp files are complete before the first rename.
pub fn write_all(dir: &Path, files: &[(&str, &[u8])]) -> anyhow::Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    for &(name, bytes) in files {
        let mut tmp = NamedTempFile::with_prefix_in(format!(".{name}."), dir)
            .with_context(|| format!("creating a temp file in {}", dir.display()))?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .context("setting mode 0600")?;
        tmp.write_all(bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("writing {name}"))?;
        staged.push((name, tmp));
    }
    for (name, tmp) in staged {
        let target = dir.join(name);
        tmp.persist(&target)
            .with_context(|| format!("moving {name} into {}", target.display()))?;
    }
    Ok(())
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
}
