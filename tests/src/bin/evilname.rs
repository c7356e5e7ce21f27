//! Workload with a hostile name: it sets its own comm (prctl PR_SET_NAME, 15 bytes at most) to
//! the bytes given with `--name` (escape sequences, newlines, markup, shell syntax, invalid
//! UTF-8: anything but NUL), then burns CPU in slices with short sleeps between them, so it is
//! a CPU suspect with on-CPU and off-CPU stacks. Arguments after `--` are ignored: they are
//! there so its command line is as hostile as its name.

use std::ffi::{CString, OsString};
use std::hint::black_box;
use std::os::unix::ffi::OsStringExt as _;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: evilname --name BYTES [--seconds S] [-- IGNORED...]";

/// The kernel keeps 15 bytes of a comm plus its NUL; a longer name would be cut silently and no
/// longer be what the test compares with.
const COMM_MAX: usize = 15;

/// Burning slice and the sleep after it: mostly on a CPU, with a voluntary switch often enough
/// that the off-CPU flamegraph has this process in it too.
const SLICE: Duration = Duration::from_millis(40);
const NAP: Duration = Duration::from_millis(2);

fn main() -> ExitCode {
    let (name, seconds) = match parse_args(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("evilname: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(message) = set_comm(name) {
        eprintln!("evilname: {message}");
        return ExitCode::FAILURE;
    }
    let deadline = seconds.map(|s| Instant::now() + s);
    let mut state = black_box(0x2545_f491_4f6c_dd1d_u64);
    while deadline.is_none_or(|deadline| Instant::now() < deadline) {
        let slice_end = Instant::now() + SLICE;
        while Instant::now() < slice_end {
            state = black_box(evilname_spin(state));
        }
        thread::sleep(NAP);
    }
    ExitCode::SUCCESS
}

fn parse_args(
    mut args: impl Iterator<Item = OsString>,
) -> Result<(Vec<u8>, Option<Duration>), String> {
    let mut name = None;
    let mut seconds = None;
    while let Some(flag) = args.next() {
        if flag == "--" {
            break;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{} needs a value", flag.to_string_lossy()))?;
        match flag.to_str() {
            Some("--name") => name = Some(value.into_vec()),
            Some("--seconds") => {
                let text = value.to_string_lossy();
                seconds = Some(profiler_tests::parse_seconds("--seconds", &text)?);
            }
            _ => return Err(format!("unknown argument: {}", flag.to_string_lossy())),
        }
    }
    let name = name.ok_or("--name is required")?;
    if name.is_empty() || name.len() > COMM_MAX {
        return Err(format!(
            "--name must be 1 to {COMM_MAX} bytes, got {}",
            name.len()
        ));
    }
    Ok((name, seconds))
}

fn set_comm(name: Vec<u8>) -> Result<(), String> {
    let name = CString::new(name).map_err(|_| "--name contains a NUL byte".to_owned())?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from the pointer,
    // which `name` (checked above to be at most 15 bytes plus its NUL) outlives.
    let rc = unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "prctl(PR_SET_NAME): {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// A few microseconds of dependent arithmetic: the hot frame of this workload's stacks.
#[inline(never)]
fn evilname_spin(seed: u64) -> u64 {
    let mut x = black_box(seed);
    for _ in 0..10_000 {
        x = x.wrapping_mul(0x5851_f42d_4c95_7f2d).wrapping_add(1);
        x ^= x >> 31;
    }
    x
}
