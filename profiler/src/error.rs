//! Error kinds that decide the exit code: bad input and missing privileges exit 2, the rest 1.

use std::io;

/// The user asked for something that cannot work as given; the message names the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Shorthand for returning a [`UsageError`] wrapped in `anyhow`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|cause| cause.is::<UsageError>()) {
        2
    } else {
        1
    }
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
    // "the following required arguments were not provided:" names them on the next line.
    match lines.next().map(str::trim) {
        Some(next) if message.ends_with(':') && !next.is_empty() => {
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
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let err = Err::<(), _>(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("writing table")
            .unwrap_err();
        assert!(is_broken_pipe(&err));
    }
}
