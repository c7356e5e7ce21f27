//! One file per subcommand; each composes probes, collect, model, analyze and output.

mod diagnose;
mod doctor;
mod flamegraph;
mod out_dir;
mod record;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Diagnose(args) => diagnose::run(args).await,
        Command::Doctor => doctor::run(),
        Command::Record(args) => record::run(args).await,
        Command::Flamegraph(args) => flamegraph::run(args),
    }
}
