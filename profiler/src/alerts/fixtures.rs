//! Tick reports for the alert tests: a quiet one-second report with every signal on, and
//! processes, applications and blame pairs to put in it.

use crate::report::{
    App, AppCpu, AppIo, AppKind, AppSched, AppSyscalls, Blame, Cpu, Drops, Host, Hottest, Io, Mem,
    Net, Process, Report, Samples, Sched, Syscalls,
};

/// A report of one tick of `secs` on a 4-CPU host, every signal on, nothing in it yet.
pub fn report(secs: f64) -> Report {
    Report {
        schema: crate::report::SCHEMA.to_owned(),
        profiler_version: "0.1.0".to_owned(),
        started_at: "2026-01-01T10:00:00Z".to_owned(),
        hostname: "h".to_owned(),
        duration_s: secs,
        cpus: 4,
        frequency_hz: 19,
        samples: Samples {
            total: 0,
            idle: 0,
            kernel_only: 0,
        },
        drops: Drops::default(),
        signals: crate::signals::Signal::all()
            .map(|signal| (signal, crate::signals::SignalState::On))
            .collect(),
        host: Host {
            busy_cores: 0.0,
            busy_percent: 0.0,
            processes_seen: 0,
            context_switches: 0,
            busiest_disk: None,
            pressure: None,
        },
        processes: Vec::new(),
        blame: Vec::new(),
        apps: Vec::new(),
        suspects: Vec::new(),
        verdict: String::new(),
        own_cost: None,
        unwinding: None,
        timeline: crate::report::Timeline::default(),
        incident: None,
        victim: None,
        victims: Vec::new(),
    }
}

/// A live process using `cores` on a 4-CPU host over a one-second tick, its other figures at
/// distinct values the figure tests check.
pub fn process(pid: u32, comm: &str, cores: f64) -> Process {
    Process {
        pid,
        start_time: u64::from(pid) * 10,
        comm: comm.to_owned(),
        ppid: Some(1),
        exe: None,
        cmdline: vec![comm.to_owned()],
        cgroup: None,
        workload: None,
        exited: false,
        oom_killed: None,
        spawned: 7,
        cpu: Cpu {
            samples: 19,
            on_cpu_ns: (cores * 1e9) as u64,
            cores,
            host_percent: cores / 4.0 * 100.0,
            hottest: Some(Hottest {
                function: format!("{comm}_hot"),
                percent: 90.0,
            }),
            in_syscalls: None,
        },
        sched: Some(Sched {
            runq_wait_ns: 250_000_000,
            runq_waits: 10,
            runq_p50_ns: 1023,
            runq_p99_ns: 4095,
            voluntary_switches: 1,
            involuntary_switches: 1,
            ctx_switches: 2,
            offcpu_ns: None,
        }),
        syscalls: Some(Syscalls {
            count: 3000,
            per_second: 3000.0,
            errors: 30,
            time_ns: 0,
            top: Vec::new(),
        }),
        net: Some(Net {
            tx_bytes: 1_000,
            rx_bytes: 2_000,
            bytes_per_second: 3_000.0,
        }),
        mem: Some(Mem {
            rss_bytes: Some(1 << 20),
            minor_faults: 100,
            major_faults: 5,
            peak_rss_bytes: None,
            rss_growth_bytes: None,
        }),
        io: Some(Io {
            read_bytes: 4_000,
            write_bytes: 6_000,
            writeback_bytes: 0,
            ops: 3,
            p99_latency_ns: 0,
            bytes_per_second: 10_000.0,
        }),
    }
}

/// An application of `processes` processes, with `cores` and the given IO.
pub fn app(kind: AppKind, name: &str, cores: f64) -> App {
    App {
        name: name.to_owned(),
        kind,
        id: None,
        processes: 2,
        exited: 0,
        cpu: AppCpu {
            on_cpu_ns: (cores * 1e9) as u64,
            cores,
            samples: 38,
        },
        sched: Some(AppSched {
            runq_wait_ns: 500_000_000,
            ctx_switches: 4,
        }),
        syscalls: Some(AppSyscalls {
            count: 6000,
            errors: 60,
        }),
        net: None,
        io: Some(AppIo {
            read_bytes: 8_000,
            write_bytes: 12_000,
            ops: 6,
            bytes_per_second: 20_000.0,
        }),
    }
}

pub fn blame(culprit: (u32, &str), victim: (u32, &str), delay_ns: u64) -> Blame {
    Blame {
        culprit_pid: culprit.0,
        culprit_comm: culprit.1.to_owned(),
        victim_pid: victim.0,
        victim_comm: victim.1.to_owned(),
        delay_ns,
    }
}
