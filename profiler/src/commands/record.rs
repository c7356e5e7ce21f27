//! `profiler record`: runs until stopped, writing a report per window, refreshing the metrics
//! and evaluating alert rules every tick, and keeping the kernel maps bounded by forgetting
//! processes once their last window is written.

/// Shared with `top`, which builds its screens from the same tick reports.
pub(super) mod window;

use std::{
    collections::HashSet,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use self::window::Window;
use super::out_dir::OutDir;
use crate::{
    alerts::{
        engine::Engine,
        event::{AlertEvent, AlertState},
        rule::rules_from_args,
        sink::Sink,
    },
    cli::RecordArgs,
    collect::{Collector, cleanup, cumulative::Cumulative, kernel_now_ns, own_cost::OwnCostMeter},
    error::usage,
    metrics::{self, Metrics},
    model::cmdline::Cmdlines,
    output::windows,
    probes,
};

/// How often alerts are evaluated and metrics refreshed.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    let rules = rules_from_args(&args.alerts).map_err(|err| usage(err.to_string()))?;
    if let Some(command) = &args.on_alert {
        // Checked before anything is created: a bad hook is a startup error.
        Sink::new(&std::env::temp_dir(), Some(command), args.on_alert_timeout)
            .map_err(|err| usage(err.to_string()))?;
    }
    probes::check_privileges()?;
    probes::check_frequency(args.frequency)?;
    // Caught from here on: a stop during startup leaves no directory instead of an empty one.
    let mut stops = super::Stops::install()?;
    // Removed again if startup fails below: a failed start leaves nothing behind.
    let out_dir = OutDir::prepare(&args.out)?;
    let root = args.out.clone();

    let metrics = (!args.no_metrics).then(|| Arc::new(Metrics::new(args.top as usize)));
    let server = match &metrics {
        Some(metrics) => Some(metrics::serve(args.metrics, Arc::clone(metrics)).await?),
        None => None,
    };
    let mut probes = super::attach(
        args.frequency,
        &args.signals,
        &format!(
            "recording {} windows into {} (SIGINT or SIGTERM ends the current window and stops)",
            humantime::format_duration(args.window),
            root.display()
        ),
        &mut stops,
    )
    .await?;
    let sink = Sink::new(&root, args.on_alert.as_deref(), args.on_alert_timeout)
        .map_err(|err| usage(err.to_string()))?;
    out_dir.keep();
    if metrics.is_some() {
        eprintln!("profiler: metrics at http://{}/metrics", args.metrics);
    }
    let mut engine = Engine::new(rules, std::process::id());
    for rule in engine.rules() {
        let signal = rule.signal();
        // cpu figures come from on-CPU time, measured whatever the selection.
        let state = probes.signals.get(signal).map_or("on", String::as_str);
        if signal != "cpu" && state != "on" {
            eprintln!(
                "profiler: warning: alert rule `{rule}` needs the {signal} signal, which is {state}"
            );
        }
    }
    eprintln!(
        "profiler: {} alert rules; alerts go to {}",
        engine.rules().len(),
        sink.path().display()
    );

    let mut tick_cost = OwnCostMeter::start(&probes.ebpf);
    let mut window = Window::start_from(
        Cumulative::read(&Collector::new(&probes.ebpf))?,
        (Instant::now(), jiff::Timestamp::now()),
        &probes,
        args.frequency,
    );
    window.html = args.html;
    window.procfs.cmdlines = Cmdlines::redacted(args.redact);
    let mut last_tick = (window.base.clone(), Instant::now(), kernel_now_ns());
    let mut ticks = tokio::time::interval(TICK);
    ticks.tick().await;
    let mut written = 0u64;
    loop {
        tokio::select! {
            () = stops.recv() => break,
            _ = ticks.tick() => {
                let collector = Collector::new(&probes.ebpf);
                // Exits are read before the figures: a process whose exit is handled below
                // has its final figures in `now`. Read after, a process exiting in between
                // would have its entries deleted without them ever being read, and vanish
                // from the window.
                let exits = collector.exits()?;
                // The stack maps are only walked when the window closes.
                let closing = window.elapsed() + TICK / 2 >= args.window;
                let mut now = if closing {
                    Cumulative::read(&collector)?
                } else {
                    Cumulative::read_without_stacks(&collector)?
                };
                let read_at = (Instant::now(), jiff::Timestamp::now());
                let now_ns = kernel_now_ns();
                let (before, at, before_ns) = &last_tick;
                let elapsed = at.elapsed();
                // New processes are looked up in /proc once a tick: a process that lives less
                // than a tick keeps the name and cgroup the kernel saw, without its exe.
                window.observe(&collector, now.processes.clone())?;
                let delta = now.since(before);
                window.add_tick(&delta, *at, elapsed);
                let tick = window.tick_report(&collector, &delta, *before_ns, elapsed)?;
                let cost = tick_cost.measure(&probes.ebpf, elapsed);
                if let Some(metrics) = &metrics {
                    metrics.update(&tick, &cost);
                }
                for mut event in engine.evaluate(&tick, read_at.1) {
                    if event.state == AlertState::Firing
                        && let Some(pid) = event.pid
                    {
                        let stacks = window.top_stacks(&collector, pid)?;
                        if event.evidence.hottest.is_none() {
                            event.evidence.hottest =
                                crate::analyze::hottest(&stacks).map(|h| h.function);
                        }
                        event.evidence.top_stacks = stacks
                            .iter()
                            .map(|(frames, count)| format!("{} {count}", frames.join(";")))
                            .collect();
                    }
                    raise(&sink, &event, metrics.as_deref());
                }
                // Processes that exited leave the maps now, their final figures kept for the
                // window: under heavy churn the maps would otherwise fill before it ends. An
                // exit mark stays until /proc shows the process gone (a zombie, or threads
                // still running): the process may still add to its figures.
                if !exits.is_empty() {
                    let gone: HashSet<u32> = exits
                        .iter()
                        .copied()
                        .filter(|tgid| !Path::new(&format!("/proc/{tgid}")).exists())
                        .collect();
                    let dead = now.split_off(&gone);
                    window.bury(&dead);
                    cleanup::forget_exited(&mut probes.ebpf, &gone, &dead)?;
                }
                last_tick = (now.clone(), read_at.0, now_ns);
                if closing {
                    let next =
                        close(window, (now, read_at), &mut probes, &root, &args, metrics.as_deref()).await?;
                    written += 1;
                    window = next;
                }
            }
        }
    }
    let now = Cumulative::read(&Collector::new(&probes.ebpf))?;
    // The part of a tick between the last one and the stop belongs to the timeline too.
    let (before, at, _) = &last_tick;
    window.add_tick(&now.since(before), *at, at.elapsed());
    window
        .finish(&now, &probes, &root)
        .await
        .context("writing the last window")
        .map_err(|err| crate::error::output_write(err, &root))?;
    written += 1;
    probes.detach();
    if let Some(server) = server {
        server.abort();
    }
    sink.drain().await;
    if args.on_alert.is_some() {
        let hooks = sink.hook_stats();
        eprintln!(
            "profiler: --on-alert ran {} times: {} succeeded, {} failed, {} timed out, {} skipped",
            hooks.started, hooks.succeeded, hooks.failed, hooks.timed_out, hooks.skipped
        );
    }
    eprintln!(
        "profiler: stopped after {written} windows in {}{}",
        root.display(),
        if metrics.is_some() {
            format!(", {} metrics scrapes served", metrics::scrapes())
        } else {
            String::new()
        }
    );
    Ok(())
}

fn raise(sink: &Sink, event: &AlertEvent, metrics: Option<&Metrics>) {
    if let Some(metrics) = metrics {
        metrics.alert(match event.state {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        });
    }
    if let Err(err) = sink.emit(event) {
        eprintln!("profiler: warning: could not record an alert: {err}");
    }
}

/// Writes the window, prunes old ones, forgets exited processes in the kernel maps, and starts
/// the next window from `now`.
async fn close(
    window: Window,
    (now, read_at): (Cumulative, (Instant, jiff::Timestamp)),
    probes: &mut probes::Probes,
    root: &Path,
    args: &RecordArgs,
    metrics: Option<&Metrics>,
) -> anyhow::Result<Window> {
    // Forks up to the reading that ends this window are this window's; later ones stay in the
    // map for the next. A cut taken later would delete forks whose children this window never
    // saw (they had not run yet at the reading) and the next one would not count.
    let forks_before = now.read_at_ns;
    let stale = cleanup::stale_stacks(&now, &window.base);
    let path = window
        .finish(&now, probes, root)
        .await
        .map_err(|err| crate::error::output_write(err, root))?;
    if let Some(metrics) = metrics {
        metrics.window_written();
    }
    log::debug!("wrote {}", path.display());
    for pruned in windows::prune(root, jiff::Timestamp::now(), args.retention, args.max_disk)? {
        match pruned {
            windows::Pruned::Expired(name) => {
                eprintln!("profiler: pruned window {name}: older than --retention");
            }
            windows::Pruned::OverBudget(name) => {
                eprintln!("profiler: pruned window {name}: windows exceed --max-disk");
            }
        }
    }
    // What live processes did since `now` belongs to the new window; the entries deleted here
    // must not be counted against it.
    let mut base = now;
    let deleted = cleanup::after_window(&mut probes.ebpf, &mut base, &stale, forks_before)?;
    log::debug!(
        "forgot {} map entries and {} stacks of exited processes",
        deleted.entries,
        deleted.stacks
    );
    let mut next = Window::start_from(base, read_at, probes, args.frequency);
    next.html = args.html;
    next.procfs.cmdlines = Cmdlines::redacted(args.redact);
    Ok(next)
}
