//! The /proc and tracefs text the profiler parses: /proc/self/mountinfo (where cgroup2 is, each
//! line read by procfs, its escapes decoded by the profiler), /proc/self/status (`CapEff:`) and
//! tracepoint `format` files (field offsets). Whatever comes before it, a well-formed line is read
//! right.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use profiler::fuzzing::{cgroup2_root, effective_caps, field_offset};

fuzz_target!(|text: &str| {
    let root = cgroup2_root(text);
    // Escapes aside, the root is a field of the text.
    if !text.contains('\\') {
        assert!(
            root == Path::new("/sys/fs/cgroup") || text.contains(root.to_str().unwrap()),
            "{root:?} is not in the mounts"
        );
    }
    if !text.contains("cgroup2") {
        let mountinfo = format!(
            "{text}\n36 25 0:31 / /fuzz/cgroup\\040x rw,nosuid shared:9 - cgroup2 cgroup2 rw\n"
        );
        assert_eq!(
            cgroup2_root(&mountinfo),
            Path::new("/fuzz/cgroup x"),
            "{mountinfo:?}"
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
