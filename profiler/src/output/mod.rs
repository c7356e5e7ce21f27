//! Renderers, one file per format, and the atomic writing of a run's output directory.

pub mod dir;
pub mod flamegraph;
pub mod folded;
pub mod html;
pub mod pprof;
pub mod progress;
pub mod store;
pub mod table;
pub mod tui;
pub mod windows;

use std::time::{Duration, Instant};

use anyhow::Context as _;

use self::dir::Dir;

use crate::{
    cli::Format,
    model::ProcessUsage,
    report::Report,
    signals::{Signal, SignalState},
    symbolize::FoldedStack,
};

/// A process's symbolized stacks, named for the flamegraph root frame.
#[derive(Debug, Clone, Copy)]
pub struct ProcessStacks<'a> {
    pub comm: &'a str,
    pub pid: u32,
    pub stacks: &'a [FoldedStack],
}

pub const REPORT_JSON: &str = "report.json";
pub const STACKS_FOLDED: &str = "stacks.folded";
pub const FLAMEGRAPH_SVG: &str = "flamegraph.svg";
pub const OFFCPU_FOLDED: &str = "offcpu.folded";
pub const OFFCPU_SVG: &str = "offcpu.svg";
pub const PROFILE_PB_GZ: &str = "profile.pb.gz";
pub const REPORT_HTML: &str = "report.html";

/// Whether a run's files include `report.html`: diagnose writes it, record windows do not (a
/// second copy of every flamegraph per window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtmlReport {
    Write,
    Skip,
}

/// A run's rendered files but report.json, which is serialized last so that it can carry how
/// long the rest took.
pub struct RunFiles {
    files: Vec<(&'static str, Vec<u8>)>,
    /// How long each part took to render, in the order rendered.
    parts: Vec<(&'static str, Duration)>,
}

impl RunFiles {
    /// How long each part took to render: `folded`, `flamegraph`, `pprof`, then `html` and
    /// `offcpu` when rendered.
    pub fn parts(&self) -> &[(&'static str, Duration)] {
        &self.parts
    }

    /// Serializes `report` into report.json, then moves every file into place: a failure leaves
    /// no partial set.
    pub fn write(mut self, dir: &Dir, report: &Report) -> anyhow::Result<()> {
        let mut json = serde_json::to_vec_pretty(report).context("serializing report.json")?;
        json.push(b'\n');
        self.files.insert(0, (REPORT_JSON, json));
        let files: Vec<(&std::ffi::OsStr, &[u8])> = self
            .files
            .iter()
            .map(|(name, bytes)| (name.as_ref(), bytes.as_slice()))
            .collect();
        dir.write_atomic(&files)
            .with_context(|| format!("writing into {}", dir.path().display()))
    }
}

/// Renders every file but report.json. `offcpu` (counts in microseconds blocked) is rendered
/// when the offcpu signal ran; `profile` holds the same stacks with addresses, for
/// `profile.pb.gz`; `report.html` shows them all. The profile and the off-CPU files are
/// rendered on threads of their own, beside the CPU flamegraph.
pub fn render_run(
    report: &Report,
    stacks: &[ProcessStacks<'_>],
    offcpu: Option<&[ProcessStacks<'_>]>,
    profile: &pprof::Input<'_>,
    html: HtmlReport,
) -> anyhow::Result<RunFiles> {
    std::thread::scope(|scope| {
        let profile = scope.spawn(|| {
            timed(|| {
                pprof::render(&pprof::Sampling::of(report, offcpu.is_some()), profile)
                    .context("encoding profile.pb.gz")
            })
        });
        let offcpu_files =
            offcpu.map(|offcpu| scope.spawn(move || timed(|| render_offcpu(report, offcpu))));
        let mut parts = Vec::new();
        let (folded, took) = timed(|| folded::render(stacks));
        parts.push(("folded", took));
        let (svg, took) = timed(|| render_cpu(report, stacks.len(), &folded));
        parts.push(("flamegraph", took));
        let svg = svg?;
        let (profile, took) = join(profile);
        parts.push(("pprof", took));
        let profile = profile?;
        let offcpu_files = match offcpu_files {
            Some(handle) => {
                let (files, took) = join(handle);
                parts.push(("offcpu", took));
                Some(files?)
            }
            None => None,
        };
        let page = (html == HtmlReport::Write).then(|| {
            let (page, took) = timed(|| {
                html::render(
                    report,
                    &folded,
                    &svg,
                    offcpu_files.as_ref().map(|(_, svg)| svg.as_slice()),
                )
            });
            parts.push(("html", took));
            page
        });
        let mut files = vec![
            (STACKS_FOLDED, folded.into_bytes()),
            (FLAMEGRAPH_SVG, svg),
            (PROFILE_PB_GZ, profile),
        ];
        if let Some(page) = page {
            files.push((REPORT_HTML, page.into_bytes()));
        }
        if let Some((folded, svg)) = offcpu_files {
            files.push((OFFCPU_FOLDED, folded.into_bytes()));
            files.push((OFFCPU_SVG, svg));
        }
        Ok(RunFiles { files, parts })
    })
}

fn render_cpu(report: &Report, processes: usize, folded: &str) -> anyhow::Result<Vec<u8>> {
    let title = format!(
        "CPU: {processes} processes, {:.1} s on {} CPUs at {} Hz",
        report.duration_s, report.cpus, report.frequency_hz
    );
    flamegraph::render(folded, &title)
}

/// offcpu.folded and offcpu.svg.
fn render_offcpu(
    report: &Report,
    offcpu: &[ProcessStacks<'_>],
) -> anyhow::Result<(String, Vec<u8>)> {
    let folded = folded::render(offcpu);
    let title = format!(
        "Off-CPU: {} processes, {:.1} s; width is time blocked",
        offcpu.len(),
        report.duration_s
    );
    let svg = flamegraph::render_kind(flamegraph::OFFCPU, &folded, &title)?;
    Ok((folded, svg))
}

/// `f`'s result and how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let result = f();
    (result, start.elapsed())
}

/// A rendering thread's result; its panic goes on in the caller.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Processes with stacks in `sets` (parallel to `usage`), as the folded files name them.
pub fn reported<'a>(
    usage: &'a [ProcessUsage],
    sets: &'a [Vec<FoldedStack>],
    pids: &[u32],
) -> Vec<ProcessStacks<'a>> {
    usage
        .iter()
        .zip(sets)
        .filter(|(p, _)| pids.is_empty() || pids.contains(&p.identity.pid))
        .filter(|(_, stacks)| !stacks.is_empty())
        .map(|(p, stacks)| ProcessStacks {
            comm: &p.identity.comm,
            pid: p.identity.pid,
            stacks,
        })
        .collect()
}

/// Off-CPU stacks weighted in whole microseconds, as BCC's offcputime folds them; sleeps
/// shorter than half a microsecond in total disappear.
pub fn micros(sets: &[Vec<FoldedStack>]) -> Vec<Vec<FoldedStack>> {
    sets.iter()
        .map(|stacks| {
            stacks
                .iter()
                .map(|(frames, ns)| (frames.clone(), (ns + 500) / 1000))
                .filter(|(_, us)| *us > 0)
                .collect()
        })
        .collect()
}

/// Renders a run's files from its processes and their symbolized stacks (parallel to `usage`),
/// keeping only `pids` when given; the off-CPU files only when that signal ran.
pub fn render_usage(
    report: &Report,
    usage: &[ProcessUsage],
    folded: &crate::symbolize::Folded,
    pids: &[u32],
    html: HtmlReport,
) -> anyhow::Result<RunFiles> {
    let offcpu_us = micros(&folded.offcpu);
    let offcpu_on = report
        .signals
        .get(&Signal::Offcpu)
        .is_some_and(SignalState::is_on);
    render_run(
        report,
        &reported(usage, &folded.cpu, pids),
        offcpu_on
            .then(|| reported(usage, &offcpu_us, pids))
            .as_deref(),
        &pprof::Input::new(usage, &folded.stacks, pids),
        html,
    )
}

/// [`render_usage`], then writes the files into `dir`.
pub fn write_usage(
    dir: &Dir,
    report: &Report,
    usage: &[ProcessUsage],
    folded: &crate::symbolize::Folded,
    pids: &[u32],
    html: HtmlReport,
) -> anyhow::Result<()> {
    render_usage(report, usage, folded, pids, html)?.write(dir, report)
}

/// Prints `report` on stdout as the table or as JSON.
pub fn print(report: &Report, format: Format) -> anyhow::Result<()> {
    use std::io::Write as _;

    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Text => stdout.write_all(table::render(report).as_bytes()),
        Format::Json => serde_json::to_writer_pretty(&mut stdout, report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout)),
    }
    .and_then(|()| stdout.flush())
    .context("writing to stdout")
}
