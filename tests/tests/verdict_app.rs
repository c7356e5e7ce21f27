//! Applications as suspects: six `stress-ng` CPU workers per CPU at 18 % load each, none a
//! suspect alone, hold most of the host's CPUs together and keep others waiting. The verdict
//! must name the application, once, with the workers' summed CPU, and nothing else (the exact
//! suspect set); the profile used to list no suspect at all, or each worker in turn.

use std::time::Duration;

use profiler_tests::{
    Workload, allowed_cpus, array, assert_exact_suspects, diagnose_window, number, require_root,
    serial, stress_ng,
};

const WORKERS_PER_CPU: usize = 6;
/// Each worker's load: 0.18 cores, under the 0.2 from which one process is a CPU suspect; six
/// of them ask for more than a CPU, so others wait (the harm).
const LOAD_PERCENT: &str = "18";
const DURATION: Duration = Duration::from_secs(5);
const WORKER_COMM: &str = "stress-ng-cpu";

#[test]
fn workers_that_use_the_cpu_together_are_one_application_suspect() {
    const TEST: &str = "workers_that_use_the_cpu_together_are_one_application_suspect";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let cpus = allowed_cpus().len();
    let workers = WORKERS_PER_CPU * cpus;
    let workers_arg = workers.to_string();
    let args = [
        "--cpu",
        &workers_arg,
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
        busy.len() == workers
            && busy.iter().all(|&cores| cores < 0.2)
            && together >= 0.5 * cpus as f64,
        "the workers' cores, each and together ({together:.2}): {busy:?}\n{verdict}"
    );
    assert_exact_suspects(
        "many workers of one application",
        report,
        &[(WORKER_COMM, "cpu")],
    );
    let suspect = &array(report, "suspects")[0];
    assert_eq!(suspect["app"]["processes"], workers, "{suspect:#}");
    let value = number(suspect, "value");
    assert!(
        (value - together).abs() <= 0.01,
        "the application's {value} cores, not its workers' {together:.3}:\n{suspect:#}"
    );
    assert!(
        verdict.starts_with("Suspect #1 (")
            && verdict.contains(&format!(
                "): {workers} processes named {WORKER_COMM} (pids "
            )),
        "{verdict}"
    );
}
