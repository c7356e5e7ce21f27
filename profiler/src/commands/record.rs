//! `profiler record`: runs until stopped, writing a report per window, refreshing the metrics
//! and evaluating alert rules every tick; the session keeps the kernel maps bounded by
//! forgetting processes once their last window is written. A trigger attaches the exact probes
//! for an incident window (see `escalation`). Ticks run at real-time priority (see `priority`).

mod escalation;
mod recorder;
mod setup;
mod writer;

use self::{recorder::Recorder, setup::TICK};
use crate::{
    cli::RecordArgs,
    probes,
    session::{Stops, priority::Priority},
};

pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    let victims = setup::victims(&args)?;
    let engine = setup::alert_engine(&args, &victims)?;
    probes::check_privileges()?;
    probes::check_frequency(args.frequency)?;
    // Caught from here on: a stop during startup leaves no directory instead of an empty one.
    let mut stops = Stops::install()?;
    // Before the session starts its threads, which keep the normal policy.
    let priority = (!args.no_realtime).then(Priority::raise);
    let mut recorder = Recorder::start(&args, (engine, victims), &mut stops, priority).await?;
    // Once the arguments are known good: a usage error stays its one line.
    setup::shield_from_oom();
    let mut ticks = tokio::time::interval(TICK);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = stops.recv() => break,
            _ = ticks.tick() => if let Err(err) = recorder.tick().await {
                recorder.abandon().await;
                return Err(err);
            },
        }
    }
    recorder.stop(&args).await
}
