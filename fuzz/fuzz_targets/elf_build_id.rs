//! GNU build ids read from the ELF files processes map (for pprof mappings): any file, however
//! truncated or hostile, gives an id, none, or an error, and an id is bytes of the file.

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use profiler::fuzzing::read_build_id;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(id)) = read_build_id(&mut Cursor::new(data)) {
        assert!(!id.is_empty());
        assert!(
            data.windows(id.len()).any(|window| window == id),
            "build id {id:02x?} is not in the file"
        );
    }
});
