//! An application as its operator runs it: a container (a Docker-shaped cgroup) whose web and
//! database workers, two programs, three of each per CPU at 18 % load, none a suspect alone,
//! hold most of the host's CPUs together and keep others waiting. The verdict must name the
//! container, once, with all its workers' summed CPU, and nothing else: not each program's
//! workers as an application of their own.

use std::{fs, os::unix::fs::PermissionsExt as _, time::Duration};

use profiler_tests::{
    Cgroup, Workload, allowed_cpus, array, container_id, diagnose_window, number, require_root,
    serial, tempdir,
};

const MIXER: &str = env!("CARGO_BIN_EXE_mixer");
const PROGRAMS: [&str; 2] = ["web-worker", "db-worker"];
const PER_PROGRAM_PER_CPU: usize = 3;
const DURATION: Duration = Duration::from_secs(5);

#[test]
fn a_container_whose_workers_use_the_cpu_together_is_the_one_suspect() {
    const TEST: &str = "a_container_whose_workers_use_the_cpu_together_is_the_one_suspect";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let id = container_id(4);
    let container = Cgroup::v1("name=systemd", &format!("docker/{id}"));
    let cpus = allowed_cpus().len();
    let mut workers = Vec::new();
    for program in PROGRAMS {
        let exe = dir.path().join(program);
        fs::copy(MIXER, &exe).expect("copying the mixer");
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).expect("chmod");
        for _ in 0..PER_PROGRAM_PER_CPU * cpus {
            // 0.18 cores each, under the 0.2 from which one process is a CPU suspect.
            let worker = Workload::spawn(
                exe.to_str().expect("utf-8 temp path"),
                &["--busy-ms", "18", "--idle-ms", "82"],
            );
            container.adopt(worker.pid());
            workers.push(worker);
        }
    }
    // Let the workers settle into their duty cycle before the window.
    std::thread::sleep(Duration::from_secs(1));
    let run = diagnose_window(DURATION, &[], |_| {});
    drop(workers);
    let report = &run.report;
    let verdict = report["verdict"].as_str().unwrap_or_default();
    let suspects = array(report, "suspects");
    let short = &id[..12];
    let together: f64 = array(report, "processes")
        .iter()
        .filter(|p| PROGRAMS.iter().any(|&program| p["comm"] == program))
        .map(|p| number(&p["cpu"], "cores"))
        .sum();
    let workers = PROGRAMS.len() * PER_PROGRAM_PER_CPU * cpus;
    assert!(
        suspects.len() == 1
            && suspects[0]["resource"] == "cpu"
            && suspects[0]["app"]["kind"] == "container"
            && suspects[0]["app"]["name"] == short
            && suspects[0]["app"]["processes"] == workers,
        "not the container {short} of {workers} processes as the one CPU suspect ({together:.2} \
         cores together):\n{:#}\n{verdict}",
        report["suspects"]
    );
    let value = number(&suspects[0], "value");
    assert!(
        (value - together).abs() <= 0.01,
        "the container's {value} cores, not its workers' {together:.3}"
    );
    assert!(
        verdict.contains(&format!("): container {short} ({workers} processes: pids ")),
        "{verdict}"
    );
}
