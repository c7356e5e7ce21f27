//! `profiler record`: continuous windows, metrics and alerts.

use crate::cli::RecordArgs;

pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    anyhow::bail!("record is being built: {args:?}")
}
