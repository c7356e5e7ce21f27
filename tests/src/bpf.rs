//! BPF programs in the kernel: which ones a process holds (its fdinfo), which are loaded
//! (bpftool), and waiting for a killed profiler's programs to go.

use std::fs;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::skip_or_fail;

/// Ids of the BPF programs `pid` holds open: each program fd's `/proc/PID/fdinfo` has a
/// `prog_id:` line. Attribution by pid, so programs other users load meanwhile do not count.
pub fn programs_held_by(pid: u32) -> Vec<u64> {
    let dir = format!("/proc/{pid}/fdinfo");
    let mut ids: Vec<u64> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{dir}: {err}"))
        .filter_map(Result::ok)
        // An fd closed since the listing has no fdinfo any more.
        .filter_map(|entry| fs::read_to_string(entry.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("prog_id:"))
                .and_then(|id| id.trim().parse().ok())
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Ids of every loaded BPF program, from `bpftool -j prog show`; `None`, after `skip_or_fail`,
/// when bpftool cannot run.
pub fn loaded_programs(test: &str) -> Option<Vec<u64>> {
    let output = match Command::new("bpftool")
        .args(["-j", "prog", "show"])
        .output()
    {
        Ok(output) if output.status.success() => output,
        Ok(output) => panic!(
            "bpftool failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(err) => {
            skip_or_fail(
                test,
                &format!("bpftool not runnable ({err}); run cargo xtask setup"),
            );
            return None;
        }
    };
    let programs: Value = serde_json::from_slice(&output.stdout).expect("bpftool JSON");
    Some(
        programs
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|program| program["id"].as_u64())
            .collect(),
    )
}

/// Names of the BPF programs `pid` holds, as bpftool shows them (the kernel keeps 15 bytes of
/// a name). A program the profiler did not attach is not loaded, so this is what it attached.
pub fn program_names_held_by(pid: u32) -> Vec<String> {
    let held = programs_held_by(pid);
    let output = Command::new("bpftool")
        .args(["-j", "prog", "show"])
        .output()
        .unwrap_or_else(|err| panic!("bpftool not runnable ({err}); run cargo xtask setup"));
    let programs: Value = serde_json::from_slice(&output.stdout).expect("bpftool JSON");
    let mut names: Vec<String> = programs
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|p| p["id"].as_u64().is_some_and(|id| held.contains(&id)))
        .filter_map(|p| Some(p["name"].as_str()?.to_owned()))
        .collect();
    names.sort();
    names
}

/// Waits until bpftool lists none of `ids` (the kernel frees a program once its last fd closes,
/// which a killed process's exit does, give or take a moment); panics naming those left.
pub fn assert_programs_unloaded(test: &str, ids: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let loaded = loaded_programs(test).expect("bpftool ran a moment ago");
        let left: Vec<&u64> = ids.iter().filter(|id| loaded.contains(id)).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{test}: BPF programs {left:?} still loaded 10 s after the profiler was killed"
        );
        thread::sleep(Duration::from_millis(100));
    }
}
