//! Where record's windows go: a regular window is named and written off the recording thread,
//! one at a time, so a slow symbolization (a rogue holding the CPUs) never holds up the ticks;
//! incidents and the last window are written in place.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
};

use anyhow::Context as _;
use tokio::task::JoinHandle;

use super::setup::put;
use crate::{
    metrics::Metrics,
    output::{store::Store, windows::WindowKind},
    session::{Cut, WindowReport, priority},
};

pub struct Writer {
    store: Arc<Mutex<Store>>,
    metrics: Option<Arc<Metrics>>,
    out: PathBuf,
    /// The regular window being named and written.
    pending: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Writer {
    pub fn new(store: Store, metrics: Option<Arc<Metrics>>, out: PathBuf) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            metrics,
            out,
            pending: None,
        }
    }

    /// Names `cut`'s stacks and writes it in the background, once the window before it is
    /// written: never two in flight, so a starved writer stretches the next window (its real
    /// length is in its report) instead of piling windows up in memory.
    pub async fn start(&mut self, cut: Cut) -> anyhow::Result<()> {
        self.settle(true).await?;
        let store = Arc::clone(&self.store);
        let metrics = self.metrics.clone();
        let out = self.out.clone();
        self.pending = Some(tokio::spawn(async move {
            let window = cut.report().await?;
            tokio::task::spawn_blocking(move || {
                priority::helper_thread();
                let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                put(
                    &mut store,
                    &window,
                    WindowKind::Regular,
                    &out,
                    metrics.as_deref(),
                )
                .map(|_| ())
            })
            .await
            .context("the window writer thread failed")?
        }));
        Ok(())
    }

    /// The background write's outcome once it is done (`wait`: waits for it); its error
    /// (`--exit-on-write-error`) ends the recording.
    pub async fn settle(&mut self, wait: bool) -> anyhow::Result<()> {
        let Some(pending) = self
            .pending
            .take_if(|pending| wait || pending.is_finished())
        else {
            return Ok(());
        };
        pending.await.context("the window writer failed")?
    }

    /// Writes `window` now, after any background write; whether it was written.
    pub async fn put_now(
        &mut self,
        window: &WindowReport,
        kind: WindowKind,
    ) -> anyhow::Result<bool> {
        self.settle(true).await?;
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        put(&mut store, window, kind, &self.out, self.metrics.as_deref())
    }

    /// What the store says of the recording at its end.
    pub fn summary(&self) -> String {
        let store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        store.summary(&self.out)
    }
}
