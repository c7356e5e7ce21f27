//! What `examples/render.rs` (`cargo xtask bench render`) drives: the stages `diagnose` runs
//! once sampling is over, from stack ids and addresses to written files, timed one by one. Not
//! an API: it exists for that benchmark only.

use std::{collections::HashMap, path::Path, time::Duration, time::Instant};

pub use crate::model::Mapping;
use crate::{
    analyze::{self, RunFacts},
    collect::{Counters, own_cost::own_cpu},
    model::{ProcessIdentity, ProcessUsage},
    output,
    signals::{Signal, SignalState},
    symbolize,
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

/// Symbolizes `processes`' stacks (`stacks`: instruction pointers by stack id, leaf first) with
/// a fresh symbolizer, builds the report, renders every file and writes them into `dir`, as
/// `diagnose` does after sampling. Returns the wall time of each part, in order (parts rendered
/// on threads of their own overlap), and the CPU time of the whole (user and system, all
/// threads).
pub fn render_run(
    processes: Vec<Process>,
    stacks: &HashMap<i32, Vec<u64>>,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<(Vec<(&'static str, Duration)>, Duration)> {
    let cpu_before = own_cpu();
    let mut parts = Vec::new();
    let start = Instant::now();
    let usage: Vec<ProcessUsage> = processes
        .into_iter()
        .map(|process| {
            let samples = process.stacks.iter().map(|(_, count)| count).sum();
            ProcessUsage {
                samples,
                on_cpu_ns: samples * 10_000_000,
                stacks: process.stacks,
                ..ProcessUsage::new(ProcessIdentity {
                    maps: process.maps,
                    ..ProcessIdentity::exited_unknown(process.pid, Some(&process.comm))
                })
            }
        })
        .collect();
    let folded = symbolize::symbolize(&usage, stacks);
    parts.push(("symbolize", start.elapsed()));

    let start = Instant::now();
    let facts = RunFacts {
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
        busiest_disk: None,
    };
    let report = analyze::build_report(&facts, &usage, &folded.cpu);
    parts.push(("analyze", start.elapsed()));

    let files = output::render_usage(&report, &usage, &folded, &[], output::HtmlReport::Write)?;
    parts.extend_from_slice(files.parts());
    let start = Instant::now();
    files.write(dir, &report)?;
    parts.push(("json+write", start.elapsed()));
    Ok((parts, own_cpu().saturating_sub(cpu_before)))
}
