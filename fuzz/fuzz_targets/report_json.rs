//! What `profiler flamegraph --from` and `record`'s retention read of a record directory: each
//! window's report.json (`started_at`, `duration_s`) and the window directory names. A window
//! never ends before it starts, a bad report is one line of error, and the only names taken for
//! windows are those the writer gives them.

#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use profiler::fuzzing::{WindowKind, parse_window_name, window};

fuzz_target!(|data: &[u8]| {
    match window(PathBuf::from("w"), Path::new("w/report.json"), data) {
        Ok(Some(window)) => assert!(window.ended >= window.started, "{window:?}"),
        Ok(None) => {}
        Err(err) => {
            let message = format!("{err:#}");
            assert!(!message.contains(['\n', '\r']), "{message:?}");
        }
    }

    if let Ok(name) = std::str::from_utf8(data)
        && let Some(start) = parse_window_name(name)
    {
        let written = [WindowKind::Regular, WindowKind::Incident].map(|kind| kind.name(start));
        assert!(
            written.iter().any(|w| w == name),
            "only the writer's own names are windows: {name:?}"
        );
    }
});
