//! Idle workload: a process that exists for the end-to-end tests but spends its life blocked in
//! `nanosleep`, so any CPU the profiler attributes to it is an error.

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

const USAGE: &str = "usage: sleeper [--seconds S]";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let seconds = match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => None,
        (Some("--seconds"), Some(value), None) => match value
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
        {
            Some(duration) => Some(duration),
            None => {
                eprintln!("sleeper: --seconds: not a non-negative number: {value}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("sleeper: bad arguments\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match seconds {
        Some(duration) => thread::sleep(duration),
        // Each wake-up costs microseconds once an hour: indistinguishable from zero CPU.
        None => loop {
            thread::sleep(Duration::from_secs(3600));
        },
    }
    ExitCode::SUCCESS
}
