//! What `examples/render.rs` (`cargo xtask bench render`) drives: the session's stages once
//! the last reading is taken, from stack ids and addresses to written files, timed one by one.
//! Not an API: it exists for that benchmark only.

use std::{collections::HashMap, path::Path, time::Duration, time::Instant};

pub use crate::model::Mapping;
use crate::{
    analyze::RunFacts,
    collect::{
        Counters,
        own_cost::{Spent, own_cpu},
    },
    model::{ProcessIdentity, ProcessUsage},
    output,
    report::OwnCost,
    session::{self, Closed},
    signals::{Signal, SignalState},
};

/// This process's executable file mappings, captured from /proc as for any profiled process;
/// `None` if /proc could not be read.
pub fn own_text_mappings() -> Option<Vec<Mapping>> {
    crate::model::read_identity_with(std::process::id(), crate::model::cmdline::Cmdlines::Full)
        .map(|identity| identity.maps)
}

/// One process as the kernel maps leave it: file mappings, and sample counts per (user stack
/// id, kernel stack id).
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: u32,
    pub comm: String,
    pub maps: Vec<Mapping>,
    pub stacks: Vec<((i32, i32), u64)>,
}

/// Runs `processes` through the stages a session runs after its last reading, and writes
/// the files `diagnose` writes into `dir`: the stacks (`stacks`: instruction pointers by stack
/// id, leaf first) are named by a fresh symbolizer as a `record` window's are, analyzed, and
/// rendered. Returns the wall time of each part, in order (parts rendered on threads of their
/// own overlap), and the CPU time of the whole (user and system, all threads).
pub fn render_run(
    processes: Vec<Process>,
    stacks: HashMap<i32, Vec<u64>>,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<(Vec<(&'static str, Duration)>, Duration)> {
    let cpu_before = own_cpu();
    let mut parts = Vec::new();
    let start = Instant::now();
    let usage = processes.into_iter().map(Process::usage).collect();
    let closed = Closed::from_figures(usage, stacks, facts(duration), jiff::Timestamp::now());
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let (usage, folded) =
        runtime.block_on(session::name_stacks(None, closed.usage, closed.stacks))?;
    parts.push(("symbolize", start.elapsed()));

    let start = Instant::now();
    let cost = OwnCost::from(Spent {
        cpu_ns: own_cpu().saturating_sub(cpu_before).as_nanos() as u64,
        bpf_run_time_ns: 0,
        bpf_runs: 0,
        bpf_measured_share: 0.0,
        wall: duration,
        peak_rss_bytes: 0,
        sampler_ns_per_run: None,
    });
    let window = closed.summary.report(usage, folded, cost);
    parts.push(("analyze", start.elapsed()));

    let (report, usage, folded) = (&window.report, &window.usage, &window.folded);
    let files = output::render_usage(report, usage, folded, &[], output::HtmlReport::Write)?;
    parts.extend_from_slice(files.parts());
    let start = Instant::now();
    files.write(&output::dir::Dir::open(dir)?, report)?;
    parts.push(("json+write", start.elapsed()));
    Ok((parts, own_cpu().saturating_sub(cpu_before)))
}

impl Process {
    /// As the session's table holds it: 10 ms of CPU per sample, at 100 Hz.
    fn usage(self) -> ProcessUsage {
        let samples = self.stacks.iter().map(|(_, count)| count).sum();
        ProcessUsage {
            samples,
            on_cpu_ns: samples * 10_000_000,
            stacks: self.stacks,
            ..ProcessUsage::new(ProcessIdentity {
                maps: self.maps,
                ..ProcessIdentity::exited_unknown(self.pid, Some(&self.comm))
            })
        }
    }
}

/// A two-CPU host sampled at 99 Hz by the cpu signal alone for `duration`.
fn facts(duration: Duration) -> RunFacts {
    RunFacts {
        started_at: jiff::Timestamp::now().to_string(),
        hostname: "bench".to_owned(),
        duration,
        cpus: 2,
        frequency_hz: 99,
        counters: Counters::default(),
        signals: [(Signal::Cpu, SignalState::On)].into(),
        blame: Vec::new(),
        only_pids: Vec::new(),
        own_pid: std::process::id(),
        mem_total_bytes: None,
        mem_available_bytes: None,
        busiest_disk: None,
        pressure: None,
        unwind_tables: None,
    }
}
