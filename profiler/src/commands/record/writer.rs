//! Where record's windows go: regular windows and incidents are named and written off the
//! recording thread, so a slow symbolization (a rogue holding the CPUs) never holds up the
//! ticks; the last window is written in place.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
};

use anyhow::Context as _;
use tokio::task::JoinHandle;

use super::{escalation::Ended, setup::put};
use crate::{
    alerts::event::{AlertEvent, AlertState},
    collect::space,
    metrics::Metrics,
    output::{
        store::{LostBecause, Outage, Store},
        windows::WindowKind,
    },
    report::Incident,
    session::{Cut, WindowReport, priority},
};

/// What the recorder tells the alert sinks once a background write is done.
pub enum News {
    /// An incident's window was named and written (`window`, its directory), or lost.
    IncidentEnded {
        incident: Incident,
        window: Option<String>,
    },
    /// The first window lost for lack of space: the alert naming who holds the space.
    NoSpace(Box<AlertEvent>),
    /// Windows are written again after a stretch of lost ones.
    Writing,
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
    metrics: Option<Arc<Metrics>>,
    out: PathBuf,
}

impl Shared {
    /// Writes `window` on a blocking thread at the helpers' priority; whether it was written,
    /// and the stretch of lost windows it starts or ends. At the start of one for lack of space
    /// it looks for who holds the space, there and then: the rogue is still at it.
    async fn put(
        self,
        window: WindowReport,
        kind: WindowKind,
    ) -> anyhow::Result<(bool, Option<News>)> {
        tokio::task::spawn_blocking(move || {
            priority::helper_thread();
            let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            let metrics = self.metrics.as_deref();
            let put = put(&mut store, &window, kind, &self.out, metrics)?;
            drop(store);
            let news = match put.outage {
                Some(Outage::Began(LostBecause::NoSpace)) => Some(self.no_space()),
                Some(Outage::Ended) => Some(News::Writing),
                Some(Outage::Began(LostBecause::Other)) | None => None,
            };
            Ok((put.written, news))
        })
        .await
        .context("the window writer thread failed")?
    }

    fn no_space(&self) -> News {
        let holders = space::holders(&self.out);
        let now = jiff::Timestamp::now();
        let event =
            AlertEvent::no_space(&self.out, holders.first(), AlertState::Firing, (now, now));
        News::NoSpace(Box::new(event))
    }
}

impl Writer {
    pub fn new(store: Store, metrics: Option<Arc<Metrics>>, out: PathBuf) -> Self {
        Self {
            shared: Shared {
                store: Arc::new(Mutex::new(store)),
                metrics,
                out,
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
        let shared = self.shared.clone();
        self.regular = Some(tokio::spawn(async move {
            let window = cut.report().await?;
            let (_, news) = shared.put(window, WindowKind::Regular).await?;
            Ok(news.into_iter().collect())
        }));
        Ok(news)
    }

    /// Names and writes an incident's window in the background, once the incident before it
    /// is done (incidents are minutes apart). One that cannot be named is said and told
    /// without a window, as an incident whose probes failed is.
    pub async fn start_incident(&mut self, ended: Ended) -> anyhow::Result<Vec<News>> {
        let news = settle(&mut self.incident, true).await?;
        let shared = self.shared.clone();
        self.incident = Some(tokio::spawn(async move {
            let Ended { cut, incident } = ended;
            let mut window = match cut.report().await {
                Ok(window) => window,
                Err(err) => {
                    eprintln!("profiler: warning: an incident's window was lost: {err:#}");
                    let window = None;
                    return Ok(vec![News::IncidentEnded { incident, window }]);
                }
            };
            window.report.incident = Some(incident.clone());
            let started_at = window.started_at;
            let (written, news) = shared.put(window, WindowKind::Incident).await?;
            let window = written.then(|| WindowKind::Incident.name(started_at));
            let ended = News::IncidentEnded { incident, window };
            Ok(news.into_iter().chain([ended]).collect())
        }));
        Ok(news)
    }

    /// The news of the background writes once they are done (`wait`: waits for them). An
    /// error (`--exit-on-write-error`) ends the recording.
    pub async fn settle(&mut self, wait: bool) -> anyhow::Result<Vec<News>> {
        let mut news = settle(&mut self.regular, wait).await?;
        news.extend(settle(&mut self.incident, wait).await?);
        Ok(news)
    }

    /// Writes `window` now, after the background writes; their news and its own.
    pub async fn put_now(
        &mut self,
        window: WindowReport,
        kind: WindowKind,
    ) -> anyhow::Result<Vec<News>> {
        let mut news = self.settle(true).await?;
        let (_, own) = self.shared.clone().put(window, kind).await?;
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
