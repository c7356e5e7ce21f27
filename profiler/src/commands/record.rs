//! `profiler record`: runs until stopped, writing a report per window, refreshing the metrics
//! and evaluating alert rules every tick; the session keeps the kernel maps bounded by
//! forgetting processes once their last window is written.

use std::{sync::Arc, time::Duration};

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
    session::{Config, PhaseClock, Session, Stops, Symbolization, Tick, WindowReport},
    signals::{Signal, SignalState},
};

/// How often alerts are evaluated and metrics refreshed.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    let rules = rules_from_args(&args.alerts).map_err(|err| usage(err.to_string()))?;
    if let Some(command) = &args.on_alert {
        Sink::check_hook(command).map_err(|err| usage(err.to_string()))?;
    }
    probes::check_privileges()?;
    probes::check_frequency(args.frequency)?;
    // Caught from here on: a stop during startup leaves no directory instead of an empty one.
    let mut stops = Stops::install()?;
    let mut recorder =
        Recorder::start(&args, Engine::new(rules, std::process::id()), &mut stops).await?;
    let mut ticks = tokio::time::interval(TICK);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = stops.recv() => break,
            _ = ticks.tick() => recorder.tick(&args).await?,
        }
    }
    recorder.stop(&args).await
}

/// A running recording: the session and what each tick feeds.
struct Recorder {
    session: Session,
    engine: Engine,
    sink: Sink,
    metrics: Option<Arc<Metrics>>,
    server: Option<tokio::task::JoinHandle<()>>,
    written: u64,
}

impl Recorder {
    /// Serves the metrics, attaches the signals and opens the alert sink. The output directory
    /// is removed again if any of it fails: a failed start leaves nothing behind.
    async fn start(args: &RecordArgs, engine: Engine, stops: &mut Stops) -> anyhow::Result<Self> {
        let out_dir = OutDir::prepare(&args.out)?;
        let metrics = (!args.no_metrics).then(|| Arc::new(Metrics::new(args.top as usize)));
        let server = match &metrics {
            Some(metrics) => Some(metrics::serve(args.metrics, Arc::clone(metrics)).await?),
            None => None,
        };
        let session = Session::start(config(args), PhaseClock::start(), stops).await?;
        let sink = Sink::new(&args.out, args.on_alert.as_deref(), args.on_alert_timeout)
            .map_err(|err| usage(err.to_string()))?;
        out_dir.keep();
        if metrics.is_some() {
            eprintln!("profiler: metrics at http://{}/metrics", args.metrics);
        }
        warn_missing_signals(&engine, &session);
        eprintln!(
            "profiler: {} alert rules; alerts go to {}",
            engine.rules().len(),
            sink.path().display()
        );
        Ok(Self {
            session,
            engine,
            sink,
            metrics,
            server,
            written: 0,
        })
    }

    /// Refreshes the metrics, raises what the rules say, and writes the window when due.
    async fn tick(&mut self, args: &RecordArgs) -> anyhow::Result<()> {
        let tick = self.session.tick()?;
        let metrics = self.metrics.as_deref();
        if let Some(metrics) = metrics {
            metrics.update(&tick.report, &tick.cost);
        }
        alert(&mut self.engine, &tick, &self.session, &self.sink, metrics)?;
        if tick.window_due {
            let window = self.session.window().await?;
            write(&window, args, metrics)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Writes the last window, stops serving and waits for the alert hooks.
    async fn stop(self, args: &RecordArgs) -> anyhow::Result<()> {
        let (window, _, released) = self
            .session
            .finish()
            .await
            .context("reading the last window")?;
        write(&window, args, None)?;
        released.wait();
        if let Some(server) = self.server {
            server.abort();
        }
        self.sink.drain().await;
        if args.on_alert.is_some() {
            let hooks = self.sink.hook_stats();
            eprintln!(
                "profiler: --on-alert ran {} times: {} succeeded, {} failed, {} timed out, {} \
                 skipped",
                hooks.started, hooks.succeeded, hooks.failed, hooks.timed_out, hooks.skipped
            );
        }
        let scrapes = if self.metrics.is_some() {
            format!(", {} metrics scrapes served", metrics::scrapes())
        } else {
            String::new()
        };
        eprintln!(
            "profiler: stopped after {} windows in {}{scrapes}",
            self.written + 1,
            args.out.display(),
        );
        Ok(())
    }
}

/// Record's session: ticks a second, windows of `--window`, symbolized window by window.
fn config(args: &RecordArgs) -> Config {
    Config {
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
            args.out.display()
        ),
    }
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

/// Writes a window into its directory under `--out` and prunes old ones.
fn write(
    window: &WindowReport,
    args: &RecordArgs,
    metrics: Option<&Metrics>,
) -> anyhow::Result<()> {
    let root = &args.out;
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
