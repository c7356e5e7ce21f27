//! End-to-end disk I/O diagnosis: a process writing a known number of bytes to a file on a
//! disk-backed file system, all inside the profiling window, must have them counted as its
//! `write_bytes`, whether it writes with `O_DIRECT` or through the page cache and one `fsync`;
//! the direct writer must also top the processes by bytes written and be named an `io` suspect.

use std::time::Duration;

use profiler_tests::{
    Workload, array, assert_near, count, diagnose_released, disk_backed_tempdir, diskwriter_wrote,
    number, process_entry, require_root, serial, utf8,
};
use serde_json::{Value, json};

const DISKWRITER: &str = "diskwriter";
const DISKWRITER_EXE: &str = env!("CARGO_BIN_EXE_diskwriter");

/// 64 MiB a pass, rewritten back to back for `DIRECT_SECONDS`: the disk busy most of the
/// window, the harm an io suspect needs (one pass took this VM's disk 2 % of four seconds).
const DIRECT_BYTES: u64 = 64 << 20;
const DIRECT_SECONDS: &str = "3";

/// 32 MiB: far below the dirty-page level at which the kernel's flusher threads start writing
/// back by themselves (`vm.dirty_background_ratio`, 10 % of free memory by default), and written
/// and synced within a few seconds (`vm.dirty_expire_centisecs` is 30 s), so the fsync, in the
/// writer's own context, is what writes every page.
const BUFFERED_BYTES: u64 = 32 << 20;

/// Long enough for the writes to run whole inside the window on a slow disk, short enough to
/// keep the suite quick.
const DURATION: Duration = Duration::from_secs(4);

/// Allowed relative gap between `write_bytes` and the bytes written. Every byte reaches the block
/// layer from the writer, so the figure should be exact (the tests print it to show it); the
/// margin allows for metadata the file system writes along with the data from the writer's
/// context, and keeps a lost per-CPU update from failing the suite before a look at the log.
const BYTES_TOLERANCE: f64 = 0.1;

/// Allowed relative gap between the suspect's MB/s and `bytes_per_second`: both come from the
/// same bytes and window, only rounding separates them.
const RATE_TOLERANCE: f64 = 0.01;

#[test]
fn direct_writes_are_counted_and_the_writer_is_named_an_io_suspect() {
    if !require_root("direct_writes_are_counted_and_the_writer_is_named_an_io_suspect") {
        return;
    }
    let _serial = serial();
    let Some(run) = run_writer(
        "direct_writes_are_counted_and_the_writer_is_named_an_io_suspect",
        "--direct",
        DIRECT_BYTES,
        &["--loop-seconds", DIRECT_SECONDS],
    ) else {
        return;
    };
    let (report, pid) = (&run.report, run.pid);
    let context = || relevant(report, pid);
    let io = &process_entry(report, pid).expect("checked by run_writer")["io"];

    let ops = count(io, "ops");
    assert!(ops > 0, "diskwriter has no I/O ops:\n{}", context());
    let p99 = count(io, "p99_latency_ns");
    assert!(
        p99 > 0,
        "diskwriter's I/O has no p99 latency:\n{}",
        context()
    );

    // Another process writing this much would make the writer's figures hard to read; it should
    // not exist on a test host, let alone inside the same four seconds. Kernel threads (no exe)
    // are left out: a flusher writing back pages dirtied before the run (say, by the test
    // build) is charged with them, as documented, and counted in
    // drops.writeback_unattributed_bytes.
    let busiest = array(report, "processes")
        .iter()
        .filter(|p| p["io"].is_object() && p["exe"].is_string())
        .max_by_key(|p| count(&p["io"], "write_bytes"))
        .unwrap_or_else(|| panic!("no process has io figures:\n{}", context()));
    assert_eq!(
        busiest["pid"],
        pid,
        "{} (pid {}) wrote more than the diskwriter:\n{busiest:#}\n{}",
        busiest["comm"],
        busiest["pid"],
        context()
    );

    let suspect = array(report, "suspects")
        .iter()
        .find(|s| s["resource"] == "io" && s["pid"] == pid)
        .unwrap_or_else(|| panic!("no io suspect for the diskwriter:\n{}", context()));
    assert_eq!(suspect["comm"], DISKWRITER, "{suspect:#}");
    assert_eq!(suspect["unit"], "MB/s", "{suspect:#}");
    let value = number(suspect, "value");
    let expected = number(io, "bytes_per_second") / 1e6;
    assert!(
        (value - expected).abs() <= RATE_TOLERANCE * expected,
        "io suspect value {value} MB/s, but the diskwriter's bytes_per_second is {expected} \
         MB/s:\n{}",
        context()
    );
}

#[test]
fn fsync_writeback_is_counted_for_the_writer() {
    if !require_root("fsync_writeback_is_counted_for_the_writer") {
        return;
    }
    let _serial = serial();
    let Some(run) = run_writer(
        "fsync_writeback_is_counted_for_the_writer",
        "--buffered-fsync",
        BUFFERED_BYTES,
        &[],
    ) else {
        return;
    };
    let (report, pid) = (&run.report, run.pid);
    let io = &process_entry(report, pid).expect("checked by run_writer")["io"];
    assert!(
        count(io, "ops") > 0,
        "diskwriter has no I/O ops:\n{}",
        relevant(report, pid)
    );
}

/// One writer profiled whole: the report and the writer's pid, which has exited by then.
struct WriterRun {
    report: Value,
    pid: u32,
}

/// Runs `profiler diagnose` for `DURATION` and releases a `diskwriter <mode> --bytes <bytes>`
/// (with `extra`, a loop of passes, say) once the profiler has attached, so every byte it writes is inside the profiling window; checks
/// what every writer must show: the io signal on, the writer's entry, and its `write_bytes`
/// matching what it wrote. `None` when the test is skipped.
fn run_writer(test: &str, mode: &str, bytes: u64, extra: &[&str]) -> Option<WriterRun> {
    let dir = disk_backed_tempdir(test)?;
    let path = dir.path().join("data");
    let bytes_arg = bytes.to_string();
    let mut args = vec![
        "--wait-stdin",
        mode,
        "--path",
        utf8(&path),
        "--bytes",
        &bytes_arg,
    ];
    args.extend(extra);
    let (mut writer, start) = Workload::spawn_piped_stdout(DISKWRITER_EXE, &args);
    let pid = writer.pid();
    let run = diagnose_released(&mut writer, start, DURATION, &[]);
    let report = run.report;
    let context = || relevant(&report, pid);
    let wrote = diskwriter_wrote(&writer.stdout_after_exit());
    // Whole passes of `bytes`: one, or as many as a loop in `extra` made.
    assert!(
        wrote >= bytes && wrote.is_multiple_of(bytes),
        "diskwriter {mode} wrote {wrote} bytes, not whole passes of the {bytes} asked"
    );
    assert_eq!(report["signals"]["io"], "on", "{}", context());

    let entry = process_entry(&report, pid)
        .unwrap_or_else(|| panic!("diskwriter {pid} not in processes:\n{}", context()));
    assert_eq!(entry["comm"], DISKWRITER, "{entry:#}");
    // Reaped before the window closed, so /proc no longer had it at the end.
    assert_eq!(entry["exited"], true, "{entry:#}");
    let io = &entry["io"];
    assert!(
        io.is_object(),
        "diskwriter has no io object:\n{}",
        context()
    );
    let written = count(io, "write_bytes");
    // Captured by libtest: shown on failure or with --nocapture, to watch the margin.
    eprintln!(
        "diskwriter {mode} {pid} ran {:.3} s: write_bytes {written} ({:+} bytes) of {wrote}, \
         read_bytes {}, {} ops, p99 {} ns; {} bytes/s over {} s",
        run.took.as_secs_f64(),
        written.cast_signed() - wrote.cast_signed(),
        io["read_bytes"],
        io["ops"],
        io["p99_latency_ns"],
        io["bytes_per_second"],
        report["duration_s"],
    );
    assert_near(written, wrote, BYTES_TOLERANCE, "write_bytes", &context);
    Some(WriterRun { report, pid })
}

/// The parts of the report these checks read, for failure messages: the whole report lists
/// every process on the host and would bury them.
fn relevant(report: &Value, pid: u32) -> String {
    let mut busiest: Vec<&Value> = array(report, "processes")
        .iter()
        .filter(|p| p["io"].is_object())
        .collect();
    busiest.sort_by_key(|p| std::cmp::Reverse(p["io"]["write_bytes"].as_u64()));
    let busiest: Vec<Value> = busiest
        .iter()
        .take(3)
        .map(|p| json!({ "pid": p["pid"], "comm": p["comm"], "io": p["io"] }))
        .collect();
    let part = json!({
        "diskwriter pid": pid,
        "duration_s": report["duration_s"],
        "signals": report["signals"],
        "drops": report["drops"],
        "diskwriter": process_entry(report, pid),
        "busiest by write_bytes": busiest,
        "suspects": report["suspects"],
    });
    format!("{part:#}")
}
