//! What `flamegraph` reads: a folded file or a report directory's, each bounded in bytes,
//! line length, stacks and frames, parsed and merged.

use std::{
    collections::BTreeMap,
    fs,
    io::{self, Read as _},
    path::Path,
};

use super::windows;
use crate::{
    error::usage,
    output::{
        OFFCPU_FOLDED, STACKS_FOLDED,
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

/// Which side of the comparison a path is, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Input,
    Base,
}

/// A folded file, or the `wanted` file (stacks.folded or offcpu.folded) of a report directory.
pub fn load_input(
    path: &Path,
    wanted: &str,
    role: Role,
    limits: &Limits,
) -> anyhow::Result<Loaded> {
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
pub fn read_folded(file: &Path, limits: &Limits) -> anyhow::Result<Vec<(String, u64)>> {
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
