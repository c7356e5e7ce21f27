//! Engine tests: hold durations, resolution, subjects that go away, applications, the figures
//! themselves, and the profiler's own pid.

use jiff::Timestamp;

use super::*;
use crate::alerts::fixtures::{app, blame, process, report};
use crate::analyze::figures::Figure;
use crate::report::{AppKind, Report};
use crate::signals::{Signal, SignalState};

const OWN_PID: u32 = 999;

/// 2026-01-01T10:00:00Z plus `millis`.
fn at(millis: i64) -> Timestamp {
    Timestamp::from_millisecond(1_767_261_600_000 + millis).unwrap()
}

fn rule(text: &str) -> Rule {
    Rule::parse(text).unwrap()
}

fn engine(rules: &[&str]) -> Engine {
    Engine::new(rules.iter().map(|text| rule(text)).collect(), OWN_PID)
}

/// A one-second tick holding these processes.
fn tick(processes: Vec<Process>) -> Report {
    Report {
        processes,
        ..report(1.0)
    }
}

fn states(events: &[AlertEvent]) -> Vec<(AlertState, Option<u32>)> {
    events.iter().map(|e| (e.state, e.pid)).collect()
}

#[test]
fn fires_once_the_condition_held_for_the_whole_duration() {
    let mut engine = engine(&["cpu.cores > 0.8 for 2s"]);
    let mut report = tick(vec![process(42, "burner", 0.95), process(7, "idle", 0.01)]);
    report.blame = vec![
        blame((42, "burner"), (8, "small"), 1_000),
        blame((42, "burner"), (7, "idle"), 5_000),
        blame((7, "idle"), (42, "burner"), 9_000),
    ];
    assert!(engine.evaluate(&report, at(1000)).is_empty());
    let events = engine.evaluate(&report, at(2000));
    assert_eq!(states(&events), [(AlertState::Firing, Some(42))]);
    let event = &events[0];
    assert_eq!(event.rule, "cpu.cores > 0.8 for 2s");
    assert_eq!(event.figure, "cpu.cores");
    assert_eq!(event.comm, "burner");
    assert_eq!(event.app, "burner", "no cgroup: the app is the comm");
    assert_eq!(event.value, Some(0.95));
    assert_eq!(event.threshold, 0.8);
    // The condition started holding at the start of the first tick it held in.
    assert_eq!(event.since, "2026-01-01T10:00:00.000Z");
    assert_eq!(event.at, "2026-01-01T10:00:02.000Z");
    assert_eq!(event.evidence.hottest.as_deref(), Some("burner_hot"));
    assert!(event.evidence.top_stacks.is_empty());
    let victims: Vec<(u32, u64)> = event
        .evidence
        .victims
        .iter()
        .map(|v| (v.pid, v.delay_ns))
        .collect();
    assert_eq!(
        victims,
        [(7, 5_000), (8, 1_000)],
        "largest first, culprit only"
    );
    // Firing is said once, not every tick.
    assert!(engine.evaluate(&report, at(3000)).is_empty());
}

#[test]
fn zero_duration_fires_on_the_first_tick_and_jitter_does_not_delay() {
    let mut engine = engine(&["cpu.cores > 0.8"]);
    let report = tick(vec![process(42, "burner", 0.9)]);
    assert_eq!(
        states(&engine.evaluate(&report, at(1000))),
        [(AlertState::Firing, Some(42))]
    );

    // Two ticks a millisecond short of a second each have held for 2s.
    let mut engine = self::engine(&["cpu.cores > 0.8 for 2s"]);
    let short = Report {
        duration_s: 0.999,
        ..report
    };
    assert!(engine.evaluate(&short, at(999)).is_empty());
    assert_eq!(engine.evaluate(&short, at(1998)).len(), 1);
}

#[test]
fn a_tick_below_the_threshold_restarts_the_wait() {
    let mut engine = engine(&["cpu.cores > 0.8 for 2s"]);
    let hot = tick(vec![process(42, "burner", 0.9)]);
    let cool = tick(vec![process(42, "burner", 0.5)]);
    assert!(engine.evaluate(&hot, at(1000)).is_empty());
    assert!(engine.evaluate(&cool, at(2000)).is_empty());
    assert!(engine.evaluate(&hot, at(3000)).is_empty());
    let events = engine.evaluate(&hot, at(4000));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].since, "2026-01-01T10:00:02.000Z");
}

#[test]
fn resolves_when_the_condition_stops_holding() {
    let mut engine = engine(&["cpu.cores > 0.8 for 1s"]);
    let hot = tick(vec![process(42, "burner", 0.9)]);
    let cool = tick(vec![process(42, "burner", 0.2)]);
    assert_eq!(engine.evaluate(&hot, at(1000)).len(), 1);
    let events = engine.evaluate(&cool, at(2000));
    assert_eq!(states(&events), [(AlertState::Resolved, Some(42))]);
    assert_eq!(events[0].value, Some(0.2));
    assert_eq!(
        events[0].since, "2026-01-01T10:00:00.000Z",
        "since of the firing"
    );
    assert_eq!(events[0].at, "2026-01-01T10:00:02.000Z");
    assert!(engine.evaluate(&cool, at(3000)).is_empty());
    assert!(engine.states.is_empty());
    // Hot again: a new alert, after the whole duration again.
    assert_eq!(engine.evaluate(&hot, at(4000)).len(), 1);
}

#[test]
fn resolves_when_the_process_is_gone_or_exited() {
    let mut engine = engine(&["cpu.cores > 0.8"]);
    let hot = tick(vec![process(42, "burner", 0.9), process(43, "other", 0.9)]);
    assert_eq!(engine.evaluate(&hot, at(1000)).len(), 2);

    let mut exited = process(43, "other", 0.9);
    exited.exited = true;
    let events = engine.evaluate(&tick(vec![exited]), at(2000));
    assert_eq!(
        states(&events),
        [
            (AlertState::Resolved, Some(43)),
            (AlertState::Resolved, Some(42))
        ]
    );
    // Exited: still in the report, so its figure is known.
    assert_eq!(events[0].value, Some(0.9));
    // Gone: nothing known this tick.
    assert_eq!(events[1].value, None);
    assert_eq!(events[1].comm, "burner");
    assert_eq!(events[1].evidence, Evidence::default());
    assert!(engine.states.is_empty());
}

#[test]
fn pending_state_of_a_subject_not_seen_is_dropped() {
    let mut engine = engine(&["cpu.cores > 0.8 for 2s"]);
    let hot = tick(vec![process(42, "burner", 0.9)]);
    assert!(engine.evaluate(&hot, at(1000)).is_empty());
    assert_eq!(engine.states.len(), 1);
    assert!(engine.evaluate(&tick(vec![]), at(2000)).is_empty());
    assert!(
        engine.states.is_empty(),
        "bounded: nothing kept for the absent"
    );
    assert!(engine.evaluate(&hot, at(3000)).is_empty());
    assert_eq!(engine.evaluate(&hot, at(4000)).len(), 1);
}

#[test]
fn a_reused_pid_is_a_new_subject() {
    let mut engine = engine(&["cpu.cores > 0.8"]);
    assert_eq!(
        engine
            .evaluate(&tick(vec![process(42, "burner", 0.9)]), at(1000))
            .len(),
        1
    );
    let mut reborn = process(42, "burner", 0.9);
    reborn.start_time += 1;
    let events = engine.evaluate(&tick(vec![reborn]), at(2000));
    assert_eq!(
        states(&events),
        [
            (AlertState::Firing, Some(42)),
            (AlertState::Resolved, Some(42))
        ]
    );
    assert_eq!(events[1].value, None, "the old one is gone");
}

#[test]
fn never_fires_on_the_profilers_own_pid() {
    let mut engine = engine(&["cpu.cores > 0.1"]);
    let report = tick(vec![process(OWN_PID, "profiler", 0.9)]);
    assert!(engine.evaluate(&report, at(1000)).is_empty());
    assert!(engine.states.is_empty());
}

#[test]
fn unmeasured_figures_never_fire() {
    let mut engine = engine(&[
        "net.bytes_rate < 1",
        "spawn.rate >= 0",
        "syscalls.error_rate >= 0",
        "mem.rss_bytes < 1",
    ]);
    let mut report = tick(vec![process(42, "quiet", 0.0)]);
    report.signals.insert(Signal::Net, SignalState::Off);
    report.signals.remove(&Signal::Processes);
    report.signals.insert(
        Signal::SyscallTime,
        SignalState::Unavailable("no exit hook".to_owned()),
    );
    report.processes[0].mem.as_mut().unwrap().rss_bytes = None;
    report.processes[0].net = None;
    assert!(engine.evaluate(&report, at(1000)).is_empty());
    assert!(engine.states.is_empty());
}

#[test]
fn a_report_without_length_changes_nothing() {
    let mut engine = engine(&["cpu.cores > 0.8 for 2s"]);
    let hot = tick(vec![process(42, "burner", 0.9)]);
    assert!(engine.evaluate(&hot, at(1000)).is_empty());
    let empty = Report {
        duration_s: 0.0,
        ..tick(vec![])
    };
    assert!(engine.evaluate(&empty, at(1500)).is_empty());
    assert_eq!(engine.states.len(), 1, "kept through a tick of no length");
    assert_eq!(engine.evaluate(&hot, at(2000)).len(), 1);
}

#[test]
fn process_figures_are_per_tick() {
    // Two seconds, so every rate is half its count.
    let mut report = Report {
        processes: vec![process(42, "rogue", 1.5), process(7, "victim", 0.1)],
        ..report(2.0)
    };
    report.blame = vec![
        blame((42, "rogue"), (7, "victim"), 600_000_000),
        blame((42, "rogue"), (8, "other"), 400_000_000),
        blame((7, "victim"), (42, "rogue"), 100_000_000),
    ];
    let tick = Tick::new(&report).unwrap();
    let p = &report.processes[0];
    let value = |figure: Figure| tick.process_value(figure, p).unwrap();
    let expected = [
        (Figure::CpuCores, 1.5),
        (Figure::CpuHostPercent, 37.5),
        (Figure::SchedRunqWaitRatio, 0.125),
        (Figure::SchedDelayCausedRatio, 0.5),
        (Figure::SyscallsRate, 1500.0),
        (Figure::SyscallsErrorRate, 15.0),
        (Figure::IoReadBytesRate, 2000.0),
        (Figure::IoWriteBytesRate, 3000.0),
        (Figure::IoBytesRate, 5000.0),
        (Figure::NetTxBytesRate, 500.0),
        (Figure::NetRxBytesRate, 1000.0),
        (Figure::NetBytesRate, 1500.0),
        (Figure::MemRssBytes, 1_048_576.0),
        (Figure::MemMajorFaultsRate, 2.5),
        (Figure::SpawnRate, 3.5),
    ];
    assert_eq!(expected.len(), Figure::all().count());
    for (figure, want) in expected {
        assert_eq!(value(figure), want, "{}", figure.name());
    }
    // A null sched section with the signal on: never left a CPU, so never waited.
    let mut running = process(9, "spinner", 1.0);
    running.sched = None;
    assert_eq!(
        tick.process_value(Figure::SchedRunqWaitRatio, &running),
        Some(0.0)
    );
}

#[test]
fn app_rules_evaluate_applications() {
    let mut engine = engine(&["app.cpu.cores > 2", "app.sched.delay_caused_ratio > 0.5"]);
    let mut make = process(10, "make", 0.5);
    make.cgroup = Some("/build.slice".to_owned());
    let mut cc = process(11, "cc1", 2.0);
    cc.cgroup = Some("/build.slice".to_owned());
    let mut web = process(20, "nginx", 0.2);
    web.cgroup = Some("/web.slice".to_owned());
    let mut report = tick(vec![cc, make, web]);
    report.apps = vec![
        app(AppKind::Cgroup, "/build.slice", 2.5),
        app(AppKind::Cgroup, "/web.slice", 0.2),
        app(AppKind::Comm, "cc1", 2.0),
    ];
    report.blame = vec![
        blame((11, "cc1"), (20, "nginx"), 400_000_000),
        blame((10, "make"), (20, "nginx"), 300_000_000),
        // Within the application: not others' waiting.
        blame((11, "cc1"), (10, "make"), 900_000_000),
        // A victim gone from the tick's processes is outside the application.
        blame((11, "cc1"), (30, "cron"), 100_000_000),
    ];
    let events = engine.evaluate(&report, at(1000));
    let fired: Vec<(&str, &str, Option<f64>)> = events
        .iter()
        .map(|e| (e.figure.as_str(), e.app.as_str(), e.value))
        .collect();
    assert_eq!(
        fired,
        [
            ("app.cpu.cores", "/build.slice", Some(2.5)),
            ("app.sched.delay_caused_ratio", "/build.slice", Some(0.8)),
            // By command name, make is outside cc1: its 0.9 s count.
            ("app.sched.delay_caused_ratio", "cc1", Some(1.4)),
        ]
    );
    let cpu = &events[0];
    assert_eq!(cpu.pid, None);
    assert_eq!(cpu.comm, "cc1", "the application's busiest process");
    assert_eq!(cpu.evidence.hottest.as_deref(), Some("cc1_hot"));
    let victims: Vec<(u32, u64)> = cpu
        .evidence
        .victims
        .iter()
        .map(|v| (v.pid, v.delay_ns))
        .collect();
    assert_eq!(victims, [(20, 700_000_000), (30, 100_000_000)]);

    // The application leaves the ranking: resolved; the other one keeps firing, silently.
    report.apps.remove(0);
    let events = engine.evaluate(&report, at(2000));
    assert_eq!(
        states(&events),
        [(AlertState::Resolved, None), (AlertState::Resolved, None)]
    );
    assert!(events.iter().all(|e| e.app == "/build.slice"));
    assert_eq!(engine.states.len(), 1);
}

#[test]
fn app_rules_leave_lone_processes_and_the_root_cgroup_to_the_process_rules() {
    let mut engine = engine(&["app.cpu.cores > 1"]);
    let mut report = tick(vec![process(11, "cc1", 2.0), process(12, "cc1", 2.0)]);
    let lone = App {
        processes: 1,
        ..app(AppKind::Comm, "solo", 3.0)
    };
    report.apps = vec![
        lone,
        app(AppKind::Cgroup, "/", 4.0),
        app(AppKind::Comm, "cc1", 4.0),
        // A comm may be "/" too: only the cgroup is the whole host.
        app(AppKind::Comm, "/", 4.0),
    ];
    let events = engine.evaluate(&report, at(1000));
    let fired: Vec<&str> = events.iter().map(|e| e.app.as_str()).collect();
    assert_eq!(fired, ["cc1", "/"]);
}

#[test]
fn app_figures_come_from_the_app_totals() {
    let report = Report {
        cpus: 4,
        ..report(2.0)
    };
    let tick = Tick::new(&report).unwrap();
    let web = app(AppKind::Comm, "nginx", 3.0);
    let value = |figure| tick.app_value(figure, &web);
    assert_eq!(value(Figure::CpuCores), Some(3.0));
    assert_eq!(value(Figure::CpuHostPercent), Some(75.0));
    assert_eq!(value(Figure::SchedRunqWaitRatio), Some(0.25));
    assert_eq!(value(Figure::SchedDelayCausedRatio), Some(0.0));
    assert_eq!(value(Figure::SyscallsRate), Some(3000.0));
    assert_eq!(value(Figure::SyscallsErrorRate), Some(30.0));
    assert_eq!(value(Figure::IoBytesRate), Some(10_000.0));
    assert_eq!(value(Figure::IoReadBytesRate), Some(4_000.0));
    assert_eq!(value(Figure::IoWriteBytesRate), Some(6_000.0));
    assert_eq!(
        value(Figure::NetBytesRate),
        Some(0.0),
        "measured, none sent"
    );
    assert_eq!(value(Figure::NetTxBytesRate), Some(0.0));
    assert_eq!(value(Figure::NetRxBytesRate), Some(0.0));
    for figure in [
        Figure::MemRssBytes,
        Figure::MemMajorFaultsRate,
        Figure::SpawnRate,
    ] {
        assert!(!figure.on_apps());
        assert_eq!(value(figure), None);
    }
}

#[test]
fn rules_are_independent_and_reported_in_order() {
    let mut engine = engine(&[
        "syscalls.rate > 1K",
        "cpu.cores > 0.5",
        "io.bytes_rate > 1MB",
    ]);
    assert_eq!(engine.rules().len(), 3);
    let mut busy = process(42, "busy", 0.9);
    busy.cgroup = Some("/user.slice/x.scope".to_owned());
    let events = engine.evaluate(&tick(vec![busy]), at(1000));
    let rules: Vec<&str> = events.iter().map(|e| e.rule.as_str()).collect();
    assert_eq!(rules, ["syscalls.rate > 1K", "cpu.cores > 0.5"]);
    assert_eq!(events[0].app, "/user.slice/x.scope");
    assert_eq!(events[0].threshold, 1000.0);
}

#[test]
fn a_victim_rule_sums_the_victims_processes_and_names_its_culprits() {
    let victims = vec![VictimSpec::parse("redis-server")];
    let mut engine = engine(&["victim.runq_wait_ratio > 0.3 for 1s"]).with_victims(victims);
    // Each redis-server process waited 0.25 s of the one-second tick (the fixture's figure):
    // neither alone is over 0.3, together they are.
    let mut report = tick(vec![
        process(10, "redis-server", 0.2),
        process(11, "redis-server", 0.2),
        process(42, "burner", 0.95),
    ]);
    report.blame = vec![
        blame((42, "burner"), (10, "redis-server"), 300_000_000),
        blame((42, "burner"), (11, "redis-server"), 100_000_000),
        blame((10, "redis-server"), (11, "redis-server"), 50_000_000),
    ];
    let events = engine.evaluate(&report, at(1000));
    assert_eq!(states(&events), [(AlertState::Firing, None)]);
    let event = &events[0];
    assert_eq!(event.figure, "victim.sched.runq_wait_ratio");
    assert_eq!(
        (event.comm.as_str(), event.app.as_str()),
        ("redis-server", "redis-server")
    );
    assert_eq!(event.value, Some(0.5));
    let culprits: Vec<(u32, u64)> = (event.evidence.culprits.iter())
        .map(|c| (c.pid, c.delay_ns))
        .collect();
    assert_eq!(
        culprits,
        [(42, 400_000_000)],
        "waits among its own are not culprits"
    );
    assert!(event.evidence.victims.is_empty());
    // Gone from the report: resolved.
    let events = engine.evaluate(&tick(vec![process(42, "burner", 0.95)]), at(2000));
    assert_eq!(states(&events), [(AlertState::Resolved, None)]);
}
