//! `profiler record`: runs until stopped, writing a report per window, refreshing the metrics
//! and evaluating alert rules every tick; the session keeps the kernel maps bounded by
//! forgetting processes once their last window is written.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;

use super::out_dir::OutDir;
use crate::{
    alerts::{
        engine::Engine,
        event::{AlertEvent, AlertState},
        rule::rules_from_args,
        sink::Sink,
    },
    cli::RecordArgs,
    error::usage,
    metrics::{self, Metrics},
    model::cmdline::Cmdlines,
    output::{self, windows},
    probes,
    session::{Config, Session, Stops, Symbolization, Tick, WindowReport},
    signals::{Signal, SignalState},
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
    let mut stops = Stops::install()?;
    // Removed again if startup fails below: a failed start leaves nothing behind.
    let out_dir = OutDir::prepare(&args.out)?;
    let root = args.out.clone();

    let metrics = (!args.no_metrics).then(|| Arc::new(Metrics::new(args.top as usize)));
    let server = match &metrics {
        Some(metrics) => Some(metrics::serve(args.metrics, Arc::clone(metrics)).await?),
        None => None,
    };
    let config = Config {
        frequency_hz: args.frequency,
        signals: args.signals.clone(),
        cmdlines: Cmdlines::redacted(args.redact),
        only_pids: Vec::new(),
        tick: TICK,
        window: Some(args.window),
        symbolization: Symbolization::PerWindow,
        what_next: format!(
            "recording {} windows into {} (SIGINT or SIGTERM ends the current window and stops)",
            humantime::format_duration(args.window),
            root.display()
        ),
    };
    let mut session =
        Session::start(config, crate::session::PhaseClock::start(), &mut stops).await?;
    let sink = Sink::new(&root, args.on_alert.as_deref(), args.on_alert_timeout)
        .map_err(|err| usage(err.to_string()))?;
    out_dir.keep();
    if metrics.is_some() {
        eprintln!("profiler: metrics at http://{}/metrics", args.metrics);
    }
    let mut engine = Engine::new(rules, std::process::id());
    warn_missing_signals(&engine, &session);
    eprintln!(
        "profiler: {} alert rules; alerts go to {}",
        engine.rules().len(),
        sink.path().display()
    );

    let mut ticks = tokio::time::interval(TICK);
    ticks.tick().await;
    let mut written = 0u64;
    loop {
        tokio::select! {
            () = stops.recv() => break,
            _ = ticks.tick() => {
                let tick = session.tick()?;
                if let Some(metrics) = &metrics {
                    metrics.update(&tick.report, &tick.cost);
                }
                alert(&mut engine, &tick, &session, &sink, metrics.as_deref())?;
                if tick.window_due {
                    let window = session.window().await?;
                    write(&window, &root, &args, metrics.as_deref())?;
                    written += 1;
                }
            }
        }
    }
    let (window, _, released) = session.finish().await.context("reading the last window")?;
    write(&window, &root, &args, None)?;
    written += 1;
    released.wait();
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

/// Warns about each rule whose signal is not on: it can never fire.
fn warn_missing_signals(engine: &Engine, session: &Session) {
    for rule in engine.rules() {
        let signal = rule.signal();
        // cpu figures come from on-CPU time, measured whatever the selection.
        let state = session.signals().get(&signal).unwrap_or(&SignalState::On);
        if signal != Signal::Cpu && !state.is_on() {
            eprintln!(
                "profiler: warning: alert rule `{rule}` needs the {signal} signal, which is {state}"
            );
        }
    }
}

/// Evaluates the rules on the tick's report and raises what changed, with the firing
/// process's hottest stacks as evidence.
fn alert(
    engine: &mut Engine,
    tick: &Tick,
    session: &Session,
    sink: &Sink,
    metrics: Option<&Metrics>,
) -> anyhow::Result<()> {
    for mut event in engine.evaluate(&tick.report, tick.at) {
        if event.state == AlertState::Firing
            && let Some(pid) = event.pid
        {
            let stacks = session.top_stacks(pid)?;
            if event.evidence.hottest.is_none() {
                event.evidence.hottest = crate::analyze::hottest(&stacks).map(|h| h.function);
            }
            event.evidence.top_stacks = stacks
                .iter()
                .map(|(frames, count)| format!("{} {count}", frames.join(";")))
                .collect();
        }
        raise(sink, &event, metrics);
    }
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

/// Writes a window into its directory under `root` and prunes old ones.
fn write(
    window: &WindowReport,
    root: &Path,
    args: &RecordArgs,
    metrics: Option<&Metrics>,
) -> anyhow::Result<()> {
    let html = if args.html {
        output::HtmlReport::Write
    } else {
        output::HtmlReport::Skip
    };
    let path = windows::write_window(root, &windows::window_name(window.started_at), |dir| {
        output::write_usage(
            dir,
            &window.report,
            &window.usage,
            &window.folded,
            &[],
            html,
        )
    })
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
    Ok(())
}
