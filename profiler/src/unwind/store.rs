//! The kernel's row array, memory-mapped: each object's rows in one free range, shared by every
//! process that maps the object, and evicted (oldest first) only once none does.

use std::{
    collections::HashMap,
    ops::Range,
    os::fd::{AsFd as _, BorrowedFd, OwnedFd},
    sync::Arc,
};

use profiler_common::UnwindRow;

/// Objects remembered at most (in use or not, failed or not); the unused ones go first.
const MAX_OBJECTS: usize = 4096;

/// What names an object across processes: the device and inode of the mapped file, its size
/// and modification time (a file rewritten in place is another object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
}

/// Where an object's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Placement {
    pub first: u32,
    pub rows: u32,
}

/// A loadable segment of an object: where its file bytes land in the object's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub file_offset: u64,
    pub file_size: u64,
    pub address: u64,
}

/// What the store keeps of a compiled object.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub rows: Vec<UnwindRow>,
    pub segments: Vec<Segment>,
}

/// An object's rows and layout, for one of its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub placement: Placement,
    pub segments: Arc<[Segment]>,
}

#[derive(Debug)]
struct Object {
    /// `None`: it has no rows (its information did not compile).
    placed: Option<Placed>,
    /// Processes whose published table refers to it.
    users: u32,
    /// When it last gained a user, in acquisitions: the eviction order.
    last_used: u64,
}

/// Why an object got no rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRows {
    /// Its call frame information could not be compiled (the cause is logged).
    Compile,
    /// The array has no free range that large, even after evicting unused objects.
    Full,
}

const PAGE: usize = 4096;

/// The pages of the array that hold rows `range`, mapped into this process while they are
/// written: mapped whole, the array would count in the profiler's resident memory all the time.
struct Window {
    address: *mut std::ffi::c_void,
    len: usize,
    /// Where the range's first row is in the mapping.
    skip: usize,
}

impl Window {
    fn map(array: BorrowedFd<'_>, range: &Range<u32>) -> std::io::Result<Self> {
        let start = range.start as usize * size_of::<UnwindRow>();
        let end = range.end as usize * size_of::<UnwindRow>();
        let offset = start / PAGE * PAGE;
        let len = end.div_ceil(PAGE) * PAGE - offset;
        // SAFETY: a shared read-write mapping of whole pages inside the array (its size is a
        // multiple of the page size, rounded up by the kernel); unmapped on drop.
        let address = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                array,
                offset as u64,
            )?
        };
        Ok(Self {
            address,
            len,
            skip: start - offset,
        })
    }

    fn write(&mut self, rows: &[UnwindRow]) {
        // SAFETY: the mapping covers `skip` bytes plus the range, which holds `rows.len()` rows
        // (the caller maps the range of exactly these rows); nothing else writes it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                rows.as_ptr(),
                self.address.cast::<u8>().add(self.skip).cast::<UnwindRow>(),
                rows.len(),
            );
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; nothing refers to it afterwards.
        let _ = unsafe { rustix::mm::munmap(self.address, self.len) };
    }
}

pub struct RowStore {
    /// The kernel's array, created `BPF_F_MMAPABLE`.
    array: OwnedFd,
    capacity: u32,
    free: Vec<Range<u32>>,
    objects: HashMap<ObjectKey, Object>,
    /// Objects refused for room, and their rows: compiled again only once they could fit.
    refused: HashMap<ObjectKey, usize>,
    clock: u64,
    /// Rows evicted so far, and objects refused for room.
    pub evicted_rows: u64,
    pub full: u64,
}

impl RowStore {
    /// A store over the kernel array `array` of `capacity` rows of 16 bytes.
    pub fn new(array: OwnedFd, capacity: u32) -> Self {
        Self {
            array,
            capacity,
            free: std::iter::once(0..capacity).collect(),
            objects: HashMap::new(),
            refused: HashMap::new(),
            clock: 0,
            evicted_rows: 0,
            full: 0,
        }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    pub fn used(&self) -> u32 {
        self.capacity() - self.free.iter().map(|r| r.end - r.start).sum::<u32>()
    }

    pub fn objects(&self) -> usize {
        self.objects.len()
    }

    /// The object's rows for one more user, compiling them on first sight. A user of an
    /// object without rows releases it all the same; one refused for room is not a user.
    pub fn acquire(
        &mut self,
        key: ObjectKey,
        compile: impl FnOnce() -> Option<Table>,
    ) -> Result<Placed, NoRows> {
        self.clock += 1;
        if let Some(object) = self.objects.get_mut(&key) {
            object.users += 1;
            object.last_used = self.clock;
            return object.placed.clone().ok_or(NoRows::Compile);
        }
        // Refused for room before, and no more room since: not compiled again for nothing.
        if let Some(&rows) = self.refused.get(&key)
            && !self.could_hold(rows)
        {
            return Err(NoRows::Full);
        }
        let Some(table) = compile() else {
            self.remember(key, None);
            return Err(NoRows::Compile);
        };
        let Some(placement) = self.place(&table.rows) else {
            self.full += 1;
            if self.refused.len() >= MAX_OBJECTS {
                self.refused.clear();
            }
            self.refused.insert(key, table.rows.len());
            return Err(NoRows::Full);
        };
        self.refused.remove(&key);
        let placed = Placed {
            placement,
            segments: table.segments.into(),
        };
        self.remember(key, Some(placed.clone()));
        Ok(placed)
    }

    fn remember(&mut self, key: ObjectKey, placed: Option<Placed>) {
        // Objects no process maps any more, failed ones included, are forgotten past a bound.
        while self.objects.len() >= MAX_OBJECTS && self.evict_oldest_unused() {}
        let object = Object {
            placed,
            users: 1,
            last_used: self.clock,
        };
        self.objects.insert(key, object);
    }

    /// Whether `rows` could be placed: an object may take a quarter of the array at most (so
    /// one object cannot crowd out the rest), and evicting every unused object must free enough.
    fn could_hold(&self, rows: usize) -> bool {
        let unused: u32 = self
            .objects
            .values()
            .filter(|o| o.users == 0)
            .filter_map(|o| o.placed.as_ref().map(|p| p.placement.rows))
            .sum();
        let free = self.capacity() - self.used();
        rows <= (self.capacity() / 4) as usize && rows <= (free + unused) as usize
    }

    /// One user fewer; the rows stay until their room is needed.
    pub fn release(&mut self, key: &ObjectKey) {
        if let Some(object) = self.objects.get_mut(key) {
            object.users = object.users.saturating_sub(1);
        }
    }

    /// Writes the rows into a free range, evicting unused objects (oldest first) for room.
    fn place(&mut self, rows: &[UnwindRow]) -> Option<Placement> {
        let len = u32::try_from(rows.len()).ok().filter(|&n| n > 0)?;
        if !self.could_hold(rows.len()) {
            return None;
        }
        let range = loop {
            if let Some(range) = self.take_free(len) {
                break range;
            }
            if !self.evict_oldest_unused() {
                return None;
            }
        };
        // No published process refers to `range`: it was free, and the walker reads rows only
        // through a process's mapping entries.
        match Window::map(self.array.as_fd(), &range) {
            Ok(mut window) => window.write(rows),
            Err(err) => {
                log::warn!("mapping unwind rows {range:?}: {err}");
                self.give_back(range);
                return None;
            }
        }
        Some(Placement {
            first: range.start,
            rows: len,
        })
    }

    /// First fit.
    fn take_free(&mut self, len: u32) -> Option<Range<u32>> {
        let i = self.free.iter().position(|r| r.end - r.start >= len)?;
        let start = self.free[i].start;
        self.free[i].start += len;
        if self.free[i].is_empty() {
            self.free.remove(i);
        }
        Some(start..start + len)
    }

    fn evict_oldest_unused(&mut self) -> bool {
        let oldest = self
            .objects
            .iter()
            .filter(|(_, o)| o.users == 0)
            .min_by_key(|(_, o)| o.last_used)
            .map(|(key, _)| *key);
        let Some(key) = oldest else {
            return false;
        };
        let Some(object) = self.objects.remove(&key) else {
            return false;
        };
        if let Some(Placed { placement, .. }) = object.placed {
            let Placement { first, rows } = placement;
            self.evicted_rows += u64::from(rows);
            self.give_back(first..first + rows);
        }
        true
    }

    /// Returns a range to the free list, merged with its neighbours.
    fn give_back(&mut self, range: Range<u32>) {
        let i = self.free.partition_point(|r| r.start < range.start);
        self.free.insert(i, range);
        if i + 1 < self.free.len() && self.free[i].end == self.free[i + 1].start {
            self.free[i].end = self.free.remove(i + 1).end;
        }
        if i > 0 && self.free[i - 1].end == self.free[i].start {
            self.free[i - 1].end = self.free.remove(i).end;
        }
    }
}

#[cfg(test)]
mod tests {
    use profiler_common::CfaRule;

    use super::*;

    fn bytes(rows: u32) -> usize {
        rows as usize * size_of::<UnwindRow>()
    }

    /// A memfd stands in for the array: same shared mapping, no kernel map needed.
    fn store(capacity: u32) -> RowStore {
        let fd = rustix::fs::memfd_create("rows", rustix::fs::MemfdFlags::empty()).unwrap();
        rustix::fs::ftruncate(&fd, bytes(capacity) as u64).unwrap();
        RowStore::new(fd, capacity)
    }

    /// The rows as the kernel would read them.
    fn read_back(store: &RowStore, placement: Placement) -> Vec<u64> {
        let mut file = std::fs::File::from(store.array.try_clone().unwrap());
        let mut bytes = vec![0u8; bytes(placement.rows)];
        use std::io::{Read as _, Seek as _};
        file.seek(std::io::SeekFrom::Start(
            (placement.first as usize * size_of::<UnwindRow>()) as u64,
        ))
        .unwrap();
        file.read_exact(&mut bytes).unwrap();
        bytes
            .chunks(size_of::<UnwindRow>())
            .map(|row| u64::from_le_bytes(row[..8].try_into().unwrap()))
            .collect()
    }

    fn rows(n: u64) -> Option<Table> {
        let rows = (0..n)
            .map(|pc| UnwindRow {
                pc,
                cfa_offset: 8,
                rbp_offset: 0,
                cfa: CfaRule::Rsp as u8,
                rbp: 0,
            })
            .collect();
        Some(Table {
            rows,
            segments: Vec::new(),
        })
    }

    fn key(ino: u64) -> ObjectKey {
        ObjectKey {
            dev: 1,
            ino,
            size: 0,
            mtime: 0,
        }
    }

    #[test]
    fn an_object_is_compiled_once_and_shared() {
        let mut store = store(400);
        let a = store.acquire(key(1), || rows(40)).unwrap();
        let again = store.acquire(key(1), || panic!("compiled twice")).unwrap();
        assert_eq!(a, again);
        assert_eq!((store.used(), store.objects()), (40, 1));
    }

    #[test]
    fn unused_objects_make_room_oldest_first_and_used_ones_never() {
        let mut store = store(400);
        for ino in 1..=4 {
            store.acquire(key(ino), || rows(100)).unwrap();
        }
        // All in use: no room for a fifth, and it is not compiled again while none is made.
        assert_eq!(store.acquire(key(5), || rows(100)), Err(NoRows::Full));
        assert_eq!(
            store.acquire(key(5), || panic!("compiled again without room")),
            Err(NoRows::Full)
        );
        store.release(&key(2));
        store.release(&key(1));
        let fifth = store.acquire(key(5), || rows(100)).unwrap();
        assert_eq!(fifth.placement.first, 0, "the oldest, object 1, gave way");
        assert!(store.objects.contains_key(&key(2)));
        assert_eq!(store.evicted_rows, 100);
    }

    #[test]
    fn freed_ranges_merge_so_a_larger_object_fits_after_small_ones_go() {
        let mut store = store(400);
        for ino in 1..=3 {
            store.acquire(key(ino), || rows(30)).unwrap();
            store.release(&key(ino));
        }
        for ino in 4..=6 {
            store.acquire(key(ino), || rows(100)).unwrap();
        }
        let larger = store.acquire(key(9), || rows(90)).unwrap();
        assert_eq!(larger.placement, Placement { first: 0, rows: 90 });
    }

    #[test]
    fn rows_land_in_their_range_whatever_page_it_starts_on() {
        let mut store = store(1000);
        let a = store.acquire(key(1), || rows(40)).unwrap();
        // 640 bytes in: the window starts on the page before and skips to it.
        let b = store.acquire(key(2), || rows(250)).unwrap();
        assert_eq!(b.placement.first, 40);
        assert_eq!(read_back(&store, a.placement), (0..40).collect::<Vec<_>>());
        assert_eq!(read_back(&store, b.placement), (0..250).collect::<Vec<_>>());
    }

    #[test]
    fn one_object_takes_a_quarter_of_the_array_at_most() {
        let mut store = store(400);
        assert_eq!(store.acquire(key(1), || rows(101)), Err(NoRows::Full));
        assert_eq!(store.used(), 0);
    }

    #[test]
    fn an_object_that_does_not_compile_is_not_tried_again() {
        let mut store = store(10);
        assert_eq!(store.acquire(key(1), || None), Err(NoRows::Compile));
        assert_eq!(
            store.acquire(key(1), || panic!("compiled twice")),
            Err(NoRows::Compile)
        );
    }
}
