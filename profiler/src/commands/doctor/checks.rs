//! The host's prerequisites `doctor` checks before any signal: privileges, perf_event limits,
//! tracefs, kernel BTF and the like, each with its status and what it means here.

use crate::probes::{self, btf, tracefs};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

pub fn host_checks() -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(match probes::check_privileges() {
        Ok(()) => Check {
            name: "privileges",
            status: Status::Ok,
            detail: "CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) present".to_owned(),
        },
        Err(err) => Check {
            name: "privileges",
            status: Status::Fail,
            detail: format!("{err:#}"),
        },
    });
    let paranoid = read_trimmed("/proc/sys/kernel/perf_event_paranoid");
    checks.push(Check {
        name: "perf_event_paranoid",
        status: Status::Ok,
        detail: match paranoid {
            Some(level) => format!("{level} (does not limit root or CAP_PERFMON)"),
            None => "not readable; perf events may be unsupported".to_owned(),
        },
    });
    checks.push(match probes::check_frequency(99) {
        Ok(()) => Check {
            name: "sample rate",
            status: Status::Ok,
            detail: format!(
                "kernel allows up to {} Hz",
                read_trimmed("/proc/sys/kernel/perf_event_max_sample_rate").unwrap_or_default()
            ),
        },
        Err(err) => Check {
            name: "sample rate",
            status: Status::Warn,
            detail: format!("{err:#}"),
        },
    });
    checks.push(btf_check());
    checks.push(match tracefs::ensure_mounted() {
        Ok(root) => Check {
            name: "tracefs",
            status: Status::Ok,
            detail: if tracefs::mounted_by_us() {
                format!("{} (was not mounted; mounted it now)", root.display())
            } else {
                format!("{} mounted", root.display())
            },
        },
        Err(reason) => Check {
            name: "tracefs",
            status: Status::Warn,
            detail: reason,
        },
    });
    checks
}

/// Kernel BTF matters only to programs with CO-RE relocations: say whether ours have any, so a
/// host without BTF is not sent chasing a kernel rebuild it does not need.
fn btf_check() -> Check {
    let kernel = btf::KernelBtf::read();
    let source = if kernel.overridden {
        format!("{}={}", btf::BTF_ENV, kernel.path.display())
    } else {
        kernel.path.display().to_string()
    };
    let needed = btf::core_relocations(probes::EBPF_OBJECT);
    match (&kernel.btf, needed) {
        (Ok(_), _) => Check {
            name: "BTF",
            status: Status::Ok,
            detail: format!("{source} present"),
        },
        (Err(reason), Ok(0)) => Check {
            name: "BTF",
            status: Status::Ok,
            detail: format!(
                "missing ({reason}); not needed: no signal depends on it (the eBPF programs have \
                 no CO-RE relocations; field offsets come from tracefs; net uses the classic \
                 socket tracepoints instead of raw ones)"
            ),
        },
        (Err(reason), Ok(relocations)) => Check {
            name: "BTF",
            status: Status::Fail,
            detail: format!(
                "missing ({reason}); every signal needs it ({relocations} CO-RE relocations); \
                 point {} at the kernel's BTF file",
                btf::BTF_ENV
            ),
        },
        (Err(reason), Err(object)) => Check {
            name: "BTF",
            status: Status::Warn,
            detail: format!("missing ({reason}); whether it is needed is unknown: {object}"),
        },
    }
}
