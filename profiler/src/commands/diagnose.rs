//! `profiler diagnose`: sample the host for a while, then report who ate the CPU and where.

mod phases;

use std::{
    collections::HashSet,
    io::{IsTerminal as _, Write as _},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use self::phases::PhaseClock;
use super::out_dir::OutDir;
use crate::{
    analyze::{self, RunFacts},
    cli::{DiagnoseArgs, Format},
    collect::{
        Collector, cumulative::Cumulative, disks::DiskTicks, kernel_now_ns, own_cost::OwnCostMeter,
    },
    error::usage,
    model::{
        Mapping, ProcessTable, cmdline::Cmdlines, table::FinalCounts, table::Procfs,
        table::StackPair, timeline::TimelineBuilder,
    },
    output, probes,
    report::OwnCost,
    symbolize,
};

/// How often new processes are looked up in /proc while they still live.
const DISCOVERY_INTERVAL: Duration = Duration::from_millis(250);
/// Bucket length of the report's timeline.
const TIMELINE_INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(args: DiagnoseArgs) -> anyhow::Result<()> {
    let mut clock = PhaseClock::start();
    for &pid in &args.pids {
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            return Err(usage(format!(
                "no process with pid {pid} (--pid); list running processes with `ps -e`"
            )));
        }
    }
    probes::check_privileges()?;
    probes::check_frequency(args.frequency)?;
    // Caught from here on: a stop before sampling starts ends the run with one line and exit
    // 130 or 143 (in `attach`), a later one ends the sampling and the report is written.
    let mut stops = super::Stops::install()?;
    let started_at = jiff::Zoned::now();
    let out_path = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!("profiler-{}", started_at.strftime("%Y%m%d-%H%M%S")))
    });
    // Checked writable now, but created only once there is something to write: a run killed
    // while sampling (SIGKILL, OOM) leaves no empty directory behind.
    drop(OutDir::prepare(&out_path)?);
    // Reads kallsyms while the probes load, then the files of what runs while sampling.
    let symbolizer = symbolize::Worker::start()?;
    let mut warmed = HashSet::new();

    let mut probes = super::attach(
        args.frequency,
        &args.signals,
        &format!(
            "for {} (Ctrl-C to stop early)",
            humantime::format_duration(args.duration)
        ),
        &mut stops,
    )
    .await?;
    clock.lap(|p| &mut p.attach);
    let collector = Collector::new(&probes.ebpf);
    let start = Instant::now();
    let mut own_cost = OwnCostMeter::start(&probes.ebpf);
    let disks_before = DiskTicks::now();
    let progress = progress_bar(args.duration);

    let mut table = ProcessTable::default();
    let procfs = Procfs {
        cmdlines: Cmdlines::redacted(args.redact),
    };
    let deadline = tokio::time::sleep(args.duration);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(DISCOVERY_INTERVAL);
    let mut timeline = TimelineBuilder::new(TIMELINE_INTERVAL.as_secs_f64());
    let mut last_reading = (
        Cumulative::read_without_stacks(&collector)?,
        start.elapsed(),
    );
    let mut timeline_tick = tokio::time::interval(TIMELINE_INTERVAL);
    // The first tick of an interval completes at once; the reading above is its base.
    timeline_tick.tick().await;
    loop {
        tokio::select! {
            () = &mut deadline => break,
            () = stops.recv() => break,
            _ = timeline_tick.tick() => {
                let now = (Cumulative::read_without_stacks(&collector)?, start.elapsed());
                push_bucket(&mut timeline, &last_reading, &now);
                last_reading = now;
            }
            _ = tick.tick() => {
                let snapshot = collector.processes()?;
                table.observe(&snapshot, &procfs, |pid| stacks_of(&collector, pid))?;
                symbolizer.warm(new_files(&snapshot, &table, &mut warmed));
                if let Some(bar) = &progress {
                    bar.set_position(start.elapsed().as_millis() as u64);
                    bar.set_message(top_so_far(&snapshot, &table, start.elapsed()));
                }
            }
        }
    }
    let elapsed = start.elapsed();
    let end_ns = kernel_now_ns();
    clock.lap(|p| &mut p.sampling);
    // The last, partial bucket: a run stopped early still shows its final moments.
    let now = (Cumulative::read_without_stacks(&collector)?, elapsed);
    if now.1 > last_reading.1 + TIMELINE_INTERVAL / 10 {
        push_bucket(&mut timeline, &last_reading, &now);
    }
    let cost = own_cost.measure(&probes.ebpf, elapsed);
    let busiest_disk = DiskTicks::now().busiest_since(&disks_before, elapsed);
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    let snapshot = collector.processes()?;
    let counters = collector.counters()?;
    let stack_counts = collector.stack_counts()?;
    let sched = collector.sched()?;
    let blame = collector.blame()?;
    let lifecycle = collector.lifecycle()?;
    let net = collector.net()?;
    let faults = collector.faults()?;
    let io = collector.io()?;
    // Syscall counts move from the per-CPU pending buffers to the totals at every context
    // switch, and a sleep moves from the thread table to the off-CPU totals at its wakeup;
    // both are read once the programs have stopped, so nothing is seen twice or missed.
    // Everything else was read above, at `elapsed`, since detaching takes a while.
    clock.lap(|p| &mut p.collect);
    probes.quiesce();
    let collector = Collector::new(&probes.ebpf);
    let syscalls = collector.syscalls()?;
    let offcpu = collector.offcpu(end_ns)?;
    let stacks = collector.stacks(
        stack_counts
            .iter()
            .chain(&offcpu)
            .flat_map(|(key, _)| [key.user_stack_id, key.kernel_stack_id]),
    )?;
    let cpus = u32::try_from(probes.cpus).unwrap_or(u32::MAX);
    let signals = probes.signals.clone();
    // The rest detaches while the stacks are symbolized and the files rendered.
    let released = probes.release();
    let usage = table.finish(
        &snapshot,
        &FinalCounts {
            stacks: &stack_counts,
            sched: &sched,
            syscalls: &syscalls,
            lifecycle: &lifecycle,
            net: &net,
            faults: &faults,
            offcpu: &offcpu,
            io: &io,
        },
        &procfs,
    );

    clock.lap(|p| &mut p.detach);

    let (usage, folded) = symbolizer.symbolize(usage, stacks).await?;
    clock.lap(|p| &mut p.symbolize);

    let facts = RunFacts {
        started_at: started_at.timestamp().to_string(),
        hostname: super::hostname(),
        mem_total_bytes: {
            use procfs::Current as _;
            procfs::Meminfo::current().ok().map(|m| m.mem_total)
        },
        duration: elapsed,
        cpus,
        frequency_hz: args.frequency,
        counters,
        busiest_disk,
        signals,
        blame,
        only_pids: args.pids.clone(),
        own_pid: std::process::id(),
    };
    let mut report = analyze::build_report(&facts, &usage, &folded.cpu);
    report.timeline = timeline.finish(&report.processes);
    clock.lap(|p| &mut p.analyze);
    let files = output::render_usage(
        &report,
        &usage,
        &folded,
        &args.pids,
        output::HtmlReport::Write,
    )?;
    clock.lap(|p| &mut p.render);
    report.own_cost = Some(OwnCost {
        phases_ms: Some(clock.phases()),
        ..cost
    });
    let out_dir = OutDir::prepare(&out_path)?;
    files
        .write(out_dir.path(), &report)
        .map_err(|err| crate::error::output_write(err, out_dir.path()))?;

    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Text => stdout.write_all(output::table::render(&report).as_bytes()),
        Format::Json => serde_json::to_writer_pretty(&mut stdout, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout)),
    }
    .and_then(|()| stdout.flush())
    .context("writing to stdout")?;
    eprintln!("profiler: wrote {}", out_dir.path().display());
    out_dir.keep();
    if released.join().is_err() {
        eprintln!("profiler: warning: detaching the probes failed");
    }
    Ok(())
}

/// Adds the bucket between two readings, each taken at an offset from the run's start.
fn push_bucket(
    timeline: &mut TimelineBuilder,
    (before, before_at): &(Cumulative, Duration),
    (now, now_at): &(Cumulative, Duration),
) {
    let start_ns = u64::try_from(before_at.as_nanos()).unwrap_or(u64::MAX);
    let len_ns = u64::try_from(now_at.saturating_sub(*before_at).as_nanos()).unwrap_or(u64::MAX);
    timeline.push(start_ns, len_ns, &now.since(before));
}

/// One mapping of each file not yet asked for, from the processes that ran since the last look,
/// busiest first.
fn new_files(
    snapshot: &crate::collect::ProcessSnapshot,
    table: &ProcessTable,
    warmed: &mut HashSet<PathBuf>,
) -> Vec<Mapping> {
    let mut running: Vec<(u32, u64)> = snapshot
        .on_cpu_ns
        .iter()
        .filter(|&(_, &ns)| ns > 0)
        .map(|(&pid, &ns)| (pid, ns))
        .collect();
    running.sort_unstable_by_key(|&(_, ns)| std::cmp::Reverse(ns));
    running
        .iter()
        .filter_map(|&(pid, _)| table.identity(pid))
        .flat_map(|identity| &identity.maps)
        .filter(|map| warmed.insert(map.path.clone()))
        .cloned()
        .collect()
}

fn stacks_of(
    collector: &Collector<'_>,
    pid: u32,
) -> anyhow::Result<std::collections::HashMap<StackPair, u64>> {
    let mut stacks = std::collections::HashMap::new();
    for (key, count) in collector.stack_counts()? {
        if key.tgid == pid {
            *stacks
                .entry((key.user_stack_id, key.kernel_stack_id))
                .or_default() += count;
        }
    }
    Ok(stacks)
}

fn progress_bar(duration: Duration) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(duration.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>3} [{bar:30}] {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    Some(bar)
}

fn top_so_far(
    snapshot: &crate::collect::ProcessSnapshot,
    table: &ProcessTable,
    elapsed: Duration,
) -> String {
    let own = std::process::id();
    let top = snapshot
        .on_cpu_ns
        .iter()
        .filter(|&(&pid, _)| pid != own)
        .max_by_key(|&(_, &ns)| ns);
    match top {
        Some((&pid, &ns)) => {
            // The bar is drawn on a terminal, and a name can hold escape sequences.
            let comm = table
                .identity(pid)
                .map_or_else(|| "?".to_owned(), |id| output::table::one_line(&id.comm));
            let cores = ns as f64 / 1e9 / elapsed.as_secs_f64().max(1e-3);
            format!("top suspect so far: {comm} (pid {pid}) {cores:.2} cores")
        }
        None => "waiting for samples".to_owned(),
    }
}
