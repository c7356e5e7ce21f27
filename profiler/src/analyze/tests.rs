//! The analysis's unit tests: ranking, blame, apps and the verdict on hand-made usage.

use super::*;
use crate::model::ProcessIdentity;

#[test]
fn every_loss_the_kernel_counts_reaches_drops() {
    let mut counters = Counters::default();
    for counter in Counter::ALL {
        counters.0[counter as usize] = 1000 + counter as u64;
    }
    let shown: Vec<u64> = serde_json::to_value(drops(&counters))
        .unwrap()
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let not_losses = [
        Counter::Samples,
        Counter::IdleSamples,
        Counter::NoUserStack,
        Counter::Switches,
        // Shown in `unwinding`: how stacks were walked, not what was lost.
        Counter::Unwound,
        Counter::UnwindNoTable,
        Counter::UnwindFellBack,
    ];
    for counter in Counter::ALL {
        let value = 1000 + counter as u64;
        assert_eq!(
            shown.contains(&value),
            !not_losses.contains(&counter),
            "{counter:?}"
        );
    }
    assert_eq!(shown.len(), Counter::ALL.len() - not_losses.len());
}

fn usage(pid: u32, comm: &str, on_cpu_ns: u64, samples: u64) -> ProcessUsage {
    ProcessUsage {
        on_cpu_ns,
        samples,
        ..ProcessUsage::new(ProcessIdentity {
            start_time: 1,
            exited: false,
            ..ProcessIdentity::exited_unknown(pid, Some(comm))
        })
    }
}

fn facts(only_pids: Vec<u32>) -> RunFacts {
    RunFacts {
        started_at: "2026-01-01T00:00:00Z".to_owned(),
        hostname: "h".to_owned(),
        duration: Duration::from_secs(10),
        cpus: 2,
        frequency_hz: 99,
        counters: Counters::default(),
        mem_total_bytes: Some(8 << 30),
        mem_available_bytes: Some(6 << 30),
        busiest_disk: None,
        pressure: None,
        unwind_tables: None,
        signals: BTreeMap::from([(Signal::Cpu, SignalState::On)]),
        blame: Vec::new(),
        only_pids,
        own_pid: 1,
    }
}

/// `facts` with the sched signal on and `blame` (culprit, victim, ns) measured.
fn blamed(mut facts: RunFacts, blame: &[(u32, u32, u64)]) -> RunFacts {
    facts.signals.insert(Signal::Sched, SignalState::On);
    facts.blame = blame
        .iter()
        .map(|&(culprit_tgid, victim_tgid, ns)| {
            let key = BlameKey {
                culprit_tgid,
                victim_tgid,
            };
            (key, ns)
        })
        .collect();
    facts
}

fn stack(frames: &[&str], n: u64) -> FoldedStack {
    (frames.iter().map(|s| s.to_string()).collect(), n)
}

#[test]
fn hog_ranks_first_idle_process_is_no_suspect() {
    let procs = [
        usage(20, "sleeper", 1_000_000, 0),
        usage(10, "burner", 9_900_000_000, 980),
        usage(30, "bash", 50_000_000, 5),
    ];
    let folded = vec![
        vec![],
        vec![
            stack(&["main", "hot", "sys_write_[k]"], 900),
            stack(&["main", "cold"], 80),
        ],
        vec![],
    ];
    // The shell waited a fifth of a second for the CPU the burner held: harm, twice its line.
    let waited = blamed(facts(vec![]), &[(10, 30, 200_000_000)]);
    let report = build_report(&waited, &procs, &folded);
    assert_eq!(report.processes[0].pid, 10);
    assert_eq!(report.processes[0].cpu.cores, 0.99);
    assert_eq!(report.processes[0].cpu.host_percent, 49.5);
    assert_eq!(
        report.processes[0].cpu.hottest.as_ref().unwrap().function,
        "hot"
    );
    assert_eq!(report.suspects.len(), 1);
    assert_eq!(report.suspects[0].rank, 1);
    assert_eq!(report.suspects[0].pid, 10);
    assert!(
        report
            .verdict
            .starts_with("Suspect #1 (clear): burner (pid 10)"),
        "{}",
        report.verdict
    );
    assert!(report.verdict.contains("hot"));
}

#[test]
fn an_oom_killed_process_is_the_first_suspect_whatever_burned_the_cpu() {
    let mut hog = usage(40, "toucher", 300_000_000, 30);
    hog.identity.exited = true;
    hog.oom_kill = Some(profiler_common::OomKill {
        at: 5,
        rss_kib: 3 << 20,
    });
    let procs = [
        usage(10, "burner", 9_900_000_000, 980),
        hog,
        usage(20, "bash", 10_000_000, 1),
    ];
    let waited = blamed(facts(vec![]), &[(10, 20, 200_000_000)]);
    let report = build_report(&waited, &procs, &[vec![], vec![], vec![]]);
    let first = &report.suspects[0];
    assert_eq!((first.pid, first.resource), (40, Resource::Mem));
    assert_eq!(first.value, 3.0);
    assert_eq!(
        first.reason,
        "was killed by the OOM killer holding 3.00 GiB resident"
    );
    let entry = report.processes.iter().find(|p| p.pid == 40).unwrap();
    assert_eq!(entry.oom_killed.unwrap().rss_bytes, 3 << 30);
    assert!(
        report
            .verdict
            .starts_with("Suspect #1 (clear): toucher (pid 40)"),
        "{}",
        report.verdict
    );
    assert_eq!(report.suspects[1].pid, 10);
}

#[test]
fn own_pid_is_never_a_suspect_and_pid_filter_applies() {
    let procs = [
        usage(1, "profiler", 5_000_000_000, 10),
        usage(10, "burner", 3_000_000_000, 10),
        usage(20, "bash", 10_000_000, 1),
    ];
    // Each made the other wait; the shell waited for the burner.
    let waits = [
        (1, 10, 1_000_000_000),
        (10, 1, 1_000_000_000),
        (10, 20, 200_000_000),
    ];
    let folded = [vec![], vec![], vec![]];
    let report = build_report(&blamed(facts(vec![]), &waits), &procs, &folded);
    assert_eq!(
        report.suspects.iter().map(|s| s.pid).collect::<Vec<_>>(),
        [10]
    );
    let report = build_report(&blamed(facts(vec![10]), &waits), &procs, &folded);
    assert_eq!(report.processes.len(), 1);
}

#[test]
fn quiet_host_says_nothing_stands_out_and_drops_are_mentioned() {
    let mut f = facts(vec![]);
    f.counters.0[Counter::UserStackLost as usize] = 3;
    let report = build_report(&f, &[usage(5, "cron", 10_000_000, 1)], &[vec![]]);
    assert!(report.suspects.is_empty());
    assert!(
        report.verdict.starts_with("Nothing stands out"),
        "{}",
        report.verdict
    );
    assert!(report.verdict.contains("3 stack samples"));
}

#[test]
fn the_verdict_says_how_busy_and_how_stalled_the_host_was() {
    let shell = [usage(5, "bash", 400_000_000, 10)];
    let mut calm = facts(vec![]);
    calm.pressure = Some(HostPressure::default());
    let idle = build_report(&calm, &shell, &[vec![]]);
    assert!(
        idle.verdict
            .starts_with("Nothing stands out: the host is idle (CPU 2 % busy, no pressure)"),
        "{}",
        idle.verdict
    );
    let mut stalled = calm;
    stalled.pressure = Some(HostPressure {
        cpu_some_percent: 40.0,
        memory_some_percent: 2.0,
        ..HostPressure::default()
    });
    let busy = build_report(&stalled, &shell, &[vec![]]);
    assert!(
        busy.verdict
            .contains("the host was CPU 2 % busy; tasks stalled for a CPU 40 % of the time over"),
        "{}",
        busy.verdict
    );
}

#[test]
fn report_json_round_trips() {
    let report = build_report(
        &facts(vec![]),
        &[usage(10, "burner", 9_000_000_000, 9)],
        &[vec![stack(&["a"], 9)]],
    );
    let text = serde_json::to_string(&report).unwrap();
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
    assert!(text.contains("\"schema\":\"profiler.report/v1\""));
}

#[test]
fn culprit_of_others_waiting_is_a_sched_suspect_and_named_in_the_verdict() {
    use profiler_common::BlameKey;
    let mut f = facts(vec![]);
    f.blame = vec![
        (
            BlameKey {
                culprit_tgid: 10,
                victim_tgid: 20,
            },
            3_000_000_000,
        ),
        (
            BlameKey {
                culprit_tgid: 10,
                victim_tgid: 30,
            },
            500_000_000,
        ),
        (
            BlameKey {
                culprit_tgid: 20,
                victim_tgid: 20,
            },
            9_000_000_000,
        ),
    ];
    // A tenth of a core: under the CPU line, the waits are its only charge.
    let mut procs = [
        usage(10, "stress", 1_000_000_000, 0),
        usage(20, "messaging", 1_000_000_000, 0),
        usage(30, "db", 1_000_000_000, 0),
    ];
    let report = build_report(&f, &procs, &[vec![], vec![], vec![]]);
    assert_eq!(report.blame.len(), 2, "self-blame is left out");
    let sched: Vec<&Suspect> = report
        .suspects
        .iter()
        .filter(|s| s.resource == Resource::Sched)
        .collect();
    assert_eq!(sched.len(), 1);
    assert_eq!(sched[0].pid, 10);
    assert_eq!(sched[0].value, 3.5);
    assert!(
        sched[0].reason.contains("delayed 2 processes by 3.5 s"),
        "{}",
        sched[0].reason
    );
    assert!(
        report
            .verdict
            .contains("most delayed: messaging (pid 20), 3.0 s"),
        "{}",
        report.verdict
    );
    let ranks: Vec<u32> = report.suspects.iter().map(|s| s.rank).collect();
    assert_eq!(
        ranks,
        (1..=report.suspects.len() as u32).collect::<Vec<_>>()
    );
    // At 0.9 cores it is a CPU suspect for those waits, charged once.
    procs[0] = usage(10, "stress", 9_000_000_000, 0);
    let report = build_report(&f, &procs, &[vec![], vec![], vec![]]);
    assert_eq!(report.suspects.len(), 1, "{:#?}", report.suspects);
    let cpu = &report.suspects[0];
    assert_eq!((cpu.pid, cpu.resource), (10, Resource::Cpu));
    assert!(
        cpu.reason.ends_with(
            "while 2 other processes waited 3.50 s for a CPU it held, the most delayed messaging (pid 20) 3.00 s"
        ),
        "{}",
        cpu.reason
    );
}

/// A process of `rss_gib` resident now, `first_gib` when the run first read it and `peak_gib`
/// at its peak, on the 8 GiB host of `facts`, with the mem signal on.
fn memory(pid: u32, first_gib: f64, rss_gib: f64, peak_gib: f64) -> ProcessUsage {
    let bytes = |gib: f64| Some((gib * (1u64 << 30) as f64) as u64);
    let mut p = usage(pid, "memhog", 10_000_000, 1);
    p.identity.first_rss_bytes = bytes(first_gib);
    p.identity.rss_bytes = bytes(rss_gib);
    p.identity.peak_rss_bytes = bytes(peak_gib);
    p
}

fn mem_suspects(procs: &[ProcessUsage], memory_some_percent: Option<f64>) -> Vec<Suspect> {
    let mut facts = facts(vec![]);
    facts.signals.insert(Signal::Mem, SignalState::On);
    facts.pressure = memory_some_percent.map(|percent| HostPressure {
        memory_some_percent: percent,
        ..HostPressure::default()
    });
    let folded = vec![vec![]; procs.len()];
    build_report(&facts, procs, &folded).suspects
}

#[test]
fn memory_is_a_suspect_for_harm_growth_or_a_large_share_under_pressure() {
    // Grew by 2 GiB in the run: a suspect with no pressure at all.
    let grower = mem_suspects(&[memory(7, 0.5, 2.5, 2.5)], Some(0.0));
    assert_eq!(grower.len(), 1, "{grower:?}");
    assert_eq!((grower[0].pid, grower[0].resource), (7, Resource::Mem));
    assert_eq!(grower[0].value, 2.5);
    assert!(
        grower[0].reason.starts_with(
            "grew by 2.00 GiB in 10.0 s (205 MiB a second) to 2.50 GiB resident (31% of the host's memory); at that rate it fills the 6.0 GiB still available in 1 min"
        ),
        "{}",
        grower[0].reason
    );
    // Holds 3 of 8 GiB, unchanged, nobody stalled for memory: harmless.
    assert!(mem_suspects(&[memory(7, 3.0, 3.0, 3.0)], Some(0.2)).is_empty());
    // The same while tasks stalled for memory a fifth of the time: a suspect, and why.
    let held = mem_suspects(&[memory(7, 3.0, 3.0, 3.5)], Some(20.0));
    assert!(
        held[0].reason.starts_with(
            "holds 3.00 GiB resident (38% of the host's memory), 3.50 GiB at its peak while tasks stalled for memory 20% of the time"
        ),
        "{}",
        held[0].reason
    );
    // No PSI to tell: named, saying so.
    let unknown = mem_suspects(&[memory(7, 3.0, 3.0, 3.0)], None);
    assert!(
        unknown[0].reason.contains("keeps no memory pressure"),
        "{}",
        unknown[0].reason
    );
    // A gibibyte held, a little growth, pressure: below every line.
    assert!(mem_suspects(&[memory(7, 0.9, 1.0, 1.0)], Some(30.0)).is_empty());
}

#[test]
fn a_leak_that_fills_the_available_memory_within_minutes_is_a_suspect() {
    // Half a gibibyte in ten seconds, under the gibibyte line: 51 MiB a second fills the 6 GiB
    // still available in two minutes.
    let leak = mem_suspects(&[memory(7, 0.5, 1.0, 1.0)], Some(0.0));
    assert_eq!(leak.len(), 1, "{leak:?}");
    assert!(
        leak[0]
            .reason
            .ends_with("; at that rate it fills the 6.0 GiB still available in 2 min"),
        "{}",
        leak[0].reason
    );
    // The same growth freed again by the end is a burst, not a leak.
    assert!(mem_suspects(&[memory(7, 0.2, 0.6, 1.0)], Some(0.0)).is_empty());
    // A cache warming up by 100 MiB: under the floor whatever its rate.
    assert!(mem_suspects(&[memory(7, 0.5, 0.6, 0.6)], Some(0.0)).is_empty());
}

#[test]
fn a_flusher_writing_back_others_pages_is_no_io_suspect_but_a_process_named_like_one_is() {
    let writes = |pid: u32, comm: &str, ppid: u32, exe: Option<&str>| {
        let mut p = usage(pid, comm, 1_000_000, 0);
        p.identity.ppid = Some(ppid);
        p.identity.exe = exe.map(str::to_owned);
        p.io = Some(IoStats {
            write_bytes: 300 << 20,
            ops: 100,
            ..IoStats::ZERO
        });
        p
    };
    let mut facts = facts(vec![]);
    facts.signals.insert(Signal::Io, SignalState::On);
    facts.busiest_disk = Some(DiskBusy::new("vda".to_owned(), 0.8));
    let procs = [
        writes(40, "kworker/u8:1-kvfree_rcu_reclaim", 2, None),
        writes(41, "kworker/u8:1-flush-254:0", 1000, Some("/tmp/x")),
    ];
    let report = build_report(&facts, &procs, &[vec![], vec![]]);
    let io: Vec<u32> = report
        .suspects
        .iter()
        .filter(|s| s.resource == Resource::Io)
        .map(|s| s.pid)
        .collect();
    assert_eq!(io, [41], "{:#?}", report.suspects);
}

#[test]
fn a_parent_spawning_fast_is_a_suspect_only_when_its_family_costs_cpu() {
    // Ten seconds, 60 children: six a second, over the rate either way.
    let family = |child_ns: u64| {
        let mut parent = usage(20, "bash", 50_000_000, 5);
        parent.spawned = 60;
        let children = (0..60).map(|i| {
            let mut child = usage(100 + i, "sleep", child_ns, 1);
            child.identity.ppid = Some(20);
            child
        });
        std::iter::once(parent).chain(children).collect::<Vec<_>>()
    };
    let spawners = |usage: &[ProcessUsage]| {
        let folded = vec![Vec::new(); usage.len()];
        let report = build_report(&facts(vec![]), usage, &folded);
        report
            .suspects
            .iter()
            .filter(|s| s.resource == Resource::Spawn)
            .map(|s| s.pid)
            .collect::<Vec<_>>()
    };
    // A shell loop: 1 ms a child, 0.01 cores in all.
    assert_eq!(spawners(&family(1_000_000)), Vec::<u32>::new());
    // A storm: 20 ms a child, 0.125 cores in all.
    assert_eq!(spawners(&family(20_000_000)), vec![20]);
}

/// The suspects of a ten-second run on two CPUs of `procs`, with `blame` (culprit, victim, ns).
fn suspects_of(procs: &[ProcessUsage], blame: &[(u32, u32, u64)]) -> Vec<Suspect> {
    let folded = vec![vec![]; procs.len()];
    build_report(&blamed(facts(vec![]), blame), procs, &folded).suspects
}

#[test]
fn processes_of_one_application_that_do_it_together_are_one_suspect() {
    // Three burners at 0.6 cores each: one CPU suspect, the application, their sum.
    let burners: Vec<ProcessUsage> = (10..13)
        .map(|pid| usage(pid, "burner", 6_000_000_000, 600))
        .collect();
    let found = suspects_of(&burners, &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let app = found[0].app.as_ref().expect("an application suspect");
    assert_eq!((found[0].resource, found[0].value), (Resource::Cpu, 1.8));
    assert_eq!((app.name.as_str(), app.processes), ("burner", 3));
    assert_eq!(app.pids.len(), 3);
    // Six workers at 0.15 cores each, none a suspect alone, 0.9 cores together: harmless on a
    // host with CPUs to spare, a suspect once a shell waited a fifth of a second behind them.
    let mut workers: Vec<ProcessUsage> = (20..26)
        .map(|pid| usage(pid, "worker", 1_500_000_000, 150))
        .collect();
    workers.push(usage(40, "bash", 10_000_000, 1));
    assert_eq!(suspects_of(&workers, &[]), []);
    let waits: Vec<(u32, u32, u64)> = (20..26).map(|pid| (pid, 40, 40_000_000)).collect();
    let found = suspects_of(&workers, &waits);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].value, 0.9);
    assert!(
        found[0].reason.starts_with(
            "used 0.90 cores together (45.0% of 2 CPUs) over 10.0 s, while bash (pid 40) waited 0.24 s for a CPU one of them held"
        ),
        "{}",
        found[0].reason
    );
    // One busy shell among idle ones: the shell is the rogue, not the application.
    let shells = [
        usage(30, "bash", 9_000_000_000, 900),
        usage(31, "bash", 10_000_000, 1),
        usage(32, "bash", 10_000_000, 1),
        usage(40, "sshd", 10_000_000, 1),
    ];
    let found = suspects_of(&shells, &[(30, 40, 200_000_000)]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].pid, found[0].app.is_none()), (30, true));
}

#[test]
fn an_application_that_kept_others_waiting_together_is_one_sched_suspect() {
    let mut procs: Vec<ProcessUsage> = (10..13)
        .map(|pid| usage(pid, "burner", 1_000_000, 1))
        .collect();
    procs.push(usage(9, "waker", 1_000_000, 1));
    // 0.4 s each behind three burners, and waits among the burners, which do not count.
    let blame = [
        (10, 9, 400_000_000),
        (11, 9, 400_000_000),
        (12, 9, 400_000_000),
        (10, 11, 900_000_000),
    ];
    let found = suspects_of(&procs, &blame);
    let sched: Vec<&Suspect> = found
        .iter()
        .filter(|s| s.resource == Resource::Sched)
        .collect();
    assert_eq!(sched.len(), 1, "{found:#?}");
    assert_eq!(sched[0].value, 1.2);
    assert_eq!(sched[0].app.as_ref().map(|a| a.processes), Some(3));
    assert!(
        sched[0].reason.starts_with(
            "delayed 1 other process by 1.2 s in total while they waited for a CPU one of them held; most delayed: waker (pid 9), 1.2 s"
        ),
        "{}",
        sched[0].reason
    );
}

#[test]
fn a_process_that_slowed_a_mostly_asleep_service_to_half_speed_is_a_sched_suspect() {
    // 0.6 s of waiting in a 10 s run: 6 % of it, under the tenth that names anyone by itself.
    let sched_pids = |waker_ran_ns: u64| {
        let procs = [
            usage(10, "hog", 1_000_000_000, 100),
            usage(9, "waker", waker_ran_ns, 1),
        ];
        suspects_of(&procs, &[(10, 9, 600_000_000)])
            .iter()
            .filter(|s| s.resource == Resource::Sched)
            .map(|s| s.pid)
            .collect::<Vec<_>>()
    };
    // The waker ran 0.15 s: it waited four times as long as it ran.
    assert_eq!(sched_pids(150_000_000), [10]);
    // It ran 1 s: the waiting slowed it by three fifths, nobody to name.
    assert_eq!(sched_pids(1_000_000_000), Vec::<u32>::new());
}

#[test]
fn a_busy_process_nobody_waited_for_is_no_cpu_suspect_and_called_harmless() {
    // One core of two for ten seconds; a shell waited 5 ms behind it, a thousandth of a
    // tenth of the run: it found the other CPU.
    let procs = [
        usage(10, "burner", 10_000_000_000, 990),
        usage(20, "bash", 10_000_000, 1),
    ];
    let mut calm = blamed(facts(vec![]), &[(10, 20, 5_000_000)]);
    calm.pressure = Some(HostPressure::default());
    let report = build_report(&calm, &procs, &[vec![], vec![]]);
    assert_eq!(report.suspects, []);
    assert!(
        report.verdict.starts_with(
            "Nothing stands out: the host was CPU 50 % busy, no pressure over 10.0 s, and the busiest process, burner (pid 10), used 1.00 cores, busy but harmless: no other application waited for a CPU it held, and the host had CPUs to spare."
        ),
        "{}",
        report.verdict
    );
    // Waits a hundredth of the run long are harm.
    let waited = blamed(facts(vec![]), &[(10, 20, 100_000_000)]);
    let report = build_report(&waited, &procs, &[vec![], vec![]]);
    assert_eq!(report.suspects.len(), 1, "{:#?}", report.suspects);
    assert!(
        report.verdict.starts_with(
            "Suspect #1 (likely): burner (pid 10) is eating the CPU: it used 1.00 cores (50.0% of 2 CPUs) on average over 10.0 s, 100% of all busy CPU time, while bash (pid 20) waited 0.10 s for a CPU it held."
        ),
        "{}",
        report.verdict
    );
}

#[test]
fn a_process_holding_much_of_a_saturated_host_is_a_cpu_suspect_without_waits() {
    // 1.9 cores of 2: nothing else could have run, whoever wanted to.
    let hog = [usage(10, "hog", 19_000_000_000, 1900)];
    let found = suspects_of(&hog, &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].confidence, report::Confidence::Clear);
    assert!(
        found[0]
            .reason
            .ends_with("while the host's CPUs were 95 % busy, none to spare"),
        "{}",
        found[0].reason
    );
    // A small share of a saturated host is not its doing.
    let mut shared = vec![usage(10, "hog", 16_000_000_000, 1600)];
    shared.push(usage(20, "worker", 3_000_000_000, 300));
    let found = suspects_of(&shared, &[]);
    assert_eq!(
        found.iter().map(|s| s.pid).collect::<Vec<_>>(),
        [10],
        "{found:#?}"
    );
}

#[test]
fn without_blame_a_cpu_stall_names_the_process_holding_much_of_the_host() {
    let procs = [usage(10, "burner", 10_000_000_000, 990)];
    let mut stalled = facts(vec![]);
    stalled.pressure = Some(HostPressure {
        cpu_some_percent: 12.0,
        ..HostPressure::default()
    });
    let report = build_report(&stalled, &procs, &[vec![]]);
    assert_eq!(report.suspects.len(), 1, "{:#?}", report.suspects);
    assert!(
        report.suspects[0]
            .reason
            .contains("while tasks stalled for a CPU 12 % of the time"),
        "{}",
        report.suspects[0].reason
    );
    // With the sched signal on, blame says who waited behind whom, and nobody waited for it.
    let report = build_report(&blamed(stalled, &[]), &procs, &[vec![]]);
    assert_eq!(report.suspects, []);
}

#[test]
fn workers_a_spawn_suspect_started_are_its_doing_not_a_second_suspect() {
    // Ten seconds, 60 workers of 150 ms each from one shell: 0.9 cores together, and a
    // shell that waited a fifth of a second behind them.
    let mut parent = usage(20, "bash", 50_000_000, 5);
    parent.spawned = 60;
    let workers = (0..60).map(|i| {
        let mut worker = usage(100 + i, "burner", 150_000_000, 15);
        worker.identity.ppid = Some(20);
        worker
    });
    let mut procs: Vec<ProcessUsage> = std::iter::once(parent).chain(workers).collect();
    procs.push(usage(30, "sshd", 10_000_000, 1));
    let waits: Vec<(u32, u32, u64)> = (100..160).map(|pid| (pid, 30, 4_000_000)).collect();
    let found = suspects_of(&procs, &waits);
    assert_eq!(
        found
            .iter()
            .map(|s| (s.pid, s.resource))
            .collect::<Vec<_>>(),
        [(20, Resource::Spawn)],
        "{found:#?}"
    );
    assert!(
        found[0].reason.contains(
            "; its children used 0.90 cores together (45.0% of 2 CPUs) over 10.0 s, while sshd (pid 30) waited 0.24 s for a CPU one of them held"
        ),
        "{}",
        found[0].reason
    );
    // Workers of different parents stay an application of their own.
    for (i, worker) in procs[1..61].iter_mut().enumerate() {
        worker.identity.ppid = Some(if i % 2 == 0 { 20 } else { 21 });
    }
    let found = suspects_of(&procs, &waits);
    assert!(
        found
            .iter()
            .any(|s| s.resource == Resource::Cpu && s.app.is_some()),
        "{found:#?}"
    );
}

#[test]
fn a_writer_is_an_io_suspect_for_a_busy_disk_or_io_stalls_not_for_its_rate() {
    // 16 MB/s for ten seconds: all the IO there was.
    let mut writer = usage(10, "writer", 100_000_000, 10);
    writer.io = Some(IoStats {
        write_bytes: 160_000_000,
        ops: 1000,
        ..IoStats::ZERO
    });
    let procs = [writer];
    let io_suspects = |facts: &RunFacts| -> Vec<String> {
        build_report(facts, &procs, &[vec![]])
            .suspects
            .iter()
            .filter(|s| s.resource == Resource::Io)
            .map(|s| s.reason.clone())
            .collect()
    };
    let mut idle_disk = facts(vec![]);
    idle_disk.signals.insert(Signal::Io, SignalState::On);
    idle_disk.busiest_disk = Some(DiskBusy::new("vda".to_owned(), 0.01));
    idle_disk.pressure = Some(HostPressure::default());
    assert_eq!(io_suspects(&idle_disk), Vec::<String>::new());
    let mut busy_disk = idle_disk.clone();
    busy_disk.busiest_disk = Some(DiskBusy::new("vda".to_owned(), 0.8));
    let found = io_suspects(&busy_disk);
    assert!(
        found.len() == 1 && found[0].ends_with("; vda was busy 80% of the run"),
        "{found:?}"
    );
    let mut stalled = idle_disk;
    stalled.pressure = Some(HostPressure {
        io_some_percent: 12.0,
        ..HostPressure::default()
    });
    let found = io_suspects(&stalled);
    assert!(
        found.len() == 1 && found[0].ends_with("; tasks stalled for IO 12 % of the run"),
        "{found:?}"
    );
}

#[test]
fn a_syscall_rate_is_a_suspect_only_at_a_cost_on_cpu() {
    // 20 000 syscalls a second for ten seconds, at 99 Hz sampling.
    let storm = |samples_inside: u64| {
        let mut p = usage(10, "storm", 2_000_000_000, 200);
        p.syscalls = vec![(
            110,
            profiler_common::SyscallStats {
                count: 200_000,
                ..Default::default()
            },
        )];
        p.sampled_syscalls = vec![(110, samples_inside)];
        p
    };
    let mut f = facts(vec![]);
    f.signals.insert(Signal::Syscalls, SignalState::On);
    let named = |p: ProcessUsage| {
        build_report(&f, &[p], &[vec![]])
            .suspects
            .iter()
            .filter(|s| s.resource == Resource::Syscalls)
            .count()
    };
    // 10 samples inside them: 0.01 cores, a cost nobody feels.
    assert_eq!(named(storm(10)), 0);
    // 150 samples: 0.15 cores.
    assert_eq!(named(storm(150)), 1);
}

#[test]
fn network_traffic_is_a_suspect_only_at_a_cost_on_cpu() {
    // 80 MB/s each way for ten seconds.
    let flood = |samples_inside: u64| {
        let mut p = usage(10, "netblast", 1_000_000_000, 100);
        p.net = Some(profiler_common::NetStats {
            tx_bytes: 800_000_000,
            rx_bytes: 800_000_000,
            ..Default::default()
        });
        p.sampled_syscalls = vec![(44, samples_inside)];
        p
    };
    let mut f = facts(vec![]);
    f.signals.insert(Signal::Net, SignalState::On);
    let reasons = |p: ProcessUsage| -> Vec<String> {
        build_report(&f, &[p], &[vec![]])
            .suspects
            .iter()
            .filter(|s| s.resource == Resource::Net)
            .map(|s| s.reason.clone())
            .collect()
    };
    // 50 samples inside its sends and receives: 0.05 cores.
    assert_eq!(reasons(flood(50)), Vec::<String>::new());
    let found = reasons(flood(150));
    assert!(
        found.len() == 1 && found[0].ends_with(", 0.15 cores on CPU inside its syscalls"),
        "{found:?}"
    );
}

#[test]
fn a_kernel_thread_waiting_is_no_harm_to_charge() {
    // ksoftirqd waited half a second behind a flood whose packets it runs.
    let mut softirq = usage(24, "ksoftirqd/1", 10_000_000, 1);
    softirq.identity.ppid = Some(2);
    let procs = [usage(10, "netblast", 4_000_000_000, 400), softirq];
    assert_eq!(suspects_of(&procs, &[(10, 24, 500_000_000)]), []);
    // The same wait by a process with an executable is harm.
    let mut named_like_one = usage(24, "ksoftirqd/1", 10_000_000, 1);
    named_like_one.identity.ppid = Some(2);
    named_like_one.identity.exe = Some("/tmp/x".to_owned());
    let procs = [usage(10, "netblast", 4_000_000_000, 400), named_like_one];
    assert_eq!(suspects_of(&procs, &[(10, 24, 500_000_000)]).len(), 1);
}

#[test]
fn the_profiler_is_never_called_the_busiest_process() {
    // The profiler (pid 1 in these facts) used more than the shell.
    let procs = [
        usage(1, "profiler", 200_000_000, 20),
        usage(5, "bash", 10_000_000, 1),
    ];
    let report = build_report(&facts(vec![]), &procs, &[vec![], vec![]]);
    assert!(
        report.verdict.contains("the busiest process, bash (pid 5)"),
        "{}",
        report.verdict
    );
}
