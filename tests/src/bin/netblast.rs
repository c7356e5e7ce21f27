//! Loopback-traffic workload: sends an exact number of bytes to itself over TCP on 127.0.0.1 and
//! then exits, so the end-to-end tests can check the profiler's per-process network bytes
//! against a known figure. One process both sends (main thread) and receives (a second thread),
//! so its `tx_bytes` and `rx_bytes` should each come to the same N. `--bytes N` is how much to
//! send; `--wait-stdin` first blocks until one byte arrives on stdin, so a test can start it
//! before the profiler attaches and release it after, putting all the traffic inside the
//! profiling window.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;

const USAGE: &str = "usage: netblast --bytes N [--wait-stdin]";

/// Write and read size: large enough that the syscalls cost little next to the copying, so the
/// run is short and its traffic dominates the host's.
const BUFFER: usize = 1 << 20;

struct Args {
    wait_stdin: bool,
    bytes: u64,
}

fn main() -> ExitCode {
    let Args { wait_stdin, bytes } = match parse_args(std::env::args().skip(1)) {
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
    match blast(bytes) {
        Ok(received) if received == bytes => ExitCode::SUCCESS,
        Ok(received) => {
            eprintln!("netblast: sent {bytes} bytes but received {received}");
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
            _ => return Err(format!("unknown argument: {flag}")),
        }
    }
    // No default: a test that forgot it would check its figures against a guess.
    let bytes = bytes.ok_or("--bytes is required")?;
    Ok(Args { wait_stdin, bytes })
}

/// Sends `bytes` to a receiver thread of this same process over loopback TCP; returns how many
/// it received. Port 0 lets the kernel pick a free port, so parallel runs cannot collide.
fn blast(bytes: u64) -> Result<u64, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|err| format!("binding 127.0.0.1:0: {err}"))?;
    let addr = listener
        .local_addr()
        .map_err(|err| format!("listener address: {err}"))?;
    let receiver = thread::spawn(move || receive(&listener));

    let mut stream =
        TcpStream::connect(addr).map_err(|err| format!("connecting to {addr}: {err}"))?;
    let buffer = vec![0x5a_u8; BUFFER];
    let mut left = bytes;
    while left > 0 {
        let chunk = usize::try_from(left).map_or(BUFFER, |left| left.min(BUFFER));
        stream
            .write_all(&buffer[..chunk])
            .map_err(|err| format!("sending: {err}"))?;
        left -= chunk as u64;
    }
    // The receiver reads until end of file: without this it would wait for more forever.
    stream
        .shutdown(Shutdown::Write)
        .map_err(|err| format!("shutting down the sending side: {err}"))?;
    receiver
        .join()
        .map_err(|_| "the receiver thread panicked".to_owned())?
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
