//! Processes named as their operators name them: a syscall storm in a cgroup shaped as Docker's
//! cgroupfs driver makes one (`/docker/<id>`, in the v1 `name=systemd` hierarchy this kind of
//! hybrid host has) is that container, named as Docker's state file on the host names it; a
//! process in a cgroup v2 `docker-<id>.scope` with no state on the host is the container of that
//! short id; one in a `.service` cgroup is that systemd unit. In report.json's processes and
//! apps, in the verdict that names the storm, and as a `--victim` named by the container's name.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use profiler_tests::{
    Cgroup, Workload, array, container_id, diagnose_window, process_entry, require_root, serial,
};
use serde_json::json;

const STORM: &str = env!("CARGO_BIN_EXE_storm");
const DURATION: Duration = Duration::from_secs(3);
/// Where Docker keeps each container's state, as its default data root has it.
const DOCKER_CONTAINERS: &str = "/var/lib/docker/containers";
const NAME: &str = "profiler-test-web";

#[test]
fn containers_and_units_are_named_from_their_cgroups() {
    const TEST: &str = "containers_and_units_are_named_from_their_cgroups";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let (named_id, bare_id) = (container_id(1), container_id(2));
    let _state = DockerState::plant(&named_id, NAME);
    let unit = format!("profiler-test-{}.service", std::process::id());

    let storm = Workload::spawn(STORM, &["--getppid", "100000", "--loop-seconds", "60"]);
    let docker = Cgroup::v1("name=systemd", &format!("docker/{named_id}"));
    docker.adopt(storm.pid());
    // A process the run sees: one asleep all through it is in no table.
    let looping = ["-c", "while :; do sleep 0.2; done"];
    let scoped = Workload::spawn("/bin/sh", &looping);
    let scope = Cgroup::v2(&format!("system.slice/docker-{bare_id}.scope"));
    scope.adopt(scoped.pid());
    let service = Workload::spawn("/bin/sh", &looping);
    let systemd = Cgroup::v1("name=systemd", &format!("system.slice/{unit}"));
    systemd.adopt(service.pid());

    // The container as the victim, by the name an operator knows it by.
    let run = diagnose_window(DURATION, &["--victim", NAME], |_| {});
    let report = &run.report;
    let workload = |pid: u32| {
        process_entry(report, pid)
            .unwrap_or_else(|| panic!("pid {pid} is not in the report"))["workload"]
            .clone()
    };
    let short = |id: &str| id[..12].to_owned();
    assert_eq!(
        workload(storm.pid()),
        json!({ "kind": "container", "name": NAME, "id": short(&named_id), "runtime": "docker" }),
        "the storm in {}",
        docker.path
    );
    assert_eq!(
        workload(scoped.pid()),
        json!({
            "kind": "container",
            "name": short(&bare_id),
            "id": short(&bare_id),
            "runtime": "docker"
        }),
        "the shell in {}",
        scope.path
    );
    assert_eq!(
        workload(service.pid()),
        json!({ "kind": "unit", "name": unit }),
        "the shell in {}",
        systemd.path
    );

    let app = |kind: &str, name: &str| {
        array(report, "apps")
            .iter()
            .find(|app| app["kind"] == kind && app["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} app {name} in:\n{:#}", report["apps"]))
    };
    assert_eq!(app("container", NAME)["id"], short(&named_id));
    assert_eq!(app("container", NAME)["processes"], 1);
    // The shells and the `sleep`s they start, in their cgroups from birth.
    for (kind, name) in [("container", short(&bare_id)), ("unit", unit.clone())] {
        let processes = app(kind, &name)["processes"].as_u64().unwrap_or(0);
        assert!(processes >= 2, "{kind} {name}: {processes} processes");
    }

    assert_eq!(
        report["victim"]["pids"],
        json!([storm.pid()]),
        "--victim {NAME}: {:#}",
        report["victim"]
    );
    let verdict = report["verdict"].as_str().unwrap_or_default();
    let named = format!("storm (pid {}, {STORM}, container {NAME})", storm.pid());
    assert!(
        verdict.contains(&named),
        "no `{named}` in the verdict: {verdict}"
    );
}

/// Docker's state file for a container, planted for the test as Docker writes it (root's, under
/// its containers directory) and removed with what it made when dropped.
struct DockerState {
    made: Vec<PathBuf>,
}

impl DockerState {
    fn plant(id: &str, name: &str) -> Self {
        let dir = Path::new(DOCKER_CONTAINERS).join(id);
        let mut made = Vec::new();
        for ancestor in dir.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if !ancestor.exists() {
                fs::create_dir(ancestor)
                    .unwrap_or_else(|err| panic!("{}: {err}", ancestor.display()));
                made.push(ancestor.to_owned());
            }
        }
        let config = dir.join("config.v2.json");
        let state = json!({ "ID": id, "Name": format!("/{name}"), "Config": { "Image": "none" } });
        fs::write(&config, state.to_string())
            .unwrap_or_else(|err| panic!("{}: {err}", config.display()));
        made.push(config);
        Self { made }
    }
}

impl Drop for DockerState {
    fn drop(&mut self) {
        for path in self.made.iter().rev() {
            let _ = fs::remove_file(path).or_else(|_| fs::remove_dir(path));
        }
    }
}
