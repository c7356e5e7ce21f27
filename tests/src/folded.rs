//! Reading the folded stack files a run writes (`stacks.folded`, `offcpu.folded`):
//! `comm (pid);frame;...;frame count`, root first, kernel frames suffixed `_[k]`.

/// The suffix the profiler gives kernel frames in folded stacks.
pub const KERNEL_SUFFIX: &str = "_[k]";

/// Checks every line of the folded file `name` is `comm (pid);frames... count`, kernel frames
/// after user ones.
pub fn assert_folded_well_formed(folded: &str, name: &str) {
    assert!(!folded.trim().is_empty(), "{name} is empty");
    for line in folded.lines() {
        let (stack, count) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("{name}: line without count: {line}"));
        assert!(
            count.parse::<u64>().is_ok_and(|n| n > 0),
            "{name}: bad count in line: {line}"
        );
        let mut frames = stack.split(';');
        let root = frames.next().unwrap_or_default();
        assert!(
            root.ends_with(')') && root.contains(" ("),
            "{name}: root is not `comm (pid)`: {line}"
        );
        let mut in_kernel = false;
        for frame in frames {
            let kernel = frame.ends_with(KERNEL_SUFFIX);
            assert!(
                kernel || !in_kernel,
                "{name}: user frame after kernel frame: {line}"
            );
            in_kernel = kernel;
        }
    }
}

/// The lines of a folded file whose root is `root` (`comm (pid)`).
pub fn folded_lines_of<'a>(folded: &'a str, root: &str) -> Vec<&'a str> {
    folded
        .lines()
        .filter(|line| {
            line.strip_prefix(root)
                .is_some_and(|rest| rest.starts_with(';') || rest.starts_with(' '))
        })
        .collect()
}

/// A folded line split into its frames (root excluded) and its count; `None` if malformed.
pub fn folded_frames(line: &str) -> Option<(Vec<&str>, u64)> {
    let (stack, count) = line.rsplit_once(' ')?;
    let count = count.parse().ok()?;
    Some((stack.split(';').skip(1).collect(), count))
}

/// Whether the folded line has frames containing `names` in that order (outermost first).
pub fn frames_in_order(line: &str, names: &[&str]) -> bool {
    let mut wanted = names.iter().peekable();
    for frame in line.split(';') {
        if wanted.peek().is_some_and(|name| frame.contains(**name)) {
            wanted.next();
        }
    }
    wanted.peek().is_none()
}
