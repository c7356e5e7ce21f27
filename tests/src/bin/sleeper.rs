//! Idle workload: a process that exists for the end-to-end tests but spends its life blocked, so
//! any CPU the profiler attributes to it is an error. By default it sleeps in `nanosleep`
//! (`--seconds S` ends it after S seconds); `--read-stdin` instead blocks in `read(2)` on stdin
//! until end of file, in a frame named `block_in_read`, for the off-CPU tests to find. With
//! `--wait-stdin` it first blocks until one byte arrives on stdin, so a test can start it before
//! the profiler attaches and have it go to sleep only after, inside the profiling window.

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

const USAGE: &str = "usage: sleeper [--wait-stdin] [--seconds S | --read-stdin]";

struct Args {
    wait_stdin: bool,
    read_stdin: bool,
    seconds: Option<Duration>,
}

fn main() -> ExitCode {
    let Args {
        wait_stdin,
        read_stdin,
        seconds,
    } = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("sleeper: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if wait_stdin && let Err(message) = profiler_tests::wait_for_start_byte() {
        eprintln!("sleeper: {message}");
        return ExitCode::FAILURE;
    }
    if read_stdin {
        return match block_in_read() {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("sleeper: {message}");
                ExitCode::FAILURE
            }
        };
    }
    match seconds {
        Some(duration) => thread::sleep(duration),
        // Each wake-up costs microseconds once an hour: indistinguishable from zero CPU.
        None => loop {
            thread::sleep(Duration::from_secs(3600));
        },
    }
    ExitCode::SUCCESS
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        wait_stdin: false,
        read_stdin: false,
        seconds: None,
    };
    let mut seen = Vec::new();
    while let Some(flag) = args.next() {
        // A repeated flag is more likely a mistake than a deliberate override.
        if seen.contains(&flag) {
            return Err(format!("{flag} given twice"));
        }
        match flag.as_str() {
            "--wait-stdin" => parsed.wait_stdin = true,
            "--read-stdin" => parsed.read_stdin = true,
            "--seconds" => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                parsed.seconds = Some(profiler_tests::parse_seconds(&flag, &value)?);
            }
            _ => return Err(format!("unknown argument: {flag}")),
        }
        seen.push(flag);
    }
    if parsed.read_stdin && parsed.seconds.is_some() {
        return Err("give at most one of --seconds and --read-stdin".to_owned());
    }
    Ok(parsed)
}

/// Reads stdin until end of file, discarding whatever arrives: nothing does in the tests, so the
/// process stays blocked here, off-CPU, until the test closes the pipe. The `read` syscall is
/// made right in this frame rather than through glibc: glibc is built without frame pointers, so
/// a frame-pointer walk from inside its `read` skips the frame that called it, and this one,
/// the frame the tests look for, would be missing from the off-CPU stacks. Not through std's
/// `Stdin` either, whose buffer would hide data from the raw reads.
#[inline(never)]
fn block_in_read() -> Result<(), String> {
    let mut buffer = [0_u8; 4096];
    loop {
        // SAFETY: `buffer` is live and writable for its whole length, the only memory the
        // kernel touches; fd 0 is ours to read.
        let rc = unsafe { read_syscall(libc::STDIN_FILENO, &mut buffer) };
        match rc {
            0 => return Ok(()),
            1.. => {}
            _ if rc == -(libc::EINTR as isize) => {}
            _ => {
                let errno = i32::try_from(-rc).unwrap_or(libc::EINVAL);
                return Err(format!(
                    "reading stdin: {}",
                    std::io::Error::from_raw_os_error(errno)
                ));
            }
        }
    }
}

/// The raw `read(2)` syscall: bytes read, 0 at end of file, or `-errno`. Always inlined, so the
/// syscall instruction lies in `block_in_read` itself.
///
/// # Safety
///
/// `fd` may be any descriptor; `buffer` must be valid for writes, which the `&mut` guarantees.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn read_syscall(fd: libc::c_int, buffer: &mut [u8]) -> isize {
    let rc: isize;
    // SAFETY: the x86-64 Linux syscall ABI: number in rax, arguments in rdi, rsi, rdx, result in
    // rax; the kernel clobbers rcx and r11 and touches no stack of ours. The caller guarantees
    // the buffer.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_read as isize => rc,
            in("rdi") fd as isize,
            in("rsi") buffer.as_mut_ptr(),
            in("rdx") buffer.len(),
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    rc
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn read_syscall(fd: libc::c_int, buffer: &mut [u8]) -> isize {
    let rc: isize;
    // SAFETY: the arm64 Linux syscall ABI: number in x8, arguments in x0-x2, result in x0; the
    // kernel preserves every other register and touches no stack of ours. The caller guarantees
    // the buffer.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") libc::SYS_read,
            inlateout("x0") fd as isize => rc,
            in("x1") buffer.as_mut_ptr(),
            in("x2") buffer.len(),
            options(nostack),
        );
    }
    rc
}

/// Elsewhere glibc's wrapper: the read still blocks, but `block_in_read` may be missing from the
/// stacks for the reason given there.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
unsafe fn read_syscall(fd: libc::c_int, buffer: &mut [u8]) -> isize {
    // SAFETY: the caller guarantees the buffer.
    let rc = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc < 0 {
        -(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO) as isize)
    } else {
        rc
    }
}
