//! End-to-end network diagnosis: a process sending a known number of bytes to itself over
//! loopback TCP, all inside the profiling window, must have both directions counted, top the
//! processes by bytes sent and be named a `net` suspect.

use std::time::Duration;

use profiler_tests::{
    Workload, array, assert_near, count, diagnose_released, number, process_entry, require_root,
    serial,
};
use serde_json::{Value, json};

const NETBLAST: &str = "netblast";
const NETBLAST_EXE: &str = env!("CARGO_BIN_EXE_netblast");

/// 2 GiB: over the 10 MB/s from which a process is a net suspect even if it took the whole
/// window, and over the tenth of a core on CPU it must cost (it took 0.64 s of CPU here), yet
/// half a second over loopback.
const BYTES: u64 = 2 << 30;

/// Long enough for the transfer to run whole inside the window on a slow host, short enough to
/// keep the suite quick.
const DURATION: Duration = Duration::from_secs(4);

/// Allowed relative gap between a counted figure and the bytes sent. Every send and receive is
/// counted, so the figures should be exact (the test prints them to show it); the margin keeps a
/// lost per-CPU update or a kernel that splits the accounting differently from failing the suite
/// before a look at the log.
const BYTES_TOLERANCE: f64 = 0.1;

/// Allowed relative gap between the suspect's MB/s and `bytes_per_second`: both come from the
/// same bytes and window, only rounding separates them.
const RATE_TOLERANCE: f64 = 0.01;

#[test]
fn loopback_transfer_is_counted_both_ways_and_named_a_net_suspect() {
    if !require_root("loopback_transfer_is_counted_both_ways_and_named_a_net_suspect") {
        return;
    }
    let _serial = serial();
    let bytes = BYTES.to_string();
    let (mut netblast, start) =
        Workload::spawn_piped(NETBLAST_EXE, &["--wait-stdin", "--bytes", &bytes]);
    let pid = netblast.pid();
    let run = diagnose_released(&mut netblast, start, DURATION, &[]);
    let report = &run.report;
    let context = || relevant(report, pid);
    assert_eq!(report["signals"]["net"], "on", "{}", context());

    let entry = process_entry(report, pid)
        .unwrap_or_else(|| panic!("netblast {pid} not in processes:\n{}", context()));
    assert_eq!(entry["comm"], NETBLAST, "{entry:#}");
    // Reaped before the window closed, so /proc no longer had it at the end.
    assert_eq!(entry["exited"], true, "{entry:#}");
    let net = &entry["net"];
    assert!(
        net.is_object(),
        "netblast has no net object:\n{}",
        context()
    );
    let (tx, rx) = (count(net, "tx_bytes"), count(net, "rx_bytes"));
    // Captured by libtest: shown on failure or with --nocapture, to watch the margins.
    eprintln!(
        "netblast {pid} ran {:.3} s: tx {tx} ({:+} bytes), rx {rx} ({:+} bytes) of {BYTES}; \
         {} bytes/s over {} s",
        run.took.as_secs_f64(),
        tx.cast_signed() - BYTES.cast_signed(),
        rx.cast_signed() - BYTES.cast_signed(),
        net["bytes_per_second"],
        report["duration_s"],
    );
    assert_near(tx, BYTES, BYTES_TOLERANCE, "tx_bytes", &context);
    assert_near(rx, BYTES, BYTES_TOLERANCE, "rx_bytes", &context);

    // Anything else sending this much would make netblast's figures hard to read; it should not
    // exist on a test host, let alone inside the same four seconds.
    let busiest = array(report, "processes")
        .iter()
        .filter(|p| p["net"].is_object())
        .max_by_key(|p| count(&p["net"], "tx_bytes"))
        .unwrap_or_else(|| panic!("no process has net figures:\n{}", context()));
    assert_eq!(
        busiest["pid"],
        pid,
        "{} (pid {}) sent more than netblast:\n{busiest:#}\n{}",
        busiest["comm"],
        busiest["pid"],
        context()
    );

    let suspect = array(report, "suspects")
        .iter()
        .find(|s| s["resource"] == "net" && s["pid"] == pid)
        .unwrap_or_else(|| panic!("no net suspect for netblast:\n{}", context()));
    assert_eq!(suspect["comm"], NETBLAST, "{suspect:#}");
    assert_eq!(suspect["unit"], "MB/s", "{suspect:#}");
    let value = number(suspect, "value");
    let expected = number(net, "bytes_per_second") / 1e6;
    assert!(
        (value - expected).abs() <= RATE_TOLERANCE * expected,
        "net suspect value {value} MB/s, but netblast's bytes_per_second is {expected} MB/s:\n{}",
        context()
    );
}

/// The parts of the report these checks read, for failure messages: the whole report lists
/// every process on the host and would bury them.
fn relevant(report: &Value, pid: u32) -> String {
    let mut busiest: Vec<&Value> = array(report, "processes")
        .iter()
        .filter(|p| p["net"].is_object())
        .collect();
    busiest.sort_by_key(|p| std::cmp::Reverse(p["net"]["tx_bytes"].as_u64()));
    let busiest: Vec<Value> = busiest
        .iter()
        .take(3)
        .map(|p| json!({ "pid": p["pid"], "comm": p["comm"], "net": p["net"] }))
        .collect();
    let part = json!({
        "netblast pid": pid,
        "duration_s": report["duration_s"],
        "signals": report["signals"],
        "drops": report["drops"],
        "netblast": process_entry(report, pid),
        "busiest by tx_bytes": busiest,
        "suspects": report["suspects"],
    });
    format!("{part:#}")
}
