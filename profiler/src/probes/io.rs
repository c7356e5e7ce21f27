//! The `io` signal's probes: the block and writeback tracepoints, whose records are read at
//! offsets tracefs gives.

use aya::{Ebpf, EbpfLoader};
use profiler_common::{
    GLOBAL_BIO_RWBS, GLOBAL_BLOCK_DEV, GLOBAL_BLOCK_NR_SECTOR, GLOBAL_BLOCK_SECTOR,
    GLOBAL_WRITEBACK_INO, PROG_BIO_QUEUE, PROG_DIRTY_FOLIO, PROG_RQ_COMPLETE, PROG_RQ_ISSUE,
    PROG_WRITEBACK_END, PROG_WRITEBACK_START,
};

use super::{program, tracefs};

/// Field offsets of the block and writeback tracepoints, read from tracefs.
pub struct Offsets {
    dev: u32,
    sector: u32,
    nr_sector: u32,
    rwbs: u32,
    ino: u32,
    /// `writeback_dirty_folio`, or `writeback_dirty_page` before Linux 5.18.
    dirty_event: &'static str,
}

pub fn offsets() -> Result<Offsets, String> {
    let root = tracefs::ensure_mounted()?;
    let offset =
        |category, event, field| tracefs::event_field_offset(&root, category, event, field);
    let dev = offset("block", "block_bio_queue", "dev")?;
    let sector = offset("block", "block_bio_queue", "sector")?;
    for event in ["block_rq_issue", "block_rq_complete"] {
        if offset("block", event, "dev")? != dev || offset("block", event, "sector")? != sector {
            return Err(format!("block_bio_queue and {event} records differ"));
        }
    }
    let dirty_event = if root.join("events/writeback/writeback_dirty_folio").is_dir() {
        "writeback_dirty_folio"
    } else {
        "writeback_dirty_page"
    };
    let ino = offset("writeback", dirty_event, "ino")?;
    for event in ["writeback_single_inode_start", "writeback_single_inode"] {
        if offset("writeback", event, "ino")? != ino {
            return Err(format!("{dirty_event} and {event} records differ"));
        }
    }
    Ok(Offsets {
        dev,
        sector,
        nr_sector: offset("block", "block_bio_queue", "nr_sector")?,
        rwbs: offset("block", "block_bio_queue", "rwbs")?,
        ino,
        dirty_event,
    })
}

pub fn configure<'a>(loader: &mut EbpfLoader<'a>, offsets: &'a Offsets) {
    loader
        .override_global(GLOBAL_BLOCK_DEV, &offsets.dev, true)
        .override_global(GLOBAL_BLOCK_SECTOR, &offsets.sector, true)
        .override_global(GLOBAL_BLOCK_NR_SECTOR, &offsets.nr_sector, true)
        .override_global(GLOBAL_BIO_RWBS, &offsets.rwbs, true)
        .override_global(GLOBAL_WRITEBACK_INO, &offsets.ino, true);
}

/// Writeback attribution first, so bios queued by a writeback thread find their dirtier.
pub fn attach(ebpf: &mut Ebpf, offsets: &Offsets) -> Result<(), String> {
    [
        (PROG_DIRTY_FOLIO, "writeback", offsets.dirty_event),
        (
            PROG_WRITEBACK_START,
            "writeback",
            "writeback_single_inode_start",
        ),
        (PROG_WRITEBACK_END, "writeback", "writeback_single_inode"),
        (PROG_RQ_COMPLETE, "block", "block_rq_complete"),
        (PROG_RQ_ISSUE, "block", "block_rq_issue"),
        (PROG_BIO_QUEUE, "block", "block_bio_queue"),
    ]
    .into_iter()
    .try_for_each(|(name, category, event)| program::tracepoint(ebpf, name, category, event))
    .map_err(|err| program::first_line(&err))
}
