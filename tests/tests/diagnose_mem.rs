//! End-to-end memory diagnosis: a process touching a known amount of fresh memory inside the
//! profiling window must have about one minor page fault per page and a resident size to match.

use profiler_tests::{
    REPORT_GRACE, Workload, assert_matches_schema, number, process_entry, profiler_command,
    require_root, serial, tempdir,
};

const TOUCHER: &str = env!("CARGO_BIN_EXE_toucher");
const MIB: u64 = 256;
const PAGES: f64 = (MIB << 20) as f64 / 4096.0;

#[test]
fn touched_pages_are_counted_as_minor_faults_and_resident_memory() {
    if !require_root("touched_pages_are_counted_as_minor_faults_and_resident_memory") {
        return;
    }
    let _serial = serial();
    let mib = MIB.to_string();
    let (toucher, mut start) = Workload::spawn_piped(TOUCHER, &["--wait-stdin", "--mib", &mib]);
    let dir = tempdir();
    let out = dir.path().join("out");
    let mut command = profiler_command();
    command
        .args(["diagnose", "--duration", "3s", "--format", "json", "--out"])
        .arg(&out)
        .current_dir(dir.path());
    let mut run = profiler_tests::ProfilerRun::start(command);
    run.wait_attached();
    std::io::Write::write_all(&mut start, b"\n").expect("releasing the toucher");
    let done = run.finish(REPORT_GRACE);
    done.assert_success();
    let report = done.stdout_json();
    assert_matches_schema(&report);
    assert_eq!(report["signals"]["mem"], "on");

    let entry = process_entry(&report, toucher.pid())
        .unwrap_or_else(|| panic!("toucher {} not in processes:\n{report:#}", toucher.pid()));
    let mem = &entry["mem"];
    let minor = number(mem, "minor_faults");
    let rss = number(mem, "rss_bytes");
    eprintln!("toucher: {minor} minor faults for {PAGES} pages, rss {rss} bytes");
    // One fault per page; the allocator and the loader add a few, huge pages would make fewer.
    assert!(
        (PAGES * 0.95..=PAGES * 1.5).contains(&minor),
        "minor faults {minor} for {PAGES} touched pages: {mem:#}"
    );
    assert!(
        rss >= (MIB << 20) as f64 * 0.95,
        "resident {rss} bytes after touching {MIB} MiB: {mem:#}"
    );
}
