//! Where record's windows go: regular windows and incidents are named, analyzed and written
//! off the recording thread, one regular window and one incident at a time, so a slow
//! symbolization (a rogue holding the CPUs) never holds up the ticks.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Context as _;
use tokio::task::JoinHandle;

use super::{escalation::Ended, setup::put};
use crate::{
    alerts::event::{AlertEvent, AlertState},
    analyze::victim::{self, VictimSpec},
    collect::space,
    metrics::Metrics,
    output::{
        store::{LostBecause, Outage, Store},
        windows::WindowKind,
    },
    report::{Incident, Victim},
    session::{Cut, WindowReport, heap, priority},
};

/// What the recorder tells the alert sinks once a background write is done.
pub enum News {
    /// An incident's window was named and written (`window`, its directory), or lost.
    IncidentEnded {
        incident: Incident,
        window: Option<String>,
    },
    /// A window was the first lost for lack of space: the alert naming who held the space.
    /// Whether the outage still lasts is [`Writer::out_of_space`]'s to say: the regular and
    /// the incident writer each bring their news, in whatever order they finish.
    NoSpace(Box<AlertEvent>),
}

type Pending = Option<JoinHandle<anyhow::Result<Vec<News>>>>;

pub struct Writer {
    shared: Shared,
    /// The regular window being named and written.
    regular: Pending,
    /// The incident being named and written: beside a regular window, never in its way.
    incident: Pending,
}

/// What a background write needs.
#[derive(Clone)]
struct Shared {
    store: Arc<Mutex<Store>>,
    /// Set with the store's state, under its lock: windows are being lost for lack of space.
    out_of_space: Arc<AtomicBool>,
    metrics: Option<Arc<Metrics>>,
    out: PathBuf,
    /// Each window accounts for the time of these.
    victims: Arc<[VictimSpec]>,
}

impl Shared {
    /// Writes `window` on a blocking thread at the helpers' priority; whether it was written.
    /// At the start of a stretch of windows lost for lack of space it looks for who holds the
    /// space, there and then (the rogue is still at it), once the store is free again.
    async fn put(
        self,
        mut window: WindowReport,
        kind: WindowKind,
    ) -> anyhow::Result<(bool, Option<News>)> {
        tokio::task::spawn_blocking(move || {
            priority::helper_thread();
            window.report.victims = self.accounted(&window);
            let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            let metrics = self.metrics.as_deref();
            let put = put(&mut store, &window, kind, &self.out, metrics)?;
            let full = put.outage == Some(Outage::Began(LostBecause::NoSpace));
            match put.outage {
                Some(Outage::Began(LostBecause::NoSpace)) => {
                    self.out_of_space.store(true, Ordering::Relaxed);
                }
                Some(Outage::Ended) => self.out_of_space.store(false, Ordering::Relaxed),
                Some(Outage::Began(LostBecause::Other)) | None => {}
            }
            drop(store);
            drop(window);
            heap::trim();
            let news = full.then(|| self.no_space());
            Ok((put.written, news))
        })
        .await
        .context("the window writer thread failed")?
    }

    /// The `--victim`s whose processes ran in `window`, from its figures and its sleeps'
    /// stacks.
    fn accounted(&self, window: &WindowReport) -> Vec<Victim> {
        let (report, usage, offcpu) = (&window.report, &window.usage, &window.folded.offcpu);
        let own_pid = std::process::id();
        let seen = victim::Seen {
            usage,
            offcpu,
            slept_through: &[],
            cpu_split: None,
            cgroup_pressure: &[],
        };
        let account = |spec| victim::account(report, seen, spec, own_pid, None);
        self.victims.iter().filter_map(account).collect()
    }

    fn no_space(&self) -> News {
        let holders = space::holders(&self.out);
        let now = jiff::Timestamp::now();
        let holder = holders.first();
        let event = AlertEvent::no_space(&self.out, holder, AlertState::Firing, (now, now));
        News::NoSpace(Box::new(event))
    }

    /// Names `cut`'s stacks, analyzes and writes it; an incident's is marked as one, and said
    /// lost (with no window) when its stacks cannot be named.
    async fn write(self, cut: Cut, incident: Option<Incident>) -> anyhow::Result<Vec<News>> {
        let window = cut.report().await;
        let Some(incident) = incident else {
            let (_, news) = self.put(window?, WindowKind::Regular).await?;
            return Ok(news.into_iter().collect());
        };
        let mut window = match window {
            Ok(window) => window,
            Err(err) => {
                eprintln!("profiler: warning: an incident's window was lost: {err:#}");
                let window = None;
                return Ok(vec![News::IncidentEnded { incident, window }]);
            }
        };
        window.report.incident = Some(incident.clone());
        let started_at = window.started_at;
        let (written, news) = self.put(window, WindowKind::Incident).await?;
        let window = written.then(|| WindowKind::Incident.name(started_at));
        let ended = News::IncidentEnded { incident, window };
        Ok(news.into_iter().chain([ended]).collect())
    }
}

impl Writer {
    pub fn new(
        store: Store,
        metrics: Option<Arc<Metrics>>,
        out: PathBuf,
        victims: Arc<[VictimSpec]>,
    ) -> Self {
        Self {
            shared: Shared {
                store: Arc::new(Mutex::new(store)),
                out_of_space: Arc::new(AtomicBool::new(false)),
                metrics,
                out,
                victims,
            },
            regular: None,
            incident: None,
        }
    }

    /// Names `cut`'s stacks and writes it in the background, once the window before it is
    /// written: never two in flight, so a starved writer stretches the next window (its real
    /// length is in its report) instead of piling windows up in memory. The news of the one
    /// before.
    pub async fn start(&mut self, cut: Cut) -> anyhow::Result<Vec<News>> {
        let news = settle(&mut self.regular, true).await?;
        let write = self.shared.clone().write(cut, None);
        self.regular = Some(tokio::spawn(write));
        Ok(news)
    }

    /// Names and writes an incident's window in the background, once the incident before it
    /// is done (incidents are minutes apart).
    pub async fn start_incident(&mut self, ended: Ended) -> anyhow::Result<Vec<News>> {
        let news = settle(&mut self.incident, true).await?;
        let write = self.shared.clone().write(ended.cut, Some(ended.incident));
        self.incident = Some(tokio::spawn(write));
        Ok(news)
    }

    /// The news of the background writes once they are done (`wait`: waits for them). An
    /// error (`--exit-on-write-error`) ends the recording; the incident writer's is seen at
    /// the tick after it, so a regular window may still be written meanwhile.
    pub async fn settle(&mut self, wait: bool) -> anyhow::Result<Vec<News>> {
        let regular = settle(&mut self.regular, wait).await;
        let incident = settle(&mut self.incident, wait).await;
        let mut news = regular?;
        news.extend(incident?);
        Ok(news)
    }

    /// The news of the background writes, waited for, when the recording ends on an error:
    /// what can still be told is.
    pub async fn abandon(&mut self) -> Vec<News> {
        let regular = settle(&mut self.regular, true).await;
        let incident = settle(&mut self.incident, true).await;
        [regular, incident]
            .into_iter()
            .flat_map(|news| news.unwrap_or_default())
            .collect()
    }

    /// Whether windows are being lost for lack of space, as the last write left it.
    pub fn out_of_space(&self) -> bool {
        self.shared.out_of_space.load(Ordering::Relaxed)
    }

    /// Writes the last window now, after the background writes; their news and its own.
    pub async fn put_last(&mut self, window: WindowReport) -> anyhow::Result<Vec<News>> {
        let mut news = self.settle(true).await?;
        let (_, own) = self.shared.clone().put(window, WindowKind::Regular).await?;
        news.extend(own);
        Ok(news)
    }

    /// What the store says of the recording at its end.
    pub fn summary(&self) -> String {
        let store = self
            .shared
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        store.summary(&self.shared.out)
    }
}

/// The news of a background write once it is done (`wait`: waits for it).
async fn settle(pending: &mut Pending, wait: bool) -> anyhow::Result<Vec<News>> {
    match pending.take_if(|pending| wait || pending.is_finished()) {
        Some(pending) => pending.await.context("the window writer failed")?,
        None => Ok(Vec::new()),
    }
}
