//! CPU workload with known proportions: one thread spends its work 60/30/10 in three
//! never-inlined functions (`mixer_heavy_six`, `mixer_medium_three`, `mixer_light_one`) and, with
//! `--busy-ms B --idle-ms I`, sleeps I ms after every B ms of work, so its CPU share is neither 0
//! nor 1. The fidelity tests compare the profiler's shares of it with perf's and /proc's.

use std::hint::black_box;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use profiler_tests::parse_millis;

const USAGE: &str = "usage: mixer [--busy-ms B] [--idle-ms I]";

/// Multiply-xorshift steps per work unit: a few tens of µs, so a round of ten units is far
/// shorter than a busy period and the 6:3:1 split holds within each one.
const UNIT_STEPS: u32 = 20_000;

fn main() -> ExitCode {
    let (busy, idle) = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("mixer: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut state = black_box(0x2545_f491_4f6c_dd1d_u64);
    loop {
        let until = Instant::now() + busy;
        while Instant::now() < until {
            state = black_box(mixer_heavy_six(state));
            state = black_box(mixer_medium_three(state));
            state = black_box(mixer_light_one(state));
        }
        if !idle.is_zero() {
            thread::sleep(idle);
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(Duration, Duration), String> {
    let (mut busy, mut idle) = (Duration::from_millis(30), Duration::ZERO);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--busy-ms" => busy = parse_millis(&flag, &value)?,
            "--idle-ms" => idle = parse_millis(&flag, &value)?,
            _ => return Err(format!("unknown argument: {flag}")),
        }
    }
    if busy.is_zero() {
        return Err("--busy-ms must be above 0".to_owned());
    }
    Ok((busy, idle))
}

/// The three shares are calls to the same unit from three callers; the results go through
/// `black_box` inside loops so no caller can become a tail call and vanish from the stack.
#[inline(never)]
fn mixer_heavy_six(mut state: u64) -> u64 {
    for _ in 0..6 {
        state = black_box(mixer_unit(state));
    }
    state
}

#[inline(never)]
fn mixer_medium_three(mut state: u64) -> u64 {
    for _ in 0..3 {
        state = black_box(mixer_unit(state));
    }
    state
}

#[inline(never)]
fn mixer_light_one(state: u64) -> u64 {
    black_box(mixer_unit(state))
}

#[inline(never)]
fn mixer_unit(seed: u64) -> u64 {
    let mut x = black_box(seed);
    for _ in 0..UNIT_STEPS {
        x = x
            .wrapping_mul(0x5851_f42d_4c95_7f2d)
            .wrapping_add(0x1405_7b7e_f767_814f);
        x ^= x >> 29;
    }
    x
}
