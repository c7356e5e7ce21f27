//! The report's unit tests: a full sample report against the schema and its round trip.

use super::*;

fn sample() -> Report {
    Report {
        schema: SCHEMA.to_owned(),
        profiler_version: "0.1.0".to_owned(),
        started_at: "2026-11-24T07:00:00Z".to_owned(),
        hostname: "h".to_owned(),
        duration_s: 5.0,
        cpus: 2,
        frequency_hz: 99,
        samples: Samples {
            total: 990,
            idle: 400,
            kernel_only: 3,
        },
        drops: Drops::default(),
        signals: [(Signal::Cpu, SignalState::On)].into(),
        host: Host {
            busy_cores: 1.0,
            busy_percent: 50.0,
            processes_seen: 1,
            context_switches: 10,
            busiest_disk: Some(DiskBusy {
                device: "vda".to_owned(),
                busy_percent: 12.5,
            }),
            pressure: Some(HostPressure {
                cpu_some_percent: 40.0,
                io_some_percent: 2.5,
                ..HostPressure::default()
            }),
        },
        processes: vec![Process {
            pid: 10,
            start_time: 5,
            comm: "burner".to_owned(),
            ppid: Some(1),
            exe: Some("/bin/burner".to_owned()),
            cmdline: vec!["burner".to_owned()],
            cgroup: None,
            workload: None,
            exited: false,
            oom_killed: None,
            spawned: 0,
            cpu: Cpu {
                samples: 495,
                on_cpu_ns: 5_000_000_000,
                cores: 1.0,
                host_percent: 50.0,
                hottest: Some(Hottest {
                    function: "spin".to_owned(),
                    percent: 99.0,
                }),
                in_syscalls: None,
            },
            sched: Some(Sched {
                runq_wait_ns: 1_000,
                runq_waits: 2,
                runq_p50_ns: 511,
                runq_p99_ns: 1023,
                voluntary_switches: 1,
                involuntary_switches: 3,
                ctx_switches: 4,
                offcpu_ns: Some(2_000),
            }),
            syscalls: Some(Syscalls {
                count: 10,
                per_second: 2.0,
                errors: 1,
                time_ns: 500,
                top: vec![SyscallTop {
                    name: "getppid".to_owned(),
                    count: 10,
                    errors: 1,
                    time_ns: 500,
                }],
            }),
            net: Some(Net {
                tx_bytes: 10,
                rx_bytes: 0,
                bytes_per_second: 2.0,
            }),
            mem: Some(Mem {
                rss_bytes: Some(4096),
                minor_faults: 3,
                major_faults: 0,
                peak_rss_bytes: Some(8192),
                rss_growth_bytes: Some(-4096),
            }),
            io: Some(Io {
                read_bytes: 0,
                write_bytes: 4096,
                writeback_bytes: 0,
                ops: 1,
                p99_latency_ns: 131_071,
                bytes_per_second: 819.2,
            }),
        }],
        blame: vec![Blame {
            culprit_pid: 10,
            culprit_comm: "burner".to_owned(),
            victim_pid: 11,
            victim_comm: "waker".to_owned(),
            delay_ns: 1_000,
        }],
        apps: vec![App {
            name: "burner".to_owned(),
            kind: AppKind::Comm,
            id: None,
            processes: 1,
            exited: 0,
            cpu: AppCpu {
                on_cpu_ns: 5_000_000_000,
                cores: 1.0,
                samples: 495,
            },
            sched: Some(AppSched {
                runq_wait_ns: 1_000,
                ctx_switches: 4,
            }),
            syscalls: None,
            net: None,
            io: Some(AppIo {
                read_bytes: 0,
                write_bytes: 4096,
                ops: 1,
                bytes_per_second: 819.2,
            }),
        }],
        suspects: vec![Suspect {
            rank: 1,
            pid: 10,
            comm: "burner".to_owned(),
            resource: Resource::Cpu,
            value: 1.0,
            unit: Unit::Cores,
            reason: "used 1.00 cores".to_owned(),
            confidence: Confidence::Clear,
            app: Some(SuspectApp {
                name: "burner".to_owned(),
                kind: AppKind::Comm,
                processes: 2,
                pids: vec![10, 11],
            }),
        }],
        verdict: "Suspect #1: burner".to_owned(),
        own_cost: Some(OwnCost {
            cpu_ns: 50_000_000,
            bpf_run_time_ns: 20_000_000,
            bpf_runs: 100_000,
            bpf_measured_share: 0.1,
            cpu_percent_of_one_core: 1.4,
            peak_rss_bytes: 30 << 20,
            sampler_ns_per_sample: Some(2400.0),
            phases_ms: Some(Phases {
                startup: 10.0,
                attach: 400.0,
                sampling: 1000.0,
                collect: 5.0,
                detach: 80.0,
                symbolize: 20.0,
                analyze: 2.0,
                render: 60.0,
                total: 1577.0,
            }),
        }),
        unwinding: Some(Unwinding {
            cpu: UnwindMethod::Tables,
            offcpu: UnwindMethod::FramePointers,
            walked_samples: 950,
            before_table_samples: 12,
            fell_back_samples: 3,
            tables: Some(UnwindTables {
                processes: 3,
                objects: 7,
                rows_used: 120_000,
                rows_capacity: 1 << 20,
                memory_bytes: 30 << 20,
                builds: 4,
                build_ms: 35.5,
                slowest_first_table_ms: 140.0,
                objects_without_room: 0,
                processes_without_room: 0,
                unsupported_rows: 6,
            }),
        }),
        timeline: Timeline {
            interval_s: 1.0,
            start_offsets_s: vec![0.0, 1.0, 2.0],
            series: vec![Series {
                pid: 10,
                comm: "burner".to_owned(),
                cpu_cores: vec![1.0, 0.98, 1.0],
                runq_wait_ratio: vec![0.0, 0.02, 0.0],
            }],
        },
        incident: Some(Incident {
            trigger: TriggerKind::Syscalls,
            pid: Some(10),
            comm: Some("burner".to_owned()),
            reason: "spent 0.90 cores inside syscalls".to_owned(),
            fired_at: "2026-01-01T10:00:02.000Z".to_owned(),
            escalated: vec![Signal::Syscalls, Signal::Net],
        }),
        victim: Some(Victim {
            name: "waker".to_owned(),
            pids: vec![11],
            on_cpu_ns: 400_000_000,
            user_ns: Some(30_000_000),
            system_ns: Some(10_000_000),
            runq_wait_ns: 900_000_000,
            blocked_ns: Some(2_700_000_000),
            blocked: vec![
                BlockedPart {
                    why: BlockedWhy::Idle,
                    ns: 2_600_000_000,
                },
                BlockedPart {
                    why: BlockedWhy::Other,
                    ns: 100_000_000,
                },
            ],
            slept_through: 1,
            members: vec![Member {
                pid: 11,
                comm: "waker".to_owned(),
                on_cpu_ns: 40_000_000,
                user_ns: Some(30_000_000),
                system_ns: Some(10_000_000),
                runq_wait_ns: 900_000_000,
                blocked_ns: Some(2_700_000_000),
                exited: false,
            }],
            culprits: vec![
                Culprit {
                    pid: 10,
                    comm: "burner".to_owned(),
                    cause: Cause::Cpu,
                    delay_ns: 800_000_000,
                },
                Culprit {
                    pid: 12,
                    comm: "dd".to_owned(),
                    cause: Cause::Io,
                    delay_ns: 50_000_000,
                },
            ],
            cgroup_pressure: vec![CgroupPressure {
                cgroup: "/system.slice/waker.service".to_owned(),
                pressure: HostPressure {
                    cpu_some_percent: 22.5,
                    ..HostPressure::default()
                },
            }],
            delayacct: Some(VictimDelays {
                blkio_ns: 60_000_000,
                turned_on: true,
                uncovered_threads: 0,
            }),
            verdict: "waker (pid 11) was slowed: it waited 0.90 s for a CPU".to_owned(),
        }),
        victims: Vec::new(),
    }
}

#[test]
fn documented_schema_accepts_what_we_write_and_rejects_drift() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/report.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut recorded = sample();
    recorded.victims = recorded.victim.clone().into_iter().collect();
    let report = serde_json::to_value(recorded).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");

    let mut drifted = report.clone();
    drifted["processes"][0]["cpu"]["unexpected"] = 1.into();
    assert!(!validator.is_valid(&drifted));
    let mut wrong_version = report;
    wrong_version["schema"] = "profiler.report/v0".into();
    assert!(!validator.is_valid(&wrong_version));
}

#[test]
fn round_trips_through_json() {
    let report = sample();
    let text = serde_json::to_string_pretty(&report).unwrap();
    assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), report);
}
