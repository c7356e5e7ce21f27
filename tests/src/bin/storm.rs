//! Syscall-storm workload: makes an exact number of cheap syscalls and then exits, so the
//! end-to-end tests can check the profiler's syscall counts against a known figure. `--getppid N`
//! makes N `getppid` calls through `syscall(2)` (glibc's wrapper could be cached or inlined away
//! some day; the raw call always enters the kernel); `--bad-close M` makes M `close(-1)` calls,
//! each failing with `EBADF`, for the error counts. `--wait-stdin` first blocks until one byte
//! arrives on stdin, so a test can start the storm before the profiler attaches and release it
//! after, putting every call inside the profiling window. `--loop-seconds S` makes those calls a
//! round, repeated until S seconds have passed, for runs that need a storm all through a window;
//! `--round-ms T` then starts a round at most every T ms, sleeping in between, so the storm keeps
//! a set rate instead of taking a whole CPU.

use std::process::ExitCode;

use profiler_tests::{Pacing, parse_millis, parse_seconds};

const USAGE: &str = "usage: storm [--wait-stdin] [--getppid N] [--bad-close M] \
                     [--loop-seconds S [--round-ms T]]";

struct Args {
    wait_stdin: bool,
    getppid: u64,
    bad_close: u64,
    pacing: Option<Pacing>,
}

fn main() -> ExitCode {
    let Args {
        wait_stdin,
        getppid,
        bad_close,
        pacing,
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
    let result = match pacing {
        None => storm(getppid, bad_close),
        Some(pacing) => pacing.run(|| storm(getppid, bad_close)),
    };
    match result {
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
        pacing: None,
    };
    let (mut loop_for, mut round) = (None, None);
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
            "--loop-seconds" | "--round-ms" => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                if flag == "--loop-seconds" {
                    loop_for = Some(parse_seconds(&flag, &value)?);
                } else {
                    round = Some(parse_millis(&flag, &value)?);
                }
            }
            _ => return Err(format!("unknown argument: {flag}")),
        }
        seen.push(flag);
    }
    parsed.pacing = Pacing::from_args(loop_for, round)?;
    if parsed.pacing.is_some() && parsed.getppid == 0 && parsed.bad_close == 0 {
        return Err("--loop-seconds needs calls to repeat".to_owned());
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
