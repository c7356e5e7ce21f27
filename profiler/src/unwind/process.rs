//! One process's table: its executable mappings, each pointing at its object's rows, as the
//! kernel's walker reads them.

use std::{
    fs::File,
    os::unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    path::PathBuf,
};

use procfs::process::{MMPermissions, MMapPath, Process};
use profiler_common::{ProcessUnwind, UNWIND_MAPPINGS, UnwindMapping};

use super::{
    rows,
    store::{NoRows, ObjectKey, Placed, RowStore, Table},
};

/// An executable mapping as /proc/PID/maps shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecMapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub inode: u64,
    /// A file's mapping (not the vDSO, not anonymous JIT code).
    pub file: bool,
}

/// A process's executable mappings and start time; `None` when it is gone or unreadable.
pub fn exec_mappings(pid: u32) -> Option<(u64, Vec<ExecMapping>)> {
    let process = Process::new(pid as i32).ok()?;
    let start_time = process.stat().ok()?.starttime;
    let maps = process.maps().ok()?;
    let mut mappings: Vec<ExecMapping> = maps
        .into_iter()
        .filter(|m| m.perms.contains(MMPermissions::EXECUTE))
        .map(|m| ExecMapping {
            start: m.address.0,
            end: m.address.1,
            offset: m.offset,
            inode: m.inode,
            file: matches!(m.pathname, MMapPath::Path(_)),
        })
        .collect();
    // More than the kernel entry holds: files' code first (JIT regions walk by frame pointers
    // without an entry all the same).
    if mappings.len() > UNWIND_MAPPINGS {
        mappings.sort_by_key(|m| !m.file);
        mappings.truncate(UNWIND_MAPPINGS);
    }
    mappings.sort_by_key(|m| m.start);
    Some((start_time, mappings))
}

/// Which program a process runs: its start time and its executable's device and inode, read
/// before and after its table is built to tell an exec (or a reused pid) in between.
pub fn program(pid: u32) -> Option<(u64, u64, u64)> {
    let start_time = Process::new(pid as i32).ok()?.stat().ok()?.starttime;
    let exe = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    Some((start_time, exe.dev(), exe.ino()))
}

/// What building a process's table found.
#[derive(Debug, Default)]
pub struct Built {
    pub entry: Option<Box<ProcessUnwind>>,
    /// Objects it holds in the store, to release when the entry goes.
    pub objects: Vec<ObjectKey>,
    /// Mappings of files left without rows for want of room.
    pub full: usize,
    /// Rows of the objects compiled for it whose rule the walker cannot evaluate.
    pub unsupported: usize,
}

/// The process's entry, acquiring each mapped object's rows from `store`.
pub fn build(store: &mut RowStore, pid: u32, mappings: &[ExecMapping]) -> Built {
    let mut built = Built::default();
    let mut entry = Box::new(ProcessUnwind {
        len: 0,
        _pad: 0,
        mappings: [UnwindMapping::default(); UNWIND_MAPPINGS],
    });
    for (slot, mapping) in entry.mappings.iter_mut().zip(mappings) {
        *slot = UnwindMapping {
            start: mapping.start,
            end: mapping.end,
            ..UnwindMapping::default()
        };
        if !mapping.file {
            continue;
        }
        let Some((key, file)) = open(pid, mapping) else {
            continue;
        };
        let compile = || {
            let table = table(&file, key);
            built.unsupported += table.as_ref().map_or(0, |(_, unsupported)| *unsupported);
            table.map(|(table, _)| table)
        };
        match store.acquire(key, compile) {
            Ok(placed) => {
                built.objects.push(key);
                if let Some(bias) = bias(mapping, &placed) {
                    slot.bias = bias;
                    slot.first_row = placed.placement.first;
                    slot.rows = placed.placement.rows;
                }
            }
            Err(NoRows::Compile) => built.objects.push(key),
            Err(NoRows::Full) => built.full += 1,
        }
    }
    entry.len = mappings.len().min(UNWIND_MAPPINGS) as u32;
    built.entry = Some(entry);
    built
}

/// Files larger than this are not read for tables (the size also bounds what reading a
/// sparse file claiming to be huge can allocate).
const MAX_OBJECT_BYTES: u64 = 1 << 30;

/// The mapped file itself, through the process's own view of it: deleted, replaced or in
/// another mount namespace, it is still the file the code came from. Opened without blocking
/// on a FIFO or taking a terminal (a mapping of anybody's file can be anything), and read only
/// if it is a regular file.
fn open(pid: u32, mapping: &ExecMapping) -> Option<(ObjectKey, File)> {
    let path = PathBuf::from(format!(
        "/proc/{pid}/map_files/{:x}-{:x}",
        mapping.start, mapping.end
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.size() > MAX_OBJECT_BYTES {
        return None;
    }
    let key = ObjectKey {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime: meta.mtime(),
    };
    Some((key, file))
}

/// Compiles the object's rows, with how many of them the walker cannot evaluate; `None`
/// (logged) when it has none. Read, not mapped: another user's file truncated under a mapping
/// would fault this process.
fn table(file: &File, key: ObjectKey) -> Option<(Table, usize)> {
    match rows::compile(&object::ReadCache::new(file)) {
        Ok(compiled) if !compiled.rows.is_empty() && !compiled.segments.is_empty() => {
            let table = Table {
                rows: compiled.rows,
                segments: compiled.segments,
            };
            Some((table, compiled.unsupported))
        }
        Ok(_) => None,
        Err(err) => {
            log::info!("no unwind table for inode {}: {err}", key.ino);
            None
        }
    }
}

/// What to subtract from an address in the mapping to get the object's address: the
/// executable segment whose file bytes the mapping starts in says where they belong (lld puts
/// the read-only segment's last bytes on the code's first page: the executable one is meant).
fn bias(mapping: &ExecMapping, placed: &Placed) -> Option<u64> {
    const PAGE: u64 = 4096;
    let segment = placed.segments.iter().find(|s| {
        let first_page = s.file_offset & !(PAGE - 1);
        (first_page..s.file_offset + s.file_size).contains(&mapping.offset)
    })?;
    // An address a in the mapping is file offset a - start + offset, which the segment puts at
    // address + (that - file_offset).
    Some(
        mapping
            .start
            .wrapping_sub(mapping.offset)
            .wrapping_add(segment.file_offset)
            .wrapping_sub(segment.address),
    )
}
