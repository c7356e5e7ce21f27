//! `profiler flamegraph`: offline rendering of folded stacks.

use crate::cli::FlamegraphArgs;

pub fn run(args: FlamegraphArgs) -> anyhow::Result<()> {
    anyhow::bail!("flamegraph is being built: {args:?}")
}
