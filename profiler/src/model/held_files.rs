//! Mapped files the host cannot open by the path a process's maps show (deleted or replaced since
//! it started, or in another mount namespace such as a container's): held open through
//! `/proc/PID/map_files` at first sight, so their symbols can be read after the process is gone.

use std::{
    collections::HashMap,
    os::fd::{AsRawFd as _, OwnedFd},
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use rustix::fs::{FileType, Mode, OFlags};

/// Files held at most: each is one descriptor of the profiler's and keeps the file's blocks
/// allocated until the profiler exits. A host where more binaries than this are deleted or
/// hidden while running names the rest `[unknown]`, said once in the log.
pub const MAX_HELD: usize = 256;

/// A mapping of a process: where it lies, and which file (device, inode) it maps.
#[derive(Debug, Clone, Copy)]
pub struct Mapped {
    pub pid: u32,
    pub start: u64,
    pub end: u64,
    /// Major and minor, as the maps line shows them.
    pub dev: (u32, u32),
    pub inode: u64,
}

struct Held {
    /// By device and inode (as `fstat` gives them): each file once, however many processes map
    /// it.
    files: HashMap<((u32, u32), u64), (OwnedFd, PathBuf)>,
    warned: bool,
}

static HELD: Mutex<Option<Held>> = Mutex::new(None);

/// A path the profiler can open the mapped file by for as long as it runs, when `shown` (the path
/// in the maps line) does not lead to that same file; `None` when it does, or when the file
/// cannot be held (gone, not a regular file, or [`MAX_HELD`] reached).
pub fn readable_path(shown: &Path, mapped: Mapped) -> Option<PathBuf> {
    let on_host = rustix::fs::stat(shown).ok();
    let same = |dev: (u32, u32), ino: u64| {
        on_host.as_ref().is_some_and(|st| {
            (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev)) == dev && st.st_ino == ino
        })
    };
    if same(mapped.dev, mapped.inode) {
        return None;
    }
    // The maps line's device is not always the one stat gives for the same file (btrfs
    // subvolumes, overlayfs): ask the mapping itself before holding it.
    let fd = open(mapped)?;
    let st = rustix::fs::fstat(&fd).ok()?;
    let dev = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    if same(dev, st.st_ino) {
        return None;
    }
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    let held = held.get_or_insert_with(|| Held {
        files: HashMap::new(),
        warned: false,
    });
    let key = (dev, st.st_ino);
    if let Some((_, path)) = held.files.get(&key) {
        return Some(path.clone());
    }
    if held.files.len() >= MAX_HELD {
        if !held.warned {
            log::warn!(
                "{MAX_HELD} deleted or hidden binaries held open already; frames of more are \
                 left unnamed"
            );
            held.warned = true;
        }
        return None;
    }
    let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    held.files.insert(key, (fd, path.clone()));
    Some(path)
}

/// The mapping's file, opened without reading it (`O_PATH`: opening a device has effects) through
/// the process's own view, checked to be a regular file.
fn open(mapped: Mapped) -> Option<OwnedFd> {
    let link = format!(
        "/proc/{}/map_files/{:x}-{:x}",
        mapped.pid, mapped.start, mapped.end
    );
    let fd = rustix::fs::open(&link, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then_some(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_text_mapping() -> (PathBuf, Mapped) {
        let me = procfs::process::Process::myself().unwrap();
        let ip = own_text_mapping as *const () as u64;
        let map = me
            .maps()
            .unwrap()
            .into_iter()
            .find(|m| m.address.0 <= ip && ip < m.address.1)
            .unwrap();
        let procfs::process::MMapPath::Path(path) = map.pathname else {
            panic!("the test's code is not file-backed")
        };
        let mapped = Mapped {
            pid: std::process::id(),
            start: map.address.0,
            end: map.address.1,
            dev: (map.dev.0 as u32, map.dev.1 as u32),
            inode: map.inode,
        };
        (path, mapped)
    }

    #[test]
    fn a_file_the_host_opens_by_its_path_is_not_held() {
        let (path, mapped) = own_text_mapping();
        assert_eq!(readable_path(&path, mapped), None);
    }

    #[test]
    fn a_path_that_leads_elsewhere_holds_the_mapped_file_itself() {
        let (path, mapped) = own_text_mapping();
        let elsewhere = Path::new("/nonexistent/moved-binary (deleted)");
        // Reading another process's map_files takes root (CAP_SYS_ADMIN); one's own does not.
        let held = readable_path(elsewhere, mapped).expect("held through map_files");
        assert!(held.starts_with("/proc/self/fd/"), "{}", held.display());
        let (a, b) = (
            std::fs::metadata(&held).unwrap(),
            std::fs::metadata(&path).unwrap(),
        );
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
        assert_eq!(readable_path(elsewhere, mapped), Some(held));
    }
}
