//! The unwind-row compiler on any file a process maps: `.eh_frame` or `.debug_frame` however
//! malformed gives rows or an error, never a panic; rows come out sorted by address, one per
//! address, each with a rule the kernel's walker knows.

#![no_main]

use libfuzzer_sys::fuzz_target;
use profiler::fuzzing::{MAX_UNWIND_ROWS, compile_unwind_rows, unwind_rule_known};

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = compile_unwind_rows(data) {
        assert!(rows.len() <= MAX_UNWIND_ROWS);
        assert!(rows.windows(2).all(|pair| pair[0].pc < pair[1].pc));
        assert!(rows.iter().all(unwind_rule_known));
    }
});
