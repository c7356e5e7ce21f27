//! Error kinds that decide the exit code: bad input, missing privileges and an output location
//! that cannot take the files exit 2, a run stopped before it measured anything 128 + the
//! signal, the rest 1.

use std::{io, path::Path};

/// The user asked for something that cannot work as given; the message names the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Shorthand for returning a [`UsageError`] wrapped in `anyhow`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// SIGINT or SIGTERM arrived before anything was measured: nothing is written, and the exit
/// code is the shell's for that signal (130, 143).
#[derive(Debug, thiserror::Error)]
#[error("stopped by {name} before anything was measured; nothing written")]
pub struct Interrupted {
    pub name: &'static str,
    pub number: i32,
}

pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(stop) = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<Interrupted>())
    {
        return u8::try_from(128 + stop.number).unwrap_or(1);
    }
    if err.chain().any(|cause| cause.is::<UsageError>()) {
        2
    } else {
        1
    }
}

/// A failed write into `dir` whose cause the operator has to fix there (disk full, quota,
/// read-only or forbidden) becomes a usage error naming the cause and the fix; other failures
/// are returned as they are.
pub fn output_write(err: anyhow::Error, dir: &Path) -> anyhow::Error {
    let (cause, fix) = match io_kind(&err) {
        Some(io::ErrorKind::StorageFull) => ("no space left on device", "free space there"),
        Some(io::ErrorKind::QuotaExceeded) => ("disk quota exceeded", "free space there"),
        Some(io::ErrorKind::ReadOnlyFilesystem) => ("read-only file system", "remount it"),
        Some(io::ErrorKind::PermissionDenied) => ("permission denied", "allow it"),
        _ => return err,
    };
    // The outer context names the file; the io error's own text names a temp file instead.
    usage(format!(
        "{err} in {}: {cause}; {fix} or pick another --out DIR",
        dir.display()
    ))
}

/// The kind of the first I/O error in `err`'s chain, if it has one.
pub fn io_kind(err: &anyhow::Error) -> Option<io::ErrorKind> {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<io::Error>())
        .map(io::Error::kind)
}

/// Output piped into `head` and closed early is a normal end, not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// clap's message without its `error:` prefix, usage block and help hint, so bad arguments get
/// the same one-line `Error: ...` as every other failure.
pub fn one_line_clap(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first).trim();
    // "the following required arguments were not provided:" names them on the next line, and
    // an invalid value of a fixed set is followed by "[possible values: ...]": both are the fix.
    match lines.next().map(str::trim) {
        Some(next)
            if (message.ends_with(':') && !next.is_empty())
                || next.starts_with("[possible values:") =>
        {
            format!("{message} {next} (see --help)")
        }
        _ => format!("{message} (see --help)"),
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    #[test]
    fn usage_errors_exit_2_even_when_wrapped() {
        let err = Err::<(), _>(usage("bad")).context("outer").unwrap_err();
        assert_eq!(exit_code(&err), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("other")), 1);
    }

    #[test]
    fn clap_errors_become_one_line() {
        use clap::Parser as _;
        let err = crate::cli::Cli::try_parse_from(["profiler", "diagnose", "--duration", "banana"])
            .unwrap_err();
        let line = one_line_clap(&err);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--duration"), "{line}");
        assert!(line.starts_with("invalid value"), "{line}");
        let err = crate::cli::Cli::try_parse_from(["profiler", "flamegraph"]).unwrap_err();
        let line = one_line_clap(&err);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("<INPUT>"), "{line}");
        let err = crate::cli::Cli::try_parse_from(["profiler", "diagnose", "--format", "xml"])
            .unwrap_err();
        let line = one_line_clap(&err);
        assert_eq!(
            line,
            "invalid value 'xml' for '--format <FORMAT>' [possible values: text, json] (see --help)"
        );
    }

    #[test]
    fn interrupted_exits_with_the_signal_code() {
        let err = anyhow::Error::from(Interrupted {
            name: "SIGTERM",
            number: 15,
        });
        assert_eq!(exit_code(&err), 143);
        assert!(err.to_string().contains("SIGTERM"), "{err}");
    }

    #[test]
    fn full_disk_is_a_usage_error_naming_the_cause_and_fix() {
        let full = Err::<(), _>(io::Error::from(io::ErrorKind::StorageFull))
            .context("writing report.json")
            .unwrap_err();
        let err = output_write(full, Path::new("/mnt/x"));
        assert_eq!(exit_code(&err), 2);
        let line = err.to_string();
        assert!(
            line.starts_with("writing report.json in /mnt/x: no space left on device; free space"),
            "{line}"
        );
        let other = output_write(anyhow::anyhow!("boom"), Path::new("/mnt/x"));
        assert_eq!(exit_code(&other), 1);
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let err = Err::<(), _>(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("writing table")
            .unwrap_err();
        assert!(is_broken_pipe(&err));
    }
}
