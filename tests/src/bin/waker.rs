//! Latency-sensitive workload: one thread that sleeps briefly, wakes, does a sliver of work and
//! sleeps again, like a request handler or an audio loop. Nearly all its time is spent asleep, so
//! almost every wait it shows in the run queue is delay caused by whoever held its CPU; pinned
//! next to burners (`--cpu N`), it is the victim the end-to-end scheduler tests look for.

use std::hint::black_box;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: waker [--cpu N] [--seconds S] [--interval-us U]";

/// Default sleep between work slivers: a thousand wake-ups a second gives the tests thousands of
/// run-queue waits to measure in a few seconds while leaving the CPU ~98 % idle.
const DEFAULT_INTERVAL: Duration = Duration::from_micros(1000);

/// Multiply-xorshift steps per wake-up: about 20 µs at the ~1.3 ns per step the burner runs at
/// (measured with `burner --work` on the release build). Short enough that the waker never uses
/// up a time slice and gets preempted itself, so nearly all its switches are voluntary.
const WORK_STEPS: u32 = 15_000;

struct Args {
    cpu: Option<usize>,
    seconds: Option<Duration>,
    interval: Duration,
}

fn main() -> ExitCode {
    let Args {
        cpu,
        seconds,
        interval,
    } = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("waker: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Before the first wake-up, so every measured wait is on the requested CPU.
    if let Some(cpu) = cpu
        && let Err(message) = profiler_tests::pin_to_cpu(cpu)
    {
        eprintln!("waker: {message}");
        return ExitCode::FAILURE;
    }
    let deadline = seconds.map(|duration| Instant::now() + duration);
    let mut state = black_box(0x2545_f491_4f6c_dd1d_u64);
    while deadline.is_none_or(|deadline| Instant::now() < deadline) {
        thread::sleep(interval);
        state = black_box(waker_work_delta(state));
    }
    ExitCode::SUCCESS
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        cpu: None,
        seconds: None,
        interval: DEFAULT_INTERVAL,
    };
    let mut seen = Vec::new();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        // A repeated flag is more likely a mistake than a deliberate override.
        if seen.contains(&flag) {
            return Err(format!("{flag} given twice"));
        }
        match flag.as_str() {
            "--cpu" => {
                parsed.cpu = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--cpu: not a CPU number: {value}"))?,
                );
            }
            "--seconds" => {
                parsed.seconds = Some(
                    value
                        .parse::<f64>()
                        .ok()
                        .and_then(|s| Duration::try_from_secs_f64(s).ok())
                        .ok_or_else(|| format!("--seconds: not a non-negative number: {value}"))?,
                );
            }
            "--interval-us" => {
                parsed.interval =
                    Duration::from_micros(value.parse().map_err(|_| {
                        format!("--interval-us: not a non-negative integer: {value}")
                    })?);
            }
            _ => return Err(format!("unknown argument: {flag}")),
        }
        seen.push(flag);
    }
    Ok(parsed)
}

/// The work done per wake-up: a dependent multiply-xorshift chain (as in the burner) that the
/// optimiser can neither vectorise nor fold, in a never-inlined frame that is easy to spot in
/// stacks.
#[inline(never)]
fn waker_work_delta(seed: u64) -> u64 {
    let mut x = black_box(seed);
    for _ in 0..WORK_STEPS {
        x = x
            .wrapping_mul(0x5851_f42d_4c95_7f2d)
            .wrapping_add(0x1405_7b7e_f767_814f);
        x ^= x >> 29;
    }
    x
}
