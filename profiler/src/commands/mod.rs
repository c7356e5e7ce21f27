//! One file per subcommand: each chooses signals, cadence and outputs, and drives a
//! [`crate::session::Session`] (or, for `flamegraph` and `doctor`, none).

mod diagnose;
mod doctor;
pub mod flamegraph;
mod generate;
mod out_dir;
mod record;
mod targets;
mod top;
mod trust;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Diagnose(args) => diagnose::run(args).await,
        Command::Doctor => doctor::run(),
        Command::Record(args) => record::run(args).await,
        Command::Top(args) => top::run(args).await,
        Command::Flamegraph(args) => flamegraph::run(args),
        Command::Generate { what } => generate::run(&what),
    }
}
