//! Short-lived processes keep their executable: a batch job starts 500 workers, ten at a time,
//! each living about 20 ms, most gone before the profiler's next look at /proc. Each must have its
//! executable in report.json all the same, from the file the kernel saw it exec.

use std::time::{Duration, Instant};

use profiler_tests::{Workload, array, diagnose_window, require_root, serial};
use serde_json::Value;

const WORKERS: usize = 500;
/// A worker lost (its fork or exit not seen) would be a bug of its own, tested elsewhere; here
/// every worker the report has must have its executable.
const MIN_SEEN: usize = WORKERS * 9 / 10;

#[test]
fn every_worker_of_a_batch_job_keeps_its_executable() {
    const TEST: &str = "every_worker_of_a_batch_job_keeps_its_executable";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let script = format!(
        "read go; for i in $(seq {WORKERS}); do /bin/sleep 0.02 & \
         if [ $((i % 10)) -eq 0 ]; then wait; fi; done; wait"
    );
    let (mut job, mut release) = Workload::spawn_piped("/bin/bash", &["-c", &script]);
    let run = diagnose_window(Duration::from_secs(6), &[], |_| {
        use std::io::Write as _;
        release.write_all(b"go\n").expect("releasing the batch job");
    });
    let status = job.wait_exit(Instant::now() + Duration::from_secs(30));
    assert!(status.success(), "the batch job: {status}");
    let report = &run.report;
    let workers: Vec<&Value> = array(report, "processes")
        .iter()
        .filter(|p| p["ppid"] == job.pid() && p["comm"] == "sleep")
        .collect();
    assert!(
        workers.len() >= MIN_SEEN,
        "{} of {WORKERS} workers in the report",
        workers.len()
    );
    // As exec was given it, or as /proc/PID/exe resolves it where /proc was read in time.
    let named = |p: &&Value| p["exe"] == "/bin/sleep" || p["exe"] == "/usr/bin/sleep";
    let unnamed: Vec<&&Value> = workers.iter().filter(|p| !named(p)).collect();
    let from_proc = workers
        .iter()
        .filter(|p| p["exe"] == "/usr/bin/sleep")
        .count();
    eprintln!(
        "{} workers, {from_proc} with their executable from /proc, the rest from exec",
        workers.len()
    );
    assert!(
        unnamed.is_empty(),
        "{} of {} workers without their executable, e.g. {:#}",
        unnamed.len(),
        workers.len(),
        unnamed[0]
    );
}
