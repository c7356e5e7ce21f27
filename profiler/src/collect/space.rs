//! Who holds the space of a full file system: the processes with regular files open on it, by
//! the space those files take (deleted ones too, which only their holder's exit frees). Read
//! from /proc when a window cannot be written, not per tick.

use std::{
    collections::HashSet,
    ffi::OsStr,
    fs,
    io::Read as _,
    os::unix::fs::MetadataExt as _,
    path::Path,
    time::{Duration, Instant},
};

use rustix::fs::{AtFlags, CWD, StatxFlags};

/// Open files looked at per process, at most: a process with millions of descriptors is not
/// worth a stalled recorder.
const FDS_PER_PROCESS: usize = 100_000;
/// The scan stops after this long, with what it found: hosts with very many processes and
/// descriptors must not hold the window writer up for long.
const SCAN_FOR: Duration = Duration::from_secs(1);
/// Bytes of an fdinfo file read: its first lines, `mnt_id` among them.
const FDINFO_HEAD: u64 = 256;

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

/// The processes holding open files on the file system `dir` is on (through the same mount:
/// a bind mount of it elsewhere is another), most space first; the recorder itself left out.
/// Empty when `dir` cannot be read or the kernel gives no mount ids (before Linux 5.8); those
/// found in the first [`SCAN_FOR`] on a host too large to scan in it.
pub fn holders(dir: &Path) -> Vec<Holder> {
    let (Ok(dev), Some(mount)) = (fs::metadata(dir).map(|m| m.dev()), mount_of(dir)) else {
        return Vec::new();
    };
    let own = std::process::id();
    let Ok(processes) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let deadline = Instant::now() + SCAN_FOR;
    let mut holders: Vec<Holder> = processes
        .filter_map(Result::ok)
        .filter_map(|process| u32::try_from(process.pid).ok())
        .filter(|&pid| pid != own)
        .take_while(|_| Instant::now() < deadline)
        .filter_map(|pid| holder(pid, (dev, mount)))
        .collect();
    holders.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.pid.cmp(&b.pid)));
    holders
}

/// What `pid` holds open on device `dev` through mount `mount`, if anything; `None` for a
/// process gone meanwhile.
fn holder(pid: u32, (dev, mount): (u64, u64)) -> Option<Holder> {
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
        // Only a file on the full file system is looked at: one elsewhere may be served by
        // another user (FUSE) or a dead server, and answer a stat when it likes.
        if fd_mount(pid, &fd.file_name()) != Some(mount) {
            continue;
        }
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

/// The id of the mount `dir` is on, as /proc/PID/fdinfo gives it (`statx`, Linux 5.8).
fn mount_of(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statx(CWD, dir, AtFlags::empty(), StatxFlags::MNT_ID).ok()?;
    (stat.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(stat.stx_mnt_id)
}

/// The mount an open descriptor's file is on, from procfs alone. `mnt_id` is on the third
/// line; the rest (an epoll set's every watched descriptor) is left unread.
fn fd_mount(pid: u32, fd: &OsStr) -> Option<u64> {
    let path = format!("/proc/{pid}/fdinfo/{}", fd.to_str()?);
    let mut head = String::new();
    fs::File::open(path)
        .ok()?
        .take(FDINFO_HEAD)
        .read_to_string(&mut head)
        .ok()?;
    head.lines()
        .find_map(|line| line.strip_prefix("mnt_id:"))
        .and_then(|id| id.trim().parse().ok())
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
        let mount = mount_of(dir.path()).expect("statx gives the mount id");
        let me = holder(std::process::id(), (dev, mount)).expect("this process holds two files");
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
