//! SIGINT and SIGTERM, which end `diagnose`, `record` and `top`: caught from startup on, so a
//! stop during setup is a clean exit with nothing written rather than a run killed half-way.

use anyhow::Context as _;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::Interrupted;

pub struct Stops {
    interrupt: Signal,
    terminate: Signal,
}

impl Stops {
    pub fn install() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
        })
    }

    /// Waits for either signal.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// Fails with [`Interrupted`] if either signal arrived since `install`: for the moment
    /// before measuring starts, when stopping has nothing to report.
    pub async fn none_yet(&mut self) -> Result<(), Interrupted> {
        // A signal reaches the streams through the runtime's driver, which runs only when this
        // task yields: setup before here was synchronous.
        tokio::task::yield_now().await;
        let stopped = |name, number| Err(Interrupted { name, number });
        tokio::select! {
            biased;
            _ = self.interrupt.recv() => stopped("SIGINT", libc::SIGINT),
            _ = self.terminate.recv() => stopped("SIGTERM", libc::SIGTERM),
            () = std::future::ready(()) => Ok(()),
        }
    }
}
