//! A directory the profiler writes into, held open: every file and subdirectory in it is
//! created, renamed and deleted relative to that handle, never through a link, so what another
//! user does to the paths around it cannot redirect a write.

use std::{
    ffi::{OsStr, OsString},
    fs::File,
    io::{self, Write as _},
    os::{
        fd::OwnedFd,
        unix::ffi::{OsStrExt as _, OsStringExt as _},
    },
    path::{Path, PathBuf},
    time::SystemTime,
};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};

/// Files are for root's eyes only: reports name every process and its command line.
const FILE_MODE: Mode = Mode::RUSR.union(Mode::WUSR);
const DIR_MODE: Mode = Mode::RWXU;

/// An open directory, and the path it was opened by (for messages).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// One entry of a directory, as `lstat` sees it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: OsString,
    pub kind: FileType,
    /// Bytes allocated on disk.
    pub allocated: u64,
    pub modified: SystemTime,
}

impl Dir {
    /// Opens `path`, which must be a directory. The path is the trusted user's (`--out`, checked
    /// by the ownership rule): links in it are followed; inside, none is.
    pub fn open(path: &Path) -> io::Result<Self> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(CWD, path, flags, Mode::empty())?;
        Ok(Self {
            fd,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes every `(name, bytes)`, mode 0600: each into a temporary name, synced, then all
    /// renamed over their targets (replacing a link there, never following it). All are complete
    /// before the first rename; a failure leaves no temporary file.
    pub fn write_atomic(&self, files: &[(&OsStr, &[u8])]) -> io::Result<()> {
        let mut staged: Vec<(OsString, &OsStr)> = Vec::with_capacity(files.len());
        let result = files.iter().try_for_each(|&(name, bytes)| {
            let mut prefix = OsString::from(".");
            prefix.push(name);
            prefix.push(".");
            let temp = unique(&prefix)?;
            staged.push((temp.clone(), name));
            let mut file = self.create_file(&temp, OFlags::EXCL)?;
            file.write_all(bytes)?;
            file.sync_all()
        });
        let result = result.and_then(|()| {
            staged
                .iter()
                .try_for_each(|(temp, name)| self.rename(temp, name))
        });
        if result.is_err() {
            for (temp, _) in &staged {
                let _ = rustix::fs::unlinkat(&self.fd, temp.as_os_str(), AtFlags::empty());
            }
        }
        result
    }

    /// Opens `name` for appending, created mode 0600 if missing; a link there is refused.
    pub fn append(&self, name: &str) -> io::Result<File> {
        self.create_file(name.as_ref(), OFlags::APPEND)
    }

    /// Creates `name` holding `bytes`; fails if anything is there already.
    pub fn create_new(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut file = self.create_file(name.as_ref(), OFlags::EXCL)?;
        file.write_all(bytes)
    }

    /// Creates a directory (mode 0700) named `prefix` and random characters, and opens it.
    pub fn make_unique_dir(&self, prefix: &str) -> io::Result<(OsString, Dir)> {
        loop {
            let name = unique(prefix.as_ref())?;
            match rustix::fs::mkdirat(&self.fd, name.as_os_str(), DIR_MODE) {
                Ok(()) => return Ok((name.clone(), self.subdir(&name)?)),
                Err(rustix::io::Errno::EXIST) => continue,
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Opens the directory `name` in this one; a link is refused.
    pub fn subdir(&self, name: &OsStr) -> io::Result<Dir> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())?;
        Ok(Dir {
            fd,
            path: self.path.join(name),
        })
    }

    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?)
    }

    /// The entries but `.` and `..`, links not followed.
    pub fn entries(&self) -> io::Result<Vec<Entry>> {
        let mut listing = rustix::fs::Dir::read_from(&self.fd)?;
        let mut entries = Vec::new();
        while let Some(entry) = listing.read() {
            let name = OsString::from_vec(entry?.file_name().to_bytes().to_vec());
            if name == "." || name == ".." {
                continue;
            }
            // Gone between the listing and the look: not an entry any more.
            let Ok(stat) =
                rustix::fs::statat(&self.fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            else {
                continue;
            };
            let modified = SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(u64::try_from(stat.st_mtime).unwrap_or(0));
            entries.push(Entry {
                name,
                kind: FileType::from_raw_mode(stat.st_mode),
                allocated: u64::try_from(stat.st_blocks).unwrap_or(0) * 512,
                modified,
            });
        }
        Ok(entries)
    }

    /// Whether `name` is a regular file (not a link to one).
    pub fn has_file(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile)
    }

    /// Deletes `name` and, if it is a directory, everything in it; links are deleted, not
    /// followed.
    pub fn remove_tree(&self, name: &OsStr) -> io::Result<()> {
        let stat = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?);
        }
        let inner = self.subdir(name)?;
        for entry in inner.entries()? {
            inner.remove_tree(&entry.name)?;
        }
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
    }

    fn create_file(&self, name: &OsStr, extra: OFlags) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | extra;
        let fd = rustix::fs::openat(&self.fd, name, flags, FILE_MODE)?;
        Ok(File::from(fd))
    }
}

/// `prefix` and eight random characters: a name nobody can foresee.
fn unique(prefix: &OsStr) -> io::Result<OsString> {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut random = [0_u8; 8];
    rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty())?;
    let mut name = prefix.as_bytes().to_vec();
    name.extend(random.iter().map(|b| CHARS[usize::from(*b) % CHARS.len()]));
    Ok(OsString::from_vec(name))
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt as _};

    use super::*;

    #[test]
    fn files_land_complete_private_and_replace_links_without_following() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("target");
        fs::write(&target, "untouched").unwrap();
        std::os::unix::fs::symlink(&target, base.path().join("b.txt")).unwrap();
        let dir = Dir::open(base.path()).unwrap();
        let files: [(&OsStr, &[u8]); 2] =
            [("a.json".as_ref(), b"{}"), ("b.txt".as_ref(), b"hello")];
        dir.write_atomic(&files).unwrap();
        assert_eq!(fs::read(base.path().join("b.txt")).unwrap(), b"hello");
        assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
        let mode = fs::metadata(base.path().join("a.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(base.path()).unwrap().count(), 3);
    }

    #[test]
    fn links_are_refused_for_appends_and_directories() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("target");
        fs::write(&target, "untouched").unwrap();
        std::os::unix::fs::symlink(&target, base.path().join("log")).unwrap();
        std::os::unix::fs::symlink(base.path(), base.path().join("linked")).unwrap();
        let dir = Dir::open(base.path()).unwrap();
        assert!(dir.append("log").is_err());
        assert!(dir.subdir("linked".as_ref()).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
    }

    #[test]
    fn a_tree_is_removed_without_following_its_links() {
        let base = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        fs::write(elsewhere.path().join("keep"), "x").unwrap();
        let dir = Dir::open(base.path()).unwrap();
        let (name, made) = dir.make_unique_dir(".w.").unwrap();
        made.create_new("f", b"1").unwrap();
        assert!(made.create_new("f", b"2").is_err());
        std::os::unix::fs::symlink(elsewhere.path(), made.path().join("link")).unwrap();
        let mode = fs::metadata(made.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        dir.remove_tree(&name).unwrap();
        assert!(!base.path().join(&name).exists());
        assert!(elsewhere.path().join("keep").is_file());
    }
}
