//! One file per subcommand; each composes probes, collect, model, analyze and output.

mod diagnose;
mod doctor;
mod out_dir;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Diagnose(args) => diagnose::run(args).await,
        Command::Doctor => doctor::run(),
    }
}
