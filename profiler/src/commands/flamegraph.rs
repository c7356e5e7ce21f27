//! `profiler flamegraph`: offline rendering of folded stacks (a file, a report directory or the
//! windows of a record directory), optionally against a baseline as a differential flamegraph.

pub mod windows;

use std::{
    collections::BTreeMap,
    fs,
    io::{self, Read as _, Write as _},
    path::Path,
};

use crate::{
    cli::FlamegraphArgs,
    error::usage,
    output::{
        OFFCPU_FOLDED, STACKS_FOLDED,
        dir::Dir,
        flamegraph::{self, Picture},
        folded::{self, MAX_TOTAL},
    },
};

/// Parsed, merged stacks and how to name where they came from.
#[derive(Debug)]
pub struct Loaded {
    /// The input as the user named it, for titles.
    pub label: String,
    /// Sorted, identical stacks merged, no zero counts; never empty.
    pub stacks: Vec<(String, u64)>,
    /// Unit of the counts: `us` for off-CPU stacks, else `samples`.
    pub count_name: &'static str,
}

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

/// Which side of the comparison a path is, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Input,
    Base,
}

/// A folded file, or the `wanted` file (stacks.folded or offcpu.folded) of a report directory.
fn load_input(path: &Path, wanted: &str, role: Role, limits: &Limits) -> anyhow::Result<Loaded> {
    let meta = fs::metadata(path)
        .map_err(|err| usage(format!("cannot read {}: {err}", path.display())))?;
    let file = if meta.is_dir() {
        let file = path.join(wanted);
        if !file.exists() {
            return Err(missing_in_dir(path, wanted, role));
        }
        file
    } else {
        path.to_owned()
    };
    let stacks = merge([read_folded(&file, limits)?])?;
    limits.check_stacks(&stacks, &file.display().to_string())?;
    if stacks.is_empty() {
        return Err(usage(format!("no stacks in {}", file.display())));
    }
    let offcpu =
        wanted == OFFCPU_FOLDED || file.file_name().is_some_and(|name| name == OFFCPU_FOLDED);
    Ok(Loaded {
        label: path.display().to_string(),
        stacks,
        count_name: if offcpu { "us" } else { "samples" },
    })
}

/// Why a directory has no `wanted` file, and what to give instead.
fn missing_in_dir(dir: &Path, wanted: &str, role: Role) -> anyhow::Error {
    let shown = dir.display();
    if windows::looks_like_record_dir(dir) {
        return usage(match role {
            Role::Input => {
                format!("{shown} is a `profiler record` directory: pass it as --from {shown}")
            }
            Role::Base => format!(
                "{shown} is a `profiler record` directory: --diff takes a folded file or one of \
                 its window directories"
            ),
        });
    }
    if wanted == OFFCPU_FOLDED {
        usage(format!(
            "{shown} has no {OFFCPU_FOLDED}: that run did not measure the offcpu signal"
        ))
    } else {
        usage(format!(
            "{shown} has no {STACKS_FOLDED}: give a folded stacks file or a `profiler diagnose` \
             output directory"
        ))
    }
}

/// How much input `flamegraph` reads: far above any real profile, so that a device, a runaway
/// file or a single enormous line is refused instead of taking the host's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one input file.
    pub input_bytes: u64,
    /// Bytes of one stack line.
    pub line_bytes: u64,
    /// Distinct stacks drawn.
    pub stacks: usize,
    /// Frames of the distinct stacks, all together: what the drawing's memory grows with
    /// (about 250 bytes each at worst, when every frame is wide enough to be drawn).
    pub frames: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            input_bytes: 256 << 20,
            line_bytes: 1 << 20,
            stacks: 1_000_000,
            frames: 4_000_000,
        }
    }
}

impl Limits {
    /// Refuses more distinct stacks than `--max-stacks`, or more frames in them than
    /// `--max-frames`, from `what`.
    pub fn check_stacks(&self, stacks: &[(String, u64)], what: &str) -> anyhow::Result<()> {
        if stacks.len() > self.stacks {
            return Err(usage(format!(
                "{what} has {} distinct stacks, more than --max-stacks {}; raise --max-stacks to \
                 draw them",
                stacks.len(),
                self.stacks
            )));
        }
        let frames: usize = stacks
            .iter()
            .map(|(stack, _)| stack.split(';').count())
            .sum();
        if frames > self.frames {
            return Err(usage(format!(
                "{what} has {frames} frames in its distinct stacks, more than --max-frames {}; \
                 raise --max-frames to draw them",
                self.frames
            )));
        }
        Ok(())
    }
}

/// Reads and parses one folded file; unreadable, oversized or malformed input is a usage
/// error. Only regular files: a device or a pipe has no end to wait for.
fn read_folded(file: &Path, limits: &Limits) -> anyhow::Result<Vec<(String, u64)>> {
    let shown = file.display();
    let cannot = |err: io::Error| usage(format!("cannot read {shown}: {err}"));
    let opened = fs::File::open(file).map_err(cannot)?;
    if !opened.metadata().map_err(cannot)?.is_file() {
        return Err(usage(format!(
            "{shown} is not a regular file; give a folded stacks file or a report directory"
        )));
    }
    let too_big = || {
        usage(format!(
            "{shown} is larger than --max-input {} bytes; raise --max-input to read it",
            limits.input_bytes
        ))
    };
    let mut bytes = Vec::new();
    opened
        .take(limits.input_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limits.input_bytes {
        return Err(too_big());
    }
    if let Some(at) = bytes
        .split(|&b| b == b'\n')
        .position(|line| line.len() as u64 > limits.line_bytes)
    {
        return Err(usage(format!(
            "{shown}:{}: a line longer than --max-line {} bytes; raise --max-line to read it",
            at + 1,
            limits.line_bytes
        )));
    }
    // Symbol names are bytes from binaries; a stray invalid sequence in one should cost that
    // frame its spelling, not the whole picture.
    let text = String::from_utf8_lossy(&bytes);
    folded::parse(&text, &shown.to_string()).map_err(|err| usage(err.to_string()))
}

/// Sums the counts of identical stacks across `parts`, drops zero counts, and sorts by stack.
pub fn merge(
    parts: impl IntoIterator<Item = Vec<(String, u64)>>,
) -> anyhow::Result<Vec<(String, u64)>> {
    let mut merged = BTreeMap::<String, u64>::new();
    let mut total: u64 = 0;
    for part in parts {
        for (stack, count) in part {
            if count == 0 {
                continue;
            }
            total = total
                .checked_add(count)
                .filter(|&total| total <= MAX_TOTAL)
                .ok_or_else(|| usage("the merged counts add up to more than 2^53"))?;
            *merged.entry(stack).or_default() += count;
        }
    }
    Ok(merged.into_iter().collect())
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
    use super::*;

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
