//! Memory workload: touches an exact amount of fresh anonymous memory, one write per page, then
//! holds it until killed, so the end-to-end tests can check page-fault counts and resident size.
//! `--mib N` sizes it; `--per-second R` touches it at R MiB a second, as a leak grows, instead
//! of at once; `--wait-stdin` first blocks until one byte arrives on stdin, so a test can
//! release it once the profiler has attached.

use std::process::ExitCode;

const USAGE: &str = "usage: toucher --mib N [--per-second R] [--wait-stdin]";
const PAGE: usize = 4096;
/// A leak's steps: a tenth of its rate every tenth of a second.
const STEP: std::time::Duration = std::time::Duration::from_millis(100);

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut mib, mut per_second, mut wait_stdin) = (None, None, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mib" => mib = args.next().and_then(|v| v.parse::<usize>().ok()),
            "--per-second" => {
                per_second = args.next().and_then(|v| v.parse::<usize>().ok());
                if per_second.is_none_or(|r| r == 0) {
                    mib = None;
                }
            }
            "--wait-stdin" => wait_stdin = true,
            _ => mib = None,
        }
    }
    let Some(mib) = mib else {
        eprintln!("toucher: {USAGE}");
        return ExitCode::from(2);
    };
    if wait_stdin && let Err(message) = profiler_tests::wait_for_start_byte() {
        eprintln!("toucher: {message}");
        return ExitCode::FAILURE;
    }
    // Zeroed allocations of this size come straight from mmap: no page is touched yet.
    let mut memory = vec![0_u8; mib << 20];
    // Pages per step: all at once, or a tenth of the rate.
    let step_pages = per_second.map_or(usize::MAX, |r| ((r << 20) / PAGE / 10).max(1));
    let mut next = std::time::Instant::now();
    for step in memory.chunks_mut(step_pages.saturating_mul(PAGE)) {
        for page in step.chunks_mut(PAGE) {
            page[0] = 1;
        }
        if per_second.is_some() {
            next += STEP;
            std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
        }
    }
    std::hint::black_box(&memory);
    loop {
        std::thread::park();
    }
}
