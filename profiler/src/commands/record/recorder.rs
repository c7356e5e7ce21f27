//! A running recording: what each tick feeds (metrics, alert rules, the escalator, the window
//! writer) and how it stops.

use anyhow::Context as _;

use super::{
    escalation::{self, Escalator},
    setup::{self, TICK},
    writer::Writer,
};
use crate::{
    alerts::{Alerter, engine::Engine, event::AlertEvent, sink::Sink},
    cli::RecordArgs,
    commands::out_dir::OutDir,
    error::usage,
    metrics::Exporter,
    output::windows::WindowKind,
    session::{PhaseClock, Session, Stops, Tick, WindowReport, priority::Priority},
};

/// A tick this many times its length late is counted (`profiler_ticks_late_total`).
const LATE: f64 = 1.5;

/// A running recording: the session and what each tick feeds.
pub struct Recorder {
    session: Session,
    alerts: Alerter,
    exporter: Option<Exporter>,
    writer: Writer,
    escalator: Option<Escalator>,
    priority: Option<Priority>,
}

impl Recorder {
    /// Serves the metrics, attaches the signals and opens the alert sink. The output directory
    /// is removed again if any of it fails: a failed start leaves nothing behind.
    pub async fn start(
        args: &RecordArgs,
        engine: Engine,
        stops: &mut Stops,
        priority: Option<Priority>,
    ) -> anyhow::Result<Self> {
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
        let metrics = exporter.as_ref().map(Exporter::shared);
        Ok(Self {
            session,
            alerts,
            exporter,
            writer: Writer::new(store, metrics, args.out.clone()),
            escalator: setup::escalator(args),
            priority,
        })
    }

    /// Refreshes the metrics, raises what the rules say, and cuts the window when due.
    pub async fn tick(&mut self) -> anyhow::Result<()> {
        self.writer.settle(false).await?;
        let tick = self.session.tick()?;
        if let Some(priority) = &mut self.priority {
            priority.check();
        }
        if let Some(metrics) = self.exporter.as_ref().map(Exporter::metrics) {
            metrics.update(&tick.report, &tick.cost);
            if tick.report.duration_s > LATE * TICK.as_secs_f64() {
                metrics.tick_late();
            }
        }
        // An alert's evidence is symbolized here, at the thread's priority: a firing alert is
        // rare, its stacks few, and files over the DWARF budget are read from their symbol
        // tables. Lowered to nice -20, its parsing (kallsyms included) shares the CPUs with a
        // rogue's every thread while the ticks wait. The real-time budget bounds a bad case.
        let session = &self.session;
        let events = self
            .alerts
            .evaluate(&tick.report, tick.at, |pid| session.top_stacks(pid))?;
        if let Some(metrics) = self.exporter.as_ref().map(Exporter::metrics) {
            events.iter().for_each(|event| metrics.alert(event.state));
        }
        self.escalate(&tick, &events).await?;
        if tick.window_due {
            let cut = self.session.cut()?;
            self.writer.start(cut).await?;
        }
        Ok(())
    }

    /// Feeds the escalator this tick; writes the incident it ends.
    async fn escalate(&mut self, tick: &Tick, events: &[AlertEvent]) -> anyhow::Result<()> {
        let metrics = self.exporter.as_ref().map(Exporter::metrics);
        let sink = &self.alerts.sink;
        let Some(escalator) = &mut self.escalator else {
            return Ok(());
        };
        let Some(incident) = escalator.feed(tick, events, (metrics, sink)).await else {
            return Ok(());
        };
        self.put_incident(&incident).await
    }

    /// Writes an incident at normal priority and says how it ended.
    async fn put_incident(&mut self, incident: &WindowReport) -> anyhow::Result<()> {
        let _normal = self.priority.as_ref().map(Priority::lowered);
        let written = self.writer.put_now(incident, WindowKind::Incident).await?;
        escalation::ended(&self.alerts.sink, incident, written);
        Ok(())
    }

    /// Writes the last window, stops serving and waits for the alert hooks.
    pub async fn stop(mut self, args: &RecordArgs) -> anyhow::Result<()> {
        // What is left is heavy and not pressed for time.
        if let Some(priority) = self.priority.take() {
            priority.release();
        }
        let sink = &self.alerts.sink;
        if let Some(escalator) = &mut self.escalator
            && let Some(incident) = escalator.finish(sink).await
        {
            self.put_incident(&incident).await?;
        }
        if let Some(escalator) = &mut self.escalator {
            escalator.wait_detached();
        }
        let Self {
            session,
            alerts,
            exporter,
            mut writer,
            ..
        } = self;
        let (window, _, released) = session.finish().await.context("reading the last window")?;
        writer.put_now(&window, WindowKind::Regular).await?;
        released.wait();
        alerts.sink.drain().await;
        if args.on_alert.is_some() {
            eprintln!("profiler: --on-alert ran {}", alerts.sink.hook_stats());
        }
        let scrapes = exporter.map_or_else(String::new, |exporter| {
            format!(", {} metrics scrapes served", exporter.stop())
        });
        eprintln!("profiler: stopped after {}{scrapes}", writer.summary());
        Ok(())
    }
}
