//! Whether this process may load eBPF programs and open system-wide perf events.

use crate::error::usage;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Effective capability set from /proc/self/status (`CapEff:` hex mask). procfs's `Status` is not
/// used: it requires some twenty other fields and fails whole on any it cannot parse, and this
/// check must not refuse to run over a field it does not need.
pub fn effective_caps(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

fn missing(caps: u64) -> Vec<&'static str> {
    let has = |cap: u32| caps & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(cap, _)| !has(cap))
        .map(|(_, name)| name)
        .collect()
}

/// Fails with a usage error (exit 2) naming the missing capabilities and the fix: `sudo` for
/// a user, restoring the capabilities for root whose bounding set lacks them (setpriv, capsh,
/// a container started without them), since sudo cannot give those back.
pub fn check_privileges() -> anyhow::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = effective_caps(&status).unwrap_or(0);
    let missing = missing(caps);
    if missing.is_empty() {
        return Ok(());
    }
    let names = missing.join(" and ");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    Err(usage(if root {
        let cap_add: Vec<String> = missing
            .iter()
            .map(|cap| format!("--cap-add {}", cap.trim_start_matches("CAP_")))
            .collect();
        format!(
            "running as root but without {names} (or CAP_SYS_ADMIN), which loading eBPF \
             programs and sampling every CPU need: capabilities were dropped (setpriv, capsh, a \
             container or unit without them); give them back, e.g. `{}` for a container or \
             `AmbientCapabilities={}` for a unit",
            cap_add.join(" "),
            missing.join(" ")
        )
    } else {
        format!(
            "missing {names} (or CAP_SYS_ADMIN) to load eBPF programs and sample every CPU; \
             run it as root: sudo profiler ..."
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_bpf_perfmon_suffice_nobody_does_not() {
        let root = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        assert!(missing(effective_caps(root).unwrap()).is_empty());
        let bpf_perfmon = (1u64 << CAP_BPF) | (1 << CAP_PERFMON);
        assert!(missing(bpf_perfmon).is_empty());
        let nobody = "CapEff:\t0000000000000000\n";
        assert_eq!(
            missing(effective_caps(nobody).unwrap()),
            ["CAP_BPF", "CAP_PERFMON"]
        );
        assert_eq!(missing(1 << CAP_BPF), ["CAP_PERFMON"]);
    }
}
