//! The verdict on storms, each scenario with its exact suspect set: a syscall storm, a fork
//! storm, a parent starting short-lived workers, a loopback flood, and direct and buffered disk
//! writers must each be named once, for the resource they flood, and nothing else (a storm that
//! keeps one CPU busy on a host with CPUs to spare is no CPU suspect too).

use std::time::Duration;

use profiler_tests::{
    Workload, assert_exact_suspects, diagnose_released, diagnose_window, disk_backed_tempdir,
    require_root, serial, utf8,
};

const STORM: &str = env!("CARGO_BIN_EXE_storm");
const SPAWNER: &str = env!("CARGO_BIN_EXE_spawner");
const NETBLAST: &str = env!("CARGO_BIN_EXE_netblast");
const DISKWRITER: &str = env!("CARGO_BIN_EXE_diskwriter");
const BURNER: &str = env!("CARGO_BIN_EXE_burner");
const DURATION: Duration = Duration::from_secs(4);
/// Workloads that loop run past any window and are killed when the scenario ends.
const LOOP_SECONDS: &str = "60";

/// Diagnoses `DURATION` of `workload` running all through it and checks the exact set.
fn scenario(name: &str, workload: &mut Workload, expected: &[(&str, &str)]) {
    let run = diagnose_window(DURATION, &[], |_| {});
    assert!(
        workload.is_running(),
        "the {name} workload {} ended before the window did",
        workload.pid()
    );
    assert_exact_suspects(name, &run.report, expected);
}

#[test]
fn a_syscall_storm_is_the_one_syscalls_suspect() {
    if !require_root("a_syscall_storm_is_the_one_syscalls_suspect") {
        return;
    }
    let _serial = serial();
    let args = ["--getppid", "100000", "--loop-seconds", LOOP_SECONDS];
    let mut storm = Workload::spawn(STORM, &args);
    scenario("syscall storm", &mut storm, &[("storm", "syscalls")]);
}

#[test]
fn a_fork_storm_is_the_one_spawn_suspect() {
    if !require_root("a_fork_storm_is_the_one_spawn_suspect") {
        return;
    }
    let _serial = serial();
    // 1 600 `/bin/true` in a row: about 0.16 cores with the children here, over the 0.1 a
    // spawn suspect must cost (diagnose_spawn measures the same storm's counts).
    let (mut spawner, start) =
        Workload::spawn_piped(SPAWNER, &["--wait-stdin", "--children", "1600"]);
    let run = diagnose_released(&mut spawner, start, DURATION, &[]);
    assert_exact_suspects("fork storm", &run.report, &[("spawner", "spawn")]);
}

#[test]
fn a_parent_starting_short_lived_workers_is_the_one_spawn_suspect() {
    if !require_root("a_parent_starting_short_lived_workers_is_the_one_spawn_suspect") {
        return;
    }
    let _serial = serial();
    // One worker after another, each burning for 50 ms: twenty new processes a second and a
    // core's worth of work, on a host with a CPU to spare. The parent answers for its family;
    // the workers, a core together, harm no one's CPU.
    let script = format!("while :; do {BURNER} --seconds 0.05; done");
    let mut shell = Workload::spawn("/bin/bash", &["-c", &script]);
    scenario(
        "short-lived workers of one parent",
        &mut shell,
        &[("bash", "spawn")],
    );
}

#[test]
fn a_loopback_flood_is_the_one_net_suspect() {
    if !require_root("a_loopback_flood_is_the_one_net_suspect") {
        return;
    }
    let _serial = serial();
    // 16 MiB every 20 ms: 800 MB/s each way, for about a quarter of a core on CPU, over the
    // tenth a net suspect must cost and far from the two CPUs it takes unpaced (a sender and a
    // receiver thread); paced at 80 MB/s it cost 0.05 cores and was no suspect.
    let args = [
        "--bytes",
        "16777216",
        "--loop-seconds",
        LOOP_SECONDS,
        "--round-ms",
        "20",
    ];
    let mut flood = Workload::spawn(NETBLAST, &args);
    scenario("loopback flood", &mut flood, &[("netblast", "net")]);
}

/// A disk writer in `mode` (`--direct`, `--buffered-fsync`) rewriting 64 MiB all through the
/// window, as fast as it can.
fn disk_writer(test: &str, mode: &str) {
    let Some(dir) = disk_backed_tempdir(test) else {
        return;
    };
    let path = dir.path().join("data");
    let args = [
        mode,
        "--path",
        utf8(&path),
        "--bytes",
        "67108864",
        "--loop-seconds",
        LOOP_SECONDS,
    ];
    let mut writer = Workload::spawn(DISKWRITER, &args);
    scenario(
        &format!("disk writer {mode}"),
        &mut writer,
        &[("diskwriter", "io")],
    );
}

#[test]
fn a_direct_disk_writer_is_the_one_io_suspect() {
    const TEST: &str = "a_direct_disk_writer_is_the_one_io_suspect";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    disk_writer(TEST, "--direct");
}

#[test]
fn a_buffered_disk_writer_is_the_one_io_suspect() {
    const TEST: &str = "a_buffered_disk_writer_is_the_one_io_suspect";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    disk_writer(TEST, "--buffered-fsync");
}
