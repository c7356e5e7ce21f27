//! Applications: processes grouped by command name, executable, cgroup and workload (container,
//! pod, systemd unit, session), with their summed resources, so "the rogue" can be a whole
//! application of many short processes.

use std::collections::BTreeMap;

use crate::report::{App, AppCpu, AppIo, AppKind, AppSched, AppSyscalls, Net, Process};

/// Groups kept per kind, busiest first.
const MAX_PER_KIND: usize = 20;

pub fn apps(processes: &[Process], secs: f64) -> Vec<App> {
    [
        AppKind::Comm,
        AppKind::Exe,
        AppKind::Cgroup,
        AppKind::Unit,
        AppKind::Container,
        AppKind::Pod,
        AppKind::Session,
    ]
    .into_iter()
    .flat_map(|kind| by(kind, processes, secs))
    .collect()
}

/// The name and id of the application of `kind` that `p` belongs to; `None` when it belongs to
/// none of that kind.
pub fn key(kind: AppKind, p: &Process) -> Option<(&str, Option<&str>)> {
    match kind {
        AppKind::Comm => Some((p.comm.as_str(), None)),
        AppKind::Exe => p.exe.as_deref().map(|exe| (exe, None)),
        AppKind::Cgroup => p.cgroup.as_deref().map(|path| (path, None)),
        AppKind::Unit | AppKind::Container | AppKind::Pod | AppKind::Session => p
            .workload
            .as_ref()
            .filter(|w| AppKind::of(w.kind) == kind)
            .map(|w| (w.name.as_str(), w.id.as_deref())),
    }
}

/// The applications of one kind, busiest first, at most [`MAX_PER_KIND`].
fn by(kind: AppKind, processes: &[Process], secs: f64) -> Vec<App> {
    // By id where there is one: two runtimes' containers may share a name.
    let mut groups: BTreeMap<&str, App> = BTreeMap::new();
    for p in processes {
        let Some((name, id)) = key(kind, p) else {
            continue;
        };
        groups
            .entry(id.unwrap_or(name))
            .or_insert_with(|| empty(name, id, kind))
            .add(p);
    }
    let mut apps: Vec<App> = groups.into_values().collect();
    for app in &mut apps {
        app.cpu.cores = super::round3(app.cpu.on_cpu_ns as f64 / 1e9 / secs);
        if let Some(net) = &mut app.net {
            net.bytes_per_second = super::round3((net.tx_bytes + net.rx_bytes) as f64 / secs);
        }
        if let Some(io) = &mut app.io {
            io.bytes_per_second = super::round3((io.read_bytes + io.write_bytes) as f64 / secs);
        }
    }
    apps.sort_by(|a, b| {
        (b.cpu.on_cpu_ns, b.processes, &a.name).cmp(&(a.cpu.on_cpu_ns, a.processes, &b.name))
    });
    apps.truncate(MAX_PER_KIND);
    apps
}

fn empty(name: &str, id: Option<&str>, kind: AppKind) -> App {
    App {
        name: name.to_owned(),
        kind,
        id: id.map(str::to_owned),
        processes: 0,
        exited: 0,
        cpu: AppCpu {
            on_cpu_ns: 0,
            cores: 0.0,
            samples: 0,
        },
        sched: None,
        syscalls: None,
        net: None,
        io: None,
    }
}

impl App {
    /// Adds one of its processes' figures; rates are set once all are added.
    fn add(&mut self, p: &Process) {
        self.processes += 1;
        self.exited += u64::from(p.exited);
        self.cpu.on_cpu_ns += p.cpu.on_cpu_ns;
        self.cpu.samples += p.cpu.samples;
        if let Some(s) = &p.sched {
            let sched = self.sched.get_or_insert(AppSched {
                runq_wait_ns: 0,
                ctx_switches: 0,
            });
            sched.runq_wait_ns += s.runq_wait_ns;
            sched.ctx_switches += s.ctx_switches;
        }
        if let Some(n) = &p.net {
            let net = self.net.get_or_insert(Net {
                tx_bytes: 0,
                rx_bytes: 0,
                bytes_per_second: 0.0,
            });
            net.tx_bytes += n.tx_bytes;
            net.rx_bytes += n.rx_bytes;
        }
        if let Some(i) = &p.io {
            let io = self.io.get_or_insert(AppIo {
                read_bytes: 0,
                write_bytes: 0,
                ops: 0,
                bytes_per_second: 0.0,
            });
            io.read_bytes += i.read_bytes;
            io.write_bytes += i.write_bytes;
            io.ops += i.ops;
        }
        if let Some(s) = &p.syscalls {
            let syscalls = self.syscalls.get_or_insert(AppSyscalls {
                count: 0,
                errors: 0,
            });
            syscalls.count += s.count;
            syscalls.errors += s.errors;
        }
    }
}
