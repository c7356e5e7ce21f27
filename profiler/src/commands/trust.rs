//! Whether another local user could steer what root writes under an output directory: the
//! ownership rule OpenSSH's StrictModes applies, to every directory from `/` down to `--out`.

use std::{
    fs, io,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

/// Group or other may write.
const SHARED_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Why a directory on the way to `--out` lets another user plant names in it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Untrusted {
    #[error("{} is owned by uid {uid}, neither root nor the user running the profiler", path.display())]
    Owner { path: PathBuf, uid: u32 },
    #[error("{} is writable by other users (mode {mode:04o})", path.display())]
    Writable { path: PathBuf, mode: u32 },
    #[error("{} is a symlink owned by uid {uid}, who can point it anywhere", path.display())]
    Symlink { path: PathBuf, uid: u32 },
    #[error("cannot inspect {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
}

/// One directory on the way, as `lstat` sees it.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub uid: u32,
    pub mode: u32,
    pub is_symlink: bool,
    /// The output directory itself, not one above it.
    pub is_out: bool,
}

/// The rule for one entry, for a profiler run by the users `me` (its effective user, and the
/// user who ran it through sudo): owned by root or one of them; a symlink only when so owned;
/// writable by nobody else, except a sticky directory above the output (such as /tmp), where
/// others cannot rename or delete what they do not own.
pub fn judge(path: &Path, entry: Entry, me: &[u32]) -> Result<(), Untrusted> {
    let trusted_owner = entry.uid == 0 || me.contains(&entry.uid);
    if entry.is_symlink {
        return match trusted_owner {
            true => Ok(()),
            false => Err(Untrusted::Symlink {
                path: path.to_owned(),
                uid: entry.uid,
            }),
        };
    }
    if !trusted_owner {
        return Err(Untrusted::Owner {
            path: path.to_owned(),
            uid: entry.uid,
        });
    }
    let shared = entry.mode & SHARED_WRITE != 0;
    let sticky_above = entry.mode & STICKY != 0 && !entry.is_out;
    if shared && !sticky_above {
        return Err(Untrusted::Writable {
            path: path.to_owned(),
            mode: entry.mode & 0o7777,
        });
    }
    Ok(())
}

/// Checks `out` and every directory above it, as given (each symlink on the way) and as
/// resolved (each real directory). A tail that does not exist yet is skipped: it is created
/// by the profiler, and checked again once it is.
pub fn check(out: &Path) -> Result<(), Untrusted> {
    check_path(out, true)
}

/// Checks `parent` and every directory above it, for an output directory the profiler creates
/// in it under a name nobody can foresee: `parent` may be shared if sticky, as /tmp is.
pub fn check_parent(parent: &Path) -> Result<(), Untrusted> {
    check_path(parent, false)
}

/// The users the profiler runs for: its effective user and, under sudo, the user who ran it
/// (`SUDO_UID`, which only sudo, or root itself, sets for a root process).
fn trusted_users() -> Vec<u32> {
    let mut users = vec![rustix::process::geteuid().as_raw()];
    if let Some(uid) = std::env::var("SUDO_UID").ok().and_then(|v| v.parse().ok()) {
        users.push(uid);
    }
    users
}

fn check_path(out: &Path, last_is_out: bool) -> Result<(), Untrusted> {
    let me = trusted_users();
    let absolute = std::path::absolute(out).map_err(|err| unreadable(out, &err))?;
    let existing = absolute
        .ancestors()
        .find(|dir| fs::symlink_metadata(dir).is_ok())
        .unwrap_or(Path::new("/"));
    for given in ancestors_from_root(existing) {
        let meta = fs::symlink_metadata(&given).map_err(|err| unreadable(&given, &err))?;
        if meta.file_type().is_symlink() {
            let entry = entry_of(&meta, false);
            judge(&given, entry, &me)?;
        }
    }
    let resolved = fs::canonicalize(existing).map_err(|err| unreadable(existing, &err))?;
    for dir in ancestors_from_root(&resolved) {
        let meta = fs::symlink_metadata(&dir).map_err(|err| unreadable(&dir, &err))?;
        let is_out = last_is_out && dir == resolved && existing == absolute;
        judge(&dir, entry_of(&meta, is_out), &me)?;
    }
    Ok(())
}

fn ancestors_from_root(path: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = path.ancestors().map(Path::to_owned).collect();
    all.reverse();
    all
}

fn entry_of(meta: &fs::Metadata, is_out: bool) -> Entry {
    Entry {
        uid: meta.uid(),
        mode: meta.permissions().mode(),
        is_symlink: meta.file_type().is_symlink(),
        is_out,
    }
}

fn unreadable(path: &Path, err: &io::Error) -> Untrusted {
    Untrusted::Unreadable {
        path: path.to_owned(),
        reason: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 1000;

    fn dir(uid: u32, mode: u32, is_out: bool) -> Entry {
        Entry {
            uid,
            mode,
            is_symlink: false,
            is_out,
        }
    }

    fn verdict(entry: Entry) -> Result<(), Untrusted> {
        judge(Path::new("/d"), entry, &[ME])
    }

    #[test]
    fn root_or_own_private_directories_pass() {
        assert_eq!(verdict(dir(0, 0o755, false)), Ok(()));
        assert_eq!(verdict(dir(0, 0o700, true)), Ok(()));
        assert_eq!(verdict(dir(ME, 0o755, true)), Ok(()));
    }

    #[test]
    fn the_user_who_ran_it_through_sudo_is_trusted_too() {
        let theirs = dir(1001, 0o755, true);
        assert_eq!(judge(Path::new("/d"), theirs, &[0, 1001]), Ok(()));
        assert!(judge(Path::new("/d"), theirs, &[0]).is_err());
    }

    #[test]
    fn another_users_directory_fails_whatever_its_mode() {
        for mode in [0o700, 0o755, 0o1777] {
            assert!(matches!(
                verdict(dir(65534, mode, false)),
                Err(Untrusted::Owner { uid: 65534, .. })
            ));
        }
    }

    #[test]
    fn shared_write_passes_only_on_a_sticky_directory_above_the_output() {
        assert_eq!(verdict(dir(0, 0o1777, false)), Ok(()));
        assert!(matches!(
            verdict(dir(0, 0o1777, true)),
            Err(Untrusted::Writable { mode: 0o1777, .. })
        ));
        for mode in [0o777, 0o775, 0o757, 0o722] {
            assert!(matches!(
                verdict(dir(0, mode, false)),
                Err(Untrusted::Writable { .. })
            ));
        }
    }

    #[test]
    fn a_symlink_is_judged_by_its_owner_alone() {
        let link = |uid| Entry {
            uid,
            mode: 0o777,
            is_symlink: true,
            is_out: false,
        };
        assert_eq!(verdict(link(0)), Ok(()));
        assert!(matches!(
            verdict(link(65534)),
            Err(Untrusted::Symlink { uid: 65534, .. })
        ));
    }

    #[test]
    fn a_world_writable_output_on_disk_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let out = base.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(check(&out), Err(Untrusted::Writable { .. })));
        fs::set_permissions(&out, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(check(&out), Ok(()));
        // Not there yet: what exists above it is checked.
        assert_eq!(check(&out.join("a/b")), Ok(()));
    }
}
