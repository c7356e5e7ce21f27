//! What a process runs as, in its operator's words: the container, pod, systemd unit or login
//! session its cgroup path names (cgroup v2, or v1's `name=systemd`/`cpu` hierarchy on hybrid
//! hosts), parsed from the path alone.

use serde::{Deserialize, Serialize};

/// How many hex digits of a container id name it, as `docker ps` and `podman ps` show it.
pub const SHORT_ID: usize = 12;

/// What kind of workload a cgroup path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// A systemd service or scope (`nginx.service`, `user@1000.service`, `run-r1.scope`).
    Unit,
    /// A container of a runtime, by its id.
    Container,
    /// A Kubernetes pod none of whose containers the path names (its sandbox, its pod cgroup).
    Pod,
    /// A login session (`session-3.scope`).
    Session,
}

/// The container runtime whose naming the path follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Docker,
    Podman,
    Containerd,
    #[serde(rename = "cri-o")]
    CriO,
    /// A Kubernetes container under the cgroupfs driver: the path does not say which runtime.
    Kubernetes,
}

/// A process's workload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Workload {
    pub kind: WorkloadKind,
    /// The unit or session name; a container's name where the runtime's state on the host has
    /// it, else its short id; a pod's uid.
    pub name: String,
    /// A container's short id (12 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// The uid of the Kubernetes pod a container belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

impl Workload {
    /// Whether an operator's `name` names it: its name, or a container's short id.
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name || self.id.as_deref() == Some(name)
    }
}

/// A container named by a path, with its full id (to look its name up by).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub workload: Workload,
    pub full_id: Option<String>,
}

/// The workload `paths` (a process's cgroup paths, v2 first) name, a container or pod before a
/// unit or session whichever path names it: on a hybrid host a container of a runtime that
/// uses only the v1 hierarchies sits in its shim's service in v2 (`containerd.service`).
pub fn classify_any<'a>(paths: impl IntoIterator<Item = &'a str>) -> Option<Parsed> {
    let rank = |kind: WorkloadKind| match kind {
        WorkloadKind::Container => 0,
        WorkloadKind::Pod => 1,
        WorkloadKind::Unit | WorkloadKind::Session => 2,
    };
    // `min_by_key` keeps the first of equals: the v2 path's unit before v1's.
    paths
        .into_iter()
        .filter_map(classify)
        .min_by_key(|parsed| rank(parsed.workload.kind))
}

/// The workload a cgroup path names: the innermost container, else the innermost pod, else the
/// innermost unit or session; `None` for the root, slices and paths of no known shape.
pub fn classify(path: &str) -> Option<Parsed> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let pod = parts.iter().rev().find_map(|part| pod_uid(part));
    let innermost = (0..parts.len())
        .rev()
        .find_map(|i| container(parts[i], i.checked_sub(1).map(|j| parts[j])));
    if let Some((runtime, id)) = innermost {
        let short: String = id.chars().take(SHORT_ID).collect();
        let runtime = match runtime {
            Some(runtime) => runtime,
            None if pod.is_some() => Runtime::Kubernetes,
            None => Runtime::Docker,
        };
        return Some(Parsed {
            workload: Workload {
                kind: WorkloadKind::Container,
                name: short.clone(),
                id: Some(short),
                runtime: Some(runtime),
                pod,
            },
            full_id: Some(id.to_owned()),
        });
    }
    if let Some(uid) = pod {
        return Some(plain(WorkloadKind::Pod, uid));
    }
    let (index, part) = parts
        .iter()
        .enumerate()
        .rev()
        .find(|(_, part)| part.ends_with(".service") || part.ends_with(".scope"))?;
    if part.starts_with("session-") && part.ends_with(".scope") {
        let session = part.trim_end_matches(".scope").to_owned();
        return Some(plain(WorkloadKind::Session, session));
    }
    // A user's own units (`dbus.service` under `user@1000.service`) are not the system's nor
    // another user's of the same name.
    let manager = parts[..index]
        .iter()
        .rev()
        .find(|p| p.starts_with("user@") && p.ends_with(".service"));
    let name = match manager {
        Some(manager) => format!("{manager}/{part}"),
        None => (*part).to_owned(),
    };
    Some(plain(WorkloadKind::Unit, name))
}

fn plain(kind: WorkloadKind, name: String) -> Parsed {
    Parsed {
        workload: Workload {
            kind,
            name,
            id: None,
            runtime: None,
            pod: None,
        },
        full_id: None,
    }
}

/// A container id in one path component, with the runtime its shape names (`None`: a bare id,
/// whose runtime the parent component tells): `docker-<id>.scope`, `libpod-<id>.scope`,
/// `libpod-<id>`, `cri-containerd-<id>.scope`, `crio-<id>.scope`, or a bare 64-digit id under
/// `docker` or a pod.
fn container<'a>(part: &'a str, parent: Option<&str>) -> Option<(Option<Runtime>, &'a str)> {
    const PREFIXES: [(&str, Runtime); 4] = [
        ("docker-", Runtime::Docker),
        ("libpod-", Runtime::Podman),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
    ];
    let bare = part.strip_suffix(".scope").unwrap_or(part);
    for (prefix, runtime) in PREFIXES {
        if let Some(id) = bare.strip_prefix(prefix).filter(|id| is_id(id)) {
            return Some((Some(runtime), id));
        }
    }
    if !is_id(part) {
        return None;
    }
    match parent {
        Some("docker") => Some((Some(Runtime::Docker), part)),
        Some(parent) if pod_uid(parent).is_some() => Some((None, part)),
        _ => None,
    }
}

/// A full container id: 64 lowercase hex digits.
fn is_id(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The pod uid a component names: `pod<uid>` (cgroupfs driver) or
/// `kubepods[-<qos>]-pod<uid with _ for ->.slice` (systemd driver).
fn pod_uid(part: &str) -> Option<String> {
    let slice = part.strip_suffix(".slice");
    let uid = match slice {
        Some(name) if name.starts_with("kubepods") => name.rsplit_once("-pod")?.1.replace('_', "-"),
        Some(_) => return None,
        None => part.strip_prefix("pod")?.to_owned(),
    };
    let uuid = uid.len() == 36 && uid.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit());
    uuid.then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a1b9c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";
    const POD: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    fn parsed(path: &str) -> Workload {
        classify(path)
            .unwrap_or_else(|| panic!("{path}: no workload"))
            .workload
    }

    fn container_of(path: &str, runtime: Runtime) {
        let workload = parsed(path);
        assert_eq!(workload.kind, WorkloadKind::Container, "{path}");
        assert_eq!(workload.id.as_deref(), Some(&ID[..SHORT_ID]), "{path}");
        assert_eq!(workload.name, &ID[..SHORT_ID], "{path}");
        assert_eq!(workload.runtime, Some(runtime), "{path}");
        assert_eq!(classify(path).unwrap().full_id.as_deref(), Some(ID));
    }

    #[test]
    fn containers_of_each_runtime_and_driver_by_their_short_id() {
        container_of(&format!("/system.slice/docker-{ID}.scope"), Runtime::Docker);
        container_of(&format!("/docker/{ID}"), Runtime::Docker);
        container_of(
            &format!("/machine.slice/libpod-{ID}.scope"),
            Runtime::Podman,
        );
        // Podman with its own cgroup namespace puts the payload one level down.
        container_of(
            &format!("/machine.slice/libpod-{ID}.scope/container"),
            Runtime::Podman,
        );
        container_of(
            &format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
            Runtime::Podman,
        );
        container_of(&format!("/libpod_parent/libpod-{ID}"), Runtime::Podman);
        container_of(
            &format!("/system.slice/containerd.service/cri-containerd-{ID}.scope"),
            Runtime::Containerd,
        );
    }

    #[test]
    fn kubernetes_containers_carry_their_pod() {
        let systemd = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/\
             cri-containerd-{ID}.scope",
            POD.replace('-', "_")
        );
        container_of(&systemd, Runtime::Containerd);
        assert_eq!(parsed(&systemd).pod.as_deref(), Some(POD));
        let crio = format!(
            "/kubepods.slice/kubepods-pod{}.slice/crio-{ID}.scope",
            POD.replace('-', "_")
        );
        container_of(&crio, Runtime::CriO);
        let cgroupfs = format!("/kubepods/besteffort/pod{POD}/{ID}");
        container_of(&cgroupfs, Runtime::Kubernetes);
        assert_eq!(parsed(&cgroupfs).pod.as_deref(), Some(POD));
        // The pod's own cgroup, no container named: the pod.
        let pod = parsed(&format!("/kubepods/burstable/pod{POD}"));
        assert_eq!((pod.kind, pod.name.as_str()), (WorkloadKind::Pod, POD));
    }

    #[test]
    fn units_and_sessions_by_their_innermost_name() {
        let unit = |path: &str| {
            let w = parsed(path);
            (w.kind, w.name)
        };
        assert_eq!(
            unit("/system.slice/nginx.service"),
            (WorkloadKind::Unit, "nginx.service".to_owned())
        );
        assert_eq!(
            unit("/system.slice/postgresql@15-main.service/workers"),
            (WorkloadKind::Unit, "postgresql@15-main.service".to_owned())
        );
        assert_eq!(
            unit("/user.slice/user-1000.slice/session-3.scope"),
            (WorkloadKind::Session, "session-3".to_owned())
        );
        assert_eq!(
            unit("/user.slice/user-1000.slice/user@1000.service/app.slice/app-tmux-1.scope"),
            (
                WorkloadKind::Unit,
                "user@1000.service/app-tmux-1.scope".to_owned()
            )
        );
        assert_eq!(
            unit("/user.slice/user-1000.slice/user@1000.service/session.slice/dbus.service"),
            (
                WorkloadKind::Unit,
                "user@1000.service/dbus.service".to_owned()
            )
        );
        assert_eq!(
            unit("/user.slice/user-1000.slice/user@1000.service"),
            (WorkloadKind::Unit, "user@1000.service".to_owned())
        );
    }

    #[test]
    fn the_root_slices_and_unknown_shapes_are_no_workload() {
        for path in [
            "/",
            "",
            "/system.slice",
            "/user.slice/user-1000.slice",
            "/process_api/e2247d9458ec6a696bd80d922f1b9988",
            // A 64-digit name anywhere but under docker or a pod is anybody's directory.
            &format!("/build/{ID}"),
            "/kubepods/burstable/podnot-a-uid",
        ] {
            assert_eq!(classify(path), None, "{path}");
        }
    }

    #[test]
    fn a_scope_with_a_short_id_is_a_unit_not_a_container() {
        let w = parsed(&format!("/docker-{}.scope", &ID[1..]));
        assert_eq!((w.kind, w.id), (WorkloadKind::Unit, None));
    }

    #[test]
    fn a_container_of_any_hierarchy_wins_over_a_unit_and_the_v2_unit_over_v1_s() {
        let v1 = format!("/docker/{ID}");
        let found = classify_any(["/", v1.as_str()]).unwrap().workload;
        assert_eq!(found.kind, WorkloadKind::Container);
        let shim = "/system.slice/containerd.service";
        let found = classify_any([shim, v1.as_str()]).unwrap().workload;
        assert_eq!(found.kind, WorkloadKind::Container);
        let found = classify_any([shim, "/system.slice/other.service"])
            .unwrap()
            .workload;
        assert_eq!(found.name, "containerd.service");
        assert_eq!(classify_any(["/", "/"]), None);
    }
}
