//! A running recording: what each tick feeds (metrics, alert rules, the escalator, the window
//! writer) and how it stops.

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
    analyze::{
        figures,
        victim::{self, VictimSpec},
    },
    cli::RecordArgs,
    commands::out_dir::OutDir,
    error::usage,
    metrics::{Exporter, Metrics},
    session::{PhaseClock, Session, Stops, Tick, priority::Priority},
};

use std::sync::Arc;

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
    newsroom: Newsroom,
    victims: Arc<[VictimSpec]>,
}

impl Recorder {
    /// Serves the metrics, attaches the signals and opens the alert sink. The output directory
    /// is removed again if any of it fails: a failed start leaves nothing behind.
    pub async fn start(
        args: &RecordArgs,
        (engine, victims): (Engine, Vec<VictimSpec>),
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
        let victims: Arc<[VictimSpec]> = victims.into();
        Ok(Self {
            session,
            alerts,
            exporter,
            writer: Writer::new(store, metrics, args.out.clone(), victims.clone()),
            escalator: setup::escalator(args),
            priority,
            newsroom: Newsroom::default(),
            victims,
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
        // Indexed once for the metrics and the alert rules.
        let figures = figures::Tick::new(&tick.report);
        if let Some(metrics) = self.exporter.as_ref().map(Exporter::metrics) {
            metrics.update(&tick.report, figures.as_ref(), &tick.cost);
            metrics.add_victims(&victim::all(&tick.report, &self.victims));
            if tick.report.duration_s > LATE * TICK.as_secs_f64() {
                metrics.tick_late();
            }
        }
        // An alert's evidence is symbolized here, at the thread's priority: a firing alert is
        // rare, its stacks few, and files over the DWARF budget are read from their symbol
        // tables. Lowered to nice -20, its parsing (kallsyms included) shares the CPUs with a
        // rogue's every thread while the ticks wait. The real-time budget bounds a bad case.
        let session = &self.session;
        let events = match &figures {
            Some(figures) => {
                (self.alerts).evaluate(figures, tick.at, |pid| session.top_stacks(pid))?
            }
            None => Vec::new(),
        };
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
        let out_of_space = self.writer.out_of_space();
        (self.newsroom).tell((&self.alerts.sink, metrics), news, out_of_space);
    }

    /// Tells what the writer still had in flight, when the recording ends on an error.
    pub async fn abandon(mut self) {
        let news = self.writer.abandon().await;
        self.tell(news);
        self.alerts.sink.drain().await;
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
            mut newsroom,
            ..
        } = self;
        let metrics = exporter.as_ref().map(Exporter::metrics);
        let news = match session.finish().await {
            Ok((window, _, released)) => {
                let news = writer.put_last(window).await?;
                released.wait();
                news
            }
            Err(err) => {
                let news = writer.abandon().await;
                newsroom.tell((&alerts.sink, metrics), news, writer.out_of_space());
                return Err(err.context("reading the last window"));
            }
        };
        newsroom.tell((&alerts.sink, metrics), news, writer.out_of_space());
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

/// What the writer's news means to the alert sinks; the full-disk alert while it fires.
#[derive(Default)]
struct Newsroom {
    no_space: Option<AlertEvent>,
}

impl Newsroom {
    /// Tells `sink` (and `metrics`) of incidents that ended, and of the full-disk alert
    /// firing or resolving as `out_of_space` (the writer's state now, whatever order the news
    /// came in) says.
    fn tell(
        &mut self,
        (sink, metrics): (&Sink, Option<&Metrics>),
        news: Vec<News>,
        out_of_space: bool,
    ) {
        for item in news {
            match item {
                News::IncidentEnded { incident, window } => {
                    escalation::ended(sink, &incident, window);
                }
                News::NoSpace(event) if out_of_space && self.no_space.is_none() => {
                    announce((sink, metrics), &event);
                    self.no_space = Some(*event);
                }
                // The outage is over already, or its alert fires.
                News::NoSpace(_) => {}
            }
        }
        if !out_of_space && let Some(mut event) = self.no_space.take() {
            event.state = AlertState::Resolved;
            event.at = rfc3339(jiff::Timestamp::now());
            announce((sink, metrics), &event);
        }
    }
}

fn announce((sink, metrics): (&Sink, Option<&Metrics>), event: &AlertEvent) {
    sink.tell(event);
    if let Some(metrics) = metrics {
        metrics.alert(event.state);
    }
}
