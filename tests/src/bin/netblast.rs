//! Loopback-traffic workload: sends an exact number of bytes to itself over TCP on 127.0.0.1 and
//! then exits, so the end-to-end tests can check the profiler's per-process network bytes
//! against a known figure. One process both sends (main thread) and receives (a second thread),
//! so its `tx_bytes` and `rx_bytes` should each come to the same N. `--bytes N` is how much to
//! send; `--wait-stdin` first blocks until one byte arrives on stdin, so a test can start it
//! before the profiler attaches and release it after, putting all the traffic inside the
//! profiling window. `--loop-seconds S` makes those N bytes a round, sent again and again over
//! the same connection until S seconds have passed, for runs that need traffic all through a
//! window; `--round-ms T` then starts a round at most every T ms, sleeping in between, so the
//! traffic keeps a set rate instead of taking two whole CPUs (sender and receiver).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;

use profiler_tests::{Pacing, parse_millis, parse_seconds};

const USAGE: &str = "usage: netblast --bytes N [--wait-stdin] [--loop-seconds S [--round-ms T]]";

/// Write and read size: large enough that the syscalls cost little next to the copying, so the
/// run is short and its traffic dominates the host's.
const BUFFER: usize = 1 << 20;

struct Args {
    wait_stdin: bool,
    bytes: u64,
    pacing: Option<Pacing>,
}

fn main() -> ExitCode {
    let Args {
        wait_stdin,
        bytes,
        pacing,
    } = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("netblast: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if wait_stdin && let Err(message) = profiler_tests::wait_for_start_byte() {
        eprintln!("netblast: {message}");
        return ExitCode::FAILURE;
    }
    match blast(bytes, pacing) {
        Ok((sent, received)) if received == sent => ExitCode::SUCCESS,
        Ok((sent, received)) => {
            eprintln!("netblast: sent {sent} bytes but received {received}");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("netblast: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut wait_stdin = false;
    let mut bytes = None;
    let (mut loop_for, mut round) = (None, None);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            // A repeated flag is more likely a mistake than a deliberate override.
            "--wait-stdin" if wait_stdin => return Err(format!("{flag} given twice")),
            "--wait-stdin" => wait_stdin = true,
            "--bytes" if bytes.is_some() => return Err(format!("{flag} given twice")),
            "--bytes" => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                bytes = Some(
                    value
                        .parse()
                        .map_err(|_| format!("{flag}: not a non-negative integer: {value}"))?,
                );
            }
            "--loop-seconds" if loop_for.is_some() => return Err(format!("{flag} given twice")),
            "--loop-seconds" => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                loop_for = Some(parse_seconds(&flag, &value)?);
            }
            "--round-ms" if round.is_some() => return Err(format!("{flag} given twice")),
            "--round-ms" => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                round = Some(parse_millis(&flag, &value)?);
            }
            _ => return Err(format!("unknown argument: {flag}")),
        }
    }
    // No default: a test that forgot it would check its figures against a guess.
    let bytes = bytes.ok_or("--bytes is required")?;
    let pacing = Pacing::from_args(loop_for, round)?;
    if pacing.is_some() && bytes == 0 {
        return Err("--loop-seconds needs --bytes above 0".to_owned());
    }
    Ok(Args {
        wait_stdin,
        bytes,
        pacing,
    })
}

/// Sends `bytes` to a receiver thread of this same process over loopback TCP, once or in paced
/// rounds; returns how many it sent and how many the receiver got. Port 0 lets the kernel pick a
/// free port, so parallel runs cannot collide.
fn blast(bytes: u64, pacing: Option<Pacing>) -> Result<(u64, u64), String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|err| format!("binding 127.0.0.1:0: {err}"))?;
    let addr = listener
        .local_addr()
        .map_err(|err| format!("listener address: {err}"))?;
    let receiver = thread::spawn(move || receive(&listener));

    let mut stream =
        TcpStream::connect(addr).map_err(|err| format!("connecting to {addr}: {err}"))?;
    let buffer = vec![0x5a_u8; BUFFER];
    let mut sent = 0;
    let mut send = || -> Result<(), String> {
        let mut left = bytes;
        while left > 0 {
            let chunk = usize::try_from(left).map_or(BUFFER, |left| left.min(BUFFER));
            stream
                .write_all(&buffer[..chunk])
                .map_err(|err| format!("sending: {err}"))?;
            left -= chunk as u64;
        }
        sent += bytes;
        Ok(())
    };
    match pacing {
        None => send()?,
        Some(pacing) => pacing.run(send)?,
    }
    // The receiver reads until end of file: without this it would wait for more forever.
    stream
        .shutdown(Shutdown::Write)
        .map_err(|err| format!("shutting down the sending side: {err}"))?;
    let received = receiver
        .join()
        .map_err(|_| "the receiver thread panicked".to_owned())??;
    Ok((sent, received))
}

/// Accepts the one connection and reads it to end of file, counting the bytes.
fn receive(listener: &TcpListener) -> Result<u64, String> {
    let (mut stream, _) = listener
        .accept()
        .map_err(|err| format!("accepting: {err}"))?;
    let mut buffer = vec![0_u8; BUFFER];
    let mut received = 0_u64;
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(received),
            Ok(n) => received += n as u64,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(format!("receiving: {err}")),
        }
    }
}
