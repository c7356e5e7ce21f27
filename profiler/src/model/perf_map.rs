//! Names of JIT-compiled code from the `/tmp/perf-PID.map` a runtime writes (Node's
//! `--perf-basic-prof`, the JVM's agents, Python's `-X perf`): one `START SIZE NAME` line per
//! function, hex. Read inside the process's own root, as the process's own file, bounded.

use std::{
    io::{BufRead as _, BufReader, Read as _},
    os::fd::{AsRawFd as _, OwnedFd},
    time::{Duration, SystemTime},
};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

/// A map past this is not one worth the memory (Node writes ~50 bytes a function; a large
/// Node service's map is a few MiB).
const MAX_FILE_BYTES: u64 = 16 << 20;
/// Functions kept of one map, whatever its lines: bounds the memory a process can make the
/// profiler spend on its names (about 100 bytes each).
const MAX_ENTRIES: usize = 200_000;
/// Longest name kept: a JIT's names carry source paths and can be long.
const MAX_NAME_CHARS: usize = 256;

/// A process's JIT functions by address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PerfMap {
    /// `(start, end, name)`, sorted by start; where a runtime wrote several functions at one
    /// start (code recompiled in place), the last written.
    entries: Vec<(u64, u64, String)>,
}

impl PerfMap {
    /// Parses a map's text; lines that do not parse are skipped.
    #[cfg(test)]
    pub fn parse(text: &str) -> Self {
        Self::from_lines(text.lines().map(str::to_owned))
    }

    /// The functions of a map's lines, at most [`MAX_ENTRIES`].
    fn from_lines(lines: impl Iterator<Item = String>) -> Self {
        let mut entries: Vec<(u64, u64, String)> = lines
            .filter_map(|line| entry(&line))
            .take(MAX_ENTRIES)
            .collect();
        // Stable: among equal starts the file's order stays, and the last one is kept.
        entries.sort_by_key(|&(start, _, _)| start);
        entries.reverse();
        entries.dedup_by_key(|entry| entry.0);
        entries.reverse();
        Self { entries }
    }

    /// The function `addr` lies in.
    pub fn name(&self, addr: u64) -> Option<&str> {
        let after = self.entries.partition_point(|&(start, _, _)| start <= addr);
        let (_, end, name) = self.entries.get(after.checked_sub(1)?)?;
        (addr < *end).then_some(name.as_str())
    }
}

/// One `START SIZE NAME` line.
fn entry(line: &str) -> Option<(u64, u64, String)> {
    let mut parts = line.splitn(3, ' ');
    let start = u64::from_str_radix(parts.next()?.trim_start_matches("0x"), 16).ok()?;
    let size = u64::from_str_radix(parts.next()?.trim_start_matches("0x"), 16).ok()?;
    let name: String = parts
        .next()?
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    (size > 0 && !name.is_empty()).then(|| (start, start.saturating_add(size), name))
}

/// The map of the live process `pid` (started at `started`, wall time), where it wrote one:
/// `/tmp/perf-<its pid in its own pid namespace>.map` resolved inside its root without following
/// any link, a regular file owned by the process's user, at most [`MAX_FILE_BYTES`], written
/// since the process started (runtimes leave their maps behind: an older one is a dead
/// process's of the same pid).
pub fn read(pid: u32, started: SystemTime) -> Option<PerfMap> {
    let owner = rustix::fs::stat(format!("/proc/{pid}")).ok()?.st_uid;
    let path = open_path(pid, ns_pid(pid).unwrap_or(pid))?;
    let st = rustix::fs::fstat(&path).ok()?;
    let modified = SystemTime::UNIX_EPOCH + Duration::new(u64::try_from(st.st_mtime).ok()?, 0);
    let trusted = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
        && st.st_uid == owner
        && u64::try_from(st.st_size).is_ok_and(|size| size <= MAX_FILE_BYTES)
        // Whole seconds: the file's time is truncated, the start rounded to a tick.
        && modified + Duration::from_secs(1) >= started;
    if !trusted {
        log::debug!("pid {pid}: its perf map is not its own recent regular file of bounded size");
        return None;
    }
    // Only now opened for reading, through the descriptor already checked: opening a device
    // (or a FIFO) could act on it or block.
    let file = std::fs::File::open(format!("/proc/self/fd/{}", path.as_raw_fd())).ok()?;
    let lines = BufReader::new(file.take(MAX_FILE_BYTES))
        .split(b'\n')
        .map_while(Result::ok)
        .map(|line| String::from_utf8_lossy(&line).into_owned());
    Some(PerfMap::from_lines(lines))
}

/// The map's path, opened `O_PATH` inside the process's root: no link followed, magic or not.
fn open_path(pid: u32, ns_pid: u32) -> Option<OwnedFd> {
    let root = rustix::fs::open(
        format!("/proc/{pid}/root"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    rustix::fs::openat2(
        &root,
        format!("tmp/perf-{ns_pid}.map"),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()
}

/// The process's pid in its own pid namespace (the last of `NSpid:`), as its runtime names
/// the file.
fn ns_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_address_the_last_written_winning_and_junk_skipped() {
        let map = PerfMap::parse(
            "7f00 100 JS:*hot_loop a.js:1\n\
             garbage line\n\
             7f00 80 JS:*hot_loop_recompiled a.js:1\n\
             8000 0 empty\n\
             0x9000 10 Builtin:\u{7}Bell\n\
             zz 10 bad\n",
        );
        assert_eq!(map.entries.len(), 2);
        assert_eq!(map.name(0x7f00), Some("JS:*hot_loop_recompiled a.js:1"));
        assert_eq!(map.name(0x7f7f), Some("JS:*hot_loop_recompiled a.js:1"));
        assert_eq!(map.name(0x7f80), None);
        assert_eq!(map.name(0x7eff), None);
        assert_eq!(map.name(0x9005), Some("Builtin:Bell"));
        assert_eq!(map.name(0x9010), None);
    }

    #[test]
    fn a_map_is_bounded_in_entries() {
        let lines = (0..MAX_ENTRIES as u64 + 10).map(|i| format!("{:x} 1 f{i}", i * 2));
        assert_eq!(PerfMap::from_lines(lines).entries.len(), MAX_ENTRIES);
    }

    #[test]
    fn a_process_without_a_map_has_none() {
        assert_eq!(read(std::process::id(), SystemTime::UNIX_EPOCH), None);
        assert!(ns_pid(std::process::id()).is_some());
    }
}
