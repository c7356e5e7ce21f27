//! A process's command line as the reports show it: read as bytes (anyone may put anything in
//! their argv), capped in length, and with `--redact` its arguments replaced by hashes.

use sha2::{Digest as _, Sha256};

/// Most bytes of argument text a report keeps per process. A command line can be megabytes
/// long; it is there to tell processes apart, and it is copied into every report.
pub const MAX_BYTES: usize = 4096;

/// Hex digits of SHA-256 a redacted argument keeps: 64 bits, enough that two different
/// arguments of one host never look alike.
const HASH_HEX_DIGITS: usize = 16;

/// Prefix of a redacted argument, naming the hash.
pub const REDACTED_PREFIX: &str = "sha256:";

/// What the reports may show of a command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cmdlines {
    /// Every argument, as text.
    #[default]
    Full,
    /// The program (argv\[0\]) as text; each argument after it as `sha256:<16 hex digits>`.
    Redacted,
}

impl Cmdlines {
    pub fn redacted(redact: bool) -> Self {
        if redact { Self::Redacted } else { Self::Full }
    }
}

/// The arguments of `/proc/PID/cmdline`'s content: NUL-separated, each turned into text with
/// invalid UTF-8 as U+FFFD, then redacted per `policy`, then capped at `MAX_BYTES` (see `cap`).
/// Trailing NULs (a terminator, or a rewritten title's padding) end the list; empty arguments
/// inside it are kept, since they are arguments too.
pub fn parse(raw: &[u8], policy: Cmdlines) -> Vec<String> {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
    if end == 0 {
        return Vec::new();
    }
    let args = raw[..end]
        .split(|&b| b == 0)
        .enumerate()
        .map(|(index, arg)| match policy {
            Cmdlines::Redacted if index > 0 => redact(arg),
            _ => String::from_utf8_lossy(arg).into_owned(),
        })
        .collect();
    cap(args)
}

/// `sha256:` and the first hex digits of the argument's SHA-256: the same argument gives the
/// same text in every run and on every host, so runs can still be compared, and nothing else
/// of it is kept. Unsalted on purpose (a salt would have to stay secret and be shared by every
/// host whose reports are compared), so a guessable argument (a word, a number, a path) can be
/// confirmed by hashing guesses; a random secret (a token, a generated password) cannot.
pub fn redact(arg: &[u8]) -> String {
    let digest = Sha256::digest(arg);
    let mut text = String::with_capacity(REDACTED_PREFIX.len() + HASH_HEX_DIGITS);
    text.push_str(REDACTED_PREFIX);
    for byte in &digest[..HASH_HEX_DIGITS / 2] {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// Keeps arguments in order while their text adds up to at most `MAX_BYTES`; the argument that
/// would cross it is cut on a character boundary and ends in `…[+N bytes]`, N being the bytes
/// of it and of the arguments after it (which are left out) not shown.
fn cap(args: Vec<String>) -> Vec<String> {
    let total: usize = args.iter().map(String::len).sum();
    if total <= MAX_BYTES {
        return args;
    }
    let mut kept = Vec::new();
    let mut used = 0;
    for arg in args {
        if used + arg.len() <= MAX_BYTES {
            used += arg.len();
            kept.push(arg);
            continue;
        }
        let room = MAX_BYTES - used;
        let cut = (0..=room)
            .rev()
            .find(|&at| arg.is_char_boundary(at))
            .unwrap_or(0);
        kept.push(format!("{}…[+{} bytes]", &arg[..cut], total - used - cut));
        break;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_on_nul_with_invalid_utf8_replaced() {
        assert_eq!(
            parse(b"prog\0-x\0\0a\xffb\0", Cmdlines::Full),
            ["prog", "-x", "", "a\u{fffd}b"]
        );
        assert_eq!(
            parse(b"title with spaces\0\0\0\0", Cmdlines::Full),
            ["title with spaces"]
        );
        assert!(parse(b"", Cmdlines::Full).is_empty());
        assert!(parse(b"\0\0", Cmdlines::Full).is_empty());
    }

    #[test]
    fn redaction_keeps_the_program_and_hashes_each_argument() {
        let args = parse(b"/bin/app\0--password\0hunter2\0", Cmdlines::Redacted);
        assert_eq!(args[0], "/bin/app");
        // echo -n hunter2 | sha256sum
        assert_eq!(args[2], "sha256:f52fbd32b2b3b86f");
        assert_eq!(args[1], redact(b"--password"));
        assert!(args.iter().all(|arg| !arg.contains("hunter2")));
        // Invalid UTF-8 is hashed as the bytes it is, not as its replacement.
        assert_ne!(redact(b"\xff"), redact("\u{fffd}".as_bytes()));
    }

    #[test]
    fn long_command_lines_are_cut_with_a_marker() {
        let long = "é".repeat(60_000);
        // An odd room left for the cut argument: its two-byte characters cannot fill it.
        let raw = format!("prog1\0{long}\0next\0");
        let args = parse(raw.as_bytes(), Cmdlines::Full);
        assert_eq!(args.len(), 2, "the arguments after the cut are left out");
        let shown = args[1].split('…').next().unwrap();
        assert_eq!(
            shown.len() + "prog1".len(),
            MAX_BYTES - 1,
            "cut on a character boundary"
        );
        let hidden = 120_000 - shown.len() + "next".len();
        assert!(
            args[1].ends_with(&format!("…[+{hidden} bytes]")),
            "{}",
            &args[1][4000..]
        );
        // Redacted arguments are short, so a redacted command line is rarely cut.
        let args = parse(raw.as_bytes(), Cmdlines::Redacted);
        assert_eq!(args.len(), 3);
        assert!(args[1].starts_with(REDACTED_PREFIX));
    }

    #[test]
    fn exactly_the_limit_is_not_cut() {
        let arg = "x".repeat(MAX_BYTES);
        assert_eq!(parse(arg.as_bytes(), Cmdlines::Full), [arg]);
    }
}
