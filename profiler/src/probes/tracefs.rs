//! tracefs: where classic tracepoints are found, mounting it when the host has not, and the
//! field offsets in their `format` files.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

fn has_events(dir: &Path) -> bool {
    dir.join("events").is_dir()
}

/// Overrides where tracefs is looked for; when set, nothing is mounted. Also how an operator
/// turns classic tracepoints off on a host where they misbehave (point it at an empty folder).
pub const TRACEFS_ENV: &str = "PROFILER_TRACEFS";

/// Whether this process mounted tracefs (for `doctor`'s line).
static MOUNTED: AtomicBool = AtomicBool::new(false);

/// Whether tracefs was mounted by this process, rather than found mounted.
pub fn mounted_by_us() -> bool {
    MOUNTED.load(Ordering::Relaxed)
}

/// The tracefs root, mounting it at /sys/kernel/tracing when nothing is mounted (needs root),
/// and saying so on stderr: the mount outlives the run. The error is the reason, for `signals`
/// and the warning line.
pub fn ensure_mounted() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(TRACEFS_ENV) {
        let dir = PathBuf::from(dir);
        return if has_events(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "{TRACEFS_ENV}={} has no tracefs events directory",
                dir.display()
            ))
        };
    }
    for dir in [TRACEFS, DEBUGFS_TRACING] {
        if has_events(Path::new(dir)) {
            return Ok(PathBuf::from(dir));
        }
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(format!(
            "tracefs is not mounted and mounting it at {TRACEFS} failed ({err}); mount it with `mount -t tracefs nodev {TRACEFS}`"
        ));
    }
    MOUNTED.store(true, Ordering::Relaxed);
    eprintln!("profiler: tracefs was not mounted; mounted it at {TRACEFS}");
    if has_events(Path::new(TRACEFS)) {
        Ok(PathBuf::from(TRACEFS))
    } else {
        Err(format!(
            "mounted tracefs at {TRACEFS} but it has no events directory"
        ))
    }
}

/// Byte offset of `field` in a tracepoint record, from its `format` file text.
pub fn field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?;
        let (decl, rest) = decl.split_once(';')?;
        let name = decl.split_whitespace().last()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        rest.trim()
            .strip_prefix("offset:")?
            .split(';')
            .next()?
            .trim()
            .parse()
            .ok()
    })
}

/// Reads `field`'s offset in `category/event`, naming what is missing on failure.
pub fn event_field_offset(
    root: &Path,
    category: &str,
    event: &str,
    field: &str,
) -> Result<u32, String> {
    let path = root
        .join("events")
        .join(category)
        .join(event)
        .join("format");
    let text = std::fs::read_to_string(&path).map_err(|err| {
        format!(
            "tracepoint {category}:{event} not available ({}: {err})",
            path.display()
        )
    })?;
    field_offset(&text, field)
        .ok_or_else(|| format!("tracepoint {category}:{event} has no field {field}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWITCH: &str = "name: sched_switch\nID: 316\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;\n\
\tfield:pid_t next_pid;\toffset:56;\tsize:4;\tsigned:1;\n";

    #[test]
    fn offsets_come_from_the_format_text() {
        assert_eq!(field_offset(SWITCH, "prev_state"), Some(32));
        assert_eq!(field_offset(SWITCH, "next_pid"), Some(56));
        assert_eq!(field_offset(SWITCH, "prev_comm"), Some(8));
        assert_eq!(field_offset(SWITCH, "pid"), None);
    }

    #[test]
    fn missing_event_names_itself() {
        let err =
            event_field_offset(Path::new("/nonexistent"), "sched", "nope", "pid").unwrap_err();
        assert!(err.contains("sched:nope"), "{err}");
    }
}
