//! A small tick report for the widget tests: a suspect burner, two `worker`s sharing a comm and a
//! cgroup, and a sleeper whose memory was never read.

use std::collections::BTreeMap;

use crate::report::{
    App, AppCpu, AppIo, AppKind, AppSched, AppSyscalls, Blame, Confidence, Cpu, Drops, Host, Io,
    Mem, Net, Process, Report, Resource, SCHEMA, Samples, Sched, Suspect, Syscalls, Unit,
};

const MIB: u64 = 1024 * 1024;

fn process(pid: u32, comm: &str, cores: f64, rss: Option<u64>) -> Process {
    Process {
        pid,
        start_time: 1,
        comm: comm.to_owned(),
        ppid: Some(1),
        exe: None,
        cmdline: Vec::new(),
        cgroup: Some(format!("/{comm}.service")),
        workload: None,
        exited: false,
        oom_killed: None,
        spawned: 0,
        cpu: Cpu {
            samples: 10,
            on_cpu_ns: (cores * 2e9) as u64,
            cores,
            host_percent: cores * 50.0,
            hottest: None,
            in_syscalls: None,
        },
        sched: Some(Sched {
            runq_wait_ns: (cores * 400e6) as u64,
            runq_waits: 3,
            runq_p50_ns: 1,
            runq_p99_ns: 1,
            voluntary_switches: 0,
            involuntary_switches: 0,
            ctx_switches: 3,
            offcpu_ns: None,
        }),
        syscalls: Some(Syscalls {
            count: 10,
            per_second: 5.0 + f64::from(pid),
            errors: 0,
            time_ns: 0,
            top: Vec::new(),
        }),
        net: Some(Net {
            tx_bytes: u64::from(pid),
            rx_bytes: 0,
            bytes_per_second: 0.0,
        }),
        mem: rss.map(|rss| Mem {
            rss_bytes: Some(rss),
            minor_faults: 0,
            major_faults: 0,
            peak_rss_bytes: None,
            rss_growth_bytes: None,
        }),
        io: Some(Io {
            read_bytes: (cores * 2090.0) as u64,
            write_bytes: 0,
            writeback_bytes: 0,
            ops: 1,
            p99_latency_ns: 0,
            bytes_per_second: 0.0,
        }),
    }
}

fn app(name: &str, kind: AppKind, processes: u64, cores: f64) -> App {
    App {
        name: name.to_owned(),
        kind,
        id: None,
        processes,
        exited: 0,
        cpu: AppCpu {
            on_cpu_ns: 0,
            cores,
            samples: 0,
        },
        sched: Some(AppSched {
            runq_wait_ns: 0,
            ctx_switches: 0,
        }),
        syscalls: Some(AppSyscalls {
            count: 20,
            errors: 0,
        }),
        net: None,
        io: Some(AppIo {
            read_bytes: 0,
            write_bytes: 0,
            ops: 0,
            bytes_per_second: 0.0,
        }),
    }
}

/// A 2 s tick on 2 CPUs.
pub fn report() -> Report {
    let mut worker_b = process(301, "worker", 0.1, Some(MIB));
    worker_b.cgroup = Some("/worker.service".to_owned());
    Report {
        schema: SCHEMA.to_owned(),
        profiler_version: "0.1.0".to_owned(),
        started_at: "2026-11-24T07:00:00Z".to_owned(),
        hostname: "h".to_owned(),
        duration_s: 2.0,
        cpus: 2,
        frequency_hz: 49,
        samples: Samples {
            total: 100,
            idle: 40,
            kernel_only: 0,
        },
        drops: Drops::default(),
        signals: BTreeMap::new(),
        host: Host {
            busy_cores: 1.3,
            busy_percent: 65.0,
            processes_seen: 4,
            context_switches: 100,
            busiest_disk: None,
            pressure: None,
        },
        processes: vec![
            process(4242, "burner", 0.98, Some(2 * MIB)),
            process(300, "worker", 0.2, Some(2 * MIB)),
            worker_b,
            process(77, "sleeper", 0.01, None),
        ],
        blame: vec![Blame {
            culprit_pid: 4242,
            culprit_comm: "burner".to_owned(),
            victim_pid: 300,
            victim_comm: "worker".to_owned(),
            delay_ns: 80_000_000,
        }],
        apps: vec![
            app("burner", AppKind::Comm, 1, 0.98),
            app("worker", AppKind::Comm, 2, 0.3),
            app("sleeper", AppKind::Comm, 1, 0.01),
            app("/burner.service", AppKind::Cgroup, 1, 0.98),
            app("/worker.service", AppKind::Cgroup, 2, 0.3),
        ],
        suspects: vec![Suspect {
            rank: 1,
            pid: 4242,
            comm: "burner".to_owned(),
            resource: Resource::Cpu,
            value: 0.98,
            unit: Unit::Cores,
            reason: "burns a core".to_owned(),
            confidence: Confidence::Clear,
            app: None,
        }],
        verdict: "burner (pid 4242) is eating 0.98 cores".to_owned(),
        own_cost: None,
        unwinding: None,
        timeline: crate::report::Timeline::default(),
        incident: None,
        victim: None,
        victims: Vec::new(),
    }
}
