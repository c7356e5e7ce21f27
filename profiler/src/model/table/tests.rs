//! Process table: pid reuse, exec renames, final splits between incarnations.
use std::cell::RefCell;

use profiler_common::StackKey;

use super::*;

/// A fake /proc: pid -> (start time, comm); changes between observations model reuse.
#[derive(Default)]
struct FakeProc(RefCell<HashMap<u32, (u64, &'static str)>>);

impl FakeProc {
    fn set(&self, pid: u32, start: u64, comm: &'static str) {
        self.0.borrow_mut().insert(pid, (start, comm));
    }
    fn kill(&self, pid: u32) {
        self.0.borrow_mut().remove(&pid);
    }
}

impl ProcSource for FakeProc {
    fn start_time(&self, pid: u32) -> Option<u64> {
        self.0.borrow().get(&pid).map(|&(start, _)| start)
    }
    fn identity(&self, pid: u32) -> Option<ProcessIdentity> {
        let (start, comm) = *self.0.borrow().get(&pid)?;
        Some(ProcessIdentity {
            start_time: start,
            comm: comm.to_owned(),
            exited: false,
            ..ProcessIdentity::exited_unknown(pid, None)
        })
    }
    fn cgroup_paths(&self) -> HashMap<u64, String> {
        HashMap::from([(77, "/app.slice/rogue.service".to_owned())])
    }
}

fn snap(on_cpu: &[(u32, u64)]) -> ProcessSnapshot {
    ProcessSnapshot {
        on_cpu_ns: on_cpu.iter().copied().collect(),
        comms: HashMap::from([(7, "ghost".to_owned())]),
        execs: HashMap::new(),
        exec_files: HashMap::new(),
        cgroups: HashMap::from([(7, 77)]),
    }
}

fn observe(
    table: &mut ProcessTable,
    snapshot: &ProcessSnapshot,
    proc: &FakeProc,
    stacks: HashMap<StackPair, u64>,
) {
    let result: Result<(), ()> = table.observe(snapshot, proc, |_| Ok(stacks.clone()));
    result.unwrap();
}

/// A window's figures: the given sample counts, and forks where 7 is a process started by 11
/// and 12 a thread of 11.
fn counts(on_cpu: &[(u32, u64)], stacks: &[(StackKey, u64)]) -> Cumulative {
    let mut figures = Cumulative {
        stack_counts: stacks.iter().copied().collect(),
        ..Cumulative::default()
    };
    figures.processes = snap(on_cpu);
    figures
}

static FORKS: std::sync::LazyLock<Lifecycle> = std::sync::LazyLock::new(|| Lifecycle {
    forks: HashMap::from([(7, (11, 1)), (12, (11, 2))]),
    oom_kills: HashMap::new(),
});

fn finish(table: ProcessTable, figures: &Cumulative, proc: &FakeProc) -> Vec<ProcessUsage> {
    let stretch = Stretch {
        figures,
        lifecycle: &FORKS,
    };
    table.finish(&stretch, proc)
}

fn key(tgid: u32, user: i32) -> StackKey {
    StackKey {
        tgid,
        user_stack_id: user,
        kernel_stack_id: -1,
    }
}

#[test]
fn pid_reuse_splits_into_two_processes() {
    let proc = FakeProc::default();
    proc.set(42, 100, "first");
    let mut table = ProcessTable::default();
    observe(&mut table, &snap(&[(42, 1_000)]), &proc, HashMap::new());
    proc.set(42, 900, "second");
    observe(
        &mut table,
        &snap(&[(42, 3_000)]),
        &proc,
        HashMap::from([((1, -1), 10)]),
    );
    let usage = finish(table, &counts(&[(42, 5_000)], &[(key(42, 1), 25)]), &proc);
    assert_eq!(usage.len(), 2);
    assert_eq!(usage[0].identity.comm, "first");
    assert!(usage[0].identity.exited);
    assert_eq!((usage[0].on_cpu_ns, usage[0].samples), (3_000, 10));
    assert_eq!(usage[1].identity.comm, "second");
    assert!(!usage[1].identity.exited);
    assert_eq!((usage[1].on_cpu_ns, usage[1].samples), (2_000, 15));
}

#[test]
fn process_gone_before_proc_read_keeps_kernel_comm() {
    let proc = FakeProc::default();
    let table = ProcessTable::default();
    let usage = finish(table, &counts(&[(7, 2_000)], &[(key(7, 3), 2)]), &proc);
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].identity.comm, "ghost");
    assert!(usage[0].identity.exited);
    assert_eq!(usage[0].samples, 2);
    // Parent from the fork, cgroup from the kernel's id: both outlive the process.
    assert_eq!(usage[0].identity.ppid, Some(11));
    assert_eq!(
        usage[0].identity.cgroup.as_deref(),
        Some("/app.slice/rogue.service")
    );
}

#[test]
fn exit_during_run_is_marked_and_exec_rename_is_picked_up() {
    let proc = FakeProc::default();
    proc.set(10, 5, "sh");
    proc.set(11, 6, "bash");
    let mut table = ProcessTable::default();
    observe(
        &mut table,
        &snap(&[(10, 1), (11, 1)]),
        &proc,
        HashMap::new(),
    );
    proc.kill(10);
    proc.set(11, 6, "burner");
    let usage = finish(table, &counts(&[(10, 9), (11, 9)], &[]), &proc);
    let by_pid: HashMap<u32, &ProcessUsage> = usage.iter().map(|u| (u.identity.pid, u)).collect();
    assert!(by_pid[&10].identity.exited);
    assert_eq!(by_pid[&10].identity.comm, "sh");
    assert_eq!(by_pid[&11].identity.comm, "burner");
    assert_eq!(by_pid[&11].on_cpu_ns, 9);
    // The fork of 12 made a thread (12 never ran as a process), not a child process.
    assert_eq!(by_pid[&11].spawned, 0);
}

/// bash (pid 50), seen in /proc, exec'd the storm at kernel time 1234, which ran and exited
/// between two looks at /proc; the kernel recorded `file` as its last exec's.
fn gone_after_exec(file: (u64, &str)) -> ProcessIdentity {
    let proc = FakeProc::default();
    proc.set(50, 9, "bash");
    let mut table = ProcessTable::default();
    observe(&mut table, &snap(&[(50, 1)]), &proc, HashMap::new());
    proc.kill(50);
    let mut last = counts(&[(50, 9)], &[]);
    last.processes.execs.insert(50, (1234, "storm".to_owned()));
    last.processes
        .exec_files
        .insert(50, (file.0, file.1.to_owned()));
    finish(table, &last, &proc).remove(0).identity
}

#[test]
fn exec_after_discovery_renames_even_when_the_process_is_gone() {
    // The file of an earlier exec is not this one's.
    let identity = gone_after_exec((1000, "/bin/bash"));
    assert_eq!(identity.comm, "storm");
    assert_eq!(identity.exe, None);
    assert!(identity.exited);
    // The exec's own file names it.
    let identity = gone_after_exec((1234, "./storm"));
    assert_eq!(identity.exe.as_deref(), Some("./storm"));
}

#[test]
fn the_executed_file_names_the_exe_of_a_process_gone_before_proc_was_read() {
    let proc = FakeProc::default();
    let mut table = ProcessTable::default();
    // pid 7 exec'd /usr/bin/worker, ran 50 ms and was gone before /proc was read; the exec's
    // own record names it, a file recorded at another time does not.
    let mut first = snap(&[(7, 1_000)]);
    first
        .exec_files
        .insert(7, (1234, "/usr/bin/worker".to_owned()));
    observe(&mut table, &first, &proc, HashMap::new());
    let usage = finish(table, &counts(&[(7, 1_000)], &[]), &proc);
    // No exec seen: the file is an earlier process's of this pid.
    assert_eq!(usage[0].identity.exe, None);

    let mut table = ProcessTable::default();
    first.execs.insert(7, (1234, "worker".to_owned()));
    observe(&mut table, &first, &proc, HashMap::new());
    let usage = finish(table, &counts(&[(7, 1_000)], &[]), &proc);
    assert_eq!(usage[0].identity.exe.as_deref(), Some("/usr/bin/worker"));
    assert!(usage[0].identity.exited);
}

#[test]
fn pid_of_a_process_never_seen_in_proc_is_reused_by_a_new_one() {
    let proc = FakeProc::default();
    let mut table = ProcessTable::default();
    // pid 7 lived 50 ms and was gone before /proc was read.
    observe(&mut table, &snap(&[(7, 1_000)]), &proc, HashMap::new());
    // A long-running hog gets pid 7.
    proc.set(7, 500, "hog");
    observe(&mut table, &snap(&[(7, 2_000)]), &proc, HashMap::new());
    let usage = finish(table, &counts(&[(7, 9_000)], &[]), &proc);
    assert_eq!(usage.len(), 2);
    assert_eq!(
        (usage[0].identity.comm.as_str(), usage[0].on_cpu_ns),
        ("ghost", 2_000)
    );
    assert!(usage[0].identity.exited);
    assert_eq!(
        (usage[1].identity.comm.as_str(), usage[1].on_cpu_ns),
        ("hog", 7_000)
    );
    assert!(!usage[1].identity.exited);
}
