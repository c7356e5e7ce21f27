//! A running recording: what each tick feeds (metrics, alert rules, the escalator, the window
//! writer) and how it stops.

use anyhow::Context as _;

use super::{
    escalation::{self, Escalator},
    setup::{self, TICK},
    writer::{News, Writer},
};
use crate::{
    alerts::{
        Alerter,
        engine::Engine,
        event::{AlertEvent, AlertState, rfc3339},
        sink::Sink,
    },
    cli::RecordArgs,
    commands::out_dir::OutDir,
    error::usage,
    metrics::{Exporter, Metrics},
    output::windows::WindowKind,
    session::{PhaseClock, Session, Stops, Tick, priority::Priority},
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
    /// The alert of a stretch of windows lost for lack of space, while it lasts.
    no_space: Option<AlertEvent>,
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
            no_space: None,
        })
    }

    /// Refreshes the metrics, raises what the rules say, and cuts the window when due.
    pub async fn tick(&mut self) -> anyhow::Result<()> {
        let news = self.writer.settle(false).await?;
        self.tell(news);
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
            let news = self.writer.start(cut).await?;
            self.tell(news);
        }
        Ok(())
    }

    /// Feeds the escalator this tick; hands the incident it ends to the writer.
    async fn escalate(&mut self, tick: &Tick, events: &[AlertEvent]) -> anyhow::Result<()> {
        let metrics = self.exporter.as_ref().map(Exporter::metrics);
        let sink = &self.alerts.sink;
        let Some(escalator) = &mut self.escalator else {
            return Ok(());
        };
        let Some(ended) = escalator.feed(tick, events, (metrics, sink)) else {
            return Ok(());
        };
        let news = self.writer.start_incident(ended).await?;
        self.tell(news);
        Ok(())
    }

    /// Tells the alert sinks (and the metrics) the writer's news.
    fn tell(&mut self, news: Vec<News>) {
        let metrics = self.exporter.as_ref().map(Exporter::metrics);
        tell(&self.alerts.sink, metrics, &mut self.no_space, news);
    }

    /// Writes the last window, stops serving and waits for the alert hooks.
    pub async fn stop(mut self, args: &RecordArgs) -> anyhow::Result<()> {
        // What is left is heavy and not pressed for time.
        if let Some(priority) = self.priority.take() {
            priority.release();
        }
        let sink = &self.alerts.sink;
        if let Some(escalator) = &mut self.escalator
            && let Some(ended) = escalator.finish(sink)
        {
            let news = self.writer.start_incident(ended).await?;
            self.tell(news);
        }
        if let Some(escalator) = &mut self.escalator {
            escalator.wait_detached();
        }
        let Self {
            session,
            alerts,
            exporter,
            mut writer,
            mut no_space,
            ..
        } = self;
        let (window, _, released) = session.finish().await.context("reading the last window")?;
        let news = writer.put_now(window, WindowKind::Regular).await?;
        let metrics = exporter.as_ref().map(Exporter::metrics);
        tell(&alerts.sink, metrics, &mut no_space, news);
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

/// Tells `sink` (and `metrics`) what the writer's news means: an incident ended, or a stretch
/// of windows lost for lack of space began (`no_space` keeps its alert) or ended.
fn tell(
    sink: &Sink,
    metrics: Option<&Metrics>,
    no_space: &mut Option<AlertEvent>,
    news: Vec<News>,
) {
    for item in news {
        let event = match item {
            News::IncidentEnded { incident, window } => {
                escalation::ended(sink, &incident, window);
                continue;
            }
            News::NoSpace(event) => no_space.insert(*event).clone(),
            News::Writing => {
                let Some(mut event) = no_space.take() else {
                    continue;
                };
                event.state = AlertState::Resolved;
                event.at = rfc3339(jiff::Timestamp::now());
                event
            }
        };
        sink.tell(&event);
        if let Some(metrics) = metrics {
            metrics.alert(event.state);
        }
    }
}
