//! `profiler record`: runs until stopped, writing a report per window, refreshing the metrics
//! and evaluating alert rules every tick; the session keeps the kernel maps bounded by
//! forgetting processes once their last window is written.

use std::time::Duration;

use anyhow::Context as _;

use super::out_dir::OutDir;
use crate::{
    alerts::{Alerter, engine::Engine, rule::rules_from_args, sink::Sink},
    cli::RecordArgs,
    error::usage,
    metrics::{Exporter, Metrics},
    model::cmdline::Cmdlines,
    output::{self, windows},
    probes,
    session::{Config, PhaseClock, Session, Stops, Symbolization, WindowReport},
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
    alerts: Alerter,
    exporter: Option<Exporter>,
    retention: windows::Retention,
    written: u64,
}

impl Recorder {
    /// Serves the metrics, attaches the signals and opens the alert sink. The output directory
    /// is removed again if any of it fails: a failed start leaves nothing behind.
    async fn start(args: &RecordArgs, engine: Engine, stops: &mut Stops) -> anyhow::Result<Self> {
        let out_dir = OutDir::prepare(&args.out)?;
        let exporter = match args.no_metrics {
            false => Some(Exporter::start(args.metrics, args.top as usize).await?),
            true => None,
        };
        let session = Session::start(config(args), PhaseClock::start(), stops).await?;
        let sink = Sink::new(&args.out, args.on_alert.as_deref(), args.on_alert_timeout)
            .map_err(|err| usage(err.to_string()))?;
        out_dir.keep();
        if exporter.is_some() {
            eprintln!("profiler: metrics at http://{}/metrics", args.metrics);
        }
        let alerts = Alerter { engine, sink };
        alerts.announce(session.signals());
        let retention = windows::Retention::new(&args.out, args.retention, args.max_disk)?;
        for swept in retention.sweep(std::time::SystemTime::now())? {
            eprintln!("profiler: {swept}");
        }
        Ok(Self {
            session,
            alerts,
            exporter,
            retention,
            written: 0,
        })
    }

    /// Refreshes the metrics, raises what the rules say, and writes the window when due.
    async fn tick(&mut self, args: &RecordArgs) -> anyhow::Result<()> {
        let tick = self.session.tick()?;
        let metrics = self.exporter.as_ref().map(Exporter::metrics);
        if let Some(metrics) = metrics {
            metrics.update(&tick.report, &tick.cost);
        }
        let session = &self.session;
        let events = self
            .alerts
            .evaluate(&tick.report, tick.at, |pid| session.top_stacks(pid))?;
        for event in events {
            if let Some(metrics) = metrics {
                metrics.alert(event.state);
            }
        }
        if tick.window_due {
            let window = self.session.window().await?;
            write(&window, args, metrics, &mut self.retention)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Writes the last window, stops serving and waits for the alert hooks.
    async fn stop(mut self, args: &RecordArgs) -> anyhow::Result<()> {
        let (window, _, released) = self
            .session
            .finish()
            .await
            .context("reading the last window")?;
        write(&window, args, None, &mut self.retention)?;
        released.wait();
        self.alerts.sink.drain().await;
        if args.on_alert.is_some() {
            eprintln!("profiler: --on-alert ran {}", self.alerts.sink.hook_stats());
        }
        let scrapes = self.exporter.map_or_else(String::new, |exporter| {
            format!(", {} metrics scrapes served", exporter.stop())
        });
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

/// Writes a window into its directory under `--out` and prunes old ones.
fn write(
    window: &WindowReport,
    args: &RecordArgs,
    metrics: Option<&Metrics>,
    retention: &mut windows::Retention,
) -> anyhow::Result<()> {
    let html = match args.html {
        true => output::HtmlReport::Write,
        false => output::HtmlReport::Skip,
    };
    let (
        root,
        WindowReport {
            report,
            usage,
            folded,
            started_at,
        },
    ) = (&args.out, window);
    let path = windows::write_report(retention.root(), *started_at, report, usage, folded, html)
        .map_err(|err| crate::error::output_write(err, root))?;
    if let Some(metrics) = metrics {
        metrics.window_written();
    }
    log::debug!("wrote {}", path.display());
    for pruned in retention.prune(jiff::Timestamp::now())? {
        eprintln!("profiler: {pruned}");
    }
    Ok(())
}
