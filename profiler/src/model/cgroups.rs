//! cgroup v2 ids (as `bpf_get_current_cgroup_id` gives them) to paths: the id is the inode
//! number of the cgroup's directory under /sys/fs/cgroup.

use std::{
    collections::HashMap,
    ffi::OsString,
    os::unix::{
        ffi::{OsStrExt as _, OsStringExt as _},
        fs::MetadataExt as _,
    },
    path::PathBuf,
};

use procfs::process::MountInfo;

const DEFAULT_ROOT: &str = "/sys/fs/cgroup";
/// Bounds the walk on hosts with very many cgroups.
const MAX_DIRS: usize = 100_000;

/// Where cgroup2 is mounted, from /proc/self/mountinfo text: /sys/fs/cgroup on unified hosts,
/// /sys/fs/cgroup/unified on hybrid ones. Lines are parsed one by one so that a line procfs
/// cannot read does not hide the others.
pub fn root_from(mountinfo: &str) -> PathBuf {
    mountinfo
        .lines()
        .filter_map(|line| MountInfo::from_line(line).ok())
        .find(|mount| mount.fs_type == "cgroup2")
        .map_or_else(
            || PathBuf::from(DEFAULT_ROOT),
            |mount| unmangle(mount.mount_point.as_os_str().as_bytes()),
        )
}

/// Undoes the kernel's `\ooo` octal escapes of space, tab, newline and backslash in a mount
/// point, which procfs 0.18 leaves in place (its /proc/mounts reader decodes some of them, but
/// not `\040`, a space).
fn unmangle(mangled: &[u8]) -> PathBuf {
    let mut path = Vec::with_capacity(mangled.len());
    let mut rest = mangled;
    while let Some((&first, tail)) = rest.split_first() {
        let escaped = match tail {
            [a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7', ..] if first == b'\\' => {
                Some(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'))
            }
            _ => None,
        };
        match escaped {
            Some(byte) => {
                path.push(byte);
                rest = &tail[3..];
            }
            None => {
                path.push(first);
                rest = tail;
            }
        }
    }
    PathBuf::from(OsString::from_vec(path))
}

/// The directory of a cgroup v2 path (`/system.slice/redis.service`) under this host's
/// cgroup2 mount; `None` for a path that is not absolute or climbs out of it.
pub fn dir_of(path: &str) -> Option<PathBuf> {
    let relative = path.strip_prefix('/')?;
    let climbs = relative.split('/').any(|part| part == ".." || part == ".");
    (!climbs).then(|| root().join(relative))
}

fn root() -> PathBuf {
    // Lossy so that one mount point that is not UTF-8 does not hide the cgroup2 line.
    let mountinfo = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
    root_from(&String::from_utf8_lossy(&mountinfo))
}

/// Every cgroup directory's inode and its path relative to the root (`/` for the root).
pub fn index() -> HashMap<u64, String> {
    let root = root();
    let mut paths = HashMap::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        if paths.len() >= MAX_DIRS {
            break;
        }
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        let relative = dir
            .strip_prefix(&root)
            .map_or_else(|_| "/".to_owned(), |rel| format!("/{}", rel.display()));
        paths.insert(meta.ino(), relative);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup2_root_is_found_on_unified_and_hybrid_hosts() {
        let hybrid = "25 1 0:22 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755\n\
                      26 25 0:23 / /sys/fs/cgroup/cpu rw shared:10 - cgroup cgroup rw,cpu\n\
                      27 25 0:24 / /sys/fs/cgroup/unified rw shared:11 - cgroup2 cgroup2 rw\n";
        assert_eq!(root_from(hybrid), PathBuf::from("/sys/fs/cgroup/unified"));
        let unified = "35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 \
                       rw,nsdelegate\n";
        assert_eq!(root_from(unified), PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(root_from(""), PathBuf::from(DEFAULT_ROOT));
    }

    #[test]
    fn escaped_mount_points_are_decoded() {
        let spaced = "not a mountinfo line\n\
                      40 24 0:35 / /mnt/my\\040cgroups\\134040 rw - cgroup2 none rw\n";
        assert_eq!(root_from(spaced), PathBuf::from("/mnt/my cgroups\\040"));
        assert_eq!(
            unmangle(br"a\011b\012\0\9999\"),
            PathBuf::from("a\tb\n\\0\\9999\\")
        );
    }

    #[test]
    fn this_hosts_cgroup2_root_is_indexed_as_slash() {
        let root = root();
        if !root.join("cgroup.controllers").exists() {
            return;
        }
        let root_ino = std::fs::metadata(&root).unwrap().ino();
        assert_eq!(index().get(&root_ino).map(String::as_str), Some("/"));
    }
}
