//! cgroup v2 ids (as `bpf_get_current_cgroup_id` gives them) to paths: the id is the inode
//! number of the cgroup's directory under /sys/fs/cgroup.

use std::{collections::HashMap, os::unix::fs::MetadataExt as _, path::PathBuf};

const DEFAULT_ROOT: &str = "/sys/fs/cgroup";
/// Bounds the walk on hosts with very many cgroups.
const MAX_DIRS: usize = 100_000;

/// Where cgroup2 is mounted: /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid
/// ones.
pub fn root_from(mounts: &str) -> PathBuf {
    mounts
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, dir, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(dir))
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
}

fn root() -> PathBuf {
    root_from(&std::fs::read_to_string("/proc/self/mounts").unwrap_or_default())
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
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(root_from(hybrid), PathBuf::from("/sys/fs/cgroup/unified"));
        let unified = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n";
        assert_eq!(root_from(unified), PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(root_from(""), PathBuf::from(DEFAULT_ROOT));
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
