//! The /proc and tracefs text the profiler parses itself rather than through procfs:
//! /proc/self/mounts (where cgroup2 is), /proc/self/status (`CapEff:`) and tracepoint `format`
//! files (field offsets). Whatever comes before it, a well-formed line is read right.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use profiler::fuzzing::{cgroup2_root, effective_caps, field_offset};

fuzz_target!(|text: &str| {
    let root = cgroup2_root(text);
    assert!(
        root == Path::new("/sys/fs/cgroup") || text.contains(root.to_str().unwrap()),
        "{root:?} is not in the mounts"
    );
    let has_cgroup2 = text
        .lines()
        .any(|line| line.split_whitespace().nth(2) == Some("cgroup2"));
    if !has_cgroup2 {
        let mounts = format!("{text}\ncgroup2 /fuzz/cgroup cgroup2 rw,nosuid 0 0\n");
        assert_eq!(
            cgroup2_root(&mounts),
            Path::new("/fuzz/cgroup"),
            "{mounts:?}"
        );
    }

    let caps = effective_caps(text);
    if !text.lines().any(|line| line.starts_with("CapEff:")) {
        assert_eq!(caps, None);
        let status = format!("{text}\nCapEff:\t000001ffffffffff\n");
        assert_eq!(effective_caps(&status), Some(0x1ff_ffff_ffff), "{status:?}");
    }

    let _ = field_offset(text, "prev_state");
    if !text.contains("fuzz_field") {
        let offset = text.len() as u32;
        let format = format!(
            "{text}\n\tfield:unsigned long fuzz_field[4];\toffset:{offset};\tsize:32;\tsigned:0;\n"
        );
        assert_eq!(
            field_offset(&format, "fuzz_field"),
            Some(offset),
            "{format:?}"
        );
    }
});
