//! Disk-write workload: writes an exact number of bytes to a new file, prints `wrote N` and
//! exits, so the end-to-end tests can check the profiler's per-process block I/O against a known
//! figure. Both modes put every byte on the block layer from this process's own context, where
//! a per-process count can see it: `--direct` writes with `O_DIRECT` from an aligned buffer,
//! bypassing the page cache; `--buffered-fsync` writes through the page cache and then calls
//! `fsync` once, which writes the dirty pages back itself rather than leaving them to the
//! kernel's flusher threads. `--loop-seconds S` keeps rewriting the file from offset 0, a pass
//! of N bytes after another, until S seconds have passed (for runs that need I/O all through a
//! window) and prints the total; `--round-ms T` then starts a pass at most every T ms, sleeping
//! in between, so the writer keeps a set rate instead of taking all the disk (and, on a fast
//! virtual disk, a good part of a CPU) it can.
//! `--wait-stdin` first blocks until one byte arrives on stdin, so a test can start the writer
//! before the profiler attaches and release it after. The file must not exist yet, and is
//! removed at exit.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::ExitCode;

use profiler_tests::{Pacing, parse_millis, parse_seconds};

const USAGE: &str = "usage: diskwriter --path P --bytes N (--direct | --buffered-fsync) \
                     [--chunk N] [--loop-seconds S [--round-ms T]] [--wait-stdin]";

/// Default write size: large enough that the syscalls cost little next to the I/O, so the
/// run's traffic dominates the host's, small enough to stay far from any device's limits.
const DEFAULT_CHUNK: usize = 1 << 20;

/// `O_DIRECT` needs the buffer, the file offset and the length aligned to the device's logical
/// block size; 4096 covers every common one (512-byte and 4 KiB sectors alike).
const DIRECT_ALIGN: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Direct,
    BufferedFsync,
}

struct Args {
    path: PathBuf,
    bytes: u64,
    chunk: usize,
    mode: Mode,
    pacing: Option<Pacing>,
    wait_stdin: bool,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            // One line, so a test showing stderr shows the mistake and the usage together.
            eprintln!("diskwriter: {message}; {USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(written) => {
            println!("wrote {written}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("diskwriter: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut path, mut bytes, mut chunk, mut mode) = (None, None, None, None);
    let (mut loop_for, mut round) = (None, None);
    let mut wait_stdin = false;
    let mut seen = Vec::new();
    while let Some(flag) = args.next() {
        // A repeated flag is more likely a mistake than a deliberate override.
        if seen.contains(&flag) {
            return Err(format!("{flag} given twice"));
        }
        match flag.as_str() {
            "--wait-stdin" => wait_stdin = true,
            "--direct" | "--buffered-fsync" if mode.is_some() => {
                return Err("give only one of --direct and --buffered-fsync".to_owned());
            }
            "--direct" => mode = Some(Mode::Direct),
            "--buffered-fsync" => mode = Some(Mode::BufferedFsync),
            "--path" | "--bytes" | "--chunk" | "--loop-seconds" | "--round-ms" => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                let integer = || {
                    value
                        .parse::<u64>()
                        .map_err(|_| format!("{flag}: not a non-negative integer: {value}"))
                };
                match flag.as_str() {
                    "--path" => path = Some(PathBuf::from(&value)),
                    "--bytes" => bytes = Some(integer()?),
                    "--chunk" => {
                        chunk = Some(
                            usize::try_from(integer()?)
                                .ok()
                                .filter(|&chunk| chunk > 0)
                                .ok_or_else(|| format!("--chunk: not a positive size: {value}"))?,
                        );
                    }
                    "--loop-seconds" => loop_for = Some(parse_seconds(&flag, &value)?),
                    _ => round = Some(parse_millis(&flag, &value)?),
                }
            }
            _ => return Err(format!("unknown argument: {flag}")),
        }
        seen.push(flag);
    }
    // No defaults for these: a test that forgot one would check its figures against a guess.
    let path = path.ok_or("--path is required")?;
    let bytes = bytes.ok_or("--bytes is required")?;
    let mode = mode.ok_or("one of --direct and --buffered-fsync is required")?;
    let chunk = chunk.unwrap_or(DEFAULT_CHUNK);
    if mode == Mode::Direct && (bytes % DIRECT_ALIGN as u64 != 0 || chunk % DIRECT_ALIGN != 0) {
        return Err(format!(
            "--direct needs --bytes and --chunk to be multiples of {DIRECT_ALIGN}"
        ));
    }
    let pacing = Pacing::from_args(loop_for, round)?;
    if pacing.is_some() && bytes == 0 {
        return Err("--loop-seconds needs --bytes above 0".to_owned());
    }
    Ok(Args {
        path,
        bytes,
        chunk,
        mode,
        pacing,
        wait_stdin,
    })
}

/// Removes the file it names when dropped, so every exit after the file was created, failed
/// ones included, leaves nothing behind.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Creates the file, waits for the release if asked, writes; returns the bytes written.
fn run(args: &Args) -> Result<u64, String> {
    let mut options = OpenOptions::new();
    // A file that already exists may be someone's data; this workload only ever overwrites its own.
    options.write(true).create_new(true);
    if args.mode == Mode::Direct {
        options.custom_flags(libc::O_DIRECT);
    }
    // Before the release, so a file system refusing O_DIRECT fails the run before the profiling
    // window rather than inside it.
    let file = options
        .open(&args.path)
        .map_err(|err| format!("creating {}: {err}", args.path.display()))?;
    let _remove = RemoveOnDrop(args.path.clone());

    // A Vec only promises byte alignment: take the first DIRECT_ALIGN-aligned slice of a
    // slightly larger one. Any bytes but zeroes, in case a layer below skips writing zeroes.
    let storage = vec![0xa5_u8; args.chunk + DIRECT_ALIGN];
    let start = (DIRECT_ALIGN - storage.as_ptr().addr() % DIRECT_ALIGN) % DIRECT_ALIGN;
    let buffer = &storage[start..start + args.chunk];

    if args.wait_stdin {
        profiler_tests::wait_for_start_byte()?;
    }
    let mut written = 0;
    let mut pass = || {
        write_pass(&file, buffer, args)?;
        written += args.bytes;
        Ok(())
    };
    match args.pacing {
        None => pass()?,
        Some(pacing) => pacing.run(pass)?,
    }
    Ok(written)
}

/// Writes `--bytes` from offset 0; with `--buffered-fsync` then syncs the file, so every pass of
/// a loop reaches the disk instead of rewriting cached pages.
fn write_pass(file: &File, buffer: &[u8], args: &Args) -> Result<(), String> {
    let mut offset = 0;
    while offset < args.bytes {
        let len = usize::try_from(args.bytes - offset)
            .map_or(buffer.len(), |left| left.min(buffer.len()));
        file.write_all_at(&buffer[..len], offset)
            .map_err(|err| format!("writing {len} bytes at offset {offset}: {err}"))?;
        offset += len as u64;
    }
    if args.mode == Mode::BufferedFsync {
        file.sync_all().map_err(|err| format!("fsync: {err}"))?;
    }
    Ok(())
}
