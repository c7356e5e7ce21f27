//! `profiler`'s library half: every module of the binary, so that fuzz targets and benchmarks
//! reach the same parsers and renderers the command line uses.

mod alerts;
mod analyze;
#[doc(hidden)]
pub mod bench;
mod cli;
mod collect;
mod commands;
mod error;
mod metrics;
mod model;
mod output;
mod probes;
mod session;
mod signals;
mod symbolize;
mod unwind;

/// The parsers of external input, for the fuzz targets in `fuzz/`: folded stacks, record
/// windows (report.json and directory names), alert rules, command-line values, the /proc and
/// tracefs text read directly rather than through procfs, ELF build-id notes and call frame
/// information. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::alerts::rule::Rule;
    pub use crate::cli::{
        parse_bytes, parse_duration, parse_interval, parse_retention, parse_window,
    };
    pub use crate::commands::flamegraph::{merge, windows::window};
    pub use crate::model::cgroups::root_from as cgroup2_root;
    pub use crate::output::{
        ProcessStacks,
        flamegraph::{Picture, render_diff, render_stacks},
        folded::{MAX_TOTAL, parse as parse_folded, render as render_folded},
        windows::{WindowKind, parse_name as parse_window_name},
    };
    pub use crate::probes::{privileges::effective_caps, tracefs::field_offset};
    pub use crate::symbolize::build_id::read_from as read_build_id;
    pub use crate::unwind::rows::{
        MAX_OBJECT_ROWS as MAX_UNWIND_ROWS, rule_known as unwind_rule_known,
    };

    /// The rows the unwind-row compiler makes of an ELF object.
    pub fn compile_unwind_rows(
        data: &[u8],
    ) -> Result<Vec<profiler_common::UnwindRow>, crate::unwind::rows::CompileError> {
        crate::unwind::rows::compile(data).map(|compiled| compiled.rows)
    }
}

use std::process::ExitCode;

// The report's types are the model's: every stage names them `crate::report`.
use self::model::report;

use clap::Parser as _;

/// Parses the command line, runs the command and turns its outcome into the exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err)
            if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            let _ = err.print();
            return ExitCode::from(2);
        }
        Err(err) => {
            eprintln!("Error: {}", error::one_line_clap(&err));
            return ExitCode::from(2);
        }
    };
    session::heap::limit_arenas();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(commands::run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if error::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(error::exit_code(&err))
        }
    }
}
