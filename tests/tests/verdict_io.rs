//! The verdict on block IO, named for harm: pages dirtied before the run and written back during
//! it by the kernel's flusher thread are nobody the operator can act on. The flusher was named
//! "saturating the disk" for 300 MB written back to a disk 4 % busy; it must not be a suspect,
//! its bytes still shown and counted as unattributed writeback.

use std::{process::Command, time::Duration};

use profiler_tests::{
    array, assert_exact_suspects, count, diagnose_window, disk_backed_tempdir, require_root, serial,
};

/// Well below the share of memory (`vm.dirty_background_ratio`, 10 % of what is available) at
/// which the flusher starts by itself, and far over the 10 MB/s that would have named it.
const DIRTY_MIB: usize = 300;
const DURATION: Duration = Duration::from_secs(4);

#[test]
fn the_flusher_writing_back_pages_dirtied_before_the_run_is_no_suspect() {
    const TEST: &str = "the_flusher_writing_back_pages_dirtied_before_the_run_is_no_suspect";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let Some(dir) = disk_backed_tempdir(TEST) else {
        return;
    };
    // Dirtied now, before the probes attach: nobody the run sees dirtied them.
    let data: Vec<u8> = (0..DIRTY_MIB << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("dirty"), &data).expect("writing the dirty file");
    drop(data);
    let run = diagnose_window(DURATION, &[], |_| {
        let synced = Command::new("sync").status().expect("running sync");
        assert!(synced.success(), "sync failed: {synced}");
    });
    let report = &run.report;
    let verdict = report["verdict"].as_str().unwrap_or_default();
    // The scenario happened: kernel threads wrote the pages back, unattributed.
    let flushed: u64 = array(report, "processes")
        .iter()
        .filter(|p| p["ppid"] == 2 && p["io"].is_object())
        .map(|p| count(&p["io"], "write_bytes"))
        .sum();
    let unattributed = count(&report["drops"], "writeback_unattributed_bytes");
    let dirtied = (DIRTY_MIB << 20) as u64;
    assert!(
        flushed >= dirtied * 9 / 10 && unattributed >= dirtied * 9 / 10,
        "kernel threads wrote {flushed} bytes, {unattributed} unattributed, not the {dirtied} \
         dirtied before the run:\n{verdict}"
    );
    // Nothing else ran: the exact suspect set is empty.
    assert_exact_suspects("writeback of pages dirtied before the run", report, &[]);
}
