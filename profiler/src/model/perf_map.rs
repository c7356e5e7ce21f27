//! Names of JIT-compiled code from the `/tmp/perf-PID.map` a runtime writes (Node's
//! `--perf-basic-prof`, the JVM's agents, Python's `-X perf`): one `START SIZE NAME` line per
//! function, hex. Read inside the process's own root, as the process's own file, bounded.

use std::{io::Read as _, os::fd::OwnedFd};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

/// A map past this is not one worth the memory (Node writes ~50 bytes a function).
const MAX_FILE_BYTES: u64 = 64 << 20;
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
    pub fn parse(text: &str) -> Self {
        let mut entries: Vec<(u64, u64, String)> = text
            .lines()
            .filter_map(|line| {
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
            })
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

/// The map of the live process `pid`, where it wrote one: `/tmp/perf-<its pid in its own pid
/// namespace>.map` resolved inside its root (a link there cannot lead out of it), a regular
/// file owned by the process's user or root, at most [`MAX_FILE_BYTES`].
pub fn read(pid: u32) -> Option<PerfMap> {
    let owner = rustix::fs::stat(format!("/proc/{pid}")).ok()?.st_uid;
    let file = open(pid, ns_pid(pid).unwrap_or(pid))?;
    let st = rustix::fs::fstat(&file).ok()?;
    let trusted = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
        && (st.st_uid == owner || st.st_uid == 0)
        && u64::try_from(st.st_size).is_ok_and(|size| size <= MAX_FILE_BYTES);
    if !trusted {
        log::debug!("pid {pid}: its perf map is not its own regular file of bounded size");
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::from(file)
        .take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(PerfMap::parse(&String::from_utf8_lossy(&bytes)))
}

fn open(pid: u32, ns_pid: u32) -> Option<OwnedFd> {
    let root = rustix::fs::open(
        format!("/proc/{pid}/root"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    rustix::fs::openat2(
        &root,
        format!("tmp/perf-{ns_pid}.map"),
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
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
    fn a_process_without_a_map_has_none() {
        assert_eq!(read(std::process::id()), None);
        assert!(ns_pid(std::process::id()).is_some());
    }
}
