//! Container names from the runtimes' own state on the host (Docker's `config.v2.json`,
//! Podman's `containers.json`), read without calling their APIs: root-owned regular files only,
//! bounded in size, each container looked up once.

use std::{
    collections::HashMap,
    fs::File,
    io::Read as _,
    os::unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use serde::Deserialize;

use super::workload::Runtime;

/// Docker's state for a container: `<root>/<full id>/config.v2.json`.
const DOCKER_CONTAINERS: &str = "/var/lib/docker/containers";
/// Podman's (root) list of every container with its names.
const PODMAN_CONTAINERS: &str = "/var/lib/containers/storage/overlay-containers/containers.json";
/// A container's state is a few KiB and Podman's list a few hundred bytes per container: a
/// file past this is not the runtime's, or not worth the memory.
const MAX_FILE_BYTES: u64 = 4 << 20;
/// Names kept; the cache starts over when full, so a host churning containers stays bounded.
const MAX_CACHED: usize = 1024;
/// Longest name kept: runtimes allow long names; outputs need a line.
const MAX_NAME_CHARS: usize = 128;
/// Group or other may write.
const SHARED_WRITE: u32 = 0o022;

static CACHE: Mutex<Option<HashMap<String, Option<String>>>> = Mutex::new(None);

/// The name `runtime` gave the container `full_id`, where its state on this host says; cached.
pub fn lookup(runtime: Runtime, full_id: &str) -> Option<String> {
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(name) = cache.get(full_id) {
        return name.clone();
    }
    let name = read(
        runtime,
        full_id,
        Path::new(DOCKER_CONTAINERS),
        Path::new(PODMAN_CONTAINERS),
    );
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(full_id.to_owned(), name.clone());
    name
}

/// The name from the state under `docker` (Docker's containers directory) or in `podman`
/// (Podman's containers list), by the runtime the cgroup path named.
fn read(runtime: Runtime, full_id: &str, docker: &Path, podman: &Path) -> Option<String> {
    let name = match runtime {
        Runtime::Docker => docker_name(&docker_config(docker, full_id)),
        Runtime::Podman => podman_name(podman, full_id),
        Runtime::Containerd | Runtime::CriO | Runtime::Kubernetes => None,
    }?;
    let name: String = name
        .trim_start_matches('/')
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    (!name.is_empty()).then_some(name)
}

fn docker_name(config: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(rename = "Name")]
        name: String,
    }
    let config: Config = serde_json::from_slice(&trusted_bytes(config)?).ok()?;
    Some(config.name)
}

fn podman_name(list: &Path, full_id: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Container {
        id: String,
        #[serde(default)]
        names: Vec<String>,
    }
    let containers: Vec<Container> = serde_json::from_slice(&trusted_bytes(list)?).ok()?;
    containers
        .into_iter()
        .find(|c| c.id == full_id)?
        .names
        .into_iter()
        .next()
}

/// The file's bytes when root owns it, nobody else may write it, it is a regular file reached
/// without following a final symlink, and it is no larger than [`MAX_FILE_BYTES`].
fn trusted_bytes(path: &Path) -> Option<Vec<u8>> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    let trusted = meta.is_file()
        && meta.uid() == 0
        && meta.mode() & SHARED_WRITE == 0
        && meta.len() <= MAX_FILE_BYTES;
    if !trusted {
        log::debug!("{}: not a root-owned file of bounded size", path.display());
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Where Docker keeps a container's state under its containers directory.
fn docker_config(root: &Path, full_id: &str) -> PathBuf {
    root.join(full_id).join("config.v2.json")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const ID: &str = "3f2a1b9c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn names_from_docker_and_podman_state() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("docker");
        write(
            &docker_config(&docker, ID),
            r#"{"ID":"x","Name":"/web\u0007-1","Config":{}}"#,
        );
        let podman = dir.path().join("containers.json");
        write(
            &podman,
            &format!(r#"[{{"id":"other","names":["no"]}},{{"id":"{ID}","names":["db","x"]}}]"#),
        );
        let got = |runtime| read(runtime, ID, &docker, &podman);
        if is_root() {
            assert_eq!(got(Runtime::Docker).as_deref(), Some("web-1"));
            assert_eq!(got(Runtime::Podman).as_deref(), Some("db"));
        } else {
            // Not root's files: not trusted.
            assert_eq!(got(Runtime::Docker), None);
        }
        assert_eq!(got(Runtime::Containerd), None);
        assert_eq!(read(Runtime::Docker, "nope", &docker, &podman), None);
    }

    #[test]
    fn state_others_may_write_or_a_symlink_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("docker");
        let config = docker_config(&docker, ID);
        write(&config, r#"{"Name":"/web"}"#);
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(read(Runtime::Docker, ID, &docker, Path::new("/")), None);
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link_root = dir.path().join("linked");
        std::fs::create_dir_all(link_root.join(ID)).unwrap();
        std::os::unix::fs::symlink(&config, docker_config(&link_root, ID)).unwrap();
        assert_eq!(read(Runtime::Docker, ID, &link_root, Path::new("/")), None);
    }
}
