//! Frames of binaries the host cannot open by their path: a burner deleted after it started (the
//! usual state right after a deploy), and one started from a tmpfs mounted only inside a mount
//! namespace of its own (a container's view, in a Docker-shaped cgroup: reported as that
//! container). Both must be named as a burner on the host is.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    process::{Child, Command},
    time::Duration,
};

use profiler_tests::{
    Cgroup, Workload, container_id, diagnose_window, folded_lines_of, frames_in_order,
    process_entry, require_root, serial, tempdir,
};

const BURNER: &str = env!("CARGO_BIN_EXE_burner");
const INNER: &str = "burner_inner_gamma";
const MIDDLE: &str = "burner_middle_beta";
const OUTER: &str = "burner_outer_alpha";

#[test]
fn a_deleted_binary_and_one_in_another_mount_namespace_are_symbolized() {
    const TEST: &str = "a_deleted_binary_and_one_in_another_mount_namespace_are_symbolized";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let copy = dir.path().join("deployed-burner");
    fs::copy(BURNER, &copy).expect("copying the burner");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod");
    let deleted = Workload::spawn(copy.to_str().expect("utf-8 temp path"), &["--cpu", "0"]);
    // Started: the file can go, as a deploy replaces it.
    std::thread::sleep(Duration::from_millis(200));
    fs::remove_file(&copy).expect("deleting the running copy");

    // A tmpfs only this namespace sees, at a path that does not exist on the host.
    let hidden_dir = dir.path().join("hidden");
    fs::create_dir(&hidden_dir).expect("mkdir");
    let hidden = hidden_dir.join("contained-burner");
    let script = format!(
        "mount -t tmpfs none {dir} && cp {BURNER} {exe} && exec {exe} --cpu 1",
        dir = hidden_dir.display(),
        exe = hidden.display(),
    );
    // Not a `Workload`: that waits for the first exec's file, and `unshare` execs on at once.
    let contained = Killed(
        Command::new("/usr/bin/unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .spawn()
            .expect("starting unshare"),
    );
    std::thread::sleep(Duration::from_millis(300));
    // And in a cgroup shaped as Docker's cgroupfs driver makes one, as a container would be.
    let id = container_id(3);
    let docker = Cgroup::v1("name=systemd", &format!("docker/{id}"));
    docker.adopt(contained.0.id());
    assert!(
        !hidden.exists(),
        "{} is visible on the host: the mount namespace did not hold",
        hidden.display()
    );

    let run = diagnose_window(Duration::from_secs(3), &[], |_| {});
    let report = &run.report;
    let workload = process_entry(report, contained.0.id()).map(|p| p["workload"].clone());
    assert_eq!(
        workload,
        Some(serde_json::json!({
            "kind": "container", "name": &id[..12], "id": &id[..12], "runtime": "docker"
        })),
        "the contained burner in {}",
        docker.path
    );
    let folded = fs::read_to_string(run.out.join("stacks.folded")).expect("reading stacks.folded");
    for (what, pid, comm) in [
        ("the deleted binary", deleted.pid(), "deployed-burner"),
        // The comm: the file's name cut to 15 bytes.
        (
            "the binary in another mount namespace",
            contained.0.id(),
            "contained-burne",
        ),
    ] {
        let entry = process_entry(report, pid)
            .unwrap_or_else(|| panic!("{what} ({pid}) is not in the report"));
        let root = format!("{comm} ({pid})");
        let lines = folded_lines_of(&folded, &root);
        assert!(
            lines
                .iter()
                .any(|line| frames_in_order(line, &[OUTER, MIDDLE, INNER])),
            "no `{root};...` stack with {OUTER} -> {MIDDLE} -> {INNER} for {what} (exe {}): \
             {lines:#?}",
            entry["exe"]
        );
    }
}

/// A child killed and reaped when dropped, whatever the test's outcome.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
