//! `profiler flamegraph`: offline rendering of folded stacks (a file, a report directory or the
//! windows of a record directory), optionally against a baseline as a differential flamegraph.

mod input;
pub mod windows;

pub use self::input::{Limits, Loaded, merge};
use self::input::{Role, load_input};

use std::{
    io::{self, Write as _},
    path::Path,
};

use crate::{
    cli::FlamegraphArgs,
    error::usage,
    output::{
        OFFCPU_FOLDED, STACKS_FOLDED,
        dir::Dir,
        flamegraph::{self, Picture},
    },
};

pub fn run(args: FlamegraphArgs) -> anyhow::Result<()> {
    let limits = Limits {
        input_bytes: args.max_input,
        line_bytes: args.max_line,
        stacks: args.max_stacks,
        frames: args.max_frames,
    };
    let wanted = if args.offcpu {
        OFFCPU_FOLDED
    } else {
        STACKS_FOLDED
    };
    let input = load_main(&args, wanted, &limits)?;
    let base = args
        .diff
        .as_deref()
        .map(|path| load_input(path, wanted, Role::Base, &limits))
        .transpose()?;
    let svg = match &base {
        None => render_one(args.title, &input)?,
        Some(base) => render_diff(args.title, base, &input)?,
    };
    match &args.out {
        Some(path) => write_out(path, &svg),
        None => {
            let mut stdout = io::stdout().lock();
            stdout.write_all(&svg)?;
            stdout.flush()?;
            Ok(())
        }
    }
}

/// The stacks to draw: a record directory's windows (`--from`), or a file or report directory.
fn load_main(args: &FlamegraphArgs, wanted: &str, limits: &Limits) -> anyhow::Result<Loaded> {
    // clap skips `requires = "from"` once `from` is in a conflict (clap-rs/clap#4520).
    if args.from.is_none() && (args.since.is_some() || args.until.is_some()) {
        return Err(usage(
            "--since and --until pick windows of a record directory: give it with --from DIR",
        ));
    }
    match (&args.from, &args.input) {
        (Some(dir), _) => {
            let now = jiff::Timestamp::now();
            windows::load(dir, args.since, args.until, wanted, now, limits)
        }
        (None, Some(path)) => load_input(path, wanted, Role::Input, limits),
        (None, None) => Err(usage(
            "give a folded stacks file, a report directory, or --from DIR",
        )),
    }
}

fn render_one(title: Option<String>, input: &Loaded) -> anyhow::Result<Vec<u8>> {
    let picture = Picture {
        title: title.unwrap_or_else(|| format!("profiler flamegraph: {}", input.label)),
        subtitle: None,
        count_name: input.count_name.to_owned(),
    };
    flamegraph::render_stacks(&picture, &input.stacks)
}

/// `input` against `base`, both counted in the same unit.
fn render_diff(title: Option<String>, base: &Loaded, input: &Loaded) -> anyhow::Result<Vec<u8>> {
    if base.count_name != input.count_name {
        return Err(usage(format!(
            "cannot compare {} counted in {} with a baseline counted in {}: give both as \
             on-CPU stacks or both as off-CPU stacks (--offcpu)",
            input.label, input.count_name, base.count_name
        )));
    }
    let picture = Picture {
        title: title
            .unwrap_or_else(|| format!("profiler flamegraph: {} vs {}", input.label, base.label)),
        subtitle: Some(format!(
            "red: more than in the baseline, blue: less; baseline counts scaled by {:.3} to the \
             same total",
            flamegraph::normalization(&base.stacks, &input.stacks)
        )),
        count_name: input.count_name.to_owned(),
    };
    flamegraph::render_diff(&picture, &base.stacks, &input.stacks)
}

/// Writes the SVG atomically; an unwritable `--out` is the user's to fix.
fn write_out(path: &Path, svg: &[u8]) -> anyhow::Result<()> {
    if path.is_dir() {
        return Err(usage(format!(
            "--out {} is a directory; name the SVG file to write",
            path.display()
        )));
    }
    let Some(name) = path.file_name() else {
        return Err(usage(format!(
            "--out {} does not name a file; name the SVG file to write",
            path.display()
        )));
    };
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    Dir::open(parent)
        .and_then(|dir| dir.write_atomic(&[(name, svg)]))
        .map_err(|err| usage(format!("cannot write {}: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::output::folded::MAX_TOTAL;

    fn stacks(lines: &[(&str, u64)]) -> Vec<(String, u64)> {
        lines.iter().map(|&(s, n)| (s.to_owned(), n)).collect()
    }

    #[test]
    fn devices_oversized_files_and_long_lines_are_refused_by_name() {
        let limits = Limits {
            input_bytes: 64,
            line_bytes: 16,
            stacks: 2,
            frames: 5,
        };
        let error = |path: &Path| {
            load_input(path, STACKS_FOLDED, Role::Input, &limits)
                .unwrap_err()
                .to_string()
        };
        assert!(error(Path::new("/dev/zero")).contains("not a regular file"));
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.folded");
        fs::write(&big, "a;b 1\n".repeat(20)).unwrap();
        assert!(error(&big).contains("--max-input 64"), "{}", error(&big));
        let long = dir.path().join("long.folded");
        fs::write(&long, "a 1\nmain;one;two;three;four 1\n").unwrap();
        assert!(error(&long).contains("long.folded:2:"), "{}", error(&long));
        let many = dir.path().join("many.folded");
        fs::write(&many, "a 1\nb 1\nc 1\n").unwrap();
        assert!(error(&many).contains("--max-stacks 2"), "{}", error(&many));
        fs::write(&many, "a 1\nb 1\n").unwrap();
        assert!(load_input(&many, STACKS_FOLDED, Role::Input, &limits).is_ok());
        let deep = dir.path().join("deep.folded");
        fs::write(&deep, "a;b;c 1\nd;e;f 1\n").unwrap();
        assert!(error(&deep).contains("6 frames"), "{}", error(&deep));
        assert!(error(&deep).contains("--max-frames 5"), "{}", error(&deep));
    }

    #[test]
    fn merge_sums_identical_stacks_and_drops_zeros() {
        let merged = merge([
            stacks(&[("b;x", 2), ("a", 1), ("z", 0)]),
            stacks(&[("b;x", 3), ("a;y", 4)]),
        ])
        .unwrap();
        assert_eq!(merged, stacks(&[("a", 1), ("a;y", 4), ("b;x", 5)]));
    }

    #[test]
    fn merged_total_is_bounded() {
        let half = MAX_TOTAL / 2 + 1;
        let err = merge([stacks(&[("a", half)]), stacks(&[("a", half)])]).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
    }

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn report_dir_gives_its_stacks_or_offcpu_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), STACKS_FOLDED, "p (1);main 3\np (1);main 2\n");
        let loaded =
            load_input(dir.path(), STACKS_FOLDED, Role::Input, &Limits::default()).unwrap();
        assert_eq!(loaded.stacks, stacks(&[("p (1);main", 5)]));
        assert_eq!(loaded.count_name, "samples");
        let err =
            load_input(dir.path(), OFFCPU_FOLDED, Role::Input, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("offcpu signal"), "{err}");
        write(dir.path(), OFFCPU_FOLDED, "p (1);read 70\n");
        let loaded =
            load_input(dir.path(), OFFCPU_FOLDED, Role::Input, &Limits::default()).unwrap();
        assert_eq!(loaded.count_name, "us");
    }

    #[test]
    fn bad_inputs_are_usage_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty.folded", "\n# nothing\n");
        let err = load_input(&empty, STACKS_FOLDED, Role::Input, &Limits::default()).unwrap_err();
        assert_eq!(err.to_string(), format!("no stacks in {}", empty.display()));
        let zeros = write(dir.path(), "zeros.folded", "a 0\n");
        assert!(load_input(&zeros, STACKS_FOLDED, Role::Input, &Limits::default()).is_err());
        let bad = write(dir.path(), "bad.folded", "a;b 1\na;b;c\n");
        let err = load_input(&bad, STACKS_FOLDED, Role::Input, &Limits::default()).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(
            err.to_string()
                .ends_with("bad.folded:2: expected \"<frames> <count>\", found \"a;b;c\"")
        );
        let err = load_input(
            &dir.path().join("nope"),
            STACKS_FOLDED,
            Role::Base,
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        let binary = dir.path().join("bin.folded");
        fs::write(&binary, b"a;\xff\xfe 3\r\n").unwrap();
        let loaded = load_input(&binary, STACKS_FOLDED, Role::Input, &Limits::default()).unwrap();
        assert_eq!(loaded.stacks, stacks(&[("a;\u{fffd}\u{fffd}", 3)]));
    }

    #[test]
    fn record_dir_as_input_points_at_from() {
        let dir = tempfile::tempdir().unwrap();
        let window = dir.path().join("w1");
        fs::create_dir(&window).unwrap();
        write(&window, "report.json", "{}");
        write(&window, crate::output::windows::MARKER, "");
        let err =
            load_input(dir.path(), STACKS_FOLDED, Role::Input, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("--from"), "{err}");
    }

    #[test]
    fn since_without_from_is_refused() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from([
            "profiler",
            "flamegraph",
            "x.folded",
            "--since",
            "5m",
        ])
        .unwrap();
        let crate::cli::Command::Flamegraph(args) = cli.command else {
            panic!("not flamegraph")
        };
        let err = run(args).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().contains("--from"), "{err}");
    }

    #[test]
    fn output_lands_whole_and_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("g.svg");
        write_out(&out, b"<svg/>").unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"<svg/>");
        let err = write_out(dir.path(), b"<svg/>").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        let err = write_out(&dir.path().join("no/such/g.svg"), b"x").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
    }
}
