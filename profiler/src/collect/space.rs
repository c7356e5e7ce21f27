//! Who holds the space of a full file system: the processes with regular files open on it, by
//! the space those files take (deleted ones too, which only their holder's exit frees). Read
//! from /proc when a window cannot be written, not per tick.

use std::{collections::HashSet, fs, os::unix::fs::MetadataExt as _, path::Path};

/// Open files looked at per process, at most: a process with millions of descriptors is not
/// worth a stalled recorder.
const FDS_PER_PROCESS: usize = 100_000;

/// A process holding open files on the file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// The kernel's name of it (untrusted: any user names their processes).
    pub comm: String,
    /// The space its open files there take, each file once.
    pub bytes: u64,
    pub files: u64,
    /// Of those, the files deleted while open: their space returns only when it lets go.
    pub deleted: u64,
}

/// The processes holding open files on the file system `dir` is on, most space first; the
/// recorder itself left out. Empty when `dir` cannot be read.
pub fn holders(dir: &Path) -> Vec<Holder> {
    let Ok(dev) = fs::metadata(dir).map(|m| m.dev()) else {
        return Vec::new();
    };
    let own = std::process::id();
    let Ok(processes) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let mut holders: Vec<Holder> = processes
        .filter_map(Result::ok)
        .filter_map(|process| u32::try_from(process.pid).ok())
        .filter(|&pid| pid != own)
        .filter_map(|pid| holder(pid, dev))
        .collect();
    holders.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.pid.cmp(&b.pid)));
    holders
}

/// What `pid` holds open on device `dev`, if anything; `None` for a process gone meanwhile.
fn holder(pid: u32, dev: u64) -> Option<Holder> {
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut seen = HashSet::new();
    let mut holder = Holder {
        pid,
        comm: String::new(),
        bytes: 0,
        files: 0,
        deleted: 0,
    };
    for fd in fds.filter_map(Result::ok).take(FDS_PER_PROCESS) {
        // Follows the descriptor to the open file itself, deleted or not.
        let Ok(file) = fs::metadata(fd.path()) else {
            continue;
        };
        if !file.is_file() || file.dev() != dev || !seen.insert(file.ino()) {
            continue;
        }
        holder.files += 1;
        holder.bytes += file.blocks() * 512;
        if file.nlink() == 0 {
            holder.deleted += 1;
        }
    }
    if holder.files == 0 {
        return None;
    }
    holder.comm = comm(pid);
    Some(holder)
}

fn comm(pid: u32) -> String {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    match comm.trim_end_matches('\n') {
        "" => "[unknown]".to_owned(),
        comm => comm.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn an_open_file_and_a_deleted_one_are_held_by_their_opener() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held");
        let mut held = fs::File::create(&path).unwrap();
        held.write_all(&[7; 64 << 10]).unwrap();
        held.sync_all().unwrap();
        let gone = dir.path().join("gone");
        let mut deleted = fs::File::create(&gone).unwrap();
        deleted.write_all(&[7; 16 << 10]).unwrap();
        fs::remove_file(&gone).unwrap();
        // The test process is the recorder's stand-in, so it looks at itself by pid.
        let dev = fs::metadata(dir.path()).unwrap().dev();
        let me = holder(std::process::id(), dev).expect("this process holds two files there");
        assert!(me.files >= 2, "{me:?}");
        assert!(me.deleted >= 1, "{me:?}");
        assert!(me.bytes >= 80 << 10, "{me:?}");
        assert!(!me.comm.is_empty());
        assert!(
            holders(dir.path())
                .iter()
                .all(|h| h.pid != std::process::id())
        );
        drop((held, deleted));
    }
}
