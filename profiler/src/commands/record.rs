//! `profiler record`: runs until stopped, writing a report per window, refreshing the metrics
//! and evaluating alert rules every tick; the session keeps the kernel maps bounded by
//! forgetting processes once their last window is written. A trigger attaches the exact probes
//! for an incident window (see `escalation`).

mod escalation;
mod setup;

use anyhow::Context as _;

use self::{
    escalation::Escalator,
    setup::{TICK, put},
};
use super::out_dir::OutDir;
use crate::{
    alerts::{Alerter, engine::Engine, sink::Sink},
    cli::RecordArgs,
    error::usage,
    metrics::Exporter,
    output::{store::Store, windows::WindowKind},
    probes,
    session::{PhaseClock, Session, Stops},
};

pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    let engine = setup::alert_engine(&args)?;
    probes::check_privileges()?;
    probes::check_frequency(args.frequency)?;
    // Caught from here on: a stop during startup leaves no directory instead of an empty one.
    let mut stops = Stops::install()?;
    let mut recorder = Recorder::start(&args, engine, &mut stops).await?;
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
    store: Store,
    escalator: Option<Escalator>,
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
        let session = Session::start(setup::config(args), PhaseClock::start(), stops).await?;
        let sink = Sink::new(&args.out, args.on_alert.as_deref(), args.on_alert_timeout)
            .map_err(|err| usage(err.to_string()))?;
        let store = setup::store(args)?;
        out_dir.keep();
        if exporter.is_some() {
            eprintln!("profiler: metrics at http://{}/metrics", args.metrics);
        }
        let alerts = Alerter { engine, sink };
        alerts.announce(session.signals());
        for swept in store.retention().sweep(std::time::SystemTime::now())? {
            eprintln!("profiler: {swept}");
        }
        Ok(Self {
            session,
            alerts,
            exporter,
            store,
            escalator: setup::escalator(args),
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
        for event in &events {
            if let Some(metrics) = metrics {
                metrics.alert(event.state);
            }
        }
        let sink = &self.alerts.sink;
        if let Some(escalator) = &mut self.escalator
            && let Some(incident) = escalator.feed(&tick, &events, (metrics, sink)).await
        {
            let written = put(
                &mut self.store,
                &incident,
                WindowKind::Incident,
                &args.out,
                metrics,
            )?;
            escalation::ended(sink, &incident, written);
        }
        if tick.window_due {
            let window = self.session.window().await?;
            put(
                &mut self.store,
                &window,
                WindowKind::Regular,
                &args.out,
                metrics,
            )?;
        }
        Ok(())
    }

    /// Writes the last window, stops serving and waits for the alert hooks.
    async fn stop(mut self, args: &RecordArgs) -> anyhow::Result<()> {
        let sink = &self.alerts.sink;
        if let Some(escalator) = &mut self.escalator
            && let Some(incident) = escalator.finish(sink).await
        {
            let written = put(
                &mut self.store,
                &incident,
                WindowKind::Incident,
                &args.out,
                None,
            )?;
            escalation::ended(sink, &incident, written);
        }
        let (window, _, released) = self
            .session
            .finish()
            .await
            .context("reading the last window")?;
        put(
            &mut self.store,
            &window,
            WindowKind::Regular,
            &args.out,
            None,
        )?;
        released.wait();
        self.alerts.sink.drain().await;
        if args.on_alert.is_some() {
            eprintln!("profiler: --on-alert ran {}", self.alerts.sink.hook_stats());
        }
        let scrapes = self.exporter.map_or_else(String::new, |exporter| {
            format!(", {} metrics scrapes served", exporter.stop())
        });
        eprintln!(
            "profiler: stopped after {}{scrapes}",
            self.store.summary(&args.out)
        );
        Ok(())
    }
}
