//! Applications as suspects: six `stress-ng` CPU workers at 15 % load each, none a suspect
//! alone, use most of a core together. The verdict must name the application, once, with the
//! workers' summed CPU, and nothing else (the exact suspect set); the profile used to list no
//! suspect at all, or each worker in turn.

use std::time::Duration;

use profiler_tests::{Workload, array, diagnose_window, number, require_root, serial, stress_ng};

const WORKERS: usize = 6;
/// Each worker's load: 0.15 cores, under the 0.2 from which one process is a CPU suspect.
const LOAD_PERCENT: &str = "15";
const DURATION: Duration = Duration::from_secs(5);
const WORKER_COMM: &str = "stress-ng-cpu";

#[test]
fn workers_that_use_the_cpu_together_are_one_application_suspect() {
    const TEST: &str = "workers_that_use_the_cpu_together_are_one_application_suspect";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let workers = WORKERS.to_string();
    let args = [
        "--cpu",
        &workers,
        "--cpu-load",
        LOAD_PERCENT,
        "--timeout",
        "60",
    ];
    let stress_ng = stress_ng();
    let hog = Workload::spawn(&stress_ng, &args);
    // Let the workers start and settle into their duty cycle before the window.
    std::thread::sleep(Duration::from_secs(1));
    let run = diagnose_window(DURATION, &[], |_| {});
    drop(hog);
    let report = &run.report;
    let verdict = report["verdict"].as_str().unwrap_or_default();
    let busy: Vec<f64> = array(report, "processes")
        .iter()
        .filter(|p| p["comm"] == WORKER_COMM)
        .map(|p| number(&p["cpu"], "cores"))
        .collect();
    let together: f64 = busy.iter().sum();
    assert!(
        busy.len() == WORKERS && busy.iter().all(|&cores| cores < 0.2) && together >= 0.5,
        "the workers' cores, each and together ({together:.2}): {busy:?}\n{verdict}"
    );
    let suspects = array(report, "suspects");
    let named: Vec<String> = suspects
        .iter()
        .map(|s| format!("{} for {} (app {})", s["comm"], s["resource"], s["app"]))
        .collect();
    assert_eq!(suspects.len(), 1, "{named:#?}\n{verdict}");
    let suspect = &suspects[0];
    assert_eq!(
        (&suspect["resource"], &suspect["comm"]),
        (&"cpu".into(), &WORKER_COMM.into()),
        "{named:#?}"
    );
    assert_eq!(suspect["app"]["processes"], WORKERS, "{suspect:#}");
    let value = number(suspect, "value");
    assert!(
        (value - together).abs() <= 0.01,
        "the application's {value} cores, not its workers' {together:.3}:\n{suspect:#}"
    );
    assert!(
        verdict.starts_with("Suspect #1 (")
            && verdict.contains(&format!(
                "): {WORKERS} processes named {WORKER_COMM} (pids "
            )),
        "{verdict}"
    );
}
