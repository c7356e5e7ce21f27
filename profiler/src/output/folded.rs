//! `stacks.folded`: `comm (pid);frame;...;frame count`, user frames then kernel frames, root
//! first, as perf's stackcollapse and inferno read it; and the parser that reads such files back
//! (ours, perf's, inferno's) for `profiler flamegraph`.

use std::fmt::Write as _;

use super::ProcessStacks;

/// Largest sum of counts a folded input may have. inferno adds counts in `u64`, subtracts them
/// as `isize` and multiplies a difference by 150 when it picks a differential color; 2^53 keeps
/// all of that clear of overflow and every count exact as an `f64`.
pub const MAX_TOTAL: u64 = 1 << 53;

/// How much of an offending line an error message quotes.
const QUOTE_CHARS: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum FoldedError {
    #[error("{file}:{line}: expected \"<frames> <count>\", found {found:?}")]
    Malformed {
        file: String,
        line: usize,
        found: String,
    },
    #[error("{file}:{line}: count {count} is too large")]
    CountTooLarge {
        file: String,
        line: usize,
        count: String,
    },
    #[error("{file}:{line}: the counts add up to more than 2^53")]
    TotalTooLarge { file: String, line: usize },
}

/// Reads folded stacks, one `frame;frame;... count` per line, in file order. Blank lines and
/// `# ` comments are skipped as inferno does, surrounding whitespace (a CRLF's `\r` included)
/// is ignored, and the count is the last space- or tab-separated field: plain decimal digits.
/// Zero counts are kept; `file` names the source in errors.
pub fn parse(text: &str, file: &str) -> Result<Vec<(String, u64)>, FoldedError> {
    let mut stacks = Vec::new();
    let mut total: u64 = 0;
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with("# ") {
            continue;
        }
        let number = index + 1;
        let malformed = || FoldedError::Malformed {
            file: file.to_owned(),
            line: number,
            found: quote(line),
        };
        let (stack, count) = line.rsplit_once([' ', '\t']).ok_or_else(malformed)?;
        let stack = stack.trim_end();
        // `str::parse` would take a leading `+`, which inferno reads as part of the last frame.
        if stack.is_empty() || count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let count: u64 = count.parse().map_err(|_| FoldedError::CountTooLarge {
            file: file.to_owned(),
            line: number,
            count: quote(count),
        })?;
        total = total
            .checked_add(count)
            .filter(|&total| total <= MAX_TOTAL)
            .ok_or_else(|| FoldedError::TotalTooLarge {
                file: file.to_owned(),
                line: number,
            })?;
        stacks.push((stack.to_owned(), count));
    }
    Ok(stacks)
}

/// The start of `text`, so one absurd line cannot flood the terminal.
fn quote(text: &str) -> String {
    let mut chars = text.chars();
    let mut quoted: String = chars.by_ref().take(QUOTE_CHARS).collect();
    if chars.next().is_some() {
        quoted.push_str("...");
    }
    quoted
}

/// `;` separates frames and a line break ends a stack, so neither may hide in a name (anyone's
/// to choose): `;` becomes `:` and every control character U+FFFD, as in the text output. No
/// control character is left for the SVGs either, where XML 1.0 forbids most of them.
fn clean(frame: &str) -> String {
    frame
        .chars()
        .map(|c| match c {
            ';' => ':',
            c if c.is_control() => char::REPLACEMENT_CHARACTER,
            c => c,
        })
        .collect()
}

/// The root frame of a process: its name cleaned, and written so that a line starting with it
/// is no `# ` comment, which every folded reader (ours, inferno's) would skip: the space after
/// such a leading `#` becomes a no-break space, which looks the same.
fn root_frame(comm: &str, pid: u32) -> String {
    let mut root = clean(&format!("{comm} ({pid})"));
    let lead = root.len() - root.trim_start().len();
    if root[lead..].starts_with("# ") {
        root.replace_range(lead + 1..lead + 2, "\u{a0}");
    }
    root
}

pub fn render(processes: &[ProcessStacks<'_>]) -> String {
    let mut out = String::new();
    for process in processes {
        let root = root_frame(process.comm, process.pid);
        for (frames, count) in process.stacks {
            out.push_str(&root);
            for frame in frames {
                out.push(';');
                out.push_str(&clean(frame));
            }
            let _ = writeln!(out, " {count}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_stack_rooted_at_the_process() {
        let stacks = vec![
            (vec!["main".to_owned(), "spin".to_owned()], 7),
            (
                vec![
                    "main".to_owned(),
                    "<[u8; 4]>::f".to_owned(),
                    "sys_write_[k]".to_owned(),
                ],
                2,
            ),
        ];
        let text = render(&[ProcessStacks {
            comm: "burner",
            pid: 42,
            stacks: &stacks,
        }]);
        assert_eq!(
            text,
            "burner (42);main;spin 7\nburner (42);main;<[u8: 4]>::f;sys_write_[k] 2\n"
        );
        let back = parse(&text, "stacks.folded").unwrap();
        assert_eq!(
            back,
            [
                ("burner (42);main;spin".to_owned(), 7),
                ("burner (42);main;<[u8: 4]>::f;sys_write_[k]".to_owned(), 2),
            ]
        );
    }

    #[test]
    fn a_process_named_like_a_comment_keeps_its_stacks() {
        // Found by fuzzing: a process named "# x" (or "  # x") wrote comment lines, and its
        // stacks vanished from `profiler flamegraph` and flamegraph.svg.
        let stacks = vec![(vec!["main".to_owned()], 3)];
        for comm in ["# x", "  # x", "#"] {
            let text = render(&[ProcessStacks {
                comm,
                pid: 7,
                stacks: &stacks,
            }]);
            let back = parse(&text, "stacks.folded").unwrap();
            assert_eq!(back.len(), 1, "{comm:?}: {text:?}");
            assert_eq!(
                back[0].0.replace('\u{a0}', " ").trim(),
                format!("{} (7);main", comm.trim())
            );
        }
    }

    fn error(text: &str) -> String {
        parse(text, "stacks.folded").unwrap_err().to_string()
    }

    #[test]
    fn separators_and_control_characters_in_names_cannot_split_a_stack() {
        let stacks = vec![(vec!["a;b\nc".to_owned()], 1)];
        let text = render(&[ProcessStacks {
            comm: "x;\n\u{1b}[2J\r",
            pid: 7,
            stacks: &stacks,
        }]);
        assert_eq!(text, "x:\u{fffd}\u{fffd}[2J\u{fffd} (7);a:b\u{fffd}c 1\n");
        assert_eq!(parse(&text, "x").unwrap().len(), 1);
    }

    #[test]
    fn tolerates_crlf_blank_lines_comments_tabs_and_spaces_in_frames() {
        let text = "# comment\r\n\r\nmain;foo 3\r\n   \nmain;Thread 2\t5\nmain;a b  0\n";
        assert_eq!(
            parse(text, "x").unwrap(),
            [
                ("main;foo".to_owned(), 3),
                ("main;Thread 2".to_owned(), 5),
                ("main;a b".to_owned(), 0),
            ]
        );
        assert!(parse("", "x").unwrap().is_empty());
        assert!(parse("\n\n# only comments\n", "x").unwrap().is_empty());
    }

    #[test]
    fn malformed_lines_are_named_with_their_line_number() {
        assert_eq!(
            error("a;b 1\n\na;b;c"),
            r#"stacks.folded:3: expected "<frames> <count>", found "a;b;c""#
        );
        // A truncated line: the count is cut off mid-frame.
        assert!(error("a;b 1\nmain;bur").starts_with("stacks.folded:2: "));
        assert!(error("a;b +5").starts_with("stacks.folded:1: expected"));
        assert!(error("a;b -5").starts_with("stacks.folded:1: expected"));
        assert!(error("a;b 1.5").starts_with("stacks.folded:1: expected"));
        assert!(error(" 17\n").starts_with("stacks.folded:1: expected"));
        assert!(error("17 ").starts_with("stacks.folded:1: expected"));
        assert!(error("a;b 0x10").contains(r#"found "a;b 0x10""#));
    }

    #[test]
    fn huge_counts_are_errors_not_overflows() {
        assert_eq!(
            error("a 99999999999999999999999"),
            "stacks.folded:1: count 99999999999999999999999 is too large"
        );
        let max = format!("a {}\nb 1\n", MAX_TOTAL);
        assert_eq!(
            error(&max),
            "stacks.folded:2: the counts add up to more than 2^53"
        );
        let at_limit = format!("a {}\nb 0\n", MAX_TOTAL);
        assert_eq!(parse(&at_limit, "x").unwrap().len(), 2);
    }

    #[test]
    fn odd_text_is_quoted_short_and_escaped() {
        let long = "x".repeat(500);
        let message = error(&long);
        assert!(message.len() < 150, "{message}");
        assert!(message.ends_with("...\""), "{message}");
        let binary = String::from_utf8_lossy(b"\x1f\x8b\x08\x00\xff\x01").into_owned();
        let message = error(&binary);
        assert!(!message.contains('\u{1f}'), "{message}");
        assert!(message.starts_with("stacks.folded:1: "), "{message}");
        // Multi-byte characters are cut on a character boundary.
        let wide = "é".repeat(100);
        assert!(error(&wide).contains("éé..."));
    }
}
