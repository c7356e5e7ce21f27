//! Memory workload: touches an exact amount of fresh anonymous memory, one write per page, then
//! holds it until killed, so the end-to-end tests can check page-fault counts and resident size.
//! `--mib N` sizes it; `--wait-stdin` first blocks until one byte arrives on stdin, so a test can
//! release it once the profiler has attached.

use std::process::ExitCode;

const USAGE: &str = "usage: toucher --mib N [--wait-stdin]";
const PAGE: usize = 4096;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut mib, mut wait_stdin) = (None, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mib" => mib = args.next().and_then(|v| v.parse::<usize>().ok()),
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
    for page in memory.chunks_mut(PAGE) {
        page[0] = 1;
    }
    std::hint::black_box(&memory);
    loop {
        std::thread::park();
    }
}
