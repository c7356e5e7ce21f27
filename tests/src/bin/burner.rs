//! CPU-burning workload: one thread (`--threads N`: N) kept busy in three distinctive,
//! never-inlined frames that the end-to-end tests look for in the profiler's stacks, flame graph
//! and report. `--cpu N` pins it to one CPU, so tests can make processes compete for that CPU.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: burner [--cpu N] [--threads N] [--seconds S | --work N]";

/// Multiply-xorshift steps per `burner_inner_gamma` call. With the two fan-outs below, one work
/// unit lands at ~5-10 ms on a modern core (calibrated on the release build); the `--seconds`
/// deadline is checked once per unit, so a unit must stay short.
const INNER_STEPS: u32 = 350_000;
const MIDDLE_CALLS: u32 = 4;
const OUTER_CALLS: u32 = 4;

#[derive(Clone, Copy)]
enum Mode {
    UntilKilled,
    For(Duration),
    Units(u64),
}

struct Args {
    mode: Mode,
    cpu: Option<usize>,
    threads: usize,
}

fn main() -> ExitCode {
    let Args { mode, cpu, threads } = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("burner: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Before the first unit, so no work is done off the requested CPU.
    if let Some(cpu) = cpu
        && let Err(message) = profiler_tests::pin_to_cpu(cpu)
    {
        eprintln!("burner: {message}");
        return ExitCode::FAILURE;
    }
    // Threads started after the pinning inherit it.
    let others: Vec<_> = (1..threads)
        .map(|_| std::thread::spawn(move || burn(mode)))
        .collect();
    burn(mode);
    for thread in others {
        let _ = thread.join();
    }
    ExitCode::SUCCESS
}

fn burn(mode: Mode) {
    let mut state = black_box(0x9e37_79b9_7f4a_7c15_u64);
    match mode {
        Mode::UntilKilled => loop {
            state = black_box(burner_outer_alpha(state));
        },
        Mode::For(duration) => {
            let deadline = Instant::now() + duration;
            while Instant::now() < deadline {
                state = black_box(burner_outer_alpha(state));
            }
        }
        Mode::Units(units) => {
            for _ in 0..units {
                state = black_box(burner_outer_alpha(state));
            }
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut mode = Mode::UntilKilled;
    let mut cpu = None;
    let mut threads = 1;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag == "--threads" {
            threads = value
                .parse()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("--threads: not a positive integer: {value}"))?;
            continue;
        }
        if flag == "--cpu" {
            if cpu.is_some() {
                return Err("--cpu given twice".to_owned());
            }
            cpu = Some(
                value
                    .parse()
                    .map_err(|_| format!("--cpu: not a CPU number: {value}"))?,
            );
            continue;
        }
        if !matches!(mode, Mode::UntilKilled) {
            return Err("give at most one of --seconds and --work".to_owned());
        }
        mode = match flag.as_str() {
            "--seconds" => Mode::For(
                value
                    .parse::<f64>()
                    .ok()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| format!("--seconds: not a non-negative number: {value}"))?,
            ),
            "--work" => Mode::Units(
                value
                    .parse()
                    .map_err(|_| format!("--work: not a non-negative integer: {value}"))?,
            ),
            _ => return Err(format!("unknown argument: {flag}")),
        };
    }
    Ok(Args { mode, cpu, threads })
}

/// One work unit. The calls sit inside loops and their results go through `black_box`, so none
/// of them can become a tail call: a tail call would replace this frame and drop it from the
/// frame-pointer chain the profiler walks.
#[inline(never)]
fn burner_outer_alpha(mut state: u64) -> u64 {
    for _ in 0..OUTER_CALLS {
        state = black_box(burner_middle_beta(state));
    }
    state
}

#[inline(never)]
fn burner_middle_beta(mut state: u64) -> u64 {
    for _ in 0..MIDDLE_CALLS {
        state = black_box(burner_inner_gamma(state));
    }
    state
}

/// The hot leaf where nearly every sample lands. Each step depends on the previous one and mixes
/// multiply with xorshift, so the optimiser can neither vectorise the loop nor fold it into a
/// closed form.
#[inline(never)]
fn burner_inner_gamma(seed: u64) -> u64 {
    let mut x = black_box(seed);
    for _ in 0..INNER_STEPS {
        x = x
            .wrapping_mul(0x5851_f42d_4c95_7f2d)
            .wrapping_add(0x1405_7b7e_f767_814f);
        x ^= x >> 29;
    }
    x
}
