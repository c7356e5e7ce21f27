//! Syscall-storm workload: makes an exact number of cheap syscalls and then exits, so the
//! end-to-end tests can check the profiler's syscall counts against a known figure. `--getppid N`
//! makes N `getppid` calls through `syscall(2)` (glibc's wrapper could be cached or inlined away
//! some day; the raw call always enters the kernel); `--bad-close M` makes M `close(-1)` calls,
//! each failing with `EBADF`, for the error counts. `--wait-stdin` first blocks until one byte
//! arrives on stdin, so a test can start the storm before the profiler attaches and release it
//! after, putting every call inside the profiling window.

use std::process::ExitCode;

const USAGE: &str = "usage: storm [--wait-stdin] [--getppid N] [--bad-close M]";

struct Args {
    wait_stdin: bool,
    getppid: u64,
    bad_close: u64,
}

fn main() -> ExitCode {
    let Args {
        wait_stdin,
        getppid,
        bad_close,
    } = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("storm: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if wait_stdin && let Err(message) = profiler_tests::wait_for_start_byte() {
        eprintln!("storm: {message}");
        return ExitCode::FAILURE;
    }
    match storm(getppid, bad_close) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("storm: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        wait_stdin: false,
        getppid: 0,
        bad_close: 0,
    };
    let mut seen = Vec::new();
    while let Some(flag) = args.next() {
        // A repeated flag is more likely a mistake than a deliberate override.
        if seen.contains(&flag) {
            return Err(format!("{flag} given twice"));
        }
        match flag.as_str() {
            "--wait-stdin" => parsed.wait_stdin = true,
            "--getppid" | "--bad-close" => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                let count = value
                    .parse()
                    .map_err(|_| format!("{flag}: not a non-negative integer: {value}"))?;
                if flag == "--getppid" {
                    parsed.getppid = count;
                } else {
                    parsed.bad_close = count;
                }
            }
            _ => return Err(format!("unknown argument: {flag}")),
        }
        seen.push(flag);
    }
    Ok(parsed)
}

/// The storm itself. Results are checked so that a call behaving otherwise than the tests expect
/// (a `close(-1)` that does not fail with `EBADF`) fails the run instead of passing for the
/// profiler's miscount.
fn storm(getppid: u64, bad_close: u64) -> Result<(), String> {
    for _ in 0..getppid {
        // SAFETY: getppid takes no arguments and has no preconditions.
        let ppid = unsafe { libc::syscall(libc::SYS_getppid) };
        // getppid cannot fail; a negative result would mean the call never reached it.
        if ppid < 0 {
            return Err(format!(
                "getppid failed: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    for _ in 0..bad_close {
        // SAFETY: -1 is never an open descriptor, so nothing of ours is closed.
        let rc = unsafe { libc::close(-1) };
        let err = std::io::Error::last_os_error();
        if rc != -1 || err.raw_os_error() != Some(libc::EBADF) {
            return Err(format!("close(-1) returned {rc} ({err}), expected EBADF"));
        }
    }
    Ok(())
}
