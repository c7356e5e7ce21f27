//! A log that floods a file system, as a runaway logger does: appends to one file it keeps open,
//! `--chunk` bytes every `--every-ms`, and when the file system is full keeps trying at the same
//! pace. After `--seconds S` it removes its file, prints `wrote N, refused M` (the bytes that
//! went in, the writes refused for lack of space) and exits. The file must not exist yet.

use std::{
    fs::OpenOptions,
    io::{ErrorKind, Write as _},
    path::PathBuf,
    process::ExitCode,
    thread,
    time::{Duration, Instant},
};

use profiler_tests::{parse_millis, parse_seconds};

const USAGE: &str = "usage: logflood --path P --seconds S [--chunk N] [--every-ms T]";

struct Args {
    path: PathBuf,
    seconds: Duration,
    chunk: usize,
    every: Duration,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("logflood: {message}; {USAGE}");
            return ExitCode::from(2);
        }
    };
    match flood(&args) {
        Ok((wrote, refused)) => {
            println!("wrote {wrote}, refused {refused}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("logflood: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut path, mut seconds) = (None, None);
    let (mut chunk, mut every) = (64 << 10, Duration::from_millis(20));
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--path" => path = Some(PathBuf::from(value)),
            "--seconds" => seconds = Some(parse_seconds(&flag, &value)?),
            "--every-ms" => every = parse_millis(&flag, &value)?,
            "--chunk" => {
                chunk = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--chunk: not a positive size: {value}"))?;
            }
            _ => return Err(format!("unknown argument: {flag}")),
        }
    }
    Ok(Args {
        path: path.ok_or("--path is required")?,
        seconds: seconds.ok_or("--seconds is required")?,
        chunk,
        every,
    })
}

/// Appends until the time is up, then removes the file; the bytes written and the writes
/// refused for lack of space.
fn flood(args: &Args) -> Result<(u64, u64), String> {
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&args.path)
        .map_err(|err| format!("creating {}: {err}", args.path.display()))?;
    let line = vec![b'x'; args.chunk];
    let (mut wrote, mut refused) = (0, 0);
    let end = Instant::now() + args.seconds;
    let outcome = loop {
        if Instant::now() >= end {
            break Ok(());
        }
        match file.write(&line) {
            Ok(n) => wrote += n as u64,
            Err(err) if err.kind() == ErrorKind::StorageFull => refused += 1,
            Err(err) => break Err(format!("writing {}: {err}", args.path.display())),
        }
        thread::sleep(args.every);
    };
    let removed = std::fs::remove_file(&args.path)
        .map_err(|err| format!("removing {}: {err}", args.path.display()));
    outcome.and(removed).map(|()| (wrote, refused))
}
